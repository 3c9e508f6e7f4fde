//! `denoise` / `stop_denoise` (swml.md §6.7, §6.32): REST `calling.denoise` / `.stop`.

use control::command::NoParams;
use control::CallCommand;

use super::set_var;
use crate::run::{Completion, ControlWait, Effect, Flow, Run, Waiting};

pub(crate) fn run(_run: &mut Run, start: bool, now: u64) -> Flow {
    let (name, command) = if start {
        ("denoise", CallCommand::Denoise(NoParams {}))
    } else {
        ("stop_denoise", CallCommand::DenoiseStop(NoParams {}))
    };
    Flow::Wait(
        Waiting::Control { name, started: now },
        Some(Box::new(Effect::Control {
            command,
            wait: ControlWait::Started,
        })),
    )
}

pub(crate) fn on_completion(run: &mut Run, name: &str, c: Completion) {
    let ok = matches!(c, Completion::Started { .. });
    let value = match (name, ok) {
        ("denoise", true) => "on",
        ("denoise", false) => "failed",
        _ => "off",
    };
    set_var(run, "denoise_result", value);
    if let Completion::Failed { message } = c {
        run.warn(
            "relay_script_method_execute_failed",
            format!("{name} failed: {message}"),
        );
    }
}
