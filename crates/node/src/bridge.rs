//! Bridging two calls: `calling.transfer` to a SIP URI or phone number leaves the call's flow,
//! dials the destination as a new call (its `parent_id` is the transferred call) and, once that
//! far leg answers, joins the two calls' audio in one media shard. The caller hears ringback
//! meanwhile. When either call ends, the other is hung up; a far leg that never answers ends
//! the transferred call too (it has no flow left to return to).

use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use control::command::{ControlIdParams, MediaItem, PlayParams};
use control::session::Origin;
use control::{CallCommand, ControlError, DialRequest, Direction, EndReason, LegType};

use crate::actor::{ActorMsg, CallActor};
use crate::shard::ShardCommand;
use crate::NodeInner;
use control::routing;

/// What one call of a bridge tells the other.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PeerEvent {
    /// The far leg answered and its media runs on the transferred call's shard.
    Answered { call_id: Uuid },
    /// The far leg ended (before or after answering).
    Ended {
        call_id: Uuid,
        end_reason: EndReason,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum BridgeRole {
    #[default]
    None,
    /// This call was transferred: `peer` is the far leg, `ringback` plays until it answers.
    Transferred {
        peer: Uuid,
        /// The ringback playback's control_id.
        ringback: Option<String>,
    },
    /// This call is the far leg of a transfer of `parent`.
    FarLeg { parent: Uuid },
}

impl BridgeRole {
    pub(crate) fn is_far_leg(&self) -> bool {
        matches!(self, BridgeRole::FarLeg { .. })
    }
}

impl CallActor {
    /// `calling.transfer` to a SIP URI or E.164 number.
    pub(crate) async fn transfer_to_address(&mut self, dest: &str) -> Result<(), ControlError> {
        if self.bridge != BridgeRole::None {
            return Err(ControlError::invalid_state(
                "invalid_state",
                "the call is already being transferred",
            ));
        }
        let codec = self.media.as_ref().map(|m| m.codec);
        let mut far_actor = self.node.clone().far_leg(
            self.ident.call_id,
            self.media_key,
            &self.ident.from,
            dest,
            codec,
        )?;
        let far = far_actor.ident.call_id;
        // The far leg's states go where the transferred call's go (`created_by: connect`,
        // `parent`: docs/call-lifecycle.md).
        far_actor.record.status_url = self.record.status_url.clone();
        far_actor.record.status_events = self.record.status_events.clone();
        far_actor.request.status_url = self.record.status_url.clone();
        far_actor.ident = far_actor
            .ident
            .clone()
            .child_of(self.ident.call_id, Some(self.ident.leg_type.device_type()));
        self.node
            .store
            .insert_call(far_actor.record.clone())
            .await
            .map_err(|e| {
                warn!(error = %e, "could not store the far leg");
                self.node.unregister(far);
                ControlError::Internal(e.to_string())
            })?;
        far_actor.bridge = BridgeRole::FarLeg {
            parent: self.ident.call_id,
        };
        launch(far_actor);
        info!(far_leg = %far, %dest, "transferring: the flow stops, the far leg is dialled");
        // The call leaves its flow: the script stops, its playback with it.
        self.end_script();
        self.stop_flow_plays(true).await;
        let ringback = format!("ringback-{far}");
        let play = PlayParams::new(
            ringback.clone(),
            vec![MediaItem::Ringtone {
                name: "us".into(),
                duration: None,
                single_cycle: false,
            }],
        );
        if let Err(e) = self.op_command(CallCommand::Play(play), Origin::Rest).await {
            warn!(error = %e, "no ringback");
        }
        self.bridge = BridgeRole::Transferred {
            peer: far,
            ringback: Some(ringback),
        };
        self.call_event("transfer", json!({ "dest": dest, "far_leg": far }))
            .await;
        Ok(())
    }

    /// The far leg of a transfer answered (its media runs on the parent's shard).
    pub(crate) fn far_leg_answered(&mut self) {
        if let BridgeRole::FarLeg { parent } = self.bridge {
            self.node.tell(
                parent,
                ActorMsg::Peer(PeerEvent::Answered {
                    call_id: self.ident.call_id,
                }),
            );
        }
    }

    pub(crate) async fn on_peer_event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::Answered { call_id } => {
                let BridgeRole::Transferred { peer, ringback } = &mut self.bridge else {
                    return;
                };
                if *peer != call_id {
                    return;
                }
                if let Some(control_id) = ringback.take() {
                    let stop = CallCommand::PlayStop(ControlIdParams { control_id });
                    let _ = self.op_command(stop, Origin::Rest).await;
                }
                info!(far_leg = %call_id, "far leg answered; bridging audio");
                self.node.media.send(
                    self.media_key,
                    ShardCommand::Bridge {
                        a: self.ident.call_id,
                        b: call_id,
                    },
                );
            }
            PeerEvent::Ended {
                call_id,
                end_reason,
            } => {
                let ours = match &self.bridge {
                    BridgeRole::Transferred { peer, .. } => *peer == call_id,
                    BridgeRole::FarLeg { parent } => *parent == call_id,
                    BridgeRole::None => false,
                };
                if !ours {
                    return;
                }
                info!(peer = %call_id, end_reason = end_reason.as_str(), "the bridged call ended; hanging up");
                self.bridge = BridgeRole::None;
                let status = self.core.status();
                if !status.is_terminal() && status != control::CallStatus::Ending {
                    self.input(control::call::CallInput::Hangup {
                        reason: EndReason::Hangup,
                    })
                    .await;
                }
            }
        }
    }

    /// This call is ending: tell the other call of its bridge.
    pub(crate) fn end_bridge(&mut self, end_reason: EndReason) {
        let other = match std::mem::take(&mut self.bridge) {
            BridgeRole::Transferred { peer, .. } => peer,
            BridgeRole::FarLeg { parent } => parent,
            BridgeRole::None => return,
        };
        if self.media_running {
            self.node.media.send(
                self.media_key,
                ShardCommand::Unbridge {
                    call_id: self.ident.call_id,
                },
            );
        }
        self.node.tell(
            other,
            ActorMsg::Peer(PeerEvent::Ended {
                call_id: self.ident.call_id,
                end_reason,
            }),
        );
    }
}

