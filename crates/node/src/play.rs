//! Playback on a call, for both SWML `play` and REST `calling.play` (+ pause/resume/stop/volume):
//! the audio is prepared off the media thread, queued on the call's player in the media shard,
//! and every state change is reported as a `calling.call.play` webhook (calling-events.md §4).

use std::collections::HashMap;

use serde_json::{json, Value};
use tracing::{info, warn, Instrument};

use control::{CallStatus, CommandOk, ControlError};
use media::playback::{PlaybackId, PlayerEvent, Source};
use swml::PlayItem;

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

/// The `control_id` of a REST command's params (the API makes one up when the request had
/// none, so it is always there once validated).
pub(crate) fn control_id(p: &Value) -> String {
    control_id_ref(p).to_string()
}

/// [`control_id`], borrowed.
pub(crate) fn control_id_ref(p: &Value) -> &str {
    p.get("control_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// 422: no active operation of this kind (`what`) has this control_id.
pub(crate) fn control_id_not_found(what: &str, control_id: &str) -> ControlError {
    ControlError::Unprocessable {
        code: "control_id_not_found",
        message: format!("no active {what} with control_id {control_id}"),
        attribute: Some("control_id".into()),
    }
}

/// 409: an active operation of this kind (`what`) already has this control_id.
pub(crate) fn control_id_in_use(what: &str, control_id: &str) -> ControlError {
    ControlError::Conflict {
        code: "control_id_in_use",
        message: format!("a {what} with control_id {control_id} is already active"),
        attribute: Some("control_id".into()),
    }
}

impl CallActor {
    /// Starts preparing a playback; it is queued on the player once its audio is ready.
    pub(crate) fn begin_play(
        &mut self,
        items: Vec<PlayItem>,
        volume_db: f64,
        loops: u32,
        control_id: String,
        status_url: Option<String>,
        origin: PlayOrigin,
    ) -> PlaybackId {
        self.plays.next_id += 1;
        let id = self.plays.next_id;
        self.plays.by_id.insert(
            id,
            PlayInfo {
                control_id,
                status_url,
                origin,
                volume_db,
                loops,
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
                let result = prep.prepare(items, rate).await;
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

    /// REST commands other than `update`/`calling.end`, validated by the API into `params`.
    pub(crate) async fn on_call_command(
        &mut self,
        status: CallStatus,
        command: String,
        params: Value,
    ) -> Result<CommandOk, ControlError> {
        let needs_answered = matches!(
            command.as_str(),
            "calling.play"
                | "calling.play.pause"
                | "calling.play.resume"
                | "calling.play.stop"
                | "calling.play.volume"
                | "calling.transfer"
                | "calling.collect"
                | "calling.collect.stop"
                | "calling.record"
                | "calling.record.pause"
                | "calling.record.resume"
                | "calling.record.stop"
                | "calling.collect.start_input_timers"
                | "calling.detect"
                | "calling.detect.stop"
                | "calling.denoise"
                | "calling.denoise.stop"
        );
        if needs_answered && status != CallStatus::Answered {
            return Err(ControlError::invalid_state(
                "invalid_state",
                "the call is not answered",
            ));
        }
        let control_id = params
            .get("control_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        match command.as_str() {
            "calling.play" => self.rest_play(&params)?,
            "calling.play.pause" => self.rest_play_control(&params, PlayOp::Pause)?,
            "calling.play.resume" => self.rest_play_control(&params, PlayOp::Resume)?,
            "calling.play.stop" => self.rest_play_control(&params, PlayOp::Stop)?,
            "calling.play.volume" => {
                let volume = params.get("volume").and_then(Value::as_f64).unwrap_or(0.0);
                self.rest_play_control(&params, PlayOp::Volume(volume))?
            }
            "calling.transfer" => self.rest_transfer(&params).await?,
            "calling.collect" => self.rest_collect(&params)?,
            "calling.record" => self.rest_record(&params).await?,
            "calling.record.pause" | "calling.record.resume" | "calling.record.stop" => {
                self.rest_record_control(&command, &params).await?
            }
            "calling.collect.stop" => self.rest_collect_control(&params, true)?,
            "calling.collect.start_input_timers" => self.rest_collect_control(&params, false)?,
            "calling.detect" => self.rest_detect(&params)?,
            "calling.detect.stop" => self.rest_detect_stop(&params).await?,
            "calling.denoise" => self.rest_denoise(true),
            "calling.denoise.stop" => self.rest_denoise(false),
            "calling.user_event" => {
                let event = params.get("event").cloned().unwrap_or(Value::Null);
                self.user_event(event).await;
            }
            _ => return Err(ControlError::NotImplemented { command }),
        }
        let mut ok = CommandOk::leg(self.node.leg_from_record(&self.snapshot_record()));
        ok.control_id = control_id;
        Ok(ok)
    }

    fn rest_play(&mut self, p: &Value) -> Result<(), ControlError> {
        let control_id = crate::play::control_id(p);
        if self.plays.by_control_id(&control_id).is_some() {
            return Err(crate::play::control_id_in_use("playback", &control_id));
        }
        let items = rest_play_items(p)?;
        let volume = p.get("volume").and_then(Value::as_f64).unwrap_or(0.0);
        let loops = p
            .get("loop")
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            // `loop: 0` repeats until stopped; the player takes 0 the same way.
            .unwrap_or(1);
        let status_url = p
            .get("status_url")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.begin_play(
            items,
            volume,
            loops,
            control_id,
            status_url,
            PlayOrigin::Rest,
        );
        Ok(())
    }

    fn rest_play_control(&mut self, p: &Value, op: PlayOp) -> Result<(), ControlError> {
        let control_id = crate::play::control_id_ref(p);
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
    async fn rest_transfer(&mut self, p: &Value) -> Result<(), ControlError> {
        match p.get("dest") {
            Some(Value::Object(_)) => {
                let doc =
                    crate::load_document("dest", p.get("dest").cloned().unwrap_or(Value::Null))?;
                self.replace_script(doc).await;
                Ok(())
            }
            Some(Value::String(url))
                if url.starts_with("http://") || url.starts_with("https://") =>
            {
                self.fetch_document(
                    crate::actor::DocPurpose::Replace,
                    url.clone(),
                    None,
                    control::HttpMethod::Post,
                );
                Ok(())
            }
            Some(Value::String(address)) => self.transfer_to_address(&address.clone()).await,
            _ => Err(ControlError::Unprocessable {
                code: "invalid_parameter",
                message: "dest must be a SIP URI, a phone number, a SWML URL or a SWML object"
                    .into(),
                attribute: Some("dest".into()),
            }),
        }
    }
}

/// The REST media items (`{type, params}`, normalised by the API) as SWML play items, with the
/// request-level TTS defaults applied (calling-api.md §6.6).
fn rest_play_items(p: &Value) -> Result<Vec<PlayItem>, ControlError> {
    let language = p.get("language").and_then(Value::as_str).unwrap_or("en-US");
    let gender = p.get("gender").and_then(Value::as_str).unwrap_or("female");
    let voice = p.get("voice").and_then(Value::as_str).unwrap_or("");
    let items = p
        .get("play")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let params = item.get("params").cloned().unwrap_or(Value::Null);
        let s = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_string);
        let f = |k: &str| params.get(k).and_then(Value::as_f64);
        match item.get("type").and_then(Value::as_str) {
            Some("audio") => out.push(PlayItem::Audio {
                url: s("url").unwrap_or_default(),
            }),
            Some("tts") => out.push(PlayItem::Say {
                text: s("text").unwrap_or_default(),
                voice: s("voice").unwrap_or_else(|| voice.to_string()),
                language: s("language").unwrap_or_else(|| language.to_string()),
                gender: s("gender").unwrap_or_else(|| gender.to_string()),
            }),
            Some("silence") => out.push(PlayItem::Silence {
                seconds: f("duration").unwrap_or(0.0),
            }),
            Some("ringtone") => out.push(PlayItem::Ring {
                country: s("name").unwrap_or_default(),
                // Omitted duration = until stopped.
                seconds: Some(f("duration").unwrap_or(f64::MAX)),
            }),
            _ => {
                return Err(ControlError::Unprocessable {
                    code: "invalid_parameter",
                    message: "unknown media item type".into(),
                    attribute: Some("play".into()),
                })
            }
        }
    }
    Ok(out)
}
