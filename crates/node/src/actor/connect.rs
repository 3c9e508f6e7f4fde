//! SWML `connect` on a real call (swml.md §6.6): the plan's stages are dialled one after the
//! other, every destination of a stage at once, each as a child call (`created_by: connect`,
//! `parent`) whose media lives on this call's shard. The first to answer is bridged and the
//! rest get CANCEL (or BYE); the caller hears ringback until then. The script waits until the
//! bridge ends (the far end hung up: the script goes on) or every destination failed.

use serde_json::{json, Value};
use tracing::{info, warn};
use uuid::Uuid;

use control::command::{MediaItem, PlayParams};
use control::session::Origin;
use control::{CallCommand, DialRequest, EndReason, MediaEncryption, StatusEvent};
use swml::{Completion, ConnectDest, ConnectPlan};

use crate::actor::bridge::PeerEvent;
use crate::actor::script::ScriptWait;
use crate::actor::{ActorMsg, CallActor};
use crate::now_ms;
use crate::shard::ShardCommand;

/// A `connect` in progress.
pub(crate) struct Connecting {
    plan: ConnectPlan,
    stage: usize,
    /// This stage's legs still ringing.
    ringing: Vec<Uuid>,
    bridged: Option<Uuid>,
    /// Why the last leg failed (`connect_failed_reason` when all do).
    last_failure: String,
    /// The caller's ringback playback, while dialling.
    ringback: Option<String>,
}

impl CallActor {
    /// The call this one is bridged to, while it is: its `connect`'s, or the agent that took
    /// it from a queue.
    pub(crate) fn bridged_peer(&self) -> Option<Uuid> {
        self.connect
            .as_ref()
            .and_then(|c| c.bridged)
            .or_else(|| self.queue_agent())
    }
}

/// `connect_failed_reason` for a leg that ended unanswered.
fn failure_reason(r: EndReason) -> &'static str {
    match r {
        EndReason::Busy => "busy",
        EndReason::NoAnswer => "no_answer",
        EndReason::Decline => "declined",
        EndReason::NotFound => "not_found",
        _ => "error",
    }
}

impl CallActor {
    /// Starts a `connect`: answers the caller unless `answer_on_bridge`, plays ringback and
    /// dials the first stage. The script waits for [`Completion::Connect`].
    pub(crate) async fn start_connect(&mut self, plan: ConnectPlan) {
        self.script_wait = Some(ScriptWait::Connect);
        if let Some(stream) = plan.stream {
            return self.connect_to_stream(stream).await;
        }
        if self.inbound_unanswered() {
            let started = if plan.answer_on_bridge {
                // Ringback as early media; the answer waits for the far end's.
                self.early_media_inbound().await
            } else {
                self.answer_inbound().await
            };
            if let Err(e) = started {
                warn!(error = %e, "connect: could not answer or ring the caller");
            }
        }
        let ringback = format!("connect-ringback-{}", Uuid::new_v4());
        let items = if plan.ringback.is_empty() {
            vec![MediaItem::us_ring()]
        } else {
            plan.ringback.clone()
        };
        let play = PlayParams::new(ringback.clone(), items);
        let ringback = self
            .ops
            .session
            .handle_command(now_ms(), CallCommand::Play(play), Origin::Rest)
            .ok()
            .map(|()| ringback);
        self.drain_ops().await;
        self.connect = Some(Box::new(Connecting {
            plan,
            stage: 0,
            ringing: Vec::new(),
            bridged: None,
            last_failure: "no_answer".into(),
            ringback,
        }));
        self.connect_event("connecting", None, None).await;
        self.dial_stage().await;
    }

    /// Dials every destination of the current stage; when none could be dialled, the next.
    async fn dial_stage(&mut self) {
        loop {
            let Some(c) = self.connect.as_ref() else {
                return;
            };
            let Some(stage) = c.plan.stages.get(c.stage).cloned() else {
                let reason = c.last_failure.clone();
                self.finish_connect(Err(reason)).await;
                return;
            };
            let mut launched = Vec::new();
            for dest in &stage {
                if let Some(name) = dest.to.strip_prefix("queue:") {
                    match self.take_from_queue(name).await {
                        Ok(caller) => {
                            // Waiting callers are answered already: bridged at once.
                            for leg in launched {
                                self.end_leg(leg);
                            }
                            self.bridged_with(caller).await;
                            return;
                        }
                        Err(reason) => {
                            if let Some(c) = self.connect.as_mut() {
                                c.last_failure = reason.into();
                            }
                        }
                    }
                    continue;
                }
                match self.launch_leg(dest, c_max(&self.connect)).await {
                    Ok(id) => launched.push(id),
                    Err(e) => {
                        warn!(to = %dest.to, error = %e, "connect: destination not dialled");
                        if let Some(c) = self.connect.as_mut() {
                            c.last_failure = "error".into();
                        }
                    }
                }
            }
            let Some(c) = self.connect.as_mut() else {
                return;
            };
            if !launched.is_empty() {
                info!(stage = c.stage, legs = launched.len(), "connect: dialling");
                c.ringing = launched;
                return;
            }
            c.stage += 1;
        }
    }

