//! Test harness: a recording `CallControl` behind the real router, driven with `oneshot`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use api::{ApiState, Credential};
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use control::{
    CallCommand, CallControl, CallFilter, CallLeg, CallPage, CallStatus, CommandOk, ControlError,
    DialRequest, Direction, LegType,
};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

pub const PROJECT: Uuid = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);
pub const TOKEN: &str = "PT-project-one-token";
pub const OTHER_PROJECT: Uuid = Uuid::from_u128(0x2222_2222_2222_4222_8222_2222_2222_2222);
pub const OTHER_TOKEN: &str = "PT-project-two-token";
/// A live call of PROJECT.
pub const CALL: Uuid = Uuid::from_u128(0x0e9c_80d7_a149_4917_892d_4200_4370_9f45);
/// A live call of OTHER_PROJECT.
pub const FOREIGN_CALL: Uuid = Uuid::from_u128(0x7c3f_0a52_5a0e_4a7e_9a55_2f0f_6c1d_9b11);
/// A conference CALL (and FOREIGN_CALL) take part in.
pub const CONFERENCE: Uuid = Uuid::from_u128(0x5c0f_0000_0000_4000_8000_0000_0000_0001);

pub fn leg(id: Uuid, from: &str, to: &str) -> CallLeg {
    CallLeg {
        id,
        from: from.into(),
        to: to.into(),
        direction: Direction::OutboundApi,
        source: "realtime_api".into(),
        url: None,
        charge: 0.0,
        created_at: "2025-03-02T17:45:09Z".into(),
        charge_details: vec![],
        status: Some(CallStatus::Answered),
        duration: None,
        duration_ms: None,
        billing_ms: None,
        leg_type: LegType::for_destination(to),
        parent_id: None,
        end_reason: None,
        answered_at: None,
        ended_at: None,
        media_stats: None,
        held: None,
    }
}

/// The media statistics the fake's calls carry.
pub fn media_report() -> control::MediaReport {
    control::MediaReport {
        is_final: false,
        updated_at: "2025-03-02T17:45:19.250Z".into(),
        packets_sent: 500,
        packets_received: 498,
        packets_lost: 2,
        jitter_ms: 1.5,
        rtcp_received: true,
        rtcp_reports_sent: 2,
        rtcp_reports_received: 1,
        rtt_ms: Some(12),
        remote_packets_lost: Some(0),
        remote_fraction_lost: Some(0.0),
        remote_jitter_ms: None,
    }
}

/// (project, conference, call, Some(muted) for a mute / None for a kick).
pub type ParticipantRequest = (Uuid, Uuid, Uuid, Option<bool>);

/// Records what the API handed over; answers from a fixed set of calls.
#[derive(Default)]
pub struct Recorder {
    pub dials: Mutex<Vec<(Uuid, DialRequest)>>,
    pub commands: Mutex<Vec<(Uuid, Uuid, CallCommand)>>,
    pub filters: Mutex<Vec<(Uuid, CallFilter)>>,
    /// When set, every dial/command answers this error (after recording).
    pub failure: Mutex<Option<ControlError>>,
    /// Extra keys and control_id put on every successful CommandOk.
    pub extra: Mutex<Vec<(String, Value)>>,
    pub control_id: Mutex<Option<String>>,
    pub next_cursor: Mutex<Option<String>>,
    /// Operator requests on conference participants: (project, conference, call, Some(muted)
    /// for a mute, None for a kick).
    pub participant_requests: Mutex<Vec<ParticipantRequest>>,
}

impl Recorder {
    fn owner(call: Uuid) -> Option<Uuid> {
        let owners: HashMap<Uuid, Uuid> = [(CALL, PROJECT), (FOREIGN_CALL, OTHER_PROJECT)].into();
        owners.get(&call).copied()
    }

    fn ok(&self, leg: CallLeg) -> Result<CommandOk, ControlError> {
        if let Some(e) = self.failure.lock().unwrap().clone() {
            return Err(e);
        }
        let mut ok = CommandOk::leg(leg);
        ok.extra = self.extra.lock().unwrap().clone();
        ok.control_id = self.control_id.lock().unwrap().clone();
        Ok(ok)
    }

    pub fn last_command(&self) -> Option<CallCommand> {
        self.commands
            .lock()
            .unwrap()
            .last()
            .map(|(_, _, c)| c.clone())
    }

