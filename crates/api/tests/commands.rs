//! Table-driven validation of every command: required fields, types, ranges, enums and formats,
//! each with the exact status, code and attribute of calling-api.md.

mod common;

use common::*;
use serde_json::{json, Value};

fn long(n: usize) -> String {
    "x".repeat(n)
}

// ----- envelope --------------------------------------------------------------------------------

#[tokio::test]
async fn envelope_rules() {
    let h = Harness::new();
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (
            json!({"params": {}}),
            vec![("invalid_command_attempted", "command")],
        ),
        (
            json!({"command": 5, "params": {}}),
            vec![("invalid_command_attempted", "command")],
        ),
        (
            json!({"command": "calling.bogus", "id": CALL.to_string(), "params": {}}),
            vec![("invalid_command_attempted", "command")],
        ),
        (
            json!({"command": "Calling.End", "id": CALL.to_string(), "params": {}}),
            vec![("invalid_command_attempted", "command")],
        ),
        (
            json!({"command": "calling.end ", "id": CALL.to_string(), "params": {}}),
            vec![("invalid_command_attempted", "command")],
        ),
        (
            json!({"command": "", "params": {}}),
            vec![("invalid_command_attempted", "command")],
        ),
        (
            json!({"command": "calling.end", "params": {}}),
            vec![(MISSING, "id")],
        ),
        (
            json!({"command": "calling.end", "id": null, "params": {}}),
            vec![(MISSING, "id")],
        ),
        (
            json!({"command": "calling.end", "id": "abc", "params": {}}),
            vec![(INVALID, "id")],
        ),
        (
            json!({"command": "calling.end", "id": 5, "params": {}}),
            vec![(INVALID, "id")],
        ),
        (
            json!({"command": "calling.end", "id": "0e9c80d7a1494917892d420043709f45", "params": {}}),
            vec![(INVALID, "id")],
        ),
        (
            json!({"command": "calling.end", "id": CALL.to_string()}),
            vec![(MISSING, "params")],
        ),
        (
            json!({"command": "calling.end", "id": CALL.to_string(), "params": null}),
            vec![(MISSING, "params")],
        ),
        (
            json!({"command": "calling.end", "id": CALL.to_string(), "params": []}),
            vec![(NOT_OBJECT, "params")],
        ),
        (
            json!({"command": "calling.end", "id": CALL.to_string(), "params": "x"}),
            vec![(NOT_OBJECT, "params")],
        ),
        (
            json!({"command": "calling.end"}),
            vec![(MISSING, "params"), (MISSING, "id")],
        ),
        (
            json!({"command": "calling.play", "id": "x", "params": {"play": []}}),
            vec![(INVALID, "id"), (MISSING, "play")],
        ),
        (json!({"command": "dial"}), vec![(MISSING, "params")]),
        (
            json!({"command": "update", "params": {"url": "https://x.example/s"}}),
            vec![(MISSING, "id")],
        ),
        (
            json!({"command": "update"}),
            vec![(MISSING, "params"), (MISSING, "id")],
        ),
    ];
    let mut failures = Vec::new();
    for (body, expected) in &cases {
        let reply = h.post(body).await;
        let got = reply.error_items();
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(c, a)| ((*c).to_owned(), (*a).to_owned()))
            .collect();
        if reply.status != 422 || got != want {
            failures.push(format!("{body} → {} {got:?}, want {want:?}", reply.status));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(h.control.received(), 0);
}

#[tokio::test]
async fn every_command_is_known() {
    assert_eq!(
        control::command::CommandName::ALL.map(|c| c.as_str()).len(),
        42
    );
    let mut unique = control::command::CommandName::ALL
        .map(|c| c.as_str())
        .to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 42);
    // None of them is answered invalid_command_attempted, whatever its params.
    let h = Harness::new();
    for command in control::command::CommandName::ALL.map(|c| c.as_str()) {
        let reply = h.command(command, json!({})).await;
        assert!(
            !reply
                .error_items()
                .iter()
                .any(|(code, _)| code == "invalid_command_attempted"),
            "{command}: {}",
            reply.body
        );
    }
}

// ----- dial ------------------------------------------------------------------------------------

fn dial_base() -> Value {
    json!({"from": "+15105550100", "to": "+14155550199", "url": "https://app.example.net/swml"})
}

