//! ITU-T G.722 sub-band ADPCM at 64 kbit/s (mode 1), 16 kHz audio, written from the
//! recommendation's description: a 24-tap quadrature mirror filter pair splits the signal into
//! a lower band (6-bit ADPCM, 4-bit embedded core for prediction) and a higher band (2-bit
//! ADPCM), each with a 2-pole/6-zero adaptive predictor and a log-domain scale factor.
//!
//! We take and give 16-bit PCM and scale at the QMF (input >> 1, output << 1), the level
//! convention of the common 16-bit implementations: encoder and decoder are bit-exact with
//! libspandsp (used by Asterisk and FreeSWITCH) on the test signals in this module.
//! Each payload byte carries one lower-band (low 6 bits) and one higher-band (top 2 bits)
//! code, i.e. two 16 kHz output samples.

use crate::plc::RepeatFade;
use crate::{check_frame, AudioDecoder, AudioEncoder, CodecKind, MediaError};

/// QMF coefficients h0..h23 (scaled by 2^13; they sum to 2^13).
const QMF: [i32; 24] = [
    3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876, 3876, 951, -805, -210, 362, 32,
    -156, 12, 53, -11, -11, 3,
];

/// Lower-band 6-bit quantizer decision levels (times the scale factor, >> 12).
const Q6: [i32; 30] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
];
/// 6-bit codes of negative differences by quantizer interval (1..=30).
const ILN: [u8; 31] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4,
];
/// 6-bit codes of positive differences by quantizer interval (1..=30).
const ILP: [u8; 31] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32,
];
/// 4-bit inverse quantizer (lower band, feeds the predictor), by the code's top 4 bits.
const QQ4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// 6-bit inverse quantizer (lower band output in mode 1), by code.
const QQ6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Magnitude class of a 4-bit lower-band code, for the scale factor.
const RIL4: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Lower-band log scale factor multipliers by magnitude class.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// Higher-band 2-bit inverse quantizer, by code.
const QQ2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Magnitude class of a higher-band code.
const RIH2: [usize; 4] = [2, 1, 2, 1];
/// Higher-band log scale factor multipliers by magnitude class.
const WH: [i32; 3] = [0, -214, 798];
/// Antilog table: 2048 · 2^(i/32).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

fn sat(v: i32) -> i32 {
    v.clamp(-32768, 32767)
}

/// Magnitude of a difference as the recommendation takes it (ones' complement for negatives).
fn magnitude(e: i32) -> i32 {
    if e >= 0 {
        e
    } else {
        -(e + 1)
    }
}

/// Scale factor from the log scale factor `nb`; `shift` is 8 (lower band) or 10 (higher).
fn scale(nb: i32, shift: i32) -> i32 {
    let wd1 = ILB[((nb >> 6) & 31) as usize];
    let wd2 = nb >> 11;
    let wd3 = if wd2 <= shift {
        wd1 >> (shift - wd2)
    } else {
        wd1 << (wd2 - shift)
    };
    wd3 << 2
}

