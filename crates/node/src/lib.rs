//! The dialtone node: the runtime that owns calls. It runs the SIP endpoint, the media shards,
//! one actor per call, webhook delivery and the store, and implements [`control::CallControl`]
//! for the REST API (and later SWML and the bus).
//!
//! No global state: everything a node owns hangs off [`Node`], so several nodes can run in one
//! process (tests) and, later, one node per host behind a proxy.

mod actor;
pub mod config;
mod eval;
pub mod fetch;
mod fork;
mod media_leg;
pub mod ports;
pub mod prepare;
pub mod shard;
pub mod shard_io;
mod thread_priority;
mod transcribe;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use uuid::Uuid;

use control::{
    CallControl, CallFilter, CallLeg, CallPage, CallStatus, CommandOk, ControlError, DialRequest,
    Direction, EndReason, LegType, StatusEvent,
};

use crate::actor::{ActorMsg, CallActor, Inbox};
pub use crate::config::NodeConfig;
use crate::fetch::Fetcher;
use crate::ports::PortPool;
use crate::shard::MediaShards;
use webhook::events::{self, CallIdentity, CallTimes};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("store: {0}")]
    Store(String),
    #[error("SIP: {0}")]
    Sip(String),
    #[error("media: {0}")]
    Media(#[from] std::io::Error),
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Milliseconds since the Unix epoch: the wall clock of the I/O edge, passed into the cores.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) struct CallEntry {
    project_id: Uuid,
    /// Commands: bounded, senders wait (backpressure).
    inbox: mpsc::Sender<ActorMsg>,
    /// Events for the call: unbounded, never dropped (actor.rs `Inbox`).
    events: mpsc::UnboundedSender<ActorMsg>,
    /// The call's JavaScript budget: cancelled when the call is ended, so a script step
    /// running on the evaluator pool stops at once.
    js: swml::JsBudget,
}

/// Commands a call's actor holds before a sender has to wait.
const COMMAND_QUEUE: usize = 64;

