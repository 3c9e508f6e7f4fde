//! Adaptive jitter buffer for one call's received audio. Pure: told the time.
//!
//! Packets are placed on a grid of 20 ms frame slots by RTP timestamp (sequence numbers only
//! classify stray packets). Playout follows a schedule derived from arrival times: for every
//! packet the buffer tracks `r = arrival − media time of its slot`, keeps a smoothed mean of
//! `r` and an RFC 3550 §6.4.1 interarrival jitter estimate `J`, and aims to play slot `i` at
//! `mean_r + i·20 ms + target`, with `target = clamp(20 ms + 3·J, min, max)`.
//!
//! Each [`JitterBuffer::pull`] emits exactly one frame. Playout starts at the tick nearest the
//! schedule (at most half a frame from it either way), so a frame waits `target` on average.
//! When playout then runs more than one frame ahead of the schedule (the target grew) it holds
//! for a tick ([`Pulled::Missing`]); when it runs more than two frames behind (the target
//! shrank, or the caller's clock jumped) it skips the overdue slots, dropping their packets
//! (counted as late). A new floor ([`JitterBuffer::set_min_delay_ms`]) is caught up with at
//! once, a frame skipped or held as it needs.
//!
//! Assumes 20 ms packets: a packet whose timestamp falls between slots is rounded to the
//! nearest slot (so 10 ms packets would collide and count as duplicates).

use std::collections::BTreeMap;

/// Frame duration in microseconds.
const FRAME_US: i64 = 20_000;
/// Playout more than this ahead of the schedule holds one tick.
const HOLD_LEAD_US: i64 = 20_000;
/// Playout more than this behind the schedule skips the overdue slots.
const SKIP_LAG_US: i64 = 40_000;
/// Playout starts (and re-aligns after a new floor) within this much of the schedule: the
/// tick nearest it.
const ALIGN_US: i64 = FRAME_US / 2;
/// A timestamp more than this many frames (2 s) away from the newest resets the stream.
const JUMP_FRAMES: i64 = 100;
/// Consecutive packets with newer sequence numbers but already-played timestamps that mean
/// the sender's timestamps went backwards (reset), rather than one stray late packet.
const BACKWARD_STREAK: u32 = 3;
/// Consecutive packets arriving far earlier than the schedule that mean the sender's
/// timestamps jumped forward (re-anchor the schedule).
const EARLY_STREAK: u32 = 3;
/// Largest weight 1/n of the running mean of `r` (n grows to this, then stays).
const MEAN_WINDOW: f64 = 32.0;
/// One packet moves the mean of `r` by at most this much deviation (before weighting).
const MEAN_CLAMP_US: f64 = 40_000.0;

/// What [`JitterBuffer::pull`] gives for one 20 ms tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Pulled {
    /// The payload of the next packet in timestamp order.
    Frame(Vec<u8>),
    /// The next frame is missing (lost, late, or the buffer is growing): conceal one frame.
    Missing,
    /// Nothing to play: not started yet, or re-buffering after a long underrun.
    Empty,
}

/// Counters and the current target delay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JitterStats {
    /// Every packet pushed.
    pub received: u64,
    /// Frames returned as [`Pulled::Frame`].
    pub played: u64,
    /// Ticks returned as [`Pulled::Missing`].
    pub concealed: u64,
    /// Packets dropped because their slot had been played or skipped (or to shrink the delay,
    /// or because the buffer was full).
    pub late_dropped: u64,
    /// Packets whose slot was already buffered or played.
    pub duplicates: u64,
    /// Stream restarts: SSRC changes and timestamp discontinuities.
    pub resets: u64,
    /// Current target playout delay.
    pub target_delay_ms: u32,
}

/// The newest packet (highest slot) of the current stream.
#[derive(Debug, Clone, Copy)]
struct Newest {
    slot: i64,
    timestamp: u32,
    sequence: u16,
}

/// Played buffers kept for reuse (a few ticks' worth; more only follow a burst).
const SPARE_BUFFERS: usize = 8;

