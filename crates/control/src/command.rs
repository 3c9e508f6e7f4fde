//! Commands on an existing call. One variant per Calling API command (calling-api.md §2.2),
//! typed after validation. A SWML method that does the same thing builds the same variant.

use serde_json::Value;

use crate::status::{CallStatus, EndReason};

/// `update` (calling-api.md §6.2). At least one of `url`, `swml`, `status` is set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateParams {
    pub url: Option<String>,
    pub swml: Option<Value>,
    pub fallback_url: Option<String>,
    /// `canceled` or `completed`.
    pub status: Option<CallStatus>,
    pub status_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallCommand {
    Update(UpdateParams),
    End {
        reason: EndReason,
    },
    /// A validated command whose capability is not built on this node yet. The node answers it
    /// with 501 naming the command; it never pretends to succeed. `params` is kept so that a
    /// later node version can execute it.
    NotBuilt {
        command: String,
        params: Value,
    },
}

impl CallCommand {
    /// The Calling API command name.
    pub fn name(&self) -> &str {
        match self {
            CallCommand::Update(_) => "update",
            CallCommand::End { .. } => "calling.end",
            CallCommand::NotBuilt { command, .. } => command,
        }
    }
}
