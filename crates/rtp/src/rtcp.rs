//! RTCP (RFC 3550 §6): the compound packets a call sends (SR or RR, then SDES CNAME; BYE at
//! the end) and the reports it receives, turned into loss, jitter and round-trip time.
//! Pure: the caller passes the time as NTP (`ntp`, RFC 3550 §4: seconds since 1900 in the
//! high 32 bits, the fraction in the low 32) and decides when to send ([`RtcpSchedule`]).

use crate::receiver::ReportBlockInputs;

const VERSION: u8 = 2;
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
const SDES_CNAME: u8 = 1;
/// RTCP packets whose type lies here share an RTP port when multiplexed (RFC 5761 §4).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == VERSION && (192..=223).contains(&packet[1])
}

/// Everything that can be wrong with a received RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet truncated")]
    Truncated,
    #[error("unsupported RTCP version {0}")]
    BadVersion(u8),
    #[error("a compound RTCP packet must start with SR or RR, not {0}")]
    NotAReport(u8),
}

/// What we tell the far end about our own sending (SR sender info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// A report block about one source we receive (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24 bits, signed on the wire; never negative from us).
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP time of the last SR from that source (0: none yet).
    pub last_sr: u32,
    /// Since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// A report block from our receiver's counters, with the last SR we heard from the source.
pub fn report_block(
    inputs: &ReportBlockInputs,
    last_sr: Option<(u32, u64)>,
    now_ntp: u64,
) -> ReportBlock {
    let (lsr, dlsr) = match last_sr {
        // DLSR in 1/65536 s: the middle 32 bits of the NTP difference.
        Some((lsr, heard_at)) => (lsr, (now_ntp.saturating_sub(heard_at) >> 16) as u32),
        None => (0, 0),
    };
    ReportBlock {
        ssrc: inputs.ssrc,
        fraction_lost: inputs.fraction_lost,
        cumulative_lost: i32::try_from(inputs.cumulative_lost.min(0x7F_FFFF)).unwrap_or(0x7F_FFFF),
        extended_highest_seq: inputs.extended_highest_seq,
        jitter: inputs.jitter,
        last_sr: lsr,
        delay_since_last_sr: dlsr,
    }
}

fn header(out: &mut Vec<u8>, count: u8, pt: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[VERSION << 6 | (count & 0x1F), pt, 0, 0]);
    at
}

/// Fills in the length word of the packet begun at `at` (padding it to 32 bits first).
fn finish(out: &mut Vec<u8>, at: usize) {
    while !(out.len() - at).is_multiple_of(4) {
        out.push(0);
    }
    let words = ((out.len() - at) / 4 - 1) as u16;
    out[at + 2..at + 4].copy_from_slice(&words.to_be_bytes());
}

fn block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = (b.cumulative_lost as u32) & 0x00FF_FFFF;
    out.extend_from_slice(&(u32::from(b.fraction_lost) << 24 | lost).to_be_bytes());
    out.extend_from_slice(&b.extended_highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.last_sr.to_be_bytes());
    out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
}

fn sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let at = header(out, 1, PT_SDES);
    out.extend_from_slice(&ssrc.to_be_bytes());
    let name = &cname.as_bytes()[..cname.len().min(255)];
    out.push(SDES_CNAME);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    // The item list ends with a zero byte, then the chunk pads to 32 bits (§6.5).
    out.push(0);
    finish(out, at);
}

/// A compound report: SR when we have sent since the last report (`sender`), else RR; at
/// most one block (a call receives one source); then SDES CNAME.
pub fn compound_report(
    ssrc: u32,
    cname: &str,
    sender: Option<SenderInfo>,
    block_about: Option<ReportBlock>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    let count = u8::from(block_about.is_some());
    let at = match sender {
        Some(info) => {
            let at = header(&mut out, count, PT_SR);
            out.extend_from_slice(&ssrc.to_be_bytes());
            out.extend_from_slice(&info.ntp.to_be_bytes());
            out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
            out.extend_from_slice(&info.packets.to_be_bytes());
            out.extend_from_slice(&info.octets.to_be_bytes());
            at
        }
        None => {
            let at = header(&mut out, count, PT_RR);
            out.extend_from_slice(&ssrc.to_be_bytes());
            at
        }
    };
    if let Some(b) = &block_about {
        block(&mut out, b);
    }
    finish(&mut out, at);
    sdes_cname(&mut out, ssrc, cname);
    out
}

