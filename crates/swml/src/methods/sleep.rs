//! `sleep` (swml.md §6.31): milliseconds; `-1` sleeps until the call ends.

use serde_json::Value;

use super::as_f64;
use crate::run::{Flow, Run, Waiting};

pub(crate) fn run(run: &mut Run, params: &Value, now: u64) -> Flow {
    let p = run.expand(params);
    let ms = match &p {
        Value::Object(o) => o.get("duration").and_then(as_f64),
        other => as_f64(other),
    };
    match ms {
        Some(d) if d < 0.0 => Flow::Wait(Waiting::Sleep { until: None }, None),
        Some(d) => Flow::Wait(
            Waiting::Sleep {
                until: Some(now + d as u64),
            },
            None,
        ),
        None => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                "sleep needs a duration in milliseconds",
            );
            Flow::Next
        }
    }
}
