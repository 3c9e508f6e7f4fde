//! RTP port allocation from the configured range: even ports only (RTP convention, RTCP = +1),
//! handed out round-robin so a just-freed port is not reused at once.

use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Debug)]
pub struct PortPool {
    low: u16,
    high: u16,
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    next: u16,
    in_use: HashSet<u16>,
}

impl PortPool {
    /// `low..=high`; an odd `low` is rounded up.
    pub fn new(low: u16, high: u16) -> PortPool {
        let low = low + (low % 2);
        PortPool {
            low,
            high,
            state: Mutex::new(PoolState {
                next: low,
                in_use: HashSet::new(),
            }),
        }
    }

    pub fn capacity(&self) -> usize {
        if self.high < self.low {
            0
        } else {
            usize::from((self.high - self.low) / 2 + 1)
        }
    }

    /// Ports of the range not handed out (some may still be taken by other programs).
    pub fn free(&self) -> usize {
        let used = self
            .state
            .lock()
            .map(|st| st.in_use.len())
            .unwrap_or(usize::MAX);
        self.capacity().saturating_sub(used)
    }

    /// A free even port for which `try_bind` succeeds (ports taken by other programs are skipped).
    pub fn allocate<T>(&self, mut try_bind: impl FnMut(u16) -> Option<T>) -> Option<(u16, T)> {
        let Ok(mut st) = self.state.lock() else {
            return None;
        };
        for _ in 0..self.capacity() {
            let port = st.next;
            st.next = if port >= self.high.saturating_sub(1) {
                self.low
            } else {
                port + 2
            };
            if st.in_use.contains(&port) {
                continue;
            }
            if let Some(bound) = try_bind(port) {
                st.in_use.insert(port);
                return Some((port, bound));
            }
        }
        None
    }

    pub fn release(&self, port: u16) {
        if let Ok(mut st) = self.state.lock() {
            st.in_use.remove(&port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_round_robin_and_exhaustion() {
        let pool = PortPool::new(20001, 20008);
        assert_eq!(pool.capacity(), 4);
        let a = pool.allocate(Some).unwrap().0;
        let b = pool.allocate(Some).unwrap().0;
        assert_eq!((a, b), (20002, 20004));
        pool.release(a);
        assert_eq!(pool.allocate(Some).unwrap().0, 20006);
        assert_eq!(pool.allocate(Some).unwrap().0, 20008);
        assert_eq!(
            pool.allocate(Some).unwrap().0,
            20002,
            "freed port reused after wrap"
        );
        assert!(pool.allocate(Some).is_none());
        assert_eq!(pool.free(), 0);
        pool.release(20004);
        assert_eq!(pool.free(), 1);
    }

    #[test]
    fn skips_ports_that_fail_to_bind() {
        let pool = PortPool::new(30000, 30010);
        let (port, ()) = pool.allocate(|p| (p >= 30004).then_some(())).unwrap();
        assert_eq!(port, 30004);
    }
}
