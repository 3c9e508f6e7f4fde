//! The call's operations — play, collect (digits and speech), record, detect, prompt,
//! denoise and bridging — as one sans-IO state machine told the time, with one op table keyed
//! by `control_id`.
//!
//! Driving contract (the shape of [`crate::call::OutboundCall`] and `swml::Run`):
//! 1. [`CallSession::handle_command`] / [`CallSession::start_prompt`] for what a REST request or
//!    a SWML method asks; an `Err` is the command's answer and changes nothing.
//! 2. [`CallSession::handle_event`] for what the media, the recorder or the recogniser report.
//! 3. [`CallSession::handle_timeout`] once [`CallSession::poll_timeout`] is due.
//! 4. After each of these, drain [`CallSession::poll_action`] and execute every action in
//!    order (start a playback, set a listener, send a webhook, complete a script...).
//! 5. [`CallSession::call_ended`] once, when the call is gone.
//!
//! It owns no sockets, spawns nothing and reads no clock: `now` is milliseconds on any
//! monotonic scale the driver chooses.

use std::collections::VecDeque;

use crate::command::{CallCommand, CollectParams, PlayParams};
use crate::service::ControlError;

mod bridge;
mod collect;
mod detect;
pub mod events;
mod fax;
mod fork;
mod ops;
mod play;
mod record;
#[cfg(test)]
mod tests;

pub use collect::{secs_to_ms, MIN_CONFIDENCE};
pub use events::*;
use ops::{Op, OpTable};

/// A playback on the call's player; numbered by the session.
pub type PlaybackId = u64;

/// Who started an operation, and whether a script waits for its final result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Rest,
    /// A SWML method; with `wait_final` the script waits for [`Action::ScriptDone`].
    Script {
        wait_final: bool,
    },
}

