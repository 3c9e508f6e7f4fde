//! Decoding and resampling against WAVs written at test time.

mod common;

use std::io::Cursor;

use audio::{decode, resample, AudioError, Pcm};
use common::*;

#[test]
fn wav16_stereo_downmixes_to_mono() {
    // Left: 1 kHz at 0.5; right: silence ⇒ mono 1 kHz at 0.25.
    let left = tone(1000.0, 16_000, 0.5, 0.5);
    let right = vec![0.0; left.len()];
    let bytes = wav16(16_000, 2, &left, &right);
    let pcm = decode(&bytes, Some("wav"), 60_000).unwrap();
    assert_eq!(pcm.rate, 16_000);
    assert_eq!(pcm.samples.len(), 8_000);
    assert_eq!(pcm.duration_ms(), 500);
    let p = goertzel(&pcm.samples, 16_000, 1000.0);
    assert!((p - 0.0625).abs() < 0.005, "1 kHz power {p}");
    assert!(goertzel(&pcm.samples, 16_000, 3000.0) < 1e-6);
}

#[test]
fn probe_ignores_a_wrong_hint() {
    let bytes = tone_wav(1000.0, 8_000, 0.25);
    let pcm = decode(&bytes, Some("mp3"), 60_000).unwrap();
    assert_eq!(pcm.samples.len(), 2_000);
    let pcm = decode(&bytes, None, 60_000).unwrap();
    assert_eq!(pcm.samples.len(), 2_000);
    let pcm = decode(&bytes, Some("../../weird ext"), 60_000).unwrap();
    assert_eq!(pcm.samples.len(), 2_000);
}

fn write_wav(
    spec: hound::WavSpec,
    frames: usize,
    mut f: impl FnMut(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>, usize),
) -> Vec<u8> {
    let mut cur = Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for i in 0..frames {
            f(&mut w, i);
        }
        w.finalize().unwrap();
    }
    cur.into_inner()
}

#[test]
fn wav_8_24_32_bit_and_float() {
    let rate = 8_000;
    let t = tone(1000.0, rate, 0.5, 0.5);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "8-bit",
            write_wav(
                hound::WavSpec {
                    channels: 1,
                    sample_rate: rate,
                    bits_per_sample: 8,
                    sample_format: hound::SampleFormat::Int,
                },
                t.len(),
                |w, i| w.write_sample((t[i] * 127.0) as i8).unwrap(),
            ),
        ),
        (
            "24-bit",
            write_wav(
                hound::WavSpec {
                    channels: 1,
                    sample_rate: rate,
                    bits_per_sample: 24,
                    sample_format: hound::SampleFormat::Int,
                },
                t.len(),
                |w, i| w.write_sample((t[i] * 8_388_607.0) as i32).unwrap(),
            ),
        ),
        (
            "32-bit",
            write_wav(
                hound::WavSpec {
                    channels: 1,
                    sample_rate: rate,
                    bits_per_sample: 32,
                    sample_format: hound::SampleFormat::Int,
                },
                t.len(),
                |w, i| w.write_sample((t[i] * 2_147_483_647.0) as i32).unwrap(),
            ),
        ),
        (
            "float",
            write_wav(
                hound::WavSpec {
                    channels: 3,
                    sample_rate: rate,
                    bits_per_sample: 32,
                    sample_format: hound::SampleFormat::Float,
                },
                t.len(),
                |w, i| {
                    for _ in 0..3 {
                        w.write_sample(t[i] as f32).unwrap();
                    }
                },
            ),
        ),
    ];
    for (name, bytes) in cases {
        let pcm = decode(&bytes, Some("wav"), 60_000).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pcm.rate, rate, "{name}");
        assert_eq!(pcm.samples.len(), 4_000, "{name}");
        let p = goertzel(&pcm.samples, rate, 1000.0);
        assert!((p - 0.25).abs() < 0.02, "{name}: 1 kHz power {p}");
    }
}

#[test]
fn float_wav_out_of_range_and_nan_saturate() {
    let bytes = write_wav(
        hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        },
        4,
        |w, i| {
            w.write_sample([4.0f32, -4.0, f32::NAN, f32::INFINITY][i])
                .unwrap()
        },
    );
    let pcm = decode(&bytes, Some("wav"), 60_000).unwrap();
    assert_eq!(&pcm.samples[..], &[32767, -32768, 0, 32767]);
}

