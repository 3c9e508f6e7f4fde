//! Call recordings.
//!
//! [`Recorder`] writes 16-bit PCM WAV or MP3 files (one [`Sink`] each) from the 20 ms frames of a call's two audio
//! directions (`listen`: what the far end said, `speak`: what we sent). It reads no clock:
//! time is the audio it is given, one frame = 20 ms. It does blocking file I/O, so the
//! caller runs it off the media thread.
//!
//! Crash safety: the header's RIFF and data sizes are rewritten, and the file's data synced,
//! once per second of audio written, so a file left by a crash plays up to its last whole
//! second; [`repair`] then fixes its header from the file length so all of it plays.
//! MP3 frames are appended to the file as lame produces them and the file is synced once a
//! second; a crash leaves whole frames (a partial last one is cut by [`repair_mp3`]).
//! Dropping a recorder without [`Recorder::finish`] behaves like a crash (the buffered
//! audio is flushed, the header is left at the last checkpoint).
//!
//! [`Recording`] is one `calling.record` over a recorder: the `max_length`,
//! `initial_timeout` and `end_silence_timeout` (VAD) stops, silence for dropped frames, and
//! the [`Ending`] its final event reports.

mod error;
mod lame;
mod mp3;
mod recorder;
mod recording;
mod repair;
mod sink;
mod wav;
pub mod writer;

pub use error::RecordError;
pub use lame::LameError;
pub use mp3::{repair_mp3, scan as scan_mp3, Mp3Scan};
pub use recorder::{Recorder, WavRecorder};
pub use recording::{repair_file, Ending, Limits, Outcome, Recording};
pub use repair::repair;
pub use sink::Sink;

/// The file format of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 16-bit PCM WAV.
    Wav,
    /// MPEG-1/2/2.5 Layer III, constant bitrate (libmp3lame), frames appended as encoded.
    Mp3,
}

impl Format {
    /// The file name extension (and URL suffix) of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Wav => "wav",
            Format::Mp3 => "mp3",
        }
    }

    /// The HTTP Content-Type the file is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Wav => "audio/wav",
            Format::Mp3 => "audio/mpeg",
        }
    }

    /// The format a `calling.record` `format` value or file extension names.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "wav" => Some(Format::Wav),
            "mp3" => Some(Format::Mp3),
            _ => None,
        }
    }
}

use std::path::PathBuf;

/// Channel layout of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// One channel: the selected direction, or both mixed.
    Mono,
    /// Two channels: left = what the far end said (listen), right = what we sent (speak).
    Stereo,
}

/// Which audio is recorded (`calling.record` `direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the far end said.
    Listen,
    /// What we sent.
    Speak,
    /// Both: mixed (with saturation) in mono, one per channel in stereo.
    Both,
}

impl Direction {
    fn includes_listen(self) -> bool {
        matches!(self, Direction::Listen | Direction::Both)
    }

    fn includes_speak(self) -> bool {
        matches!(self, Direction::Speak | Direction::Both)
    }
}

/// What happens to the audio while paused (`calling.record.pause` `behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseBehavior {
    /// Paused audio is dropped: the recording is shorter.
    Skip,
    /// Silence is written instead: the recording keeps the call's timing.
    Silence,
}

/// How to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingOptions {
    /// Samples per second of each frame given to [`Recorder::write_frame`] and of the file.
    /// A multiple of 50 (so a 20 ms frame is a whole number of samples), 8 000 … 192 000.
    pub sample_rate: u32,
    /// Channel layout of the file. In stereo a channel whose direction is not recorded is
    /// silent.
    pub channels: Channels,
    /// Which audio is recorded.
    pub direction: Direction,
}

impl RecordingOptions {
    /// Samples per channel in one 20 ms frame.
    pub fn frame_samples(&self) -> usize {
        (self.sample_rate / 50) as usize
    }

    fn channel_count(&self) -> u16 {
        match self.channels {
            Channels::Mono => 1,
            Channels::Stereo => 2,
        }
    }
}

/// A finished (or repaired) recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// Length of the audio in the file, milliseconds (rounded down).
    pub duration_ms: u64,
    /// Size of the whole file, header included, bytes.
    pub size_bytes: u64,
    /// Where the file is.
    pub path: PathBuf,
}
