//! Collects: the far end's digits and/or speech per `control_id`, with the initial and
//! inter-digit timers on the session's clock; `calling.call.collect` events.

use super::ops::{CollectOp, Op};
use super::{
    Action, CallEvent, CallSession, CollectResult, OpResult, Origin, PlayerOp, SpeechEvent,
    SpeechSpec,
};
use crate::command::CollectParams;
use crate::service::ControlError;

/// A transcript scored below this is reported as `no_match` rather than `speech`.
pub const MIN_CONFIDENCE: f64 = 0.3;
/// Beyond `speech_timeout` + end silence, how long to wait for the recogniser before giving up
/// on an utterance (`no_match`); normally the listener ends it first.
pub const RESULT_GRACE_MS: u64 = 5_000;

/// Seconds as milliseconds (validated finite and non-negative at the edge).
pub fn secs_to_ms(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * 1000.0) as u64
    } else {
        0
    }
}

impl CallSession {
    pub(super) fn start_collect(
        &mut self,
        now: u64,
        p: CollectParams,
        origin: Origin,
        prompt_play: Option<String>,
    ) -> Result<(), ControlError> {
        let initial_timeout_ms = secs_to_ms(p.initial_timeout);
        let speech = p.speech.as_ref().map(|s| {
            (
                secs_to_ms(s.end_silence_timeout),
                secs_to_ms(s.speech_timeout),
            )
        });
        let op = CollectOp {
            control_id: p.control_id.clone(),
            origin,
            max: p
                .digits
                .as_ref()
                .map_or(1, |d| usize::try_from(d.max).unwrap_or(usize::MAX).max(1)),
            terminators: p
                .digits
                .as_ref()
                .map(|d| d.terminators.clone())
                .unwrap_or_default(),
            digit_timeout_ms: p.digits.as_ref().map_or(0, |d| secs_to_ms(d.digit_timeout)),
            initial_timeout_ms,
            continuous: p.continuous,
            send_start_of_input: p.send_start_of_input,
            partial_results: p.partial_results,
            status_url: p.status_url.clone(),
            wants_digits: p.digits.is_some(),
            speech,
            digits: String::new(),
            speech_started: false,
            deadline: p.start_input_timers.then(|| now + initial_timeout_ms),
            prompt_play,
            barge_min_words: p.barge_min_words,
        };
        // Counting words needs the running transcript, and an utterance let go needs the
        // listener to go on listening.
        let words_barge = p.barge_min_words > 1;
        self.ops.insert(p.control_id.clone(), Op::Collect(op))?;
        if let Some(sp) = p.speech {
            let spec = SpeechSpec {
                language: sp.language_tag().to_string(),
                digits_allowed: sp.hints.is_empty(),
                hints: sp.hints,
                end_silence_ms: secs_to_ms(sp.end_silence_timeout),
                speech_timeout_ms: secs_to_ms(sp.speech_timeout),
                partial_results: p.partial_results || words_barge,
                continuous: p.continuous || words_barge,
            };
            self.actions.push_back(Action::SpeechListener {
                control_id: p.control_id,
                spec: Some(spec),
            });
        }
        self.update_in_band_digits();
        Ok(())
    }

    /// `calling.collect.stop`: a continuous collect reports `finished` (A13), a single one
    /// nothing.
    pub(super) fn stop_collect(&mut self, control_id: &str) -> Result<(), ControlError> {
        let c = self.ops.collect_mut(control_id)?.clone();
        self.ops.remove(control_id);
        if c.continuous {
            self.emit(CallEvent::Collect {
                control_id: c.control_id.clone(),
                status_url: c.status_url.clone(),
                result: CollectResult::Finished,
                is_final: c.partial_results.then_some(true),
                state: Some("finished"),
            });
        }
        self.collect_gone(&c);
        Ok(())
    }

    /// `calling.collect.start_input_timers`: the initial timer runs from now (once).
    pub(super) fn start_input_timers(
        &mut self,
        now: u64,
        control_id: &str,
    ) -> Result<(), ControlError> {
        let c = self.ops.collect_mut(control_id)?;
        if c.deadline.is_none() {
            c.deadline = Some(now + c.initial_timeout_ms);
        }
        Ok(())
    }

    /// A key the far end pressed: recordings it terminates stop, digit detects report it,
    /// collects gather it.
    pub(super) fn on_digit(&mut self, now: u64, digit: char) {
        self.record_terminator(digit);
        self.emit(CallEvent::Dtmf { digit });
        self.detect_digit(digit);
        let mut done = Vec::new();
        let mut started = Vec::new();
        for op in self.ops.iter_mut() {
            let Op::Collect(c) = op else { continue };
            if !c.wants_digits {
                continue;
            }
            if c.digits.is_empty() && !c.speech_started {
                started.push(c.control_id.clone());
            }
            if c.terminators.contains(digit) {
                done.push((c.control_id.clone(), digit.to_string()));
                continue;
            }
            c.digits.push(digit);
            if c.digits.chars().count() >= c.max {
                done.push((c.control_id.clone(), String::new()));
            } else {
                c.deadline = Some(now + c.digit_timeout_ms);
            }
        }
        for control_id in started {
            self.input_started(&control_id);
        }
        for (control_id, terminator) in done {
            self.finish_digits(now, &control_id, terminator);
        }
    }

