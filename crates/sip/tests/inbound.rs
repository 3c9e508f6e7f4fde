//! Inbound calls from a real sipp UAC on 127.0.0.1 (tests/sipp/uac_*.xml):
//! our events, sipp's verdict and the SIP ladder it logged.

mod common;

use common::*;
use sip::{InboundEvent, SipOptions};
use std::time::Duration;
use tokio::net::UdpSocket;

fn is_end(e: &InboundEvent) -> bool {
    matches!(e, InboundEvent::Terminated)
}

fn is_confirmed(e: &InboundEvent) -> bool {
    matches!(e, InboundEvent::Confirmed)
}

async fn caller_hangs_up(test: &str, tp: Tp) {
    let (ep, mut calls) = inbound_endpoint().await;
    let port = ep.local_addr().port();
    let sipp = Sipp::spawn(
        test,
        "uac_call.xml",
        tp,
        Some(ep.local_addr()),
        &["-s", "%2B15551230000"],
    )
    .await;
    let (invite, mut leg) = next_call(&mut calls, 5).await;

    // What sipp sent, as the call layer sees it.
    assert_eq!(
        invite.request_uri,
        format!("sip:+15551230000@127.0.0.1:{port}")
    );
    assert_eq!(invite.request_user, "+15551230000");
    assert_eq!(invite.from_user, "+15559998888");
    assert_eq!(
        invite.from_uri,
        format!("sip:+15559998888@127.0.0.1:{}", sipp.port)
    );
    assert_eq!(invite.from_display.as_deref(), Some("Alice Caller"));
    assert_eq!(invite.to_uri, format!("sip:+15551230000@127.0.0.1:{port}"));
    let sdp = invite.sdp.as_deref().expect("offer");
    assert!(sdp.contains("m=audio"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:0 PCMU/8000"), "{sdp}");
    assert_eq!(
        invite.source.to_string(),
        format!("127.0.0.1:{}", sipp.port)
    );
    assert_eq!(invite.transport, if tp == Tp::Tcp { "tcp" } else { "udp" });
    assert!(!invite.call_id.is_empty());
    let header = |name: &str| {
        invite
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("X-Sipp-Test").as_deref(), Some("inbound"));
    assert_eq!(header("Call-ID"), Some(invite.call_id.clone()));

    // Over TCP: early media (183 with SDP) instead of 180.
    let early = (tp == Tp::Tcp).then(|| OFFER.replace("a=sendrecv", "a=sendonly"));
    leg.handle.ringing(early).await.unwrap();
    leg.handle.answer(OFFER.into()).await.unwrap();
    // One final response per INVITE.
    assert!(leg.handle.answer(OFFER.into()).await.is_err());
    assert!(leg.handle.reject(486, "Busy Here").await.is_err());

    let evs = inbound_until(&mut leg.events, 8, is_end).await;
    assert_eq!(
        inbound_names(&evs),
        ["Confirmed", "RemoteBye", "Terminated"]
    );
    assert!(leg.events.recv().await.is_none());

    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    let ring = if tp == Tp::Tcp { "> 183" } else { "> 180" };
    assert_eq!(
        ladder.arrows_dedup(),
        ["< INVITE", "> 100", ring, "> 200", "< ACK", "< BYE", "> 200"]
    );
    let ok = ladder.sent_by_us("200")[0];
    let contact = ok.header("Contact").unwrap();
    match tp {
        Tp::Udp => assert_eq!(contact, format!("<sip:+15551230000@127.0.0.1:{port}>")),
        Tp::Tcp => assert_eq!(
            contact,
            format!("<sip:+15551230000@127.0.0.1:{port};transport=TCP>")
        ),
    }
    assert_eq!(ok.header("Content-Type").unwrap(), "application/sdp");
    assert_eq!(ok.header("User-Agent").unwrap(), "dialtone-test");
    assert!(ok.header("To").unwrap().contains(";tag="));
    assert!(ok.text.contains("m=audio 40000 RTP/AVP 0 101"));
    // 180 and 200 carry the same To tag (one dialog).
    let ringing = ladder.sent_by_us(&ring[2..])[0];
    assert_eq!(ringing.header("To"), ok.header("To"));
    if tp == Tp::Tcp {
        assert_eq!(ringing.header("Content-Type").unwrap(), "application/sdp");
        assert!(ringing.text.contains("a=sendonly"));
    }
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_call_caller_hangs_up() {
    caller_hangs_up("inbound_caller_bye", Tp::Udp).await;
}

#[tokio::test]
async fn inbound_call_over_tcp() {
    caller_hangs_up("inbound_caller_bye_tcp", Tp::Tcp).await;
}

#[tokio::test]
async fn inbound_we_hang_up() {
    we_hang_up("inbound_we_bye", Tp::Udp).await;
}

#[tokio::test]
async fn inbound_we_hang_up_over_tcp() {
    we_hang_up("inbound_we_bye_tcp", Tp::Tcp).await;
}

async fn we_hang_up(test: &str, tp: Tp) {
    let (ep, mut calls) = inbound_endpoint().await;
    let sipp = Sipp::spawn(
        test,
        "uac_call_callee_bye.xml",
        tp,
        Some(ep.local_addr()),
        &["-s", "bob"],
    )
    .await;
    let (invite, mut leg) = next_call(&mut calls, 5).await;
    assert_eq!(invite.request_user, "bob");
    assert_eq!(invite.from_display, None);
    leg.handle.answer(OFFER.into()).await.unwrap();
    let evs = inbound_until(&mut leg.events, 5, is_confirmed).await;
    assert_eq!(inbound_names(&evs), ["Confirmed"]);
    leg.handle.hangup().await.unwrap();
    leg.handle.hangup().await.unwrap(); // one BYE only
    let evs = inbound_until(&mut leg.events, 5, is_end).await;
    assert_eq!(inbound_names(&evs), ["Terminated"]);
    assert!(leg.events.recv().await.is_none());
    // After the end: no-op / errors, never a panic.
    leg.handle.hangup().await.unwrap();
    assert!(leg.handle.answer(OFFER.into()).await.is_err());

    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    assert_eq!(
        ladder.arrows_dedup(),
        ["< INVITE", "> 100", "> 200", "< ACK", "> BYE", "< 200"]
    );
    let bye = ladder.sent_by_us("BYE")[0];
    let ok = ladder.sent_by_us("200")[0];
    // Our BYE: From is our side (the 200's To), To is the caller's From.
    assert_eq!(bye.header("From"), ok.header("To"));
    assert_eq!(bye.header("To"), ok.header("From"));
    assert!(bye.start_line.starts_with("BYE sip:sipp@127.0.0.1:"));
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_rejected_404() {
    let (ep, mut calls) = inbound_endpoint().await;
    let sipp = Sipp::uac("inbound_reject", "uac_invite.xml", ep.local_addr()).await;
    let (invite, mut leg) = next_call(&mut calls, 5).await;
    assert_eq!(invite.request_user, "nobody");
    leg.handle.ringing(None).await.unwrap();
    assert!(leg.handle.reject(200, "OK").await.is_err());
    assert!(leg.handle.reject(404, "Not\r\nVia: x").await.is_err());
    leg.handle.reject(404, "Not Found").await.unwrap();
    assert!(leg.handle.reject(404, "Not Found").await.is_err());
    assert!(leg.handle.answer(OFFER.into()).await.is_err());
    assert!(leg.handle.ringing(None).await.is_err());
    let evs = inbound_until(&mut leg.events, 5, is_end).await;
    assert_eq!(inbound_names(&evs), ["Terminated"]);

    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    assert_eq!(
        ladder.arrows_dedup(),
        ["< INVITE", "> 100", "> 180", "> 404", "< ACK"]
    );
    assert_eq!(
        ladder.sent_by_us("404")[0].start_line,
        "SIP/2.0 404 Not Found"
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_cancelled_while_ringing() {
    let (ep, mut calls) = inbound_endpoint().await;
    let sipp = Sipp::spawn(
        "inbound_cancel",
        "uac_cancel.xml",
        Tp::Udp,
        Some(ep.local_addr()),
        &["-s", "bob"],
    )
    .await;
    let (_invite, mut leg) = next_call(&mut calls, 5).await;
    leg.handle.ringing(None).await.unwrap();
    let evs = inbound_until(&mut leg.events, 5, is_end).await;
    assert_eq!(inbound_names(&evs), ["Canceled", "Terminated"]);
    assert!(leg.handle.answer(OFFER.into()).await.is_err());

    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    assert_eq!(
        ladder.arrows_dedup(),
        ["< INVITE", "> 100", "> 180", "< CANCEL", "> 200", "> 487", "< ACK"]
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_reinvite_after_answer() {
    let (ep, mut calls) = inbound_endpoint().await;
    let sipp = Sipp::spawn(
        "inbound_reinvite",
        "uac_reinvite.xml",
        Tp::Udp,
        Some(ep.local_addr()),
        &["-s", "bob"],
    )
    .await;
    let (_invite, mut leg) = next_call(&mut calls, 5).await;
    leg.handle.answer(OFFER.into()).await.unwrap();
    let evs = inbound_until(&mut leg.events, 5, |e| {
        matches!(e, InboundEvent::RemoteOffer { .. })
    })
    .await;
    assert_eq!(inbound_names(&evs), ["Confirmed", "RemoteOffer"]);
    let Some(InboundEvent::RemoteOffer { sdp, respond }) = evs.into_iter().nth(1) else {
        unreachable!()
    };
    let sdp = sdp.expect("re-INVITE offer");
    assert!(
        sdp.contains("m=audio 25102") && sdp.contains("a=sendonly"),
        "{sdp}"
    );
    respond
        .send(Ok(OFFER.replace("a=sendrecv", "a=recvonly")))
        .unwrap();
    let evs = inbound_until(&mut leg.events, 5, is_end).await;
    assert_eq!(inbound_names(&evs), ["RemoteBye", "Terminated"]);

    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    assert_eq!(
        ladder.arrows_dedup(),
        ["< INVITE", "> 100", "> 200", "< ACK", "< INVITE", "> 200", "< ACK", "< BYE", "> 200"]
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_dropped_event_receiver_hangs_up() {
    let (ep, mut calls) = inbound_endpoint().await;
    let sipp = Sipp::spawn(
        "inbound_dropped_rx",
        "uac_call_callee_bye.xml",
        Tp::Udp,
        Some(ep.local_addr()),
        &["-s", "bob"],
    )
    .await;
    let (_invite, mut leg) = next_call(&mut calls, 5).await;
    leg.handle.answer(OFFER.into()).await.unwrap();
    inbound_until(&mut leg.events, 5, is_confirmed).await;
    drop(leg.events);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    assert_eq!(
        ladder.arrows_dedup(),
        ["< INVITE", "> 100", "> 200", "< ACK", "> BYE", "< 200"]
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_hangup_before_answer_is_480() {
    let (ep, mut calls) = inbound_endpoint().await;
    let sipp = Sipp::uac("inbound_480", "uac_invite_480.xml", ep.local_addr()).await;
    let (_invite, mut leg) = next_call(&mut calls, 5).await;
    leg.handle.ringing(None).await.unwrap();
    leg.handle.hangup().await.unwrap();
    assert!(leg.handle.answer(OFFER.into()).await.is_err());
    let evs = inbound_until(&mut leg.events, 5, is_end).await;
    assert_eq!(inbound_names(&evs), ["Terminated"]);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    assert_eq!(
        ladder.arrows_dedup(),
        ["< INVITE", "> 100", "> 180", "> 480", "< ACK"]
    );
    assert_eq!(
        ladder.sent_by_us("480")[0].start_line,
        "SIP/2.0 480 Temporarily Unavailable"
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_dropped_receiver_before_answer_is_480() {
    let (ep, mut calls) = inbound_endpoint().await;
    let sipp = Sipp::uac("inbound_drop_480", "uac_invite_480.xml", ep.local_addr()).await;
    let (_invite, leg) = next_call(&mut calls, 5).await;
    drop(leg.events);
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    ep.shutdown().await;
}

#[tokio::test]
async fn shutdown_refuses_a_ringing_inbound_call() {
    let (ep, mut calls) = inbound_endpoint().await;
    let sipp = Sipp::uac("inbound_shutdown", "uac_invite_480.xml", ep.local_addr()).await;
    let (_invite, mut leg) = next_call(&mut calls, 5).await;
    leg.handle.ringing(None).await.unwrap();
    ep.shutdown().await;
    let evs = inbound_until(&mut leg.events, 5, is_end).await;
    assert_eq!(inbound_names(&evs), ["Terminated"]);
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
}

#[tokio::test]
async fn inbound_ack_timeout_ends_with_bye() {
    let (ep, mut calls) = inbound_endpoint_with(SipOptions {
        t1: Duration::from_millis(50),
        t2: Duration::from_millis(400),
        transaction_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let sipp = Sipp::spawn(
        "inbound_no_ack",
        "uac_no_ack.xml",
        Tp::Udp,
        Some(ep.local_addr()),
        &["-s", "bob"],
    )
    .await;
    let (_invite, mut leg) = next_call(&mut calls, 5).await;
    leg.handle.answer(OFFER.into()).await.unwrap();
    let evs = inbound_until(&mut leg.events, 5, is_end).await;
    assert_eq!(inbound_names(&evs), ["AckTimeout", "Terminated"]);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    // The 200 was retransmitted (timer G) until we gave up.
    assert!(ladder.sent_by_us("200").len() >= 3, "{:?}", ladder.arrows());
    assert_eq!(ladder.sent_by_us("BYE").len(), 1, "{:?}", ladder.arrows());
    ep.shutdown().await;
}

fn raw_invite(call_id: &str, local: std::net::SocketAddr, ours: std::net::SocketAddr) -> String {
    format!(
        "INVITE sip:bob@{ours} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}\r\n\
         From: <sip:raw@{local}>;tag=t-{call_id}\r\n\
         To: <sip:bob@{ours}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:raw@{local}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// First lines of what arrives on `sock` within `wait`.
async fn drain(sock: &UdpSocket, wait: Duration) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok((n, _))) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let call_id = text
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap_or("")
            .to_string();
        out.push(format!("{} {call_id}", text.lines().next().unwrap_or("")));
    }
    out
}

#[tokio::test]
async fn inbound_queue_full_is_503() {
    let (ep, mut calls) = inbound_endpoint().await;
    let ours = ep.local_addr();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    // Nobody reads `calls`: the 17th INVITE finds the queue (16) full.
    for i in 0..17 {
        let msg = raw_invite(&format!("q{i}"), local, ours);
        sock.send_to(msg.as_bytes(), ours).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = drain(&sock, Duration::from_millis(500)).await;
    assert!(
        seen.iter()
            .any(|l| l == "SIP/2.0 503 Service Unavailable q16"),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("SIP/2.0 100")).count(),
        17,
        "{seen:?}"
    );
    // Only the 17th is refused (its 503 is retransmitted: we never ACK).
    assert!(
        seen.iter()
            .filter(|l| l.starts_with("SIP/2.0 503"))
            .all(|l| l.ends_with(" q16")),
        "{seen:?}"
    );
    // The 16 queued calls are real: one of them can be rejected.
    let (invite, leg) = next_call(&mut calls, 1).await;
    assert_eq!(invite.call_id, "q0");
    assert_eq!(invite.sdp, None);
    assert_eq!(invite.source, local);
    leg.handle.reject(486, "").await.unwrap();
    let seen = drain(&sock, Duration::from_millis(300)).await;
    assert!(
        seen.iter().any(|l| l == "SIP/2.0 486 Busy Here q0"),
        "{seen:?}"
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_invite_without_contact_is_400() {
    let (ep, mut calls) = inbound_endpoint().await;
    let ours = ep.local_addr();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let msg =
        raw_invite("noc", local, ours).replace(&format!("Contact: <sip:raw@{local}>\r\n"), "");
    sock.send_to(msg.as_bytes(), ours).await.unwrap();
    let msg = raw_invite("notag", local, ours).replace(";tag=t-notag", "");
    sock.send_to(msg.as_bytes(), ours).await.unwrap();
    let seen = drain(&sock, Duration::from_millis(300)).await;
    assert!(
        seen.iter().any(|l| l == "SIP/2.0 400 Bad Request noc"),
        "{seen:?}"
    );
    // Without a From tag the stack drops the INVITE unanswered.
    assert!(!seen.iter().any(|l| l.ends_with(" notag")), "{seen:?}");
    assert!(calls.try_recv().is_err());
    ep.shutdown().await;
}

/// The call layer drives inbound calls from spawned tasks: every handle
/// future must be `Send`.
#[allow(dead_code)]
fn handle_futures_are_send(h: sip::InboundHandle) {
    fn send<T: Send>(_: T) {}
    send(h.ringing(None));
    send(h.answer(String::new()));
    send(h.reject(486, ""));
    send(h.hangup());
    send(h.clone());
}
