//! Conferences of a node (SWML `join_conference`): who is in which, whether it started, who
//! waits for the start. Pure; the audio is mixed in the media shards.

use std::collections::HashMap;

use uuid::Uuid;

/// Participants of one conference at most (swml.md §6.13 allows up to 100,000; one shard mixes
/// every participant of a conference).
pub const MAX_PARTICIPANTS: usize = 1_000;

#[derive(Debug, Default)]
struct Conference {
    id: Uuid,
    started: bool,
    /// In the order they joined.
    participants: Vec<Uuid>,
    max: usize,
}

/// What joining did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub conference_id: Uuid,
    /// The conference runs (this participant is mixed at once).
    pub started: bool,
    /// This participant started it: these were waiting and are mixed now.
    pub woken: Vec<Uuid>,
    /// This participant made the conference.
    pub created: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConferenceError {
    #[error("conference name must be 1 to 128 characters")]
    Name,
    #[error("the conference is full")]
    Full,
}

/// Every conference of a node, by name.
#[derive(Debug, Default)]
pub struct Conferences {
    by_name: HashMap<String, Conference>,
}

impl Conferences {
    /// `call_id` joins `name` (made on first use, capped at `max_participants`); it starts the
    /// conference when `start_on_enter`.
    pub fn join(
        &mut self,
        name: &str,
        call_id: Uuid,
        start_on_enter: bool,
        max_participants: usize,
    ) -> Result<Joined, ConferenceError> {
        if name.is_empty() || name.chars().count() > 128 {
            return Err(ConferenceError::Name);
        }
        let created = !self.by_name.contains_key(name);
        let c = self
            .by_name
            .entry(name.to_string())
            .or_insert_with(|| Conference {
                id: Uuid::new_v4(),
                max: max_participants.clamp(2, MAX_PARTICIPANTS),
                ..Conference::default()
            });
        if c.participants.len() >= c.max {
            return Err(ConferenceError::Full);
        }
        let mut woken = Vec::new();
        if start_on_enter && !c.started {
            c.started = true;
            woken.clone_from(&c.participants);
        }
        if !c.participants.contains(&call_id) {
            c.participants.push(call_id);
        }
        Ok(Joined {
            conference_id: c.id,
            started: c.started,
            woken,
            created,
        })
    }

    /// `call_id` leaves; with `end_on_exit` the conference ends for everyone (returned, to be
    /// told). The conference is gone once empty; `true` in the pair when it ended now.
    pub fn leave(&mut self, name: &str, call_id: Uuid, end_on_exit: bool) -> (Vec<Uuid>, bool) {
        let Some(c) = self.by_name.get_mut(name) else {
            return (Vec::new(), false);
        };
        c.participants.retain(|p| *p != call_id);
        if end_on_exit || c.participants.is_empty() {
            let rest = self
                .by_name
                .remove(name)
                .map(|c| c.participants)
                .unwrap_or_default();
            return (rest, true);
        }
        (Vec::new(), false)
    }

    /// Participants of `name` now.
    pub fn participants(&self, name: &str) -> Vec<Uuid> {
        self.by_name
            .get(name)
            .map(|c| c.participants.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn waiting_participants_are_woken_by_the_first_that_starts_it() {
        let mut c = Conferences::default();
        let a = c.join("room", id(1), false, 10).unwrap();
        assert!(a.created && !a.started);
        let b = c.join("room", id(2), false, 10).unwrap();
        assert!(!b.created && !b.started && b.conference_id == a.conference_id);
        let s = c.join("room", id(3), true, 10).unwrap();
        assert!(s.started);
        assert_eq!(s.woken, vec![id(1), id(2)]);
        assert!(c.join("room", id(4), false, 10).unwrap().started);
    }

    #[test]
    fn leaving_and_ending() {
        let mut c = Conferences::default();
        for n in 1..=3 {
            c.join("r", id(n), true, 10).unwrap();
        }
        assert_eq!(c.leave("r", id(1), false), (Vec::new(), false));
        assert_eq!(c.leave("r", id(2), true), (vec![id(3)], true));
        assert!(c.participants("r").is_empty());
        c.join("r", id(5), true, 2).unwrap();
        c.join("r", id(6), true, 2).unwrap();
        assert_eq!(c.join("r", id(7), true, 2), Err(ConferenceError::Full));
        assert_eq!(c.join("", id(7), true, 2), Err(ConferenceError::Name));
        c.leave("r", id(5), false);
        assert_eq!(
            c.leave("r", id(6), false),
            (Vec::new(), true),
            "the last one out ends it"
        );
    }
}
