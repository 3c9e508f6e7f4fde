//! `user_event` (swml.md §6.43): fire and forget.

use serde_json::Value;

use crate::run::{Effect, Flow, Run};

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    match p.get("event") {
        Some(ev @ Value::Object(_)) => run.emit(Effect::UserEvent { event: ev.clone() }),
        _ => run.warn(
            "relay_script_method_parameter_missing",
            "user_event needs an `event` object",
        ),
    }
    Flow::Next
}
