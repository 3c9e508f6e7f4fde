//! The endpoint itself: requests from the network (OPTIONS, stray INVITEs,
//! garbage), timers with no far end, configuration errors, shutdown.

mod common;

use common::*;
use sip::{LegEvent, SipConfig, SipEndpoint, SipError, SipOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

/// A UDP socket that records every datagram's first line and never answers.
async fn black_hole() -> (u16, Arc<Mutex<Vec<String>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = sock.recv_from(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let first = text.lines().next().unwrap_or("").to_string();
            seen2.lock().unwrap().push(first);
        }
    });
    (port, seen)
}

fn fast_timers() -> SipOptions {
    SipOptions {
        t1: Duration::from_millis(50),
        t2: Duration::from_millis(400),
        transaction_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

#[tokio::test]
async fn timer_b_fails_with_408_after_retransmissions() {
    let (port, seen) = black_hole().await;
    let ep = endpoint_with(fast_timers()).await;
    let started = tokio::time::Instant::now();
    let mut leg = ep
        .invite(invite(format!("sip:bob@127.0.0.1:{port}")))
        .await
        .unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Failed(408)", "Terminated"]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    let seen = seen.lock().unwrap().clone();
    // Timer A: 0, 50, 150, 350, 750 ms.
    assert!(seen.len() >= 4, "{seen:?}");
    assert!(
        seen.iter().all(|l| l.starts_with("INVITE sip:bob@")),
        "{seen:?}"
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn cancel_before_any_response_waits_for_a_provisional() {
    // RFC 3261 §9.1: no CANCEL before a provisional response. With a far end
    // that never answers, the INVITE ends with timer B.
    let (port, seen) = black_hole().await;
    let ep = endpoint_with(fast_timers()).await;
    let mut leg = ep
        .invite(invite(format!("sip:bob@127.0.0.1:{port}")))
        .await
        .unwrap();
    leg.handle.cancel().await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Failed(408)", "Terminated"]);
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.iter().any(|l| l.starts_with("CANCEL")), "{seen:?}");
    ep.shutdown().await;
}

#[tokio::test]
async fn tcp_connection_refused_fails_at_once() {
    let port = free_port(); // nothing listens there
    let ep = endpoint().await; // default timers: timer B would be 32 s
    let started = tokio::time::Instant::now();
    let mut leg = ep
        .invite(invite(format!("sip:bob@127.0.0.1:{port};transport=tcp")))
        .await
        .unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Failed(0)", "Terminated"]);
    match &evs[0] {
        LegEvent::Failed { reason, .. } => assert!(reason.contains("cannot reach"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    ep.shutdown().await;
}

#[tokio::test]
async fn unresolvable_host_fails_at_once() {
    let ep = endpoint().await;
    let mut leg = ep
        .invite(invite("sip:bob@no-such-host.invalid".into()))
        .await
        .unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Failed(0)", "Terminated"]);
    ep.shutdown().await;
}

#[tokio::test]
async fn options_answered_200() {
    let ep = endpoint().await;
    let sipp = Sipp::uac("options", "uac_options.xml", ep.local_addr()).await;
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(ladder.arrows(), ["< OPTIONS", "> 200"]);
    let ok = &ladder.0[1];
    assert!(ok.header("Allow").unwrap().contains("BYE"));
    assert_eq!(ok.header("User-Agent").unwrap(), "dialtone-test");
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_invite_refused_404_when_nobody_takes_calls() {
    // `endpoint()` drops the receiver of inbound calls.
    let ep = endpoint().await;
    let sipp = Sipp::uac("inbound_404", "uac_invite.xml", ep.local_addr()).await;
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(ladder.arrows(), ["< INVITE", "> 100", "> 404", "< ACK"]);
    assert_eq!(ladder.0[2].start_line, "SIP/2.0 404 No route");
    assert!(ladder.0[2].header("To").unwrap().contains(";tag="));
    ep.shutdown().await;
}

/// Things that are not SIP, or are SIP the stack must refuse, all sent to
/// our UDP port.
fn garbage() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"\0\0\0\0".to_vec(),
        b"INVITE\r\n\r\n".to_vec(),
        b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec(),
        b"invite sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKa\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        b"SIP/2.0 abc OK\r\n\r\n".to_vec(),
        b"SIP/2.0 99999 Huge\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKb\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKstray\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP [::1:5060;branch=z9hG4bKc\r\nCall-ID: a\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@b;tag=1\r\nTo: <\r\n\r\n".to_vec(),
        b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:99999;branch=z9hG4bKd\r\nCall-ID: a\r\nCSeq: abc OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"OPTIONS sip:@::: SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKe\r\nCall-ID: b\r\nCSeq: 1 OPTIONS\r\nFrom: x\r\nTo: y\r\nContent-Length: 5\r\n\r\n".to_vec(),
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKf\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nContent-Length: 99999\r\n\r\nv=0".to_vec(),
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKg\r\nCall-ID: d\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKh\r\nCall-ID: e\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@b>\r\nTo: <sip:bob@127.0.0.1>\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"BYE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKi\r\nCall-ID: nosuch\r\nCSeq: 2 BYE\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>;tag=nosuch\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"CANCEL sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKj\r\nCall-ID: f\r\nCSeq: 1 CANCEL\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"ACK sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKk\r\nCall-ID: g\r\nCSeq: 1 ACK\r\n\r\n".to_vec(),
        b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKl\r\nCall-ID: h\r\nCSeq: 1 MESSAGE\r\nFrom: \"\xce\xa9mega\" <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: \xff\xfe\r\nCall-ID: \xc3\x28\r\n\r\n".to_vec(),
        b"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia SIP/2.0/UDP 127.0.0.1:9\r\n: empty name\r\n\r\n".to_vec(),
    ];
    // Huge header, many Vias, and deterministic noise.
    let mut big = b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 60_000));
    big.extend_from_slice(b"\r\n\r\n");
    out.push(big);
    let mut vias = b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n".to_vec();
    for i in 0..1000 {
        vias.extend_from_slice(
            format!("Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{i}\r\n").as_bytes(),
        );
    }
    vias.extend_from_slice(b"\r\n");
    out.push(vias);
    let mut x: u32 = 0x1234_5678;
    for len in [1usize, 7, 64, 300, 1400, 9000] {
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push((x & 0xff) as u8);
        }
        out.push(v.clone());
        // The same noise after a plausible start line.
        let mut w = b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n".to_vec();
        w.extend(v);
        out.push(w);
    }
    out
}

#[tokio::test]
async fn garbage_does_not_break_the_next_call() {
    let ep = endpoint().await;
    let ours = ep.local_addr();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for g in garbage() {
        sock.send_to(&g, ours).await.unwrap();
    }
    // The same over TCP, on two connections (one left open half-way).
    for chunk in [
        &b"\xff\xfe garbage \r\n\r\n"[..],
        &b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nContent-Length: 100000000\r\n\r\nv=0"[..],
    ] {
        let mut tcp = tokio::net::TcpStream::connect(ours).await.unwrap();
        tcp.write_all(chunk).await.unwrap();
        tcp.write_all(&garbage().concat()).await.ok();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A real call still works...
    let sipp = Sipp::uas("garbage_then_call", "uas_answer.xml", Tp::Udp).await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_answered).await;
    assert_eq!(names(&evs), ["Ringing(180)", "Answered"]);
    leg.handle.hangup().await.unwrap();
    events_until(&mut leg.events, 5, is_terminated).await;
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0);
    // ... over TCP too, and we still answer OPTIONS.
    let sipp = Sipp::uas("garbage_then_tcp_call", "uas_answer.xml", Tp::Tcp).await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, is_answered).await;
    leg.handle.hangup().await.unwrap();
    events_until(&mut leg.events, 5, is_terminated).await;
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0);
    let sipp = Sipp::uac("garbage_then_options", "uac_options.xml", ours).await;
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0);
    ep.shutdown().await;
}

