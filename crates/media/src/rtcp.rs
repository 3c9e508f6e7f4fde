//! One call's RTCP (RFC 3550 §6): when to report, what our reports say (SR while we send, RR
//! while we don't), and what the far end's reports tell us (its loss, its jitter, the round
//! trip). Pure: told the time (`now_us` on the shard's clock, `ntp` on the wall clock).

use rtp::rtcp::{self, RtcpSchedule, SenderInfo};

/// What a call's graph tells its RTCP: our stream's source and clock, and the counters of the
/// stream we receive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RtcpInputs {
    pub ssrc: u32,
    /// Our RTP timestamp now (for the SR's RTP/NTP pair).
    pub rtp_timestamp: u32,
    /// About the far end's stream, once it has sent.
    pub received: Option<rtp::ReportBlockInputs>,
}

/// What RTCP learned over a call, for its media stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtcpStats {
    pub reports_sent: u64,
    pub reports_received: u64,
    /// The last round-trip time measured (ms), once the far end echoed one of our SRs.
    pub rtt_ms: Option<u32>,
    /// The far end's view of our stream, from its last report block about us.
    pub remote_fraction_lost: Option<u8>,
    pub remote_packets_lost: Option<i32>,
    /// In our RTP clock units.
    pub remote_jitter: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct CallRtcp {
    /// Set at the first poll: the first report comes within half an interval of it.
    schedule: Option<RtcpSchedule>,
    cname: String,
    /// RTP packets and payload octets sent since the start (for SR sender info).
    packets: u32,
    octets: u32,
    sent_since_report: bool,
    reports_sent: u64,
    far: FarEndReports,
}

/// What the far end's reports have said over a call: its last SR (for our blocks' LSR/DLSR),
/// the round trip, its view of our stream.
#[derive(Debug, Clone, Default)]
pub struct FarEndReports {
    /// The far end's last SR: its middle NTP bits and when (our NTP) it came.
    last_sr: Option<(u32, u64)>,
    /// `reports_sent` stays 0 here.
    stats: RtcpStats,
}

impl FarEndReports {
    /// A datagram from the far end's RTCP port, `ntp` its arrival. Malformed ones are ignored
    /// (false).
    pub fn on_rtcp(&mut self, ntp: u64, data: &[u8], our_ssrc: Option<u32>) -> bool {
        let Ok(got) = rtcp::parse(data) else {
            return false;
        };
        self.stats.reports_received += 1;
        if let Some((_, info)) = got.sender {
            self.last_sr = Some((rtcp::ntp_middle(info.ntp), ntp));
        }
        if let Some(b) = got.blocks.iter().find(|b| Some(b.ssrc) == our_ssrc) {
            self.stats.remote_fraction_lost = Some(b.fraction_lost);
            self.stats.remote_packets_lost = Some(b.cumulative_lost);
            self.stats.remote_jitter = Some(b.jitter);
            if let Some(rtt) = rtcp::round_trip_ms(b, ntp) {
                self.stats.rtt_ms = Some(rtt);
            }
        }
        true
    }

    pub fn stats(&self) -> RtcpStats {
        self.stats
    }
}

impl CallRtcp {
    pub fn new(cname: String) -> Self {
        CallRtcp {
            schedule: None,
            cname,
            packets: 0,
            octets: 0,
            sent_since_report: false,
            reports_sent: 0,
            far: FarEndReports::default(),
        }
    }

    /// An RTP packet of `len` bytes (header included) left for the far end.
    pub fn on_sent(&mut self, len: usize) {
        self.packets = self.packets.wrapping_add(1);
        let payload = len.saturating_sub(rtp::RTP_HEADER_LEN) as u32;
        self.octets = self.octets.wrapping_add(payload);
        self.sent_since_report = true;
    }

    /// Our compound report when one is due; `spread` (0.0..=1.0, drawn by the caller)
    /// staggers the reports of calls started together.
    /// `inputs` is asked only when a report is due (it starts a new report interval).
    pub fn poll_report(
        &mut self,
        now_us: u64,
        ntp: u64,
        spread: f64,
        inputs: impl FnOnce() -> Option<RtcpInputs>,
    ) -> Option<Vec<u8>> {
        let Some(schedule) = self.schedule.as_mut() else {
            self.schedule = Some(RtcpSchedule::new(now_us, spread));
            return None;
        };
        if !schedule.due(now_us, spread) {
            return None;
        }
        let inputs = inputs()?;
        let sender = self.sent_since_report.then_some(SenderInfo {
            ntp,
            rtp_timestamp: inputs.rtp_timestamp,
            packets: self.packets,
            octets: self.octets,
        });
        self.sent_since_report = false;
        let block = inputs
            .received
            .map(|r| rtcp::report_block(&r, self.far.last_sr, ntp));
        self.reports_sent += 1;
        Some(rtcp::compound_report(
            inputs.ssrc,
            &self.cname,
            sender,
            block,
        ))
    }

