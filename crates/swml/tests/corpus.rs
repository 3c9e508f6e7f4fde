//! The superset corpus (`tests/corpus/superset.yaml`): every document is valid SWML under the
//! superset of both published schemas; dialtone's runtime validator must accept each with no
//! warning, and the corpus must use every SWML method. Entries marked `sdk_schema_refuses` are
//! the ones the signalwire-sdk 3.7.5 schema refuses (issue 16) — the lint still says so.

use serde_json::Value;

fn corpus() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/superset.yaml");
    let text = std::fs::read_to_string(&path).expect("corpus file");
    let v: Value = serde_yaml::from_str(&text).expect("corpus is YAML");
    v.as_array().cloned().expect("corpus is a list")
}

fn name(entry: &Value) -> &str {
    entry["name"].as_str().unwrap_or("?")
}

fn methods_in(steps: &Value, out: &mut Vec<String>) {
    for step in steps.as_array().into_iter().flatten() {
        if let Some((m, params)) = step.as_object().and_then(|o| o.iter().next()) {
            out.push(m.clone());
            for key in ["on_return", "then", "else", "default"] {
                methods_in(&params[key], out);
            }
            if let Some(entries) = params.as_array() {
                for e in entries {
                    methods_in(&e["then"], out);
                    methods_in(&e["else"], out);
                }
            }
        }
    }
}

#[test]
fn every_superset_document_is_accepted_without_warnings() {
    let corpus = corpus();
    assert!(corpus.len() >= 43, "{} entries", corpus.len());
    for entry in &corpus {
        let doc = swml::Document::from_value(entry["doc"].clone())
            .unwrap_or_else(|e| panic!("{}: refused: {e}", name(entry)));
        assert!(
            doc.warnings().is_empty(),
            "{}: warnings {:?}",
            name(entry),
            doc.warnings()
        );
        // The JSON text and YAML text forms load the same.
        let text = entry["doc"].to_string();
        assert!(swml::Document::from_text(&text).is_ok(), "{}", name(entry));
    }
}

#[test]
fn the_corpus_uses_every_method() {
    let mut seen = Vec::new();
    for entry in corpus() {
        if let Some(sections) = entry["doc"]["sections"].as_object() {
            for steps in sections.values() {
                methods_in(steps, &mut seen);
            }
        }
    }
    for m in swml::ALL_METHODS {
        assert!(seen.iter().any(|s| s == m), "no corpus document uses `{m}`");
    }
}

#[test]
fn the_sdk_schema_lint_still_refuses_the_gap_documents() {
    let mut gaps = 0;
    for entry in corpus() {
        let refused = !swml::schema_lint(&entry["doc"]).is_empty();
        let expected = entry["sdk_schema_refuses"].as_bool().unwrap_or(false);
        assert_eq!(refused, expected, "{}", name(&entry));
        gaps += usize::from(expected);
    }
    assert!(gaps >= 11, "{gaps} gap documents");
}

#[test]
fn a_document_with_unknown_parameter_names_runs_with_warnings() {
    let doc = swml::Document::from_text(
        "sections:\n  main:\n    - play: {url: 'say:hi', sdk_extra: 1}\n    - hangup: {}\n",
    )
    .expect("unknown names are not errors");
    assert_eq!(doc.warnings().len(), 1);
    assert_eq!(
        doc.warnings()[0].code,
        "relay_script_method_parameter_undefined"
    );
    assert!(!swml::schema_lint(doc.as_value()).is_empty());
}
