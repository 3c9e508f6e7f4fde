//! Where a call's RTP goes, and whose RTP it accepts: symmetric RTP latching with a source
//! check. Pure and told the time (µs).
//!
//! With [`LatchPolicy::SdpAddress`] (the default) only packets from the IP address the far
//! end's SDP advertised are accepted; the port may differ (NAT), and the first valid packet
//! from that address fixes where our RTP goes. A later packet from that address on another
//! port moves it only after the latched source has been silent for [`RELATCH_AFTER_US`]
//! (a NAT rebinding); a packet from any other address is rejected, never reaches the call's
//! media and is counted. Only a new SDP (a re-INVITE: [`Latch::set_advertised`]) moves the
//! accepted address.
//!
//! With [`LatchPolicy::Any`] (opt-in, for far ends behind NATs that advertise an address they
//! do not send from) any source is accepted and the call latches onto the first sender of
//! valid RTP, and onto a new one after the latched source was silent for
//! [`RELATCH_AFTER_US`]: a stranger can take the call's audio while the far end is silent.

use std::net::{IpAddr, SocketAddr};

/// A re-latch to a new RTP source is allowed after the old one was silent this long.
pub const RELATCH_AFTER_US: u64 = 1_000_000;

/// At most one warning per call about rejected packets in this long.
pub const WARN_EVERY_US: u64 = 1_000_000;

/// Which RTP sources a call accepts (config `rtp_latch`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LatchPolicy {
    /// Only the IP address the SDP advertised (any port).
    #[default]
    SdpAddress,
    /// Any source (the far end's first valid packet wins; a new one after 1 s of silence).
    Any,
}

impl LatchPolicy {
    /// `"sdp-address"` or `"any"`.
    pub fn parse(s: &str) -> Option<LatchPolicy> {
        match s {
            "sdp-address" => Some(LatchPolicy::SdpAddress),
            "any" => Some(LatchPolicy::Any),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LatchPolicy::SdpAddress => "sdp-address",
            LatchPolicy::Any => "any",
        }
    }
}

/// A warning due about rejected packets: who sent the last one, and how many were rejected
/// since the last warning and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectReport {
    pub from: SocketAddr,
    pub since_last: u64,
    pub total: u64,
}

/// What to do with a datagram, before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Hand it to the call's media; tell [`Latch::heard`] if it was valid RTP.
    Yes,
    /// Drop it (counted); `Some` when a warning is due.
    No(Option<RejectReport>),
}

/// One call's RTP destination and source check.
#[derive(Debug, Clone)]
pub struct Latch {
    policy: LatchPolicy,
    advertised: SocketAddr,
    target: SocketAddr,
    latched: Option<SocketAddr>,
    last_rx_us: u64,
    rejected: u64,
    rejected_since_warn: u64,
    last_warn_us: Option<u64>,
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

impl Latch {
    /// Sending to `advertised` (the SDP's address) until the far end is heard.
    pub fn new(policy: LatchPolicy, advertised: SocketAddr) -> Latch {
        Latch {
            policy,
            advertised,
            target: advertised,
            latched: None,
            last_rx_us: 0,
            rejected: 0,
            rejected_since_warn: 0,
            last_warn_us: None,
        }
    }

    /// Where our RTP goes now.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Datagrams rejected so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// A new SDP (re-INVITE): send there, accept that address, and latch again.
    pub fn set_advertised(&mut self, advertised: SocketAddr) {
        self.advertised = advertised;
        self.target = advertised;
        self.latched = None;
    }

    fn silent_long(&self, now_us: u64) -> bool {
        now_us.saturating_sub(self.last_rx_us) > RELATCH_AFTER_US
    }

    /// May a datagram from `from` reach the call's media?
    pub fn admit(&mut self, now_us: u64, from: SocketAddr) -> Admit {
        let ok = match self.policy {
            LatchPolicy::Any => true,
            LatchPolicy::SdpAddress => {
                same_ip(from.ip(), self.advertised.ip())
                    && match self.latched {
                        None => true,
                        Some(l) => l == from || self.silent_long(now_us),
                    }
            }
        };
        if ok {
            return Admit::Yes;
        }
        self.rejected += 1;
        self.rejected_since_warn += 1;
        let due = self
            .last_warn_us
            .is_none_or(|t| now_us.saturating_sub(t) >= WARN_EVERY_US);
        if !due {
            return Admit::No(None);
        }
        self.last_warn_us = Some(now_us);
        let report = RejectReport {
            from,
            since_last: std::mem::take(&mut self.rejected_since_warn),
            total: self.rejected,
        };
        Admit::No(Some(report))
    }

