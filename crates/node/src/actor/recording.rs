//! REST `calling.record` (+ `.pause`, `.resume`, `.stop`): a recording of the call's audio in
//! MP3 (the default) or WAV (mono or stereo, `speak` = what the far end says, `listen` = what
//! it hears, `both`), written streaming by the node's recorder thread, reported as
//! `calling.call.record` events (calling-events.md §5) and served back at
//! `GET /api/calling/recordings/{id}.mp3|.wav`. `mp4` is refused (no AAC encoder here).

use std::collections::HashMap;

use serde_json::{json, Value};
use tracing::info;
use uuid::Uuid;

use control::command::{AudioDirection, PauseBehavior, RecordParams};
use control::session::{secs_to_ms, RecorderOp, RecordingResult, SessionEvent};
use control::ControlError;
use media::playback::Source;

use crate::actor::CallActor;
use crate::now_ms;
use crate::shard::ShardCommand;
use crate::NodeInner;
use record::writer::{RecorderInput, RecordingDone, RecordingMeta};

/// The beep before a recording that asks for one.
const BEEP_HZ: f32 = 1000.0;
const BEEP_MS: u64 = 250;

#[derive(Debug, Clone)]
struct Active {
    rec_id: Uuid,
    meta: RecordingMeta,
}

/// The recorder's handles of the call's recordings (the session keeps the operations).
#[derive(Default)]
pub(crate) struct Recordings {
    by_control_id: HashMap<String, Active>,
}

impl Recordings {
    pub(crate) fn meta(&self, control_id: &str) -> Option<&RecordingMeta> {
        self.by_control_id.get(control_id).map(|a| &a.meta)
    }
}

impl CallActor {
    /// What must hold before a recording starts: a format this server writes, media to
    /// record, and storage that can hold the file (422 otherwise, before any event).
    pub(crate) async fn check_recording(&self, p: &RecordParams) -> Result<(), ControlError> {
        let format = p.record.audio.format.as_str();
        if record::Format::from_name(format).is_none() {
            return Err(ControlError::Unprocessable {
                code: "invalid_parameter",
                message: format!(
                    "record.audio.format {format} is not supported by this server \
                     (no AAC encoder for mp4); use mp3 or wav"
                ),
                attribute: Some("record.audio.format".into()),
            });
        }
        if self.media.is_none() {
            return Err(ControlError::invalid_state(
                "invalid_state",
                "the call has no media to record",
            ));
        }
        // Storage that cannot hold the file fails the command, before any `recording` event;
        // a file the recorder thread then cannot create still ends in an `error` event.
        if let Err(e) = self.node.storage.ready(self.ident.project_id).await {
            return Err(ControlError::Unprocessable {
                code: "recording_storage_unavailable",
                message: format!("recordings cannot be stored on this server: {e}"),
                attribute: None,
            });
        }
        Ok(())
    }

