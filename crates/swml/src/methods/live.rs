//! `live_transcribe` (swml.md §6.16) and `ai_sidecar` (§6.2): REST `calling.live_transcribe`
//! and `calling.ai_sidecar` underneath. The step goes on once the command is accepted; what is
//! heard goes to the start's `webhook` / the sidecar's `url`.

use control::command::{AiSidecarParams, LiveTranscribeParams, LiveTranslateParams};
use control::CallCommand;
use serde_json::{json, Value};

use super::control_step;
use crate::run::{Completion, ControlWait, Flow, Run};

pub(crate) fn run_transcribe(run: &mut Run, params: &Value, now: u64) -> Flow {
    let mut p = run.expand(params);
    // `"summarize"` may be written bare, like `"stop"` (swml.md §2).
    if p.get("action").and_then(Value::as_str) == Some("summarize") {
        p["action"] = json!({"summarize": {}});
    }
    match serde_json::from_value::<LiveTranscribeParams>(p) {
        Ok(params) => control_step(
            "live_transcribe",
            now,
            CallCommand::LiveTranscribe(params),
            ControlWait::Started,
        ),
        Err(e) => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("live_transcribe: {e}"),
            );
            Flow::Next
        }
    }
}

/// `live_translate` (swml.md §6.17): REST `calling.live_translate` underneath.
pub(crate) fn run_translate(run: &mut Run, params: &Value, now: u64) -> Flow {
    let mut p = run.expand(params);
    if p.get("action").and_then(Value::as_str) == Some("summarize") {
        p["action"] = json!({"summarize": {}});
    }
    match serde_json::from_value::<LiveTranslateParams>(p) {
        Ok(params) => control_step(
            "live_translate",
            now,
            CallCommand::LiveTranslate(Box::new(params)),
            ControlWait::Started,
        ),
        Err(e) => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("live_translate: {e}"),
            );
            Flow::Next
        }
    }
}

/// `ai_sidecar`: attaches the observer (or, with `action.summarize`, asks for a summary).
pub(crate) fn run_sidecar(run: &mut Run, params: &Value, now: u64) -> Flow {
    // The prompt and the SWAIG definitions are the sidecar's own, not SWML expressions.
    let p = super::expand_except(run, params, &["prompt", "SWAIG", "global_data"]);
    match serde_json::from_value::<AiSidecarParams>(p) {
        Ok(params) => control_step(
            "ai_sidecar",
            now,
            CallCommand::AiSidecar(Box::new(params)),
            ControlWait::Started,
        ),
        Err(e) => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("ai_sidecar: {e}"),
            );
            Flow::Next
        }
    }
}

pub(crate) fn on_completion(run: &mut Run, name: &str, completion: Completion) {
    if let Completion::Failed { message } = completion {
        run.warn(
            "relay_script_method_execute_failed",
            format!("{name} failed: {message}"),
        );
    }
}
