//! The media of every call a shard owns, without its sockets: which leg is bridged to which
//! (each tick, each bridged leg's received audio goes to its peer before anyone encodes),
//! where each leg's RTP goes and whose it accepts (symmetric RTP latching with a source check:
//! [`crate::latch`]), and the tick that turns every graph's frame into packets. The shard's thread reads
//! the clock, owns the sockets, hands datagrams in and sends the packets this gives back.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use crate::conference::{Beeps, ConferenceMix};
use crate::graph::{FrameTap, MediaEvent, MediaLeg, MediaStats};
use crate::latch::{Admit, Latch, LatchPolicy, RejectReport};
use crate::packets::Packets;
use crate::rtcp::CallRtcp;
use crate::secure::SrtpSession;

struct Leg<K> {
    graph: Box<dyn MediaLeg>,
    latch: Latch,
    packets_sent: u64,
    /// False while the far end does not take our audio (it holds the call: `sendonly`,
    /// `inactive`, `c=0.0.0.0`): the graph still ticks, its packets are not sent.
    sending: bool,
    rtcp: CallRtcp,
    /// Our stream's SSRC, when the graph has RTCP.
    ssrc: Option<u32>,
    seed: u64,
    peer: Option<K>,
    /// SDES-SRTP: every datagram in and packet out passes through it (boxed: ~4 KiB of key
    /// schedules that plain calls should not carry).
    srtp: Option<Box<SrtpSession>>,
    /// RTCP rides on the RTP port (RFC 5761; both sides said `a=rtcp-mux`).
    rtcp_mux: bool,
    /// A report went or came since the call's live stats were last handed out.
    stats_due: bool,
    /// When (µs) they were last handed out.
    stats_told_us: Option<u64>,
}

/// A call's media taken out of one shard to go into another ([`ShardMedia::take`],
/// [`ShardMedia::put`]): everything about it moves (graph, latch, RTCP, SRTP), so its streams
/// go on without a break. Calls joined in one audio mix must share a shard.
pub struct MovedLeg<K>(Leg<K>);

/// Where one of a call's RTCP packets goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpDestination {
    pub to: SocketAddr,
    /// Send it from the call's RTP socket (RTCP-mux), not from its RTCP socket.
    pub muxed: bool,
}

/// Whether a datagram on a muxed RTP port is RTCP (RFC 5761 §4: packet types 192..=223 in the
/// second byte; RTP payload types there would collide with them, and nobody uses those).
fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && (192..=223).contains(&data[1])
}

impl<K> Leg<K> {
    fn stats(&self) -> MediaStats {
        let mut s = self.graph.stats();
        s.packets_sent = self.packets_sent;
        s.packets_rejected = self.latch.rejected();
        s.srtp_rejected = self.srtp.as_ref().map_or(0, |s| s.rejected());
        s.rtcp = self.rtcp.stats();
        s
    }

    fn rtcp_destination(&self) -> RtcpDestination {
        let rtp = self.latch.target();
        RtcpDestination {
            to: if self.rtcp_mux { rtp } else { rtcp_target(rtp) },
            muxed: self.rtcp_mux,
        }
    }

    fn on_rtcp(&mut self, ntp: u64, data: &[u8], from: SocketAddr) -> bool {
        if from.ip() != self.latch.target().ip() {
            return false;
        }
        let Some(ours) = self.ssrc else {
            return false;
        };
        let plain = match self.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtcp(data) {
                Some(p) => p,
                None => return false,
            },
            None => data,
        };
        let report = self.rtcp.on_rtcp(ntp, plain, ours);
        self.stats_due |= report;
        report
    }
}

/// Where a leg's RTCP goes: the port above its RTP target (RFC 3550 §11).
fn rtcp_target(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
}

/// A per-call seed (hashed once, when the call is added) for its report spread.
fn seed_of<K: Hash>(key: &K) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// A 0.0..=1.0 draw per call and report, so calls started together report apart. Runs for
/// every call on every tick: a multiply, not a hash.
fn spread(seed: u64, now_us: u64) -> f64 {
    let mixed = (seed ^ now_us).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}

/// The calls of one shard by key `K` (the call's id).
pub struct ShardMedia<K> {
    legs: HashMap<K, Leg<K>>,
    bridged_frames: Vec<(K, Vec<i16>, u32)>,
    /// Relayed payloads on their way across bridges (buffers reused like `bridged_frames`).
    bridged_payloads: Vec<(K, Vec<u8>)>,
    /// Each bridged leg's relay decision this tick (reused).
    relay_plan: Vec<(K, bool)>,
    /// One participant's received frame on its way into its conference's mix (reused).
    frame_buf: Vec<i16>,
    /// Keys pressed on a bridged leg this tick, to send on its peer (RFC 4733 across).
    bridged_digits: Vec<(K, char)>,
    /// Conferences by their key; every participant's leg is on this shard.
    conferences: HashMap<K, ConferenceMix<K>>,
    /// Which conference each participant is in.
    conference_of: HashMap<K, K>,
    /// Participants whose leaving beeps for the others.
    beep_on_exit: std::collections::HashSet<K>,
    /// Recorded conferences: each tick's mix of everyone goes to the tap (with the frames it
    /// refused since it last took one).
    conference_taps: HashMap<K, (Box<dyn FrameTap>, u32)>,
    /// The other direction of a conference recording's frames (nothing is "sent").
    conference_silence: Vec<i16>,
    out: Packets,
    policy: LatchPolicy,
    rejected: u64,
    /// The wall clock of this round (NTP format), for muxed RTCP read with the RTP.
    ntp: u64,
    /// Each call ticks in one of these parts of the 20 ms (fixed by its key), so a shard's
    /// packets leave spread over the tick and each call's own delays are as short as its phase
    /// allows (see [`ShardMedia::tick_phase`]).
    phases: u64,
}

impl<K> Default for ShardMedia<K> {
    fn default() -> Self {
        ShardMedia::new(LatchPolicy::default())
    }
}

