//! One module per SWML method (swml.md §6). Each exposes `run(&mut Run, &params, now) -> Flow`;
//! methods that wait for the runtime also handle their completion.

pub mod ai;
mod ai_contexts;
mod ai_gather;
mod ai_languages;
pub mod ai_mcp;
mod ai_native;
pub mod ai_pronounce;
mod ai_vars;
mod ai_wake;
pub(crate) mod answer;
pub(crate) mod cond;
pub mod connect;
pub(crate) mod data_map;
pub(crate) mod denoise;
pub(crate) mod detect;
pub mod enter_queue;
pub(crate) mod execute;
pub(crate) mod fax;
pub(crate) mod fork;
pub(crate) mod goto;
pub(crate) mod hangup;
pub mod join_conference;
mod live;
pub(crate) mod play;
pub(crate) mod prompt;
pub(crate) mod record;
pub(crate) mod request;
pub(crate) mod send_digits;
pub mod set;
pub(crate) mod sip_refer;
pub(crate) mod sleep;
pub(crate) mod switch;
mod template_fns;
pub(crate) mod transcribe;
pub(crate) mod transfer;
pub(crate) mod user_event;

use serde_json::{Map, Value};

use crate::run::{Completion, Flow, Run, Waiting};

/// Every method SWML defines (swml.md §6).
pub const ALL_METHODS: [&str; 43] = [
    "ai",
    "ai_sidecar",
    "amazon_bedrock",
    "answer",
    "cond",
    "connect",
    "denoise",
    "detect_machine",
    "enter_queue",
    "execute",
    "goto",
    "hangup",
    "join_conference",
    "join_room",
    "label",
    "live_transcribe",
    "live_translate",
    "pay",
    "play",
    "prompt",
    "receive_fax",
    "record",
    "record_call",
    "request",
    "return",
    "send_digits",
    "send_fax",
    "send_sms",
    "set",
    "sip_refer",
    "sleep",
    "stop_denoise",
    "stop_record_call",
    "stop_stream",
    "stop_tap",
    "stream",
    "switch",
    "tap",
    "transcribe",
    "transcribe_stop",
    "transfer",
    "unset",
    "user_event",
];

/// The methods this interpreter runs; the rest are recognised and fail the document visibly.
pub const IMPLEMENTED: [&str; 37] = [
    "ai",
    "answer",
    "cond",
    "connect",
    "denoise",
    "detect_machine",
    "enter_queue",
    "execute",
    "goto",
    "hangup",
    "join_conference",
    "join_room",
    "label",
    "play",
    "prompt",
    "receive_fax",
    "record",
    "record_call",
    "request",
    "return",
    "send_digits",
    "send_fax",
    "set",
    "sip_refer",
    "sleep",
    "stop_denoise",
    "stop_record_call",
    "stop_stream",
    "stop_tap",
    "stream",
    "switch",
    "tap",
    "transcribe",
    "transcribe_stop",
    "transfer",
    "unset",
    "user_event",
];

