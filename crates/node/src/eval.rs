//! The script evaluator pool: every SWML step that may evaluate JavaScript runs on one of a few
//! OS threads at a lower priority, never on the async runtime; the call's actor awaits it.
//! Cancelling the call's [`swml::JsBudget`] stops a step that is running.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::warn;

type Job = Box<dyn FnOnce() + Send>;

/// Steps waiting for a thread; past that a caller waits (it polls every few ms).
const QUEUE: usize = 1024;

pub(crate) struct ScriptPool {
    tx: SyncSender<Job>,
}

impl ScriptPool {
    pub(crate) fn start(threads: usize) -> std::io::Result<ScriptPool> {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("swml-eval-{i}"))
                .spawn(move || worker(&rx))?;
        }
        Ok(ScriptPool { tx })
    }

    /// Runs `step` of `run` on a pool thread; `None` if the step panicked (the run is lost).
    pub(crate) async fn step(
        &self,
        mut run: swml::Run,
        now: u64,
        step: swml::Step,
    ) -> Option<swml::Run> {
        let (done, rx) = oneshot::channel();
        let mut job: Job = Box::new(move || {
            run.step(now, step);
            let _ = done.send(run);
        });
        loop {
            match self.tx.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Full(j)) => {
                    job = j;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(TrySendError::Disconnected(_)) => return None,
            }
        }
        rx.await.ok()
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    // Below the runtime and the media shards: a runaway script slows other scripts, not calls.
    // SAFETY: setpriority on the calling thread (who = 0) has no memory effects.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) } != 0 {
        warn!("could not lower the script evaluator's priority");
    }
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            warn!("a script step panicked; its script is stopped");
        }
    }
}
