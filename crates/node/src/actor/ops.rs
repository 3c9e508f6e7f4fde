//! The driver of the call's [`CallSession`]: feeds it commands and what the media path, the
//! recorder and the recogniser report, and executes its actions — the only place where the
//! operations of a call touch the shard, the recorder, the preparation tasks, webhooks and the
//! script. The session itself decides everything (control::session).

use serde_json::json;
use tracing::{info, warn, Instrument};

use control::command::{ControlIdParams, MediaItem, PlayParams};
use control::session::{Action, CallEvent, CallSession, OpResult, Origin, PlayerOp, SessionEvent};
use control::{CallCommand, ControlError};
use media::detect::DetectListener;
use media::listen::FrameListener;
use media::playback::{PlaybackId, Source};

use crate::actor::listen::{DETECT_PREFIX, SPEECH_PREFIX};
use crate::actor::{CallActor, TaskDone};
use crate::now_ms;
use crate::shard::{PlayOp, ShardCommand};

/// A playback whose audio is ready, waiting for the call's media to run.
pub(crate) struct ReadyPlay {
    id: PlaybackId,
    sources: Vec<Source>,
    volume_db: f64,
    loops: u32,
}

impl ReadyPlay {
    pub(crate) fn into_command(self, call_id: uuid::Uuid) -> ShardCommand {
        ShardCommand::Play {
            call_id,
            id: self.id,
            sources: self.sources,
            volume_db: self.volume_db,
            loops: self.loops,
        }
    }
}

/// The call's session and the I/O handles of its operations.
#[derive(Default)]
pub(crate) struct Ops {
    pub session: CallSession,
    /// Prepared audio, by playback, until the session queues it.
    prepared: std::collections::HashMap<PlaybackId, Vec<Source>>,
    /// Playbacks ready before the media runs (inbound, before answer): queued once it does.
    pub deferred: Vec<ReadyPlay>,
    /// The text of playbacks spoken as it is written (an `ai` model's answer as it streams),
    /// by control id, until their audio is prepared.
    /// With them, how their words are to be said (`pronounce`).
    pub speech_feeds: std::collections::HashMap<
        String,
        (
            tokio::sync::mpsc::UnboundedReceiver<String>,
            Vec<swml::Pronounce>,
        ),
    >,
    /// The playback an `ai` model's answer is being spoken in while the model still writes.
    pub ai_speaking: Option<String>,
    /// The turn's collect started with that playback, and its result if it came before the
    /// turn took it.
    pub ai_listening: Option<(String, Option<swml::Completion>)>,
    /// Counts the agent's background audio changes: a clip fetched for an older one is
    /// dropped.
    pub ai_background: u64,
}

impl CallActor {
    /// Plays `items` (a US ring when empty) over and over as `control_id`, until
    /// [`CallActor::stop_play`]: the wait audio of queues and conferences. The id, or None when
    /// the session refused it.
    pub(crate) async fn start_looped_play(
        &mut self,
        control_id: String,
        items: Vec<MediaItem>,
    ) -> Option<String> {
        let items = if items.is_empty() {
            vec![MediaItem::us_ring()]
        } else {
            items
        };
        let mut play = PlayParams::new(control_id.clone(), items);
        play.loops = 0;
        let started = self
            .ops
            .session
            .handle_command(now_ms(), CallCommand::Play(play), Origin::Rest)
            .ok()
            .map(|()| control_id);
        self.drain_ops().await;
        started
    }

    /// Stops a playback the actor started itself (wait audio, ringback), if any.
    pub(crate) async fn stop_play(&mut self, control_id: Option<String>) {
        if let Some(control_id) = control_id {
            let _ = self.ops.session.handle_command(
                now_ms(),
                CallCommand::PlayStop(ControlIdParams { control_id }),
                Origin::Rest,
            );
            self.drain_ops().await;
        }
    }

    /// Starts or controls an operation for the API or a script.
    pub(crate) async fn op_command(
        &mut self,
        command: CallCommand,
        origin: Origin,
    ) -> Result<(), ControlError> {
        if let CallCommand::Record(p) = &command {
            self.check_recording(p).await?;
        }
        let result = self.ops.session.handle_command(now_ms(), command, origin);
        // Whatever was queued before a refusal still runs; a refusal queues nothing.
        self.drain_ops().await;
        result
    }

    /// SWML `prompt` (control::session::CallSession::start_prompt).
    pub(crate) async fn op_prompt(
        &mut self,
        play: control::command::PlayParams,
        collect: control::command::CollectParams,
    ) -> Result<(), ControlError> {
        let result = self.ops.session.start_prompt(now_ms(), play, collect);
        self.drain_ops().await;
        result
    }

    pub(crate) async fn op_event(&mut self, event: SessionEvent) {
        self.ops.session.handle_event(now_ms(), event);
        self.drain_ops().await;
    }

