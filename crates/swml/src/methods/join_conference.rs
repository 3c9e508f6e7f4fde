//! `join_conference` (swml.md §6.13): the call joins a named audio conference and stays until
//! the conference ends (a participant with `end_on_exit` left) — or the call does.

use serde_json::{json, Map, Value};

use super::set_var;
use crate::expr::stringify;
use crate::run::{Completion, Effect, Flow, Run, Waiting};

/// What a `join_conference` asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ConferencePlan {
    pub name: String,
    pub muted: bool,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    /// Heard (looped) until the conference starts; empty: a US ring.
    pub wait_audio: Vec<control::command::MediaItem>,
    pub max_participants: usize,
    /// Where `calling.conference` events go.
    pub status_callback: Option<String>,
    /// The call id of the participant this one coaches.
    pub coach: Option<String>,
    /// `beep`: the others hear a beep when this participant enters / leaves.
    pub beep_on_enter: bool,
    pub beep_on_exit: bool,
    /// `record: record-from-start`: the conference is recorded (one recording of the mix).
    pub record: bool,
}

pub(crate) fn run(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(&without_result(params));
    let plan = match &p {
        Value::Object(o) => plan(o),
        Value::String(name) => plan(&Map::from_iter([("name".to_string(), json!(name))])),
        _ => Err("parameters must be an object".into()),
    };
    match plan {
        Ok(plan) => Flow::Wait(
            Waiting::Conference {
                result: params.get("result").cloned(),
                room: false,
            },
            Some(Box::new(Effect::JoinConference(plan))),
        ),
        Err(e) => {
            run.warn(
                "relay_script_method_parameter_invalid_value",
                format!("join_conference: {e}"),
            );
            set_var(run, "join_conference_result", "failed");
            set_var(run, "return_value", "failed");
            Flow::Next
        }
    }
}

/// `join_room` (swml.md §6.14): SignalWire rooms are video; on this audio-only server a room
/// is an audio conference of its own namespace (`room:<name>`), started on entry, never ended
/// by one participant. `join_room_result` is `joined` (once the room ended) or `failed`.
pub(crate) fn run_room(run: &mut Run, params: &Value) -> Flow {
    let p = run.expand(params);
    let name = match &p {
        Value::Object(o) => o.get("name").map(stringify).unwrap_or_default(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let valid = !name.is_empty()
        && name.len() <= 120
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        run.warn(
            "relay_script_method_parameter_invalid_value",
            "join_room: `name` must be letters, digits, `_` and `-`",
        );
        set_var(run, "join_room_result", "failed");
        return Flow::Next;
    }
    let plan = ConferencePlan {
        name: format!("room:{name}"),
        muted: false,
        start_on_enter: true,
        end_on_exit: false,
        wait_audio: Vec::new(),
        max_participants: control::conference::MAX_PARTICIPANTS,
        status_callback: None,
        coach: None,
        beep_on_enter: false,
        beep_on_exit: false,
        record: false,
    };
    Flow::Wait(
        Waiting::Conference {
            result: None,
            room: true,
        },
        Some(Box::new(Effect::JoinConference(plan))),
    )
}

/// The hook runs later with the variables of then: not expanded now.
fn without_result(params: &Value) -> Value {
    let mut p = params.clone();
    if let Value::Object(o) = &mut p {
        o.remove("result");
    }
    p
}

fn flag(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => default,
    }
}

