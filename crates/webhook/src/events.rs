//! Payloads of call webhooks (`calling.call.state`, `calling.call.user_event`, the envelope
//! every event has) and of the SWML fetch request (calling-events.md §1–§3).

use serde_json::{json, Map, Value};
use uuid::Uuid;

use control::session::{CallEvent, ForkInfo, ForkSpec, ForkState, RecordState};
use control::{Direction, EndReason, LegType};

/// What every event about one call needs to say who it is.
#[derive(Debug, Clone)]
pub struct CallIdentity {
    pub call_id: Uuid,
    pub project_id: Uuid,
    pub space_id: Uuid,
    pub node_id: Uuid,
    pub segment_id: Uuid,
    /// `swml:<uuid>` (ambiguity register A29).
    pub event_channel: String,
    pub direction: Direction,
    pub leg_type: LegType,
    pub from: String,
    pub to: String,
    /// What made the call (`created_by`, ambiguity register A19).
    pub created_by: CreatedBy,
    /// The call a child leg belongs to (`parent`).
    pub parent: Option<ParentLeg>,
}

/// `created_by` of `calling.call.state` (calling-events.md §3, RELAY's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedBy {
    /// A REST `dial`.
    Dial,
    /// A child leg made to be connected to its parent call: the far leg of a
    /// `calling.transfer` to an address, the script end of a `dial` with `to_script`.
    Connect,
    /// An inbound call.
    Receive,
}

impl CreatedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            CreatedBy::Dial => "dial",
            CreatedBy::Connect => "connect",
            CreatedBy::Receive => "receive",
        }
    }

    /// What made a call, from what is stored about it: inbound calls were received, child
    /// legs connected, the rest dialled.
    pub fn of(direction: Direction, has_parent: bool) -> CreatedBy {
        match (direction, has_parent) {
            (Direction::Inbound, _) => CreatedBy::Receive,
            (_, true) => CreatedBy::Connect,
            _ => CreatedBy::Dial,
        }
    }
}

/// `parent` of a child leg's `calling.call.state`: `{device_type, call_id, node_id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentLeg {
    pub call_id: Uuid,
    pub node_id: Uuid,
    /// The parent's device type (`sip`, `phone`); left out when not known.
    pub device_type: Option<&'static str>,
}

/// Call times in ms since the Unix epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallTimes {
    pub start_ms: u64,
    pub answer_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

impl CallIdentity {
    /// The identity of a stored call.
    pub fn of_record(r: &store::CallRecord, space_id: Uuid) -> CallIdentity {
        let direction = r.direction();
        CallIdentity {
            call_id: r.id,
            project_id: r.project_id,
            space_id,
            node_id: r.node_id,
            segment_id: r.segment_id,
            event_channel: r.event_channel.clone(),
            direction,
            leg_type: r.leg_type(),
            from: r.from.clone(),
            to: r.to.clone(),
            created_by: CreatedBy::of(direction, r.parent_id.is_some()),
            parent: r.parent_id.map(|call_id| ParentLeg {
                call_id,
                node_id: r.node_id,
                device_type: None,
            }),
        }
    }

    /// This call as a child leg of `parent` (same node), made to be connected to it.
    pub fn child_of(self, parent: Uuid, device_type: Option<&'static str>) -> CallIdentity {
        let node_id = self.node_id;
        CallIdentity {
            created_by: CreatedBy::Connect,
            parent: Some(ParentLeg {
                call_id: parent,
                node_id,
                device_type,
            }),
            ..self
        }
    }

    /// The `device` object: `phone` with numbers, `sip` with URIs.
    pub fn device(&self) -> Value {
        match self.leg_type {
            LegType::RelayPstnCall => json!({
                "type": "phone",
                "params": { "from_number": self.from, "to_number": self.to }
            }),
            LegType::RelaySipCall => json!({
                "type": "sip",
                "params": { "from": self.from, "to": self.to }
            }),
            LegType::RelayWebrtcCall => json!({
                "type": "webrtc",
                "params": { "from": self.from, "to": self.to }
            }),
        }
    }

