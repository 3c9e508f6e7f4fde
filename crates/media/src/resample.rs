//! Band-limited sample-rate conversion for 20 ms frames on the media thread: a polyphase
//! Kaiser-windowed-sinc FIR for any rational ratio `to/from` (8, 16, 48 kHz and their like).
//!
//! The rate change is `L/M` in lowest terms: the signal is (conceptually) upsampled by `L`
//! (zeros inserted), low-pass filtered at the lower of the two Nyquist frequencies, and every
//! `M`-th sample kept. Only the taps that meet a real input sample are computed: each output
//! sample is one dot product of `T` taps (one of `L` phases) with the last `T` inputs.
//!
//! The filter passes up to 85 % of the lower Nyquist frequency (3.4 kHz between 8 and 16 kHz,
//! 6.8 kHz between 16 and 48 kHz) and stops from the lower Nyquist frequency on by ~70 dB, so
//! what the lower rate cannot carry is removed instead of aliased (a 4.5 kHz tone going from
//! 16 to 8 kHz comes out ~83 dB down at 3.5 kHz; 3.4 kHz passes at 0.0 dB). Its delay is
//! constant ([`Resampler::delay_out_samples`]): 3.6 ms between 8 kHz and 16 or 48 kHz,
//! 1.8 ms between 16 and 48 kHz.
//!
//! State (the last `T - 1` inputs and the output phase) is kept across calls, so a stream cut
//! into frames of any sizes gives the same output as the whole stream at once: no clicks at
//! frame boundaries. After the first frame of a given size nothing is allocated.

/// The largest `L` or `M` accepted (`8000 → 44100` is `441/80`); bounds the filter's size.
pub const MAX_RATIO_TERM: u32 = 480;

/// Stopband attenuation the Kaiser window is designed for, in dB.
const ATTENUATION_DB: f64 = 70.0;
/// Passband edge and stopband edge as fractions of the lower Nyquist frequency.
const PASS_EDGE: f64 = 0.85;
const STOP_EDGE: f64 = 1.0;

/// A rate pair [`Resampler::new`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    #[error("sample rate 0")]
    ZeroRate,
    #[error("ratio {to}/{from} too fine (terms above {MAX_RATIO_TERM} in lowest terms)")]
    Ratio { from: u32, to: u32 },
    /// A conference needs whole samples per 20 ms frame.
    #[error("sample rate {0} has no whole number of samples per 20 ms")]
    NotWholeFrames(u32),
}

