//! `transcribe` (swml.md §6.39) and `transcribe_stop` (§6.40): REST `calling.transcribe` /
//! `.stop` underneath. Both go on once the command is accepted; the transcript itself goes to
//! `status_url` when the call (or the transcription) ends.

use control::command::{ControlIdParams, TranscribeParams};
use control::CallCommand;
use serde_json::Value;

use super::{control_step, set_var};
use crate::expr::stringify;
use crate::run::{Completion, ControlWait, Flow, Run};

pub(crate) fn run_start(run: &mut Run, params: &Value, now: u64) -> Flow {
    let p = run.expand(params);
    let status_url = p.get("status_url").map(stringify).filter(|s| !s.is_empty());
    let control_id = run.new_control_id("transcribe");
    set_var(run, "transcribe_control_id", &control_id);
    let command = CallCommand::Transcribe(TranscribeParams {
        control_id,
        status_url,
    });
    control_step("transcribe", now, command, ControlWait::Started)
}

pub(crate) fn run_stop(run: &mut Run, now: u64) -> Flow {
    let control_id = run
        .scope
        .vars
        .get("transcribe_control_id")
        .map(stringify)
        .filter(|c| !c.is_empty());
    let Some(control_id) = control_id else {
        run.warn(
            "relay_script_method_parameter_missing",
            "transcribe_stop: no transcription was started",
        );
        set_var(run, "transcribe_stop_result", "failed");
        return Flow::Next;
    };
    control_step(
        "transcribe_stop",
        now,
        CallCommand::TranscribeStop(ControlIdParams { control_id }),
        ControlWait::Started,
    )
}

pub(crate) fn on_completion(run: &mut Run, name: &str, completion: Completion) {
    let var = if name == "transcribe" {
        "transcribe_result"
    } else {
        "transcribe_stop_result"
    };
    match completion {
        Completion::Started { .. } => set_var(run, var, "success"),
        other => {
            set_var(run, var, "failed");
            if let Completion::Failed { message } = other {
                run.warn(
                    "relay_script_method_execute_failed",
                    format!("{name} failed: {message}"),
                );
            }
        }
    }
}
