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
/// Free-form transcription of a whole recording (`calling.transcribe`), after the call and off
/// the media path: the words of `pcm` (mono at `rate`, 8 or 16 kHz) in order. Blocking.
pub trait Transcriber: Send + Sync {
    /// Short engine name for logs.
    fn name(&self) -> &str;
    fn transcribe(&self, pcm: &[i16], rate: u32, language: &str) -> Result<String, AsrError>;
}

/// The longest piece of a recording given to an engine at once (Whisper's window): a long call
/// is transcribed piece by piece and the texts joined.
pub const TRANSCRIBE_PIECE_SECS: usize = 30;

/// `pcm` in pieces of [`TRANSCRIBE_PIECE_SECS`] at `rate`.
pub fn transcription_pieces(pcm: &[i16], rate: u32) -> std::slice::Chunks<'_, i16> {
    pcm.chunks((rate as usize * TRANSCRIBE_PIECE_SECS).max(1))
}

/// Texts of consecutive pieces joined by single spaces (empty pieces left out).
pub fn join_pieces<I: IntoIterator<Item = String>>(texts: I) -> String {
    texts
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub trait Recognizer: Send {
    /// Audio at the request's sample rate, in arrival order.
    fn push(&mut self, pcm: &[i16]);
    /// The current interim hypothesis, when it changed since the last call.
    fn partial(&mut self) -> Option<String>;
    /// Ends the utterance and returns the final transcript.
    fn finish(self: Box<Self>) -> Result<Transcript, AsrError>;
}
