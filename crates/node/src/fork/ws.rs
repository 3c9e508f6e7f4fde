//! The WebSocket ends of taps and streams, off the media threads: connecting through the
//! egress policy (every address checked, like HTTP) and TLS that trusts the public roots plus
//! the operator's bundle (`ws_ca_file`); the media-stream protocol of `calling.stream`
//! (docs/streaming.md) and the raw audio of a WebSocket tap.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::{info, warn};

use control::command::ForkFormat;
use media::fork::Tracks;

use super::{decode, encode, BotMessage, ForkCounters, ForkFrame};

/// How long a server has to accept the connection and the handshake.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A message from a server larger than this ends the stream (a bot's audio is sent in
/// small chunks; 1 MiB is ~60 s of 8 kHz G.711 base64).
const MAX_MESSAGE: usize = 1 << 20;

/// Bytes read from a WebSocket at a time.
const READ_BUFFER: usize = 8 * 1024;

/// A send that takes longer than this (the server stopped reading) ends the stream.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) type WsStream = WebSocketStream<Box<dyn Io>>;

/// Connects WebSockets where the egress policy allows, over TLS for `wss://`.
#[derive(Clone)]
pub(crate) struct WsConnector {
    policy: Arc<egress::EgressPolicy>,
    resolver: Arc<egress::PolicyResolver>,
    tls: Arc<rustls::ClientConfig>,
}

impl WsConnector {
    /// Trusts the public web roots and `extra_ca_pem` (PEM certificates), if given.
    pub fn new(
        policy: egress::EgressPolicy,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<WsConnector, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(pem) = extra_ca_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("ws_ca_file: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ws_ca_file: a certificate is unusable: {e}"))?;
                added += 1;
            }
            if added == 0 {
                return Err("ws_ca_file holds no certificate".into());
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let policy = Arc::new(policy);
        Ok(WsConnector {
            resolver: Arc::new(egress::PolicyResolver::new(policy.clone(), "websocket")),
            policy,
            tls: Arc::new(tls),
        })
    }

    /// Checks `url` against the egress policy (as the http/https URL it stands for).
    pub fn check(&self, url: &str) -> Result<reqwest::Url, String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| format!("`{url}` is not a URL"))?;
        let http_scheme = match parsed.scheme() {
            "ws" => "http",
            "wss" => "https",
            other => return Err(format!("`{other}://` is not a WebSocket URL")),
        };
        let mut as_http = parsed.clone();
        if as_http.set_scheme(http_scheme).is_err() {
            return Err(format!("`{url}` is not a WebSocket URL"));
        }
        self.policy.check_url(&as_http).map_err(|e| e.to_string())?;
        Ok(parsed)
    }

    /// Opens the WebSocket: policy, resolution (every address checked), TCP, TLS for
    /// `wss://`, the handshake with `Authorization: Bearer <token>` when given.
    pub async fn connect(&self, url: &str, bearer: Option<&str>) -> Result<WsStream, String> {
        let parsed = self.check(url)?;
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| format!("`{url}` has no port"))?;
        let host = parsed
            .host()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        let (ips, server_name) = match host {
            url::Host::Ipv4(ip) => (vec![std::net::IpAddr::V4(ip)], ip.to_string()),
            url::Host::Ipv6(ip) => (vec![std::net::IpAddr::V6(ip)], ip.to_string()),
            url::Host::Domain(name) => {
                let addrs = self
                    .resolver
                    .lookup(name)
                    .await
                    .map_err(|e| e.to_string())?;
                (addrs.iter().map(|a| a.ip()).collect(), name.to_owned())
            }
        };
        let mut last_error = format!("`{url}`: no address");
        let mut tcp = None;
        for ip in ips {
            match tokio::net::TcpStream::connect((ip, port)).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last_error = format!("cannot connect to {ip}:{port}: {e}"),
            }
        }
        let tcp = tcp.ok_or(last_error)?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if parsed.scheme() == "wss" {
            let name = rustls::pki_types::ServerName::try_from(server_name)
                .map_err(|e| format!("`{url}`: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {url}: {e}"))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let mut request = url
            .into_client_request()
            .map_err(|e| format!("`{url}`: {e}"))?;
        if let Some(token) = bearer {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                "authorization_bearer_token is not a valid header value".to_string()
            })?;
            request.headers_mut().insert("Authorization", value);
        }
        // The read buffer is zero-filled as it grows on every read: the default 128 KiB made
        // that a sixth of a stream's CPU (docs/perf.md); a bot's messages are a few KiB.
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, io, Some(config))
            .await
            .map_err(|e| format!("WebSocket handshake with {url}: {e}"))?;
        Ok(ws)
    }
}