#[tokio::test]
async fn dial_table() {
    let b = dial_base();
    let sip = with(
        &b,
        json!({"to": "sip:alice@pbx.example.net", "from": "alice"}),
    );
    let doc = json!({"version": "1.0.0", "sections": {"main": [{"answer": {}}]}});
    let twenty: serde_json::Map<String, Value> =
        (0..20).map(|i| (format!("k{i}"), json!("v"))).collect();
    let twenty_one: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let mut rows = vec![
        ok("dial", b.clone()),
        ok("dial", sip.clone()),
        ok(
            "dial",
            with(
                &sip,
                json!({"to": "sips:alice@pbx.example.net:5061;transport=tls"}),
            ),
        ),
        ok("dial", with(&sip, json!({"from": "sip:bob@example.net"}))),
        ok("dial", with(&sip, json!({"from": "+15105550100"}))),
        ok(
            "dial",
            with(
                &b,
                json!({"to": "verto:alice@example.net", "from": "alice"}),
            ),
        ),
        ok(
            "dial",
            with(&b, json!({"to": "client:alice", "from": "alice"})),
        ),
        ok("dial", with(&b, json!({"url": null, "swml": doc.clone()}))),
        ok(
            "dial",
            with(&b, json!({"url": null, "swml": doc.to_string()})),
        ),
        ok(
            "dial",
            with(
                &b,
                json!({"url": null, "swml": "version: 1.0.0\nsections:\n  main:\n    - answer: {}\n"}),
            ),
        ),
        ok(
            "dial",
            with(&b, json!({"to": null, "to_script": doc.clone()})),
        ),
        ok(
            "dial",
            with(
                &b,
                json!({"to": null, "to_script": "https://x.example/dest.yaml"}),
            ),
        ),
        ok(
            "dial",
            with(
                &b,
                json!({"to": null, "to_script": "sections:\n  main:\n    - hangup: {}\n"}),
            ),
        ),
        ok("dial", with(&b, json!({"to_script": doc.clone()}))),
        ok("dial", with(&b, json!({"url_method": "GET"}))),
        ok("dial", with(&b, json!({"url_method": "post"}))),
        ok("dial", with(&b, json!({"codecs": ["PCMU", "PCMA"]}))),
        ok("dial", with(&b, json!({"codecs": "PCMU,PCMA"}))),
        ok("dial", with(&b, json!({"codecs": "pcmu, opus"}))),
        ok("dial", with(&b, json!({"codecs": ""}))),
        ok("dial", with(&b, json!({"codecs": []}))),
        ok("dial", with(&b, json!({"timeout": 1}))),
        ok("dial", with(&b, json!({"timeout": 600}))),
        ok("dial", with(&b, json!({"timeout": 45.0}))),
        ok("dial", with(&b, json!({"status_events": []}))),
        ok(
            "dial",
            with(
                &b,
                json!({"status_events": ["created", "ringing", "answered", "ended"]}),
            ),
        ),
        ok(
            "dial",
            with(
                &b,
                json!({"status_events": ["queued", "initiated", "ending"]}),
            ),
        ),
        ok("dial", with(&b, json!({"caller_id": "+15105550111"}))),
        ok("dial", with(&sip, json!({"caller_id": "Support"}))),
        ok(
            "dial",
            with(&sip, json!({"caller_id": "sip:support@example.net"})),
        ),
        ok("dial", with(&b, json!({"send_digits": "1w2,3#*ABCDabcd"}))),
        ok("dial", with(&b, json!({"send_digits": ""}))),
        ok("dial", with(&b, json!({"region": "us-east"}))),
        ok("dial", with(&b, json!({"region": ["us-east", "eu-west"]}))),
        ok("dial", with(&b, json!({"custom_variables": twenty}))),
        ok(
            "dial",
            with(
                &b,
                json!({"custom_variables": {"ticket_id": "T-8841", "_x": "y", "Sw": "z"}}),
            ),
        ),
        ok(
            "dial",
            with(&b, json!({"custom_variables": {"k": long(1024)}})),
        ),
        ok("dial", with(&b, json!({"custom_variables": {}}))),
        ok("dial", with(&b, json!({"max_price_per_minute": 0}))),
        ok("dial", with(&b, json!({"max_price_per_minute": 0.05}))),
        ok(
            "dial",
            with(&sip, json!({"username": "u", "password": "p"})),
        ),
        ok(
            "dial",
            with(&b, json!({"fallback_url": "https://fallback.example/swml"})),
        ),
        ok(
            "dial",
            with(
                &b,
                json!({"status_url": "https://user:pass@hooks.example/state"}),
            ),
        ),
        ok(
            "dial",
            with(&b, json!({"status_url": "http://127.0.0.1:9000/hook"})),
        ),
        ok(
            "dial",
            with(&b, json!({"caller_id": null, "status_url": null})),
        ),
        ok("dial", with(&b, json!({"unknown_key": {"anything": true}}))),
        // from
        invalid("dial", without(&b, "from"), MISSING, "from"),
        invalid("dial", with(&b, json!({"from": ""})), MISSING, "from"),
        invalid(
            "dial",
            with(&b, json!({"from": 15105550100_u64})),
            INVALID,
            "from",
        ),
        invalid(
            "dial",
            with(&b, json!({"from": "alice"})),
            "not_e164",
            "from",
        ),
        invalid(
            "dial",
            with(&b, json!({"from": "sip:alice@example.net"})),
            "not_e164",
            "from",
        ),
        invalid(
            "dial",
            with(&sip, json!({"from": "not valid!"})),
            INVALID,
            "from",
        ),
        // to
        invalid("dial", without(&b, "to"), MISSING, "to"),
        invalid("dial", with(&b, json!({"to": ""})), MISSING, "to"),
        invalid(
            "dial",
            with(&b, json!({"to": 14155550199_u64})),
            INVALID,
            "to",
        ),
        invalid(
            "dial",
            with(&b, json!({"to": "14155550199"})),
            "not_e164",
            "to",
        ),
        invalid(
            "dial",
            with(&b, json!({"to": "+04155550199"})),
            "not_e164",
            "to",
        ),
        invalid(
            "dial",
            with(&b, json!({"to": "+1415555019912345"})),
            "not_e164",
            "to",
        ),
        invalid(
            "dial",
            with(&b, json!({"to": "+1 415 555"})),
            "not_e164",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "sip:"})),
            "invalid_sip_destination",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "sip:@pbx"})),
            "invalid_sip_destination",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "sip:alice@"})),
            "invalid_sip_destination",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "sip:al ice@pbx"})),
            "invalid_sip_destination",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "/private/alice"})),
            "uri_does_not_resolve_to_address",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "/public/room"})),
            "uri_does_not_resolve_to_address",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "alice"})),
            "to_destination_unresolvable",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "tel:+14155550199"})),
            "to_destination_unresolvable",
            "to",
        ),
        invalid(
            "dial",
            with(&sip, json!({"to": "verto:"})),
            "to_destination_unresolvable",
            "to",
        ),
        // url / swml
        invalid(
            "dial",
            without(&b, "url"),
            "inline_swml_or_swml_webhook_required",
            "url",
        ),
        invalid(
            "dial",
            with(&b, json!({"url": null})),
            "inline_swml_or_swml_webhook_required",
            "url",
        ),
        invalid(
            "dial",
            with(&b, json!({"swml": doc.clone()})),
            "incompatible_parameters",
            "swml",
        ),
        invalid(
            "dial",
            with(&b, json!({"url": "ftp://x.example/s"})),
            NOT_HTTP,
            "url",
        ),
        invalid(
            "dial",
            with(&b, json!({"url": "app.example.net/swml"})),
            NOT_HTTP,
            "url",
        ),
        invalid("dial", with(&b, json!({"url": ""})), NOT_HTTP, "url"),
        invalid("dial", with(&b, json!({"url": 5})), NOT_HTTP, "url"),
        invalid(
            "dial",
            with(&b, json!({"url": null, "swml": "hello"})),
            INVALID,
            "swml",
        ),
        invalid(
            "dial",
            with(&b, json!({"url": null, "swml": "[1, 2]"})),
            INVALID,
            "swml",
        ),
        invalid(
            "dial",
            with(&b, json!({"url": null, "swml": "a: ["})),
            INVALID,
            "swml",
        ),
        invalid(
            "dial",
            with(&b, json!({"url": null, "swml": 5})),
            INVALID,
            "swml",
        ),
        invalid(
            "dial",
            with(&b, json!({"url": null, "swml": ["main"]})),
            INVALID,
            "swml",
        ),
        // to_script
        invalid(
            "dial",
            with(&b, json!({"to_script": 5})),
            INVALID,
            "to_script",
        ),
        invalid(
            "dial",
            with(&b, json!({"to_script": "ftp://x"})),
            INVALID,
            "to_script",
        ),
        invalid(
            "dial",
            with(&b, json!({"to": null, "to_script": "just words"})),
            INVALID,
            "to_script",
        ),
        // url_method
        invalid(
            "dial",
            with(&b, json!({"url_method": "PUT"})),
            "invalid_http_method",
            "url_method",
        ),
        invalid(
            "dial",
            with(&b, json!({"url_method": 1})),
            "invalid_http_method",
            "url_method",
        ),
        invalid(
            "dial",
            with(&b, json!({"url_method": ""})),
            "invalid_http_method",
            "url_method",
        ),
        // codecs
        invalid(
            "dial",
            with(&b, json!({"codecs": 5})),
            "invalid_codecs_format",
            "codecs",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": {"a": "PCMU"}})),
            "invalid_codecs_format",
            "codecs",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": ["PCMU", 1]})),
            "invalid_codecs_format",
            "codecs",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": "PCMU,,PCMA"})),
            "invalid_codecs_format",
            "codecs",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": "PCMU,"})),
            "invalid_codecs_format",
            "codecs",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": ["PCMU", ""]})),
            "invalid_codecs_format",
            "codecs",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": "GSM"})),
            INVALID,
            "codecs",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": "PCMU,iLBC"})),
            INVALID,
            "codecs",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": ["PCMU", "GSM"]})),
            INVALID,
            "codecs.1",
        ),
        invalid(
            "dial",
            with(&b, json!({"codecs": ["OPUS@44100H@20I"]})),
            INVALID,
            "codecs.0",
        ),
        // timeout
        invalid("dial", with(&b, json!({"timeout": 0})), INVALID, "timeout"),
        invalid(
            "dial",
            with(&b, json!({"timeout": 601})),
            INVALID,
            "timeout",
        ),
        invalid("dial", with(&b, json!({"timeout": -5})), INVALID, "timeout"),
        invalid(
            "dial",
            with(&b, json!({"timeout": 1.5})),
            INVALID,
            "timeout",
        ),
        invalid(
            "dial",
            with(&b, json!({"timeout": "60"})),
            INVALID,
            "timeout",
        ),
        invalid(
            "dial",
            with(&b, json!({"timeout": true})),
            INVALID,
            "timeout",
        ),
        // status_events
        invalid(
            "dial",
            with(&b, json!({"status_events": "ended"})),
            INVALID,
            "status_events",
        ),
        invalid(
            "dial",
            with(&b, json!({"status_events": ["completed"]})),
            INVALID,
            "status_events.0",
        ),
        invalid(
            "dial",
            with(&b, json!({"status_events": ["ended", 5]})),
            INVALID,
            "status_events.1",
        ),
        invalid(
            "dial",
            with(&b, json!({"status_events": ["Ended"]})),
            INVALID,
            "status_events.0",
        ),
        // caller_id
        invalid(
            "dial",
            with(&b, json!({"caller_id": "Support"})),
            "not_valid_for_caller_id",
            "caller_id",
        ),
        invalid(
            "dial",
            with(&b, json!({"caller_id": "sip:a@b"})),
            "not_valid_for_caller_id",
            "caller_id",
        ),
        invalid(
            "dial",
            with(&b, json!({"caller_id": 5})),
            "not_valid_for_caller_id",
            "caller_id",
        ),
        invalid(
            "dial",
            with(&sip, json!({"caller_id": "two words"})),
            "not_valid_for_caller_id",
            "caller_id",
        ),
        invalid(
            "dial",
            with(&sip, json!({"caller_id": ""})),
            "not_valid_for_caller_id",
            "caller_id",
        ),
        // other urls
        invalid(
            "dial",
            with(&b, json!({"fallback_url": "nope"})),
            NOT_HTTP,
            "fallback_url",
        ),
        invalid(
            "dial",
            with(&b, json!({"status_url": "ws://hooks.example/x"})),
            NOT_HTTP,
            "status_url",
        ),
        invalid(
            "dial",
            with(&b, json!({"status_url": "https://"})),
            NOT_HTTP,
            "status_url",
        ),
        invalid(
            "dial",
            with(&b, json!({"status_url": ["https://x.example"]})),
            NOT_HTTP,
            "status_url",
        ),
        // send_digits, region, price, credentials
        invalid(
            "dial",
            with(&b, json!({"send_digits": "12x"})),
            INVALID,
            "send_digits",
        ),
        invalid(
            "dial",
            with(&b, json!({"send_digits": "1 2"})),
            INVALID,
            "send_digits",
        ),
        invalid(
            "dial",
            with(&b, json!({"send_digits": 12})),
            INVALID,
            "send_digits",
        ),
        invalid("dial", with(&b, json!({"region": 5})), INVALID, "region"),
        invalid("dial", with(&b, json!({"region": ""})), INVALID, "region"),
        invalid(
            "dial",
            with(&b, json!({"region": ["us", 1]})),
            INVALID,
            "region",
        ),
        invalid(
            "dial",
            with(&b, json!({"max_price_per_minute": -0.01})),
            INVALID,
            "max_price_per_minute",
        ),
        invalid(
            "dial",
            with(&b, json!({"max_price_per_minute": "0.1"})),
            INVALID,
            "max_price_per_minute",
        ),
        invalid(
            "dial",
            with(&sip, json!({"username": 5})),
            INVALID,
            "username",
        ),
        invalid(
            "dial",
            with(&sip, json!({"password": false})),
            INVALID,
            "password",
        ),
        // custom_variables
        invalid(
            "dial",
            with(&b, json!({"custom_variables": []})),
            NOT_OBJECT,
            "custom_variables",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": "a=b"})),
            NOT_OBJECT,
            "custom_variables",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": twenty_one})),
            "too_many_custom_variables",
            "custom_variables",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"1x": "v"}})),
            "invalid_custom_variable_name",
            "custom_variables.1x",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"a-b": "v"}})),
            "invalid_custom_variable_name",
            "custom_variables.a-b",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"": "v"}})),
            "invalid_custom_variable_name",
            "custom_variables.",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"ключ": "v"}})),
            "invalid_custom_variable_name",
            "custom_variables.ключ",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"signalwire_x": "v"}})),
            "reserved_custom_variable_name",
            "custom_variables.signalwire_x",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"SignalWire_x": "v"}})),
            "reserved_custom_variable_name",
            "custom_variables.SignalWire_x",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"SW_x": "v"}})),
            "reserved_custom_variable_name",
            "custom_variables.SW_x",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"rtc_": "v"}})),
            "reserved_custom_variable_name",
            "custom_variables.rtc_",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"Internal_id": "v"}})),
            "reserved_custom_variable_name",
            "custom_variables.Internal_id",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"k": ""}})),
            "invalid_custom_variable_value",
            "custom_variables.k",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"k": 5}})),
            "invalid_custom_variable_value",
            "custom_variables.k",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"k": null}})),
            "invalid_custom_variable_value",
            "custom_variables.k",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"k": {"a": 1}}})),
            "invalid_custom_variable_value",
            "custom_variables.k",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"k": long(1025)}})),
            "custom_variable_value_too_long",
            "custom_variables.k",
        ),
        invalid(
            "dial",
            with(&b, json!({"custom_variables": {"k": "é".repeat(513)}})),
            "custom_variable_value_too_long",
            "custom_variables.k",
        ),
    ];
    // Every subscribable state alone.
    for state in [
        "queued",
        "initiated",
        "created",
        "ringing",
        "answered",
        "ending",
        "ended",
    ] {
        rows.push(ok("dial", with(&b, json!({"status_events": [state]}))));
    }
    // Every OutboundCallCodec spelling.
    for codec in [
        "OPUS",
        "OPUS@48000H@20I",
        "OPUS@24000H@20I",
        "OPUS@16000H@20I",
        "OPUS@8000H@20I",
        "G722",
        "PCMU",
        "PCMA",
        "G729",
        "VP8",
        "H264",
    ] {
        rows.push(ok("dial", with(&b, json!({"codecs": [codec]}))));
        rows.push(ok("dial", with(&b, json!({"codecs": codec}))));
    }
    let n = run_table(rows).await;
    assert!(n > 150);
}

