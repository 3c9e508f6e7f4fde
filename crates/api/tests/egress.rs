//! URLs the node's egress policy refuses from their text alone are a 422 `url_is_unsafe` at the
//! API, naming the attribute; the command never reaches the node.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

fn policy(mode: &str, deny: &[&str]) -> Arc<egress::EgressPolicy> {
    Arc::new(egress::EgressPolicy::parse(mode, [] as [&str; 0], deny).unwrap())
}

fn dial(url: &str) -> Value {
    json!({"from": "+15105550100", "to": "+14155550199", "url": url})
}

fn play(url: &str) -> Value {
    json!({"play": [{"type": "audio", "params": {"url": url}}]})
}

async fn refused(h: &Harness, command: &str, params: Value, attribute: &str) {
    let reply = h.command(command, params.clone()).await;
    assert_eq!(reply.status, 422, "{command} {params}: {}", reply.body);
    assert_eq!(
        reply.error_items(),
        [("url_is_unsafe".to_owned(), attribute.to_owned())],
        "{}",
        reply.body
    );
    let detail = reply.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("egress policy"), "{}", reply.body);
}

#[tokio::test]
async fn metadata_and_unspecified_literals_are_refused_by_default() {
    let h = Harness::new();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:8080/",
        "http://2852039166/",
    ] {
        refused(&h, "dial", dial(url), "url").await;
        refused(
            &h,
            "dial",
            with(
                &dial("https://app.example/swml"),
                json!({"status_url": url}),
            ),
            "status_url",
        )
        .await;
        refused(&h, "calling.play", play(url), "play.0.params.url").await;
        refused(&h, "calling.transfer", json!({"dest": url}), "dest").await;
    }
    assert_eq!(h.control.received(), 0);
    // Loopback, private and names are fine by default (names are decided when they resolve).
    for url in [
        "http://127.0.0.1:9000/swml",
        "http://10.0.0.5/x",
        "https://app.example/swml",
    ] {
        let reply = h.command("dial", dial(url)).await;
        assert_eq!(reply.status, 200, "{url}: {}", reply.body);
    }
}

#[tokio::test]
async fn public_only_and_deny_entries_are_the_nodes() {
    let h =
        Harness::with_state(|s| s.with_egress(policy("public-only", &["hooks.blocked.example"])));
    refused(&h, "dial", dial("http://127.0.0.1:9000/swml"), "url").await;
    refused(&h, "dial", dial("http://[::1]/"), "url").await;
    refused(
        &h,
        "dial",
        dial("https://hooks.blocked.example/swml"),
        "url",
    )
    .await;
    refused(
        &h,
        "calling.play",
        play("http://192.168.1.4/a.wav"),
        "play.0.params.url",
    )
    .await;
    let reply = h.command("dial", dial("https://app.example/swml")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
