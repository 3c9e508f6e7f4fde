//! Audio frames and codecs (G.711, G.722, Opus), per-call media state ticked every 20 ms. Pure.
//!
//! Every codec works on 20 ms mono frames of 16-bit PCM at the codec's own sample rate
//! ([`CodecKind::sample_rate`]). Decoders take untrusted bytes from the network: they never
//! panic and report malformed payloads as [`MediaError`].

pub mod amd;
pub mod background;
pub mod conference;
pub mod denoise;
pub mod detect;
pub mod dtmf;
pub mod fax;
pub mod fork;
pub mod g711;
pub mod g722;
pub mod graph;
pub mod jitter;
pub mod latch;
pub mod listen;
mod opus;
pub mod packets;
pub mod playback;
mod plc;
pub mod queue;
pub mod resample;
pub mod ring;
pub mod rtcp;
pub mod secure;
pub mod shard;
pub mod speech;
pub mod tick_stats;
pub mod tone;
pub mod vad;

/// The audio codecs dialtone speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// G.722 64 kbit/s (mode 1), 16 kHz audio (its RTP clock rate stays 8000, RFC 3551 §4.5.2).
    G722,
    /// Opus, mono, 48 kHz.
    Opus,
}

impl CodecKind {
    /// PCM sample rate of the codec: 8000, 8000, 16000, 48000.
    pub fn sample_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => 16000,
            CodecKind::Opus => 48000,
        }
    }

    /// Samples per 20 ms frame at [`CodecKind::sample_rate`]: 160, 160, 320, 960.
    pub fn frame_samples(self) -> usize {
        (self.sample_rate() / 50) as usize
    }
}

/// Errors of encoding and decoding.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The PCM frame handed to an encoder is not exactly one 20 ms frame.
    #[error("{kind:?} encoder expects {expected} samples per frame, got {got}")]
    FrameLength {
        kind: CodecKind,
        expected: usize,
        got: usize,
    },
    /// An empty payload was handed to a decoder.
    #[error("empty {0:?} payload")]
    EmptyPayload(CodecKind),
    /// libopus refused to create a coder or to encode/decode (e.g. a malformed packet).
    #[error("opus: {0}")]
    Opus(String),
}

/// Encodes 20 ms mono PCM frames into RTP payloads.
pub trait AudioEncoder: Send {
    fn kind(&self) -> CodecKind;
    /// Encodes one 20 ms mono frame (`pcm.len() == kind().frame_samples()`, else error) and
    /// appends the payload to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError>;
}

/// Decodes RTP payloads into mono PCM.
pub trait AudioDecoder: Send {
    fn kind(&self) -> CodecKind;
    /// Decodes one payload, appending mono PCM at `kind().sample_rate()` to `out`.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), MediaError>;
    /// Packet loss concealment for one missing 20 ms frame (Opus: its PLC; others:
    /// repeat-with-fade, then silence), appended to `out`. Always exactly one frame.
    fn conceal(&mut self, out: &mut Vec<i16>);
}

/// A fresh encoder for `kind`.
pub fn encoder(kind: CodecKind) -> Result<Box<dyn AudioEncoder>, MediaError> {
    Ok(match kind {
        CodecKind::Pcmu => Box::new(g711::G711Encoder::new(kind)),
        CodecKind::Pcma => Box::new(g711::G711Encoder::new(kind)),
        CodecKind::G722 => Box::new(g722::G722Encoder::new()),
        CodecKind::Opus => Box::new(opus::OpusEncoder::new()?),
    })
}

/// A fresh decoder for `kind`.
pub fn decoder(kind: CodecKind) -> Result<Box<dyn AudioDecoder>, MediaError> {
    Ok(match kind {
        CodecKind::Pcmu => Box::new(g711::G711Decoder::new(kind)),
        CodecKind::Pcma => Box::new(g711::G711Decoder::new(kind)),
        CodecKind::G722 => Box::new(g722::G722Decoder::new()),
        CodecKind::Opus => Box::new(opus::OpusDecoder::new()?),
    })
}

pub(crate) fn check_frame(kind: CodecKind, pcm: &[i16]) -> Result<(), MediaError> {
    let expected = kind.frame_samples();
    if pcm.len() == expected {
        Ok(())
    } else {
        Err(MediaError::FrameLength {
            kind,
            expected,
            got: pcm.len(),
        })
    }
}

#[cfg(test)]
mod tests;
