//! REST `calling.collect` for digits (+ `.stop`, `.start_input_timers`): the far end's DTMF
//! (RFC 4733 events always, in-band tones while a collect runs) is gathered per `control_id`
//! and reported as `calling.call.collect` events (calling-events.md §6). Speech collection
//! needs an ASR engine and is not built: a collect asking for speech answers 501.

use serde_json::{json, Value};
use tracing::info;

use control::ControlError;

use crate::actor::CallActor;
use crate::now_ms;
use crate::shard::ShardCommand;

/// Digit terminators when the request gives none (SignalWire's usual `#`).
const DEFAULT_TERMINATORS: &str = "#";
/// Inter-digit timeout when the request gives none.
const DEFAULT_DIGIT_TIMEOUT_MS: u64 = 5_000;
/// Time to the first digit when the request gives none (once the input timers run).
const DEFAULT_INITIAL_TIMEOUT_MS: u64 = 5_000;

#[derive(Debug, Clone)]
pub(crate) struct Collect {
    control_id: String,
    max: usize,
    terminators: String,
    digit_timeout_ms: u64,
    initial_timeout_ms: u64,
    continuous: bool,
    send_start_of_input: bool,
    status_url: Option<String>,
    digits: String,
    /// When the running timer (initial or inter-digit) fires; None while timers wait for
    /// `calling.collect.start_input_timers`.
    deadline: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Collects {
    active: Vec<Collect>,
}

fn ms(p: &Value, key: &str) -> Option<u64> {
    p.get(key)
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| (s * 1000.0) as u64)
}

impl CallActor {
    pub(crate) fn rest_collect(&mut self, p: &Value) -> Result<(), ControlError> {
        if p.get("speech").is_some_and(|s| !s.is_null()) {
            return Err(ControlError::NotImplemented {
                command: "calling.collect with speech (no speech recognition engine yet)".into(),
            });
        }
        let control_id = p
            .get("control_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if self
            .collects
            .active
            .iter()
            .any(|c| c.control_id == control_id)
        {
            return Err(ControlError::Conflict {
                code: "control_id_in_use",
                message: format!("a collect with control_id {control_id} is already active"),
                attribute: Some("control_id".into()),
            });
        }
        let digits = p.get("digits").cloned().unwrap_or(Value::Null);
        let max = digits
            .get("max")
            .and_then(Value::as_u64)
            .map_or(1, |m| usize::try_from(m).unwrap_or(usize::MAX).max(1));
        let initial_timeout_ms = ms(p, "initial_timeout").unwrap_or(DEFAULT_INITIAL_TIMEOUT_MS);
        let start_timers = p
            .get("start_input_timers")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let collect = Collect {
            control_id,
            max,
            terminators: digits
                .get("terminators")
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_TERMINATORS)
                .to_string(),
            digit_timeout_ms: ms(&digits, "digit_timeout").unwrap_or(DEFAULT_DIGIT_TIMEOUT_MS),
            initial_timeout_ms,
            continuous: p
                .get("continuous")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            send_start_of_input: p
                .get("send_start_of_input")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            status_url: p
                .get("status_url")
                .and_then(Value::as_str)
                .map(str::to_string),
            digits: String::new(),
            deadline: start_timers.then(|| now_ms() + initial_timeout_ms),
        };
        info!(control_id = %collect.control_id, max = collect.max, "collecting digits");
        self.collects.active.push(collect);
        self.update_digit_detection();
        Ok(())
    }