    /// The standard envelope around `params` (calling-events.md §1.1).
    pub fn envelope(&self, event_type: &str, timestamp_ms: u64, params: Value) -> Value {
        json!({
            "event_type": event_type,
            "event_channel": self.event_channel,
            "timestamp": timestamp_ms as f64 / 1000.0,
            "project_id": self.project_id,
            "space_id": self.space_id,
            "params": params,
        })
    }

    /// A `calling.call.state` event.
    pub fn state_event(
        &self,
        call_state: &str,
        end_reason: Option<EndReason>,
        times: CallTimes,
        now_ms: u64,
    ) -> Value {
        let mut params = Map::new();
        params.insert("call_id".into(), json!(self.call_id));
        params.insert("node_id".into(), json!(self.node_id));
        params.insert("segment_id".into(), json!(self.segment_id));
        params.insert("call_state".into(), json!(call_state));
        params.insert("direction".into(), json!(self.direction.webhook_str()));
        params.insert("device".into(), self.device());
        params.insert(
            "end_reason".into(),
            json!(end_reason.map(EndReason::as_str)),
        );
        params.insert("created_by".into(), json!(self.created_by.as_str()));
        if let Some(p) = &self.parent {
            let mut parent = Map::new();
            if let Some(t) = p.device_type {
                parent.insert("device_type".into(), json!(t));
            }
            parent.insert("call_id".into(), json!(p.call_id));
            parent.insert("node_id".into(), json!(p.node_id));
            params.insert("parent".into(), Value::Object(parent));
        }
        params.insert("start_time".into(), json!(times.start_ms));
        if let Some(a) = times.answer_ms {
            params.insert("answer_time".into(), json!(a));
        }
        if let Some(e) = times.end_ms {
            params.insert("end_time".into(), json!(e));
        }
        self.envelope("calling.call.state", now_ms, Value::Object(params))
    }

    /// A `calling.call.refer` (calling-events.md §11): the REFER's outcome, its target, and
    /// the codes as strings when they came (the answer to the REFER, the NOTIFYs' last status).
    pub fn refer_event(
        &self,
        refer_to: &str,
        success: bool,
        response_code: Option<u16>,
        notify_code: Option<u16>,
        now_ms: u64,
    ) -> Value {
        let mut params = Map::new();
        params.insert("call_id".into(), json!(self.call_id));
        params.insert("node_id".into(), json!(self.node_id));
        params.insert("segment_id".into(), json!(self.segment_id));
        params.insert("sip_refer_to".into(), json!(refer_to));
        params.insert(
            "state".into(),
            json!(if success { "success" } else { "failed" }),
        );
        if let Some(c) = response_code {
            params.insert("sip_refer_response_code".into(), json!(c.to_string()));
        }
        if let Some(c) = notify_code {
            params.insert("sip_notify_response_code".into(), json!(c.to_string()));
        }
        self.envelope("calling.call.refer", now_ms, Value::Object(params))
    }

    /// A `calling.call.user_event` (SWML `user_event`, REST `calling.user_event`): the event
    /// object as given, with the call's identity (docs/call-lifecycle.md "User events").
    pub fn user_event(&self, event: Value, now_ms: u64) -> Value {
        self.envelope(
            "calling.call.user_event",
            now_ms,
            json!({
                "call_id": self.call_id,
                "node_id": self.node_id,
                "segment_id": self.segment_id,
                "event": event,
            }),
        )
    }

