//! Receive accounting after RFC 3550 appendix A.1 (sequence tracking), A.3 (expected and
//! lost packets) and A.8 (interarrival jitter).

use crate::packet::RtpPacket;

/// A jump forward larger than this (or backward beyond `MAX_MISORDER`) is treated as a
/// possible restart of the sender's sequence (A.1).
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u64 = 1 << 16;
/// How far behind the highest sequence number duplicates are still recognised.
const WINDOW: u64 = 128;

/// Counters for one incoming stream, cumulative across SSRC changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiveStats {
    /// Distinct packets accepted (duplicates and packets from an unconfirmed sequence
    /// jump are not counted).
    pub packets_received: u64,
    /// Expected minus received, never negative (A.3), summed over sources.
    pub packets_lost: u64,
    /// Packets whose sequence number was already received.
    pub duplicates: u64,
    /// Times the SSRC changed after the first packet.
    pub ssrc_changes: u64,
    /// Interarrival jitter estimate in RTP timestamp units (A.8).
    pub jitter_rtp_units: f64,
}

#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    /// Extended sequence number of the first packet.
    base: u64,
    /// Highest extended sequence number seen.
    max_ext: u64,
    /// Bit i set: extended sequence `max_ext - i` was received.
    window: u128,
    received: u64,
    /// The sequence number after a suspicious jump; a packet with it confirms a restart.
    bad_seq: Option<u16>,
    last_transit: Option<u32>,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Self {
        // Start one cycle up so that packets reordered before the first one still have
        // a non-negative extended sequence number.
        let ext = SEQ_MOD + u64::from(seq);
        Source {
            ssrc,
            base: ext,
            max_ext: ext,
            window: 1,
            received: 1,
            bad_seq: None,
            last_transit: None,
        }
    }

    fn expected(&self) -> u64 {
        self.max_ext.saturating_sub(self.base) + 1
    }

    fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
}

/// What an RTCP report block about the stream says (RFC 3550 §6.4.1), from
/// [`Receiver::report_block_inputs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlockInputs {
    pub ssrc: u32,
    /// Lost since the previous report, as a fraction of 256 (A.3).
    pub fraction_lost: u8,
    pub cumulative_lost: u64,
    /// Cycles in the high 16 bits, the highest sequence number in the low 16.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
}

/// Tracks one incoming RTP stream (RFC 3550 A.1/A.3/A.8). An SSRC change starts fresh
/// sequence tracking; the counters of earlier sources are kept in the totals.
#[derive(Debug, Clone)]
pub struct Receiver {
    clock_rate: u32,
    source: Option<Source>,
    /// Received and lost packets of previous sources.
    prior_received: u64,
    prior_lost: u64,
    duplicates: u64,
    ssrc_changes: u64,
    jitter: f64,
    /// Expected and received totals at the previous report (for the fraction lost).
    reported_expected: u64,
    reported_received: u64,
}

enum Outcome {
    Accepted,
    /// The sender restarted its sequence numbers (two packets after a large jump).
    Restart,
    Duplicate,
    Ignored,
}

impl Receiver {
    /// `clock_rate` is the RTP clock of the stream's payload (for jitter).
    pub fn new(clock_rate: u32) -> Self {
        Receiver {
            clock_rate,
            source: None,
            prior_received: 0,
            prior_lost: 0,
            duplicates: 0,
            ssrc_changes: 0,
            jitter: 0.0,
            reported_expected: 0,
            reported_received: 0,
        }
    }