impl<K> ShardMedia<K> {
    /// No calls yet; each call's RTP sources are checked by `policy`.
    pub fn new(policy: LatchPolicy) -> Self {
        ShardMedia {
            legs: HashMap::new(),
            bridged_frames: Vec::new(),
            bridged_payloads: Vec::new(),
            relay_plan: Vec::new(),
            frame_buf: Vec::new(),
            bridged_digits: Vec::new(),
            conferences: HashMap::new(),
            conference_of: HashMap::new(),
            beep_on_exit: std::collections::HashSet::new(),
            conference_taps: HashMap::new(),
            conference_silence: Vec::new(),
            out: Packets::new(),
            policy,
            rejected: 0,
            ntp: 0,
            phases: 1,
        }
    }

    /// Like [`ShardMedia::new`], with the calls' ticks spread over `phases` parts of the 20 ms
    /// (at least 1).
    pub fn with_phases(policy: LatchPolicy, phases: usize) -> Self {
        ShardMedia {
            phases: u64::try_from(phases.max(1)).unwrap_or(1),
            ..ShardMedia::new(policy)
        }
    }

    /// How many phases the calls' ticks are spread over.
    pub fn phases(&self) -> usize {
        usize::try_from(self.phases).unwrap_or(1)
    }

    /// The wall clock (RFC 3550 NTP format) for the datagrams handed in next: RTCP that
    /// arrives muxed on an RTP port is timed by it (round-trip time).
    pub fn set_ntp(&mut self, ntp: u64) {
        self.ntp = ntp;
    }

    /// Datagrams rejected by the source check, every call of this shard since it started.
    pub fn rejected_total(&self) -> u64 {
        self.rejected
    }
}

impl<K: Copy + Eq + Hash> ShardMedia<K> {
    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// A call's graph, sending to `remote` until the far end is heard from elsewhere.
    pub fn add(&mut self, key: K, remote: SocketAddr, mut graph: Box<dyn MediaLeg>) {
        let ssrc = graph.rtcp_inputs().map(|i| i.ssrc);
        let leg = Leg {
            graph,
            latch: Latch::new(self.policy, remote),
            packets_sent: 0,
            sending: true,
            rtcp: CallRtcp::new(format!("dialtone@{}", remote.ip())),
            ssrc,
            seed: seed_of(&key),
            peer: None,
            srtp: None,
            rtcp_mux: false,
            stats_due: false,
            stats_told_us: None,
        };
        self.legs.insert(key, leg);
    }

    /// The call's graph, for commands.
    pub fn graph(&mut self, key: K) -> Option<&mut (dyn MediaLeg + 'static)> {
        self.legs.get_mut(&key).map(|l| l.graph.as_mut())
    }

    /// The far end moved (a re-INVITE): send there, and latch again.
    pub fn set_remote(&mut self, key: K, remote: SocketAddr) {
        if let Some(leg) = self.legs.get_mut(&key) {
            leg.latch.set_advertised(remote);
        }
    }

    /// Whether the far end takes our audio now (SDP direction, hold); while it does not, the
    /// call's media runs on (playback timing, events, recording) but nothing is sent.
    pub fn set_sending(&mut self, key: K, sending: bool) {
        if let Some(leg) = self.legs.get_mut(&key) {
            leg.sending = sending;
        }
    }

    /// The call's SRTP from now on (`None`: plain RTP). Set it right after [`Self::add`], before
    /// the first tick, so no plain packet leaves an encrypted call.
    pub fn set_srtp(&mut self, key: K, srtp: Option<Box<SrtpSession>>) {
        if let Some(leg) = self.legs.get_mut(&key) {
            leg.srtp = srtp;
        }
    }

    /// The far end re-keyed (a re-INVITE's new `a=crypto` key); false when the call has no
    /// SRTP or the key is unusable.
    pub fn rekey_srtp_remote(&mut self, key: K, theirs: &crate::secure::SrtpKey) -> bool {
        self.legs
            .get_mut(&key)
            .and_then(|leg| leg.srtp.as_mut())
            .is_some_and(|s| s.rekey_remote(theirs).is_ok())
    }

    /// Whether the call's RTCP rides on its RTP port (RFC 5761).
    pub fn set_rtcp_mux(&mut self, key: K, muxed: bool) {
        if let Some(leg) = self.legs.get_mut(&key) {
            leg.rtcp_mux = muxed;
        }
    }

    /// Takes the call out to move it to another shard (unbridged first).
    pub fn take(&mut self, key: K) -> Option<MovedLeg<K>> {
        self.unbridge(key);
        self.conference_leave(key);
        self.legs.remove(&key).map(MovedLeg)
    }

    /// A call taken out of another shard, here from now on.
    pub fn put(&mut self, key: K, moved: MovedLeg<K>) {
        self.legs.insert(key, moved.0);
    }