/// State of one band's ADPCM: adaptive predictor and scale factor.
#[derive(Clone)]
struct Band {
    /// Signal estimate for the current sample (pole + zero parts).
    s: i32,
    /// Zero-section part of `s`.
    sz: i32,
    /// Reconstructed signal r(k-1), r(k-2).
    r: [i32; 2],
    /// Partially reconstructed signal p(k-1), p(k-2).
    p: [i32; 2],
    /// Pole coefficients a1, a2 (Q14).
    a: [i32; 2],
    /// Quantized differences d(k-1)..d(k-6).
    d: [i32; 6],
    /// Zero coefficients b1..b6 (Q14).
    b: [i32; 6],
    /// Log scale factor.
    nb: i32,
    /// Scale factor.
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Band {
            s: 0,
            sz: 0,
            r: [0; 2],
            p: [0; 2],
            a: [0; 2],
            d: [0; 6],
            b: [0; 6],
            nb: 0,
            det,
        }
    }

    /// Adapts the predictor to the quantized difference `dlt` of the current sample and
    /// computes the estimate of the next one.
    fn update(&mut self, dlt: i32) {
        let r0 = sat(self.s + dlt);
        let p0 = sat(dlt + self.sz);
        let neg = |v: i32| v < 0;

        // Second pole coefficient.
        let wd1 = sat(self.a[0] << 2);
        // 16-bit arithmetic: negating -32768 saturates to 32767.
        let wd2 = if neg(p0) == neg(self.p[0]) {
            sat(-wd1)
        } else {
            wd1
        } >> 7;
        let wd3 = if neg(p0) == neg(self.p[1]) { 128 } else { -128 };
        let wd5 = (self.a[1] * 32512) >> 15;
        let a2 = (wd2 + wd3 + wd5).clamp(-12288, 12288);

        // First pole coefficient, limited for stability by the new a2.
        let wd1 = if neg(p0) == neg(self.p[0]) { 192 } else { -192 };
        let wd2 = (self.a[0] * 32640) >> 15;
        let limit = 15360 - a2;
        let a1 = (wd1 + wd2).clamp(-limit, limit);

        // Zero coefficients.
        let step = if dlt == 0 { 0 } else { 128 };
        for (b, &d) in self.b.iter_mut().zip(&self.d) {
            let wd2 = if neg(dlt) == neg(d) { step } else { -step };
            *b = wd2 + ((*b * 32640) >> 15);
        }

        // Delays.
        self.d.rotate_right(1);
        self.d[0] = dlt;
        self.r = [r0, self.r[0]];
        self.p = [p0, self.p[0]];
        self.a = [a1, a2];

        // Next estimate.
        let sp =
            ((self.a[0] * sat(self.r[0] * 2)) >> 15) + ((self.a[1] * sat(self.r[1] * 2)) >> 15);
        let sz: i32 = self
            .b
            .iter()
            .zip(&self.d)
            .map(|(&b, &d)| (b * sat(d * 2)) >> 15)
            .sum();
        self.sz = sat(sz);
        self.s = sat(sat(sp) + self.sz);
    }

    /// Lower band: quantized differences (4-bit for the predictor, 6-bit for output) of code
    /// `il`, and the state moved on by one sample. Returns the 6-bit reconstruction.
    fn low_step(&mut self, il: u8) -> i32 {
        let il = usize::from(il & 0x3F);
        let ril = il >> 2;
        let dlt = (QQ4[ril] * self.det) >> 15;
        let out = sat(self.s + ((QQ6[il] * self.det) >> 15));
        self.nb = (((self.nb * 32512) >> 15) + WL[RIL4[ril]]).clamp(0, 18432);
        self.det = scale(self.nb, 8);
        self.update(dlt);
        out
    }

    /// Higher band: same for 2-bit code `ih`.
    fn high_step(&mut self, ih: u8) -> i32 {
        let ih = usize::from(ih & 0x03);
        let dh = (QQ2[ih] * self.det) >> 15;
        let out = sat(self.s + dh);
        self.nb = (((self.nb * 32512) >> 15) + WH[RIH2[ih]]).clamp(0, 22528);
        self.det = scale(self.nb, 10);
        self.update(dh);
        out
    }

    fn low_quantize(&self, xl: i32) -> u8 {
        let el = sat(xl - self.s);
        let wd = magnitude(el);
        let mut mil = 1;
        while mil < 30 && wd >= (Q6[mil] * self.det) >> 12 {
            mil += 1;
        }
        if el < 0 {
            ILN[mil]
        } else {
            ILP[mil]
        }
    }

    fn high_quantize(&self, xh: i32) -> u8 {
        let eh = sat(xh - self.s);
        let large = magnitude(eh) >= (564 * self.det) >> 12;
        match (eh < 0, large) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        }
    }
}

/// Transmit QMF: splits pairs of 16 kHz samples into one lower- and one higher-band sample.
#[derive(Clone)]
struct AnalysisQmf {
    /// Last 24 input samples, newest first.
    x: [i32; 24],
}

impl AnalysisQmf {
    fn split(&mut self, first: i16, second: i16) -> (i32, i32) {
        self.x.rotate_right(2);
        self.x[1] = i32::from(first);
        self.x[0] = i32::from(second);
        let (mut a, mut b) = (0i64, 0i64);
        for i in 0..12 {
            a += i64::from(QMF[2 * i]) * i64::from(self.x[2 * i]);
            b += i64::from(QMF[2 * i + 1]) * i64::from(self.x[2 * i + 1]);
        }
        // Taps >> 13, and 16-bit input >> 1 (the level other 16-bit G.722 stacks use).
        let low = ((a + b) >> 14) as i32;
        let high = ((a - b) >> 14) as i32;
        (sat(low), sat(high))
    }
}

/// Receive QMF: merges one lower- and one higher-band sample into two 16 kHz samples.
#[derive(Clone)]
struct SynthesisQmf {
    /// Last 12 band differences rl - rh, newest first.
    d: [i32; 12],
    /// Last 12 band sums rl + rh, newest first.
    s: [i32; 12],
}

impl SynthesisQmf {
    fn merge(&mut self, rl: i32, rh: i32) -> [i16; 2] {
        self.d.rotate_right(1);
        self.s.rotate_right(1);
        self.d[0] = rl - rh;
        self.s[0] = rl + rh;
        let (mut first, mut second) = (0i64, 0i64);
        for i in 0..12 {
            first += i64::from(QMF[2 * i]) * i64::from(self.d[i]);
            second += i64::from(QMF[2 * i + 1]) * i64::from(self.s[i]);
        }
        // Gain 2, taps >> 13, back to 16 bits << 1.
        let out = |v: i64| (v >> 11).clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
        [out(first), out(second)]
    }
}

/// G.722 encoder: 320 samples at 16 kHz in, 160 bytes out per 20 ms.
pub(crate) struct G722Encoder {
    qmf: AnalysisQmf,
    low: Band,
    high: Band,
}

impl G722Encoder {
    pub(crate) fn new() -> Self {
        G722Encoder {
            qmf: AnalysisQmf { x: [0; 24] },
            low: Band::new(32),
            high: Band::new(8),
        }
    }
}

