//! The call-control vocabulary shared by every surface of dialtone.
//!
//! A REST command and a SWML method end in the same [`CallCommand`]; the node executes it on the
//! call actor that owns the call and answers with a [`CommandOk`] or a [`ControlError`]. This crate
//! is pure data plus the [`CallControl`] trait: no sockets, no tasks, no clock.

pub mod call;
pub mod command;
pub mod conference;
pub mod dial;
pub mod leg;
pub mod queue;
pub mod routing;
pub mod service;
pub mod session;
pub mod status;

pub use command::CallCommand;
pub use dial::{Codec, DialRequest, HttpMethod, MediaEncryption, StatusEvent};
pub use leg::{CallLeg, ChargeDetail, LegType, MediaReport, CALL_LEG_KEYS};
pub use service::{CallControl, CallFilter, CallPage, CommandOk, ControlError};
pub use status::{CallStatus, Direction, EndReason};
