//! Typed call events and operation results. JSON is made from them at the webhook edge only.

use serde_json::{json, Value};

use crate::command::{FaxTone, MachineParams, PauseBehavior};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayState {
    Playing,
    Paused,
    Finished,
    Error,
}

impl PlayState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlayState::Playing => "playing",
            PlayState::Paused => "paused",
            PlayState::Finished => "finished",
            PlayState::Error => "error",
        }
    }
}

/// A collect's outcome (calling-events.md §6 `result`).
#[derive(Debug, Clone, PartialEq)]
pub enum CollectResult {
    Digit {
        digits: String,
        terminator: String,
    },
    Speech {
        text: String,
        confidence: f64,
    },
    NoInput,
    NoMatch,
    Error,
    StartOfInput,
    /// A continuous collect was stopped (ambiguity register A13).
    Finished,
}

impl CollectResult {
    /// The `result` object of `calling.call.collect`.
    pub fn to_json(&self) -> Value {
        match self {
            CollectResult::Digit { digits, terminator } => {
                json!({ "type": "digit", "params": { "digits": digits, "terminator": terminator } })
            }
            CollectResult::Speech { text, confidence } => {
                json!({ "type": "speech", "params": { "text": text, "confidence": confidence } })
            }
            CollectResult::NoInput => json!({ "type": "no_input" }),
            CollectResult::NoMatch => json!({ "type": "no_match" }),
            CollectResult::Error => json!({ "type": "error" }),
            CollectResult::StartOfInput => json!({ "type": "start_of_input" }),
            CollectResult::Finished => json!({ "type": "finished" }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectKind {
    Machine,
    Fax,
    Digit,
}

impl DetectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DetectKind::Machine => "machine",
            DetectKind::Fax => "fax",
            DetectKind::Digit => "digit",
        }
    }
}

/// One `detect` object: which detector said what (`MACHINE`, `HUMAN`, `READY`, `CED`, a
/// digit, `finished`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectOutcome {
    pub kind: DetectKind,
    pub event: String,
    pub beep: bool,
}

impl DetectOutcome {
    pub fn new(kind: DetectKind, event: impl Into<String>) -> Self {
        DetectOutcome {
            kind,
            event: event.into(),
            beep: false,
        }
    }

    /// The `detect` object of `calling.call.detect`.
    pub fn to_json(&self) -> Value {
        let mut params = json!({ "event": self.event });
        if self.beep {
            params["beep"] = json!(true);
        }
        json!({ "type": self.kind.as_str(), "params": params })
    }

    /// Whether it ends a script's wait (swml.md §6.8: outcomes end it; MACHINE only when the
    /// script does not wait for the end of the greeting; NOT_READY never).
    pub fn ends_wait(&self, until_ready: bool) -> bool {
        match self.event.to_ascii_uppercase().as_str() {
            "MACHINE" => !until_ready,
            "NOT_READY" => false,
            _ => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Recording,
    Paused(PauseBehavior),
}

/// An event of an operation on the call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    Play {
        control_id: String,
        status_url: Option<String>,
        state: PlayState,
    },
    Collect {
        control_id: String,
        status_url: Option<String>,
        result: CollectResult,
        /// `final` (present when partial results were asked for).
        is_final: Option<bool>,
        /// Continuous collects say `collecting`, or `finished` once stopped.
        state: Option<&'static str>,
    },
    Record {
        control_id: String,
        status_url: Option<String>,
        state: RecordState,
    },
    Detect {
        control_id: String,
        status_url: Option<String>,
        outcome: DetectOutcome,
    },
    /// The far end pressed a key (a call-event row, no webhook).
    Dtmf { digit: char },
    /// A tap or a stream started (`tapping`/`streaming`) or ended (`finished`).
    Fork {
        spec: Box<ForkSpec>,
        state: ForkState,
        /// What the running fork reported (the negotiated codec and packet time).
        info: Option<ForkInfo>,
    },
    /// A fax's page went or came (`page`), or the fax ended (`finished`): `calling.call.fax`.
    Fax {
        control_id: String,
        status_url: Option<String>,
        direction: crate::command::FaxDirection,
        progress: FaxProgress,
    },
}

/// What a `calling.call.fax` event says.
#[derive(Debug, Clone, PartialEq)]
pub enum FaxProgress {
    Page { number: u32 },
    Finished(FaxResult),
}

/// How a fax ended (its `finished` event and the `send_fax_*` / `receive_fax_*` variables).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaxResult {
    pub success: bool,
    /// The T.30 completion code: 0 when the fax went through.
    pub result_code: i32,
    pub result_text: String,
    pub pages: u32,
    pub identity: String,
    pub remote_identity: String,
    /// The PDF: the document sent, or where the pages received are served.
    pub document: Option<String>,
}

/// A media fork as asked for: a tap or a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ForkSpec {
    Tap(crate::command::TapParams),
    Stream(crate::command::StreamParams),
}

impl ForkSpec {
    pub fn control_id(&self) -> &str {
        match self {
            ForkSpec::Tap(t) => &t.control_id,
            ForkSpec::Stream(s) => &s.control_id,
        }
    }

    /// `tap` or `stream`: the word in errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ForkSpec::Tap(_) => "tap",
            ForkSpec::Stream(_) => "stream",
        }
    }

    pub fn status_url(&self) -> Option<&str> {
        match self {
            ForkSpec::Tap(t) => t.status_url.as_deref(),
            ForkSpec::Stream(s) => s.status_url.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForkState {
    Started,
    /// Ended; `reason` says why when known (`stopped`, `hangup`, the peer closed, …).
    Finished {
        reason: Option<String>,
    },
}

/// What a running fork is: the codec, rate and packet time it sends, and for an RTP tap the
/// address it sends from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForkInfo {
    /// `PCMU`, `PCMA`, `L16`.
    pub codec: String,
    pub rate: u32,
    /// Milliseconds per packet (RTP taps); 20 for WebSockets.
    pub ptime: u32,
    /// The local address an RTP tap sends from.
    pub source: Option<std::net::SocketAddr>,
}

/// How a recording ended (its final `calling.call.record` event: `finished`, `no_input` or
/// `error`), and where it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordingResult {
    pub state: String,
    pub url: Option<String>,
    /// Seconds.
    pub duration: Option<f64>,
    /// Bytes.
    pub size: Option<u64>,
}

/// The final result of an operation a script waited on.
#[derive(Debug, Clone, PartialEq)]
pub enum OpResult {
    /// A playback ended; `Err` when its audio could not be played.
    Played(Result<(), String>),
    Collected(CollectResult),
    Detected(DetectOutcome),
    Recorded(RecordingResult),
    /// A tap or stream runs (`Ok`) or could not start (`Err` with why).
    Forked(Result<ForkInfo, String>),
    Faxed(FaxResult),
}

/// What a speech collect's listener is told.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechSpec {
    /// BCP-47, without an `engine:` prefix.
    pub language: String,
    pub hints: Vec<String>,
    /// Spoken digits are in the grammar only when no hints are given: next to hint phrases, a
    /// free digit loop wins too often on 8 kHz audio (DTMF still works alongside).
    pub digits_allowed: bool,
    pub end_silence_ms: u64,
    pub speech_timeout_ms: u64,
    pub partial_results: bool,
    pub continuous: bool,
}

/// What a detect's listener runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectSpec {
    pub kind: DetectKind,
    pub machine: MachineParams,
    pub tone: Option<FaxTone>,
    /// None: no limit.
    pub timeout_ms: Option<u64>,
}
