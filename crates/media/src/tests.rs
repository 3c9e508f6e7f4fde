//! Crate-level tests: G.711 code points and bounds, and every codec end to end with tones.

use crate::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
use crate::tone::{goertzel_dbfs, ToneGenerator};
use crate::{decoder, encoder, CodecKind, MediaError};

const ALL: [CodecKind; 4] = [
    CodecKind::Pcmu,
    CodecKind::Pcma,
    CodecKind::G722,
    CodecKind::Opus,
];

/// Small deterministic PRNG (xorshift64*), so tests need no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn codec_rates_and_frames() {
    let expect = [(8000, 160), (8000, 160), (16000, 320), (48000, 960)];
    for (kind, (rate, frame)) in ALL.iter().zip(expect) {
        assert_eq!(kind.sample_rate(), rate);
        assert_eq!(kind.frame_samples(), frame);
    }
}

#[test]
fn g711_known_code_points() {
    assert_eq!(ulaw_encode(0), 0xFF);
    assert_eq!(ulaw_decode(0xFF), 0);
    assert_eq!(ulaw_decode(0x7F), 0);
    assert_eq!(ulaw_decode(0x00), -32124);
    assert_eq!(ulaw_decode(0x80), 32124);
    assert_eq!(ulaw_encode(i16::MAX), 0x80);
    assert_eq!(ulaw_encode(i16::MIN), 0x00);

    assert_eq!(alaw_encode(0), 0xD5);
    assert_eq!(alaw_decode(0xD5), 8);
    assert_eq!(alaw_decode(0x55), -8);
    assert_eq!(alaw_encode(-1), 0x55);
    assert_eq!(alaw_decode(alaw_encode(i16::MAX)), 32256);
    assert_eq!(alaw_decode(alaw_encode(i16::MIN)), -32256);
}

#[test]
fn g711_every_code_decodes_to_itself() {
    for b in 0..=255u8 {
        let u = ulaw_decode(b);
        // 0x7F and 0xFF both mean zero; the encoder picks 0xFF.
        if b != 0x7F {
            assert_eq!(ulaw_encode(u), b, "µ-law {b:#04x} -> {u}");
        }
        let a = alaw_decode(b);
        assert_eq!(alaw_encode(a), b, "A-law {b:#04x} -> {a}");
    }
}

#[test]
fn g711_round_trip_error_bounds_over_whole_range() {
    let mut prev_u = i16::MIN;
    let mut prev_a = i16::MIN;
    for s in i16::MIN..=i16::MAX {
        let mag = i32::from(s).abs();

        let u = ulaw_decode(ulaw_encode(s));
        let err = (i32::from(u) - i32::from(s)).abs();
        // Half a quantization step (step = magnitude/16 at most), or the clip above 32635.
        let bound = if mag > 32635 {
            mag - 32124
        } else {
            (mag + 0x84) / 32 + 1
        };
        assert!(err <= bound, "µ-law {s} -> {u}: error {err} > {bound}");
        assert!(u >= prev_u, "µ-law not monotonic at {s}");
        assert!(i32::from(u) * i32::from(s) >= 0, "µ-law sign flips at {s}");
        prev_u = u;

        let a = alaw_decode(alaw_encode(s));
        let err = (i32::from(a) - i32::from(s)).abs();
        let bound = (mag / 32).max(8) + 8;
        assert!(err <= bound, "A-law {s} -> {a}: error {err} > {bound}");
        assert!(a >= prev_a, "A-law not monotonic at {s}");
        assert!(
            s == 0 || i32::from(a) * i32::from(s) > 0,
            "A-law sign flips at {s}"
        );
        prev_a = a;
    }
}

/// Encodes one second of `freqs` at `amplitude` frame by frame and decodes it again.
fn round_trip(kind: CodecKind, freqs: &[f32], amplitude: i16) -> Vec<i16> {
    let mut enc = encoder(kind).unwrap();
    let mut dec = decoder(kind).unwrap();
    assert_eq!(enc.kind(), kind);
    assert_eq!(dec.kind(), kind);
    let mut tone = ToneGenerator::new(kind.sample_rate(), freqs, amplitude);
    let mut frame = vec![0i16; kind.frame_samples()];
    let mut out = Vec::new();
    for _ in 0..50 {
        tone.fill(&mut frame);
        let mut payload = Vec::new();
        enc.encode(&frame, &mut payload).unwrap();
        assert!(!payload.is_empty());
        let before = out.len();
        dec.decode(&payload, &mut out).unwrap();
        assert_eq!(out.len() - before, kind.frame_samples(), "{kind:?}");
    }
    out
}