/// One direction of one stream's rate conversion, with its state. See the module docs.
#[derive(Debug, Clone)]
pub struct Resampler {
    from_rate: u32,
    to_rate: u32,
    /// Upsampling factor `L`.
    up: usize,
    /// Downsampling factor `M`.
    down: usize,
    /// Taps per phase `T`.
    taps: usize,
    /// `L` phases of `T` taps each, reversed so phase `p` is a dot product with the input
    /// window oldest-first: `coeffs[p * T + q]` multiplies `x[i - (T - 1 - q)]`.
    coeffs: Vec<f32>,
    /// The last `T - 1` inputs, then (during a call) the new ones.
    work: Vec<f32>,
    /// The next output's position in upsampled samples, from the start of the next input.
    next: usize,
    /// Identity (`from == to`): samples are copied.
    passthrough: bool,
    /// Scratch for the i16 entry point.
    scratch_in: Vec<f32>,
    scratch_out: Vec<f32>,
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Modified Bessel function of the first kind, order 0 (power series), for the Kaiser window.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..64 {
        let f = half / k as f64;
        term *= f * f;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

impl Resampler {
    /// A resampler from `from_rate` to `to_rate` Hz (equal rates: a plain copy).
    pub fn new(from_rate: u32, to_rate: u32) -> Result<Resampler, ResampleError> {
        if from_rate == 0 || to_rate == 0 {
            return Err(ResampleError::ZeroRate);
        }
        let g = gcd(from_rate, to_rate);
        let (up, down) = (to_rate / g, from_rate / g);
        if up > MAX_RATIO_TERM || down > MAX_RATIO_TERM {
            return Err(ResampleError::Ratio {
                from: from_rate,
                to: to_rate,
            });
        }
        let (up, down) = (up as usize, down as usize);
        let mut r = Resampler {
            from_rate,
            to_rate,
            up,
            down,
            taps: 1,
            coeffs: vec![1.0],
            work: Vec::new(),
            next: 0,
            passthrough: up == down,
            scratch_in: Vec::new(),
            scratch_out: Vec::new(),
        };
        if !r.passthrough {
            r.design();
        }
        Ok(r)
    }

    /// Builds the polyphase table of the Kaiser-windowed sinc low-pass.
    fn design(&mut self) {
        let r = self.up.max(self.down) as f64;
        // In cycles per upsampled sample; the lower Nyquist frequency is 0.5 / r.
        let nyq = 0.5 / r;
        let cutoff = nyq * (PASS_EDGE + STOP_EDGE) / 2.0;
        let transition = nyq * (STOP_EDGE - PASS_EDGE);
        // Kaiser's estimate of the length for the attenuation and transition width.
        let length = ((ATTENUATION_DB - 7.95) / (14.36 * transition)).ceil() as usize + 1;
        let taps = length.div_ceil(self.up).max(1);
        let n = taps * self.up;
        let beta = 0.1102 * (ATTENUATION_DB - 8.7);
        let i0_beta = bessel_i0(beta);
        let centre = (n as f64 - 1.0) / 2.0;
        let mut h: Vec<f64> = (0..n)
            .map(|k| {
                let x = k as f64 - centre;
                let arg = 2.0 * std::f64::consts::PI * cutoff * x;
                let sinc = if x == 0.0 {
                    2.0 * cutoff
                } else {
                    arg.sin() / (std::f64::consts::PI * x)
                };
                let ratio = x / (centre.max(0.5));
                let w = bessel_i0(beta * (1.0 - ratio * ratio).max(0.0).sqrt()) / i0_beta;
                sinc * w
            })
            .collect();
        // Unity gain at DC: each phase's taps then sum to ~1.
        let sum: f64 = h.iter().sum();
        if sum.abs() > f64::EPSILON {
            let scale = self.up as f64 / sum;
            h.iter_mut().for_each(|v| *v *= scale);
        }
        let mut coeffs = vec![0.0f32; n];
        for p in 0..self.up {
            for q in 0..taps {
                coeffs[p * taps + q] = h[p + (taps - 1 - q) * self.up] as f32;
            }
        }
        self.taps = taps;
        self.coeffs = coeffs;
        self.work = vec![0.0; taps - 1];
        self.next = 0;
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from_rate
    }

    /// The output rate.
    pub fn to_rate(&self) -> u32 {
        self.to_rate
    }

    /// The filter's delay, in output samples (0 for a copy).
    pub fn delay_out_samples(&self) -> f64 {
        if self.passthrough {
            return 0.0;
        }
        (self.taps * self.up - 1) as f64 / 2.0 / self.down as f64
    }

    /// Forgets the stream so far (history and phase), as if just created.
    pub fn reset(&mut self) {
        if !self.passthrough {
            self.work.clear();
            self.work.resize(self.taps - 1, 0.0);
            self.next = 0;
        }
    }

    /// Converts the next samples of the stream, appending the output to `out`: about
    /// `input.len() * to / from` samples (exactly that when it is whole and the stream so far
    /// was whole frames, e.g. 20 ms frames at 8/16/48 kHz). Output saturates at i16's range.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.passthrough {
            out.extend_from_slice(input);
            return;
        }
        let mut scratch_in = std::mem::take(&mut self.scratch_in);
        let mut scratch_out = std::mem::take(&mut self.scratch_out);
        scratch_in.clear();
        scratch_in.extend(input.iter().map(|&s| f32::from(s)));
        scratch_out.clear();
        self.process_f32(&scratch_in, &mut scratch_out);
        out.extend(scratch_out.iter().map(|&v| to_i16(v)));
        self.scratch_in = scratch_in;
        self.scratch_out = scratch_out;
    }

    /// [`Resampler::process`] on f32 samples (any range: sums of several streams), appending
    /// to `out`.
    pub fn process_f32(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.passthrough {
            out.extend_from_slice(input);
            return;
        }
        if input.is_empty() {
            return;
        }
        let t = self.taps;
        let n = input.len();
        self.work.extend_from_slice(input);
        let end = n.saturating_mul(self.up);
        out.reserve(end.saturating_sub(self.next) / self.down + 1);
        while self.next < end {
            let i = self.next / self.up;
            let p = self.next % self.up;
            // Inputs x[i - T + 1 ..= i] sit at work[i ..= i + T - 1].
            let (Some(window), Some(phase)) =
                (self.work.get(i..i + t), self.coeffs.get(p * t..p * t + t))
            else {
                break;
            };
            out.push(dot(window, phase));
            self.next += self.down;
        }
        self.next = self.next.saturating_sub(end);
        // Keep the last T - 1 inputs for the next call.
        self.work.drain(..n);
    }
}