#[tokio::test]
async fn advertises_external_ip_not_the_bind_address() {
    init();
    let cfg = SipConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        external_ip: "127.0.0.2".parse().unwrap(),
        user_agent: "dialtone-test".into(),
    };
    let (ep, _incoming) = SipEndpoint::start(cfg).await.unwrap();
    let port = ep.local_addr().port();
    assert_eq!(
        ep.advertised_addr().to_string(),
        format!("127.0.0.2:{port}")
    );
    let sipp = Sipp::uas("external_ip", "uas_remote_bye.xml", Tp::Udp).await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(
        names(&evs),
        ["Ringing(180)", "Answered", "RemoteBye", "Terminated"]
    );
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    let inv = ladder.sent_by_us("INVITE")[0];
    assert!(inv
        .header("Via")
        .unwrap()
        .starts_with(&format!("SIP/2.0/UDP 127.0.0.2:{port};")));
    assert_eq!(
        inv.header("Contact").unwrap(),
        format!("<sip:+15550001111@127.0.0.2:{port}>")
    );
    assert!(inv.header("Call-ID").unwrap().ends_with("@127.0.0.2"));
    ep.shutdown().await;
}

#[tokio::test]
async fn local_errors() {
    init();
    let bad = SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        external_ip: "0.0.0.0".parse().unwrap(),
        user_agent: "x".into(),
    };
    assert!(matches!(
        SipEndpoint::start(bad).await,
        Err(SipError::Config(_))
    ));

    let ep = endpoint().await;
    // The port is taken (UDP and TCP) by our endpoint.
    let clash = SipConfig {
        listen: ep.local_addr(),
        external_ip: "127.0.0.1".parse().unwrap(),
        user_agent: "x".into(),
    };
    assert!(matches!(
        SipEndpoint::start(clash).await,
        Err(SipError::Bind { .. })
    ));

    let mut req = invite("tel:+15551234567".into());
    assert!(matches!(
        ep.invite(req.clone()).await,
        Err(SipError::InvalidUri {
            field: "target",
            ..
        })
    ));
    req.target = "sip:bob@127.0.0.1:5060".into();
    req.to_uri = "not a uri".into();
    assert!(matches!(
        ep.invite(req.clone()).await,
        Err(SipError::InvalidUri { field: "to", .. })
    ));
    req.to_uri = "sip:bob@127.0.0.1".into();
    req.extra_headers = vec![("Via".into(), "SIP/2.0/UDP 6.6.6.6".into())];
    assert!(matches!(
        ep.invite(req.clone()).await,
        Err(SipError::InvalidHeader { .. })
    ));
    req.extra_headers = vec![("X-Evil".into(), "a\r\nBYE sip:x SIP/2.0".into())];
    assert!(matches!(
        ep.invite(req.clone()).await,
        Err(SipError::InvalidHeader { .. })
    ));

    ep.shutdown().await;
    ep.shutdown().await; // idempotent
    req.extra_headers.clear();
    assert!(matches!(ep.invite(req).await, Err(SipError::Shutdown)));
}