    /// One far leg of the connect, dialled as a child call of this one.
    async fn launch_leg(&mut self, dest: &ConnectDest, max_duration: u64) -> Result<Uuid, String> {
        let mut codecs: Vec<control::Codec> = Vec::new();
        if let Some(list) = &dest.codecs {
            codecs.extend(list.split(',').filter_map(control::Codec::parse));
        } else if let Some(m) = &self.media {
            // The caller's codec first: no transcoding when the far end takes it.
            codecs.extend(control::Codec::parse(m.codec.encoding_name()));
        }
        let status_events: Vec<StatusEvent> = dest
            .call_state_events
            .iter()
            .filter_map(|e| StatusEvent::parse(e))
            .collect();
        let (swml, url) = match &dest.confirm {
            Some(swml::Confirm::Url(u)) => (None, Some(u.clone())),
            Some(c) => (c.inline_document(), None),
            None => (None, None),
        };
        let request = DialRequest {
            swml,
            url,
            from: dest.from.clone().unwrap_or_else(|| self.ident.from.clone()),
            to: Some(dest.to.clone()),
            timeout_secs: dest.timeout_secs,
            codecs,
            username: dest.username.clone(),
            password: dest.password.clone(),
            encryption: dest.encryption.as_deref().and_then(MediaEncryption::parse),
            headers: dest.headers.clone(),
            from_name: dest.from_name.clone(),
            session_expires_secs: dest.session_timeout_secs,
            status_url: dest.call_state_url.clone(),
            status_events,
            ..DialRequest::default()
        };
        let mut leg = self
            .node
            .clone()
            .child_leg(self.ident.call_id, self.media_key, request)
            .map_err(|e| e.to_string())?;
        let id = leg.ident.call_id;
        leg.ident = leg
            .ident
            .clone()
            .child_of(self.ident.call_id, Some(self.ident.leg_type.device_type()));
        leg.core.handle(
            now_ms(),
            control::call::CallInput::LimitDuration { secs: max_duration },
        );
        if let Err(e) = self.node.store.insert_call(leg.record.clone()).await {
            self.node.unregister(id);
            return Err(format!("could not store the leg: {e}"));
        }
        leg.ops.session.far_leg_of(self.ident.call_id);
        if dest.confirm.is_some() {
            leg.confirming = true;
            // The ring and the confirm script, each its own allowance.
            let secs = u64::from(dest.timeout_secs)
                + u64::from(dest.confirm_timeout_secs.unwrap_or(dest.timeout_secs));
            let node = self.node.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                node.tell(id, ActorMsg::ConfirmTimeout);
            });
        }
        self.node.cfg.metrics.call_setups.with(&["connect"]).inc();
        crate::actor::bridge::launch(leg);
        Ok(id)
    }

    /// A message from one of the connect's legs; false when it is not about one.
    pub(crate) async fn connect_peer_event(&mut self, ev: &PeerEvent) -> bool {
        let Some(c) = self.connect.as_mut() else {
            return false;
        };
        match *ev {
            PeerEvent::Answered { call_id } => {
                if !c.ringing.contains(&call_id) {
                    return false;
                }
                c.ringing.retain(|l| *l != call_id);
                if c.bridged.is_some() {
                    // Lost the race: another leg of the stage is bridged already.
                    self.end_leg(call_id);
                    return true;
                }
                self.bridge_media(call_id);
                self.bridged_with(call_id).await;
                true
            }
            PeerEvent::Ended {
                call_id,
                end_reason,
            } => {
                if c.bridged == Some(call_id) {
                    info!(peer = %call_id, "connect: the far end hung up; the script goes on");
                    self.connect_event("disconnected", Some(call_id), None)
                        .await;
                    self.finish_connect(Ok(())).await;
                    return true;
                }
                if !c.ringing.contains(&call_id) {
                    return false;
                }
                c.ringing.retain(|l| *l != call_id);
                c.last_failure = failure_reason(end_reason).into();
                if c.ringing.is_empty() && c.bridged.is_none() {
                    c.stage += 1;
                    self.dial_stage().await;
                }
                true
            }
            PeerEvent::QueueBridged { .. } => false,
            PeerEvent::Disconnected { call_id } => {
                if c.bridged != Some(call_id) {
                    return false;
                }
                self.connect_disconnected(call_id).await;
                true
            }
        }
    }

    /// `calling.disconnect` (on either call of a connect's bridge): the audio is parted, the
    /// far leg stays up on its own and the caller's script goes on (`connect_result =
    /// connected`). 422 when the call is not bridged by a `connect`.
    pub(crate) async fn disconnect(&mut self) -> Result<(), control::ControlError> {
        if let Some(peer) = self.connect.as_ref().and_then(|c| c.bridged) {
            self.node.tell(
                peer,
                ActorMsg::Peer(PeerEvent::Disconnected {
                    call_id: self.ident.call_id,
                }),
            );
            self.connect_disconnected(peer).await;
            return Ok(());
        }
        if self.queue_disconnect().await {
            return Ok(());
        }
        if let Some(parent) = self.ops.session.bridge_parent() {
            self.ops.session.detach_from(parent);
            self.node.media.send(
                self.media_key,
                ShardCommand::Unbridge {
                    call_id: self.ident.call_id,
                },
            );
            self.node.tell(
                parent,
                ActorMsg::Peer(PeerEvent::Disconnected {
                    call_id: self.ident.call_id,
                }),
            );
            return Ok(());
        }
        Err(control::ControlError::invalid_state(
            "invalid_state",
            "the call is not bridged by a connect",
        ))
    }

    async fn connect_disconnected(&mut self, peer: Uuid) {
        info!(%peer, "connect: disconnected; both calls go on");
        self.node.media.send(
            self.media_key,
            ShardCommand::Unbridge {
                call_id: self.ident.call_id,
            },
        );
        if let Some(c) = self.connect.as_mut() {
            // The far leg is no longer ours to end with the caller.
            c.bridged = None;
        }
        self.connect_event("disconnected", Some(peer), None).await;
        self.finish_connect(Ok(())).await;
    }

    /// A far end is bridged (its audio joined already): the rest of the stage goes, the
    /// ringback stops, the caller is answered if it waited for this.
    async fn bridged_with(&mut self, peer: Uuid) {
        let Some(c) = self.connect.as_mut() else {
            return;
        };
        c.bridged = Some(peer);
        let others = std::mem::take(&mut c.ringing);
        let ringback = c.ringback.take();
        for other in others {
            self.end_leg(other);
        }
        self.stop_play(ringback).await;
        if self.inbound_unanswered() {
            if let Err(e) = self.answer_inbound().await {
                warn!(error = %e, "connect: could not answer the caller");
            }
        }
        info!(%peer, "connect: bridged");
        self.connect_event("connected", Some(peer), None).await;
    }

    /// Tells a leg of the connect to go (CANCEL while ringing, BYE once answered).
    fn end_leg(&self, leg: Uuid) {
        self.node.tell(
            leg,
            ActorMsg::Peer(PeerEvent::Ended {
                call_id: self.ident.call_id,
                end_reason: EndReason::Hangup,
            }),
        );
    }

    /// The connect is over: the script learns how.
    async fn finish_connect(&mut self, outcome: Result<(), String>) {
        if let Err(reason) = &outcome {
            info!(%reason, "connect: no destination was bridged");
            self.connect_event("failed", None, Some(reason)).await;
        }
        let Some(c) = self.connect.take() else {
            return;
        };
        self.stop_play(c.ringback).await;
        if self.script_wait == Some(ScriptWait::Connect) {
            // Boxed: completing runs the script on, which may start another connect.
            Box::pin(self.complete_script(Completion::Connect(outcome))).await;
        }
    }

    /// This far leg's `confirm` script ran to its end without hanging up: the leg is
    /// accepted and its parent bridges it.
    pub(crate) fn confirm_accepted(&mut self) {
        self.confirming = false;
        self.end_script();
        if let Some(parent) = self.ops.session.bridge_parent() {
            info!("connect: the confirm script accepted this leg");
            self.far_leg_answered(parent);
        }
    }

    /// The caller's call ended: every leg of its connect goes too.
    pub(crate) fn end_connect(&mut self) {
        if let Some(c) = self.connect.take() {
            for leg in c.ringing.iter().chain(c.bridged.iter()) {
                self.end_leg(*leg);
            }
        }
    }

    /// A `calling.call.connect` event to the connect's `status_url`.
    async fn connect_event(&self, state: &str, peer: Option<Uuid>, failed_reason: Option<&str>) {
        let Some(url) = self
            .connect
            .as_ref()
            .and_then(|c| c.plan.status_url.clone())
        else {
            return;
        };
        let mut params = json!({
            "connect_state": state,
            "call_id": self.ident.call_id,
            "node_id": self.ident.node_id,
            "segment_id": self.ident.segment_id,
        });
        if let Some(peer) = peer {
            params["peer"] = json!({ "call_id": peer, "node_id": self.ident.node_id });
        }
        if let Some(reason) = failed_reason {
            params["failed_reason"] = Value::String(reason.into());
        }
        let event = self
            .ident
            .envelope("calling.call.connect", now_ms(), params);
        self.node.notify(self.ident.call_id, &url, &event).await;
    }
}

fn c_max(c: &Option<Box<Connecting>>) -> u64 {
    c.as_ref().map_or(0, |c| c.plan.max_duration_secs)
}
