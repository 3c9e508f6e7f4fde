//! `calling.live_transcribe` and `calling.live_translate` (calling-api.md §6.28, §6.29).
//! `action` is the string `"stop"` or an object with exactly one action key.

use serde_json::{Map, Value};

use super::codes::{INVALID_PARAMETER, MISSING_REQUIRED_PARAMETER};
use super::fields::Obj;
use super::transcription::{directions, live_speech_settings, summarize};

const FILTER_PRESETS: [&str; 5] = ["polite", "rude", "professional", "shakespeare", "gen-z"];

pub fn transcribe(p: &mut Obj<'_>) {
    action(p, &["start", "summarize"], |name, o| match name {
        "start" => transcribe_start(o),
        _ => summarize(o),
    });
}

pub fn translate(p: &mut Obj<'_>) {
    action(p, &["start", "summarize", "inject"], |name, o| match name {
        "start" => translate_start(o),
        "inject" => {
            o.req_str("message");
            o.req_enum("direction", &super::transcription::TRANSCRIBE_DIRECTIONS);
        }
        _ => summarize(o),
    });
    p.opt_http_url("status_url");
}

fn action<'a>(p: &mut Obj<'a>, names: &[&str], validate: impl FnOnce(&str, &mut Obj<'a>)) {
    let expected = format!(
        "must be \"stop\" or an object with one of: {}",
        names.join(", ")
    );
    let Some(value) = p.get("action") else {
        p.fail("action", MISSING_REQUIRED_PARAMETER, "is required");
        return;
    };
    let map: &'a Map<String, Value> = match value {
        Value::String(s) if s == "stop" => {
            p.put("action", "stop");
            return;
        }
        Value::Object(map) => map,
        _ => {
            p.fail("action", INVALID_PARAMETER, expected);
            return;
        }
    };
    let chosen: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| map.get(*n).is_some_and(|v| !v.is_null()))
        .collect();
    let [name] = chosen[..] else {
        p.fail("action", INVALID_PARAMETER, expected);
        return;
    };
    let mut outer = p.nested(map, p.attr("action"));
    outer.req_object(name, |o| validate(name, o));
    let normalised = p.absorb(outer);
    p.put("action", normalised);
}

/// A24: `direction` may be left out; both legs are transcribed then.
fn transcribe_start(s: &mut Obj<'_>) {
    s.req_str("lang");
    directions(s, "direction", false);
    live_speech_settings(s);
}

fn translate_start(s: &mut Obj<'_>) {
    s.req_str("from_lang");
    s.req_str("to_lang");
    directions(s, "direction", true);
    s.opt_str("from_voice");
    s.opt_str("to_voice");
    for key in ["filter_from", "filter_to"] {
        s.opt_str_where(
            key,
            |f| {
                FILTER_PRESETS.contains(&f)
                    || f.strip_prefix("prompt:").is_some_and(|t| !t.is_empty())
            },
            INVALID_PARAMETER,
            "must be polite, rude, professional, shakespeare, gen-z or prompt:<text>",
        );
    }
    live_speech_settings(s);
}
