//! Noise suppression for `calling.denoise`: RNNoise (the `nnnoiseless` port) on the far end's
//! audio. Pure: driven by PCM frames (normally 20 ms).
//!
//! RNNoise runs at 48 kHz on 480-sample (10 ms) frames, so a call's 8 or 16 kHz frame is
//! upsampled by an integer factor (6 or 3) with a windowed-sinc low-pass, denoised, low-passed
//! again and decimated back. A 20 ms frame is exactly 960 samples at 48 kHz, i.e. two RNNoise
//! frames, so nothing waits for a partial frame: every call gives back as many samples as it
//! got. All state (RNNoise's and both filters') carries over between frames.
//!
//! Latency: RNNoise's overlapped analysis delays its output by one frame (480 samples =
//! 10 ms); each linear-phase filter adds half its length ((L-1)/2 samples at 48 kHz, about
//! 1.5 ms each at 8 kHz, 0.7 ms at 16 kHz). [`Denoiser::latency_samples`] gives the total at
//! the call's rate: ≈ 13 ms at 8 kHz.

use crate::listen::FrameFilter;
use nnnoiseless::DenoiseState;

/// A denoiser cannot be made for this sample rate.
#[derive(Debug, thiserror::Error)]
#[error("denoise needs a sample rate dividing 48000 Hz, got {0}")]
pub struct UnsupportedRate(pub u32);

/// RNNoise's own sample rate.
const RATE_48K: u32 = 48_000;
/// RNNoise's frame, samples at 48 kHz.
const FRAME_48K: usize = DenoiseState::FRAME_SIZE;
/// Filter taps per polyphase branch (filter length = factor × this).
const TAPS_PER_PHASE: usize = 24;
/// Low-pass cut-off as a fraction of the call's Nyquist frequency.
const CUTOFF: f64 = 0.9;

/// RNNoise on a call's audio at its own rate; see the module docs.
pub struct Denoiser {
    state: Box<DenoiseState<'static>>,
    rate: u32,
    /// 48 kHz samples per call sample (1 when the call already runs at 48 kHz).
    factor: usize,
    /// Low-pass at 48 kHz, unity DC gain; empty when `factor` is 1.
    taps: Vec<f32>,
    /// Last input samples at the call's rate (upsampler memory), newest last.
    up_hist: Vec<f32>,
    /// Last denoised 48 kHz samples (decimator memory), newest last.
    down_hist: Vec<f32>,
    /// Upsampled samples not yet given to RNNoise.
    pending: Vec<f32>,
    /// Denoised 48 kHz samples of this frame.
    clean: Vec<f32>,
    out: [f32; FRAME_48K],
}

impl std::fmt::Debug for Denoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denoiser")
            .field("rate", &self.rate)
            .finish()
    }
}

impl Denoiser {
    /// A denoiser for audio at `rate` Hz, which must divide 48 kHz (8, 16 and 48 kHz do).
    pub fn new(rate: u32) -> Result<Self, UnsupportedRate> {
        if rate == 0 || !RATE_48K.is_multiple_of(rate) {
            return Err(UnsupportedRate(rate));
        }
        let factor = (RATE_48K / rate) as usize;
        let taps = if factor == 1 {
            Vec::new()
        } else {
            lowpass(factor * TAPS_PER_PHASE, CUTOFF * 0.5 / factor as f64)
        };
        Ok(Denoiser {
            state: DenoiseState::new(),
            rate,
            factor,
            up_hist: vec![0.0; TAPS_PER_PHASE],
            down_hist: vec![0.0; taps.len()],
            taps,
            pending: Vec::with_capacity(2 * FRAME_48K),
            clean: Vec::with_capacity(2 * FRAME_48K),
            out: [0.0; FRAME_48K],
        })
    }

    /// The sample rate this denoiser was made for.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// How far the output lags the input, in samples at the call's rate (rounded up).
    pub fn latency_samples(&self) -> usize {
        // RNNoise's one frame plus the group delay of both filters, at 48 kHz.
        let at_48k = FRAME_48K + self.taps.len().saturating_sub(1);
        at_48k.div_ceil(self.factor)
    }

    /// Denoises `pcm` in place. Any length works; output lags input by
    /// [`Self::latency_samples`].
    pub fn process(&mut self, pcm: &mut [i16]) {
        self.upsample(pcm);
        self.clean.clear();
        let whole = self.pending.len() / FRAME_48K * FRAME_48K;
        for chunk in self.pending[..whole].chunks_exact(FRAME_48K) {
            self.state.process_frame(&mut self.out, chunk);
            self.clean.extend_from_slice(&self.out);
        }
        self.pending.drain(..whole);
        // A frame length that is not a multiple of 10 ms leaves samples in `pending`: the
        // output then lags by them too; pad the front with silence so lengths still match.
        let need = pcm.len() * self.factor;
        if self.clean.len() < need {
            let missing = need - self.clean.len();
            self.clean.splice(0..0, std::iter::repeat_n(0.0, missing));
        }
        self.downsample(pcm);
    }

