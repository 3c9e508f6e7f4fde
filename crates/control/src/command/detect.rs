//! `calling.detect` (calling-api.md §6.13); SWML `detect_machine` builds the same
//! [`DetectParams`].

use serde::{Deserialize, Serialize};

use super::defaults;

/// Answering-machine detection settings (seconds unless named otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineParams {
    #[serde(default = "defaults::machine_initial_timeout")]
    pub initial_timeout: f64,
    #[serde(default = "defaults::machine_end_silence_timeout")]
    pub end_silence_timeout: f64,
    /// Defaults to `end_silence_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_ready_timeout: Option<f64>,
    #[serde(default = "defaults::machine_voice_threshold")]
    pub machine_voice_threshold: f64,
    #[serde(default = "defaults::machine_words_threshold")]
    pub machine_words_threshold: u32,
    #[serde(default)]
    pub detect_interruptions: bool,
    #[serde(default = "defaults::yes")]
    pub detect_message_end: bool,
}

impl MachineParams {
    pub fn machine_ready_timeout(&self) -> f64 {
        self.machine_ready_timeout
            .unwrap_or(self.end_silence_timeout)
    }
}

impl Default for MachineParams {
    fn default() -> Self {
        MachineParams {
            initial_timeout: defaults::machine_initial_timeout(),
            end_silence_timeout: defaults::machine_end_silence_timeout(),
            machine_ready_timeout: None,
            machine_voice_threshold: defaults::machine_voice_threshold(),
            machine_words_threshold: defaults::machine_words_threshold(),
            detect_interruptions: false,
            detect_message_end: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaxTone {
    #[serde(rename = "CNG")]
    Cng,
    #[serde(rename = "CED")]
    Ced,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FaxParams {
    /// Absent: either tone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone: Option<FaxTone>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DigitDetectParams {
    /// Keys to report; empty means any key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digits: String,
}

/// `detect`: which detector and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "params", rename_all = "lowercase")]
pub enum Detector {
    Machine(MachineParams),
    Fax(FaxParams),
    Digit(DigitDetectParams),
}

impl Detector {
    pub fn kind(&self) -> &'static str {
        match self {
            Detector::Machine(_) => "machine",
            Detector::Fax(_) => "fax",
            Detector::Digit(_) => "digit",
        }
    }
}

/// `calling.detect` (§6.13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectParams {
    pub control_id: String,
    pub detect: Detector,
    /// Seconds the detector runs; 0 = no limit.
    #[serde(default = "defaults::detect_timeout")]
    pub timeout: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}
