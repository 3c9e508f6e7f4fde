//! `calling.record` and its controls (calling-api.md §6.9–6.10); SWML `record` and
//! `record_call` build the same [`RecordParams`] with their own documented defaults.

use serde::{Deserialize, Serialize};

use super::defaults;
use super::play::AudioDirection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    #[default]
    Mp3,
    Wav,
    Mp4,
}

impl RecordFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordFormat::Mp3 => "mp3",
            RecordFormat::Wav => "wav",
            RecordFormat::Mp4 => "mp4",
        }
    }
}

/// `RecordAudioParams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordAudio {
    #[serde(default)]
    pub beep: bool,
    #[serde(default)]
    pub format: RecordFormat,
    #[serde(default)]
    pub stereo: bool,
    #[serde(default = "defaults::speak")]
    pub direction: AudioDirection,
    /// Seconds to wait for the first sound; 0 = no limit.
    #[serde(default = "defaults::record_initial_timeout")]
    pub initial_timeout: f64,
    /// Seconds of silence that end the recording; 0 = no limit.
    #[serde(default = "defaults::record_end_silence_timeout")]
    pub end_silence_timeout: f64,
    /// Whole seconds; 0 = no limit.
    #[serde(default)]
    pub max_length: u64,
    /// DTMF keys that end the recording.
    #[serde(default = "defaults::hash")]
    pub terminators: String,
    /// 0–100.
    #[serde(default = "defaults::input_sensitivity")]
    pub input_sensitivity: f64,
}

impl Default for RecordAudio {
    fn default() -> Self {
        RecordAudio {
            beep: false,
            format: RecordFormat::default(),
            stereo: false,
            direction: defaults::speak(),
            initial_timeout: defaults::record_initial_timeout(),
            end_silence_timeout: defaults::record_end_silence_timeout(),
            max_length: 0,
            terminators: defaults::hash(),
            input_sensitivity: defaults::input_sensitivity(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RecordSpec {
    pub audio: RecordAudio,
}

/// `calling.record` (§6.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordParams {
    pub control_id: String,
    pub record: RecordSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PauseBehavior {
    #[default]
    Skip,
    Silence,
}

impl PauseBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseBehavior::Skip => "skip",
            PauseBehavior::Silence => "silence",
        }
    }
}

/// `calling.record.pause` (§6.10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPauseParams {
    pub control_id: String,
    #[serde(default)]
    pub behavior: PauseBehavior,
}
