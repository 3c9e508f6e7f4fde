//! Taps and streams on the call (the session decides, control::session::fork): building
//! them — an RTP tap's socket, a WebSocket's connection task — installing their media ends
//! in the call's shard once they run, and taking them down.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;

use control::command::{ForkFormat, TapDevice};
use control::session::{ForkInfo, ForkSpec, SessionEvent};
use media::fork::{FrameSource, MediaFork};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn, Instrument};

use crate::actor::{CallActor, TaskDone};
use crate::fork::ws::{self, StreamJob, StreamQueues};
use crate::fork::{self as forks, ForkCounters, QueueFork, RtpTap, StreamSource};
use crate::shard::ShardCommand;

/// A running fork's media ends, handed from its task to the actor to install.
pub(crate) struct ForkParts {
    pub fork: Box<dyn MediaFork>,
    pub source: Option<Box<dyn FrameSource>>,
    pub info: ForkInfo,
}

fn ready(tx: &crate::actor::TaskSender, control_id: String, parts: ForkParts) {
    let _ = tx.send(TaskDone::ForkReady {
        control_id,
        parts: Box::new(parts),
    });
}

fn ended(tx: &crate::actor::TaskSender, control_id: String, reason: String) {
    let _ = tx.send(TaskDone::ForkEnded { control_id, reason });
}

/// A fork's WebSocket within [`ws::CONNECT_TIMEOUT`], or `None` once why it failed is reported.
async fn connect(
    connector: &ws::WsConnector,
    url: &str,
    bearer: Option<&str>,
    tx: &crate::actor::TaskSender,
    control_id: &str,
) -> Option<ws::WsStream> {
    let failure =
        match tokio::time::timeout(ws::CONNECT_TIMEOUT, connector.connect(url, bearer)).await {
            Ok(Ok(ws)) => return Some(ws),
            Ok(Err(e)) => e,
            Err(_) => "connect timed out".to_string(),
        };
    ended(tx, control_id.to_owned(), failure);
    None
}

/// A WebSocket fork's media end (each tick's tracks onto a bounded queue, the queue's other end
/// returned for the task) and what it sends, with `source` for a stream's bot audio.
fn queue_parts(
    tracks: media::fork::Tracks,
    format: ForkFormat,
    counters: &Arc<ForkCounters>,
    source: Option<Box<dyn FrameSource>>,
) -> (ForkParts, mpsc::Receiver<crate::fork::ForkFrame>) {
    let (frames_tx, frames_rx) = mpsc::channel(forks::FRAME_QUEUE);
    let parts = ForkParts {
        fork: Box::new(QueueFork::new(
            tracks,
            format.rate,
            frames_tx,
            counters.clone(),
        )),
        source,
        info: ForkInfo {
            codec: format.name().into(),
            rate: format.rate,
            ptime: 20,
            source: None,
        },
    };
    (parts, frames_rx)
}

/// Where a tap or stream's media ends live in the call's graph.
fn key(control_id: &str) -> String {
    format!("fork:{control_id}")
}

