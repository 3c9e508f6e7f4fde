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

/// How a fork's audio is encoded on its way out (and a stream's audio on its way back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkEncoding {
    Pcmu,
    Pcma,
    /// 16-bit linear PCM, little-endian (what the Twilio-style media-stream protocol carries).
    L16,
}

/// A fork's wire format: encoding and sample rate (20 ms per message or packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkFormat {
    pub encoding: ForkEncoding,
    pub rate: u32,
}

impl ForkFormat {
    pub const PCMU: ForkFormat = ForkFormat {
        encoding: ForkEncoding::Pcmu,
        rate: 8000,
    };

    /// A stream's free-form `codec` (swml.md §6.6 stream destinations): `PCMU` (default),
    /// `PCMA`, `L16`, with an optional `@<rate>h` (L16: 8000 or 16000) and `@20i`.
    pub fn parse_stream(codec: Option<&str>) -> Result<ForkFormat, String> {
        let Some(codec) = codec.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(ForkFormat::PCMU);
        };
        let mut parts = codec.split('@');
        let name = parts.next().unwrap_or_default().to_ascii_uppercase();
        let encoding = match name.as_str() {
            "PCMU" => ForkEncoding::Pcmu,
            "PCMA" => ForkEncoding::Pcma,
            "L16" => ForkEncoding::L16,
            other => {
                return Err(format!(
                    "codec `{other}` is not supported for streams (PCMU, PCMA, L16)"
                ))
            }
        };
        let mut rate = 8000;
        for modifier in parts {
            if let Some(r) = modifier.strip_suffix('h') {
                rate = r
                    .parse()
                    .map_err(|_| format!("`@{modifier}` is not a rate like @16000h"))?;
            } else if let Some(p) = modifier.strip_suffix('i') {
                if p != "20" {
                    return Err(format!(
                        "packet time `@{modifier}`: only 20 ms is supported"
                    ));
                }
            } else {
                return Err(format!("unknown codec modifier `@{modifier}`"));
            }
        }
        let ok = match encoding {
            ForkEncoding::L16 => rate == 8000 || rate == 16_000,
            _ => rate == 8000,
        };
        if !ok {
            return Err(format!("{name} at {rate} Hz is not supported"));
        }
        Ok(ForkFormat { encoding, rate })
    }

    /// A tap's codec; OPUS is answered by the caller (not built).
    pub fn for_tap(codec: TapCodec) -> Option<ForkFormat> {
        match codec {
            TapCodec::Pcmu => Some(ForkFormat::PCMU),
            TapCodec::Pcma => Some(ForkFormat {
                encoding: ForkEncoding::Pcma,
                rate: 8000,
            }),
            TapCodec::Opus => None,
        }
    }

    /// `PCMU`, `PCMA`, `L16`.
    pub fn name(&self) -> &'static str {
        match self.encoding {
            ForkEncoding::Pcmu => "PCMU",
            ForkEncoding::Pcma => "PCMA",
            ForkEncoding::L16 => "L16",
        }
    }

    /// The media-stream protocol's `mediaFormat.encoding`.
    pub fn mime(&self) -> &'static str {
        match self.encoding {
            ForkEncoding::Pcmu => "audio/x-mulaw",
            ForkEncoding::Pcma => "audio/x-alaw",
            ForkEncoding::L16 => "audio/L16",
        }
    }

    /// Samples per 20 ms.
    pub fn frame_samples(&self) -> usize {
        (self.rate / 50) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_codecs_parse() {
        assert_eq!(ForkFormat::parse_stream(None), Ok(ForkFormat::PCMU));
        assert_eq!(
            ForkFormat::parse_stream(Some("pcmu@20i")),
            Ok(ForkFormat::PCMU)
        );
        let l16 = ForkFormat::parse_stream(Some("L16@16000h"));
        assert_eq!(
            l16,
            Ok(ForkFormat {
                encoding: ForkEncoding::L16,
                rate: 16_000
            })
        );
        assert_eq!(l16.map(|f| f.frame_samples()), Ok(320));
        for bad in [
            "OPUS",
            "G722",
            "PCMU@16000h",
            "L16@44100h",
            "L16@x",
            "PCMA@40i",
            "PCMU@q",
        ] {
            assert!(ForkFormat::parse_stream(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(ForkFormat::for_tap(TapCodec::Opus), None);
        assert_eq!(
            ForkFormat::for_tap(TapCodec::Pcma).map(|f| f.mime()),
            Some("audio/x-alaw")
        );
    }
}
