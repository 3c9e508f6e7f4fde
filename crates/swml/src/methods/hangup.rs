//! `hangup` (swml.md §6.12): ends the call and the script.

use serde_json::Value;

use crate::run::{Flow, Run};

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    let reason = p.get("reason").and_then(Value::as_str).unwrap_or("hangup");
    let reason = match reason {
        "hangup" | "busy" | "decline" => reason,
        other => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("hangup reason `{other}` is not hangup, busy or decline"),
            );
            "hangup"
        }
    };
    run.hang_up(reason);
    Flow::Stop
}
