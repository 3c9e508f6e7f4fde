//! Helpers shared by the integration tests: WAV writers, a tone generator and a Goertzel.
#![allow(dead_code)]

use std::f64::consts::PI;
use std::io::Cursor;

/// `secs` of a sine at `freq` Hz and amplitude `amp` (0…1) at `rate`.
pub fn tone(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<f64> {
    let n = (rate as f64 * secs).round() as usize;
    (0..n)
        .map(|i| amp * (2.0 * PI * freq * i as f64 / rate as f64).sin())
        .collect()
}

/// A 16-bit WAV; `channels` interleaved frames where channel 0 carries `left` and the others
/// carry `other` (same length).
pub fn wav16(rate: u32, channels: u16, left: &[f64], other: &[f64]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cur = Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for (i, l) in left.iter().enumerate() {
            w.write_sample((l * 32767.0) as i16).unwrap();
            for _ in 1..channels {
                w.write_sample((other[i] * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    }
    cur.into_inner()
}

/// A mono 16-bit WAV of a tone.
pub fn tone_wav(freq: f64, rate: u32, secs: f64) -> Vec<u8> {
    let t = tone(freq, rate, secs, 0.5);
    wav16(rate, 1, &t, &t)
}

/// Relative power of `freq` in `x` (Goertzel), normalised so a full-scale-relative sine of
/// amplitude A gives about A².
pub fn goertzel(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = v as f64 / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = x.len() as f64;
    4.0 * power / (n * n)
}

/// Mean power of `x` (full scale = 1).
pub fn power(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter()
        .map(|&v| {
            let f = v as f64 / 32768.0;
            f * f
        })
        .sum::<f64>()
        / x.len() as f64
}

/// G.711 µ-law encoding of one 16-bit sample.
pub fn mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// A hand-built WAV with an arbitrary format tag (7 = µ-law, 6 = A-law), 8-bit mono.
pub fn wav_g711(format_tag: u16, rate: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(4 + 26 + 8 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVE");
    v.extend_from_slice(b"fmt ");
    v.extend_from_slice(&18u32.to_le_bytes());
    v.extend_from_slice(&format_tag.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // channels
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes()); // byte rate
    v.extend_from_slice(&1u16.to_le_bytes()); // block align
    v.extend_from_slice(&8u16.to_le_bytes()); // bits
    v.extend_from_slice(&0u16.to_le_bytes()); // cbSize
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// Tiny deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
