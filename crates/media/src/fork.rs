//! Media forks: the call's audio leaving the call while it goes on (taps, streams), and audio
//! coming back into it from outside (a stream's bot), one 20 ms frame per tick on the media
//! thread. The traits are what the call's graph drives; the pieces below (track choice, rate
//! conversion, the bot's playout queue with its marks) are pure and shared by every fork.

use std::collections::VecDeque;

use crate::resample::Resampler;

/// Hears every tick's audio of a call. Must never block: a fork that cannot keep up drops
/// frames and counts them itself.
pub trait MediaFork: Send {
    /// This tick's audio at `rate`: `heard` from the far end (None: nothing came this tick)
    /// and `sent` to it (what the party hears).
    fn on_frame(&mut self, now_us: u64, heard: Option<&[i16]>, sent: &[i16], rate: u32);
}

/// Audio from outside the call, mixed into what the call sends (so the party, recordings
/// and taps hear it). Must never block.
pub trait FrameSource: Send {
    /// Adds this tick's audio into `out` (one frame at `rate`).
    fn mix_into(&mut self, now_us: u64, out: &mut [i16], rate: u32);
}

/// Which of a call's two directions a fork takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracks {
    /// What the party says (the far end's audio).
    Inbound,
    /// What the party hears (what the call sends).
    Outbound,
    /// Both, kept apart (a stream's `both_tracks`).
    Both,
    /// Both, summed into one (a tap's `both`).
    Mixed,
}

impl Tracks {
    pub fn wants_inbound(self) -> bool {
        !matches!(self, Tracks::Outbound)
    }

    pub fn wants_outbound(self) -> bool {
        !matches!(self, Tracks::Inbound)
    }
}

/// `a + b` sample by sample, saturating, into `out` (as long as the longer; a missing
/// sample counts as silence).
#[inline]
pub fn mix(a: &[i16], b: &[i16], out: &mut Vec<i16>) {
    out.clear();
    let n = a.len().max(b.len());
    out.extend((0..n).map(|i| {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        x.saturating_add(y)
    }));
}

/// One track's audio at a fork's rate: copied when the call's rate is the fork's, resampled
/// (band-limited, state kept across frames) when not. Each 20 ms frame in gives one 20 ms
/// frame out.
#[derive(Debug)]
pub struct RateConverter {
    to_rate: u32,
    resampler: Option<Resampler>,
}

impl RateConverter {
    pub fn new(to_rate: u32) -> RateConverter {
        RateConverter {
            to_rate,
            resampler: None,
        }
    }

    pub fn to_rate(&self) -> u32 {
        self.to_rate
    }

    /// `pcm` (at `rate`) as `out` at the fork's rate, exactly `rate`-to-`to_rate` long.
    /// False when no conversion exists between the two rates (`out` is then silence).
    pub fn convert(&mut self, pcm: &[i16], rate: u32, out: &mut Vec<i16>) -> bool {
        out.clear();
        let want = expected_len(pcm.len(), rate, self.to_rate);
        if rate == self.to_rate {
            out.extend_from_slice(pcm);
            return true;
        }
        if self.resampler.as_ref().map(Resampler::from_rate) != Some(rate) {
            self.resampler = Resampler::new(rate, self.to_rate).ok();
        }
        let ok = match self.resampler.as_mut() {
            Some(r) => {
                r.process(pcm, out);
                true
            }
            None => false,
        };
        out.resize(want, 0);
        ok
    }
}

fn expected_len(len: usize, from: u32, to: u32) -> usize {
    if from == 0 {
        return 0;
    }
    (len as u64 * u64::from(to) / u64::from(from)) as usize
}

/// The audio a stream's server sent back, waiting to be played into the call, with its
/// `mark`s: a mark is done once every sample queued before it has played (or was cleared).
/// Bounded: audio past `cap_samples` and marks past `MAX_MARKS` are dropped and counted.
#[derive(Debug)]
pub struct Playout {
    audio: VecDeque<i16>,
    /// Marks by the count of samples queued before them (since the start).
    marks: VecDeque<(u64, String)>,
    queued: u64,
    played: u64,
    cap_samples: usize,
    dropped_samples: u64,
    dropped_marks: u64,
}

/// Marks waiting at once, at most.
pub const MAX_MARKS: usize = 1024;

impl Playout {
    pub fn new(cap_samples: usize) -> Playout {
        Playout {
            audio: VecDeque::new(),
            marks: VecDeque::new(),
            queued: 0,
            played: 0,
            cap_samples,
            dropped_samples: 0,
            dropped_marks: 0,
        }
    }

    /// Queues audio (at the call's rate); returns how many samples did not fit.
    pub fn push_audio(&mut self, pcm: &[i16]) -> usize {
        let room = self.cap_samples.saturating_sub(self.audio.len());
        let take = pcm.len().min(room);
        self.audio.extend(pcm[..take].iter().copied());
        self.queued += take as u64;
        let dropped = pcm.len() - take;
        self.dropped_samples += dropped as u64;
        dropped
    }

    /// A mark after everything queued so far. False when too many are waiting (dropped).
    pub fn push_mark(&mut self, name: String) -> bool {
        if self.marks.len() >= MAX_MARKS {
            self.dropped_marks += 1;
            return false;
        }
        self.marks.push_back((self.queued, name));
        true
    }

