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
    participants: Vec<Participant>,
    max: usize,
    /// Someone asked for `record-from-start`: where the recording's events go.
    record: Option<RecordRequest>,
    /// The recording, once it runs.
    recording: Option<Recording>,
}

/// A participant as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Participant {
    pub call_id: Uuid,
    pub muted: bool,
    /// The call id of the participant it coaches.
    pub coach: Option<Uuid>,
}

/// A recording asked for by a participant (`record: record-from-start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRequest {
    /// The asking participant's call.
    pub call_id: Uuid,
    /// Its `status_callback`: where `record-start`/`record-stop` go.
    pub status_callback: Option<String>,
}

/// A conference's running recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub rec_id: Uuid,
    pub request: RecordRequest,
}

/// One conference as the operator sees it (`GET /api/calling/conferences`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConferenceInfo {
    pub id: Uuid,
    pub name: String,
    pub started: bool,
    /// The id of its recording while it is recorded.
    pub recording_id: Option<Uuid>,
    pub participants: Vec<Participant>,
}

/// Who joins, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub call_id: Uuid,
    pub start_on_enter: bool,
    pub max_participants: usize,
    pub muted: bool,
    pub coach: Option<Uuid>,
    /// `record-from-start` (with where its events go).
    pub record: Option<RecordRequest>,
}

impl Entry {
    /// A plain participant: starts the conference, unmuted, not recording.
    pub fn new(call_id: Uuid) -> Entry {
        Entry {
            call_id,
            start_on_enter: true,
            max_participants: MAX_PARTICIPANTS,
            muted: false,
            coach: None,
            record: None,
        }
    }
}

/// What joining did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub conference_id: Uuid,
    /// The conference runs (this participant is mixed at once).
    pub started: bool,
    /// This participant started it now.
    pub started_now: bool,
    /// This participant started it: these were waiting and are mixed now.
    pub woken: Vec<Uuid>,
    /// This participant made the conference.
    pub created: bool,
    /// The conference is to be recorded from now: this participant starts the recording.
    pub record: Option<Recording>,
}

/// What leaving did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Left {
    /// The conference ended now (`end_on_exit`, or the last one left).
    pub ended: bool,
    /// Those still in it when it ended, to be told.
    pub rest: Vec<Uuid>,
    /// Its recording, to be stopped, when it ended.
    pub recording: Option<Recording>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConferenceError {
    #[error("conference name must be 1 to 128 characters")]
    Name,
    #[error("the conference is full")]
    Full,
    /// No such conference, or no such participant in it.
    #[error("no such conference or participant")]
    NotFound,
}

/// Every conference of a node, by name.
#[derive(Debug, Default)]
pub struct Conferences {
    by_name: HashMap<String, Conference>,
}

impl Conferences {
    /// A participant joins `name` (made on first use, capped at its `max_participants`); it
    /// starts the conference when `start_on_enter`. A conference is recorded from when it
    /// runs with a participant that asked for it (whoever's join makes that true starts it).
    pub fn join(&mut self, name: &str, entry: Entry) -> Result<Joined, ConferenceError> {
        if name.is_empty() || name.chars().count() > 128 {
            return Err(ConferenceError::Name);
        }
        let created = !self.by_name.contains_key(name);
        let c = self
            .by_name
            .entry(name.to_string())
            .or_insert_with(|| Conference {
                id: Uuid::new_v4(),
                max: entry.max_participants.clamp(2, MAX_PARTICIPANTS),
                ..Conference::default()
            });
        if c.participants.len() >= c.max {
            return Err(ConferenceError::Full);
        }
        let mut woken = Vec::new();
        let started_now = entry.start_on_enter && !c.started;
        if started_now {
            c.started = true;
            woken = c.participants.iter().map(|p| p.call_id).collect();
        }
        if !c.participants.iter().any(|p| p.call_id == entry.call_id) {
            c.participants.push(Participant {
                call_id: entry.call_id,
                muted: entry.muted,
                coach: entry.coach,
            });
        }
        if c.record.is_none() {
            c.record = entry.record;
        }
        let mut record = None;
        if let (true, None, Some(request)) = (c.started, &c.recording, &c.record) {
            let r = Recording {
                rec_id: Uuid::new_v4(),
                request: request.clone(),
            };
            c.recording = Some(r.clone());
            record = Some(r);
        }
        Ok(Joined {
            conference_id: c.id,
            started: c.started,
            started_now,
            woken,
            created,
            record,
        })
    }