    /// The `call` object of a SWML fetch request.
    pub fn fetch_call_object(&self, call_state: &str, sip_to_uri: Option<&str>) -> Value {
        let mut call = Map::new();
        call.insert("call_id".into(), json!(self.call_id));
        call.insert("node_id".into(), json!(self.node_id));
        call.insert("segment_id".into(), json!(self.segment_id));
        call.insert("call_state".into(), json!(call_state));
        call.insert("direction".into(), json!(self.direction.webhook_str()));
        call.insert("type".into(), json!(self.leg_type.device_type()));
        call.insert("from".into(), json!(self.from));
        call.insert("to".into(), json!(self.to));
        call.insert("headers".into(), json!([]));
        call.insert("project_id".into(), json!(self.project_id));
        call.insert("space_id".into(), json!(self.space_id));
        match self.leg_type {
            LegType::RelayPstnCall => {
                call.insert("from_number".into(), json!(self.from));
                call.insert("to_number".into(), json!(self.to));
            }
            LegType::RelaySipCall => {
                call.insert(
                    "sip_data".into(),
                    sip_data(&self.from, sip_to_uri.unwrap_or(&self.to)),
                );
            }
            LegType::RelayWebrtcCall => {}
        }
        Value::Object(call)
    }
}

/// How a recording ended, for the `params` of its final `calling.call.record` event.
#[derive(Debug, Clone)]
pub struct RecordEnd<'a> {
    pub call_id: Uuid,
    pub node_id: Uuid,
    pub control_id: &'a str,
    /// `finished`, `no_input` or `error`.
    pub state: &'a str,
    pub recording_id: Uuid,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The recording's `record.audio` settings as reported at start.
    pub audio: &'a Value,
    pub url: &'a str,
    pub format: &'a str,
    pub duration_ms: u64,
    pub size_bytes: u64,
    /// The file holds audio that can be served.
    pub playable: bool,
}

/// The `params` of a recording's final `calling.call.record` event (calling-events.md §5):
/// where and how long it is, unless it failed with nothing playable.
pub fn record_end_params(r: &RecordEnd) -> Value {
    let duration = r.duration_ms as f64 / 1000.0;
    let mut params = json!({
        "call_id": r.call_id,
        "node_id": r.node_id,
        "control_id": r.control_id,
        "state": r.state,
        "recording_id": r.recording_id,
        "start_time": r.start_ms as f64 / 1000.0,
        "end_time": r.end_ms as f64 / 1000.0,
        "record": { "audio": r.audio },
    });
    // On error the audio that reached the file before the failure is still served.
    if r.state != "error" || r.playable {
        params["url"] = json!(r.url);
        params["duration"] = json!(duration);
        params["size"] = json!(r.size_bytes);
        params["record"]["url"] = json!(r.url);
        params["record"]["duration"] = json!(duration);
        params["record"]["size"] = json!(r.size_bytes);
        params["record"]["format"] = json!(r.format);
    }
    params
}

/// `sip_data` for the fetch payload: every key is required inside the object.
fn sip_data(from: &str, to: &str) -> Value {
    let (from_user, from_host) = user_host(from);
    let (to_user, to_host) = user_host(to);
    json!({
        "sip_req_host": to_host, "sip_req_uri": to, "sip_req_user": to_user,
        "sip_from_host": from_host, "sip_from_uri": from, "sip_from_user": from_user,
        "sip_to_host": to_host, "sip_to_uri": to, "sip_to_user": to_user,
        "sip_contact_user": to_user, "sip_contact_port": "", "sip_contact_uri": to,
        "sip_contact_host": to_host, "sip_contact_params": {},
    })
}

fn user_host(uri: &str) -> (String, String) {
    let bare = uri
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .split(';')
        .next()
        .unwrap_or("");
    match bare.split_once('@') {
        Some((u, h)) => (u.to_string(), h.to_string()),
        None => (String::new(), bare.to_string()),
    }
}