    /// `pcm` at the call's rate → `pending` at 48 kHz (polyphase interpolation).
    fn upsample(&mut self, pcm: &[i16]) {
        if self.factor == 1 {
            self.pending.extend(pcm.iter().map(|&s| f32::from(s)));
            return;
        }
        let gain = self.factor as f32;
        for &s in pcm {
            self.up_hist.rotate_left(1);
            if let Some(last) = self.up_hist.last_mut() {
                *last = f32::from(s);
            }
            for phase in 0..self.factor {
                // y[nM+p] = M Σk h[p+kM]·x[n-k]; up_hist newest last.
                let mut acc = 0.0f32;
                for (k, x) in self.up_hist.iter().rev().enumerate() {
                    acc += self.taps[phase + k * self.factor] * x;
                }
                self.pending.push(acc * gain);
            }
        }
    }

    /// `clean` at 48 kHz → `pcm` at the call's rate (low-pass, keep every factor-th sample).
    fn downsample(&mut self, pcm: &mut [i16]) {
        let start = self.clean.len() - pcm.len() * self.factor;
        if self.factor == 1 {
            for (o, &c) in pcm.iter_mut().zip(&self.clean[start..]) {
                *o = to_i16(c);
            }
            return;
        }
        let l = self.taps.len();
        for (i, o) in pcm.iter_mut().enumerate() {
            let block = &self.clean[start + i * self.factor..start + (i + 1) * self.factor];
            self.down_hist.rotate_left(self.factor);
            let tail = l - self.factor;
            self.down_hist[tail..].copy_from_slice(block);
            // y[m] = Σj h[j]·x[mM-j]; down_hist newest last.
            let acc: f32 = self
                .taps
                .iter()
                .zip(self.down_hist.iter().rev())
                .map(|(h, x)| h * x)
                .sum();
            *o = to_i16(acc);
        }
    }
}

fn to_i16(x: f32) -> i16 {
    x.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Blackman-windowed sinc low-pass of `len` taps, cut-off `fc` (fraction of the sample rate),
/// normalised to unity DC gain.
fn lowpass(len: usize, fc: f64) -> Vec<f32> {
    let mid = (len as f64 - 1.0) / 2.0;
    let raw: Vec<f64> = (0..len)
        .map(|n| {
            let t = n as f64 - mid;
            let sinc = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t)
            };
            let w = 2.0 * std::f64::consts::PI * n as f64 / (len as f64 - 1.0);
            sinc * (0.42 - 0.5 * w.cos() + 0.08 * (2.0 * w).cos())
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|h| (h / sum) as f32).collect()
}

/// The call's denoiser as its [`FrameFilter`] (`calling.denoise`), so recording, detectors,
/// speech and the bridge all hear the denoised audio. Made on the first frame, remade if the
/// rate ever changes; a rate RNNoise cannot take passes unchanged.
#[derive(Default)]
pub struct DenoiseFilter {
    denoiser: Option<Denoiser>,
    unsupported: bool,
}

impl FrameFilter for DenoiseFilter {
    fn process(&mut self, pcm: &mut [i16], rate: u32) {
        if self.denoiser.as_ref().is_none_or(|d| d.rate() != rate) {
            match Denoiser::new(rate) {
                Ok(d) => self.denoiser = Some(d),
                Err(e) => {
                    if !self.unsupported {
                        tracing::warn!(error = %e, "denoise off for this audio");
                    }
                    self.unsupported = true;
                    self.denoiser = None;
                    return;
                }
            }
        }
        if let Some(d) = self.denoiser.as_mut() {
            d.process(pcm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic white noise (xorshift), uniform in ±amp.
    fn noise(n: usize, amp: f32, seed: &mut u32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                (*seed as f32 / u32::MAX as f32 * 2.0 - 1.0) * amp
            })
            .collect()
    }

    fn energy(x: &[f32]) -> f64 {
        x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64
    }

    fn db(ratio: f64) -> f64 {
        10.0 * ratio.max(1e-12).log10()
    }

    /// Speech-like test signal: a glottal pulse train (pitch gliding 110–150 Hz) through two
    /// formant resonators, in 4 Hz syllables.
    fn voice(rate: u32, n: usize) -> Vec<f32> {
        let fs = rate as f64;
        let mut out = Vec::with_capacity(n);
        let mut phase = 0.0f64;
        let mut res = [(0.0f64, 0.0f64); 2];
        let formants = [(700.0, 130.0), (1200.0, 150.0)];
        for i in 0..n {
            let t = i as f64 / fs;
            let f0 = 130.0 + 20.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            phase += f0 / fs;
            let pulse = if phase >= 1.0 {
                phase -= 1.0;
                1.0
            } else {
                0.0
            };
            let mut y = pulse;
            for (k, &(f, bw)) in formants.iter().enumerate() {
                let r = (-std::f64::consts::PI * bw / fs).exp();
                let a1 = 2.0 * r * (2.0 * std::f64::consts::PI * f / fs).cos();
                let a2 = -r * r;
                let v = y + a1 * res[k].0 + a2 * res[k].1;
                res[k].1 = res[k].0;
                res[k].0 = v;
                y = v;
            }
            let syllable = (2.0 * std::f64::consts::PI * 4.0 * t).sin().max(0.0);
            out.push((y * syllable) as f32);
        }
        let peak = out.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-9);
        out.iter().map(|v| v / peak * 8000.0).collect()
    }

