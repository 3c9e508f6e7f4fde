//! Call queues (SWML `enter_queue`, `connect` to `queue:<name>`): who waits where, in order,
//! and what a queue's status events say (position, size, average wait). Pure: told the time.
//!
//! A caller is taken by an agent in two steps so that neither can miss the other's end: the
//! agent [`Queues::take`]s the longest-waiting caller (it leaves the line and is marked taken by
//! that agent), then the caller, told, [`Queues::settle`]s. A caller that ends in between finds
//! itself taken in [`Queues::leave`] and tells its agent.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

/// Longest queue name accepted.
pub const MAX_QUEUE_NAME: usize = 128;
/// Callers waiting in one queue at most.
pub const MAX_QUEUE_SIZE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub call_id: Uuid,
    /// Where the caller's media runs (its shard key): the agent's moves there.
    pub media_key: Uuid,
    pub since_ms: u64,
}

#[derive(Debug, Default)]
struct Queue {
    id: Uuid,
    line: VecDeque<Waiting>,
    /// Waits of callers taken by agents, for `avg_time`.
    served: u64,
    served_wait_ms: u64,
}

/// A queue's figures for a `calling.call.queue` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStatus {
    pub queue_id: Uuid,
    /// 1-based; 0 when the call is not in the line.
    pub position: usize,
    pub size: usize,
    /// Average wait (s) of the callers agents took, 0 before the first.
    pub avg_time_secs: u64,
}

/// What became of a caller leaving the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// It was waiting; it is out now.
    Waiting,
    /// An agent took it and it was not told yet: tell that agent.
    TakenBy(Uuid),
    /// It was not in any queue.
    Unknown,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("queue name must be 1 to {MAX_QUEUE_NAME} characters")]
    Name,
    #[error("the queue is full ({MAX_QUEUE_SIZE} callers)")]
    Full,
    #[error("the call is already in a queue")]
    AlreadyQueued,
}

/// Every queue of a node.
#[derive(Debug, Default)]
pub struct Queues {
    queues: HashMap<String, Queue>,
    /// Which queue each waiting call is in.
    waiting_in: HashMap<Uuid, String>,
    /// Callers taken by an agent that were not told yet.
    taken: HashMap<Uuid, Uuid>,
}

pub fn check_name(name: &str) -> Result<(), QueueError> {
    if name.is_empty() || name.chars().count() > MAX_QUEUE_NAME {
        Err(QueueError::Name)
    } else {
        Ok(())
    }
}

impl Queues {
    /// The caller joins the end of `name`'s line (the queue is made on first use).
    pub fn enter(&mut self, name: &str, w: Waiting) -> Result<QueueStatus, QueueError> {
        check_name(name)?;
        if self.waiting_in.contains_key(&w.call_id) || self.taken.contains_key(&w.call_id) {
            return Err(QueueError::AlreadyQueued);
        }
        let q = self
            .queues
            .entry(name.to_string())
            .or_insert_with(|| Queue {
                id: Uuid::new_v4(),
                ..Queue::default()
            });
        if q.line.len() >= MAX_QUEUE_SIZE {
            return Err(QueueError::Full);
        }
        let call_id = w.call_id;
        q.line.push_back(w);
        self.waiting_in.insert(call_id, name.to_string());
        Ok(self.status_of(name, call_id))
    }

    /// The call's queue figures now (position 0 when it is not waiting there).
    pub fn status_of(&self, name: &str, call_id: Uuid) -> QueueStatus {
        match self.queues.get(name) {
            Some(q) => QueueStatus {
                queue_id: q.id,
                position: q
                    .line
                    .iter()
                    .position(|w| w.call_id == call_id)
                    .map_or(0, |i| i + 1),
                size: q.line.len(),
                avg_time_secs: (q.served_wait_ms / q.served.max(1)) / 1000,
            },
            None => QueueStatus {
                queue_id: Uuid::nil(),
                position: 0,
                size: 0,
                avg_time_secs: 0,
            },
        }
    }

