//! The script evaluator pool: every SWML step that may evaluate JavaScript runs on one of a few
//! OS threads at a lower priority, never on the async runtime; the call's actor awaits it.
//! Cancelling the call's [`swml::JsBudget`] stops a step that is running. A script that has
//! yielded after a slice of JavaScript (`swml::expr::JS_SLICE`) goes on from the low queue, so
//! other scripts' steps pass it.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::warn;

type Job = Box<dyn FnOnce() + Send>;

/// Steps waiting for a thread; past that a caller waits (it polls every few ms).
const QUEUE: usize = 1024;

#[derive(Default)]
struct Queues {
    steps: VecDeque<Job>,
    /// Scripts going on after a slice of JavaScript: run when no other step waits.
    yielded: VecDeque<Job>,
    closed: bool,
}

pub(crate) struct ScriptPool {
    shared: Arc<(Mutex<Queues>, Condvar)>,
}

impl ScriptPool {
    pub(crate) fn start(threads: usize) -> std::io::Result<ScriptPool> {
        let shared = Arc::new((Mutex::new(Queues::default()), Condvar::new()));
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("swml-eval-{i}"))
                .spawn(move || worker(&shared))?;
        }
        Ok(ScriptPool { shared })
    }

    /// Runs `step` of `run` on a pool thread; `None` if the step panicked (the run is lost).
    /// Once `js` is cancelled (the call is ending) a step still queued is not run: the run
    /// comes back as it was, at once.
    pub(crate) async fn step(
        &self,
        run: swml::Run,
        now: u64,
        step: swml::Step,
        js: &swml::JsBudget,
    ) -> Option<swml::Run> {
        let yielded = step == swml::Step::Timeout && run.is_yielding();
        let slot = Arc::new(Mutex::new(Some(run)));
        let (done, mut rx) = oneshot::channel();
        let job_slot = slot.clone();
        let mut job: Job = Box::new(move || {
            if let Ok(mut run) = job_slot.lock() {
                if let Some(run) = run.as_mut() {
                    run.step(now, step);
                }
            }
            let _ = done.send(());
        });
        loop {
            match self.submit(job, yielded) {
                Ok(()) => break,
                Err(j) => {
                    job = j;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        loop {
            tokio::select! {
                finished = &mut rx => {
                    finished.ok()?;
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    // Cancelled and not started yet: take it back (a running step stops at its
                    // next tick and is awaited).
                    if js.is_cancelled() {
                        if let Ok(mut queued) = slot.try_lock() {
                            return queued.take();
                        }
                    }
                }
            }
        }
        let run = slot.lock().ok()?.take();
        run
    }

    fn submit(&self, job: Job, yielded: bool) -> Result<(), Job> {
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

impl Drop for ScriptPool {
    fn drop(&mut self) {
        let (lock, ready) = &*self.shared;
        if let Ok(mut q) = lock.lock() {
            q.closed = true;
        }
        ready.notify_all();
    }
}

fn worker(shared: &(Mutex<Queues>, Condvar)) {
    // Below the runtime and the media shards: a runaway script slows other scripts, not calls.
    // SAFETY: setpriority on the calling thread (who = 0) has no memory effects.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) } != 0 {
        warn!("could not lower the script evaluator's priority");
    }
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
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            warn!("a script step panicked; its script is stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn fresh_steps_pass_scripts_that_yielded() {
        let pool = ScriptPool::start(1).unwrap();
        let (order_tx, order) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        // The one thread is busy until released; meanwhile two continuations and a fresh
        // step queue up.
        pool.submit(
            Box::new(move || {
                let _ = gate.recv();
            }),
            false,
        )
        .map_err(|_| ())
        .unwrap();
        for (name, yielded) in [("yield-1", true), ("yield-2", true), ("fresh", false)] {
            let tx = order_tx.clone();
            pool.submit(Box::new(move || tx.send(name).unwrap()), yielded)
                .map_err(|_| ())
                .unwrap();
        }
        release.send(()).unwrap();
        let got: Vec<&str> = (0..3)
            .map(|_| order.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, vec!["fresh", "yield-1", "yield-2"]);
    }
}