pub fn plan(o: &Map<String, Value>) -> Result<ConferencePlan, String> {
    let name = o.get("name").map(stringify).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 128 {
        return Err("`name` must be 1 to 128 characters".into());
    }
    if o.get("stream").is_some() {
        return Err("conference `stream` is not built on this server yet".into());
    }
    let max_participants = match o.get("max_participants") {
        None => control::conference::MAX_PARTICIPANTS,
        Some(v) => match stringify(v).trim().parse::<u64>() {
            Ok(n) if (2..=100_000).contains(&n) => n as usize,
            _ => return Err("max_participants must be 2 to 100000".into()),
        },
    };
    // Strings per the spec; booleans too (swml.md §6.13 [REC]).
    let (beep_on_enter, beep_on_exit) = match o.get("beep") {
        None => (true, true),
        Some(Value::Bool(b)) => (*b, *b),
        Some(Value::String(s)) => match s.as_str() {
            "true" => (true, true),
            "false" => (false, false),
            "onEnter" => (true, false),
            "onExit" => (false, true),
            _ => return Err("beep must be true, false, onEnter or onExit".into()),
        },
        Some(_) => return Err("beep must be true, false, onEnter or onExit".into()),
    };
    let record = match o.get("record").map(stringify).as_deref() {
        None | Some("do-not-record") => false,
        Some("record-from-start") => true,
        Some(_) => return Err("record must be do-not-record or record-from-start".into()),
    };
    let wait_audio = match o.get("wait_url").map(stringify).filter(|s| !s.is_empty()) {
        Some(url) => vec![super::play::parse_playable(&url).map_err(|e| format!("wait_url: {e}"))?],
        None => Vec::new(),
    };
    Ok(ConferencePlan {
        name,
        muted: flag(o.get("muted"), false),
        start_on_enter: flag(o.get("start_on_enter"), true),
        end_on_exit: flag(o.get("end_on_exit"), false),
        wait_audio,
        max_participants,
        status_callback: o
            .get("status_callback")
            .map(stringify)
            .filter(|s| !s.is_empty()),
        coach: o.get("coach").map(stringify).filter(|s| !s.is_empty()),
        beep_on_enter,
        beep_on_exit,
        record,
    })
}

/// The participant left: `join_conference_result`, `return_value`, then the `result` hook.
pub(crate) fn on_completion(
    run: &mut Run,
    result: Option<Value>,
    room: bool,
    completion: Completion,
) {
    let outcome = match completion {
        Completion::Conference(r) => r,
        _ => "failed".into(),
    };
    if room {
        let r = if outcome == "failed" {
            "failed"
        } else {
            "joined"
        };
        set_var(run, "join_room_result", r);
        return;
    }
    set_var(run, "join_conference_result", &outcome);
    set_var(run, "return_value", &outcome);
    if let Some(hook) = result {
        super::execute::enter_result_hook(run, hook, "join_conference_result");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parameters_and_their_defaults() {
        let p = plan(&o(
            json!({"name": "room", "muted": "true", "end_on_exit": true}),
        ))
        .unwrap();
        assert!(p.muted && p.end_on_exit && p.start_on_enter);
        assert_eq!(p.max_participants, control::conference::MAX_PARTICIPANTS);
        assert!(
            p.beep_on_enter && p.beep_on_exit && !p.record,
            "beep defaults to true"
        );
        for (beep, enter, exit) in [
            (json!("true"), true, true),
            (json!("false"), false, false),
            (json!(false), false, false),
            (json!(true), true, true),
            (json!("onEnter"), true, false),
            (json!("onExit"), false, true),
        ] {
            let p = plan(&o(json!({"name": "r", "beep": beep.clone()}))).unwrap();
            assert_eq!((p.beep_on_enter, p.beep_on_exit), (enter, exit), "{beep}");
        }
        let p = plan(&o(json!({"name": "r", "record": "record-from-start"}))).unwrap();
        assert!(p.record);
        let p = plan(&o(json!({"name": "r", "record": "do-not-record"}))).unwrap();
        assert!(!p.record);
        for bad in [
            json!({}),
            json!({"name": ""}),
            json!({"name": "x".repeat(129)}),
            json!({"name": "r", "max_participants": 1}),
            json!({"name": "r", "stream": {"url": "wss://x"}}),
            json!({"name": "r", "wait_url": "ftp://x"}),
            json!({"name": "r", "beep": "sometimes"}),
            json!({"name": "r", "beep": 1}),
            json!({"name": "r", "record": "record-later"}),
        ] {
            assert!(plan(&o(bad.clone())).is_err(), "{bad}");
        }
    }
}
