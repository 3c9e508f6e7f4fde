//! `detect_machine` (swml.md §6.8): REST `calling.detect` underneath. One machine detect also
//! reports fax tones, so `detectors: "amd,fax"` is one command; `"fax"` alone is a fax detect.

use control::command::{DetectParams, Detector, FaxParams, FaxTone, MachineParams};
use control::session::{DetectKind, OpResult};
use control::CallCommand;
use serde_json::{json, Map, Value};

use super::{as_bool, as_f64, set_var};
use crate::run::{Completion, ControlWait, Effect, Flow, Run, Waiting};

fn failed(run: &mut Run, code: &'static str, why: String) -> Flow {
    run.warn(code, format!("detect_machine: {why}"));
    set_var(run, "detect_result", "error");
    Flow::Next
}

pub(crate) fn run(run: &mut Run, params: &Value, now: u64) -> Flow {
    let p = match run.expand(params) {
        Value::Null => Value::Object(Map::new()),
        v if v.is_object() => v,
        _ => {
            return failed(
                run,
                "relay_script_element_wrong_type",
                "takes an object".into(),
            )
        }
    };
    let detectors = p
        .get("detectors")
        .map(crate::expr::stringify)
        .unwrap_or_else(|| "amd,fax".into());
    let mut amd = false;
    let mut fax = false;
    for d in detectors
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        match d {
            "amd" => amd = true,
            "fax" => fax = true,
            other => {
                return failed(
                    run,
                    "relay_script_method_parameter_invalid_value",
                    format!("unknown detector `{other}` (amd, fax)"),
                )
            }
        }
    }
    if !amd && !fax {
        return failed(
            run,
            "relay_script_method_parameter_invalid_value",
            "no detector named".into(),
        );
    }
    let wait = match p.get("wait") {
        None => true,
        Some(v) => match as_bool(v) {
            Some(b) => b,
            None => {
                return failed(
                    run,
                    "relay_script_method_parameter_invalid_value",
                    "`wait` must be true or false".into(),
                )
            }
        },
    };
    let detector = if amd {
        let mut machine = MachineParams::default();
        for key in [
            "initial_timeout",
            "end_silence_timeout",
            "machine_ready_timeout",
            "machine_voice_threshold",
            "machine_words_threshold",
        ] {
            let Some(v) = p.get(key) else { continue };
            let Some(x) = as_f64(v).filter(|x| x.is_finite() && *x >= 0.0) else {
                return failed(
                    run,
                    "relay_script_method_parameter_invalid_value",
                    format!("`{key}` must be a number ≥ 0"),
                );
            };
            match key {
                "initial_timeout" => machine.initial_timeout = x,
                "end_silence_timeout" => machine.end_silence_timeout = x,
                "machine_ready_timeout" => machine.machine_ready_timeout = Some(x),
                "machine_voice_threshold" => machine.machine_voice_threshold = x,
                _ => machine.machine_words_threshold = x.round().min(f64::from(u32::MAX)) as u32,
            }
        }
        // SWML's default differs from REST's: the method completes at MACHINE unless asked.
        machine.detect_message_end = p
            .get("detect_message_end")
            .and_then(as_bool)
            .unwrap_or(false);
        Detector::Machine(machine)
    } else {
        let tone = p
            .get("tone")
            .map(crate::expr::stringify)
            .unwrap_or_else(|| "CED".into())
            .to_ascii_uppercase();
        let tone = match tone.as_str() {
            "CED" => FaxTone::Ced,
            "CNG" => FaxTone::Cng,
            _ => {
                return failed(
                    run,
                    "relay_script_method_parameter_invalid_value",
                    format!("tone `{tone}` is not CED or CNG"),
                )
            }
        };
        Detector::Fax(FaxParams { tone: Some(tone) })
    };
    let timeout = match p.get("timeout") {
        None => control::command::defaults::detect_timeout(),
        Some(v) => match as_f64(v).filter(|x| x.is_finite() && *x >= 0.0) {
            Some(x) => x,
            None => {
                return failed(
                    run,
                    "relay_script_method_parameter_invalid_value",
                    "`timeout` must be a number ≥ 0".into(),
                )
            }
        },
    };
    let status_url = p
        .get("status_url")
        .and_then(Value::as_str)
        .map(str::to_string);
    if status_url.is_none() && !wait {
        return failed(
            run,
            "relay_script_method_parameter_missing",
            "`wait: false` needs a `status_url`".into(),
        );
    }
    let params = DetectParams {
        control_id: run.new_control_id("detect"),
        detect: detector,
        timeout,
        status_url,
    };
    Flow::Wait(
        Waiting::Control {
            name: if wait {
                "detect_machine"
            } else {
                "detect_machine_background"
            },
            started: now,
        },
        Some(Box::new(Effect::Control {
            command: CallCommand::Detect(params),
            wait: if wait {
                ControlWait::Final
            } else {
                ControlWait::Started
            },
        })),
    )
}

/// Variables from the detect's result: the outcome that ended the wait.
pub(crate) fn on_completion(run: &mut Run, name: &str, started: u64, now: u64, c: Completion) {
    match c {
        Completion::Started { .. } if name == "detect_machine_background" => {
            set_var(run, "detect_result", "detecting");
        }
        Completion::Op(OpResult::Detected(outcome)) => {
            let event = outcome.event.to_ascii_uppercase();
            let result = match (outcome.kind, event.as_str()) {
                (DetectKind::Fax, _) | (_, "CED") | (_, "CNG") => "fax",
                (_, "MACHINE") | (_, "READY") | (_, "NOT_READY") => "machine",
                (_, "HUMAN") => "human",
                (_, "ERROR") => "error",
                _ => "unknown",
            };
            set_var(run, "detect_result", result);
            run.scope
                .vars
                .insert("detect_machine_beep".into(), json!(outcome.beep));
            run.scope
                .vars
                .insert("detect_ms".into(), json!(now.saturating_sub(started)));
        }
        other => {
            set_var(run, "detect_result", "error");
            if let Completion::Failed { message } = other {
                run.warn(
                    "relay_script_method_execute_failed",
                    format!("detect_machine failed: {message}"),
                );
            }
        }
    }
}
