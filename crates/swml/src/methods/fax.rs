//! `send_fax` (swml.md §6.27) and `receive_fax` (§6.21): a fax on the call, blocking until it
//! ends. The step becomes the typed fax params the call's session runs ([`Effect::Fax`]); the
//! runtime completes with the fax's result ([`OpResult::Faxed`]) and the step sets the
//! `send_fax_*` / `receive_fax_*` variables (swml.md §4.4): `document`, `identity`,
//! `remote_identity`, `pages` and `result_code` (numbers), `result_text`, and `result`
//! (`success` | `failed`).

use control::command::{FaxDirection, FaxTransferParams};
use control::session::{FaxResult, OpResult};
use serde_json::{json, Map, Value};

use super::set_var;
use crate::expr::stringify;
use crate::run::{Completion, Effect, Flow, Run, Waiting};

fn set_result(run: &mut Run, direction: FaxDirection, r: &FaxResult) {
    let m = direction.method();
    let mut text = |suffix: &str, value: &str| set_var(run, &format!("{m}_{suffix}"), value);
    text("document", r.document.as_deref().unwrap_or(""));
    text("identity", &r.identity);
    text("remote_identity", &r.remote_identity);
    text("result_text", &r.result_text);
    text("result", if r.success { "success" } else { "failed" });
    run.scope.vars.insert(format!("{m}_pages"), json!(r.pages));
    run.scope
        .vars
        .insert(format!("{m}_result_code"), json!(r.result_code));
}

fn failed(run: &mut Run, direction: FaxDirection, code: &'static str, why: String) -> Flow {
    run.warn(code, format!("{}: {why}", direction.method()));
    let result = FaxResult {
        result_text: why,
        ..FaxResult::default()
    };
    set_result(run, direction, &result);
    Flow::Next
}

pub(crate) fn run(run: &mut Run, direction: FaxDirection, params: &Value, now: u64) -> Flow {
    let p = match run.expand(params) {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        _ => {
            return failed(
                run,
                direction,
                "relay_script_element_wrong_type",
                "takes an object".into(),
            )
        }
    };
    let text = |key: &str| p.get(key).map(stringify).filter(|s| !s.trim().is_empty());
    let document = text("document");
    if direction == FaxDirection::Send {
        match document.as_deref() {
            None => {
                return failed(
                    run,
                    direction,
                    "relay_script_method_parameter_missing",
                    "`document` (a PDF URL) is required".into(),
                )
            }
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return failed(
                    run,
                    direction,
                    "relay_script_method_parameter_invalid_value",
                    format!("`document` `{url}` is not an http(s) URL"),
                )
            }
            Some(_) => {}
        }
    }
    let params = FaxTransferParams {
        control_id: run.new_control_id(direction.method()),
        direction,
        document: document.filter(|_| direction == FaxDirection::Send),
        header_info: text("header_info"),
        identity: text("identity"),
        status_url: text("status_url"),
    };
    Flow::Wait(
        Waiting::Control {
            name: direction.method(),
            started: now,
        },
        Some(Box::new(Effect::Fax(params))),
    )
}

pub(crate) fn on_completion(run: &mut Run, name: &str, completion: Completion) {
    let direction = if name == "send_fax" {
        FaxDirection::Send
    } else {
        FaxDirection::Receive
    };
    match completion {
        Completion::Op(OpResult::Faxed(result)) => set_result(run, direction, &result),
        Completion::Failed { message } => {
            failed(
                run,
                direction,
                "relay_script_method_execute_failed",
                message,
            );
        }
        other => {
            failed(
                run,
                direction,
                "relay_script_method_execute_failed",
                format!("unexpected completion {other:?}"),
            );
        }
    }
}
