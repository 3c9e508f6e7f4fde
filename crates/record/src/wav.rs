//! The canonical 44-byte header of a 16-bit PCM WAV file.

/// Bytes before the audio.
pub(crate) const HEADER_LEN: u64 = 44;
/// Offset of the RIFF chunk size.
pub(crate) const RIFF_SIZE_AT: u64 = 4;
/// Offset of the data chunk size.
pub(crate) const DATA_SIZE_AT: u64 = 40;
/// Largest data chunk whose RIFF size (data + 36) still fits in 32 bits.
pub(crate) const MAX_DATA: u64 = u32::MAX as u64 - (HEADER_LEN - 8);

const WAVE_FORMAT_PCM: u16 = 1;
pub(crate) const BITS: u16 = 16;

/// The header for `data_len` bytes of audio.
pub(crate) fn header(sample_rate: u32, channels: u16, data_len: u32) -> [u8; HEADER_LEN as usize] {
    let block_align = channels * (BITS / 8);
    let byte_rate = sample_rate * u32::from(block_align);
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_size(data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&WAVE_FORMAT_PCM.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&BITS.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// RIFF chunk size for a canonical file with `data_len` bytes of audio.
pub(crate) fn riff_size(data_len: u32) -> u32 {
    data_len.saturating_add((HEADER_LEN - 8) as u32)
}

/// Milliseconds of `frames` sample frames (one sample per channel) at `sample_rate`.
pub(crate) fn duration_ms(frames: u64, sample_rate: u32) -> u64 {
    if sample_rate == 0 {
        return 0;
    }
    frames.saturating_mul(1000) / u64::from(sample_rate)
}

/// The WAV sink: a canonical header whose sizes are patched at each checkpoint.
#[derive(Debug)]
pub(crate) struct WavSink {
    out: std::io::BufWriter<std::fs::File>,
    path: std::path::PathBuf,
    /// Bytes of audio written.
    pub(crate) data_len: u64,
    /// The little-endian bytes of the frame being written, reused frame after frame (only
    /// where the machine's own order differs).
    #[cfg_attr(target_endian = "little", allow(dead_code))]
    raw: Vec<u8>,
}

impl WavSink {
    pub(crate) fn create(
        path: &std::path::Path,
        rate: u32,
        channels: u16,
    ) -> Result<Self, crate::RecordError> {
        use std::io::Write;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| crate::RecordError::io("create", path, e))?;
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
        out.write_all(&header(rate, channels, 0))
            .and_then(|()| out.flush())
            .map_err(|e| crate::RecordError::io("write header of", path, e))?;
        Ok(WavSink {
            out,
            path: path.to_path_buf(),
            data_len: 0,
            raw: Vec::new(),
        })
    }

    /// Flushes the audio, rewrites the header's sizes and, unless `sync` is None, syncs the
    /// file (`Some(true)`: metadata too).
    fn write_sizes(&mut self, sync: Option<bool>) -> Result<(), crate::RecordError> {
        use std::io::{Seek, SeekFrom, Write};
        let path = &self.path;
        let io = |e| crate::RecordError::io("update header of", path, e);
        // `write` keeps the data under MAX_DATA, which fits in a u32.
        let data = u32::try_from(self.data_len).map_err(|_| crate::RecordError::TooLarge)?;
        self.out.flush().map_err(io)?;
        let file = self.out.get_mut();
        file.seek(SeekFrom::Start(RIFF_SIZE_AT)).map_err(io)?;
        file.write_all(&riff_size(data).to_le_bytes()).map_err(io)?;
        file.seek(SeekFrom::Start(DATA_SIZE_AT)).map_err(io)?;
        file.write_all(&data.to_le_bytes()).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let synced = match sync {
            None => Ok(()),
            Some(true) => file.sync_all(),
            Some(false) => file.sync_data(),
        };
        synced.map_err(|e| crate::RecordError::io("sync", path, e))
    }
}

impl crate::sink::Sink for WavSink {
    fn write(&mut self, samples: &[i16]) -> Result<(), crate::RecordError> {
        use std::io::Write;
        let bytes = samples.len() as u64 * 2;
        if self.data_len + bytes > MAX_DATA {
            return Err(crate::RecordError::TooLarge);
        }
        // WAV data is little-endian: on such a machine the samples are written as they lie in
        // memory, without a pass through a byte buffer.
        #[cfg(target_endian = "little")]
        let raw: &[u8] = bytemuck::cast_slice(samples);
        #[cfg(not(target_endian = "little"))]
        let raw: &[u8] = {
            self.raw.clear();
            self.raw
                .extend(samples.iter().flat_map(|s| s.to_le_bytes()));
            &self.raw
        };
        self.out
            .write_all(raw)
            .map_err(|e| crate::RecordError::io("write", &self.path, e))?;
        self.data_len += bytes;
        Ok(())
    }

    fn checkpoint(&mut self, durable: bool) -> Result<(), crate::RecordError> {
        self.write_sizes(durable.then_some(false))
    }

    fn finish(&mut self) -> Result<(), crate::RecordError> {
        self.write_sizes(Some(true))
    }

    fn size_bytes(&self) -> u64 {
        HEADER_LEN + self.data_len
    }
}
