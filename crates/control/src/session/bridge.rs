//! Bridging: a call transferred to a SIP URI or number hears ringback until its far leg
//! answers, then the two calls' audio is joined; when either call ends, the other hangs up.
//! The far leg itself is dialled by the driver (it is a call of its own).

use uuid::Uuid;

use super::{Action, CallSession, Origin};
use crate::command::{MediaItem, PlayParams};
use crate::service::ControlError;
use crate::CallCommand;

/// This call's part in a bridge.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) enum Bridge {
    #[default]
    None,
    /// Transferred: `peer` is the far leg; `ringback` (a control_id) plays until it answers.
    Transferred {
        peer: Uuid,
        ringback: Option<String>,
    },
    /// The far leg of a transfer of `parent`.
    FarLeg { parent: Uuid },
}

impl CallSession {
    /// A transfer to an address may start (a call is bridged once at most).
    pub fn check_transfer(&self) -> Result<(), ControlError> {
        if self.bridge == Bridge::None {
            Ok(())
        } else {
            Err(ControlError::invalid_state(
                "invalid_state",
                "the call is already being transferred",
            ))
        }
    }

    /// The far leg `peer` is being dialled: the call's playbacks stop and, with `ringback`,
    /// ringback plays until it answers.
    pub fn transferred(&mut self, peer: Uuid, ringback: bool) {
        self.stop_all_plays();
        if !ringback {
            self.bridge = Bridge::Transferred {
                peer,
                ringback: None,
            };
            return;
        }
        let ringback = format!("ringback-{peer}");
        let play = PlayParams::new(ringback.clone(), vec![MediaItem::us_ring()]);
        let ringback = self
            .handle_command(0, CallCommand::Play(play), Origin::Rest)
            .ok()
            .map(|()| ringback);
        self.bridge = Bridge::Transferred { peer, ringback };
    }

    /// This call is the far leg of a transfer of `parent`.
    pub fn far_leg_of(&mut self, parent: Uuid) {
        self.bridge = Bridge::FarLeg { parent };
    }

    /// `calling.disconnect` on (or by the parent of) this far leg: it stays up on its own,
    /// no longer tied to `parent` (its end no longer ends the parent, nor the parent's it).
    pub fn detach_from(&mut self, parent: Uuid) {
        if self.bridge == (Bridge::FarLeg { parent }) {
            self.bridge = Bridge::None;
        }
    }

    /// The call this far leg bridges to, if it is one.
    pub fn bridge_parent(&self) -> Option<Uuid> {
        match self.bridge {
            Bridge::FarLeg { parent } => Some(parent),
            _ => None,
        }
    }

    /// The far leg answered: ringback stops, the audio is joined.
    pub(super) fn on_peer_answered(&mut self, call_id: Uuid) {
        let Bridge::Transferred { peer, ringback } = &mut self.bridge else {
            return;
        };
        if *peer != call_id {
            return;
        }
        if let Some(control_id) = ringback.take() {
            let _ = self.control_play(&control_id, super::PlayerOp::Stop);
        }
        self.actions
            .push_back(Action::BridgeMedia { peer: call_id });
    }

    /// The other call of the bridge ended: this one hangs up.
    pub(super) fn on_peer_ended(&mut self, call_id: Uuid) {
        let ours = match &self.bridge {
            Bridge::Transferred { peer, .. } => *peer == call_id,
            Bridge::FarLeg { parent } => *parent == call_id,
            Bridge::None => false,
        };
        if ours {
            self.bridge = Bridge::None;
            self.actions.push_back(Action::HangUp);
        }
    }

    /// This call ended: the bridge comes apart and the other call is told.
    pub(super) fn end_bridge(&mut self) {
        let peer = match std::mem::take(&mut self.bridge) {
            Bridge::Transferred { peer, .. } => peer,
            Bridge::FarLeg { parent } => parent,
            Bridge::None => return,
        };
        self.actions.push_back(Action::Unbridge);
        self.actions.push_back(Action::PeerEnded { peer });
    }
}
