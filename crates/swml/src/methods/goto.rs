//! `goto` (swml.md §2.5, §6.11): jump to a top-level label of the current section, at most `max`
//! times per goto step; after that it falls through.

use serde_json::Value;

use super::as_f64;
use crate::run::{Flow, Run};

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let (label, when, max) = match params {
        Value::String(l) => (l.clone(), None, 100u32),
        Value::Object(o) => {
            let Some(l) = o.get("label").and_then(Value::as_str) else {
                run.warn(
                    "relay_script_method_parameter_missing",
                    "goto needs `label`",
                );
                return Flow::Next;
            };
            let max = o
                .get("max")
                .map(|m| run.expand(m))
                .and_then(|m| as_f64(&m))
                .map(|m| m.clamp(1.0, 100.0) as u32)
                .unwrap_or(100);
            (l.to_string(), o.get("when").cloned(), max)
        }
        _ => {
            run.warn(
                "relay_script_element_wrong_type",
                "goto takes a label or an object",
            );
            return Flow::Next;
        }
    };
    if let Some(w) = when {
        match run.scope.condition(&w) {
            Ok(true) => {}
            Ok(false) => return Flow::Next,
            Err(e) => {
                run.expr_error(e);
                return Flow::Next;
            }
        }
    }
    let Some(frame) = run.stack.last_mut() else {
        return Flow::Next;
    };
    // The goto step's identity: its position through the block levels.
    let key: String = frame.levels.iter().map(|l| format!("{}.", l.idx)).collect();
    let Some(target) = frame.levels[0]
        .steps
        .iter()
        .position(|s| s.get("label").and_then(Value::as_str) == Some(label.as_str()))
    else {
        run.warn(
            "relay_script_method_parameter_invalid_value",
            format!("goto: no label `{label}` in this section"),
        );
        return Flow::Next;
    };
    let count = frame.goto_counts.entry(key).or_insert(0);
    if *count >= max {
        return Flow::Next;
    }
    *count += 1;
    frame.levels.truncate(1);
    frame.levels[0].idx = target;
    Flow::Jumped
}
