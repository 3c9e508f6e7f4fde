//! The MP3 sink (libmp3lame, CBR) and a frame scanner for checking and repairing MP3 files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::lame::Encoder;
use crate::sink::Sink;
use crate::{RecordError, RecordingInfo};

/// Constant bitrate per channel, kbit/s: plenty for 8/16 kHz telephone audio.
fn kbps(rate: u32, channels: u16) -> u32 {
    let per_channel = if rate <= 8_000 { 24 } else { 32 };
    per_channel * u32::from(channels)
}

/// Writes MP3 frames to the file as lame produces them.
#[derive(Debug)]
pub(crate) struct Mp3Sink {
    file: File,
    path: PathBuf,
    enc: Encoder,
    size: u64,
}

impl Mp3Sink {
    pub(crate) fn create(path: &Path, rate: u32, channels: u16) -> Result<Self, RecordError> {
        let enc = Encoder::new(rate, channels, kbps(rate, channels)).map_err(RecordError::Mp3)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| RecordError::io("create", path, e))?;
        Ok(Mp3Sink {
            file,
            path: path.to_path_buf(),
            enc,
            size: 0,
        })
    }

    fn append(
        file: &mut File,
        path: &Path,
        size: &mut u64,
        bytes: &[u8],
    ) -> Result<(), RecordError> {
        // Unbuffered, so a crash loses nothing lame handed out; the file may still end inside
        // a frame (lame emits bytes as its bit reservoir allows): repair_mp3 trims that.
        file.write_all(bytes)
            .map_err(|e| RecordError::io("write", path, e))?;
        *size += bytes.len() as u64;
        Ok(())
    }
}

impl Sink for Mp3Sink {
    fn write(&mut self, samples: &[i16]) -> Result<(), RecordError> {
        let out = self.enc.encode(samples).map_err(RecordError::Mp3)?;
        Self::append(&mut self.file, &self.path, &mut self.size, out)
    }

    fn checkpoint(&mut self, durable: bool) -> Result<(), RecordError> {
        // Frames are appended unbuffered: they are with the OS already.
        if !durable {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| RecordError::io("sync", &self.path, e))
    }

    fn finish(&mut self) -> Result<(), RecordError> {
        let out = self.enc.flush().map_err(RecordError::Mp3)?;
        Self::append(&mut self.file, &self.path, &mut self.size, out)?;
        self.file
            .sync_all()
            .map_err(|e| RecordError::io("sync", &self.path, e))
    }

    fn size_bytes(&self) -> u64 {
        self.size
    }
}

/// What [`scan`] found in an MP3 byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp3Scan {
    /// Whole MPEG audio frames from the start, back to back.
    pub frames: u64,
    /// Bytes those frames take (anything after is not a whole frame).
    pub valid_len: u64,
    /// Sample rate of the first frame (0 without frames).
    pub sample_rate: u32,
    /// Channels of the first frame (0 without frames).
    pub channels: u16,
    /// Samples per channel in those frames.
    pub samples: u64,
}

impl Mp3Scan {
    /// Length of the audio in the frames, milliseconds (encoder padding included).
    pub fn duration_ms(&self) -> u64 {
        crate::wav::duration_ms(self.samples, self.sample_rate)
    }
}

struct FrameHeader {
    len: usize,
    sample_rate: u32,
    channels: u16,
    samples: u32,
}

fn parse_header(h: &[u8]) -> Option<FrameHeader> {
    const BR_V1: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const BR_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    if h.len() < 4 || h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 3; // 0 = 2.5, 2 = 2, 3 = 1
    let layer = (h[1] >> 1) & 3; // 1 = Layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let br_idx = usize::from(h[2] >> 4);
    let sr_idx = usize::from((h[2] >> 2) & 3);
    if br_idx == 0 || br_idx == 15 || sr_idx == 3 {
        return None;
    }
    let (kbps, base, samples) = match version {
        3 => (BR_V1[br_idx], [44_100, 48_000, 32_000], 1152),
        2 => (BR_V2[br_idx], [22_050, 24_000, 16_000], 576),
        _ => (BR_V2[br_idx], [11_025, 12_000, 8_000], 576),
    };
    let sample_rate = base[sr_idx];
    let padding = u32::from((h[2] >> 1) & 1);
    let len = samples / 8 * kbps * 1000 / sample_rate + padding;
    Some(FrameHeader {
        len: len as usize,
        sample_rate,
        channels: if h[3] >> 6 == 3 { 1 } else { 2 },
        samples,
    })
}

/// Walks the Layer III frames at the start of `bytes` (as this crate writes them: no ID3
/// tag, frames back to back) up to the first one that is missing or cut short.
pub fn scan(bytes: &[u8]) -> Mp3Scan {
    let mut s = Mp3Scan {
        frames: 0,
        valid_len: 0,
        sample_rate: 0,
        channels: 0,
        samples: 0,
    };
    let mut pos = 0usize;
    while let Some(h) = bytes.get(pos..).and_then(parse_header) {
        if h.len < 4 || pos + h.len > bytes.len() {
            break;
        }
        if s.frames == 0 {
            s.sample_rate = h.sample_rate;
            s.channels = h.channels;
        }
        s.frames += 1;
        s.samples += u64::from(h.samples);
        pos += h.len;
    }
    s.valid_len = pos as u64;
    s
}

/// Makes an MP3 file a crash left behind end on a whole frame: a partial last frame (a
/// write cut short) is cut off; the file is synced.
pub fn repair_mp3(path: &Path) -> Result<RecordingInfo, RecordError> {
    let io = |e| RecordError::io("repair", path, e);
    let bytes = std::fs::read(path).map_err(io)?;
    let s = scan(&bytes);
    if s.frames == 0 && !bytes.is_empty() {
        return Err(RecordError::NotMp3 {
            path: path.to_path_buf(),
        });
    }
    let file = OpenOptions::new().write(true).open(path).map_err(io)?;
    if s.valid_len < bytes.len() as u64 {
        file.set_len(s.valid_len).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    Ok(RecordingInfo {
        duration_ms: s.duration_ms(),
        size_bytes: s.valid_len,
        path: path.to_path_buf(),
    })
}
