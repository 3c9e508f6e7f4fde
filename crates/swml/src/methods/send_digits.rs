//! `send_digits` (swml.md §6.26): RFC 4733 digits, `w`/`W` pauses.

use serde_json::Value;

use super::set_var;
use crate::run::{Effect, Flow, Run, Waiting};

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    let digits = match &p {
        Value::Object(o) => o.get("digits").map(crate::expr::stringify),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    let Some(digits) = digits.filter(|d| !d.is_empty()) else {
        run.warn(
            "relay_script_method_parameter_missing",
            "send_digits needs `digits`",
        );
        set_var(run, "send_digits_result", "failed");
        return Flow::Next;
    };
    if let Some(bad) = digits
        .chars()
        .find(|c| !"0123456789*#ABCDabcdwW".contains(*c))
    {
        run.warn(
            "relay_script_method_parameter_invalid_value",
            format!("send_digits: `{bad}` is not a DTMF digit"),
        );
        set_var(run, "send_digits_result", "failed");
        return Flow::Next;
    }
    Flow::Wait(
        Waiting::Method {
            name: "send_digits",
        },
        Some(Box::new(Effect::SendDigits { digits })),
    )
}
