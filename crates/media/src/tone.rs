//! Tone generation and Goertzel measurement.

use std::f64::consts::TAU;

/// Sine generator (one or more frequencies summed, e.g. DTMF or 440+480 ringback), with
/// continuous phase across frames.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// Phase increment per sample of each component, in radians.
    steps: Vec<f64>,
    /// Current phase of each component, in radians within 0..TAU.
    phases: Vec<f64>,
    /// Peak amplitude of each component.
    component_amplitude: f64,
}

impl ToneGenerator {
    /// A generator of `freqs` summed. `amplitude` is the peak of the sum: with several
    /// frequencies each gets `amplitude / freqs.len()`, so the sum never clips. No
    /// frequencies (or a zero sample rate) give silence.
    pub fn new(sample_rate: u32, freqs: &[f32], amplitude: i16) -> Self {
        let rate = f64::from(sample_rate.max(1));
        let steps: Vec<f64> = if sample_rate == 0 {
            Vec::new()
        } else {
            freqs.iter().map(|&f| TAU * f64::from(f) / rate).collect()
        };
        let component_amplitude = if steps.is_empty() {
            0.0
        } else {
            f64::from(amplitude) / steps.len() as f64
        };
        ToneGenerator {
            phases: vec![0.0; steps.len()],
            steps,
            component_amplitude,
        }
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for sample in out.iter_mut() {
            let mut v = 0.0;
            for (phase, step) in self.phases.iter_mut().zip(&self.steps) {
                v += phase.sin();
                *phase = (*phase + step) % TAU;
            }
            let v = (v * self.component_amplitude).round();
            *sample = v.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
        }
    }
}

/// Goertzel power of `freq` in `samples`, normalised so a full-scale sine at `freq` gives
/// ~0 dB; returns dBFS. Empty input gives a floor of -200 dBFS.
pub fn goertzel_dbfs(samples: &[i16], sample_rate: u32, freq: f32) -> f32 {
    const FLOOR: f32 = -200.0;
    if samples.is_empty() || sample_rate == 0 {
        return FLOOR;
    }
    let omega = TAU * f64::from(freq) / f64::from(sample_rate);
    let coeff = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    // |X| of a sine of amplitude A over N samples is A·N/2.
    let amplitude = 2.0 * power.sqrt() / samples.len() as f64;
    let db = 20.0 * (amplitude / 32768.0).log10();
    if db.is_finite() {
        (db as f32).max(FLOOR)
    } else {
        FLOOR
    }
}
