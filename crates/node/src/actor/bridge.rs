//! Bridging two calls: `calling.transfer` to a SIP URI or phone number leaves the call's flow,
//! dials the destination as a new call (its `parent_id` is the transferred call) and, once that
//! far leg answers, joins the two calls' audio in one media shard. The caller hears ringback
//! meanwhile. When either call ends, the other is hung up; a far leg that never answers ends
//! the transferred call too (it has no flow left to return to).

use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use control::{ControlError, DialRequest, Direction, EndReason, LegType};

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
    /// `calling.disconnect`: the bridge came apart, both calls stay up.
    Disconnected { call_id: Uuid },
    /// An agent's `connect` to `queue:` took this queued caller and bridged to it.
    QueueBridged { agent: Uuid },
}

impl CallActor {
    /// `calling.transfer` to a SIP URI or E.164 number.
    pub(crate) async fn transfer_to_address(&mut self, dest: &str) -> Result<(), ControlError> {
        self.ops.session.check_transfer()?;
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
        far_actor.ops.session.far_leg_of(self.ident.call_id);
        launch(far_actor);
        info!(far_leg = %far, %dest, "transferring: the flow stops, the far leg is dialled");
        // The call leaves its flow: the script stops, its playback with it; ringback plays.
        self.end_script();
        self.ops.session.transferred(far, true);
        self.drain_ops().await;
        self.call_event("transfer", json!({ "dest": dest, "far_leg": far }))
            .await;
        Ok(())
    }

    /// Joins this call's audio with `peer`'s (on this call's shard), now or, when this call's
    /// media is not running yet (an answer waiting for its ACK), as soon as it runs.
    pub(crate) fn bridge_media(&mut self, peer: Uuid) {
        if self.media_running {
            self.node.media.send(
                self.media_key,
                ShardCommand::Bridge {
                    a: self.ident.call_id,
                    b: peer,
                },
            );
        } else {
            self.pending_bridge = Some(peer);
        }
    }

    /// Moves this call's media to the shard of `key` (calls joined in one mix must share a
    /// shard); false when it could not be moved (it has no media on its shard any more).
    pub(crate) async fn move_media_to(&mut self, key: Uuid) -> bool {
        if !self.media_running || self.node.media.same_shard(self.media_key, key) {
            self.media_key = key;
            return true;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.node.media.send(
            self.media_key,
            ShardCommand::Export {
                call_id: self.ident.call_id,
                reply: tx,
            },
        );
        let Ok(Some(call)) = rx.await else {
            warn!("the call's media could not be moved to another shard");
            return false;
        };
        self.node.media.send(
            key,
            ShardCommand::Import {
                call_id: self.ident.call_id,
                call,
            },
        );
        self.media_key = key;
        true
    }

    /// The far leg of a transfer answered (its media runs on the parent's shard).
    pub(crate) fn far_leg_answered(&mut self, parent: Uuid) {
        self.node.tell(
            parent,
            ActorMsg::Peer(PeerEvent::Answered {
                call_id: self.ident.call_id,
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
        // Checked here so a bad destination is reported on `dest`.
        routing::resolve(dest, self.cfg.default_trunk.as_ref(), None, None)
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
        self.cfg.metrics.call_setups.with(&["transfer"]).inc();
        self.child_leg(parent, media_key, request)
    }

    /// The actor of a call dialled to be bridged to `parent` (`request.to` is where), its
    /// media on the parent's shard (`media_key`), not started yet.
    pub(crate) fn child_leg(
        self: std::sync::Arc<Self>,
        parent: Uuid,
        media_key: Uuid,
        request: DialRequest,
    ) -> Result<CallActor, ControlError> {
        let dest = request.to.clone().unwrap_or_default();
        let route = routing::resolve(
            &dest,
            self.cfg.default_trunk.as_ref(),
            request.username.as_deref(),
            request.password.as_deref(),
        )
        .map_err(|e| e.to_control("to"))?;
        let call_id = Uuid::new_v4();
        let leg_type = LegType::for_destination(&dest);
        let (mut record, ident) =
            self.new_call(call_id, Direction::Outbound, leg_type, &request, &dest);
        record.parent_id = Some(parent);
        let inbox = self.register(call_id, record.project_id, true)?;
        let mut actor = CallActor::new(ident, request, route, record, self.clone(), inbox);
        actor.media_key = media_key;
        Ok(actor)
    }
}

/// Runs a far leg's actor. A plain function, not async: the actor that transfers must not
/// contain the future of the actor it starts.
pub(crate) fn launch(actor: CallActor) {
    tokio::spawn(actor.run());
}