/// Everything a stream's task needs besides its queues.
pub(crate) struct StreamJob {
    pub url: String,
    pub stream_sid: String,
    pub call_id: uuid::Uuid,
    pub project_id: uuid::Uuid,
    pub tracks: Tracks,
    pub format: ForkFormat,
    /// The call's PCM rate: bot audio is resampled to it before the media thread sees it.
    pub call_rate: u32,
    pub custom_parameters: Option<Map<String, Value>>,
}

/// The queues between a stream's task and the media thread.
pub(crate) struct StreamQueues {
    pub frames: mpsc::Receiver<ForkFrame>,
    pub bot: mpsc::Sender<BotMessage>,
    pub marks: mpsc::UnboundedReceiver<String>,
    pub stop: oneshot::Receiver<()>,
    pub counters: Arc<ForkCounters>,
}

/// Runs a connected stream until it is stopped, the call's media drops it, or the server
/// closes or fails; returns why it ended.
pub(crate) async fn run_stream(mut ws: WsStream, job: StreamJob, mut q: StreamQueues) -> String {
    // `sequenceNumber`: every message but `connected`, counted from 1.
    let mut seq: u64 = 0;
    let next_seq = |seq: &mut u64| {
        *seq += 1;
        seq.to_string()
    };
    let tracks: Vec<&str> = match job.tracks {
        Tracks::Inbound | Tracks::Mixed => vec!["inbound"],
        Tracks::Outbound => vec!["outbound"],
        Tracks::Both => vec!["inbound", "outbound"],
    };
    let media_format = json!({
        "encoding": job.format.mime(),
        "sampleRate": job.format.rate,
        "channels": 1,
    });
    let mut start = json!({
        "streamSid": job.stream_sid,
        "accountSid": job.project_id,
        "callSid": job.call_id,
        "tracks": tracks,
        "mediaFormat": media_format,
        "customParameters": job.custom_parameters.clone().unwrap_or_default(),
    });
    if let Some(obj) = start.as_object_mut() {
        obj.insert("callId".into(), json!(job.call_id));
    }
    let opening = [
        json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" }),
        json!({
            "event": "start",
            "sequenceNumber": next_seq(&mut seq),
            "streamSid": job.stream_sid,
            "start": start,
        }),
    ];
    for msg in opening {
        if let Err(e) = send_json(&mut ws, &msg).await {
            return e;
        }
    }
    let started = tokio::time::Instant::now();
    let mut chunks = [0u64; 2];
    let mut payload = Vec::with_capacity(640);
    let mut bot_pcm: Vec<i16> = Vec::new();
    let mut resampler = media::fork::RateConverter::new(job.call_rate);
    let reason = 'run: loop {
        tokio::select! {
            frame = q.frames.recv() => {
                let Some(frame) = frame else {
                    break "stopped".to_string();
                };
                let ms = started.elapsed().as_millis() as u64;
                for (i, (track, pcm)) in [("inbound", frame.inbound), ("outbound", frame.outbound)]
                    .into_iter()
                    .enumerate()
                {
                    let Some(pcm) = pcm else { continue };
                    chunks[i] += 1;
                    payload.clear();
                    encode(job.format, &pcm, &mut payload);
                    seq += 1;
                    let text = media_message(&job.stream_sid, seq, track, chunks[i], ms, &payload);
                    if let Err(e) = send_text(&mut ws, text).await {
                        break 'run e;
                    }
                }
            }
            incoming = ws.next() => {
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        for msg in bot_messages(&text, job.format, job.call_rate, &mut resampler, &mut bot_pcm) {
                            // Waits only when the media thread is behind by BOT_QUEUE messages.
                            if q.bot.send(msg).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break "closed by the server".to_string(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("connection failed: {e}"),
                }
            }
            Some(name) = q.marks.recv() => {
                let msg = json!({
                    "event": "mark",
                    "sequenceNumber": next_seq(&mut seq),
                    "streamSid": job.stream_sid,
                    "mark": { "name": name },
                });
                if let Err(e) = send_json(&mut ws, &msg).await {
                    break e;
                }
            }
            _ = &mut q.stop => break "stopped".to_string(),
        }
    };
    if reason == "stopped" || reason.starts_with("hangup") {
        let stop = json!({
            "event": "stop",
            "sequenceNumber": next_seq(&mut seq),
            "streamSid": job.stream_sid,
            "stop": { "accountSid": job.project_id, "callSid": job.call_id },
        });
        let _ = send_json(&mut ws, &stop).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    let (frames, dropped, _) = q.counters.snapshot();
    info!(
        url = %job.url,
        frames,
        dropped_frames = dropped,
        reason = %reason,
        "stream finished"
    );
    reason
}

/// A WebSocket tap: each 20 ms of audio as one binary message of G.711.
pub(crate) async fn run_tap(
    mut ws: WsStream,
    url: String,
    format: ForkFormat,
    mut frames: mpsc::Receiver<ForkFrame>,
    mut stop: oneshot::Receiver<()>,
    counters: Arc<ForkCounters>,
) -> String {
    let mut payload = Vec::with_capacity(320);
    let reason = loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break "stopped".to_string() };
                let Some(pcm) = frame.inbound.or(frame.outbound) else { continue };
                payload.clear();
                encode(format, &pcm, &mut payload);
                match tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::binary(payload.clone()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break format!("connection failed: {e}"),
                    Err(_) => break "the server stopped reading".to_string(),
                }
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Close(_))) | None => break "closed by the server".to_string(),
                Some(Err(e)) => break format!("connection failed: {e}"),
                Some(Ok(_)) => {}
            },
            _ = &mut stop => break "stopped".to_string(),
        }
    };
    if reason == "stopped" {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    let (sent, dropped, _) = counters.snapshot();
    info!(url = %url, frames = sent, dropped_frames = dropped, reason = %reason, "tap finished");
    reason
}

