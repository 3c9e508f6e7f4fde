//! Fax tone detection (T.30): CNG from a calling fax, CED from an answering one. Pure: driven
//! by PCM frames (normally 20 ms); the audio itself is the clock.
//!
//! A frame carries a tone when it is loud enough and the tone holds at least half of its power
//! (Goertzel at the nominal frequency and ±20 Hz, against the frame's RMS), so speech, music and
//! other single tones do not count.

use crate::tone::goertzel_dbfs;
use crate::vad::{duration_ms, frame_dbfs};

/// CNG: calling tone, 1100 Hz.
pub const CNG_HZ: f32 = 1100.0;
/// CED: called station identification (answer tone), 2100 Hz.
pub const CED_HZ: f32 = 2100.0;

/// A CNG burst (nominally 500 ms) must last this long...
const CNG_MIN_MS: u32 = 400;
/// ... and no longer than this.
const CNG_MAX_MS: u32 = 800;
/// Steady CED needed before reporting it.
const CED_REPORT_MS: u32 = 500;
/// Dropouts shorter than this do not break a tone (CED phase reversals, codec glitches).
const MAX_DROPOUT_MS: u32 = 40;
/// A frame must be at least this loud to carry a tone.
const MIN_LEVEL_DBFS: f32 = -45.0;
/// Goertzel level minus RMS level: a pure sine gives +3 dB; 0 dB = the tone is half the power.
const MIN_PURITY_DB: f32 = 0.0;

/// What a fax terminal on the call reports (a `calling.call.fax` event underneath).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaxProgress {
    /// One more page went (send) or came (receive) whole; `number` counts from 1.
    Page { number: u32 },
    /// The fax session is over (done, failed, stopped).
    Finished(FaxOutcome),
}

/// How a fax session ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaxOutcome {
    pub success: bool,
    /// The T.30 completion code (0: OK).
    pub code: i32,
    pub text: String,
    /// Pages that went (send) or came (receive) whole.
    pub pages: u32,
    /// The far end's station id (TSI or CSI), empty when it sent none.
    pub remote_identity: String,
    /// The image data rate of the last page (bit/s), 0 when no page started.
    pub bit_rate: u32,
    /// Whether error correction (ECM) was used.
    pub ecm: bool,
}

/// A fax tone heard on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaxTone {
    /// 1100 Hz, 0.5 s on / 3 s off: a calling fax. Reported at the end of the first burst of
    /// the right length (400–800 ms).
    Cng,
    /// 2100 Hz continuous (≥ 2.6 s): an answering fax. Reported after 500 ms of steady tone.
    Ced,
}

/// Tracks one tone's on-time across frames.
#[derive(Debug, Clone, Default)]
struct ToneRun {
    /// Tone time so far (dropouts bridged into it).
    on_ms: u32,
    /// Time since the tone was last present, while `on_ms > 0`.
    dropout_ms: u32,
}

impl ToneRun {
    /// Updates with one frame; returns the length of a run that just ended.
    fn push(&mut self, present: bool, frame_ms: u32) -> Option<u32> {
        if present {
            self.on_ms = self
                .on_ms
                .saturating_add(self.dropout_ms)
                .saturating_add(frame_ms);
            self.dropout_ms = 0;
            None
        } else if self.on_ms > 0 {
            self.dropout_ms = self.dropout_ms.saturating_add(frame_ms);
            if self.dropout_ms > MAX_DROPOUT_MS {
                let ended = self.on_ms;
                *self = ToneRun::default();
                Some(ended)
            } else {
                None
            }
        } else {
            None
        }
    }
}

/// CNG / CED detector; each tone is reported at most once per detector.
#[derive(Debug, Clone)]
pub struct FaxToneDetector {
    sample_rate: u32,
    cng: ToneRun,
    ced: ToneRun,
    cng_reported: bool,
    ced_reported: bool,
    /// A result found on a frame that already reported the other tone.
    pending: Option<FaxTone>,
}

impl FaxToneDetector {
    /// A detector for PCM at `sample_rate` (0 is treated as 1).
    pub fn new(sample_rate: u32) -> Self {
        FaxToneDetector {
            sample_rate: sample_rate.max(1),
            cng: ToneRun::default(),
            ced: ToneRun::default(),
            cng_reported: false,
            ced_reported: false,
            pending: None,
        }
    }

    /// Feeds the next frame (any length; normally 20 ms). Empty frames are ignored.
    pub fn push_frame(&mut self, pcm: &[i16]) -> Option<FaxTone> {
        if pcm.is_empty() {
            return self.pending.take();
        }
        let frame_ms = duration_ms(pcm.len(), self.sample_rate);
        let level = frame_dbfs(pcm);
        let loud = level >= MIN_LEVEL_DBFS;
        let has = |freq: f32| loud && tone_purity_db(pcm, self.sample_rate, freq) >= MIN_PURITY_DB;

        let mut found = Vec::with_capacity(2);
        if !self.ced_reported {
            let present = has(CED_HZ);
            self.ced.push(present, frame_ms);
            if self.ced.on_ms >= CED_REPORT_MS && self.ced.dropout_ms == 0 {
                self.ced_reported = true;
                found.push(FaxTone::Ced);
            }
        }
        if !self.cng_reported {
            let present = has(CNG_HZ);
            if let Some(run) = self.cng.push(present, frame_ms) {
                if (CNG_MIN_MS..=CNG_MAX_MS).contains(&run) {
                    self.cng_reported = true;
                    found.push(FaxTone::Cng);
                }
            }
        }
        let mut found = found.into_iter();
        match self.pending.take() {
            Some(earlier) => {
                self.pending = found.next();
                Some(earlier)
            }
            None => {
                let first = found.next();
                self.pending = found.next();
                first
            }
        }
    }
}

