//! Recordings: the session keeps which recording is which, its terminators and its events;
//! the recorder writes the files and reports the final event itself.

use super::ops::{Op, RecordOp};
use super::{
    Action, CallEvent, CallSession, OpResult, Origin, RecordState, RecorderOp, RecordingResult,
};
use crate::command::RecordParams;
use crate::service::ControlError;

impl CallSession {
    pub(super) fn start_record(
        &mut self,
        p: RecordParams,
        origin: Origin,
    ) -> Result<(), ControlError> {
        let op = RecordOp {
            control_id: p.control_id.clone(),
            origin,
            status_url: p.status_url.clone(),
            terminators: p.record.audio.terminators.clone(),
        };
        self.ops.insert(p.control_id.clone(), Op::Record(op))?;
        if !self.recording_tap {
            self.recording_tap = true;
            self.actions.push_back(Action::RecorderTap(true));
        }
        let (control_id, status_url) = (p.control_id.clone(), p.status_url.clone());
        self.actions.push_back(Action::StartRecording {
            control_id: control_id.clone(),
            params: p,
        });
        self.emit(CallEvent::Record {
            control_id,
            status_url,
            state: RecordState::Recording,
        });
        Ok(())
    }

    pub(super) fn control_record(
        &mut self,
        control_id: &str,
        op: RecorderOp,
    ) -> Result<(), ControlError> {
        let r = self.ops.record(control_id)?.clone();
        self.actions.push_back(Action::RecorderControl {
            control_id: control_id.to_owned(),
            op,
        });
        let state = match op {
            RecorderOp::Pause(behavior) => RecordState::Paused(behavior),
            RecorderOp::Resume => RecordState::Recording,
            // The recorder reports the end (finished/no_input) itself.
            RecorderOp::Stop => return Ok(()),
        };
        self.emit(CallEvent::Record {
            control_id: r.control_id,
            status_url: r.status_url,
            state,
        });
        Ok(())
    }

    /// A key the far end pressed stops the recordings it terminates.
    pub(super) fn record_terminator(&mut self, digit: char) {
        let stops: Vec<String> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Record(r) if r.terminators.contains(digit) => Some(r.control_id.clone()),
                _ => None,
            })
            .collect();
        for control_id in stops {
            self.actions.push_back(Action::RecorderControl {
                control_id,
                op: RecorderOp::Stop,
            });
        }
    }

    pub(super) fn on_recording_done(&mut self, control_id: &str, result: RecordingResult) {
        let Some(Op::Record(r)) = self.ops.remove(control_id) else {
            return;
        };
        let recording = self.ops.iter().any(|op| matches!(op, Op::Record(_)));
        if !recording && self.recording_tap {
            self.recording_tap = false;
            self.actions.push_back(Action::RecorderTap(false));
        }
        if r.origin.script_waits() {
            self.script_done(control_id, OpResult::Recorded(result));
        }
    }
}
