//! Energy-based voice activity detection with an adaptive noise floor, onset confirmation and
//! hangover. Pure: driven by PCM frames (normally 20 ms); the audio itself is the clock.
//!
//! A frame is *voiced* when its RMS level is above both an absolute threshold and the tracked
//! noise floor plus a margin; both depend on `sensitivity` (SignalWire's `input_sensitivity`,
//! 0–100, higher = quieter speech counts). Speech starts after [`ONSET_MS`] of consecutive voiced
//! frames and ends after [`HANGOVER_MS`] without a voiced frame, so the short gaps between
//! syllables do not split a word.

/// Consecutive voiced audio needed before [`VadEvent::SpeechStarted`].
pub const ONSET_MS: u32 = 40;
/// Unvoiced audio after the last voiced frame before [`VadEvent::SpeechEnded`].
pub const HANGOVER_MS: u32 = 200;
/// SignalWire's default `input_sensitivity`.
pub const DEFAULT_SENSITIVITY: u8 = 44;

/// Level reported for an all-zero (or empty) frame.
const SILENCE_DBFS: f32 = -100.0;
/// The noise floor never tracks below this.
const FLOOR_MIN_DBFS: f32 = -90.0;
/// Where the noise floor starts.
const FLOOR_START_DBFS: f32 = -70.0;
/// How fast the floor climbs towards louder audio, dB per second.
const FLOOR_RISE_DB_PER_S: f32 = 12.5;
/// Fraction of the distance the floor moves per frame towards quieter audio.
const FLOOR_FALL: f32 = 0.3;

/// RMS level of `pcm` in dBFS (a full-scale square wave is 0 dB, a full-scale sine ~-3 dB);
/// silence or an empty frame gives -100.
pub fn frame_dbfs(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return SILENCE_DBFS;
    }
    let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let mean = energy / pcm.len() as f64;
    let db = 10.0 * (mean / (32768.0 * 32768.0)).log10();
    if db.is_finite() {
        (db as f32).max(SILENCE_DBFS)
    } else {
        SILENCE_DBFS
    }
}

/// Duration of `samples` at `sample_rate` in whole milliseconds (saturating).
pub(crate) fn duration_ms(samples: usize, sample_rate: u32) -> u32 {
    let ms = samples as u64 * 1000 / u64::from(sample_rate.max(1));
    u32::try_from(ms).unwrap_or(u32::MAX)
}

/// What a frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech confirmed (reported on the frame completing [`ONSET_MS`] of voice).
    SpeechStarted,
    /// Speech ended after [`HANGOVER_MS`] of silence; `speech_ms` spans the first to the last
    /// voiced frame of the burst (gaps shorter than the hangover included).
    SpeechEnded { speech_ms: u32 },
}

/// Energy-based voice activity with an adaptive noise floor and hangover; `sensitivity` 0–100
/// (SignalWire input_sensitivity; higher = detects quieter speech; default 44).
#[derive(Debug, Clone)]
pub struct Vad {
    sample_rate: u32,
    /// A voiced frame is at least this far above the noise floor.
    margin_db: f32,
    /// ... and at least this loud.
    absolute_dbfs: f32,
    floor_dbfs: f32,
    speaking: bool,
    /// Not speaking: consecutive voiced audio so far (onset candidate).
    onset_ms: u32,
    /// Speaking: span from the first to the last voiced frame of the burst.
    speech_ms: u32,
    /// Speaking: audio since the last voiced frame.
    since_voiced_ms: u32,
    /// Not speaking: audio since the last burst's last voiced frame (or since the start).
    silence_ms: u32,
    last_dbfs: f32,
}

impl Vad {
    /// A detector for PCM at `sample_rate` (0 is treated as 1). `sensitivity` is clamped to
    /// 0–100: at 0 speech must be louder than -20 dBFS and 18 dB above the noise floor, at 100
    /// louder than -70 dBFS and 6 dB above it; the default 44 gives -42 dBFS and ~12.7 dB.
    pub fn new(sample_rate: u32, sensitivity: u8) -> Self {
        let s = f32::from(sensitivity.min(100));
        Vad {
            sample_rate: sample_rate.max(1),
            margin_db: 6.0 + (100.0 - s) * 0.12,
            absolute_dbfs: -20.0 - 0.5 * s,
            floor_dbfs: FLOOR_START_DBFS,
            speaking: false,
            onset_ms: 0,
            speech_ms: 0,
            since_voiced_ms: 0,
            silence_ms: 0,
            last_dbfs: SILENCE_DBFS,
        }
    }

