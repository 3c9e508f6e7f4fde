//! `record` (foreground, swml.md §6.22), `record_call` (background, §6.23) and
//! `stop_record_call` (§6.33): REST `calling.record` / `calling.record.stop` underneath, with
//! SWML's own defaults (which differ between the two methods and from REST's).

use control::command::{
    AudioDirection, ControlIdParams, RecordAudio, RecordFormat, RecordParams, RecordSpec,
};
use control::session::OpResult;
use control::CallCommand;
use serde_json::{Map, Value};

use super::{as_bool, as_f64, set_var};
use crate::run::{Completion, ControlWait, Effect, Flow, Run, Waiting};

/// The SWML defaults of one recording method (swml.md §6.22, §6.23); they differ between the
/// two methods and from REST's, so they start from REST's and override what SWML documents.
struct Defaults {
    direction: AudioDirection,
    terminators: &'static str,
    initial_timeout: f64,
    end_silence_timeout: f64,
}

const RECORD: Defaults = Defaults {
    direction: AudioDirection::Speak,
    terminators: "#",
    initial_timeout: 4.0,
    end_silence_timeout: 5.0,
};

const RECORD_CALL: Defaults = Defaults {
    direction: AudioDirection::Both,
    terminators: "",
    initial_timeout: 0.0,
    end_silence_timeout: 0.0,
};

/// The `calling.record` params for a SWML recording step, or why they cannot be built.
fn record_params(p: &Value, d: &Defaults, control_id: String) -> Result<RecordParams, String> {
    let mut audio = RecordAudio {
        // SWML records WAV unless told otherwise.
        format: RecordFormat::Wav,
        direction: d.direction,
        terminators: d.terminators.to_string(),
        initial_timeout: d.initial_timeout,
        end_silence_timeout: d.end_silence_timeout,
        ..RecordAudio::default()
    };
    if let Some(format) = p.get("format").map(crate::expr::stringify) {
        audio.format = match format.as_str() {
            "wav" => RecordFormat::Wav,
            "mp3" => RecordFormat::Mp3,
            "mp4" => RecordFormat::Mp4,
            other => return Err(format!("format `{other}` is not wav, mp3 or mp4")),
        };
    }
    if let Some(direction) = p.get("direction").map(crate::expr::stringify) {
        audio.direction = match direction.as_str() {
            "speak" => AudioDirection::Speak,
            "listen" => AudioDirection::Listen,
            "both" => AudioDirection::Both,
            other => return Err(format!("direction `{other}` is not speak, listen or both")),
        };
    }
    for (key, slot) in [("stereo", &mut audio.stereo), ("beep", &mut audio.beep)] {
        if let Some(v) = p.get(key) {
            *slot = as_bool(v).ok_or_else(|| format!("`{key}` must be true or false"))?;
        }
    }
    if let Some(t) = p.get("terminators") {
        audio.terminators = crate::expr::stringify(t);
    }
    let number = |key: &str| -> Result<Option<f64>, String> {
        p.get(key)
            .map(|v| {
                as_f64(v)
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("`{key}` must be a number ≥ 0"))
            })
            .transpose()
    };
    if let Some(x) = number("initial_timeout")? {
        audio.initial_timeout = x;
    }
    if let Some(x) = number("end_silence_timeout")? {
        audio.end_silence_timeout = x;
    }
    if let Some(x) = number("input_sensitivity")? {
        audio.input_sensitivity = x;
    }
    if let Some(x) = number("max_length")? {
        // REST's max_length is whole seconds.
        audio.max_length = x.ceil() as u64;
    }
    Ok(RecordParams {
        control_id,
        record: RecordSpec { audio },
        status_url: p
            .get("status_url")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn object(run: &mut Run, params: &Value, method: &str) -> Option<Value> {
    match run.expand(params) {
        Value::Object(m) => Some(Value::Object(m)),
        Value::Null => Some(Value::Object(Map::new())),
        _ => {
            run.warn(
                "relay_script_element_wrong_type",
                format!("{method} takes an object"),
            );
            None
        }
    }
}

pub(crate) fn run_record(run: &mut Run, params: &Value, now: u64) -> Flow {
    let Some(p) = object(run, params, "record") else {
        set_var(run, "record_result", "failed");
        return Flow::Next;
    };
    let control_id = run.new_control_id("record");
    match record_params(&p, &RECORD, control_id) {
        Ok(params) => Flow::Wait(
            Waiting::Control {
                name: "record",
                started: now,
            },
            Some(Box::new(Effect::Control {
                command: CallCommand::Record(params),
                wait: ControlWait::Final,
            })),
        ),
        Err(why) => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("record: {why}"),
            );
            set_var(run, "record_result", "failed");
            Flow::Next
        }
    }
}

pub(crate) fn run_record_call(run: &mut Run, params: &Value, now: u64) -> Flow {
    let Some(p) = object(run, params, "record_call") else {
        set_var(run, "record_call_result", "failed");
        return Flow::Next;
    };
    let control_id = match p.get("control_id").map(crate::expr::stringify) {
        Some(c) if !c.is_empty() => c,
        _ => run.new_control_id("record_call"),
    };
    match record_params(&p, &RECORD_CALL, control_id) {
        Ok(params) => Flow::Wait(
            Waiting::Control {
                name: "record_call",
                started: now,
            },
            Some(Box::new(Effect::Control {
                command: CallCommand::Record(params),
                wait: ControlWait::Started,
            })),
        ),
        Err(why) => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("record_call: {why}"),
            );
            set_var(run, "record_call_result", "failed");
            Flow::Next
        }
    }
}

pub(crate) fn run_stop_record_call(run: &mut Run, params: &Value, now: u64) -> Flow {
    let p = run.expand(params);
    let control_id = p
        .get("control_id")
        .map(crate::expr::stringify)
        .filter(|c| !c.is_empty())
        .or_else(|| {
            run.scope
                .vars
                .get("record_control_id")
                .map(crate::expr::stringify)
        })
        .filter(|c| !c.is_empty());
    let Some(control_id) = control_id else {
        run.warn(
            "relay_script_method_parameter_missing",
            "stop_record_call: no control_id and no recording started",
        );
        set_var(run, "stop_record_call_result", "failed");
        return Flow::Next;
    };
    Flow::Wait(
        Waiting::Control {
            name: "stop_record_call",
            started: now,
        },
        Some(Box::new(Effect::Control {
            command: CallCommand::RecordStop(ControlIdParams { control_id }),
            wait: ControlWait::Started,
        })),
    )
}

/// Variables from how a recording method's command ended (swml.md §4.4).
pub(crate) fn on_completion(run: &mut Run, name: &str, completion: Completion) {
    match (name, completion) {
        ("record", Completion::Op(OpResult::Recorded(r))) => {
            let url = r.url.unwrap_or_default();
            let ok = r.state == "finished" && !url.is_empty();
            set_var(run, "record_url", &url);
            set_var(run, "record_result", if ok { "success" } else { "failed" });
        }
        ("record_call", Completion::Started { control_id, url }) => {
            set_var(run, "record_call_url", url.as_deref().unwrap_or_default());
            set_var(run, "record_control_id", &control_id);
            set_var(run, "record_call_result", "success");
        }
        ("stop_record_call", Completion::Started { .. }) => {
            set_var(run, "stop_record_call_result", "success")
        }
        (name, other) => {
            let var = match name {
                "record" => "record_result",
                "record_call" => "record_call_result",
                _ => "stop_record_call_result",
            };
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