impl Origin {
    fn script_waits(self) -> bool {
        matches!(self, Origin::Script { wait_final: true })
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Fetch/synthesise the audio of a playback off the media path, then report
    /// [`SessionEvent::PlayReady`].
    PreparePlay {
        id: PlaybackId,
        params: PlayParams,
    },
    /// Queue a prepared playback on the call's player.
    QueuePlay {
        id: PlaybackId,
        volume_db: f64,
        loops: u32,
    },
    PlayControl {
        id: PlaybackId,
        op: PlayerOp,
    },
    /// Install (`Some`) or remove (`None`) the speech listener of a collect.
    SpeechListener {
        control_id: String,
        spec: Option<SpeechSpec>,
    },
    /// Install (`Some`) or remove (`None`) the detector of a detect.
    DetectListener {
        control_id: String,
        spec: Option<DetectSpec>,
    },
    /// In-band DTMF detection on or off (on while a collect or a digit detect runs).
    InBandDigits(bool),
    /// Start a recording (the driver already checked that it can be stored).
    StartRecording {
        control_id: String,
        params: crate::command::RecordParams,
        /// Set for a `calling.transcribe`: the recording is transcribed once it ends.
        transcript: Option<TranscriptRequest>,
    },
    /// Route the call's audio to the recorder (on with the first recording, off after the last).
    RecorderTap(bool),
    RecorderControl {
        control_id: String,
        op: RecorderOp,
    },
    /// The denoiser in front of every listener, on or off.
    Denoise(bool),
    /// A typed call event: the driver turns it into a webhook (when its op has a status_url)
    /// or a call-event row.
    Event(CallEvent),
    /// The final result of an operation a script waits on.
    ScriptDone {
        control_id: String,
        result: OpResult,
    },
    /// Join this call's audio with the far leg `peer` (same media shard).
    BridgeMedia {
        peer: uuid::Uuid,
    },
    /// Take this call's audio out of its bridge.
    Unbridge,
    /// Tell the other call of the bridge that this one ended.
    PeerEnded {
        peer: uuid::Uuid,
    },
    /// Hang this call up (the other call of its bridge ended).
    HangUp,
    /// Build and start a tap or a stream, then report [`SessionEvent::ForkStarted`] or
    /// [`SessionEvent::ForkEnded`].
    StartFork {
        control_id: String,
        spec: ForkSpec,
    },
    /// Take a tap or stream down (its `finished` event is already reported).
    StopFork {
        control_id: String,
    },
    /// Get the fax's document ready and run it on the call, then report
    /// [`SessionEvent::FaxStarted`], each [`SessionEvent::FaxPage`] and
    /// [`SessionEvent::FaxFinished`].
    StartFax {
        params: crate::command::FaxTransferParams,
    },
    /// End the fax now (`.stop`): its `FaxFinished` follows, with the pages so far.
    StopFax {
        control_id: String,
    },
    /// The call ended mid-fax: once its terminal let go, report how it ended (`finished` to
    /// `status_url`; a fax whose last page was confirmed before the hang-up succeeded) and
    /// keep the pages received so far. No script waits any more.
    AbandonFax {
        control_id: String,
        direction: crate::command::FaxDirection,
        status_url: Option<String>,
        /// `.stop` had been asked for.
        stopped: bool,
    },
}

/// Where a whole-call transcript goes (`calling.transcribe`'s `status_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptRequest {
    pub status_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlayerOp {
    Pause,
    Resume,
    Stop,
    Volume(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecorderOp {
    Pause(crate::command::PauseBehavior),
    Resume,
    Stop,
}

/// What the media path, the recorder or the recogniser reported.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A playback's audio is ready (`Ok`) or could not be had (`Err`).
    PlayReady {
        id: PlaybackId,
        result: Result<(), String>,
    },
    Player(PlayerEvent),
    /// A key the far end pressed (RFC 4733 or in-band, deduplicated).
    Digit(char),
    Speech {
        control_id: String,
        event: SpeechEvent,
    },
    Detector {
        control_id: String,
        event: DetectorEvent,
    },
    /// The recorder finished a recording (it already sent the final webhook).
    RecordingDone {
        control_id: String,
        result: RecordingResult,
    },
    /// The far leg of this call's transfer answered.
    PeerAnswered {
        call_id: uuid::Uuid,
    },
    /// The other call of this call's bridge ended.
    PeerEnded {
        call_id: uuid::Uuid,
    },
    /// A tap or stream runs.
    ForkStarted {
        control_id: String,
        info: ForkInfo,
    },
    /// A tap or stream ended by itself (its peer closed, it could not connect).
    ForkEnded {
        control_id: String,
        reason: String,
    },
    /// A fax runs on the call; `document` is its PDF's URL (received pages go there).
    FaxStarted {
        control_id: String,
        document: Option<String>,
        identity: String,
    },
    FaxPage {
        control_id: String,
        number: u32,
    },
    /// The fax ended (or could not start); the driver took its terminal down.
    FaxFinished {
        control_id: String,
        result: FaxResult,
    },
}

/// The call's player reports, per playback.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayerEvent {
    Playing(PlaybackId),
    Paused(PlaybackId),
    Resumed(PlaybackId),
    Finished(PlaybackId),
    Stopped(PlaybackId),
    Error { id: PlaybackId, message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    StartOfInput,
    Partial { text: String },
    Result { text: String, confidence: f64 },
    Error { message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum DetectorEvent {
    Detected(DetectOutcome),
    /// The detector stopped by itself (its timeout, or a fax tone found).
    Finished,
}

/// The call's operations. See the module documentation for the driving contract.
#[derive(Debug, Default)]
pub struct CallSession {
    ops: OpTable,
    next_playback: PlaybackId,
    actions: VecDeque<Action>,
    in_band_digits: bool,
    recording_tap: bool,
    bridge: bridge::Bridge,
    ended: bool,
}

impl CallSession {
    pub fn new() -> Self {
        CallSession::default()
    }

    /// Starts or controls an operation. Commands that are not operations of a call's media
    /// (`update`, `calling.end`, `calling.transfer`, …) are the driver's and answer
    /// [`ControlError::Internal`].
    pub fn handle_command(
        &mut self,
        now: u64,
        command: CallCommand,
        origin: Origin,
    ) -> Result<(), ControlError> {
        self.check_live()?;
        match command {
            CallCommand::Play(p) => self.start_play(p, origin, None).map(|_| ()),
            CallCommand::PlayPause(p) => self.control_play(&p.control_id, PlayerOp::Pause),
            CallCommand::PlayResume(p) => self.control_play(&p.control_id, PlayerOp::Resume),
            CallCommand::PlayStop(p) => self.control_play(&p.control_id, PlayerOp::Stop),
            CallCommand::PlayVolume(p) => {
                self.control_play(&p.control_id, PlayerOp::Volume(p.volume))
            }
            CallCommand::Collect(p) => self.start_collect(now, p, origin, None),
            CallCommand::CollectStop(p) => self.stop_collect(&p.control_id),
            CallCommand::CollectStartInputTimers(p) => self.start_input_timers(now, &p.control_id),
            CallCommand::Record(p) => self.start_record(p, origin, None),
            CallCommand::Transcribe(p) => self.start_transcribe(p, origin),
            CallCommand::TranscribeStop(p) => self.stop_transcribe(&p.control_id),
            CallCommand::RecordPause(p) => {
                self.control_record(&p.control_id, RecorderOp::Pause(p.behavior))
            }
            CallCommand::RecordResume(p) => self.control_record(&p.control_id, RecorderOp::Resume),
            CallCommand::RecordStop(p) => self.control_record(&p.control_id, RecorderOp::Stop),
            CallCommand::Detect(p) => self.start_detect(p, origin),
            CallCommand::DetectStop(p) => self.stop_detect(&p.control_id),
            CallCommand::Denoise(_) => {
                self.actions.push_back(Action::Denoise(true));
                Ok(())
            }
            CallCommand::DenoiseStop(_) => {
                self.actions.push_back(Action::Denoise(false));
                Ok(())
            }
            CallCommand::Tap(p) => self.start_fork(ForkSpec::Tap(p), origin),
            CallCommand::TapStop(p) => self.stop_fork(&p.control_id, "tap"),
            CallCommand::Stream(p) => self.start_fork(ForkSpec::Stream(p), origin),
            CallCommand::StreamStop(p) => self.stop_fork(&p.control_id, "stream"),
            CallCommand::SendFaxStop(p) => {
                self.stop_fax(&p.control_id, crate::command::FaxDirection::Send)
            }
            CallCommand::ReceiveFaxStop(p) => {
                self.stop_fax(&p.control_id, crate::command::FaxDirection::Receive)
            }
            other => Err(ControlError::Internal(format!(
                "{} is not an operation of the call session",
                other.name()
            ))),
        }
    }

    /// SWML `prompt`: the collect starts with its input timers held and the playback starts;
    /// the playback's end starts the timers, the first input stops the playback (barge-in).
    /// The script waits for the collect's final result.
    pub fn start_prompt(
        &mut self,
        now: u64,
        play: PlayParams,
        mut collect: CollectParams,
    ) -> Result<(), ControlError> {
        if self.ops.contains(&play.control_id) {
            return Err(ops::value_not_unique("playback", &play.control_id));
        }
        collect.start_input_timers = false;
        let collect_id = collect.control_id.clone();
        let play_id = play.control_id.clone();
        self.start_collect(
            now,
            collect,
            Origin::Script { wait_final: true },
            Some(play_id),
        )?;
        self.start_play(play, Origin::Script { wait_final: false }, Some(collect_id))
            .map(|_| ())
    }

    /// A prompt whose playback already runs (the runtime started it itself, e.g. speech of
    /// a language model's answer as it streams): the collect is linked to the playback
    /// `play_id` as [`CallSession::start_prompt`] links its own — input stops it, the input
    /// timers start when it ends — or, when it has ended already, starts with its timers.
    pub fn listen_after(
        &mut self,
        now: u64,
        play_id: &str,
        mut collect: CollectParams,
    ) -> Result<(), ControlError> {
        let collect_id = collect.control_id.clone();
        let playing = self.ops.play_mut(play_id).is_ok();
        collect.start_input_timers = !playing;
        let prompt_play = playing.then(|| play_id.to_string());
        self.start_collect(
            now,
            collect,
            Origin::Script { wait_final: true },
            prompt_play,
        )?;
        if let Ok(play) = self.ops.play_mut(play_id) {
            play.prompt_of = Some(collect_id);
        }
        Ok(())
    }

    pub fn handle_event(&mut self, now: u64, event: SessionEvent) {
        match event {
            SessionEvent::PlayReady { id, result } => self.on_play_ready(now, id, result),
            SessionEvent::Player(e) => self.on_player_event(now, e),
            SessionEvent::Digit(d) => self.on_digit(now, d),
            SessionEvent::Speech { control_id, event } => {
                self.on_speech_event(now, &control_id, event)
            }
            SessionEvent::Detector { control_id, event } => {
                self.on_detector_event(&control_id, event)
            }
            SessionEvent::RecordingDone { control_id, result } => {
                self.on_recording_done(&control_id, result)
            }
            SessionEvent::PeerAnswered { call_id } => self.on_peer_answered(call_id),
            SessionEvent::PeerEnded { call_id } => self.on_peer_ended(call_id),
            SessionEvent::ForkStarted { control_id, info } => {
                self.on_fork_started(&control_id, info)
            }
            SessionEvent::ForkEnded { control_id, reason } => {
                self.on_fork_ended(&control_id, reason)
            }
            SessionEvent::FaxStarted {
                control_id,
                document,
                identity,
            } => self.on_fax_started(&control_id, document, identity),
            SessionEvent::FaxPage { control_id, number } => self.on_fax_page(&control_id, number),
            SessionEvent::FaxFinished { control_id, result } => {
                self.on_fax_finished(&control_id, result)
            }
        }
    }

    /// The next instant [`CallSession::handle_timeout`] must run (a collect's timer).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::Collect(c) => c.deadline,
                _ => None,
            })
            .min()
    }

    pub fn handle_timeout(&mut self, now: u64) {
        self.collect_timeouts(now);
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The call is gone: every playback reports `finished`, every recording is stopped (the
    /// recorder reports it), collects and detects end silently, a bridge comes apart. No
    /// script is completed.
    pub fn call_ended(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.end_bridge();
        let forks: Vec<String> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Fork(f) => Some(f.spec.control_id().to_owned()),
                _ => None,
            })
            .collect();
        for control_id in forks {
            self.end_fork(&control_id, Some("hangup".into()));
        }
        self.end_faxes_with_the_call();
        for op in self.ops.drain() {
            match op {
                Op::Play(p) => self.actions.push_back(Action::Event(CallEvent::Play {
                    control_id: p.control_id,
                    status_url: p.status_url,
                    state: PlayState::Finished,
                })),
                Op::Record(r) => self.actions.push_back(Action::RecorderControl {
                    control_id: r.control_id,
                    op: RecorderOp::Stop,
                }),
                Op::Collect(_) | Op::Detect(_) | Op::Fork(_) | Op::Fax(_) => {}
            }
        }
    }

    /// Stops every playback (the flow left: a transfer, a replaced document).
    pub fn stop_all_plays(&mut self) {
        let ids: Vec<String> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Play(p) => Some(p.control_id.clone()),
                _ => None,
            })
            .collect();
        for id in ids {
            let _ = self.control_play(&id, PlayerOp::Stop);
        }
    }

    /// Stops the playbacks a script started (its flow is over or replaced).
    pub fn stop_script_plays(&mut self) {
        let ids: Vec<String> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Play(p) if matches!(p.origin, Origin::Script { .. }) => {
                    Some(p.control_id.clone())
                }
                _ => None,
            })
            .collect();
        for id in ids {
            let _ = self.control_play(&id, PlayerOp::Stop);
        }
    }

    /// Whether an operation with this `control_id` is active.
    pub fn is_active(&self, control_id: &str) -> bool {
        self.ops.contains(control_id)
    }

    /// In-band DTMF detection is needed while a collect or a digit detect runs; told to the
    /// driver only when that changes.
    fn update_in_band_digits(&mut self) {
        let wanted = self.ops.iter().any(|op| match op {
            Op::Collect(_) => true,
            Op::Detect(d) => d.kind == DetectKind::Digit,
            _ => false,
        });
        if wanted != self.in_band_digits {
            self.in_band_digits = wanted;
            self.actions.push_back(Action::InBandDigits(wanted));
        }
    }

    /// Nothing starts or changes once the call has ended.
    fn check_live(&self) -> Result<(), ControlError> {
        if self.ended {
            return Err(ControlError::invalid_state(
                "invalid_state",
                "the call has ended",
            ));
        }
        Ok(())
    }

    fn emit(&mut self, event: CallEvent) {
        self.actions.push_back(Action::Event(event));
    }

    fn script_done(&mut self, control_id: &str, result: OpResult) {
        self.actions.push_back(Action::ScriptDone {
            control_id: control_id.to_owned(),
            result,
        });
    }
}
