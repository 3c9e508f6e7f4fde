//! Audio for playback: fetch, cache, decode, resample.
