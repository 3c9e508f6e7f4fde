//! DTMF reception: RFC 4733 telephone-events, in-band Goertzel detection, and a deduper that
//! merges both. Pure: driven by packets and PCM, told the time.

use std::collections::VecDeque;
use std::f64::consts::TAU;

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones in the audio.
    InBand,
}

/// One key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: char,
    pub source: DtmfSource,
    /// How long the key was held (RFC 4733: the event's duration; in-band: measured).
    pub duration_ms: u32,
}

const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// The DTMF character of an RFC 4733 event code (0-15), `None` for other events.
fn event_char(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// Events remembered as already reported (their timestamps), against late redundant packets.
const EVENT_MEMORY: usize = 16;

/// An event seen but not yet reported (no end packet yet).
#[derive(Debug, Clone, Copy)]
struct Pending {
    timestamp: u32,
    digit: char,
    duration: u16,
}

/// RFC 4733 receiver: one digit per event, an event being keyed by its RTP timestamp.
///
/// A digit is reported once, when its event ends (the first packet with the E bit, carrying
/// the final duration), however many redundant start, update and end packets follow. If every
/// end packet of an event is lost, the event is reported when the next event starts, or by
/// [`Rfc4733Receiver::flush`]. A new event with the same digit but a new timestamp is a new
/// press. Non-DTMF events (codes above 15) are ignored.
#[derive(Debug, Clone)]
pub struct Rfc4733Receiver {
    clock_rate: u32,
    pending: Option<Pending>,
    /// Timestamps of events already reported, newest last.
    done: VecDeque<u32>,
}

impl Rfc4733Receiver {
    /// `clock_rate`: the telephone-event RTP clock (8000 usually; 48000 alongside Opus).
    pub fn new(clock_rate: u32) -> Self {
        Rfc4733Receiver {
            clock_rate: clock_rate.max(1),
            pending: None,
            done: VecDeque::with_capacity(EVENT_MEMORY),
        }
    }

    /// One telephone-event packet (its RTP timestamp and payload). Malformed payloads are
    /// ignored.
    pub fn on_event(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<Digit> {
        let event = rtp::TelephoneEvent::parse(payload).ok()?;
        let digit = event_char(event.event)?;
        if self.done.contains(&rtp_timestamp) {
            return None;
        }
        match self.pending {
            Some(p) if p.timestamp == rtp_timestamp => {
                let duration = p.duration.max(event.duration);
                if event.end {
                    self.pending = None;
                    return Some(self.finish(p.timestamp, p.digit, duration));
                }
                self.pending = Some(Pending { duration, ..p });
                None
            }
            previous => {
                // A new event; a previous one that never ended is reported now.
                let earlier = previous.map(|p| self.finish(p.timestamp, p.digit, p.duration));
                let now = Pending {
                    timestamp: rtp_timestamp,
                    digit,
                    duration: event.duration,
                };
                if event.end && earlier.is_none() {
                    self.pending = None;
                    return Some(self.finish(now.timestamp, now.digit, now.duration));
                }
                // (An end packet arriving right after an unended event stays pending; its
                // redundant end packets report it.)
                self.pending = Some(now);
                earlier
            }
        }
    }

    /// Reports an event still waiting for its end packet (e.g. when event packets stopped
    /// coming, or the call ends).
    pub fn flush(&mut self) -> Option<Digit> {
        let p = self.pending.take()?;
        Some(self.finish(p.timestamp, p.digit, p.duration))
    }

    fn finish(&mut self, timestamp: u32, digit: char, duration: u16) -> Digit {
        if self.done.len() >= EVENT_MEMORY {
            self.done.pop_front();
        }
        self.done.push_back(timestamp);
        let ms = u64::from(duration) * 1000 / u64::from(self.clock_rate);
        Digit {
            digit,
            source: DtmfSource::Rfc4733,
            duration_ms: u32::try_from(ms).unwrap_or(u32::MAX),
        }
    }
}

/// One analysis step, seconds: a window is [`BLOCKS`] of them.
const HOP_S: f64 = 0.005;
/// Hops in a window (5 × 5 ms = 25 ms: 200 samples at 8 kHz, ~40 Hz bins). Each hop's block
/// is filtered once and its result reused by the five windows that contain it.
const BLOCKS: usize = 5;
/// Row and column filters, computed side by side (eight lanes: SIMD-friendly).
const FILTERS: usize = 8;
/// Consecutive windows with the same digit before it counts as a press: windows that only
/// partly cover a tone still see it, so a tone of T ms shows in about T / 5 windows; six
/// take ~30-40 ms of tone and reject 20 ms blips.
const MIN_HITS: u32 = 6;
/// Consecutive windows without it that end a press (a pause of ~20 ms; a 40 ms pause gives
/// about six such windows).
const RELEASE_MISSES: u32 = 4;
/// During a press, a window whose tone power is this far below the press's peak counts as
/// a pause (it only overlaps the tone's edge).
const RELEASE_DROP_DB: f64 = 10.0;
/// Quietest tone accepted, dBFS amplitude per tone.
const MIN_LEVEL_DB: f64 = -32.0;
/// The strongest row (column) must beat every other row (column) by this much.
const PEAK_MARGIN_DB: f64 = 8.0;
/// Column stronger than row by at most this (normal twist).
const NORMAL_TWIST_DB: f64 = 8.0;
/// Row stronger than column by at most this (reverse twist).
const REVERSE_TWIST_DB: f64 = 4.0;
/// Share of the window's energy the two tones must hold.
const MIN_TONE_SHARE: f64 = 0.5;
/// Second harmonics must stay this far below the fundamentals (speech has harmonics).
const HARMONIC_MARGIN_DB: f64 = 10.0;
/// Zero crossings per second a window may show and still hold a key's tone pair (a pair
/// crosses zero about as often as its stronger tone: 1,394-3,266 times a second, more with
/// noise on top). Outside, the window is rejected before any filter: voiced speech, hum and
/// low tones fall below; hiss above.
const MIN_CROSSINGS_HZ: f64 = 1_000.0;
const MAX_CROSSINGS_HZ: f64 = 4_600.0;

fn db_ratio(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

/// Goertzel power |X(f)|² at `omega` of the samples of `parts`, in order (a sine of
/// amplitude A over N samples gives (A·N/2)²).
fn goertzel_power<'a>(parts: impl Iterator<Item = &'a [f32]>, omega: f64) -> f32 {
    let coeff = (2.0 * omega.cos()) as f32;
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for part in parts {
        for &v in part {
            let s0 = v + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
}

/// What a window needs of one hop of audio.
#[derive(Debug, Clone, Copy, Default)]
struct Block {
    energy: f32,
    crossings: u32,
    /// Each filter's Goertzel output over the block (re, im); computed only when a window
    /// holding the block passes the cheap gates.
    tones: Option<[[f32; 2]; FILTERS]>,
}

/// In-band DTMF detector on mono PCM at any sample rate (Goertzel at that rate).
///
/// A 25 ms window slides by 5 ms; a window shows a digit when its strongest row and column
/// tones are each above the level threshold and 8 dB above the other rows/columns, the twist
/// is within limits (column up to 8 dB stronger, row up to 4 dB stronger), the two tones hold
/// at least half the window's energy, and their second harmonics are 10 dB weaker (speech).
/// Six consecutive windows (30-40 ms of tone; 20 ms blips are rejected) make a press; four
/// windows without it, or with its tones 10 dB below the press's peak (a pause of ~20 ms or
/// more; shorter breaks are bridged), end it, and the digit is reported then, once, with its
/// measured duration. Latency: the digit comes ~20-25 ms after the tone stops.
///
/// Cost: most audio holds no key, so a window is first checked by its energy and its zero
/// crossings (both kept per 5 ms block); only a window that passes runs the eight filters,
/// once per block (a block's result is rotated into each of the five windows that hold it).
#[derive(Debug, Clone)]
pub struct InBandDetector {
    hop: usize,
    hop_ms: f64,
    /// `2·cos ω`, `cos ω` and `sin ω` of the four rows then the four columns.
    coeffs: [f32; FILTERS],
    cos: [f32; FILTERS],
    sin: [f32; FILTERS],
    /// e^(−iω·k·hop): brings block k of a window (oldest 0) to the window's time reference.
    rotations: [[[f32; 2]; FILTERS]; BLOCKS],
    /// ω of each row's and column's second harmonic.
    row_harmonics: [f64; 4],
    col_harmonics: [f64; 4],
    /// The last [`BLOCKS`] hops of audio (scaled to ±1), block `i` at `i·hop..`: a ring.
    history: Vec<f32>,
    blocks: [Block; BLOCKS],
    /// Ring slot being filled, and how many of its samples are in.
    slot: usize,
    filled: usize,
    /// Blocks completed, up to [`BLOCKS`] (a window needs them all).
    complete: usize,
    /// Whether the sample before the current block was negative (crossings span blocks).
    last_negative: bool,
    /// Gates: least window energy that can hold two tones at the minimum level, least tone
    /// power, crossings range.
    min_energy: f32,
    min_power: f32,
    min_crossings: u32,
    max_crossings: u32,
    /// Digit of the current run of identical windows, its length and peak tone power.
    run: Option<(char, u32, f32)>,
    /// A confirmed press: its digit, windows seen and peak tone power.
    active: Option<(char, u32, f32)>,
    misses: u32,
}

impl InBandDetector {
    /// A detector for PCM at `sample_rate` Hz (8000 or more for the column tones to exist).
    pub fn new(sample_rate: u32) -> Self {
        let rate = f64::from(sample_rate.max(1));
        let hop = ((rate * HOP_S).round() as usize).max(2);
        let n = (hop * BLOCKS) as f64;
        let mut omegas = [0f64; FILTERS];
        for (i, f) in ROWS.iter().chain(COLS.iter()).enumerate() {
            omegas[i] = TAU * f / rate;
        }
        let mut rotations = [[[0f32; 2]; FILTERS]; BLOCKS];
        for (k, rot) in rotations.iter_mut().enumerate() {
            for (f, r) in rot.iter_mut().enumerate() {
                let phase = -omegas[f] * (k * hop) as f64;
                *r = [phase.cos() as f32, phase.sin() as f32];
            }
        }
        // Power of a full-scale sine over the window: (N/2)².
        let full = (n / 2.0) * (n / 2.0);
        let min_power = full * db_ratio(MIN_LEVEL_DB);
        let window_s = n / rate;
        InBandDetector {
            hop,
            hop_ms: hop as f64 * 1000.0 / rate,
            coeffs: omegas.map(|w| (2.0 * w.cos()) as f32),
            cos: omegas.map(|w| w.cos() as f32),
            sin: omegas.map(|w| w.sin() as f32),
            rotations,
            row_harmonics: ROWS.map(|f| TAU * 2.0 * f / rate),
            col_harmonics: COLS.map(|f| TAU * 2.0 * f / rate),
            history: vec![0.0; hop * BLOCKS],
            blocks: [Block::default(); BLOCKS],
            slot: 0,
            filled: 0,
            complete: 0,
            last_negative: false,
            // Two tones at the minimum level hold at least this energy (a sine of power P
            // holds P·2/N).
            min_energy: (2.0 * min_power * 2.0 / n) as f32,
            min_power: min_power as f32,
            min_crossings: (MIN_CROSSINGS_HZ * window_s).floor() as u32,
            max_crossings: (MAX_CROSSINGS_HZ * window_s).ceil() as u32,
            run: None,
            active: None,
            misses: 0,
        }
    }

    /// Feeds PCM (any length); returns the presses that ended in it.
    pub fn push(&mut self, mut pcm: &[i16]) -> Vec<Digit> {
        let mut out = Vec::new();
        while !pcm.is_empty() {
            let start = self.slot * self.hop + self.filled;
            let take = (self.hop - self.filled).min(pcm.len());
            let (now, rest) = pcm.split_at(take);
            for (dst, &s) in self.history[start..start + take].iter_mut().zip(now) {
                *dst = f32::from(s) * (1.0 / 32768.0);
            }
            pcm = rest;
            self.filled += take;
            if self.filled == self.hop {
                self.end_block();
                if self.complete == BLOCKS {
                    let seen = self.classify();
                    if let Some(d) = self.step(seen) {
                        out.push(d);
                    }
                }
            }
        }
        out
    }

    /// Closes the block being filled: its energy and crossings; the ring moves on.
    fn end_block(&mut self) {
        let at = self.slot * self.hop;
        let x = &self.history[at..at + self.hop];
        let energy: f32 = x.iter().map(|v| v * v).sum();
        let mut crossings = 0u32;
        let mut negative = self.last_negative;
        for &v in x {
            let now = v < 0.0;
            crossings += u32::from(now != negative);
            negative = now;
        }
        self.last_negative = negative;
        self.blocks[self.slot] = Block {
            energy,
            crossings,
            tones: None,
        };
        self.slot = (self.slot + 1) % BLOCKS;
        self.filled = 0;
        self.complete = (self.complete + 1).min(BLOCKS);
    }

    /// Samples of the window in time order (the oldest block is the next slot to fill).
    fn window(&self) -> impl Iterator<Item = &[f32]> + '_ {
        (0..BLOCKS).map(move |k| {
            let at = ((self.slot + k) % BLOCKS) * self.hop;
            &self.history[at..at + self.hop]
        })
    }

    /// The eight filters over one block: each output `s1 − e^(−iω)·s2`.
    fn filter_block(&self, x: &[f32]) -> [[f32; 2]; FILTERS] {
        let (mut s1, mut s2) = ([0f32; FILTERS], [0f32; FILTERS]);
        for &v in x {
            for f in 0..FILTERS {
                let s0 = v + self.coeffs[f] * s1[f] - s2[f];
                s2[f] = s1[f];
                s1[f] = s0;
            }
        }
        let mut out = [[0f32; 2]; FILTERS];
        for f in 0..FILTERS {
            out[f] = [s1[f] - self.cos[f] * s2[f], self.sin[f] * s2[f]];
        }
        out
    }

    /// Reports a press still held (e.g. when the audio stops).
    pub fn flush(&mut self) -> Option<Digit> {
        self.run = None;
        self.misses = 0;
        let (digit, hits, _) = self.active.take()?;
        Some(self.digit(digit, hits))
    }

    fn digit(&self, digit: char, hits: u32) -> Digit {
        // Windows from the tone's onset to where its power fell 10 dB: about one per hop.
        let ms = f64::from(hits) * self.hop_ms;
        Digit {
            digit,
            source: DtmfSource::InBand,
            duration_ms: ms.round() as u32,
        }
    }

    /// Advances the press state machine by one window.
    fn step(&mut self, seen: Option<(char, f32)>) -> Option<Digit> {
        if let Some((digit, hits, peak)) = self.active {
            match seen {
                Some((d, power))
                    if d == digit
                        && f64::from(power) * db_ratio(RELEASE_DROP_DB) >= f64::from(peak) =>
                {
                    self.active = Some((digit, hits.saturating_add(1), peak.max(power)));
                    self.misses = 0;
                    return None;
                }
                _ => {}
            }
            self.misses += 1;
            if self.misses < RELEASE_MISSES {
                return None;
            }
            self.active = None;
            self.misses = 0;
            self.run = None;
            return Some(self.digit(digit, hits));
        }
        self.run = match (seen, self.run) {
            (Some((d, p)), Some((r, n, peak))) if d == r => {
                Some((d, n.saturating_add(1), peak.max(p)))
            }
            (Some((d, p)), _) => Some((d, 1, p)),
            (None, _) => None,
        };
        if let Some((d, n, peak)) = self.run {
            if n >= MIN_HITS {
                self.active = Some((d, n, peak));
                self.misses = 0;
                self.run = None;
            }
        }
        None
    }

    /// The digit the current window shows, if any, and the power of its two tones.
    fn classify(&mut self) -> Option<(char, f32)> {
        // Cheap gates first (most audio is no DTMF): too quiet to hold two tones at the
        // minimum level, or crossing zero too seldom or too often for a key's tones.
        let energy: f32 = self.blocks.iter().map(|b| b.energy).sum();
        if energy <= 0.0 || energy < self.min_energy {
            return None;
        }
        let crossings: u32 = self.blocks.iter().map(|b| b.crossings).sum();
        if crossings < self.min_crossings || crossings > self.max_crossings {
            return None;
        }
        // Each block's filters once; the window's output is the blocks' outputs brought to
        // one time reference and summed.
        let mut sum = [[0f32; 2]; FILTERS];
        for k in 0..BLOCKS {
            let slot = (self.slot + k) % BLOCKS;
            let tones = match self.blocks[slot].tones {
                Some(t) => t,
                None => {
                    let at = slot * self.hop;
                    let t = self.filter_block(&self.history[at..at + self.hop]);
                    self.blocks[slot].tones = Some(t);
                    t
                }
            };
            for f in 0..FILTERS {
                let [a, b] = tones[f];
                let [c, d] = self.rotations[k][f];
                sum[f][0] += a * c - b * d;
                sum[f][1] += a * d + b * c;
            }
        }
        let power = sum.map(|[re, im]| re * re + im * im);
        let rows = [power[0], power[1], power[2], power[3]];
        let cols = [power[4], power[5], power[6], power[7]];
        let (ri, rp) = strongest(&rows);
        let (ci, cp) = strongest(&cols);
        if rp < self.min_power || cp < self.min_power {
            return None;
        }
        let ratio = |db: f64| db_ratio(db) as f32;
        if cp > rp * ratio(NORMAL_TWIST_DB) || rp > cp * ratio(REVERSE_TWIST_DB) {
            return None;
        }
        let margin = ratio(PEAK_MARGIN_DB);
        let clear = |powers: &[f32; 4], best: usize, p: f32| {
            powers
                .iter()
                .enumerate()
                .all(|(i, &q)| i == best || q * margin <= p)
        };
        if !clear(&rows, ri, rp) || !clear(&cols, ci, cp) {
            return None;
        }
        // A sine of power P holds energy P·2/N of the window.
        let n = (self.hop * BLOCKS) as f32;
        if (rp + cp) * 2.0 / n < MIN_TONE_SHARE as f32 * energy {
            return None;
        }
        let harmonics = goertzel_power(self.window(), self.row_harmonics[ri])
            + goertzel_power(self.window(), self.col_harmonics[ci]);
        if harmonics * ratio(HARMONIC_MARGIN_DB) > rp + cp {
            return None;
        }
        Some((KEYS[ri][ci], rp + cp))
    }
}

/// Index and value of the largest of four powers.
fn strongest(p: &[f32; 4]) -> (usize, f32) {
    let mut best = (0, p[0]);
    for (i, &v) in p.iter().enumerate().skip(1) {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

/// Default window within which the other source's report of the same digit is a duplicate.
const DEDUP_WINDOW_MS: u64 = 200;
/// Accepted digits remembered for matching.
const DEDUP_MEMORY: usize = 8;

/// Merges both sources: a digit reported by one source suppresses the same digit from the
/// other source offered within 200 ms (carriers often send both). Each accepted digit
/// suppresses at most one report from the other source; digits from the same source always
/// pass (each source deduplicates itself).
#[derive(Debug, Clone)]
pub struct DtmfDeduper {
    window_ms: u64,
    /// Accepted digits not yet matched: (time, digit, source).
    recent: VecDeque<(u64, char, DtmfSource)>,
}

impl Default for DtmfDeduper {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDeduper {
    /// A deduper with the 200 ms window.
    pub fn new() -> Self {
        Self::with_window_ms(DEDUP_WINDOW_MS)
    }

    /// A deduper with another window (e.g. widened by the jitter buffer's delay, since
    /// in-band digits come out of the buffer later than RFC 4733 events).
    pub fn with_window_ms(window_ms: u64) -> Self {
        DtmfDeduper {
            window_ms,
            recent: VecDeque::with_capacity(DEDUP_MEMORY),
        }
    }

    /// A digit from either source at `now_ms`: `Some` if it is new, `None` if it duplicates
    /// the other source's report.
    pub fn offer(&mut self, now_ms: u64, d: Digit) -> Option<Digit> {
        let window = self.window_ms;
        self.recent
            .retain(|&(t, _, _)| now_ms < t || now_ms - t <= window);
        let matched = self.recent.iter().position(|&(t, c, s)| {
            c == d.digit && s != d.source && (now_ms < t || now_ms - t <= window)
        });
        if let Some(i) = matched {
            self.recent.remove(i);
            return None;
        }
        if self.recent.len() >= DEDUP_MEMORY {
            self.recent.pop_front();
        }
        self.recent.push_back((now_ms, d.digit, d.source));
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::{ulaw_decode, ulaw_encode};
    use crate::tone::ToneGenerator;

    const ALL_KEYS: &str = "123A456B789C*0#D";

    /// Small deterministic PRNG (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// Uniform in -1..1.
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    fn freqs(key: char) -> [f32; 2] {
        for (r, row) in KEYS.iter().enumerate() {
            for (c, &k) in row.iter().enumerate() {
                if k == key {
                    return [ROWS[r] as f32, COLS[c] as f32];
                }
            }
        }
        panic!("not a key: {key}");
    }

    fn tone(rate: u32, f: &[f32], amplitude: i16, ms: u32) -> Vec<i16> {
        let mut out = vec![0; (rate * ms / 1000) as usize];
        ToneGenerator::new(rate, f, amplitude).fill(&mut out);
        out
    }

    fn silence(rate: u32, ms: u32) -> Vec<i16> {
        vec![0; (rate * ms / 1000) as usize]
    }

    /// `keys` as tone/pause pairs.
    fn dial(rate: u32, keys: &str, on_ms: u32, off_ms: u32) -> Vec<i16> {
        let mut pcm = silence(rate, 50);
        for key in keys.chars() {
            pcm.extend(tone(rate, &freqs(key), 16_000, on_ms));
            pcm.extend(silence(rate, off_ms));
        }
        pcm
    }

    /// Adds white noise of `db` dBFS RMS.
    fn add_noise(pcm: &mut [i16], db: f64, seed: u64) {
        let mut rng = Rng(seed);
        // Uniform in ±a has RMS a/√3.
        let a = 32768.0 * 10f64.powf(db / 20.0) * 3f64.sqrt();
        for s in pcm.iter_mut() {
            let v = f64::from(*s) + a * rng.unit();
            *s = v.clamp(-32768.0, 32767.0) as i16;
        }
    }

    fn ulaw(pcm: &[i16]) -> Vec<i16> {
        pcm.iter().map(|&s| ulaw_decode(ulaw_encode(s))).collect()
    }

    /// Runs a detector over `pcm` in 20 ms frames.
    fn detect(rate: u32, pcm: &[i16]) -> Vec<Digit> {
        let mut det = InBandDetector::new(rate);
        let mut out = Vec::new();
        for frame in pcm.chunks((rate / 50) as usize) {
            out.extend(det.push(frame));
        }
        out
    }

    fn chars(d: &[Digit]) -> String {
        d.iter().map(|d| d.digit).collect()
    }

    #[test]
    fn all_sixteen_keys_once_each_in_order() {
        let pcm = dial(8000, ALL_KEYS, 100, 100);
        let got = detect(8000, &pcm);
        assert_eq!(chars(&got), ALL_KEYS);
        for d in &got {
            assert_eq!(d.source, DtmfSource::InBand);
            assert!((80..=120).contains(&d.duration_ms), "{d:?}");
        }
    }

    #[test]
    fn all_keys_through_ulaw_with_noise() {
        for seed in 1..=3 {
            let mut pcm = dial(8000, ALL_KEYS, 100, 100);
            add_noise(&mut pcm, -20.0, seed);
            let got = detect(8000, &ulaw(&pcm));
            assert_eq!(chars(&got), ALL_KEYS, "seed {seed}");
        }
    }

    #[test]
    fn keys_at_other_rates_and_chunkings() {
        for rate in [16_000, 48_000] {
            let pcm = dial(rate, "159#D", 100, 100);
            assert_eq!(chars(&detect(rate, &pcm)), "159#D", "{rate}");
        }
        // Odd chunk sizes give the same result.
        let pcm = dial(8000, "2580", 100, 100);
        let mut det = InBandDetector::new(8000);
        let mut got = Vec::new();
        for chunk in pcm.chunks(37) {
            got.extend(det.push(chunk));
        }
        assert_eq!(chars(&got), "2580");
    }

    #[test]
    fn minimum_duration_and_pause() {
        // 40 ms tones with 40 ms pauses are digits.
        let mut pcm = dial(8000, "1234", 40, 40);
        pcm.extend(silence(8000, 100));
        assert_eq!(chars(&detect(8000, &pcm)), "1234");
        // The same key pressed again after a 40 ms pause is a new press, also through µ-law
        // with noise.
        for seed in 1..=5 {
            let mut pcm = dial(8000, "5555", 40, 40);
            pcm.extend(silence(8000, 100));
            add_noise(&mut pcm, -20.0, seed);
            assert_eq!(chars(&detect(8000, &ulaw(&pcm))), "5555", "seed {seed}");
        }
        // A 20 ms blip is not.
        let mut blip = silence(8000, 100);
        blip.extend(tone(8000, &freqs('5'), 16_000, 20));
        blip.extend(silence(8000, 200));
        assert!(detect(8000, &blip).is_empty());
        // One long press held for a second is one digit.
        let long = dial(8000, "7", 1000, 100);
        let got = detect(8000, &long);
        assert_eq!(chars(&got), "7");
        assert!((980..=1020).contains(&got[0].duration_ms), "{got:?}");
        // A short dropout inside a press does not split it.
        let mut split = silence(8000, 50);
        let mut held = tone(8000, &freqs('8'), 16_000, 205);
        held[800..840].fill(0);
        split.extend(held);
        split.extend(silence(8000, 100));
        assert_eq!(chars(&detect(8000, &split)), "8");
        // Nor does a 10 ms break with a phase jump.
        let mut jump = silence(8000, 50);
        jump.extend(tone(8000, &freqs('8'), 16_000, 100));
        jump.extend(silence(8000, 10));
        jump.extend(tone(8000, &freqs('8'), 16_000, 100));
        jump.extend(silence(8000, 100));
        assert_eq!(chars(&detect(8000, &jump)), "8");
    }

    #[test]
    fn twist_limits() {
        let key = freqs('5');
        let twisted = |row_amp: f64, col_amp: f64| {
            let n = 800;
            let mut pcm = silence(8000, 50);
            let mut row = vec![0i16; n];
            let mut col = vec![0i16; n];
            ToneGenerator::new(8000, &key[..1], row_amp as i16).fill(&mut row);
            ToneGenerator::new(8000, &key[1..], col_amp as i16).fill(&mut col);
            pcm.extend(row.iter().zip(&col).map(|(a, b)| a.saturating_add(*b)));
            pcm.extend(silence(8000, 100));
            chars(&detect(8000, &pcm))
        };
        let db = |x: f64| 10f64.powf(x / 20.0);
        assert_eq!(twisted(8000.0, 8000.0 * db(6.0)), "5");
        assert_eq!(twisted(8000.0 * db(3.0), 8000.0), "5");
        assert_eq!(twisted(4000.0, 4000.0 * db(10.0)), "");
        assert_eq!(twisted(8000.0 * db(6.0), 8000.0), "");
    }

    #[test]
    fn no_digits_from_single_tones_speech_or_silence() {
        let mut pcm = tone(8000, &[1000.0], 16_000, 1000);
        pcm.extend(tone(8000, &[697.0], 16_000, 500));
        pcm.extend(tone(8000, &[1336.0], 16_000, 500));
        pcm.extend(silence(8000, 1000));
        let mut noise = silence(8000, 1000);
        add_noise(&mut noise, -20.0, 9);
        pcm.extend(noise);
        assert!(detect(8000, &pcm).is_empty());

        // Speech-like: harmonics of a 150 Hz (and a gliding) fundamental, 1/k amplitudes.
        for f0 in [150.0f32, 120.0, 200.0, 241.0] {
            let harmonics: Vec<f32> = (1..=20)
                .map(|k| f0 * k as f32)
                .filter(|&f| f < 3900.0)
                .collect();
            let mut speech = vec![0f64; 8000];
            for (k, &f) in harmonics.iter().enumerate() {
                let mut part = vec![0i16; 8000];
                ToneGenerator::new(8000, &[f], (12_000.0 / (k + 1) as f64) as i16).fill(&mut part);
                for (s, p) in speech.iter_mut().zip(&part) {
                    *s += f64::from(*p);
                }
            }
            let speech: Vec<i16> = speech
                .iter()
                .map(|&v| v.clamp(-32768.0, 32767.0) as i16)
                .collect();
            assert!(detect(8000, &speech).is_empty(), "f0 {f0}");
        }
    }

    #[test]
    fn quiet_tones_are_ignored() {
        let pcm = dial(8000, "5", 200, 100);
        let quiet: Vec<i16> = pcm.iter().map(|&s| s / 100).collect(); // -40 dB
        assert!(detect(8000, &quiet).is_empty());
    }

    /// A quiet key at each twist limit, under noise and through µ-law: the cheap gates
    /// (energy, zero crossings) must pass every window a key's tones fill.
    #[test]
    fn gates_keep_keys_at_the_level_and_twist_limits() {
        let db = |x: f64| 10f64.powf(x / 20.0);
        for key in ALL_KEYS.chars() {
            let [row_f, col_f] = freqs(key);
            // (row, column) amplitudes: -28 dBFS each, column +7 dB, row +3.5 dB.
            let quiet = 32768.0 * db(-28.0);
            for (row_amp, col_amp, noise_db) in [
                (quiet, quiet, -50.0),
                (quiet, quiet * db(7.0), -50.0),
                (quiet * db(3.5), quiet, -50.0),
                (8000.0, 8000.0 * db(7.0), -24.0),
                (8000.0 * db(3.5), 8000.0, -24.0),
            ] {
                let n = 960;
                let mut row = vec![0i16; n];
                let mut col = vec![0i16; n];
                ToneGenerator::new(8000, &[row_f], row_amp as i16).fill(&mut row);
                ToneGenerator::new(8000, &[col_f], col_amp as i16).fill(&mut col);
                let mut pcm = silence(8000, 50);
                pcm.extend(row.iter().zip(&col).map(|(a, b)| a.saturating_add(*b)));
                pcm.extend(silence(8000, 100));
                add_noise(&mut pcm, noise_db, u64::from(key as u32));
                let got = chars(&detect(8000, &ulaw(&pcm)));
                assert_eq!(got, key.to_string(), "{key} {row_amp} {col_amp} {noise_db}");
            }
        }
    }

    /// Speech-like audio made by a formant synthesiser: voiced (a jittered pulse train at
    /// 80-300 Hz through three formant resonators), unvoiced (filtered hiss), and both mixed,
    /// at -35 to -6 dBFS, each segment with new formants.
    fn speech_like(rng: &mut Rng, samples: usize) -> Vec<i16> {
        let rate = 8000.0;
        let f0 = 80.0 + 220.0 * (rng.unit() + 1.0) / 2.0;
        let formants = [
            (300.0 + 600.0 * (rng.unit() + 1.0) / 2.0, 80.0),
            (900.0 + 1600.0 * (rng.unit() + 1.0) / 2.0, 120.0),
            (2000.0 + 1500.0 * (rng.unit() + 1.0) / 2.0, 200.0),
        ];
        let kind = rng.next() % 3; // 0 voiced, 1 unvoiced, 2 both
        let mut y = vec![0f64; samples];
        let mut next_pulse = 0.0f64;
        for (i, out) in y.iter_mut().enumerate() {
            let mut x = 0.0;
            if kind != 1 && i as f64 >= next_pulse {
                x += 1.0;
                // 1-3 % period jitter, a slow glide.
                let glide = 1.0 + 0.1 * (i as f64 / 2000.0).sin();
                next_pulse += rate / (f0 * glide) * (1.0 + 0.02 * rng.unit());
            }
            if kind != 0 {
                x += 0.3 * rng.unit();
            }
            *out = x;
        }
        for (f, bw) in formants {
            let r = (-std::f64::consts::PI * bw / rate).exp();
            let a1 = 2.0 * r * (TAU * f / rate).cos();
            let a2 = -r * r;
            let (mut y1, mut y2) = (0.0, 0.0);
            for v in y.iter_mut() {
                let y0 = *v + a1 * y1 + a2 * y2;
                y2 = y1;
                y1 = y0;
                *v = y0;
            }
        }
        let rms = (y.iter().map(|v| v * v).sum::<f64>() / samples as f64).sqrt();
        let level = 32768.0 * 10f64.powf((-35.0 + 29.0 * (rng.unit() + 1.0) / 2.0) / 20.0);
        let gain = if rms > 0.0 { level / rms } else { 0.0 };
        y.iter()
            .map(|v| (v * gain).clamp(-32768.0, 32767.0) as i16)
            .collect()
    }

    #[test]
    fn speech_like_noise_gives_no_false_digit() {
        // 400 segments of 125 ms: 400 × 21 = 8,400 windows of 25 ms (every 5 ms), each segment
        // also through µ-law, so 16,800 windows in all.
        let mut rng = Rng(0x5eed_0f5b_eec4);
        let mut windows = 0;
        for segment in 0..400 {
            let pcm = speech_like(&mut rng, 1000);
            windows += (pcm.len() - 200) / 40 + 1;
            for audio in [pcm.clone(), ulaw(&pcm)] {
                let mut det = InBandDetector::new(8000);
                let mut got = Vec::new();
                for frame in audio.chunks(160) {
                    got.extend(det.push(frame));
                }
                got.extend(det.flush());
                assert!(got.is_empty(), "segment {segment}: {got:?}");
            }
        }
        assert!(windows >= 1000, "{windows}");
    }

    #[test]
    fn garbage_pcm_never_panics() {
        let mut rng = Rng(42);
        for rate in [0, 1, 7, 8000, 44_100] {
            let mut det = InBandDetector::new(rate);
            for _ in 0..200 {
                let n = (rng.next() % 500) as usize;
                let pcm: Vec<i16> = (0..n).map(|_| rng.next() as i16).collect();
                let _ = det.push(&pcm);
            }
            let _ = det.flush();
        }
    }

    fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
        rtp::TelephoneEvent {
            event: code,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    /// Packets of one event: 3 redundant starts, growing updates, 3 ends.
    fn press(code: u8, total: u16) -> Vec<[u8; 4]> {
        let mut p = vec![event(code, false, 0); 3];
        let mut d = 160;
        while d < total {
            p.push(event(code, false, d));
            d += 160;
        }
        p.extend([event(code, true, total); 3]);
        p
    }

    #[test]
    fn rfc4733_one_digit_per_event() {
        let mut rx = Rfc4733Receiver::new(8000);
        let mut got = Vec::new();
        for pkt in press(5, 800) {
            got.extend(rx.on_event(1000, &pkt));
        }
        assert_eq!(
            got,
            vec![Digit {
                digit: '5',
                source: DtmfSource::Rfc4733,
                duration_ms: 100
            }]
        );
        // Late retransmits of the same event are ignored.
        assert_eq!(rx.on_event(1000, &event(5, true, 800)), None);
        assert_eq!(rx.on_event(1000, &event(5, false, 320)), None);
        // A second press of '5' (new timestamp) is a new digit.
        let mut got = Vec::new();
        for pkt in press(5, 1600) {
            got.extend(rx.on_event(5000, &pkt));
        }
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].digit, got[0].duration_ms), ('5', 200));
        assert_eq!(rx.flush(), None);
    }

    #[test]
    fn rfc4733_all_codes_and_lost_ends() {
        let mut rx = Rfc4733Receiver::new(8000);
        let mut got = String::new();
        for (i, code) in (0u8..16).enumerate() {
            let ts = 10_000 + i as u32 * 2000;
            for pkt in press(code, 480) {
                got.extend(rx.on_event(ts, &pkt).map(|d| d.digit));
            }
        }
        assert_eq!(got, "0123456789*#ABCD");
        // Flash (16) and malformed payloads are ignored.
        assert_eq!(rx.on_event(1, &event(16, true, 100)), None);
        assert_eq!(rx.on_event(2, &[1, 2]), None);
        assert_eq!(rx.on_event(3, &[]), None);
        // An event whose end packets are all lost is reported when the next one starts...
        let mut rx = Rfc4733Receiver::new(8000);
        assert_eq!(rx.on_event(100, &event(1, false, 0)), None);
        assert_eq!(rx.on_event(100, &event(1, false, 400)), None);
        let d = rx.on_event(900, &event(2, false, 0)).expect("pending 1");
        assert_eq!((d.digit, d.duration_ms), ('1', 50));
        // ... or by flush.
        let d = rx.flush().expect("pending 2");
        assert_eq!(d.digit, '2');
        // A 48 kHz clock (with Opus) scales durations.
        let mut rx = Rfc4733Receiver::new(48_000);
        let d = rx.on_event(7, &event(9, true, 4800)).expect("digit");
        assert_eq!((d.digit, d.duration_ms), ('9', 100));
    }

    fn dig(digit: char, source: DtmfSource) -> Digit {
        Digit {
            digit,
            source,
            duration_ms: 100,
        }
    }

    #[test]
    fn deduper_merges_sources() {
        use DtmfSource::{InBand, Rfc4733};
        let mut dd = DtmfDeduper::new();
        assert!(dd.offer(1000, dig('5', Rfc4733)).is_some());
        // The carrier's in-band copy 150 ms later is suppressed.
        assert_eq!(dd.offer(1150, dig('5', InBand)), None);
        // A different digit passes.
        assert!(dd.offer(1160, dig('6', InBand)).is_some());
        // The same digit again from RFC 4733 (a real second press) passes.
        assert!(dd.offer(1300, dig('5', Rfc4733)).is_some());
        // In-band after the window passes.
        assert!(dd.offer(1600, dig('5', InBand)).is_some());
        // Each report suppresses at most one copy.
        let mut dd = DtmfDeduper::new();
        assert!(dd.offer(0, dig('1', Rfc4733)).is_some());
        assert_eq!(dd.offer(50, dig('1', InBand)), None);
        assert!(dd.offer(100, dig('1', InBand)).is_some());
        // In-band first, RFC 4733 copy after: also one digit.
        let mut dd = DtmfDeduper::new();
        assert!(dd.offer(0, dig('#', InBand)).is_some());
        assert_eq!(dd.offer(120, dig('#', Rfc4733)), None);
    }
}