pub(crate) fn dispatch(run: &mut Run, name: &str, params: &Value, now: u64) -> Flow {
    match name {
        "ai" => ai::run(run, params, now),
        "amazon_bedrock" => ai::run_bedrock(run, params, now),
        "answer" => answer::run(run, params),
        "cond" => cond::run(run, params),
        "connect" => connect::run(run, params),
        "enter_queue" => enter_queue::run(run, params),
        "join_conference" => join_conference::run(run, params),
        "join_room" => join_conference::run_room(run, params),
        "execute" => execute::run(run, params),
        "goto" => goto::run(run, params),
        "hangup" => hangup::run(run, params),
        "label" => Flow::Next,
        "play" => play::run(run, params),
        "prompt" => prompt::run(run, params, now),
        "record" => record::run_record(run, params, now),
        "record_call" => record::run_record_call(run, params, now),
        "stop_record_call" => record::run_stop_record_call(run, params, now),
        "tap" => fork::run_start(run, "tap", params, now),
        "stream" => fork::run_start(run, "stream", params, now),
        "stop_tap" => fork::run_stop(run, "stop_tap", params, now),
        "stop_stream" => fork::run_stop(run, "stop_stream", params, now),
        "transcribe" => transcribe::run_start(run, params, now),
        "live_transcribe" => live::run_transcribe(run, params, now),
        "ai_sidecar" => live::run_sidecar(run, params, now),
        "live_translate" => live::run_translate(run, params, now),
        "transcribe_stop" => transcribe::run_stop(run, now),
        "detect_machine" => detect::run(run, params, now),
        "send_fax" => fax::run(run, control::command::FaxDirection::Send, params, now),
        "receive_fax" => fax::run(run, control::command::FaxDirection::Receive, params, now),
        "denoise" => denoise::run(run, true, now),
        "stop_denoise" => denoise::run(run, false, now),
        "request" => request::run(run, params),
        "return" => execute::run_return(run, params, now),
        execute::RESULT_STEP => execute::run_result(run, params),
        "send_digits" => send_digits::run(run, params),
        "set" => set::run_set(run, params),
        "sip_refer" => sip_refer::run(run, params),
        "unset" => set::run_unset(run, params),
        "sleep" => sleep::run(run, params, now),
        "switch" => switch::run(run, params),
        "transfer" => transfer::run(run, params),
        "user_event" => user_event::run(run, params),
        other if ALL_METHODS.contains(&other) => {
            run.fail(
                "relay_script_method_execute_failed",
                format!("SWML method `{other}` is not implemented by this dialtone server yet"),
            );
            Flow::Stop
        }
        other => {
            run.fail(
                "relay_script_method_undefined",
                format!("unknown SWML method `{other}`"),
            );
            Flow::Stop
        }
    }
}

pub(crate) fn on_completion(run: &mut Run, waiting: Waiting, completion: Completion, now: u64) {
    match waiting {
        Waiting::Control { name, started } => match name {
            "prompt" => prompt::on_completion(run, completion),
            "record" | "record_call" | "stop_record_call" => {
                record::on_completion(run, name, completion)
            }
            "denoise" | "stop_denoise" => denoise::on_completion(run, name, completion),
            "tap" | "stop_tap" | "stream" | "stop_stream" => {
                fork::on_completion(run, name, completion)
            }
            "transcribe" | "transcribe_stop" => transcribe::on_completion(run, name, completion),
            "live_transcribe" | "live_translate" | "ai_sidecar" => {
                live::on_completion(run, name, completion)
            }
            "send_fax" | "receive_fax" => fax::on_completion(run, name, completion),
            _ => detect::on_completion(run, name, started, now, completion),
        },
        Waiting::Method { name } => {
            let ok = matches!(completion, Completion::Done);
            let message = match &completion {
                Completion::Failed { message } => message.clone(),
                _ => String::new(),
            };
            match name {
                "answer" => set_var(run, "answer_result", if ok { "success" } else { "failed" }),
                "send_digits" => set_var(
                    run,
                    "send_digits_result",
                    if ok { "success" } else { "failed" },
                ),
                _ => {}
            }
            if !ok {
                run.warn(
                    "relay_script_method_execute_failed",
                    format!("{name} failed: {message}"),
                );
            }
        }
        Waiting::Sleep { .. } | Waiting::Yield { .. } => {}
        Waiting::Request {
            url,
            save_variables,
        } => request::on_response(run, url, save_variables, completion),
        Waiting::ExecuteFetch { params, hooks } => {
            execute::on_document(run, params, hooks, completion)
        }
        Waiting::TransferFetch { params } => transfer::on_document(run, params, completion),
        Waiting::Connect {
            result,
            transfer_after_bridge,
        } => connect::on_completion(run, result, transfer_after_bridge, completion),
        Waiting::Queue {
            transfer_after_bridge,
        } => enter_queue::on_completion(run, transfer_after_bridge, completion),
        Waiting::Conference { result, room } => {
            join_conference::on_completion(run, result, room, completion)
        }
        Waiting::Refer { to } => sip_refer::on_completion(run, to, completion),
        Waiting::Ai(agent) => ai::on_completion(run, *agent, completion, now),
    }
}

