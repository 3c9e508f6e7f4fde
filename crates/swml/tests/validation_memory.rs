//! Bounded validation work: a 1 MiB hostile document costs less than 50 MB of heap at its
//! peak (issue 10, item 3). Heap is counted by a global allocator, so the figure is exact and
//! the same on every machine (no RSS, no timing).

use heapcount::peak_during;

#[global_allocator]
static ALLOC: heapcount::Counting = heapcount::Counting;

/// A document of `step` repeated to just under the 1 MiB size cap.
fn hostile(step: &str) -> String {
    let room = swml::MAX_DOCUMENT_BYTES - 100;
    let n = room / (step.len() + 1);
    format!(
        r#"{{"version":"1.0.0","sections":{{"main":[{}]}}}}"#,
        vec![step; n].join(",")
    )
}

/// The largest step count the container cap lets through (2 containers per step).
fn widest(step: &str) -> String {
    let n = (swml::size::MAX_CONTAINERS - 3) / 2;
    format!(
        r#"{{"version":"1.0.0","sections":{{"main":[{}]}}}}"#,
        vec![step; n].join(",")
    )
}

const MB: usize = 1_000_000;

/// Tiny steps that parse to far more memory than their text: refused before parsing.
#[test]
fn a_mebibyte_of_tiny_steps_is_refused_before_parsing() {
    for step in [
        r#"{"play":{"bogus":1}}"#,
        r#"{"nosuch":{}}"#,
        r#"{"set":{"a":"b"}}"#,
        r#"[[[[]]]]"#,
    ] {
        let doc = hostile(step);
        let (r, peak) = peak_during(|| swml::Document::from_text(&doc).map(|_| ()));
        assert!(
            matches!(r, Err(swml::SwmlError::TooComplex(_))),
            "{step}: {r:?}"
        );
        assert!(peak < MB, "{step}: {peak} bytes");
    }
}

/// What the cap lets through — the widest documents, valid or not, and long strings — is
/// parsed and checked in well under 50 MB.
#[test]
fn the_largest_accepted_documents_cost_under_25_mb() {
    let long_say = format!(r#"{{"play":{{"url":"say:{}"}}}}"#, "a".repeat(30));
    for doc in [
        widest(r#"{"play":{"bogus":1}}"#),
        widest(r#"{"set":{"a":"b"}}"#),
        widest(r#"{"play":{"url":1}}"#),
        widest(&long_say),
        hostile(r#""some words that are not a step""#),
    ] {
        let (r, peak) = peak_during(|| swml::Document::from_text(&doc).map(|_| ()));
        assert!(!matches!(r, Err(swml::SwmlError::TooComplex(_))), "{r:?}");
        println!("{} bytes of text: {peak} bytes", doc.len());
        assert!(peak < 25 * MB, "{} bytes of text: {peak} bytes", doc.len());
    }
}

/// YAML is parsed under the same budget: a "billion laughs" stops early.
#[test]
fn a_yaml_bomb_stops_early() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb += &format!("a{i}: &a{i} [{refs}]\n");
    }
    let (r, peak) = peak_during(|| swml::parse_text(&bomb));
    assert!(matches!(r, Err(swml::SwmlError::TooComplex(_))), "{r:?}");
    assert!(peak < 50 * MB, "{peak} bytes");
}

/// The largest YAML document accepted (YAML has its own, smaller size cap).
#[test]
fn the_largest_yaml_document_costs_under_25_mb() {
    let mut text = String::from("sections:\n  main:\n");
    let step = "    - play: {url: 'say:x'}\n";
    while text.len() + step.len() <= swml::MAX_YAML_BYTES {
        text += step;
    }
    let (r, peak) = peak_during(|| swml::Document::from_text(&text).map(|_| ()));
    assert!(r.is_ok(), "{r:?}");
    assert!(peak < 25 * MB, "{peak} bytes");
    text += step;
    assert_eq!(swml::parse_text(&text), Err(swml::SwmlError::YamlTooLarge));
}
