//! Answering machine detection on the far end's audio, built on [`Vad`]. Pure: driven by PCM
//! frames (normally 20 ms); the audio itself is the clock.
//!
//! Classic greeting-length AMD: a person answers with a short utterance ("hello?") and then
//! waits; a machine talks on. The verdict is reached as soon as one rule fires:
//!
//! - **Machine**: the voice heard since the first speech (sum of the bursts, the current one
//!   included) exceeds `machine_voice_threshold_ms`, or `machine_words_threshold` bursts were
//!   heard, or a beep was heard.
//! - **Human**: speech was heard, then `end_silence_timeout_ms` of silence, without either
//!   machine rule firing.
//! - **Unknown**: no speech within `initial_timeout_ms` (SignalWire reports silence as UNKNOWN).
//!
//! After Machine the detector waits for the greeting to end: a beep (a steady single tone of
//! 800–2100 Hz for ≥ 150 ms) or `machine_ready_timeout_ms` of silence gives **Ready**; speech
//! starting again after Ready gives **NotReady** (greeting restarted), followed by another Ready
//! when it ends. Callers not asked for `detect_interruptions` simply drop NotReady and the
//! Ready after it.

use crate::tone::goertzel_dbfs;
use crate::vad::{duration_ms, frame_dbfs, Vad, VadEvent, DEFAULT_SENSITIVITY};
use std::collections::VecDeque;

/// A detector verdict or greeting-lifecycle marker, in SignalWire's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmdResult {
    /// `HUMAN`.
    Human,
    /// `MACHINE`.
    Machine,
    /// `UNKNOWN` (nothing said within the initial timeout).
    Unknown,
    /// `READY` (after Machine): the greeting ended (beep, or end-of-greeting silence).
    Ready,
    /// `NOT_READY` (after Ready): the greeting started again.
    NotReady,
}

/// Tuning, in milliseconds (SignalWire's `calling.detect` machine params are seconds).
#[derive(Debug, Clone)]
pub struct AmdParams {
    /// Wait for the first voice (`initial_timeout`, default 4500).
    pub initial_timeout_ms: u32,
    /// Silence after a short utterance that makes it a Human (`end_silence_timeout`, 1000).
    pub end_silence_timeout_ms: u32,
    /// A greeting with more voice than this is a machine (`machine_voice_threshold`, 1250).
    pub machine_voice_threshold_ms: u32,
    /// This many speech bursts is a machine (`machine_words_threshold`, 6).
    pub machine_words_threshold: u32,
    /// Silence after a machine's greeting that makes it Ready (`machine_ready_timeout`, 3000).
    pub machine_ready_timeout_ms: u32,
    /// Listen for the beep (true).
    pub detect_beep: bool,
}

impl Default for AmdParams {
    fn default() -> Self {
        AmdParams {
            initial_timeout_ms: 4500,
            end_silence_timeout_ms: 1000,
            machine_voice_threshold_ms: 1250,
            machine_words_threshold: 6,
            machine_ready_timeout_ms: 3000,
            detect_beep: true,
        }
    }
}

/// Lowest and highest beep frequency, Hz.
const BEEP_MIN_HZ: f32 = 800.0;
const BEEP_MAX_HZ: f32 = 2100.0;
/// Frequency grid the beep search scans (finer than the 50 Hz resolution of a 20 ms frame).
const BEEP_STEP_HZ: f32 = 25.0;
/// A beep is steady for at least this long.
const BEEP_MIN_MS: u32 = 150;
/// A beep frame is at least this loud.
const BEEP_MIN_DBFS: f32 = -40.0;
/// Goertzel level minus RMS level for a single tone (a pure sine gives +3 dB).
const BEEP_MIN_PURITY_DB: f32 = 0.0;
/// Consecutive frames' frequencies may differ by this much.
const BEEP_DRIFT_HZ: f32 = 50.0;

/// Steady single tone in 800–2100 Hz.
#[derive(Debug, Clone)]
struct BeepDetector {
    sample_rate: u32,
    freq: f32,
    on_ms: u32,
    /// Already reported the current tone.
    reported: bool,
}

impl BeepDetector {
    fn new(sample_rate: u32) -> Self {
        BeepDetector {
            sample_rate,
            freq: 0.0,
            on_ms: 0,
            reported: false,
        }
    }