    /// The compound packet that ends our stream (hang-up).
    pub fn bye(&self, ssrc: u32) -> Vec<u8> {
        rtcp::compound_bye(ssrc, &self.cname)
    }

    /// A datagram from the far end's RTCP port. Malformed ones are ignored (false).
    pub fn on_rtcp(&mut self, ntp: u64, data: &[u8], our_ssrc: u32) -> bool {
        self.far.on_rtcp(ntp, data, Some(our_ssrc))
    }

    pub fn stats(&self) -> RtcpStats {
        RtcpStats {
            reports_sent: self.reports_sent,
            ..self.far.stats()
        }
    }
}

/// The wall clock as NTP (RFC 3550 §4): seconds since 1900 in the high 32 bits.
pub fn ntp_now() -> u64 {
    const UNIX_TO_NTP_SECS: u64 = 2_208_988_800;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() + UNIX_TO_NTP_SECS;
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    secs << 32 | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    const NTP: u64 = 0xE9B3_1234_0000_0000;
    const MS: u64 = (1u64 << 32) / 1000;

    fn inputs(received: bool) -> RtcpInputs {
        RtcpInputs {
            ssrc: 0x1111,
            rtp_timestamp: 8000,
            received: received.then_some(rtp::ReportBlockInputs {
                ssrc: 0x2222,
                fraction_lost: 0,
                cumulative_lost: 0,
                extended_highest_seq: 70_000,
                jitter: 12,
            }),
        }
    }

    /// Two calls' RTCP talking to each other on virtual time: SRs while sending, an RTT from
    /// the echoed SR, the far end's loss and jitter of our stream.
    #[test]
    fn a_round_trip_between_two_ends() {
        let mut ours = CallRtcp::new("a@dialtone".into());
        let mut theirs = CallRtcp::new("b@peer".into());
        assert!(ours
            .poll_report(0, NTP, 0.0, || Some(inputs(true)))
            .is_none());
        assert!(theirs
            .poll_report(0, NTP, 0.0, || Some(inputs(true)))
            .is_none());
        for _ in 0..250 {
            ours.on_sent(172);
            theirs.on_sent(172);
        }
        // Our SR at t=1 ms.
        let sr = ours
            .poll_report(1_000, NTP, 0.5, || Some(inputs(true)))
            .unwrap();
        assert_eq!(sr[1], rtp::rtcp::PT_SR);
        // It reaches them 40 ms later; they report 100 ms after that, about our SSRC.
        assert!(theirs.on_rtcp(NTP + 40 * MS, &sr, 0x2222));
        let their_inputs = RtcpInputs {
            ssrc: 0x2222,
            rtp_timestamp: 1,
            received: Some(rtp::ReportBlockInputs {
                ssrc: 0x1111,
                fraction_lost: 26,
                cumulative_lost: 5,
                extended_highest_seq: 250,
                jitter: 40,
            }),
        };
        let rr = theirs
            .poll_report(1_000, NTP + 140 * MS, 0.5, || Some(their_inputs))
            .unwrap();
        // Back to us 40 ms later: RTT 80 ms (the 100 ms they held it is taken out).
        assert!(ours.on_rtcp(NTP + 180 * MS, &rr, 0x1111));
        let s = ours.stats();
        assert_eq!(s.reports_sent, 1);
        assert_eq!(s.reports_received, 1);
        let rtt = s.rtt_ms.unwrap();
        assert!((79..=81).contains(&rtt), "{rtt}");
        assert_eq!(
            (
                s.remote_fraction_lost,
                s.remote_packets_lost,
                s.remote_jitter
            ),
            (Some(26), Some(5), Some(40))
        );
    }

    #[test]
    fn receiver_report_while_not_sending_and_nothing_before_due() {
        let mut r = CallRtcp::new("a".into());
        assert!(r.poll_report(0, NTP, 1.0, || Some(inputs(false))).is_none());
        assert!(r
            .poll_report(1_000_000, NTP, 0.5, || Some(inputs(false)))
            .is_none());
        let rr = r
            .poll_report(2_600_000, NTP, 0.5, || Some(inputs(false)))
            .unwrap();
        assert_eq!(rr[1], rtp::rtcp::PT_RR);
        assert!(!r.on_rtcp(NTP, &[1, 2, 3], 1));
        assert_eq!(r.stats().reports_received, 0);
        assert_eq!(rtp::rtcp::parse(&r.bye(1)).map(|p| p.bye), Ok(true));
    }
}
