use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::wav::{self, DATA_SIZE_AT, HEADER_LEN, MAX_DATA, RIFF_SIZE_AT};
use crate::{Channels, Direction, PauseBehavior, RecordError, RecordingInfo, RecordingOptions};

/// Lowest and highest sample rates accepted.
const MIN_RATE: u32 = 8_000;
const MAX_RATE: u32 = 192_000;

/// Writes one recording as a 16-bit PCM WAV file, frame by frame.
///
/// Not a finished file until [`WavRecorder::finish`]; dropped without it, the file is left as
/// a crash would leave it (header at the last once-a-second checkpoint) and [`crate::repair`]
/// makes it exact.
#[derive(Debug)]
pub struct WavRecorder {
    out: BufWriter<File>,
    path: PathBuf,
    opts: RecordingOptions,
    /// Bytes per sample frame (all channels).
    block_align: u64,
    /// Sample frames (one sample per channel) in the file.
    frames: u64,
    /// `frames` when the header was last rewritten.
    frames_at_checkpoint: u64,
    paused: Option<PauseBehavior>,
    /// A write failed: the file's state is unknown, nothing more is written.
    failed: bool,
    scratch: Vec<u8>,
}

impl WavRecorder {
    /// Creates the file (which must not exist yet) and writes a WAV header whose sizes are
    /// patched as audio arrives.
    pub fn create(path: &Path, opts: RecordingOptions) -> Result<Self, RecordError> {
        if !opts.sample_rate.is_multiple_of(50)
            || !(MIN_RATE..=MAX_RATE).contains(&opts.sample_rate)
        {
            return Err(RecordError::SampleRate(opts.sample_rate));
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| RecordError::io("create", path, e))?;
        let channels = opts.channel_count();
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        out.write_all(&wav::header(opts.sample_rate, channels, 0))
            .and_then(|()| out.flush())
            .map_err(|e| RecordError::io("write header of", path, e))?;
        let block_align = u64::from(channels) * u64::from(wav::BITS / 8);
        Ok(WavRecorder {
            out,
            path: path.to_path_buf(),
            opts,
            block_align,
            frames: 0,
            frames_at_checkpoint: 0,
            paused: None,
            failed: false,
            scratch: Vec::with_capacity(opts.frame_samples() * block_align as usize),
        })
    }

    /// The options the recording was created with.
    pub fn options(&self) -> RecordingOptions {
        self.opts
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
        let data_after = (self.frames + n as u64) * self.block_align;
        if data_after > MAX_DATA {
            return Err(RecordError::TooLarge);
        }

        self.scratch.clear();
        let at = |frame: Option<&[i16]>, i: usize| frame.map_or(0, |f| f[i]);
        match self.opts.channels {
            Channels::Mono => {
                for i in 0..n {
                    let s = match self.opts.direction {
                        Direction::Listen => at(listen, i),
                        Direction::Speak => at(speak, i),
                        Direction::Both => at(listen, i).saturating_add(at(speak, i)),
                    };
                    self.scratch.extend_from_slice(&s.to_le_bytes());
                }
            }
            Channels::Stereo => {
                for i in 0..n {
                    self.scratch.extend_from_slice(&at(listen, i).to_le_bytes());
                    self.scratch.extend_from_slice(&at(speak, i).to_le_bytes());
                }
            }
        }
        if let Err(e) = self.out.write_all(&self.scratch) {
            self.failed = true;
            return Err(RecordError::io("write", &self.path, e));
        }
        self.frames += n as u64;

        if self.frames - self.frames_at_checkpoint >= u64::from(self.opts.sample_rate) {
            if let Err(e) = self.write_sizes(false) {
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

    /// Milliseconds of audio in the file so far (rounded down).
    pub fn duration_ms(&self) -> u64 {
        wav::duration_ms(self.frames, self.opts.sample_rate)
    }

    /// Bytes of the file so far, header included.
    pub fn size_bytes(&self) -> u64 {
        HEADER_LEN + self.data_len()
    }

    /// Finishes the file: final header, file and directory synced. On error the file is left
    /// as a crash would leave it ([`crate::repair`] may save it).
    pub fn finish(mut self) -> Result<RecordingInfo, RecordError> {
        if self.failed {
            return Err(RecordError::Failed);
        }
        self.write_sizes(true)?;
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

    fn data_len(&self) -> u64 {
        self.frames * self.block_align
    }

    /// Flushes the audio, rewrites the header's sizes and syncs the file (`all`: metadata
    /// too).
    fn write_sizes(&mut self, all: bool) -> Result<(), RecordError> {
        let path = &self.path;
        let io = |e| RecordError::io("update header of", path, e);
        // `create` and `write_frame` keep the data under MAX_DATA, which fits in a u32.
        let data = u32::try_from(self.data_len()).map_err(|_| RecordError::TooLarge)?;
        self.out.flush().map_err(io)?;
        let file = self.out.get_mut();
        file.seek(SeekFrom::Start(RIFF_SIZE_AT)).map_err(io)?;
        file.write_all(&wav::riff_size(data).to_le_bytes())
            .map_err(io)?;
        file.seek(SeekFrom::Start(DATA_SIZE_AT)).map_err(io)?;
        file.write_all(&data.to_le_bytes()).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let synced = if all {
            file.sync_all()
        } else {
            file.sync_data()
        };
        synced.map_err(|e| RecordError::io("sync", path, e))
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

    #[test]
    fn refuses_audio_past_the_wav_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.wav");
        let opts = RecordingOptions {
            sample_rate: 8000,
            channels: Channels::Stereo,
            direction: Direction::Both,
        };
        let mut rec = WavRecorder::create(&path, opts).unwrap();
        let frame = vec![1i16; 160];
        // Pretend the file already holds all but one frame's room (without writing 4 GiB).
        rec.frames = (MAX_DATA / rec.block_align) - 160;
        rec.frames_at_checkpoint = rec.frames;
        rec.write_frame(Some(&frame), Some(&frame)).unwrap();
        assert!(matches!(
            rec.write_frame(Some(&frame), Some(&frame)),
            Err(RecordError::TooLarge)
        ));
        // Still usable while paused with skip (nothing to write).
        rec.pause(PauseBehavior::Skip);
        rec.write_frame(Some(&frame), None).unwrap();
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
