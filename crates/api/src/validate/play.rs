//! `calling.play` and `calling.play.volume` (calling-api.md §6.6, §6.8).

use control::command::{MAX_TTS_CHARS_PER_ITEM, MAX_TTS_CHARS_PER_PLAY};
use serde_json::{Map, Value};

use super::codes::{INVALID_PARAMETER, MISSING_REQUIRED_PARAMETER, MUST_BE_OBJECT};
use super::fields::{Limits, Obj};
use super::formats;
use super::simple::{control_id_or_generated, required_control_id};

pub const PLAY_DIRECTIONS: [&str; 3] = ["listen", "speak", "both"];
const TTS_GENDERS: [&str; 2] = ["male", "female"];
const MEDIA_TYPES: [&str; 4] = ["audio", "tts", "silence", "ringtone"];
const VOLUME_DB: Limits = Limits::between(-40.0, 40.0);

/// The 50 ringtone names (`bong` is not a country).
pub const RINGTONES: [&str; 50] = [
    "at", "au", "be", "bg", "bong", "br", "ca", "ch", "cl", "cn", "cy", "cz", "de", "dk", "dz",
    "ee", "eg", "es", "fi", "fr", "gr", "hu", "il", "in", "it", "jp", "ko", "lt", "mx", "my", "nl",
    "no", "nz", "ph", "pk", "pl", "pt", "ro", "rs", "ru", "sa", "se", "sg", "th", "tr", "tw", "uk",
    "us", "ve", "za",
];

const VOICE_CHARSET: &str = "may only contain letters, digits, '.' and '-'";

pub fn play(p: &mut Obj<'_>) {
    control_id_or_generated(p);
    media_list(p);
    p.opt_num("volume", VOLUME_DB);
    p.opt_enum("direction", &PLAY_DIRECTIONS);
    p.opt_int("loop", Limits::between(0.0, f64::from(i32::MAX)));
    p.opt_str("language");
    p.opt_str_where(
        "voice",
        formats::is_voice_name,
        INVALID_PARAMETER,
        VOICE_CHARSET,
    );
    p.opt_enum("gender", &TTS_GENDERS);
    p.opt_http_url("status_url");
}

pub fn volume(p: &mut Obj<'_>) {
    required_control_id(p);
    p.req_num("volume", VOLUME_DB);
}

/// `play`: a non-empty array of `{type, params}` items; the flattened SDK form
/// `{"type":"tts","text":"..."}` is normalised into `params` (A24).
fn media_list(p: &mut Obj<'_>) {
    let Some(items) = p.opt_array("play") else {
        if !p.present("play") {
            p.fail("play", MISSING_REQUIRED_PARAMETER, "is required");
        }
        return;
    };
    if items.is_empty() {
        p.fail(
            "play",
            MISSING_REQUIRED_PARAMETER,
            "must hold at least one media item",
        );
        return;
    }
    let mut normalised = Vec::with_capacity(items.len());
    let mut tts_chars = 0;
    for (index, item) in items.iter().enumerate() {
        let key = format!("play.{index}");
        let Some(item) = item.as_object() else {
            p.fail(&key, MUST_BE_OBJECT, "must be an object {type, params}");
            continue;
        };
        normalised.push(media_item(p, &key, item, &mut tts_chars));
    }
    if tts_chars > MAX_TTS_CHARS_PER_PLAY {
        p.fail(
            "play",
            INVALID_PARAMETER,
            format!(
                "has {tts_chars} characters of text to speak; at most {MAX_TTS_CHARS_PER_PLAY} per command"
            ),
        );
    }
    p.put("play", normalised);
}

/// One item; `tts_chars` counts the text to speak of every item (capped per command).
fn media_item<'a>(
    p: &mut Obj<'a>,
    key: &str,
    item: &'a Map<String, Value>,
    tts_chars: &mut usize,
) -> Value {
    let path = p.attr(key);
    let mut outer = p.nested(item, path.clone());
    let kind = outer.req_enum("type", &MEDIA_TYPES);
    let mut params = match outer.get("params") {
        Some(Value::Object(map)) => outer.nested(map, outer.attr("params")),
        Some(_) => {
            outer.fail("params", MUST_BE_OBJECT, "must be an object");
            return Value::Object(p.absorb(outer));
        }
        None => {
            // Flattened: the item itself carries the params, reported under `play.N`.
            outer.consult_all();
            let mut inner = outer.nested(item, path);
            inner.get("type");
            inner
        }
    };
    match kind {
        Some("audio") => {
            params.req_http_url("url");
        }
        Some("tts") => {
            if let Some(text) = params.req_str("text") {
                let n = text.chars().count();
                *tts_chars += n;
                if n > MAX_TTS_CHARS_PER_ITEM {
                    params.fail(
                        "text",
                        INVALID_PARAMETER,
                        format!("is {n} characters; at most {MAX_TTS_CHARS_PER_ITEM} per item"),
                    );
                }
            }
            params.opt_str("language");
            params.opt_enum("gender", &TTS_GENDERS);
            params.opt_str_where(
                "voice",
                formats::is_voice_name,
                INVALID_PARAMETER,
                VOICE_CHARSET,
            );
        }
        Some("silence") => {
            params.req_num("duration", Limits::POSITIVE);
        }
        Some("ringtone") => {
            params.req_enum("name", &RINGTONES);
            params.opt_num("duration", Limits::POSITIVE);
        }
        _ => params.consult_all(),
    }
    let params = outer.absorb(params);
    outer.put("params", params);
    Value::Object(p.absorb(outer))
}
