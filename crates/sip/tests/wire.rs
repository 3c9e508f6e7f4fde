//! Details of what we put on the wire, against a raw UDP far end that answers the way real
//! proxies do (it fills `received=`/`rport=` in the Via it returns, its Contact names its
//! transport).

mod common;

use common::*;
use sip::LegEvent;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The next request (not a response) on the socket, within 3 s: its text and sender.
async fn next_request(sock: &UdpSocket) -> (String, SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .expect("a request in time")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.starts_with("SIP/2.0") {
            return (text, from);
        }
    }
}

/// A response to `req` as a proxy or phone sends it: the top Via with `received` and the
/// `rport` value filled in (RFC 3261 §18.2.1, RFC 3581).
fn response(req: &str, from: SocketAddr, status: &str, extra: &str, to_tag: &str) -> String {
    let via = header(req, "Via").unwrap();
    let via = format!(
        "{};received={}",
        via.replace(";rport", &format!(";rport={}", from.port())),
        from.ip()
    );
    format!(
        "SIP/2.0 {status}\r\nVia: {via}\r\nFrom: {}\r\nTo: {};tag={to_tag}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        header(req, "From").unwrap(),
        header(req, "To").unwrap(),
        header(req, "Call-ID").unwrap(),
        header(req, "CSeq").unwrap(),
    )
}

/// RFC 3261 §17.1.1.3: the ACK to a non-2xx final response has one Via, equal to the top Via
/// of the INVITE, not the response's (which carries `received=` and the `rport` value).
#[tokio::test]
async fn ack_to_a_failure_repeats_the_invites_via() {
    let ep = endpoint().await;
    let far = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = far.local_addr().unwrap().port();
    let mut leg = ep
        .invite(invite(format!("sip:bob@127.0.0.1:{port}")))
        .await
        .unwrap();
    let (inv, from) = next_request(&far).await;
    assert!(inv.starts_with("INVITE "), "{inv}");
    let resp = response(&inv, from, "486 Busy Here", "", "far1");
    assert!(resp.contains(";received=127.0.0.1"), "{resp}");
    far.send_to(resp.as_bytes(), from).await.unwrap();
    let (ack, _) = next_request(&far).await;
    assert!(ack.starts_with("ACK "), "{ack}");
    let vias: Vec<&str> = ack
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("via:"))
        .collect();
    assert_eq!(vias.len(), 1, "{ack}");
    assert_eq!(header(&ack, "Via"), header(&inv, "Via"), "{ack}");
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert!(
        evs.iter()
            .any(|e| matches!(e, LegEvent::Failed { code: 486, .. })),
        "{evs:?}"
    );
    ep.shutdown().await;
}

/// A remote target (the 200's Contact) that names `;transport=udp` keeps it in the
/// Request-URI of our in-dialog requests (ACK, BYE): RFC 3261 §12.2.1.1 copies the remote
/// target as it is.
#[tokio::test]
async fn in_dialog_requests_keep_transport_udp_of_the_remote_target() {
    let ep = endpoint().await;
    let far = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = far.local_addr().unwrap().port();
    let mut leg = ep
        .invite(invite(format!("sip:bob@127.0.0.1:{port}")))
        .await
        .unwrap();
    let (inv, from) = next_request(&far).await;
    let contact = format!("Contact: <sip:bob@127.0.0.1:{port};transport=udp>\r\n");
    let ok = response(&inv, from, "200 OK", &contact, "far2").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}",
            OFFER.len()
        ),
    );
    far.send_to(ok.as_bytes(), from).await.unwrap();
    let (ack, _) = next_request(&far).await;
    let want = format!("sip:bob@127.0.0.1:{port};transport=udp");
    assert_eq!(
        ack.lines().next().unwrap().to_ascii_lowercase(),
        format!("ack {want} sip/2.0"),
        "{ack}"
    );
    events_until(&mut leg.events, 5, is_answered).await;
    leg.handle.hangup().await.unwrap();
    let (bye, from) = next_request(&far).await;
    assert_eq!(
        bye.lines().next().unwrap().to_ascii_lowercase(),
        format!("bye {want} sip/2.0"),
        "{bye}"
    );
    let reply =
        response(&bye, from, "200 OK", "", "far2").replace(";tag=far2;tag=far2", ";tag=far2");
    far.send_to(reply.as_bytes(), from).await.unwrap();
    events_until(&mut leg.events, 5, is_terminated).await;
    ep.shutdown().await;
}

/// The same for a call in: the caller's Contact names `;transport=udp`, our BYE's
/// Request-URI keeps it.
#[tokio::test]
async fn inbound_bye_keeps_transport_udp_of_the_callers_contact() {
    let (ep, mut calls) = inbound_endpoint().await;
    let ours = ep.local_addr();
    let far = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = far.local_addr().unwrap().port();
    let invite = format!(
        "INVITE sip:+15551230000@{ours} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-udp-in;rport\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: <sip:+15551230000@{ours}>\r\n\
         Call-ID: udp-in-1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:{port};transport=udp>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{OFFER}",
        OFFER.len()
    );
    far.send_to(invite.as_bytes(), ours).await.unwrap();
    let (_, mut leg) = next_call(&mut calls, 5).await;
    leg.handle.answer(OFFER.into()).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let ok = loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(3), far.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("SIP/2.0 200") {
            break text;
        }
    };
    let ack = format!(
        "ACK sip:+15551230000@{ours} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-udp-in-ack;rport\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: {}\r\n\
         Call-ID: udp-in-1\r\n\
         CSeq: 1 ACK\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        header(&ok, "To").unwrap()
    );
    far.send_to(ack.as_bytes(), ours).await.unwrap();
    inbound_until(&mut leg.events, 5, |e| {
        matches!(e, sip::InboundEvent::Confirmed)
    })
    .await;
    leg.handle.hangup().await.unwrap();
    let (bye, from) = next_request(&far).await;
    assert_eq!(
        bye.lines().next().unwrap().to_ascii_lowercase(),
        format!("bye sip:alice@127.0.0.1:{port};transport=udp sip/2.0"),
        "{bye}"
    );
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: udp-in-1\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, "Via").unwrap(),
        header(&bye, "From").unwrap(),
        header(&bye, "To").unwrap(),
        header(&bye, "CSeq").unwrap(),
    );
    far.send_to(reply.as_bytes(), from).await.unwrap();
    inbound_until(&mut leg.events, 5, |e| {
        matches!(e, sip::InboundEvent::Terminated)
    })
    .await;
    ep.shutdown().await;
}
