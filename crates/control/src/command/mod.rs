//! Commands on an existing call: one typed variant per Calling API command (calling-api.md
//! §2.2), with parameter structs whose defaults live in [`defaults`]. The API validates JSON
//! into them; the SWML methods build the same values; the node executes them. JSON exists only
//! at the edges: [`CallCommand::from_json`] and [`CallCommand::params_json`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::status::{CallStatus, EndReason};

pub mod ai;
pub mod collect;
pub mod defaults;
pub mod detect;
pub mod fork;
pub mod play;
pub mod record;
pub mod transfer;

pub use ai::*;
pub use collect::*;
pub use detect::*;
pub use fork::*;
pub use play::*;
pub use record::*;
pub use transfer::*;

/// `update` (calling-api.md §6.2). At least one of `url`, `swml`, `status` is set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateParams {
    pub url: Option<String>,
    pub swml: Option<Value>,
    pub fallback_url: Option<String>,
    /// `canceled` or `completed`.
    pub status: Option<CallStatus>,
    pub status_url: Option<String>,
}

/// Commands that take no parameters (`{}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NoParams {}

/// The `.pause/.resume/.stop/.start_input_timers` family: the operation's handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlIdParams {
    pub control_id: String,
}

/// `calling.end` (§6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndParams {
    #[serde(default = "hangup")]
    pub reason: EndReason,
}

fn hangup() -> EndReason {
    EndReason::Hangup
}

/// `calling.user_event` (§6.32): the user's own event object, delivered as it came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEventParams {
    pub event: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", content = "params")]
pub enum CallCommand {
    /// Validated on its own (its call id travels in `params`).
    #[serde(skip)]
    Update(UpdateParams),
    #[serde(rename = "calling.end")]
    End(EndParams),
    #[serde(rename = "calling.transfer")]
    Transfer(TransferParams),
    #[serde(rename = "calling.disconnect")]
    Disconnect(NoParams),
    #[serde(rename = "calling.play")]
    Play(PlayParams),
    #[serde(rename = "calling.play.pause")]
    PlayPause(ControlIdParams),
    #[serde(rename = "calling.play.resume")]
    PlayResume(ControlIdParams),
    #[serde(rename = "calling.play.stop")]
    PlayStop(ControlIdParams),
    #[serde(rename = "calling.play.volume")]
    PlayVolume(PlayVolumeParams),
    #[serde(rename = "calling.record")]
    Record(RecordParams),
    #[serde(rename = "calling.record.pause")]
    RecordPause(RecordPauseParams),
    #[serde(rename = "calling.record.resume")]
    RecordResume(ControlIdParams),
    #[serde(rename = "calling.record.stop")]
    RecordStop(ControlIdParams),
    #[serde(rename = "calling.collect")]
    Collect(CollectParams),
    #[serde(rename = "calling.collect.stop")]
    CollectStop(ControlIdParams),
    #[serde(rename = "calling.collect.start_input_timers")]
    CollectStartInputTimers(ControlIdParams),
    #[serde(rename = "calling.detect")]
    Detect(DetectParams),
    #[serde(rename = "calling.detect.stop")]
    DetectStop(ControlIdParams),
    #[serde(rename = "calling.tap")]
    Tap(TapParams),
    #[serde(rename = "calling.tap.stop")]
    TapStop(ControlIdParams),
    #[serde(rename = "calling.stream")]
    Stream(StreamParams),
    #[serde(rename = "calling.stream.stop")]
    StreamStop(ControlIdParams),
    #[serde(rename = "calling.transcribe")]
    Transcribe(TranscribeParams),
    #[serde(rename = "calling.transcribe.stop")]
    TranscribeStop(ControlIdParams),
    #[serde(rename = "calling.denoise")]
    Denoise(NoParams),
    #[serde(rename = "calling.denoise.stop")]
    DenoiseStop(NoParams),
    #[serde(rename = "calling.ai_hold")]
    AiHold(AiHoldParams),
    #[serde(rename = "calling.ai_unhold")]
    AiUnhold(AiUnholdParams),
    #[serde(rename = "calling.ai_message")]
    AiMessage(AiMessageParams),
    #[serde(rename = "calling.ai.stop")]
    AiStop(AiStopParams),
    #[serde(rename = "calling.ai_sidecar")]
    AiSidecar(Box<AiSidecarParams>),
    #[serde(rename = "calling.ai_sidecar.poke")]
    AiSidecarPoke(SidecarTextParams),
    #[serde(rename = "calling.ai_sidecar.ask")]
    AiSidecarAsk(SidecarTextParams),
    #[serde(rename = "calling.ai_sidecar.stop")]
    AiSidecarStop(NoParams),
    #[serde(rename = "calling.ai_sidecar.status")]
    AiSidecarStatus(NoParams),
    #[serde(rename = "calling.live_transcribe")]
    LiveTranscribe(LiveTranscribeParams),
    #[serde(rename = "calling.live_translate")]
    LiveTranslate(Box<LiveTranslateParams>),
    #[serde(rename = "calling.send_fax.stop")]
    SendFaxStop(ControlIdParams),
    #[serde(rename = "calling.receive_fax.stop")]
    ReceiveFaxStop(ControlIdParams),
    #[serde(rename = "calling.refer")]
    Refer(ReferParams),
    #[serde(rename = "calling.user_event")]
    UserEvent(UserEventParams),
}