#[test]
fn every_codec_carries_a_1khz_tone() {
    for kind in ALL {
        // -6 dBFS.
        let out = round_trip(kind, &[1000.0], 16384);
        let skip = 3 * kind.frame_samples();
        let rate = kind.sample_rate();
        let tone = goertzel_dbfs(&out[skip..], rate, 1000.0);
        let other = goertzel_dbfs(&out[skip..], rate, 2500.0);
        assert!(tone > -12.0, "{kind:?}: 1 kHz at {tone} dBFS");
        assert!(
            tone - other >= 25.0,
            "{kind:?}: 1 kHz {tone} vs 2.5 kHz {other}"
        );
    }
}

#[test]
fn every_codec_carries_dtmf_pairs() {
    // DTMF '5' (770 + 1336 Hz): both components come through.
    for kind in ALL {
        let out = round_trip(kind, &[770.0, 1336.0], 16384);
        let skip = 3 * kind.frame_samples();
        let rate = kind.sample_rate();
        let low = goertzel_dbfs(&out[skip..], rate, 770.0);
        let high = goertzel_dbfs(&out[skip..], rate, 1336.0);
        let off = goertzel_dbfs(&out[skip..], rate, 1900.0);
        assert!(low > -16.0 && high > -16.0, "{kind:?}: {low} / {high}");
        assert!(low - off > 20.0 && high - off > 20.0, "{kind:?}: off {off}");
    }
}

#[test]
fn silence_stays_near_silence() {
    for kind in ALL {
        let out = round_trip(kind, &[], 0);
        let peak = out.iter().map(|s| i32::from(*s).abs()).max().unwrap();
        assert!(peak <= 64, "{kind:?}: silence peaks at {peak}");
    }
}

#[test]
fn wrong_frame_length_is_an_error() {
    for kind in ALL {
        let mut enc = encoder(kind).unwrap();
        for len in [
            0,
            1,
            kind.frame_samples() - 1,
            kind.frame_samples() + 1,
            2 * kind.frame_samples(),
        ] {
            let mut out = Vec::new();
            let err = enc.encode(&vec![0; len], &mut out).unwrap_err();
            assert!(
                matches!(err, MediaError::FrameLength { got, .. } if got == len),
                "{kind:?}: {err}"
            );
            assert!(out.is_empty());
        }
        // The encoder still works afterwards.
        let mut out = Vec::new();
        enc.encode(&vec![0; kind.frame_samples()], &mut out)
            .unwrap();
    }
}

#[test]
fn empty_payload_is_an_error() {
    for kind in ALL {
        let mut dec = decoder(kind).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            dec.decode(&[], &mut out),
            Err(MediaError::EmptyPayload(k)) if k == kind
        ));
        assert!(out.is_empty());
    }
}

#[test]
fn random_and_truncated_payloads_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for kind in ALL {
        let mut dec = decoder(kind).unwrap();
        let mut out = Vec::new();
        for _ in 0..2000 {
            let len = (rng.next() % 1600) as usize;
            let payload = rng.bytes(len);
            out.clear();
            // Error or output, never a panic; output bounded by 120 ms.
            if dec.decode(&payload, &mut out).is_ok() {
                assert!(out.len() <= 2 * len.max(5760));
            }
        }
        // Truncations of a real payload.
        let mut enc = encoder(kind).unwrap();
        let mut frame = vec![0i16; kind.frame_samples()];
        ToneGenerator::new(kind.sample_rate(), &[440.0], 8000).fill(&mut frame);
        let mut payload = Vec::new();
        enc.encode(&frame, &mut payload).unwrap();
        for cut in 0..payload.len() {
            out.clear();
            let _ = dec.decode(&payload[..cut], &mut out);
        }
        // And it still decodes a good payload afterwards, and conceals exactly one frame.
        out.clear();
        dec.decode(&payload, &mut out).unwrap();
        assert_eq!(out.len(), kind.frame_samples());
        out.clear();
        dec.conceal(&mut out);
        assert_eq!(out.len(), kind.frame_samples());
    }
}

