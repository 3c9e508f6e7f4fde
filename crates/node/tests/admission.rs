//! The admission gate of a real node (SIP on loopback, a tiny RTP range): `max_calls`, RTP
//! ports and the drain refuse new calls with `ControlError::AtCapacity` before anything is
//! stored, and the refusals are counted. The far end is a silent UDP socket, so dialled calls
//! stay ringing-less (`initiated`) while the test looks.

use std::sync::Arc;
use std::time::Duration;

use control::{CallControl, CallFilter, ControlError, DialRequest};
use uuid::Uuid;

fn config(dir: &std::path::Path, rtp: (u16, u16), max_calls: usize) -> node::NodeConfig {
    node::NodeConfig {
        sip_listen: "127.0.0.1:0".parse().unwrap(),
        external_ip: "127.0.0.1".parse().unwrap(),
        rtp_ports: rtp,
        data_dir: dir.to_path_buf(),
        project_id: Uuid::new_v4(),
        api_token: "t".into(),
        signing_key: "k".into(),
        space_id: Uuid::new_v4(),
        node_id: Uuid::new_v4(),
        default_trunk: None,
        inbound_routes: Vec::new(),
        media_shards: 1,
        swml_fetch_timeout: Duration::from_secs(2),
        swml_max_bytes: 1 << 20,
        audio_max_bytes: 1 << 20,
        audio_max_seconds: 60,
        webhook_timeout: Duration::from_secs(1),
        webhook_backoff: vec![Duration::from_millis(100)],
        webhook_retry: webhook::RetryPolicy::default(),
        webhook_per_destination: 4,
        webhook_retention: webhook::Retention::default(),
        user_agent: "dialtone-test".into(),
        public_url: "http://127.0.0.1:1".into(),
        s3: None,
        asr_command: None,
        max_calls,
        metrics: metrics::Metrics::new(),
        rtp_latch: media::latch::LatchPolicy::default(),
        media_io: node::shard_io::MediaIo::default(),
        media_thread_nice: 0,
        codecs: sdp::Codec::ALL.to_vec(),
        inbound_encryption: sdp::Encryption::Optional,
        outbound_encryption: sdp::Encryption::Forbidden,
        sip_tcp: sip::TcpLimits::default(),
        sip_tls: None,
        sip_tls_ca_pem: None,
        ws_ca_pem: None,
        tap_allow_private: false,
        fax_t38: true,
        ai: None,
        egress: egress::EgressPolicy::default(),
        script_threads: 2,
        js_budget: swml::expr::JS_SCRIPT_BUDGET,
    }
}

/// A free even-based range of `n` UDP ports on loopback.
fn rtp_range(n: u16) -> (u16, u16) {
    for base in (42000..52000).step_by(64) {
        let all_free =
            (base..base + n).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return (base, base + n - 1);
        }
    }
    panic!("no free RTP range");
}

fn dial_to(target: &std::net::UdpSocket) -> DialRequest {
    let addr = target.local_addr().unwrap();
    DialRequest {
        from: "+15105550100".into(),
        to: Some(format!("sip:silent@{addr}")),
        swml: Some(serde_json::json!({"version": "1.0.0", "sections": {"main": [{"sleep": -1}]}})),
        timeout_secs: 30,
        ..DialRequest::default()
    }
}

fn code(e: ControlError) -> &'static str {
    match e {
        ControlError::AtCapacity { code, .. } => code,
        other => panic!("expected AtCapacity, got {other:?}"),
    }
}

#[tokio::test]
async fn max_calls_ports_and_drain_refuse_new_calls_before_anything_is_stored() {
    sip::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Three even ports, a cap of two calls.
    let cfg = config(dir.path(), rtp_range(6), 2);
    let project = cfg.project_id;
    let node = node::Node::start(cfg).await.unwrap();
    let control: Arc<dyn CallControl> = Arc::new(node.clone());

    control.dial(project, dial_to(&silent)).await.unwrap();
    control.dial(project, dial_to(&silent)).await.unwrap();
    assert_eq!(node.live_calls(), 2);
    let refused = control.dial(project, dial_to(&silent)).await.unwrap_err();
    let message = refused.to_string();
    assert_eq!(code(refused), "max_calls_reached");
    assert!(message.contains("2 concurrent calls"), "{message}");
    // Nothing stored for the refused call.
    let page = control
        .list_calls(project, CallFilter::default())
        .await
        .unwrap();
    assert_eq!(page.calls.len(), 2);

    // (A call ending makes room again: tests/e2e/test_ops.py, with a far end that answers.)
    node.begin_drain();
    assert!(node.is_draining());
    let refused = control.dial(project, dial_to(&silent)).await.unwrap_err();
    assert_eq!(code(refused), "draining");

    let text = node.metrics().render(&metrics::Snapshot::default());
    assert!(
        text.contains("dialtone_calls_refused_total{reason=\"max_calls_reached\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("dialtone_calls_refused_total{reason=\"draining\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("dialtone_call_setups_total{direction=\"outbound\"} 2\n"),
        "{text}"
    );
    // No shutdown: the silent far end never answers, so the calls could only time out.
}

#[tokio::test]
async fn a_full_rtp_range_is_refused_up_front() {
    sip::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // One even port, no call cap.
    let cfg = config(dir.path(), rtp_range(2), 0);
    let project = cfg.project_id;
    let node = node::Node::start(cfg).await.unwrap();
    let control: Arc<dyn CallControl> = Arc::new(node.clone());
    control.dial(project, dial_to(&silent)).await.unwrap();
    let refused = control.dial(project, dial_to(&silent)).await.unwrap_err();
    assert_eq!(code(refused), "no_rtp_port");
    assert_eq!(node.live_calls(), 1);
    // No shutdown: the silent far end never answers, so the calls could only time out.
}