/// Enters a chosen branch (`cond` then/else, `switch` case/default); a block that is not a list
/// of steps is a warning and the script continues after the owning step.
pub(crate) fn enter_branch(run: &mut Run, block: &Value, what: &str) -> Flow {
    if run.enter_block(block) {
        Flow::Jumped
    } else if run.is_finished() {
        Flow::Stop
    } else {
        run.warn(
            "relay_script_element_wrong_type",
            format!("a {what} must be a list of steps"),
        );
        Flow::Next
    }
}

/// A step that runs a call-control command and waits for it (`Started` or `Final`).
pub(crate) fn control_step(
    name: &'static str,
    now: u64,
    command: control::CallCommand,
    wait: crate::run::ControlWait,
) -> Flow {
    Flow::Wait(
        Waiting::Control { name, started: now },
        Some(Box::new(crate::run::Effect::Control { command, wait })),
    )
}

/// `params` with SWML expressions expanded, except under `kept` (left as written: they hold
/// the AI's own templates, swml.md §5.7–5.8).
pub(crate) fn expand_except(run: &mut Run, params: &Value, kept: &[&str]) -> Value {
    let mut rest = params.as_object().cloned().unwrap_or_default();
    let kept: Vec<(String, Value)> = kept
        .iter()
        .filter_map(|k| rest.remove(*k).map(|v| (k.to_string(), v)))
        .collect();
    let mut out = run.expand(&Value::Object(rest));
    if let Some(m) = out.as_object_mut() {
        m.extend(kept);
    }
    out
}

pub(crate) fn set_var(run: &mut Run, name: &str, value: &str) {
    run.scope
        .vars
        .insert(name.to_string(), Value::String(value.to_string()));
}

/// `execute`/`transfer` params reach the callee as strings (swml.md §2.6 step 2).
pub(crate) fn stringify_params(v: &Value) -> Map<String, Value> {
    fn leaf(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, x)| (k.clone(), leaf(x))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(leaf).collect()),
            other => Value::String(crate::expr::stringify(other)),
        }
    }
    match v {
        Value::Object(m) => m.iter().map(|(k, x)| (k.clone(), leaf(x))).collect(),
        _ => Map::new(),
    }
}

/// Destination kinds of `execute.dest` / `transfer.dest` (swml.md §3.5).
pub(crate) enum Dest {
    Inline(Value),
    Url(String),
    Relay,
    Section(String),
    Invalid(String),
}

/// `relay:` and malformed destinations of `execute`/`transfer`: warn and skip the step.
pub(crate) fn unusable_dest(run: &mut Run, method: &str, dest: Dest) -> Flow {
    match dest {
        Dest::Relay => run.warn(
            "relay_script_method_parameter_invalid_value",
            "relay: destinations are not supported",
        ),
        Dest::Invalid(why) => run.warn("relay_script_parse_error", format!("{method} dest: {why}")),
        _ => {}
    }
    Flow::Next
}

pub(crate) fn classify_dest(dest: &Value) -> Dest {
    match dest {
        Value::Object(_) => Dest::Inline(dest.clone()),
        Value::String(s) => {
            let t = s.trim_start();
            if t.starts_with('{') {
                match crate::parse_text(t) {
                    Ok(v) => Dest::Inline(v),
                    Err(e) => Dest::Invalid(e.to_string()),
                }
            } else if t.starts_with("http://") || t.starts_with("https://") {
                Dest::Url(t.to_string())
            } else if let Some((cred, url)) = t.split_once('@').filter(|(c, u)| {
                !c.contains('/') && (u.starts_with("http://") || u.starts_with("https://"))
            }) {
                // `user:pass@https://host/…` spelling: move the credentials into the URL.
                let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
                Dest::Url(format!("{scheme}://{cred}@{rest}"))
            } else if t.starts_with("relay:") {
                Dest::Relay
            } else if t.is_empty() {
                Dest::Invalid("empty destination".into())
            } else {
                Dest::Section(t.to_string())
            }
        }
        _ => Dest::Invalid("dest must be a string or a document".into()),
    }
}

/// Reads a number parameter that may be a whole-string placeholder already expanded to text.
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The string entries of an object of headers (`{name: value}`; other values left out).
pub(crate) fn string_pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}