#[tokio::test]
async fn dial_reports_every_problem_at_once() {
    let h = Harness::new();
    let reply = h
        .command(
            "dial",
            json!({"from": "", "to": "/private/x", "url": "x", "swml": {}, "timeout": 0,
                   "codecs": 5, "custom_variables": {"sw_a": "v", "ok": ""}}),
        )
        .await;
    assert_eq!(reply.status, 422);
    let items = reply.error_items();
    for (code, attribute) in [
        ("uri_does_not_resolve_to_address", "to"),
        (MISSING, "from"),
        (NOT_HTTP, "url"),
        ("incompatible_parameters", "swml"),
        (INVALID, "timeout"),
        ("invalid_codecs_format", "codecs"),
        ("reserved_custom_variable_name", "custom_variables.sw_a"),
        ("invalid_custom_variable_value", "custom_variables.ok"),
    ] {
        assert!(
            items.contains(&(code.to_owned(), attribute.to_owned())),
            "missing {code}@{attribute} in {items:?}"
        );
    }
    assert_eq!(items.len(), 8, "{items:?}");
    for item in reply.body["errors"].as_array().unwrap() {
        assert_eq!(item["type"], "validation_error");
        assert_eq!(item["url"], "https://signalwire.com/docs/apis/error-codes");
        assert!(item["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

// ----- update, end, transfer, disconnect -------------------------------------------------------

#[tokio::test]
async fn update_table() {
    let b = json!({"id": CALL.to_string(), "url": "https://app.example.net/next"});
    let doc = json!({"sections": {"main": [{"hangup": {}}]}});
    let rows = vec![
        ok("update", b.clone()),
        ok(
            "update",
            with(&b, json!({"url": null, "swml": doc.clone()})),
        ),
        ok(
            "update",
            with(&b, json!({"url": null, "swml": doc.to_string()})),
        ),
        ok(
            "update",
            with(&b, json!({"url": null, "status": "canceled"})),
        ),
        ok(
            "update",
            with(&b, json!({"url": null, "status": "completed"})),
        ),
        ok("update", with(&b, json!({"status": "completed"}))),
        ok(
            "update",
            with(&b, json!({"fallback_url": "https://fallback.example/s"})),
        ),
        ok(
            "update",
            with(&b, json!({"status_url": "https://hooks.example/s"})),
        ),
        ok(
            "update",
            with(&b, json!({"id": null, "call_id": CALL.to_string()})),
        ),
        ok("update", with(&b, json!({"metadata": {"a": 1}}))),
        invalid("update", with(&b, json!({"id": "nope"})), INVALID, "id"),
        invalid("update", with(&b, json!({"id": 42})), INVALID, "id"),
        invalid(
            "update",
            with(&b, json!({"id": null, "call_id": "nope"})),
            INVALID,
            "call_id",
        ),
        invalid("update", with(&b, json!({"id": null})), MISSING, "id"),
        invalid(
            "update",
            with(&b, json!({"url": null})),
            "inline_swml_or_swml_webhook_required",
            "url",
        ),
        invalid(
            "update",
            with(&b, json!({"swml": doc.clone()})),
            "incompatible_parameters",
            "swml",
        ),
        invalid(
            "update",
            with(&b, json!({"status": "ended"})),
            INVALID,
            "status",
        ),
        invalid(
            "update",
            with(&b, json!({"status": "Canceled"})),
            INVALID,
            "status",
        ),
        invalid("update", with(&b, json!({"status": 1})), INVALID, "status"),
        invalid("update", with(&b, json!({"url": "nope"})), NOT_HTTP, "url"),
        invalid(
            "update",
            with(&b, json!({"url": null, "swml": "nope"})),
            INVALID,
            "swml",
        ),
        invalid(
            "update",
            with(&b, json!({"fallback_url": "nope"})),
            NOT_HTTP,
            "fallback_url",
        ),
        invalid(
            "update",
            with(&b, json!({"status_url": "nope"})),
            NOT_HTTP,
            "status_url",
        ),
    ];
    run_table(rows).await;
}

#[tokio::test]
async fn end_transfer_disconnect_tables() {
    let mut rows = vec![
        ok("calling.end", json!({})),
        ok("calling.end", json!({"reason": null})),
        invalid("calling.end", json!({"reason": "nope"}), INVALID, "reason"),
        invalid(
            "calling.end",
            json!({"reason": "NoAnswer"}),
            INVALID,
            "reason",
        ),
        invalid(
            "calling.end",
            json!({"reason": "max_duration"}),
            INVALID,
            "reason",
        ),
        invalid("calling.end", json!({"reason": 5}), INVALID, "reason"),
        ok(
            "calling.transfer",
            json!({"dest": "sip:bob@pbx.example.net"}),
        ),
        ok("calling.transfer", json!({"dest": "+14155550100"})),
        ok(
            "calling.transfer",
            json!({"dest": "https://app.example.net/transfer.json"}),
        ),
        ok(
            "calling.transfer",
            json!({"dest": {"version": "1.0.0", "sections": {"main": [{"play": {"url": "say:hi"}}]}}}),
        ),
        ok(
            "calling.transfer",
            json!({"dest": {"type": "phone", "params": {"to_number": "+14155550100"}}}),
        ),
        ok(
            "calling.transfer",
            json!({"dest": {"type": "sip", "params": {"to": "sip:bob@pbx"}}}),
        ),
        invalid("calling.transfer", json!({}), MISSING, "dest"),
        invalid("calling.transfer", json!({"dest": ""}), INVALID, "dest"),
        invalid("calling.transfer", json!({"dest": "bob"}), INVALID, "dest"),
        invalid("calling.transfer", json!({"dest": 5}), INVALID, "dest"),
        invalid(
            "calling.transfer",
            json!({"dest": ["sip:bob@pbx"]}),
            INVALID,
            "dest",
        ),
        invalid(
            "calling.transfer",
            json!({"dest": {"foo": 1}}),
            INVALID,
            "dest",
        ),
        invalid(
            "calling.transfer",
            json!({"dest": {"type": "phone", "params": {"to_number": "555"}}}),
            INVALID,
            "dest",
        ),
        invalid(
            "calling.transfer",
            json!({"dest": {"type": "phone"}}),
            INVALID,
            "dest",
        ),
        invalid(
            "calling.transfer",
            json!({"dest": {"type": "sip", "params": {"to": "bob"}}}),
            INVALID,
            "dest",
        ),
        invalid(
            "calling.transfer",
            json!({"dest": {"type": "webrtc", "params": {"to": "x"}}}),
            INVALID,
            "dest",
        ),
    ];
    for reason in [
        "hangup",
        "cancel",
        "busy",
        "noAnswer",
        "no_answer",
        "decline",
        "declined",
        "error",
    ] {
        rows.push(ok("calling.end", json!({"reason": reason})));
    }
    for command in [
        "calling.disconnect",
        "calling.denoise",
        "calling.denoise.stop",
        "calling.ai_sidecar.stop",
        "calling.ai_sidecar.status",
    ] {
        rows.push(ok(command, json!({})));
        rows.push(ok(command, json!({"ignored": "extra"})));
    }
    run_table(rows).await;
}

// ----- control_id-only commands ----------------------------------------------------------------

#[tokio::test]
async fn control_id_commands_table() {
    let mut rows = Vec::new();
    for command in [
        "calling.play.pause",
        "calling.play.resume",
        "calling.play.stop",
        "calling.record.resume",
        "calling.record.stop",
        "calling.collect.stop",
        "calling.collect.start_input_timers",
        "calling.detect.stop",
        "calling.tap.stop",
        "calling.stream.stop",
        "calling.transcribe.stop",
        "calling.send_fax.stop",
        "calling.receive_fax.stop",
    ] {
        rows.push(ok(command, json!({"control_id": "op-1"})));
        rows.push(ok(
            command,
            json!({"control_id": "0e9c80d7-a149-4917-892d-420043709f45", "x": 1}),
        ));
        rows.push(invalid(command, json!({}), MISSING, "control_id"));
        rows.push(invalid(
            command,
            json!({"control_id": ""}),
            MISSING,
            "control_id",
        ));
        rows.push(invalid(
            command,
            json!({"control_id": null}),
            MISSING,
            "control_id",
        ));
        rows.push(invalid(
            command,
            json!({"control_id": 7}),
            INVALID,
            "control_id",
        ));
        rows.push(invalid(
            command,
            json!({"control_id": ["a"]}),
            INVALID,
            "control_id",
        ));
    }
    let n = run_table(rows).await;
    assert_eq!(n, 13 * 7);
}

// ----- play ------------------------------------------------------------------------------------

fn play_base() -> Value {
    json!({"control_id": "p1", "play": [{"type": "audio", "params": {"url": "https://cdn.example/a.mp3"}}]})
}

fn play_item(item: Value) -> Value {
    with(&play_base(), json!({"play": [item]}))
}

#[tokio::test]
async fn play_table() {
    let b = play_base();
    let mut rows = vec![
        ok("calling.play", b.clone()),
        ok("calling.play", without(&b, "control_id")),
        ok(
            "calling.play",
            play_item(json!({"type": "tts", "params": {"text": "Hello"}})),
        ),
        ok(
            "calling.play",
            play_item(
                json!({"type": "tts", "params": {"text": "Hi", "language": "fr-FR", "gender": "male", "voice": "gcloud.fr-FR-Neural2-A"}}),
            ),
        ),
        ok(
            "calling.play",
            play_item(json!({"type": "tts", "text": "Hello flat"})),
        ),
        ok(
            "calling.play",
            play_item(json!({"type": "audio", "url": "https://cdn.example/flat.wav"})),
        ),
        ok(
            "calling.play",
            play_item(json!({"type": "silence", "params": {"duration": 1.5}})),
        ),
        ok(
            "calling.play",
            play_item(json!({"type": "silence", "duration": 2})),
        ),
        ok(
            "calling.play",
            play_item(json!({"type": "ringtone", "params": {"name": "us", "duration": 3.0}})),
        ),
        ok(
            "calling.play",
            with(
                &b,
                json!({"play": [
                    {"type": "audio", "params": {"url": "https://cdn.example/a.mp3"}},
                    {"type": "tts", "text": "then this"},
                    {"type": "silence", "params": {"duration": 0.1}},
                ]}),
            ),
        ),
        ok("calling.play", with(&b, json!({"volume": -40}))),
        ok("calling.play", with(&b, json!({"volume": 40}))),
        ok("calling.play", with(&b, json!({"volume": 2.5}))),
        ok("calling.play", with(&b, json!({"loop": 0}))),
        ok("calling.play", with(&b, json!({"loop": 10}))),
        ok(
            "calling.play",
            with(
                &b,
                json!({"language": "de-DE", "voice": "en-US-Wavenet-D", "gender": "male"}),
            ),
        ),
        ok(
            "calling.play",
            with(&b, json!({"status_url": "https://hooks.example/play"})),
        ),
        invalid("calling.play", without(&b, "play"), MISSING, "play"),
        invalid(
            "calling.play",
            with(&b, json!({"play": []})),
            MISSING,
            "play",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"play": {"type": "tts"}})),
            INVALID,
            "play",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"play": "https://cdn.example/a.mp3"})),
            INVALID,
            "play",
        ),
        invalid("calling.play", play_item(json!(5)), NOT_OBJECT, "play.0"),
        // Text to speak: at most 3,000 characters per item and 10,000 per command.
        ok(
            "calling.play",
            play_item(json!({"type": "tts", "params": {"text": "é".repeat(3000)}})),
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "tts", "params": {"text": "é".repeat(3001)}})),
            INVALID,
            "play.0.params.text",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "tts", "text": long(3001)})),
            INVALID,
            "play.0.text",
        ),
        ok(
            "calling.play",
            with(
                &b,
                json!({"play": vec![json!({"type": "tts", "text": long(2500)}); 4]}),
            ),
        ),
        invalid(
            "calling.play",
            with(
                &b,
                json!({"play": vec![json!({"type": "tts", "text": long(2500)}); 5]}),
            ),
            INVALID,
            "play",
        ),
        invalid(
            "calling.play",
            play_item(json!({"params": {"url": "https://x.example/a"}})),
            MISSING,
            "play.0.type",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "video", "params": {}})),
            INVALID,
            "play.0.type",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "audio", "params": 5})),
            NOT_OBJECT,
            "play.0.params",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "audio", "params": {}})),
            MISSING,
            "play.0.params.url",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "audio", "params": {"url": "ftp://x/a"}})),
            NOT_HTTP,
            "play.0.params.url",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "audio", "url": "cdn.example/a"})),
            NOT_HTTP,
            "play.0.url",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "audio"})),
            MISSING,
            "play.0.url",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "tts", "params": {}})),
            MISSING,
            "play.0.params.text",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "tts", "params": {"text": ""}})),
            MISSING,
            "play.0.params.text",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "tts", "params": {"text": 5}})),
            INVALID,
            "play.0.params.text",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "tts", "text": "x", "gender": "robot"})),
            INVALID,
            "play.0.gender",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "tts", "params": {"text": "x", "gender": "other"}})),
            INVALID,
            "play.0.params.gender",
        ),
        invalid(
            "calling.play",
            play_item(
                json!({"type": "tts", "params": {"text": "x", "voice": "amazon.Joanna:neural"}}),
            ),
            INVALID,
            "play.0.params.voice",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "tts", "params": {"text": "x", "language": 5}})),
            INVALID,
            "play.0.params.language",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "silence", "params": {}})),
            MISSING,
            "play.0.params.duration",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "silence", "params": {"duration": 0}})),
            INVALID,
            "play.0.params.duration",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "silence", "params": {"duration": -1}})),
            INVALID,
            "play.0.params.duration",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "silence", "params": {"duration": "1"}})),
            INVALID,
            "play.0.params.duration",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "ringtone", "params": {}})),
            MISSING,
            "play.0.params.name",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "ringtone", "params": {"name": "xx"}})),
            INVALID,
            "play.0.params.name",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "ringtone", "params": {"name": "US"}})),
            INVALID,
            "play.0.params.name",
        ),
        invalid(
            "calling.play",
            play_item(json!({"type": "ringtone", "params": {"name": "us", "duration": 0}})),
            INVALID,
            "play.0.params.duration",
        ),
        invalid(
            "calling.play",
            with(
                &b,
                json!({"play": [
                    {"type": "audio", "params": {"url": "https://cdn.example/a.mp3"}},
                    {"type": "silence", "params": {"duration": 0}},
                ]}),
            ),
            INVALID,
            "play.1.params.duration",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"volume": 40.5})),
            INVALID,
            "volume",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"volume": -41})),
            INVALID,
            "volume",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"volume": "5"})),
            INVALID,
            "volume",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"direction": "up"})),
            INVALID,
            "direction",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"direction": "LISTEN"})),
            INVALID,
            "direction",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"loop": -1})),
            INVALID,
            "loop",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"loop": 1.5})),
            INVALID,
            "loop",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"loop": "2"})),
            INVALID,
            "loop",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"gender": "x"})),
            INVALID,
            "gender",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"voice": "two words"})),
            INVALID,
            "voice",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"language": 5})),
            INVALID,
            "language",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"status_url": "hooks.example"})),
            NOT_HTTP,
            "status_url",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"control_id": ""})),
            MISSING,
            "control_id",
        ),
        invalid(
            "calling.play",
            with(&b, json!({"control_id": 5})),
            INVALID,
            "control_id",
        ),
        ok(
            "calling.play.volume",
            json!({"control_id": "p1", "volume": -40}),
        ),
        ok(
            "calling.play.volume",
            json!({"control_id": "p1", "volume": 40}),
        ),
        ok(
            "calling.play.volume",
            json!({"control_id": "p1", "volume": 0}),
        ),
        invalid(
            "calling.play.volume",
            json!({"control_id": "p1"}),
            MISSING,
            "volume",
        ),
        invalid(
            "calling.play.volume",
            json!({"control_id": "p1", "volume": 41}),
            INVALID,
            "volume",
        ),
        invalid(
            "calling.play.volume",
            json!({"control_id": "p1", "volume": "loud"}),
            INVALID,
            "volume",
        ),
        invalid(
            "calling.play.volume",
            json!({"volume": 1}),
            MISSING,
            "control_id",
        ),
    ];
    for name in [
        "at", "au", "be", "bg", "bong", "br", "ca", "ch", "cl", "cn", "cy", "cz", "de", "dk", "dz",
        "ee", "eg", "es", "fi", "fr", "gr", "hu", "il", "in", "it", "jp", "ko", "lt", "mx", "my",
        "nl", "no", "nz", "ph", "pk", "pl", "pt", "ro", "rs", "ru", "sa", "se", "sg", "th", "tr",
        "tw", "uk", "us", "ve", "za",
    ] {
        rows.push(ok(
            "calling.play",
            play_item(json!({"type": "ringtone", "params": {"name": name}})),
        ));
    }
    for direction in ["listen", "speak", "both"] {
        rows.push(ok(
            "calling.play",
            with(&b, json!({"direction": direction})),
        ));
    }
    run_table(rows).await;
}

