//! Playback on a call, for both SWML `play` and REST `calling.play` (+ pause/resume/stop/volume):
//! the audio is prepared off the media thread, queued on the call's player in the media shard,
//! and every state change is reported as a `calling.call.play` webhook (calling-events.md §4).

use std::collections::HashMap;

use serde_json::json;
use tracing::{info, warn, Instrument};

use control::command::{PlayParams, TransferDest, TransferParams};
use control::{CallCommand, CallStatus, CommandOk, ControlError};
use media::playback::{PlaybackId, PlayerEvent, Source};

use crate::actor::{CallActor, TaskDone};
use crate::now_ms;
use crate::shard::{PlayOp, ShardCommand};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlayOrigin {
    Script,
    Rest,
}

#[derive(Debug, Clone)]
struct PlayInfo {
    control_id: String,
    status_url: Option<String>,
    origin: PlayOrigin,
    volume_db: f64,
    loops: u32,
    /// Queued on the player (false while its audio is being prepared).
    on_player: bool,
    /// Asked to stop while still being prepared.
    stop_requested: bool,
}

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

#[derive(Default)]
pub(crate) struct Plays {
    next_id: PlaybackId,
    by_id: HashMap<PlaybackId, PlayInfo>,
}

impl Plays {
    fn by_control_id(&self, control_id: &str) -> Option<PlaybackId> {
        self.by_id
            .iter()
            .find(|(_, p)| p.control_id == control_id)
            .map(|(id, _)| *id)
    }
}

/// 422 `does_not_exist`: no active operation of this kind (`what`) has this control_id
/// (ambiguity register A20).
pub(crate) fn control_id_not_found(what: &str, control_id: &str) -> ControlError {
    ControlError::Unprocessable {
        code: "does_not_exist",
        message: format!("no active {what} with control_id {control_id}"),
        attribute: Some("control_id".into()),
    }
}

/// 422 `value_not_unique`: an active operation of this kind (`what`) already has this
/// control_id (ambiguity register A10).
pub(crate) fn control_id_in_use(what: &str, control_id: &str) -> ControlError {
    ControlError::Unprocessable {
        code: "value_not_unique",
        message: format!("a {what} with control_id {control_id} is already active"),
        attribute: Some("control_id".into()),
    }
}

