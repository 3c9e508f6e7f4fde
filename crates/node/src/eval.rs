//! The script evaluator: every SWML step that may evaluate JavaScript runs on the
//! [`swml::pool::StepPool`]'s threads (at nice 10), never on the async runtime; the call's
//! actor awaits it. Cancelling the call's [`swml::JsBudget`] stops a step that is running and
//! takes back one still queued.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use swml::pool::{Job, StepPool};
use tokio::sync::oneshot;
use tracing::warn;

pub(crate) struct ScriptPool(StepPool);

impl ScriptPool {
    pub(crate) fn start(threads: usize) -> std::io::Result<ScriptPool> {
        StepPool::start(threads, lower_priority).map(ScriptPool)
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
        while let Err(full) = self.0.submit(job, yielded) {
            job = full;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        loop {
            tokio::select! {
                finished = &mut rx => {
                    if finished.is_err() {
                        warn!("a script step panicked; its script is stopped");
                        return None;
                    }
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
}

/// Below the runtime and the media shards: a runaway script slows other scripts, not calls.
fn lower_priority() {
    crate::thread_priority::set_own_nice(10, Some("the script evaluator's threads"));
}