    /// The call joins conference `conf` (made on first use; mixed at 16 kHz): from the next
    /// tick it hears everyone else in it and, unless `muted`, they hear it. With
    /// `beep.on_enter` the others hear a beep now, with `beep.on_exit` when it leaves. False
    /// unless the call is here, in no bridge and no other conference.
    pub fn conference_join(&mut self, conf: K, key: K, muted: bool, beep: Beeps) -> bool {
        let Some(leg) = self.legs.get_mut(&key) else {
            return false;
        };
        if leg.peer.is_some() || self.conference_of.contains_key(&key) {
            return false;
        }
        let rate = leg.graph.pcm_rate();
        let mix = match self.conferences.entry(conf) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => match ConferenceMix::new(16_000) {
                Ok(m) => e.insert(m),
                Err(_) => return false,
            },
        };
        if mix.join(key, rate).is_err() {
            return false;
        }
        mix.set_muted(key, muted);
        if beep.on_enter {
            mix.beep(Some(key));
        }
        if beep.on_exit {
            self.beep_on_exit.insert(key);
        }
        leg.graph.set_bridged(true);
        self.conference_of.insert(key, conf);
        true
    }

    /// Records conference `conf`: from the next tick its mix of everyone (16 kHz, 20 ms
    /// frames, as "heard"; silence as "sent") goes to `tap` until the conference goes or
    /// another tap (None: none) replaces it. False when the conference is not mixed here.
    pub fn conference_record(&mut self, conf: K, tap: Option<Box<dyn FrameTap>>) -> bool {
        if !self.conferences.contains_key(&conf) {
            return false;
        }
        match tap {
            Some(tap) => {
                self.conference_taps.insert(conf, (tap, 0));
            }
            None => {
                self.conference_taps.remove(&conf);
            }
        }
        true
    }

    /// Mutes or unmutes a participant (its audio reaches nobody while muted).
    pub fn conference_set_muted(&mut self, key: K, muted: bool) -> bool {
        let Some(conf) = self.conference_of.get(&key) else {
            return false;
        };
        self.conferences
            .get_mut(conf)
            .is_some_and(|m| m.set_muted(key, muted))
    }

    /// `coach` hears everyone; only `target` hears it (None: an ordinary participant again).
    pub fn conference_set_coach(&mut self, coach: K, target: Option<K>) -> bool {
        let Some(conf) = self.conference_of.get(&coach) else {
            return false;
        };
        self.conferences
            .get_mut(conf)
            .is_some_and(|m| m.set_coach(coach, target))
    }

    /// The call leaves its conference (the conference goes when its last participant does).
    pub fn conference_leave(&mut self, key: K) {
        let Some(conf) = self.conference_of.remove(&key) else {
            return;
        };
        if let Some(leg) = self.legs.get_mut(&key) {
            leg.graph.set_bridged(false);
        }
        let beep = self.beep_on_exit.remove(&key);
        if let Some(mix) = self.conferences.get_mut(&conf) {
            mix.leave(key);
            if mix.is_empty() {
                self.conferences.remove(&conf);
                self.conference_taps.remove(&conf);
            } else if beep {
                mix.beep(None);
            }
        }
    }

    /// Each conference's mix for this tick: every participant's received frame in, each one's
    /// mix of the others out, before the graphs encode.
    fn exchange_conference_audio(&mut self) {
        for (key, conf) in &self.conference_of {
            let (Some(leg), Some(mix)) = (self.legs.get_mut(key), self.conferences.get_mut(conf))
            else {
                continue;
            };
            if leg.graph.take_received_frame(&mut self.frame_buf) {
                mix.push(*key, &self.frame_buf, leg.graph.pcm_rate());
            }
        }
        for mix in self.conferences.values_mut() {
            mix.mix();
        }
        for (conf, (tap, gap)) in self.conference_taps.iter_mut() {
            let Some(mix) = self.conferences.get(conf) else {
                continue;
            };
            let all = mix.mix_all();
            self.conference_silence.resize(all.len(), 0);
            // Never waits: a refused frame is counted and written as silence later.
            if tap.offer(Some(all), &self.conference_silence, *gap) {
                *gap = 0;
            } else {
                *gap = gap.saturating_add(1);
            }
        }
        for (key, conf) in &self.conference_of {
            let (Some(leg), Some(mix)) = (self.legs.get_mut(key), self.conferences.get(conf))
            else {
                continue;
            };
            if let Some(out) = mix.mix_for(*key) {
                let rate = leg.graph.pcm_rate();
                leg.graph.push_bridged_frame(out, rate);
            }
        }
    }

    /// Joins two calls' audio. False (and nothing changes) unless both are here and distinct.
    pub fn bridge(&mut self, a: K, b: K) -> bool {
        if a == b || !self.legs.contains_key(&a) || !self.legs.contains_key(&b) {
            return false;
        }
        for (me, other) in [(a, b), (b, a)] {
            if let Some(leg) = self.legs.get_mut(&me) {
                leg.peer = Some(other);
                leg.graph.set_bridged(true);
            }
        }
        true
    }

    /// Parts the call from its peer, if bridged.
    pub fn unbridge(&mut self, key: K) {
        let peer = self.legs.get_mut(&key).and_then(|leg| {
            leg.graph.set_bridged(false);
            leg.peer.take()
        });
        if let Some(leg) = peer.and_then(|p| self.legs.get_mut(&p)) {
            leg.peer = None;
            leg.graph.set_bridged(false);
        }
    }

    /// Takes the call out (unbridged first); its receive counters and the packets it sent.
    pub fn remove(&mut self, key: K) -> Option<MediaStats> {
        self.unbridge(key);
        self.conference_leave(key);
        self.legs.remove(&key).map(|leg| {
            let s = leg.stats();
            if let Some(e) = leg.srtp.as_ref().and_then(|s| s.last_error()) {
                tracing::info!(rejected = s.srtp_rejected, last_error = %e, "SRTP datagrams refused");
            }
            s
        })
    }

    /// Each call's counters while it runs, after an RTCP report went or came, at most every
    /// `every_us` per call (each one costs its actor a store write).
    pub fn poll_live_stats(
        &mut self,
        now_us: u64,
        every_us: u64,
        mut f: impl FnMut(K, MediaStats),
    ) {
        for (key, leg) in self.legs.iter_mut() {
            let recent = leg
                .stats_told_us
                .is_some_and(|t| now_us.saturating_sub(t) < every_us);
            if !leg.stats_due || recent {
                continue;
            }
            leg.stats_due = false;
            leg.stats_told_us = Some(now_us);
            f(*key, leg.stats());
        }
    }

    /// The RTCP BYE that ends the call's stream, and where it goes (before [`Self::remove`]).
    pub fn rtcp_bye(&mut self, key: K) -> Option<(RtcpDestination, Vec<u8>)> {
        let leg = self.legs.get_mut(&key)?;
        let bye = leg.rtcp.bye(leg.ssrc?);
        let wire = match leg.srtp.as_mut() {
            Some(srtp) => srtp.protect_rtcp(&bye)?.to_vec(),
            None => bye,
        };
        Some((leg.rtcp_destination(), wire))
    }

    /// Each call's RTCP report when due (every ~5 s), to `send` with its destination. `ntp`
    /// is the wall clock (RFC 3550 §4).
    pub fn poll_rtcp(
        &mut self,
        now_us: u64,
        ntp: u64,
        mut send: impl FnMut(K, RtcpDestination, &[u8]),
    ) {
        for (key, leg) in self.legs.iter_mut() {
            let graph = &mut leg.graph;
            let report = leg
                .rtcp
                .poll_report(now_us, ntp, spread(leg.seed, now_us), || {
                    graph.rtcp_inputs()
                });
            let Some(pkt) = report else { continue };
            leg.stats_due = true;
            let to = leg.rtcp_destination();
            match leg.srtp.as_mut() {
                Some(srtp) => {
                    if let Some(wire) = srtp.protect_rtcp(&pkt) {
                        send(*key, to, wire);
                    }
                }
                None => send(*key, to, &pkt),
            }
        }
    }

    /// A datagram on the call's RTCP port (or, muxed, on its RTP port). Only the far end's
    /// address is heard (the port may differ, as for RTP); with SRTP only what authenticates;
    /// false when refused or malformed.
    pub fn on_rtcp(&mut self, key: K, ntp: u64, data: &[u8], from: SocketAddr) -> bool {
        let Some(leg) = self.legs.get_mut(&key) else {
            return false;
        };
        leg.on_rtcp(ntp, data, from)
    }

    /// A datagram arrived on the call's port from `from`. A source the call's latch refuses
    /// never reaches its media; `Some` when a warning about such datagrams is due (at most
    /// once a second per call).
    pub fn on_datagram(
        &mut self,
        key: K,
        now_us: u64,
        data: &[u8],
        from: SocketAddr,
    ) -> Option<RejectReport> {
        let leg = self.legs.get_mut(&key)?;
        if leg.rtcp_mux && leg.graph.carries_rtp() && is_rtcp(data) {
            leg.on_rtcp(self.ntp, data, from);
            return None;
        }
        match leg.latch.admit(now_us, from) {
            Admit::No(report) => {
                self.rejected += 1;
                report
            }
            Admit::Yes => {
                // Only authentic packets reach the graph or move the latch: with
                // `rtp_latch = any` a stranger's garbage must not take the call over.
                let plain = match leg.srtp.as_mut() {
                    Some(srtp) => srtp.unprotect_rtp(data)?,
                    None => data,
                };
                if leg.graph.on_rtp(now_us, plain) {
                    // Symmetric RTP: answer where the far end really sends from.
                    leg.latch.heard(now_us, from);
                }
                None
            }
        }
    }

    /// One tick for every call, phase after phase (all at `now_us`).
    pub fn tick(
        &mut self,
        now_us: u64,
        mut send: impl FnMut(K, SocketAddr, &[u8]) -> bool,
        mut emit: impl FnMut(K, MediaEvent),
    ) {
        for phase in 0..self.phases() {
            self.tick_phase(now_us, phase, &mut send, &mut emit);
        }
    }

    /// The tick of the calls in `phase` (of [`ShardMedia::phases`]; called for each phase in
    /// turn, spread over the 20 ms): each graph gives its packets to `send` (which says whether
    /// the packet left) and its events to `emit`. Phase 0 first hands every bridged leg's and
    /// conference participant's last frame across, once per 20 ms whatever their phases: each
    /// gives one frame and takes one per round, so audio crosses in under two ticks.
    pub fn tick_phase(
        &mut self,
        now_us: u64,
        phase: usize,
        mut send: impl FnMut(K, SocketAddr, &[u8]) -> bool,
        mut emit: impl FnMut(K, MediaEvent),
    ) {
        let phase = u64::try_from(phase).unwrap_or(u64::MAX);
        if phase == 0 {
            self.exchange_bridged_audio();
            if !self.conferences.is_empty() {
                self.exchange_conference_audio();
            }
        }
        let phases = self.phases;
        for (key, leg) in self.legs.iter_mut() {
            if leg.seed % phases != phase {
                continue;
            }
            self.out.clear();
            leg.graph.on_tick(now_us, &mut self.out);
            if !leg.sending {
                self.out.clear();
            }
            let carries_rtp = leg.graph.carries_rtp();
            for pkt in self.out.iter() {
                let wire = match leg.srtp.as_mut() {
                    Some(srtp) => match srtp.protect_rtp(pkt) {
                        Some(w) => w,
                        None => continue,
                    },
                    None => pkt,
                };
                if send(*key, leg.latch.target(), wire) {
                    leg.packets_sent += 1;
                    if carries_rtp {
                        // RFC 3550's octet count is of the plain payload.
                        leg.rtcp.on_sent(pkt.len());
                    }
                }
            }
            while let Some(ev) = leg.graph.poll_event() {
                if let (MediaEvent::Digit(d), Some(peer)) = (&ev, leg.peer) {
                    self.bridged_digits.push((peer, *d));
                }
                emit(*key, ev);
            }
        }
        // A key pressed on one side of a bridge is sent to the other as RFC 4733 events.
        for (peer, digit) in self.bridged_digits.drain(..) {
            if let Some(leg) = self.legs.get_mut(&peer) {
                let mut buf = [0u8; 4];
                let _ = leg.graph.send_digits(digit.encode_utf8(&mut buf));
            }
        }
    }

    /// Hands every bridged leg's received frame to its peer, before the tick encodes. When
    /// both legs have the same stateless codec and nothing on the receiving leg needs the
    /// audio, the payload crosses untouched (no decode, no encode) — the relay is decided
    /// again every tick, so a recording or detector started on either leg switches it back.
    /// The buffers stay in `bridged_frames`/`bridged_payloads` from tick to tick (only the
    /// first entries are this tick's), so a warm shard allocates nothing here.
    fn exchange_bridged_audio(&mut self) {
        let Self {
            legs,
            bridged_frames,
            bridged_payloads,
            relay_plan,
            ..
        } = self;
        relay_plan.clear();
        for (key, leg) in legs.iter() {
            let Some(peer) = leg.peer else { continue };
            let relay = leg
                .graph
                .relay_codec()
                .is_some_and(|codec| legs.get(&peer).and_then(|p| p.graph.codec()) == Some(codec));
            relay_plan.push((*key, relay));
        }
        for (key, relay) in relay_plan.iter() {
            if let Some(leg) = legs.get_mut(key) {
                leg.graph.set_relay(*relay);
            }
        }
        let (mut n, mut m) = (0, 0);
        for leg in legs.values_mut() {
            let Some(peer) = leg.peer else { continue };
            if m == bridged_payloads.len() {
                bridged_payloads.push((peer, Vec::new()));
            }
            let relayed = &mut bridged_payloads[m];
            if leg.graph.take_received_payload(&mut relayed.1) {
                relayed.0 = peer;
                m += 1;
                continue;
            }
            if n == bridged_frames.len() {
                bridged_frames.push((peer, Vec::new(), 0));
            }
            let slot = &mut bridged_frames[n];
            if leg.graph.take_received_frame(&mut slot.1) {
                slot.0 = peer;
                slot.2 = leg.graph.pcm_rate();
                n += 1;
            }
        }
        for (peer, frame, rate) in &bridged_frames[..n] {
            if let Some(leg) = legs.get_mut(peer) {
                leg.graph.push_bridged_frame(frame, *rate);
            }
        }
        for (peer, payload) in &bridged_payloads[..m] {
            if let Some(leg) = legs.get_mut(peer) {
                leg.graph.push_bridged_payload(payload);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{CallGraph, GraphConfig};
    use crate::CodecKind;

    fn graph(ssrc: u32) -> Box<dyn MediaLeg> {
        let cfg = GraphConfig {
            codec: CodecKind::Pcmu,
            rtp_clock_rate: 8000,
            ssrc,
            initial_sequence: 1,
            initial_timestamp: 0,
            payload_type: 0,
            telephone_event_pt: Some(101),
        };
        match CallGraph::new(&cfg) {
            Ok(g) => Box::new(g),
            Err(e) => panic!("{e}"),
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn rtp(seq: u16, payload: u8) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend(std::iter::repeat_n(payload, 160));
        p
    }

    fn stranger(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 2], port))
    }

    /// Ticks once and says where the leg's packets went.
    fn tick_to(s: &mut ShardMedia<u8>, now: u64) -> Vec<SocketAddr> {
        let mut sent_to = Vec::new();
        s.tick(
            now,
            |_, to, _| {
                sent_to.push(to);
                true
            },
            |_, _| {},
        );
        sent_to
    }

    #[test]
    fn latches_onto_the_real_source_and_relatches_only_after_silence() {
        let mut s = ShardMedia::default();
        s.add(1u8, addr(9), graph(1));
        let mut sent_to = Vec::new();
        assert_eq!(s.on_datagram(1, 0, b"not rtp", addr(5000)), None);
        sent_to.extend(tick_to(&mut s, 0));
        s.on_datagram(1, 10_000, &rtp(1, 0xff), addr(5000));
        // Another port while the far end talks: refused (and reported, the first time).
        assert!(s
            .on_datagram(1, 20_000, &rtp(2, 0xff), addr(6000))
            .is_some());
        sent_to.extend(tick_to(&mut s, 20_000));
        s.on_datagram(1, 1_100_000, &rtp(3, 0xff), addr(6000));
        sent_to.extend(tick_to(&mut s, 1_100_000));
        s.set_remote(1, addr(7000));
        sent_to.extend(tick_to(&mut s, 1_120_000));
        assert_eq!(sent_to, [addr(9), addr(5000), addr(6000), addr(7000)]);
        let stats = s.remove(1);
        assert_eq!(
            stats.map(|s| (
                s.packets_sent,
                s.packets_received,
                s.garbage_received,
                s.packets_rejected
            )),
            Some((4, 2, 1, 1))
        );
        assert_eq!(s.rejected_total(), 1);
        assert!(s.is_empty());
    }

    /// Finding: while the far end was silent, any sender of valid RTP took the call's audio.
    #[test]
    fn a_stranger_never_gets_the_audio_nor_reaches_the_call() {
        let mut s = ShardMedia::default();
        s.add(1u8, addr(9), graph(1));
        let mut sent_to = Vec::new();
        let mut reports = 0;
        for i in 0..200u16 {
            let now = u64::from(i) * 20_000;
            // The far end talks for a second, then goes silent; the stranger never stops.
            if i < 50 {
                s.on_datagram(1, now, &rtp(i, 0xff), addr(5000));
            }
            if s.on_datagram(1, now, &rtp(1000 + i, 0xff), stranger(5000))
                .is_some()
            {
                reports += 1;
            }
            sent_to.extend(tick_to(&mut s, now));
        }
        assert!(sent_to.iter().all(|a| *a == addr(5000)), "{sent_to:?}");
        assert_eq!(reports, 4, "one warning a second");
        let stats = s.remove(1);
        assert_eq!(
            stats.map(|s| (s.packets_received, s.packets_rejected)),
            Some((50, 200))
        );
        assert_eq!(s.rejected_total(), 200);
    }

    #[test]
    fn latching_to_any_source_is_the_old_opt_in_behaviour() {
        let mut s = ShardMedia::new(LatchPolicy::Any);
        s.add(1u8, addr(9), graph(1));
        s.on_datagram(1, 0, &rtp(1, 0xff), addr(5000));
        assert_eq!(tick_to(&mut s, 0), [addr(5000)]);
        s.on_datagram(1, 20_000, &rtp(2, 0xff), stranger(5000));
        assert_eq!(tick_to(&mut s, 20_000), [addr(5000)]);
        // The far end silent for more than a second: the stranger takes it.
        s.on_datagram(1, 1_100_000, &rtp(3, 0xff), stranger(5000));
        assert_eq!(tick_to(&mut s, 1_100_000), [stranger(5000)]);
        assert_eq!(s.remove(1).map(|s| s.packets_rejected), Some(0));
    }

    #[test]
    fn bridged_legs_hear_each_other_until_unbridged() {
        let mut s = ShardMedia::default();
        s.add(1u8, addr(9), graph(1));
        s.add(2u8, addr(10), graph(2));
        assert!(!s.bridge(1, 1));
        assert!(!s.bridge(1, 3));
        assert!(s.bridge(1, 2));
        // Ticks `frames`, leg 1's far end sending loud audio; how many of leg 2's packets carry it.
        let loud_packets_on_2 = |s: &mut ShardMedia<u8>, frames: std::ops::Range<u16>| {
            let mut loud = 0;
            for i in frames {
                let now = u64::from(i) * 20_000;
                s.on_datagram(1, now, &rtp(i, 0x80), addr(5000));
                s.tick(
                    now,
                    |k, _, pkt| {
                        if k == 2 && pkt.get(12).is_some_and(|b| *b != 0xff) {
                            loud += 1;
                        }
                        true
                    },
                    |_, _| {},
                );
            }
            loud
        };
        // It comes out of leg 2 once the jitter buffer lets it go.
        let loud = loud_packets_on_2(&mut s, 0..30);
        assert!(loud > 10, "{loud}");
        s.unbridge(2);
        assert_eq!(loud_packets_on_2(&mut s, 30..40), 0);
    }

    /// Same codec and nobody listening: leg 1's far end's payload leaves leg 2 byte for byte
    /// (µ-law 0x7F, "negative zero", survives: a decode and re-encode would make it 0xFF).
    /// When leg 1 starts detecting digits the audio is decoded again (0x7F becomes 0xFF),
    /// and unbridged nothing crosses.
    #[test]
    fn each_call_ticks_once_a_round_in_its_own_phase() {
        let mut s = ShardMedia::with_phases(LatchPolicy::default(), 10);
        assert_eq!(s.phases(), 10);
        for k in 0..200u8 {
            s.add(k, addr(20_000 + u16::from(k)), graph(u32::from(k)));
        }
        let mut phase_of = HashMap::new();
        for round in 0..3u64 {
            for phase in 0..10 {
                let mut sent = Vec::new();
                s.tick_phase(
                    round * 20_000 + phase as u64 * 2_000,
                    phase,
                    |k, _, _| {
                        sent.push(k);
                        true
                    },
                    |_, _| {},
                );
                for k in sent {
                    assert_eq!(*phase_of.entry(k).or_insert(phase), phase, "call {k}");
                }
            }
        }
        assert_eq!(phase_of.len(), 200);
        for phase in 0..10 {
            let n = phase_of.values().filter(|p| **p == phase).count();
            // 200 calls over 10 phases: 20 each, give or take.
            assert!((6..=40).contains(&n), "{phase_of:?}");
        }
    }

    #[test]
    fn bridged_legs_in_different_phases_hear_each_other_within_two_ticks() {
        let mut s = ShardMedia::with_phases(LatchPolicy::default(), 10);
        let phase = |k: u8| (seed_of(&k) % 10) as usize;
        let a = 1u8;
        let b = (2..=255u8)
            .find(|k| phase(*k) != phase(a))
            .expect("a key in another phase");
        s.add(a, addr(9), graph(1));
        s.add(b, addr(10), graph(2));
        assert!(s.bridge(a, b));
        let mut first_loud = None;
        let mut loud = 0;
        for round in 0..40u16 {
            for p in 0..10 {
                let now = u64::from(round) * 20_000 + p as u64 * 2_000;
                if p == phase(a) {
                    s.on_datagram(a, now, &rtp(round, 0x80), addr(5000));
                }
                s.tick_phase(
                    now,
                    p,
                    |k, _, pkt| {
                        if k == b && pkt.get(12).is_some_and(|x| *x != 0xff) {
                            loud += 1;
                            first_loud.get_or_insert(now);
                        }
                        true
                    },
                    |_, _| {},
                );
            }
        }
        // From the first packet on: the jitter buffer's 40 ms, then under two ticks across.
        let first = first_loud.expect("leg b sent leg a's audio");
        let sent_at = phase(a) as u64 * 2_000;
        assert!(first - sent_at < 40_000 + 40_000, "{first}");
        assert!(loud >= 30, "{loud}");
    }

    #[test]
    fn a_bridged_pair_relays_the_payload_until_a_listener_needs_it() {
        let mut s = ShardMedia::default();
        s.add(1u8, addr(9), graph(1));
        s.add(2u8, addr(10), graph(2));
        assert!(s.bridge(1, 2));
        // A payload no encoder makes: every other byte 0x7F (an encoder writes 0xFF for
        // zero), the rest a ramp.
        let payload: Vec<u8> = (0..160u8)
            .map(|i| if i % 2 == 0 { 0x7f } else { i })
            .collect();
        let mut from_2: Vec<Vec<u8>> = Vec::new();
        let mut run = |s: &mut ShardMedia<u8>, frames: std::ops::Range<u16>| {
            from_2.clear();
            for i in frames {
                let now = u64::from(i) * 20_000;
                let mut pkt = Vec::new();
                rtp::write(false, 0, i, u32::from(i) * 160, 5, &payload, &mut pkt);
                s.on_datagram(1, now, &pkt, addr(5000));
                s.tick(
                    now,
                    |k, _, pkt| {
                        if k == 2 {
                            from_2.push(pkt[12..].to_vec());
                        }
                        true
                    },
                    |_, _| {},
                );
            }
            from_2.clone()
        };
        let relayed = run(&mut s, 0..30);
        let same = relayed.iter().filter(|p| **p == payload).count();
        assert!(
            same > 20,
            "{same} of {} packets relayed untouched",
            relayed.len()
        );
        // A digit detector on leg 1 needs its audio: decoded, mixed, re-encoded.
        if let Some(g) = s.graph(1) {
            g.set_digit_detection(true);
        }
        let decoded = run(&mut s, 30..60);
        assert!(decoded.iter().skip(5).all(|p| p != &payload));
        let reencoded: Vec<u8> = payload
            .iter()
            .map(|&b| if b == 0x7f { 0xff } else { b })
            .collect();
        assert!(decoded.iter().filter(|p| **p == reencoded).count() > 20);
        s.unbridge(2);
        let apart = run(&mut s, 60..70);
        assert!(apart.iter().skip(2).all(|p| p.iter().all(|&b| b == 0xff)));
    }

    /// A held call (the far end said `sendonly`/`inactive`) ticks on but sends nothing, and
    /// sends again once resumed.
    #[test]
    fn a_held_call_sends_nothing_until_resumed() {
        let mut s: ShardMedia<u8> = ShardMedia::default();
        s.add(1, addr(5004), graph(1));
        assert_eq!(tick_to(&mut s, 20_000).len(), 1);
        s.set_sending(1, false);
        for t in 2..10 {
            assert!(tick_to(&mut s, t * 20_000).is_empty());
        }
        s.set_sending(1, true);
        assert_eq!(tick_to(&mut s, 200_000).len(), 1);
        assert_eq!(s.remove(1).map(|st| st.packets_sent), Some(2));
    }

    fn srtp_pair() -> (SrtpSession, SrtpSession) {
        use crate::secure::SrtpKey;
        let ours = SrtpKey {
            key_salt: (0..30).collect(),
            mki: Vec::new(),
        };
        let theirs = SrtpKey {
            key_salt: (100..130).collect(),
            mki: Vec::new(),
        };
        let suite = srtp::Suite::AesCm128HmacSha1_80;
        match (
            SrtpSession::new(suite, &ours, &theirs),
            SrtpSession::new(suite, &theirs, &ours),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            _ => panic!("keys"),
        }
    }

    /// An SRTP call: what leaves is SRTP the far end can open, what the far end protects
    /// reaches the graph, and a plain or forged packet from the far end's own address is
    /// refused and counted, never heard and never moving the latch.
    #[test]
    fn an_srtp_call_sends_and_hears_only_protected_packets() {
        let mut s: ShardMedia<u8> = ShardMedia::new(LatchPolicy::Any);
        let (ours, mut far_end) = srtp_pair();
        s.add(1, addr(5004), graph(1));
        s.set_srtp(1, Some(Box::new(ours)));
        let mut sent = Vec::new();
        s.tick(
            20_000,
            |_, _, pkt| {
                sent.push(pkt.to_vec());
                true
            },
            |_, _| {},
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].len(),
            12 + 160 + 10,
            "RTP header, G.711 payload, 80-bit tag"
        );
        let opened = far_end.unprotect_rtp(&sent[0]).map(<[u8]>::to_vec);
        assert_eq!(opened.as_ref().map(Vec::len), Some(172));

        for seq in 1..=3 {
            let wire = far_end.protect_rtp(&rtp(seq, 0xff)).map(<[u8]>::to_vec);
            s.on_datagram(
                1,
                u64::from(seq) * 20_000,
                &wire.unwrap_or_default(),
                addr(6000),
            );
        }
        // Plain RTP and a forgery from another address: refused before the graph or latch.
        s.on_datagram(1, 100_000, &rtp(4, 0xff), addr(6000));
        let mut forged = far_end
            .protect_rtp(&rtp(5, 0xff))
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        forged[30] ^= 0x40;
        s.on_datagram(1, 120_000, &forged, stranger(7000));
        assert_eq!(
            tick_to(&mut s, 140_000),
            vec![addr(6000)],
            "latched on the authentic source"
        );
        let stats = s.remove(1).unwrap_or_default();
        assert_eq!((stats.packets_received, stats.srtp_rejected), (3, 2));
    }

    /// RTCP-mux: reports go to the RTP target, marked to leave by the RTP socket, and RTCP
    /// arriving on the RTP port is told apart from RTP (never counted as garbage audio).
    #[test]
    fn muxed_rtcp_shares_the_rtp_port() {
        let mut s: ShardMedia<u8> = ShardMedia::default();
        s.add(1, addr(5004), graph(1));
        s.set_rtcp_mux(1, true);
        tick_to(&mut s, 20_000);
        let mut reports = Vec::new();
        for t in 0..400u64 {
            s.poll_rtcp(t * 20_000, t << 20, |_, to, pkt| {
                reports.push((to, pkt.to_vec()))
            });
        }
        assert!(!reports.is_empty(), "a report within 8 s");
        let (to, sr) = &reports[0];
        assert_eq!(
            *to,
            RtcpDestination {
                to: addr(5004),
                muxed: true
            }
        );
        assert_eq!(sr[1], 200, "a sender report");
        // The far end's receiver report about our SSRC 1, on the RTP port.
        let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 9];
        rr.extend_from_slice(&1u32.to_be_bytes());
        rr.extend_from_slice(&[0; 20]);
        s.on_datagram(1, 8_000_000, &rr, addr(5004));
        let stats = s.remove(1).unwrap_or_default();
        assert_eq!(stats.rtcp.reports_received, 1);
        assert_eq!((stats.packets_received, stats.garbage_received), (0, 0));
    }

    /// Without mux the same report on the RTP port is not RTCP (it is refused as RTP).
    #[test]
    fn unmuxed_rtcp_goes_to_the_port_above() {
        let mut s: ShardMedia<u8> = ShardMedia::default();
        s.add(1, addr(5004), graph(1));
        tick_to(&mut s, 20_000);
        let bye = s.rtcp_bye(1).map(|(to, _)| to);
        assert_eq!(
            bye,
            Some(RtcpDestination {
                to: addr(5005),
                muxed: false
            })
        );
    }

    /// A call moved between shards keeps its stream: sequence numbers go on and it is
    /// still latched where it was.
    #[test]
    fn a_call_moves_between_shards_without_a_break() {
        let mut a: ShardMedia<u8> = ShardMedia::default();
        let mut b: ShardMedia<u8> = ShardMedia::default();
        a.add(1, addr(5004), graph(1));
        let mut seqs = Vec::new();
        let mut record = |s: &mut ShardMedia<u8>, now| {
            s.tick(
                now,
                |_, _, pkt| {
                    seqs.push(u16::from_be_bytes([pkt[2], pkt[3]]));
                    true
                },
                |_, _| {},
            )
        };
        record(&mut a, 20_000);
        let moved = a.take(1);
        assert!(a.is_empty() && moved.is_some());
        if let Some(m) = moved {
            b.put(1, m);
        }
        record(&mut b, 40_000);
        assert_eq!(seqs.len(), 2);
        assert_eq!(seqs[1], seqs[0].wrapping_add(1));
        assert_eq!(b.remove(1).map(|s| s.packets_sent), Some(2));
    }

    /// A conference of three: what one says reaches the others, never itself; a muted one
    /// reaches nobody; one that left hears nothing more.
    #[test]
    fn conference_participants_hear_the_others_but_not_themselves() {
        let mut s: ShardMedia<u8> = ShardMedia::default();
        for k in 1..=3u8 {
            s.add(k, addr(5000 + u16::from(k)), graph(u32::from(k)));
            assert!(s.conference_join(100, k, k == 3, Beeps::default()));
        }
        assert!(
            !s.conference_join(100, 1, false, Beeps::default()),
            "already in"
        );
        let mut loud_to = std::collections::HashMap::<u8, usize>::new();
        for t in 0..30u64 {
            let now = t * 20_000;
            // 1 and 3 talk (µ-law 0x00: a loud sample); 2 is silent (0xff).
            for (k, byte) in [(1u8, 0x00u8), (2, 0xff), (3, 0x00)] {
                s.on_datagram(k, now, &rtp(t as u16, byte), addr(6000 + u16::from(k)));
            }
            s.tick(
                now,
                |k, _, pkt| {
                    if t >= 20
                        && pkt[12..]
                            .iter()
                            .filter(|b| **b != 0xff && **b != 0x7f)
                            .count()
                            > 100
                    {
                        *loud_to.entry(k).or_default() += 1;
                    }
                    true
                },
                |_, _| {},
            );
        }
        assert!(
            loud_to.get(&2).copied().unwrap_or(0) >= 8,
            "2 hears 1: {loud_to:?}"
        );
        assert!(
            loud_to.get(&3).copied().unwrap_or(0) >= 8,
            "3 hears 1: {loud_to:?}"
        );
        assert_eq!(
            loud_to.get(&1),
            None,
            "1 hears neither itself nor the muted 3: {loud_to:?}"
        );
        s.conference_leave(1);
        s.conference_leave(2);
        s.conference_leave(3);
        assert!(s.conferences.is_empty() && s.conference_of.is_empty());
    }

    /// What a tap was offered: heard, the length of "sent", the gap.
    type Offered = std::sync::Arc<std::sync::Mutex<Vec<(Vec<i16>, usize, u32)>>>;

    /// A tap that keeps what it is offered (and refuses while `refuse` says so).
    struct KeepTap {
        frames: Offered,
        refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl FrameTap for KeepTap {
        fn offer(&mut self, heard: Option<&[i16]>, sent: &[i16], gap_frames: u32) -> bool {
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            if let Ok(mut f) = self.frames.lock() {
                f.push((heard.unwrap_or(&[]).to_vec(), sent.len(), gap_frames));
            }
            true
        }
    }

    /// A recorded conference: its tap gets the mix of everyone each tick (16 kHz, with as
    /// much silence as "sent"), the beeps of someone entering and leaving are in it, frames
    /// the tap refused are counted onto the next one, and the tap goes with the conference.
    #[test]
    fn a_recorded_conference_taps_the_mix_with_its_beeps() {
        use crate::conference::{BEEP_HZ, BEEP_MS};
        use crate::tone::goertzel_dbfs;
        let mut s: ShardMedia<u8> = ShardMedia::default();
        let beeps = Beeps {
            on_enter: true,
            on_exit: true,
        };
        let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let refuse = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tap = KeepTap {
            frames: frames.clone(),
            refuse: refuse.clone(),
        };
        assert!(!s.conference_record(100, Some(Box::new(tap))), "no mix yet");
        for k in 1..=3u8 {
            s.add(k, addr(5000 + u16::from(k)), graph(u32::from(k)));
        }
        // 1 (quiet) starts it without a beep (nobody else there to hear one).
        assert!(s.conference_join(100, 1, false, Beeps::default()));
        let tap = KeepTap {
            frames: frames.clone(),
            refuse: refuse.clone(),
        };
        assert!(s.conference_record(100, Some(Box::new(tap))));
        let mut t = 0u64;
        let mut run = |s: &mut ShardMedia<u8>, ticks: u64| {
            for _ in 0..ticks {
                for k in 1..=3u8 {
                    s.on_datagram(
                        k,
                        t * 20_000,
                        &rtp(t as u16, 0xff),
                        addr(6000 + u16::from(k)),
                    );
                }
                tick_to(s, t * 20_000);
                t += 1;
            }
        };
        let heard = |from: usize, to: usize| -> Vec<i16> {
            let f = frames.lock().map(|f| f.clone()).unwrap_or_default();
            f[from..to].iter().flat_map(|(h, _, _)| h.clone()).collect()
        };
        run(&mut s, 10);
        assert!(goertzel_dbfs(&heard(0, 10), 16_000, BEEP_HZ) < -70.0);
        assert!(s.conference_join(100, 2, false, beeps));
        let beep_ticks = (BEEP_MS / 20) as usize;
        run(&mut s, 20);
        assert!(goertzel_dbfs(&heard(10, 10 + beep_ticks), 16_000, BEEP_HZ) > -20.0);
        assert!(goertzel_dbfs(&heard(24, 30), 16_000, BEEP_HZ) < -70.0);
        // Two frames refused: the next one says so.
        refuse.store(true, std::sync::atomic::Ordering::SeqCst);
        run(&mut s, 2);
        refuse.store(false, std::sync::atomic::Ordering::SeqCst);
        run(&mut s, 1);
        assert_eq!(frames.lock().map(|f| f[30].2).unwrap_or(0), 2);
        // 2 leaves: its exit beep.
        s.conference_leave(2);
        run(&mut s, 20);
        assert!(goertzel_dbfs(&heard(31, 31 + beep_ticks), 16_000, BEEP_HZ) > -20.0);
        let all = frames.lock().map(|f| f.clone()).unwrap_or_default();
        assert!(all
            .iter()
            .all(|(h, sent, _)| h.len() == 320 && *sent == 320));
        // The last one out: the conference and its tap go.
        s.conference_leave(1);
        assert!(s.conferences.is_empty() && s.conference_taps.is_empty());
    }
}
