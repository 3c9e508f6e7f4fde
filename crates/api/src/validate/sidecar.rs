//! `calling.ai_sidecar` and its `.poke`/`.ask` (calling-api.md §6.26, §6.27).

use serde_json::Value;

use super::codes::{INVALID_PARAMETER, MUST_BE_OBJECT};
use super::fields::{Limits, Obj};
use super::transcription::{directions, summarize, SPEECH_ENGINES, TRANSCRIBE_DIRECTIONS};

const RESERVED_FUNCTION: &str = "sidecar_skip";

pub fn sidecar(p: &mut Obj<'_>) {
    p.req_str("lang");
    prompt(p);
    p.opt_str("model");
    // The sidecar needs both legs; a single leg is refused.
    if let Some(legs) = directions(p, "direction", false) {
        if !TRANSCRIBE_DIRECTIONS
            .iter()
            .all(|d| legs.iter().any(|l| l == d))
        {
            p.fail(
                "direction",
                INVALID_PARAMETER,
                "must hold both remote-caller and local-caller",
            );
        }
    }
    p.opt_enum("customer_role", &TRANSCRIBE_DIRECTIONS);
    p.opt_http_url("url");
    p.opt_object("SWAIG", swaig);
    permissions(p);
    p.opt_any_object("global_data");
    p.opt_str_list("hints", 1);
    tuning(p);
    p.opt_object("action", |a| {
        a.req_object("summarize", summarize);
    });
}

/// `.poke` and `.ask`: `text` is required.
pub fn text(p: &mut Obj<'_>) {
    p.req_str("text");
}

/// A string, or an object with exactly one of `text` (string), `pom` (array), `file` (string).
fn prompt(p: &mut Obj<'_>) {
    p.field("prompt", false, |v| {
        let valid = match v {
            Value::String(_) => true,
            Value::Object(map) => {
                let kinds = [
                    map.get("text").is_some_and(Value::is_string),
                    map.get("pom").is_some_and(Value::is_array),
                    map.get("file").is_some_and(Value::is_string),
                ];
                kinds.iter().filter(|k| **k).count() == 1
            }
            _ => false,
        };
        if valid {
            Ok(((), v.clone()))
        } else {
            Err((
                INVALID_PARAMETER,
                "must be a string or an object with one of text, pom (array), file".to_owned(),
            ))
        }
    });
}

fn swaig(s: &mut Obj<'_>) {
    s.opt_object("defaults", |d| {
        d.opt_http_url("web_hook_url");
        d.opt_str("web_hook_auth_user");
        d.opt_str("web_hook_auth_password");
    });
    if let Some(functions) = s.opt_array("functions") {
        let mut normalised = Vec::with_capacity(functions.len());
        for (index, function) in functions.iter().enumerate() {
            let key = format!("functions.{index}");
            let Some(map) = function.as_object() else {
                s.fail(&key, MUST_BE_OBJECT, "must be an object");
                continue;
            };
            let mut f = s.nested(map, s.attr(&key));
            if f.req_str("function") == Some(RESERVED_FUNCTION) {
                f.fail(
                    "function",
                    INVALID_PARAMETER,
                    "sidecar_skip is a reserved function name",
                );
            }
            f.opt_str("description");
            f.opt_str("purpose");
            f.opt_any_object("parameters");
            f.opt_http_url("web_hook_url");
            f.opt_str("web_hook_auth_user");
            f.opt_str("web_hook_auth_password");
            normalised.push(Value::Object(s.absorb(f)));
        }
        s.put("functions", normalised);
    }
    s.opt_array("mcp_servers");
}

/// The three SWAIG permissions (each true when absent: control::command::ai).
fn permissions(p: &mut Obj<'_>) {
    let fill = |o: &mut Obj<'_>| {
        o.opt_bool("swaig_allow_swml");
        o.opt_bool("swaig_allow_settings");
        o.opt_bool("swaig_set_global_data");
    };
    p.opt_object("permissions", fill);
}

/// The `params` tuning object with its documented ranges (defaults: control::command::ai).
fn tuning(p: &mut Obj<'_>) {
    let fill = |t: &mut Obj<'_>| {
        t.opt_int("idle_timeout_ms", Limits::between(50.0, 5000.0));
        t.opt_int("min_interval_ms", Limits::between(0.0, 60000.0));
        t.opt_int("max_iters_per_tick", Limits::between(1.0, 20.0));
        t.opt_int("max_history_tokens", Limits::between(1000.0, 200000.0));
        t.opt_bool("act_on_channel");
        t.opt_bool("final_summary");
        t.opt_bool("ai_summary");
        t.opt_str("ai_summary_prompt");
        t.opt_str("summary_model");
        t.opt_bool("live_events");
        t.opt_bool("verbose_utterances");
        t.opt_enum("speech_engine", &SPEECH_ENGINES);
        t.opt_int("speech_timeout", Limits::between(0.0, 600000.0));
        t.opt_int("vad_silence_ms", Limits::between(0.0, 60000.0));
        t.opt_int("vad_thresh", Limits::between(0.0, 10000.0));
        t.opt_int("debug_level", Limits::between(0.0, 100.0));
        t.opt_bool("debug");
        t.opt_str("transcribe_prompt");
    };
    p.opt_object("params", fill);
}
