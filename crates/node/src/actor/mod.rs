//! One call actor per call: a tokio task that owns the call's signalling state and feeds the pure
//! [`control::call::OutboundCall`] core. Its inbox is one closed enum; it applies one input,
//! executes the core's outputs, then awaits the next input or the core's deadline.

pub(crate) mod ai;
mod bridge;
mod commands;
pub(crate) mod conference;
pub(crate) mod connect;
pub(crate) mod fax;
mod fork;
pub(crate) mod inbound;
mod listen;
mod live;
pub(crate) mod ops;
pub(crate) mod queue;
mod recording;
mod refer;
mod script;
pub(crate) mod script_call;
mod sidecar;
mod t38;
mod translate;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn, Instrument};

use control::call::{CallInput, CallOutput, OutboundCall};
use control::command::UpdateParams;
use control::session::{Origin, SessionEvent};
use control::{CallCommand, CallStatus, CommandOk, ControlError, DialRequest, EndReason};

use crate::actor::script::ScriptWait;
use crate::media_leg;
use crate::shard::{MediaEvent, MediaStats, ShardCommand};
use crate::{now_ms, NodeInner};
use control::routing::Route;
use webhook::events::{CallIdentity, CallTimes};

/// What a call's actor is told. Large payloads are boxed: each of a call's two channels allocates a block of 32 messages
/// when it is made, so the message's size is paid 64 times per call whatever is sent.
pub(crate) enum ActorMsg {
    Command {
        command: Box<CallCommand>,
        reply: oneshot::Sender<Result<CommandOk, ControlError>>,
    },
    /// An event of the call's media; a droppable one holds its place in the node's budget
    /// until handled (queue.rs).
    Media(Box<MediaEvent>, Option<media::queue::Permit>),
    /// The recorder finished one of this call's recordings (its webhook is already queued).
    RecordingDone(Box<RecordingEnded>),
    /// News from the other call of a bridge (`calling.transfer` to a SIP/phone destination).
    Peer(crate::actor::bridge::PeerEvent),
    /// The node is shutting down: hang up.
    Shutdown,
    /// A `connect` far leg's `confirm` ran out of time: hang up unless it was accepted.
    ConfirmTimeout,
    /// An `enter_queue`'s `wait_time` ran out.
    QueueTimeout,
    /// The conference this call waits in started.
    ConferenceStarted,
    /// The conference this call is in ended.
    ConferenceEnded,
    /// An operator muted or unmuted this participant (the registry already says so).
    ConferenceMute(bool),
    /// An operator took this participant out of its conference; its script goes on.
    ConferenceKick,
    /// A task the actor spawned came back ([`TaskSender`]).
    Task(Box<TaskDone>),
}

/// A recording the recorder finished.
pub(crate) struct RecordingEnded {
    pub rec_id: uuid::Uuid,
    pub control_id: String,
    /// The final `calling.call.record` event's `params`.
    pub params: serde_json::Value,
}

/// Where the tasks a call's actor spawns (fetch, synthesis, HTTP, the model) send what they
/// came back with: the actor's own event queue, not a queue of their own — every channel costs
/// a call a block of 32 messages whether it is used or not.
#[derive(Clone)]
pub(crate) struct TaskSender(mpsc::UnboundedSender<ActorMsg>);

impl TaskSender {
    pub(crate) fn new(events: mpsc::UnboundedSender<ActorMsg>) -> TaskSender {
        TaskSender(events)
    }

    /// Fails only when the actor is gone.
    pub(crate) fn send(&self, done: TaskDone) -> Result<(), mpsc::error::SendError<ActorMsg>> {
        self.0.send(ActorMsg::Task(Box::new(done)))
    }
}

/// A call's two queues. Commands (REST requests, shutdown) come on a bounded channel whose
/// senders wait when it is full: backpressure on the API, nothing lost. Events (media, the
/// recorder, the other call of a bridge, the tasks the actor spawned) come on an unbounded
/// one: what an operation or a script waits on is never dropped, and there are few of them
/// (one per operation, key press, verdict or task; droppable media events are bounded by
/// their budget).
pub(crate) struct Inbox {
    pub commands: mpsc::Receiver<ActorMsg>,
    pub events: mpsc::UnboundedReceiver<ActorMsg>,
    /// Sends on `events`: the actor's spawned tasks answer there.
    pub tasks: TaskSender,
    /// The call's JavaScript budget, shared with its `CallEntry` (which cancels it).
    pub js: swml::JsBudget,
}

/// What a task the actor spawned (fetch, synthesis, HTTP) came back with.
pub(crate) enum TaskDone {
    /// A SWML document for the call: the first one, one replacing the running flow (`update`,
    /// `calling.transfer`), or one the script asked for (`execute`/`transfer` URLs).
    Document {
        purpose: DocPurpose,
        result: Result<Value, String>,
    },
    /// The audio of a playback is ready (fetched, decoded, synthesised, resampled).
    PlayReady {
        id: media::playback::PlaybackId,
        result: Result<Vec<media::playback::Source>, String>,
    },
    /// The script's `request` finished.
    Http(Result<swml::HttpResponse, String>),
    /// A REFER (`calling.refer` or `sip_refer`) ended (refer.rs).
    Refer {
        for_script: bool,
        result: swml::ReferResult,
    },
    /// A tap or stream runs: its media ends, to install in the call's shard (fork.rs).
    ForkReady {
        control_id: String,
        parts: Box<crate::actor::fork::ForkParts>,
    },
    /// A tap or stream ended, or could not start.
    ForkEnded { control_id: String, reason: String },
    /// A fax's document is ready, or the fax is over (fax.rs).
    Fax {
        control_id: String,
        task: Box<crate::actor::fax::FaxTask>,
    },
    /// The `ai` agent's model answered (ai.rs).
    Model(Result<swml::ModelReply, String>),
    /// A live translation's injected message, translated (translate.rs).
    TranslationSay {
        text: String,
        language: String,
        to: control::command::CallerLeg,
    },
    /// An AI sidecar's evaluation is over (sidecar.rs).
    Sidecar(Box<sidecar::Evaluated>),
    /// The sidecar's `min_interval_ms` is over: the turns that came meanwhile are evaluated.
    SidecarDue,
    /// The agent's background audio is fetched and decoded (ai.rs); `serial` is
    /// `ops.ai_background` when it was asked for.
    AiBackground {
        serial: u64,
        clip: Result<(Arc<[i16]>, swml::BackgroundAudio), String>,
    },
    /// The model's first words came: its answer is spoken as it streams (ai.rs).
    AiSpeak {
        play: Box<(
            control::command::PlayParams,
            control::command::CollectParams,
        )>,
        feed: mpsc::UnboundedReceiver<String>,
        pronounce: Vec<swml::Pronounce>,
    },
    /// A far end's T.38 offer waited long enough for a fax to start (t38.rs).
    T38OfferWaited { serial: u64 },
    /// The far end answered our offer of the call's audio after T.38 (t38.rs).
    AudioBack {
        local: Box<sdp::LocalMedia>,
        offer: String,
        reply: Result<sip::Reoffer, String>,
    },
}

