//! A small safe wrapper over the parts of libmp3lame the MP3 writer needs (CBR, no VBR tag).

use std::os::raw::{c_int, c_uchar, c_void};
use std::ptr::NonNull;

/// Why the encoder failed.
#[derive(Debug, thiserror::Error)]
pub enum LameError {
    /// `lame_init` returned no encoder (out of memory).
    #[error("lame_init failed")]
    Init,
    /// An encoder parameter was refused.
    #[error("lame refused {0}")]
    Param(&'static str),
    /// `lame_encode_*` returned a negative code.
    #[error("lame encoding failed (code {0})")]
    Encode(i32),
}

#[allow(non_camel_case_types)]
type lame_t = *mut c_void;

// MPEG_mode values from lame.h.
const STEREO: c_int = 0;
const MONO: c_int = 3;

#[link(name = "mp3lame")]
extern "C" {
    fn lame_init() -> lame_t;
    fn lame_set_in_samplerate(gf: lame_t, rate: c_int) -> c_int;
    fn lame_set_out_samplerate(gf: lame_t, rate: c_int) -> c_int;
    fn lame_set_num_channels(gf: lame_t, n: c_int) -> c_int;
    fn lame_set_mode(gf: lame_t, mode: c_int) -> c_int;
    fn lame_set_brate(gf: lame_t, kbps: c_int) -> c_int;
    fn lame_set_bWriteVbrTag(gf: lame_t, on: c_int) -> c_int;
    fn lame_set_quality(gf: lame_t, q: c_int) -> c_int;
    fn lame_init_params(gf: lame_t) -> c_int;
    fn lame_encode_buffer(
        gf: lame_t,
        left: *const i16,
        right: *const i16,
        nsamples: c_int,
        mp3buf: *mut c_uchar,
        mp3buf_size: c_int,
    ) -> c_int;
    fn lame_encode_buffer_interleaved(
        gf: lame_t,
        pcm: *mut i16,
        nsamples: c_int,
        mp3buf: *mut c_uchar,
        mp3buf_size: c_int,
    ) -> c_int;
    fn lame_encode_flush(gf: lame_t, mp3buf: *mut c_uchar, size: c_int) -> c_int;
    fn lame_close(gf: lame_t) -> c_int;
}

/// One CBR MP3 encoder: 16-bit PCM in, MP3 frames out.
#[derive(Debug)]
pub struct Encoder {
    gf: NonNull<c_void>,
    channels: u16,
    buf: Vec<u8>,
    interleaved: Vec<i16>,
}

// The encoder state is only touched through `&mut self`.
unsafe impl Send for Encoder {}

impl Encoder {
    /// An encoder for `channels` (1 or 2) at `rate` Hz in and out, `kbps` constant bitrate.
    pub fn new(rate: u32, channels: u16, kbps: u32) -> Result<Self, LameError> {
        // SAFETY: lame_init has no preconditions; a null result is handled.
        let gf = NonNull::new(unsafe { lame_init() }).ok_or(LameError::Init)?;
        // From here `Drop` closes the encoder, whatever fails.
        let enc = Encoder {
            gf,
            channels,
            buf: Vec::new(),
            interleaved: Vec::new(),
        };
        let rate = c_int::try_from(rate).map_err(|_| LameError::Param("sample rate"))?;
        let kbps = c_int::try_from(kbps).map_err(|_| LameError::Param("bitrate"))?;
        let p = enc.gf.as_ptr();
        let ok = |r: c_int, what| {
            if r < 0 {
                Err(LameError::Param(what))
            } else {
                Ok(())
            }
        };
        // SAFETY: `p` is a live encoder from lame_init; the setters only store values.
        unsafe {
            ok(lame_set_in_samplerate(p, rate), "sample rate")?;
            ok(lame_set_out_samplerate(p, rate), "output sample rate")?;
            ok(
                lame_set_num_channels(p, c_int::from(channels)),
                "channel count",
            )?;
            ok(
                lame_set_mode(p, if channels == 1 { MONO } else { STEREO }),
                "mode",
            )?;
            ok(lame_set_brate(p, kbps), "bitrate")?;
            // No Xing/Info frame: it would need rewriting at the end, which a crash skips.
            ok(lame_set_bWriteVbrTag(p, 0), "VBR tag")?;
            ok(lame_set_quality(p, 5), "quality")?;
            ok(lame_init_params(p), "parameters")?;
        }
        Ok(enc)
    }

    /// Encodes sample frames (interleaved when stereo); returns the MP3 bytes ready so far
    /// (often none: lame buffers about one MP3 frame).
    pub fn encode(&mut self, pcm: &[i16]) -> Result<&[u8], LameError> {
        let ch = usize::from(self.channels.max(1));
        let n = pcm.len() / ch;
        // Worst case from lame.h: 1.25 * samples + 7200.
        let need = n + n / 4 + 7200;
        self.buf.resize(need, 0);
        let nsamples = c_int::try_from(n).map_err(|_| LameError::Encode(-1))?;
        let size = c_int::try_from(need).map_err(|_| LameError::Encode(-1))?;
        let p = self.gf.as_ptr();
        // SAFETY: `pcm` holds `n * ch` samples, `buf` `need` bytes; lame reads/writes within.
        let r = unsafe {
            if ch == 1 {
                lame_encode_buffer(
                    p,
                    pcm.as_ptr(),
                    pcm.as_ptr(),
                    nsamples,
                    self.buf.as_mut_ptr(),
                    size,
                )
            } else {
                // lame takes a mutable pointer though it does not write the input.
                self.interleaved.clear();
                self.interleaved.extend_from_slice(&pcm[..n * ch]);
                lame_encode_buffer_interleaved(
                    p,
                    self.interleaved.as_mut_ptr(),
                    nsamples,
                    self.buf.as_mut_ptr(),
                    size,
                )
            }
        };
        let len = usize::try_from(r).map_err(|_| LameError::Encode(r))?;
        Ok(&self.buf[..len.min(need)])
    }

    /// Encodes what lame still buffers (padded to a whole frame); returns the last bytes.
    pub fn flush(&mut self) -> Result<&[u8], LameError> {
        let need = 7200usize;
        self.buf.resize(need, 0);
        // SAFETY: `buf` holds `need` bytes.
        let r =
            unsafe { lame_encode_flush(self.gf.as_ptr(), self.buf.as_mut_ptr(), need as c_int) };
        let len = usize::try_from(r).map_err(|_| LameError::Encode(r))?;
        Ok(&self.buf[..len.min(need)])
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `gf` came from lame_init and is closed once.
        unsafe {
            lame_close(self.gf.as_ptr());
        }
    }
}