// ----- record ----------------------------------------------------------------------------------

fn record_base() -> Value {
    json!({"control_id": "r1", "record": {"audio": {}}})
}

fn record_audio(audio: Value) -> Value {
    with(&record_base(), json!({"record": {"audio": audio}}))
}

#[tokio::test]
async fn record_table() {
    let b = record_base();
    let mut rows = vec![
        ok("calling.record", b.clone()),
        ok("calling.record", without(&b, "control_id")),
        ok("calling.record", json!({"audio": {"format": "wav"}})),
        ok(
            "calling.record",
            json!({"audio": {}, "record": {"audio": {"stereo": true}}}),
        ),
        ok("calling.record", json!({"record": {}, "audio": {}})),
        ok(
            "calling.record",
            record_audio(json!({
                "beep": true, "format": "mp4", "stereo": true, "direction": "both",
                "initial_timeout": 0, "end_silence_timeout": 0, "max_length": 3600,
                "terminators": "#*1", "input_sensitivity": 100
            })),
        ),
        ok("calling.record", record_audio(json!({"terminators": ""}))),
        ok(
            "calling.record",
            with(&b, json!({"status_url": "https://hooks.example/rec"})),
        ),
        invalid("calling.record", json!({}), MISSING, "record"),
        invalid("calling.record", json!({"record": 5}), NOT_OBJECT, "record"),
        invalid(
            "calling.record",
            json!({"record": {}}),
            MISSING,
            "record.audio",
        ),
        invalid(
            "calling.record",
            json!({"record": {"audio": 5}}),
            NOT_OBJECT,
            "record.audio",
        ),
        invalid(
            "calling.record",
            json!({"audio": "wav"}),
            NOT_OBJECT,
            "audio",
        ),
        invalid(
            "calling.record",
            json!({"audio": {"format": "ogg"}}),
            INVALID,
            "audio.format",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"format": "ogg"})),
            INVALID,
            "record.audio.format",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"format": "MP3"})),
            INVALID,
            "record.audio.format",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"beep": "yes"})),
            INVALID,
            "record.audio.beep",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"stereo": 1})),
            INVALID,
            "record.audio.stereo",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"direction": "in"})),
            INVALID,
            "record.audio.direction",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"initial_timeout": -1})),
            INVALID,
            "record.audio.initial_timeout",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"end_silence_timeout": -0.5})),
            INVALID,
            "record.audio.end_silence_timeout",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"max_length": -1})),
            INVALID,
            "record.audio.max_length",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"max_length": 1.5})),
            INVALID,
            "record.audio.max_length",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"terminators": "x"})),
            INVALID,
            "record.audio.terminators",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"terminators": 5})),
            INVALID,
            "record.audio.terminators",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"input_sensitivity": 100.5})),
            INVALID,
            "record.audio.input_sensitivity",
        ),
        invalid(
            "calling.record",
            record_audio(json!({"input_sensitivity": -1})),
            INVALID,
            "record.audio.input_sensitivity",
        ),
        invalid(
            "calling.record",
            with(&b, json!({"status_url": "x"})),
            NOT_HTTP,
            "status_url",
        ),
        invalid(
            "calling.record",
            with(&b, json!({"control_id": false})),
            INVALID,
            "control_id",
        ),
        ok("calling.record.pause", json!({"control_id": "r1"})),
        ok(
            "calling.record.pause",
            json!({"control_id": "r1", "behavior": "skip"}),
        ),
        ok(
            "calling.record.pause",
            json!({"control_id": "r1", "behavior": "silence"}),
        ),
        invalid(
            "calling.record.pause",
            json!({"control_id": "r1", "behavior": "drop"}),
            INVALID,
            "behavior",
        ),
        invalid(
            "calling.record.pause",
            json!({"behavior": "skip"}),
            MISSING,
            "control_id",
        ),
    ];
    for format in ["mp3", "wav", "mp4"] {
        rows.push(ok(
            "calling.record",
            record_audio(json!({"format": format})),
        ));
    }
    for direction in ["listen", "speak", "both"] {
        rows.push(ok(
            "calling.record",
            record_audio(json!({"direction": direction})),
        ));
    }
    run_table(rows).await;
}

// ----- collect ---------------------------------------------------------------------------------

