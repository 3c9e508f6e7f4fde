//! WAV recordings written, read back (by our own parser and by hound), crashed and repaired.

use std::fs;
use std::path::{Path, PathBuf};

use record::{
    repair, Channels, Direction, PauseBehavior, RecordError, RecordingOptions, WavRecorder,
};

fn opts(sample_rate: u32, channels: Channels, direction: Direction) -> RecordingOptions {
    RecordingOptions {
        sample_rate,
        channels,
        direction,
    }
}

/// A 20 ms frame at `rate` whose sample `i` is `f(i)`.
fn frame(rate: u32, f: impl Fn(usize) -> i16) -> Vec<i16> {
    (0..(rate / 50) as usize).map(f).collect()
}

struct Header {
    riff_size: u32,
    channels: u16,
    sample_rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits: u16,
    data_size: u32,
}

/// Parses the canonical 44-byte header from the file as it is on disk now.
fn header(path: &Path) -> Header {
    let b = fs::read(path).unwrap();
    assert!(b.len() >= 44, "file has {} bytes", b.len());
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(&b[8..12], b"WAVE");
    assert_eq!(&b[12..16], b"fmt ");
    assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 16);
    assert_eq!(u16::from_le_bytes(b[20..22].try_into().unwrap()), 1, "PCM");
    assert_eq!(&b[36..40], b"data");
    Header {
        riff_size: u32::from_le_bytes(b[4..8].try_into().unwrap()),
        channels: u16::from_le_bytes(b[22..24].try_into().unwrap()),
        sample_rate: u32::from_le_bytes(b[24..28].try_into().unwrap()),
        byte_rate: u32::from_le_bytes(b[28..32].try_into().unwrap()),
        block_align: u16::from_le_bytes(b[32..34].try_into().unwrap()),
        bits: u16::from_le_bytes(b[34..36].try_into().unwrap()),
        data_size: u32::from_le_bytes(b[40..44].try_into().unwrap()),
    }
}

/// All samples (interleaved) as hound reads them, with the file's spec.
fn samples(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let s = r.samples::<i16>().collect::<Result<Vec<_>, _>>().unwrap();
    (spec, s)
}

fn file_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn mono_listen_one_second_has_exact_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "mono.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Listen)).unwrap();
    let mut expected = Vec::new();
    for n in 0..50 {
        let listen = frame(8000, |i| (n * 160 + i) as i16);
        let speak = frame(8000, |_| 12345); // not recorded
        expected.extend_from_slice(&listen);
        rec.write_frame(Some(&listen), Some(&speak)).unwrap();
    }
    assert_eq!(rec.duration_ms(), 1000);
    let info = rec.finish().unwrap();
    assert_eq!(info.duration_ms, 1000);
    assert_eq!(info.size_bytes, 44 + 16_000);
    assert_eq!(info.path, path);
    assert_eq!(fs::metadata(&path).unwrap().len(), 16_044);

    let h = header(&path);
    assert_eq!(h.riff_size, 36 + 16_000);
    assert_eq!(h.data_size, 16_000);
    assert_eq!(h.channels, 1);
    assert_eq!(h.sample_rate, 8000);
    assert_eq!(h.byte_rate, 16_000);
    assert_eq!(h.block_align, 2);
    assert_eq!(h.bits, 16);

    let (spec, s) = samples(&path);
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    assert_eq!(s, expected);
}

#[test]
fn mono_speak_records_only_what_we_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "speak.wav");
    let mut rec =
        WavRecorder::create(&path, opts(16_000, Channels::Mono, Direction::Speak)).unwrap();
    let listen = frame(16_000, |_| 999);
    let speak = frame(16_000, |i| i as i16 - 100);
    rec.write_frame(Some(&listen), Some(&speak)).unwrap();
    rec.write_frame(Some(&listen), None).unwrap();
    let info = rec.finish().unwrap();
    assert_eq!(info.duration_ms, 40);
    let (_, s) = samples(&path);
    assert_eq!(&s[..320], &speak[..]);
    assert!(
        s[320..].iter().all(|&x| x == 0),
        "absent speak frame is silence"
    );
}