/// The webhook of an operation's event (`calling.call.play`, `.collect`, `.record`,
/// `.detect`: calling-events.md §4–§7): its event name, the operation's `status_url` and the
/// `params` without the call's ids. `record_audio` is the recording's `record.audio` object.
/// None for events that are no webhook (a key press).
pub fn operation_event(
    event: CallEvent,
    record_audio: Option<&Value>,
) -> Option<(&'static str, Option<String>, Value)> {
    Some(match event {
        CallEvent::Play {
            control_id,
            status_url,
            state,
        } => (
            "calling.call.play",
            status_url,
            json!({ "control_id": control_id, "state": state.as_str() }),
        ),
        CallEvent::Collect {
            control_id,
            status_url,
            result,
            is_final,
            state,
        } => {
            let mut params = json!({ "control_id": control_id, "result": result.to_json() });
            if let Some(f) = is_final {
                params["final"] = json!(f);
            }
            if let Some(state) = state {
                params["state"] = json!(state);
            }
            ("calling.call.collect", status_url, params)
        }
        CallEvent::Record {
            control_id,
            status_url,
            state,
        } => {
            let audio = record_audio.cloned().unwrap_or(Value::Null);
            let mut params = json!({ "control_id": control_id, "record": { "audio": audio } });
            match state {
                RecordState::Recording => params["state"] = json!("recording"),
                RecordState::Paused(behavior) => {
                    params["state"] = json!("paused");
                    params["pause_behavior"] = json!(behavior.as_str());
                }
            }
            ("calling.call.record", status_url, params)
        }
        CallEvent::Detect {
            control_id,
            status_url,
            outcome,
        } => (
            "calling.call.detect",
            status_url,
            json!({ "control_id": control_id, "detect": outcome.to_json() }),
        ),
        CallEvent::Dtmf { .. } => return None,
        CallEvent::Fork { spec, state, info } => fork_event(*spec, state, info.as_ref()),
        CallEvent::Fax {
            control_id,
            status_url,
            direction,
            progress,
        } => (
            "calling.call.fax",
            status_url,
            json!({ "control_id": control_id, "fax": fax_json(direction, &progress) }),
        ),
    })
}

/// The `fax` object of `calling.call.fax` (calling-events.md §13).
pub fn fax_json(
    direction: control::command::FaxDirection,
    progress: &control::session::FaxProgress,
) -> Value {
    use control::session::FaxProgress;
    match progress {
        FaxProgress::Page { number } => json!({
            "type": "page",
            "params": { "direction": direction.as_str(), "number": number },
        }),
        FaxProgress::Finished(r) => json!({
            "type": "finished",
            "params": {
                "direction": direction.as_str(),
                "identity": r.identity,
                "remote_identity": r.remote_identity,
                "document": r.document,
                "pages": r.pages,
                "success": r.success,
                "result": r.result_code,
                "result_text": r.result_text,
                "format": "pdf",
            },
        }),
    }
}

/// `calling.call.tap` (calling-events.md §8) or `calling.call.stream` (§9.1); the caller adds
/// `call_id`, `node_id` and `segment_id`.
fn fork_event(
    spec: ForkSpec,
    state: ForkState,
    info: Option<&ForkInfo>,
) -> (&'static str, Option<String>, Value) {
    let finished = matches!(state, ForkState::Finished { .. });
    match spec {
        ForkSpec::Tap(t) => {
            let mut device = serde_json::to_value(&t.device).unwrap_or(Value::Null);
            // The echo carries what was negotiated.
            if let (Some(info), Some(params)) = (info, device.get_mut("params")) {
                params["codec"] = json!(info.codec);
                if matches!(t.device, control::command::TapDevice::Rtp { .. }) {
                    params["ptime"] = json!(info.ptime);
                } else {
                    params["rate"] = json!(info.rate);
                }
            }
            let params = json!({
                "control_id": t.control_id,
                "state": if finished { "finished" } else { "tapping" },
                "tap": serde_json::to_value(&t.tap).unwrap_or(Value::Null),
                "device": device,
            });
            ("calling.call.tap", t.status_url, params)
        }
        ForkSpec::Stream(s) => {
            let mut params = json!({
                "control_id": s.control_id,
                "state": if finished { "finished" } else { "streaming" },
                "url": s.url,
            });
            if let Some(name) = s.name {
                params["name"] = json!(name);
            }
            ("calling.call.stream", s.status_url, params)
        }
    }
}