pub(crate) struct NodeInner {
    pub cfg: NodeConfig,
    pub store: store::Store,
    pub delivery: webhook::DeliveryHandle,
    pub sip: sip::SipEndpoint,
    pub media: MediaShards,
    pub ports: PortPool,
    pub fetcher: Fetcher,
    pub prep: prepare::MediaPrep,
    /// For SWML `request`, under the egress policy.
    pub http: egress::EgressClient,
    /// Connects the WebSockets of taps and streams (egress policy, TLS trust).
    pub(crate) ws: fork::ws::WsConnector,
    /// Whole-call transcription's engine, started on first use (transcribe.rs).
    pub(crate) transcriber: tokio::sync::OnceCell<transcribe::Engine>,
    pub recorder: record::writer::RecorderHandle,
    /// Where recordings are written, uploaded and served from.
    pub storage: storage::Recordings,
    /// Speech recognition for collects (one worker thread, one engine per node).
    pub speech: asr::listener::SpeechWorker,
    /// Where SWML steps (and their JavaScript) run, off the async runtime.
    pub(crate) eval: eval::ScriptPool,
    /// The `ai` agent's model backend, when one is configured.
    pub(crate) model: Option<Arc<dyn llm::ChatBackend>>,
    calls: Mutex<HashMap<Uuid, CallEntry>>,
    /// This node's call queues (SWML `enter_queue`, `connect` to `queue:`). Scaling out
    /// will move them to the shared store; callers and agents must be on one node today.
    pub(crate) queues: Mutex<control::queue::Queues>,
    /// This node's conferences (SWML `join_conference`); their audio is mixed on one shard.
    pub(crate) conferences: Mutex<control::conference::Conferences>,
    /// Set by [`Node::begin_drain`]: new calls are refused (503).
    draining: AtomicBool,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

impl Node {
    /// Opens the store, ends calls a previous process left live, and starts webhook delivery,
    /// the SIP endpoint and the media shards.
    pub async fn start(cfg: NodeConfig) -> Result<Node, NodeError> {
        let asr_command = cfg.asr_command.clone();
        std::fs::create_dir_all(&cfg.data_dir)?;
        let egress_policy = Arc::new(cfg.egress.clone());
        tracing::info!(mode = %cfg.egress.mode, allow = ?cfg.egress.allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
            deny = ?cfg.egress.deny.iter().map(ToString::to_string).collect::<Vec<_>>(), "egress policy");
        let store = store::Store::open(cfg.data_dir.join("dialtone.db"))
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
        let delivery = webhook::WebhookDelivery::spawn(
            store.clone(),
            webhook::DeliveryConfig {
                signing_key: cfg.signing_key.as_bytes().to_vec(),
                timeout: cfg.webhook_timeout,
                backoff: cfg.webhook_backoff.clone(),
                retry: cfg.webhook_retry.clone(),
                per_destination: cfg.webhook_per_destination,
                retention: cfg.webhook_retention.clone(),
                user_agent: cfg.user_agent.clone(),
                egress: egress_policy.clone(),
                ..webhook::DeliveryConfig::default()
            },
        );
        let (sip, incoming) = sip::SipEndpoint::start_with(
            sip::SipConfig {
                listen: cfg.sip_listen,
                external_ip: cfg.external_ip,
                user_agent: cfg.user_agent.clone(),
            },
            sip::SipOptions {
                tcp: cfg.sip_tcp.clone(),
                tls: cfg.sip_tls.clone(),
                tls_ca_pem: cfg.sip_tls_ca_pem.clone(),
                ..sip::SipOptions::default()
            },
        )
        .await
        .map_err(|e| NodeError::Sip(e.to_string()))?;
        let (media_tx, media_rx) = shard::EventSink::new(shard::DROPPABLE_EVENTS_IN_FLIGHT);
        let media = MediaShards::start_with_io(
            cfg.media_shards,
            media_tx,
            cfg.rtp_latch,
            cfg.metrics.clone(),
            cfg.media_io,
            cfg.media_thread_nice,
        )?;
        let fetcher = Fetcher::new(
            &cfg.signing_key,
            cfg.swml_fetch_timeout,
            cfg.swml_max_bytes,
            &cfg.user_agent,
            egress_policy.clone(),
        )
        .map_err(|e| NodeError::Http(e.to_string()))?;
        let ports = PortPool::new(cfg.rtp_ports.0, cfg.rtp_ports.1);
        let prep = prepare::MediaPrep::new(
            audio::AudioFetcher::new(audio::FetchConfig {
                timeout: cfg.swml_fetch_timeout,
                max_bytes: cfg.audio_max_bytes,
                max_ms: cfg.audio_max_seconds.saturating_mul(1000),
                user_agent: cfg.user_agent.clone(),
                egress: egress_policy.clone(),
                ..audio::FetchConfig::default()
            }),
            start_tts(),
        );
        let ws = fork::ws::WsConnector::new(cfg.egress.clone(), cfg.ws_ca_pem.as_deref())
            .map_err(NodeError::Http)?;
        let http = egress::EgressClient::new(
            egress_policy,
            egress::ClientOptions {
                purpose: "swml request",
                user_agent: Some(cfg.user_agent.clone()),
                max_redirects: 3,
                ..egress::ClientOptions::default()
            },
        )
        .map_err(|e| NodeError::Http(e.to_string()))?;
        // The operator's own bucket: not a user-supplied URL, so no egress policy.
        let s3_http = reqwest::Client::builder()
            .user_agent(&cfg.user_agent)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let storage =
            storage::Recordings::new(cfg.data_dir.join("recordings"), cfg.s3.clone(), s3_http);
        repair_all(storage.dir());
        let (rec_done_tx, mut rec_done_rx) = mpsc::unbounded_channel();
        let recorder = record::writer::RecorderHandle::start(rec_done_tx)?;
        let eval = eval::ScriptPool::start(cfg.script_threads)?;
        let model = cfg.ai.as_ref().and_then(|ai| {
            let mut backend = llm::BackendConfig::new(ai.base_url.clone(), ai.model.clone());
            backend.api_key = ai.api_key.clone();
            match llm::OpenAiClient::new(backend) {
                Ok(client) => {
                    tracing::info!(base_url = %ai.base_url, model = %ai.model, "ai model backend");
                    Some(Arc::new(client) as Arc<dyn llm::ChatBackend>)
                }
                Err(e) => {
                    tracing::error!(error = %e, "ai model backend unusable; `ai` steps will say so");
                    None
                }
            }
        });
        let inner = Arc::new(NodeInner {
            cfg,
            store,
            delivery,
            sip,
            media,
            ports,
            fetcher,
            prep,
            http,
            ws,
            transcriber: tokio::sync::OnceCell::new(),
            recorder,
            storage,
            speech: asr::listener::SpeechWorker::start(move || start_asr(asr_command)),
            eval,
            model,
            calls: Mutex::new(HashMap::new()),
            queues: Mutex::new(control::queue::Queues::default()),
            conferences: Mutex::new(control::conference::Conferences::default()),
            draining: AtomicBool::new(false),
        });
        inner.recover_after_restart().await;
        for (project, rec_id, format) in inner.storage.leftovers() {
            let storage = inner.storage.clone();
            tokio::spawn(async move { storage.upload(project, rec_id, format).await });
        }
        // Recordings end on the recorder thread: queue their webhook, tell the call if alive.
        let weak_rec = Arc::downgrade(&inner);
        tokio::spawn(async move {
            while let Some(done) = rec_done_rx.recv().await {
                let Some(inner) = weak_rec.upgrade() else {
                    break;
                };
                let (call_id, rec_id) = (done.call_id, done.rec_id);
                let control_id = done.meta.control_id.clone();
                let upload = record::Format::from_name(&done.meta.format)
                    .filter(|_| done.playable)
                    .map(|f| (done.meta.project_id, f));
                if done.gap_ms > 0 {
                    let gap = serde_json::json!({
                        "recording_id": rec_id, "control_id": control_id, "gap_ms": done.gap_ms,
                    });
                    let _ = inner
                        .store
                        .append_call_event(
                            done.meta.conference.as_ref().map_or(call_id, |c| c.call_id),
                            now_ms() as i64,
                            "recording_gap",
                            gap.to_string(),
                        )
                        .await;
                }
                inner.cfg.metrics.recordings_active.dec();
                // A transcription's recording: transcribed now that it ended.
                let transcript =
                    done.meta
                        .transcript
                        .clone()
                        .map(|target| transcribe::TranscriptJob {
                            call_id,
                            project_id: done.meta.project_id,
                            path: inner.storage.path(
                                done.meta.project_id,
                                rec_id,
                                record::Format::Wav,
                            ),
                            playable: done.playable,
                            target,
                        });
                let params = inner.recording_done(done).await;
                if let Some(job) = transcript {
                    tokio::spawn(inner.clone().transcribe_recording(job));
                }
                if let Some((project, format)) = upload {
                    let storage = inner.storage.clone();
                    tokio::spawn(async move { storage.upload(project, rec_id, format).await });
                }
                inner.tell(
                    call_id,
                    ActorMsg::RecordingDone(Box::new(crate::actor::RecordingEnded {
                        rec_id,
                        control_id,
                        params: params.unwrap_or_default(),
                    })),
                );
            }
        });
        // Inbound INVITEs become calls (or 404s) through the routes.
        let weak_in = Arc::downgrade(&inner);
        let mut incoming = incoming;
        tokio::spawn(async move {
            while let Some(call) = incoming.recv().await {
                let Some(inner) = weak_in.upgrade() else {
                    break;
                };
                #[allow(unreachable_patterns)] // IncomingCall is non_exhaustive
                let sip::IncomingCall::Invite { invite, leg } = call
                else {
                    continue;
                };
                inner.accept_inbound(invite, leg).await;
            }
        });
        // Media events go to the call that owns them (never dropped on the way).
        let weak = Arc::downgrade(&inner);
        tokio::spawn(route_media_events(media_rx, move |call_id, msg| {
            weak.upgrade().map(|inner| {
                inner.tell(call_id, msg);
            })
        }));
        Ok(Node { inner })
    }

