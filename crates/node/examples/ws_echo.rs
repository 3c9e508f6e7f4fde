//! The stream benchmark's media server (bench/stream_load.py): a `wss://` server speaking the
//! media-stream protocol (docs/streaming.md) that sends every inbound `media` frame straight
//! back as the bot's audio, followed by a `mark` named after the time it was received; when
//! dialtone echoes the mark (the frame has played into the call), the delay is recorded. Every
//! 25th frame it sends a marker instead — 20 ms of noise it remembers — and times how long the
//! marker takes to come back on the inbound track: out of the call to the far end (sipp echoes
//! RTP) and back through the jitter buffer to the stream, the whole loop call -> WebSocket ->
//! call. Once a second it prints one JSON line: connections, media messages received, and both
//! delays' percentiles over that second (µs).
//!
//!   cargo run --release -p node --example ws_echo -- <port> <cert.pem> <key.pem>

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Stats {
    conns: AtomicU64,
    media_in: AtomicU64,
    delays_us: Mutex<Vec<u64>>,
    loop_us: Mutex<Vec<u64>>,
}

/// 160 bytes of µ-law noise, different for every `n` (never a silence code).
fn marker(n: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..160)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Codes 0x20..0x5f: loud enough, never 0x7f/0xff (the two zeros).
            0x20 + (x % 0x40) as u8
        })
        .collect()
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (port, cert, key) = match args.as_slice() {
        [_, p, c, k] => (p.parse::<u16>()?, c.clone(), k.clone()),
        _ => return Err("usage: ws_echo <port> <cert.pem> <key.pem>".into()),
    };
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&cert)?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&key)?;
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let stats = Arc::new(Stats::default());
    let epoch = Instant::now();
    let report = stats.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let mut d =
                std::mem::take(&mut *report.delays_us.lock().unwrap_or_else(|p| p.into_inner()));
            d.sort_unstable();
            let mut l =
                std::mem::take(&mut *report.loop_us.lock().unwrap_or_else(|p| p.into_inner()));
            l.sort_unstable();
            println!(
                "{}",
                json!({
                    "conns": report.conns.load(Ordering::Relaxed),
                    "media_in": report.media_in.load(Ordering::Relaxed),
                    "marks": d.len(),
                    "p50_us": percentile(&d, 0.50),
                    "p99_us": percentile(&d, 0.99),
                    "max_us": d.last().copied().unwrap_or(0),
                    "loops": l.len(),
                    "loop_p50_us": percentile(&l, 0.50),
                    "loop_p99_us": percentile(&l, 0.99),
                    "loop_max_us": l.last().copied().unwrap_or(0),
                })
            );
        }
    });
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(8 * 1024);
            let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tls, Some(config)).await
            else {
                return;
            };
            stats.conns.fetch_add(1, Ordering::Relaxed);
            let mut frames: u64 = 0;
            // Markers sent and not seen back yet: (base64 payload, sent at µs).
            let mut pending: Vec<(String, u64)> = Vec::new();
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match v.get("event").and_then(Value::as_str) {
                    Some("media") if v.pointer("/media/track") == Some(&json!("inbound")) => {
                        stats.media_in.fetch_add(1, Ordering::Relaxed);
                        let now = epoch.elapsed().as_micros() as u64;
                        let mut payload =
                            v.pointer("/media/payload").cloned().unwrap_or(Value::Null);
                        if let Some(i) = pending
                            .iter()
                            .position(|(m, _)| payload.as_str() == Some(m.as_str()))
                        {
                            // A marker came back: timed, and not echoed again.
                            let (_, sent) = pending.swap_remove(i);
                            if let Ok(mut l) = stats.loop_us.lock() {
                                l.push(now.saturating_sub(sent));
                            }
                            continue;
                        }
                        pending.retain(|(_, sent)| now.saturating_sub(*sent) < 2_000_000);
                        frames += 1;
                        if frames.is_multiple_of(25) {
                            use base64::Engine as _;
                            let m =
                                base64::engine::general_purpose::STANDARD.encode(marker(frames));
                            pending.push((m.clone(), now));
                            payload = Value::String(m);
                        }
                        let back = json!({"event": "media", "media": {"payload": payload}});
                        let mark = json!({"event": "mark", "mark": {"name": now.to_string()}});
                        if ws.send(Message::text(back.to_string())).await.is_err()
                            || ws.send(Message::text(mark.to_string())).await.is_err()
                        {
                            break;
                        }
                    }
                    Some("mark") => {
                        let sent = v
                            .pointer("/mark/name")
                            .and_then(Value::as_str)
                            .and_then(|n| n.parse::<u64>().ok());
                        if let Some(sent) = sent {
                            let delay = (epoch.elapsed().as_micros() as u64).saturating_sub(sent);
                            if let Ok(mut d) = stats.delays_us.lock() {
                                d.push(delay);
                            }
                        }
                    }
                    _ => {}
                }
            }
            stats.conns.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
