//! A 1 MiB hostile request costs the API well under 50 MB of heap (issue 10, item 3): bodies
//! whose JSON would parse to far more than their text are refused before parsing, and what is
//! let through is parsed and checked within bounds. Heap is counted by a global allocator, so
//! the figures are exact and the same on every machine.

mod common;

use axum::http::StatusCode;
use common::Harness;

#[global_allocator]
static ALLOC: heapcount::Counting = heapcount::Counting;

const MB: usize = 1_000_000;

/// A dial whose inline `swml` repeats `step` `n` times (to the 1 MiB body cap when `n` is None).
fn dial_body(step: &str, n: Option<usize>) -> String {
    let n = n.unwrap_or((1024 * 1024 - 300) / (step.len() + 1));
    format!(
        r#"{{"command":"dial","params":{{"from":"+15105550100","to":"+14155550199","swml":{{"version":"1.0.0","sections":{{"main":[{}]}}}}}}}}"#,
        vec![step; n].join(",")
    )
}

/// One test (not several): the heap counter is process-wide.
#[tokio::test(flavor = "current_thread")]
async fn hostile_bodies_cost_the_api_little() {
    let h = Harness::new();
    let widest = (swml::size::MAX_CONTAINERS - 10) / 2;
    let cases = [
        // Refused before parsing: 1 MiB of tiny steps.
        (
            dial_body(r#"{"play":{"bogus":1}}"#, None),
            StatusCode::BAD_REQUEST,
        ),
        (
            dial_body(r#"{"set":{"a":"b"}}"#, None),
            StatusCode::BAD_REQUEST,
        ),
        (dial_body("[[[[[[]]]]]]", None), StatusCode::BAD_REQUEST),
        // Let through: the widest document the cap allows, and long strings.
        (
            dial_body(r#"{"set":{"a":"b"}}"#, Some(widest)),
            StatusCode::OK,
        ),
        (
            dial_body(r#""not a step at all, just words""#, None),
            StatusCode::OK,
        ),
    ];
    for (body, status) in cases {
        let len = body.len();
        let base = heapcount::start();
        let reply = h.post_raw(body).await;
        let peak = heapcount::peak_since(base);
        println!("{len} bytes of body: {status}, {peak} bytes of heap");
        assert_eq!(reply.status, status, "{len} bytes: {:?}", reply.body);
        assert!(peak < 30 * MB, "{len} bytes of body: {peak} bytes of heap");
        if status == StatusCode::BAD_REQUEST {
            assert!(
                reply.body.to_string().contains("too complex"),
                "{:?}",
                reply.body
            );
        }
    }
}
