//! The detector of a `calling.detect` (and SWML `detect_machine`) on the far end's audio:
//! answering machine and fax tones (a `FrameListener`, media::listen). It also keeps the detect's
//! `timeout` on the media clock (so every detect has one, digit detects included); digits come
//! from the call's own DTMF reporting. A machine detect also reports fax tones so that one
//! detect covers SWML's `detectors: "amd,fax"`. Emits [`DetectEvent`]s, `Finished` once, last.

use crate::amd::{Amd, AmdParams, AmdResult};
use crate::fax::{FaxTone, FaxToneDetector};

/// How long a machine detect holds back a MACHINE verdict that came with a tone: a fax tone
/// also looks like a beep, and CNG is only recognised at the end of
/// its 0.5 s burst (up to 0.8 s).
const TONE_HOLD_MS: u32 = 1_000;

/// What a detect listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectMode {
    Machine,
    Fax,
    /// Digits are found by the call's DTMF reporting; the listener only keeps the timeout.
    Digit,
}

/// A machine detect's parameters.
#[derive(Debug, Clone, Default)]
pub struct MachineConfig {
    pub amd: AmdParams,
    /// After MACHINE, wait for the greeting to end (READY).
    pub detect_message_end: bool,
    /// After READY, report the greeting starting again (NOT_READY).
    pub detect_interruptions: bool,
}

/// What a [`DetectListener`] runs.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    pub mode: DetectMode,
    pub machine: MachineConfig,
    /// Fax detects: the one tone wanted (None = either).
    pub tone: Option<FaxTone>,
    /// None: no limit.
    pub timeout_ms: Option<u64>,
}

/// What a detect heard.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectEvent {
    /// An answering-machine verdict or greeting marker, with whether a beep was heard.
    Machine { result: AmdResult, beep: bool },
    /// A fax tone.
    Fax(FaxTone),
    /// The detector stopped by itself (its timeout, a fax tone, a final verdict); last.
    Finished,
}

fn machine_event(result: AmdResult, beep: bool) -> DetectEvent {
    DetectEvent::Machine { result, beep }
}

fn fax_event(tone: FaxTone) -> DetectEvent {
    DetectEvent::Fax(tone)
}

/// What the listener runs, built on its first frame (when the rate is known).
enum Detector {
    Machine {
        amd: Amd,
        fax: FaxToneDetector,
        /// A verdict was given (MACHINE / HUMAN / UNKNOWN).
        decided: bool,
        /// Results held back while a tone might be a fax tone, and audio left to hold them.
        held: Vec<AmdResult>,
        hold_ms: u32,
    },
    Fax {
        fax: FaxToneDetector,
    },
    Digit,
}

/// The detect's listener on the far end's audio.
pub struct DetectListener {
    mode: DetectMode,
    machine: MachineConfig,
    tone: Option<FaxTone>,
    timeout_us: Option<u64>,
    started_us: Option<u64>,
    detector: Option<Detector>,
    rate: u32,
    silence: Vec<i16>,
    done: bool,
}

impl DetectListener {
    pub fn new(config: DetectConfig) -> DetectListener {
        DetectListener {
            mode: config.mode,
            machine: config.machine,
            tone: config.tone,
            timeout_us: config.timeout_ms.map(|ms| ms.saturating_mul(1000)),
            started_us: None,
            detector: None,
            rate: 0,
            silence: Vec::new(),
            done: false,
        }
    }

    fn build(&self, rate: u32) -> Detector {
        match self.mode {
            DetectMode::Machine => Detector::Machine {
                amd: Amd::new(rate, self.machine.amd.clone()),
                fax: FaxToneDetector::new(rate),
                decided: false,
                held: Vec::new(),
                hold_ms: 0,
            },
            DetectMode::Fax => Detector::Fax {
                fax: FaxToneDetector::new(rate),
            },
            DetectMode::Digit => Detector::Digit,
        }
    }

    fn finish(&mut self, events: &mut Vec<DetectEvent>) {
        self.done = true;
        events.push(DetectEvent::Finished);
    }

