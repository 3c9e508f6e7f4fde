use std::fs::File;
use std::path::{Path, PathBuf};

use crate::mp3::Mp3Sink;
use crate::sink::Sink;
use crate::wav::{self, WavSink};
use crate::{Channels, Format, PauseBehavior, RecordError, RecordingInfo, RecordingOptions};

/// Lowest and highest sample rates accepted.
const MIN_RATE: u32 = 8_000;
const MAX_RATE: u32 = 192_000;

/// Writes one recording (WAV or MP3), frame by frame.
///
/// Not a finished file until [`Recorder::finish`]; dropped without it, the file is left as
/// a crash would leave it (up to the last once-a-second checkpoint) and [`crate::repair`] /
/// [`crate::repair_mp3`] make it whole.
/// Every this many once-a-second checkpoints, the file is also synced to disk.
const DURABLE_EVERY: u64 = 10;

#[derive(Debug)]
pub struct Recorder {
    sink: Box<dyn Sink>,
    path: PathBuf,
    opts: RecordingOptions,
    format: Format,
    /// Sample frames (one sample per channel) in the file.
    frames: u64,
    /// `frames` at the last checkpoint.
    frames_at_checkpoint: u64,
    /// Checkpoints so far.
    checkpoints: u64,
    paused: Option<PauseBehavior>,
    /// A write failed: the file's state is unknown, nothing more is written.
    failed: bool,
    scratch: Vec<i16>,
}

/// The WAV recorder of earlier versions: a [`Recorder`] made with [`Recorder::create`].
pub type WavRecorder = Recorder;

impl Recorder {
    /// Creates a WAV file (which must not exist yet); see [`Recorder::create_as`].
    pub fn create(path: &Path, opts: RecordingOptions) -> Result<Self, RecordError> {
        Recorder::create_as(path, opts, Format::Wav)
    }

    /// Creates the file (which must not exist yet) in `format`. MP3 takes 8 000–48 000 Hz
    /// rates lame can encode without resampling (8, 11.025, 12, 16, 22.05, 24, 32, 44.1, 48 kHz).
    pub fn create_as(
        path: &Path,
        opts: RecordingOptions,
        format: Format,
    ) -> Result<Self, RecordError> {
        if !opts.sample_rate.is_multiple_of(50)
            || !(MIN_RATE..=MAX_RATE).contains(&opts.sample_rate)
        {
            return Err(RecordError::SampleRate(opts.sample_rate));
        }
        let channels = opts.channel_count();
        let sink: Box<dyn Sink> = match format {
            Format::Wav => Box::new(WavSink::create(path, opts.sample_rate, channels)?),
            Format::Mp3 => {
                if ![8_000, 16_000, 32_000, 48_000, 12_000, 24_000].contains(&opts.sample_rate) {
                    return Err(RecordError::SampleRate(opts.sample_rate));
                }
                Box::new(Mp3Sink::create(path, opts.sample_rate, channels)?)
            }
        };
        Ok(Recorder {
            sink,
            path: path.to_path_buf(),
            opts,
            format,
            frames: 0,
            frames_at_checkpoint: 0,
            checkpoints: 0,
            paused: None,
            failed: false,
            scratch: Vec::with_capacity(opts.frame_samples() * usize::from(channels)),
        })
    }