impl AudioEncoder for G722Encoder {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError> {
        check_frame(CodecKind::G722, pcm)?;
        for pair in pcm.chunks_exact(2) {
            let (xl, xh) = self.qmf.split(pair[0], pair[1]);
            let il = self.low.low_quantize(xl);
            self.low.low_step(il);
            let ih = self.high.high_quantize(xh);
            self.high.high_step(ih);
            out.push((ih << 6) | il);
        }
        Ok(())
    }
}

/// G.722 decoder (mode 1: all 6 lower-band bits used).
pub(crate) struct G722Decoder {
    qmf: SynthesisQmf,
    low: Band,
    high: Band,
    plc: RepeatFade,
}

impl G722Decoder {
    pub(crate) fn new() -> Self {
        G722Decoder {
            qmf: SynthesisQmf {
                d: [0; 12],
                s: [0; 12],
            },
            low: Band::new(32),
            high: Band::new(8),
            plc: RepeatFade::new(CodecKind::G722.frame_samples()),
        }
    }
}

impl AudioDecoder for G722Decoder {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), MediaError> {
        if payload.is_empty() {
            return Err(MediaError::EmptyPayload(CodecKind::G722));
        }
        let start = out.len();
        out.reserve(payload.len() * 2);
        for &byte in payload {
            let rl = self.low.low_step(byte & 0x3F);
            let rh = self.high.high_step(byte >> 6);
            out.extend_from_slice(&self.qmf.merge(rl, rh));
        }
        self.plc.decoded(&out[start..]);
        Ok(())
    }

    fn conceal(&mut self, out: &mut Vec<i16>) {
        self.plc.conceal(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::ToneGenerator;

    /// The QMF pair alone reconstructs broadband input, delayed by 22 samples, almost exactly.
    #[test]
    fn qmf_pair_reconstructs() {
        let mut tx = AnalysisQmf { x: [0; 24] };
        let mut rx = SynthesisQmf {
            d: [0; 12],
            s: [0; 12],
        };
        let mut seed = 0x2545_F491_u64;
        let input: Vec<i16> = (0..16000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((seed >> 33) % 16000) as i16 - 8000
            })
            .collect();
        let mut output = Vec::new();
        for pair in input.chunks_exact(2) {
            let (l, h) = tx.split(pair[0], pair[1]);
            output.extend_from_slice(&rx.merge(l, h));
        }
        const DELAY: usize = 22;
        let signal: f64 = input[100..15000]
            .iter()
            .map(|&a| f64::from(a).powi(2))
            .sum();
        let noise: f64 = input[100..15000]
            .iter()
            .zip(&output[100 + DELAY..])
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let snr = 10.0 * (signal / noise).log10();
        assert!(snr > 50.0, "QMF round trip SNR {snr} dB");
    }

    fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// Encodes `pcm` (whole frames) and decodes the result; returns the FNV-1a hashes of the
    /// G.722 stream and of the decoded little-endian PCM.
    fn hashes(pcm: &[i16]) -> (u64, u64) {
        let mut enc = G722Encoder::new();
        let mut bytes = Vec::new();
        for frame in pcm.chunks_exact(320) {
            enc.encode(frame, &mut bytes).unwrap();
        }
        let mut dec = G722Decoder::new();
        let mut out = Vec::new();
        dec.decode(&bytes, &mut out).unwrap();
        assert_eq!(out.len(), pcm.len());
        (
            fnv1a(bytes),
            fnv1a(out.iter().flat_map(|s| s.to_le_bytes())),
        )
    }

    /// Bit-exactness against an independent implementation: the hashes below are of the
    /// G.722 stream and the decoded PCM that libspandsp 0.0.6 (Debian `libspandsp2`,
    /// `g722_encode`/`g722_decode` at 64000 bit/s, no options) produced from the same one
    /// second of 16-bit input. The first signal drives the higher band's pole predictor to
    /// |a1| > 1 (the saturating 16-bit negation in the a2 update).
    #[test]
    fn bit_exact_with_reference_implementation() {
        use std::f64::consts::PI;
        let three_tones: Vec<i16> = (0..16000)
            .map(|i| {
                let t = f64::from(i);
                (9000.0 * (2.0 * PI * 523.0 * t / 16000.0).sin()
                    + 5000.0 * (2.0 * PI * 5200.0 * t / 16000.0).sin()
                    + 3000.0 * (2.0 * PI * 3100.0 * t / 16000.0 + 1.0).sin()) as i16
            })
            .collect();
        assert_eq!(
            hashes(&three_tones),
            (0x8cb7_ea3e_14c6_ab98, 0x9b38_c721_f7fb_571d)
        );

        let mut four_tones = vec![0i16; 16000];
        ToneGenerator::new(16000, &[523.0, 3100.0, 5200.0, 7300.0], 24000).fill(&mut four_tones);
        assert_eq!(
            hashes(&four_tones),
            (0x1a3b_6ff9_f7f9_af9c, 0x9401_c388_710e_5c67)
        );
    }
}
