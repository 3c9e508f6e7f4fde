//! `transfer` (swml.md §2.7, §6.41): hand the script over for good.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{classify_dest, stringify_params, Dest};
use crate::run::{Completion, Effect, Flow, ReturnHooks, Run, Waiting, MAX_TRANSFERS};

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let raw_dest = match params {
        Value::Object(o) => o.get("dest").cloned(),
        Value::String(_) => Some(params.clone()),
        _ => None,
    };
    let Some(raw_dest) = raw_dest else {
        run.warn(
            "relay_script_method_parameter_missing",
            "transfer needs `dest`",
        );
        return Flow::Next;
    };
    if run.transfers >= MAX_TRANSFERS {
        run.fail(
            "relay_script_too_many_transfers",
            format!("more than {MAX_TRANSFERS} transfers in one call"),
        );
        return Flow::Stop;
    }
    let dest = run.expand(&raw_dest);
    let callee_params = stringify_params(&run.expand(params.get("params").unwrap_or(&Value::Null)));
    match classify_dest(&dest) {
        Dest::Section(name) => {
            let Some(doc) = run.stack.last().map(|f| f.doc.clone()) else {
                return Flow::Next;
            };
            if doc.get("sections").and_then(|s| s.get(&name)).is_none() {
                run.warn(
                    "relay_script_section_parameter_undefined",
                    format!("transfer: no section `{name}`"),
                );
                return Flow::Next;
            }
            run.transfers += 1;
            run.stack.clear();
            run.enter_document(doc, &name, callee_params, ReturnHooks::default());
            Flow::Jumped
        }
        Dest::Inline(doc) => replace(run, doc, callee_params),
        Dest::Url(url) => {
            let payload = super::execute::fetch_payload(run, &callee_params);
            Flow::Wait(
                Waiting::TransferFetch {
                    params: callee_params,
                },
                Some(Box::new(Effect::Fetch { url, payload })),
            )
        }
        unusable @ (Dest::Relay | Dest::Invalid(_)) => {
            super::unusable_dest(run, "transfer", unusable)
        }
    }
}

fn replace(run: &mut Run, doc: Value, params: Map<String, Value>) -> Flow {
    // The validator's normalised form (lenient shorthands made canonical) is what runs.
    let doc = match crate::Document::from_value(doc) {
        Ok(d) => d.into_value(),
        Err(e) => {
            run.warn(e.code(), format!("transfer document: {e}"));
            return Flow::Next;
        }
    };
    run.transfers += 1;
    run.stack.clear();
    if run.enter_document(Arc::new(doc), "main", params, ReturnHooks::default()) {
        Flow::Jumped
    } else {
        run.fail(
            "relay_script_main_section_missing",
            "transfer document has no main section",
        );
        Flow::Stop
    }
}

pub(crate) fn on_document(run: &mut Run, params: Map<String, Value>, c: Completion) {
    match c {
        Completion::Document(Ok(doc)) => {
            replace(run, doc, params);
        }
        Completion::Document(Err(e)) => run.warn(
            "relay_script_method_execute_failed",
            format!("transfer fetch failed: {e}"),
        ),
        _ => run.warn(
            "relay_script_internal_error",
            "transfer fetch completed with the wrong kind of result",
        ),
    }
}