/// The call's SIP dialog, whichever side placed it.
#[derive(Clone)]
pub(crate) enum SipLeg {
    Outbound(sip::LegHandle),
    Inbound(sip::InboundHandle),
}

impl SipLeg {
    /// Our re-INVITE with a new offer (the switch to T.38 and back).
    pub(crate) async fn reoffer(&self, sdp: String) -> Result<sip::Reoffer, sip::SipError> {
        match self {
            SipLeg::Outbound(h) => h.reoffer(sdp).await,
            SipLeg::Inbound(h) => h.reoffer(sdp).await,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocPurpose {
    Initial,
    Replace,
    Script,
}

/// What a call's actor keeps for the call's life (its task's future holds it). What few calls
/// use (a sidecar, a live transcript, a connect, a queue, a conference, a call to a script) is
/// boxed: ~2 KiB of every call's heap otherwise.
pub(crate) struct CallActor {
    pub ident: CallIdentity,
    pub core: OutboundCall,
    pub request: DialRequest,
    pub route: Route,
    pub record: store::CallRecord,
    pub node: Arc<NodeInner>,
    pub inbox: mpsc::Receiver<ActorMsg>,
    events: mpsc::UnboundedReceiver<ActorMsg>,
    pub(crate) rtp: Option<(u16, UdpSocket)>,
    /// The RTCP socket on the port above, when it was free.
    pub(crate) rtcp: Option<UdpSocket>,
    pub(crate) local: Option<sdp::LocalMedia>,
    pub(crate) local_sdp: Option<String>,
    /// The `a=crypto` lines of our offer (empty: a plain offer).
    offered_crypto: Vec<sdp::Crypto>,
    leg_events: Option<mpsc::Receiver<sip::LegEvent>>,
    leg: Option<sip::LegHandle>,
    /// The INVITE we placed, kept to place it again after a 422 (session timer, RFC 4028).
    last_invite: Option<sip::OutboundInvite>,
    /// Set for inbound calls: the caller's leg, its offer, our answer.
    pub(crate) inbound: Option<crate::actor::inbound::InboundState>,
    pub(crate) in_events: Option<mpsc::Receiver<sip::InboundEvent>>,
    pub(crate) media_running: bool,
    /// The far end holds the call (its SDP takes no audio from us).
    pub(crate) held: bool,
    /// The negotiated media, once answered (its PCM rate is what playback prepares for).
    pub(crate) media: Option<media_leg::NegotiatedMedia>,
    pub(crate) tasks_tx: TaskSender,
    pub(crate) script: Option<swml::Run>,
    pub(crate) script_wait: Option<ScriptWait>,
    /// Every document the call runs spends this one budget.
    pub(crate) js: swml::JsBudget,
    /// The call's operations (control::session) and their I/O handles.
    pub(crate) ops: crate::actor::ops::Ops,
    /// The key that places this call's media on a shard: its own id, or for the far leg of a
    /// bridge the id of the call it is bridged to (bridged media must share one shard).
    pub(crate) media_key: uuid::Uuid,
    /// Why the call ended, once it has (told to the other call of a bridge).
    pub(crate) end_reason: Option<EndReason>,
    /// Set for the two ends of a call to a script: no SIP, RTP straight to this address.
    pub(crate) virtual_media: Option<Box<media_leg::NegotiatedMedia>>,
    pub(crate) recordings: crate::actor::recording::Recordings,
    /// `calling.denoise` is on (the filter is set on the media leg).
    pub(crate) denoising: bool,
    /// `calling.live_transcribe` running on the call (live.rs).
    pub(crate) live: Option<Box<live::LiveTranscript>>,
    /// `calling.ai_sidecar` attached to the call (sidecar.rs).
    pub(crate) sidecar: Option<Box<sidecar::Sidecar>>,
    /// A SWML `connect` dialling or bridged.
    pub(crate) connect: Option<Box<crate::actor::connect::Connecting>>,
    /// This far leg of a `connect` runs its `confirm` script before it is bridged.
    pub(crate) confirming: bool,
    /// The caller waits in a queue (SWML `enter_queue`).
    pub(crate) queued: Option<Box<crate::actor::queue::Queued>>,
    /// A call to bridge with once this call's media runs (it was answered, the ACK is due).
    pub(crate) pending_bridge: Option<uuid::Uuid>,
    /// A conference mix to join once this call's media runs (answered, its ACK still due).
    pub(crate) pending_mix: bool,
    /// The conference this call is in (SWML `join_conference`).
    pub(crate) participant: Option<Box<crate::actor::conference::Participant>>,
    /// A REFER of this call is waiting for its outcome (refer.rs).
    pub(crate) refer_running: bool,
    /// Taps and streams being set up or running: what stops each one's task (fork.rs).
    pub(crate) forks: HashMap<String, tokio::sync::oneshot::Sender<()>>,
    /// Faxes the session started, until they end (fax.rs).
    pub(crate) fax_params: HashMap<String, crate::actor::fax::PendingFax>,
    /// Faxes whose terminal runs on the call's media (fax.rs).
    pub(crate) faxes: HashMap<String, crate::actor::fax::RunningFax>,
    /// A fax terminal ready before the media runs (inbound, the ACK still due); a Mutex only
    /// to keep the actor Sync (the terminal is Send, not Sync).
    pub(crate) deferred_modem:
        std::sync::Mutex<Option<(String, Box<dyn media::listen::FrameModem>)>>,
    /// The call's media is T.38 (UDPTL) since a re-INVITE moved it there (t38.rs).
    pub(crate) t38: Option<t38::T38Mode>,
    /// A far end's T.38 offer waiting for a fax to start, and the count of such waits.
    pub(crate) t38_offer_waiting: Option<t38::WaitingOffer>,
    pub(crate) t38_offer_serial: u64,
    /// Receiving faxes ready before the media runs, to offer T.38 for once it does.
    pub(crate) faxes_awaiting_media: Vec<(String, crate::actor::fax::FaxTask)>,
}

impl CallActor {
    /// The PCM rate of the call's negotiated codec (8 kHz before one is negotiated).
    pub(crate) fn pcm_rate(&self) -> u32 {
        self.media
            .as_ref()
            .map(|m| media_leg::pcm_rate(m.codec))
            .unwrap_or(8000)
    }

    pub fn new(
        ident: CallIdentity,
        request: DialRequest,
        route: Route,
        record: store::CallRecord,
        node: Arc<NodeInner>,
        inbox: Inbox,
    ) -> Self {
        let core = OutboundCall::new(request.timeout_secs);
        let ident_call_id = ident.call_id;
        CallActor {
            ident,
            core,
            request,
            route,
            record,
            node,
            inbox: inbox.commands,
            events: inbox.events,
            rtp: None,
            rtcp: None,
            local: None,
            local_sdp: None,
            offered_crypto: Vec::new(),
            leg_events: None,
            leg: None,
            last_invite: None,
            inbound: None,
            in_events: None,
            media_running: false,
            held: false,
            media: None,
            tasks_tx: inbox.tasks,
            script: None,
            script_wait: None,
            js: inbox.js,
            ops: crate::actor::ops::Ops::default(),
            media_key: ident_call_id,
            end_reason: None,
            virtual_media: None,
            recordings: crate::actor::recording::Recordings::default(),
            denoising: false,
            live: None,
            sidecar: None,
            connect: None,
            confirming: false,
            queued: None,
            pending_bridge: None,
            forks: HashMap::new(),
            fax_params: HashMap::new(),
            faxes: HashMap::new(),
            deferred_modem: std::sync::Mutex::new(None),
            t38: None,
            t38_offer_waiting: None,
            t38_offer_serial: 0,
            faxes_awaiting_media: Vec::new(),
            pending_mix: false,
            participant: None,
            refer_running: false,
        }
    }

    /// The call's task. Not an `async fn`: that would hold the actor twice (its argument and
    /// the moved copy inside), ~4 KiB more per call.
    pub fn run(mut self) -> impl std::future::Future<Output = ()> + Send {
        let span = tracing::info_span!("call", call_id = %self.ident.call_id);
        // Each handler's future is boxed while it runs: the task holds the actor and the
        // select, not the largest of every handler's state machines (~25 KiB per call).
        async move {
            if self.virtual_media.is_some() {
                Box::pin(self.start_virtual()).await;
            } else if self.inbound.is_some() {
                Box::pin(self.input(CallInput::Offered)).await;
                Box::pin(self.offer_inbound()).await;
            } else {
                Box::pin(self.input(CallInput::Start)).await;
            }
            while !self.core.is_finished() {
                let deadline = self.core.poll_timeout();
                let script_deadline = self.script_deadline();
                let ops_deadline = self.ops.session.poll_timeout();
                tokio::select! {
                    ev = recv_opt(&mut self.leg_events) => match ev {
                        Some(ev) => Box::pin(self.on_leg_event(ev)).await,
                        None => {
                            self.leg_events = None;
                            Box::pin(self.input(CallInput::LegTerminated)).await;
                        }
                    },
                    ev = recv_opt(&mut self.in_events) => match ev {
                        Some(ev) => Box::pin(self.on_inbound_event(ev)).await,
                        None => {
                            self.in_events = None;
                            Box::pin(self.input(CallInput::LegTerminated)).await;
                        }
                    },
                    msg = self.inbox.recv() => match msg {
                        Some(msg) => Box::pin(self.on_message(msg)).await,
                        None => {
                            Box::pin(self.input(CallInput::Hangup { reason: EndReason::Hangup })).await
                        }
                    },
                    Some(msg) = self.events.recv() => Box::pin(self.on_message(msg)).await,
                    _ = sleep_until_ms(script_deadline) => Box::pin(self.script_timeout()).await,
                    _ = sleep_until_ms(ops_deadline) => Box::pin(self.op_timeout()).await,
                    _ = sleep_until_ms(deadline) => {
                        self.core.handle_timeout(now_ms());
                        Box::pin(self.drain()).await;
                    }
                }
            }
            self.node.unregister(self.ident.call_id);
        }
        .instrument(span)
    }

    pub(crate) async fn input(&mut self, input: CallInput) {
        self.core.handle(now_ms(), input);
        self.drain().await;
    }

    async fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                CallOutput::PlaceInvite => self.place_invite().await,
                CallOutput::CancelInvite => self.cancel_or_bye(true),
                CallOutput::SendBye => self.cancel_or_bye(false),
                CallOutput::StatusChanged {
                    status,
                    webhook_state,
                } => self.on_status(status, webhook_state).await,
                CallOutput::Finished {
                    status,
                    end_reason,
                    detail,
                } => self.on_finished(status, end_reason, detail).await,
            }
        }
    }

