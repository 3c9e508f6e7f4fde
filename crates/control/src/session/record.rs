//! Recordings: the session keeps which recording is which, its terminators and its events;
//! the recorder writes the files and reports the final event itself.

use super::ops::{Op, RecordOp};
use super::TranscriptRequest;
use super::{
    Action, CallEvent, CallSession, OpResult, Origin, RecordState, RecorderOp, RecordingResult,
};
use crate::command::{
    AudioDirection, RecordAudio, RecordFormat, RecordParams, RecordSpec, TranscribeParams,
};
use crate::service::ControlError;

impl CallSession {
    pub(super) fn start_record(
        &mut self,
        p: RecordParams,
        origin: Origin,
        transcript: Option<TranscriptRequest>,
    ) -> Result<(), ControlError> {
        let op = RecordOp {
            control_id: p.control_id.clone(),
            origin,
            status_url: p.status_url.clone(),
            terminators: p.record.audio.terminators.clone(),
            transcript: transcript.is_some(),
            stopping: false,
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
            transcript,
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
        if r.transcript {
            // A transcription's recording is not one of the call's recordings.
            return Err(super::ops::does_not_exist("recording", control_id));
        }
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

    /// `calling.transcribe` (calling-api.md §6.19): the whole call (both parties, mixed) is
    /// recorded; the driver transcribes it once the recording ends (stop, or the call's end)
    /// and sends `calling.transcript.*`. One per call: a second answers 409.
    pub(super) fn start_transcribe(
        &mut self,
        p: TranscribeParams,
        origin: Origin,
    ) -> Result<(), ControlError> {
        if self
            .ops
            .iter()
            .any(|op| matches!(op, Op::Record(r) if r.transcript))
        {
            return Err(ControlError::Conflict {
                code: "transcription_active",
                message: "this call is already being transcribed (one transcription per call)"
                    .into(),
                attribute: None,
            });
        }
        let audio = RecordAudio {
            format: RecordFormat::Wav,
            direction: AudioDirection::Both,
            stereo: false,
            terminators: String::new(),
            initial_timeout: 0.0,
            end_silence_timeout: 0.0,
            max_length: 0,
            ..RecordAudio::default()
        };
        let params = RecordParams {
            control_id: p.control_id,
            record: RecordSpec { audio },
            status_url: None,
        };
        let transcript = TranscriptRequest {
            status_url: p.status_url,
        };
        self.start_record(params, origin, Some(transcript))
    }

    /// `calling.transcribe.stop`: the recording ends, its transcript follows.
    pub(super) fn stop_transcribe(&mut self, control_id: &str) -> Result<(), ControlError> {
        match self.ops.get_mut(control_id) {
            Some(Op::Record(r)) if r.transcript && !r.stopping => r.stopping = true,
            _ => return Err(super::ops::does_not_exist("transcription", control_id)),
        }
        self.actions.push_back(Action::RecorderControl {
            control_id: control_id.to_owned(),
            op: RecorderOp::Stop,
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