    /// Runs `signal + noise` through a denoiser in 20 ms frames; returns the output.
    fn run(rate: u32, signal: &[f32], noisy: &[f32]) -> Vec<f32> {
        let mut d = Denoiser::new(rate).unwrap();
        let frame = rate as usize / 50;
        let mut out = Vec::with_capacity(noisy.len());
        for (s, n) in signal.chunks(frame).zip(noisy.chunks(frame)) {
            let mut pcm: Vec<i16> = s.iter().zip(n).map(|(a, b)| to_i16(a + b)).collect();
            d.process(&mut pcm);
            out.extend(pcm.iter().map(|&v| f32::from(v)));
        }
        out
    }

    /// (noise out / noise in, signal+noise out / signal in) in dB, after a second of
    /// adaptation. A non-linear denoiser's output cannot be split into signal and noise, so
    /// noise alone and signal+noise (same noise) are run separately. The noise is white at
    /// -35 dBFS RMS: RNNoise attenuates much louder white noise far less (measured: -6 dB at
    /// -25 dBFS, 8 kHz), see docs/detect.md.
    fn measure(rate: u32, signal: &[f32]) -> (f64, f64) {
        let n = signal.len();
        let mut seed = 0x1234_5678;
        let noise = noise(n, 1000.0, &mut seed);
        let silent = vec![0.0; n];
        let skip = rate as usize; // let RNNoise adapt for a second
        let noise_in = energy(&noise[skip..]);
        let noise_out = energy(&run(rate, &silent, &noise)[skip..]);
        let mix_out = run(rate, signal, &noise);
        let sig_in = energy(&signal[skip..]);
        let mix_e = energy(&mix_out[skip..]);
        (db(noise_out / noise_in), db(mix_e / sig_in))
    }

    #[test]
    fn white_noise_alone_is_suppressed_by_more_than_15_db_at_8k_and_16k() {
        for rate in [8000, 16000] {
            let (noise_db, _) = measure(rate, &vec![0.0; rate as usize * 4]);
            assert!(noise_db < -15.0, "{rate} Hz: noise only {noise_db:.1} dB");
        }
    }

    #[test]
    fn speech_like_signal_in_noise_keeps_its_level_while_noise_drops() {
        for rate in [8000, 16000] {
            let sig = voice(rate, rate as usize * 4);
            let (noise_db, kept_db) = measure(rate, &sig);
            eprintln!(
                "{rate} Hz: noise {noise_db:.1} dB, speech+noise out vs speech in {kept_db:.1} dB"
            );
            assert!(noise_db < -15.0, "{rate} Hz noise {noise_db:.1} dB");
            assert!(kept_db > -6.0, "{rate} Hz speech lost: {kept_db:.1} dB");
        }
    }

    /// RNNoise is trained on speech: a steady pure tone counts as noise (measured: 440 Hz at
    /// 8 kHz comes out ≈ 17 dB down), so tests of denoised calls use speech-like audio.
    #[test]
    fn pure_tone_is_treated_as_noise() {
        let rate = 8000;
        let n = rate * 4;
        let tone: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin() * 8000.0)
            .collect();
        let (noise_db, kept_db) = measure(rate as u32, &tone);
        eprintln!("tone: noise {noise_db:.1} dB, tone+noise out vs tone in {kept_db:.1} dB");
        assert!(kept_db < -6.0, "tone kept: {kept_db:.1} dB");
    }

    /// CPU cost (run with `--release -- --ignored --nocapture`): 60 s of 8 kHz noise.
    #[test]
    #[ignore]
    fn cost_of_a_minute_of_call_audio() {
        let mut seed = 99;
        let x = noise(8000 * 60, 1000.0, &mut seed);
        let t = std::time::Instant::now();
        run(8000, &vec![0.0; x.len()], &x);
        eprintln!("60 s of 8 kHz audio denoised in {:?}", t.elapsed());
    }

    #[test]
    fn silence_stays_silent_and_lengths_match_for_any_frame_size() {
        let mut d = Denoiser::new(8000).unwrap();
        for len in [160, 80, 37, 0, 160] {
            let mut pcm = vec![0i16; len];
            d.process(&mut pcm);
            assert_eq!(pcm.len(), len);
            assert!(pcm.iter().all(|&s| s == 0));
        }
    }

    #[test]
    fn rates_that_do_not_divide_48k_are_refused() {
        assert!(Denoiser::new(44_100).is_err());
        assert!(Denoiser::new(0).is_err());
        assert!(Denoiser::new(48_000).is_ok());
        assert_eq!(Denoiser::new(8000).unwrap().latency_samples(), 104);
    }
}