    async fn place_invite(&mut self) {
        let Some((port, (socket, rtcp))) = self.node.allocate_rtp_port() else {
            self.core.handle(
                now_ms(),
                CallInput::Fail {
                    reason: EndReason::Error,
                    detail: "no free RTP port".into(),
                },
            );
            return;
        };
        self.rtp = Some((port, socket));
        self.rtcp = rtcp;
        let local = media_leg::local_media(&self.node.cfg, port, &self.request.codecs);
        let offer = match media_leg::build_offer(&local, self.encryption()) {
            Ok((o, crypto)) => {
                self.offered_crypto = crypto;
                o
            }
            Err(detail) => {
                self.core.handle(
                    now_ms(),
                    CallInput::Fail {
                        reason: EndReason::Error,
                        detail,
                    },
                );
                return;
            }
        };
        self.local = Some(local);
        self.local_sdp = Some(offer.clone());
        let invite = sip::OutboundInvite {
            target: self.route.request_uri.clone(),
            from_uri: control::routing::from_uri(
                &self.request.from,
                self.request.caller_id.as_deref(),
                &self.node.cfg.external_ip.to_string(),
            ),
            from_display: self.request.from_name.clone(),
            to_uri: self.route.to_uri.clone(),
            credentials: match (&self.route.username, &self.route.password) {
                (Some(u), Some(p)) => Some(sip::Credentials {
                    username: u.clone(),
                    password: p.clone(),
                }),
                _ => None,
            },
            sdp_offer: offer,
            extra_headers: self.request.headers.clone(),
            session_expires: self.request.session_expires_secs,
            min_se: None,
            call_id: None,
            call_ref: self.ident.call_id.to_string(),
        };
        self.send_invite(invite).await;
    }

