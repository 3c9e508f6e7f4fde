//! The media-thread half of speech recognition: a [`SpeechSegmenter`] runs the VAD on the far
//! end's audio and cuts it into utterances (with a preroll so the first syllable is not lost,
//! an end-of-utterance silence and a longest utterance), asks for a recognition per utterance
//! ([`SegmentAction`]) and turns the recogniser's answers ([`Recognised`]) into typed
//! [`SpeechEvent`]s. Who recognises, and how the audio gets there, is the caller's business.

use std::collections::VecDeque;

use crate::vad::{Vad, VadEvent, DEFAULT_SENSITIVITY};

/// Audio kept from before the VAD confirmed speech, so the first syllable is not cut.
pub const PREROLL_MS: u32 = 300;

/// What a speech segment reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    /// The VAD heard speech begin.
    StartOfInput,
    /// An interim hypothesis (only when partial results were asked for).
    Partial { text: String },
    /// The utterance's transcript (may be empty: nothing usable recognised); confidence 0..1
    /// to two decimals.
    Result { text: String, confidence: f64 },
    /// The recogniser is unavailable or failed.
    Error { message: String },
}

/// What the recogniser answered about the current utterance.
#[derive(Debug, Clone, PartialEq)]
pub enum Recognised {
    Partial(String),
    Final { text: String, confidence: f32 },
    Error(String),
}

/// What the segmenter asks of the recogniser, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentAction {
    /// An utterance begins: start a recognition of audio at `rate`.
    Start { rate: u32 },
    /// Audio of the current utterance.
    Audio(Vec<i16>),
    /// The utterance ended: the transcript is wanted.
    Finish,
}

/// How utterances are cut.
#[derive(Debug, Clone)]
pub struct SegmenterConfig {
    /// Silence that ends an utterance.
    pub end_silence_ms: u64,
    /// Longest utterance.
    pub speech_timeout_ms: u64,
    /// Report interim hypotheses.
    pub partial_results: bool,
    /// Listen for another utterance after each result.
    pub continuous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listening for speech to begin.
    Waiting,
    /// In an utterance since `since_us`; its audio goes to the recogniser.
    Speaking { since_us: u64 },
    /// Utterance over, the transcript is awaited.
    Recognising,
    /// A non-continuous segmenter has its result (or failed).
    Done,
}

/// Cuts the far end's audio into utterances for one speech collect.
pub struct SpeechSegmenter {
    config: SegmenterConfig,
    vad: Option<Vad>,
    phase: Phase,
    preroll: VecDeque<Vec<i16>>,
    /// Since when no audio has come (None while frames arrive).
    idle_since_us: Option<u64>,
}