    /// Hands a recording the session started to the recorder thread (and plays its beep).
    pub(crate) async fn start_recording(
        &mut self,
        control_id: String,
        p: RecordParams,
        transcript: Option<control::session::TranscriptRequest>,
    ) {
        let audio = &p.record.audio;
        let format = audio.format.as_str().to_string();
        let (Some(file_format), Some(media)) =
            (record::Format::from_name(&format), self.media.as_ref())
        else {
            // check_recording ran first; nothing else can take these away.
            return;
        };
        let rate = crate::media_leg::pcm_rate(media.codec);
        let direction = audio.direction;
        let opts = record::RecordingOptions {
            sample_rate: rate,
            channels: if audio.stereo {
                record::Channels::Stereo
            } else {
                record::Channels::Mono
            },
            // SignalWire's `speak` is what the call's party says: what we hear.
            direction: match direction {
                AudioDirection::Listen => record::Direction::Speak,
                AudioDirection::Both => record::Direction::Both,
                AudioDirection::Speak => record::Direction::Listen,
            },
        };
        let nonzero_ms = |secs: f64| Some(secs_to_ms(secs)).filter(|ms| *ms > 0);
        let limits = record::Limits {
            max_length_ms: Some(audio.max_length)
                .filter(|s| *s > 0)
                .map(|s| s.saturating_mul(1000)),
            initial_timeout_ms: nonzero_ms(audio.initial_timeout),
            end_silence_ms: nonzero_ms(audio.end_silence_timeout),
            sensitivity: audio.input_sensitivity.clamp(0.0, 100.0) as u8,
            vad_on_heard: direction != AudioDirection::Listen,
        };
        let rec_id = Uuid::new_v4();
        let path = self
            .node
            .storage
            .path(self.ident.project_id, rec_id, file_format);
        let meta = RecordingMeta {
            transcript: transcript.map(|t| record::writer::TranscriptTarget {
                status_url: t.status_url,
                segment_id: self.ident.segment_id,
            }),
            control_id: control_id.clone(),
            status_url: p.status_url.clone(),
            url: format!(
                "{}/api/calling/recordings/{rec_id}.{}",
                self.node.cfg.public_url.trim_end_matches('/'),
                file_format.extension()
            ),
            format: format.clone(),
            audio: json!({
                "format": format,
                "direction": direction.as_str(),
                "stereo": audio.stereo,
            }),
            started_ms: now_ms(),
            project_id: self.ident.project_id,
            conference: None,
        };
        // Kept until its final event is queued: a crash before that is repaired on start.
        let open = store::OpenRecording {
            id: rec_id,
            call_id: self.ident.call_id,
            project_id: meta.project_id,
            control_id: control_id.clone(),
            status_url: meta.status_url.clone(),
            url: meta.url.clone(),
            format: meta.format.clone(),
            audio: meta.audio.to_string(),
            path: path.to_string_lossy().into_owned(),
            started_at_ms: meta.started_ms as i64,
        };
        if let Err(e) = self.node.store.recording_started(open).await {
            tracing::warn!(%rec_id, error = %e, "could not keep the recording's metadata");
        }
        // Every start ends in exactly one RecordingDone, which takes it off again.
        self.node.cfg.metrics.recordings_active.inc();
        self.node.recorder.send(RecorderInput::Start(Box::new(
            record::writer::StartRecording {
                rec_id,
                call_id: self.ident.call_id,
                path,
                format: file_format,
                opts,
                limits,
                meta: meta.clone(),
            },
        )));
        if audio.beep {
            self.node.media.send(
                self.media_key,
                ShardCommand::Play {
                    call_id: self.ident.call_id,
                    id: 0,
                    sources: vec![Source::Tone {
                        freqs: vec![BEEP_HZ],
                        ms: BEEP_MS,
                    }],
                    volume_db: 0.0,
                    loops: 1,
                },
            );
        }
        info!(%control_id, %rec_id, "recording");
        self.recordings
            .by_control_id
            .insert(control_id, Active { rec_id, meta });
    }

    pub(crate) fn recorder_control(&self, control_id: &str, op: RecorderOp) {
        let Some(active) = self.recordings.by_control_id.get(control_id) else {
            return;
        };
        let rec_id = active.rec_id;
        self.node.recorder.send(match op {
            RecorderOp::Pause(behavior) => RecorderInput::Pause {
                rec_id,
                behavior: match behavior {
                    PauseBehavior::Silence => record::PauseBehavior::Silence,
                    PauseBehavior::Skip => record::PauseBehavior::Skip,
                },
            },
            RecorderOp::Resume => RecorderInput::Resume { rec_id },
            RecorderOp::Stop => RecorderInput::Stop { rec_id },
        });
    }

    /// The URL the running recording `control_id` will have when it ends (SWML
    /// `record_call` reports it at start).
    pub(crate) fn recording_url(&self, control_id: &str) -> Option<String> {
        self.recordings.meta(control_id).map(|m| m.url.clone())
    }

    /// The recorder finished one (the node already sent its webhook); `params` is that
    /// final event's `params`, handed to the session (and a script waiting on it).
    pub(crate) async fn on_recording_done(
        &mut self,
        rec_id: Uuid,
        control_id: String,
        params: Value,
    ) {
        self.recordings
            .by_control_id
            .retain(|_, a| a.rec_id != rec_id);
        let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
        let result = RecordingResult {
            state: text("state").unwrap_or_default(),
            url: text("url"),
            duration: params.get("duration").and_then(Value::as_f64),
            size: params.get("size").and_then(Value::as_u64),
        };
        self.op_event(SessionEvent::RecordingDone { control_id, result })
            .await;
    }
}

