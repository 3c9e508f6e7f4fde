//! One channel for the dialog states of every call this endpoint places. rsipstack reports a
//! dialog's states on an unbounded channel the dialog is built with; a channel per call kept
//! its first block (32 states, ~10 KiB) alive as long as the call (docs/benchmarks.md, "Memory
//! per call"). Here every UAC dialog sends on one channel; a pump task routes each state to
//! its leg's inbox by Call-ID and our tag — a queue that costs nothing while empty.
//!
//! Order: the INVITE's provisional states are sent while its transaction runs, the final
//! response comes back from the transaction itself. [`StateRouter::flush`] sends a marker
//! through the channel and returns once the pump has reached it, so every state sent before
//! is in its inbox; the INVITE's driver flushes before it hands the final response over.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rsipstack::dialog::dialog::{DialogState, DialogStateSender};
use rsipstack::dialog::DialogId;
use rsipstack::platform::CancellationToken;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::endpoint::LegKey;

/// The Call-ID of the markers [`StateRouter::flush`] sends (never a real call's).
const MARKER_CALL_ID: &str = "\u{0}dialtone-flush";

/// A leg's states, in the order they were sent.
#[derive(Default)]
pub(crate) struct Inbox {
    queue: Mutex<VecDeque<DialogState>>,
    ready: Notify,
}

impl Inbox {
    fn push(&self, state: DialogState) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(state);
        }
        self.ready.notify_one();
    }

    /// The next state, when there is one now.
    pub(crate) fn try_recv(&self) -> Option<DialogState> {
        self.queue.lock().ok()?.pop_front()
    }

    /// The next state.
    pub(crate) async fn recv(&self) -> DialogState {
        loop {
            if let Some(state) = self.try_recv() {
                return state;
            }
            // A push between the check and the wait leaves a permit: no state is missed.
            self.ready.notified().await;
        }
    }
}

pub(crate) struct StateRouter {
    sender: DialogStateSender,
    inboxes: Mutex<HashMap<LegKey, Arc<Inbox>>>,
    markers: Mutex<HashMap<String, oneshot::Sender<()>>>,
    next_marker: AtomicU64,
}

fn id_of(state: &DialogState) -> &DialogId {
    match state {
        DialogState::Calling(id)
        | DialogState::Trying(id)
        | DialogState::Early(id, _)
        | DialogState::WaitAck(id, _)
        | DialogState::Confirmed(id, _)
        | DialogState::Updated(id, _, _)
        | DialogState::Publish(id, _, _)
        | DialogState::Notify(id, _, _)
        | DialogState::Refer(id, _, _)
        | DialogState::Message(id, _, _)
        | DialogState::Info(id, _, _)
        | DialogState::Options(id, _, _)
        | DialogState::Terminated(id, _) => id,
    }
}

impl StateRouter {
    /// The router and its pump, which runs until `token` is cancelled.
    pub(crate) fn start(token: CancellationToken) -> Arc<StateRouter> {
        let (sender, mut rx) = mpsc::unbounded_channel();
        let router = Arc::new(StateRouter {
            sender,
            inboxes: Mutex::new(HashMap::new()),
            markers: Mutex::new(HashMap::new()),
            next_marker: AtomicU64::new(0),
        });
        let pump = router.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    state = rx.recv() => match state {
                        Some(state) => pump.route(state),
                        None => break,
                    },
                }
            }
        });
        router
    }

    /// What a dialog this endpoint places is built with.
    pub(crate) fn sender(&self) -> DialogStateSender {
        self.sender.clone()
    }

    /// The inbox of the leg `key`, from now until [`StateRouter::close`].
    pub(crate) fn open(&self, key: LegKey) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox::default());
        if let Ok(mut m) = self.inboxes.lock() {
            m.insert(key, inbox.clone());
        }
        inbox
    }

    pub(crate) fn close(&self, key: &LegKey) {
        if let Ok(mut m) = self.inboxes.lock() {
            m.remove(key);
        }
    }

    fn route(&self, state: DialogState) {
        let id = id_of(&state);
        if id.call_id == MARKER_CALL_ID {
            let done = self
                .markers
                .lock()
                .ok()
                .and_then(|mut m| m.remove(&id.local_tag));
            if let Some(done) = done {
                let _ = done.send(());
            }
            return;
        }
        let key = (id.call_id.clone(), id.local_tag.clone());
        let inbox = self.inboxes.lock().ok().and_then(|m| m.get(&key).cloned());
        // A leg that has ended takes no more states.
        if let Some(inbox) = inbox {
            inbox.push(state);
        }
    }

    /// Returns once every state sent before the call is in its leg's inbox (or the pump has
    /// stopped).
    pub(crate) async fn flush(&self) {
        let tag = self.next_marker.fetch_add(1, Ordering::Relaxed).to_string();
        let (done, reached) = oneshot::channel();
        if let Ok(mut m) = self.markers.lock() {
            m.insert(tag.clone(), done);
        }
        let marker = DialogId {
            call_id: MARKER_CALL_ID.to_string(),
            local_tag: tag,
            remote_tag: String::new(),
        };
        if self.sender.send(DialogState::Calling(marker)).is_ok() {
            let _ = reached.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::dialog::dialog::TerminatedReason;

    fn id(call: &str, tag: &str) -> DialogId {
        DialogId {
            call_id: call.into(),
            local_tag: tag.into(),
            remote_tag: String::new(),
        }
    }

    #[tokio::test]
    async fn states_reach_their_legs_in_order_and_a_flush_waits_for_them() {
        let token = CancellationToken::new();
        let router = StateRouter::start(token.clone());
        let a = router.open(("a".into(), "1".into()));
        let b = router.open(("b".into(), "1".into()));
        let tx = router.sender();
        tx.send(DialogState::Calling(id("a", "1"))).unwrap();
        tx.send(DialogState::Trying(id("b", "1"))).unwrap();
        tx.send(DialogState::Terminated(
            id("a", "1"),
            TerminatedReason::UacBye,
        ))
        .unwrap();
        tx.send(DialogState::Calling(id("gone", "1"))).unwrap();
        router.flush().await;
        assert!(matches!(a.try_recv(), Some(DialogState::Calling(_))));
        assert!(matches!(a.try_recv(), Some(DialogState::Terminated(..))));
        assert!(a.try_recv().is_none());
        assert!(matches!(b.recv().await, DialogState::Trying(_)));
        // A closed leg's states are dropped; a state after a wait wakes the waiter.
        router.close(&("b".into(), "1".into()));
        tx.send(DialogState::Calling(id("b", "1"))).unwrap();
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.recv().await }
        });
        tx.send(DialogState::Trying(id("a", "1"))).unwrap();
        assert!(matches!(waiting.await.unwrap(), DialogState::Trying(_)));
        router.flush().await;
        assert!(b.try_recv().is_none());
        token.cancel();
    }
}