    /// `call_id` leaves; with `end_on_exit` the conference ends for everyone (returned, to be
    /// told). The conference is gone once empty.
    pub fn leave(&mut self, name: &str, call_id: Uuid, end_on_exit: bool) -> Left {
        let Some(c) = self.by_name.get_mut(name) else {
            return Left::default();
        };
        c.participants.retain(|p| p.call_id != call_id);
        if end_on_exit || c.participants.is_empty() {
            let Some(c) = self.by_name.remove(name) else {
                return Left::default();
            };
            return Left {
                ended: true,
                rest: c.participants.iter().map(|p| p.call_id).collect(),
                recording: c.recording,
            };
        }
        Left::default()
    }

    /// The recording `rec_id` of `name` never started (its starter's media could not join):
    /// forgotten, so the next participant to join starts it.
    pub fn recording_not_started(&mut self, name: &str, rec_id: Uuid) {
        if let Some(c) = self.by_name.get_mut(name) {
            if c.recording.as_ref().is_some_and(|r| r.rec_id == rec_id) {
                c.recording = None;
            }
        }
    }

    /// Participants of `name` now.
    pub fn participants(&self, name: &str) -> Vec<Uuid> {
        self.by_name
            .get(name)
            .map(|c| c.participants.iter().map(|p| p.call_id).collect())
            .unwrap_or_default()
    }

