//! A validated `dial` request: everything the node needs to place an outbound call.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[default]
    #[serde(rename = "POST")]
    Post,
}

/// A call state a `status_url` subscriber may ask for. The spec's and the SDK's spellings are both
/// accepted (ambiguity register A21); only states that really occur are ever delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusEvent {
    Queued,
    Initiated,
    Created,
    Ringing,
    Answered,
    Ending,
    Ended,
}

impl StatusEvent {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => StatusEvent::Queued,
            "initiated" => StatusEvent::Initiated,
            "created" => StatusEvent::Created,
            "ringing" => StatusEvent::Ringing,
            "answered" => StatusEvent::Answered,
            "ending" => StatusEvent::Ending,
            "ended" => StatusEvent::Ended,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusEvent::Queued => "queued",
            StatusEvent::Initiated => "initiated",
            StatusEvent::Created => "created",
            StatusEvent::Ringing => "ringing",
            StatusEvent::Answered => "answered",
            StatusEvent::Ending => "ending",
            StatusEvent::Ended => "ended",
        }
    }
}

/// An audio codec the caller may offer (`OutboundCallCodec`). Video codecs and G.729 are accepted
/// by validation but never offered (dialtone has no video and no G.729 licence-free encoder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    /// Opus, optionally pinned to a sample rate (Hz) and ptime (ms): `OPUS@16000H@20I`.
    Opus {
        rate: u32,
        ptime: u32,
    },
    G729,
    Vp8,
    H264,
}

impl Codec {
    /// Parses one `OutboundCallCodec` spelling (case-insensitive).
    pub fn parse(s: &str) -> Option<Codec> {
        let up = s.trim().to_ascii_uppercase();
        Some(match up.as_str() {
            "PCMU" => Codec::Pcmu,
            "PCMA" => Codec::Pcma,
            "G722" => Codec::G722,
            "G729" => Codec::G729,
            "VP8" => Codec::Vp8,
            "H264" => Codec::H264,
            "OPUS" => Codec::Opus {
                rate: 48000,
                ptime: 20,
            },
            "OPUS@48000H@20I" => Codec::Opus {
                rate: 48000,
                ptime: 20,
            },
            "OPUS@24000H@20I" => Codec::Opus {
                rate: 24000,
                ptime: 20,
            },
            "OPUS@16000H@20I" => Codec::Opus {
                rate: 16000,
                ptime: 20,
            },
            "OPUS@8000H@20I" => Codec::Opus {
                rate: 8000,
                ptime: 20,
            },
            _ => return None,
        })
    }

    pub fn is_audio(self) -> bool {
        !matches!(self, Codec::Vp8 | Codec::H264)
    }
}

/// SRTP for a SIP leg, as SWML `connect`'s `encryption` names it (swml.md §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEncryption {
    /// Plain RTP only.
    Forbidden,
    /// SRTP when the other side takes it, plain RTP otherwise.
    Optional,
    /// SRTP or no call.
    Mandatory,
}

impl MediaEncryption {
    pub const NAMES: [&'static str; 3] = ["forbidden", "optional", "mandatory"];

    pub fn parse(name: &str) -> Option<MediaEncryption> {
        match name {
            "forbidden" => Some(MediaEncryption::Forbidden),
            "optional" => Some(MediaEncryption::Optional),
            "mandatory" => Some(MediaEncryption::Mandatory),
            _ => None,
        }
    }
}

/// A `dial` after validation. `swml` holds the parsed inline document (object form) when given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DialRequest {
    pub from: String,
    /// Absent only when `to_script` is given.
    pub to: Option<String>,
    pub to_script: Option<serde_json::Value>,
    pub url: Option<String>,
    pub swml: Option<serde_json::Value>,
    pub fallback_url: Option<String>,
    pub url_method: HttpMethod,
    pub username: Option<String>,
    pub password: Option<String>,
    pub caller_id: Option<String>,
    pub status_url: Option<String>,
    /// Defaults to `[ended]`.
    pub status_events: Vec<StatusEvent>,
    /// Empty means "the server's default offer".
    pub codecs: Vec<Codec>,
    /// SRTP for the leg (an extension: SWML `connect`'s parameter); `None` is the server's
    /// `outbound_encryption`.
    pub encryption: Option<MediaEncryption>,
    /// Extra SIP INVITE headers and the caller's display name (SWML `connect`'s `headers`,
    /// `from_name`).
    pub headers: Vec<(String, String)>,
    pub from_name: Option<String>,
    /// SIP session timer (RFC 4028) of the leg: `Session-Expires` seconds on the INVITE (SWML
    /// `connect`'s `session_timeout`); `None`: none asked for.
    pub session_expires_secs: Option<u32>,
    /// Ring timeout in seconds, 1–600 (default 60, ambiguity register A22).
    pub timeout_secs: u32,
    pub max_price_per_minute: Option<f64>,
    pub send_digits: Option<String>,
    pub region: Vec<String>,
    pub custom_variables: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_spellings() {
        assert_eq!(Codec::parse("pcmu"), Some(Codec::Pcmu));
        assert_eq!(
            Codec::parse("OPUS@16000H@20I"),
            Some(Codec::Opus {
                rate: 16000,
                ptime: 20
            })
        );
        assert_eq!(Codec::parse("GSM"), None);
        assert!(!Codec::Vp8.is_audio());
    }

    #[test]
    fn status_event_spellings() {
        for s in [
            "queued",
            "initiated",
            "created",
            "ringing",
            "answered",
            "ending",
            "ended",
        ] {
            assert_eq!(StatusEvent::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(StatusEvent::parse("completed"), None);
    }
}