    fn frame(&mut self, now_us: u64, pcm: &[i16], rate: u32, events: &mut Vec<DetectEvent>) {
        if self.done {
            return;
        }
        let started = *self.started_us.get_or_insert(now_us);
        if self.detector.is_none() || self.rate != rate {
            self.rate = rate;
            self.detector = Some(self.build(rate));
        }
        let frame_ms = (pcm.len() as u64 * 1000 / u64::from(rate.max(1))) as u32;
        let machine = self.machine.clone();
        let mut finish = false;
        match self.detector.as_mut() {
            Some(Detector::Machine {
                amd,
                fax,
                decided,
                held,
                hold_ms,
            }) => {
                if let Some(tone) = fax.push_frame(pcm) {
                    // A fax, not a person or a machine greeting: report it, drop what was held.
                    events.push(fax_event(tone));
                    held.clear();
                    finish = true;
                } else {
                    let mut results = Vec::new();
                    if let Some(r) = amd.push_frame(pcm) {
                        results.push(r);
                    }
                    if !held.is_empty()
                        || (results.first() == Some(&AmdResult::Machine) && amd.beep_heard())
                    {
                        // A verdict from a tone (a beep, or a fax tone?): wait to see whether it is a fax tone.
                        if held.is_empty() {
                            *hold_ms = TONE_HOLD_MS;
                        }
                        held.append(&mut results);
                        *hold_ms = hold_ms.saturating_sub(frame_ms);
                        if *hold_ms == 0 {
                            results = std::mem::take(held);
                        }
                    }
                    for r in results {
                        let beep = amd.beep_heard();
                        match r {
                            AmdResult::Human | AmdResult::Unknown => {
                                *decided = true;
                                events.push(machine_event(r.clone(), beep));
                                finish = true;
                            }
                            AmdResult::Machine => {
                                *decided = true;
                                events.push(machine_event(AmdResult::Machine, beep));
                                if !machine.detect_message_end {
                                    finish = true;
                                }
                            }
                            AmdResult::Ready if machine.detect_message_end => {
                                events.push(machine_event(AmdResult::Ready, beep));
                                if !machine.detect_interruptions {
                                    finish = true;
                                }
                            }
                            AmdResult::NotReady if machine.detect_interruptions => {
                                events.push(machine_event(AmdResult::NotReady, beep));
                            }
                            _ => {}
                        }
                        if finish {
                            break;
                        }
                    }
                }
            }
            Some(Detector::Fax { fax }) => {
                if let Some(tone) = fax.push_frame(pcm) {
                    if self.tone.is_none_or(|t| t == tone) {
                        events.push(fax_event(tone));
                        finish = true;
                    }
                }
            }
            Some(Detector::Digit) | None => {}
        }
        if !finish
            && self
                .timeout_us
                .is_some_and(|t| now_us.saturating_sub(started) >= t)
        {
            // Timeout: a machine detect without a verdict says UNKNOWN first.
            if let Some(Detector::Machine { decided: false, .. }) = self.detector {
                events.push(machine_event(AmdResult::Unknown, false));
            }
            finish = true;
        }
        if finish {
            self.finish(events);
        }
    }
}

impl DetectListener {
    /// One frame of the far end's audio.
    pub fn push_frame(
        &mut self,
        now_us: u64,
        pcm: &[i16],
        rate: u32,
        events: &mut Vec<DetectEvent>,
    ) {
        self.frame(now_us, pcm, rate, events);
    }

    /// No audio arrived this tick: the far end is silent (many peers send nothing then), and
    /// the detectors' clock is the audio, so they hear 20 ms of silence.
    pub fn idle(&mut self, now_us: u64, events: &mut Vec<DetectEvent>) {
        let rate = if self.rate == 0 { 8000 } else { self.rate };
        let mut silence = std::mem::take(&mut self.silence);
        silence.resize(rate as usize / 50, 0);
        self.frame(now_us, &silence, rate, events);
        self.silence = silence;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;
    const FRAME: usize = 160;

    /// The API's defaults: `machine_ready_timeout` is `end_silence_timeout` (1 s), a machine
    /// detect waits for the end of the message and ignores interruptions.
    fn defaults() -> MachineConfig {
        MachineConfig {
            amd: AmdParams {
                machine_ready_timeout_ms: 1000,
                ..AmdParams::default()
            },
            detect_message_end: true,
            detect_interruptions: false,
        }
    }

    fn listener(
        mode: DetectMode,
        machine: MachineConfig,
        timeout_s: Option<f64>,
    ) -> DetectListener {
        DetectListener::new(DetectConfig {
            mode,
            machine,
            tone: None,
            timeout_ms: timeout_s.map(|t| (t * 1e3) as u64),
        })
    }

    fn tone(hz: f32, ms: usize, amp: f32) -> Vec<i16> {
        (0..RATE as usize * ms / 1000)
            .map(|i| {
                ((2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin() * amp) as i16
            })
            .collect()
    }

    /// Voiced, speech-like: a 150 Hz buzz with harmonics in 400 ms words, 300 ms apart.
    fn voice(ms: usize) -> Vec<i16> {
        (0..RATE as usize * ms / 1000)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                if (i * 1000 / RATE as usize) % 700 >= 400 {
                    return 0;
                }
                let buzz: f32 = (1..8)
                    .map(|k| (2.0 * std::f32::consts::PI * 150.0 * k as f32 * t).sin() / k as f32)
                    .sum();
                (buzz * 3000.0 * (0.6 + 0.4 * (2.0 * std::f32::consts::PI * 5.0 * t).sin())) as i16
            })
            .collect()
    }