impl CallActor {
    /// Starts preparing a playback; it is queued on the player once its audio is ready.
    pub(crate) fn begin_play(&mut self, params: PlayParams, origin: PlayOrigin) -> PlaybackId {
        self.plays.next_id += 1;
        let id = self.plays.next_id;
        self.plays.by_id.insert(
            id,
            PlayInfo {
                control_id: params.control_id.clone(),
                status_url: params.status_url.clone(),
                origin,
                volume_db: params.volume,
                loops: params.loops,
                on_player: false,
                stop_requested: false,
            },
        );
        let rate = self
            .media
            .as_ref()
            .map(|m| crate::media_leg::pcm_rate(m.codec))
            .unwrap_or(8000);
        let prep = self.node.prep.clone();
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let result = prep.prepare(&params, rate).await;
                let _ = tx.send(TaskDone::PlayReady { id, result });
            }
            .in_current_span(),
        );
        id
    }

    pub(crate) async fn on_play_ready(
        &mut self,
        id: PlaybackId,
        result: Result<Vec<Source>, String>,
    ) {
        let Some(info) = self.plays.by_id.get_mut(&id) else {
            return;
        };
        match result {
            Ok(_) if info.stop_requested => {
                self.on_player_event(PlayerEvent::Stopped(id)).await;
            }
            Ok(sources) => {
                info.on_player = true;
                let (volume_db, loops) = (info.volume_db, info.loops);
                let ready = ReadyPlay {
                    id,
                    sources,
                    volume_db,
                    loops,
                };
                if self.media_running {
                    self.node
                        .media
                        .send(self.media_key, ready.into_command(self.ident.call_id));
                } else {
                    self.deferred_plays.push(ready);
                }
            }
            Err(message) => {
                warn!(%message, "playback audio could not be prepared");
                self.on_player_event(PlayerEvent::Error { id, message })
                    .await;
            }
        }
    }

    pub(crate) async fn on_player_event(&mut self, ev: PlayerEvent) {
        if let Some((id, PlayOrigin::Script, error)) = self.report_play(ev).await {
            self.on_script_play_ended(id, error).await;
        }
    }

    /// Sends the `calling.call.play` webhook for a player event; when the playback is over,
    /// forgets it and returns who started it and its error, if any.
    async fn report_play(
        &mut self,
        ev: PlayerEvent,
    ) -> Option<(PlaybackId, PlayOrigin, Option<String>)> {
        let (id, state, ended, error) = match ev {
            PlayerEvent::Playing(id) | PlayerEvent::Resumed(id) => (id, "playing", false, None),
            PlayerEvent::Paused(id) => (id, "paused", false, None),
            PlayerEvent::Finished(id) | PlayerEvent::Stopped(id) => (id, "finished", true, None),
            PlayerEvent::Error { id, message } => (id, "error", true, Some(message)),
        };
        let info = self.plays.by_id.get(&id).cloned()?;
        info!(control_id = %info.control_id, state, "playback");
        if let Some(url) = info.status_url.as_deref() {
            let event = self.ident.envelope(
                "calling.call.play",
                now_ms(),
                json!({
                    "call_id": self.ident.call_id,
                    "node_id": self.ident.node_id,
                    "control_id": info.control_id,
                    "state": state,
                }),
            );
            self.node.notify(self.ident.call_id, url, &event).await;
        }
        if !ended {
            return None;
        }
        self.plays.by_id.remove(&id);
        Some((id, info.origin, error))
    }

    pub(crate) fn active_playbacks(&self) -> Vec<PlaybackId> {
        self.plays.by_id.keys().copied().collect()
    }

    pub(crate) fn stop_playback(&mut self, id: PlaybackId) {
        let Some(info) = self.plays.by_id.get_mut(&id) else {
            return;
        };
        if info.on_player {
            self.node.media.send(
                self.media_key,
                ShardCommand::PlayControl {
                    call_id: self.ident.call_id,
                    id,
                    op: PlayOp::Stop,
                },
            );
        } else {
            info.stop_requested = true;
        }
    }

    /// The call ended: every playback still known ends (`finished`) so subscribers hear of it.
    pub(crate) async fn end_plays(&mut self) {
        let ids: Vec<PlaybackId> = self.plays.by_id.keys().copied().collect();
        for id in ids {
            self.report_play(PlayerEvent::Stopped(id)).await;
        }
    }

    /// Every command other than `update`/`calling.end`, from the API or a script.
    pub(crate) async fn on_call_command(
        &mut self,
        status: CallStatus,
        command: CallCommand,
    ) -> Result<CommandOk, ControlError> {
        if command.needs_answered_call() && status != CallStatus::Answered {
            return Err(ControlError::invalid_state(
                "invalid_state",
                "the call is not answered",
            ));
        }
        let control_id = command.control_id().map(str::to_owned);
        match command {
            CallCommand::Play(p) => self.rest_play(p)?,
            CallCommand::PlayPause(p) => self.rest_play_control(&p.control_id, PlayOp::Pause)?,
            CallCommand::PlayResume(p) => self.rest_play_control(&p.control_id, PlayOp::Resume)?,
            CallCommand::PlayStop(p) => self.rest_play_control(&p.control_id, PlayOp::Stop)?,
            CallCommand::PlayVolume(p) => {
                self.rest_play_control(&p.control_id, PlayOp::Volume(p.volume))?
            }
            CallCommand::Transfer(p) => self.rest_transfer(p).await?,
            CallCommand::Collect(p) => self.rest_collect(p)?,
            CallCommand::CollectStop(p) => self.rest_collect_control(&p.control_id, true)?,
            CallCommand::CollectStartInputTimers(p) => {
                self.rest_collect_control(&p.control_id, false)?
            }
            CallCommand::Record(p) => self.rest_record(p).await?,
            command @ (CallCommand::RecordPause(_)
            | CallCommand::RecordResume(_)
            | CallCommand::RecordStop(_)) => self.rest_record_control(command).await?,
            CallCommand::Detect(p) => self.rest_detect(p)?,
            CallCommand::DetectStop(p) => self.rest_detect_stop(&p.control_id).await?,
            CallCommand::Denoise(_) => self.rest_denoise(true),
            CallCommand::DenoiseStop(_) => self.rest_denoise(false),
            CallCommand::UserEvent(p) => {
                self.user_event(serde_json::Value::Object(p.event)).await;
            }
            // What the node cannot do yet answers 501 naming the command; never a fake success.
            CallCommand::Update(_)
            | CallCommand::End(_)
            | CallCommand::Disconnect(_)
            | CallCommand::Tap(_)
            | CallCommand::TapStop(_)
            | CallCommand::Stream(_)
            | CallCommand::StreamStop(_)
            | CallCommand::Transcribe(_)
            | CallCommand::TranscribeStop(_)
            | CallCommand::AiHold(_)
            | CallCommand::AiUnhold(_)
            | CallCommand::AiMessage(_)
            | CallCommand::AiStop(_)
            | CallCommand::AiSidecar(_)
            | CallCommand::AiSidecarPoke(_)
            | CallCommand::AiSidecarAsk(_)
            | CallCommand::AiSidecarStop(_)
            | CallCommand::AiSidecarStatus(_)
            | CallCommand::LiveTranscribe(_)
            | CallCommand::LiveTranslate(_)
            | CallCommand::SendFaxStop(_)
            | CallCommand::ReceiveFaxStop(_)
            | CallCommand::Refer(_) => {
                return Err(ControlError::NotImplemented {
                    command: command.name().to_owned(),
                })
            }
        }
        let mut ok = CommandOk::leg(self.node.leg_from_record(&self.snapshot_record()));
        ok.control_id = control_id;
        Ok(ok)
    }

    fn rest_play(&mut self, p: PlayParams) -> Result<(), ControlError> {
        if self.plays.by_control_id(&p.control_id).is_some() {
            return Err(crate::play::control_id_in_use("playback", &p.control_id));
        }
        self.begin_play(p, PlayOrigin::Rest);
        Ok(())
    }

    fn rest_play_control(&mut self, control_id: &str, op: PlayOp) -> Result<(), ControlError> {
        let Some(id) = self.plays.by_control_id(control_id) else {
            return Err(crate::play::control_id_not_found("playback", control_id));
        };
        match op {
            PlayOp::Stop => self.stop_playback(id),
            _ => {
                if let Some(info) = self.plays.by_id.get_mut(&id) {
                    if let PlayOp::Volume(db) = op {
                        info.volume_db = db;
                    }
                }
                self.node.media.send(
                    self.media_key,
                    ShardCommand::PlayControl {
                        call_id: self.ident.call_id,
                        id,
                        op,
                    },
                );
            }
        }
        Ok(())
    }

    /// `calling.transfer`: a SWML URL or inline document replaces the running flow; a SIP URI
    /// or phone number is dialled and bridged (bridge.rs).
    async fn rest_transfer(&mut self, p: TransferParams) -> Result<(), ControlError> {
        if let Some(url) = p.dest.swml_url() {
            self.fetch_document(
                crate::actor::DocPurpose::Replace,
                url.to_owned(),
                None,
                control::HttpMethod::Post,
            );
            return Ok(());
        }
        match p.dest {
            TransferDest::Document(doc) => {
                let doc = crate::load_document("dest", doc)?;
                self.replace_script(doc).await;
                Ok(())
            }
            TransferDest::Address(address) => self.transfer_to_address(&address).await,
        }
    }
}
