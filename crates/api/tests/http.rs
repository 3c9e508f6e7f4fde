//! Transport behaviour: auth, request ids, body handling, error mapping, the operator GETs.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use control::{CallStatus, ControlError};
use serde_json::{json, Value};
use uuid::Uuid;

fn end_body() -> String {
    json!({"command": "calling.end", "id": CALL.to_string(), "params": {}}).to_string()
}

fn post_with(authorization: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder =
        Request::post("/api/calling/calls").header("content-type", "application/json");
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(body.into()).unwrap()
}

fn assert_request_id(reply: &Reply) -> Uuid {
    let value = reply
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no X-Request-Id on {}", reply.status));
    Uuid::try_parse(value).expect("X-Request-Id is a UUID")
}

// ----- authentication --------------------------------------------------------------------------

#[tokio::test]
async fn missing_or_wrong_credentials_are_401() {
    let h = Harness::new();
    let project = PROJECT.to_string();
    let cases: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some(basic(&project, "wrong-token")),
        Some(basic(&project, "")),
        Some(basic(&project, &format!("{TOKEN}x"))),
        Some(basic(&project, &TOKEN[..TOKEN.len() - 1])),
        Some(basic(&Uuid::new_v4().to_string(), TOKEN)),
        Some(basic(&OTHER_PROJECT.to_string(), TOKEN)),
        Some(basic(&project, OTHER_TOKEN)),
        Some(basic("not-a-uuid", TOKEN)),
        Some(format!("Bearer {TOKEN}")),
        Some("Basic not-base64!!".to_owned()),
        Some(format!("Basic {}", "bm9jb2xvbg==")),
    ];
    for authorization in cases {
        let reply = h
            .send(post_with(authorization.as_deref(), end_body()))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(reply.body, json!({"error": "Unauthorized"}));
        assert_eq!(
            reply.headers.get("www-authenticate").unwrap(),
            "Basic realm=\"dialtone\""
        );
        assert_request_id(&reply);
    }
    assert_eq!(h.control.received(), 0);
}

#[tokio::test]
async fn auth_comes_before_body_checks() {
    let h = Harness::with_state(|s| s.with_max_body_bytes(16));
    for body in ["not json", "[]", &"x".repeat(100)] {
        let reply = h.send(post_with(None, body.to_owned())).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{body}");
    }
}

