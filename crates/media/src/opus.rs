//! Opus through the system libopus: mono, 48 kHz, 20 ms frames, VoIP application.

use audiopus::coder::{Decoder, Encoder};
use audiopus::packet::Packet;
use audiopus::{Application, Channels, MutSignals, SampleRate};

use crate::{check_frame, AudioDecoder, AudioEncoder, CodecKind, MediaError};

/// Output buffer for one encoded 20 ms packet (RFC 6716 caps a frame at 1275 bytes).
const MAX_PACKET: usize = 4000;
/// Longest Opus packet duration, 120 ms at 48 kHz.
const MAX_PACKET_SAMPLES: usize = 5760;
/// Packet loss the encoder plans in-band FEC for, in percent.
const EXPECTED_LOSS_PERCENT: u8 = 5;

fn opus_err(e: audiopus::Error) -> MediaError {
    MediaError::Opus(e.to_string())
}

pub(crate) struct OpusEncoder {
    encoder: Encoder,
    buf: Vec<u8>,
}

impl OpusEncoder {
    pub(crate) fn new() -> Result<Self, MediaError> {
        let mut encoder = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)
            .map_err(opus_err)?;
        encoder.set_inband_fec(true).map_err(opus_err)?;
        encoder
            .set_packet_loss_perc(EXPECTED_LOSS_PERCENT)
            .map_err(opus_err)?;
        Ok(OpusEncoder {
            encoder,
            buf: vec![0; MAX_PACKET],
        })
    }
}

impl AudioEncoder for OpusEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError> {
        check_frame(CodecKind::Opus, pcm)?;
        let n = self.encoder.encode(pcm, &mut self.buf).map_err(opus_err)?;
        out.extend_from_slice(&self.buf[..n.min(self.buf.len())]);
        Ok(())
    }
}

pub(crate) struct OpusDecoder {
    decoder: Decoder,
    buf: Vec<i16>,
}

impl OpusDecoder {
    pub(crate) fn new() -> Result<Self, MediaError> {
        let decoder = Decoder::new(SampleRate::Hz48000, Channels::Mono).map_err(opus_err)?;
        Ok(OpusDecoder {
            decoder,
            buf: vec![0; MAX_PACKET_SAMPLES],
        })
    }
}

impl AudioDecoder for OpusDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), MediaError> {
        if payload.is_empty() {
            return Err(MediaError::EmptyPayload(CodecKind::Opus));
        }
        let packet = Packet::try_from(payload).map_err(opus_err)?;
        let signals = MutSignals::try_from(&mut self.buf[..]).map_err(opus_err)?;
        let n = self
            .decoder
            .decode(Some(packet), signals, false)
            .map_err(opus_err)?;
        out.extend_from_slice(&self.buf[..n.min(self.buf.len())]);
        Ok(())
    }

    fn conceal(&mut self, out: &mut Vec<i16>) {
        let frame = CodecKind::Opus.frame_samples();
        let start = out.len();
        let n = match MutSignals::try_from(&mut self.buf[..frame]) {
            Ok(signals) => self.decoder.decode(None, signals, false).unwrap_or(0),
            Err(_) => 0,
        };
        out.extend_from_slice(&self.buf[..n.min(frame)]);
        // Exactly one frame, whatever libopus did.
        out.resize(start + frame, 0);
    }
}
