//! RTP packets, packetizer with sequence/timestamp/marker/SSRC, RFC 4733 telephone-events,
//! receive accounting. Pure: no I/O, no clock (the caller passes `now_us`).
//!
//! * [`parse()`] / [`write()`]: the RFC 3550 §5.1 fixed header, CSRC list, header extension and
//!   padding.
//! * [`TelephoneEvent`] and [`digit_to_event`]: the RFC 4733 §2.3 payload.
//! * [`RtpSender`]: one packet per 20 ms tick, audio or telephone-events, with continuous
//!   sequence numbers and timestamps.
//! * [`Receiver`]: RFC 3550 A.1/A.3/A.8 loss, duplicate and jitter accounting.
//! * [`rtcp`]: RFC 3550 §6 compound SR/RR + SDES CNAME and BYE packets, their parsing, the
//!   round-trip time from a report block, the ~5 s report schedule.
//! * [`udptl`]: T.38 fax datagrams (UDPTL) with redundancy, a sender that repeats the last
//!   IFPs and a receiver that rebuilds the in-order IFP stream from them.

mod packet;
mod receiver;
pub mod rtcp;
mod sender;
pub mod udptl;

pub use packet::{digit_to_event, parse, write, RtpPacket, TelephoneEvent, RTP_HEADER_LEN};
pub use receiver::{ReceiveStats, Receiver, ReportBlockInputs};
pub use sender::{RtpSender, SenderConfig, SenderEvent};

/// Everything that can go wrong parsing RTP or queueing digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Fewer bytes than the fixed header (or the CSRC list / extension it announces) needs.
    #[error("RTP packet truncated: need {needed} bytes, have {len}")]
    Truncated { needed: usize, len: usize },
    /// The version field is not 2.
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    /// Payload type 72..=76: an RTCP packet multiplexed on the RTP port (RFC 5761 §4).
    #[error("RTCP packet (payload type {0}) on the RTP port")]
    Rtcp(u8),
    /// The padding count is zero or larger than what follows the header.
    #[error("invalid RTP padding count {padding} with {available} bytes after the header")]
    BadPadding { padding: usize, available: usize },
    /// A telephone-event payload shorter than 4 bytes.
    #[error("telephone-event payload truncated: {0} bytes")]
    EventTruncated(usize),
    /// A character that is neither a DTMF digit nor `w`/`W`.
    #[error("invalid DTMF character {ch:?} at position {position}")]
    InvalidDigit { ch: char, position: usize },
    /// Digits were queued but the session negotiated no telephone-event payload type.
    #[error("telephone-event was not negotiated; cannot send digits")]
    NoEventPayloadType,
}
