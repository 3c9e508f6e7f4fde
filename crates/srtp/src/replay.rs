//! Per-SSRC receive state: the highest index accepted and a sliding replay window
//! (RFC 3711 §3.3.2), and a small bounded table of such states by SSRC.

use crate::{SrtpError, REPLAY_WINDOW};

/// Most SSRCs a context keeps state for; past it the least recently used is forgotten.
/// A call has one or two; state is only created for packets that authenticated.
pub(crate) const MAX_SSRCS: usize = 16;

/// The highest index accepted and which of the `REPLAY_WINDOW` indices below it were seen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayWindow {
    pub highest: u64,
    /// Bit n set: index `highest - n` was accepted (bit 0 is `highest` itself).
    seen: u128,
}

impl ReplayWindow {
    pub fn new(first: u64) -> ReplayWindow {
        ReplayWindow {
            highest: first,
            seen: 1,
        }
    }

    /// Whether `index` may be accepted (checked before the tag, recorded after).
    pub fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= REPLAY_WINDOW {
            return Err(SrtpError::TooOld(index));
        }
        if self.seen & (1u128 << behind) != 0 {
            return Err(SrtpError::Replay(index));
        }
        Ok(())
    }

    /// Records an accepted index (already [`check`](Self::check)ed).
    pub fn accept(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= REPLAY_WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            let behind = self.highest - index;
            if behind < REPLAY_WINDOW {
                self.seen |= 1u128 << behind;
            }
        }
    }
}

/// A bounded SSRC → state map, most recently used last.
#[derive(Debug, Clone)]
pub(crate) struct SsrcTable<T> {
    entries: Vec<(u32, T)>,
}

impl<T> Default for SsrcTable<T> {
    fn default() -> Self {
        SsrcTable {
            entries: Vec::new(),
        }
    }
}

impl<T> SsrcTable<T> {
    pub fn get(&self, ssrc: u32) -> Option<&T> {
        self.entries
            .iter()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, t)| t)
    }

    /// Stores `value` for `ssrc`, making it the most recently used.
    pub fn put(&mut self, ssrc: u32, value: T) {
        if let Some(i) = self.entries.iter().position(|(s, _)| *s == ssrc) {
            self.entries.remove(i);
        } else if self.entries.len() >= MAX_SSRCS {
            self.entries.remove(0);
        }
        self.entries.push((ssrc, value));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