    pub(super) fn collect_timeouts(&mut self, now: u64) {
        let due: Vec<String> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Collect(c) if c.deadline.is_some_and(|d| now >= d) => {
                    Some(c.control_id.clone())
                }
                _ => None,
            })
            .collect();
        for control_id in due {
            self.finish_digits(now, &control_id, String::new());
        }
    }

    /// Digits (or a timeout) end a round: the digits, or no_input / no_match when none came.
    fn finish_digits(&mut self, now: u64, control_id: &str, terminator: String) {
        let Ok(c) = self.ops.collect_mut(control_id) else {
            return;
        };
        let result = if c.digits.is_empty() && terminator.is_empty() {
            if c.speech_started {
                // Speech began but no transcript came in time.
                CollectResult::NoMatch
            } else {
                CollectResult::NoInput
            }
        } else {
            CollectResult::Digit {
                digits: c.digits.clone(),
                terminator,
            }
        };
        self.complete_collect(now, control_id, result);
    }

    /// Input began (first digit, or speech started): the start_of_input event if asked, and a
    /// prompt's playback stops (barge-in).
    fn input_started(&mut self, control_id: &str) {
        let Ok(c) = self.ops.collect_mut(control_id) else {
            return;
        };
        let prompt_play = if c.barge_min_words > 1 && c.digits.is_empty() {
            // Speech: the playback stops once enough words are heard (`on_speech_event`).
            None
        } else {
            c.prompt_play.take()
        };
        let c = c.clone();
        if c.send_start_of_input {
            self.emit(CallEvent::Collect {
                control_id: c.control_id.clone(),
                status_url: c.status_url.clone(),
                result: CollectResult::StartOfInput,
                is_final: None,
                state: c.continuous.then_some("collecting"),
            });
        }
        if let Some(play) = prompt_play {
            let _ = self.control_play(&play, PlayerOp::Stop);
        }
    }

    /// Reports a round's result; a continuous collect starts over, another ends (its listener
    /// removed, a waiting script told).
    fn complete_collect(&mut self, now: u64, control_id: &str, result: CollectResult) {
        let Ok(c) = self.ops.collect_mut(control_id) else {
            return;
        };
        if c.continuous {
            c.digits.clear();
            c.speech_started = false;
            c.deadline = Some(now + c.initial_timeout_ms);
        }
        let c = c.clone();
        self.emit(CallEvent::Collect {
            control_id: c.control_id.clone(),
            status_url: c.status_url.clone(),
            result: result.clone(),
            is_final: c.partial_results.then_some(true),
            state: c.continuous.then_some("collecting"),
        });
        if c.continuous {
            return;
        }
        self.ops.remove(control_id);
        if let Some(play) = &c.prompt_play {
            let _ = self.control_play(play, PlayerOp::Stop);
        }
        if c.origin.script_waits() {
            self.script_done(control_id, OpResult::Collected(result));
        }
        self.collect_gone(&c);
    }

    fn collect_gone(&mut self, c: &CollectOp) {
        if c.speech.is_some() {
            self.actions.push_back(Action::SpeechListener {
                control_id: c.control_id.clone(),
                spec: None,
            });
        }
        self.update_in_band_digits();
    }

    pub(super) fn on_speech_event(&mut self, now: u64, control_id: &str, event: SpeechEvent) {
        let Ok(c) = self.ops.collect_mut(control_id) else {
            return;
        };
        match event {
            SpeechEvent::StartOfInput => {
                let first = !c.speech_started && c.digits.is_empty();
                c.speech_started = true;
                // The utterance now bounds the wait instead of initial_timeout.
                if let Some((end_silence, speech_timeout)) = c.speech {
                    c.deadline = Some(now + speech_timeout + end_silence + RESULT_GRACE_MS);
                }
                if first {
                    self.input_started(control_id);
                }
            }
            SpeechEvent::Partial { text } => {
                if c.barge_min_words > 1 && word_count(&text) >= c.barge_min_words {
                    if let Some(play) = c.prompt_play.take() {
                        let _ = self.control_play(&play, PlayerOp::Stop);
                    }
                }
                let Ok(c) = self.ops.collect_mut(control_id) else {
                    return;
                };
                if c.partial_results {
                    let c = c.clone();
                    // Partials are not scored until the utterance ends.
                    self.emit(CallEvent::Collect {
                        control_id: c.control_id,
                        status_url: c.status_url,
                        result: CollectResult::Speech {
                            text,
                            confidence: 0.0,
                        },
                        is_final: Some(false),
                        state: c.continuous.then_some("collecting"),
                    });
                }
            }
            SpeechEvent::Result { text, confidence } => {
                if c.prompt_play.is_some()
                    && c.barge_min_words > 1
                    && word_count(&text) < c.barge_min_words
                {
                    // Too few words to cut the prompt: not input. The input timers wait for
                    // the playback's end again.
                    c.speech_started = false;
                    c.deadline = None;
                    return;
                }
                let result = if text.is_empty() || confidence < MIN_CONFIDENCE {
                    CollectResult::NoMatch
                } else {
                    CollectResult::Speech { text, confidence }
                };
                self.complete_collect(now, control_id, result);
            }
            SpeechEvent::Error { .. } => {
                self.complete_collect(now, control_id, CollectResult::Error);
            }
        }
    }
}

fn word_count(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}