    /// An agent takes the longest-waiting caller of `name`.
    pub fn take(&mut self, name: &str, agent: Uuid, now_ms: u64) -> Option<Waiting> {
        let q = self.queues.get_mut(name)?;
        let w = q.line.pop_front()?;
        q.served += 1;
        q.served_wait_ms += now_ms.saturating_sub(w.since_ms);
        self.waiting_in.remove(&w.call_id);
        self.taken.insert(w.call_id, agent);
        Some(w)
    }

    /// The taken caller heard of its agent: nothing more to remember.
    pub fn settle(&mut self, call_id: Uuid) {
        self.taken.remove(&call_id);
    }

    /// The caller leaves (it timed out, hung up or its script moved on).
    pub fn leave(&mut self, call_id: Uuid) -> Left {
        if let Some(agent) = self.taken.remove(&call_id) {
            return Left::TakenBy(agent);
        }
        let Some(name) = self.waiting_in.remove(&call_id) else {
            return Left::Unknown;
        };
        if let Some(q) = self.queues.get_mut(&name) {
            q.line.retain(|w| w.call_id != call_id);
            if q.line.is_empty() && q.served == 0 {
                // Nobody was ever served: the queue leaves no trace.
                self.queues.remove(&name);
            }
        }
        Left::Waiting
    }

    /// Callers waiting in `name`.
    pub fn size(&self, name: &str) -> usize {
        self.queues.get(name).map_or(0, |q| q.line.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(n: u128, since_ms: u64) -> Waiting {
        Waiting {
            call_id: Uuid::from_u128(n),
            media_key: Uuid::from_u128(n),
            since_ms,
        }
    }

    #[test]
    fn the_longest_waiting_caller_is_taken_first() {
        let mut q = Queues::default();
        assert_eq!(
            q.enter("sales", w(1, 0)).map(|s| (s.position, s.size)),
            Ok((1, 1))
        );
        assert_eq!(
            q.enter("sales", w(2, 1_000)).map(|s| (s.position, s.size)),
            Ok((2, 2))
        );
        q.enter("support", w(3, 0)).unwrap();
        let agent = Uuid::from_u128(99);
        assert_eq!(
            q.take("sales", agent, 10_000).map(|w| w.call_id),
            Some(Uuid::from_u128(1))
        );
        let s = q.status_of("sales", Uuid::from_u128(2));
        assert_eq!((s.position, s.size, s.avg_time_secs), (1, 1, 10));
        assert_eq!(
            q.take("sales", agent, 13_000).map(|w| w.call_id),
            Some(Uuid::from_u128(2))
        );
        assert_eq!(q.status_of("sales", Uuid::nil()).avg_time_secs, 11);
        assert_eq!(q.take("sales", agent, 13_000), None);
        assert_eq!(q.size("support"), 1);
    }

    /// A caller that ends between being taken and being told finds its agent; one that left
    /// the line is gone from it; a second `enter` of a waiting call is refused.
    #[test]
    fn leaving_says_whether_an_agent_must_be_told() {
        let mut q = Queues::default();
        q.enter("q", w(1, 0)).unwrap();
        q.enter("q", w(2, 0)).unwrap();
        assert_eq!(q.enter("q", w(2, 0)), Err(QueueError::AlreadyQueued));
        let agent = Uuid::from_u128(7);
        q.take("q", agent, 5);
        assert_eq!(q.leave(Uuid::from_u128(1)), Left::TakenBy(agent));
        assert_eq!(q.leave(Uuid::from_u128(2)), Left::Waiting);
        assert_eq!(q.leave(Uuid::from_u128(2)), Left::Unknown);
        assert_eq!(q.size("q"), 0);
        q.enter("q", w(3, 0)).unwrap();
        q.take("q", agent, 5);
        q.settle(Uuid::from_u128(3));
        assert_eq!(q.leave(Uuid::from_u128(3)), Left::Unknown);
    }

    #[test]
    fn names_are_checked() {
        let mut q = Queues::default();
        assert_eq!(q.enter("", w(1, 0)), Err(QueueError::Name));
        assert_eq!(q.enter(&"x".repeat(129), w(1, 0)), Err(QueueError::Name));
        assert!(q.enter(&"é".repeat(128), w(1, 0)).is_ok());
    }
}