    /// Feeds the next frame (any length; its duration is its sample count at the sample rate).
    /// Empty frames are ignored.
    pub fn push_frame(&mut self, pcm: &[i16]) -> Option<VadEvent> {
        if pcm.is_empty() {
            return None;
        }
        let frame_ms = duration_ms(pcm.len(), self.sample_rate);
        let level = frame_dbfs(pcm);
        self.last_dbfs = level;
        let voiced = level > (self.floor_dbfs + self.margin_db).max(self.absolute_dbfs);
        self.track_floor(level, frame_ms);

        if self.speaking {
            if voiced {
                self.speech_ms = self
                    .speech_ms
                    .saturating_add(self.since_voiced_ms)
                    .saturating_add(frame_ms);
                self.since_voiced_ms = 0;
                None
            } else {
                self.since_voiced_ms = self.since_voiced_ms.saturating_add(frame_ms);
                if self.since_voiced_ms >= HANGOVER_MS {
                    self.speaking = false;
                    self.onset_ms = 0;
                    self.silence_ms = self.since_voiced_ms;
                    Some(VadEvent::SpeechEnded {
                        speech_ms: self.speech_ms,
                    })
                } else {
                    None
                }
            }
        } else if voiced {
            self.onset_ms = self.onset_ms.saturating_add(frame_ms);
            if self.onset_ms >= ONSET_MS {
                self.speaking = true;
                self.speech_ms = self.onset_ms;
                self.since_voiced_ms = 0;
                self.silence_ms = 0;
                Some(VadEvent::SpeechStarted)
            } else {
                self.silence_ms = self.silence_ms.saturating_add(frame_ms);
                None
            }
        } else {
            self.onset_ms = 0;
            self.silence_ms = self.silence_ms.saturating_add(frame_ms);
            None
        }
    }

    /// The noise floor falls quickly to quieter audio and climbs slowly (so speech, with its
    /// gaps, barely moves it, while a steady noise is learnt within seconds).
    fn track_floor(&mut self, level: f32, frame_ms: u32) {
        if level < self.floor_dbfs {
            self.floor_dbfs += FLOOR_FALL * (level - self.floor_dbfs);
        } else {
            let rise = FLOOR_RISE_DB_PER_S * frame_ms as f32 / 1000.0;
            self.floor_dbfs = (self.floor_dbfs + rise).min(level);
        }
        self.floor_dbfs = self.floor_dbfs.clamp(FLOOR_MIN_DBFS, 0.0);
    }

    /// Whether speech is in progress (from `SpeechStarted` to `SpeechEnded`).
    pub fn is_speech(&self) -> bool {
        self.speaking
    }

    /// Silence since the last burst's last voiced frame (so including the hangover), or since
    /// the start if nothing was said yet; 0 while speaking.
    pub fn silence_ms(&self) -> u32 {
        if self.speaking {
            0
        } else {
            self.silence_ms
        }
    }

    /// Length of the current burst so far (first to last voiced frame); 0 when not speaking.
    pub fn speech_ms(&self) -> u32 {
        if self.speaking {
            self.speech_ms
        } else {
            0
        }
    }

    /// The tracked noise floor, dBFS.
    pub fn noise_floor_dbfs(&self) -> f32 {
        self.floor_dbfs
    }

    /// Level of the last frame, dBFS.
    pub fn last_level_dbfs(&self) -> f32 {
        self.last_dbfs
    }
}

/// Synthetic audio for the detector tests: no files, all generated.
#[cfg(test)]
pub(crate) mod test_audio {
    use crate::tone::ToneGenerator;
    use std::f64::consts::TAU;

    /// Small xorshift64 generator for reproducible noise.
    pub struct XorShift(u64);

    impl XorShift {
        pub fn new(seed: u64) -> Self {
            XorShift(seed.max(1))
        }

        pub fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform in [-1, 1).
        pub fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    pub fn samples(rate: u32, ms: u32) -> usize {
        (u64::from(rate) * u64::from(ms) / 1000) as usize
    }

    pub fn silence(rate: u32, ms: u32) -> Vec<i16> {
        vec![0; samples(rate, ms)]
    }

    /// Uniform white noise with an RMS of `rms_dbfs`.
    pub fn noise(rng: &mut XorShift, rate: u32, ms: u32, rms_dbfs: f64) -> Vec<i16> {
        let peak = 32768.0 * 10f64.powf(rms_dbfs / 20.0) * 3f64.sqrt();
        (0..samples(rate, ms))
            .map(|_| (rng.uniform() * peak).round() as i16)
            .collect()
    }

