//! `calling.collect` (calling-api.md §6.11): DTMF and/or speech. SWML `prompt` builds the same
//! [`CollectParams`].

use serde::{Deserialize, Serialize};

use super::defaults;

/// `digits`: what ends a DTMF collect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigitsParams {
    /// Digits to gather, ≥ 1.
    pub max: u32,
    /// Keys that end the input early; empty disables terminators.
    #[serde(default = "defaults::hash")]
    pub terminators: String,
    /// Seconds allowed between two digits.
    #[serde(default = "defaults::digit_timeout")]
    pub digit_timeout: f64,
}

/// `speech`: what ends a speech collect and what the recogniser is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SpeechParams {
    /// Seconds of silence that end an utterance.
    #[serde(default = "defaults::speech_end_silence_timeout")]
    pub end_silence_timeout: f64,
    /// Longest utterance, seconds.
    #[serde(default = "defaults::speech_timeout")]
    pub speech_timeout: f64,
    /// BCP-47 tag, optionally `engine:tag`.
    #[serde(default = "defaults::tts_language")]
    pub language: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// A cloud engine's model; the embedded engines have one model each (docs/parameters.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A cloud engine's name; answered by the configured engine here (docs/parameters.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

impl SpeechParams {
    /// The language tag without an `engine:` prefix.
    pub fn language_tag(&self) -> &str {
        self.language.rsplit(':').next().unwrap_or(&self.language)
    }
}

/// `calling.collect` (§6.11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectParams {
    pub control_id: String,
    /// Seconds to the first input once the input timers run.
    #[serde(default = "defaults::collect_initial_timeout")]
    pub initial_timeout: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<DigitsParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech: Option<SpeechParams>,
    #[serde(default)]
    pub continuous: bool,
    #[serde(default)]
    pub partial_results: bool,
    #[serde(default)]
    pub send_start_of_input: bool,
    /// Ambiguity register A5: the REST default is false (timers wait for
    /// `calling.collect.start_input_timers`).
    #[serde(default)]
    pub start_input_timers: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
    /// Not a REST parameter: the words the caller must say before speech stops a prompt's
    /// playback (an AI agent's `barge_min_words`); 0 or 1: any speech does.
    #[serde(skip)]
    pub barge_min_words: u32,
}

impl CollectParams {
    /// A collect with every setting at its default (give it `digits` and/or `speech`).
    pub fn new(control_id: String) -> Self {
        CollectParams {
            control_id,
            initial_timeout: defaults::collect_initial_timeout(),
            digits: None,
            speech: None,
            continuous: false,
            partial_results: false,
            send_start_of_input: false,
            start_input_timers: false,
            status_url: None,
            barge_min_words: 0,
        }
    }
}

impl DigitsParams {
    pub fn new(max: u32) -> Self {
        DigitsParams {
            max,
            terminators: defaults::hash(),
            digit_timeout: defaults::digit_timeout(),
        }
    }
}

impl SpeechParams {
    pub fn new() -> Self {
        SpeechParams {
            end_silence_timeout: defaults::speech_end_silence_timeout(),
            speech_timeout: defaults::speech_timeout(),
            language: defaults::tts_language(),
            hints: Vec::new(),
            model: None,
            engine: None,
        }
    }
}