impl CallActor {
    /// Builds the fork the session asked for; what it becomes is reported back as a task
    /// ([`TaskDone::ForkReady`] / [`TaskDone::ForkEnded`]).
    pub(crate) fn start_fork(&mut self, control_id: String, spec: ForkSpec) {
        let (stop_tx, stop_rx) = oneshot::channel();
        self.forks.insert(control_id.clone(), stop_tx);
        let tx = self.tasks_tx.clone();
        match spec {
            ForkSpec::Tap(t) => {
                let tracks = forks::tap_tracks(t.tap.params.direction);
                let format = self.tap_format(&t.device);
                match t.device {
                    TapDevice::Rtp {
                        addr, port, ptime, ..
                    } => {
                        let dest = SocketAddr::new(IpAddr::V4(addr), port);
                        match self.rtp_tap(dest, tracks, format, ptime.unwrap_or(20)) {
                            Ok(parts) => ready(&tx, control_id, parts),
                            Err(reason) => ended(&tx, control_id, reason),
                        }
                    }
                    TapDevice::Ws { uri, .. } => {
                        let connector = self.node.ws.clone();
                        tokio::spawn(
                            async move {
                                let Some(ws) =
                                    connect(&connector, &uri, None, &tx, &control_id).await
                                else {
                                    return;
                                };
                                let counters = Arc::new(ForkCounters::default());
                                let (parts, frames) = queue_parts(tracks, format, &counters, None);
                                ready(&tx, control_id.clone(), parts);
                                let reason =
                                    ws::run_tap(ws, uri, format, frames, stop_rx, counters).await;
                                ended(&tx, control_id, reason);
                            }
                            .in_current_span(),
                        );
                    }
                }
            }
            ForkSpec::Stream(s) => {
                let format = match ForkFormat::parse_stream(s.codec.as_deref()) {
                    Ok(f) => f,
                    Err(e) => return ended(&tx, control_id, e),
                };
                let connector = self.node.ws.clone();
                let job = StreamJob {
                    url: s.url.clone(),
                    stream_sid: uuid::Uuid::new_v4().to_string(),
                    call_id: self.ident.call_id,
                    project_id: self.ident.project_id,
                    tracks: forks::stream_tracks(s.track),
                    format,
                    call_rate: self.pcm_rate(),
                    custom_parameters: s.custom_parameters.clone(),
                };
                let bearer = s.authorization_bearer_token.clone();
                tokio::spawn(
                    async move {
                        let Some(ws) =
                            connect(&connector, &job.url, bearer.as_deref(), &tx, &control_id)
                                .await
                        else {
                            return;
                        };
                        let counters = Arc::new(ForkCounters::default());
                        let (bot_tx, bot_rx) = mpsc::channel(forks::BOT_QUEUE);
                        let (marks_tx, marks_rx) = mpsc::unbounded_channel();
                        let source = StreamSource::new(bot_rx, marks_tx, counters.clone());
                        let (parts, frames) =
                            queue_parts(job.tracks, format, &counters, Some(Box::new(source)));
                        ready(&tx, control_id.clone(), parts);
                        let queues = StreamQueues {
                            frames,
                            bot: bot_tx,
                            marks: marks_rx,
                            stop: stop_rx,
                            counters,
                        };
                        let reason = ws::run_stream(ws, job, queues).await;
                        ended(&tx, control_id, reason);
                    }
                    .in_current_span(),
                );
            }
        }
    }

    /// A tap's codec: the one asked for, else the call's when a tap speaks it, else PCMU.
    fn tap_format(&self, device: &TapDevice) -> ForkFormat {
        let asked = match device {
            TapDevice::Rtp { codec, .. } | TapDevice::Ws { codec, .. } => *codec,
        };
        let call_is_pcma = self
            .media
            .as_ref()
            .is_some_and(|m| m.codec == sdp::Codec::Pcma);
        let default = if call_is_pcma {
            control::command::TapCodec::Pcma
        } else {
            control::command::TapCodec::Pcmu
        };
        asked
            .and_then(ForkFormat::for_tap)
            .or_else(|| ForkFormat::for_tap(default))
            .unwrap_or(ForkFormat::PCMU)
    }

    /// SWML `connect` to `stream:wss://…`: the caller (answered first) is connected to a
    /// stream, both ways, until the stream ends (the server closes, `stop_stream`) or the call
    /// does; then the connect completes (`connected`, or `failed` when it never ran).
    pub(crate) async fn connect_to_stream(&mut self, params: control::command::StreamParams) {
        if self.inbound_unanswered() {
            if let Err(e) = self.answer_inbound().await {
                warn!(error = %e, "connect: could not answer the caller");
            }
        }
        info!(url = %params.url, "connect: to a stream");
        let started = Box::pin(self.op_command(
            control::CallCommand::Stream(params),
            control::session::Origin::Rest,
        ))
        .await;
        if let Err(e) = started {
            warn!(error = %e, "connect: the stream cannot start");
            Box::pin(self.complete_script(swml::Completion::Connect(Err("error".into())))).await;
        }
    }