    /// Accounts one received packet; `now_us` is its arrival time on any monotonic clock.
    pub fn on_packet(&mut self, pkt: &RtpPacket<'_>, now_us: u64) {
        let outcome = match &mut self.source {
            Some(src) if src.ssrc == pkt.ssrc => update_seq(src, pkt.sequence),
            Some(src) => {
                self.prior_received += src.received;
                self.prior_lost += src.lost();
                self.ssrc_changes += 1;
                self.source = Some(Source::new(pkt.ssrc, pkt.sequence));
                Outcome::Accepted
            }
            None => {
                self.source = Some(Source::new(pkt.ssrc, pkt.sequence));
                Outcome::Accepted
            }
        };
        match outcome {
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::Ignored => {}
            Outcome::Accepted => self.update_jitter(pkt.timestamp, now_us),
            Outcome::Restart => {
                if let Some(src) = &mut self.source {
                    self.prior_received += src.received;
                    self.prior_lost += src.lost();
                    let last_transit = src.last_transit;
                    // The packet that announced the jump was not counted; this one is.
                    *src = Source::new(pkt.ssrc, pkt.sequence);
                    src.last_transit = last_transit;
                }
                self.update_jitter(pkt.timestamp, now_us);
            }
        }
    }

    fn update_jitter(&mut self, timestamp: u32, now_us: u64) {
        let Some(src) = &mut self.source else {
            return;
        };
        // Arrival time in RTP units; only differences matter, so wrapping is fine.
        let arrival = (u128::from(now_us) * u128::from(self.clock_rate) / 1_000_000) as u32;
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(last) = src.last_transit {
            let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        src.last_transit = Some(transit);
    }

    /// The report block inputs for the current source, and the start of a new report
    /// interval; `None` before any packet.
    pub fn report_block_inputs(&mut self) -> Option<ReportBlockInputs> {
        let src = self.source.as_ref()?;
        let stats = self.stats();
        let expected = stats.packets_received + stats.packets_lost;
        let expected_interval = expected.saturating_sub(self.reported_expected);
        let received_interval = stats
            .packets_received
            .saturating_sub(self.reported_received);
        let lost_interval = expected_interval.saturating_sub(received_interval);
        self.reported_expected = expected;
        self.reported_received = stats.packets_received;
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        Some(ReportBlockInputs {
            ssrc: src.ssrc,
            fraction_lost,
            cumulative_lost: stats.packets_lost,
            extended_highest_seq: src.max_ext.saturating_sub(SEQ_MOD) as u32,
            jitter: self.jitter as u32,
        })
    }

    pub fn stats(&self) -> ReceiveStats {
        let (received, lost) = match &self.source {
            Some(src) => (src.received, src.lost()),
            None => (0, 0),
        };
        ReceiveStats {
            packets_received: self.prior_received + received,
            packets_lost: self.prior_lost + lost,
            duplicates: self.duplicates,
            ssrc_changes: self.ssrc_changes,
            jitter_rtp_units: self.jitter,
        }
    }
}

/// A.1 `update_seq`, extended with a window of recently received sequence numbers so that
/// duplicates are recognised rather than counted as received.
fn update_seq(src: &mut Source, seq: u16) -> Outcome {
    let max_seq = src.max_ext as u16;
    let udelta = seq.wrapping_sub(max_seq);
    if udelta == 0 {
        return Outcome::Duplicate;
    }
    if udelta < MAX_DROPOUT {
        // In order, possibly with a gap; `max_ext` carries the cycle count.
        let advance = u64::from(udelta);
        src.max_ext += advance;
        src.window = if advance >= 128 {
            1
        } else {
            (src.window << advance) | 1
        };
        src.received += 1;
        src.bad_seq = None;
        return Outcome::Accepted;
    }
    if udelta <= u16::MAX - MAX_MISORDER + 1 {
        // A very large jump: accept it only when the next packet follows it (A.1).
        if src.bad_seq == Some(seq) {
            return Outcome::Restart;
        }
        src.bad_seq = Some(seq.wrapping_add(1));
        return Outcome::Ignored;
    }
    // Reordered (up to MAX_MISORDER behind the highest sequence number).
    let behind = u64::from(max_seq.wrapping_sub(seq));
    let Some(ext) = src.max_ext.checked_sub(behind) else {
        return Outcome::Ignored;
    };
    if behind < WINDOW {
        let bit = 1u128 << behind;
        if src.window & bit != 0 {
            return Outcome::Duplicate;
        }
        src.window |= bit;
    }
    if ext < src.base {
        // Earlier than the first packet we saw: it belongs to the stream after all.
        src.base = ext;
    }
    src.received += 1;
    Outcome::Accepted
}
