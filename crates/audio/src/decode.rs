//! Whole-file decoding with symphonia, down-mixed to mono i16.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::{frames_to_ms, AudioError, Pcm, MAX_RATE, MIN_RATE};

/// Packets that fail to decode in a row before the stream is declared broken. A few bad MP3
/// frames are normal (skip them); a stream of nothing but errors is garbage.
const MAX_CONSECUTIVE_DECODE_ERRORS: u32 = 64;

/// Decode a whole file held in memory into mono PCM at the file's own rate.
///
/// Formats: WAV (PCM 8/16/24/32-bit integer, 32/64-bit float, µ-law, A-law, IMA/MS ADPCM),
/// MP3, Ogg Vorbis. The container is probed from the bytes; `hint_ext` (e.g. `"mp3"`, taken from
/// the URL or the Content-Type) only orders the guesses. Multi-channel audio is averaged to mono.
///
/// The length is measured on decoded frames, never trusted from a header: decoding stops with
/// [`AudioError::TooLong`] as soon as more than `max_ms` milliseconds have been produced, so
/// the work and memory are bounded by `max_ms`. A header that claims more data than is present
/// simply yields the frames that are there. Malformed packets are skipped (up to a limit); a
/// file that yields no audio at all is [`AudioError::Decode`].
pub fn decode(bytes: &[u8], hint_ext: Option<&str>, max_ms: u64) -> Result<Pcm, AudioError> {
    // symphonia is not supposed to panic on bad input; this is belt and braces so that a bug
    // in a decoder fails one playback instead of a worker thread.
    match catch_unwind(AssertUnwindSafe(|| decode_inner(bytes, hint_ext, max_ms))) {
        Ok(r) => r,
        Err(_) => Err(AudioError::Decode(
            "decoder panicked on malformed input".into(),
        )),
    }
}

fn decode_inner(bytes: &[u8], hint_ext: Option<&str>, max_ms: u64) -> Result<Pcm, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Decode("empty file".into()));
    }
    precheck_wav(bytes)?;
    let mut hint = Hint::new();
    if let Some(ext) = hint_ext {
        let ext = ext.trim_start_matches('.');
        if !ext.is_empty() && ext.len() <= 8 && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
            hint.with_extension(&ext.to_ascii_lowercase());
        }
    }

    // Read straight from the caller's slice; its size is bounded by the fetch limit.
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| AudioError::Decode(format!("unrecognised container: {e}")))?;

    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::Decode("no audio track".into()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| AudioError::Decode("audio track without codec parameters".into()))?
        .clone();
    if let Some(rate) = params.sample_rate {
        check_rate(rate)?;
    }

    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(what) => AudioError::Unsupported(what.to_string()),
            other => AudioError::Decode(format!("cannot create decoder: {other}")),
        })?;

    let mut rate: Option<u32> = None;
    let mut out: Vec<i16> = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    let mut consecutive_errors = 0u32;
    let mut last_error: Option<String> = None;

    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // Chained Ogg streams and the like: play the first one.
            Err(SymError::ResetRequired) => break,
            // A truncated file ends early; keep what was decoded.
            Err(SymError::IoError(_)) => break,
            Err(e) => {
                if out.is_empty() {
                    return Err(AudioError::Decode(e.to_string()));
                }
                tracing::debug!(error = %e, "audio container error after audio; stopping");
                break;
            }
        };
        // Metadata is bounded by the file size, but drop it as we go anyway.
        while !format.metadata().is_latest() {
            format.metadata().pop();
        }
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(SymError::DecodeError(e)) => {
                consecutive_errors += 1;
                last_error = Some(e.to_string());
                if consecutive_errors >= MAX_CONSECUTIVE_DECODE_ERRORS {
                    return Err(AudioError::Decode(format!("malformed stream: {e}")));
                }
                continue;
            }
            Err(SymError::IoError(e)) => {
                consecutive_errors += 1;
                last_error = Some(e.to_string());
                if consecutive_errors >= MAX_CONSECUTIVE_DECODE_ERRORS {
                    return Err(AudioError::Decode(format!("malformed stream: {e}")));
                }
                continue;
            }
            Err(SymError::Unsupported(what)) => {
                return Err(AudioError::Unsupported(what.to_string()));
            }
            Err(e) => return Err(AudioError::Decode(e.to_string())),
        };
        consecutive_errors = 0;

        let frames = buf.frames();
        if frames == 0 {
            continue;
        }
        let spec_rate = buf.spec().rate();
        let channels = buf.spec().channels().count();
        if channels == 0 {
            return Err(AudioError::Decode("audio with zero channels".into()));
        }
        match rate {
            None => {
                check_rate(spec_rate)?;
                rate = Some(spec_rate);
            }
            Some(r) if r != spec_rate => {
                return Err(AudioError::Unsupported(format!(
                    "sample rate changes mid-stream ({r} Hz to {spec_rate} Hz)"
                )));
            }
            Some(_) => {}
        }
        let r = rate.unwrap_or(spec_rate);

        // Check the bound before growing the output.
        let total = out.len() as u64 + frames as u64;
        let ms = frames_to_ms(total, r);
        if ms > max_ms {
            return Err(AudioError::TooLong(ms));
        }

        interleaved.clear();
        buf.copy_to_vec_interleaved::<f32>(&mut interleaved);
        out.reserve(frames);
        let scale = 1.0 / channels as f32;
        for frame in interleaved.chunks(channels) {
            let sum: f32 = frame.iter().sum();
            out.push(f32_to_i16(sum * scale));
        }
    }

    let Some(rate) = rate else {
        return Err(AudioError::Decode(match last_error {
            Some(e) => format!("no audio decoded: {e}"),
            None => "no audio decoded".into(),
        }));
    };
    if out.is_empty() {
        return Err(AudioError::Decode("no audio decoded".into()));
    }
    Ok(Pcm::new(rate, out))
}