    /// An admitted datagram from `from` was valid RTP: latch onto it if allowed.
    pub fn heard(&mut self, now_us: u64, from: SocketAddr) {
        if self.latched != Some(from) && (self.latched.is_none() || self.silent_long(now_us)) {
            self.target = from;
            self.latched = Some(from);
        }
        // Only the latched source's packets keep it latched.
        if self.latched == Some(from) {
            self.last_rx_us = now_us;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    const PEER: [u8; 4] = [127, 0, 0, 1];
    const STRANGER: [u8; 4] = [127, 0, 0, 2];

    #[test]
    fn sdp_address_latches_on_the_advertised_ip_any_port() {
        let mut l = Latch::new(LatchPolicy::SdpAddress, at(PEER, 4000));
        assert_eq!(l.target(), at(PEER, 4000));
        // NAT: same address, another port.
        assert_eq!(l.admit(0, at(PEER, 4100)), Admit::Yes);
        l.heard(0, at(PEER, 4100));
        assert_eq!(l.target(), at(PEER, 4100));
        assert_eq!(l.rejected(), 0);
    }

    #[test]
    fn sdp_address_never_accepts_a_stranger_even_when_the_peer_is_silent() {
        let mut l = Latch::new(LatchPolicy::SdpAddress, at(PEER, 4000));
        // Before the far end is heard.
        assert!(matches!(l.admit(0, at(STRANGER, 4000)), Admit::No(Some(_))));
        l.admit(20_000, at(PEER, 4000));
        l.heard(20_000, at(PEER, 4000));
        // After ten seconds of silence.
        for i in 0..500u64 {
            let now = 10_000_000 + i * 20_000;
            assert!(matches!(l.admit(now, at(STRANGER, 4000)), Admit::No(_)));
        }
        assert_eq!(l.target(), at(PEER, 4000));
        assert_eq!(l.rejected(), 501);
    }

    #[test]
    fn sdp_address_moves_port_only_after_silence() {
        let mut l = Latch::new(LatchPolicy::SdpAddress, at(PEER, 4000));
        assert_eq!(l.admit(0, at(PEER, 4000)), Admit::Yes);
        l.heard(0, at(PEER, 4000));
        // Another port of the same host while the far end talks: rejected.
        assert!(matches!(l.admit(500_000, at(PEER, 4002)), Admit::No(_)));
        l.heard(600_000, at(PEER, 4000));
        assert!(matches!(l.admit(1_500_000, at(PEER, 4002)), Admit::No(_)));
        // Silent more than a second: a NAT rebinding may move it.
        assert_eq!(l.admit(1_700_000, at(PEER, 4002)), Admit::Yes);
        l.heard(1_700_000, at(PEER, 4002));
        assert_eq!(l.target(), at(PEER, 4002));
        assert!(matches!(l.admit(1_720_000, at(PEER, 4000)), Admit::No(_)));
    }

    #[test]
    fn rejections_are_warned_about_at_most_once_a_second() {
        let mut l = Latch::new(LatchPolicy::SdpAddress, at(PEER, 4000));
        let mut reports = Vec::new();
        for i in 0..150u64 {
            // 50 packets a second for three seconds.
            if let Admit::No(Some(r)) = l.admit(i * 20_000, at(STRANGER, 5000)) {
                reports.push((i * 20_000, r.since_last, r.total));
            }
        }
        assert_eq!(
            reports,
            [(0, 1, 1), (1_000_000, 50, 51), (2_000_000, 50, 101)]
        );
        assert_eq!(l.rejected(), 150);
    }

    #[test]
    fn a_new_sdp_moves_the_accepted_address() {
        let mut l = Latch::new(LatchPolicy::SdpAddress, at(PEER, 4000));
        l.heard(0, at(PEER, 4000));
        l.set_advertised(at(STRANGER, 6000));
        assert_eq!(l.target(), at(STRANGER, 6000));
        assert!(matches!(l.admit(20_000, at(PEER, 4000)), Admit::No(_)));
        assert_eq!(l.admit(40_000, at(STRANGER, 6002)), Admit::Yes);
        l.heard(40_000, at(STRANGER, 6002));
        assert_eq!(l.target(), at(STRANGER, 6002));
    }

    #[test]
    fn ipv4_mapped_sources_match_the_advertised_ipv4() {
        let mut l = Latch::new(LatchPolicy::SdpAddress, at(PEER, 4000));
        let mapped: SocketAddr = match "[::ffff:127.0.0.1]:4000".parse() {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(l.admit(0, mapped), Admit::Yes);
    }

    #[test]
    fn any_latches_on_anyone_and_relatches_after_silence() {
        let mut l = Latch::new(LatchPolicy::Any, at(PEER, 4000));
        assert_eq!(l.admit(0, at(STRANGER, 5000)), Admit::Yes);
        l.heard(0, at(STRANGER, 5000));
        assert_eq!(l.target(), at(STRANGER, 5000));
        l.heard(20_000, at(PEER, 4000));
        assert_eq!(l.target(), at(STRANGER, 5000), "no re-latch while it talks");
        l.heard(900_000, at(STRANGER, 5000));
        // The other sender's packets do not keep the latched one alive.
        for i in 0..50u64 {
            l.heard(900_000 + i * 20_000, at(PEER, 4000));
        }
        assert_eq!(l.target(), at(STRANGER, 5000));
        l.heard(1_920_000, at(PEER, 4000));
        assert_eq!(l.target(), at(PEER, 4000));
        assert_eq!(l.rejected(), 0);
    }

    #[test]
    fn policy_names() {
        for p in [LatchPolicy::SdpAddress, LatchPolicy::Any] {
            assert_eq!(LatchPolicy::parse(p.as_str()), Some(p));
        }
        assert_eq!(LatchPolicy::parse("sdp"), None);
        assert_eq!(LatchPolicy::default(), LatchPolicy::SdpAddress);
    }
}