#[tokio::test]
async fn collect_table() {
    let b = json!({"control_id": "c1", "digits": {"max": 4}});
    let digits = |d: Value| with(&b, json!({"digits": d}));
    let speech = |s: Value| json!({"control_id": "c1", "speech": s});
    let mut rows = vec![
        ok("calling.collect", b.clone()),
        ok("calling.collect", without(&b, "control_id")),
        ok(
            "calling.collect",
            digits(json!({"max": 1, "terminators": "#", "digit_timeout": 0.5})),
        ),
        ok(
            "calling.collect",
            digits(json!({"max": 10, "terminators": ""})),
        ),
        ok("calling.collect", speech(json!({}))),
        ok(
            "calling.collect",
            speech(json!({
                "end_silence_timeout": 1.0, "speech_timeout": 30, "language": "Deepgram:en-US",
                "hints": ["yes", "no"], "model": "nova-3", "engine": "Deepgram"
            })),
        ),
        ok(
            "calling.collect",
            with(&b, json!({"speech": {"hints": []}})),
        ),
        ok(
            "calling.collect",
            with(
                &b,
                json!({
                    "initial_timeout": 0.5, "continuous": true, "partial_results": true,
                    "send_start_of_input": true, "start_input_timers": true,
                    "status_url": "https://hooks.example/collect"
                }),
            ),
        ),
        bad_request("calling.collect", json!({})),
        bad_request("calling.collect", json!({"control_id": "c1"})),
        bad_request(
            "calling.collect",
            json!({"control_id": "c1", "digits": null, "speech": null}),
        ),
        bad_request(
            "calling.collect",
            json!({"control_id": "c1", "initial_timeout": -1}),
        ),
        invalid(
            "calling.collect",
            with(&b, json!({"digits": 5})),
            NOT_OBJECT,
            "digits",
        ),
        invalid(
            "calling.collect",
            with(&b, json!({"digits": []})),
            NOT_OBJECT,
            "digits",
        ),
        invalid("calling.collect", digits(json!({})), MISSING, "digits.max"),
        invalid(
            "calling.collect",
            digits(json!({"max": 0})),
            INVALID,
            "digits.max",
        ),
        invalid(
            "calling.collect",
            digits(json!({"max": -3})),
            INVALID,
            "digits.max",
        ),
        invalid(
            "calling.collect",
            digits(json!({"max": 2.5})),
            INVALID,
            "digits.max",
        ),
        invalid(
            "calling.collect",
            digits(json!({"max": "4"})),
            INVALID,
            "digits.max",
        ),
        invalid(
            "calling.collect",
            digits(json!({"max": 4, "terminators": "x"})),
            INVALID,
            "digits.terminators",
        ),
        invalid(
            "calling.collect",
            digits(json!({"max": 4, "terminators": 1})),
            INVALID,
            "digits.terminators",
        ),
        invalid(
            "calling.collect",
            digits(json!({"max": 4, "digit_timeout": 0})),
            INVALID,
            "digits.digit_timeout",
        ),
        invalid(
            "calling.collect",
            digits(json!({"max": 4, "digit_timeout": "1"})),
            INVALID,
            "digits.digit_timeout",
        ),
        invalid(
            "calling.collect",
            json!({"speech": 5}),
            NOT_OBJECT,
            "speech",
        ),
        invalid(
            "calling.collect",
            speech(json!({"end_silence_timeout": 0})),
            INVALID,
            "speech.end_silence_timeout",
        ),
        invalid(
            "calling.collect",
            speech(json!({"speech_timeout": -1})),
            INVALID,
            "speech.speech_timeout",
        ),
        invalid(
            "calling.collect",
            speech(json!({"language": ""})),
            INVALID,
            "speech.language",
        ),
        invalid(
            "calling.collect",
            speech(json!({"language": 5})),
            INVALID,
            "speech.language",
        ),
        invalid(
            "calling.collect",
            speech(json!({"hints": "yes"})),
            INVALID,
            "speech.hints",
        ),
        invalid(
            "calling.collect",
            speech(json!({"hints": ["yes", 1]})),
            INVALID,
            "speech.hints",
        ),
        invalid(
            "calling.collect",
            speech(json!({"model": 3})),
            INVALID,
            "speech.model",
        ),
        invalid(
            "calling.collect",
            speech(json!({"engine": "google"})),
            INVALID,
            "speech.engine",
        ),
        invalid(
            "calling.collect",
            speech(json!({"engine": "Whisper"})),
            INVALID,
            "speech.engine",
        ),
        invalid(
            "calling.collect",
            with(&b, json!({"initial_timeout": 0})),
            INVALID,
            "initial_timeout",
        ),
        invalid(
            "calling.collect",
            with(&b, json!({"status_url": "x"})),
            NOT_HTTP,
            "status_url",
        ),
        invalid(
            "calling.collect",
            with(&b, json!({"control_id": ""})),
            MISSING,
            "control_id",
        ),
    ];
    for flag in [
        "continuous",
        "partial_results",
        "send_start_of_input",
        "start_input_timers",
    ] {
        rows.push(ok("calling.collect", with(&b, json!({flag: false}))));
        rows.push(invalid(
            "calling.collect",
            with(&b, json!({flag: "true"})),
            INVALID,
            flag,
        ));
        rows.push(invalid(
            "calling.collect",
            with(&b, json!({flag: 1})),
            INVALID,
            flag,
        ));
    }
    for engine in ["Google", "Google.V2", "Deepgram"] {
        rows.push(ok("calling.collect", speech(json!({"engine": engine}))));
    }
    run_table(rows).await;
}

// ----- detect ----------------------------------------------------------------------------------

#[tokio::test]
async fn detect_table() {
    let b = json!({"control_id": "d1", "detect": {"type": "machine"}});
    let det = |d: Value| with(&b, json!({"detect": d}));
    let machine = |p: Value| det(json!({"type": "machine", "params": p}));
    let rows = vec![
        ok("calling.detect", b.clone()),
        ok("calling.detect", without(&b, "control_id")),
        ok(
            "calling.detect",
            machine(json!({
                "initial_timeout": 3, "end_silence_timeout": 0.8, "machine_ready_timeout": 2,
                "machine_voice_threshold": 2, "machine_words_threshold": 8,
                "detect_interruptions": true, "detect_message_end": false
            })),
        ),
        ok("calling.detect", det(json!({"type": "fax"}))),
        ok(
            "calling.detect",
            det(json!({"type": "fax", "params": {"tone": "CNG"}})),
        ),
        ok(
            "calling.detect",
            det(json!({"type": "fax", "params": {"tone": "ced"}})),
        ),
        ok("calling.detect", det(json!({"type": "digit"}))),
        ok(
            "calling.detect",
            det(json!({"type": "digit", "params": {"digits": "123#*"}})),
        ),
        ok(
            "calling.detect",
            det(json!({"type": "digit", "params": {"digits": ""}})),
        ),
        ok("calling.detect", with(&b, json!({"timeout": 0}))),
        ok(
            "calling.detect",
            with(
                &b,
                json!({"timeout": 12.5, "status_url": "https://h.example/d"}),
            ),
        ),
        invalid("calling.detect", without(&b, "detect"), MISSING, "detect"),
        invalid(
            "calling.detect",
            with(&b, json!({"detect": "machine"})),
            NOT_OBJECT,
            "detect",
        ),
        invalid("calling.detect", det(json!({})), MISSING, "detect.type"),
        invalid(
            "calling.detect",
            det(json!({"type": "voice"})),
            INVALID,
            "detect.type",
        ),
        invalid(
            "calling.detect",
            det(json!({"type": "Machine"})),
            INVALID,
            "detect.type",
        ),
        invalid(
            "calling.detect",
            det(json!({"type": "machine", "params": 5})),
            NOT_OBJECT,
            "detect.params",
        ),
        invalid(
            "calling.detect",
            machine(json!({"initial_timeout": -1})),
            INVALID,
            "detect.params.initial_timeout",
        ),
        invalid(
            "calling.detect",
            machine(json!({"end_silence_timeout": "1"})),
            INVALID,
            "detect.params.end_silence_timeout",
        ),
        invalid(
            "calling.detect",
            machine(json!({"machine_ready_timeout": -2})),
            INVALID,
            "detect.params.machine_ready_timeout",
        ),
        invalid(
            "calling.detect",
            machine(json!({"machine_voice_threshold": -0.1})),
            INVALID,
            "detect.params.machine_voice_threshold",
        ),
        invalid(
            "calling.detect",
            machine(json!({"machine_words_threshold": 1.5})),
            INVALID,
            "detect.params.machine_words_threshold",
        ),
        invalid(
            "calling.detect",
            machine(json!({"machine_words_threshold": -1})),
            INVALID,
            "detect.params.machine_words_threshold",
        ),
        invalid(
            "calling.detect",
            machine(json!({"detect_interruptions": "no"})),
            INVALID,
            "detect.params.detect_interruptions",
        ),
        invalid(
            "calling.detect",
            machine(json!({"detect_message_end": 0})),
            INVALID,
            "detect.params.detect_message_end",
        ),
        invalid(
            "calling.detect",
            det(json!({"type": "fax", "params": {"tone": "XYZ"}})),
            INVALID,
            "detect.params.tone",
        ),
        invalid(
            "calling.detect",
            det(json!({"type": "fax", "params": {"tone": 1}})),
            INVALID,
            "detect.params.tone",
        ),
        invalid(
            "calling.detect",
            det(json!({"type": "digit", "params": {"digits": "12x"}})),
            INVALID,
            "detect.params.digits",
        ),
        invalid(
            "calling.detect",
            with(&b, json!({"timeout": -1})),
            INVALID,
            "timeout",
        ),
        invalid(
            "calling.detect",
            with(&b, json!({"timeout": "30"})),
            INVALID,
            "timeout",
        ),
        invalid(
            "calling.detect",
            with(&b, json!({"status_url": "x"})),
            NOT_HTTP,
            "status_url",
        ),
    ];
    run_table(rows).await;
}

// ----- tap -------------------------------------------------------------------------------------

fn tap_base() -> Value {
    json!({
        "control_id": "t1",
        "tap": {"type": "audio", "params": {"direction": "both"}},
        "device": {"type": "rtp", "params": {"addr": "203.0.114.10", "port": 4000}}
    })
}

fn rtp(params: Value) -> Value {
    with(
        &tap_base(),
        json!({"device": {"type": "rtp", "params": params}}),
    )
}

fn ws(params: Value) -> Value {
    with(
        &tap_base(),
        json!({"device": {"type": "ws", "params": params}}),
    )
}

