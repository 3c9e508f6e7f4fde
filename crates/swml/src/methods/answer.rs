//! `answer` (swml.md §6.4): blocking; a no-op that still succeeds on an answered leg.

use serde_json::Value;

use super::as_f64;
use crate::run::{Effect, Flow, Run, Waiting};

const DEFAULT_MAX_DURATION: u64 = 14_400;

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    let max = p
        .get("max_duration")
        .and_then(as_f64)
        .filter(|d| *d > 0.0)
        .map(|d| d as u64);
    Flow::Wait(
        Waiting::Method { name: "answer" },
        Some(Box::new(Effect::Answer {
            max_duration_secs: max.unwrap_or(DEFAULT_MAX_DURATION),
            codecs: p.get("codecs").and_then(Value::as_str).map(str::to_string),
        })),
    )
}