async fn send_json(ws: &mut WsStream, msg: &Value) -> Result<(), String> {
    send_text(ws, msg.to_string()).await
}

async fn send_text(ws: &mut WsStream, text: String) -> Result<(), String> {
    match tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("connection failed: {e}")),
        Err(_) => Err("the server stopped reading".to_string()),
    }
}

/// One `media` message, written directly (it is most of a stream's traffic: 50 a second per
/// track; no JSON tree per message). `stream_sid` is a UUID and `track` a fixed word, so
/// nothing needs escaping.
fn media_message(
    stream_sid: &str,
    seq: u64,
    track: &str,
    chunk: u64,
    ms: u64,
    audio: &[u8],
) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(160 + audio.len() * 4 / 3);
    let _ = write!(
        out,
        r#"{{"event":"media","sequenceNumber":"{seq}","streamSid":"{stream_sid}","media":{{"track":"{track}","chunk":"{chunk}","timestamp":"{ms}","payload":""#
    );
    base64::engine::general_purpose::STANDARD.encode_string(audio, &mut out);
    out.push_str(r#""}}"#);
    out
}

/// What a server's text message asks of the call: `media` (audio to play, at the stream's
/// format, resampled to the call's rate), `mark`, `clear`; anything else is ignored (logged).
fn bot_messages(
    text: &str,
    format: ForkFormat,
    call_rate: u32,
    resampler: &mut media::fork::RateConverter,
    scratch: &mut Vec<i16>,
) -> Vec<BotMessage> {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        warn!("stream server sent a message that is not JSON; ignored");
        return Vec::new();
    };
    match msg.get("event").and_then(Value::as_str) {
        Some("media") => {
            let Some(b64) = msg.pointer("/media/payload").and_then(Value::as_str) else {
                return Vec::new();
            };
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
                warn!("stream server sent media that is not base64; ignored");
                return Vec::new();
            };
            scratch.clear();
            decode(format, &bytes, scratch);
            let mut pcm = Vec::new();
            if format.rate == call_rate {
                pcm.extend_from_slice(scratch);
            } else {
                resampler.convert(scratch, format.rate, &mut pcm);
            }
            vec![BotMessage::Audio(pcm)]
        }
        Some("mark") => match msg.pointer("/mark/name").and_then(Value::as_str) {
            Some(name) => vec![BotMessage::Mark(name.chars().take(256).collect())],
            None => Vec::new(),
        },
        Some("clear") => vec![BotMessage::Clear],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_become_bot_messages() {
        let mut conv = media::fork::RateConverter::new(16_000);
        let mut scratch = Vec::new();
        let payload = base64::engine::general_purpose::STANDARD.encode([0xffu8; 160]);
        let media = json!({"event": "media", "media": {"payload": payload}}).to_string();
        let got = bot_messages(&media, ForkFormat::PCMU, 16_000, &mut conv, &mut scratch);
        assert!(matches!(got.as_slice(), [BotMessage::Audio(pcm)] if pcm.len() == 320));
        let got = bot_messages(&media, ForkFormat::PCMU, 8000, &mut conv, &mut scratch);
        assert!(matches!(got.as_slice(), [BotMessage::Audio(pcm)] if pcm.len() == 160));
        let mark = r#"{"event":"mark","mark":{"name":"m1"}}"#;
        assert!(matches!(
            bot_messages(mark, ForkFormat::PCMU, 8000, &mut conv, &mut scratch).as_slice(),
            [BotMessage::Mark(n)] if n == "m1"
        ));
        assert!(matches!(
            bot_messages(
                r#"{"event":"clear"}"#,
                ForkFormat::PCMU,
                8000,
                &mut conv,
                &mut scratch
            )
            .as_slice(),
            [BotMessage::Clear]
        ));
        for junk in [
            "nope",
            r#"{"event":"media","media":{"payload":"%%%"}}"#,
            r#"{"event":"x"}"#,
            "[]",
        ] {
            assert!(bot_messages(junk, ForkFormat::PCMU, 8000, &mut conv, &mut scratch).is_empty());
        }
    }

    /// The hand-written `media` message is the JSON the protocol names, payload included.
    #[test]
    fn media_messages_are_the_protocols_json() {
        let text = media_message("sid-1", 7, "outbound", 3, 60, &[0xff, 0x00, 0x7f]);
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            panic!("{text}")
        };
        assert_eq!(
            v,
            json!({"event": "media", "sequenceNumber": "7", "streamSid": "sid-1",
                   "media": {"track": "outbound", "chunk": "3", "timestamp": "60",
                             "payload": base64::engine::general_purpose::STANDARD.encode([0xff, 0x00, 0x7f])}})
        );
    }

    #[test]
    fn urls_are_checked_by_the_egress_policy() {
        let Ok(policy) =
            egress::EgressPolicy::parse("public-only", Vec::<String>::new(), Vec::<String>::new())
        else {
            panic!("policy")
        };
        let Ok(c) = WsConnector::new(policy, None) else {
            panic!("connector")
        };
        assert!(c.check("wss://127.0.0.1:9/x").is_err());
        assert!(c.check("http://example.com/").is_err());
        assert!(c.check("wss://203.0.113.9/x").is_ok() || c.check("wss://8.8.8.8/x").is_ok());
        assert!(WsConnector::new(egress::EgressPolicy::default(), Some(b"junk")).is_err());
    }
}
