//! What the control layer receives: defaults filled in, SDK aliases resolved, control ids
//! generated and echoed (ambiguity register A1, A2, A3, A8, A21–A24, A31).

mod common;

use std::collections::BTreeMap;

use common::*;
use control::command::{EndParams, UpdateParams};
use control::{CallCommand, CallStatus, Codec, EndReason, HttpMethod, StatusEvent};
use serde_json::{json, Value};
use uuid::Uuid;

/// Sends a command on CALL and returns the typed command the control layer got, as params
/// JSON (every default filled in from control::command::defaults).
async fn normalised(h: &Harness, command: &str, params: Value) -> (Value, Reply) {
    let reply = h.command(command, params).await;
    assert_eq!(reply.status, 200, "{command}: {}", reply.body);
    match h.control.last_command() {
        Some(typed) => {
            assert_eq!(typed.name(), command);
            (typed.params_json(), reply)
        }
        None => panic!("{command}: the control layer got nothing"),
    }
}

#[tokio::test]
async fn dial_defaults() {
    let h = Harness::new();
    let reply = h
        .command(
            "dial",
            json!({"from": "+15105550100", "to": "+14155550199", "url": "https://app.example/s"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    let dial = h.control.last_dial().unwrap();
    assert_eq!(dial.from, "+15105550100");
    assert_eq!(dial.to.as_deref(), Some("+14155550199"));
    assert_eq!(dial.url.as_deref(), Some("https://app.example/s"));
    assert_eq!(dial.swml, None);
    assert_eq!(dial.url_method, HttpMethod::Post);
    assert_eq!(dial.timeout_secs, 60);
    assert_eq!(dial.status_events, vec![StatusEvent::Ended]);
    assert!(dial.codecs.is_empty());
    assert!(dial.region.is_empty());
    assert!(dial.custom_variables.is_empty());
    assert_eq!(dial.send_digits, None);
    assert_eq!(reply.body["id"].as_str().map(|s| s.len()), Some(36));
    assert!(reply.body.get("control_id").is_none());
}

#[tokio::test]
async fn dial_everything_given() {
    let h = Harness::new();
    let yaml = "version: 1.0.0\nsections:\n  main:\n    - answer: {}\n";
    let reply = h
        .command(
            "dial",
            json!({
                "from": "alice", "to": "sip:bob@pbx.example.net", "swml": yaml,
                "to_script": "https://x.example/dest", "username": "u", "password": "p",
                "caller_id": "sip:support@example.net", "fallback_url": "https://x.example/fb",
                "status_url": "https://x.example/st", "status_events": ["ringing", "ended", "ringing"],
                "url_method": "get", "codecs": "pcmu, OPUS@16000H@20I", "timeout": 45,
                "max_price_per_minute": 0.5, "send_digits": "1w#", "region": "us-east",
                "custom_variables": {"ticket": "T-1"}, "junk": 1
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let dial = h.control.last_dial().unwrap();
    assert_eq!(dial.from, "alice");
    assert_eq!(
        dial.swml,
        Some(json!({"version": "1.0.0", "sections": {"main": [{"answer": {}}]}}))
    );
    assert_eq!(dial.url, None);
    assert_eq!(dial.to_script, Some(json!("https://x.example/dest")));
    assert_eq!(dial.username.as_deref(), Some("u"));
    assert_eq!(dial.password.as_deref(), Some("p"));
    assert_eq!(dial.caller_id.as_deref(), Some("sip:support@example.net"));
    assert_eq!(dial.fallback_url.as_deref(), Some("https://x.example/fb"));
    assert_eq!(dial.status_url.as_deref(), Some("https://x.example/st"));
    assert_eq!(
        dial.status_events,
        vec![StatusEvent::Ringing, StatusEvent::Ended]
    );
    assert_eq!(dial.url_method, HttpMethod::Get);
    assert_eq!(
        dial.codecs,
        vec![
            Codec::Pcmu,
            Codec::Opus {
                rate: 16000,
                ptime: 20
            }
        ]
    );
    assert_eq!(dial.timeout_secs, 45);
    assert_eq!(dial.max_price_per_minute, Some(0.5));
    assert_eq!(dial.send_digits.as_deref(), Some("1w#"));
    assert_eq!(dial.region, vec!["us-east".to_owned()]);
    assert_eq!(
        dial.custom_variables,
        BTreeMap::from([("ticket".to_owned(), "T-1".to_owned())])
    );
}

#[tokio::test]
async fn dial_to_script_only_and_inline_json_string() {
    let h = Harness::new();
    let doc = json!({"sections": {"main": [{"hangup": {}}]}});
    let reply = h
        .command(
            "dial",
            json!({"from": "+15105550100", "to_script": doc.to_string(), "swml": doc.to_string()}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let dial = h.control.last_dial().unwrap();
    assert_eq!(dial.to, None);
    assert_eq!(dial.to_script, Some(doc.clone()));
    assert_eq!(dial.swml, Some(doc));
}

#[tokio::test]
async fn dial_empty_status_events_means_default() {
    let h = Harness::new();
    let reply = h
        .command(
            "dial",
            json!({"from": "+15105550100", "to": "+14155550199", "url": "https://a.example/s", "status_events": []}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        h.control.last_dial().unwrap().status_events,
        vec![StatusEvent::Ended]
    );
}

#[tokio::test]
async fn update_id_sources_and_fields() {
    let h = Harness::new();
    let call = CALL.to_string();
    let cases = [
        json!({"command": "update", "params": {"id": call, "status": "canceled"}}),
        json!({"command": "update", "params": {"call_id": call, "status": "canceled"}}),
        json!({"command": "update", "id": call, "params": {"status": "canceled"}}),
        // params.id wins over the fallbacks.
        json!({"command": "update", "id": FOREIGN_CALL.to_string(), "params": {"id": call, "call_id": FOREIGN_CALL.to_string(), "status": "canceled"}}),
    ];
    for body in cases {
        let before = h.control.commands.lock().unwrap().len();
        let reply = h.post(&body).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.body);
        let commands = h.control.commands.lock().unwrap();
        assert_eq!(commands.len(), before + 1);
        let (project, call_id, command) = commands.last().unwrap().clone();
        assert_eq!((project, call_id), (PROJECT, CALL));
        assert_eq!(
            command,
            CallCommand::Update(UpdateParams {
                status: Some(CallStatus::Canceled),
                ..UpdateParams::default()
            })
        );
    }
    let doc = json!({"sections": {"main": [{"hangup": {}}]}});
    let reply = h
        .command(
            "update",
            json!({"id": call, "swml": doc.to_string(), "fallback_url": "https://f.example/s",
                   "status_url": "https://s.example/s", "status": "completed"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        h.control.last_command(),
        Some(CallCommand::Update(UpdateParams {
            url: None,
            swml: Some(doc),
            fallback_url: Some("https://f.example/s".into()),
            status: Some(CallStatus::Completed),
            status_url: Some("https://s.example/s".into()),
        }))
    );
}

#[tokio::test]
async fn end_reasons() {
    let h = Harness::new();
    for (given, expected) in [
        (json!({}), EndReason::Hangup),
        (json!({"reason": "busy"}), EndReason::Busy),
        (json!({"reason": "noAnswer"}), EndReason::NoAnswer),
        (json!({"reason": "no_answer"}), EndReason::NoAnswer),
        (json!({"reason": "decline"}), EndReason::Decline),
        (json!({"reason": "declined"}), EndReason::Decline),
        (json!({"reason": "cancel"}), EndReason::Cancel),
        (json!({"reason": "error"}), EndReason::Error),
    ] {
        let reply = h.command("calling.end", given.clone()).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            h.control.last_command(),
            Some(CallCommand::End(EndParams { reason: expected })),
            "{given}"
        );
        assert!(reply.body.get("control_id").is_none());
    }
}

#[tokio::test]
async fn play_defaults_generated_control_id_and_flattened_items() {
    let h = Harness::new();
    let (params, reply) = normalised(
        &h,
        "calling.play",
        json!({"play": [
            {"type": "tts", "text": "Hello", "voice": "en-US-Neural2-A"},
            {"type": "audio", "params": {"url": "https://cdn.example/a.mp3", "junk": 1}},
            {"type": "silence", "duration": 1}
        ], "unknown": true}),
    )
    .await;
    let control_id = params["control_id"].as_str().unwrap().to_owned();
    assert!(Uuid::try_parse(&control_id).is_ok());
    assert_eq!(reply.body["control_id"], json!(control_id));
    assert_eq!(
        params,
        json!({
            "control_id": control_id,
            "play": [
                {"type": "tts", "params": {"text": "Hello", "voice": "en-US-Neural2-A"}},
                {"type": "audio", "params": {"url": "https://cdn.example/a.mp3"}},
                {"type": "silence", "params": {"duration": 1.0}}
            ],
            "volume": 0.0, "direction": "listen", "loop": 1, "language": "en-US", "gender": "female"
        })
    );
}

#[tokio::test]
async fn given_control_id_is_echoed_and_node_control_id_wins() {
    let h = Harness::new();
    let (params, reply) =
        normalised(&h, "calling.play.stop", json!({"control_id": "my-play"})).await;
    assert_eq!(params, json!({"control_id": "my-play"}));
    assert_eq!(reply.body["control_id"], "my-play");

    *h.control.control_id.lock().unwrap() = Some("from-node".into());
    let reply = h
        .command("calling.transcribe", json!({"control_id": "mine"}))
        .await;
    assert_eq!(reply.body["control_id"], "from-node");
}

#[tokio::test]
async fn record_alias_and_defaults() {
    let h = Harness::new();
    let defaults = json!({
        "beep": false, "format": "mp3", "stereo": false, "direction": "speak",
        "initial_timeout": 4.0, "end_silence_timeout": 0.5, "max_length": 0,
        "terminators": "#", "input_sensitivity": 44.0
    });
    let (params, _) = normalised(
        &h,
        "calling.record",
        json!({"control_id": "r1", "audio": {}}),
    )
    .await;
    assert_eq!(
        params,
        json!({"control_id": "r1", "record": {"audio": defaults}})
    );
    // record.audio wins over the alias.
    let (params, _) = normalised(
        &h,
        "calling.record",
        json!({"control_id": "r1", "audio": {"format": "wav"}, "record": {"audio": {"format": "mp4", "terminators": ""}}}),
    )
    .await;
    assert_eq!(params["record"]["audio"]["format"], "mp4");
    assert_eq!(params["record"]["audio"]["terminators"], "");
    assert!(params.get("audio").is_none());
    let (params, reply) =
        normalised(&h, "calling.record", json!({"audio": {"stereo": true}})).await;
    assert_eq!(params["record"]["audio"]["stereo"], true);
    assert_eq!(reply.body["control_id"], params["control_id"]);
}

#[tokio::test]
async fn collect_defaults() {
    let h = Harness::new();
    let (params, _) = normalised(
        &h,
        "calling.collect",
        json!({"control_id": "c1", "digits": {"max": 4}}),
    )
    .await;
    assert_eq!(
        params,
        json!({
            "control_id": "c1", "initial_timeout": 5.0,
            "digits": {"max": 4, "terminators": "#", "digit_timeout": 5.0}, "continuous": false,
            "partial_results": false, "send_start_of_input": false, "start_input_timers": false
        })
    );
}

#[tokio::test]
async fn detect_defaults() {
    let h = Harness::new();
    let (params, _) = normalised(
        &h,
        "calling.detect",
        json!({"control_id": "d1", "detect": {"type": "machine", "params": {"end_silence_timeout": 2.0}}}),
    )
    .await;
    assert_eq!(
        params,
        json!({
            "control_id": "d1",
            "detect": {"type": "machine", "params": {
                "initial_timeout": 4.5, "end_silence_timeout": 2.0,
                "machine_voice_threshold": 1.25, "machine_words_threshold": 6,
                "detect_interruptions": false, "detect_message_end": true
            }},
            "timeout": 30.0
        })
    );
    let Some(CallCommand::Detect(detect)) = h.control.last_command() else {
        panic!("not a detect")
    };
    let control::command::Detector::Machine(machine) = detect.detect else {
        panic!("not a machine detect")
    };
    assert_eq!(
        machine.machine_ready_timeout(),
        2.0,
        "defaults to end_silence_timeout"
    );
    let (params, _) = normalised(
        &h,
        "calling.detect",
        json!({"control_id": "d2", "detect": {"type": "fax", "params": {"tone": "ced"}}}),
    )
    .await;
    assert_eq!(
        params["detect"],
        json!({"type": "fax", "params": {"tone": "CED"}})
    );
}

#[tokio::test]
async fn tap_and_stream_normalised() {
    let h = Harness::new();
    let (params, _) = normalised(
        &h,
        "calling.tap",
        json!({"control_id": "t1", "tap": {"params": {"direction": "speak"}},
               "device": {"type": "rtp", "params": {"addr": "8.8.8.8", "port": 4000, "ptime": 20}}}),
    )
    .await;
    assert_eq!(
        params,
        json!({"control_id": "t1", "tap": {"type": "audio", "params": {"direction": "speak"}},
               "device": {"type": "rtp", "params": {"addr": "8.8.8.8", "port": 4000, "ptime": 20}}})
    );
    let (params, _) = normalised(
        &h,
        "calling.stream",
        json!({"control_id": "s1", "url": "wss://m.example/s", "status_url_method": "get"}),
    )
    .await;
    assert_eq!(
        params,
        json!({"control_id": "s1", "url": "wss://m.example/s", "track": "inbound_track", "status_url_method": "GET"})
    );
}

#[tokio::test]
async fn transfer_device_objects_become_addresses() {
    let h = Harness::new();
    let (params, _) = normalised(
        &h,
        "calling.transfer",
        json!({"dest": {"type": "phone", "params": {"to_number": "+14155550100"}}}),
    )
    .await;
    assert_eq!(params, json!({"dest": "+14155550100"}));
    let (params, _) = normalised(
        &h,
        "calling.transfer",
        json!({"dest": {"type": "sip", "params": {"to": "sip:bob@pbx"}}}),
    )
    .await;
    assert_eq!(params, json!({"dest": "sip:bob@pbx"}));
    let doc = json!({"sections": {"main": [{"hangup": {}}]}});
    let (params, _) = normalised(&h, "calling.transfer", json!({"dest": doc.clone()})).await;
    assert_eq!(params, json!({"dest": doc}));
}

#[tokio::test]
async fn refer_aliases_become_params_to() {
    let h = Harness::new();
    let expected = json!({"device": {"type": "sip", "params": {"to": "sip:bob@pbx"}}});
    for given in [
        json!({"device": {"type": "sip", "params": {"to": "sip:bob@pbx"}}}),
        json!({"device": {"type": "sip", "params": {"uri": "sip:bob@pbx"}}}),
        json!({"device": {"to": "sip:bob@pbx"}}),
        json!({"device": {"type": "sip", "to": "sip:bob@pbx"}}),
    ] {
        let (params, _) = normalised(&h, "calling.refer", given.clone()).await;
        assert_eq!(params, expected, "{given}");
    }
}

#[tokio::test]
async fn ai_hold_timeout_forms() {
    let h = Harness::new();
    for (given, secs) in [
        (json!({}), 300),
        (json!({"timeout": 120}), 120),
        (json!({"timeout": "120"}), 120),
        (json!({"timeout": 60.0}), 60),
    ] {
        let (params, _) = normalised(&h, "calling.ai_hold", given.clone()).await;
        assert_eq!(params["timeout"], json!(secs), "{given}");
    }
}

#[tokio::test]
async fn ai_message_role_defaults_to_system_with_text() {
    let h = Harness::new();
    let (params, _) = normalised(&h, "calling.ai_message", json!({"message_text": "hi"})).await;
    assert_eq!(params, json!({"message_text": "hi"}));
    let Some(CallCommand::AiMessage(message)) = h.control.last_command() else {
        panic!("not an ai_message")
    };
    assert_eq!(message.role(), control::command::AiRole::System);
    let (params, _) = normalised(&h, "calling.ai_message", json!({"reset": {}})).await;
    assert_eq!(params, json!({"reset": {}}));
}

#[tokio::test]
async fn live_transcribe_without_direction_covers_both_legs() {
    let h = Harness::new();
    let (params, _) = normalised(
        &h,
        "calling.live_transcribe",
        json!({"action": {"start": {"lang": "en-US"}}}),
    )
    .await;
    assert_eq!(
        params,
        json!({"action": {"start": {
            "lang": "en-US", "direction": ["remote-caller", "local-caller"],
            "live_events": false, "ai_summary": false, "speech_engine": "deepgram",
            "speech_timeout": 60000, "vad_thresh": 400, "debug_level": 0
        }}})
    );
    let (params, _) = normalised(
        &h,
        "calling.live_transcribe",
        json!({"action": {"start": {"lang": "en-US", "speech_engine": "google"}}}),
    )
    .await;
    assert!(params["action"]["start"].get("vad_silence_ms").is_none());
    let Some(CallCommand::LiveTranscribe(live)) = h.control.last_command() else {
        panic!("not a live_transcribe")
    };
    let control::command::LiveTranscribeAction::Start(start) = live.action else {
        panic!("not a start")
    };
    assert_eq!(start.speech.vad_silence_ms(), 500, "google's default");
    let (params, _) = normalised(&h, "calling.live_transcribe", json!({"action": "stop"})).await;
    assert_eq!(params, json!({"action": "stop"}));
}

#[tokio::test]
async fn live_translate_voice_defaults() {
    let h = Harness::new();
    let (params, _) = normalised(
        &h,
        "calling.live_translate",
        json!({"action": {"start": {"from_lang": "en", "to_lang": "es", "direction": ["local-caller"]}}}),
    )
    .await;
    let start = &params["action"]["start"];
    assert_eq!(start["from_voice"], "elevenlabs.josh");
    assert_eq!(start["to_voice"], "elevenlabs.josh");
    assert_eq!(start["direction"], json!(["local-caller"]));
}

#[tokio::test]
async fn sidecar_defaults() {
    let h = Harness::new();
    let (params, _) = normalised(&h, "calling.ai_sidecar", json!({"lang": "en-US"})).await;
    assert_eq!(
        params,
        json!({
            "lang": "en-US", "model": "gpt-4o-mini",
            "direction": ["remote-caller", "local-caller"], "customer_role": "remote-caller",
            "permissions": {"swaig_allow_swml": true, "swaig_allow_settings": true, "swaig_set_global_data": true},
            "params": {
                "idle_timeout_ms": 200, "min_interval_ms": 0, "max_iters_per_tick": 5,
                "max_history_tokens": 8000, "act_on_channel": true, "final_summary": false,
                "ai_summary": false, "summary_model": "gpt-4o-mini", "live_events": false,
                "verbose_utterances": false, "speech_engine": "deepgram", "speech_timeout": 0,
                "debug_level": 0, "debug": false
            }
        })
    );
    let (params, _) = normalised(
        &h,
        "calling.ai_sidecar",
        json!({"lang": "en-US", "permissions": {"swaig_allow_swml": false}, "params": {"debug": true}}),
    )
    .await;
    assert_eq!(params["permissions"]["swaig_allow_swml"], false);
    assert_eq!(params["permissions"]["swaig_allow_settings"], true);
    assert_eq!(params["params"]["debug"], true);
    assert_eq!(params["params"]["idle_timeout_ms"], 200);
}

#[tokio::test]
async fn commands_without_control_id_get_none_in_the_response() {
    let h = Harness::new();
    for (command, params) in [
        ("calling.disconnect", json!({})),
        ("calling.denoise", json!({})),
        ("calling.user_event", json!({"event": {"kind": "x"}})),
        ("calling.ai_sidecar.ask", json!({"text": "?"})),
    ] {
        let (normalised_params, reply) = normalised(&h, command, params.clone()).await;
        assert_eq!(normalised_params, params, "{command}");
        assert!(reply.body.get("control_id").is_none(), "{command}");
    }
}
