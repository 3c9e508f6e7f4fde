//! `enter_queue` (swml.md §6.9): the caller waits in a named queue, hearing `wait_url`, until an
//! agent's `connect` to `queue:<name>` takes it (then, after that bridge, the script goes on at
//! `transfer_after_bridge`), `wait_time` runs out or the caller hangs up.

use serde_json::{json, Map, Value};

use super::set_var;
use crate::expr::stringify;
use crate::run::{Completion, Effect, Flow, Run, Waiting};

/// Longest wait when `wait_time` is not given (seconds).
pub const DEFAULT_WAIT_TIME_SECS: u64 = 3600;

/// What an `enter_queue` asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePlan {
    pub queue_name: String,
    /// Hold audio, looped; empty: the default hold music.
    pub wait_audio: Vec<control::command::MediaItem>,
    pub wait_time_secs: u64,
    pub status_url: Option<String>,
}

/// How an `enter_queue` ended (the §4.4 variables).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueOutcome {
    /// `connected` (after the bridge ended), `timeout`, `hangup`, `failed`.
    pub result: String,
    /// Seconds waited, `-1` if unknown.
    pub wait_time: i64,
    pub entry_position: i64,
    pub entry_size: i64,
}

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    let Value::Object(o) = &p else {
        return failed(run, "parameters must be an object".into());
    };
    let transfer_after_bridge = o
        .get("transfer_after_bridge")
        .map(stringify)
        .filter(|s| !s.is_empty());
    let plan = match plan(o) {
        Ok(plan) => plan,
        Err(e) => return failed(run, e),
    };
    if transfer_after_bridge.is_none() {
        return failed(run, "needs `transfer_after_bridge`".into());
    }
    Flow::Wait(
        Waiting::Queue {
            transfer_after_bridge,
        },
        Some(Box::new(Effect::EnterQueue(plan))),
    )
}

fn failed(run: &mut Run, message: String) -> Flow {
    run.warn(
        "relay_script_method_parameter_invalid_value",
        format!("enter_queue: {message}"),
    );
    set_outcome(
        run,
        &QueueOutcome {
            result: "failed".into(),
            wait_time: -1,
            entry_position: -1,
            entry_size: -1,
        },
    );
    Flow::Next
}

pub fn plan(o: &Map<String, Value>) -> Result<QueuePlan, String> {
    let queue_name = o.get("queue_name").map(stringify).unwrap_or_default();
    control::queue::check_name(&queue_name).map_err(|e| e.to_string())?;
    let wait_time_secs = match o.get("wait_time") {
        None => DEFAULT_WAIT_TIME_SECS,
        Some(v) => match stringify(v).trim().parse::<f64>() {
            Ok(t) if t >= 1.0 => t.min(86_400.0) as u64,
            _ => return Err("wait_time must be a number of seconds, at least 1".into()),
        },
    };
    let wait_audio = match o.get("wait_url").map(stringify).filter(|s| !s.is_empty()) {
        Some(url) => vec![super::play::parse_playable(&url).map_err(|e| format!("wait_url: {e}"))?],
        None => Vec::new(),
    };
    Ok(QueuePlan {
        queue_name,
        wait_audio,
        wait_time_secs,
        status_url: o.get("status_url").map(stringify).filter(|s| !s.is_empty()),
    })
}

fn set_outcome(run: &mut Run, o: &QueueOutcome) {
    set_var(run, "queue_result", &o.result);
    set_var(run, "wait_time", &o.wait_time.to_string());
    set_var(run, "entry_position", &o.entry_position.to_string());
    set_var(run, "entry_size", &o.entry_size.to_string());
}

/// The wait ended: the variables, then `transfer_after_bridge` after a bridge (else the next
/// step).
pub(crate) fn on_completion(
    run: &mut Run,
    transfer_after_bridge: Option<String>,
    completion: Completion,
) {
    let outcome = match completion {
        Completion::Queue(o) => o,
        _ => QueueOutcome {
            result: "failed".into(),
            wait_time: -1,
            entry_position: -1,
            entry_size: -1,
        },
    };
    set_outcome(run, &outcome);
    if let (true, Some(dest)) = (outcome.result == "connected", transfer_after_bridge) {
        run.enter_block(&Value::Array(vec![json!({ "transfer": { "dest": dest } })]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters() {
        let o = |v: Value| v.as_object().cloned().unwrap_or_default();
        let p = plan(&o(
            json!({"queue_name": "sales", "wait_time": "30", "wait_url": "https://x.org/hold.wav"}),
        ))
        .unwrap();
        assert_eq!(
            (p.queue_name.as_str(), p.wait_time_secs, p.wait_audio.len()),
            ("sales", 30, 1)
        );
        assert_eq!(
            plan(&o(json!({"queue_name": "q"}))).unwrap().wait_time_secs,
            DEFAULT_WAIT_TIME_SECS
        );
        for bad in [
            json!({}),
            json!({"queue_name": "q", "wait_time": 0}),
            json!({"queue_name": "q", "wait_url": "ftp://x"}),
        ] {
            assert!(plan(&o(bad.clone())).is_err(), "{bad}");
        }
    }
}