/// Who a transcript is about.
#[derive(Debug, Clone, Copy)]
pub struct TranscriptIds {
    pub id: Uuid,
    pub project_id: Uuid,
    pub space_id: Uuid,
    pub call_id: Uuid,
    pub segment_id: Uuid,
}

/// `calling.transcript.completed` / `calling.transcript.failed` (calling-events.md §9.2): no
/// `event_channel`, a closed `params`; `text` only when there is some (never on `failed`).
pub fn transcript_event(
    event_type: &str,
    ids: TranscriptIds,
    text: Option<&str>,
    timestamp_ms: u64,
) -> Value {
    let mut params = json!({
        "id": ids.id,
        "call_id": ids.call_id,
        "segment_id": ids.segment_id,
    });
    if let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) {
        params["text"] = json!(t);
    }
    json!({
        "event_type": event_type,
        "timestamp": timestamp_ms as f64 / 1000.0,
        "project_id": ids.project_id,
        "space_id": ids.space_id,
        "params": params,
    })
}

/// A webhook sent with GET (a stream's `status_url_method: GET`, ambiguity register A12): the
/// event's top-level scalars and its `params` scalars as the query of `url`.
pub fn get_url(url: &str, event: &Value) -> Option<String> {
    let mut parsed = reqwest::Url::parse(url).ok()?;
    {
        let mut q = parsed.query_pairs_mut();
        let scalars = |v: &Value| -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        };
        if let Value::Object(top) = event {
            for (k, v) in top {
                if let Some(text) = scalars(v) {
                    q.append_pair(k, &text);
                }
            }
        }
        if let Some(Value::Object(params)) = event.get("params") {
            for (k, v) in params {
                if let Some(text) = scalars(v) {
                    q.append_pair(k, &text);
                }
            }
        }
    }
    Some(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(leg_type: LegType) -> CallIdentity {
        CallIdentity {
            call_id: Uuid::new_v4(),
            project_id: Uuid::new_v4(),
            space_id: Uuid::new_v4(),
            node_id: Uuid::new_v4(),
            segment_id: Uuid::new_v4(),
            event_channel: "swml:x".into(),
            direction: Direction::OutboundApi,
            leg_type,
            from: "+15105550100".into(),
            to: "sip:alice@127.0.0.1:5099".into(),
            created_by: CreatedBy::Dial,
            parent: None,
        }
    }

    #[test]
    fn user_event_shape() {
        let id = ident(LegType::RelaySipCall);
        let ev = id.user_event(json!({"stage": "menu", "n": 2}), 1_500);
        assert_eq!(ev["event_type"], "calling.call.user_event");
        assert_eq!(ev["event_channel"], "swml:x");
        assert_eq!(ev["timestamp"], 1.5);
        assert_eq!(ev["params"]["call_id"], json!(id.call_id));
        assert_eq!(ev["params"]["node_id"], json!(id.node_id));
        assert_eq!(ev["params"]["segment_id"], json!(id.segment_id));
        assert_eq!(ev["params"]["event"], json!({"stage": "menu", "n": 2}));
    }

    #[test]
    fn refer_event_shape() {
        let id = ident(LegType::RelaySipCall);
        let ev = id.refer_event("sip:b@pbx", true, Some(202), Some(200), 2_000);
        assert_eq!(ev["event_type"], "calling.call.refer");
        let p = &ev["params"];
        assert_eq!(p["call_id"], json!(id.call_id));
        assert_eq!(p["sip_refer_to"], "sip:b@pbx");
        assert_eq!(p["state"], "success");
        assert_eq!(p["sip_refer_response_code"], "202");
        assert_eq!(p["sip_notify_response_code"], "200");
        let refused = id.refer_event("sip:b@pbx", false, Some(603), None, 2_000);
        assert_eq!(refused["params"]["state"], "failed");
        assert!(refused["params"].get("sip_notify_response_code").is_none());
    }

    #[test]
    fn created_by_and_parent() {
        let id = ident(LegType::RelaySipCall);
        let ev = id.state_event("ringing", None, CallTimes::default(), 1);
        assert_eq!(ev["params"]["created_by"], "dial");
        assert!(ev["params"].get("parent").is_none());
        let inbound = CallIdentity {
            direction: Direction::Inbound,
            created_by: CreatedBy::of(Direction::Inbound, false),
            ..ident(LegType::RelayPstnCall)
        };
        let ev = inbound.state_event("ringing", None, CallTimes::default(), 1);
        assert_eq!(ev["params"]["created_by"], "receive");
        assert_eq!(ev["params"]["direction"], "inbound");
        let parent = Uuid::new_v4();
        let child = CallIdentity {
            direction: Direction::Outbound,
            created_by: CreatedBy::of(Direction::Outbound, true),
            parent: Some(ParentLeg {
                call_id: parent,
                node_id: id.node_id,
                device_type: Some("phone"),
            }),
            ..ident(LegType::RelaySipCall)
        };
        let ev = child.state_event("answered", None, CallTimes::default(), 1);
        assert_eq!(ev["params"]["created_by"], "connect");
        assert_eq!(
            ev["params"]["parent"],
            json!({"device_type": "phone", "call_id": parent, "node_id": id.node_id})
        );
        assert_eq!(
            CreatedBy::of(Direction::OutboundApi, false),
            CreatedBy::Dial
        );
    }

    #[test]
    fn state_event_shape() {
        let id = ident(LegType::RelaySipCall);
        let times = CallTimes {
            start_ms: 1000,
            answer_ms: Some(2000),
            end_ms: None,
        };
        let ev = id.state_event("answered", None, times, 2500);
        assert_eq!(ev["event_type"], "calling.call.state");
        assert_eq!(ev["timestamp"], 2.5);
        assert_eq!(ev["params"]["direction"], "outbound");
        assert_eq!(ev["params"]["device"]["type"], "sip");
        assert!(ev["params"]["end_reason"].is_null());
        assert_eq!(ev["params"]["answer_time"], 2000);
        assert!(ev["params"].get("end_time").is_none());
        let ended = id.state_event("ended", Some(EndReason::NoAnswer), times, 3000);
        assert_eq!(ended["params"]["end_reason"], "noAnswer");
    }

    #[test]
    fn record_end_params_shape() {
        let audio = json!({"format": "mp3", "direction": "both", "stereo": false});
        let (call_id, node_id, rec) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let end = RecordEnd {
            call_id,
            node_id,
            control_id: "c1",
            state: "finished",
            recording_id: rec,
            start_ms: 1_000,
            end_ms: 3_500,
            audio: &audio,
            url: "http://h/api/calling/recordings/r.mp3",
            format: "mp3",
            duration_ms: 2_500,
            size_bytes: 4_000,
            playable: true,
        };
        let p = record_end_params(&end);
        assert_eq!(p["state"], "finished");
        assert_eq!(p["start_time"], 1.0);
        assert_eq!(p["end_time"], 3.5);
        assert_eq!(p["duration"], 2.5);
        assert_eq!(p["record"]["size"], 4000);
        assert_eq!(p["record"]["format"], "mp3");
        assert_eq!(p["record"]["audio"], audio);
        assert_eq!(p["url"], p["record"]["url"]);
        // A failure with nothing playable reports no file.
        let failed = record_end_params(&RecordEnd {
            state: "error",
            playable: false,
            ..end.clone()
        });
        assert!(failed.get("url").is_none());
        assert!(failed["record"].get("duration").is_none());
        let partial = record_end_params(&RecordEnd {
            state: "error",
            ..end
        });
        assert_eq!(partial["duration"], 2.5);
    }

    #[test]
    fn fetch_call_object_shapes() {
        let sip = ident(LegType::RelaySipCall).fetch_call_object("answered", None);
        assert_eq!(sip["type"], "sip");
        assert_eq!(sip["sip_data"]["sip_to_user"], "alice");
        assert_eq!(sip["sip_data"]["sip_to_host"], "127.0.0.1:5099");
        let mut p = ident(LegType::RelayPstnCall);
        p.to = "+14155550199".into();
        let phone = p.fetch_call_object("answered", None);
        assert_eq!(phone["to_number"], "+14155550199");
        assert!(phone.get("sip_data").is_none());
    }

    #[test]
    fn operation_events_carry_the_specs_params() {
        use control::command::PauseBehavior;
        use control::session::{CollectResult, PlayState};
        let (name, url, params) = operation_event(
            CallEvent::Play {
                control_id: "p".into(),
                status_url: Some("http://h/p".into()),
                state: PlayState::Finished,
            },
            None,
        )
        .unwrap();
        assert_eq!(
            (name, url.as_deref()),
            ("calling.call.play", Some("http://h/p"))
        );
        assert_eq!(params, json!({"control_id": "p", "state": "finished"}));
        let (_, _, params) = operation_event(
            CallEvent::Collect {
                control_id: "c".into(),
                status_url: None,
                result: CollectResult::Finished,
                is_final: Some(true),
                state: Some("finished"),
            },
            None,
        )
        .unwrap();
        assert_eq!(
            params,
            json!({"control_id": "c", "result": {"type": "finished"}, "final": true, "state": "finished"})
        );
        let audio = json!({"format": "wav"});
        let (_, _, params) = operation_event(
            CallEvent::Record {
                control_id: "r".into(),
                status_url: None,
                state: RecordState::Paused(PauseBehavior::Silence),
            },
            Some(&audio),
        )
        .unwrap();
        assert_eq!(params["record"]["audio"], audio);
        assert_eq!(params["pause_behavior"], "silence");
        assert!(operation_event(CallEvent::Dtmf { digit: '1' }, None).is_none());
    }

    /// `calling.call.fax` (calling-events.md §13): `page` with its number, `finished` with
    /// every field and `format: pdf`.
    #[test]
    fn fax_events_have_the_documented_shape() {
        use control::command::FaxDirection;
        use control::session::{FaxProgress, FaxResult};
        let page = CallEvent::Fax {
            control_id: "fax-1".into(),
            status_url: Some("http://hooks.test/fax".into()),
            direction: FaxDirection::Receive,
            progress: FaxProgress::Page { number: 2 },
        };
        let (name, url, params) = operation_event(page, None).unwrap();
        assert_eq!(
            (name, url.as_deref()),
            ("calling.call.fax", Some("http://hooks.test/fax"))
        );
        assert_eq!(
            params,
            json!({"control_id": "fax-1", "fax": {"type": "page", "params": {"direction": "receive", "number": 2}}})
        );
        let done = CallEvent::Fax {
            control_id: "fax-1".into(),
            status_url: None,
            direction: FaxDirection::Send,
            progress: FaxProgress::Finished(FaxResult {
                success: true,
                result_code: 0,
                result_text: "OK".into(),
                pages: 3,
                identity: "+15551230000".into(),
                remote_identity: "+15550000000".into(),
                document: Some("https://docs.test/a.pdf".into()),
            }),
        };
        let (_, url, params) = operation_event(done, None).unwrap();
        assert!(url.is_none());
        assert_eq!(
            params["fax"],
            json!({"type": "finished", "params": {
                "direction": "send", "identity": "+15551230000", "remote_identity": "+15550000000",
                "document": "https://docs.test/a.pdf", "pages": 3, "success": true, "result": 0,
                "result_text": "OK", "format": "pdf"}})
        );
    }
}
