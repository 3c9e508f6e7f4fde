//! The axum router: `POST /api/calling/calls` and the operator-only GETs.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use control::{CallFilter, CallStatus, CommandOk};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{json, Value};
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::Project;
use crate::error::{ApiError, ErrorItem};
use crate::state::ApiState;
use crate::validate::{self, formats, ValidatedRequest};

const CALLS_PATH: &str = "/api/calling/calls";
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 1000;

/// The Calling API router. Every response carries a fresh `X-Request-Id`.
///
/// - `POST /api/calling/calls`: the 42 commands; `200` with the Call Leg (plus `control_id`
///   and any extra keys), or a SignalWire error body.
/// - `GET /api/calling/calls/{id}` (operator extension): the Call Leg; unknown, foreign or
///   non-UUID ids answer `404 {"error":"Not Found"}`.
/// - `GET /api/calling/calls?status=&limit=&cursor=` (operator extension), newest first:
///   `{"data": [CallLeg, ...], "links": {"next": "/api/calling/calls?limit=50&status=ended&cursor=..." | null}}`.
///   `status` is a Call Leg status, `limit` 1–1000 (default 50), `cursor` the opaque value from
///   a previous `links.next`; empty values count as absent, bad ones answer 422.
/// - Conferences (operator extensions, docs/connect.md): `GET /api/calling/conferences`
///   (`{"data": [{id, name, started, recording_id, participants: [{call_id, muted, coach}]}]}`),
///   `POST /api/calling/conferences/{id}/participants/{call_id}` with `{"muted": bool}` (the
///   participant), `DELETE` on the same path (kick: 204; the call stays up, its SWML goes on).
///   Unknown conference or participant: 404; a body other than `{"muted": bool}`: 422.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(CALLS_PATH, post(post_command).get(list_calls))
        .route("/api/calling/calls/{id}", get(get_call))
        .route("/api/calling/recordings/{file}", get(get_recording))
        .route("/api/calling/faxes/{file}", get(get_fax))
        .route("/api/calling/conferences", get(list_conferences))
        .route(
            "/api/calling/conferences/{conference}/participants/{call}",
            post(update_participant).delete(kick_participant),
        )
        .route("/api/openapi.json", get(openapi))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

/// `GET /api/openapi.json`: the OpenAPI 3.1 document (no credentials; built once).
async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    Json(DOCUMENT.get_or_init(crate::openapi::document).clone()).into_response()
}

/// A span per request (filled with the command name once known) and the `X-Request-Id` header.
async fn request_context(request: Request, next: Next) -> Response {
    let request_id = Uuid::new_v4();
    let span = tracing::info_span!(
        "api_request",
        %request_id,
        method = %request.method(),
        path = %request.uri().path(),
        command = tracing::field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// `POST /api/calling/calls`: processing order of calling-api.md §2.1 — auth (extractor, before
/// the body is read), body size, JSON, envelope and params validation, then the node.
async fn post_command(
    State(state): State<ApiState>,
    Project(project): Project,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.max_body_bytes).await?;
    // Refused before parsing: a parsed value costs up to ~40× its text (swml::size).
    ::swml::size::scan_json(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is too complex: {e}"), None))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}"), None))?;
    if let Some(name) = value.get("command").and_then(Value::as_str) {
        if control::command::CommandName::parse(name).is_some() {
            tracing::Span::current().record("command", name);
        }
    }
    let validated =
        validate::validate_request(&value, state.validation.clone()).map_err(|r| match r {
            validate::Rejection::BadRequest => bad_request_reason(&value),
            other => ApiError::from(other),
        })?;
    tracing::debug!(command = validated.command_name(), "validated");
    match validated {
        ValidatedRequest::Dial(request) => {
            let ok = state.control.dial(project, *request).await?;
            success(ok, None)
        }
        ValidatedRequest::Call {
            call_id,
            command,
            control_id,
        } => {
            let ok = state.control.command(project, call_id, *command).await?;
            success(ok, control_id)
        }
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::PayloadTooLarge),
        Err(_) => Err(ApiError::bad_request(
            "the request body could not be read",
            None,
        )),
    }
}

/// The two documented 400s (A30) with their reasons.
fn bad_request_reason(body: &Value) -> ApiError {
    if !body.is_object() {
        return ApiError::bad_request(
            "the body must be a JSON object with `command` and `params`",
            None,
        );
    }
    if body.get("command").and_then(Value::as_str) == Some("calling.collect") {
        return ApiError::bad_request(
            "calling.collect needs `digits`, `speech` or both",
            Some("params"),
        );
    }
    ApiError::bad_request("the request body is not valid", None)
}