#[tokio::test]
async fn tap_table() {
    let b = tap_base();
    let mut rows = vec![
        ok("calling.tap", b.clone()),
        ok("calling.tap", without(&b, "control_id")),
        ok(
            "calling.tap",
            with(&b, json!({"tap": {"params": {"direction": "listen"}}})),
        ),
        ok("calling.tap", rtp(json!({"addr": "8.8.8.8", "port": 1}))),
        ok(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": 65535})),
        ),
        ok("calling.tap", ws(json!({"uri": "wss://media.example/tap"}))),
        ok(
            "calling.tap",
            ws(json!({"uri": "ws://media.example/tap", "codec": "PCMU", "rate": 8000})),
        ),
        ok(
            "calling.tap",
            with(&b, json!({"status_url": "https://hooks.example/tap"})),
        ),
        invalid("calling.tap", without(&b, "tap"), MISSING, "tap"),
        invalid("calling.tap", without(&b, "device"), MISSING, "device"),
        invalid(
            "calling.tap",
            with(&b, json!({"tap": 5})),
            NOT_OBJECT,
            "tap",
        ),
        invalid(
            "calling.tap",
            with(
                &b,
                json!({"tap": {"type": "video", "params": {"direction": "both"}}}),
            ),
            INVALID,
            "tap.type",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"tap": {"type": "audio"}})),
            MISSING,
            "tap.params",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"tap": {"type": "audio", "params": 1}})),
            NOT_OBJECT,
            "tap.params",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"tap": {"type": "audio", "params": {}}})),
            MISSING,
            "tap.params.direction",
        ),
        invalid(
            "calling.tap",
            with(
                &b,
                json!({"tap": {"type": "audio", "params": {"direction": "in"}}}),
            ),
            INVALID,
            "tap.params.direction",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"device": "rtp"})),
            NOT_OBJECT,
            "device",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"device": {"params": {}}})),
            MISSING,
            "device.type",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"device": {"type": "sip", "params": {}}})),
            INVALID,
            "device.type",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"device": {"type": "rtp"}})),
            MISSING,
            "device.params",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"device": {"type": "ws"}})),
            MISSING,
            "device.params",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"port": 4000})),
            MISSING,
            "device.params.addr",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": "media.example.net", "port": 4000})),
            INVALID,
            "device.params.addr",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": "::1", "port": 4000})),
            INVALID,
            "device.params.addr",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": 134744072, "port": 4000})),
            INVALID,
            "device.params.addr",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8"})),
            MISSING,
            "device.params.port",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": 0})),
            INVALID,
            "device.params.port",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": 65536})),
            INVALID,
            "device.params.port",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": "4000"})),
            INVALID,
            "device.params.port",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": 4000, "codec": "G722"})),
            INVALID,
            "device.params.codec",
        ),
        invalid(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": 4000, "codec": "Pcmu"})),
            INVALID,
            "device.params.codec",
        ),
        invalid("calling.tap", ws(json!({})), MISSING, "device.params.uri"),
        invalid(
            "calling.tap",
            ws(json!({"uri": "https://media.example/tap"})),
            INVALID,
            "device.params.uri",
        ),
        invalid(
            "calling.tap",
            ws(json!({"uri": "wss://media.example/tap", "codec": "G729"})),
            INVALID,
            "device.params.codec",
        ),
        invalid(
            "calling.tap",
            ws(json!({"uri": "wss://media.example/tap", "rate": 0})),
            INVALID,
            "device.params.rate",
        ),
        invalid(
            "calling.tap",
            with(&b, json!({"status_url": "x"})),
            NOT_HTTP,
            "status_url",
        ),
    ];
    for private in [
        "10.0.0.1",
        "127.0.0.1",
        "172.16.5.4",
        "192.168.1.10",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.5",
        "255.255.255.255",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
    ] {
        rows.push(invalid(
            "calling.tap",
            rtp(json!({"addr": private, "port": 4000})),
            "url_is_unsafe",
            "device.params.addr",
        ));
    }
    for ptime in (10..=120).step_by(10) {
        rows.push(ok(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": 4000, "ptime": ptime})),
        ));
    }
    for ptime in [
        json!(0),
        json!(5),
        json!(15),
        json!(130),
        json!(20.5),
        json!("20"),
    ] {
        rows.push(invalid(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": 4000, "ptime": ptime})),
            INVALID,
            "device.params.ptime",
        ));
    }
    for codec in ["PCMU", "PCMA", "OPUS", "pcmu", "pcma", "opus"] {
        rows.push(ok(
            "calling.tap",
            rtp(json!({"addr": "8.8.8.8", "port": 4000, "codec": codec})),
        ));
    }
    for direction in ["listen", "speak", "both"] {
        rows.push(ok(
            "calling.tap",
            with(
                &b,
                json!({"tap": {"type": "audio", "params": {"direction": direction}}}),
            ),
        ));
    }
    run_table(rows).await;
}

#[tokio::test]
async fn private_tap_targets_are_allowed_when_the_check_is_off() {
    let h = Harness::with_state(|s| s.with_reject_private_tap_addresses(false));
    for addr in ["10.0.0.1", "192.168.1.10", "127.0.0.1"] {
        let reply = h
            .command("calling.tap", rtp(json!({"addr": addr, "port": 4000})))
            .await;
        assert_eq!(reply.status, 200, "{addr}: {}", reply.body);
    }
    let reply = h
        .command(
            "calling.tap",
            rtp(json!({"addr": "localhost", "port": 4000})),
        )
        .await;
    assert_eq!(
        reply.error_items(),
        [(INVALID.to_owned(), "device.params.addr".to_owned())]
    );
}

// ----- stream, transcribe ----------------------------------------------------------------------

#[tokio::test]
async fn stream_and_transcribe_tables() {
    let b = json!({"control_id": "s1", "url": "wss://media.example/stream"});
    let mut rows = vec![
        ok("calling.stream", b.clone()),
        ok("calling.stream", without(&b, "control_id")),
        ok(
            "calling.stream",
            with(
                &b,
                json!({
                    "name": "agent-assist", "codec": "PCMU", "authorization_bearer_token": "tok",
                    "custom_parameters": {"a": [1, 2]}, "status_url": "https://hooks.example/stream",
                    "status_url_method": "GET"
                }),
            ),
        ),
        ok(
            "calling.stream",
            with(&b, json!({"status_url_method": "post"})),
        ),
        invalid("calling.stream", without(&b, "url"), MISSING, "url"),
        invalid(
            "calling.stream",
            with(&b, json!({"url": "ws://media.example/stream"})),
            INVALID,
            "url",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"url": "https://media.example/stream"})),
            INVALID,
            "url",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"url": "wss://"})),
            INVALID,
            "url",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"url": 5})),
            INVALID,
            "url",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"track": "inbound"})),
            INVALID,
            "track",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"name": 5})),
            INVALID,
            "name",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"codec": ["PCMU"]})),
            INVALID,
            "codec",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"authorization_bearer_token": 5})),
            INVALID,
            "authorization_bearer_token",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"custom_parameters": "a=b"})),
            NOT_OBJECT,
            "custom_parameters",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"status_url": "x"})),
            NOT_HTTP,
            "status_url",
        ),
        invalid(
            "calling.stream",
            with(&b, json!({"status_url_method": "PUT"})),
            "invalid_http_method",
            "status_url_method",
        ),
        ok("calling.transcribe", json!({})),
        ok(
            "calling.transcribe",
            json!({"control_id": "tr1", "status_url": "https://hooks.example/t"}),
        ),
        invalid(
            "calling.transcribe",
            json!({"status_url": "x"}),
            NOT_HTTP,
            "status_url",
        ),
        invalid(
            "calling.transcribe",
            json!({"control_id": 5}),
            INVALID,
            "control_id",
        ),
        invalid(
            "calling.transcribe",
            json!({"control_id": ""}),
            MISSING,
            "control_id",
        ),
    ];
    for track in ["inbound_track", "outbound_track", "both_tracks"] {
        rows.push(ok("calling.stream", with(&b, json!({"track": track}))));
    }
    run_table(rows).await;
}

// ----- AI --------------------------------------------------------------------------------------

#[tokio::test]
async fn ai_tables() {
    let mut rows = vec![
        ok("calling.ai_hold", json!({})),
        ok("calling.ai_hold", json!({"timeout": 300})),
        ok("calling.ai_hold", json!({"timeout": "300"})),
        ok("calling.ai_hold", json!({"timeout": " 60 "})),
        ok(
            "calling.ai_hold",
            json!({"timeout": 1, "prompt": "Hold on"}),
        ),
        invalid("calling.ai_hold", json!({"timeout": 0}), INVALID, "timeout"),
        invalid(
            "calling.ai_hold",
            json!({"timeout": 301}),
            INVALID,
            "timeout",
        ),
        invalid(
            "calling.ai_hold",
            json!({"timeout": "abc"}),
            INVALID,
            "timeout",
        ),
        invalid(
            "calling.ai_hold",
            json!({"timeout": "1.5"}),
            INVALID,
            "timeout",
        ),
        invalid(
            "calling.ai_hold",
            json!({"timeout": 1.5}),
            INVALID,
            "timeout",
        ),
        invalid(
            "calling.ai_hold",
            json!({"timeout": true}),
            INVALID,
            "timeout",
        ),
        invalid("calling.ai_hold", json!({"prompt": 5}), INVALID, "prompt"),
        ok("calling.ai_unhold", json!({})),
        ok("calling.ai_unhold", json!({"prompt": "Welcome back"})),
        invalid(
            "calling.ai_unhold",
            json!({"prompt": []}),
            INVALID,
            "prompt",
        ),
        ok("calling.ai_message", json!({"message_text": "Be brief"})),
        ok("calling.ai_message", json!({"reset": {}})),
        ok(
            "calling.ai_message",
            json!({"reset": {"full_reset": true, "user_prompt": "u", "system_prompt": "s"}}),
        ),
        ok(
            "calling.ai_message",
            json!({"global_data": {"tier": "gold"}}),
        ),
        invalid("calling.ai_message", json!({}), MISSING, "message_text"),
        invalid(
            "calling.ai_message",
            json!({"role": "user"}),
            MISSING,
            "message_text",
        ),
        invalid(
            "calling.ai_message",
            json!({"message_text": 5}),
            INVALID,
            "message_text",
        ),
        invalid(
            "calling.ai_message",
            json!({"message_text": "x", "role": "bot"}),
            INVALID,
            "role",
        ),
        invalid(
            "calling.ai_message",
            json!({"reset": true}),
            NOT_OBJECT,
            "reset",
        ),
        invalid(
            "calling.ai_message",
            json!({"reset": {"full_reset": "yes"}}),
            INVALID,
            "reset.full_reset",
        ),
        invalid(
            "calling.ai_message",
            json!({"reset": {"user_prompt": 1}}),
            INVALID,
            "reset.user_prompt",
        ),
        invalid(
            "calling.ai_message",
            json!({"reset": {"system_prompt": 1}}),
            INVALID,
            "reset.system_prompt",
        ),
        invalid(
            "calling.ai_message",
            json!({"global_data": [1]}),
            NOT_OBJECT,
            "global_data",
        ),
        ok("calling.ai.stop", json!({})),
        ok("calling.ai.stop", json!({"control_id": "whatever"})),
        invalid(
            "calling.ai.stop",
            json!({"control_id": 1}),
            INVALID,
            "control_id",
        ),
    ];
    for role in ["system", "user", "assistant"] {
        rows.push(ok(
            "calling.ai_message",
            json!({"message_text": "hi", "role": role}),
        ));
    }
    run_table(rows).await;
}

