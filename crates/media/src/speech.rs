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
}

impl SpeechSegmenter {
    pub fn new(config: SegmenterConfig) -> SpeechSegmenter {
        SpeechSegmenter {
            config,
            vad: None,
            phase: Phase::Waiting,
            preroll: VecDeque::new(),
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

    /// A tick without audio: no audio at all (the far end stopped sending) ends an
    /// utterance too, at its longest.
    pub fn on_idle(&mut self, now_us: u64, actions: &mut Vec<SegmentAction>) {
        if let Phase::Speaking { since_us } = self.phase {
            if now_us.saturating_sub(since_us) / 1000 >= self.config.speech_timeout_ms {
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

    #[test]
    fn silence_from_the_far_end_ends_an_utterance_at_the_speech_timeout() {
        let mut s = SpeechSegmenter::new(SegmenterConfig {
            speech_timeout_ms: 1_000,
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
        while t < 2_000_000 && actions.is_empty() {
            s.on_idle(t, &mut actions);
            t += 20_000;
        }
        assert_eq!(actions, [SegmentAction::Finish]);
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
