//! SDP model, offer building and answer negotiation for audio + telephone-event. Pure.
//!
//! * [`SessionDescription`]: a tolerant parser (CRLF or LF, unknown lines and attributes
//!   kept) and a CRLF [`Display`](std::fmt::Display) for the RFC 8866 model, with
//!   `rtpmap`, `fmtp`, `ptime` and direction attributes parsed.
//! * [`build_offer`], [`negotiate_answer`] and [`answer_offer`]: the RFC 3264 offer/answer
//!   exchange for one audio stream with G.711, G.722, Opus and RFC 4733 telephone-events.
//! * [`answer_offer_srtp`], [`build_offer_srtp`] and [`negotiate_answer_srtp`]: the same
//!   with SDES-SRTP (RFC 4568 `a=crypto`, `RTP/SAVP`) under an [`Encryption`] policy.
//! * [`build_t38_offer`], [`negotiate_t38_answer`], [`is_t38_offer`] and
//!   [`answer_t38_offer`]: switching a call to T.38 fax over UDPTL (ITU-T T.38 Annex D).

mod crypto;
mod model;
mod negotiate;
mod t38;

pub use crypto::{
    crypto_lines, Crypto, CryptoSuite, Encryption, SdesKey, SrtpParams, SDES_KEY_SALT_LEN,
};
pub use model::{Attribute, Connection, MediaDescription, Origin, RtpMap, SessionDescription};
pub use negotiate::{
    add_sdes, answer_offer, answer_offer_srtp, build_offer, build_offer_best_effort_srtp,
    build_offer_srtp, negotiate_answer, negotiate_answer_srtp, LocalMedia, Negotiated,
};
pub use t38::{
    answer_t38_offer, build_t38_offer, is_t38_offer, negotiate_t38_answer, T38ErrorCorrection,
    T38Negotiated, T38Params, T38RateManagement,
};

/// Largest SDP body accepted, in bytes.
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// The audio codecs dialtone speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl Codec {
    /// The codecs of a comma list (`answer.codecs`, `OPUS@48000h@20i` spellings) we have
    /// coders for, in its order, without duplicates.
    pub fn list(list: &str) -> Vec<Codec> {
        let mut out = Vec::new();
        for name in list.split(',') {
            let name = name.split('@').next().unwrap_or("").trim();
            let codec = match name.to_ascii_uppercase().as_str() {
                "PCMU" => Codec::Pcmu,
                "PCMA" => Codec::Pcma,
                "G722" => Codec::G722,
                "OPUS" => Codec::Opus,
                _ => continue,
            };
            if !out.contains(&codec) {
                out.push(codec);
            }
        }
        out
    }

    pub const ALL: [Codec; 4] = [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];

    /// The rtpmap encoding name (RFC 3551 §6, RFC 7587).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }

    /// The RTP clock rate. G.722 samples at 16 kHz but its RTP clock is 8000 (RFC 3551 §4.5.2).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 8000,
            Codec::Opus => 48000,
        }
    }

    /// 0, 8 and 9 are static (RFC 3551 table 4); 111 is our dynamic choice for Opus.
    pub fn default_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
            Codec::Opus => 111,
        }
    }

    /// The rtpmap encoding parameters we write: Opus is always announced as 2 channels.
    pub fn encoding_params(self) -> Option<&'static str> {
        match self {
            Codec::Opus => Some("2"),
            _ => None,
        }
    }

    /// The codec a static payload type stands for without an rtpmap.
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            _ => None,
        }
    }

    /// The codec an rtpmap names: encoding name compared case-insensitively, clock rate
    /// exactly.
    pub fn from_rtpmap(encoding_name: &str, clock_rate: u32) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| {
            c.encoding_name().eq_ignore_ascii_case(encoding_name)
                && c.rtp_clock_rate() == clock_rate
        })
    }
}

/// A stream's direction attribute (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name: `sendrecv`, `sendonly`, `recvonly` or `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parses an attribute name (case-insensitively).
    pub fn from_attribute(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }

    /// The direction an answer takes to an offer with this one.
    pub fn mirrored(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// Everything that can go wrong parsing or negotiating SDP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("no local codecs configured")]
    NoCodecs,
    #[error("SDP body too large: {0} bytes")]
    TooLarge(usize),
    #[error("SDP line {line}: {reason}")]
    InvalidLine { line: usize, reason: &'static str },
    #[error("SDP does not start with a v= line")]
    MissingVersion,
    #[error("unsupported SDP version {0:?}")]
    UnsupportedVersion(String),
    #[error("SDP has no o= line")]
    MissingOrigin,
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("the audio stream was rejected (port 0)")]
    MediaRejected,
    #[error("no codec in common")]
    NoCommonCodec,
    #[error("no c= line for the media stream")]
    MissingConnection,
    #[error("unusable connection address {0:?}")]
    InvalidAddress(String),
    #[error("multicast connection address {0:?} (media is unicast only)")]
    Multicast(String),
    #[error("unsupported audio transport {0:?}")]
    UnsupportedTransport(String),
    #[error("no usable a=crypto line (SRTP suite AES_CM_128_HMAC_SHA1_80/_32, one inline key)")]
    NoCommonCrypto,
    #[error("encryption is mandatory but the offer has only plain RTP")]
    EncryptionRequired,
    #[error("SDP has no T.38 stream (m=image <port> udptl t38 with a nonzero port)")]
    NoT38,
}

/// Keeps error messages bounded whatever the input.
pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_codec_lists() {
        use Codec::*;
        assert_eq!(Codec::list("PCMA,PCMU"), vec![Pcma, Pcmu]);
        assert_eq!(
            Codec::list(" opus@48000h@20i , pcma, PCMA"),
            vec![Opus, Pcma]
        );
        assert_eq!(Codec::list("G729,AMR-WB,VP8"), Vec::<Codec>::new());
        assert_eq!(Codec::list("G722,H264"), vec![G722]);
    }
}
