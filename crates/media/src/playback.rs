//! Pure playback engine: a queue of playbacks (each a list of sources) rendered one 20 ms
//! frame at a time, with pause/resume/stop/volume and `calling.call.play`-shaped events.
//!
//! The engine reads no clock and does no I/O; it is told only "produce the next frame". Every
//! source arrives already at the call's PCM rate. Sources are prepared (ring cadences looked
//! up, tone generators built) when a playback is queued, so rendering a frame allocates
//! nothing in steady state.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::ring;
use crate::tone::ToneGenerator;

/// Peak amplitude of generated ring and plain tones: about -10 dBFS.
const TONE_AMPLITUDE: i16 = 10362;
/// Volume limits in dB (SWML `play.volume`, `calling.play.volume`).
const MIN_DB: f64 = -40.0;
const MAX_DB: f64 = 40.0;

/// Audio that arrives while it plays (speech synthesised sentence by sentence), polled by the
/// player on the media thread: it must never block.
pub trait ChunkStream: Send + Sync + std::fmt::Debug {
    fn poll_chunk(&mut self) -> StreamPoll;
}

/// What a [`ChunkStream`] has now.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamPoll {
    /// The next chunk of samples, at the call's rate.
    Chunk(Arc<[i16]>),
    /// Nothing yet: the player plays silence and asks again next frame.
    Pending,
    /// No more chunks.
    End,
}

/// Something to play, already at the call's PCM rate.
#[derive(Debug)]
pub enum Source {
    /// Decoded audio file or synthesised speech.
    Pcm(Arc<[i16]>),
    /// Silence of `ms` milliseconds.
    Silence { ms: u64 },
    /// Ringing tone of `country` ([`ring::cadence`]). `ms: None` plays one full cycle;
    /// `Some(ms)` repeats the cadence for exactly `ms` (a huge value plays "until stopped").
    Ring { country: String, ms: Option<u64> },
    /// Plain tone of `freqs` summed, for `ms` milliseconds (e.g. a beep).
    Tone { freqs: Vec<f32>, ms: u64 },
    /// Audio still arriving: while the next chunk is not there the playback waits (silence,
    /// not finished); it ends when the stream does.
    Stream(Box<dyn ChunkStream>),
}

/// Identifies a playback; chosen by the caller.
pub type PlaybackId = u64;

/// What happened to a playback, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayerEvent {
    /// Emitted on the frame the playback starts producing audio.
    Playing(PlaybackId),
    /// Emitted by [`Player::pause`].
    Paused(PlaybackId),
    /// Emitted by [`Player::resume`].
    Resumed(PlaybackId),
    /// Emitted on the frame the playback's last sample is produced.
    Finished(PlaybackId),
    /// Emitted by [`Player::stop`] / [`Player::stop_all`].
    Stopped(PlaybackId),
    /// The playback could not be played (e.g. unknown ring country); emitted when it would have
    /// started, instead of `Playing`; the playback is skipped.
    Error { id: PlaybackId, message: String },
}

/// One source, prepared for rendering, with its own read position.
#[derive(Debug)]
enum Item {
    Pcm {
        data: Arc<[i16]>,
        pos: usize,
    },
    Silence {
        remaining: u64,
        total: u64,
    },
    Tone {
        generator: ToneGenerator,
        remaining: u64,
        total: u64,
    },
    Ring {
        generator: ToneGenerator,
        /// `(on, samples)` of one cycle; at least one segment has a non-zero length.
        segments: Vec<(bool, u64)>,
        segment: usize,
        segment_pos: u64,
        remaining: u64,
        total: u64,
    },
    Stream {
        stream: Box<dyn ChunkStream>,
        /// Every chunk received, kept for the next loop of the playback.
        chunks: Vec<Arc<[i16]>>,
        chunk: usize,
        pos: usize,
        ended: bool,
    },
}

impl Item {
    /// Back to the first sample, for the next loop of a playback. Allocates nothing.
    fn rewind(&mut self) {
        match self {
            Item::Pcm { pos, .. } => *pos = 0,
            Item::Silence { remaining, total }
            | Item::Tone {
                remaining, total, ..
            } => *remaining = *total,
            Item::Ring {
                segment,
                segment_pos,
                remaining,
                total,
                ..
            } => {
                *segment = 0;
                *segment_pos = 0;
                *remaining = *total;
            }
            Item::Stream { chunk, pos, .. } => {
                *chunk = 0;
                *pos = 0;
            }
        }
    }

    /// True once every sample has been produced.
    fn is_exhausted(&self) -> bool {
        match self {
            Item::Pcm { data, pos } => *pos >= data.len(),
            Item::Silence { remaining, .. }
            | Item::Tone { remaining, .. }
            | Item::Ring { remaining, .. } => *remaining == 0,
            Item::Stream {
                chunks,
                chunk,
                ended,
                ..
            } => *ended && *chunk >= chunks.len(),
        }
    }

