//! Audio for playback: fetch, cache, decode, resample.
//!
//! Everything that arrives here is hostile: the URL, the HTTP response and the file bytes.
//! Nothing in this crate panics on them; sizes (bytes), durations (decoded milliseconds) and
//! time (request timeout) are bounded, and every failure is an [`AudioError`].
//!
//! - [`decode`]: probe and decode a whole file held in memory (WAV PCM/float/µ-law/A-law/ADPCM,
//!   MP3, Ogg Vorbis) into mono 16-bit [`Pcm`].
//! - [`resample`]: convert [`Pcm`] to another rate (rubato's FFT resampler).
//! - [`AudioFetcher`]: GET by `http(s)` URL, decode, resample, with a validator-aware cache.

use std::sync::Arc;

mod decode;
mod fetch;
mod resample;

pub use decode::decode;
pub use fetch::{AudioFetcher, CacheStats, FetchConfig, CACHE_MAX_SAMPLES, DEFAULT_TTL, MAX_TTL};
pub use resample::resample;

/// Lowest sample rate accepted from a file or asked of [`resample`].
pub const MIN_RATE: u32 = 1_000;
/// Highest sample rate accepted from a file or asked of [`resample`].
pub const MAX_RATE: u32 = 384_000;

/// Why audio could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    /// The URL is not a valid absolute `http`/`https` URL.
    #[error("bad audio URL: {0}")]
    BadUrl(String),
    /// The egress policy refused the URL, a redirect hop or the address a name resolved to
    /// (nothing was sent there).
    #[error("audio URL refused: {0}")]
    Refused(String),
    /// Transport failure: connect, TLS, timeout, reading the body.
    #[error("HTTP error fetching audio: {0}")]
    Http(String),
    /// The server answered with a non-success status.
    #[error("audio URL answered HTTP status {0}")]
    Status(u16),
    /// The body is bigger than the configured limit (the size seen so far or announced).
    #[error("audio file too large: {0} bytes")]
    TooLarge(u64),
    /// The audio is longer than the configured limit (milliseconds decoded when we stopped).
    #[error("audio too long: over the limit after {0} ms")]
    TooLong(u64),
    /// The bytes are not a decodable audio file (unknown container, malformed stream, no audio).
    #[error("cannot decode audio: {0}")]
    Decode(String),
    /// A recognised but unsupported feature: codec, sample rate, rate change mid-stream.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// Resampler failure.
    #[error("resampling failed: {0}")]
    Resample(String),
    /// A decode or resample worker died (a bug in a dependency); the call fails, not the process.
    #[error("audio worker failed: {0}")]
    Internal(String),
}

/// Mono 16-bit PCM at a given rate.
#[derive(Debug, Clone)]
pub struct Pcm {
    /// Samples per second.
    pub rate: u32,
    /// Mono samples.
    pub samples: Arc<[i16]>,
}

impl Pcm {
    /// Wraps mono samples.
    pub fn new(rate: u32, samples: impl Into<Arc<[i16]>>) -> Self {
        Pcm {
            rate,
            samples: samples.into(),
        }
    }

    /// Duration in whole milliseconds (rounded down); 0 for a zero rate.
    pub fn duration_ms(&self) -> u64 {
        frames_to_ms(self.samples.len() as u64, self.rate)
    }
}

pub(crate) fn frames_to_ms(frames: u64, rate: u32) -> u64 {
    if rate == 0 {
        return 0;
    }
    // u128: no overflow for any u64 frame count.
    ((frames as u128 * 1000) / rate as u128).min(u64::MAX as u128) as u64
}