#[test]
fn conceal_gives_exactly_one_frame_and_fades() {
    for kind in ALL {
        let mut dec = decoder(kind).unwrap();
        // Before anything was decoded.
        let mut out = vec![7i16; 3];
        dec.conceal(&mut out);
        assert_eq!(out.len(), 3 + kind.frame_samples());
        assert_eq!(&out[..3], &[7, 7, 7]);

        let audio = round_trip(kind, &[1000.0], 16384);
        assert!(!audio.is_empty());
        let mut enc = encoder(kind).unwrap();
        let mut tone = ToneGenerator::new(kind.sample_rate(), &[1000.0], 16384);
        let mut frame = vec![0i16; kind.frame_samples()];
        for _ in 0..10 {
            tone.fill(&mut frame);
            let mut payload = Vec::new();
            enc.encode(&frame, &mut payload).unwrap();
            out.clear();
            dec.decode(&payload, &mut out).unwrap();
        }
        let mut energies = Vec::new();
        for _ in 0..10 {
            out.clear();
            dec.conceal(&mut out);
            assert_eq!(out.len(), kind.frame_samples(), "{kind:?}");
            energies.push(out.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>());
        }
        // Concealment dies away rather than repeating forever.
        assert!(
            energies[9] < energies[0] / 10.0 || energies[9] < 1.0,
            "{kind:?}: {energies:?}"
        );
    }
}

#[test]
fn tone_generator_is_phase_continuous_and_goertzel_is_calibrated() {
    let mut whole = vec![0i16; 8000];
    ToneGenerator::new(8000, &[440.0, 480.0], 20000).fill(&mut whole);
    let mut pieces = Vec::new();
    let mut tone = ToneGenerator::new(8000, &[440.0, 480.0], 20000);
    let mut frame = [0i16; 160];
    for _ in 0..50 {
        tone.fill(&mut frame);
        pieces.extend_from_slice(&frame);
    }
    assert_eq!(whole, pieces);
    assert!(whole.iter().all(|s| i32::from(*s).abs() <= 20000));

    // Full scale gives ~0 dBFS, -6 dBFS gives ~-6.
    let mut full = vec![0i16; 8000];
    ToneGenerator::new(8000, &[1000.0], i16::MAX).fill(&mut full);
    assert!(goertzel_dbfs(&full, 8000, 1000.0).abs() < 0.1);
    let mut half = vec![0i16; 8000];
    ToneGenerator::new(8000, &[1000.0], 16384).fill(&mut half);
    assert!((goertzel_dbfs(&half, 8000, 1000.0) + 6.02).abs() < 0.1);
    assert!(goertzel_dbfs(&half, 8000, 2500.0) < -60.0);
    // Each of two components at half the amplitude.
    assert!(
        (goertzel_dbfs(&pieces, 8000, 440.0) - 20.0 * (10000.0f32 / 32768.0).log10()).abs() < 0.2
    );
    assert_eq!(goertzel_dbfs(&[], 8000, 1000.0), -200.0);
    assert_eq!(goertzel_dbfs(&[0; 100], 8000, 1000.0), -200.0);
}

#[test]
fn coders_are_send() {
    fn is_send<T: Send + ?Sized>() {}
    is_send::<dyn crate::AudioEncoder>();
    is_send::<dyn crate::AudioDecoder>();
    let enc = encoder(CodecKind::Opus).unwrap();
    std::thread::spawn(move || drop(enc)).join().unwrap();
}

#[test]
fn stereo_opus_from_a_peer_decodes_as_mono() {
    use audiopus::coder::Encoder;
    use audiopus::{Application, Channels, SampleRate};
    let stereo = Encoder::new(SampleRate::Hz48000, Channels::Stereo, Application::Voip).unwrap();
    let mut dec = decoder(CodecKind::Opus).unwrap();
    let mut tone = ToneGenerator::new(48000, &[1000.0], 16384);
    let mut mono = vec![0i16; 960];
    let mut out = Vec::new();
    for _ in 0..50 {
        tone.fill(&mut mono);
        let interleaved: Vec<i16> = mono.iter().flat_map(|&s| [s, s]).collect();
        let mut packet = vec![0u8; 4000];
        let n = stereo.encode(&interleaved, &mut packet).unwrap();
        let before = out.len();
        dec.decode(&packet[..n], &mut out).unwrap();
        assert_eq!(out.len() - before, 960);
    }
    let level = goertzel_dbfs(&out[3 * 960..], 48000, 1000.0);
    assert!(level > -12.0, "stereo 1 kHz decoded at {level} dBFS");
}

#[test]
fn g711_decodes_any_payload_length() {
    for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
        let mut dec = decoder(kind).unwrap();
        for len in [1, 7, 80, 160, 161, 320] {
            let mut out = Vec::new();
            dec.decode(&vec![0xFF; len], &mut out).unwrap();
            assert_eq!(out.len(), len);
        }
    }
}
