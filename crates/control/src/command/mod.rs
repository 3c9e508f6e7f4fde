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
pub mod fax;
pub mod fork;
pub mod play;
pub mod record;
pub mod transfer;

pub use ai::*;
pub use collect::*;
pub use detect::*;
pub use fax::*;
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

impl UpdateParams {
    /// Whether a call in `status` may be updated this way (calling-api.md §6.2): an ended call
    /// never; `canceled` only before the answer; `completed` and a new document only once
    /// answered.
    pub fn check(&self, status: CallStatus) -> Result<(), crate::ControlError> {
        use crate::ControlError;
        if status.is_terminal() || status == CallStatus::Ending {
            return Err(ControlError::invalid_state(
                "cannot_update_completed",
                "the call has ended",
            ));
        }
        match self.status {
            Some(CallStatus::Canceled) if !status.is_pre_answer() => {
                return Err(ControlError::invalid_state(
                    "cannot_cancel_in_progress",
                    "only a call that is not answered yet can be canceled",
                ))
            }
            Some(CallStatus::Completed) if status != CallStatus::Answered => {
                return Err(ControlError::invalid_state(
                    "invalid_state",
                    "only an answered call can be completed",
                ))
            }
            _ => {}
        }
        if (self.url.is_some() || self.swml.is_some()) && status != CallStatus::Answered {
            return Err(ControlError::invalid_state(
                "cannot_redirect_not_in_progress",
                "only an answered call can be redirected",
            ));
        }
        Ok(())
    }
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

/// Declares [`CommandName`] from one table: variant => wire name.
macro_rules! command_names {
    ($($variant:ident => $name:literal,)+) => {
        /// The 42 command names of the Calling API (calling-api.md §2.2), `dial` included, in the
        /// order of that table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CommandName {
            $($variant,)+
        }

        impl CommandName {
            pub const ALL: [CommandName; 42] = [$(CommandName::$variant,)+];

            /// The name on the wire (`"calling.play"`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CommandName::$variant => $name,)+
                }
            }
        }
    };
}

command_names! {
    Dial => "dial",
    Update => "update",
    End => "calling.end",
    Transfer => "calling.transfer",
    Disconnect => "calling.disconnect",
    Play => "calling.play",
    PlayPause => "calling.play.pause",
    PlayResume => "calling.play.resume",
    PlayStop => "calling.play.stop",
    PlayVolume => "calling.play.volume",
    Record => "calling.record",
    RecordPause => "calling.record.pause",
    RecordResume => "calling.record.resume",
    RecordStop => "calling.record.stop",
    Collect => "calling.collect",
    CollectStop => "calling.collect.stop",
    CollectStartInputTimers => "calling.collect.start_input_timers",
    Detect => "calling.detect",
    DetectStop => "calling.detect.stop",
    Tap => "calling.tap",
    TapStop => "calling.tap.stop",
    Stream => "calling.stream",
    StreamStop => "calling.stream.stop",
    Transcribe => "calling.transcribe",
    TranscribeStop => "calling.transcribe.stop",
    Denoise => "calling.denoise",
    DenoiseStop => "calling.denoise.stop",
    AiHold => "calling.ai_hold",
    AiUnhold => "calling.ai_unhold",
    AiMessage => "calling.ai_message",
    AiStop => "calling.ai.stop",
    AiSidecar => "calling.ai_sidecar",
    AiSidecarPoke => "calling.ai_sidecar.poke",
    AiSidecarAsk => "calling.ai_sidecar.ask",
    AiSidecarStop => "calling.ai_sidecar.stop",
    AiSidecarStatus => "calling.ai_sidecar.status",
    LiveTranscribe => "calling.live_transcribe",
    LiveTranslate => "calling.live_translate",
    SendFaxStop => "calling.send_fax.stop",
    ReceiveFaxStop => "calling.receive_fax.stop",
    Refer => "calling.refer",
    UserEvent => "calling.user_event",
}