#[test]
fn mulaw_and_alaw_wav() {
    let t = tone(1000.0, 8_000, 0.5, 0.5);
    let data: Vec<u8> = t.iter().map(|x| mulaw((x * 32767.0) as i16)).collect();
    let pcm = decode(&wav_g711(7, 8_000, &data), Some("wav"), 60_000).unwrap();
    assert_eq!(pcm.samples.len(), 4_000);
    let p = goertzel(&pcm.samples, 8_000, 1000.0);
    assert!((p - 0.25).abs() < 0.02, "µ-law 1 kHz power {p}");

    // A-law silence is 0xD5.
    let pcm = decode(&wav_g711(6, 8_000, &[0xD5; 800]), Some("wav"), 60_000).unwrap();
    assert_eq!(pcm.samples.len(), 800);
    assert!(pcm.samples.iter().all(|s| s.abs() < 16));
}

#[test]
fn garbage_is_a_decode_error() {
    for junk in [
        &b"hello, this is not audio at all"[..],
        b"<!doctype html><html><body>404</body></html>",
        &[0u8; 4096],
        b"RIFF\x00\x00\x00\x00WAVE",
        b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00",
    ] {
        match decode(junk, Some("wav"), 60_000) {
            Err(AudioError::Decode(_)) | Err(AudioError::Unsupported(_)) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(junk)),
        }
    }
    assert!(matches!(
        decode(b"<html></html>", None, 60_000),
        Err(AudioError::Decode(_))
    ));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for i in 0..300 {
        let len = (rng.next() % 8192) as usize;
        let mut bytes = rng.bytes(len);
        // Give some inputs a plausible magic so the parsers go deeper.
        let magic: &[u8] = match i % 5 {
            0 => b"RIFF\x24\x08\x00\x00WAVEfmt ",
            1 => b"OggS\x00\x02",
            2 => b"ID3\x04\x00\x00",
            3 => &[0xff, 0xfb, 0x90, 0x64],
            _ => b"",
        };
        let n = magic.len().min(bytes.len());
        bytes[..n].copy_from_slice(&magic[..n]);
        let hint = ["wav", "mp3", "ogg", ""][i % 4];
        let _ = decode(&bytes, Some(hint), 10_000);
    }
}

#[test]
fn truncations_and_corruptions_of_a_real_wav_never_panic() {
    let left = tone(440.0, 8_000, 0.2, 0.5);
    let bytes = wav16(8_000, 2, &left, &left);
    for cut in (0..bytes.len()).step_by(7).chain(0..64) {
        match decode(&bytes[..cut], Some("wav"), 60_000) {
            Ok(pcm) => assert!(pcm.samples.len() <= left.len()),
            Err(AudioError::Decode(_)) | Err(AudioError::Unsupported(_)) => {}
            Err(e) => panic!("cut {cut}: {e:?}"),
        }
    }
    let mut rng = Rng(42);
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..4 {
            let at = (rng.next() % 64) as usize;
            b[at] = rng.next() as u8;
        }
        let _ = decode(&b, Some("wav"), 60_000);
    }
}