#[test]
fn stereo_puts_listen_left_and_speak_right() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "stereo.wav");
    let mut rec =
        WavRecorder::create(&path, opts(48_000, Channels::Stereo, Direction::Both)).unwrap();
    let listen = frame(48_000, |i| 1000 + i as i16);
    let speak = frame(48_000, |i| -(i as i16) - 1);
    rec.write_frame(Some(&listen), Some(&speak)).unwrap();
    rec.write_frame(None, Some(&speak)).unwrap();
    rec.write_frame(Some(&listen), None).unwrap();
    let info = rec.finish().unwrap();
    assert_eq!(info.duration_ms, 60);
    assert_eq!(info.size_bytes, 44 + 3 * 960 * 4);

    let h = header(&path);
    assert_eq!((h.channels, h.block_align, h.byte_rate), (2, 4, 192_000));
    assert_eq!(h.data_size, 3 * 960 * 4);

    let (spec, s) = samples(&path);
    assert_eq!(spec.channels, 2);
    let left: Vec<i16> = s.iter().step_by(2).copied().collect();
    let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(&left[..960], &listen[..]);
    assert_eq!(&right[..960], &speak[..]);
    assert!(left[960..1920].iter().all(|&x| x == 0));
    assert_eq!(&right[960..1920], &speak[..]);
    assert_eq!(&left[1920..], &listen[..]);
    assert!(right[1920..].iter().all(|&x| x == 0));
}

#[test]
fn stereo_with_one_direction_leaves_the_other_channel_silent() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "stereo-listen.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Stereo, Direction::Listen)).unwrap();
    let listen = frame(8000, |i| i as i16 + 1);
    let speak = frame(8000, |_| 77);
    rec.write_frame(Some(&listen), Some(&speak)).unwrap();
    rec.finish().unwrap();
    let (_, s) = samples(&path);
    let left: Vec<i16> = s.iter().step_by(2).copied().collect();
    assert_eq!(left, listen);
    assert!(s.iter().skip(1).step_by(2).all(|&x| x == 0));
}

#[test]
fn both_in_mono_mixes_with_saturation() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "mix.wav");
    let mut rec = WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Both)).unwrap();
    let listen = frame(8000, |i| match i % 4 {
        0 => 30_000,
        1 => -30_000,
        2 => 100,
        _ => i16::MIN,
    });
    let speak = frame(8000, |i| match i % 4 {
        0 => 10_000,
        1 => -10_000,
        2 => -50,
        _ => -1,
    });
    rec.write_frame(Some(&listen), Some(&speak)).unwrap();
    rec.write_frame(Some(&listen), None).unwrap();
    rec.write_frame(None, Some(&speak)).unwrap();
    rec.finish().unwrap();
    let (_, s) = samples(&path);
    for (i, &got) in s.iter().enumerate().take(160) {
        let want = match i % 4 {
            0 => i16::MAX,
            1 => i16::MIN,
            2 => 50,
            _ => i16::MIN,
        };
        assert_eq!(got, want, "mixed sample {i}");
    }
    assert_eq!(&s[160..320], &listen[..]);
    assert_eq!(&s[320..], &speak[..]);
}

#[test]
fn pause_skip_drops_the_paused_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "skip.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Listen)).unwrap();
    let a = frame(8000, |_| 1);
    let b = frame(8000, |_| 2);
    let c = frame(8000, |_| 3);
    for _ in 0..50 {
        rec.write_frame(Some(&a), None).unwrap();
    }
    rec.pause(PauseBehavior::Skip);
    assert_eq!(rec.paused(), Some(PauseBehavior::Skip));
    for _ in 0..25 {
        rec.write_frame(Some(&b), None).unwrap();
    }
    assert_eq!(rec.duration_ms(), 1000);
    rec.resume();
    assert_eq!(rec.paused(), None);
    for _ in 0..25 {
        rec.write_frame(Some(&c), None).unwrap();
    }
    let info = rec.finish().unwrap();
    assert_eq!(info.duration_ms, 1500);
    assert_eq!(header(&path).data_size, 75 * 320);
    let (_, s) = samples(&path);
    assert_eq!(s.len(), 75 * 160);
    assert!(s[..8000].iter().all(|&x| x == 1));
    assert!(s[8000..].iter().all(|&x| x == 3));
}

#[test]
fn pause_silence_keeps_the_timing_with_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "silence.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Stereo, Direction::Both)).unwrap();
    let a = frame(8000, |_| 5);
    for _ in 0..25 {
        rec.write_frame(Some(&a), Some(&a)).unwrap();
    }
    rec.pause(PauseBehavior::Silence);
    for _ in 0..25 {
        rec.write_frame(Some(&a), Some(&a)).unwrap();
    }
    assert_eq!(rec.duration_ms(), 1000);
    rec.resume();
    for _ in 0..25 {
        rec.write_frame(Some(&a), Some(&a)).unwrap();
    }
    let info = rec.finish().unwrap();
    assert_eq!(info.duration_ms, 1500);
    let (_, s) = samples(&path);
    assert_eq!(s.len(), 75 * 160 * 2);
    let (first, rest) = s.split_at(25 * 320);
    let (middle, last) = rest.split_at(25 * 320);
    assert!(first.iter().all(|&x| x == 5));
    assert!(middle.iter().all(|&x| x == 0));
    assert!(last.iter().all(|&x| x == 5));
}