/// The closed Call Leg, plus the top-level `control_id` (A1) and any extra keys the node adds
/// (A25: `ask_id`, `result` of the sidecar commands).
fn success(ok: CommandOk, control_id: Option<String>) -> Result<Response, ApiError> {
    let Ok(Value::Object(mut body)) = serde_json::to_value(&ok.leg) else {
        return Err(ApiError::Internal("call leg did not serialize".into()));
    };
    body.retain(|k, _| control::CALL_LEG_KEYS.contains(&k.as_str()));
    if let Some(control_id) = ok.control_id.or(control_id) {
        body.insert("control_id".into(), Value::String(control_id));
    }
    body.extend(ok.extra);
    Ok((StatusCode::OK, Json(Value::Object(body))).into_response())
}

/// `GET /api/calling/calls/{id}` (operator extension): the Call Leg. An id that is not a UUID,
/// unknown, or another project's answers 404 alike.
async fn get_call(
    State(state): State<ApiState>,
    Project(project): Project,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let call_id = id
        .ok()
        .and_then(|Path(id)| formats::parse_uuid(&id))
        .ok_or(ApiError::NotFound)?;
    let leg = state.control.get_call(project, call_id).await?;
    Ok(Json(leg).into_response())
}

/// `GET /api/calling/recordings/{id}.wav` / `{id}.mp3`: a recording's file, for the project
/// that made it (the URL `calling.call.record` `finished` events carry). Anything else
/// answers 404.
async fn get_recording(
    State(state): State<ApiState>,
    Project(project): Project,
    file: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    const TYPES: [(&str, &str); 2] = [("wav", "audio/wav"), ("mp3", "audio/mpeg")];
    let Path(file) = file.map_err(|_| ApiError::NotFound)?;
    let (id, ext, content_type) = TYPES
        .iter()
        .find_map(|(ext, ct)| {
            let id = file.strip_suffix(ext)?.strip_suffix('.')?;
            Some((formats::parse_uuid(id)?, *ext, *ct))
        })
        .ok_or(ApiError::NotFound)?;
    let bytes = state.control.recording(project, id, ext).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// `GET /api/calling/faxes/{id}.pdf`: the pages a `receive_fax` got, for the project whose
/// call received them (the URL its `calling.call.fax` `finished` event carries).
async fn get_fax(
    State(state): State<ApiState>,
    Project(project): Project,
    file: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(file) = file.map_err(|_| ApiError::NotFound)?;
    let id = file
        .strip_suffix(".pdf")
        .and_then(formats::parse_uuid)
        .ok_or(ApiError::NotFound)?;
    let bytes = state.control.fax_document(project, id).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/pdf")],
        bytes,
    )
        .into_response())
}

/// `GET /api/calling/conferences` (operator extension): the node's conferences with the
/// project's participants, by name.
async fn list_conferences(
    State(state): State<ApiState>,
    Project(project): Project,
) -> Result<Response, ApiError> {
    let data = state.control.list_conferences(project).await?;
    Ok(Json(json!({ "data": data })).into_response())
}

/// The two ids of a participant's path; anything that is not a UUID is 404.
fn participant_path(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Uuid, Uuid), ApiError> {
    let Path((conference, call)) = path.map_err(|_| ApiError::NotFound)?;
    match (formats::parse_uuid(&conference), formats::parse_uuid(&call)) {
        (Some(conference), Some(call)) => Ok((conference, call)),
        _ => Err(ApiError::NotFound),
    }
}

/// `POST /api/calling/conferences/{id}/participants/{call_id}` with `{"muted": true|false}`
/// (operator extension): the participant as it is now.
async fn update_participant(
    State(state): State<ApiState>,
    Project(project): Project,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.max_body_bytes).await?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}"), None))?;
    let muted = participant_update(&value)?;
    let (conference, call) = participant_path(path)?;
    let participant = state
        .control
        .conference_mute(project, conference, call, muted)
        .await?;
    Ok(Json(participant).into_response())
}

/// What a participant update asks: `{"muted": bool}` and nothing else (422 otherwise).
fn participant_update(value: &Value) -> Result<bool, ApiError> {
    let invalid = |message: &str, attribute: Option<&str>| {
        ApiError::Unprocessable(vec![ErrorItem::validation(
            validate::codes::INVALID_PARAMETER,
            message,
            attribute.map(str::to_owned),
        )])
    };
    let Some(object) = value.as_object() else {
        return Err(invalid(
            "the body must be an object: {\"muted\": true|false}",
            None,
        ));
    };
    if let Some(other) = object.keys().find(|k| k.as_str() != "muted") {
        return Err(invalid(
            &format!("unknown parameter {other}: only `muted` can be changed"),
            Some(other),
        ));
    }
    match object.get("muted") {
        Some(Value::Bool(muted)) => Ok(*muted),
        _ => Err(invalid(
            "muted is required and must be true or false",
            Some("muted"),
        )),
    }
}

