//! `play` (swml.md §6.19): `url` or `urls` of http(s) audio, `say:`, `silence:`, `ring:`,
//! built into the same [`PlayParams`] as REST `calling.play`.

use control::command::{MediaItem, PlayParams, TtsGender, TtsItem};
use serde_json::Value;

use super::{as_bool, as_f64};
use crate::run::{Effect, Flow, Run, Waiting};

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
    let mut params = match play_params(run, &p, &urls, "play") {
        Ok(params) => params,
        Err(why) => {
            run.warn("relay_script_method_execute_failed", format!("play: {why}"));
            return Flow::Next;
        }
    };
    params.status_url = p
        .get("status_url")
        .and_then(Value::as_str)
        .map(str::to_string);
    let auto_answer = p.get("auto_answer").and_then(as_bool).unwrap_or(true);
    Flow::Wait(
        Waiting::Method { name: "play" },
        Some(Box::new(Effect::Play {
            params,
            auto_answer,
        })),
    )
}

/// The `calling.play` params of a `play` (or `prompt`) step: its playables, `volume` and the
/// `say_*` settings; everything else at the command's defaults.
pub(crate) fn play_params(
    run: &mut Run,
    p: &Value,
    urls: &[String],
    method: &str,
) -> Result<PlayParams, String> {
    let items = urls
        .iter()
        .map(|u| parse_playable(u))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(why) = control::command::tts_text_over_cap(&items) {
        return Err(why);
    }
    let mut params = PlayParams::new(run.new_control_id(method), items);
    if let Some(volume) = p.get("volume").and_then(as_f64) {
        params.volume = volume.clamp(-40.0, 40.0);
    }
    params.voice = tts_setting(run, p, "say_voice");
    if let Some(language) = tts_setting(run, p, "say_language") {
        params.language = language;
    }
    match tts_setting(run, p, "say_gender").as_deref() {
        None => {}
        Some("male") => params.gender = TtsGender::Male,
        Some("female") => params.gender = TtsGender::Female,
        Some(other) => return Err(format!("say_gender `{other}` is not male or female")),
    }
    Ok(params)
}

/// Step parameter > `vars.<name>` > the command's default (swml.md §4.5).
fn tts_setting(run: &Run, p: &Value, name: &str) -> Option<String> {
    p.get(name)
        .and_then(Value::as_str)
        .or_else(|| run.scope.vars.get(name).and_then(Value::as_str))
        .map(str::to_string)
}

pub fn parse_playable(u: &str) -> Result<MediaItem, String> {
    let t = u.trim();
    if t.starts_with("http://") || t.starts_with("https://") {
        return Ok(MediaItem::Audio { url: t.to_string() });
    }
    if let Some(text) = t.strip_prefix("say:") {
        let text = text.strip_prefix(' ').unwrap_or(text);
        if text.trim().is_empty() {
            return Err("`say:` with empty text".into());
        }
        return Ok(MediaItem::Tts(TtsItem {
            text: text.to_string(),
            language: None,
            gender: None,
            voice: None,
        }));
    }
    if let Some(secs) = t.strip_prefix("silence:") {
        let s: f64 = secs
            .trim()
            .parse()
            .map_err(|_| format!("bad silence duration `{secs}`"))?;
        if !(s > 0.0 && s.is_finite()) {
            return Err(format!("silence duration must be > 0, got `{secs}`"));
        }
        return Ok(MediaItem::Silence { duration: s });
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
        return Ok(MediaItem::Ringtone {
            name: country.to_ascii_lowercase(),
            duration: seconds,
            single_cycle: seconds.is_none(),
        });
    }
    Err(format!(
        "`{t}` is not a playable URL (http(s)://, say:, silence:, ring:)"
    ))
}
