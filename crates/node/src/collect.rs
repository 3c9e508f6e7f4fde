//! REST `calling.collect` for digits and speech (+ `.stop`, `.start_input_timers`): the far
//! end's DTMF (RFC 4733 events always, in-band tones while a collect runs) is gathered per
//! `control_id`; speech goes through a listener on the call's audio to the node's recogniser
//! (speech.rs). Results are `calling.call.collect` events (calling-events.md §6). With both
//! digits and speech, whichever completes first wins. `initial_timeout` is one timer for both.

use serde_json::{json, Value};
use tracing::{info, warn};

use control::command::CollectParams;
use control::ControlError;

use crate::actor::CallActor;
use crate::listen::SPEECH_PREFIX;
use crate::now_ms;
use crate::shard::ShardCommand;
use crate::speech::{SpeechListener, SpeechParams};

/// A transcript scored below this is reported as `no_match` rather than `speech`.
const MIN_CONFIDENCE: f64 = 0.3;
/// Beyond `speech_timeout` + end silence, how long the actor waits for the recogniser before
/// giving up on an utterance (`no_match`); normally the listener ends it first.
const RESULT_GRACE_MS: u64 = 5_000;

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
    /// The collect takes DTMF (a `digits` object was given).
    wants_digits: bool,
    /// The collect takes speech: its utterance limits.
    speech: Option<(u64, u64)>,
    partial_results: bool,
    /// Speech began in the current round (no_match rather than no_input on a timeout).
    speech_started: bool,
    /// When the running timer (initial or inter-digit) fires; None while timers wait for
    /// `calling.collect.start_input_timers`.
    deadline: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Collects {
    active: Vec<Collect>,
    /// Continuous collects stopped by `calling.collect.stop` whose final `finished` event is
    /// still to be queued (the stop runs synchronously; the actor queues it right after).
    stopped: Vec<Collect>,
}

impl Collects {
    fn position(&self, control_id: &str) -> Option<usize> {
        self.active.iter().position(|c| c.control_id == control_id)
    }
}

/// Seconds as milliseconds (validated finite and non-negative by the API or the script).
pub(crate) fn secs_to_ms(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * 1000.0) as u64
    } else {
        0
    }
}

impl CallActor {
    pub(crate) fn rest_collect(&mut self, p: CollectParams) -> Result<(), ControlError> {
        if self.collects.position(&p.control_id).is_some() {
            return Err(crate::play::control_id_in_use("collect", &p.control_id));
        }
        let initial_timeout_ms = secs_to_ms(p.initial_timeout);
        let collect = Collect {
            control_id: p.control_id,
            max: p
                .digits
                .as_ref()
                .map_or(1, |d| usize::try_from(d.max).unwrap_or(usize::MAX).max(1)),
            terminators: p
                .digits
                .as_ref()
                .map(|d| d.terminators.clone())
                .unwrap_or_default(),
            digit_timeout_ms: p
                .digits
                .as_ref()
                .map_or(0, |d| secs_to_ms(d.digit_timeout)),
            initial_timeout_ms,
            continuous: p.continuous,
            send_start_of_input: p.send_start_of_input,
            status_url: p.status_url,
            digits: String::new(),
            wants_digits: p.digits.is_some(),
            speech: None,
            partial_results: p.partial_results,
            speech_started: false,
            deadline: p.start_input_timers.then(|| now_ms() + initial_timeout_ms),
        };
        let speech = p.speech;
        let mut collect = collect;
        if let Some(sp) = speech {
            let params = speech_params(sp, &collect);
            collect.speech = Some((params.end_silence_ms, params.speech_timeout_ms));
            let listener = SpeechListener::new(self.node.speech.clone(), params);
            self.node.media.send(
                self.media_key,
                ShardCommand::SetListener {
                    call_id: self.ident.call_id,
                    key: format!("{SPEECH_PREFIX}{}", collect.control_id),
                    listener: Some(Box::new(listener)),
                },
            );
        }
        info!(control_id = %collect.control_id, digits = collect.wants_digits, speech = collect.speech.is_some(), "collecting");
        self.collects.active.push(collect);
        self.update_digit_detection();
        Ok(())
    }

    /// `calling.collect.stop` and `calling.collect.start_input_timers`. Stopping a single
    /// collect reports nothing; stopping a continuous one reports one final event with
    /// `state: "finished"`, `result: {"type": "finished"}` (ambiguity register A13), queued by
    /// [`Self::report_stopped_collects`] once the command is done.
    pub(crate) fn rest_collect_control(
        &mut self,
        control_id: &str,
        stop: bool,
    ) -> Result<(), ControlError> {
        let Some(idx) = self.collects.position(control_id) else {
            return Err(crate::play::control_id_not_found("collect", control_id));
        };
        if stop {
            let c = self.collects.active.remove(idx);
            self.remove_speech_listener(&c);
            self.update_digit_detection();
            if c.continuous {
                self.collects.stopped.push(c);
            }
        } else if let Some(c) = self.collects.active.get_mut(idx) {
            if c.deadline.is_none() {
                c.deadline = Some(now_ms() + c.initial_timeout_ms);
            }
        }
        Ok(())
    }

    /// Queues the final event of every continuous collect a command just stopped (before the
    /// command's reply, so it is in the outbox when the API answers).
    pub(crate) async fn report_stopped_collects(&mut self) {
        for c in std::mem::take(&mut self.collects.stopped) {
            info!(control_id = %c.control_id, "continuous collect stopped");
            let final_flag = c.partial_results.then_some(true);
            self.collect_event_in_state(&c, json!({ "type": "finished" }), final_flag, "finished")
                .await;
        }
    }