    /// A stream ended: when it was a `connect`'s, the connect is over.
    pub(crate) async fn on_stream_finished(&mut self, control_id: &str, ran: bool) {
        if control_id != swml::STREAM_CONTROL_ID
            || self.script_wait != Some(crate::actor::script::ScriptWait::Connect)
            || self.connect.is_some()
        {
            return;
        }
        let result = if ran { Ok(()) } else { Err("error".into()) };
        Box::pin(self.complete_script(swml::Completion::Connect(result))).await;
    }

    /// An RTP tap's socket (on the node's media address, any port) and its media end.
    fn rtp_tap(
        &self,
        dest: SocketAddr,
        tracks: media::fork::Tracks,
        format: ForkFormat,
        ptime: u32,
    ) -> Result<ForkParts, String> {
        let class = egress::classify(dest.ip());
        if class != egress::Class::Public && !self.node.cfg.tap_allow_private {
            return Err(format!(
                "refused: {} is a {} address (tap_allow_private is off)",
                dest.ip(),
                class.describe()
            ));
        }
        let bind_ip = self.node.cfg.sip_listen.ip();
        let socket = UdpSocket::bind(SocketAddr::new(bind_ip, 0))
            .map_err(|e| format!("cannot open the tap's socket: {e}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("cannot open the tap's socket: {e}"))?;
        let source = socket.local_addr().ok();
        let counters = Arc::new(ForkCounters::default());
        Ok(ForkParts {
            fork: Box::new(RtpTap::new(socket, dest, tracks, format, ptime, counters)),
            source: None,
            info: ForkInfo {
                codec: format.name().into(),
                rate: format.rate,
                ptime,
                source,
            },
        })
    }

    /// A fork runs: its media ends go into the call's graph, the session learns it started.
    /// One stopped meanwhile is dropped (its task sees its queue close and ends).
    pub(crate) async fn on_fork_ready(&mut self, control_id: String, parts: Box<ForkParts>) {
        if !self.ops.session.is_active(&control_id) || !self.forks.contains_key(&control_id) {
            return;
        }
        let call_id = self.ident.call_id;
        let ForkParts { fork, source, info } = *parts;
        info!(%control_id, codec = %info.codec, "fork running");
        self.node.media.send(
            self.media_key,
            ShardCommand::SetFork {
                call_id,
                key: key(&control_id),
                fork: Some(fork),
            },
        );
        if let Some(source) = source {
            self.node.media.send(
                self.media_key,
                ShardCommand::SetSource {
                    call_id,
                    key: key(&control_id),
                    source: Some(source),
                },
            );
        }
        self.op_event(SessionEvent::ForkStarted { control_id, info })
            .await;
    }

    /// A fork ended by itself (or its task noticed it was stopped).
    pub(crate) async fn on_fork_ended(&mut self, control_id: String, reason: String) {
        if self.forks.remove(&control_id).is_none() {
            return;
        }
        if reason != "stopped" {
            warn!(%control_id, %reason, "fork ended");
        }
        self.remove_fork_media(&control_id);
        self.op_event(SessionEvent::ForkEnded { control_id, reason })
            .await;
    }

    /// The session took the fork down (stop, or the call ended).
    pub(crate) fn stop_fork(&mut self, control_id: &str) {
        self.remove_fork_media(control_id);
        if let Some(stop) = self.forks.remove(control_id) {
            let _ = stop.send(());
        }
    }

    fn remove_fork_media(&mut self, control_id: &str) {
        if !self.media_running {
            return;
        }
        let call_id = self.ident.call_id;
        self.node.media.send(
            self.media_key,
            ShardCommand::SetFork {
                call_id,
                key: key(control_id),
                fork: None,
            },
        );
        self.node.media.send(
            self.media_key,
            ShardCommand::SetSource {
                call_id,
                key: key(control_id),
                source: None,
            },
        );
    }
}
