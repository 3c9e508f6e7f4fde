//! Faxes (swml.md §6.21 `receive_fax`, §6.27 `send_fax`): started by SWML only (the REST API
//! can only stop them, calling-api.md §6.30), so these params have no JSON form of their own.

use serde::{Deserialize, Serialize};

/// Which way the pages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaxDirection {
    Send,
    Receive,
}

impl FaxDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            FaxDirection::Send => "send",
            FaxDirection::Receive => "receive",
        }
    }

    /// The SWML method (and the stop command's stem): `send_fax`, `receive_fax`.
    pub fn method(self) -> &'static str {
        match self {
            FaxDirection::Send => "send_fax",
            FaxDirection::Receive => "receive_fax",
        }
    }
}

/// A fax on the call: SWML `send_fax` (with its `document`) or `receive_fax`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaxTransferParams {
    pub control_id: String,
    pub direction: FaxDirection,
    /// The PDF to send (send only).
    pub document: Option<String>,
    /// The header line on each page sent (send only).
    pub header_info: Option<String>,
    /// Our station id (TSI when sending, CSI when receiving); the driver defaults it to the
    /// call's own number.
    pub identity: Option<String>,
    pub status_url: Option<String>,
}