/// The compound packet that ends our stream: an empty RR, SDES CNAME and BYE (§6.6).
pub fn compound_bye(ssrc: u32, cname: &str) -> Vec<u8> {
    let mut out = compound_report(ssrc, cname, None, None);
    let at = header(&mut out, 1, PT_BYE);
    out.extend_from_slice(&ssrc.to_be_bytes());
    finish(&mut out, at);
    out
}

/// What a received compound packet said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// The sender's SSRC and SR sender info, if the packet had an SR.
    pub sender: Option<(u32, SenderInfo)>,
    /// Report blocks (about any source; the caller picks ours).
    pub blocks: Vec<ReportBlock>,
    /// The source said goodbye.
    pub bye: bool,
}

fn be32(b: &[u8], at: usize) -> Result<u32, RtcpError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(RtcpError::Truncated)
}

fn parse_blocks(body: &[u8], count: usize, out: &mut Vec<ReportBlock>) -> Result<(), RtcpError> {
    for i in 0..count {
        let at = i * 24;
        let word = be32(body, at + 4)?;
        // Sign-extend the 24-bit cumulative loss.
        let lost = ((word << 8) as i32) >> 8;
        out.push(ReportBlock {
            ssrc: be32(body, at)?,
            fraction_lost: (word >> 24) as u8,
            cumulative_lost: lost,
            extended_highest_seq: be32(body, at + 8)?,
            jitter: be32(body, at + 12)?,
            last_sr: be32(body, at + 16)?,
            delay_since_last_sr: be32(body, at + 20)?,
        });
    }
    Ok(())
}

