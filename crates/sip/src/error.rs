//! The adapter's error type. Variants are outcomes the call layer can act on;
//! the SIP stack's own error type never crosses this boundary (it is rendered
//! into [`SipError::Stack`]).

use std::net::SocketAddr;

/// Everything that can go wrong when starting the endpoint or placing,
/// cancelling or hanging up a leg. Final SIP responses are *not* errors: they
/// arrive as [`crate::LegEvent::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// The configuration cannot work (e.g. `external_ip` is 0.0.0.0).
    #[error("invalid SIP configuration: {0}")]
    Config(String),
    /// The UDP/TCP listener could not be bound.
    #[error("cannot listen for SIP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A URI given to [`crate::SipEndpoint::invite`] is not a usable SIP URI.
    #[error("invalid {field} URI {uri:?}: {reason}")]
    InvalidUri {
        field: &'static str,
        uri: String,
        reason: String,
    },
    /// An extra header or display name would produce a malformed or
    /// hijacked request (CR/LF, reserved header, bad name).
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader { name: String, reason: String },
    /// The operation does not apply to the leg in its current state.
    #[error("invalid in the leg's current state: {0}")]
    InvalidState(String),
    /// The far end answered an in-dialog request of ours with a failure.
    #[error("request rejected with {code} {reason}")]
    Rejected { code: u16, reason: String },
    /// The operation is not implemented by this adapter.
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// The endpoint has been shut down.
    #[error("the SIP endpoint is shut down")]
    Shutdown,
    /// The underlying SIP stack reported an error.
    #[error("SIP stack error: {0}")]
    Stack(String),
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> Self {
        SipError::Stack(e.to_string())
    }
}

impl From<rsipstack::sip::Error> for SipError {
    fn from(e: rsipstack::sip::Error) -> Self {
        SipError::Stack(e.to_string())
    }
}
