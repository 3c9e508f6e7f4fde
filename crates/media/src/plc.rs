//! Simple packet loss concealment for codecs without their own: repeat the last frame with a
//! fade, then silence.

/// Consecutive concealed frames over which the repeated frame fades to silence.
const FADE_FRAMES: usize = 3;

pub(crate) struct RepeatFade {
    frame: usize,
    /// The last `frame` samples decoded (zeros before any).
    last: Vec<i16>,
    /// Consecutive frames concealed since the last decoded payload.
    lost: usize,
}

impl RepeatFade {
    pub(crate) fn new(frame: usize) -> Self {
        RepeatFade {
            frame,
            last: vec![0; frame],
            lost: 0,
        }
    }

    /// Remembers freshly decoded samples.
    pub(crate) fn decoded(&mut self, samples: &[i16]) {
        self.lost = 0;
        if samples.len() >= self.frame {
            self.last
                .copy_from_slice(&samples[samples.len() - self.frame..]);
        } else {
            self.last.rotate_left(samples.len());
            let start = self.frame - samples.len();
            self.last[start..].copy_from_slice(samples);
        }
    }

    /// Appends exactly one frame of concealment.
    pub(crate) fn conceal(&mut self, out: &mut Vec<i16>) {
        if self.lost >= FADE_FRAMES {
            out.resize(out.len() + self.frame, 0);
            return;
        }
        let total = (FADE_FRAMES * self.frame) as f32;
        let base = (self.lost * self.frame) as f32;
        out.extend(self.last.iter().enumerate().map(|(i, &s)| {
            let gain = 1.0 - (base + i as f32) / total;
            (f32::from(s) * gain) as i16
        }));
        self.lost += 1;
    }
}