    pub(crate) async fn op_timeout(&mut self) {
        self.ops.session.handle_timeout(now_ms());
        self.drain_ops().await;
    }

    /// The playbacks the flow started stop (it left: transfer, replaced document, its end).
    pub(crate) async fn stop_flow_plays(&mut self, all: bool) {
        if all {
            self.ops.session.stop_all_plays();
        } else {
            self.ops.session.stop_script_plays();
        }
        self.drain_ops().await;
    }

    /// The call ended: its operations end with it.
    pub(crate) async fn end_ops(&mut self) {
        self.ops.session.call_ended();
        self.drain_ops().await;
    }

    pub(crate) async fn on_play_ready(
        &mut self,
        id: PlaybackId,
        result: Result<Vec<Source>, String>,
    ) {
        let result = match result {
            Ok(sources) => {
                self.ops.prepared.insert(id, sources);
                Ok(())
            }
            Err(message) => {
                warn!(%message, "playback audio could not be prepared");
                Err(message)
            }
        };
        self.op_event(SessionEvent::PlayReady { id, result }).await;
    }

    /// Executes the session's actions in order.
    pub(crate) async fn drain_ops(&mut self) {
        while let Some(action) = self.ops.session.poll_action() {
            self.execute(action).await;
        }
    }

    async fn execute(&mut self, action: Action) {
        let call_id = self.ident.call_id;
        match action {
            Action::PreparePlay { id, params } => {
                let rate = self.pcm_rate();
                let prep = self.node.prep.clone();
                let tx = self.tasks_tx.clone();
                let feed = self.ops.speech_feeds.remove(&params.control_id);
                tokio::spawn(
                    async move {
                        let result = match feed {
                            Some((feed, pronounce)) => {
                                prep.prepare_fed(&params, feed, pronounce, rate).await
                            }
                            None => prep.prepare(&params, rate).await,
                        };
                        let _ = tx.send(TaskDone::PlayReady { id, result });
                    }
                    .in_current_span(),
                );
            }
            Action::QueuePlay {
                id,
                volume_db,
                loops,
            } => {
                let ready = ReadyPlay {
                    id,
                    sources: self.ops.prepared.remove(&id).unwrap_or_default(),
                    volume_db,
                    loops,
                };
                if self.media_running {
                    self.node
                        .media
                        .send(self.media_key, ready.into_command(call_id));
                } else {
                    self.ops.deferred.push(ready);
                }
            }
            Action::PlayControl { id, op } => {
                let op = match op {
                    PlayerOp::Pause => PlayOp::Pause,
                    PlayerOp::Resume => PlayOp::Resume,
                    PlayerOp::Stop => PlayOp::Stop,
                    PlayerOp::Volume(db) => PlayOp::Volume(db),
                };
                self.node.media.send(
                    self.media_key,
                    ShardCommand::PlayControl { call_id, id, op },
                );
            }
            Action::SpeechListener { control_id, spec } => {
                let listener = spec.map(|spec| {
                    Box::new(asr::listener::SpeechListener::new(
                        self.node.speech.clone(),
                        speech_params(spec),
                    )) as Box<dyn FrameListener>
                });
                self.node.media.send(
                    self.media_key,
                    ShardCommand::SetListener {
                        call_id,
                        key: format!("{SPEECH_PREFIX}{control_id}"),
                        listener,
                        sent: false,
                    },
                );
            }
            Action::DetectListener { control_id, spec } => {
                let listener = spec.map(|spec| {
                    Box::new(DetectListener::new(crate::actor::listen::detect_config(
                        &spec,
                    ))) as Box<dyn FrameListener>
                });
                self.node.media.send(
                    self.media_key,
                    ShardCommand::SetListener {
                        call_id,
                        key: format!("{DETECT_PREFIX}{control_id}"),
                        listener,
                        sent: false,
                    },
                );
            }
            Action::InBandDigits(in_band) => self.node.media.send(
                self.media_key,
                ShardCommand::DetectDigits { call_id, in_band },
            ),
            Action::StartRecording {
                control_id,
                params,
                transcript,
            } => {
                self.start_recording(control_id, params, transcript).await;
            }
            Action::RecorderTap(on) => {
                if on || self.media_running {
                    let tap = on.then(|| self.node.recorder.clone());
                    self.node
                        .media
                        .send(self.media_key, ShardCommand::SetTap { call_id, tap });
                }
            }
            Action::RecorderControl { control_id, op } => self.recorder_control(&control_id, op),
            Action::Denoise(on) => self.set_denoise(on),
            Action::Event(event) => self.report(event).await,
            Action::BridgeMedia { peer } => {
                info!(far_leg = %peer, "far leg answered; bridging audio");
                self.node.media.send(
                    self.media_key,
                    ShardCommand::Bridge {
                        a: call_id,
                        b: peer,
                    },
                );
            }
            Action::Unbridge => {
                if self.media_running {
                    self.node
                        .media
                        .send(self.media_key, ShardCommand::Unbridge { call_id });
                }
            }
            Action::PeerEnded { peer } => {
                self.node.tell(
                    peer,
                    crate::actor::ActorMsg::Peer(crate::actor::bridge::PeerEvent::Ended {
                        call_id,
                        end_reason: self.end_reason.unwrap_or(control::EndReason::Hangup),
                    }),
                );
            }
            Action::HangUp => {
                let status = self.core.status();
                if !status.is_terminal() && status != control::CallStatus::Ending {
                    info!("the bridged call ended; hanging up");
                    // Boxed: hanging up ends the call, which ends its operations.
                    Box::pin(self.input(control::call::CallInput::Hangup {
                        reason: control::EndReason::Hangup,
                    }))
                    .await;
                }
            }
            Action::StartFork { control_id, spec } => self.start_fork(control_id, spec),
            Action::StopFork { control_id } => self.stop_fork(&control_id),
            Action::StartFax { params } => self.start_fax(params),
            Action::StopFax { control_id } => self.stop_fax(&control_id),
            Action::AbandonFax {
                control_id,
                direction,
                status_url,
                stopped,
            } => self.abandon_fax(control_id, direction, status_url, stopped),
            Action::ScriptDone { control_id, result } => {
                // Boxed: the script runs on, and may start operations again.
                Box::pin(self.script_op_done(&control_id, result)).await;
            }
        }
    }