    async fn send_invite(&mut self, invite: sip::OutboundInvite) {
        self.last_invite = Some(invite.clone());
        match self.node.sip.invite(invite).await {
            Ok(leg) => {
                self.leg_events = Some(leg.events);
                self.leg = Some(leg.handle);
                self.core.handle(now_ms(), CallInput::InviteSent);
            }
            Err(e) => {
                warn!(error = %e, "INVITE could not be sent");
                self.node.cfg.metrics.errors.with(&["invite_failed"]).inc();
                self.core.handle(
                    now_ms(),
                    CallInput::Fail {
                        reason: EndReason::Error,
                        detail: format!("INVITE failed: {e}"),
                    },
                );
            }
        }
    }

    fn cancel_or_bye(&mut self, cancel: bool) {
        if let Some(inbound) = self.inbound.as_ref() {
            let handle = inbound.handle.clone();
            // Before answer, "cancel" is our rejection of the caller's INVITE.
            tokio::spawn(async move {
                let res = if cancel {
                    handle.reject(480, "Temporarily Unavailable").await
                } else {
                    handle.hangup().await
                };
                if let Err(e) = res {
                    warn!(error = %e, cancel, "teardown request failed");
                }
            });
            return;
        }
        let Some(leg) = self.leg.clone() else {
            self.core.handle(now_ms(), CallInput::LegTerminated);
            return;
        };
        // The SIP transaction runs on its own; its conclusion comes back as leg events.
        tokio::spawn(async move {
            let res = if cancel {
                leg.cancel().await
            } else {
                leg.hangup().await
            };
            if let Err(e) = res {
                warn!(error = %e, cancel, "teardown request failed");
            }
        });
    }

    async fn on_leg_event(&mut self, ev: sip::LegEvent) {
        match ev {
            sip::LegEvent::Trying => {}
            sip::LegEvent::Ringing { .. } => self.input(CallInput::Ringing).await,
            sip::LegEvent::Answered { sdp } => self.on_answered(sdp).await,
            sip::LegEvent::Failed { code, reason } => {
                info!(code, %reason, "far end rejected the call");
                self.input(CallInput::Rejected { code }).await
            }
            sip::LegEvent::RemoteOffer { sdp, respond } => self.on_remote_offer(sdp, respond).await,
            sip::LegEvent::RemoteBye => self.input(CallInput::RemoteHangup).await,
            sip::LegEvent::SessionExpired => {
                // The leg sends the BYE; the call ends as failed by the session timer.
                self.input(CallInput::Fail {
                    reason: EndReason::Error,
                    detail: "SIP session expired (RFC 4028: no session refresh)".into(),
                })
                .await
            }
            sip::LegEvent::IntervalTooSmall { min_se, call_id } => {
                // 422: once, the same INVITE asking for the far end's minimum (RFC 4028 §7.4).
                let retry = self
                    .last_invite
                    .take()
                    .filter(|i| i.min_se.is_none() && self.core.status().is_pre_answer());
                self.leg_events = None;
                self.leg = None;
                match retry {
                    Some(mut invite) => {
                        info!(
                            min_se,
                            "422 Session Interval Too Small: placing the INVITE again"
                        );
                        invite.session_expires = Some(min_se);
                        invite.min_se = Some(min_se);
                        invite.call_id = Some(call_id);
                        self.send_invite(invite).await;
                    }
                    None => {
                        info!(min_se, "422 Session Interval Too Small again");
                        self.input(CallInput::Rejected { code: 422 }).await;
                        self.input(CallInput::LegTerminated).await
                    }
                }
            }
            sip::LegEvent::Terminated => {
                self.leg_events = None;
                self.input(CallInput::LegTerminated).await
            }
        }
    }

    async fn on_answered(&mut self, sdp: Option<String>) {
        if !self.core.status().is_pre_answer() {
            // A 200 racing our CANCEL, or a retransmission: the core decides.
            self.input(CallInput::Answered).await;
            return;
        }
        // The call is answered only once its media is usable (docs/call-lifecycle.md).
        let negotiated = match (sdp, self.local.as_ref()) {
            (Some(answer), Some(local)) => {
                media_leg::negotiate(local, &answer, &self.offered_crypto, self.encryption())
            }
            (None, _) => Err("200 OK carried no SDP answer".to_string()),
            (_, None) => Err("no local offer".to_string()),
        };
        let started = negotiated.and_then(|session| self.start_media(session));
        if let Err(detail) = started {
            warn!(%detail, "media negotiation failed; hanging up");
            self.input(CallInput::AnsweredUnusable { detail }).await;
            return;
        }
        self.input(CallInput::Answered).await;
        if self.core.status() != CallStatus::Answered {
            return;
        }
        if let Some(parent) = self.ops.session.bridge_parent() {
            if self.confirming {
                // The connect's `confirm` runs first; its end tells the parent.
                info!("connect: running the confirm script on this leg");
                self.start_document_fetch();
            } else {
                self.far_leg_answered(parent);
            }
            return;
        }
        if let Some(digits) = self.request.send_digits.clone() {
            self.node.media.send(
                self.media_key,
                ShardCommand::SendDigits {
                    call_id: self.ident.call_id,
                    digits,
                },
            );
        }
        self.start_document_fetch();
    }

