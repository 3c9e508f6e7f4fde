//! Dialog states to their legs through one channel per endpoint.
//!
//! The stack reports each dialog's state changes on an unbounded channel it is given. A tokio
//! channel allocates its first block of 32 slots when made, and a `DialogState` is ~300 bytes:
//! a channel per dialog cost ~10 KiB per call for a handful of messages. Instead every dialog
//! gets a clone of one sender; a task hands each state, boxed, to its leg's own channel (32
//! slots of a pointer), found by Call-ID and local tag, in the order the stack sent them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rsipstack::dialog::dialog::DialogState;
use rsipstack::platform::CancellationToken;
use tokio::sync::mpsc::{self, error::TryRecvError, UnboundedReceiver, UnboundedSender};

use crate::endpoint::LegKey;

type Routes = Mutex<HashMap<LegKey, UnboundedSender<Box<DialogState>>>>;

/// The endpoint's one dialog-state channel and where each dialog's states go.
pub(crate) struct StateRouter {
    tx: UnboundedSender<DialogState>,
    routes: Arc<Routes>,
}

impl StateRouter {
    /// Starts the routing task (it ends with `token`, or when every sender is gone).
    pub(crate) fn start(token: CancellationToken) -> StateRouter {
        let (tx, mut rx) = mpsc::unbounded_channel::<DialogState>();
        let routes: Arc<Routes> = Arc::default();
        let table = routes.clone();
        tokio::spawn(async move {
            loop {
                let state = tokio::select! {
                    _ = token.cancelled() => return,
                    state = rx.recv() => match state {
                        Some(state) => state,
                        None => return,
                    },
                };
                let id = state.id();
                let key = (id.call_id.clone(), id.local_tag.clone());
                let route = lock(&table).get(&key).cloned();
                match route {
                    // A leg that has ended no longer listens: nothing to tell it.
                    Some(route) => {
                        let _ = route.send(Box::new(state));
                    }
                    None => tracing::debug!(call_id = %key.0, "dialog state for no leg dropped"),
                }
            }
        });
        StateRouter { tx, routes }
    }

    /// The sender every dialog of this endpoint is given.
    pub(crate) fn sender(&self) -> UnboundedSender<DialogState> {
        self.tx.clone()
    }

    /// From now on, the states of the dialog with Call-ID and local tag `key` go to the
    /// returned receiver (until it is dropped).
    pub(crate) fn route(&self, key: LegKey) -> StateReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.routes).insert(key.clone(), tx);
        StateReceiver {
            rx,
            key,
            routes: self.routes.clone(),
        }
    }
}

/// One leg's dialog states; dropping it stops the routing.
pub(crate) struct StateReceiver {
    rx: UnboundedReceiver<Box<DialogState>>,
    key: LegKey,
    routes: Arc<Routes>,
}

impl StateReceiver {
    pub(crate) async fn recv(&mut self) -> Option<DialogState> {
        self.rx.recv().await.map(|s| *s)
    }

    pub(crate) fn try_recv(&mut self) -> Result<DialogState, TryRecvError> {
        self.rx.try_recv().map(|s| *s)
    }
}

impl Drop for StateReceiver {
    fn drop(&mut self) {
        lock(&self.routes).remove(&self.key);
    }
}

fn lock(
    routes: &Routes,
) -> std::sync::MutexGuard<'_, HashMap<LegKey, UnboundedSender<Box<DialogState>>>> {
    routes.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::dialog::dialog::TerminatedReason;
    use rsipstack::dialog::DialogId;

    fn id(call_id: &str, local: &str, remote: &str) -> DialogId {
        DialogId {
            call_id: call_id.into(),
            local_tag: local.into(),
            remote_tag: remote.into(),
        }
    }

    #[tokio::test]
    async fn each_leg_gets_its_own_states_in_order_until_it_goes() {
        let router = StateRouter::start(CancellationToken::new());
        let mut a = router.route(("a@h".into(), "ta".into()));
        let mut b = router.route(("b@h".into(), "tb".into()));
        let tx = router.sender();
        tx.send(DialogState::Calling(id("a@h", "ta", ""))).unwrap();
        tx.send(DialogState::Trying(id("b@h", "tb", ""))).unwrap();
        // The remote tag comes with the answer: the leg is still found.
        tx.send(DialogState::Terminated(
            id("a@h", "ta", "r1"),
            TerminatedReason::UasBye,
        ))
        .unwrap();
        tx.send(DialogState::Calling(id("c@h", "tc", ""))).unwrap();
        assert!(matches!(a.recv().await, Some(DialogState::Calling(_))));
        assert!(matches!(a.recv().await, Some(DialogState::Terminated(..))));
        assert!(matches!(b.recv().await, Some(DialogState::Trying(_))));
        assert!(matches!(b.try_recv(), Err(TryRecvError::Empty)));
        drop(a);
        assert_eq!(lock(&router.routes).len(), 1);
        drop(b);
        assert!(lock(&router.routes).is_empty());
    }
}