    fn remove_speech_listener(&self, c: &Collect) {
        if c.speech.is_some() {
            self.node.media.send(
                self.media_key,
                ShardCommand::SetListener {
                    call_id: self.ident.call_id,
                    key: format!("{SPEECH_PREFIX}{}", c.control_id),
                    listener: None,
                },
            );
        }
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
            if !c.wants_digits {
                continue;
            }
            if c.digits.is_empty() && !c.speech_started {
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
            self.script_input_started(&c.control_id);
            if c.send_start_of_input {
                self.collect_event(&c, json!({ "type": "start_of_input" }), None)
                    .await;
            }
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
                if c.speech_started {
                    // Speech began but no transcript came in time.
                    json!({ "type": "no_match" })
                } else {
                    json!({ "type": "no_input" })
                }
            } else {
                json!({ "type": "digit", "params": { "digits": c.digits, "terminator": terminator } })
            };
            self.complete_collect(idx, result).await;
        }
        self.update_digit_detection();
    }

    /// Reports `result` for the collect at `idx`; a continuous collect starts over, another
    /// ends (its speech listener removed, a waiting SWML script told).
    async fn complete_collect(&mut self, idx: usize, result: Value) {
        let Some(c) = self.collects.active.get(idx).cloned() else {
            return;
        };
        let final_flag = c.partial_results.then_some(true);
        self.collect_event(&c, result.clone(), final_flag).await;
        if c.continuous {
            if let Some(live) = self.collects.active.get_mut(idx) {
                live.digits.clear();
                live.speech_started = false;
                live.deadline = Some(now_ms() + live.initial_timeout_ms);
            }
        } else {
            self.collects.active.remove(idx);
            self.remove_speech_listener(&c);
            self.script_control_done(&c.control_id, result).await;
        }
    }

    async fn collect_event(&self, c: &Collect, result: Value, final_flag: Option<bool>) {
        self.collect_event_in_state(c, result, final_flag, "collecting")
            .await
    }

    /// `state` is said for continuous collects only (`collecting`, or `finished` at the end).
    async fn collect_event_in_state(
        &self,
        c: &Collect,
        result: Value,
        final_flag: Option<bool>,
        state: &str,
    ) {
        let Some(url) = c.status_url.as_deref() else {
            return;
        };
        let mut params = json!({
            "call_id": self.ident.call_id,
            "node_id": self.ident.node_id,
            "control_id": c.control_id,
            "result": result,
        });
        if let Some(f) = final_flag {
            params["final"] = json!(f);
        }
        if c.continuous {
            params["state"] = json!(state);
        }
        let event = self
            .ident
            .envelope("calling.call.collect", now_ms(), params);
        self.node.notify(self.ident.call_id, url, &event).await;
    }
}

/// The listener's parameters from the collect's `speech` object. Spoken digits are in the
/// grammar only when no hints are given: next to hint phrases, a free digit loop wins too often
/// on 8 kHz audio (DTMF still works alongside). `model` and `engine` are accepted and ignored:
/// the node has one engine (embedded, or the configured engine process).
fn speech_params(sp: control::command::SpeechParams, c: &Collect) -> SpeechParams {
    let language = sp.language_tag().to_string();
    SpeechParams {
        request: asr::RecognitionRequest {
            language,
            digits_allowed: sp.hints.is_empty(),
            hints: sp.hints,
            sample_rate: 8000,
        },
        end_silence_ms: secs_to_ms(sp.end_silence_timeout),
        speech_timeout_ms: secs_to_ms(sp.speech_timeout),
        partial_results: c.partial_results,
        continuous: c.continuous,
    }
}

impl CallActor {
    /// What a speech collect's audio tap reported (see speech.rs for the event kinds).
    pub(crate) async fn on_speech_event(&mut self, control_id: &str, event: Value) {
        let Some(idx) = self.collects.position(control_id) else {
            return;
        };
        let kind = event
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "start_of_input" => {
                let now = now_ms();
                let Some(c) = self.collects.active.get_mut(idx) else {
                    return;
                };
                let first = !c.speech_started && c.digits.is_empty();
                c.speech_started = true;
                // The utterance now bounds the wait instead of initial_timeout.
                if let Some((end_silence, speech_timeout)) = c.speech {
                    c.deadline = Some(now + speech_timeout + end_silence + RESULT_GRACE_MS);
                }
                let c = c.clone();
                if first {
                    self.script_input_started(control_id);
                    if c.send_start_of_input {
                        self.collect_event(&c, json!({ "type": "start_of_input" }), None)
                            .await;
                    }
                }
            }
            "partial" => {
                let Some(c) = self.collects.active.get(idx).cloned() else {
                    return;
                };
                if c.partial_results {
                    let text = event
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    // Partials are not scored until the utterance ends.
                    let result =
                        json!({ "type": "speech", "params": { "text": text, "confidence": 0.0 } });
                    self.collect_event(&c, result, Some(false)).await;
                }
            }
            "result" => {
                let text = event
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let confidence = event
                    .get("confidence")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let result = if text.is_empty() || confidence < MIN_CONFIDENCE {
                    json!({ "type": "no_match" })
                } else {
                    json!({ "type": "speech", "params": { "text": text, "confidence": confidence } })
                };
                self.complete_collect(idx, result).await;
                self.update_digit_detection();
            }
            "error" => {
                let message = event
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                warn!(%control_id, %message, "speech collect failed");
                self.complete_collect(idx, json!({ "type": "error" })).await;
                self.update_digit_detection();
            }
            _ => {}
        }
    }
}
