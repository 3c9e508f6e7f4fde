//! Audio mixed under what a call sends, looping (an AI agent's `background_file`, its
//! `playback_bg` action): a decoded clip at the call's rate, added to each frame with a gain.

use std::sync::Arc;

use crate::fork::FrameSource;

/// Loudest gain in dB (and quietest) a background clip takes.
const MAX_GAIN_DB: f64 = 40.0;

pub struct LoopedClip {
    pcm: Arc<[i16]>,
    pos: usize,
    gain: f32,
    /// Plays left, counting the one playing; `None` repeats until removed.
    plays_left: Option<u32>,
}

impl LoopedClip {
    /// `pcm` at the call's rate; `volume_db` its gain (clamped to ±40 dB, 0 when not a
    /// number); `loops` the times it plays, 0 for until removed.
    pub fn new(pcm: Arc<[i16]>, volume_db: f64, loops: u32) -> LoopedClip {
        let db = if volume_db.is_finite() {
            volume_db.clamp(-MAX_GAIN_DB, MAX_GAIN_DB)
        } else {
            0.0
        };
        LoopedClip {
            pcm,
            pos: 0,
            gain: 10f64.powf(db / 20.0) as f32,
            plays_left: (loops > 0).then_some(loops),
        }
    }

    /// Played to its end (never for one that repeats until removed).
    pub fn is_done(&self) -> bool {
        self.pcm.is_empty() || self.plays_left == Some(0)
    }
}

impl FrameSource for LoopedClip {
    fn mix_into(&mut self, _now_us: u64, out: &mut [i16], _rate: u32) {
        for sample in out.iter_mut() {
            if self.is_done() {
                return;
            }
            let v = (f32::from(self.pcm[self.pos]) * self.gain)
                .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
            *sample = sample.saturating_add(v);
            self.pos += 1;
            if self.pos == self.pcm.len() {
                self.pos = 0;
                if let Some(n) = self.plays_left.as_mut() {
                    *n -= 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(clip: &mut LoopedClip, n: usize, under: i16) -> Vec<i16> {
        let mut all = Vec::new();
        for _ in 0..n {
            let mut frame = vec![under; 160];
            clip.mix_into(0, &mut frame, 8000);
            all.extend(frame);
        }
        all
    }

    #[test]
    fn a_clip_mixes_under_the_frame_and_loops_its_count() {
        // 240 samples: one and a half frames per play.
        let pcm: Arc<[i16]> = (0..240).map(|i| i as i16).collect::<Vec<_>>().into();
        let mut twice = LoopedClip::new(pcm.clone(), 0.0, 2);
        let out = frames(&mut twice, 4, 1000);
        assert_eq!(out[0], 1000);
        assert_eq!(out[239], 1000 + 239);
        assert_eq!(out[240], 1000, "the second play starts over");
        assert_eq!(out[479], 1000 + 239);
        assert!(
            out[480..].iter().all(|&s| s == 1000),
            "then nothing is added"
        );
        assert!(twice.is_done());

        let mut forever = LoopedClip::new(pcm, 0.0, 0);
        let out = frames(&mut forever, 30, 0);
        assert_eq!(out[240 * 19 + 7], 7);
        assert!(!forever.is_done());
    }

    #[test]
    fn gain_and_saturation() {
        let pcm: Arc<[i16]> = vec![10_000i16; 160].into();
        let quiet = frames(&mut LoopedClip::new(pcm.clone(), -20.0, 1), 1, 0);
        assert_eq!(quiet[0], 1000);
        let loud = frames(&mut LoopedClip::new(pcm.clone(), 1e9, 1), 1, 30_000);
        assert_eq!(loud[0], i16::MAX, "clamped gain, saturating sum");
        let nan = frames(&mut LoopedClip::new(pcm, f64::NAN, 1), 1, 0);
        assert_eq!(nan[0], 10_000);
        let mut empty = LoopedClip::new(Arc::from(Vec::new()), 0.0, 0);
        assert_eq!(frames(&mut empty, 1, 5)[0], 5);
        assert!(empty.is_done());
    }
}