    /// Feeds audio in 20 ms frames on a virtual clock, then silence (idle ticks) for
    /// `idle_ms`; returns every event.
    fn run(l: &mut DetectListener, audio: &[i16], idle_ms: u64) -> Vec<DetectEvent> {
        let mut events = Vec::new();
        let mut now = 0u64;
        for f in audio.chunks(FRAME) {
            l.push_frame(now, f, RATE, &mut events);
            now += 20_000;
        }
        for _ in 0..idle_ms / 20 {
            l.idle(now, &mut events);
            now += 20_000;
        }
        events
    }

    fn names(events: &[DetectEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                DetectEvent::Machine { result, beep } => {
                    format!("machine:{result:?}{}", if *beep { "+beep" } else { "" })
                }
                DetectEvent::Fax(t) => format!("fax:{t:?}"),
                DetectEvent::Finished => "finished".into(),
            })
            .collect()
    }

    #[test]
    fn long_greeting_then_beep_is_machine_then_ready_with_beep() {
        let mut l = listener(DetectMode::Machine, defaults(), Some(30.0));
        let mut audio = voice(4000);
        audio.extend(vec![0; 3200]); // 400 ms: shorter than machine_ready_timeout
        audio.extend(tone(1000.0, 400, 8000.0));
        let ev = run(&mut l, &audio, 2000);
        assert_eq!(
            names(&ev),
            ["machine:Machine", "machine:Ready+beep", "finished"]
        );
    }

    #[test]
    fn interruptions_are_reported_until_the_timeout_when_asked() {
        let mut l = listener(
            DetectMode::Machine,
            MachineConfig {
                detect_interruptions: true,
                ..defaults()
            },
            Some(12.0),
        );
        let mut audio = voice(3000);
        audio.extend(vec![0; 12000]); // 1.5 s: the greeting ended
        audio.extend(voice(1000)); // it starts again
        let ev = run(&mut l, &audio, 8000);
        assert_eq!(
            names(&ev),
            [
                "machine:Machine",
                "machine:Ready",
                "machine:NotReady",
                "machine:Ready",
                "finished"
            ]
        );
    }

    #[test]
    fn without_detect_message_end_machine_finishes_at_once() {
        let mut l = listener(
            DetectMode::Machine,
            MachineConfig {
                detect_message_end: false,
                ..defaults()
            },
            Some(30.0),
        );
        let ev = run(&mut l, &voice(3000), 2000);
        assert_eq!(names(&ev), ["machine:Machine", "finished"]);
    }

    #[test]
    fn short_hello_then_silence_is_human() {
        let mut l = listener(DetectMode::Machine, defaults(), Some(30.0));
        let ev = run(&mut l, &voice(500), 3000);
        assert_eq!(names(&ev), ["machine:Human", "finished"]);
    }

    #[test]
    fn cng_during_a_machine_detect_is_reported_as_fax() {
        let mut l = listener(DetectMode::Machine, defaults(), Some(30.0));
        let mut audio = tone(1100.0, 500, 8000.0);
        audio.extend(vec![0; 8000]);
        let ev = run(&mut l, &audio, 0);
        assert_eq!(names(&ev), ["fax:Cng", "finished"]);
    }

    #[test]
    fn fax_detect_for_ced_ignores_cng_and_times_out() {
        let mut l = listener(DetectMode::Fax, defaults(), Some(2.0));
        l.tone = Some(FaxTone::Ced);
        let ev = run(&mut l, &tone(1100.0, 500, 8000.0), 3000);
        assert_eq!(names(&ev), ["finished"]);
    }

    #[test]
    fn silence_until_the_timeout_is_unknown_then_finished_once() {
        let mut l = listener(
            DetectMode::Machine,
            MachineConfig {
                amd: AmdParams {
                    initial_timeout_ms: 10_000,
                    ..defaults().amd
                },
                ..defaults()
            },
            Some(1.0),
        );
        let ev = run(&mut l, &[], 3000);
        assert_eq!(names(&ev), ["machine:Unknown", "finished"]);
    }

    #[test]
    fn digit_detect_listener_only_keeps_the_timeout() {
        let mut l = listener(DetectMode::Digit, defaults(), Some(0.5));
        let ev = run(&mut l, &voice(200), 1000);
        assert_eq!(names(&ev), ["finished"]);
        let mut l = listener(DetectMode::Digit, defaults(), None);
        assert!(run(&mut l, &[], 5000).is_empty());
    }
}