impl NodeInner {
    /// The `finished` / `no_input` / `error` webhook of a recording, queued even when the call
    /// is already gone. Returns the event's `params` (also without a status_url), or `None`
    /// when the call is unknown.
    pub(crate) async fn recording_done(&self, done: RecordingDone) -> Option<Value> {
        let rec_id = done.rec_id;
        let params = self.queue_record_event(done).await;
        // The final event is in the outbox: nothing left to repair after a crash.
        if let Err(e) = self.store.recording_closed(rec_id).await {
            tracing::warn!(%rec_id, error = %e, "could not close the recording's metadata");
        }
        params
    }

    /// Recordings a crash cut off (started, no final event queued): each file is repaired and
    /// its final `calling.call.record` event queued, as if it had ended now.
    pub(crate) async fn finish_recordings_cut_by_crash(&self) {
        let open = match self.store.open_recordings().await {
            Ok(open) => open,
            Err(e) => return tracing::warn!(error = %e, "could not read open recordings"),
        };
        for r in open {
            tracing::warn!(rec_id = %r.id, call_id = %r.call_id, "recording was cut by a restart; repaired");
            // A transcription cut by the crash is not transcribed (docs/streaming.md).
            let meta = RecordingMeta {
                transcript: None,
                control_id: r.control_id,
                status_url: r.status_url,
                url: r.url,
                format: r.format,
                audio: serde_json::from_str(&r.audio).unwrap_or(Value::Null),
                started_ms: r.started_at_ms as u64,
                project_id: r.project_id,
                conference: None,
            };
            let path = std::path::Path::new(&r.path);
            let done = RecordingDone::after_crash(r.id, r.call_id, path, meta);
            self.recording_done(done).await;
        }
    }

    async fn queue_record_event(&self, done: RecordingDone) -> Option<Value> {
        // A conference's recording is told about the call that asked for it.
        let about = done
            .meta
            .conference
            .as_ref()
            .map_or(done.call_id, |c| c.call_id);
        let Ok(Some(call)) = self.store.get_call(done.meta.project_id, about).await else {
            return None;
        };
        let ident = self.identity_of(&call);
        let params = webhook::events::record_end_params(&webhook::events::RecordEnd {
            call_id: done.call_id,
            node_id: ident.node_id,
            control_id: &done.meta.control_id,
            state: done.outcome.state(),
            recording_id: done.rec_id,
            start_ms: done.meta.started_ms,
            end_ms: now_ms(),
            audio: &done.meta.audio,
            url: &done.meta.url,
            format: &done.meta.format,
            duration_ms: done.duration_ms,
            size_bytes: done.size_bytes,
            playable: done.playable,
        });
        if let Some(conference) = done.meta.conference.as_ref() {
            // `calling.conference` `record-stop` (swml.md §6.13), with what a call's
            // `calling.call.record` ending says about the file.
            let mut params = params;
            if let Some(p) = params.as_object_mut() {
                p.insert("status".into(), json!("record-stop"));
                p.insert("conference_id".into(), json!(conference.conference_id));
                p.insert("name".into(), json!(conference.name));
                p.insert("call_id".into(), json!(conference.call_id));
            }
            if let Some(url) = done.meta.status_url.as_deref() {
                let event = ident.envelope("calling.conference", now_ms(), params.clone());
                self.notify(conference.call_id, url, &event).await;
            }
            return Some(params);
        }
        if let Some(url) = done.meta.status_url.as_deref() {
            let event = ident.envelope("calling.call.record", now_ms(), params.clone());
            self.notify(done.call_id, url, &event).await;
        }
        Some(params)
    }
}

impl NodeInner {
    /// A recording's bytes: the local file while it is there, else the bucket's object.
    pub(crate) async fn recording_bytes(
        &self,
        project: Uuid,
        rec_id: Uuid,
        format: record::Format,
    ) -> Result<Vec<u8>, ControlError> {
        match self.storage.bytes(project, rec_id, format).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(ControlError::NotFound),
            Err(storage::StorageError::Io(e)) => Err(ControlError::Internal(e.to_string())),
            Err(e) => Err(ControlError::Unavailable(format!("recording storage: {e}"))),
        }
    }
}