    /// Empties the queue (barge-in); the marks still waiting are done now, in order.
    pub fn clear(&mut self, done: &mut Vec<String>) {
        let n = self.audio.len() as u64;
        self.audio.clear();
        // What was cleared counts as played: later marks are placed after nothing.
        self.played += n;
        self.queued = self.played;
        done.extend(self.marks.drain(..).map(|(_, name)| name));
    }

    /// Mixes the next `out.len()` queued samples into `out` (silence once the queue is
    /// empty) and reports the marks now reached.
    pub fn mix_next(&mut self, out: &mut [i16], done: &mut Vec<String>) {
        let n = out.len().min(self.audio.len());
        for (o, s) in out.iter_mut().zip(self.audio.drain(..n)) {
            *o = o.saturating_add(s);
        }
        self.played += n as u64;
        while let Some((at, _)) = self.marks.front() {
            if *at > self.played {
                break;
            }
            if let Some((_, name)) = self.marks.pop_front() {
                done.push(name);
            }
        }
    }

    /// Samples waiting to play.
    pub fn queued_samples(&self) -> usize {
        self.audio.len()
    }

    /// Samples and marks refused so far (the queue was full).
    pub fn dropped(&self) -> (u64, u64) {
        (self.dropped_samples, self.dropped_marks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{goertzel_dbfs, ToneGenerator};

    /// A mark is done on the frame its audio's last sample plays, not before; marks sent
    /// with nothing queued are done on the next frame.
    #[test]
    fn marks_follow_the_audio_before_them() {
        let mut p = Playout::new(8000);
        let mut done = Vec::new();
        assert!(p.push_mark("early".into()));
        p.push_audio(&[1; 250]);
        assert!(p.push_mark("a".into()));
        p.push_audio(&[2; 10]);
        assert!(p.push_mark("b".into()));
        let mut out = [0i16; 160];
        p.mix_next(&mut out, &mut done);
        assert_eq!(done, vec!["early".to_string()]);
        assert_eq!((out[0], out[159]), (1, 1));
        done.clear();
        let mut out = [0i16; 160];
        p.mix_next(&mut out, &mut done);
        assert_eq!(done, vec!["a".to_string(), "b".to_string()]);
        assert_eq!((out[89], out[90], out[99], out[100]), (1, 2, 2, 0));
        assert_eq!(p.queued_samples(), 0);
    }

    /// `clear` drops what waits within the frame and gives back every pending mark; audio
    /// queued afterwards plays at once and its marks count from there.
    #[test]
    fn clear_empties_the_queue_and_releases_marks() {
        let mut p = Playout::new(80_000);
        let mut done = Vec::new();
        p.push_audio(&[7; 8000]);
        p.push_mark("m1".into());
        p.push_audio(&[7; 8000]);
        p.push_mark("m2".into());
        let mut out = [0i16; 160];
        p.mix_next(&mut out, &mut done);
        assert!(done.is_empty());
        p.clear(&mut done);
        assert_eq!(done, vec!["m1".to_string(), "m2".to_string()]);
        let mut out = [0i16; 160];
        p.mix_next(&mut out, &mut done);
        assert!(out.iter().all(|s| *s == 0));
        done.clear();
        p.push_audio(&[3; 100]);
        p.push_mark("m3".into());
        p.mix_next(&mut out, &mut done);
        assert_eq!((out[0], out[99], out[100]), (3, 3, 0));
        assert_eq!(done, vec!["m3".to_string()]);
    }

    /// The queue is bounded: audio past the cap and marks past MAX_MARKS are refused and
    /// counted.
    #[test]
    fn playout_is_bounded() {
        let mut p = Playout::new(320);
        assert_eq!(p.push_audio(&[1; 300]), 0);
        assert_eq!(p.push_audio(&[1; 100]), 80);
        for i in 0..MAX_MARKS {
            assert!(p.push_mark(i.to_string()));
        }
        assert!(!p.push_mark("over".into()));
        assert_eq!(p.dropped(), (80, 1));
        assert_eq!(p.queued_samples(), 320);
    }

    /// Mixing saturates instead of wrapping.
    #[test]
    fn mixing_saturates() {
        let mut out = Vec::new();
        mix(&[30_000, -30_000, 5], &[10_000, -10_000], &mut out);
        assert_eq!(out, vec![i16::MAX, i16::MIN, 5]);
        let mut p = Playout::new(10);
        p.push_audio(&[20_000]);
        let mut frame = [20_000i16; 2];
        p.mix_next(&mut frame, &mut Vec::new());
        assert_eq!(frame, [i16::MAX, 20_000]);
    }

    /// A 16 kHz call's tone reaches an 8 kHz fork as 160-sample frames holding the tone;
    /// same rates are copied; a rate with no conversion gives silence of the right length.
    #[test]
    fn rate_conversion_keeps_frames_and_tone() {
        let mut conv = RateConverter::new(8000);
        let mut gen = ToneGenerator::new(16_000, &[1000.0], 8000);
        let mut frame = vec![0i16; 320];
        let mut got = Vec::new();
        let mut out = Vec::new();
        for _ in 0..25 {
            gen.fill(&mut frame);
            assert!(conv.convert(&frame, 16_000, &mut out));
            assert_eq!(out.len(), 160);
            got.extend_from_slice(&out);
        }
        let level = goertzel_dbfs(&got[800..], 8000, 1000.0);
        assert!(level > -15.0, "{level}");
        assert!(conv.convert(&[9; 160], 8000, &mut out));
        assert_eq!(out, vec![9; 160]);
        assert!(!conv.convert(&[9; 7], 0, &mut out));
        assert!(out.is_empty());
    }
}
