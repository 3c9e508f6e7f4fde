//! Sample-rate conversion with rubato's synchronous FFT resampler.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rubato::audioadapter_buffers::owned::InterleavedOwned;
use rubato::{Fft, FixedSync, Resampler};

use crate::decode::f32_to_i16;
use crate::{AudioError, Pcm, MAX_RATE, MIN_RATE};

/// Input chunk the resampler works in (frames). Its delay (half an FFT block) is trimmed.
const CHUNK: usize = 1024;

/// Resample mono PCM to `rate`.
///
/// Identity (a cheap clone sharing the samples) when the rates match. Otherwise rubato's
/// synchronous FFT resampler (anti-aliased, band-limited) is run over the whole clip with its
/// start-up delay trimmed, so the output is aligned with the input and holds exactly
/// `ceil(len * rate / pcm.rate)` samples — i.e. the exact length, rounded up to the next frame.
/// Both rates must be within [`MIN_RATE`]..=[`MAX_RATE`].
pub fn resample(pcm: &Pcm, rate: u32) -> Result<Pcm, AudioError> {
    if pcm.rate == rate {
        return Ok(pcm.clone());
    }
    for r in [pcm.rate, rate] {
        if !(MIN_RATE..=MAX_RATE).contains(&r) {
            return Err(AudioError::Unsupported(format!("sample rate {r} Hz")));
        }
    }
    if pcm.samples.is_empty() {
        return Ok(Pcm::new(rate, Vec::new()));
    }
    match catch_unwind(AssertUnwindSafe(|| resample_inner(pcm, rate))) {
        Ok(r) => r,
        Err(_) => Err(AudioError::Internal("resampler panicked".into())),
    }
}

fn resample_inner(pcm: &Pcm, rate: u32) -> Result<Pcm, AudioError> {
    let frames = pcm.samples.len();
    let input: Vec<f32> = pcm.samples.iter().map(|&s| s as f32 / 32768.0).collect();
    let input = InterleavedOwned::new_from(input, 1, frames)
        .map_err(|e| AudioError::Resample(format!("{e:?}")))?;
    let mut resampler =
        Fft::<f32>::new(pcm.rate as usize, rate as usize, CHUNK, 1, FixedSync::Input)
            .map_err(|e| AudioError::Resample(e.to_string()))?;
    let output = resampler
        .process_all(&input, frames, None)
        .map_err(|e| AudioError::Resample(e.to_string()))?;
    let samples: Vec<i16> = output.take_data().into_iter().map(f32_to_i16).collect();
    Ok(Pcm::new(rate, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_shares_samples() {
        let pcm = Pcm::new(8000, vec![1i16, 2, 3]);
        let out = resample(&pcm, 8000).unwrap();
        assert!(std::sync::Arc::ptr_eq(&pcm.samples, &out.samples));
    }

    #[test]
    fn rejects_silly_rates() {
        let pcm = Pcm::new(8000, vec![0i16; 10]);
        assert!(matches!(resample(&pcm, 0), Err(AudioError::Unsupported(_))));
        assert!(matches!(
            resample(&pcm, 10_000_000),
            Err(AudioError::Unsupported(_))
        ));
        let bad = Pcm::new(0, vec![0i16; 10]);
        assert!(matches!(
            resample(&bad, 8000),
            Err(AudioError::Unsupported(_))
        ));
    }

    #[test]
    fn empty_and_tiny_clips() {
        let out = resample(&Pcm::new(8000, Vec::new()), 16000).unwrap();
        assert_eq!(out.samples.len(), 0);
        let out = resample(&Pcm::new(8000, vec![100i16]), 16000).unwrap();
        assert_eq!(out.samples.len(), 2);
        let out = resample(&Pcm::new(44100, vec![100i16; 3]), 8000).unwrap();
        assert_eq!(out.samples.len(), 1);
        // Coprime rates still work.
        let out = resample(&Pcm::new(44101, vec![0i16; 500]), 8000).unwrap();
        assert_eq!(out.samples.len(), (500u64 * 8000).div_ceil(44101) as usize);
    }
}
