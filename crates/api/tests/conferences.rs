//! The conference operator extensions over the real router (`oneshot`): list, mute/unmute,
//! kick; auth, 404 for unknown ids, 422 for bodies other than `{"muted": bool}`.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::json;
use uuid::Uuid;

fn participant_uri(conference: Uuid, call: Uuid) -> String {
    format!("/api/calling/conferences/{conference}/participants/{call}")
}

fn post(uri: &str, body: &str, authorization: Option<String>) -> Request<Body> {
    let mut r = Request::post(uri).header("content-type", "application/json");
    if let Some(a) = authorization {
        r = r.header("authorization", a);
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

fn delete(uri: &str, authorization: Option<String>) -> Request<Body> {
    let mut r = Request::delete(uri);
    if let Some(a) = authorization {
        r = r.header("authorization", a);
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn list_shows_the_projects_participants() {
    let h = Harness::new();
    let reply = h.get("/api/calling/conferences").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"data": [{
            "id": CONFERENCE.to_string(), "name": "room", "started": true, "recording_id": null,
            "participants": [{"call_id": CALL.to_string(), "muted": false, "coach": null}],
        }]})
    );
    let reply = h
        .send(
            Request::get("/api/calling/conferences")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mute_and_unmute_a_participant() {
    let h = Harness::new();
    let uri = participant_uri(CONFERENCE, CALL);
    for muted in [true, false] {
        let body = json!({ "muted": muted }).to_string();
        let reply = h.send(post(&uri, &body, Some(auth()))).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(
            reply.body,
            json!({"call_id": CALL.to_string(), "muted": muted, "coach": null})
        );
    }
    assert_eq!(
        *h.control.participant_requests.lock().unwrap(),
        vec![
            (PROJECT, CONFERENCE, CALL, Some(true)),
            (PROJECT, CONFERENCE, CALL, Some(false)),
        ]
    );
    // Without credentials: 401, nothing reaches the node.
    let reply = h.send(post(&uri, r#"{"muted": true}"#, None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.control.participant_requests.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_bodies_are_422_and_not_json_is_400() {
    let h = Harness::new();
    let uri = participant_uri(CONFERENCE, CALL);
    for (body, attribute) in [
        ("{}", "muted"),
        (r#"{"muted": "yes"}"#, "muted"),
        (r#"{"muted": 1}"#, "muted"),
        (r#"{"muted": null}"#, "muted"),
        (r#"{"muted": true, "deaf": true}"#, "deaf"),
        ("[true]", "<null>"),
        ("true", "<null>"),
    ] {
        let reply = h.send(post(&uri, body, Some(auth()))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            reply.error_items(),
            vec![("invalid_parameter".to_owned(), attribute.to_owned())],
            "{body}"
        );
    }
    let reply = h.send(post(&uri, "{muted", Some(auth()))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(h.control.participant_requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_conferences_and_participants_are_404() {
    let h = Harness::new();
    for uri in [
        participant_uri(Uuid::new_v4(), CALL),
        participant_uri(CONFERENCE, Uuid::new_v4()),
        participant_uri(CONFERENCE, FOREIGN_CALL),
        format!("/api/calling/conferences/not-a-uuid/participants/{CALL}"),
        format!("/api/calling/conferences/{CONFERENCE}/participants/x"),
    ] {
        let reply = h.send(post(&uri, r#"{"muted": true}"#, Some(auth()))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.error_items()[0].0, "not_found", "{uri}");
        let reply = h.send(delete(&uri, Some(auth()))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
    }
    assert!(h.control.participant_requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn kick_is_204() {
    let h = Harness::new();
    let uri = participant_uri(CONFERENCE, CALL);
    let reply = h.send(delete(&uri, None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = h.send(delete(&uri, Some(auth()))).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.body, serde_json::Value::Null);
    assert_eq!(
        *h.control.participant_requests.lock().unwrap(),
        vec![(PROJECT, CONFERENCE, CALL, None)]
    );
    // Other methods on the path: 405.
    let reply = h
        .send(
            Request::get(uri.as_str())
                .header("authorization", auth())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}
