//! Audio frames and codecs (G.711, G.722, Opus), per-call media state ticked every 20 ms. Pure.
