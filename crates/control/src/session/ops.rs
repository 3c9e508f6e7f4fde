//! The op table: every long-running operation of the call by its `control_id`.

use std::collections::HashMap;

use super::events::DetectKind;
use super::{Origin, PlaybackId};
use crate::service::ControlError;

#[derive(Debug, Clone)]
pub(super) struct PlayOp {
    pub control_id: String,
    pub id: PlaybackId,
    pub status_url: Option<String>,
    pub origin: Origin,
    pub volume_db: f64,
    pub loops: u32,
    /// Queued on the player (false while its audio is being prepared).
    pub on_player: bool,
    /// Asked to stop while still being prepared.
    pub stop_requested: bool,
    /// The prompt's collect this playback belongs to.
    pub prompt_of: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct CollectOp {
    pub control_id: String,
    pub origin: Origin,
    pub max: usize,
    pub terminators: String,
    pub digit_timeout_ms: u64,
    pub initial_timeout_ms: u64,
    pub continuous: bool,
    pub send_start_of_input: bool,
    pub partial_results: bool,
    pub status_url: Option<String>,
    pub wants_digits: bool,
    /// The utterance limits `(end_silence_ms, speech_timeout_ms)` of a speech collect.
    pub speech: Option<(u64, u64)>,
    pub digits: String,
    /// Speech began in the current round (no_match rather than no_input on a timeout).
    pub speech_started: bool,
    /// When the running timer (initial or inter-digit) fires; None while the input timers
    /// wait.
    pub deadline: Option<u64>,
    /// The prompt's playback, while it plays.
    pub prompt_play: Option<String>,
    /// Speech stops the prompt's playback only with this many words (> 1); an utterance
    /// with fewer, while it plays, is let go and the collect listens on.
    pub barge_min_words: u32,
}

#[derive(Debug, Clone)]
pub(super) struct RecordOp {
    pub control_id: String,
    pub origin: Origin,
    pub status_url: Option<String>,
    pub terminators: String,
    /// A `calling.transcribe`'s recording (transcribed when it ends).
    pub transcript: bool,
    /// Asked to stop (the recorder has not reported its end yet).
    pub stopping: bool,
}

#[derive(Debug, Clone)]
pub(super) struct DetectOp {
    pub control_id: String,
    pub origin: Origin,
    pub kind: DetectKind,
    /// Digit detects: the digits that count (empty = any).
    pub digits: String,
    pub status_url: Option<String>,
    /// A machine detect with `detect_message_end`: a waiting script needs READY, not MACHINE.
    pub until_ready: bool,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Play(PlayOp),
    Collect(CollectOp),
    Record(RecordOp),
    Detect(DetectOp),
    Fork(super::fork::ForkOp),
    Fax(super::fax::FaxOp),
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Play(_) => "playback",
            Op::Collect(_) => "collect",
            Op::Record(_) => "recording",
            Op::Detect(_) => "detect",
            Op::Fork(f) => f.spec.kind(),
            Op::Fax(f) => f.params.direction.method(),
        }
    }
}

/// One table for every kind: a `control_id` names one active operation of the call.
#[derive(Debug, Default)]
pub(super) struct OpTable {
    by_id: HashMap<String, Op>,
}

impl OpTable {
    pub fn contains(&self, control_id: &str) -> bool {
        self.by_id.contains_key(control_id)
    }

    /// Adds an operation; a `control_id` already active answers 422 `value_not_unique`.
    pub fn insert(&mut self, control_id: String, op: Op) -> Result<(), ControlError> {
        if let Some(existing) = self.by_id.get(&control_id) {
            return Err(value_not_unique(existing.kind(), &control_id));
        }
        self.by_id.insert(control_id, op);
        Ok(())
    }

    pub fn get(&self, control_id: &str) -> Option<&Op> {
        self.by_id.get(control_id)
    }

    pub fn get_mut(&mut self, control_id: &str) -> Option<&mut Op> {
        self.by_id.get_mut(control_id)
    }

    pub fn remove(&mut self, control_id: &str) -> Option<Op> {
        self.by_id.remove(control_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Op> {
        self.by_id.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Op> {
        self.by_id.values_mut()
    }

    pub fn drain(&mut self) -> Vec<Op> {
        self.by_id.drain().map(|(_, op)| op).collect()
    }

    pub fn play_mut(&mut self, control_id: &str) -> Result<&mut PlayOp, ControlError> {
        match self.get_mut(control_id) {
            Some(Op::Play(p)) => Ok(p),
            _ => Err(does_not_exist("playback", control_id)),
        }
    }

    pub fn play_by_id(&self, id: PlaybackId) -> Option<&PlayOp> {
        self.iter().find_map(|op| match op {
            Op::Play(p) if p.id == id => Some(p),
            _ => None,
        })
    }

    pub fn collect_mut(&mut self, control_id: &str) -> Result<&mut CollectOp, ControlError> {
        match self.get_mut(control_id) {
            Some(Op::Collect(c)) => Ok(c),
            _ => Err(does_not_exist("collect", control_id)),
        }
    }

    pub fn record(&self, control_id: &str) -> Result<&RecordOp, ControlError> {
        match self.get(control_id) {
            Some(Op::Record(r)) => Ok(r),
            _ => Err(does_not_exist("recording", control_id)),
        }
    }

    pub fn detect(&self, control_id: &str) -> Result<&DetectOp, ControlError> {
        match self.get(control_id) {
            Some(Op::Detect(d)) => Ok(d),
            _ => Err(does_not_exist("detect", control_id)),
        }
    }
}

/// 422 `value_not_unique`: an active operation already has this control_id (A10).
pub(super) fn value_not_unique(what: &str, control_id: &str) -> ControlError {
    ControlError::Unprocessable {
        code: "value_not_unique",
        message: format!("a {what} with control_id {control_id} is already active"),
        attribute: Some("control_id".into()),
    }
}

/// 422 `does_not_exist`: no active operation of this kind has this control_id (A20).
pub(super) fn does_not_exist(what: &str, control_id: &str) -> ControlError {
    ControlError::Unprocessable {
        code: "does_not_exist",
        message: format!("no active {what} with control_id {control_id}"),
        attribute: Some("control_id".into()),
    }
}