/// Parses a compound RTCP packet (§6.1): every part is walked by its length; unknown types
/// (APP, XR, feedback) are skipped.
pub fn parse(packet: &[u8]) -> Result<Received, RtcpError> {
    let mut out = Received::default();
    let mut rest = packet;
    let mut first = true;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        let version = rest[0] >> 6;
        if version != VERSION {
            return Err(RtcpError::BadVersion(version));
        }
        let count = usize::from(rest[0] & 0x1F);
        let pt = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        let part = rest.get(..len).ok_or(RtcpError::Truncated)?;
        if first && pt != PT_SR && pt != PT_RR {
            return Err(RtcpError::NotAReport(pt));
        }
        first = false;
        match pt {
            PT_SR => {
                let ssrc = be32(part, 4)?;
                let ntp = u64::from(be32(part, 8)?) << 32 | u64::from(be32(part, 12)?);
                let info = SenderInfo {
                    ntp,
                    rtp_timestamp: be32(part, 16)?,
                    packets: be32(part, 20)?,
                    octets: be32(part, 24)?,
                };
                out.sender = Some((ssrc, info));
                parse_blocks(&part[28..], count, &mut out.blocks)?;
            }
            PT_RR => parse_blocks(
                part.get(8..).ok_or(RtcpError::Truncated)?,
                count,
                &mut out.blocks,
            )?,
            PT_BYE => out.bye = true,
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(out)
}

/// The middle 32 bits of an NTP time: how an SR is named in later report blocks (LSR).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block about us (§6.4.1): arrival − LSR − DLSR, in ms;
/// `None` until the far end has heard one of our SRs.
pub fn round_trip_ms(block: &ReportBlock, arrival_ntp: u64) -> Option<u32> {
    if block.last_sr == 0 {
        return None;
    }
    let arrival = ntp_middle(arrival_ntp);
    let rtt = arrival
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    // More than a minute is a bogus (or wrapped) value, not a round trip.
    (rtt < 60 << 16).then(|| (u64::from(rtt) * 1000 / 65536) as u32)
}

/// When to send the next report: every ~5 s (§6.2 minimum), spread over 0.5–1.5 of the
/// interval (§6.3.1) by a factor the caller draws, so calls started together do not report
/// together.
#[derive(Debug, Clone)]
pub struct RtcpSchedule {
    interval_us: u64,
    next_us: u64,
}

impl RtcpSchedule {
    pub const INTERVAL_US: u64 = 5_000_000;

    /// `spread` in 0.0..=1.0 places the first report within the first half interval.
    pub fn new(now_us: u64, spread: f64) -> Self {
        let first = (Self::INTERVAL_US as f64 * (0.5 * spread.clamp(0.0, 1.0))) as u64;
        RtcpSchedule {
            interval_us: Self::INTERVAL_US,
            next_us: now_us + first.max(1),
        }
    }

    /// True when a report is due; `spread` (0.0..=1.0) sets the next one 0.5–1.5 intervals on.
    pub fn due(&mut self, now_us: u64, spread: f64) -> bool {
        if now_us < self.next_us {
            return false;
        }
        let factor = 0.5 + spread.clamp(0.0, 1.0);
        self.next_us = now_us + (self.interval_us as f64 * factor) as u64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NTP: u64 = 0xE9B3_0000_8000_0000; // some second, plus half a second

    fn inputs() -> ReportBlockInputs {
        ReportBlockInputs {
            ssrc: 0xAABB_CCDD,
            fraction_lost: 64,
            cumulative_lost: 12,
            extended_highest_seq: 0x0001_0005,
            jitter: 80,
        }
    }

    #[test]
    fn sender_report_round_trips() {
        let info = SenderInfo {
            ntp: NTP,
            rtp_timestamp: 160_000,
            packets: 1000,
            octets: 160_000,
        };
        let b = report_block(&inputs(), Some((0x1234_5678, NTP - (1 << 31))), NTP);
        assert_eq!(b.delay_since_last_sr, 32768, "half a second in 1/65536 s");
        let pkt = compound_report(0x1111_2222, "dialtone@node", Some(info), Some(b));
        assert!(is_rtcp(&pkt));
        assert_eq!(pkt.len() % 4, 0);
        assert_eq!(pkt[1], PT_SR);
        let got = parse(&pkt).unwrap();
        assert_eq!(got.sender, Some((0x1111_2222, info)));
        assert_eq!(got.blocks, vec![b]);
        assert!(!got.bye);
    }

    #[test]
    fn receiver_report_and_bye() {
        let pkt = compound_report(7, "x", None, None);
        assert_eq!((pkt[0] & 0x1F, pkt[1]), (0, PT_RR));
        assert_eq!(parse(&pkt).unwrap(), Received::default());
        let bye = compound_bye(7, "x");
        let got = parse(&bye).unwrap();
        assert!(got.bye && got.sender.is_none());
    }

    #[test]
    fn negative_cumulative_loss_is_sign_extended() {
        let mut b = report_block(&inputs(), None, NTP);
        b.cumulative_lost = -3; // duplicates can make it negative (from other senders)
        let pkt = compound_report(1, "c", None, Some(b));
        assert_eq!(parse(&pkt).unwrap().blocks[0].cumulative_lost, -3);
    }

    #[test]
    fn round_trip_from_lsr_and_dlsr() {
        // We sent an SR at NTP; the far end held it 100 ms and its report arrived 150 ms after
        // we sent: RTT 50 ms.
        let block = ReportBlock {
            last_sr: ntp_middle(NTP),
            delay_since_last_sr: 6554, // 100 ms
            ..report_block(&inputs(), None, NTP)
        };
        let arrival = NTP + (150u64 << 32) / 1000;
        let rtt = round_trip_ms(&block, arrival).unwrap();
        assert!((49..=51).contains(&rtt), "{rtt}");
        assert_eq!(
            round_trip_ms(
                &ReportBlock {
                    last_sr: 0,
                    ..block
                },
                arrival
            ),
            None
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(&[]).is_ok());
        assert_eq!(parse(&[0x80, 200, 0]), Err(RtcpError::Truncated));
        assert_eq!(parse(&[0x40, 200, 0, 0]), Err(RtcpError::BadVersion(1)));
        // An SR claiming 31 blocks but carrying none.
        assert_eq!(
            parse(&[
                0x9F, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0
            ]),
            Err(RtcpError::Truncated)
        );
        assert_eq!(parse(&[0x81, 202, 0, 0]), Err(RtcpError::NotAReport(202)));
        // A length word pointing past the end.
        assert_eq!(
            parse(&[0x80, 201, 0xFF, 0xFF, 0, 0, 0, 1]),
            Err(RtcpError::Truncated)
        );
    }

    #[test]
    fn reports_every_five_seconds_spread() {
        let mut s = RtcpSchedule::new(0, 1.0);
        assert!(!s.due(2_000_000, 0.5));
        assert!(s.due(2_500_000, 0.5));
        assert!(!s.due(7_000_000, 0.5));
        assert!(s.due(7_500_000, 0.0));
        assert!(s.due(10_000_000, 0.0));
    }
}