    pub(crate) fn start_media(
        &mut self,
        session: media_leg::NegotiatedMedia,
    ) -> Result<(), String> {
        if self.media_running {
            // Early media already runs it (inbound play before answer).
            return Ok(());
        }
        let Some((_, socket)) = self.rtp.as_ref() else {
            return Err("no RTP socket".into());
        };
        let socket = socket
            .try_clone()
            .map_err(|e| format!("could not clone RTP socket: {e}"))?;
        let leg = media_leg::new_leg(&session, self.ident.call_id)?;
        let srtp = session
            .srtp
            .as_ref()
            .map(media_leg::srtp_session)
            .transpose()?;
        info!(
            codec = ?session.codec,
            remote = %session.remote,
            srtp = ?session.srtp.as_ref().map(|p| p.suite.name()),
            rtcp_mux = session.rtcp_mux,
            "media started"
        );
        self.media = Some(session.clone());
        self.node.media.send(
            self.media_key,
            ShardCommand::Add {
                call_id: self.ident.call_id,
                socket,
                remote: session.remote,
                leg,
                srtp,
                rtcp_mux: session.rtcp_mux,
            },
        );
        if let Some(socket) = self.rtcp.as_ref().and_then(|s| s.try_clone().ok()) {
            self.node.media.send(
                self.media_key,
                ShardCommand::SetRtcpSocket {
                    call_id: self.ident.call_id,
                    socket,
                },
            );
        }
        if !session.sending {
            // The far end answered (or offered) `sendonly`/`inactive`: held from the start.
            info!("the far end takes no audio yet (SDP direction): not sending");
            self.held = true;
            let (store, call_id) = (self.node.store.clone(), self.ident.call_id);
            tokio::spawn(async move {
                if let Err(e) = store.set_held(call_id, true).await {
                    warn!(error = %e, "hold state not stored");
                }
            });
            self.node.media.send(
                self.media_key,
                ShardCommand::SetSending {
                    call_id: self.ident.call_id,
                    sending: false,
                },
            );
        }
        self.media_running = true;
        if let Some(peer) = self.pending_bridge.take() {
            self.bridge_media(peer);
        }
        if std::mem::take(&mut self.pending_mix) {
            self.mix_in();
        }
        for ready in std::mem::take(&mut self.ops.deferred) {
            self.node
                .media
                .send(self.media_key, ready.into_command(self.ident.call_id));
        }
        for (control_id, task) in std::mem::take(&mut self.faxes_awaiting_media) {
            let _ = self.tasks_tx.send(TaskDone::Fax {
                control_id,
                task: Box::new(task),
            });
        }
        let deferred = self.deferred_modem.get_mut().ok().and_then(Option::take);
        if let Some((key, modem)) = deferred {
            self.node.media.send(
                self.media_key,
                ShardCommand::SetModem {
                    call_id: self.ident.call_id,
                    key,
                    modem: Some(modem),
                },
            );
        }
        Ok(())
    }

    pub(crate) async fn on_remote_offer(
        &mut self,
        sdp: Option<String>,
        respond: oneshot::Sender<Result<String, u16>>,
    ) {
        let encryption = self.encryption();
        let current = self.media.as_ref().and_then(|m| m.srtp.clone());
        if self.rtp.is_none() || self.local.is_none() {
            let _ = respond.send(Err(488));
            return;
        }
        let Some(offer) = sdp else {
            // An offerless re-INVITE: offer our current SDP again.
            let _ = respond.send(self.local_sdp.clone().ok_or(488));
            return;
        };
        if sdp::is_t38_offer(&offer) {
            return self.on_t38_offer_or_wait(offer, respond);
        }
        if let Err(code) = self.may_leave_t38() {
            let _ = respond.send(Err(code));
            return;
        }
        let Some(local) = self.local.as_mut() else {
            let _ = respond.send(Err(488));
            return;
        };
        match media_leg::answer_remote_offer(local, &offer, encryption, current.as_ref()) {
            Ok(re) => {
                self.local_sdp = Some(re.sdp.clone());
                info!(
                    sending = re.sending,
                    "far end's offer answered (hold when not sending)"
                );
                let call_id = self.ident.call_id;
                let mut commands = vec![ShardCommand::SetSending {
                    call_id,
                    sending: re.sending,
                }];
                if let Some(remote) = re.remote {
                    commands.push(ShardCommand::SetRemote { call_id, remote });
                }
                match self.srtp_change(current.as_ref(), re.srtp.as_ref()) {
                    Ok(Some(cmd)) => commands.push(cmd),
                    Ok(None) => {}
                    Err(e) => {
                        warn!(error = %e, "re-INVITE keys unusable");
                        let _ = respond.send(Err(488));
                        return;
                    }
                }
                commands.push(ShardCommand::SetRtcpMux {
                    call_id,
                    muxed: re.rtcp_mux,
                });
                if let Some(m) = self.media.as_mut() {
                    m.srtp = re.srtp;
                    m.rtcp_mux = re.rtcp_mux;
                    m.sending = re.sending;
                }
                for cmd in commands {
                    self.node.media.send(self.media_key, cmd);
                }
                let _ = respond.send(Ok(re.sdp));
                self.left_t38();
                if self.held == re.sending {
                    self.held = !re.sending;
                    self.store_held(self.held).await;
                }
            }
            Err(e) => {
                warn!(error = %e, "re-INVITE offer not acceptable");
                let _ = respond.send(Err(488));
            }
        }
    }

    /// The call's SIP dialog, once there is one.
    pub(crate) fn sip_leg(&self) -> Option<SipLeg> {
        match (&self.leg, &self.inbound) {
            (Some(h), _) => Some(SipLeg::Outbound(h.clone())),
            (None, Some(i)) => Some(SipLeg::Inbound(i.handle.clone())),
            (None, None) => None,
        }
    }

    /// The call's SRTP policy: the server's for calls it answers, the dial's (else the
    /// server's default) for calls it places.
    pub(crate) fn encryption(&self) -> sdp::Encryption {
        if self.inbound.is_some() {
            self.node.cfg.inbound_encryption
        } else {
            self.request
                .encryption
                .map_or(self.node.cfg.outbound_encryption, media_leg::encryption_of)
        }
    }

    /// What the shard must change after a re-INVITE settled `new` keys where `old` were
    /// (RFC 4568 §7.1.4): nothing for the same keys, only the far end's context for its new
    /// key, the whole session otherwise.
    fn srtp_change(
        &self,
        old: Option<&sdp::SrtpParams>,
        new: Option<&sdp::SrtpParams>,
    ) -> Result<Option<ShardCommand>, String> {
        let call_id = self.ident.call_id;
        Ok(match (old, new) {
            (None, None) => None,
            (Some(o), Some(n)) if o == n => None,
            (Some(o), Some(n)) if o.local == n.local && o.suite == n.suite => {
                Some(ShardCommand::RekeySrtpRemote {
                    call_id,
                    theirs: media_leg::srtp_key(&n.remote),
                })
            }
            (_, n) => Some(ShardCommand::SetSrtp {
                call_id,
                srtp: n.map(media_leg::srtp_session).transpose()?,
            }),
        })
    }

    /// The body of every SWML fetch for this call (swml.md §3): call, vars, envs, params.
    pub(crate) fn fetch_payload(&self) -> Value {
        let vars = self
            .script
            .as_ref()
            .map(|r| Value::Object(r.vars().clone()))
            .unwrap_or_else(|| json!({}));
        json!({
            "call": self.ident.fetch_call_object(self.core.status().as_str(), Some(&self.route.to_uri)),
            "vars": vars,
            "envs": self.request.custom_variables,
            "params": {},
        })
    }