    pub fn last_dial(&self) -> Option<DialRequest> {
        self.dials.lock().unwrap().last().map(|(_, d)| d.clone())
    }

    pub fn received(&self) -> usize {
        self.commands.lock().unwrap().len() + self.dials.lock().unwrap().len()
    }
}

#[async_trait]
impl CallControl for Recorder {
    async fn dial(&self, project: Uuid, request: DialRequest) -> Result<CommandOk, ControlError> {
        self.dials.lock().unwrap().push((project, request.clone()));
        let to = request.to.clone().unwrap_or_default();
        self.ok(leg(Uuid::new_v4(), &request.from, &to))
    }

    async fn command(
        &self,
        project: Uuid,
        call_id: Uuid,
        command: CallCommand,
    ) -> Result<CommandOk, ControlError> {
        if Self::owner(call_id) != Some(project) {
            return Err(ControlError::NotFound);
        }
        self.commands
            .lock()
            .unwrap()
            .push((project, call_id, command));
        self.ok(leg(call_id, "+15105550100", "+14155550199"))
    }

    async fn get_call(&self, project: Uuid, call_id: Uuid) -> Result<CallLeg, ControlError> {
        if Self::owner(call_id) != Some(project) {
            return Err(ControlError::NotFound);
        }
        Ok(CallLeg {
            media_stats: Some(media_report()),
            held: Some(true),
            ..leg(call_id, "+15105550100", "sip:alice@pbx.example.net")
        })
    }

    async fn list_conferences(
        &self,
        project: Uuid,
    ) -> Result<Vec<control::conference::ConferenceInfo>, ControlError> {
        let participants: Vec<_> = [CALL, FOREIGN_CALL]
            .into_iter()
            .filter(|c| Self::owner(*c) == Some(project))
            .map(|call_id| control::conference::Participant {
                call_id,
                muted: false,
                coach: None,
            })
            .collect();
        Ok(vec![control::conference::ConferenceInfo {
            id: CONFERENCE,
            name: "room".into(),
            started: true,
            recording_id: None,
            participants,
        }])
    }

    async fn conference_mute(
        &self,
        project: Uuid,
        conference_id: Uuid,
        call_id: Uuid,
        muted: bool,
    ) -> Result<control::conference::Participant, ControlError> {
        if conference_id != CONFERENCE || Self::owner(call_id) != Some(project) {
            return Err(ControlError::NotFound);
        }
        self.participant_requests.lock().unwrap().push((
            project,
            conference_id,
            call_id,
            Some(muted),
        ));
        Ok(control::conference::Participant {
            call_id,
            muted,
            coach: None,
        })
    }

    async fn conference_kick(
        &self,
        project: Uuid,
        conference_id: Uuid,
        call_id: Uuid,
    ) -> Result<(), ControlError> {
        if conference_id != CONFERENCE || Self::owner(call_id) != Some(project) {
            return Err(ControlError::NotFound);
        }
        self.participant_requests
            .lock()
            .unwrap()
            .push((project, conference_id, call_id, None));
        Ok(())
    }