    /// Every conference with its participants, by name.
    pub fn list(&self) -> Vec<ConferenceInfo> {
        let mut all: Vec<ConferenceInfo> = self
            .by_name
            .iter()
            .map(|(name, c)| ConferenceInfo {
                id: c.id,
                name: name.clone(),
                started: c.started,
                recording_id: c.recording.as_ref().map(|r| r.rec_id),
                participants: c.participants.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The participant `call_id` of the conference `conference_id` (operator requests name the
    /// conference by its id).
    fn participant_mut(
        &mut self,
        conference_id: Uuid,
        call_id: Uuid,
    ) -> Result<&mut Participant, ConferenceError> {
        self.by_name
            .values_mut()
            .find(|c| c.id == conference_id)
            .and_then(|c| c.participants.iter_mut().find(|p| p.call_id == call_id))
            .ok_or(ConferenceError::NotFound)
    }

    /// Mutes or unmutes a participant (the registry's view; its call applies it to the mix).
    pub fn set_muted(
        &mut self,
        conference_id: Uuid,
        call_id: Uuid,
        muted: bool,
    ) -> Result<Participant, ConferenceError> {
        let p = self.participant_mut(conference_id, call_id)?;
        p.muted = muted;
        Ok(p.clone())
    }

    /// Whether `call_id` takes part in `conference_id` (an operator's kick names both).
    pub fn contains(&self, conference_id: Uuid, call_id: Uuid) -> bool {
        self.by_name
            .values()
            .any(|c| c.id == conference_id && c.participants.iter().any(|p| p.call_id == call_id))
    }

    /// The name of the conference `conference_id`.
    pub fn name_of(&self, conference_id: Uuid) -> Option<&str> {
        self.by_name
            .iter()
            .find(|(_, c)| c.id == conference_id)
            .map(|(name, _)| name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn entry(n: u128, start_on_enter: bool, max_participants: usize) -> Entry {
        Entry {
            start_on_enter,
            max_participants,
            ..Entry::new(id(n))
        }
    }

    #[test]
    fn waiting_participants_are_woken_by_the_first_that_starts_it() {
        let mut c = Conferences::default();
        let a = c.join("room", entry(1, false, 10)).unwrap();
        assert!(a.created && !a.started && !a.started_now);
        let b = c.join("room", entry(2, false, 10)).unwrap();
        assert!(!b.created && !b.started && b.conference_id == a.conference_id);
        let s = c.join("room", entry(3, true, 10)).unwrap();
        assert!(s.started && s.started_now);
        assert_eq!(s.woken, vec![id(1), id(2)]);
        let late = c.join("room", entry(4, true, 10)).unwrap();
        assert!(late.started && !late.started_now && late.woken.is_empty());
    }

    #[test]
    fn a_recording_starts_once_when_it_runs_with_someone_who_asked() {
        let mut c = Conferences::default();
        let ask = |n: u128, start: bool| Entry {
            start_on_enter: start,
            record: Some(RecordRequest {
                call_id: id(n),
                status_callback: Some(format!("http://h/{n}")),
            }),
            ..Entry::new(id(n))
        };
        // Asked while waiting: it starts with the conference, whoever starts it.
        assert_eq!(c.join("r", ask(1, false)).unwrap().record, None);
        let started = c.join("r", entry(2, true, 10)).unwrap();
        let rec = started.record.clone().unwrap();
        assert_eq!(rec.request.call_id, id(1));
        assert_eq!(rec.request.status_callback.as_deref(), Some("http://h/1"));
        // Only once.
        assert_eq!(c.join("r", ask(3, true)).unwrap().record, None);
        assert_eq!(c.list()[0].recording_id, Some(rec.rec_id));
        // It is handed back when the conference ends.
        c.leave("r", id(1), false);
        c.leave("r", id(2), false);
        let left = c.leave("r", id(3), false);
        assert!(left.ended && left.rest.is_empty());
        assert_eq!(left.recording, Some(rec));
        // One that never started is handed to the next to join.
        c.join("s", ask(1, true)).unwrap();
        let first = c.list()[0].recording_id.unwrap();
        c.recording_not_started("s", first);
        assert_eq!(c.list()[0].recording_id, None);
        let next = c.join("s", entry(2, true, 10)).unwrap().record.unwrap();
        assert_ne!(next.rec_id, first);
        c.leave("s", id(1), false);
        c.leave("s", id(2), false);
        // Not asked: never recorded; asked later in a running one: from then on.
        c.join("q", entry(1, true, 10)).unwrap();
        assert_eq!(c.list()[0].recording_id, None);
        assert!(c.join("q", ask(2, true)).unwrap().record.is_some());
    }

    #[test]
    fn the_operator_lists_mutes_and_finds_participants() {
        let mut c = Conferences::default();
        c.join("b", entry(1, true, 10)).unwrap();
        let j = c
            .join(
                "b",
                Entry {
                    muted: true,
                    coach: Some(id(1)),
                    ..Entry::new(id(2))
                },
            )
            .unwrap();
        c.join("a", entry(3, false, 10)).unwrap();
        let all = c.list();
        assert_eq!(
            all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(!all[0].started && all[1].started);
        assert_eq!(
            all[1].participants,
            vec![
                Participant {
                    call_id: id(1),
                    muted: false,
                    coach: None
                },
                Participant {
                    call_id: id(2),
                    muted: true,
                    coach: Some(id(1))
                },
            ]
        );
        let conf = j.conference_id;
        assert!(!c.set_muted(conf, id(2), false).unwrap().muted);
        assert!(c.set_muted(conf, id(1), true).unwrap().muted);
        assert!(c.list()[1].participants[0].muted);
        assert_eq!(
            c.set_muted(conf, id(3), true),
            Err(ConferenceError::NotFound),
            "in another conference"
        );
        assert_eq!(
            c.set_muted(id(99), id(1), true),
            Err(ConferenceError::NotFound)
        );
        assert!(c.contains(conf, id(1)) && !c.contains(conf, id(3)));
    }

    #[test]
    fn leaving_and_ending() {
        let mut c = Conferences::default();
        for n in 1..=3 {
            c.join("r", entry(n, true, 10)).unwrap();
        }
        assert_eq!(c.leave("r", id(1), false), Left::default());
        let left = c.leave("r", id(2), true);
        assert_eq!((left.rest, left.ended), (vec![id(3)], true));
        assert!(c.participants("r").is_empty());
        c.join("r", entry(5, true, 2)).unwrap();
        c.join("r", entry(6, true, 2)).unwrap();
        assert_eq!(c.join("r", entry(7, true, 2)), Err(ConferenceError::Full));
        assert_eq!(c.join("", entry(7, true, 2)), Err(ConferenceError::Name));
        c.leave("r", id(5), false);
        let left = c.leave("r", id(6), false);
        assert!(
            left.ended && left.rest.is_empty(),
            "the last one out ends it"
        );
    }
}