/// Most channels accepted in a WAV `fmt ` chunk.
const MAX_WAV_CHANNELS: u16 = 64;

/// Rejects WAV headers that are known to trip symphonia's RIFF reader (an arithmetic overflow
/// on absurd channel counts in debug builds) before it sees them. The probe finds a RIFF
/// header anywhere in the file (after an ID3 tag or junk), so every `RIFF` is looked at.
/// Anything that is not a RIFF/WAVE file, or has no readable `fmt ` chunk, is left to the probe.
fn precheck_wav(bytes: &[u8]) -> Result<(), AudioError> {
    let mut from = 0;
    while let Some(at) = bytes[from..].windows(4).position(|w| w == b"RIFF") {
        precheck_riff(&bytes[from + at..])?;
        from += at + 1;
    }
    Ok(())
}

/// [`precheck_wav`] of a RIFF header at the start of `bytes`.
fn precheck_riff(bytes: &[u8]) -> Result<(), AudioError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Ok(());
    }
    let mut pos = 12usize;
    for _ in 0..64 {
        let Some(header) = bytes.get(pos..pos.saturating_add(8)) else {
            return Ok(());
        };
        let id = &header[0..4];
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if id == b"fmt " {
            let Some(ch) = bytes.get(pos + 10..pos + 12) else {
                return Ok(());
            };
            let channels = u16::from_le_bytes([ch[0], ch[1]]);
            if channels > MAX_WAV_CHANNELS {
                return Err(AudioError::Unsupported(format!("{channels} channels")));
            }
            return Ok(());
        }
        // Chunks are padded to an even size.
        let Some(next) = pos
            .checked_add(8)
            .and_then(|p| p.checked_add(size))
            .and_then(|p| p.checked_add(size & 1))
        else {
            return Ok(());
        };
        pos = next;
    }
    Ok(())
}

fn check_rate(rate: u32) -> Result<(), AudioError> {
    if (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(AudioError::Unsupported(format!("sample rate {rate} Hz")))
    }
}

/// Full-scale float (−1.0…1.0) to i16, saturating; NaN becomes 0.
pub(crate) fn f32_to_i16(x: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_conversion_saturates() {
        assert_eq!(f32_to_i16(0.0), 0);
        assert_eq!(f32_to_i16(1.0), 32767);
        assert_eq!(f32_to_i16(-1.0), -32768);
        assert_eq!(f32_to_i16(7.5), 32767);
        assert_eq!(f32_to_i16(f32::NAN), 0);
        assert_eq!(f32_to_i16(f32::NEG_INFINITY), -32768);
        assert_eq!(f32_to_i16(0.5), 16384);
    }

    #[test]
    fn empty_and_tiny_inputs_are_errors() {
        assert!(matches!(
            decode(&[], None, 1000),
            Err(AudioError::Decode(_))
        ));
        assert!(matches!(
            decode(b"RIFF", Some("wav"), 1000),
            Err(AudioError::Decode(_))
        ));
        assert!(matches!(
            decode(&[0xff, 0xfb], Some("mp3"), 1000),
            Err(AudioError::Decode(_))
        ));
        assert!(matches!(
            decode(b"OggS", Some("ogg"), 1000),
            Err(AudioError::Decode(_))
        ));
    }
}
