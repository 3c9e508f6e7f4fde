use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::wav;
use crate::{RecordError, RecordingInfo};

/// Repairs the header of a WAV file left by a crash, so it plays: the data chunk (which must
/// be the file's last chunk, as in the files [`crate::WavRecorder`] writes) is taken to run
/// to the end of the file, a trailing partial sample frame is cut off, and the RIFF and data
/// sizes are rewritten; the file is synced. A file that is already right is left as it is
/// (apart from the sync).
pub fn repair(path: &Path) -> Result<RecordingInfo, RecordError> {
    let not_wav = |reason| RecordError::NotWav {
        path: path.to_path_buf(),
        reason,
    };
    let io = |e| RecordError::io("repair", path, e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();

    let mut riff = [0u8; 12];
    if len < riff.len() as u64 {
        return Err(not_wav("shorter than a RIFF header"));
    }
    read_at(&mut file, 0, &mut riff).map_err(io)?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(not_wav("no RIFF/WAVE signature"));
    }

    // Walk the chunks up to `data`, reading `fmt ` on the way.
    let mut pos = 12u64;
    let mut format: Option<(u32, u64)> = None; // (sample rate, block align)
    let data_at = loop {
        if pos + 8 > len {
            return Err(not_wav("no data chunk"));
        }
        let mut head = [0u8; 8];
        read_at(&mut file, pos, &mut head).map_err(io)?;
        let size = u64::from(le32(&head[4..8]));
        match &head[0..4] {
            b"fmt " => {
                if size < 16 || pos + 8 + 16 > len {
                    return Err(not_wav("fmt chunk too short"));
                }
                let mut fmt = [0u8; 16];
                read_at(&mut file, pos + 8, &mut fmt).map_err(io)?;
                let rate = le32(&fmt[4..8]);
                let block_align = u64::from(u16::from_le_bytes([fmt[12], fmt[13]]));
                if rate == 0 || block_align == 0 {
                    return Err(not_wav("fmt chunk has no sample rate or block size"));
                }
                format = Some((rate, block_align));
            }
            b"data" => break pos + 8,
            _ => {}
        }
        pos += 8 + size + (size & 1);
    };
    let (rate, block_align) = format.ok_or_else(|| not_wav("no fmt chunk before data"))?;

    // The data runs to the end of the file, in whole sample frames, within 32-bit sizes.
    let room = u64::from(u32::MAX).saturating_sub(data_at - 8);
    let mut data = (len - data_at).min(room);
    data -= data % block_align;
    let end = data_at + data;
    if end < len {
        file.set_len(end).map_err(io)?;
    }
    // `data <= room <= u32::MAX` and `data_at - 8 + data <= u32::MAX` by construction.
    let data32 = u32::try_from(data).map_err(|_| not_wav("data too large"))?;
    let riff32 = u32::try_from(data_at - 8 + data).map_err(|_| not_wav("file too large"))?;
    write_at(&mut file, 4, &riff32.to_le_bytes()).map_err(io)?;
    write_at(&mut file, data_at - 4, &data32.to_le_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;

    Ok(RecordingInfo {
        duration_ms: wav::duration_ms(data / block_align, rate),
        size_bytes: end,
        path: path.to_path_buf(),
    })
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn read_at(file: &mut File, pos: u64, buf: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(pos))?;
    file.read_exact(buf)
}

fn write_at(file: &mut File, pos: u64, buf: &[u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(pos))?;
    file.write_all(buf)
}
