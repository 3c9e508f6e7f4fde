//! `calling.record` and `calling.record.pause` (calling-api.md §6.9, §6.10).

use serde_json::Value;

use super::codes::{INVALID_PARAMETER, MISSING_REQUIRED_PARAMETER, MUST_BE_OBJECT};
use super::fields::{Limits, Obj};
use super::formats;
use super::play::PLAY_DIRECTIONS;
use super::simple::{control_id_or_generated, required_control_id};

/// `params.record.audio`, or the SDK's `params.audio` alias (A3); `record.audio` wins.
pub fn record(p: &mut Obj<'_>) {
    control_id_or_generated(p);
    p.opt_http_url("status_url");

    let record = p.get("record");
    let alias = p.get("audio");
    let record_map = match record {
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            p.fail("record", MUST_BE_OBJECT, "must be an object {audio: {...}}");
            return;
        }
        None => None,
    };
    let nested_audio = record_map
        .and_then(|m| m.get("audio"))
        .filter(|v| !v.is_null());
    let (audio, path) = match (nested_audio, alias) {
        (Some(audio), _) => (audio, "record.audio"),
        (None, Some(audio)) => (audio, "audio"),
        (None, None) if record_map.is_some() => {
            p.fail("record.audio", MISSING_REQUIRED_PARAMETER, "is required");
            return;
        }
        (None, None) => {
            p.fail(
                "record",
                MISSING_REQUIRED_PARAMETER,
                "is required ({audio: {...}})",
            );
            return;
        }
    };
    if let Some(map) = record_map {
        for key in map.keys().filter(|k| k.as_str() != "audio") {
            tracing::info!(attribute = %format!("record.{key}"), "ignoring unknown parameter");
        }
    }
    let Some(audio) = audio.as_object() else {
        p.fail(path, MUST_BE_OBJECT, "must be an object");
        return;
    };
    let mut params = p.nested(audio, path.to_owned());
    audio_params(&mut params);
    let normalised = p.absorb(params);
    p.put("record", serde_json::json!({ "audio": normalised }));
}

/// `RecordAudioParams` with the documented defaults filled in.
fn audio_params(a: &mut Obj<'_>) {
    a.opt_bool("beep");
    a.opt_enum("format", &["mp3", "wav", "mp4"]);
    a.opt_bool("stereo");
    a.opt_enum("direction", &PLAY_DIRECTIONS);
    a.opt_num("initial_timeout", Limits::NON_NEGATIVE);
    a.opt_num("end_silence_timeout", Limits::NON_NEGATIVE);
    a.opt_int("max_length", Limits::between(0.0, f64::from(i32::MAX)));
    a.opt_str_where(
        "terminators",
        formats::is_dtmf,
        INVALID_PARAMETER,
        "may only contain 0-9, A-D, * and #",
    );
    a.opt_num("input_sensitivity", Limits::between(0.0, 100.0));
}

pub fn pause(p: &mut Obj<'_>) {
    required_control_id(p);
    p.opt_enum("behavior", &["skip", "silence"]);
}