#[test]
fn pausing_again_changes_the_behavior() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "repause.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Listen)).unwrap();
    let a = frame(8000, |_| 5);
    rec.pause(PauseBehavior::Silence);
    rec.write_frame(Some(&a), None).unwrap();
    rec.pause(PauseBehavior::Skip);
    rec.write_frame(Some(&a), None).unwrap();
    rec.resume();
    rec.resume();
    rec.write_frame(Some(&a), None).unwrap();
    assert_eq!(rec.finish().unwrap().duration_ms, 40);
}

#[test]
fn header_is_rewritten_once_per_second_of_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "checkpoint.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Listen)).unwrap();
    let a = frame(8000, |_| 7);
    assert_eq!(header(&path).data_size, 0);
    for _ in 0..49 {
        rec.write_frame(Some(&a), None).unwrap();
    }
    assert_eq!(header(&path).data_size, 0, "no checkpoint before a second");
    rec.write_frame(Some(&a), None).unwrap();
    let h = header(&path);
    assert_eq!((h.data_size, h.riff_size), (16_000, 16_036));
    assert_eq!(fs::metadata(&path).unwrap().len(), 16_044, "audio flushed");
    for _ in 0..49 {
        rec.write_frame(Some(&a), None).unwrap();
    }
    assert_eq!(header(&path).data_size, 16_000);
    // Skipped frames are not audio written: no checkpoint while paused with skip.
    rec.pause(PauseBehavior::Skip);
    for _ in 0..100 {
        rec.write_frame(Some(&a), None).unwrap();
    }
    assert_eq!(header(&path).data_size, 16_000);
    rec.resume();
    rec.write_frame(Some(&a), None).unwrap();
    assert_eq!(header(&path).data_size, 32_000);
}

#[test]
fn crash_leaves_a_playable_file_and_repair_makes_it_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "crash.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Listen)).unwrap();
    let mut expected = Vec::new();
    for n in 0..125 {
        let f = frame(8000, |i| ((n * 160 + i) % 30_000) as i16);
        expected.extend_from_slice(&f);
        rec.write_frame(Some(&f), None).unwrap();
    }
    assert_eq!(rec.duration_ms(), 2500);
    drop(rec); // no finish: as a crash leaves it

    let h = header(&path);
    assert!(
        h.data_size >= 2 * 16_000,
        "header covers {} bytes",
        h.data_size
    );
    assert_eq!(h.riff_size, h.data_size + 36);
    // Already playable up to the checkpoint.
    let (_, s) = samples(&path);
    assert_eq!(&s[..], &expected[..h.data_size as usize / 2]);

    let info = repair(&path).unwrap();
    assert_eq!(info.duration_ms, 2500);
    assert_eq!(info.size_bytes, 44 + 40_000);
    assert_eq!(info.path, path);
    let h = header(&path);
    assert_eq!((h.data_size, h.riff_size), (40_000, 40_036));
    let (_, s) = samples(&path);
    assert_eq!(s, expected);

    // Repairing a sound file changes nothing.
    assert_eq!(repair(&path).unwrap(), info);
    assert_eq!(fs::metadata(&path).unwrap().len(), 40_044);
}

#[test]
fn crash_losing_the_unflushed_buffer_still_plays_to_the_last_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "hard-crash.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Stereo, Direction::Both)).unwrap();
    let f = frame(8000, |i| i as i16);
    for _ in 0..125 {
        rec.write_frame(Some(&f), Some(&f)).unwrap();
    }
    // A real crash runs no destructor: whatever was only buffered is lost.
    std::mem::forget(rec);
    let h = header(&path);
    assert_eq!(h.data_size, 2 * 32_000);
    let (_, s) = samples(&path);
    assert_eq!(s.len(), 2 * 16_000);
    assert_eq!(repair(&path).unwrap().duration_ms, 2000);
}

#[test]
fn repair_cuts_a_partial_sample_frame_and_fixes_an_empty_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "partial.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Stereo, Direction::Both)).unwrap();
    let f = frame(8000, |_| 9);
    for _ in 0..10 {
        rec.write_frame(Some(&f), Some(&f)).unwrap();
    }
    drop(rec);
    assert_eq!(
        header(&path).data_size,
        0,
        "crash before the first checkpoint"
    );
    // A torn write: three bytes of a four-byte sample frame.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    fs::write(&path, &bytes).unwrap();

    let info = repair(&path).unwrap();
    assert_eq!(info.duration_ms, 200);
    assert_eq!(info.size_bytes, 44 + 10 * 640);
    assert_eq!(fs::metadata(&path).unwrap().len(), info.size_bytes);
    let (_, s) = samples(&path);
    assert_eq!(s.len(), 10 * 320);
    assert!(s.iter().all(|&x| x == 9));
}