#[tokio::test]
async fn sidecar_table() {
    let b = json!({"lang": "en-US"});
    let tuning = |t: Value| with(&b, json!({"params": t}));
    let mut rows = vec![
        ok("calling.ai_sidecar", b.clone()),
        ok(
            "calling.ai_sidecar",
            with(&b, json!({"prompt": "Watch for churn"})),
        ),
        ok(
            "calling.ai_sidecar",
            with(&b, json!({"prompt": {"text": "x"}})),
        ),
        ok(
            "calling.ai_sidecar",
            with(
                &b,
                json!({"prompt": {"pom": [{"title": "a", "body": "b"}]}}),
            ),
        ),
        ok(
            "calling.ai_sidecar",
            with(&b, json!({"prompt": {"file": "https://x.example/p.txt"}})),
        ),
        ok(
            "calling.ai_sidecar",
            with(
                &b,
                json!({"model": "gpt-4.1-mini", "direction": ["remote-caller", "local-caller"], "customer_role": "local-caller"}),
            ),
        ),
        ok(
            "calling.ai_sidecar",
            with(&b, json!({"url": "https://user:pw@hooks.example/sidecar"})),
        ),
        ok(
            "calling.ai_sidecar",
            with(
                &b,
                json!({"SWAIG": {
                    "defaults": {"web_hook_url": "https://hooks.example/swaig", "web_hook_auth_user": "u", "web_hook_auth_password": "p"},
                    "functions": [{"function": "lookup", "description": "d", "purpose": "p", "parameters": {"type": "object"}, "web_hook_url": "https://hooks.example/f"}],
                    "mcp_servers": [{"url": "https://mcp.example"}]
                }}),
            ),
        ),
        ok(
            "calling.ai_sidecar",
            with(&b, json!({"permissions": {"swaig_allow_swml": false}})),
        ),
        ok(
            "calling.ai_sidecar",
            with(&b, json!({"global_data": {"a": 1}, "hints": ["refund"]})),
        ),
        ok(
            "calling.ai_sidecar",
            tuning(json!({
                "idle_timeout_ms": 50, "min_interval_ms": 60000, "max_iters_per_tick": 20,
                "max_history_tokens": 200000, "act_on_channel": false, "final_summary": true,
                "ai_summary": true, "ai_summary_prompt": "sum", "summary_model": "gpt-4.1-nano",
                "live_events": true, "verbose_utterances": true, "speech_engine": "google",
                "speech_timeout": 600000, "vad_silence_ms": 0, "vad_thresh": 10000,
                "debug_level": 100, "debug": true, "transcribe_prompt": "t"
            })),
        ),
        ok(
            "calling.ai_sidecar",
            with(&b, json!({"action": {"summarize": {}}})),
        ),
        ok(
            "calling.ai_sidecar",
            with(
                &b,
                json!({"action": {"summarize": {"webhook": "https://h.example/s", "prompt": "p"}}}),
            ),
        ),
        invalid("calling.ai_sidecar", json!({}), MISSING, "lang"),
        invalid("calling.ai_sidecar", json!({"lang": ""}), MISSING, "lang"),
        invalid("calling.ai_sidecar", json!({"lang": 5}), INVALID, "lang"),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"prompt": 5})),
            INVALID,
            "prompt",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"prompt": {}})),
            INVALID,
            "prompt",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"prompt": {"text": "a", "file": "b"}})),
            INVALID,
            "prompt",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"prompt": {"pom": "x"}})),
            INVALID,
            "prompt",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"model": 4})),
            INVALID,
            "model",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"direction": ["remote-caller"]})),
            INVALID,
            "direction",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"direction": []})),
            INVALID,
            "direction",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"direction": ["remote-caller", "both"]})),
            INVALID,
            "direction",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"direction": "remote-caller"})),
            INVALID,
            "direction",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"customer_role": "agent"})),
            INVALID,
            "customer_role",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"url": "x"})),
            NOT_HTTP,
            "url",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"SWAIG": []})),
            NOT_OBJECT,
            "SWAIG",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"SWAIG": {"defaults": 1}})),
            NOT_OBJECT,
            "SWAIG.defaults",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"SWAIG": {"defaults": {"web_hook_url": "x"}}})),
            NOT_HTTP,
            "SWAIG.defaults.web_hook_url",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"SWAIG": {"functions": {}}})),
            INVALID,
            "SWAIG.functions",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"SWAIG": {"functions": [5]}})),
            NOT_OBJECT,
            "SWAIG.functions.0",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"SWAIG": {"functions": [{}]}})),
            MISSING,
            "SWAIG.functions.0.function",
        ),
        invalid(
            "calling.ai_sidecar",
            with(
                &b,
                json!({"SWAIG": {"functions": [{"function": "sidecar_skip"}]}}),
            ),
            INVALID,
            "SWAIG.functions.0.function",
        ),
        invalid(
            "calling.ai_sidecar",
            with(
                &b,
                json!({"SWAIG": {"functions": [{"function": "f", "parameters": 1}]}}),
            ),
            NOT_OBJECT,
            "SWAIG.functions.0.parameters",
        ),
        invalid(
            "calling.ai_sidecar",
            with(
                &b,
                json!({"SWAIG": {"functions": [{"function": "f", "web_hook_url": "x"}]}}),
            ),
            NOT_HTTP,
            "SWAIG.functions.0.web_hook_url",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"SWAIG": {"mcp_servers": {}}})),
            INVALID,
            "SWAIG.mcp_servers",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"permissions": true})),
            NOT_OBJECT,
            "permissions",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"permissions": {"swaig_set_global_data": "no"}})),
            INVALID,
            "permissions.swaig_set_global_data",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"global_data": "x"})),
            NOT_OBJECT,
            "global_data",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"hints": []})),
            INVALID,
            "hints",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"hints": [1]})),
            INVALID,
            "hints",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"params": 1})),
            NOT_OBJECT,
            "params",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"action": "summarize"})),
            NOT_OBJECT,
            "action",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"action": {}})),
            MISSING,
            "action.summarize",
        ),
        invalid(
            "calling.ai_sidecar",
            with(&b, json!({"action": {"summarize": {"webhook": "x"}}})),
            NOT_HTTP,
            "action.summarize.webhook",
        ),
        ok("calling.ai_sidecar.poke", json!({"text": "Summarise now"})),
        ok(
            "calling.ai_sidecar.ask",
            json!({"text": "Is the caller angry?"}),
        ),
        invalid("calling.ai_sidecar.poke", json!({}), MISSING, "text"),
        invalid("calling.ai_sidecar.ask", json!({}), MISSING, "text"),
        invalid(
            "calling.ai_sidecar.ask",
            json!({"text": ""}),
            MISSING,
            "text",
        ),
        invalid(
            "calling.ai_sidecar.poke",
            json!({"text": 5}),
            INVALID,
            "text",
        ),
    ];
    for (key, bad) in [
        ("idle_timeout_ms", json!(49)),
        ("idle_timeout_ms", json!(5001)),
        ("min_interval_ms", json!(-1)),
        ("min_interval_ms", json!(60001)),
        ("max_iters_per_tick", json!(0)),
        ("max_iters_per_tick", json!(21)),
        ("max_history_tokens", json!(999)),
        ("max_history_tokens", json!(200001)),
        ("act_on_channel", json!("yes")),
        ("final_summary", json!(1)),
        ("ai_summary", json!("no")),
        ("ai_summary_prompt", json!(1)),
        ("summary_model", json!(1)),
        ("live_events", json!(0)),
        ("verbose_utterances", json!("x")),
        ("speech_engine", json!("Deepgram")),
        ("speech_timeout", json!(-1)),
        ("speech_timeout", json!(600001)),
        ("vad_silence_ms", json!(60001)),
        ("vad_thresh", json!(10001)),
        ("debug_level", json!(101)),
        ("debug", json!("true")),
        ("transcribe_prompt", json!([])),
        ("idle_timeout_ms", json!(200.5)),
    ] {
        rows.push(invalid(
            "calling.ai_sidecar",
            tuning(json!({key: bad})),
            INVALID,
            &format!("params.{key}"),
        ));
    }
    run_table(rows).await;
}

// ----- live transcribe / translate -------------------------------------------------------------

#[tokio::test]
async fn live_tables() {
    let start = |s: Value| json!({"action": {"start": s}});
    let base = json!({"lang": "en-US", "direction": ["remote-caller", "local-caller"]});
    let tstart = |changes: Value| start(with(&base, changes));
    let mut rows = vec![
        ok("calling.live_transcribe", json!({"action": "stop"})),
        ok(
            "calling.live_transcribe",
            json!({"action": {"summarize": {}}}),
        ),
        ok(
            "calling.live_transcribe",
            json!({"action": {"summarize": {"webhook": "https://h.example/s", "prompt": "p"}}}),
        ),
        ok("calling.live_transcribe", start(json!({"lang": "en-US"}))),
        ok("calling.live_transcribe", tstart(json!({}))),
        ok(
            "calling.live_transcribe",
            tstart(json!({
                "direction": ["local-caller"], "webhook": "https://h.example/t", "live_events": true,
                "ai_summary": true, "ai_summary_prompt": "p", "speech_engine": "google",
                "speech_timeout": 1500, "vad_silence_ms": 1, "vad_thresh": 1800, "debug_level": 2
            })),
        ),
        invalid("calling.live_transcribe", json!({}), MISSING, "action"),
        invalid(
            "calling.live_transcribe",
            json!({"action": "go"}),
            INVALID,
            "action",
        ),
        invalid(
            "calling.live_transcribe",
            json!({"action": "STOP"}),
            INVALID,
            "action",
        ),
        invalid(
            "calling.live_transcribe",
            json!({"action": 5}),
            INVALID,
            "action",
        ),
        invalid(
            "calling.live_transcribe",
            json!({"action": {}}),
            INVALID,
            "action",
        ),
        invalid(
            "calling.live_transcribe",
            json!({"action": {"inject": {"message": "x", "direction": "local-caller"}}}),
            INVALID,
            "action",
        ),
        invalid(
            "calling.live_transcribe",
            json!({"action": {"start": {"lang": "en"}, "summarize": {}}}),
            INVALID,
            "action",
        ),
        invalid(
            "calling.live_transcribe",
            json!({"action": {"start": 5}}),
            NOT_OBJECT,
            "action.start",
        ),
        invalid(
            "calling.live_transcribe",
            json!({"action": {"summarize": "now"}}),
            NOT_OBJECT,
            "action.summarize",
        ),
        invalid(
            "calling.live_transcribe",
            json!({"action": {"summarize": {"webhook": "x"}}}),
            NOT_HTTP,
            "action.summarize.webhook",
        ),
        invalid(
            "calling.live_transcribe",
            start(json!({})),
            MISSING,
            "action.start.lang",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"direction": []})),
            INVALID,
            "action.start.direction",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"direction": ["caller"]})),
            INVALID,
            "action.start.direction",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"webhook": "x"})),
            NOT_HTTP,
            "action.start.webhook",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"live_events": "yes"})),
            INVALID,
            "action.start.live_events",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"ai_summary": 1})),
            INVALID,
            "action.start.ai_summary",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"speech_engine": "whisper"})),
            INVALID,
            "action.start.speech_engine",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"speech_timeout": 1499})),
            INVALID,
            "action.start.speech_timeout",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"vad_silence_ms": 0})),
            INVALID,
            "action.start.vad_silence_ms",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"vad_thresh": 1801})),
            INVALID,
            "action.start.vad_thresh",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"vad_thresh": -1})),
            INVALID,
            "action.start.vad_thresh",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"debug_level": 3})),
            INVALID,
            "action.start.debug_level",
        ),
        invalid(
            "calling.live_transcribe",
            tstart(json!({"ai_summary_prompt": 3})),
            INVALID,
            "action.start.ai_summary_prompt",
        ),
    ];
    let tr = json!({"from_lang": "en-US", "to_lang": "es-ES", "direction": ["remote-caller", "local-caller"]});
    let tr_start = |changes: Value| start(with(&tr, changes));
    rows.extend([
        ok("calling.live_translate", json!({"action": "stop"})),
        ok("calling.live_translate", json!({"action": {"summarize": {}}, "status_url": "https://h.example/tr"})),
        ok("calling.live_translate", json!({"action": {"inject": {"message": "Hola", "direction": "local-caller"}}})),
        ok("calling.live_translate", tr_start(json!({}))),
        ok("calling.live_translate", tr_start(json!({
            "from_voice": "elevenlabs.rachel", "to_voice": "gcloud.es-ES-Neural2-A",
            "filter_from": "polite", "filter_to": "prompt:keep it formal", "webhook": "https://h.example/w",
            "live_events": true, "ai_summary": true, "speech_engine": "google", "speech_timeout": 2000,
            "vad_silence_ms": 100, "vad_thresh": 0, "debug_level": 1
        }))),
        invalid("calling.live_translate", json!({}), MISSING, "action"),
        invalid("calling.live_translate", json!({"action": "start"}), INVALID, "action"),
        invalid("calling.live_translate", json!({"action": "stop", "status_url": "x"}), NOT_HTTP, "status_url"),
        invalid("calling.live_translate", tr_start(json!({"from_lang": null})), MISSING, "action.start.from_lang"),
        invalid("calling.live_translate", tr_start(json!({"to_lang": null})), MISSING, "action.start.to_lang"),
        invalid("calling.live_translate", tr_start(json!({"direction": null})), MISSING, "action.start.direction"),
        invalid("calling.live_translate", tr_start(json!({"direction": ["both"]})), INVALID, "action.start.direction"),
        invalid("calling.live_translate", tr_start(json!({"from_voice": 1})), INVALID, "action.start.from_voice"),
        invalid("calling.live_translate", tr_start(json!({"filter_from": "nice"})), INVALID, "action.start.filter_from"),
        invalid("calling.live_translate", tr_start(json!({"filter_to": "prompt:"})), INVALID, "action.start.filter_to"),
        invalid("calling.live_translate", tr_start(json!({"speech_timeout": 100})), INVALID, "action.start.speech_timeout"),
        invalid("calling.live_translate", json!({"action": {"inject": {"direction": "local-caller"}}}), MISSING, "action.inject.message"),
        invalid("calling.live_translate", json!({"action": {"inject": {"message": "x"}}}), MISSING, "action.inject.direction"),
        invalid("calling.live_translate", json!({"action": {"inject": {"message": "x", "direction": "both"}}}), INVALID, "action.inject.direction"),
        invalid("calling.live_translate", json!({"action": {"inject": {"message": "x", "direction": "local-caller"}, "start": {}}}), INVALID, "action"),
    ]);
    for preset in ["polite", "rude", "professional", "shakespeare", "gen-z"] {
        rows.push(ok(
            "calling.live_translate",
            tr_start(json!({"filter_from": preset})),
        ));
    }
    run_table(rows).await;
}

