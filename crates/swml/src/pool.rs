//! The threads and queues that run script steps off a runtime's async threads (std only: the
//! runtime awaits each step's result its own way). Two queues: fresh steps, and continuations
//! of scripts that yielded after a slice of JavaScript ([`crate::expr::JS_SLICE`]), which run
//! only when no fresh step waits. Bounded: [`StepPool::submit`] refuses past [`QUEUE`].

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};

/// One step to run (it reports its result itself).
pub type Job = Box<dyn FnOnce() + Send>;

/// Steps waiting for a thread, both queues together.
pub const QUEUE: usize = 1024;

#[derive(Default)]
struct Queues {
    steps: VecDeque<Job>,
    yielded: VecDeque<Job>,
    closed: bool,
}

type Shared = Arc<(Mutex<Queues>, Condvar)>;

pub struct StepPool {
    shared: Shared,
}

impl StepPool {
    /// `threads` threads (at least one), each running `on_start` first (e.g. to lower its
    /// priority).
    pub fn start(threads: usize, on_start: fn()) -> std::io::Result<StepPool> {
        let shared: Shared = Arc::new((Mutex::new(Queues::default()), Condvar::new()));
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("swml-eval-{i}"))
                .spawn(move || {
                    on_start();
                    worker(&shared);
                })?;
        }
        Ok(StepPool { shared })
    }

    /// Queues `job` (a continuation after a JavaScript slice when `yielded`); gives it back
    /// when the queues are full.
    pub fn submit(&self, job: Job, yielded: bool) -> Result<(), Job> {
        let (lock, ready) = &*self.shared;
        let Ok(mut q) = lock.lock() else {
            return Err(job);
        };
        if q.steps.len() + q.yielded.len() >= QUEUE {
            return Err(job);
        }
        if yielded {
            q.yielded.push_back(job);
        } else {
            q.steps.push_back(job);
        }
        ready.notify_one();
        Ok(())
    }
}

impl Drop for StepPool {
    fn drop(&mut self) {
        let (lock, ready) = &*self.shared;
        if let Ok(mut q) = lock.lock() {
            q.closed = true;
        }
        ready.notify_all();
    }
}

fn worker(shared: &(Mutex<Queues>, Condvar)) {
    let (lock, ready) = shared;
    loop {
        let job = {
            let Ok(mut q) = lock.lock() else { return };
            loop {
                if q.closed {
                    return;
                }
                if let Some(job) = q.steps.pop_front().or_else(|| q.yielded.pop_front()) {
                    break job;
                }
                q = match ready.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        // A step that panics loses its run (the runtime sees its reply dropped); the thread
        // goes on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn fresh_steps_pass_scripts_that_yielded_and_a_panic_keeps_the_thread() {
        let pool = StepPool::start(1, || {}).unwrap();
        let (order_tx, order) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        // The one thread is busy until released; meanwhile a panicking step, two
        // continuations and a fresh step queue up.
        let busy: Job = Box::new(move || {
            let _ = gate.recv();
        });
        assert!(pool.submit(busy, false).is_ok());
        assert!(pool.submit(Box::new(|| panic!("a bad step")), true).is_ok());
        for (name, yielded) in [("yield-1", true), ("yield-2", true), ("fresh", false)] {
            let tx = order_tx.clone();
            assert!(pool
                .submit(Box::new(move || tx.send(name).unwrap()), yielded)
                .is_ok());
        }
        release.send(()).unwrap();
        let got: Vec<&str> = (0..3)
            .map(|_| order.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, vec!["fresh", "yield-1", "yield-2"]);
    }

    #[test]
    fn a_full_queue_gives_the_job_back() {
        let pool = StepPool::start(1, || {}).unwrap();
        let (release, gate) = mpsc::channel::<()>();
        let busy: Job = Box::new(move || {
            let _ = gate.recv();
        });
        assert!(pool.submit(busy, false).is_ok());
        // The busy job may still be queued or already taken: fill to the brim either way.
        let mut refused = 0;
        for _ in 0..QUEUE + 1 {
            if pool.submit(Box::new(|| {}), false).is_err() {
                refused += 1;
            }
        }
        assert!(refused >= 1);
        release.send(()).unwrap();
    }
}