#[test]
fn repair_rejects_what_is_not_a_wav_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "junk.wav");
    fs::write(&path, b"not a wav file at all, just text").unwrap();
    assert!(matches!(repair(&path), Err(RecordError::NotWav { .. })));
    fs::write(&path, b"RIFF").unwrap();
    assert!(matches!(repair(&path), Err(RecordError::NotWav { .. })));
    fs::write(&path, b"RIFF\0\0\0\0WAVE").unwrap();
    assert!(matches!(repair(&path), Err(RecordError::NotWav { .. })));
    assert!(matches!(
        repair(&dir.path().join("missing.wav")),
        Err(RecordError::Io { .. })
    ));
}

#[test]
fn finish_after_the_directory_is_removed_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("recordings");
    fs::create_dir(&sub).unwrap();
    let path = sub.join("gone.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Listen)).unwrap();
    let f = frame(8000, |_| 1);
    for _ in 0..10 {
        rec.write_frame(Some(&f), None).unwrap();
    }
    fs::remove_dir_all(&sub).unwrap();
    let err = rec.finish().unwrap_err();
    assert!(matches!(err, RecordError::Io { .. }), "{err}");
}

#[test]
fn finish_after_the_file_is_removed_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "deleted.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Listen)).unwrap();
    rec.write_frame(None, None).unwrap();
    fs::remove_file(&path).unwrap();
    assert!(matches!(rec.finish(), Err(RecordError::Io { .. })));
}

#[test]
fn create_in_a_missing_directory_or_over_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(8000, Channels::Mono, Direction::Listen);
    let missing = dir.path().join("no-such-dir").join("x.wav");
    assert!(matches!(
        WavRecorder::create(&missing, o),
        Err(RecordError::Io { .. })
    ));
    let existing = file_in(&dir, "exists.wav");
    fs::write(&existing, b"keep me").unwrap();
    assert!(matches!(
        WavRecorder::create(&existing, o),
        Err(RecordError::Io { .. })
    ));
    assert_eq!(fs::read(&existing).unwrap(), b"keep me");
}

#[test]
fn unsupported_sample_rates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [0, 4000, 8001, 11_025, 384_000] {
        let path = file_in(&dir, &format!("{rate}.wav"));
        let err = WavRecorder::create(&path, opts(rate, Channels::Mono, Direction::Both));
        assert!(
            matches!(err, Err(RecordError::SampleRate(r)) if r == rate),
            "{rate}"
        );
        assert!(!path.exists(), "no file for a refused rate");
    }
}

#[test]
fn frames_of_the_wrong_length_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "len.wav");
    let mut rec =
        WavRecorder::create(&path, opts(8000, Channels::Mono, Direction::Listen)).unwrap();
    let good = frame(8000, |_| 4);
    let short = vec![0i16; 159];
    let long = vec![0i16; 320];
    match rec.write_frame(Some(&short), None) {
        Err(RecordError::FrameLength {
            direction,
            got,
            expected,
        }) => assert_eq!((direction, got, expected), ("listen", 159, 160)),
        other => panic!("{other:?}"),
    }
    // Checked even for the direction not recorded, and while paused.
    assert!(matches!(
        rec.write_frame(Some(&good), Some(&long)),
        Err(RecordError::FrameLength {
            direction: "speak",
            ..
        })
    ));
    rec.pause(PauseBehavior::Skip);
    assert!(matches!(
        rec.write_frame(Some(&[]), None),
        Err(RecordError::FrameLength { got: 0, .. })
    ));
    rec.resume();
    assert_eq!(rec.duration_ms(), 0, "nothing written by bad frames");
    // The recorder goes on after a bad frame.
    rec.write_frame(Some(&good), None).unwrap();
    let info = rec.finish().unwrap();
    assert_eq!(info.duration_ms, 20);
    let (_, s) = samples(&path);
    assert_eq!(s, good);
}

#[test]
fn an_empty_recording_finishes_as_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir, "empty.wav");
    let rec = WavRecorder::create(&path, opts(16_000, Channels::Stereo, Direction::Both)).unwrap();
    let info = rec.finish().unwrap();
    assert_eq!((info.duration_ms, info.size_bytes), (0, 44));
    let (spec, s) = samples(&path);
    assert_eq!((spec.channels, spec.sample_rate), (2, 16_000));
    assert!(s.is_empty());
}