#[test]
fn header_claiming_huge_length_yields_what_is_there() {
    let t = tone(1000.0, 8_000, 0.125, 0.5);
    let mut bytes = wav16(8_000, 1, &t, &t);
    // RIFF size at 4, data size at 40 (hound writes a plain 44-byte header for 16-bit mono).
    assert_eq!(&bytes[36..40], b"data");
    bytes[4..8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    bytes[40..44].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let pcm = decode(&bytes, Some("wav"), 60_000).unwrap();
    assert_eq!(pcm.samples.len(), 1_000);
    // The limit is on decoded audio, not on what the header claims.
    let pcm = decode(&bytes, Some("wav"), 200).unwrap();
    assert_eq!(pcm.samples.len(), 1_000);
}

#[test]
fn absurd_channel_count_is_unsupported() {
    let t = tone(1000.0, 8_000, 0.01, 0.5);
    let mut bytes = wav16(8_000, 1, &t, &t);
    // Channel count at offset 22 in the canonical header.
    bytes[22..24].copy_from_slice(&20_000u16.to_le_bytes());
    let r = decode(&bytes, Some("wav"), 60_000);
    assert!(matches!(r, Err(AudioError::Unsupported(_))), "{r:?}");
}

#[test]
fn absurd_channel_count_after_junk_is_unsupported() {
    // Found by the audio_decode fuzz target: the probe finds a RIFF header after an ID3 tag and
    // junk, where the channel check (which looked at the start of the file only) missed it.
    let t = tone(1000.0, 8_000, 0.01, 0.5);
    let mut wav = wav16(8_000, 1, &t, &t);
    // 60,000 channels of 2 bytes: the block-align product overflows u16.
    wav[22..24].copy_from_slice(&60_000u16.to_le_bytes());
    for prefix in [&b"ID3\x03\x00\x00\x00\x00\x00\x00"[..], &[0u8; 37][..]] {
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&wav);
        let r = decode(&bytes, None, 60_000);
        assert!(matches!(r, Err(AudioError::Unsupported(_))), "{r:?}");
    }
}

#[test]
fn too_long_is_rejected() {
    let bytes = tone_wav(1000.0, 8_000, 2.0);
    match decode(&bytes, Some("wav"), 1_000) {
        Err(AudioError::TooLong(ms)) => assert!(ms > 1_000),
        other => panic!("{other:?}"),
    }
    assert!(decode(&bytes, Some("wav"), 2_000).is_ok());
}

#[test]
fn silly_sample_rates_are_unsupported() {
    let t = tone(100.0, 100, 1.0, 0.5);
    let bytes = wav16(100, 1, &t, &t);
    let r = decode(&bytes, Some("wav"), 60_000);
    assert!(matches!(r, Err(AudioError::Unsupported(_))), "{r:?}");
}

/// Fraction of the clip's power that sits at `freq`.
fn purity(pcm: &Pcm, freq: f64) -> f64 {
    // Ignore the edges, where the band-limited filter rings.
    let n = pcm.samples.len();
    let mid = &pcm.samples[n / 10..n - n / 10];
    goertzel(mid, pcm.rate, freq) / 2.0 / power(mid)
}

#[test]
fn resample_16k_to_8k_keeps_the_tone_and_length() {
    let bytes = tone_wav(1000.0, 16_000, 1.0);
    let pcm = decode(&bytes, None, 60_000).unwrap();
    let out = resample(&pcm, 8_000).unwrap();
    assert_eq!(out.rate, 8_000);
    // The resampler's start-up delay is trimmed and the tail flushed: the length is
    // ceil(len * out / in), within one frame.
    assert!(
        (out.samples.len() as i64 - 8_000).abs() <= 1,
        "{}",
        out.samples.len()
    );
    let p = goertzel(&out.samples[800..7200], 8_000, 1000.0);
    assert!((p - 0.25).abs() < 0.01, "1 kHz power {p}");
    assert!(purity(&out, 1000.0) > 0.99);
    // Aligned: the delay is trimmed, so the phase matches the source tone.
    let src = tone(1000.0, 8_000, 1.0, 0.5);
    let err: f64 = (1000..2000)
        .map(|i| (out.samples[i] as f64 / 32768.0 - src[i]).abs())
        .fold(0.0, f64::max);
    assert!(err < 0.02, "max sample error {err}");
}

#[test]
fn resample_8k_to_48k() {
    let bytes = tone_wav(1000.0, 8_000, 0.5);
    let pcm = decode(&bytes, None, 60_000).unwrap();
    let out = resample(&pcm, 48_000).unwrap();
    assert_eq!(out.rate, 48_000);
    assert!((out.samples.len() as i64 - 24_000).abs() <= 1);
    assert_eq!(out.duration_ms(), 500);
    assert!(purity(&out, 1000.0) > 0.99);
}