    /// The options the recording was created with.
    pub fn options(&self) -> RecordingOptions {
        self.opts
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one 20 ms frame of each direction; a direction with nothing to say this tick
    /// is `None` (silence). A frame that is given must hold exactly 20 ms of samples, even
    /// when its direction is not recorded. While paused with [`PauseBehavior::Skip`] nothing
    /// is written; with [`PauseBehavior::Silence`] 20 ms of zeros are.
    pub fn write_frame(
        &mut self,
        listen: Option<&[i16]>,
        speak: Option<&[i16]>,
    ) -> Result<(), RecordError> {
        if self.failed {
            return Err(RecordError::Failed);
        }
        let n = self.opts.frame_samples();
        check_len("listen", listen, n)?;
        check_len("speak", speak, n)?;
        let (listen, speak) = match self.paused {
            Some(PauseBehavior::Skip) => return Ok(()),
            Some(PauseBehavior::Silence) => (None, None),
            None => (
                listen.filter(|_| self.opts.direction.includes_listen()),
                speak.filter(|_| self.opts.direction.includes_speak()),
            ),
        };

        self.scratch.clear();
        match self.opts.channels {
            // Each direction left out is None here (see above), so the pair says what to mix.
            Channels::Mono => match (listen, speak) {
                (Some(l), Some(s)) => self
                    .scratch
                    .extend(l.iter().zip(s).map(|(a, b)| a.saturating_add(*b))),
                (Some(one), None) | (None, Some(one)) => self.scratch.extend_from_slice(one),
                (None, None) => self.scratch.resize(n, 0),
            },
            Channels::Stereo => {
                self.scratch.resize(2 * n, 0);
                if let Some(l) = listen {
                    for (pair, &v) in self.scratch.chunks_exact_mut(2).zip(l) {
                        pair[0] = v;
                    }
                }
                if let Some(s) = speak {
                    for (pair, &v) in self.scratch.chunks_exact_mut(2).zip(s) {
                        pair[1] = v;
                    }
                }
            }
        }
        match self.sink.write(&self.scratch) {
            Ok(()) => {}
            // Nothing was written: the file is still whole, later frames are refused too.
            Err(RecordError::TooLarge) => return Err(RecordError::TooLarge),
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        }
        self.frames += n as u64;

        if self.frames - self.frames_at_checkpoint >= u64::from(self.opts.sample_rate) {
            // Every second the file is whole for a process crash; every DURABLE_EVERY seconds
            // it is synced to disk too (a sync per file per second is what a thousand
            // recordings cannot afford).
            self.checkpoints += 1;
            let durable = self.checkpoints.is_multiple_of(DURABLE_EVERY);
            if let Err(e) = self.sink.checkpoint(durable) {
                self.failed = true;
                return Err(e);
            }
            self.frames_at_checkpoint = self.frames;
        }
        Ok(())
    }

    /// Pauses the recording; while paused, frames are dropped ([`PauseBehavior::Skip`]) or
    /// recorded as silence ([`PauseBehavior::Silence`]). Pausing again changes the behavior.
    pub fn pause(&mut self, behavior: PauseBehavior) {
        self.paused = Some(behavior);
    }

    /// Resumes recording the call's audio. No effect when not paused.
    pub fn resume(&mut self) {
        self.paused = None;
    }

    /// How the recording is paused, if it is.
    pub fn paused(&self) -> Option<PauseBehavior> {
        self.paused
    }

    /// Milliseconds of audio given to the file so far (rounded down).
    pub fn duration_ms(&self) -> u64 {
        wav::duration_ms(self.frames, self.opts.sample_rate)
    }

    /// Bytes of the file so far, header included.
    pub fn size_bytes(&self) -> u64 {
        self.sink.size_bytes()
    }

    /// Finishes the file: last data written, file and directory synced. On error the file is
    /// left as a crash would leave it ([`crate::repair`] / [`crate::repair_mp3`] may save it).
    pub fn finish(mut self) -> Result<RecordingInfo, RecordError> {
        if self.failed {
            return Err(RecordError::Failed);
        }
        self.sink.finish()?;
        sync_dir(&self.path)?;
        // The file we wrote must still be where the caller will look for it.
        let on_disk = std::fs::metadata(&self.path)
            .map_err(|e| RecordError::io("check", &self.path, e))?
            .len();
        if on_disk != self.size_bytes() {
            return Err(RecordError::io(
                "check",
                &self.path,
                std::io::Error::other(format!(
                    "file is {on_disk} bytes, wrote {}",
                    self.size_bytes()
                )),
            ));
        }
        Ok(RecordingInfo {
            duration_ms: self.duration_ms(),
            size_bytes: self.size_bytes(),
            path: self.path,
        })
    }
}

fn check_len(
    direction: &'static str,
    frame: Option<&[i16]>,
    expected: usize,
) -> Result<(), RecordError> {
    match frame {
        Some(f) if f.len() != expected => Err(RecordError::FrameLength {
            direction,
            got: f.len(),
            expected,
        }),
        _ => Ok(()),
    }
}

/// Makes the file's directory entry durable; fails if the directory is gone.
#[cfg(unix)]
fn sync_dir(path: &Path) -> Result<(), RecordError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RecordError::io("sync directory of", path, e))
}

/// Directories cannot be opened and synced here.
#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> Result<(), RecordError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction;

    #[test]
    fn refuses_audio_past_the_wav_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.wav");
        let mut sink = WavSink::create(&path, 8000, 2).unwrap();
        let frame = vec![1i16; 320];
        // Pretend the file already holds all but one frame's room (without writing 4 GiB).
        sink.data_len = crate::wav::MAX_DATA - 640;
        sink.write(&frame).unwrap();
        assert!(matches!(sink.write(&frame), Err(RecordError::TooLarge)));
    }

    #[test]
    fn a_failed_recorder_writes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failed.wav");
        let opts = RecordingOptions {
            sample_rate: 8000,
            channels: Channels::Mono,
            direction: Direction::Listen,
        };
        let mut rec = WavRecorder::create(&path, opts).unwrap();
        rec.failed = true;
        assert!(matches!(
            rec.write_frame(None, None),
            Err(RecordError::Failed)
        ));
        assert!(matches!(rec.finish(), Err(RecordError::Failed)));
    }
}
