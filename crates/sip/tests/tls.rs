//! The TLS listener ([`sip::SipOptions::tls`]): a raw TLS client (rustls, trusting a CA made
//! with the openssl CLI) plays the caller, so every byte on the wire is checked.

mod common;

use common::*;
use sip::{InboundEvent, SipConfig, SipEndpoint, SipError, SipOptions, TcpLimits, TlsServer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

fn tls_opts(leaf: &[u8], key: &[u8], limits: TcpLimits) -> SipOptions {
    SipOptions {
        tls: Some(TlsServer {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert_pem: leaf.to_vec(),
            key_pem: key.to_vec(),
        }),
        tcp: limits,
        ..Default::default()
    }
}

async fn start(opts: SipOptions) -> Result<SipEndpoint, SipError> {
    init();
    let cfg = SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        external_ip: "127.0.0.1".parse().unwrap(),
        user_agent: "dialtone-test".into(),
    };
    SipEndpoint::start_with(cfg, opts).await.map(|(ep, _)| ep)
}

async fn connect(ca: &[u8], port: u16) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            tcp,
        )
        .await
        .unwrap()
}

/// The next SIP message on the stream (head and Content-Length body), within 5 s.
async fn read_msg(s: &mut TlsStream<TcpStream>, buf: &mut Vec<u8>) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                return String::from_utf8_lossy(&msg).to_string();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("a SIP message in time")
            .unwrap();
        assert!(
            n > 0,
            "connection closed; so far {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A call in over TLS to a `scheme` Request-URI: the 200's Contact names the TLS listener
/// (`sips:` for a `sips:` Request-URI, else `;transport=tls`), and our BYE goes back over
/// the same TLS connection, with the TLS listener in its Via and the caller's Contact as its
/// Request-URI.
async fn call_over_tls(scheme: &str) {
    let dir = scratch_dir(&format!("tls_listener_{scheme}"));
    let (ca, leaf, key) = make_certs(&dir);
    let (ep, mut calls) = inbound_endpoint_with(tls_opts(&leaf, &key, TcpLimits::default())).await;
    let tls_port = ep.tls_local_addr().expect("a TLS listener").port();
    assert_ne!(tls_port, ep.local_addr().port());

    let mut s = connect(&ca, tls_port).await;
    let cport = s.get_ref().0.local_addr().unwrap().port();
    let ruri = match scheme {
        "sips" => format!("sips:+15551230000@127.0.0.1:{tls_port}"),
        _ => format!("sip:+15551230000@127.0.0.1:{tls_port};transport=tls"),
    };
    let invite = format!(
        "INVITE {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:{cport};branch=z9hG4bK-tls-{scheme};rport\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: <sip:+15551230000@127.0.0.1>\r\n\
         Call-ID: tls-{scheme}-1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:{cport};transport=tls>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{OFFER}",
        OFFER.len()
    );
    s.write_all(invite.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    assert!(read_msg(&mut s, &mut buf).await.starts_with("SIP/2.0 100"));

    let (inv, mut leg) = next_call(&mut calls, 5).await;
    assert_eq!(inv.transport, "tls");
    leg.handle.answer(OFFER.into()).await.unwrap();
    let ok = read_msg(&mut s, &mut buf).await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let contact = header(&ok, "Contact").unwrap().to_ascii_lowercase();
    match scheme {
        "sips" => assert!(
            contact.starts_with("<sips:+15551230000@127.0.0.1:")
                && contact.contains(&format!("@127.0.0.1:{tls_port}")),
            "{contact}"
        ),
        _ => assert_eq!(
            contact,
            format!("<sip:+15551230000@127.0.0.1:{tls_port};transport=tls>")
        ),
    }
    let to = header(&ok, "To").unwrap().to_string();
    let ack = format!(
        "ACK {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:{cport};branch=z9hG4bK-tls-ack-{scheme};rport\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: {to}\r\n\
         Call-ID: tls-{scheme}-1\r\n\
         CSeq: 1 ACK\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    s.write_all(ack.as_bytes()).await.unwrap();
    inbound_until(&mut leg.events, 5, |e| matches!(e, InboundEvent::Confirmed)).await;

    leg.handle.hangup().await.unwrap();
    let bye = read_msg(&mut s, &mut buf).await;
    assert!(
        bye.to_ascii_lowercase().starts_with(&format!(
            "bye sip:alice@127.0.0.1:{cport};transport=tls sip/2.0"
        )),
        "{bye}"
    );
    let via = header(&bye, "Via").unwrap();
    assert!(
        via.starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{tls_port};")),
        "{via}"
    );
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: tls-{scheme}-1\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, "From").unwrap(),
        header(&bye, "To").unwrap(),
        header(&bye, "CSeq").unwrap(),
    );
    s.write_all(reply.as_bytes()).await.unwrap();
    inbound_until(&mut leg.events, 5, |e| {
        matches!(e, InboundEvent::Terminated)
    })
    .await;
    ep.shutdown().await;
}

#[tokio::test]
async fn inbound_call_over_tls_we_hang_up() {
    call_over_tls("sip").await;
}

#[tokio::test]
async fn inbound_call_to_a_sips_uri_gets_a_sips_contact() {
    call_over_tls("sips").await;
}

#[tokio::test]
async fn bad_certificate_or_key_is_a_config_error() {
    let dir = scratch_dir("tls_bad_cert");
    let (_ca, leaf, key) = make_certs(&dir);
    let (_ca2, _leaf2, other_key) = make_certs(&scratch_dir("tls_bad_cert_other"));
    for (cert, key, want) in [
        (&b"not a certificate"[..], &key[..], "no CERTIFICATE"),
        (&leaf[..], &b"not a key"[..], "TLS key"),
        // The key of another certificate.
        (&leaf[..], &other_key[..], "TLS certificate and key"),
        // Key and certificate swapped.
        (&key[..], &leaf[..], "no CERTIFICATE"),
    ] {
        match start(tls_opts(cert, key, TcpLimits::default())).await {
            Err(SipError::Config(m)) => assert!(m.contains(want), "{want}: {m}"),
            Err(e) => panic!("{want}: {e}"),
            Ok(_) => panic!("{want}: started"),
        }
    }
    // The good pair starts.
    let ep = start(tls_opts(&leaf, &key, TcpLimits::default()))
        .await
        .unwrap();
    assert!(ep.tls_local_addr().is_some());
    ep.shutdown().await;
    // No `tls`, no listener.
    let ep = start(SipOptions::default()).await.unwrap();
    assert!(ep.tls_local_addr().is_none());
    ep.shutdown().await;
}

#[tokio::test]
async fn tls_connection_that_never_handshakes_is_closed() {
    let dir = scratch_dir("tls_silent");
    let (_ca, leaf, key) = make_certs(&dir);
    let limits = TcpLimits {
        first_data_timeout: Duration::from_millis(300),
        max_silent_per_peer: 1,
        ..Default::default()
    };
    let ep = start(tls_opts(&leaf, &key, limits)).await.unwrap();
    let port = ep.tls_local_addr().unwrap().port();

    // Nothing sent: closed after first_data_timeout.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // A second silent one from the same address is over max_silent_per_peer: closed at once.
    let mut second = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut b = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_millis(250), second.read(&mut b))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let n = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut b))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);

    // A ClientHello's first byte and then nothing: the handshake has the same deadline.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stalled.write_all(&[0x16]).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(3), stalled.read(&mut b))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
    ep.shutdown().await;
}

#[tokio::test]
async fn idle_tls_connection_is_closed() {
    let dir = scratch_dir("tls_idle");
    let (ca, leaf, key) = make_certs(&dir);
    let limits = TcpLimits {
        idle_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let ep = start(tls_opts(&leaf, &key, limits)).await.unwrap();
    let port = ep.tls_local_addr().unwrap().port();
    let mut s = connect(&ca, port).await;
    // Handshake done, then nothing: closed after the idle timeout (EOF or an error, both end
    // the read).
    let started = std::time::Instant::now();
    let mut b = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(3), s.read(&mut b))
        .await
        .expect("closed in time");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    ep.shutdown().await;
}