// ----- refer, user_event -----------------------------------------------------------------------

#[tokio::test]
async fn refer_and_user_event_tables() {
    let rows = vec![
        ok(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {"to": "sip:bob@pbx.example.net"}}}),
        ),
        ok(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {
            "to": "sips:bob@pbx.example.net", "from": "sip:alice@example.net",
            "username": "u", "password": "p"
        }}, "status_url": "https://hooks.example/refer"}),
        ),
        ok(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {"uri": "sip:bob@pbx"}}}),
        ),
        ok("calling.refer", json!({"device": {"to": "sip:bob@pbx"}})),
        ok(
            "calling.refer",
            json!({"device": {"type": "sip", "to": "sip:bob@pbx", "from": "sip:a@b"}}),
        ),
        invalid("calling.refer", json!({}), MISSING, "device"),
        invalid(
            "calling.refer",
            json!({"device": "sip:bob@pbx"}),
            NOT_OBJECT,
            "device",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "phone", "params": {"to": "sip:bob@pbx"}}}),
            INVALID,
            "device.type",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "sip", "params": 5}}),
            NOT_OBJECT,
            "device.params",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {}}}),
            MISSING,
            "device.params.to",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "sip"}}),
            MISSING,
            "device.to",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {"to": "tel:+1415"}}}),
            "invalid_sip_destination",
            "device.params.to",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {"to": "+14155550100"}}}),
            "invalid_sip_destination",
            "device.params.to",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {"uri": "bob"}}}),
            "invalid_sip_destination",
            "device.params.uri",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"to": "bob@pbx"}}),
            "invalid_sip_destination",
            "device.to",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {"to": "sip:b@p", "from": "alice"}}}),
            INVALID,
            "device.params.from",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"type": "sip", "params": {"to": "sip:b@p", "username": 1}}}),
            INVALID,
            "device.params.username",
        ),
        invalid(
            "calling.refer",
            json!({"device": {"to": "sip:b@p"}, "status_url": "x"}),
            NOT_HTTP,
            "status_url",
        ),
        ok("calling.user_event", json!({"event": {}})),
        ok(
            "calling.user_event",
            json!({"event": {"type": "alert", "payload": [1, {"a": null}]}}),
        ),
        invalid("calling.user_event", json!({}), MISSING, "event"),
        invalid(
            "calling.user_event",
            json!({"event": "hello"}),
            NOT_OBJECT,
            "event",
        ),
        invalid(
            "calling.user_event",
            json!({"event": [1]}),
            NOT_OBJECT,
            "event",
        ),
    ];
    run_table(rows).await;
}

// ----- every command, valid and mutated --------------------------------------------------------

/// One valid params object per command.
fn valid_examples() -> Vec<(&'static str, Value)> {
    vec![
        ("dial", dial_base()),
        (
            "update",
            json!({"id": CALL.to_string(), "url": "https://a.example/s"}),
        ),
        ("calling.end", json!({"reason": "busy"})),
        ("calling.transfer", json!({"dest": "sip:bob@pbx"})),
        ("calling.disconnect", json!({})),
        ("calling.play", play_base()),
        ("calling.play.pause", json!({"control_id": "p1"})),
        ("calling.play.resume", json!({"control_id": "p1"})),
        ("calling.play.stop", json!({"control_id": "p1"})),
        (
            "calling.play.volume",
            json!({"control_id": "p1", "volume": 3}),
        ),
        ("calling.record", record_base()),
        (
            "calling.record.pause",
            json!({"control_id": "r1", "behavior": "silence"}),
        ),
        ("calling.record.resume", json!({"control_id": "r1"})),
        ("calling.record.stop", json!({"control_id": "r1"})),
        (
            "calling.collect",
            json!({"control_id": "c1", "digits": {"max": 4}, "speech": {"hints": ["a"]}}),
        ),
        ("calling.collect.stop", json!({"control_id": "c1"})),
        (
            "calling.collect.start_input_timers",
            json!({"control_id": "c1"}),
        ),
        (
            "calling.detect",
            json!({"control_id": "d1", "detect": {"type": "machine", "params": {}}}),
        ),
        ("calling.detect.stop", json!({"control_id": "d1"})),
        ("calling.tap", tap_base()),
        ("calling.tap.stop", json!({"control_id": "t1"})),
        (
            "calling.stream",
            json!({"control_id": "s1", "url": "wss://m.example/s", "custom_parameters": {}}),
        ),
        ("calling.stream.stop", json!({"control_id": "s1"})),
        ("calling.transcribe", json!({"control_id": "tr1"})),
        ("calling.transcribe.stop", json!({"control_id": "tr1"})),
        ("calling.denoise", json!({})),
        ("calling.denoise.stop", json!({})),
        (
            "calling.ai_hold",
            json!({"timeout": "60", "prompt": "wait"}),
        ),
        ("calling.ai_unhold", json!({"prompt": "back"})),
        (
            "calling.ai_message",
            json!({"message_text": "hi", "role": "user", "reset": {}, "global_data": {}}),
        ),
        ("calling.ai.stop", json!({"control_id": "ai"})),
        (
            "calling.ai_sidecar",
            json!({"lang": "en-US", "SWAIG": {"functions": [{"function": "f"}]}, "params": {}, "permissions": {}}),
        ),
        ("calling.ai_sidecar.poke", json!({"text": "x"})),
        ("calling.ai_sidecar.ask", json!({"text": "x"})),
        ("calling.ai_sidecar.stop", json!({})),
        ("calling.ai_sidecar.status", json!({})),
        (
            "calling.live_transcribe",
            json!({"action": {"start": {"lang": "en-US"}}}),
        ),
        (
            "calling.live_translate",
            json!({"action": {"start": {"from_lang": "en", "to_lang": "es", "direction": ["local-caller"]}}}),
        ),
        ("calling.send_fax.stop", json!({"control_id": "f1"})),
        ("calling.receive_fax.stop", json!({"control_id": "f2"})),
        (
            "calling.refer",
            json!({"device": {"type": "sip", "params": {"to": "sip:b@p"}}}),
        ),
        ("calling.user_event", json!({"event": {"a": 1}})),
    ]
}

#[tokio::test]
async fn every_command_accepts_a_valid_example() {
    let examples = valid_examples();
    let names: Vec<&str> = examples.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        names,
        control::command::CommandName::ALL
            .map(|c| c.as_str())
            .to_vec()
    );
    run_table(examples.into_iter().map(|(c, p)| ok(c, p)).collect()).await;
}

#[tokio::test]
async fn mutating_any_field_never_breaks_the_server() {
    let h = Harness::new();
    let weird = [
        json!(null),
        json!(0),
        json!(-1),
        json!(1e308),
        json!(""),
        json!("x"),
        json!([]),
        json!([null]),
        json!({}),
        json!({"params": null}),
        json!(true),
    ];
    let mut sent = 0;
    for (command, params) in valid_examples() {
        let mut variants = Vec::new();
        let map = params.as_object().cloned().unwrap_or_default();
        for (key, value) in &map {
            for w in &weird {
                variants.push(with(&params, json!({ key: w.clone() })));
            }
            // One level deeper.
            if let Some(inner) = value.as_object() {
                for inner_key in inner.keys() {
                    for w in &weird {
                        let mut nested = value.clone();
                        nested[inner_key] = w.clone();
                        variants.push(with(&params, json!({ key: nested })));
                    }
                }
            }
        }
        for variant in variants {
            let reply = h.command(command, variant.clone()).await;
            sent += 1;
            assert!(
                matches!(reply.status.as_u16(), 200 | 400 | 422),
                "{command} {variant} → {}",
                reply.status
            );
            if reply.status == 422 {
                assert!(!reply.error_items().is_empty(), "{command} {variant}");
            }
        }
    }
    assert!(sent > 500, "{sent}");
}