/// `DELETE /api/calling/conferences/{id}/participants/{call_id}` (operator extension): the
/// participant is taken out; its call stays up and its SWML goes on
/// (`join_conference_result = completed`). 204.
async fn kick_participant(
    State(state): State<ApiState>,
    Project(project): Project,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (conference, call) = participant_path(path)?;
    state
        .control
        .conference_kick(project, conference, call)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/calling/calls?status=&limit=&cursor=` (operator extension), newest first:
///
/// ```json
/// {"data": [CallLeg, ...], "links": {"next": "/api/calling/calls?limit=50&cursor=..." | null}}
/// ```
///
/// `status` is a Call Leg status, `limit` 1–1000 (default 50), `cursor` the opaque value taken
/// from a previous `links.next`. Empty values count as absent; bad ones answer 422. `links.next`
/// is a path-absolute URL that repeats the filter and page size.
async fn list_calls(
    State(state): State<ApiState>,
    Project(project): Project,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) =
        query.map_err(|_| ApiError::bad_request("the query string is not valid", None))?;
    let filter = list_filter(&pairs)?;
    let page = state.control.list_calls(project, filter.clone()).await?;
    let next = page.next_cursor.map(|cursor| {
        let mut url = format!("{CALLS_PATH}?limit={}", filter.limit);
        if let Some(status) = filter.status {
            url.push_str("&status=");
            url.push_str(status.as_str());
        }
        url.push_str("&cursor=");
        url.push_str(&swml::url::percent_encode(&cursor));
        url
    });
    Ok(Json(json!({ "data": page.calls, "links": { "next": next } })).into_response())
}

fn list_filter(pairs: &[(String, String)]) -> Result<CallFilter, ApiError> {
    let value = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let mut errors = Vec::new();
    let status = value("status").and_then(|s| {
        let parsed = CallStatus::parse(s);
        if parsed.is_none() {
            errors.push(ErrorItem::validation(
                validate::codes::INVALID_PARAMETER,
                "status must be a call status (queued, initiated, created, ringing, answered, ending, ended, failed, canceled, completed)",
                Some("status".into()),
            ));
        }
        parsed
    });
    let limit = match value("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                errors.push(ErrorItem::validation(
                    validate::codes::INVALID_PARAMETER,
                    format!("limit must be an integer between 1 and {MAX_PAGE_SIZE}"),
                    Some("limit".into()),
                ));
                DEFAULT_PAGE_SIZE
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Unprocessable(errors));
    }
    let cursor = value("cursor").map(str::to_owned);
    if let Some(raw) = cursor.as_deref() {
        if !is_cursor_shape(raw) {
            return Err(ApiError::bad_request(
                "cursor is not a value this server issued (take it from links.next)",
                Some("cursor"),
            ));
        }
    }
    Ok(CallFilter {
        status,
        limit,
        cursor,
    })
}

/// Whether `raw` has the shape of the cursors the store issues (`<created_at_ms>:<call id>`).
/// A malformed cursor is the client's error (400), never the store's (500).
fn is_cursor_shape(raw: &str) -> bool {
    raw.len() <= 128
        && raw
            .split_once(':')
            .is_some_and(|(ms, id)| ms.parse::<i64>().is_ok() && uuid::Uuid::parse_str(id).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filter_defaults_and_errors() {
        let f = list_filter(&[]).unwrap();
        assert_eq!(f.limit, 50);
        assert_eq!(f.status, None);
        let pairs = vec![
            ("status".to_owned(), String::new()),
            ("limit".to_owned(), String::new()),
        ];
        assert_eq!(list_filter(&pairs).unwrap().limit, 50);
        let bad = vec![
            ("status".to_owned(), "x".to_owned()),
            ("limit".to_owned(), "0".to_owned()),
        ];
        match list_filter(&bad) {
            Err(ApiError::Unprocessable(items)) => assert_eq!(items.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    fn futures_body(response: Response) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn success_merges_control_id_and_extras() {
        let leg = control::CallLeg {
            id: Uuid::nil(),
            from: "+15105550100".into(),
            to: "+15105550101".into(),
            direction: control::Direction::OutboundApi,
            source: "realtime_api".into(),
            url: None,
            charge: 0.0,
            created_at: "2025-03-02T17:45:09Z".into(),
            charge_details: vec![],
            status: Some(CallStatus::Answered),
            duration: None,
            duration_ms: None,
            billing_ms: None,
            leg_type: control::LegType::RelayPstnCall,
            parent_id: None,
            end_reason: None,
            answered_at: None,
            ended_at: None,
            media_stats: None,
            held: None,
        };
        let mut ok = CommandOk::leg(control::CallLeg {
            media_stats: Some(control::MediaReport::default()),
            held: Some(true),
            end_reason: Some("hangup".into()),
            answered_at: Some("2025-03-02T17:45:19Z".into()),
            ended_at: Some("2025-03-02T17:46:19Z".into()),
            ..leg
        });
        ok.extra.push(("ask_id".into(), json!("a1")));
        let response = success(ok, Some("c1".into())).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = futures_body(response);
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected: Vec<&str> = control::CALL_LEG_KEYS.to_vec();
        expected.extend(["control_id", "ask_id"]);
        expected.sort_unstable();
        assert_eq!(
            keys, expected,
            "no operator extension in a command response"
        );
        assert_eq!(body["control_id"], "c1");
    }
}
