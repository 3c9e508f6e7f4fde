//! Streaming speech recognition behind provider traits.
//!
//! A [`SpeechEngine`] is created once per node and shared; each recognition (one utterance of
//! one collect) gets its own [`Recognizer`] from [`SpeechEngine::start`]. The recognizer is fed
//! 16-bit mono PCM as it arrives ([`Recognizer::push`]), may be polled for a partial
//! hypothesis ([`Recognizer::partial`]) and is consumed by [`Recognizer::finish`] once the
//! caller decided the utterance is over (end of speech by VAD, or a timeout).
//!
//! The traits are shaped so that a cloud streaming engine (an HTTP chunked upload or a
//! WebSocket session) fits them without change: `start` opens the session, `push` queues audio
//! for a sender task without blocking, `partial` returns the newest interim transcript the
//! receiver task has seen, and `finish` closes the upload and waits for the final transcript.
//! All calls happen on a recogniser worker thread, never on the media thread, so `finish` may
//! block for a network round trip.
//!
//! The embedded engine is [`Pocketsphinx`]: Debian's libpocketsphinx (5prealpha), loaded with
//! dlopen at run time, decoding against a JSGF grammar built from the request (see
//! [`grammar`]). Its free-form (language model) mode is not offered: on 8 kHz telephone
//! audio it is not usable, while grammar mode recognises the expected phrases reliably.
//! Free-form recognition comes from [`ProcessEngine`]: an engine in another process (Whisper
//! through faster-whisper, scripts/asr/faster_whisper_engine.py), fed one utterance at a time.

pub mod grammar;
pub mod listener;
mod process;
mod sphinx;

pub use process::ProcessEngine;
pub use sphinx::{Pocketsphinx, PocketsphinxConfig};

/// What went wrong in recognition.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AsrError {
    /// The engine's library or model is not installed (or failed to load).
    #[error("speech engine unavailable: {0}")]
    Unavailable(String),
    /// The request left nothing to recognise (no hint, digit or yes/no word in the dictionary).
    #[error("empty grammar: none of the requested words are in the dictionary")]
    EmptyGrammar,
    /// The engine rejected the request or failed while decoding.
    #[error("speech engine failed: {0}")]
    Engine(String),
}

/// One recognition's parameters, from the collect's `speech` object.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognitionRequest {
    /// BCP-47 tag (`en-US`); the embedded engine has US English only and ignores it.
    pub language: String,
    /// Phrases the caller is expected to say (SignalWire `hints`).
    pub hints: Vec<String>,
    /// Rate of the PCM given to [`Recognizer::push`].
    pub sample_rate: u32,
    /// Whether spoken digits (zero…nine, oh) are expected too.
    pub digits_allowed: bool,
}

/// The final result of one utterance. An empty `text` means nothing usable was recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// 0 (no trust) to 1 (certain).
    pub confidence: f32,
}

/// A provider of recognitions; shared by all calls of a node.
pub trait SpeechEngine: Send + Sync {
    /// Short engine name for logs (`pocketsphinx`).
    fn name(&self) -> &str;
    /// Begins one utterance's recognition.
    fn start(&self, request: &RecognitionRequest) -> Result<Box<dyn Recognizer>, AsrError>;
}

/// One utterance being recognised.
pub trait Recognizer: Send {
    /// Audio at the request's sample rate, in arrival order.
    fn push(&mut self, pcm: &[i16]);
    /// The current interim hypothesis, when it changed since the last call.
    fn partial(&mut self) -> Option<String>;
    /// Ends the utterance and returns the final transcript.
    fn finish(self: Box<Self>) -> Result<Transcript, AsrError>;
}
