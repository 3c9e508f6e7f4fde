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

/// Analysis window, seconds (205 samples at 8 kHz: ~39 Hz bins).
const WINDOW_S: f64 = 0.025_6;
/// Hop between windows, seconds.
const HOP_S: f64 = 0.005;
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

fn db_ratio(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

/// Goertzel coefficient `2·cos(ω)` of `freq` at `rate`.
fn coeff(freq: f64, rate: f64) -> f64 {
    2.0 * (TAU * freq / rate).cos()
}

/// Goertzel power |X(f)|² of `x` (a sine of amplitude A over N samples gives (A·N/2)²).
fn goertzel_power(x: &[f64], coeff: f64) -> f64 {
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
}

/// In-band DTMF detector on mono PCM at any sample rate (Goertzel at that rate).
///
/// A 25.6 ms window slides by 5 ms; a window shows a digit when its strongest row and column
/// tones are each above the level threshold and 8 dB above the other rows/columns, the twist
/// is within limits (column up to 8 dB stronger, row up to 4 dB stronger), the two tones hold
/// at least half the window's energy, and their second harmonics are 10 dB weaker (speech).
/// Six consecutive windows (30-40 ms of tone; 20 ms blips are rejected) make a press; four
/// windows without it, or with its tones 10 dB below the press's peak (a pause of ~20 ms or
/// more; shorter breaks are bridged), end it, and the digit is reported then, once, with its
/// measured duration. Latency: the digit comes ~20-25 ms after the tone stops.
#[derive(Debug, Clone)]
pub struct InBandDetector {
    window: usize,
    hop: usize,
    hop_ms: f64,
    row_coeffs: [f64; 4],
    col_coeffs: [f64; 4],
    row_harmonics: [f64; 4],
    col_harmonics: [f64; 4],
    /// Samples not yet slid past.
    samples: Vec<f64>,
    /// Digit of the current run of identical windows, its length and peak tone power.
    run: Option<(char, u32, f64)>,
    /// A confirmed press: its digit, windows seen and peak tone power.
    active: Option<(char, u32, f64)>,
    misses: u32,
}

impl InBandDetector {
    /// A detector for PCM at `sample_rate` Hz (8000 or more for the column tones to exist).
    pub fn new(sample_rate: u32) -> Self {
        let rate = f64::from(sample_rate.max(1));
        let window = ((rate * WINDOW_S).round() as usize).max(8);
        let hop = ((rate * HOP_S).round() as usize).clamp(1, window);
        let map = |freqs: [f64; 4], mult: f64| freqs.map(|f| coeff(f * mult, rate));
        InBandDetector {
            window,
            hop,
            hop_ms: hop as f64 * 1000.0 / rate,
            row_coeffs: map(ROWS, 1.0),
            col_coeffs: map(COLS, 1.0),
            row_harmonics: map(ROWS, 2.0),
            col_harmonics: map(COLS, 2.0),
            samples: Vec::with_capacity(window * 2),
            run: None,
            active: None,
            misses: 0,
        }
    }

    /// Feeds PCM (any length); returns the presses that ended in it.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<Digit> {
        let mut out = Vec::new();
        for chunk in pcm.chunks(self.hop.max(1)) {
            self.samples
                .extend(chunk.iter().map(|&s| f64::from(s) / 32768.0));
            while self.samples.len() >= self.window {
                let seen = self.classify(&self.samples[..self.window]);
                if let Some(d) = self.step(seen) {
                    out.push(d);
                }
                self.samples.drain(..self.hop);
            }
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
    fn step(&mut self, seen: Option<(char, f64)>) -> Option<Digit> {
        if let Some((digit, hits, peak)) = self.active {
            match seen {
                Some((d, power)) if d == digit && power * db_ratio(RELEASE_DROP_DB) >= peak => {
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

    /// The digit one window shows, if any, and the power of its two tones.
    fn classify(&self, x: &[f64]) -> Option<(char, f64)> {
        let n = x.len() as f64;
        let energy: f64 = x.iter().map(|v| v * v).sum();
        if energy <= 0.0 {
            return None;
        }
        // Power of a full-scale sine: (N/2)².
        let full = (n / 2.0) * (n / 2.0);
        let min_power = full * db_ratio(MIN_LEVEL_DB);
        // Cheap gates first (most audio is no DTMF): a window too quiet to hold two tones at
        // the minimum level, or without a loud enough row tone, needs no column filters.
        if energy < 2.0 * min_power * 2.0 / n {
            return None;
        }
        let rows = self.row_coeffs.map(|c| goertzel_power(x, c));
        let (ri, rp) = strongest(&rows);
        if rp < min_power {
            return None;
        }
        let cols = self.col_coeffs.map(|c| goertzel_power(x, c));
        let (ci, cp) = strongest(&cols);
        if cp < min_power {
            return None;
        }
        if cp > rp * db_ratio(NORMAL_TWIST_DB) || rp > cp * db_ratio(REVERSE_TWIST_DB) {
            return None;
        }
        let margin = db_ratio(PEAK_MARGIN_DB);
        let clear = |powers: &[f64; 4], best: usize, p: f64| {
            powers
                .iter()
                .enumerate()
                .all(|(i, &q)| i == best || q * margin <= p)
        };
        if !clear(&rows, ri, rp) || !clear(&cols, ci, cp) {
            return None;
        }
        // A sine of power P holds energy P·2/N of the window.
        if (rp + cp) * 2.0 / n < MIN_TONE_SHARE * energy {
            return None;
        }
        let harmonics =
            goertzel_power(x, self.row_harmonics[ri]) + goertzel_power(x, self.col_harmonics[ci]);
        if harmonics * db_ratio(HARMONIC_MARGIN_DB) > rp + cp {
            return None;
        }
        Some((KEYS[ri][ci], rp + cp))
    }
}

/// Index and value of the largest of four powers.
fn strongest(p: &[f64; 4]) -> (usize, f64) {
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
