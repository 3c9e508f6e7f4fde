//! Every default of a command parameter, in one place: the API fills an absent parameter from
//! here (through serde), and the SWML methods start from the same values.

use super::ai::CallerLeg;
use super::play::AudioDirection;

pub fn one() -> u32 {
    1
}
pub fn yes() -> bool {
    true
}
/// Language of text-to-speech and of speech recognition.
pub fn tts_language() -> String {
    "en-US".into()
}
/// DTMF terminators of collects and recordings.
pub fn hash() -> String {
    "#".into()
}
pub fn speak() -> AudioDirection {
    AudioDirection::Speak
}
pub fn record_initial_timeout() -> f64 {
    4.0
}
pub fn record_end_silence_timeout() -> f64 {
    0.5
}
pub fn input_sensitivity() -> f64 {
    44.0
}
pub fn collect_initial_timeout() -> f64 {
    5.0
}
pub fn digit_timeout() -> f64 {
    5.0
}
pub fn speech_end_silence_timeout() -> f64 {
    1.0
}
pub fn speech_timeout() -> f64 {
    60.0
}
pub fn detect_timeout() -> f64 {
    30.0
}
pub fn machine_initial_timeout() -> f64 {
    4.5
}
pub fn machine_end_silence_timeout() -> f64 {
    1.0
}
pub fn machine_voice_threshold() -> f64 {
    1.25
}
pub fn machine_words_threshold() -> u32 {
    6
}
/// Seconds; also the longest hold (ambiguity register A8).
pub fn ai_hold_timeout() -> u32 {
    300
}
pub fn ai_model() -> String {
    "gpt-4o-mini".into()
}
pub fn remote_caller() -> CallerLeg {
    CallerLeg::RemoteCaller
}
pub fn sidecar_idle_timeout_ms() -> u32 {
    200
}
pub fn sidecar_max_iters_per_tick() -> u32 {
    5
}
pub fn sidecar_max_history_tokens() -> u32 {
    8000
}
pub fn live_speech_timeout() -> u32 {
    60_000
}
pub fn live_vad_thresh() -> u32 {
    400
}
pub fn translate_voice() -> String {
    "elevenlabs.josh".into()
}
