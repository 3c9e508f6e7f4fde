//! Media forks: `calling.tap` (calling-api.md §6.15), `calling.stream` (§6.17) and
//! `calling.transcribe` (§6.19). SWML `tap`, `stream`, `transcribe` build the same values.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::play::AudioDirection;
use crate::dial::HttpMethod;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TapCodec {
    #[serde(rename = "PCMU", alias = "pcmu")]
    Pcmu,
    #[serde(rename = "PCMA", alias = "pcma")]
    Pcma,
    #[serde(rename = "OPUS", alias = "opus")]
    Opus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TapAudioParams {
    pub direction: AudioDirection,
}

/// Only audio taps exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TapKind {
    #[default]
    Audio,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TapSpec {
    #[serde(rename = "type", default)]
    pub kind: TapKind,
    pub params: TapAudioParams,
}

/// Where the tapped audio goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "params", rename_all = "lowercase")]
pub enum TapDevice {
    Rtp {
        addr: std::net::Ipv4Addr,
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        codec: Option<TapCodec>,
        /// Milliseconds per packet, a multiple of 10 in 10..=120.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ptime: Option<u32>,
    },
    Ws {
        uri: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        codec: Option<TapCodec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<u32>,
    },
}

/// `calling.tap` (§6.15).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TapParams {
    pub control_id: String,
    pub tap: TapSpec,
    pub device: TapDevice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StreamTrack {
    #[default]
    InboundTrack,
    OutboundTrack,
    BothTracks,
}

/// `calling.stream` (§6.17).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamParams {
    pub control_id: String,
    /// A `wss://` URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(default)]
    pub track: StreamTrack,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_bearer_token: Option<String>,
    /// The user's own key/values, handed to their server as they came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_parameters: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
    #[serde(default)]
    pub status_url_method: HttpMethod,
}

/// `calling.transcribe` (§6.19).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscribeParams {
    pub control_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}