/// Reorders RTP audio payloads into a steady 20 ms frame stream for one call.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    step: u32,
    min_us: i64,
    max_us: i64,
    /// Most packets held at once.
    capacity: usize,
    ssrc: Option<u32>,
    newest: Option<Newest>,
    slots: BTreeMap<i64, Vec<u8>>,
    /// Payload buffers played and given back ([`JitterBuffer::recycle`]), for the next
    /// packets: a warm buffer allocates nothing per packet.
    spare: Vec<Vec<u8>>,
    /// Slot to play next; also the floor below which packets are late. `None` until the
    /// stream first starts playing.
    next: Option<i64>,
    playing: bool,
    /// Bit k: slot `next - 1 - k` was played from a packet (tells duplicates from late).
    played_mask: u64,
    /// Smoothed mean of `r`, µs; `None` until anchored.
    mean_r: Option<f64>,
    mean_n: f64,
    /// `r` of the previous packet, for the jitter estimate.
    prev_r: Option<i64>,
    /// RFC 3550 interarrival jitter, µs.
    jitter_us: f64,
    target_us: i64,
    /// Consecutive pulls that found nothing buffered.
    empty_pulls: u32,
    backward_streak: u32,
    early_streak: u32,
    /// The floor changed while playing: the next pull moves playout to the tick nearest the
    /// new schedule.
    realign: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    /// `timestamp_step`: RTP ticks per 20 ms frame (160 at an 8 kHz clock, 960 for Opus).
    /// `min_delay_ms..=max_delay_ms` bounds the adaptive target (e.g. 40..=200).
    pub fn new(timestamp_step: u32, min_delay_ms: u32, max_delay_ms: u32) -> Self {
        let min_us = i64::from(min_delay_ms) * 1000;
        let max_us = (i64::from(max_delay_ms) * 1000).max(min_us).max(FRAME_US);
        let max_frames = usize::try_from(max_us / FRAME_US).unwrap_or(usize::MAX);
        JitterBuffer {
            step: timestamp_step.max(1),
            min_us,
            max_us,
            capacity: max_frames.saturating_mul(4).max(64),
            ssrc: None,
            newest: None,
            slots: BTreeMap::new(),
            spare: Vec::new(),
            next: None,
            playing: false,
            played_mask: 0,
            mean_r: None,
            mean_n: 0.0,
            prev_r: None,
            jitter_us: 0.0,
            target_us: min_us,
            empty_pulls: 0,
            backward_streak: 0,
            early_streak: 0,
            realign: false,
            stats: JitterStats {
                target_delay_ms: min_delay_ms,
                ..JitterStats::default()
            },
        }
    }

    /// A new floor for the adaptive target (a live fork of the call wants less delay than a
    /// recording does). Playout catches up with it on the next pull.
    pub fn set_min_delay_ms(&mut self, min_delay_ms: u32) {
        let min_us = i64::from(min_delay_ms) * 1000;
        if min_us == self.min_us {
            return;
        }
        self.min_us = min_us;
        self.max_us = self.max_us.max(min_us);
        self.update_target();
        self.realign = self.playing;
    }

    /// A packet arrived at `now_us`. Duplicates and packets whose slot was already played are
    /// dropped (counted). An SSRC change or a timestamp jump of more than 2 s resets the
    /// buffer (counted) and starts over with the new stream.
    pub fn push(&mut self, now_us: u64, ssrc: u32, sequence: u16, timestamp: u32, payload: &[u8]) {
        self.stats.received += 1;
        let now = i64::try_from(now_us).unwrap_or(i64::MAX);
        if self.ssrc != Some(ssrc) {
            self.restart(ssrc, sequence, timestamp);
        }
        let Some(newest) = self.newest else {
            self.restart(ssrc, sequence, timestamp);
            return self.insert(now, 0, sequence, timestamp, payload);
        };
        let ticks = i64::from(timestamp.wrapping_sub(newest.timestamp) as i32);
        let newer_seq = (sequence.wrapping_sub(newest.sequence) as i16) > 0;
        let step = i64::from(self.step);
        if ticks.abs() > JUMP_FRAMES.saturating_mul(step) {
            let seq_back = newest.sequence.wrapping_sub(sequence);
            if seq_back <= 100 {
                // An old sequence number with a far-off timestamp: a stray, not a new stream.
                self.stats.late_dropped += 1;
                return;
            }
            self.restart(ssrc, sequence, timestamp);
            return self.insert(now, 0, sequence, timestamp, payload);
        }
        // Nearest slot (rounding half away from zero).
        let half = step / 2;
        let offset = if ticks >= 0 {
            (ticks + half) / step
        } else {
            -((-ticks + half) / step)
        };
        let slot = newest.slot.saturating_add(offset);

        if self.slots.contains_key(&slot) || self.was_played(slot) {
            self.stats.duplicates += 1;
            return;
        }
        if let Some(next) = self.next {
            if slot < next {
                if newer_seq {
                    self.backward_streak += 1;
                    if self.backward_streak >= BACKWARD_STREAK {
                        self.restart(ssrc, sequence, timestamp);
                        return self.insert(now, 0, sequence, timestamp, payload);
                    }
                } else {
                    self.backward_streak = 0;
                    // A late packet is jitter to measure (but never an anchor).
                    if self.mean_r.is_some() {
                        self.observe(now, slot);
                    }
                }
                self.stats.late_dropped += 1;
                return;
            }
        }
        self.backward_streak = 0;
        self.insert(now, slot, sequence, timestamp, payload);
    }

    /// Called once per 20 ms tick: the next frame in timestamp order (see the module doc).
    pub fn pull(&mut self, now_us: u64) -> Pulled {
        let now = i64::try_from(now_us).unwrap_or(i64::MAX);
        if !self.playing && !self.try_start(now) {
            return Pulled::Empty;
        }
        let Some(mut next) = self.next else {
            return Pulled::Empty;
        };
        let mut lead = self.lead(next, now);
        let realign = std::mem::take(&mut self.realign);
        let lag_allowed = if realign { ALIGN_US } else { SKIP_LAG_US };
        if lead < -lag_allowed {
            // Behind schedule: skip the overdue slots.
            let behind = (-lag_allowed).saturating_sub(lead);
            let frames = behind.saturating_add(FRAME_US - 1) / FRAME_US;
            let target = next.saturating_add(frames);
            let kept = self.slots.split_off(&target);
            let dropped = std::mem::replace(&mut self.slots, kept);
            self.stats.late_dropped += dropped.len() as u64;
            self.advance(frames, false);
            next = target;
            lead = lead.saturating_add(frames.saturating_mul(FRAME_US));
        }
        if self.slots.is_empty() {
            self.empty_pulls += 1;
            if i64::from(self.empty_pulls).saturating_mul(FRAME_US) >= self.max_us {
                // Long underrun: re-buffer and re-anchor on the next packet.
                self.playing = false;
                self.mean_r = None;
                self.mean_n = 0.0;
                self.empty_pulls = 0;
                return Pulled::Empty;
            }
        } else {
            self.empty_pulls = 0;
        }
        if lead > HOLD_LEAD_US || (realign && lead > ALIGN_US) {
            // Ahead of schedule (the target grew): hold one tick.
            self.stats.concealed += 1;
            return Pulled::Missing;
        }
        match self.slots.remove(&next) {
            Some(payload) => {
                self.advance(1, true);
                self.stats.played += 1;
                Pulled::Frame(payload)
            }
            None => {
                self.advance(1, false);
                self.stats.concealed += 1;
                Pulled::Missing
            }
        }
    }

    /// Gives a played frame's buffer back for a later packet's payload.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buf);
        }
    }

    /// Counters and the current target delay.
    pub fn stats(&self) -> JitterStats {
        self.stats.clone()
    }

    /// Forgets the current stream (if any) and takes `ssrc` as the new one; the next packet
    /// anchors slot 0. The jitter estimate is kept (same network path).
    fn restart(&mut self, ssrc: u32, sequence: u16, timestamp: u32) {
        if self.ssrc.is_some() {
            self.stats.resets += 1;
        }
        self.ssrc = Some(ssrc);
        self.newest = Some(Newest {
            slot: 0,
            timestamp,
            sequence,
        });
        self.slots.clear();
        self.next = None;
        self.playing = false;
        self.played_mask = 0;
        self.mean_r = None;
        self.mean_n = 0.0;
        self.prev_r = None;
        self.empty_pulls = 0;
        self.backward_streak = 0;
        self.early_streak = 0;
        self.realign = false;
    }

    /// Stores an accepted packet in `slot`.
    fn insert(&mut self, now: i64, slot: i64, sequence: u16, timestamp: u32, payload: &[u8]) {
        self.observe(now, slot);
        if self.slots.len() >= self.capacity {
            self.stats.late_dropped += 1;
            return;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(payload);
        if let Some(old) = self.slots.insert(slot, buf) {
            self.recycle(old);
        }
        if self.newest.is_none_or(|n| slot > n.slot) {
            self.newest = Some(Newest {
                slot,
                timestamp,
                sequence,
            });
        }
    }

    /// Feeds the arrival of a (non-duplicate) packet for `slot` into the schedule and the
    /// jitter estimate.
    fn observe(&mut self, now: i64, slot: i64) {
        let r = now.saturating_sub(slot.saturating_mul(FRAME_US));
        let rf = r as f64;
        let Some(mean) = self.mean_r else {
            self.mean_r = Some(rf);
            self.mean_n = 1.0;
            self.prev_r = Some(r);
            self.early_streak = 0;
            return;
        };
        if mean - rf > self.max_us as f64 {
            // Far earlier than the schedule: the sender's timestamps jumped forward.
            self.early_streak += 1;
            if self.early_streak >= EARLY_STREAK {
                self.mean_r = Some(rf);
                self.mean_n = 1.0;
                self.prev_r = Some(r);
                self.early_streak = 0;
            }
            return;
        }
        self.early_streak = 0;
        if let Some(prev) = self.prev_r {
            let d = r.saturating_sub(prev).saturating_abs().min(self.max_us) as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.prev_r = Some(r);
        self.mean_n = (self.mean_n + 1.0).min(MEAN_WINDOW);
        let dev = (rf - mean).clamp(-MEAN_CLAMP_US, MEAN_CLAMP_US);
        self.mean_r = Some(mean + dev / self.mean_n);
        self.update_target();
    }

    /// `target = clamp(20 ms + 3·J, min, max)`.
    fn update_target(&mut self) {
        let target = (FRAME_US as f64 + 3.0 * self.jitter_us) as i64;
        self.target_us = target.clamp(self.min_us, self.max_us);
        self.stats.target_delay_ms = u32::try_from(self.target_us / 1000).unwrap_or(u32::MAX);
    }

    /// How long before its scheduled playout time `slot` is at `now` (negative: overdue).
    fn lead(&self, slot: i64, now: i64) -> i64 {
        let mean = self.mean_r.unwrap_or(now as f64) as i64;
        mean.saturating_add(slot.saturating_mul(FRAME_US))
            .saturating_add(self.target_us)
            .saturating_sub(now)
    }

    /// Starts playout at the lowest buffered slot once it is due.
    fn try_start(&mut self, now: i64) -> bool {
        let Some((&lowest, _)) = self.slots.first_key_value() else {
            return false;
        };
        if self.mean_r.is_none() || self.lead(lowest, now) > ALIGN_US {
            return false;
        }
        match self.next {
            Some(next) => {
                let gap = lowest.saturating_sub(next).max(0);
                self.advance(gap, false);
            }
            None => {
                self.next = Some(lowest);
                self.played_mask = 0;
            }
        }
        self.playing = true;
        self.empty_pulls = 0;
        true
    }

    /// Moves `next` on by `frames`; `played` marks the first of them as played.
    fn advance(&mut self, frames: i64, played: bool) {
        let Some(next) = self.next else {
            return;
        };
        if frames <= 0 {
            return;
        }
        let shift = u32::try_from(frames).unwrap_or(u32::MAX);
        let mut mask = self.played_mask.checked_shl(shift).unwrap_or(0);
        if played {
            // Slot `next` is now `frames - 1` places behind the new `next - 1`.
            mask |= 1u64.checked_shl(shift - 1).unwrap_or(0);
        }
        self.played_mask = mask;
        self.next = Some(next.saturating_add(frames));
    }

    fn was_played(&self, slot: i64) -> bool {
        let Some(next) = self.next else {
            return false;
        };
        let back = next.saturating_sub(1).saturating_sub(slot);
        (0..64).contains(&back) && self.played_mask & (1u64 << back) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x1234_5678;
    const STEP: u32 = 160;

    /// Small deterministic PRNG (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// Uniform in -range..=range.
        fn spread(&mut self, range: i64) -> i64 {
            (self.next() % (2 * range as u64 + 1)) as i64 - range
        }
    }

    /// A packet to deliver: arrival time, sequence, timestamp, payload tag.
    #[derive(Clone, Copy)]
    struct Pkt {
        at_us: u64,
        ssrc: u32,
        seq: u16,
        ts: u32,
        tag: u32,
    }

    /// A steady stream of `count` packets from `seq0`/`ts0`, packet k sent at `t0 + 20k ms`.
    fn stream(count: u32, seq0: u16, ts0: u32, t0: u64) -> Vec<Pkt> {
        (0..count)
            .map(|k| Pkt {
                at_us: t0 + u64::from(k) * 20_000,
                ssrc: SSRC,
                seq: seq0.wrapping_add(k as u16),
                ts: ts0.wrapping_add(k * STEP),
                tag: k,
            })
            .collect()
    }

    #[derive(Debug, Default)]
    struct Run {
        /// Tags of the frames played, in order.
        played: Vec<u32>,
        /// Output per tick once playout started: Some(tag) or None for Missing.
        ticks: Vec<Option<u32>>,
        empties_after_start: usize,
    }

    /// Delivers `pkts` (sorted by arrival here) and pulls every 20 ms at `t = 10 ms + 20k`
    /// until `until_us`.
    fn run(jb: &mut JitterBuffer, mut pkts: Vec<Pkt>, until_us: u64) -> Run {
        pkts.sort_by_key(|p| p.at_us);
        let mut out = Run::default();
        let mut i = 0;
        let mut started = false;
        let mut t = 10_000;
        while t <= until_us {
            while i < pkts.len() && pkts[i].at_us <= t {
                let p = pkts[i];
                jb.push(p.at_us, p.ssrc, p.seq, p.ts, &p.tag.to_be_bytes());
                i += 1;
            }
            match jb.pull(t) {
                Pulled::Frame(bytes) => {
                    started = true;
                    let tag = u32::from_be_bytes(bytes.try_into().expect("test payload"));
                    out.played.push(tag);
                    out.ticks.push(Some(tag));
                }
                Pulled::Missing => {
                    started = true;
                    out.ticks.push(None);
                }
                Pulled::Empty => {
                    if started {
                        out.empties_after_start += 1;
                    }
                }
            }
            t += 20_000;
        }
        out
    }

    fn seq(n: u32) -> Vec<u32> {
        (0..n).collect()
    }

    /// Delay from each played packet's arrival to the pull that played it: packets arrive
    /// at `phase_us + 20k`, pulls are at `20k`; `floor_at` sets new floors on the way.
    fn delays(
        phase_us: u64,
        frames: u32,
        floor_at: &[(u32, u32)],
    ) -> (Vec<(u32, u64)>, JitterStats) {
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let mut out = Vec::new();
        let mut k = 0u32;
        for tick in 0..u64::from(frames) + 10 {
            let now = tick * 20_000;
            while k < frames && phase_us + u64::from(k) * 20_000 <= now {
                jb.push(
                    phase_us + u64::from(k) * 20_000,
                    SSRC,
                    k as u16,
                    k * STEP,
                    &k.to_be_bytes(),
                );
                k += 1;
            }
            if let Some(&(_, ms)) = floor_at.iter().find(|(at, _)| u64::from(*at) == tick) {
                jb.set_min_delay_ms(ms);
            }
            if let Pulled::Frame(p) = jb.pull(now) {
                let tag = u32::from_be_bytes(p.try_into().expect("test payload"));
                out.push((tag, now - (phase_us + u64::from(tag) * 20_000)));
                if tag + 1 == frames {
                    break;
                }
            }
        }
        (out, jb.stats())
    }

    #[test]
    fn playout_waits_the_target_to_the_nearest_tick_and_follows_a_new_floor() {
        // A 40 ms target plays each frame at the tick nearest 40 ms after it came.
        for (phase, want) in [(2_000, 38_000), (9_000, 31_000), (11_000, 49_000)] {
            let (d, s) = delays(phase, 100, &[]);
            assert_eq!(d.len(), 100);
            assert!(d.iter().all(|&(_, us)| us == want), "{phase}: {d:?}");
            assert_eq!((s.concealed, s.late_dropped), (0, 0), "{s:?}");
        }
        // A 20 ms floor from tick 50 on: one frame skipped, then 20 ms nearer; back to 40 ms
        // at tick 100: one tick held, then as before. Nothing else lost.
        let (d, s) = delays(2_000, 150, &[(50, 20), (100, 40)]);
        let at = |tag: u32| d.iter().find(|(t, _)| *t == tag).map(|(_, us)| *us);
        assert_eq!(at(40), Some(38_000));
        assert_eq!(at(60), Some(18_000));
        assert_eq!(at(120), Some(38_000));
        assert_eq!((s.late_dropped, s.concealed), (1, 1), "{s:?}");
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn in_order_stream_plays_every_frame() {
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, stream(200, 1000, 5000, 0), 200 * 20_000 - 100_000);
        let s = jb.stats();
        assert_eq!(s.concealed, 0, "{s:?}");
        assert_eq!(s.target_delay_ms, 40);
        assert_eq!(r.empties_after_start, 0);
        // Everything up to the end of the run is played, in order, with a short delay.
        let n = r.played.len() as u32;
        assert!(n >= 193, "played {n}");
        assert_eq!(r.played, seq(n));
        assert_eq!((s.late_dropped, s.duplicates, s.resets), (0, 0, 0));
    }

    #[test]
    fn reordered_pairs_play_in_order() {
        let mut pkts = stream(200, 0, 0, 0);
        // Every odd packet overtakes its even predecessor: both arrive together.
        for pair in pkts.chunks_mut(2) {
            if let [a, b] = pair {
                a.at_us = b.at_us;
                std::mem::swap(a, b);
            }
        }
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 200 * 20_000 - 200_000);
        let s = jb.stats();
        assert_eq!(s.late_dropped, 0, "{s:?}");
        let n = r.played.len() as u32;
        assert!(n >= 180, "played {n}");
        assert_eq!(r.played, seq(n));
        assert!(s.target_delay_ms > 40, "{s:?}");
    }

    #[test]
    fn a_lost_packet_gives_exactly_one_missing() {
        let mut pkts = stream(100, 0, 0, 0);
        pkts.remove(50);
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 90 * 20_000);
        let s = jb.stats();
        assert_eq!(s.concealed, 1, "{s:?}");
        let pos = r.ticks.iter().position(Option::is_none).expect("a Missing");
        assert_eq!(r.ticks[pos - 1], Some(49));
        assert_eq!(r.ticks[pos + 1], Some(51));
        let want: Vec<u32> = (0..r.played.len() as u32 + 1)
            .filter(|&k| k != 50)
            .collect();
        assert_eq!(r.played, want);
    }

    #[test]
    fn duplicates_are_counted_and_played_once() {
        let mut pkts = stream(100, 0, 0, 0);
        // Each of packets 10..20 arrives again 5 ms later; packet 30 again 300 ms later
        // (after it was played).
        let mut dups: Vec<Pkt> = pkts[10..20]
            .iter()
            .map(|p| Pkt {
                at_us: p.at_us + 5_000,
                ..*p
            })
            .collect();
        dups.push(Pkt {
            at_us: pkts[30].at_us + 300_000,
            ..pkts[30]
        });
        pkts.extend(dups);
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 90 * 20_000);
        let s = jb.stats();
        assert_eq!(s.duplicates, 11, "{s:?}");
        assert_eq!(s.late_dropped, 0);
        assert_eq!(s.concealed, 0);
        assert_eq!(r.played, seq(r.played.len() as u32));
    }

    #[test]
    fn a_packet_after_its_playout_time_is_dropped_as_late() {
        let mut pkts = stream(100, 0, 0, 0);
        pkts[40].at_us += 120_000;
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 90 * 20_000);
        let s = jb.stats();
        assert_eq!(s.late_dropped, 1, "{s:?}");
        // The late packet's jitter grows the target: the buffer may hold one more tick.
        assert!((1..=2).contains(&s.concealed), "{s:?}");
        assert!(!r.played.contains(&40));
        let pos = r.ticks.iter().position(Option::is_none).expect("a Missing");
        assert_eq!(r.ticks[pos - 1], Some(39));
        assert_eq!(r.ticks[pos + 1], Some(41));
    }

    #[test]
    fn ssrc_change_resets_and_continues_with_the_new_stream() {
        let mut pkts = stream(50, 100, 1000, 0);
        let mut second = stream(50, 40_000, 3_000_000_000, 50 * 20_000);
        for (k, p) in second.iter_mut().enumerate() {
            p.ssrc = 0xBEEF;
            p.tag = 1000 + k as u32;
        }
        pkts.extend(second);
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 95 * 20_000);
        let s = jb.stats();
        assert_eq!(s.resets, 1, "{s:?}");
        let old: Vec<u32> = r.played.iter().copied().filter(|&t| t < 1000).collect();
        let new: Vec<u32> = r.played.iter().copied().filter(|&t| t >= 1000).collect();
        assert!(old.len() >= 45 && old == seq(old.len() as u32), "{old:?}");
        assert!(new.len() >= 40, "{new:?}");
        assert_eq!(new, (1000..1000 + new.len() as u32).collect::<Vec<_>>());
        // The new stream starts after the old one: no interleaving.
        let first_new = r
            .played
            .iter()
            .position(|&t| t >= 1000)
            .expect("new stream");
        assert!(r.played[first_new..].iter().all(|&t| t >= 1000));
    }

    #[test]
    fn a_timestamp_jump_resets() {
        let mut pkts = stream(50, 100, 1000, 0);
        // Same SSRC, sequence continues, timestamps jump by 10 s.
        let mut second = stream(50, 150, 1000 + 50 * STEP + 80_000, 50 * 20_000);
        for (k, p) in second.iter_mut().enumerate() {
            p.tag = 1000 + k as u32;
        }
        pkts.extend(second);
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 95 * 20_000);
        let s = jb.stats();
        assert_eq!(s.resets, 1, "{s:?}");
        assert_eq!(s.late_dropped, 0);
        let new: Vec<u32> = r.played.iter().copied().filter(|&t| t >= 1000).collect();
        assert!(new.len() >= 40, "{new:?}");
        assert_eq!(new, (1000..1000 + new.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn backward_timestamps_with_newer_sequence_reset() {
        let mut pkts = stream(50, 100, 100_000, 0);
        // The sender restarts its timestamps 1 s back but keeps counting sequence numbers.
        let mut second = stream(50, 150, 100_000 - 8000, 50 * 20_000);
        for (k, p) in second.iter_mut().enumerate() {
            p.tag = 1000 + k as u32;
        }
        pkts.extend(second);
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 95 * 20_000);
        let s = jb.stats();
        assert_eq!(s.resets, 1, "{s:?}");
        let new: Vec<u32> = r.played.iter().copied().filter(|&t| t >= 1000).collect();
        assert!(new.len() >= 35, "{new:?}");
    }

    #[test]
    fn sequence_and_timestamp_wrap_is_seamless() {
        // Sequence wraps after 6 packets, timestamp after 10.
        let pkts = stream(100, 65_530, u32::MAX - 9 * STEP + 1, 0);
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 90 * 20_000);
        let s = jb.stats();
        assert_eq!((s.concealed, s.resets, s.late_dropped), (0, 0, 0), "{s:?}");
        assert_eq!(r.played, seq(r.played.len() as u32));
        assert!(r.played.len() >= 80);
    }

    #[test]
    fn adaptive_delay_grows_under_jitter_and_stays_at_min_without() {
        let mut rng = Rng(7);
        let mut pkts = stream(1500, 0, 0, 100_000);
        for p in &mut pkts {
            p.at_us = (p.at_us as i64 + rng.spread(30_000)) as u64;
        }
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 1490 * 20_000);
        let s = jb.stats();
        assert!(s.target_delay_ms >= 60, "{s:?}");
        assert!(s.target_delay_ms <= 120, "{s:?}");
        // After the first seconds of adapting, (almost) nothing is late.
        assert!(s.late_dropped <= 5, "{s:?}");
        assert!(s.concealed <= 10, "{s:?}");
        assert!(r.played.windows(2).all(|w| w[0] < w[1]));
        assert!(r.played.len() >= 1400, "{}", r.played.len());

        let mut calm = JitterBuffer::new(STEP, 40, 200);
        run(&mut calm, stream(500, 0, 0, 3_000), 490 * 20_000);
        assert_eq!(calm.stats().target_delay_ms, 40);
        assert_eq!(calm.stats().concealed, 0);
    }

    #[test]
    fn long_underrun_goes_back_to_empty_and_rebuffers() {
        let mut pkts = stream(100, 0, 0, 0);
        // 1 s of silence suppression: packets 50..100 are sent 1 s later, timestamps too.
        for p in &mut pkts[50..] {
            p.at_us += 1_000_000;
            p.ts += 50 * STEP;
        }
        let mut jb = JitterBuffer::new(STEP, 40, 200);
        let r = run(&mut jb, pkts, 100 * 20_000 + 1_100_000);
        let s = jb.stats();
        assert_eq!(s.resets, 0, "{s:?}");
        assert!(r.empties_after_start >= 30, "{}", r.empties_after_start);
        // Missing only for the underrun before giving up (max delay 200 ms → 9 ticks).
        let a = r.ticks.iter().position(|&t| t == Some(49)).expect("49");
        let b = r.ticks.iter().position(|&t| t == Some(50)).expect("50");
        assert_eq!(b - a - 1, 9, "{s:?}");
        assert_eq!(r.played, seq(100));
    }

    #[test]
    fn opus_step_works() {
        let mut jb = JitterBuffer::new(960, 40, 200);
        let pkts: Vec<Pkt> = (0..60u32)
            .map(|k| Pkt {
                at_us: u64::from(k) * 20_000,
                ssrc: SSRC,
                seq: k as u16,
                ts: k * 960,
                tag: k,
            })
            .collect();
        let r = run(&mut jb, pkts, 55 * 20_000);
        assert_eq!(jb.stats().concealed, 0);
        assert_eq!(r.played, seq(r.played.len() as u32));
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = Rng(0xDEAD_BEEF);
        for round in 0..20 {
            let step = match round % 4 {
                0 => 0,
                1 => 160,
                2 => u32::MAX,
                _ => (rng.next() % 2000) as u32,
            };
            let mut jb =
                JitterBuffer::new(step, (rng.next() % 300) as u32, (rng.next() % 300) as u32);
            let mut now = 0u64;
            for _ in 0..3000 {
                let x = rng.next();
                now = match x % 50 {
                    0 => rng.next(),
                    1 => u64::MAX,
                    2 => 0,
                    _ => now.wrapping_add(x % 40_000),
                };
                if x.is_multiple_of(3) {
                    let _ = jb.pull(now);
                } else {
                    let len = (rng.next() % 200) as usize;
                    let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    let ssrc = if x.is_multiple_of(97) {
                        rng.next() as u32
                    } else {
                        1
                    };
                    let seq = rng.next() as u16;
                    let ts = if x.is_multiple_of(5) {
                        rng.next() as u32
                    } else {
                        (seq as u32).wrapping_mul(160)
                    };
                    jb.push(now, ssrc, seq, ts, &payload);
                }
            }
            let s = jb.stats();
            assert!(s.played + s.concealed <= 3000);
        }
    }

    #[test]
    fn sender_clock_drift_is_absorbed() {
        // The sender's clock runs 0.1 % slow or fast over 60 s.
        for ppm in [-1000i64, 1000] {
            let mut pkts = stream(3000, 0, 0, 100_000);
            for p in &mut pkts {
                let t = p.at_us as i64;
                p.at_us = (t + t * ppm / 1_000_000) as u64;
            }
            let mut jb = JitterBuffer::new(STEP, 40, 200);
            let r = run(&mut jb, pkts, 2990 * 20_000);
            let s = jb.stats();
            // About one frame of correction per 20 s, no resets.
            assert!(s.concealed + s.late_dropped <= 5, "{ppm}: {s:?}");
            assert_eq!(s.resets, 0);
            assert!(r.played.windows(2).all(|w| w[0] < w[1]));
            assert!(r.played.len() >= 2900);
        }
    }
}