#[test]
fn resample_44k1_to_8k_filters_above_nyquist() {
    // 6 kHz cannot exist at 8 kHz; it must be filtered out, not aliased to 2 kHz.
    let t: Vec<f64> = tone(6000.0, 44_100, 0.5, 0.5)
        .iter()
        .zip(tone(500.0, 44_100, 0.5, 0.5))
        .map(|(a, b)| a * 0.5 + b * 0.5)
        .collect();
    let pcm = decode(&wav16(44_100, 1, &t, &t), None, 60_000).unwrap();
    let out = resample(&pcm, 8_000).unwrap();
    assert!((out.samples.len() as i64 - 4_000).abs() <= 1);
    let n = out.samples.len();
    let mid = &out.samples[n / 10..n - n / 10];
    let wanted = goertzel(mid, 8_000, 500.0);
    let alias = goertzel(mid, 8_000, 2000.0);
    assert!(wanted > 0.05, "500 Hz power {wanted}");
    assert!(alias < wanted * 1e-3, "alias {alias} vs {wanted}");
}

/// A hand-built MPEG-1 Layer III stream: `frames` frames of 128 kbit/s at 44.1 kHz whose side
/// information is all zero (no Huffman data), which decode to digital silence. No encoder is
/// needed, and it exercises the MP3 probe, demuxer and decoder.
fn silent_mp3(frames: usize, stereo: bool) -> Vec<u8> {
    // 144 * 128000 / 44100 = 417 bytes per frame without padding.
    let mode = if stereo { 0x00 } else { 0xC0 };
    let mut frame = vec![0u8; 417];
    frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, mode]);
    let mut v = Vec::with_capacity(frames * 417);
    for _ in 0..frames {
        v.extend_from_slice(&frame);
    }
    v
}

#[test]
fn mp3_frames_decode() {
    for stereo in [false, true] {
        let bytes = silent_mp3(100, stereo);
        let pcm = decode(&bytes, None, 60_000).unwrap_or_else(|e| panic!("stereo {stereo}: {e}"));
        assert_eq!(pcm.rate, 44_100);
        let n = pcm.samples.len() as i64;
        assert!((n - 115_200).abs() <= 2_304, "stereo {stereo}: {n} samples");
        assert!(pcm.samples.iter().all(|&s| s == 0));
        let out = resample(&pcm, 8_000).unwrap();
        assert!((out.samples.len() as i64 - n * 8_000 / 44_100).abs() <= 1);
        // The limit applies to MP3 too.
        assert!(matches!(
            decode(&bytes, Some("mp3"), 1_000),
            Err(AudioError::TooLong(_))
        ));
    }
    // Behind an ID3v2 tag (20 bytes of padding).
    let mut tagged = b"ID3\x03\x00\x00\x00\x00\x00\x14".to_vec();
    tagged.extend_from_slice(&[0u8; 20]);
    tagged.extend_from_slice(&silent_mp3(10, false));
    let pcm = decode(&tagged, Some("mp3"), 60_000).unwrap();
    assert_eq!(pcm.rate, 44_100);
    assert!(pcm.samples.len() >= 9 * 1152);

    // Truncated and corrupted MP3 never panics.
    let bytes = silent_mp3(20, true);
    for cut in (0..bytes.len()).step_by(97) {
        let _ = decode(&bytes[..cut], Some("mp3"), 60_000);
    }
    let mut rng = Rng(7);
    for _ in 0..60 {
        let mut b = bytes.clone();
        for _ in 0..16 {
            let at = (rng.next() as usize) % b.len();
            b[at] = rng.next() as u8;
        }
        let _ = decode(&b, Some("mp3"), 60_000);
    }
}

/// A longer mutation run; `cargo test -p audio -- --ignored` (it relies on catch_unwind never
/// being needed: run with --nocapture and look for "panicked at").
#[test]
#[ignore]
fn fuzz_mutations_long() {
    let t = tone(440.0, 8_000, 0.05, 0.5);
    let seeds = [
        wav16(8_000, 2, &t, &t),
        wav_g711(7, 8_000, &[0x7f; 400]),
        silent_mp3(8, true),
        silent_mp3(8, false),
    ];
    let mut rng = Rng(99);
    for i in 0..20_000 {
        let mut b = seeds[i % seeds.len()].clone();
        let flips = 1 + (rng.next() % 32) as usize;
        for _ in 0..flips {
            let at = (rng.next() as usize) % b.len();
            b[at] = rng.next() as u8;
        }
        if rng.next() & 3 == 0 {
            let cut = (rng.next() as usize) % b.len();
            b.truncate(cut);
        }
        let _ = decode(&b, None, 60_000);
    }
}
