//! `play` (swml.md §6.19): `url` or `urls` of http(s) audio, `say:`, `silence:`, `ring:`.

use serde_json::Value;

use super::{as_bool, as_f64};
use crate::run::{Effect, Flow, PlayItem, Run, Waiting};

pub const DEFAULT_VOICE: &str = "Polly.Salli";
pub const DEFAULT_LANGUAGE: &str = "en-US";
pub const DEFAULT_GENDER: &str = "female";

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    let urls: Vec<String> = match (p.get("url"), p.get("urls")) {
        (Some(_), Some(_)) => {
            run.warn(
                "relay_script_method_parameter_conflict",
                "play takes `url` or `urls`, not both",
            );
            return Flow::Next;
        }
        (Some(u), None) => vec![crate::expr::stringify(u)],
        (None, Some(Value::Array(a))) => a.iter().map(crate::expr::stringify).collect(),
        _ => {
            run.warn(
                "relay_script_method_parameter_missing",
                "play needs `url` or `urls`",
            );
            return Flow::Next;
        }
    };
    let voice = tts_setting(run, &p, "say_voice", DEFAULT_VOICE);
    let language = tts_setting(run, &p, "say_language", DEFAULT_LANGUAGE);
    let gender = tts_setting(run, &p, "say_gender", DEFAULT_GENDER);
    let mut items = Vec::with_capacity(urls.len());
    for u in &urls {
        match parse_playable(u, &voice, &language, &gender) {
            Ok(item) => items.push(item),
            Err(why) => {
                run.warn("relay_script_method_execute_failed", format!("play: {why}"));
                return Flow::Next;
            }
        }
    }
    let volume_db = p
        .get("volume")
        .and_then(as_f64)
        .unwrap_or(0.0)
        .clamp(-40.0, 40.0);
    let auto_answer = p.get("auto_answer").and_then(as_bool).unwrap_or(true);
    let status_url = p
        .get("status_url")
        .and_then(Value::as_str)
        .map(str::to_string);
    Flow::Wait(
        Waiting::Method { name: "play" },
        Some(Box::new(Effect::Play {
            items,
            volume_db,
            status_url,
            auto_answer,
        })),
    )
}

/// Step parameter > `vars.<name>` > built-in default (swml.md §4.5).
pub(crate) fn tts_setting(run: &Run, p: &Value, name: &str, default: &str) -> String {
    p.get(name)
        .and_then(Value::as_str)
        .or_else(|| run.scope.vars.get(name).and_then(Value::as_str))
        .unwrap_or(default)
        .to_string()
}

pub fn parse_playable(
    u: &str,
    voice: &str,
    language: &str,
    gender: &str,
) -> Result<PlayItem, String> {
    let t = u.trim();
    if t.starts_with("http://") || t.starts_with("https://") {
        return Ok(PlayItem::Audio { url: t.to_string() });
    }
    if let Some(text) = t.strip_prefix("say:") {
        let text = text.strip_prefix(' ').unwrap_or(text);
        if text.trim().is_empty() {
            return Err("`say:` with empty text".into());
        }
        return Ok(PlayItem::Say {
            text: text.to_string(),
            voice: voice.to_string(),
            language: language.to_string(),
            gender: gender.to_string(),
        });
    }
    if let Some(secs) = t.strip_prefix("silence:") {
        let s: f64 = secs
            .trim()
            .parse()
            .map_err(|_| format!("bad silence duration `{secs}`"))?;
        if !(s > 0.0 && s.is_finite()) {
            return Err(format!("silence duration must be > 0, got `{secs}`"));
        }
        return Ok(PlayItem::Silence { seconds: s });
    }
    if let Some(rest) = t.strip_prefix("ring:") {
        let rest = rest.trim();
        let (seconds, country) = match rest.split_once(':') {
            Some((d, cc)) => {
                let d: f64 = d
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad ring duration `{d}`"))?;
                (Some(d), cc.trim())
            }
            None => (None, rest),
        };
        if country.is_empty() || !country.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
            return Err(format!("bad ring country `{country}`"));
        }
        return Ok(PlayItem::Ring {
            country: country.to_ascii_lowercase(),
            seconds,
        });
    }
    Err(format!(
        "`{t}` is not a playable URL (http(s)://, say:, silence:, ring:)"
    ))
}