    /// A typed event becomes its webhook (when its operation has a `status_url`).
    async fn report(&mut self, event: CallEvent) {
        match &event {
            CallEvent::Play {
                control_id, state, ..
            } => info!(%control_id, state = state.as_str(), "playback"),
            CallEvent::Detect {
                control_id,
                outcome,
                ..
            } => info!(%control_id, detect = %outcome.to_json(), "detect event"),
            CallEvent::Dtmf { digit } => {
                info!(%digit, "the far end pressed a key");
                self.call_event("dtmf", json!({ "digit": digit.to_string() }))
                    .await;
            }
            _ => {}
        }
        let audio = match &event {
            CallEvent::Record { control_id, .. } => {
                self.recordings.meta(control_id).map(|m| m.audio.clone())
            }
            _ => None,
        };
        // Streams may ask for GET webhooks (status_url_method).
        let get = matches!(&event, CallEvent::Fork { spec, .. }
            if matches!(&**spec, control::session::ForkSpec::Stream(s)
                if s.status_url_method == control::HttpMethod::Get));
        let is_fork = matches!(&event, CallEvent::Fork { .. });
        let stream_finished = match &event {
            CallEvent::Fork {
                spec,
                state: control::session::ForkState::Finished { .. },
                info,
            } => match &**spec {
                control::session::ForkSpec::Stream(s) => {
                    Some((s.control_id.clone(), info.is_some()))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((control_id, ran)) = stream_finished {
            self.on_stream_finished(&control_id, ran).await;
        }
        let Some((name, Some(url), mut params)) =
            webhook::events::operation_event(event, audio.as_ref())
        else {
            return;
        };
        params["call_id"] = json!(self.ident.call_id);
        params["node_id"] = json!(self.ident.node_id);
        if is_fork {
            params["segment_id"] = json!(self.ident.segment_id);
        }
        let event = self.ident.envelope(name, now_ms(), params);
        if get {
            self.node.notify_get(self.ident.call_id, &url, &event).await;
        } else {
            self.node.notify(self.ident.call_id, &url, &event).await;
        }
    }

    /// The final result of an operation a script waits on completes the script's wait.
    async fn script_op_done(&mut self, control_id: &str, result: OpResult) {
        let completion = match result {
            OpResult::Played(Ok(())) => swml::Completion::Done,
            OpResult::Played(Err(message)) => swml::Completion::Failed { message },
            other => swml::Completion::Op(other),
        };
        self.script_op_finished(control_id, completion).await;
    }
}

/// What the recogniser and the segmenter are told of a speech collect.
pub(crate) fn speech_params(spec: control::session::SpeechSpec) -> asr::listener::SpeechParams {
    asr::listener::SpeechParams {
        request: asr::RecognitionRequest {
            language: spec.language,
            hints: spec.hints,
            digits_allowed: spec.digits_allowed,
            sample_rate: 8000,
        },
        segments: media::speech::SegmenterConfig {
            end_silence_ms: spec.end_silence_ms,
            speech_timeout_ms: spec.speech_timeout_ms,
            partial_results: spec.partial_results,
            continuous: spec.continuous,
        },
    }
}
