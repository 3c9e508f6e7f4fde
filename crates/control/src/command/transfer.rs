//! `calling.transfer` (calling-api.md §6.4) and `calling.refer` (§6.31).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a transfer goes. A device object is normalised to its address by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TransferDest {
    /// A `sip:` URI, an E.164 number, or an http(s) URL of a SWML document.
    Address(String),
    /// An inline SWML document (it has `sections`).
    Document(Value),
}

impl TransferDest {
    /// The URL of a SWML document to fetch, when the destination is one.
    pub fn swml_url(&self) -> Option<&str> {
        match self {
            TransferDest::Address(a) if a.starts_with("http://") || a.starts_with("https://") => {
                Some(a)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferParams {
    pub dest: TransferDest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferTarget {
    /// A `sip:` URI.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Only SIP devices can be referred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReferDeviceKind {
    #[default]
    Sip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferDevice {
    #[serde(rename = "type", default)]
    pub kind: ReferDeviceKind,
    pub params: ReferTarget,
}

/// `calling.refer` (§6.31).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferParams {
    pub device: ReferDevice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}