    /// `calling.collect.stop` (no result event: ambiguity register A13) and
    /// `calling.collect.start_input_timers`.
    pub(crate) fn rest_collect_control(
        &mut self,
        p: &Value,
        stop: bool,
    ) -> Result<(), ControlError> {
        let control_id = p
            .get("control_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(idx) = self
            .collects
            .active
            .iter()
            .position(|c| c.control_id == control_id)
        else {
            return Err(ControlError::Unprocessable {
                code: "control_id_not_found",
                message: format!("no active collect with control_id {control_id}"),
                attribute: Some("control_id".into()),
            });
        };
        if stop {
            self.collects.active.remove(idx);
            self.update_digit_detection();
        } else if let Some(c) = self.collects.active.get_mut(idx) {
            if c.deadline.is_none() {
                c.deadline = Some(now_ms() + c.initial_timeout_ms);
            }
        }
        Ok(())
    }

    pub(crate) fn update_digit_detection(&self) {
        self.node.media.send(
            self.media_key,
            ShardCommand::DetectDigits {
                call_id: self.ident.call_id,
                in_band: !self.collects.active.is_empty() || self.detecting_digits(),
            },
        );
    }

    pub(crate) async fn on_digit(&mut self, digit: char) {
        info!(%digit, "the far end pressed a key");
        self.record_terminator(digit);
        self.call_event("dtmf", json!({ "digit": digit.to_string() }))
            .await;
        self.detect_digit(digit).await;
        let now = now_ms();
        let mut done = Vec::new();
        let mut started = Vec::new();
        for (i, c) in self.collects.active.iter_mut().enumerate() {
            if c.digits.is_empty() && c.send_start_of_input {
                started.push(c.clone());
            }
            if c.terminators.contains(digit) {
                done.push((i, digit.to_string()));
                continue;
            }
            c.digits.push(digit);
            if c.digits.chars().count() >= c.max {
                done.push((i, String::new()));
            } else {
                c.deadline = Some(now + c.digit_timeout_ms);
            }
        }
        for c in started {
            self.collect_event(&c, json!({ "type": "start_of_input" }))
                .await;
        }
        self.finish_collects(done).await;
    }

    pub(crate) fn collect_deadline(&self) -> Option<u64> {
        self.collects.active.iter().filter_map(|c| c.deadline).min()
    }

    pub(crate) async fn collect_timeout(&mut self) {
        let now = now_ms();
        let due: Vec<(usize, String)> = self
            .collects
            .active
            .iter()
            .enumerate()
            .filter(|(_, c)| c.deadline.is_some_and(|d| now >= d))
            .map(|(i, _)| (i, String::new()))
            .collect();
        self.finish_collects(due).await;
    }

    /// Reports results (digits, or `no_input` when none came) for the collects at `done`
    /// (index, terminator); continuous collects start over, the others end.
    async fn finish_collects(&mut self, mut done: Vec<(usize, String)>) {
        if done.is_empty() {
            return;
        }
        done.sort_by_key(|d| std::cmp::Reverse(d.0));
        for (idx, terminator) in done {
            let Some(c) = self.collects.active.get(idx).cloned() else {
                continue;
            };
            let result = if c.digits.is_empty() && terminator.is_empty() {
                json!({ "type": "no_input" })
            } else {
                json!({ "type": "digit", "params": { "digits": c.digits, "terminator": terminator } })
            };
            self.collect_event(&c, result).await;
            if c.continuous {
                if let Some(live) = self.collects.active.get_mut(idx) {
                    live.digits.clear();
                    live.deadline = Some(now_ms() + live.initial_timeout_ms);
                }
            } else {
                self.collects.active.remove(idx);
            }
        }
        self.update_digit_detection();
    }

    async fn collect_event(&self, c: &Collect, result: Value) {
        let Some(url) = c.status_url.as_deref() else {
            return;
        };
        let mut params = json!({
            "call_id": self.ident.call_id,
            "node_id": self.ident.node_id,
            "control_id": c.control_id,
            "result": result,
        });
        if c.continuous {
            params["state"] = json!("collecting");
        }
        let event = self
            .ident
            .envelope("calling.call.collect", now_ms(), params);
        self.node.notify(self.ident.call_id, url, &event).await;
    }
}

impl CallActor {
    /// What a speech collect's audio tap reported (not built yet).
    pub(crate) async fn on_speech_event(&mut self, control_id: &str, event: Value) {
        let _ = (control_id, event);
    }
}