    /// Writes up to `out.len()` samples; returns how many were written. Fewer than
    /// `out.len()` means the item is exhausted (it may also be exhausted after a full write),
    /// or, for a stream, that its next chunk has not arrived yet.
    fn fill(&mut self, out: &mut [i16]) -> usize {
        match self {
            Item::Stream {
                stream,
                chunks,
                chunk,
                pos,
                ended,
            } => {
                let mut written = 0;
                while written < out.len() {
                    if let Some(data) = chunks.get(*chunk) {
                        let rest = data.get(*pos..).unwrap_or(&[]);
                        let n = rest.len().min(out.len() - written);
                        out[written..written + n].copy_from_slice(&rest[..n]);
                        written += n;
                        *pos += n;
                        if *pos >= data.len() {
                            *chunk += 1;
                            *pos = 0;
                        }
                        continue;
                    }
                    if *ended {
                        break;
                    }
                    match stream.poll_chunk() {
                        StreamPoll::Chunk(data) if !data.is_empty() => chunks.push(data),
                        StreamPoll::Chunk(_) => {}
                        StreamPoll::Pending => break,
                        StreamPoll::End => *ended = true,
                    }
                }
                written
            }
            Item::Pcm { data, pos } => {
                let rest = data.get(*pos..).unwrap_or(&[]);
                let n = rest.len().min(out.len());
                out[..n].copy_from_slice(&rest[..n]);
                *pos += n;
                n
            }
            Item::Silence { remaining, .. } => {
                let n = take(remaining, out.len());
                out[..n].fill(0);
                n
            }
            Item::Tone {
                generator,
                remaining,
                ..
            } => {
                let n = take(remaining, out.len());
                generator.fill(&mut out[..n]);
                n
            }
            Item::Ring {
                generator,
                segments,
                segment,
                segment_pos,
                remaining,
                ..
            } => {
                let mut written = 0;
                while written < out.len() && *remaining > 0 {
                    let Some(&(on, len)) = segments.get(*segment) else {
                        // Cannot happen (segment stays in range); end the item defensively.
                        *remaining = 0;
                        break;
                    };
                    let left_in_segment = len.saturating_sub(*segment_pos);
                    if left_in_segment == 0 {
                        *segment = (*segment + 1) % segments.len();
                        *segment_pos = 0;
                        continue;
                    }
                    let want = (out.len() - written) as u64;
                    let n = want.min(left_in_segment).min(*remaining);
                    // n <= want, which came from a usize.
                    let n_usize = n as usize;
                    let chunk = &mut out[written..written + n_usize];
                    if on {
                        generator.fill(chunk);
                    } else {
                        chunk.fill(0);
                    }
                    written += n_usize;
                    *segment_pos += n;
                    *remaining -= n;
                }
                written
            }
        }
    }
}

/// Takes up to `want` samples from a countdown; returns how many.
fn take(remaining: &mut u64, want: usize) -> usize {
    let n = (*remaining).min(want as u64);
    *remaining -= n;
    // n <= want.
    n as usize
}

/// `ms` at `rate` in samples, saturating.
fn ms_to_samples(ms: u64, rate: u32) -> u64 {
    let samples = u128::from(ms) * u128::from(rate) / 1000;
    u64::try_from(samples).unwrap_or(u64::MAX)
}

/// A clamped dB value as a linear gain; NaN counts as 0 dB.
fn gain_of(volume_db: f64) -> f32 {
    let db = if volume_db.is_nan() {
        0.0
    } else {
        volume_db.clamp(MIN_DB, MAX_DB)
    };
    10f64.powf(db / 20.0) as f32
}

/// One queued or active playback.
#[derive(Debug)]
struct Playback {
    id: PlaybackId,
    items: Vec<Item>,
    /// Index of the item being played.
    index: usize,
    gain: f32,
    /// Passes left including the current one; `None` = loop until stopped.
    passes_left: Option<u32>,
    paused: bool,
    started: bool,
    /// Set when a source could not be prepared: the playback errors out at its start.
    error: Option<String>,
    /// Samples produced in the current pass.
    pass_samples: u64,
}

impl Playback {
    /// Writes up to `out.len()` samples from the remaining items, with gain; returns how many.
    /// Fewer than `out.len()` means the playback is over.
    fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        loop {
            while let Some(item) = self.items.get_mut(self.index) {
                if written < out.len() {
                    let n = item.fill(&mut out[written..]);
                    written += n;
                    self.pass_samples += n as u64;
                }
                if item.is_exhausted() {
                    // Continue with the next source in the same frame (no gap).
                    self.index += 1;
                } else {
                    // Not exhausted means the frame is full.
                    break;
                }
            }
            // A pass that produced nothing (a stream that ended empty) is not repeated, so each
            // further pass makes progress.
            if self.is_done() && self.pass_samples > 0 && self.start_next_pass() {
                continue;
            }
            break;
        }
        if self.gain != 1.0 {
            let gain = self.gain;
            for s in &mut out[..written] {
                // `as` saturates float to int conversions.
                *s = (f32::from(*s) * gain).round() as i16;
            }
        }
        written
    }

    /// Rewinds for another pass if one is due; false when the playback is over.
    fn start_next_pass(&mut self) -> bool {
        if self.items.is_empty() {
            return false;
        }
        match &mut self.passes_left {
            None => {}
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => return false,
        }
        for item in &mut self.items {
            item.rewind();
        }
        self.index = 0;
        self.pass_samples = 0;
        true
    }

    /// True when all items are exhausted.
    fn is_done(&self) -> bool {
        self.index >= self.items.len()
    }
}

/// Plays queued playbacks one after another, one frame at a time. One per call.
#[derive(Debug)]
pub struct Player {
    sample_rate: u32,
    frame_samples: usize,
    queue: VecDeque<Playback>,
    events: VecDeque<PlayerEvent>,
}