    async fn list_calls(
        &self,
        project: Uuid,
        filter: CallFilter,
    ) -> Result<CallPage, ControlError> {
        self.filters.lock().unwrap().push((project, filter));
        Ok(CallPage {
            calls: vec![leg(CALL, "+15105550100", "+14155550199")],
            next_cursor: self.next_cursor.lock().unwrap().clone(),
        })
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// `(code, attribute)` of every `errors[]` item.
    pub fn error_items(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        (
                            i["code"].as_str().unwrap_or("?").to_owned(),
                            i["attribute"].as_str().unwrap_or("<null>").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub struct Harness {
    pub control: Arc<Recorder>,
    pub app: Router,
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

pub fn auth() -> String {
    basic(&PROJECT.to_string(), TOKEN)
}

impl Harness {
    pub fn new() -> Self {
        Self::with_state(|s| s)
    }

    pub fn with_state(configure: impl FnOnce(ApiState) -> ApiState) -> Self {
        let control = Arc::new(Recorder::default());
        let state = ApiState::new(
            control.clone(),
            vec![
                Credential {
                    project_id: PROJECT,
                    token: TOKEN.into(),
                },
                Credential {
                    project_id: OTHER_PROJECT,
                    token: OTHER_TOKEN.into(),
                },
            ],
        );
        let app = api::router(configure(state));
        Harness { control, app }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POST a raw body with valid credentials.
    pub async fn post_raw(&self, body: impl Into<Body>) -> Reply {
        self.send(
            Request::post("/api/calling/calls")
                .header("authorization", auth())
                .header("content-type", "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, body: &Value) -> Reply {
        self.post_raw(body.to_string()).await
    }

    /// A command on CALL, or a dial / update (no top-level id).
    pub async fn command(&self, command: &str, params: Value) -> Reply {
        self.post(&envelope(command, params)).await
    }

    /// A `calling.*` command on an explicit call id.
    pub async fn command_on(&self, call: Uuid, command: &str, params: Value) -> Reply {
        self.post(&json!({ "command": command, "id": call.to_string(), "params": params }))
            .await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(
            Request::get(uri)
                .header("authorization", auth())
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

/// The request body for `command`: `dial` and `update` carry no top-level id; every other
/// command targets CALL.
pub fn envelope(command: &str, params: Value) -> Value {
    match command {
        "dial" | "update" => json!({ "command": command, "params": params }),
        _ => json!({ "command": command, "id": CALL.to_string(), "params": params }),
    }
}

/// `base` with `changes` merged in at the top level; a `null` change removes the key.
pub fn with(base: &Value, changes: Value) -> Value {
    let mut merged = base.clone();
    if let (Some(target), Some(changes)) = (merged.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            if value.is_null() {
                target.remove(key);
            } else {
                target.insert(key.clone(), value.clone());
            }
        }
    }
    merged
}

/// `base` without `key`.
pub fn without(base: &Value, key: &str) -> Value {
    let mut copy = base.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove(key);
    }
    copy
}

/// What a table row expects.
#[derive(Debug, Clone)]
pub enum Expect {
    /// 200 and the command reached the control layer.
    Ok,
    /// 400 `{"error":"Bad Request"}`.
    BadRequest,
    /// 422 with exactly one item of this code and attribute.
    Invalid(&'static str, String),
}

pub struct Row {
    pub command: &'static str,
    pub params: Value,
    pub expect: Expect,
}

pub fn ok(command: &'static str, params: Value) -> Row {
    Row {
        command,
        params,
        expect: Expect::Ok,
    }
}

pub fn invalid(command: &'static str, params: Value, code: &'static str, attribute: &str) -> Row {
    Row {
        command,
        params,
        expect: Expect::Invalid(code, attribute.to_owned()),
    }
}

pub fn bad_request(command: &'static str, params: Value) -> Row {
    Row {
        command,
        params,
        expect: Expect::BadRequest,
    }
}

pub const MISSING: &str = "missing_required_parameter";
pub const INVALID: &str = "invalid_parameter";
pub const NOT_OBJECT: &str = "must_be_object";
pub const NOT_HTTP: &str = "not_an_http_url";

/// Runs every row, then fails once listing every row that did not behave.
pub async fn run_table(rows: Vec<Row>) -> usize {
    let harness = Harness::new();
    let mut failures = Vec::new();
    let count = rows.len();
    eprintln!("table: {count} rows");
    for row in rows {
        let before = harness.control.received();
        let reply = harness.command(row.command, row.params.clone()).await;
        let problem = match &row.expect {
            Expect::Ok => {
                if reply.status != StatusCode::OK {
                    Some(format!("expected 200, got {} {}", reply.status, reply.body))
                } else if harness.control.received() != before + 1 {
                    Some("the control layer did not receive the command".to_owned())
                } else {
                    None
                }
            }
            Expect::BadRequest => (reply.status != StatusCode::BAD_REQUEST
                || reply.body["errors"][0]["code"] != json!("bad_request")
                || reply.body["errors"][0]["attribute"] != json!("params"))
            .then(|| format!("expected 400, got {} {}", reply.status, reply.body)),
            Expect::Invalid(code, attribute) => {
                let items = reply.error_items();
                let wanted = vec![((*code).to_owned(), attribute.clone())];
                if reply.status != StatusCode::UNPROCESSABLE_ENTITY || items != wanted {
                    Some(format!(
                        "expected 422 {code}@{attribute}, got {} {:?}",
                        reply.status, items
                    ))
                } else if harness.control.received() != before {
                    Some("a rejected command reached the control layer".to_owned())
                } else {
                    None
                }
            }
        };
        if let Some(problem) = problem {
            failures.push(format!("{} {} → {problem}", row.command, row.params));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}