    /// Fetches `url` (then `fallback`) in a task; the document comes back as
    /// [`TaskDone::Document`].
    pub(crate) fn fetch_document(
        &self,
        purpose: DocPurpose,
        url: String,
        fallback: Option<String>,
        method: control::HttpMethod,
    ) {
        let fetcher = self.node.fetcher.clone();
        let payload = self.fetch_payload();
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let result = match fetcher.fetch_document(&url, method, &payload).await {
                    Ok(doc) => Ok(doc.into_value()),
                    Err(e1) => match fallback {
                        Some(fb) => match fetcher.fetch_document(&fb, method, &payload).await {
                            Ok(doc) => Ok(doc.into_value()),
                            Err(e2) => Err(format!("url: {e1}; fallback_url: {e2}")),
                        },
                        None => Err(format!("url: {e1}")),
                    },
                };
                let _ = tx.send(TaskDone::Document { purpose, result });
            }
            .in_current_span(),
        );
    }

    /// On answer the call's SWML runs: the inline document (validated when the dial was
    /// accepted) or the one fetched from url → fallback_url. A document that cannot be had
    /// fails the call visibly (ambiguity register A15).
    pub(crate) fn start_document_fetch(&mut self) {
        // Taken, not cloned: the call runs its inline document once, and a copy kept for the
        // call's life was ~3 KiB of every call's heap.
        match (self.request.swml.take(), self.request.url.clone()) {
            (Some(doc), _) => {
                let _ = self.tasks_tx.send(TaskDone::Document {
                    purpose: DocPurpose::Initial,
                    result: Ok(doc),
                });
            }
            (None, Some(url)) => self.fetch_document(
                DocPurpose::Initial,
                url,
                self.request.fallback_url.clone(),
                self.request.url_method,
            ),
            (None, None) => {
                // `dial` requires url or swml; a call without either just holds.
                info!("no SWML document; the call holds until hung up");
            }
        }
    }

    async fn on_task(&mut self, done: TaskDone) {
        match done {
            TaskDone::Document { purpose, result } => self.on_document(purpose, result).await,
            TaskDone::PlayReady { id, result } => self.on_play_ready(id, result).await,
            TaskDone::Http(result) => self.complete_script(swml::Completion::Http(result)).await,
            TaskDone::Model(result) => self.on_model_answer(result).await,
            TaskDone::AiSpeak {
                play,
                feed,
                pronounce,
            } => self.start_ai_speech(play, feed, pronounce).await,
            TaskDone::AiBackground { serial, clip } => self.ai_background_ready(serial, clip),
            TaskDone::Sidecar(done) => self.sidecar_evaluated(*done),
            TaskDone::SidecarDue => self.sidecar_due(),
            TaskDone::TranslationSay { text, language, to } => {
                self.say_translation(text, language, to).await
            }
            TaskDone::Refer { for_script, result } => self.on_refer_done(for_script, result).await,
            TaskDone::ForkReady { control_id, parts } => {
                self.on_fork_ready(control_id, parts).await
            }
            TaskDone::ForkEnded { control_id, reason } => {
                self.on_fork_ended(control_id, reason).await
            }
            TaskDone::Fax { control_id, task } => self.on_fax_task(control_id, *task).await,
            TaskDone::AudioBack {
                local,
                offer,
                reply,
            } => self.on_audio_back(*local, offer, reply),
            TaskDone::T38OfferWaited { serial } => self.t38_offer_waited(serial),
        }
    }

    async fn on_document(&mut self, purpose: DocPurpose, result: Result<Value, String>) {
        let status = self.core.status();
        // Inbound calls run their document while ringing (it decides whether to answer).
        let runnable =
            status == CallStatus::Answered || (self.inbound.is_some() && status.is_pre_answer());
        if !runnable {
            return;
        }
        match (purpose, result) {
            (DocPurpose::Initial, Ok(doc)) => self.start_script(doc).await,
            (DocPurpose::Replace, Ok(doc)) => self.replace_script(doc).await,
            (DocPurpose::Script, result) => {
                self.complete_script(swml::Completion::Document(result))
                    .await
            }
            (DocPurpose::Replace, Err(detail)) => {
                warn!(%detail, "replacement SWML document could not be loaded; the flow goes on");
                self.call_event("swml_error", json!({ "error": detail }))
                    .await;
            }
            (DocPurpose::Initial, Err(detail)) => {
                warn!(%detail, "SWML document could not be loaded; ending the call");
                self.call_event("swml_error", json!({ "error": detail }))
                    .await;
                self.input(CallInput::Fail {
                    reason: EndReason::Error,
                    detail,
                })
                .await;
            }
        }
    }

    /// Appends an entry to the call's event log in the store.
    pub(crate) async fn call_event(&self, kind: &str, detail: Value) {
        self.call_event_at(kind, detail, now_ms()).await;
    }

    /// [`CallActor::call_event`] stamped `now`.
    async fn call_event_at(&self, kind: &str, detail: Value, now: u64) {
        let _ = self
            .node
            .store
            .append_call_event(self.ident.call_id, now as i64, kind, detail.to_string())
            .await;
    }

    async fn on_message(&mut self, msg: ActorMsg) {
        match msg {
            ActorMsg::Command { command, reply } => {
                let result = self.on_command(*command).await;
                let _ = reply.send(result);
            }
            // A droppable event's permit is released once it is handled.
            ActorMsg::Media(ev, _permit) => self.on_media_event(*ev).await,
            ActorMsg::Task(done) => Box::pin(self.on_task(*done)).await,
            ActorMsg::Peer(ev) => {
                if self.connect_peer_event(&ev).await || self.queue_peer_event(&ev).await {
                    return;
                }
                let ev = match ev {
                    crate::actor::bridge::PeerEvent::QueueBridged { .. } => return,
                    crate::actor::bridge::PeerEvent::Disconnected { call_id } => {
                        // Our parent parted the bridge: we stay up on our own.
                        self.ops.session.detach_from(call_id);
                        return;
                    }
                    crate::actor::bridge::PeerEvent::Answered { call_id } => {
                        SessionEvent::PeerAnswered { call_id }
                    }
                    crate::actor::bridge::PeerEvent::Ended {
                        call_id,
                        end_reason,
                    } => {
                        info!(peer = %call_id, end_reason = end_reason.as_str(), "the bridged call ended");
                        SessionEvent::PeerEnded { call_id }
                    }
                };
                self.op_event(ev).await
            }
            ActorMsg::RecordingDone(done) => {
                let RecordingEnded {
                    rec_id,
                    control_id,
                    params,
                } = *done;
                self.on_recording_done(rec_id, control_id, params).await
            }
            ActorMsg::ConfirmTimeout if self.confirming => {
                info!("connect: the confirm script ran out of time; this leg fails");
                self.confirming = false;
                self.end_script();
                self.input(CallInput::Hangup {
                    reason: EndReason::Hangup,
                })
                .await
            }
            ActorMsg::ConfirmTimeout => {}
            ActorMsg::QueueTimeout => self.queue_timeout().await,
            ActorMsg::ConferenceStarted => self.conference_started().await,
            ActorMsg::ConferenceEnded => self.conference_ended().await,
            ActorMsg::ConferenceMute(muted) => self.conference_mute(muted).await,
            ActorMsg::ConferenceKick => self.conference_kick().await,
            ActorMsg::Shutdown => {
                self.input(CallInput::Hangup {
                    reason: EndReason::Hangup,
                })
                .await
            }
        }
    }

    async fn on_media_event(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::DigitsSent => self.on_digits_sent(Ok(())).await,
            MediaEvent::DigitsFailed(e) => self.on_digits_sent(Err(e)).await,
            MediaEvent::Play(ev) => {
                use control::session::PlayerEvent as Ev;
                use media::playback::PlayerEvent as Media;
                let ev = match ev {
                    Media::Playing(id) => Ev::Playing(id),
                    Media::Paused(id) => Ev::Paused(id),
                    Media::Resumed(id) => Ev::Resumed(id),
                    Media::Finished(id) => Ev::Finished(id),
                    Media::Stopped(id) => Ev::Stopped(id),
                    Media::Error { id, message } => Ev::Error { id, message },
                };
                self.op_event(SessionEvent::Player(ev)).await
            }
            MediaEvent::Digit(d) => self.op_event(SessionEvent::Digit(d)).await,
            MediaEvent::Listener(ev) => self.on_listener_event(ev).await,
            // Only while the media runs: the final stats, once stored, stay.
            MediaEvent::Stats(stats) if self.media_running => {
                self.store_media_stats(&stats, false, now_ms()).await
            }
            MediaEvent::Stats(_) => {}
        }
    }

    /// The call's media statistics on its record (`GET /api/calling/calls/{id}`).
    async fn store_media_stats(&self, stats: &MediaStats, is_final: bool, now: u64) {
        let report = media_report(stats, is_final, now);
        let Ok(json) = serde_json::to_string(&report) else {
            return;
        };
        if let Err(e) = self
            .node
            .store
            .set_media_stats(self.ident.call_id, json)
            .await
        {
            warn!(error = %e, "media stats not stored");
        }
    }

    /// Whether the far end holds the call, on its record and in the log.
    async fn store_held(&self, held: bool) {
        if held {
            info!("call held by the far end (its SDP takes no audio): not sending");
        } else {
            info!("call resumed by the far end: sending");
        }
        if let Err(e) = self.node.store.set_held(self.ident.call_id, held).await {
            warn!(error = %e, "hold state not stored");
        }
    }

    async fn on_command(&mut self, command: CallCommand) -> Result<CommandOk, ControlError> {
        let span = tracing::info_span!("command", name = command.name());
        self.run_command(command).instrument(span).await
    }

    async fn run_command(&mut self, command: CallCommand) -> Result<CommandOk, ControlError> {
        let status = self.core.status();
        match command {
            CallCommand::End(control::command::EndParams { reason }) => {
                if status.is_terminal() || status == CallStatus::Ending {
                    return Err(ControlError::invalid_state(
                        "invalid_state",
                        "the call is already ending",
                    ));
                }
                // Before answer the default reason is `cancel` (docs/call-lifecycle.md).
                let reason = if status.is_pre_answer() && reason == EndReason::Hangup {
                    EndReason::Cancel
                } else {
                    reason
                };
                self.input(CallInput::Hangup { reason }).await;
            }
            CallCommand::Update(params) => self.on_update(status, params).await?,
            other => return self.on_call_command(status, other, Origin::Rest).await,
        }
        Ok(CommandOk::leg(self.snapshot_record().leg()))
    }

    async fn on_update(&mut self, status: CallStatus, p: UpdateParams) -> Result<(), ControlError> {
        p.check(status)?;
        if let Some(url) = p.status_url {
            self.record.status_url = Some(url);
        }
        if let Some(doc) = p.swml {
            let doc = crate::fetch::load_document("swml", doc)?;
            self.replace_script(doc).await;
        } else if let Some(url) = p.url {
            self.fetch_document(
                crate::actor::DocPurpose::Replace,
                url,
                p.fallback_url,
                control::HttpMethod::Post,
            );
        }
        match p.status {
            Some(CallStatus::Canceled) => self.input(CallInput::Cancel).await,
            Some(CallStatus::Completed) => {
                self.input(CallInput::Hangup {
                    reason: EndReason::Hangup,
                })
                .await
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn snapshot_record(&self) -> store::CallRecord {
        let mut r = self.record.clone();
        r.status = self.core.status().as_str().to_string();
        r
    }

    fn times(&self) -> CallTimes {
        CallTimes {
            start_ms: self.record.created_at_ms as u64,
            answer_ms: self.core.answered_at(),
            end_ms: self.core.ended_at(),
        }
    }

    async fn on_status(&mut self, status: CallStatus, webhook_state: Option<&'static str>) {
        let now = now_ms();
        self.record.status = status.as_str().to_string();
        if status == CallStatus::Answered {
            self.record.answered_at_ms = self.core.answered_at().map(|t| t as i64);
            if self.inbound.is_none() && self.virtual_media.is_none() {
                let waited = now.saturating_sub(self.record.created_at_ms.max(0) as u64);
                self.node
                    .cfg
                    .metrics
                    .dial_answer
                    .observe_secs(waited as f64 / 1000.0);
            }
        }
        if status == CallStatus::Initiated {
            // The status before the INVITE is not waited for, like the row itself: the INVITE
            // leaves now, the writes are in the next group commit (docs/call-lifecycle.md,
            // "Durability").
            self.persist_behind(status.as_str(), now);
        } else {
            self.persist(status.as_str(), now).await;
        }
        if status == CallStatus::Answered {
            self.save_dialog(now).await;
        }
        if let Some(state) = webhook_state {
            let ev = self.ident.state_event(state, None, self.times(), now);
            self.node.notify_state(&self.record, state, &ev).await;
        }
    }

    async fn on_finished(
        &mut self,
        status: CallStatus,
        end_reason: EndReason,
        detail: Option<String>,
    ) {
        let now = now_ms();
        self.end_script();
        self.end_reason = Some(end_reason);
        self.end_connect();
        self.end_queue();
        self.leave_conference().await;
        self.stop_live(true).await;
        let _ = self.stop_sidecar("transcribe_close").await;
        self.end_ops().await;
        if self.media_running {
            let (tx, rx) = oneshot::channel();
            self.node.media.send(
                self.media_key,
                ShardCommand::Remove {
                    call_id: self.ident.call_id,
                    reply: Some(tx),
                },
            );
            if let Ok(Ok(stats)) = tokio::time::timeout(Duration::from_secs(1), rx).await {
                info!(
                    sent = stats.packets_sent,
                    received = stats.packets_received,
                    lost = stats.packets_lost,
                    garbage = stats.garbage_received,
                    rejected = stats.packets_rejected,
                    "media stats"
                );
                let m = &self.node.cfg.metrics;
                m.rtp_dropped.with(&["in"]).add(stats.packets_lost);
                m.rtp_rejected.add(stats.garbage_received);
                let detail = json!({
                    "packets_sent": stats.packets_sent,
                    "packets_received": stats.packets_received,
                    "packets_lost": stats.packets_lost,
                    "garbage_received": stats.garbage_received,
                    "packets_rejected": stats.packets_rejected,
                    "srtp": self.media.as_ref().and_then(|m| m.srtp.as_ref()).map(|p| p.suite.name()),
                    "srtp_rejected": stats.srtp_rejected,
                    "rtcp_mux": self.media.as_ref().is_some_and(|m| m.rtcp_mux),
                    "rtcp": {
                        "reports_sent": stats.rtcp.reports_sent,
                        "reports_received": stats.rtcp.reports_received,
                        "rtt_ms": stats.rtcp.rtt_ms,
                        "remote_fraction_lost": stats.rtcp.remote_fraction_lost,
                        "remote_packets_lost": stats.rtcp.remote_packets_lost,
                        "remote_jitter": stats.rtcp.remote_jitter,
                    },
                });
                self.call_event_at("media_stats", detail, now).await;
                self.store_media_stats(&stats, true, now).await;
            }
            self.media_running = false;
        }
        if let Some((port, _)) = self.rtp.take() {
            self.node.ports.release(port);
        }
        self.record.status = status.as_str().to_string();
        self.record.ended_at_ms = Some(now as i64);
        self.record.end_reason = Some(end_reason.as_str().to_string());
        if let Some(answered) = self.core.answered_at() {
            let d = now.saturating_sub(answered) as i64;
            self.record.duration_ms = Some(d);
            self.record.billing_ms = Some(d);
        }
        let m = &self.node.cfg.metrics;
        m.calls_ended.with(&[end_reason.as_str()]).inc();
        if end_reason == EndReason::Error {
            m.errors.with(&["call_error"]).inc();
        }
        info!(
            status = status.as_str(),
            end_reason = end_reason.as_str(),
            detail = detail.as_deref().unwrap_or(""),
            "call finished"
        );
        // The `ended` webhook is queued ahead of the `ended` status, so it is committed with it
        // or before it: whoever sees the call ended can rely on its webhook (a crash after the
        // status was written can no longer lose it); it is sent once the status is written.
        let ev = self
            .ident
            .state_event("ended", Some(end_reason), self.times(), now);
        let queued = self.node.notify_state_behind(&self.record, "ended", &ev);
        self.persist(status.as_str(), now).await;
        if queued {
            self.node.kick_delivery();
        }
        if self.record.answered_at_ms.is_some() {
            let _ = self.node.store.forget_dialog(self.ident.call_id).await;
        }
    }

    /// Keeps the answered call's SIP dialog in the store until it ends, so that a start
    /// after a crash can send the far end a BYE (`NodeInner::end_dialogs_left_up`).
    async fn save_dialog(&self, now: u64) {
        let saved = match (&self.leg, &self.inbound) {
            (Some(leg), _) => leg.saved_dialog(),
            (None, Some(inbound)) => inbound.handle.saved_dialog(),
            (None, None) => None,
        };
        let Some(text) = saved.and_then(|d| d.encode().ok()) else {
            return;
        };
        let saved = self
            .node
            .store
            .save_dialog(self.ident.call_id, text, now as i64);
        if let Err(e) = saved.await {
            warn!(error = %e, "could not keep the call's SIP dialog");
        }
    }

    /// [`Self::persist`] without waiting for the disk.
    fn persist_behind(&mut self, kind: &str, now: u64) {
        let store = &self.node.store;
        store.update_call_behind(self.record.clone());
        let detail = json!({"status": self.record.status});
        store.append_call_event_behind(self.ident.call_id, now as i64, kind, detail.to_string());
    }

    async fn persist(&mut self, kind: &str, now: u64) {
        if let Err(e) = self.node.store.update_call(self.record.clone()).await {
            warn!(error = %e, "could not persist call");
            self.node.cfg.metrics.errors.with(&["store_write"]).inc();
        }
        let detail = json!({"status": self.record.status});
        self.call_event_at(kind, detail, now).await;
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_ms(deadline: Option<u64>) {
    match deadline {
        Some(at) => {
            let now = now_ms();
            tokio::time::sleep(Duration::from_millis(at.saturating_sub(now))).await
        }
        None => std::future::pending().await,
    }
}

/// A call's media counters as its record shows them (`control::MediaReport`).
fn media_report(s: &MediaStats, is_final: bool, now_ms: u64) -> control::MediaReport {
    let updated_at = chrono::DateTime::from_timestamp_millis(now_ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    control::MediaReport {
        is_final,
        updated_at,
        packets_sent: s.packets_sent,
        packets_received: s.packets_received,
        packets_lost: s.packets_lost,
        jitter_ms: s.jitter_ms(),
        rtcp_received: s.rtcp.reports_received > 0,
        rtcp_reports_sent: s.rtcp.reports_sent,
        rtcp_reports_received: s.rtcp.reports_received,
        rtt_ms: s.rtcp.rtt_ms,
        remote_packets_lost: s.rtcp.remote_packets_lost.map(i64::from),
        remote_fraction_lost: s.remote_fraction_lost(),
        remote_jitter_ms: s.remote_jitter_ms(),
    }
}

#[cfg(test)]
mod sizes {
    /// Each call's two channels allocate 32 messages up front: the message stays small (large
    /// payloads boxed), so an idle call's queues cost ~2 KiB and not ~15.
    #[test]
    fn actor_messages_stay_small() {
        assert!(std::mem::size_of::<super::ActorMsg>() <= 32);
        assert!(std::mem::size_of::<super::TaskDone>() <= 96);
    }
}
