//! `prompt` (swml.md §6.20): play, and collect DTMF and/or speech with REST `calling.collect`
//! underneath. The mode follows which parameters are present (§6.20 "Mode selection").

use control::command::{CollectParams, DigitsParams, SpeechParams};
use control::session::{CollectResult, OpResult};
use serde_json::{json, Value};

use super::{as_f64, play, set_var};
use crate::run::{Completion, Effect, Flow, Run, Waiting};

const DIGIT_KEYS: [&str; 4] = [
    "max_digits",
    "terminators",
    "digit_timeout",
    "initial_timeout",
];
const SPEECH_KEYS: [&str; 4] = [
    "speech_timeout",
    "speech_end_timeout",
    "speech_language",
    "speech_hints",
];

fn failed(run: &mut Run, code: &'static str, why: String) -> Flow {
    run.warn(code, format!("prompt: {why}"));
    set_prompt(run, "failed", "", "");
    Flow::Next
}

fn positive(p: &Value, key: &str) -> Result<Option<f64>, String> {
    match p.get(key) {
        None => Ok(None),
        Some(v) => as_f64(v)
            .filter(|x| x.is_finite() && *x > 0.0)
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a number > 0")),
    }
}

pub(crate) fn run(run: &mut Run, params: &Value, now: u64) -> Flow {
    let p = run.expand(params);
    if !p.is_object() {
        return failed(
            run,
            "relay_script_element_wrong_type",
            "takes an object".into(),
        );
    }
    let playables: Vec<String> = match p.get("play") {
        Some(Value::Array(a)) => a.iter().map(crate::expr::stringify).collect(),
        Some(v) => vec![crate::expr::stringify(v)],
        None => {
            return failed(
                run,
                "relay_script_method_parameter_missing",
                "needs `play`".into(),
            )
        }
    };
    let play = match play::play_params(run, &p, &playables, "prompt-play") {
        Ok(play) => play,
        Err(why) => return failed(run, "relay_script_method_parameter_invalid_value", why),
    };
    match collect_params(run, &p) {
        Ok(collect) => Flow::Wait(
            Waiting::Control {
                name: "prompt",
                started: now,
            },
            Some(Box::new(Effect::Prompt { play, collect })),
        ),
        Err(why) => failed(run, "relay_script_method_parameter_invalid_value", why),
    }
}

/// The `calling.collect` params for the prompt's mode.
fn collect_params(run: &mut Run, p: &Value) -> Result<CollectParams, String> {
    let has = |keys: &[&str]| keys.iter().any(|k| p.get(*k).is_some());
    let speech_mode = has(&SPEECH_KEYS);
    let digit_mode = !speech_mode || has(&DIGIT_KEYS);
    let mut collect = CollectParams::new(run.new_control_id("prompt"));
    if let Some(t) = positive(p, "initial_timeout")? {
        collect.initial_timeout = t;
    }
    // The prompt's runtime starts the input timers when its playback ends.
    collect.start_input_timers = false;
    if digit_mode {
        let max = match p.get("max_digits") {
            None => 1,
            Some(v) => as_f64(v)
                .filter(|m| m.is_finite() && *m >= 1.0 && *m <= 1000.0)
                .ok_or("`max_digits` must be a whole number ≥ 1")? as u32,
        };
        let mut digits = DigitsParams::new(max);
        // SWML has no default terminator (REST's is `#`): none unless given.
        digits.terminators = p
            .get("terminators")
            .map(crate::expr::stringify)
            .unwrap_or_default();
        if let Some(t) = positive(p, "digit_timeout")? {
            digits.digit_timeout = t;
        }
        collect.digits = Some(digits);
    }
    if speech_mode {
        let mut speech = SpeechParams::new();
        if let Some(t) = positive(p, "speech_end_timeout")? {
            speech.end_silence_timeout = t;
        }
        if let Some(t) = positive(p, "speech_timeout")? {
            speech.speech_timeout = t;
        }
        if let Some(l) = p.get("speech_language") {
            speech.language = crate::expr::stringify(l);
        }
        match p.get("speech_hints") {
            None => {}
            Some(Value::Array(h)) => {
                speech.hints = h.iter().map(crate::expr::stringify).collect();
            }
            Some(_) => return Err("`speech_hints` must be a list of strings".into()),
        }
        if let Some(e) = p.get("speech_engine") {
            speech.engine = Some(crate::expr::stringify(e));
        }
        collect.speech = Some(speech);
    }
    collect.status_url = p
        .get("status_url")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(collect)
}

fn set_prompt(run: &mut Run, result: &str, value: &str, raw: &str) {
    set_var(run, "prompt_result", result);
    set_var(run, "prompt_value", value);
    set_var(run, "prompt_value_raw", raw);
}

/// Variables from the collect's result (swml.md §6.20 completion table).
pub(crate) fn on_completion(run: &mut Run, completion: Completion) {
    let result = match completion {
        Completion::Op(OpResult::Collected(r)) => r,
        Completion::Failed { message } => {
            run.warn(
                "relay_script_method_execute_failed",
                format!("prompt failed: {message}"),
            );
            set_prompt(run, "failed", "", "");
            return;
        }
        _ => CollectResult::Error,
    };
    match result {
        CollectResult::Digit { digits, terminator } => {
            if digits.is_empty() {
                set_prompt(run, "no_match", "", "");
            } else {
                set_prompt(run, "match_digits", &digits, &digits);
            }
            set_var(run, "prompt_digit_terminator", &terminator);
        }
        CollectResult::Speech { text, confidence } => {
            let value = normalize_speech(&text);
            if value.is_empty() {
                set_prompt(run, "no_match", "", &text);
            } else {
                set_prompt(run, "match_speech", &value, &text);
            }
            run.scope
                .vars
                .insert("prompt_speech_confidence".into(), json!(confidence));
        }
        CollectResult::NoInput => set_prompt(run, "no_input", "", ""),
        CollectResult::NoMatch => set_prompt(run, "no_match", "", ""),
        _ => set_prompt(run, "failed", "", ""),
    }
}

/// swml.md §6.20 [REC]: trimmed, trailing punctuation removed, lower-cased.
fn normalize_speech(s: &str) -> String {
    s.trim()
        .trim_end_matches(|c: char| c.is_ascii_punctuation())
        .trim()
        .to_lowercase()
}
