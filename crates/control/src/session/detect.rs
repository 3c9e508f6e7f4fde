//! Detects: answering machine, fax tones and digits, reported as `calling.call.detect` events.
//! The detectors themselves run on the media path; the session keeps which detect is which and
//! when a waiting script is done.

use super::ops::{DetectOp, Op};
use super::{
    Action, CallEvent, CallSession, DetectKind, DetectOutcome, DetectSpec, DetectorEvent, OpResult,
    Origin,
};
use crate::command::{DetectParams, Detector, MachineParams};
use crate::service::ControlError;

impl CallSession {
    pub(super) fn start_detect(
        &mut self,
        p: DetectParams,
        origin: Origin,
    ) -> Result<(), ControlError> {
        let (kind, machine, tone, digits) = match p.detect {
            Detector::Machine(m) => (DetectKind::Machine, m, None, String::new()),
            Detector::Fax(f) => (
                DetectKind::Fax,
                MachineParams::default(),
                f.tone,
                String::new(),
            ),
            Detector::Digit(d) => (DetectKind::Digit, MachineParams::default(), None, d.digits),
        };
        let op = DetectOp {
            control_id: p.control_id.clone(),
            origin,
            kind,
            digits,
            status_url: p.status_url,
            until_ready: kind == DetectKind::Machine && machine.detect_message_end,
        };
        self.ops.insert(p.control_id.clone(), Op::Detect(op))?;
        // 0 means no limit: a maximum run time of nothing would end the detect at once.
        let timeout_ms = Some(p.timeout)
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| (t * 1000.0) as u64);
        self.actions.push_back(Action::DetectListener {
            control_id: p.control_id,
            spec: Some(DetectSpec {
                kind,
                machine,
                tone,
                timeout_ms,
            }),
        });
        self.update_in_band_digits();
        Ok(())
    }

    /// `calling.detect.stop`: the detect ends with its `finished` event.
    pub(super) fn stop_detect(&mut self, control_id: &str) -> Result<(), ControlError> {
        self.ops.detect(control_id)?;
        self.end_detect(control_id);
        Ok(())
    }

    /// A far-end digit: each digit detect it matches reports it.
    pub(super) fn detect_digit(&mut self, digit: char) {
        let hits: Vec<String> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Detect(d)
                    if d.kind == DetectKind::Digit
                        && (d.digits.is_empty() || d.digits.contains(digit)) =>
                {
                    Some(d.control_id.clone())
                }
                _ => None,
            })
            .collect();
        for control_id in hits {
            let outcome = DetectOutcome::new(DetectKind::Digit, digit.to_string());
            self.detect_outcome(&control_id, outcome);
        }
    }

    pub(super) fn on_detector_event(&mut self, control_id: &str, event: DetectorEvent) {
        if self.ops.detect(control_id).is_err() {
            return;
        }
        match event {
            DetectorEvent::Detected(outcome) => self.detect_outcome(control_id, outcome),
            DetectorEvent::Finished => self.end_detect(control_id),
        }
    }

    /// One event; an outcome that ends a script's wait completes it and stops the detect.
    fn detect_outcome(&mut self, control_id: &str, outcome: DetectOutcome) {
        let Ok(d) = self.ops.detect(control_id) else {
            return;
        };
        let d = d.clone();
        self.emit(CallEvent::Detect {
            control_id: d.control_id.clone(),
            status_url: d.status_url.clone(),
            outcome: outcome.clone(),
        });
        if d.origin.script_waits() && outcome.ends_wait(d.until_ready) {
            self.script_done(control_id, OpResult::Detected(outcome));
            // Answered: its own `finished` must not complete anything a second time.
            if let Some(Op::Detect(live)) = self.ops.get_mut(control_id) {
                live.origin = Origin::Script { wait_final: false };
            }
            self.end_detect(control_id);
        }
    }

    /// Removes a detect and its listener and reports `finished`.
    fn end_detect(&mut self, control_id: &str) {
        let Some(Op::Detect(d)) = self.ops.remove(control_id) else {
            return;
        };
        self.actions.push_back(Action::DetectListener {
            control_id: control_id.to_owned(),
            spec: None,
        });
        self.update_in_band_digits();
        let outcome = DetectOutcome::new(d.kind, "finished");
        self.emit(CallEvent::Detect {
            control_id: d.control_id.clone(),
            status_url: d.status_url.clone(),
            outcome: outcome.clone(),
        });
        if d.origin.script_waits() {
            self.script_done(control_id, OpResult::Detected(outcome));
        }
    }
}
