use serde_json::{json, Value};

use super::*;

fn main_of(steps: Value) -> Value {
    json!({"version": "1.0.0", "sections": {"main": steps}})
}

fn codes(doc: Value) -> Vec<&'static str> {
    match check(doc) {
        Ok(c) => panic!("expected errors, got {:?}", c.value),
        Err(problems) => problems.into_iter().map(|p| p.code).collect(),
    }
}

fn first_error(doc: Value) -> Problem {
    match check(doc) {
        Ok(c) => panic!("expected errors, got {:?}", c.value),
        Err(mut problems) => problems.remove(0),
    }
}

#[test]
fn the_table_has_every_method_once() {
    let names: Vec<&str> = method_names().collect();
    assert_eq!(names.len(), crate::ALL_METHODS.len());
    for m in crate::ALL_METHODS {
        assert!(names.contains(&m), "{m} missing from the table");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, names, "the table is sorted and has no duplicates");
    for spec in methods::METHODS {
        for alt in spec.required {
            for k in *alt {
                assert!(
                    spec.params.iter().any(|(p, _)| p == k),
                    "{}: required `{k}` is not a known parameter",
                    spec.name
                );
            }
        }
        for (k, _) in spec.enums.iter() {
            assert!(
                spec.params.iter().any(|(p, _)| p == k),
                "{}: {k}",
                spec.name
            );
        }
    }
}

#[test]
fn document_structure_errors_have_their_codes() {
    assert_eq!(
        codes(json!({"version": "2.0.0", "sections": {"main": []}})),
        ["relay_script_version_invalid"]
    );
    assert_eq!(
        codes(json!({"version": 1, "sections": {"main": []}})),
        ["relay_script_version_invalid"]
    );
    assert_eq!(
        codes(json!({"version": "1.0.0"})),
        ["relay_script_sections_missing"]
    );
    assert_eq!(
        codes(json!({"sections": {"other": []}})),
        ["relay_script_main_section_missing"]
    );
    assert_eq!(
        codes(json!({"sections": ["main"]})),
        ["relay_script_element_wrong_type"]
    );
    assert_eq!(
        codes(json!({"sections": {"main": "answer"}})),
        ["relay_script_element_wrong_type"]
    );
    assert_eq!(codes(json!([1])), ["relay_script_element_wrong_type"]);
}

#[test]
fn step_errors_have_their_codes_and_paths() {
    let p = first_error(main_of(json!([{"answer": {}}, {}])));
    assert_eq!(
        (p.code, p.path.as_str()),
        ("relay_script_method_missing_name", "/sections/main/1")
    );
    let p = first_error(main_of(json!([{"answer": {}, "hangup": {}}])));
    assert_eq!(p.code, "relay_script_element_wrong_type");
    let p = first_error(main_of(json!(["answer"])));
    assert_eq!(p.code, "relay_script_element_wrong_type");
    let p = first_error(main_of(json!([{"dance": {}}])));
    assert_eq!(
        (p.code, p.path.as_str()),
        ("relay_script_method_undefined", "/sections/main/0/dance")
    );
    // A method whose value has the wrong JSON type.
    for bad in [
        json!({"answer": "now"}),
        json!({"cond": {"when": "true"}}),
        json!({"set": [1]}),
        json!({"record": 5}),
        json!({"user_event": []}),
    ] {
        assert_eq!(
            codes(main_of(json!([bad.clone()]))),
            ["relay_script_element_wrong_type"],
            "{bad}"
        );
    }
}