    pub fn tone(rate: u32, freq: f32, amplitude: i16, ms: u32) -> Vec<i16> {
        let mut out = vec![0; samples(rate, ms)];
        ToneGenerator::new(rate, &[freq], amplitude).fill(&mut out);
        out
    }

    /// One syllable: harmonics of `f0` (1/k amplitudes, below 3.6 kHz) under a Hann envelope,
    /// with a slight pitch glide; peaks at most `peak`.
    pub fn syllable(rate: u32, f0: f64, ms: u32, peak: f64) -> Vec<i16> {
        let n = samples(rate, ms);
        let harmonics: Vec<usize> = (1..=24)
            .filter(|&k| f0 * k as f64 * 1.1 < 3600.0_f64.min(f64::from(rate) / 2.0))
            .collect();
        let norm: f64 = harmonics.iter().map(|&k| 1.0 / k as f64).sum();
        let mut phase = 0.0f64;
        (0..n)
            .map(|i| {
                let t = i as f64 / n as f64;
                let f = f0 * (1.0 + 0.1 * t);
                phase += TAU * f / f64::from(rate);
                let env = (std::f64::consts::PI * t).sin().powi(2);
                let v: f64 = harmonics
                    .iter()
                    .map(|&k| (k as f64 * phase + k as f64 * 0.7).sin() / k as f64)
                    .sum();
                (peak * env * v / norm).round() as i16
            })
            .collect()
    }

    /// A word: syllables of the given lengths, 100 ms apart.
    pub fn word(rate: u32, f0: f64, syllables: &[u32], peak: f64) -> Vec<i16> {
        let mut out = Vec::new();
        for (i, &ms) in syllables.iter().enumerate() {
            if i > 0 {
                out.extend(silence(rate, 100));
            }
            out.extend(syllable(rate, f0 + 10.0 * i as f64, ms, peak));
        }
        out
    }

    /// Mixes `b` into `a` (saturating), `a` keeping its length.
    pub fn mix(a: &mut [i16], b: &[i16]) {
        for (x, &y) in a.iter_mut().zip(b) {
            *x = x.saturating_add(y);
        }
    }

