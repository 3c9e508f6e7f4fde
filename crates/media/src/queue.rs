//! Bounds for what the media threads hand to the rest of the node.
//!
//! The media tick must never block, and what an operation or a script waits on must never be
//! lost. So the queues out of a media shard are unbounded channels (a send never blocks and
//! never fails while the receiver lives) and what may be dropped is bounded separately: each
//! droppable item must first take a [`Permit`] from a [`DropBudget`], which admits at most
//! `cap` items in flight (sent and not yet consumed). Past that the item is dropped by its
//! sender, counted, and a rate-limited warning is logged. The permit travels with the item and
//! is released when the consumer drops it, so the bound holds end to end, whatever the
//! consumer's speed. Items that must not be lost never ask for a permit; they are few (one per
//! operation or per key press, not per frame), so their queue stays tiny.
//!
//! ARCHITECTURE.md ("Which queues are bounded") lists every queue and its policy.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

/// At most one drop warning per queue per this long.
const WARN_EVERY_MS: u64 = 1_000;

/// Admission of droppable items into an unbounded queue (see the module docs).
#[derive(Debug)]
pub struct DropBudget {
    name: &'static str,
    cap: usize,
    in_flight: AtomicUsize,
    dropped: AtomicU64,
    /// `dropped` when the last warning was logged, and when (ms since `origin`, +1 so that 0
    /// means never).
    warned_dropped: AtomicU64,
    warned_at_ms: AtomicU64,
    origin: Instant,
}

/// One admitted item's place in its [`DropBudget`]; dropping it frees the place.
#[derive(Debug)]
pub struct Permit(Arc<DropBudget>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl DropBudget {
    pub fn new(name: &'static str, cap: usize) -> Arc<DropBudget> {
        Arc::new(DropBudget {
            name,
            cap: cap.max(1),
            in_flight: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            warned_dropped: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(0),
            origin: Instant::now(),
        })
    }

    /// A place for one more item, or None (the item is to be dropped: this counts it, and
    /// warns at most once a second). Never blocks.
    pub fn try_admit(self: &Arc<Self>) -> Option<Permit> {
        let prev = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if prev < self.cap {
            return Some(Permit(self.clone()));
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.count_drop();
        None
    }

    fn count_drop(&self) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.origin.elapsed().as_millis() as u64 + 1;
        let last = self.warned_at_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < WARN_EVERY_MS {
            return;
        }
        // One thread wins the right to warn for this second.
        if self
            .warned_at_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let before = self.warned_dropped.swap(total, Ordering::AcqRel);
        warn!(
            queue = self.name,
            capacity = self.cap,
            dropped_total = total,
            dropped_since_last_warning = total.saturating_sub(before),
            "queue full: items dropped"
        );
    }

    /// Items dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Items admitted and not yet consumed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Filling the budget: `cap` items are admitted, the next ones are dropped and counted;
    /// consuming one admits one again.
    #[test]
    fn fills_drops_counts_and_recovers() {
        let budget = DropBudget::new("test", 3);
        let mut held: Vec<Permit> = (0..3).filter_map(|_| budget.try_admit()).collect();
        assert_eq!(held.len(), 3);
        assert_eq!(budget.in_flight(), 3);
        for _ in 0..5 {
            assert!(budget.try_admit().is_none());
        }
        assert_eq!(budget.dropped(), 5);
        assert_eq!(budget.in_flight(), 3);
        drop(held.pop());
        assert_eq!(budget.in_flight(), 2);
        let again = budget.try_admit();
        assert!(again.is_some());
        assert!(budget.try_admit().is_none());
        assert_eq!(budget.dropped(), 6);
    }

    /// Many threads never admit more than the cap.
    #[test]
    fn never_over_cap_across_threads() {
        let budget = DropBudget::new("test", 8);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = budget.clone();
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for _ in 0..100 {
                        if let Some(p) = b.try_admit() {
                            kept.push(p);
                        }
                        assert!(b.in_flight() <= 8 + 4);
                    }
                    kept
                })
            })
            .collect();
        // Every permit is held until all threads are done, so exactly `cap` are admitted.
        let kept: Vec<Vec<Permit>> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        assert_eq!(kept.iter().map(Vec::len).sum::<usize>(), 8);
        assert_eq!(budget.dropped(), 400 - 8);
    }
}
