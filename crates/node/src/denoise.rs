//! REST `calling.denoise` / `calling.denoise.stop` (calling-api.md §6.21): RNNoise on the far
//! end's audio as the call's [`FrameFilter`], so recording, detectors, speech and the bridge
//! all hear the denoised audio. Idempotent: a second `denoise` keeps the running filter (and
//! its adapted state); `stop` when off is fine.

use tracing::{info, warn};

use media::denoise::Denoiser;

use crate::actor::CallActor;
use crate::shard::{FrameFilter, ShardCommand};

/// The call's denoiser; made on the first frame, remade if the rate ever changes.
#[derive(Default)]
struct DenoiseFilter {
    denoiser: Option<Denoiser>,
    /// A rate RNNoise cannot take was seen: audio passes unchanged.
    unsupported: bool,
}

impl FrameFilter for DenoiseFilter {
    fn process(&mut self, pcm: &mut [i16], rate: u32) {
        if self.denoiser.as_ref().is_none_or(|d| d.rate() != rate) {
            match Denoiser::new(rate) {
                Ok(d) => self.denoiser = Some(d),
                Err(e) => {
                    if !self.unsupported {
                        warn!(error = %e, "denoise off for this audio");
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

impl CallActor {
    pub(crate) fn set_denoise(&mut self, on: bool) {
        if on == self.denoising {
            return;
        }
        info!(on, "denoise");
        self.denoising = on;
        let filter: Option<Box<dyn FrameFilter>> = if on {
            Some(Box::new(DenoiseFilter::default()))
        } else {
            None
        };
        self.node.media.send(
            self.media_key,
            ShardCommand::SetFilter {
                call_id: self.ident.call_id,
                filter,
            },
        );
    }
}