impl CallCommand {
    /// The typed command `name` with `params` (already checked by the API's validator, which
    /// reports every problem with its attribute; an error here means the two disagree).
    pub fn from_json(name: &str, params: Value) -> Result<CallCommand, serde_json::Error> {
        let mut envelope = Map::with_capacity(2);
        envelope.insert("command".into(), Value::String(name.to_owned()));
        envelope.insert("params".into(), params);
        serde_json::from_value(Value::Object(envelope))
    }

    /// The params as the API would show them, every default filled in (tests, logs).
    pub fn params_json(&self) -> Value {
        match self {
            CallCommand::Update(_) => Value::Null,
            other => serde_json::to_value(other)
                .ok()
                .and_then(|mut v| v.get_mut("params").map(Value::take))
                .unwrap_or(Value::Null),
        }
    }

    /// The Calling API command name.
    pub fn name(&self) -> &'static str {
        use CallCommand::*;
        match self {
            Update(_) => "update",
            End(_) => "calling.end",
            Transfer(_) => "calling.transfer",
            Disconnect(_) => "calling.disconnect",
            Play(_) => "calling.play",
            PlayPause(_) => "calling.play.pause",
            PlayResume(_) => "calling.play.resume",
            PlayStop(_) => "calling.play.stop",
            PlayVolume(_) => "calling.play.volume",
            Record(_) => "calling.record",
            RecordPause(_) => "calling.record.pause",
            RecordResume(_) => "calling.record.resume",
            RecordStop(_) => "calling.record.stop",
            Collect(_) => "calling.collect",
            CollectStop(_) => "calling.collect.stop",
            CollectStartInputTimers(_) => "calling.collect.start_input_timers",
            Detect(_) => "calling.detect",
            DetectStop(_) => "calling.detect.stop",
            Tap(_) => "calling.tap",
            TapStop(_) => "calling.tap.stop",
            Stream(_) => "calling.stream",
            StreamStop(_) => "calling.stream.stop",
            Transcribe(_) => "calling.transcribe",
            TranscribeStop(_) => "calling.transcribe.stop",
            Denoise(_) => "calling.denoise",
            DenoiseStop(_) => "calling.denoise.stop",
            AiHold(_) => "calling.ai_hold",
            AiUnhold(_) => "calling.ai_unhold",
            AiMessage(_) => "calling.ai_message",
            AiStop(_) => "calling.ai.stop",
            AiSidecar(_) => "calling.ai_sidecar",
            AiSidecarPoke(_) => "calling.ai_sidecar.poke",
            AiSidecarAsk(_) => "calling.ai_sidecar.ask",
            AiSidecarStop(_) => "calling.ai_sidecar.stop",
            AiSidecarStatus(_) => "calling.ai_sidecar.status",
            LiveTranscribe(_) => "calling.live_transcribe",
            LiveTranslate(_) => "calling.live_translate",
            SendFaxStop(_) => "calling.send_fax.stop",
            ReceiveFaxStop(_) => "calling.receive_fax.stop",
            Refer(_) => "calling.refer",
            UserEvent(_) => "calling.user_event",
        }
    }

    /// The operation handle the command starts or acts on, where it has one.
    pub fn control_id(&self) -> Option<&str> {
        use CallCommand::*;
        match self {
            Play(p) => Some(&p.control_id),
            PlayVolume(p) => Some(&p.control_id),
            Record(p) => Some(&p.control_id),
            RecordPause(p) => Some(&p.control_id),
            Collect(p) => Some(&p.control_id),
            Detect(p) => Some(&p.control_id),
            Tap(p) => Some(&p.control_id),
            Stream(p) => Some(&p.control_id),
            Transcribe(p) => Some(&p.control_id),
            AiStop(p) => p.control_id.as_deref(),
            PlayPause(p)
            | PlayResume(p)
            | PlayStop(p)
            | RecordResume(p)
            | RecordStop(p)
            | CollectStop(p)
            | CollectStartInputTimers(p)
            | DetectStop(p)
            | TapStop(p)
            | StreamStop(p)
            | TranscribeStop(p)
            | SendFaxStop(p)
            | ReceiveFaxStop(p) => Some(&p.control_id),
            _ => None,
        }
    }

    /// Whether the command acts on the call's media, so needs an answered call.
    pub fn needs_answered_call(&self) -> bool {
        use CallCommand::*;
        !matches!(
            self,
            Update(_) | End(_) | UserEvent(_) | Refer(_) | Disconnect(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn play_defaults_come_from_one_place() {
        let cmd = CallCommand::from_json(
            "calling.play",
            json!({"control_id": "c", "play": [{"type": "tts", "params": {"text": "hi"}}]}),
        )
        .unwrap();
        let CallCommand::Play(p) = &cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(p, &PlayParams::new("c".into(), p.play.clone()));
        assert_eq!(cmd.params_json()["loop"], json!(1));
        assert_eq!(cmd.params_json()["language"], json!("en-US"));
        assert_eq!(cmd.control_id(), Some("c"));
    }

    #[test]
    fn every_name_round_trips() {
        let samples = [
            ("calling.end", json!({})),
            ("calling.disconnect", json!({})),
            ("calling.denoise", json!({})),
            ("calling.play.stop", json!({"control_id": "x"})),
            (
                "calling.record",
                json!({"control_id": "x", "record": {"audio": {}}}),
            ),
            (
                "calling.collect",
                json!({"control_id": "x", "digits": {"max": 2}}),
            ),
            (
                "calling.detect",
                json!({"control_id": "x", "detect": {"type": "fax", "params": {}}}),
            ),
            ("calling.live_transcribe", json!({"action": "stop"})),
            (
                "calling.live_translate",
                json!({"action": {"inject": {"message": "hi", "direction": "local-caller"}}}),
            ),
            ("calling.ai_sidecar", json!({"lang": "en-US"})),
            ("calling.user_event", json!({"event": {"a": 1}})),
        ];
        for (name, params) in samples {
            let cmd = CallCommand::from_json(name, params).unwrap();
            assert_eq!(cmd.name(), name);
            let again = CallCommand::from_json(name, cmd.params_json()).unwrap();
            assert_eq!(again, cmd);
        }
    }

    #[test]
    fn record_defaults_match_default_impl() {
        let cmd = CallCommand::from_json(
            "calling.record",
            json!({"control_id": "x", "record": {"audio": {}}}),
        )
        .unwrap();
        let CallCommand::Record(r) = cmd else {
            panic!()
        };
        assert_eq!(r.record.audio, RecordAudio::default());
        assert_eq!(r.record.audio.format, RecordFormat::Mp3);
        assert_eq!(r.record.audio.direction, AudioDirection::Speak);
    }
}