/// Dot product in four lanes (lets the compiler vectorise).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (a4.remainder(), b4.remainder());
    for (x, y) in a4.zip(b4) {
        for ((acc, x), y) in acc.iter_mut().zip(x).zip(y) {
            *acc += x * y;
        }
    }
    let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// Rounds and saturates to i16.
#[inline]
pub(crate) fn to_i16(v: f32) -> i16 {
    // Half away from zero without a call to `roundf`; `as` saturates (NaN gives 0).
    (v + 0.5f32.copysign(v)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{goertzel_dbfs, ToneGenerator};

    fn tone(rate: u32, freq: f32, amplitude: i16, len: usize) -> Vec<i16> {
        let mut out = vec![0; len];
        ToneGenerator::new(rate, &[freq], amplitude).fill(&mut out);
        out
    }

    /// Processes `input` in frames of `frame` samples.
    fn run(r: &mut Resampler, input: &[i16], frame: usize) -> Vec<i16> {
        let mut out = Vec::new();
        for chunk in input.chunks(frame.max(1)) {
            r.process(chunk, &mut out);
        }
        out
    }

    fn resampler(from: u32, to: u32) -> Resampler {
        match Resampler::new(from, to) {
            Ok(r) => r,
            Err(e) => panic!("{from}->{to}: {e}"),
        }
    }

    /// The steady part of a signal: skip the filter's start, keep a whole number of 20 ms.
    fn steady(x: &[i16], rate: u32) -> &[i16] {
        let frame = (rate / 50) as usize;
        let skip = frame * 5;
        &x[skip.min(x.len())..]
    }

    #[test]
    fn tone_keeps_frequency_and_level_8_16_8() {
        let input = tone(8000, 1000.0, 10_000, 8000);
        let mut up = resampler(8000, 16_000);
        let mut down = resampler(16_000, 8000);
        let wide = run(&mut up, &input, 160);
        assert_eq!(wide.len(), 16_000);
        let back = run(&mut down, &wide, 320);
        assert_eq!(back.len(), 8000);
        let level_in = goertzel_dbfs(steady(&input, 8000), 8000, 1000.0);
        let level_wide = goertzel_dbfs(steady(&wide, 16_000), 16_000, 1000.0);
        let level_back = goertzel_dbfs(steady(&back, 8000), 8000, 1000.0);
        assert!(
            (level_in - level_wide).abs() < 0.1,
            "{level_in} {level_wide}"
        );
        assert!(
            (level_in - level_back).abs() < 0.1,
            "{level_in} {level_back}"
        );
        // Nothing new appears: the image at 7 kHz (16 kHz side) and a neighbour tone.
        let image = goertzel_dbfs(steady(&wide, 16_000), 16_000, 7000.0);
        assert!(image < level_wide - 60.0, "image {image}");
        let other = goertzel_dbfs(steady(&back, 8000), 8000, 2000.0);
        assert!(other < level_back - 60.0, "other {other}");
    }

    #[test]
    fn every_call_ratio_keeps_a_tone() {
        for (from, to) in [
            (8000, 48_000),
            (48_000, 8000),
            (16_000, 48_000),
            (48_000, 16_000),
            (16_000, 8000),
            (8000, 16_000),
            (8000, 8000),
        ] {
            let input = tone(from, 1000.0, 8000, from as usize);
            let mut r = resampler(from, to);
            let out = run(&mut r, &input, (from / 50) as usize);
            assert_eq!(out.len(), to as usize, "{from}->{to}");
            let a = goertzel_dbfs(steady(&input, from), from, 1000.0);
            let b = goertzel_dbfs(steady(&out, to), to, 1000.0);
            assert!((a - b).abs() < 0.1, "{from}->{to}: {a} {b}");
        }
    }

    /// A 4.5 kHz tone at 16 kHz cannot exist at 8 kHz; dropping every other sample (or
    /// linear interpolation) folds it onto 3.5 kHz. The filter removes it instead, while a
    /// 3.4 kHz tone (top of the telephone band) passes.
    #[test]
    fn downsampling_does_not_alias() {
        let high = tone(16_000, 4500.0, 16_000, 16_000);
        let mut r = resampler(16_000, 8000);
        let out = run(&mut r, &high, 320);
        let input_level = goertzel_dbfs(steady(&high, 16_000), 16_000, 4500.0);
        let alias = goertzel_dbfs(steady(&out, 8000), 8000, 3500.0);
        assert!(alias < input_level - 60.0, "alias {alias} vs {input_level}");
        // What dropping every other sample does to the same tone.
        let naive: Vec<i16> = high.iter().step_by(2).copied().collect();
        let folded = goertzel_dbfs(steady(&naive, 8000), 8000, 3500.0);
        assert!(folded > input_level - 1.0, "naive {folded}");
        let pass = tone(16_000, 3400.0, 16_000, 16_000);
        let mut r = resampler(16_000, 8000);
        let out = run(&mut r, &pass, 320);
        let a = goertzel_dbfs(steady(&pass, 16_000), 16_000, 3400.0);
        let b = goertzel_dbfs(steady(&out, 8000), 8000, 3400.0);
        assert!((a - b).abs() < 0.2, "{a} {b}");
        // 48 -> 8: 5 kHz would fold onto 3 kHz.
        let high = tone(48_000, 5000.0, 16_000, 48_000);
        let mut r = resampler(48_000, 8000);
        let out = run(&mut r, &high, 960);
        let alias = goertzel_dbfs(steady(&out, 8000), 8000, 3000.0);
        assert!(alias < input_level - 60.0, "alias {alias}");
    }

    /// Frames of any size give exactly the whole-buffer output.
    #[test]
    fn frame_by_frame_equals_whole_buffer() {
        let input: Vec<i16> = tone(8000, 700.0, 12_000, 4000)
            .iter()
            .zip(tone(8000, 2300.0, 9000, 4000))
            .map(|(a, b)| a.saturating_add(b))
            .collect();
        for (from, to) in [
            (8000, 16_000),
            (16_000, 8000),
            (8000, 48_000),
            (48_000, 16_000),
        ] {
            let mut whole = resampler(from, to);
            let mut all = Vec::new();
            whole.process(&input, &mut all);
            for frame in [160, 1, 7, 333] {
                let mut r = resampler(from, to);
                assert_eq!(run(&mut r, &input, frame), all, "{from}->{to} by {frame}");
            }
            let mut r = resampler(from, to);
            let mut out = Vec::new();
            r.process(&input[..100], &mut out);
            r.reset();
            out.clear();
            r.process(&input, &mut out);
            assert_eq!(out, all, "reset");
        }
    }

    #[test]
    fn odd_inputs_never_panic() {
        assert_eq!(Resampler::new(0, 8000).err(), Some(ResampleError::ZeroRate));
        assert_eq!(Resampler::new(8000, 0).err(), Some(ResampleError::ZeroRate));
        assert!(Resampler::new(8000, 7919).is_err());
        assert!(Resampler::new(44_100, 48_000).is_ok());
        let mut r = resampler(16_000, 8000);
        let mut out = Vec::new();
        r.process(&[], &mut out);
        assert!(out.is_empty());
        // Odd lengths: 3 in gives 1 or 2 out, and the total stays exact.
        let mut total = 0;
        for _ in 0..100 {
            out.clear();
            r.process(&[i16::MAX, i16::MIN, i16::MAX], &mut out);
            total += out.len();
        }
        assert_eq!(total, 150);
        // Full-scale square waves overshoot (Gibbs): saturated, never wrapped.
        let square: Vec<i16> = (0..960)
            .map(|i| if (i / 4) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        for (from, to) in [(8000, 48_000), (48_000, 8000), (8000, 16_000)] {
            let mut r = resampler(from, to);
            let mut out = Vec::new();
            r.process(&square, &mut out);
            assert!(!out.is_empty());
        }
        let mut same = resampler(8000, 8000);
        out.clear();
        same.process(&[1, 2, 3], &mut out);
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(same.delay_out_samples(), 0.0);
        let r = resampler(8000, 16_000);
        let delay_ms = r.delay_out_samples() / 16.0;
        assert!((2.0..5.0).contains(&delay_ms), "{delay_ms}");
    }
}
