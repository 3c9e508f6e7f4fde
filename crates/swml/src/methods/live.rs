//! `live_transcribe` (swml.md §6.16): REST `calling.live_transcribe` underneath. The step goes
//! on once the command is accepted; what is heard goes to the start's `webhook`.

use control::command::LiveTranscribeParams;
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

pub(crate) fn on_completion(run: &mut Run, completion: Completion) {
    if let Completion::Failed { message } = completion {
        run.warn(
            "relay_script_method_execute_failed",
            format!("live_transcribe failed: {message}"),
        );
    }
}