#[tokio::test]
async fn shutdown_hangs_up_live_legs() {
    let sipp = Sipp::uas("shutdown_bye", "uas_answer.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, is_answered).await;
    ep.shutdown().await;
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Terminated"]);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"]
    );
}

#[tokio::test]
async fn dropped_event_receiver_hangs_up() {
    let sipp = Sipp::uas("dropped_rx", "uas_answer.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, is_answered).await;
    drop(leg.events);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"]
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn shutdown_releases_the_port() {
    let ep = endpoint().await;
    let addr = ep.local_addr();
    ep.shutdown().await;
    drop(ep);
    for _ in 0..100 {
        if std::net::UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} still bound after shutdown");
}

#[tokio::test]
async fn sips_goes_over_tls_and_a_failed_handshake_fails_at_once() {
    // A TCP peer that reads the TLS ClientHello and hangs up: no TLS server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hello = Arc::new(Mutex::new(Vec::new()));
    let hello2 = hello.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 512];
            if let Ok(n) = s.read(&mut buf).await {
                hello2.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let ep = endpoint().await;
    let started = tokio::time::Instant::now();
    let mut leg = ep
        .invite(invite(format!("sips:bob@127.0.0.1:{port}")))
        .await
        .unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Failed(0)", "Terminated"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    // What reached the peer was a TLS handshake record, not SIP.
    let hello = hello.lock().unwrap().clone();
    assert_eq!(
        hello.first(),
        Some(&0x16),
        "TLS handshake record: {hello:?}"
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn dropping_the_endpoint_releases_the_port() {
    let ep = endpoint().await;
    let addr = ep.local_addr();
    let clone = ep.clone();
    drop(ep);
    assert!(
        std::net::UdpSocket::bind(addr).is_err(),
        "a clone still owns it"
    );
    drop(clone);
    for _ in 0..100 {
        if std::net::UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} still bound after the last clone was dropped");
}

/// A request from a raw UDP socket; returns the first response's status line (or "" on timeout).
async fn raw_request(
    sock: &UdpSocket,
    to: std::net::SocketAddr,
    method: &str,
    cseq: &str,
    max_forwards: &str,
) -> String {
    let port = sock.local_addr().unwrap().port();
    let msg = format!(
        "{method} sip:bob@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{}\r\n\
         Max-Forwards: {max_forwards}\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: <sip:bob@{to}>\r\n\
         Call-ID: {}@127.0.0.1\r\n\
         CSeq: {cseq}\r\n\
         Contact: <sip:alice@127.0.0.1:{port}>\r\n\
         Content-Length: 0\r\n\r\n",
        uuid_like(),
        uuid_like(),
    );
    sock.send_to(msg.as_bytes(), to).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        let Ok(Ok((n, _))) = got else {
            return String::new();
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let first = text.lines().next().unwrap_or("").to_string();
        if !first.starts_with("SIP/2.0 100") {
            return first;
        }
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:x}{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test]
async fn max_forwards_zero_is_483_and_cseq_mismatch_is_400() {
    let ep = endpoint().await;
    let ours = ep.local_addr();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for method in ["OPTIONS", "INVITE"] {
        let got = raw_request(&sock, ours, method, &format!("1 {method}"), "0").await;
        assert!(
            got.starts_with("SIP/2.0 483"),
            "{method} with Max-Forwards 0: {got:?}"
        );
    }
    for (method, cseq) in [
        ("OPTIONS", "1 INVITE"),
        ("INVITE", "2 BYE"),
        ("INVITE", "3 OPTIONS"),
    ] {
        let got = raw_request(&sock, ours, method, cseq, "70").await;
        assert!(
            got.starts_with("SIP/2.0 400"),
            "{method} with CSeq {cseq}: {got:?}"
        );
    }
    // The endpoint keeps serving well-formed requests.
    let got = raw_request(&sock, ours, "OPTIONS", "4 OPTIONS", "1").await;
    assert!(got.starts_with("SIP/2.0 200"), "{got:?}");
    let sipp = Sipp::uac("after_refusals", "uac_options.xml", ours).await;
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0);
    ep.shutdown().await;
}

/// Whether the server closed `s` (EOF or reset) within `within`.
async fn closed_by_server(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn silent_and_idle_tcp_connections_are_closed() {
    let ep = endpoint_with(SipOptions {
        tcp: sip::TcpLimits {
            max_silent_per_peer: 4,
            first_data_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let ours = ep.local_addr();
    // Beyond the per-peer limit of silent connections: closed at once.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(tokio::net::TcpStream::connect(ours).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = tokio::net::TcpStream::connect(ours).await.unwrap();
    assert!(closed_by_server(&mut extra, Duration::from_millis(300)).await);
    // Another peer address is not affected, and UDP keeps answering meanwhile.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = other.connect(ours).await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let got = raw_request(&sock, ours, "OPTIONS", "1 OPTIONS", "70").await;
    assert!(got.starts_with("SIP/2.0 200"), "{got:?}");
    // The silent ones are closed once the first-data time is up.
    for s in silent.iter_mut() {
        assert!(closed_by_server(s, Duration::from_secs(2)).await);
    }
    assert!(closed_by_server(&mut other, Duration::from_secs(2)).await);
    // A connection that spoke and then went quiet is closed by the idle timeout.
    let mut spoke = tokio::net::TcpStream::connect(ours).await.unwrap();
    spoke.write_all(b"\r\n\r\n").await.unwrap();
    assert!(!closed_by_server(&mut spoke, Duration::from_millis(600)).await);
    assert!(closed_by_server(&mut spoke, Duration::from_secs(3)).await);
    // And a real TCP request is still answered.
    let sipp = Sipp::uac("after_silent_tcp", "uac_options.xml", ours).await;
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0);
    ep.shutdown().await;
}