    /// Feeds `signal` in 20 ms frames, collecting `(frame index, output)`.
    pub fn run<T>(
        rate: u32,
        signal: &[i16],
        mut f: impl FnMut(&[i16]) -> Option<T>,
    ) -> Vec<(usize, T)> {
        signal
            .chunks(samples(rate, 20))
            .enumerate()
            .filter_map(|(i, frame)| f(frame).map(|t| (i, t)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_audio::*;
    use super::*;

    const RATE: u32 = 8000;

    #[test]
    fn frame_level() {
        assert_eq!(frame_dbfs(&[]), -100.0);
        assert_eq!(frame_dbfs(&[0; 160]), -100.0);
        let sine = tone(RATE, 1000.0, 16384, 20);
        let db = frame_dbfs(&sine);
        assert!((db - (-9.03)).abs() < 0.2, "{db}");
        let mut rng = XorShift::new(7);
        let n = noise(&mut rng, RATE, 1000, -50.0);
        assert!((frame_dbfs(&n) + 50.0).abs() < 0.5);
    }

    #[test]
    fn detects_a_word_and_its_end_after_hangover() {
        let mut vad = Vad::new(RATE, DEFAULT_SENSITIVITY);
        let mut signal = silence(RATE, 1000);
        signal.extend(word(RATE, 150.0, &[200, 200], 10000.0)); // 1000..1500 ms
        signal.extend(silence(RATE, 1000));
        let mut speech_during_gap = false;
        let events = run(RATE, &signal, |frame| {
            let ev = vad.push_frame(frame);
            speech_during_gap |= vad.is_speech();
            ev
        });
        assert!(speech_during_gap);
        assert_eq!(events.len(), 2, "{events:?}");
        let (start, ev) = events[0];
        assert_eq!(ev, VadEvent::SpeechStarted);
        assert!((50..56).contains(&start), "start frame {start}");
        let (end, ev) = events[1];
        let VadEvent::SpeechEnded { speech_ms } = ev else {
            panic!("{ev:?}");
        };
        assert!((350..=500).contains(&speech_ms), "{speech_ms}");
        // Ends one hangover after the last voiced frame, i.e. shortly after 1500 ms.
        assert!((83..=90).contains(&end), "end frame {end}");
        assert!(!vad.is_speech());
        assert!(vad.silence_ms() >= 1000 - 100, "{}", vad.silence_ms());
    }

    #[test]
    fn syllable_gaps_are_bridged_word_gaps_split() {
        let mut vad = Vad::new(RATE, DEFAULT_SENSITIVITY);
        let mut signal = silence(RATE, 500);
        for _ in 0..3 {
            signal.extend(word(RATE, 130.0, &[200, 200, 200], 9000.0));
            signal.extend(silence(RATE, 400));
        }
        signal.extend(silence(RATE, 500));
        let events = run(RATE, &signal, |f| vad.push_frame(f));
        let starts = events
            .iter()
            .filter(|(_, e)| *e == VadEvent::SpeechStarted)
            .count();
        assert_eq!(starts, 3, "{events:?}");
        assert_eq!(events.len(), 6);
    }

    #[test]
    fn silence_ms_counts_while_not_speaking() {
        let mut vad = Vad::new(RATE, DEFAULT_SENSITIVITY);
        for _ in 0..10 {
            assert_eq!(vad.push_frame(&[0; 160]), None);
        }
        assert_eq!(vad.silence_ms(), 200);
        assert_eq!(vad.push_frame(&[]), None);
        assert_eq!(vad.silence_ms(), 200);
    }

    #[test]
    fn quiet_on_silence_and_low_noise() {
        let mut vad = Vad::new(RATE, DEFAULT_SENSITIVITY);
        assert!(run(RATE, &silence(RATE, 10_000), |f| vad.push_frame(f)).is_empty());

        // -50 dBFS white noise: never speech at the default sensitivity.
        let mut rng = XorShift::new(0x1234_5678);
        let mut vad = Vad::new(RATE, DEFAULT_SENSITIVITY);
        let n = noise(&mut rng, RATE, 10_000, -50.0);
        assert!(run(RATE, &n, |f| vad.push_frame(f)).is_empty());

        // Even at full sensitivity, once the floor has adapted.
        let mut vad = Vad::new(RATE, 100);
        run(RATE, &noise(&mut rng, RATE, 5_000, -50.0), |f| {
            vad.push_frame(f)
        });
        assert!(!vad.is_speech());
        assert!((vad.noise_floor_dbfs() + 50.0).abs() < 3.0);
        let n = noise(&mut rng, RATE, 10_000, -50.0);
        let events = run(RATE, &n, |f| vad.push_frame(f));
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn speech_over_noise_is_detected() {
        let mut rng = XorShift::new(99);
        let mut signal = noise(&mut rng, RATE, 4000, -50.0);
        let w = word(RATE, 180.0, &[200, 200], 10000.0);
        mix(&mut signal[samples(RATE, 2000)..], &w);
        let mut vad = Vad::new(RATE, DEFAULT_SENSITIVITY);
        let events = run(RATE, &signal, |f| vad.push_frame(f));
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].1, VadEvent::SpeechStarted);
    }

    #[test]
    fn sensitivity_moves_the_threshold() {
        // Quiet speech (peaks ~-36 dBFS, RMS ~-45 dBFS).
        let mut signal = silence(RATE, 500);
        signal.extend(word(RATE, 150.0, &[200, 200], 500.0));
        signal.extend(silence(RATE, 500));
        let count = |sensitivity: u8| {
            let mut vad = Vad::new(RATE, sensitivity);
            run(RATE, &signal, |f| vad.push_frame(f)).len()
        };
        assert_eq!(count(90), 2);
        assert_eq!(count(100), 2);
        assert_eq!(count(DEFAULT_SENSITIVITY), 0);
        assert_eq!(count(10), 0);
        // Loud speech is heard at any sensitivity.
        let mut loud = silence(RATE, 500);
        loud.extend(word(RATE, 150.0, &[200, 200], 30000.0));
        loud.extend(silence(RATE, 500));
        let mut vad = Vad::new(RATE, 0);
        assert_eq!(run(RATE, &loud, |f| vad.push_frame(f)).len(), 2);
    }

    #[test]
    fn other_sample_rates() {
        let rate = 16000;
        let mut signal = silence(rate, 500);
        signal.extend(word(rate, 150.0, &[200, 200], 10000.0));
        signal.extend(silence(rate, 500));
        let mut vad = Vad::new(rate, DEFAULT_SENSITIVITY);
        let events = run(rate, &signal, |f| vad.push_frame(f));
        assert_eq!(events.len(), 2, "{events:?}");
        // A zero rate does not panic.
        let mut vad = Vad::new(0, 200);
        vad.push_frame(&[i16::MAX; 160]);
        vad.push_frame(&[i16::MIN; 160]);
    }
}