#[tokio::test]
async fn each_project_sees_only_its_calls() {
    let h = Harness::new();
    let other = basic(&OTHER_PROJECT.to_string(), OTHER_TOKEN);
    // The other project's credentials are valid, but CALL is not theirs.
    let reply = h.send(post_with(Some(&other), end_body())).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.body,
        json!({"errors": [{"type": "request_error", "code": "not_found", "message": "the resource does not exist, or does not belong to this project", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]})
    );
    // And FOREIGN_CALL is not ours.
    let reply = h.command_on(FOREIGN_CALL, "calling.end", json!({})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.body,
        json!({"errors": [{"type": "request_error", "code": "not_found", "message": "the resource does not exist, or does not belong to this project", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]})
    );
    let reply = h
        .post(&json!({"command": "update", "params": {"id": FOREIGN_CALL.to_string(), "status": "canceled"}}))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // An unknown call is the same 404.
    let reply = h
        .command_on(
            Uuid::new_v4(),
            "calling.play.stop",
            json!({"control_id": "x"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // The other project can act on its own call.
    let body = json!({"command": "calling.end", "id": FOREIGN_CALL.to_string(), "params": {}});
    let reply = h.send(post_with(Some(&other), body.to_string())).await;
    assert_eq!(reply.status, StatusCode::OK);
    let (project, call, _) = h.control.commands.lock().unwrap().last().cloned().unwrap();
    assert_eq!((project, call), (OTHER_PROJECT, FOREIGN_CALL));
}

#[tokio::test]
async fn validation_errors_win_over_not_found() {
    let h = Harness::new();
    let reply = h
        .command_on(FOREIGN_CALL, "calling.play", json!({"play": []}))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.error_items(),
        [(MISSING.to_owned(), "play".to_owned())]
    );
}

// ----- bodies ----------------------------------------------------------------------------------

#[tokio::test]
async fn unparseable_and_non_object_bodies_are_400() {
    let h = Harness::new();
    for body in [
        "",
        "{",
        "not json",
        "{\"command\": \"calling.end\",}",
        "[]",
        "[{\"command\": \"calling.end\"}]",
        "\"calling.end\"",
        "42",
        "null",
        "true",
        "{\"a\":1} {\"b\":2}",
    ] {
        let reply = h.post_raw(body.to_owned()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}");
        let item = &reply.body["errors"][0];
        assert_eq!(item["type"], "validation_error", "{body:?}");
        assert_eq!(item["code"], "bad_request", "{body:?}");
        assert!(item["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(item["url"], "https://signalwire.com/docs/apis/error-codes");
        assert_eq!(reply.body.as_object().map(|o| o.len()), Some(1));
        assert_request_id(&reply);
    }
    let reply = h.post_raw(vec![0xff, 0xfe, 0x7b]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let reply = h.post_raw(deep).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let h = Harness::with_state(|s| s.with_max_body_bytes(256));
    let big = json!({"command": "calling.user_event", "id": CALL.to_string(),
                     "params": {"event": {"blob": "x".repeat(300)}}});
    let reply = h.post(&big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.body,
        json!({"errors": [{"type": "request_error", "code": "payload_too_large", "message": "the request body is larger than this server accepts", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]})
    );
    assert_request_id(&reply);
    // Just under the limit is fine.
    let small = json!({"command": "calling.end", "id": CALL.to_string(), "params": {}});
    assert!(small.to_string().len() < 256);
    assert_eq!(h.post(&small).await.status, StatusCode::OK);
    assert_eq!(h.control.received(), 1);
}

#[tokio::test]
async fn default_body_limit_is_one_mebibyte() {
    let h = Harness::new();
    let under = json!({"command": "calling.user_event", "id": CALL.to_string(),
                       "params": {"event": {"blob": "x".repeat(1024 * 1024 - 200)}}});
    assert_eq!(h.post(&under).await.status, StatusCode::OK);
    let over = json!({"command": "calling.user_event", "id": CALL.to_string(),
                      "params": {"event": {"blob": "x".repeat(1024 * 1024)}}});
    assert_eq!(h.post(&over).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn hostile_inputs_never_crash() {
    let h = Harness::new();
    let call = CALL.to_string();
    let bodies = vec![
        json!({"command": "dial", "params": {"from": "\u{0000}", "to": "\u{202e}+1", "url": "https://\u{00e9}"}}),
        json!({"command": "dial", "params": {"from": "+1", "to": "sip:é@ü", "swml": "\u{feff}{}"}}),
        json!({"command": "dial", "params": {"from": "+15105550100", "to": "+14155550199", "swml": "*a", "timeout": 1e308}}),
        json!({"command": "dial", "params": {"from": "+15105550100", "to": "+14155550199", "url": "https://a.example", "timeout": -9223372036854775808_i64}}),
        json!({"command": "dial", "params": {"from": "+15105550100", "to": "+14155550199", "url": "https://a.example", "timeout": 18446744073709551615_u64}}),
        json!({"command": "dial", "params": {"from": "+15105550100", "to": "+14155550199", "url": "https://a.example", "codecs": ",,,"}}),
        json!({"command": "dial", "params": {"from": "+15105550100", "to": "sip:a@b", "url": "https://a.example", "custom_variables": {"é": "ü", "k\u{0000}": "v"}}}),
        json!({"command": "calling.play", "id": call, "params": {"play": [{"type": "tts", "params": null, "text": "x"}, null, [], {"type": null}]}}),
        json!({"command": "calling.play", "id": call, "params": {"play": [{"type": "ringtone", "name": "us", "duration": 1e-300}], "loop": 1e20}}),
        json!({"command": "calling.tap", "id": call, "params": {"tap": {}, "device": {"type": "rtp", "params": {"addr": "999.1.1.1", "port": -1, "ptime": 1e20}}}}),
        json!({"command": "calling.live_translate", "id": call, "params": {"action": {"start": null, "inject": null}}}),
        json!({"command": "calling.ai_sidecar", "id": call, "params": {"lang": "x", "SWAIG": {"functions": [null, {"function": null}]}}}),
        json!({"command": "calling.refer", "id": call, "params": {"device": {"params": {"uri": 5, "to": null}}}}),
        json!({"command": "update", "params": {"id": null, "call_id": null}, "id": null}),
        json!({"command": "calling.ai_hold", "id": call, "params": {"timeout": "99999999999999999999999"}}),
        json!({"command": "calling.record", "id": call, "params": {"record": {"audio": null}, "audio": null}}),
    ];
    for body in bodies {
        let reply = h.post(&body).await;
        assert!(
            reply.status.is_client_error() || reply.status == StatusCode::OK,
            "{body} → {}",
            reply.status
        );
        assert_request_id(&reply);
    }
    let yaml_bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    let reply = h
        .command(
            "dial",
            json!({"from": "+15105550100", "to": "+14155550199", "swml": yaml_bomb}),
        )
        .await;
    assert!(reply.status.is_client_error() || reply.status == StatusCode::OK);
}

// ----- request ids -----------------------------------------------------------------------------

#[tokio::test]
async fn every_response_has_a_fresh_request_id() {
    let h = Harness::new();
    let mut seen = std::collections::HashSet::new();
    let replies = vec![
        h.post(&json!({"command": "calling.end", "id": CALL.to_string(), "params": {}}))
            .await,
        h.post(&json!({"command": "nope", "params": {}})).await,
        h.post_raw("x").await,
        h.get("/api/calling/calls").await,
        h.get(&format!("/api/calling/calls/{CALL}")).await,
        h.get("/nowhere").await,
        h.send(post_with(None, "{}")).await,
    ];
    for reply in &replies {
        assert!(seen.insert(assert_request_id(reply)));
    }
}

// ----- control errors --------------------------------------------------------------------------

#[tokio::test]
async fn not_implemented_is_501_naming_the_command() {
    let h = Harness::new();
    *h.control.failure.lock().unwrap() = Some(ControlError::NotImplemented {
        command: "calling.play".into(),
    });
    let reply = h
        .command(
            "calling.play",
            json!({"play": [{"type": "tts", "text": "hi"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        reply.body,
        json!({"errors": [{
            "type": "not_implemented",
            "code": "feature_not_available",
            "message": "calling.play is not implemented by this dialtone server yet",
            "attribute": "command",
            "url": "https://signalwire.com/docs/apis/error-codes"
        }]})
    );
    assert_request_id(&reply);
}

#[tokio::test]
async fn every_control_error_maps_to_its_response() {
    let h = Harness::new();
    let cases: Vec<(ControlError, u16, Value)> = vec![
        (
            ControlError::NotFound,
            404,
            json!({"errors": [{"type": "request_error", "code": "not_found", "message": "the resource does not exist, or does not belong to this project", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]}),
        ),
        (
            ControlError::InvalidState {
                code: "cannot_update_completed",
                message: "the call has ended".into(),
                attribute: None,
            },
            422,
            json!({"errors": [{"type": "validation_error", "code": "cannot_update_completed",
                "message": "the call has ended", "attribute": null,
                "url": "https://signalwire.com/docs/apis/error-codes"}]}),
        ),
        (
            ControlError::Unprocessable {
                code: "not_routable",
                message: "no trunk".into(),
                attribute: Some("to".into()),
            },
            422,
            json!({"errors": [{"type": "validation_error", "code": "not_routable",
                "message": "no trunk", "attribute": "to",
                "url": "https://signalwire.com/docs/apis/error-codes"}]}),
        ),
        (
            ControlError::Conflict {
                code: "invalid_state",
                message: "a transcription is already running".into(),
                attribute: Some("control_id".into()),
            },
            409,
            json!({"errors": [{"type": "validation_error", "code": "invalid_state",
                "message": "a transcription is already running", "attribute": "control_id",
                "url": "https://signalwire.com/docs/apis/error-codes"}]}),
        ),
        (
            ControlError::Unavailable("draining".into()),
            503,
            json!({"errors": [{"type": "server_error", "code": "service_unavailable", "message": "the server cannot take this request now; retry", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]}),
        ),
        (
            ControlError::AtCapacity {
                code: "max_calls_reached",
                message: "this server is at its limit of 2 concurrent calls (max_calls)".into(),
            },
            503,
            json!({"errors": [{"type": "server_error", "code": "max_calls_reached", "message": "this server is at its limit of 2 concurrent calls (max_calls)", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]}),
        ),
        (
            ControlError::Internal("disk on fire".into()),
            500,
            json!({"errors": [{"type": "server_error", "code": "internal_error", "message": "internal server error", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]}),
        ),
    ];
    for (error, status, body) in cases {
        *h.control.failure.lock().unwrap() = Some(error.clone());
        for reply in [
            h.command("calling.transcribe", json!({})).await,
            h.command(
                "dial",
                json!({"from": "+15105550100", "to": "+14155550199", "url": "https://a.example/s"}),
            )
            .await,
        ] {
            assert_eq!(reply.status.as_u16(), status, "{error:?}");
            assert_eq!(reply.body, body, "{error:?}");
            assert_eq!(
                reply.headers.contains_key("retry-after"),
                status == 503,
                "{error:?}"
            );
            assert_request_id(&reply);
        }
    }
}

#[tokio::test]
async fn success_is_the_call_leg_with_extras() {
    let h = Harness::new();
    h.control
        .extra
        .lock()
        .unwrap()
        .push(("ask_id".into(), json!("ask-1")));
    let reply = h
        .command("calling.ai_sidecar.ask", json!({"text": "?"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/json"
    );
    for key in control::CALL_LEG_KEYS {
        assert!(reply.body.get(key).is_some(), "missing {key}");
    }
    assert_eq!(reply.body["id"], json!(CALL.to_string()));
    assert_eq!(reply.body["ask_id"], "ask-1");
    assert!(reply.body.get("control_id").is_none());
}

// ----- routing ---------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_paths_and_methods() {
    let h = Harness::new();
    let reply = h.get("/api/calling/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.body,
        json!({"errors": [{"type": "request_error", "code": "not_found", "message": "the resource does not exist, or does not belong to this project", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]})
    );
    let reply = h
        .send(
            Request::delete("/api/calling/calls")
                .header("authorization", auth())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.body,
        json!({"errors": [{"type": "request_error", "code": "method_not_allowed", "message": "this HTTP method is not allowed on this path", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]})
    );
    assert_request_id(&reply);
}

// ----- operator GETs ---------------------------------------------------------------------------

#[tokio::test]
async fn get_one_call() {
    let h = Harness::new();
    let reply = h.get(&format!("/api/calling/calls/{CALL}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["id"], json!(CALL.to_string()));
    assert_eq!(reply.body["type"], "relay_sip_call");
    // The operator extensions: the hold flag and the media statistics, named with their units.
    assert_eq!(reply.body["held"], json!(true));
    assert_eq!(
        reply.body["media_stats"],
        json!({
            "final": false,
            "updated_at": "2025-03-02T17:45:19.250Z",
            "packets_sent": 500,
            "packets_received": 498,
            "packets_lost": 2,
            "jitter_ms": 1.5,
            "rtcp_received": true,
            "rtcp_reports_sent": 2,
            "rtcp_reports_received": 1,
            "rtt_ms": 12,
            "remote_packets_lost": 0,
            "remote_fraction_lost": 0.0,
            "remote_jitter_ms": null,
        })
    );
    // Every key the document promises for media_stats is there, and no other.
    let doc = api::openapi::document();
    let schema = &doc["components"]["schemas"]["CallLeg"]["properties"]["media_stats"];
    let mut promised: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    let mut got: Vec<&str> = reply.body["media_stats"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    promised.sort_unstable();
    got.sort_unstable();
    assert_eq!(promised, got);
    for uri in [
        format!("/api/calling/calls/{FOREIGN_CALL}"),
        format!("/api/calling/calls/{}", Uuid::new_v4()),
        "/api/calling/calls/not-a-uuid".to_owned(),
        "/api/calling/calls/%FF".to_owned(),
    ] {
        let reply = h.get(&uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(
            reply.body,
            json!({"errors": [{"type": "request_error", "code": "not_found", "message": "the resource does not exist, or does not belong to this project", "attribute": null, "url": "https://signalwire.com/docs/apis/error-codes"}]})
        );
    }
    let reply = h
        .send(
            Request::get(format!("/api/calling/calls/{CALL}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn list_calls_pages() {
    let h = Harness::new();
    let reply = h.get("/api/calling/calls").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(reply.body["links"], json!({"next": null}));
    let (project, filter) = h.control.filters.lock().unwrap().last().cloned().unwrap();
    assert_eq!(project, PROJECT);
    assert_eq!(
        (filter.limit, filter.status, filter.cursor),
        (50, None, None)
    );

    *h.control.next_cursor.lock().unwrap() = Some("page 2/x".into());
    let reply = h
        .get("/api/calling/calls?status=ended&limit=10&cursor=12%3A00000000-0000-0000-0000-000000000001")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body["links"]["next"],
        "/api/calling/calls?limit=10&status=ended&cursor=page%202%2Fx"
    );
    let (_, filter) = h.control.filters.lock().unwrap().last().cloned().unwrap();
    assert_eq!(filter.limit, 10);
    assert_eq!(filter.status, Some(CallStatus::Ended));
    assert_eq!(
        filter.cursor.as_deref(),
        Some("12:00000000-0000-0000-0000-000000000001")
    );

    let reply = h.get("/api/calling/calls?status=&limit=&cursor=").await;
    assert_eq!(reply.status, StatusCode::OK);
    for limit in ["1", "1000"] {
        let reply = h.get(&format!("/api/calling/calls?limit={limit}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{limit}");
    }
}

#[tokio::test]
async fn list_calls_rejects_bad_query_values() {
    let h = Harness::new();
    for (query, attributes) in [
        ("limit=0", vec!["limit"]),
        ("limit=1001", vec!["limit"]),
        ("limit=-1", vec!["limit"]),
        ("limit=ten", vec!["limit"]),
        ("limit=1.5", vec!["limit"]),
        ("status=done", vec!["status"]),
        ("status=Ended", vec!["status"]),
        ("status=nope&limit=0", vec!["status", "limit"]),
    ] {
        let reply = h.get(&format!("/api/calling/calls?{query}")).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let got: Vec<String> = reply.error_items().into_iter().map(|(_, a)| a).collect();
        assert_eq!(got, attributes, "{query}");
    }
    let reply = h
        .send(
            Request::get("/api/calling/calls")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn list_calls_malformed_cursor_is_400() {
    let h = Harness::new();
    for cursor in [
        "x",
        "12",
        "x%3Ay",
        "12%3Anot-a-uuid",
        "%00%FF",
        &"9".repeat(300),
    ] {
        let reply = h.get(&format!("/api/calling/calls?cursor={cursor}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{cursor}");
        let got: Vec<String> = reply.error_items().into_iter().map(|(_, a)| a).collect();
        assert_eq!(got, vec!["cursor".to_string()], "{cursor}");
    }
    let good = format!("12%3A{}", uuid::Uuid::new_v4());
    let reply = h.get(&format!("/api/calling/calls?cursor={good}")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

// ----- OpenAPI ---------------------------------------------------------------------------------

#[tokio::test]
async fn openapi_document_is_served_without_credentials() {
    let h = Harness::new();
    let reply = h
        .send(
            Request::get("/api/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["openapi"], "3.1.0");
    let post = &reply.body["paths"]["/api/calling/calls"]["post"];
    for status in ["200", "401", "422", "503"] {
        assert!(post["responses"][status].is_object(), "{status}");
    }
    let schemas = reply.body["components"]["schemas"].as_object().unwrap();
    assert_eq!(
        schemas["CallRequest"]["oneOf"].as_array().unwrap().len(),
        control::command::CommandName::ALL.len()
    );
    assert_eq!(h.control.received(), 0);
}