    /// True once per tone, on the frame it reaches [`BEEP_MIN_MS`].
    fn push(&mut self, pcm: &[i16], frame_ms: u32) -> bool {
        match self.dominant_tone(pcm) {
            Some(freq) => {
                if self.on_ms > 0 && (freq - self.freq).abs() <= BEEP_DRIFT_HZ {
                    self.on_ms = self.on_ms.saturating_add(frame_ms);
                } else {
                    self.on_ms = frame_ms;
                    self.reported = false;
                }
                self.freq = freq;
                if self.on_ms >= BEEP_MIN_MS && !self.reported {
                    self.reported = true;
                    return true;
                }
                false
            }
            None => {
                self.on_ms = 0;
                self.reported = false;
                false
            }
        }
    }

    /// The frequency of the single tone making up this frame, if it is one.
    fn dominant_tone(&self, pcm: &[i16]) -> Option<f32> {
        let level = frame_dbfs(pcm);
        if level < BEEP_MIN_DBFS {
            return None;
        }
        let mut best = (f32::MIN, 0.0f32);
        let mut freq = BEEP_MIN_HZ;
        while freq <= BEEP_MAX_HZ {
            let db = goertzel_dbfs(pcm, self.sample_rate, freq);
            if db > best.0 {
                best = (db, freq);
            }
            freq += BEEP_STEP_HZ;
        }
        (best.0 - level >= BEEP_MIN_PURITY_DB).then_some(best.1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing said yet.
    Waiting,
    /// Speech heard, no verdict yet.
    Greeting,
    /// Machine: waiting for the end of the greeting.
    AwaitReady,
    /// Machine, Ready reported: watching for the greeting to restart.
    Ready,
    /// Human or Unknown reported; nothing more to say.
    Done,
}

/// Classic greeting-length AMD on the far end's audio, built on [`Vad`]; see the module docs.
#[derive(Debug, Clone)]
pub struct Amd {
    params: AmdParams,
    sample_rate: u32,
    vad: Vad,
    beep: BeepDetector,
    phase: Phase,
    elapsed_ms: u32,
    /// Voice in the bursts that ended.
    voice_ms: u32,
    bursts: u32,
    beep_heard: bool,
    /// Results found but not yet returned (one per frame).
    pending: VecDeque<AmdResult>,
}

impl Amd {
    /// A detector for PCM at `sample_rate` (0 is treated as 1), with the default VAD
    /// sensitivity.
    pub fn new(sample_rate: u32, params: AmdParams) -> Self {
        let sample_rate = sample_rate.max(1);
        Amd {
            params,
            sample_rate,
            vad: Vad::new(sample_rate, DEFAULT_SENSITIVITY),
            beep: BeepDetector::new(sample_rate),
            phase: Phase::Waiting,
            elapsed_ms: 0,
            voice_ms: 0,
            bursts: 0,
            beep_heard: false,
            pending: VecDeque::new(),
        }
    }

    /// Feeds the next frame (any length; normally 20 ms). Returns at most one result per frame;
    /// results found together come out on the following frames, in order.
    pub fn push_frame(&mut self, pcm: &[i16]) -> Option<AmdResult> {
        if pcm.is_empty() || self.phase == Phase::Done {
            return self.pending.pop_front();
        }
        let frame_ms = duration_ms(pcm.len(), self.sample_rate);
        self.elapsed_ms = self.elapsed_ms.saturating_add(frame_ms);
        let event = self.vad.push_frame(pcm);
        let beep = self.params.detect_beep && self.beep.push(pcm, frame_ms);
        if beep {
            self.beep_heard = true;
        }
        match event {
            Some(VadEvent::SpeechStarted) => self.bursts = self.bursts.saturating_add(1),
            Some(VadEvent::SpeechEnded { speech_ms }) => {
                self.voice_ms = self.voice_ms.saturating_add(speech_ms)
            }
            None => {}
        }
        let silent_for = |ms: u32, vad: &Vad| !vad.is_speech() && vad.silence_ms() >= ms;

        match self.phase {
            Phase::Waiting | Phase::Greeting if beep => {
                self.pending.push_back(AmdResult::Machine);
                self.pending.push_back(AmdResult::Ready);
                self.phase = Phase::Ready;
            }
            Phase::Waiting => {
                if self.bursts > 0 {
                    self.phase = Phase::Greeting;
                    self.judge_greeting();
                } else if self.elapsed_ms >= self.params.initial_timeout_ms {
                    self.pending.push_back(AmdResult::Unknown);
                    self.phase = Phase::Done;
                }
            }
            Phase::Greeting => self.judge_greeting(),
            Phase::AwaitReady => {
                if beep || silent_for(self.params.machine_ready_timeout_ms, &self.vad) {
                    self.pending.push_back(AmdResult::Ready);
                    self.phase = Phase::Ready;
                }
            }
            Phase::Ready => {
                if event == Some(VadEvent::SpeechStarted) {
                    self.pending.push_back(AmdResult::NotReady);
                    self.phase = Phase::AwaitReady;
                }
            }
            Phase::Done => {}
        }
        self.pending.pop_front()
    }

    /// Greeting phase: Machine, Human or keep listening.
    fn judge_greeting(&mut self) {
        let voice = self.voice_ms.saturating_add(self.vad.speech_ms());
        if voice > self.params.machine_voice_threshold_ms
            || self.bursts >= self.params.machine_words_threshold
        {
            self.pending.push_back(AmdResult::Machine);
            self.phase = Phase::AwaitReady;
        } else if !self.vad.is_speech()
            && self.vad.silence_ms() >= self.params.end_silence_timeout_ms
        {
            self.pending.push_back(AmdResult::Human);
            self.phase = Phase::Done;
        }
    }

    /// Whether a beep was heard (SignalWire's `beep: true`).
    pub fn beep_heard(&self) -> bool {
        self.beep_heard
    }

    /// Audio analysed so far, ms; stops growing after Human or Unknown (SignalWire's
    /// `detect_ms`).
    pub fn elapsed_ms(&self) -> u32 {
        self.elapsed_ms
    }

    /// Speech bursts heard so far ("words").
    pub fn words(&self) -> u32 {
        self.bursts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::test_audio::*;

    const RATE: u32 = 8000;

    fn detect(rate: u32, params: AmdParams, signal: &[i16]) -> (Vec<(usize, AmdResult)>, Amd) {
        let mut amd = Amd::new(rate, params);
        let results = run(rate, signal, |f| amd.push_frame(f));
        (results, amd)
    }

    fn kinds(results: &[(usize, AmdResult)]) -> Vec<AmdResult> {
        results.iter().map(|r| r.1.clone()).collect()
    }

    /// A greeting of `words` two-syllable words, 300 ms apart (~800 ms per word).
    fn greeting(rate: u32, words: usize) -> Vec<i16> {
        let mut s = Vec::new();
        for i in 0..words {
            s.extend(word(
                rate,
                140.0 + 15.0 * (i % 3) as f64,
                &[200, 200],
                10000.0,
            ));
            s.extend(silence(rate, 300));
        }
        s
    }

    #[test]
    fn hello_then_silence_is_human() {
        let mut s = silence(RATE, 500);
        s.extend(word(RATE, 170.0, &[250, 250], 10000.0)); // 0.6 s "hello?"
        s.extend(silence(RATE, 2000));
        let (results, amd) = detect(RATE, AmdParams::default(), &s);
        assert_eq!(kinds(&results), [AmdResult::Human]);
        // Speech ends at 1100 ms; Human one end_silence_timeout later.
        let frame = results[0].0;
        assert!((100..=110).contains(&frame), "{frame}");
        assert!(!amd.beep_heard());
        assert_eq!(amd.words(), 1);
    }

    #[test]
    fn long_greeting_then_beep_is_machine_then_ready() {
        let mut s = silence(RATE, 400);
        s.extend(greeting(RATE, 5)); // ~4 s
        s.extend(tone(RATE, 1000.0, 12000, 300));
        let beep_start = s.len() / 160 - 15;
        s.extend(silence(RATE, 1000));
        let (results, amd) = detect(RATE, AmdParams::default(), &s);
        assert_eq!(
            kinds(&results),
            [AmdResult::Machine, AmdResult::Ready],
            "{results:?}"
        );
        // Machine once 1.25 s of voice was heard (in the second word); Ready on the beep.
        assert!(results[0].0 < 160, "{results:?}");
        let ready = results[1].0;
        assert!(
            (beep_start + 7..=beep_start + 9).contains(&ready),
            "{ready} vs {beep_start}"
        );
        assert!(amd.beep_heard());
    }

    #[test]
    fn greeting_then_silence_is_ready_after_machine_ready_timeout() {
        let mut s = silence(RATE, 400);
        s.extend(greeting(RATE, 5));
        let end = s.len() / 160 - 15; // last word ended ~300 ms before
        s.extend(silence(RATE, 4000));
        let (results, amd) = detect(RATE, AmdParams::default(), &s);
        assert_eq!(kinds(&results), [AmdResult::Machine, AmdResult::Ready]);
        let ready = results[1].0;
        assert!((end + 148..=end + 152).contains(&ready), "{ready} vs {end}");
        assert!(!amd.beep_heard());
    }

    #[test]
    fn many_short_words_are_a_machine() {
        let mut s = silence(RATE, 200);
        for _ in 0..7 {
            s.extend(syllable(RATE, 150.0, 160, 10000.0));
            s.extend(silence(RATE, 350));
        }
        let params = AmdParams {
            machine_voice_threshold_ms: 10_000,
            ..AmdParams::default()
        };
        let (results, amd) = detect(RATE, params, &s);
        assert_eq!(kinds(&results), [AmdResult::Machine]);
        // Decided on the sixth burst's onset (each burst is 510 ms apart, onset ~40 ms in).
        assert!((134..=140).contains(&results[0].0), "{results:?}");
        assert_eq!(amd.words(), 7);
    }

    #[test]
    fn restart_after_ready_is_not_ready() {
        let params = AmdParams {
            machine_ready_timeout_ms: 1000,
            ..AmdParams::default()
        };
        let mut s = greeting(RATE, 3);
        s.extend(silence(RATE, 1500));
        s.extend(greeting(RATE, 2));
        s.extend(silence(RATE, 1500));
        let (results, _) = detect(RATE, params, &s);
        assert_eq!(
            kinds(&results),
            [
                AmdResult::Machine,
                AmdResult::Ready,
                AmdResult::NotReady,
                AmdResult::Ready
            ]
        );
    }

    #[test]
    fn beep_alone_is_machine_and_ready() {
        let mut s = silence(RATE, 1000);
        s.extend(tone(RATE, 1400.0, 12000, 400));
        s.extend(silence(RATE, 500));
        let (results, amd) = detect(RATE, AmdParams::default(), &s);
        assert_eq!(kinds(&results), [AmdResult::Machine, AmdResult::Ready]);
        assert_eq!(results[1].0, results[0].0 + 1);
        assert!(amd.beep_heard());
    }

    #[test]
    fn silence_is_unknown_at_initial_timeout() {
        let (results, amd) = detect(RATE, AmdParams::default(), &silence(RATE, 10_000));
        assert_eq!(kinds(&results), [AmdResult::Unknown]);
        assert_eq!(results[0].0, 4500 / 20 - 1);
        // Analysis stops with the verdict.
        assert_eq!(amd.elapsed_ms(), 4500);
    }

    #[test]
    fn low_noise_is_unknown() {
        let mut rng = XorShift::new(0xdead_beef);
        let n = noise(&mut rng, RATE, 8000, -50.0);
        let params = AmdParams {
            initial_timeout_ms: 3000,
            ..AmdParams::default()
        };
        let (results, _) = detect(RATE, params, &n);
        assert_eq!(kinds(&results), [AmdResult::Unknown]);
        assert_eq!(results[0].0, 3000 / 20 - 1);
    }

    #[test]
    fn speech_is_not_a_beep() {
        let mut s = silence(RATE, 200);
        s.extend(syllable(RATE, 150.0, 900, 12000.0));
        s.extend(silence(RATE, 1500));
        let params = AmdParams {
            machine_voice_threshold_ms: 5000,
            ..AmdParams::default()
        };
        let (results, amd) = detect(RATE, params, &s);
        assert_eq!(kinds(&results), [AmdResult::Human]);
        assert!(!amd.beep_heard());
    }

    #[test]
    fn verdicts_hold_over_background_noise() {
        let mut rng = XorShift::new(42);
        let mut s = silence(RATE, 500);
        s.extend(word(RATE, 170.0, &[250, 250], 10000.0));
        s.extend(silence(RATE, 2000));
        let n = noise(&mut rng, RATE, 4000, -45.0);
        mix(&mut s, &n);
        let (results, _) = detect(RATE, AmdParams::default(), &s);
        assert_eq!(kinds(&results), [AmdResult::Human]);

        let mut s = silence(RATE, 400);
        s.extend(greeting(RATE, 5));
        s.extend(tone(RATE, 1000.0, 12000, 300));
        s.extend(silence(RATE, 500));
        let n = noise(&mut rng, RATE, 6000, -45.0);
        mix(&mut s, &n);
        let (results, amd) = detect(RATE, AmdParams::default(), &s);
        assert_eq!(kinds(&results), [AmdResult::Machine, AmdResult::Ready]);
        assert!(amd.beep_heard());
    }

    #[test]
    fn works_at_16k() {
        let rate = 16000;
        let mut s = silence(rate, 300);
        s.extend(greeting(rate, 4));
        s.extend(tone(rate, 2000.0, 12000, 300));
        let (results, amd) = detect(rate, AmdParams::default(), &s);
        assert_eq!(kinds(&results), [AmdResult::Machine, AmdResult::Ready]);
        assert!(amd.beep_heard());
        // A zero rate and odd frames do not panic.
        let mut amd = Amd::new(0, AmdParams::default());
        amd.push_frame(&[i16::MIN; 7]);
        amd.push_frame(&[]);
    }
}