#[test]
fn parameter_errors_have_their_codes() {
    let cases = [
        (
            json!({"play": {"url": "say:x", "volume": "loud"}}),
            "relay_script_method_parameter_invalid_value",
            "/sections/main/0/play/volume",
        ),
        (
            json!({"play": {"volume": 3}}),
            "relay_script_method_parameter_missing",
            "/sections/main/0/play",
        ),
        (
            json!({"play": {"url": "say:a", "urls": ["say:b"]}}),
            "relay_script_method_parameter_conflict",
            "/sections/main/0/play",
        ),
        (
            json!({"connect": {"to": "+15550100000", "serial": [{"to": "+15550100001"}]}}),
            "relay_script_method_parameter_conflict",
            "/sections/main/0/connect",
        ),
        (
            json!({"transfer": {}}),
            "relay_script_method_parameter_missing",
            "/sections/main/0/transfer",
        ),
        (
            json!({"request": {"url": "https://x.example", "method": "PATCH"}}),
            "relay_script_method_parameter_invalid_value",
            "/sections/main/0/request/method",
        ),
        (
            json!({"hangup": {"reason": "whatever"}}),
            "relay_script_method_parameter_invalid_value",
            "/sections/main/0/hangup/reason",
        ),
        (
            json!({"sleep": {"duration": "soon"}}),
            "relay_script_method_parameter_invalid_value",
            "/sections/main/0/sleep/duration",
        ),
        (
            json!({"answer": {"max_duration": 1.5}}),
            "relay_script_method_parameter_invalid_value",
            "/sections/main/0/answer/max_duration",
        ),
        (
            json!({"record_call": {"stereo": "maybe"}}),
            "relay_script_method_parameter_invalid_value",
            "/sections/main/0/record_call/stereo",
        ),
        (
            json!({"send_sms": {"from_number": "+15550100000", "to_number": "+15550100001"}}),
            "relay_script_method_parameter_missing",
            "/sections/main/0/send_sms",
        ),
        (
            json!({"execute": {"dest": "sub", "on_return": {"hangup": {}}}}),
            "relay_script_method_parameter_invalid_value",
            "/sections/main/0/execute/on_return",
        ),
        (
            json!({"cond": [{"when": "true", "then": [{"dance": {}}]}]}),
            "relay_script_method_undefined",
            "/sections/main/0/cond/0/then/0/dance",
        ),
        (
            json!({"switch": {"variable": "x", "case": {"1": [{"nope": {}}]}}}),
            "relay_script_method_undefined",
            "/sections/main/0/switch/case/1/0/nope",
        ),
        (
            json!({"execute": {"dest": "sub", "result": {"case": {"a": [{"play": 3}]}}}}),
            "relay_script_element_wrong_type",
            "/sections/main/0/execute/result/case/a/0/play",
        ),
    ];
    for (step, code, path) in cases {
        let p = first_error(main_of(json!([step.clone()])));
        assert_eq!((p.code, p.path.as_str()), (code, path), "{step}: {p}");
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let mut block = json!([{"hangup": {}}]);
    for _ in 0..=MAX_BLOCK_DEPTH {
        block = json!([{"cond": [{"when": "true", "then": block}]}]);
    }
    assert!(codes(main_of(block)).contains(&"relay_script_nested_too_deep"));
    let mut ok = json!([{"hangup": {}}]);
    for _ in 0..10 {
        ok = json!([{"cond": [{"when": "true", "then": ok}]}]);
    }
    assert!(check(main_of(ok)).is_ok());
}

#[test]
fn unknown_names_are_warned_and_ignored() {
    let doc = json!({"sections": {"main": [
        {"play": {"url": "say:hi", "loudness": 11}},
        {"answer": {"codecs": "PCMU", "x_custom": true}}
    ]}, "meta": {"owner": "me"}});
    let checked = check(doc.clone()).unwrap();
    assert_eq!(checked.value, doc, "nothing is removed");
    let w: Vec<(&str, &str)> = checked
        .warnings
        .iter()
        .map(|p| (p.code, p.path.as_str()))
        .collect();
    assert_eq!(
        w,
        [
            ("relay_script_element_undefined", "/meta"),
            (
                "relay_script_method_parameter_undefined",
                "/sections/main/0/play/loudness"
            ),
            (
                "relay_script_method_parameter_undefined",
                "/sections/main/1/answer/x_custom"
            ),
        ]
    );
}

#[test]
fn lenient_forms_are_accepted_and_normalised() {
    let doc = json!({"sections": {
        "main": [
            {"answer": null},
            {"play": "say:Hello"},
            {"goto": "top"},
            {"execute": "sub"},
            {"sleep": 5000},
            {"sleep": "${vars.wait}"},
            {"play": {"urls": ["say:x", "${record_call_url}"], "volume": "${vol}"}},
            {"play": {"url": "${base}/a.mp3", "volume": "-3"}},
            {"play": {"url": "ring:us-old"}},
            {"record_call": {"stereo": "true", "beep": true, "format": "MP3"}},
            {"send_digits": {"digits": 1234}},
            {"return": null},
            {"transfer": [{"dest": "https://x.example/next"}, {"params": [{"foo": "bar"}, {"n": 1}]}]}
        ],
        "sub": {"hangup": {}}
    }});
    let checked = check(doc).unwrap();
    let main = &checked.value["sections"]["main"];
    assert_eq!(main[0], json!({"answer": {}}));
    assert_eq!(main[1], json!({"play": {"url": "say:Hello"}}));
    assert_eq!(main[2], json!({"goto": {"label": "top"}}));
    assert_eq!(main[3], json!({"execute": {"dest": "sub"}}));
    assert_eq!(
        main[12],
        json!({"transfer": {"dest": "https://x.example/next", "params": {"foo": "bar", "n": 1}}})
    );
    assert_eq!(checked.value["sections"]["sub"], json!([{"hangup": {}}]));
    assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
}

#[test]
fn kinds_are_lenient_where_swml_is() {
    assert!(kind_ok(I, &json!(30)));
    assert!(kind_ok(I, &json!(30.0)));
    assert!(kind_ok(I, &json!("30")));
    assert!(kind_ok(I, &json!("${x}")));
    assert!(!kind_ok(I, &json!(1.5)));
    assert!(!kind_ok(I, &json!("thirty")));
    assert!(kind_ok(N, &json!("1.5")));
    assert!(!kind_ok(N, &json!("NaN")));
    assert!(kind_ok(B, &json!("false")));
    assert!(!kind_ok(B, &json!(1)));
    assert!(kind_ok(S, &json!(5)));
    assert!(!kind_ok(S, &json!({})));
    assert!(kind_ok(O, &json!("%{vars.obj}")));
    assert!(kind_ok(ANY, &json!([1])));
}