impl NodeInner {
    /// The actor of the far leg of a transfer of `parent`, dialling `dest`; its media will
    /// live on the parent's shard (`media_key`). Offers the parent's codec first so no
    /// transcoding is needed when the far end takes it.
    pub(crate) fn far_leg(
        self: std::sync::Arc<Self>,
        parent: Uuid,
        media_key: Uuid,
        from: &str,
        dest: &str,
        parent_codec: Option<sdp::Codec>,
    ) -> Result<CallActor, ControlError> {
        let route = routing::resolve(dest, self.cfg.default_trunk.as_ref(), None, None)
            .map_err(|e| e.to_control("dest"))?;
        let mut codecs = Vec::new();
        if let Some(c) = parent_codec {
            codecs.push(match c {
                sdp::Codec::Pcmu => control::Codec::Pcmu,
                sdp::Codec::Pcma => control::Codec::Pcma,
                sdp::Codec::G722 => control::Codec::G722,
                sdp::Codec::Opus => control::Codec::Opus {
                    rate: 48000,
                    ptime: 20,
                },
            });
        }
        codecs.extend([control::Codec::Pcmu, control::Codec::Pcma]);
        let request = DialRequest {
            from: from.to_string(),
            to: Some(dest.to_string()),
            timeout_secs: 60,
            codecs,
            ..DialRequest::default()
        };
        let call_id = Uuid::new_v4();
        let leg_type = LegType::for_destination(dest);
        let (mut record, ident) =
            self.new_call(call_id, Direction::Outbound, leg_type, &request, dest);
        record.parent_id = Some(parent);
        let inbox = self.register(call_id, record.project_id);
        let mut actor = CallActor::new(ident, request, route, record, self.clone(), inbox);
        actor.media_key = media_key;
        Ok(actor)
    }
}

/// Runs a far leg's actor. A plain function, not async: the actor that transfers must not
/// contain the future of the actor it starts.
fn launch(actor: CallActor) {
    tokio::spawn(actor.run());
}