impl Player {
    /// A player producing frames of `frame_samples` samples at `sample_rate` Hz.
    pub fn new(sample_rate: u32, frame_samples: usize) -> Self {
        Player {
            sample_rate,
            frame_samples,
            queue: VecDeque::with_capacity(4),
            events: VecDeque::with_capacity(16),
        }
    }

    /// Sample rate given to [`Player::new`].
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Frame length given to [`Player::new`].
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Queues a playback: `sources` played in order at `volume_db` (clamped to -40..=40; NaN
    /// is 0). It starts after every playback queued before it. A source that cannot be played
    /// (unknown ring country) makes the whole playback emit [`PlayerEvent::Error`] when it
    /// would start, and it is skipped. Ids are not checked for uniqueness; control methods
    /// act on the first playback with the id.
    pub fn enqueue(&mut self, id: PlaybackId, sources: Vec<Source>, volume_db: f64) {
        self.enqueue_looped(id, sources, volume_db, 1);
    }

    /// Like [`Player::enqueue`], playing the whole list `loops` times back to back
    /// (`calling.play` `loop`); `0` repeats until stopped. One `Playing` at the start and one
    /// `Finished` after the last pass. A playback with no audible source never loops.
    pub fn enqueue_looped(
        &mut self,
        id: PlaybackId,
        sources: Vec<Source>,
        volume_db: f64,
        loops: u32,
    ) {
        let mut items = Vec::with_capacity(sources.len());
        let mut error = None;
        for source in sources {
            match self.prepare(source) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {}
                Err(message) => {
                    error.get_or_insert(message);
                }
            }
        }
        self.queue.push_back(Playback {
            id,
            items,
            index: 0,
            gain: gain_of(volume_db),
            passes_left: if loops == 0 { None } else { Some(loops) },
            paused: false,
            started: false,
            error,
            pass_samples: 0,
        });
    }

    /// Turns a source into a renderable item; `Ok(None)` for an empty one.
    fn prepare(&self, source: Source) -> Result<Option<Item>, String> {
        let rate = self.sample_rate;
        let item = match source {
            Source::Pcm(data) => Item::Pcm { data, pos: 0 },
            Source::Stream(stream) => Item::Stream {
                stream,
                chunks: Vec::new(),
                chunk: 0,
                pos: 0,
                ended: false,
            },
            Source::Silence { ms } => {
                let total = ms_to_samples(ms, rate);
                Item::Silence {
                    remaining: total,
                    total,
                }
            }
            Source::Tone { freqs, ms } => {
                let total = ms_to_samples(ms, rate);
                Item::Tone {
                    generator: ToneGenerator::new(rate, &freqs, TONE_AMPLITUDE),
                    remaining: total,
                    total,
                }
            }
            Source::Ring { country, ms } => {
                let Some(cadence) = ring::cadence(&country) else {
                    return Err(format!("unknown ring country {country:?}"));
                };
                let segments: Vec<(bool, u64)> = cadence
                    .segments_ms
                    .iter()
                    .map(|&(on, ms)| (on, ms_to_samples(ms, rate)))
                    .collect();
                let cycle = segments
                    .iter()
                    .fold(0u64, |acc, &(_, n)| acc.saturating_add(n));
                let remaining = match ms {
                    None => cycle,
                    Some(ms) => ms_to_samples(ms, rate),
                };
                if cycle == 0 {
                    // Degenerate cadence (or a zero sample rate): silence for the duration.
                    Item::Silence {
                        remaining,
                        total: remaining,
                    }
                } else {
                    Item::Ring {
                        generator: ToneGenerator::new(rate, &cadence.freqs, TONE_AMPLITUDE),
                        segments,
                        segment: 0,
                        segment_pos: 0,
                        remaining,
                        total: remaining,
                    }
                }
            }
        };
        Ok(if item.is_exhausted() {
            None
        } else {
            Some(item)
        })
    }

    fn find(&mut self, id: PlaybackId) -> Option<&mut Playback> {
        self.queue.iter_mut().find(|p| p.id == id)
    }

    /// Pauses the playback (active or queued): emits `Paused`; an active one then yields
    /// silence without advancing, a queued one will not start until resumed. Pausing a paused
    /// playback emits nothing. False if there is no such playback.
    pub fn pause(&mut self, id: PlaybackId) -> bool {
        let Some(p) = self.find(id) else {
            return false;
        };
        if !p.paused {
            p.paused = true;
            self.events.push_back(PlayerEvent::Paused(id));
        }
        true
    }

    /// Resumes a paused playback from the sample it stopped at: emits `Resumed`. Resuming a
    /// playback that is not paused emits nothing. False if there is no such playback.
    pub fn resume(&mut self, id: PlaybackId) -> bool {
        let Some(p) = self.find(id) else {
            return false;
        };
        if p.paused {
            p.paused = false;
            self.events.push_back(PlayerEvent::Resumed(id));
        }
        true
    }

    /// Removes the playback (active or queued) and emits `Stopped`; the next queued playback
    /// starts on the next frame. False if there is no such playback.
    pub fn stop(&mut self, id: PlaybackId) -> bool {
        let Some(index) = self.queue.iter().position(|p| p.id == id) else {
            return false;
        };
        self.queue.remove(index);
        self.events.push_back(PlayerEvent::Stopped(id));
        true
    }

