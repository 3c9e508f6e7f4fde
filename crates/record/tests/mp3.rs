//! MP3 recordings: frame structure, decoded back by an independent decoder (symphonia via the
//! audio crate), crashed and repaired.

use std::fs;

use record::{repair_mp3, scan_mp3, Channels, Direction, Format, Recorder, RecordingOptions};

fn opts(sample_rate: u32, channels: Channels) -> RecordingOptions {
    RecordingOptions {
        sample_rate,
        channels,
        direction: Direction::Both,
    }
}

fn tone_frame(rate: u32, hz: f64, start: usize) -> Vec<i16> {
    (0..(rate / 50) as usize)
        .map(|i| {
            let t = (start + i) as f64 / f64::from(rate);
            (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// Power of `hz` in `x` relative to the signal's total power, dB.
fn goertzel_db(x: &[i16], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let total: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() * x.len() as f64 / 2.0;
    10.0 * (p / total.max(1.0)).log10()
}

fn record_tone(path: &std::path::Path, rate: u32, channels: Channels, seconds: usize) -> Recorder {
    let mut rec = Recorder::create_as(path, opts(rate, channels), Format::Mp3).unwrap();
    let n = (rate / 50) as usize;
    for f in 0..seconds * 50 {
        rec.write_frame(Some(&tone_frame(rate, 1000.0, f * n)), None)
            .unwrap();
    }
    rec
}

#[test]
fn a_mono_tone_encodes_to_back_to_back_frames_that_decode_to_the_tone() {
    for rate in [8000u32, 16000] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.mp3");
        let rec = record_tone(&path, rate, Channels::Mono, 2);
        let info = rec.finish().unwrap();
        assert_eq!(info.duration_ms, 2000);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(info.size_bytes, bytes.len() as u64);
        assert!(
            bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0,
            "starts on a frame sync"
        );
        let s = scan_mp3(&bytes);
        assert_eq!(s.valid_len, bytes.len() as u64, "whole frames back to back");
        assert_eq!((s.sample_rate, s.channels), (rate, 1));
        // 576 samples a frame (MPEG-2/2.5); lame adds its delay and pads the last frame.
        assert!(
            (2000..=2400).contains(&s.duration_ms()),
            "{}",
            s.duration_ms()
        );
        let pcm = audio::decode(&bytes, Some("mp3"), 10_000).unwrap();
        assert_eq!(pcm.rate, rate);
        let mid = &pcm.samples[pcm.samples.len() / 4..pcm.samples.len() * 3 / 4];
        assert!(
            goertzel_db(mid, 1000.0, rate) > -3.0,
            "the tone survives encoding"
        );
    }
}

#[test]
fn stereo_frames_say_two_channels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("st.mp3");
    let rec = record_tone(&path, 8000, Channels::Stereo, 1);
    rec.finish().unwrap();
    let bytes = fs::read(&path).unwrap();
    let s = scan_mp3(&bytes);
    assert_eq!(s.channels, 2);
    assert_eq!(s.valid_len, bytes.len() as u64);
    assert!(audio::decode(&bytes, Some("mp3"), 10_000).is_ok());
}

#[test]
fn a_crash_leaves_whole_frames_up_to_the_last_second_and_repair_cuts_a_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.mp3");
    // Dropped without finish: what a crash leaves (the frames are already in the file).
    drop(record_tone(&path, 8000, Channels::Mono, 3));
    let bytes = fs::read(&path).unwrap();
    let s = scan_mp3(&bytes);
    // lame hands out bytes as its bit reservoir allows: the file may end inside a frame.
    assert!(
        bytes.len() as u64 - s.valid_len < 1000,
        "{} of {}",
        s.valid_len,
        bytes.len()
    );
    assert!(s.duration_ms() >= 2500, "{}", s.duration_ms());
    // Cut inside the last whole frame too.
    let cut = s.valid_len as usize - 10;
    fs::write(&path, &bytes[..cut]).unwrap();
    let info = repair_mp3(&path).unwrap();
    let after = fs::read(&path).unwrap();
    assert_eq!(info.size_bytes, after.len() as u64);
    assert!(after.len() < cut);
    assert_eq!(scan_mp3(&after).frames, s.frames - 1);
    assert_eq!(scan_mp3(&after).valid_len, after.len() as u64);
    assert!(audio::decode(&after, Some("mp3"), 10_000).is_ok());
    // Repairing again changes nothing.
    assert_eq!(repair_mp3(&path).unwrap(), info);
    // Not an MP3 file at all.
    fs::write(&path, b"hello world, not mp3").unwrap();
    assert!(repair_mp3(&path).is_err());
}

#[test]
fn mp3_refuses_rates_lame_cannot_keep() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Recorder::create_as(
        &dir.path().join("a.mp3"),
        opts(8050, Channels::Mono),
        Format::Mp3
    )
    .is_err());
    assert!(!dir.path().join("a.mp3").exists());
}
