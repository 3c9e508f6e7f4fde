//! ITU-T G.711 µ-law and A-law, computed without tables.
//!
//! Both laws take and give 16-bit linear PCM: µ-law codes the 14-bit magnitude range
//! (inputs beyond ±32635 clip), A-law the 13-bit range.

use crate::plc::RepeatFade;
use crate::{check_frame, AudioDecoder, AudioEncoder, CodecKind, MediaError};

/// µ-law bias added to the magnitude before finding the segment.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law codes before clipping.
const ULAW_CLIP: i32 = 32635;

/// Encodes one linear sample as µ-law (silence, 0, gives 0xFF).
pub fn ulaw_encode(s: i16) -> u8 {
    let s = i32::from(s);
    let (sign, mag) = if s < 0 { (0x80, -s) } else { (0x00, s) };
    let mag = mag.min(ULAW_CLIP) + ULAW_BIAS;
    // `mag` is in 0x84..=0x7FFF: its highest set bit is bit 7 + segment.
    let segment = (31 - mag.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (mag >> (segment + 3)) & 0x0F;
    !((sign | (segment << 4) | mantissa) as u8)
}

/// Decodes one µ-law byte (0x00 → -32124, 0x80 → 32124, 0xFF → 0): a lookup in a table
/// made at compile time by [`ulaw_formula`].
pub fn ulaw_decode(b: u8) -> i16 {
    ULAW_DECODE[usize::from(b)]
}

const fn ulaw_formula(b: u8) -> i16 {
    let u = !b;
    let segment = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let mag = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    (if u & 0x80 != 0 { -mag } else { mag }) as i16
}

static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_formula(i as u8);
        i += 1;
    }
    t
};

static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_formula(i as u8);
        i += 1;
    }
    t
};

/// Encodes one linear sample as A-law (silence, 0, gives 0xD5).
pub fn alaw_encode(s: i16) -> u8 {
    // A-law works on 13 bits.
    let v = i32::from(s) >> 3;
    let (mask, mag) = if v >= 0 {
        (0xD5u8, v)
    } else {
        (0x55u8, -v - 1)
    };
    // Segment 0 covers 0..32 (step 2); segment n ≥ 1 covers 2^(n+4)..2^(n+5) (step 2^n).
    let code = if mag >= 0x1000 {
        0x7F
    } else {
        let top = 31 - (mag | 1).leading_zeros() as i32; // index of highest set bit
        let segment = (top - 4).max(0);
        let mantissa = if segment == 0 {
            (mag >> 1) & 0x0F
        } else {
            (mag >> segment) & 0x0F
        };
        ((segment << 4) | mantissa) as u8
    };
    code ^ mask
}

/// Decodes one A-law byte (0xD5 → 8, 0x55 → -8): a lookup in a table made at compile time
/// by [`alaw_formula`].
pub fn alaw_decode(b: u8) -> i16 {
    ALAW_DECODE[usize::from(b)]
}

const fn alaw_formula(b: u8) -> i16 {
    let a = b ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let mag = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    (if a & 0x80 != 0 { mag } else { -mag }) as i16
}

/// G.711 encoder for [`CodecKind::Pcmu`] or [`CodecKind::Pcma`].
pub(crate) struct G711Encoder {
    kind: CodecKind,
}

impl G711Encoder {
    pub(crate) fn new(kind: CodecKind) -> Self {
        debug_assert!(matches!(kind, CodecKind::Pcmu | CodecKind::Pcma));
        G711Encoder { kind }
    }
}

impl AudioEncoder for G711Encoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError> {
        check_frame(self.kind, pcm)?;
        // One loop per law (not a function pointer per sample), so each inlines.
        if self.kind == CodecKind::Pcmu {
            out.extend(pcm.iter().map(|&s| ulaw_encode(s)));
        } else {
            out.extend(pcm.iter().map(|&s| alaw_encode(s)));
        }
        Ok(())
    }
}

/// G.711 decoder for [`CodecKind::Pcmu`] or [`CodecKind::Pcma`].
pub(crate) struct G711Decoder {
    kind: CodecKind,
    plc: RepeatFade,
}

impl G711Decoder {
    pub(crate) fn new(kind: CodecKind) -> Self {
        debug_assert!(matches!(kind, CodecKind::Pcmu | CodecKind::Pcma));
        G711Decoder {
            kind,
            plc: RepeatFade::new(kind.frame_samples()),
        }
    }
}

impl AudioDecoder for G711Decoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), MediaError> {
        if payload.is_empty() {
            return Err(MediaError::EmptyPayload(self.kind));
        }
        let start = out.len();
        let table = if self.kind == CodecKind::Pcmu {
            &ULAW_DECODE
        } else {
            &ALAW_DECODE
        };
        out.extend(payload.iter().map(|&b| table[usize::from(b)]));
        self.plc.decoded(&out[start..]);
        Ok(())
    }

    fn conceal(&mut self, out: &mut Vec<i16>) {
        self.plc.conceal(out);
    }
}