/// Best Goertzel level at `freq` or ±20 Hz, minus the frame's RMS level, dB.
fn tone_purity_db(pcm: &[i16], sample_rate: u32, freq: f32) -> f32 {
    let tone = [freq - 20.0, freq, freq + 20.0]
        .iter()
        .map(|&f| goertzel_dbfs(pcm, sample_rate, f))
        .fold(f32::MIN, f32::max);
    tone - frame_dbfs(pcm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::test_audio::*;

    const RATE: u32 = 8000;

    fn cng(rate: u32, cycles: usize) -> Vec<i16> {
        let mut s = silence(rate, 300);
        for _ in 0..cycles {
            s.extend(tone(rate, 1100.0, 8000, 500));
            s.extend(silence(rate, 3000));
        }
        s
    }

    fn detect(rate: u32, signal: &[i16]) -> Vec<(usize, FaxTone)> {
        let mut d = FaxToneDetector::new(rate);
        run(rate, signal, |f| d.push_frame(f))
    }

    #[test]
    fn cng_cadence_detected_once() {
        let hits = detect(RATE, &cng(RATE, 3));
        assert_eq!(hits.len(), 1, "{hits:?}");
        let (frame, tone) = hits[0];
        assert_eq!(tone, FaxTone::Cng);
        // Burst 300..800 ms; reported once its end is confirmed.
        assert!((40..=45).contains(&frame), "{frame}");
    }

    #[test]
    fn cng_with_noise_and_frequency_offset() {
        let mut rng = XorShift::new(5);
        let mut s = silence(RATE, 200);
        s.extend(tone(RATE, 1125.0, 6000, 520));
        s.extend(silence(RATE, 3000));
        let n = noise(&mut rng, RATE, 4000, -50.0);
        mix(&mut s, &n);
        let hits = detect(RATE, &s);
        assert_eq!(hits.iter().map(|h| h.1).collect::<Vec<_>>(), [FaxTone::Cng]);
    }

    #[test]
    fn ced_detected_after_half_a_second() {
        let mut s = silence(RATE, 200);
        s.extend(tone(RATE, 2100.0, 8000, 3000));
        s.extend(silence(RATE, 500));
        let hits = detect(RATE, &s);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].1, FaxTone::Ced);
        assert!((33..=37).contains(&hits[0].0), "{}", hits[0].0);
    }

    #[test]
    fn ced_survives_a_phase_reversal() {
        let mut s = tone(RATE, 2100.0, 8000, 310); // mid-frame
        let mut tail = tone(RATE, 2100.0, 8000, 1000);
        for x in tail.iter_mut() {
            *x = x.saturating_neg();
        }
        s.extend(tail);
        let hits = detect(RATE, &s);
        assert_eq!(hits.iter().map(|h| h.1).collect::<Vec<_>>(), [FaxTone::Ced]);
    }

    #[test]
    fn other_rates() {
        for rate in [16000, 48000] {
            let hits = detect(rate, &cng(rate, 2));
            assert_eq!(hits.iter().map(|h| h.1).collect::<Vec<_>>(), [FaxTone::Cng]);
            let hits = detect(rate, &tone(rate, 2100.0, 8000, 1000));
            assert_eq!(hits.iter().map(|h| h.1).collect::<Vec<_>>(), [FaxTone::Ced]);
        }
    }

    #[test]
    fn not_fax() {
        // A 1 kHz tone, continuous and in CNG-like cadence.
        assert!(detect(RATE, &tone(RATE, 1000.0, 8000, 5000)).is_empty());
        let mut s = Vec::new();
        for _ in 0..3 {
            s.extend(tone(RATE, 1000.0, 8000, 500));
            s.extend(silence(RATE, 3000));
        }
        assert!(detect(RATE, &s).is_empty());
        // A continuous 1100 Hz tone is not CNG cadence.
        assert!(detect(RATE, &tone(RATE, 1100.0, 8000, 5000)).is_empty());
        // Speech.
        let mut speech = Vec::new();
        for i in 0..8 {
            speech.extend(word(RATE, 120.0 + 10.0 * i as f64, &[200, 200], 12000.0));
            speech.extend(silence(RATE, 300));
        }
        assert!(detect(RATE, &speech).is_empty());
        // Noise, silence, a quiet CED below the level floor.
        let mut rng = XorShift::new(3);
        assert!(detect(RATE, &noise(&mut rng, RATE, 5000, -20.0)).is_empty());
        assert!(detect(RATE, &silence(RATE, 5000)).is_empty());
        assert!(detect(RATE, &tone(RATE, 2100.0, 100, 3000)).is_empty());
    }

    #[test]
    fn both_tones_each_once() {
        let mut s = cng(RATE, 1);
        s.extend(tone(RATE, 2100.0, 8000, 3000));
        s.extend(cng(RATE, 2));
        s.extend(tone(RATE, 2100.0, 8000, 3000));
        let mut d = FaxToneDetector::new(RATE);
        let hits: Vec<FaxTone> = run(RATE, &s, |f| d.push_frame(f))
            .into_iter()
            .map(|h| h.1)
            .collect();
        assert_eq!(hits, [FaxTone::Cng, FaxTone::Ced]);
        assert_eq!(d.push_frame(&[]), None);
    }
}