impl CommandName {
    /// The command a wire name names (exact spelling).
    pub fn parse(name: &str) -> Option<CommandName> {
        CommandName::ALL.into_iter().find(|c| c.as_str() == name)
    }
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
        self.kind().as_str()
    }

    /// Which command this is.
    pub fn kind(&self) -> CommandName {
        use CallCommand::*;
        match self {
            Update(_) => CommandName::Update,
            End(_) => CommandName::End,
            Transfer(_) => CommandName::Transfer,
            Disconnect(_) => CommandName::Disconnect,
            Play(_) => CommandName::Play,
            PlayPause(_) => CommandName::PlayPause,
            PlayResume(_) => CommandName::PlayResume,
            PlayStop(_) => CommandName::PlayStop,
            PlayVolume(_) => CommandName::PlayVolume,
            Record(_) => CommandName::Record,
            RecordPause(_) => CommandName::RecordPause,
            RecordResume(_) => CommandName::RecordResume,
            RecordStop(_) => CommandName::RecordStop,
            Collect(_) => CommandName::Collect,
            CollectStop(_) => CommandName::CollectStop,
            CollectStartInputTimers(_) => CommandName::CollectStartInputTimers,
            Detect(_) => CommandName::Detect,
            DetectStop(_) => CommandName::DetectStop,
            Tap(_) => CommandName::Tap,
            TapStop(_) => CommandName::TapStop,
            Stream(_) => CommandName::Stream,
            StreamStop(_) => CommandName::StreamStop,
            Transcribe(_) => CommandName::Transcribe,
            TranscribeStop(_) => CommandName::TranscribeStop,
            Denoise(_) => CommandName::Denoise,
            DenoiseStop(_) => CommandName::DenoiseStop,
            AiHold(_) => CommandName::AiHold,
            AiUnhold(_) => CommandName::AiUnhold,
            AiMessage(_) => CommandName::AiMessage,
            AiStop(_) => CommandName::AiStop,
            AiSidecar(_) => CommandName::AiSidecar,
            AiSidecarPoke(_) => CommandName::AiSidecarPoke,
            AiSidecarAsk(_) => CommandName::AiSidecarAsk,
            AiSidecarStop(_) => CommandName::AiSidecarStop,
            AiSidecarStatus(_) => CommandName::AiSidecarStatus,
            LiveTranscribe(_) => CommandName::LiveTranscribe,
            LiveTranslate(_) => CommandName::LiveTranslate,
            SendFaxStop(_) => CommandName::SendFaxStop,
            ReceiveFaxStop(_) => CommandName::ReceiveFaxStop,
            Refer(_) => CommandName::Refer,
            UserEvent(_) => CommandName::UserEvent,
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
            assert_eq!(CommandName::parse(name), Some(cmd.kind()));
            let again = CallCommand::from_json(name, cmd.params_json()).unwrap();
            assert_eq!(again, cmd);
        }
    }

    /// serde's tags and the name table agree: every name but `dial`/`update` (which are not
    /// deserialised from a tag) is refused by from_json only for its params, never its name.
    #[test]
    fn the_name_table_matches_the_serde_tags() {
        for kind in CommandName::ALL {
            if matches!(kind, CommandName::Dial | CommandName::Update) {
                continue;
            }
            let err = CallCommand::from_json(kind.as_str(), json!(null))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(!err.contains("unknown variant"), "{}: {err}", kind.as_str());
        }
        assert_eq!(CommandName::parse("calling.bogus"), None);
        assert_eq!(CommandName::parse("Calling.End"), None);
    }

    #[test]
    fn update_rules_follow_the_call_status() {
        let code = |p: &UpdateParams, s: CallStatus| match p.check(s) {
            Ok(()) => "ok",
            Err(crate::ControlError::InvalidState { code, .. }) => code,
            Err(other) => panic!("{other:?}"),
        };
        let cancel = UpdateParams {
            status: Some(CallStatus::Canceled),
            ..Default::default()
        };
        let complete = UpdateParams {
            status: Some(CallStatus::Completed),
            ..Default::default()
        };
        let redirect = UpdateParams {
            url: Some("https://app.example/next".into()),
            ..Default::default()
        };
        assert_eq!(code(&cancel, CallStatus::Ringing), "ok");
        assert_eq!(
            code(&cancel, CallStatus::Answered),
            "cannot_cancel_in_progress"
        );
        assert_eq!(code(&complete, CallStatus::Answered), "ok");
        assert_eq!(code(&complete, CallStatus::Ringing), "invalid_state");
        assert_eq!(
            code(&redirect, CallStatus::Ringing),
            "cannot_redirect_not_in_progress"
        );
        assert_eq!(
            code(&redirect, CallStatus::Ended),
            "cannot_update_completed"
        );
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
