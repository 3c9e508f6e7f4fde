//! Pieces shared by the transcription-based commands (live_transcribe, live_translate,
//! ai_sidecar): legs and speech engine settings.

use serde_json::Value;

use super::codes::INVALID_PARAMETER;
use super::fields::{Limits, Obj};

pub const TRANSCRIBE_DIRECTIONS: [&str; 2] = ["remote-caller", "local-caller"];
pub const SPEECH_ENGINES: [&str; 2] = ["deepgram", "google"];

/// A non-empty `TranscribeDirection[]`; when not `required`, absent means both legs
/// (control::command::ai::both_legs).
pub fn directions(o: &mut Obj<'_>, key: &str, required: bool) -> Option<Vec<String>> {
    let legs = o.field(key, required, |v| {
        let legs: Option<Vec<String>> = v.as_array().and_then(|items| {
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .filter(|s| TRANSCRIBE_DIRECTIONS.contains(s))
                        .map(str::to_owned)
                })
                .collect()
        });
        match legs {
            Some(legs) if !legs.is_empty() => {
                let normalised = Value::from(legs.clone());
                Ok((legs, normalised))
            }
            _ => Err((
                INVALID_PARAMETER,
                "must be a non-empty array of remote-caller, local-caller".to_owned(),
            )),
        }
    });
    legs
}

/// `{webhook?, prompt?}` of a `summarize` action.
pub fn summarize(s: &mut Obj<'_>) {
    s.opt_http_url("webhook");
    s.opt_str("prompt");
}

/// The speech settings live_transcribe and live_translate share (defaults: control::command::ai).
pub fn live_speech_settings(o: &mut Obj<'_>) {
    o.opt_http_url("webhook");
    o.opt_bool("live_events");
    o.opt_bool("ai_summary");
    o.opt_str("ai_summary_prompt");
    o.opt_enum("speech_engine", &SPEECH_ENGINES);
    o.opt_int(
        "speech_timeout",
        Limits::between(1500.0, f64::from(i32::MAX)),
    );
    o.opt_int("vad_silence_ms", Limits::between(1.0, f64::from(i32::MAX)));
    o.opt_int("vad_thresh", Limits::between(0.0, 1800.0));
    o.opt_int("debug_level", Limits::between(0.0, 2.0));
}