impl SpeechSegmenter {
    pub fn new(config: SegmenterConfig) -> SpeechSegmenter {
        SpeechSegmenter {
            config,
            vad: None,
            phase: Phase::Waiting,
            preroll: VecDeque::new(),
            idle_since_us: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// A recognition was asked for and has not answered its final word yet.
    pub fn in_utterance(&self) -> bool {
        matches!(self.phase, Phase::Speaking { .. } | Phase::Recognising)
    }

    /// One frame of the far end's audio.
    pub fn on_frame(
        &mut self,
        now_us: u64,
        pcm: &[i16],
        rate: u32,
        actions: &mut Vec<SegmentAction>,
        events: &mut Vec<SpeechEvent>,
    ) {
        self.idle_since_us = None;
        match self.phase {
            Phase::Done | Phase::Recognising => return,
            Phase::Waiting | Phase::Speaking { .. } => {}
        }
        let vad = self
            .vad
            .get_or_insert_with(|| Vad::new(rate, DEFAULT_SENSITIVITY));
        let started = matches!(vad.push_frame(pcm), Some(VadEvent::SpeechStarted));
        let silence_ms = u64::from(vad.silence_ms());
        let speaking = vad.is_speech();
        match self.phase {
            Phase::Waiting => {
                self.preroll.push_back(pcm.to_vec());
                let frame_ms = (pcm.len() as u64 * 1000 / u64::from(rate.max(1))).max(1);
                while self.preroll.len() as u64 * frame_ms > u64::from(PREROLL_MS) {
                    self.preroll.pop_front();
                }
                if started {
                    actions.push(SegmentAction::Start { rate });
                    actions.extend(self.preroll.drain(..).map(SegmentAction::Audio));
                    self.phase = Phase::Speaking { since_us: now_us };
                    events.push(SpeechEvent::StartOfInput);
                }
            }
            Phase::Speaking { since_us } => {
                actions.push(SegmentAction::Audio(pcm.to_vec()));
                let too_long =
                    now_us.saturating_sub(since_us) / 1000 >= self.config.speech_timeout_ms;
                if (!speaking && silence_ms >= self.config.end_silence_ms) || too_long {
                    self.finish(actions);
                }
            }
            Phase::Recognising | Phase::Done => {}
        }
    }

    /// A tick without audio. No audio for as long as the silence that ends an utterance
    /// ends it too: a far end that sends nothing while its user is quiet (DTX, silence
    /// suppression, a stream that ran out) has stopped talking. A tick or two without a packet
    /// (jitter) is far shorter.
    pub fn on_idle(&mut self, now_us: u64, actions: &mut Vec<SegmentAction>) {
        let idle_since = *self.idle_since_us.get_or_insert(now_us);
        if let Phase::Speaking { since_us } = self.phase {
            let quiet_ms = now_us.saturating_sub(idle_since) / 1000;
            let long_ms = now_us.saturating_sub(since_us) / 1000;
            if quiet_ms >= self.config.end_silence_ms || long_ms >= self.config.speech_timeout_ms {
                self.finish(actions);
            }
        }
    }

    /// The recogniser's answer for the current utterance.
    pub fn on_recognised(&mut self, answer: Recognised, events: &mut Vec<SpeechEvent>) {
        match answer {
            Recognised::Partial(text) => {
                if self.config.partial_results {
                    events.push(SpeechEvent::Partial { text });
                }
            }
            Recognised::Final { text, confidence } => {
                events.push(SpeechEvent::Result {
                    text,
                    confidence: (f64::from(confidence) * 100.0).round() / 100.0,
                });
                self.phase = if self.config.continuous {
                    self.vad = None;
                    Phase::Waiting
                } else {
                    Phase::Done
                };
            }
            Recognised::Error(message) => {
                events.push(SpeechEvent::Error { message });
                self.phase = Phase::Done;
            }
        }
    }

    fn finish(&mut self, actions: &mut Vec<SegmentAction>) {
        actions.push(SegmentAction::Finish);
        self.phase = Phase::Recognising;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(partials: bool, continuous: bool) -> SegmenterConfig {
        SegmenterConfig {
            end_silence_ms: 500,
            speech_timeout_ms: 10_000,
            partial_results: partials,
            continuous,
        }
    }

    fn voice(i: u64) -> Vec<i16> {
        (0..160)
            .map(|n| {
                let t = (i * 160 + n) as f32 / 8000.0;
                ((t * 2.0 * std::f32::consts::PI * 300.0).sin() * 8000.0) as i16
            })
            .collect()
    }

    /// 200 ms of silence, `speech_ms` of voice, then silence until the utterance ends.
    fn utterance(
        s: &mut SpeechSegmenter,
        speech_ms: u64,
        t: &mut u64,
    ) -> (Vec<SegmentAction>, Vec<SpeechEvent>) {
        let (mut actions, mut events) = (Vec::new(), Vec::new());
        for i in 0..(speech_ms / 20 + 500) {
            let pcm = if (10..10 + speech_ms / 20).contains(&i) {
                voice(i)
            } else {
                vec![0; 160]
            };
            s.on_frame(*t, &pcm, 8000, &mut actions, &mut events);
            *t += 20_000;
            if actions.last() == Some(&SegmentAction::Finish) {
                break;
            }
        }
        (actions, events)
    }

    #[test]
    fn an_utterance_is_start_preroll_audio_then_finish_after_end_silence() {
        let mut s = SpeechSegmenter::new(config(false, false));
        let mut t = 0;
        let (actions, events) = utterance(&mut s, 600, &mut t);
        assert_eq!(actions.first(), Some(&SegmentAction::Start { rate: 8000 }));
        assert_eq!(actions.last(), Some(&SegmentAction::Finish));
        let audio: usize = actions
            .iter()
            .map(|a| match a {
                SegmentAction::Audio(p) => p.len(),
                _ => 0,
            })
            .sum();
        // Preroll + the speech + the end silence.
        assert!(audio >= 8 * (600 + 500), "{audio}");
        assert_eq!(events, [SpeechEvent::StartOfInput]);
        assert_eq!(s.phase(), Phase::Recognising);
        let mut events = Vec::new();
        s.on_recognised(Recognised::Partial("yes".into()), &mut events);
        s.on_recognised(
            Recognised::Final {
                text: "yes please".into(),
                confidence: 0.904,
            },
            &mut events,
        );
        assert_eq!(
            events,
            [SpeechEvent::Result {
                text: "yes please".into(),
                confidence: 0.9
            }]
        );
        assert_eq!(s.phase(), Phase::Done);
        let mut more = Vec::new();
        s.on_frame(t, &voice(0), 8000, &mut more, &mut events);
        assert!(more.is_empty());
    }

    #[test]
    fn continuous_listens_again_and_partials_pass_when_asked() {
        let mut s = SpeechSegmenter::new(config(true, true));
        let mut t = 0;
        utterance(&mut s, 400, &mut t);
        let mut events = Vec::new();
        s.on_recognised(Recognised::Partial("one".into()), &mut events);
        s.on_recognised(
            Recognised::Final {
                text: "one two".into(),
                confidence: 0.5,
            },
            &mut events,
        );
        assert!(matches!(events[0], SpeechEvent::Partial { .. }));
        assert_eq!(s.phase(), Phase::Waiting);
        let (actions, events) = utterance(&mut s, 400, &mut t);
        assert_eq!(actions.first(), Some(&SegmentAction::Start { rate: 8000 }));
        assert_eq!(events, [SpeechEvent::StartOfInput]);
    }

    /// A far end that stops sending mid-utterance (DTX, a stream that ran out): the
    /// utterance ends once no audio came for the end-of-speech silence, not at the longest an
    /// utterance may last.
    #[test]
    fn no_audio_from_the_far_end_ends_an_utterance_after_the_end_silence() {
        let mut s = SpeechSegmenter::new(SegmenterConfig {
            end_silence_ms: 600,
            speech_timeout_ms: 60_000,
            ..config(false, false)
        });
        let (mut actions, mut events) = (Vec::new(), Vec::new());
        let mut t = 0;
        for i in 0..20 {
            s.on_frame(t, &voice(i), 8000, &mut actions, &mut events);
            t += 20_000;
        }
        assert!(s.in_utterance());
        actions.clear();
        // A few ticks without a packet (jitter) end nothing.
        let idle_from = t;
        for _ in 0..5 {
            s.on_idle(t, &mut actions);
            t += 20_000;
        }
        s.on_frame(t, &voice(30), 8000, &mut actions, &mut Vec::new());
        t += 20_000;
        assert!(actions.iter().all(|a| *a != SegmentAction::Finish));
        let stopped = t;
        while t < idle_from + 5_000_000 && !actions.contains(&SegmentAction::Finish) {
            s.on_idle(t, &mut actions);
            t += 20_000;
        }
        assert_eq!(actions.last(), Some(&SegmentAction::Finish));
        let quiet_ms = (t - stopped) / 1000;
        assert!((600..=640).contains(&quiet_ms), "{quiet_ms} ms");
        let mut events = Vec::new();
        s.on_recognised(Recognised::Error("no engine".into()), &mut events);
        assert_eq!(
            events,
            [SpeechEvent::Error {
                message: "no engine".into()
            }]
        );
        assert!(!s.in_utterance());
    }
}
