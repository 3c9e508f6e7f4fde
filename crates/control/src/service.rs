//! The one call-control interface. The REST API drives it; later the SWML engine and the message
//! bus drive the same one.

use async_trait::async_trait;
use uuid::Uuid;

use crate::command::CallCommand;
use crate::dial::DialRequest;
use crate::leg::CallLeg;
use crate::status::CallStatus;

/// A successful command: the Call Leg, plus the `control_id` for commands that carry one
/// (ambiguity register A1) and any documented extra key (`ask_id`, `result`).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOk {
    pub leg: CallLeg,
    pub control_id: Option<String>,
    pub extra: Vec<(String, serde_json::Value)>,
}

impl CommandOk {
    pub fn leg(leg: CallLeg) -> Self {
        CommandOk {
            leg,
            control_id: None,
            extra: Vec::new(),
        }
    }
}

/// Outcomes a user can see; the API maps each to a SignalWire error body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    /// Unknown call, or another project's call: both look the same (404).
    #[error("call not found")]
    NotFound,
    /// The call is not in a state that allows the command (422 with a catalogue code such as
    /// `invalid_state`, `cannot_update_completed`, `cannot_cancel_in_progress`).
    #[error("{message}")]
    InvalidState {
        code: &'static str,
        message: String,
        attribute: Option<String>,
    },
    /// A parameter is valid in shape but cannot be honoured (422), e.g. an unroutable destination.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        attribute: Option<String>,
    },
    /// A second singleton operation (409).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        attribute: Option<String>,
    },
    /// The command is valid but this node cannot execute it yet (501).
    #[error("{command} is not implemented by this dialtone server yet")]
    NotImplemented { command: String },
    /// The node is shutting down or overloaded (503, retryable).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The node refuses a new call for a reason the client may be told (503, retryable):
    /// `max_calls_reached`, `no_rtp_port`, `draining`.
    #[error("{message}")]
    AtCapacity { code: &'static str, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ControlError {
    pub fn invalid_state(code: &'static str, message: impl Into<String>) -> Self {
        ControlError::InvalidState {
            code,
            message: message.into(),
            attribute: None,
        }
    }
}

/// Filter for the operator listing `GET /api/calling/calls`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    pub status: Option<CallStatus>,
    /// Page size, 1–1000.
    pub limit: u32,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallPage {
    pub calls: Vec<CallLeg>,
    pub next_cursor: Option<String>,
}

/// What the REST API (and later SWML, the bus) needs from a node. Every method is scoped to the
/// authenticated project: another project's call is [`ControlError::NotFound`].
#[async_trait]
pub trait CallControl: Send + Sync + 'static {
    async fn dial(&self, project: Uuid, request: DialRequest) -> Result<CommandOk, ControlError>;

    async fn command(
        &self,
        project: Uuid,
        call_id: Uuid,
        command: CallCommand,
    ) -> Result<CommandOk, ControlError>;

    async fn get_call(&self, project: Uuid, call_id: Uuid) -> Result<CallLeg, ControlError>;

    async fn list_calls(&self, project: Uuid, filter: CallFilter)
        -> Result<CallPage, ControlError>;

    /// A recording's bytes in format `ext` (`wav` or `mp3`: served at the URL its `finished`
    /// event gave). Another project's or an unknown recording, or one not in that format, is
    /// [`ControlError::NotFound`].
    async fn recording(
        &self,
        _project: Uuid,
        _recording_id: Uuid,
        _ext: &str,
    ) -> Result<Vec<u8>, ControlError> {
        Err(ControlError::NotFound)
    }

    /// A received fax's PDF (served at the URL its `finished` event gave). Another project's
    /// or an unknown fax is [`ControlError::NotFound`].
    async fn fax_document(&self, _project: Uuid, _fax_id: Uuid) -> Result<Vec<u8>, ControlError> {
        Err(ControlError::NotFound)
    }

    /// The node's conferences and their participants (operator extension,
    /// `GET /api/calling/conferences`).
    async fn list_conferences(
        &self,
        _project: Uuid,
    ) -> Result<Vec<crate::conference::ConferenceInfo>, ControlError> {
        Err(ControlError::NotImplemented {
            command: "conferences".into(),
        })
    }

    /// Mutes or unmutes a participant (operator extension). An unknown conference, or a call
    /// not in it, is [`ControlError::NotFound`].
    async fn conference_mute(
        &self,
        _project: Uuid,
        _conference_id: Uuid,
        _call_id: Uuid,
        _muted: bool,
    ) -> Result<crate::conference::Participant, ControlError> {
        Err(ControlError::NotImplemented {
            command: "conference mute".into(),
        })
    }

    /// Takes a participant out of its conference; its call stays up and its SWML goes on
    /// (operator extension). Unknown: [`ControlError::NotFound`].
    async fn conference_kick(
        &self,
        _project: Uuid,
        _conference_id: Uuid,
        _call_id: Uuid,
    ) -> Result<(), ControlError> {
        Err(ControlError::NotImplemented {
            command: "conference kick".into(),
        })
    }
}
