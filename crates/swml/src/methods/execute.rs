//! `execute` and `return` (swml.md §2.6, §2.8, §6.10, §6.25).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{classify_dest, stringify_params, Dest};
use crate::run::{Completion, Effect, Flow, ReturnHooks, Run, Waiting, MAX_FRAMES};

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let Some(obj) = params.as_object() else {
        run.warn("relay_script_element_wrong_type", "execute takes an object");
        return Flow::Next;
    };
    let Some(raw_dest) = obj.get("dest") else {
        run.warn(
            "relay_script_method_parameter_missing",
            "execute needs `dest`",
        );
        return Flow::Next;
    };
    if run.stack.len() >= MAX_FRAMES {
        run.fail(
            "relay_script_nested_too_deep",
            format!("more than {MAX_FRAMES} nested execute frames"),
        );
        return Flow::Stop;
    }
    let dest = run.expand(raw_dest);
    let callee_params = stringify_params(&run.expand(obj.get("params").unwrap_or(&Value::Null)));
    let hooks = ReturnHooks {
        on_return: obj.get("on_return").cloned(),
        result: obj.get("result").cloned(),
        resume_ai: None,
    };
    match classify_dest(&dest) {
        Dest::Section(name) => {
            let doc = match run.stack.last() {
                Some(f) => f.doc.clone(),
                None => return Flow::Next,
            };
            if run.enter_document(doc, &name, callee_params, hooks) {
                Flow::Jumped
            } else {
                run.warn(
                    "relay_script_section_parameter_undefined",
                    format!("execute: no section `{name}`"),
                );
                Flow::Next
            }
        }
        Dest::Inline(doc) => enter_loaded(run, doc, callee_params, hooks),
        Dest::Url(url) => {
            let payload = fetch_payload(run, &callee_params);
            Flow::Wait(
                Waiting::ExecuteFetch {
                    params: callee_params,
                    hooks,
                },
                Some(Box::new(Effect::Fetch { url, payload })),
            )
        }
        unusable @ (Dest::Relay | Dest::Invalid(_)) => {
            super::unusable_dest(run, "execute", unusable)
        }
    }
}

/// The body of a document fetch (swml.md §3.2).
pub(crate) fn fetch_payload(run: &Run, params: &Map<String, Value>) -> Value {
    json!({
        "call": Value::Object(run.scope.call.clone()),
        "vars": Value::Object(run.scope.vars.clone()),
        "envs": Value::Object(run.scope.envs.clone()),
        "params": Value::Object(params.clone()),
    })
}

fn enter_loaded(run: &mut Run, doc: Value, params: Map<String, Value>, hooks: ReturnHooks) -> Flow {
    // The validator's normalised form (lenient shorthands made canonical) is what runs.
    let doc = match crate::Document::from_value(doc) {
        Ok(d) => d.into_value(),
        Err(e) => {
            run.warn(e.code(), format!("execute document: {e}"));
            return Flow::Next;
        }
    };
    if run.enter_document(Arc::new(doc), "main", params, hooks) {
        Flow::Jumped
    } else {
        run.warn(
            "relay_script_main_section_missing",
            "execute document has no main section",
        );
        Flow::Next
    }
}

pub(crate) fn on_document(
    run: &mut Run,
    params: Map<String, Value>,
    hooks: ReturnHooks,
    c: Completion,
) {
    match c {
        Completion::Document(Ok(doc)) => {
            enter_loaded(run, doc, params, hooks);
        }
        Completion::Document(Err(e)) => run.warn(
            "relay_script_method_execute_failed",
            format!("execute fetch failed: {e}"),
        ),
        _ => run.warn(
            "relay_script_internal_error",
            "execute fetch completed with the wrong kind of result",
        ),
    }
}

pub(crate) fn run_return(run: &mut Run, params: &Value, now: u64) -> Flow {
    let value = run.expand(params);
    let empty = matches!(&value, Value::Null) || value.as_object().is_some_and(|o| o.is_empty());
    if empty {
        run.scope.vars.remove("return_value");
    } else {
        run.scope.vars.insert("return_value".into(), value);
    }
    if run.pop_frame(now) {
        Flow::Jumped
    } else {
        run.hang_up("hangup");
        Flow::Stop
    }
}

/// Internal step that evaluates an `execute.result` hook when it runs, i.e. after `on_return`.
/// Documents cannot name it: load-time validation rejects unknown methods.
pub(crate) const RESULT_STEP: &str = "__execute_result";

/// After a callee returns: `on_return`, then `result` (switch-object or cond-array), each
/// evaluated when it runs, so `result` sees what `on_return` changed.
pub(crate) fn after_return(run: &mut Run, hooks: ReturnHooks, now: u64) {
    if let Some(agent) = hooks.resume_ai {
        return super::ai::resume(run, *agent, now);
    }
    if let Some(result) = hooks.result {
        // The block entered last runs first: result below, on_return on top.
        run.enter_block(&Value::Array(vec![json!({ RESULT_STEP: result })]));
    }
    if let Some(block) = hooks.on_return {
        if !run.enter_block(&block) && !run.is_finished() {
            run.warn(
                "relay_script_element_wrong_type",
                "on_return must be a list of steps",
            );
        }
    }
}

/// Enters a method's `result` hook (switch-object or cond-array) as the next step; a
/// switch-object without `variable` switches on `default_variable`.
pub(crate) fn enter_result_hook(run: &mut Run, mut hook: Value, default_variable: &str) {
    if let Value::Object(o) = &mut hook {
        o.entry("variable")
            .or_insert_with(|| Value::String(default_variable.into()));
    }
    run.enter_block(&Value::Array(vec![json!({ RESULT_STEP: hook })]));
}

pub(crate) fn run_result(run: &mut Run, result: &Value) -> Flow {
    match result {
        Value::Array(entries) => super::cond::run_entries(run, entries),
        Value::Object(o) => {
            let variable = o
                .get("variable")
                .and_then(Value::as_str)
                .unwrap_or("return_value")
                .to_string();
            let value = super::switch::variable_text(run, &variable);
            let cases = o
                .get("case")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            super::switch::run_cases(run, &value, &cases, o.get("default"))
        }
        _ => {
            run.warn(
                "relay_script_element_wrong_type",
                "execute result must be a switch object or cond list",
            );
            Flow::Next
        }
    }
}