    pub fn sip_addr(&self) -> std::net::SocketAddr {
        self.inner.sip.local_addr()
    }

    pub fn live_calls(&self) -> usize {
        self.inner.calls.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Stop taking calls (API and SIP answer 503 `draining`); live calls go on.
    pub fn begin_drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    pub fn max_calls(&self) -> usize {
        self.inner.cfg.max_calls
    }

    pub fn rtp_ports_free(&self) -> usize {
        self.inner.ports.free()
    }

    pub fn metrics(&self) -> &Arc<metrics::Metrics> {
        &self.inner.cfg.metrics
    }

    /// Whether the node's own store connection answers (within `limit`).
    pub async fn store_up(&self, limit: std::time::Duration) -> bool {
        matches!(
            tokio::time::timeout(limit, self.inner.store.schema_version()).await,
            Ok(Ok(_))
        )
    }

    /// Whether the SIP endpoint serves and every media shard thread runs.
    pub fn sip_and_media_up(&self) -> (bool, bool) {
        (self.inner.sip.is_running(), self.inner.media.all_running())
    }

    /// Webhooks delivered, rescheduled and given up since the start.
    pub fn webhook_stats(&self) -> webhook::DeliveryStats {
        self.inner.delivery.stats()
    }

    /// Hangs up every live call, waits for them to finish (bounded), stops SIP and media.
    pub async fn shutdown(&self) {
        self.shutdown_flushing(std::time::Duration::ZERO).await
    }

    /// [`Node::shutdown`], and before webhook delivery stops, waits up to `flush` for the
    /// outbox to empty (the calls' final webhooks); a webhook whose next attempt is due only
    /// after that is left for the next start.
    pub async fn shutdown_flushing(&self, flush: std::time::Duration) {
        let inboxes: Vec<_> = match self.inner.calls.lock() {
            Ok(c) => c
                .values()
                .map(|e| {
                    e.js.cancel();
                    e.inbox.clone()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        for tx in inboxes {
            let _ = tx.send(ActorMsg::Shutdown).await;
        }
        for _ in 0..50 {
            if self.live_calls() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.inner.sip.shutdown().await;
        self.inner.media.shutdown();
        // Recordings still open are finished (their files get their final header).
        self.inner
            .recorder
            .send(record::writer::RecorderInput::Shutdown);
        let deadline = tokio::time::Instant::now() + flush;
        let last_due = now_ms().saturating_add(flush.as_millis() as u64) as i64;
        while tokio::time::Instant::now() < deadline {
            match self.inner.store.next_webhook_due_at().await {
                Ok(Some(due)) if due <= last_due => {}
                _ => break,
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.inner.delivery.shutdown().await;
    }
}

impl NodeInner {
    /// The stored record and the event identity of a new call of this node's project.
    pub(crate) fn new_call(
        &self,
        call_id: Uuid,
        direction: Direction,
        leg_type: LegType,
        request: &DialRequest,
        to: &str,
    ) -> (store::CallRecord, CallIdentity) {
        let segment_id = Uuid::new_v4();
        let event_channel = format!("swml:{}", Uuid::new_v4());
        let status_events = if request.status_events.is_empty() {
            vec![StatusEvent::Ended]
        } else {
            request.status_events.clone()
        };
        let record = store::CallRecord {
            id: call_id,
            project_id: self.cfg.project_id,
            node_id: self.cfg.node_id,
            segment_id,
            event_channel: event_channel.clone(),
            from: request.from.clone(),
            to: to.to_string(),
            direction: direction.as_str().into(),
            leg_type: store::leg_type_name(leg_type).into(),
            url: request.url.clone(),
            status: CallStatus::Queued.as_str().into(),
            parent_id: None,
            created_at_ms: now_ms() as i64,
            answered_at_ms: None,
            ended_at_ms: None,
            end_reason: None,
            duration_ms: None,
            billing_ms: None,
            status_url: request.status_url.clone(),
            status_events: serde_json::to_string(
                &status_events.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            )
            .unwrap_or_else(|_| "[]".into()),
            dial_request: dial_request_json(request).to_string(),
            sip_call_id: None,
            media_stats: None,
            held: false,
        };
        let ident = CallIdentity {
            call_id,
            project_id: self.cfg.project_id,
            space_id: self.cfg.space_id,
            node_id: self.cfg.node_id,
            segment_id,
            event_channel,
            direction,
            leg_type,
            from: request.from.clone(),
            to: to.to_string(),
            created_by: events::CreatedBy::of(direction, false),
            parent: None,
        };
        (record, ident)
    }

    /// A free even RTP port of the configured range, bound non-blocking on the SIP address.
    /// An even RTP port and its socket, with the RTCP socket on the port above when that one
    /// is free too (RTCP is then simply not sent).
    pub(crate) fn allocate_rtp_port(&self) -> Option<(u16, (UdpSocket, Option<UdpSocket>))> {
        let bind_ip = self.cfg.sip_listen.ip();
        let bind = move |p: u16| {
            let s = UdpSocket::bind(std::net::SocketAddr::new(bind_ip, p)).ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        };
        self.ports
            .allocate(|p| bind(p).map(|rtp| (rtp, p.checked_add(1).and_then(bind))))
    }

    /// Makes a new call reachable if the node takes it: not draining, under `max_calls`, and
    /// (`needs_port`: it has no RTP port yet) a port free. Checked and counted under one lock,
    /// so concurrent dials cannot overshoot. Its actor takes the returned queues.
    pub(crate) fn register(
        &self,
        call_id: Uuid,
        project_id: Uuid,
        needs_port: bool,
    ) -> Result<Inbox, ControlError> {
        let Ok(mut calls) = self.calls.lock() else {
            return Err(ControlError::Internal("call table poisoned".into()));
        };
        let max = self.cfg.max_calls;
        let refusal = if self.draining.load(Ordering::SeqCst) {
            Some((
                "draining",
                "this server is shutting down and takes no new calls".into(),
            ))
        } else if max > 0 && calls.len() >= max {
            Some((
                "max_calls_reached",
                format!("this server is at its limit of {max} concurrent calls (max_calls)"),
            ))
        } else if needs_port && (self.ports.free() == 0 || calls.len() >= self.ports.capacity()) {
            Some((
                "no_rtp_port",
                "every RTP port of this server is in use (rtp_ports)".into(),
            ))
        } else {
            None
        };
        if let Some((code, message)) = refusal {
            self.cfg.metrics.calls_refused.with(&[code]).inc();
            return Err(ControlError::AtCapacity { code, message });
        }
        let (inbox, commands) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events) = mpsc::unbounded_channel();
        let js = swml::JsBudget::new(self.cfg.js_budget);
        let tasks = crate::actor::TaskSender::new(events_tx.clone());
        {
            calls.insert(
                call_id,
                CallEntry {
                    project_id,
                    inbox,
                    events: events_tx,
                    js: js.clone(),
                },
            );
        }
        Ok(Inbox {
            commands,
            events,
            tasks,
            js,
        })
    }

    /// Hands an event to a live call's actor; never blocks, never drops (false: no such call).
    pub(crate) fn tell(&self, call_id: Uuid, msg: ActorMsg) -> bool {
        let tx = self
            .calls
            .lock()
            .ok()
            .and_then(|c| c.get(&call_id).map(|e| e.events.clone()));
        tx.is_some_and(|tx| tx.send(msg).is_ok())
    }

    /// The project of a live call.
    pub(crate) fn project_of(&self, call_id: Uuid) -> Option<Uuid> {
        self.calls
            .lock()
            .ok()
            .and_then(|c| c.get(&call_id).map(|e| e.project_id))
    }

    pub(crate) fn unregister(&self, call_id: Uuid) {
        if let Ok(mut c) = self.calls.lock() {
            c.remove(&call_id);
        }
    }

    fn identity_of(&self, r: &store::CallRecord) -> CallIdentity {
        CallIdentity::of_record(r, self.cfg.space_id)
    }

    /// Queues a `calling.call.state` webhook in the durable outbox if the call's subscriber
    /// asked for `state`.
    pub(crate) async fn notify_state(&self, r: &store::CallRecord, state: &str, event: &Value) {
        let Some(url) = r.status_url.as_deref() else {
            return;
        };
        if !r.subscribed(state) {
            return;
        }
        self.notify(r.id, url, event).await;
    }

    /// [`NodeInner::notify_state`] queued without waiting (Store::enqueue_webhook_behind):
    /// what is written after it commits with it or later. True when a webhook was queued; the
    /// caller kicks the delivery once the write it waits for is done.
    pub(crate) fn notify_state_behind(
        &self,
        r: &store::CallRecord,
        state: &str,
        event: &Value,
    ) -> bool {
        let Some(url) = r.status_url.as_deref().filter(|_| r.subscribed(state)) else {
            return false;
        };
        let Ok(body) = serde_json::to_vec(event) else {
            return false;
        };
        self.store.enqueue_webhook_behind(store::NewWebhook {
            call_id: Some(r.id),
            url: url.to_string(),
            body,
            created_at_ms: now_ms() as i64,
        });
        true
    }

    pub(crate) fn kick_delivery(&self) {
        self.delivery.kick();
    }

    /// A webhook sent with GET: the event's scalars in the URL's query, no body (A12).
    pub(crate) async fn notify_get(&self, call_id: Uuid, url: &str, event: &Value) {
        if let Some(url) = events::get_url(url, event) {
            self.enqueue_webhook(call_id, url, Vec::new()).await;
        }
    }

    /// Queues a webhook about a call in the durable outbox (delivered in order per call).
    pub(crate) async fn notify(&self, call_id: Uuid, url: &str, event: &Value) {
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(_) => return,
        };
        self.enqueue_webhook(call_id, url.to_string(), body).await;
    }

    async fn enqueue_webhook(&self, call_id: Uuid, url: String, body: Vec<u8>) {
        let job = store::NewWebhook {
            call_id: Some(call_id),
            url,
            body,
            created_at_ms: now_ms() as i64,
        };
        match self.store.enqueue_webhook(job).await {
            Ok(_) => self.delivery.kick(),
            Err(e) => {
                warn!(%call_id, error = %e, "could not queue webhook");
                self.cfg.metrics.errors.with(&["webhook_enqueue"]).inc();
            }
        }
    }

    /// After a crash: recordings the previous process was writing are repaired and get their
    /// final event; each far end of a call left answered gets a BYE; calls left live are ended
    /// with `error` and their `ended` webhook is queued, so no call stays "answered" forever.
    async fn recover_after_restart(&self) {
        self.finish_recordings_cut_by_crash().await;
        // Faxes a crash cut off leave their rendered or half-received pages behind: no call
        // will finish them (docs/fax.md).
        let fax_work = self.cfg.data_dir.join("fax-work");
        if tokio::fs::metadata(&fax_work).await.is_ok() {
            if let Err(e) = tokio::fs::remove_dir_all(&fax_work).await {
                warn!(error = %e, "fax work files of the last run not removed");
            }
        }
        self.end_dialogs_left_up().await;
        let now = now_ms();
        match self
            .store
            .mark_live_calls_ended(EndReason::Error.as_str(), now as i64)
            .await
        {
            Ok(records) => {
                for r in records {
                    warn!(call_id = %r.id, "call was live when the node stopped; marked ended");
                    let _ = self
                        .store
                        .append_call_event(
                            r.id,
                            now as i64,
                            "ended",
                            r#"{"detail":"node restarted while the call was live"}"#.into(),
                        )
                        .await;
                    let ident = self.identity_of(&r);
                    let times = CallTimes {
                        start_ms: r.created_at_ms as u64,
                        answer_ms: r.answered_at_ms.map(|t| t as u64),
                        end_ms: Some(now),
                    };
                    let ev = ident.state_event("ended", Some(EndReason::Error), times, now);
                    self.notify_state(&r, "ended", &ev).await;
                }
            }
            Err(e) => warn!(error = %e, "could not recover live calls"),
        }
    }
}

impl NodeInner {
    /// A BYE to each far end of a dialog a previous process left up, all at once; waits up to
    /// 2 s for their answers (the rest go on in the background), then forgets them.
    async fn end_dialogs_left_up(&self) {
        let dialogs = self.store.live_dialogs().await.unwrap_or_else(|e| {
            warn!(error = %e, "could not read the dialogs left up");
            Vec::new()
        });
        let mut byes = tokio::task::JoinSet::new();
        for (call_id, text) in dialogs {
            let (sip, store) = (self.sip.clone(), self.store.clone());
            byes.spawn(async move {
                let sent = match sip::SavedDialog::decode(&text) {
                    Ok(d) => sip.bye_saved(&d).await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(()) => info!(%call_id, "far end of a call left up by a restart got its BYE"),
                    Err(e) => {
                        warn!(%call_id, error = %e, "BYE to a call left up by a restart failed")
                    }
                }
                let _ = store.forget_dialog(call_id).await;
            });
        }
        let all = async { while byes.join_next().await.is_some() {} };
        if tokio::time::timeout(std::time::Duration::from_secs(2), all)
            .await
            .is_err()
        {
            byes.detach_all();
        }
    }
}

/// Forwards the shards' events to their calls' actors until the shards or the node stop
/// (`deliver` answers None once the node is gone). An event for a call that has ended is
/// discarded: nobody waits on it any more.
async fn route_media_events<F>(mut events: mpsc::UnboundedReceiver<shard::ShardEvent>, deliver: F)
where
    F: Fn(Uuid, ActorMsg) -> Option<()>,
{
    while let Some(ev) = events.recv().await {
        if deliver(ev.call_id, ActorMsg::Media(Box::new(ev.event), ev.permit)).is_none() {
            break;
        }
    }
}

/// The embedded speech engine (flite), cached; None (and `say:` fails visibly) if it cannot start.
/// The embedded recogniser (pocketsphinx); the reason when it is not installed.
/// The node's recogniser: a configured engine process, else the embedded grammar engine.
fn start_asr(command: Option<Vec<String>>) -> Result<Arc<dyn asr::SpeechEngine>, String> {
    match command {
        Some(command) => {
            info!(?command, "speech recognition by an engine process");
            asr::ProcessEngine::start(command)
                .map(|e| Arc::new(e) as Arc<dyn asr::SpeechEngine>)
                .map_err(|e| e.to_string())
        }
        None => asr::Pocketsphinx::new(asr::PocketsphinxConfig::default())
            .map(|e| Arc::new(e) as Arc<dyn asr::SpeechEngine>)
            .map_err(|e| e.to_string()),
    }
}

fn start_tts() -> Option<Arc<dyn ::tts::Tts>> {
    // Other languages than English, when eSpeak NG is installed (docs/speech.md).
    let other = match ::tts::EspeakTts::start() {
        Ok(engine) => Some(engine),
        Err(e) => {
            info!(error = %e, "speech in other languages than English needs espeak-ng: flite speaks everything");
            None
        }
    };
    match ::tts::FliteTts::start() {
        Ok(engine) => Some(Arc::new(::tts::CachedTts::new(
            ::tts::Speech::new(engine, other),
            256,
        ))),
        Err(e) => {
            warn!(error = %e, "text-to-speech engine unavailable");
            None
        }
    }
}

#[async_trait]
impl CallControl for Node {
    async fn dial(&self, project: Uuid, request: DialRequest) -> Result<CommandOk, ControlError> {
        let inner = &self.inner;
        let to = match (request.to.clone(), request.to_script.is_some()) {
            (Some(to), false) => to,
            (None, true) => return inner.dial_script(project, request).await,
            // Both name the destination end: `to_script` *is* the far end (a script, not an
            // address), so there would be nothing to dial at `to`, and SignalWire documents no
            // meaning for the pair. Refused with the reason (docs/call-lifecycle.md).
            (Some(_), true) => {
                return Err(ControlError::Unprocessable {
                    code: "incompatible_parameters",
                    message: "to_script and to both name the destination end: to_script runs \
                              the destination end as a SWML script, so there is no address to \
                              dial; send to_script without to, or to without to_script"
                        .into(),
                    attribute: Some("to_script".into()),
                })
            }
            (None, false) => {
                return Err(ControlError::Unprocessable {
                    code: "missing_required_parameter",
                    message: "to is required unless to_script is given".into(),
                    attribute: Some("to".into()),
                })
            }
        };
        let leg_type = LegType::for_destination(&to);
        if leg_type == LegType::RelayWebrtcCall {
            return Err(ControlError::Unprocessable {
                code: "uri_resolves_to_unsupported_resource",
                message:
                    "verto:/client: destinations need WebRTC, which this server does not offer"
                        .into(),
                attribute: Some("to".into()),
            });
        }
        let route = control::routing::resolve(
            &to,
            inner.cfg.default_trunk.as_ref(),
            request.username.as_deref(),
            request.password.as_deref(),
        )
        .map_err(|e| e.to_control("to"))?;
        // The validator's normalised form is what runs (docs/swml-validation.md).
        let mut request = request;
        if let Some(doc) = request.swml.take() {
            request.swml = Some(fetch::load_document("swml", doc)?);
        }
        let call_id = Uuid::new_v4();
        let (mut record, ident) =
            inner.new_call(call_id, Direction::OutboundApi, leg_type, &request, &to);
        record.project_id = project;
        let ident = CallIdentity {
            project_id: project,
            ..ident
        };
        let inbox = inner.register(call_id, project, true)?;
        // Not waited for: the INVITE goes out and the API answers while the row is in the
        // next group commit (docs/call-lifecycle.md, "Durability").
        inner.store.insert_call_behind(record.clone());
        let leg = record.leg();
        let actor = CallActor::new(ident, request, route, record, inner.clone(), inbox);
        tokio::spawn(actor.run());
        inner.cfg.metrics.call_setups.with(&["outbound"]).inc();
        info!(%call_id, "dial accepted");
        Ok(CommandOk::leg(leg))
    }

    async fn command(
        &self,
        project: Uuid,
        call_id: Uuid,
        command: control::CallCommand,
    ) -> Result<CommandOk, ControlError> {
        let live = self.inner.calls.lock().ok().and_then(|c| {
            c.get(&call_id).map(|e| {
                // Ending a call stops its script's JavaScript now, not after its step.
                if e.project_id == project && matches!(command, control::CallCommand::End(_)) {
                    e.js.cancel();
                }
                (e.project_id, e.inbox.clone())
            })
        });
        match live {
            Some((owner, inbox)) if owner == project => {
                let (reply, rx) = oneshot::channel();
                if inbox
                    .send(ActorMsg::Command {
                        command: Box::new(command.clone()),
                        reply,
                    })
                    .await
                    .is_ok()
                {
                    if let Ok(result) = rx.await {
                        return result;
                    }
                }
                // The actor finished between lookup and delivery: answer from the record.
                self.command_on_ended(project, call_id, &command).await
            }
            Some(_) => Err(ControlError::NotFound),
            None => self.command_on_ended(project, call_id, &command).await,
        }
    }

    async fn get_call(&self, project: Uuid, call_id: Uuid) -> Result<CallLeg, ControlError> {
        match self.inner.store.get_call(project, call_id).await {
            Ok(Some(r)) => Ok(r.leg()),
            Ok(None) => Err(ControlError::NotFound),
            Err(e) => Err(ControlError::Internal(e.to_string())),
        }
    }

    async fn recording(
        &self,
        project: Uuid,
        recording_id: Uuid,
        ext: &str,
    ) -> Result<Vec<u8>, ControlError> {
        let format = record::Format::from_name(ext).ok_or(ControlError::NotFound)?;
        self.inner
            .recording_bytes(project, recording_id, format)
            .await
    }

    async fn fax_document(&self, project: Uuid, fax_id: Uuid) -> Result<Vec<u8>, ControlError> {
        match self.inner.storage.fax_bytes(project, fax_id).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(ControlError::NotFound),
            Err(storage::StorageError::Io(e)) => Err(ControlError::Internal(e.to_string())),
            Err(e) => Err(ControlError::Unavailable(format!("fax storage: {e}"))),
        }
    }

    async fn list_conferences(
        &self,
        project: Uuid,
    ) -> Result<Vec<control::conference::ConferenceInfo>, ControlError> {
        let all = self
            .inner
            .conferences
            .lock()
            .map(|c| c.list())
            .map_err(|_| ControlError::Internal("conference registry unusable".into()))?;
        // Only the project's own calls are shown; a conference with none of them is not.
        let ours: std::collections::HashSet<Uuid> = self
            .inner
            .calls
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(_, e)| e.project_id == project)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default();
        Ok(all
            .into_iter()
            .filter_map(|mut c| {
                c.participants.retain(|p| ours.contains(&p.call_id));
                (!c.participants.is_empty()).then_some(c)
            })
            .collect())
    }

    async fn conference_mute(
        &self,
        project: Uuid,
        conference_id: Uuid,
        call_id: Uuid,
        muted: bool,
    ) -> Result<control::conference::Participant, ControlError> {
        if self.inner.project_of(call_id) != Some(project) {
            return Err(ControlError::NotFound);
        }
        let participant = self
            .inner
            .conferences
            .lock()
            .map_err(|_| ControlError::Internal("conference registry unusable".into()))?
            .set_muted(conference_id, call_id, muted)
            .map_err(|_| ControlError::NotFound)?;
        self.inner.tell(call_id, ActorMsg::ConferenceMute(muted));
        info!(%conference_id, %call_id, muted, "operator: participant mute");
        Ok(participant)
    }

    async fn conference_kick(
        &self,
        project: Uuid,
        conference_id: Uuid,
        call_id: Uuid,
    ) -> Result<(), ControlError> {
        let found = self.inner.project_of(call_id) == Some(project)
            && self
                .inner
                .conferences
                .lock()
                .map_err(|_| ControlError::Internal("conference registry unusable".into()))?
                .contains(conference_id, call_id);
        if !found || !self.inner.tell(call_id, ActorMsg::ConferenceKick) {
            return Err(ControlError::NotFound);
        }
        info!(%conference_id, %call_id, "operator: participant kicked");
        Ok(())
    }

    async fn list_calls(
        &self,
        project: Uuid,
        filter: CallFilter,
    ) -> Result<CallPage, ControlError> {
        let limit = if filter.limit == 0 {
            50
        } else {
            filter.limit.min(1000)
        };
        let (records, next) = self
            .inner
            .store
            .list_calls(
                project,
                filter.status.map(|s| s.as_str()),
                limit as usize,
                filter.cursor,
            )
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))?;
        Ok(CallPage {
            calls: records.iter().map(|r| r.leg()).collect(),
            next_cursor: next,
        })
    }
}

impl Node {
    /// A command for a call that has no actor: unknown (404) or over (422, ambiguity register A20).
    async fn command_on_ended(
        &self,
        project: Uuid,
        call_id: Uuid,
        command: &control::CallCommand,
    ) -> Result<CommandOk, ControlError> {
        match self.inner.store.get_call(project, call_id).await {
            Ok(Some(_)) => Err(match command {
                control::CallCommand::Update(_) => {
                    ControlError::invalid_state("cannot_update_completed", "the call has ended")
                }
                _ => ControlError::invalid_state("invalid_state", "the call has ended"),
            }),
            Ok(None) => Err(ControlError::NotFound),
            Err(e) => Err(ControlError::Internal(e.to_string())),
        }
    }
}

/// The dial as stored with the call (credentials never stored).
fn dial_request_json(r: &DialRequest) -> Value {
    serde_json::json!({
        "from": r.from, "to": r.to, "url": r.url, "swml": r.swml, "fallback_url": r.fallback_url,
        "caller_id": r.caller_id, "timeout": r.timeout_secs, "send_digits": r.send_digits,
        "custom_variables": r.custom_variables,
        "codecs": r.codecs.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>(),
    })
}

/// Makes every recording a crash left behind playable (WAV: header sizes from the file
/// length; MP3: a partial last frame cut off).
pub fn repair_all(dir: &std::path::Path) {
    for rec in storage::stored_recordings(dir) {
        if let Err(e) = record::repair_file(&rec.path, rec.format) {
            tracing::warn!(path = %rec.path.display(), error = %e, "recording could not be repaired");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old router gave each call's actor a bounded inbox and `try_send`: a playback's
    /// `Finished` behind 64 other events was lost and the script waiting on it hung. Now a
    /// burst of events for a call that is not reading all arrive, in order.
    #[tokio::test]
    async fn router_delivers_every_event_of_a_busy_call() {
        let (sink, rx) = shard::EventSink::new(shard::DROPPABLE_EVENTS_IN_FLIGHT);
        let call = Uuid::new_v4();
        for id in 0..1_000u64 {
            sink.emit(
                call,
                shard::MediaEvent::Play(media::playback::PlayerEvent::Playing(id)),
            );
        }
        sink.emit(
            call,
            shard::MediaEvent::Play(media::playback::PlayerEvent::Finished(7)),
        );
        drop(sink);
        let (actor_tx, mut actor_rx) = mpsc::unbounded_channel();
        route_media_events(rx, move |to, msg| {
            assert_eq!(to, call);
            actor_tx.send(msg).ok()
        })
        .await;
        let mut got = Vec::new();
        while let Ok(ActorMsg::Media(ev, _)) = actor_rx.try_recv() {
            got.push(*ev);
        }
        assert_eq!(got.len(), 1_001);
        assert_eq!(
            got.last(),
            Some(&shard::MediaEvent::Play(
                media::playback::PlayerEvent::Finished(7)
            ))
        );
    }
}