    /// Removes every playback, emitting `Stopped` for each in queue order.
    pub fn stop_all(&mut self) {
        while let Some(p) = self.queue.pop_front() {
            self.events.push_back(PlayerEvent::Stopped(p.id));
        }
    }

    /// Sets the playback's volume (absolute dB, clamped to -40..=40); takes effect on the next
    /// frame and emits nothing. False if there is no such playback.
    pub fn set_volume(&mut self, id: PlaybackId, volume_db: f64) -> bool {
        let Some(p) = self.find(id) else {
            return false;
        };
        p.gain = gain_of(volume_db);
        true
    }

    /// True when a playback is active (or about to start) and not paused.
    pub fn is_playing(&self) -> bool {
        self.queue.front().is_some_and(|p| !p.paused)
    }

    /// True when nothing is active or queued.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Fills `out` (expected `frame_samples` long; any length works) with the next frame: the
    /// active playback's audio with its gain applied (saturating), continuing into the next
    /// source and the next playback within the same frame, and silence when paused or idle.
    pub fn next_frame(&mut self, out: &mut [i16]) {
        let mut pos = 0;
        while pos < out.len() {
            let Some(p) = self.queue.front_mut() else {
                break;
            };
            if p.paused {
                break;
            }
            if !p.started {
                if let Some(message) = p.error.take() {
                    let id = p.id;
                    self.queue.pop_front();
                    self.events.push_back(PlayerEvent::Error { id, message });
                    continue;
                }
                p.started = true;
                self.events.push_back(PlayerEvent::Playing(p.id));
            }
            pos += p.fill(&mut out[pos..]);
            if p.is_done() {
                let id = p.id;
                self.queue.pop_front();
                self.events.push_back(PlayerEvent::Finished(id));
            } else if pos < out.len() {
                // A stream waiting for its next chunk: silence until it comes.
                break;
            }
        }
        out[pos..].fill(0);
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::goertzel_dbfs;

    const RATE: u32 = 8000;
    const FRAME: usize = 160;

    fn player() -> Player {
        Player::new(RATE, FRAME)
    }

    fn ramp(len: usize, offset: i16) -> Arc<[i16]> {
        (0..len)
            .map(|i| offset.wrapping_add((i % 10_000) as i16))
            .collect()
    }

    fn constant(len: usize, value: i16) -> Arc<[i16]> {
        vec![value; len].into()
    }

    fn frame(p: &mut Player) -> Vec<i16> {
        let mut out = vec![i16::MIN; FRAME];
        p.next_frame(&mut out);
        out
    }

    fn events(p: &mut Player) -> Vec<PlayerEvent> {
        std::iter::from_fn(|| p.poll_event()).collect()
    }

    /// Ticks until idle (bounded); returns all samples and the frame count.
    fn run(p: &mut Player, max_frames: usize) -> (Vec<i16>, usize) {
        let mut all = Vec::new();
        let mut frames = 0;
        while !p.is_idle() && frames < max_frames {
            all.extend(frame(p));
            frames += 1;
        }
        (all, frames)
    }

    fn peak(s: &[i16]) -> i32 {
        s.iter().map(|&x| i32::from(x).abs()).max().unwrap_or(0)
    }

    use PlayerEvent::*;

    #[test]
    fn pcm_plays_in_frames_with_zero_padded_tail() {
        let mut p = player();
        let data = ramp(1000, 1);
        p.enqueue(1, vec![Source::Pcm(data.clone())], 0.0);
        assert!(p.is_playing());
        for i in 0..6 {
            let f = frame(&mut p);
            assert_eq!(&f[..], &data[i * FRAME..(i + 1) * FRAME]);
            if i == 0 {
                assert_eq!(events(&mut p), vec![Playing(1)]);
            } else {
                assert_eq!(events(&mut p), vec![]);
            }
        }
        let f = frame(&mut p);
        assert_eq!(&f[..40], &data[960..]);
        assert!(f[40..].iter().all(|&s| s == 0));
        assert_eq!(events(&mut p), vec![Finished(1)]);
        assert!(p.is_idle());
        assert!(!p.is_playing());
        assert!(frame(&mut p).iter().all(|&s| s == 0));
        assert_eq!(events(&mut p), vec![]);
    }

    #[test]
    fn sources_and_playbacks_are_contiguous() {
        let a = ramp(1000, 1);
        let b = ramp(500, 5000);
        let c = ramp(300, 9000);
        let mut p = player();
        p.enqueue(1, vec![Source::Pcm(a.clone()), Source::Pcm(b.clone())], 0.0);
        p.enqueue(2, vec![Source::Pcm(c.clone())], 0.0);
        let (all, frames) = run(&mut p, 100);
        let expected: Vec<i16> = a.iter().chain(b.iter()).chain(c.iter()).copied().collect();
        assert_eq!(frames, 12); // 1800 samples / 160 = 11.25
        assert_eq!(&all[..1800], &expected[..]);
        assert!(all[1800..].iter().all(|&s| s == 0));
        assert_eq!(
            events(&mut p),
            vec![Playing(1), Finished(1), Playing(2), Finished(2)]
        );
    }

    #[test]
    fn playback_ending_on_a_frame_boundary_finishes_on_that_frame() {
        let mut p = player();
        p.enqueue(1, vec![Source::Pcm(ramp(800, 1))], 0.0);
        p.enqueue(2, vec![Source::Pcm(ramp(160, 1))], 0.0);
        for _ in 0..5 {
            frame(&mut p);
        }
        assert_eq!(events(&mut p), vec![Playing(1), Finished(1)]);
        frame(&mut p);
        assert_eq!(events(&mut p), vec![Playing(2), Finished(2)]);
        assert!(p.is_idle());
    }

    #[test]
    fn silence_500_ms_is_25_frames() {
        let mut p = player();
        p.enqueue(7, vec![Source::Silence { ms: 500 }], 0.0);
        let (all, frames) = run(&mut p, 1000);
        assert_eq!(frames, 25);
        assert!(all.iter().all(|&s| s == 0));
        assert_eq!(events(&mut p), vec![Playing(7), Finished(7)]);
    }

    #[test]
    fn ring_us_one_cycle() {
        let mut p = player();
        p.enqueue(
            1,
            vec![Source::Ring {
                country: "us".into(),
                ms: None,
            }],
            0.0,
        );
        let (all, frames) = run(&mut p, 10_000);
        assert_eq!(frames, 300);
        assert_eq!(all.len(), 48_000);
        let on = &all[..16_000];
        let off = &all[16_000..];
        for f in [440.0, 480.0] {
            let db = goertzel_dbfs(on, RATE, f);
            assert!(db > -20.0, "{f} Hz on: {db}");
            let db = goertzel_dbfs(off, RATE, f);
            assert!(db < -60.0, "{f} Hz off: {db}");
        }
        // Not some other tone.
        assert!(goertzel_dbfs(on, RATE, 1000.0) < -40.0);
        // About -10 dBFS peak.
        let pk = peak(on);
        assert!((9000..=10_400).contains(&pk), "peak {pk}");
        assert_eq!(events(&mut p), vec![Playing(1), Finished(1)]);
    }

    #[test]
    fn ring_uk_double_ring_pattern() {
        let mut p = player();
        p.enqueue(
            1,
            vec![Source::Ring {
                country: "UK".into(),
                ms: None,
            }],
            0.0,
        );
        let mut frames = Vec::new();
        while !p.is_idle() && frames.len() < 1000 {
            frames.push(frame(&mut p));
        }
        // 0.4 on, 0.2 off, 0.4 on, 2.0 off = 20 + 10 + 20 + 100 frames.
        assert_eq!(frames.len(), 150);
        for (i, f) in frames.iter().enumerate() {
            let on = i < 20 || (30..50).contains(&i);
            if on {
                assert!(peak(f) > 1000, "frame {i} should sound");
            } else {
                assert!(f.iter().all(|&s| s == 0), "frame {i} should be silent");
            }
        }
        let first_ring: Vec<i16> = frames[..20].concat();
        for f in [400.0, 450.0] {
            assert!(goertzel_dbfs(&first_ring, RATE, f) > -20.0, "{f} Hz");
        }
        assert!(goertzel_dbfs(&first_ring, RATE, 440.0) < goertzel_dbfs(&first_ring, RATE, 450.0));
    }

    #[test]
    fn ring_us_7000_ms_ends_mid_cadence() {
        let mut p = player();
        p.enqueue(
            1,
            vec![Source::Ring {
                country: "us".into(),
                ms: Some(7000),
            }],
            0.0,
        );
        let mut frames = Vec::new();
        while !p.is_idle() && frames.len() < 1000 {
            frames.push(frame(&mut p));
        }
        assert_eq!(frames.len(), 350);
        // 0-2 s on, 2-6 s off, 6-7 s on again (second cycle cut short).
        assert!(peak(&frames[99]) > 1000);
        assert!(peak(&frames[100]) == 0);
        assert!(peak(&frames[299]) == 0);
        assert!(peak(&frames[300]) > 1000);
        assert!(peak(&frames[349]) > 1000);
        assert_eq!(events(&mut p), vec![Playing(1), Finished(1)]);
    }

    #[test]
    fn ring_for_huge_duration_does_not_overflow() {
        let mut p = player();
        p.enqueue(
            1,
            vec![Source::Ring {
                country: "de".into(),
                ms: Some(u64::MAX),
            }],
            0.0,
        );
        for _ in 0..1000 {
            frame(&mut p);
        }
        assert!(p.is_playing());
        assert!(p.stop(1));
        assert_eq!(events(&mut p), vec![Playing(1), Stopped(1)]);
    }

    #[test]
    fn tone_source() {
        let mut p = player();
        p.enqueue(
            3,
            vec![Source::Tone {
                freqs: vec![1000.0],
                ms: 200,
            }],
            0.0,
        );
        let (all, frames) = run(&mut p, 100);
        assert_eq!(frames, 10);
        assert!(goertzel_dbfs(&all, RATE, 1000.0) > -15.0);
        // A tone with no frequencies is silence of the right length.
        p.enqueue(
            4,
            vec![Source::Tone {
                freqs: vec![],
                ms: 100,
            }],
            0.0,
        );
        let (all, frames) = run(&mut p, 100);
        assert_eq!(frames, 5);
        assert!(all.iter().all(|&s| s == 0));
    }

    #[test]
    fn volume_gain_and_saturation() {
        let mut p = player();
        p.enqueue(1, vec![Source::Pcm(constant(160, 1000))], 6.0);
        let f = frame(&mut p);
        assert!(f.iter().all(|&s| (1990..=2000).contains(&s)), "{}", f[0]);

        p.enqueue(2, vec![Source::Pcm(constant(160, 20_000))], 6.0);
        assert!(frame(&mut p).iter().all(|&s| s == i16::MAX));
        p.enqueue(3, vec![Source::Pcm(constant(160, -20_000))], 6.0);
        assert!(frame(&mut p).iter().all(|&s| s == i16::MIN));

        p.enqueue(4, vec![Source::Pcm(constant(160, 10_000))], -40.0);
        assert!(frame(&mut p).iter().all(|&s| s == 100));

        // Clamped to 40 dB (×100), NaN is 0 dB.
        p.enqueue(5, vec![Source::Pcm(constant(160, 100))], 1000.0);
        assert!(frame(&mut p).iter().all(|&s| s == 10_000));
        p.enqueue(6, vec![Source::Pcm(constant(160, 123))], f64::NAN);
        assert!(frame(&mut p).iter().all(|&s| s == 123));
        p.enqueue(
            7,
            vec![Source::Pcm(constant(160, 10_000))],
            f64::NEG_INFINITY,
        );
        assert!(frame(&mut p).iter().all(|&s| s == 100));
    }

    #[test]
    fn set_volume_mid_play() {
        let mut p = player();
        p.enqueue(1, vec![Source::Pcm(constant(480, 1000))], 0.0);
        assert!(frame(&mut p).iter().all(|&s| s == 1000));
        assert!(p.set_volume(1, -20.0));
        assert!(frame(&mut p).iter().all(|&s| s == 100));
        assert!(p.set_volume(1, 0.0));
        assert!(frame(&mut p).iter().all(|&s| s == 1000));
        assert!(!p.set_volume(99, 0.0));
        // Volume changes emit nothing.
        assert_eq!(events(&mut p), vec![Playing(1), Finished(1)]);
    }

    #[test]
    fn pause_holds_position_and_resume_continues() {
        let data = ramp(1000, 1);
        let mut p = player();
        p.enqueue(1, vec![Source::Pcm(data.clone())], 0.0);
        frame(&mut p);
        frame(&mut p);
        assert!(p.pause(1));
        assert!(p.pause(1)); // idempotent, no second event
        assert!(!p.is_playing());
        assert!(!p.is_idle());
        for _ in 0..3 {
            assert!(frame(&mut p).iter().all(|&s| s == 0));
        }
        assert_eq!(events(&mut p), vec![Playing(1), Paused(1)]);
        assert!(p.resume(1));
        assert!(p.resume(1));
        assert!(p.is_playing());
        let f = frame(&mut p);
        assert_eq!(&f[..], &data[320..480]);
        assert_eq!(events(&mut p), vec![Resumed(1)]);
        let (_, frames) = run(&mut p, 100);
        assert_eq!(frames, 4);
        assert_eq!(events(&mut p), vec![Finished(1)]);
    }

    #[test]
    fn paused_queued_playback_waits_for_resume() {
        let mut p = player();
        p.enqueue(1, vec![Source::Pcm(ramp(100, 1))], 0.0);
        p.enqueue(2, vec![Source::Pcm(ramp(100, 500))], 0.0);
        assert!(p.pause(2));
        let f = frame(&mut p);
        assert!(f[100..].iter().all(|&s| s == 0));
        assert_eq!(events(&mut p), vec![Paused(2), Playing(1), Finished(1)]);
        assert!(!p.is_playing());
        assert!(!p.is_idle());
        assert!(frame(&mut p).iter().all(|&s| s == 0));
        assert!(p.resume(2));
        let f = frame(&mut p);
        assert_eq!(f[0], 500);
        assert_eq!(events(&mut p), vec![Resumed(2), Playing(2), Finished(2)]);
    }

    #[test]
    fn stop_removes_and_next_starts_on_next_frame() {
        let mut p = player();
        p.enqueue(1, vec![Source::Pcm(ramp(1000, 1))], 0.0);
        p.enqueue(2, vec![Source::Pcm(ramp(1000, 3000))], 0.0);
        p.enqueue(3, vec![Source::Pcm(ramp(10, 1))], 0.0);
        frame(&mut p);
        assert!(p.stop(3)); // queued
        assert!(p.stop(1)); // active
        assert!(!p.stop(1));
        assert_eq!(events(&mut p), vec![Playing(1), Stopped(3), Stopped(1)]);
        let f = frame(&mut p);
        assert_eq!(f[0], 3000);
        assert_eq!(events(&mut p), vec![Playing(2)]);
        p.stop_all();
        assert!(p.is_idle());
        assert_eq!(events(&mut p), vec![Stopped(2)]);
    }

    #[test]
    fn stop_all_emits_stopped_for_each_in_order() {
        let mut p = player();
        for id in [5, 3, 9] {
            p.enqueue(id, vec![Source::Silence { ms: 1000 }], 0.0);
        }
        frame(&mut p);
        p.stop_all();
        assert_eq!(
            events(&mut p),
            vec![Playing(5), Stopped(5), Stopped(3), Stopped(9)]
        );
        assert!(p.is_idle());
        assert!(frame(&mut p).iter().all(|&s| s == 0));
    }

    #[test]
    fn unknown_ids_are_refused() {
        let mut p = player();
        assert!(!p.pause(1));
        assert!(!p.resume(1));
        assert!(!p.stop(1));
        assert!(!p.set_volume(1, 3.0));
        assert_eq!(events(&mut p), vec![]);
    }

    #[test]
    fn unknown_ring_country_errors_and_next_playback_continues() {
        let mut p = player();
        p.enqueue(1, vec![Source::Pcm(ramp(100, 1))], 0.0);
        p.enqueue(
            2,
            vec![
                Source::Silence { ms: 100 },
                Source::Ring {
                    country: "zz".into(),
                    ms: None,
                },
            ],
            0.0,
        );
        p.enqueue(3, vec![Source::Pcm(ramp(50, 700))], 0.0);
        let f = frame(&mut p);
        assert_eq!(f[99], 100);
        assert_eq!(f[100], 700); // playback 2 skipped, 3 follows without a gap
        assert!(f[150..].iter().all(|&s| s == 0));
        let ev = events(&mut p);
        assert_eq!(ev.len(), 5);
        assert_eq!(&ev[..2], &[Playing(1), Finished(1)]);
        match &ev[2] {
            Error { id: 2, message } => assert!(message.contains("zz"), "{message}"),
            other => panic!("expected error, got {other:?}"),
        }
        assert_eq!(&ev[3..], &[Playing(3), Finished(3)]);
        assert!(p.is_idle());
    }

    #[test]
    fn empty_playbacks_and_sources_do_not_stall() {
        let mut p = player();
        p.enqueue(1, vec![], 0.0);
        p.enqueue(
            2,
            vec![
                Source::Pcm(Arc::from(Vec::<i16>::new())),
                Source::Silence { ms: 0 },
                Source::Tone {
                    freqs: vec![f32::NAN, f32::INFINITY],
                    ms: 20,
                },
                Source::Ring {
                    country: "us".into(),
                    ms: Some(0),
                },
            ],
            0.0,
        );
        let (_, frames) = run(&mut p, 10);
        assert_eq!(frames, 1);
        assert_eq!(
            events(&mut p),
            vec![Playing(1), Finished(1), Playing(2), Finished(2)]
        );
    }

    #[test]
    fn works_at_48_khz_and_odd_output_lengths() {
        let mut p = Player::new(48_000, 960);
        assert_eq!(p.sample_rate(), 48_000);
        assert_eq!(p.frame_samples(), 960);
        p.enqueue(
            1,
            vec![Source::Ring {
                country: "fr".into(),
                ms: None,
            }],
            0.0,
        );
        let mut out = vec![0i16; 960];
        let mut frames = 0;
        let mut first = Vec::new();
        while !p.is_idle() && frames < 10_000 {
            p.next_frame(&mut out);
            if frames < 75 {
                first.extend_from_slice(&out);
            }
            frames += 1;
        }
        assert_eq!(frames, 250); // 5 s cycle
        assert!(goertzel_dbfs(&first, 48_000, 440.0) > -20.0);
        // Empty and short buffers are handled.
        p.enqueue(2, vec![Source::Pcm(ramp(10, 1))], 0.0);
        p.next_frame(&mut []);
        let mut short = [i16::MIN; 4];
        p.next_frame(&mut short);
        assert_eq!(short, [1, 2, 3, 4]);
    }

    #[test]
    fn looped_playback_repeats_contiguously() {
        let a = ramp(100, 1);
        let b = ramp(30, 2000);
        let mut p = player();
        p.enqueue_looped(
            1,
            vec![Source::Pcm(a.clone()), Source::Pcm(b.clone())],
            0.0,
            3,
        );
        p.enqueue(2, vec![Source::Pcm(ramp(10, 9000))], 0.0);
        let (all, frames) = run(&mut p, 100);
        let one: Vec<i16> = a.iter().chain(b.iter()).copied().collect();
        let expected: Vec<i16> = one
            .iter()
            .chain(&one)
            .chain(&one)
            .copied()
            .chain(ramp(10, 9000).iter().copied())
            .collect();
        assert_eq!(frames, 3); // 400 samples
        assert_eq!(&all[..400], &expected[..]);
        assert!(all[400..].iter().all(|&s| s == 0));
        assert_eq!(
            events(&mut p),
            vec![Playing(1), Finished(1), Playing(2), Finished(2)]
        );
    }

    #[test]
    fn looped_ring_and_silence_rewind() {
        let mut p = player();
        p.enqueue_looped(
            1,
            vec![
                Source::Ring {
                    country: "uk".into(),
                    ms: Some(500),
                },
                Source::Silence { ms: 100 },
            ],
            0.0,
            2,
        );
        let mut frames = Vec::new();
        while !p.is_idle() && frames.len() < 1000 {
            frames.push(frame(&mut p));
        }
        // Each pass: 400 on, 100 off (ring cut at 500 ms), 100 silence = 30 frames.
        assert_eq!(frames.len(), 60);
        for pass in 0..2 {
            for i in 0..30 {
                let sounding = peak(&frames[pass * 30 + i]) > 0;
                assert_eq!(sounding, i < 20, "pass {pass} frame {i}");
            }
        }
    }

    #[test]
    fn loop_forever_until_stopped() {
        let mut p = player();
        p.enqueue_looped(1, vec![Source::Pcm(ramp(7, 1))], 0.0, 0);
        for _ in 0..1000 {
            let f = frame(&mut p);
            assert!(f.iter().all(|&s| (1..=7).contains(&s)));
        }
        assert_eq!(events(&mut p), vec![Playing(1)]);
        assert!(p.stop(1));
        assert_eq!(events(&mut p), vec![Stopped(1)]);
        // Nothing audible: looping forever must not hang.
        p.enqueue_looped(2, vec![Source::Silence { ms: 0 }], 0.0, 0);
        p.enqueue_looped(3, vec![], 0.0, 0);
        frame(&mut p);
        assert!(p.is_idle());
        assert_eq!(
            events(&mut p),
            vec![Playing(2), Finished(2), Playing(3), Finished(3)]
        );
    }

    #[test]
    fn every_country_plays() {
        for cc in ring::COUNTRIES {
            let mut p = player();
            p.enqueue(
                1,
                vec![Source::Ring {
                    country: (*cc).to_string(),
                    ms: None,
                }],
                0.0,
            );
            let cycle = ring::cadence(cc).map(|c| c.cycle_ms()).unwrap_or(0);
            let (all, frames) = run(&mut p, 100_000);
            assert_eq!(frames as u64, cycle / 20, "{cc}");
            assert!(peak(&all) > 1000, "{cc}");
            assert_eq!(events(&mut p), vec![Playing(1), Finished(1)], "{cc}");
        }
    }

    /// A stream scripted poll by poll, shared with the test so it can feed it between frames.
    #[derive(Debug, Clone, Default)]
    struct Scripted(Arc<std::sync::Mutex<std::collections::VecDeque<StreamPoll>>>);

    impl Scripted {
        fn push(&self, p: StreamPoll) {
            self.0.lock().unwrap().push_back(p);
        }
    }

    impl ChunkStream for Scripted {
        fn poll_chunk(&mut self) -> StreamPoll {
            self.0
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(StreamPoll::Pending)
        }
    }

    #[test]
    fn a_stream_plays_its_chunks_and_waits_in_silence_for_the_next() {
        let mut p = player();
        let s = Scripted::default();
        s.push(StreamPoll::Chunk(constant(240, 100)));
        p.enqueue(1, vec![Source::Stream(Box::new(s.clone()))], 0.0);
        p.enqueue(2, vec![Source::Pcm(constant(160, 7))], 0.0);
        // 240 samples: one full frame, then 80 and silence while the next is synthesised.
        assert_eq!(frame(&mut p), vec![100; 160]);
        assert_eq!(events(&mut p), vec![PlayerEvent::Playing(1)]);
        let f = frame(&mut p);
        assert_eq!(&f[..80], &[100; 80][..]);
        assert_eq!(&f[80..], &[0; 80][..]);
        // Still waiting: silence, not finished, the next playback does not start.
        for _ in 0..10 {
            assert_eq!(frame(&mut p), vec![0; 160]);
        }
        assert_eq!(events(&mut p), vec![]);
        s.push(StreamPoll::Chunk(constant(100, 200)));
        s.push(StreamPoll::Chunk(constant(0, 0)));
        s.push(StreamPoll::Chunk(constant(100, 300)));
        s.push(StreamPoll::End);
        let f = frame(&mut p);
        assert_eq!(&f[..100], &[200; 100][..]);
        assert_eq!(&f[100..], &[300; 60][..]);
        // The stream's end and the next playback in the same frame, without a gap.
        let f = frame(&mut p);
        assert_eq!(&f[..40], &[300; 40][..]);
        assert_eq!(&f[40..], &[7; 120][..]);
        assert_eq!(
            events(&mut p),
            vec![PlayerEvent::Finished(1), PlayerEvent::Playing(2)]
        );
    }

    #[test]
    fn a_looped_stream_replays_what_it_received_and_an_empty_one_ends() {
        let mut p = player();
        let s = Scripted::default();
        s.push(StreamPoll::Chunk(ramp(100, 1)));
        s.push(StreamPoll::End);
        p.enqueue_looped(1, vec![Source::Stream(Box::new(s))], 0.0, 3);
        let (samples, _) = run(&mut p, 100);
        assert_eq!(&samples[..300], &[&ramp(100, 1)[..]; 3].concat()[..]);
        assert_eq!(
            events(&mut p),
            vec![PlayerEvent::Playing(1), PlayerEvent::Finished(1)]
        );
        // Looping forever over a stream that ended with nothing does not spin.
        let empty = Scripted::default();
        empty.push(StreamPoll::End);
        p.enqueue_looped(2, vec![Source::Stream(Box::new(empty))], 0.0, 0);
        assert_eq!(frame(&mut p), vec![0; 160]);
        assert_eq!(
            events(&mut p),
            vec![PlayerEvent::Playing(2), PlayerEvent::Finished(2)]
        );
    }

    #[test]
    fn stopping_a_waiting_stream_drops_it() {
        let mut p = player();
        let s = Scripted::default();
        p.enqueue(1, vec![Source::Stream(Box::new(s.clone()))], 0.0);
        assert_eq!(frame(&mut p), vec![0; 160]);
        assert_eq!(Arc::strong_count(&s.0), 2);
        assert!(p.stop(1));
        assert_eq!(Arc::strong_count(&s.0), 1);
        assert!(p.is_idle());
    }
}
