//! Test harness: a real sipp far end on 127.0.0.1, our endpoint, and helpers
//! to read the SIP ladder sipp logged.
#![allow(dead_code)]

use sip::{LegEvent, OutboundInvite, OutboundLeg, SipConfig, SipEndpoint, SipOptions};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Once;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub const OFFER: &str = "v=0\r\no=dialtone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        sip::install_crypto_provider();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
    });
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    for _ in 0..64 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sip-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn endpoint() -> SipEndpoint {
    endpoint_with(SipOptions::default()).await
}

pub async fn endpoint_with(opts: SipOptions) -> SipEndpoint {
    init();
    let cfg = SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        external_ip: "127.0.0.1".parse().unwrap(),
        user_agent: "dialtone-test".into(),
    };
    let (ep, _incoming) = SipEndpoint::start_with(cfg, opts).await.unwrap();
    ep
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tp {
    Udp,
    Tcp,
}

/// A sipp process running one scenario in the foreground (killed on drop).
pub struct Sipp {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub transport: Tp,
}

fn port_is_bound(port: u16, tp: Tp) -> bool {
    let file = match tp {
        Tp::Udp => "/proc/net/udp",
        Tp::Tcp => "/proc/net/tcp",
    };
    let needle = format!(":{port:04X} ");
    std::fs::read_to_string(file)
        .map(|s| {
            s.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| format!("{a} ").ends_with(&needle))
            })
        })
        .unwrap_or(false)
}

impl Sipp {
    /// Start sipp as a UAS with `scenario` on a fresh port.
    pub async fn uas(test: &str, scenario_file: &str, tp: Tp) -> Sipp {
        Self::spawn(test, scenario_file, tp, None, &[]).await
    }

    /// Start sipp as a UAC calling `remote`.
    pub async fn uac(test: &str, scenario_file: &str, remote: SocketAddr) -> Sipp {
        Self::spawn(test, scenario_file, Tp::Udp, Some(remote), &[]).await
    }

    pub async fn spawn(
        test: &str,
        scenario_file: &str,
        tp: Tp,
        remote: Option<SocketAddr>,
        extra: &[&str],
    ) -> Sipp {
        init();
        let dir = scratch_dir(test);
        let log = dir.join("messages.log");
        let port = free_port();
        let media_port = free_port();
        let mut cmd = Command::new("sipp");
        if let Some(remote) = remote {
            cmd.arg(remote.to_string());
        }
        cmd.arg("-sf")
            .arg(scenario(scenario_file))
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media_port.to_string()])
            .args(["-m", "1", "-nostdin", "-trace_msg", "-message_file"])
            .arg(&log)
            .args(["-timeout", "20s", "-timeout_error"])
            .args(["-t", if tp == Tp::Tcp { "t1" } else { "u1" }])
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .expect("sipp runs (apt-get install -y sip-tester)");
        if remote.is_none() {
            // Wait until the UAS listens, so our first INVITE is not lost.
            for _ in 0..200 {
                if port_is_bound(port, tp) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Sipp {
            child,
            port,
            log,
            transport: tp,
        }
    }

    /// The request URI that reaches this sipp.
    pub fn target(&self, user: &str) -> String {
        match self.transport {
            Tp::Udp => format!("sip:{user}@127.0.0.1:{}", self.port),
            Tp::Tcp => format!("sip:{user}@127.0.0.1:{};transport=tcp", self.port),
        }
    }

    /// Wait for sipp to exit; returns its exit code and the ladder it logged.
    pub async fn finish(mut self) -> (i32, Ladder) {
        let status = tokio::time::timeout(Duration::from_secs(25), self.child.wait())
            .await
            .expect("sipp exits in time")
            .expect("sipp wait");
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = e.read_to_string(&mut stderr).await;
        }
        let code = status.code().unwrap_or(-1);
        if code != 0 {
            eprintln!("sipp exited {code}; stderr:\n{stderr}");
        }
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if code != 0 {
            eprintln!("sipp messages:\n{text}");
        }
        (code, Ladder::parse(&text))
    }
}

/// One message in sipp's log: `>` sipp received (we sent), `<` sipp sent.
#[derive(Debug, Clone)]
pub struct Msg {
    pub from_us: bool,
    pub start_line: String,
    pub text: String,
}

impl Msg {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }

    /// "INVITE" for requests, "200" for responses.
    pub fn kind(&self) -> String {
        let mut parts = self.start_line.split_whitespace();
        match parts.next() {
            Some("SIP/2.0") => parts.next().unwrap_or("").to_string(),
            Some(m) => m.to_string(),
            None => String::new(),
        }
    }

    pub fn cseq(&self) -> String {
        self.header("CSeq").unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Ladder(pub Vec<Msg>);

impl Ladder {
    pub fn parse(text: &str) -> Ladder {
        let mut out = Vec::new();
        for block in text.split("----------------------------------------------- ") {
            let mut lines = block.lines();
            let Some(_date) = lines.next() else { continue };
            let Some(what) = lines.next() else { continue };
            let from_us = if what.contains("message received") {
                true
            } else if what.contains("message sent") {
                false
            } else {
                continue;
            };
            let rest: Vec<&str> = lines.skip_while(|l| l.trim().is_empty()).collect();
            let Some(start) = rest.first() else { continue };
            out.push(Msg {
                from_us,
                start_line: start.trim().to_string(),
                text: rest.join("\n"),
            });
        }
        Ladder(out)
    }

    /// Compact ladder: "> INVITE", "< 180", ...
    pub fn arrows(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|m| format!("{} {}", if m.from_us { ">" } else { "<" }, m.kind()))
            .collect()
    }

    /// [`Ladder::arrows`] without retransmissions (a message identical to
    /// the one before it from the same side).
    pub fn arrows_dedup(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, m) in self.0.iter().enumerate() {
            let prev_same_side = self.0[..i].iter().rev().find(|x| x.from_us == m.from_us);
            if prev_same_side.is_some_and(|p| p.text == m.text) {
                continue;
            }
            out.push(format!(
                "{} {}",
                if m.from_us { ">" } else { "<" },
                m.kind()
            ));
        }
        out
    }

    pub fn sent_by_us(&self, kind: &str) -> Vec<&Msg> {
        self.0
            .iter()
            .filter(|m| m.from_us && m.kind() == kind)
            .collect()
    }
}

pub fn invite(target: String) -> OutboundInvite {
    OutboundInvite {
        target,
        from_uri: "sip:+15550001111@dialtone.test".into(),
        from_display: Some("Dial \"Tone\"".into()),
        to_uri: "sip:+15550002222@far.test".into(),
        credentials: None,
        sdp_offer: OFFER.into(),
        extra_headers: vec![("X-Call-Ref".into(), "test".into())],
        session_expires: None,
        min_se: None,
        call_id: None,
        call_ref: "test".into(),
    }
}

pub async fn next_event(leg: &mut OutboundLeg, secs: u64) -> LegEvent {
    tokio::time::timeout(Duration::from_secs(secs), leg.events.recv())
        .await
        .expect("event in time")
        .expect("event stream open")
}

/// Receive events until `pred` matches; returns everything seen (the match last).
pub async fn events_until(
    rx: &mut mpsc::Receiver<LegEvent>,
    secs: u64,
    pred: impl Fn(&LegEvent) -> bool,
) -> Vec<LegEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out; events so far: {seen:?}"))
            .unwrap_or_else(|| panic!("event stream closed; events so far: {seen:?}"));
        let done = pred(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

pub fn is_terminated(e: &LegEvent) -> bool {
    matches!(e, LegEvent::Terminated)
}

pub fn is_answered(e: &LegEvent) -> bool {
    matches!(e, LegEvent::Answered { .. })
}

/// Short names for assertions: "Trying", "Ringing(180)", "Answered", ...
pub fn names(events: &[LegEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            LegEvent::Trying => "Trying".to_string(),
            LegEvent::Ringing { code, sdp } => {
                format!("Ringing({code}{})", if sdp.is_some() { "+sdp" } else { "" })
            }
            LegEvent::Answered { .. } => "Answered".to_string(),
            LegEvent::Failed { code, .. } => format!("Failed({code})"),
            LegEvent::RemoteOffer { .. } => "RemoteOffer".to_string(),
            LegEvent::RemoteBye => "RemoteBye".to_string(),
            LegEvent::SessionExpired => "SessionExpired".to_string(),
            LegEvent::IntervalTooSmall { min_se, .. } => format!("IntervalTooSmall({min_se})"),
            LegEvent::Terminated => "Terminated".to_string(),
        })
        .collect()
}

/// Check an RFC 2617 digest (MD5, qop=auth or none) in an Authorization or
/// Proxy-Authorization header value against `password`.
pub fn digest_matches(header: &str, method: &str, password: &str) -> bool {
    use md5::{Digest, Md5};
    let hex = |s: String| {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let params = header.trim_start_matches("Digest").trim();
    let get = |name: &str| -> Option<String> {
        params.split(',').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_string())
        })
    };
    let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) = (
        get("username"),
        get("realm"),
        get("nonce"),
        get("uri"),
        get("response"),
    ) else {
        return false;
    };
    let ha1 = hex(format!("{user}:{realm}:{password}"));
    let ha2 = hex(format!("{method}:{uri}"));
    let expected = match (get("qop"), get("nc"), get("cnonce")) {
        (Some(qop), Some(nc), Some(cnonce)) => {
            hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
        }
        _ => hex(format!("{ha1}:{nonce}:{ha2}")),
    };
    expected == response
}

/// An endpoint that keeps its receiver of inbound calls.
pub async fn inbound_endpoint() -> (SipEndpoint, mpsc::Receiver<sip::IncomingCall>) {
    inbound_endpoint_with(SipOptions::default()).await
}

/// [`inbound_endpoint`] with explicit timers.
pub async fn inbound_endpoint_with(
    opts: SipOptions,
) -> (SipEndpoint, mpsc::Receiver<sip::IncomingCall>) {
    init();
    let cfg = SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        external_ip: "127.0.0.1".parse().unwrap(),
        user_agent: "dialtone-test".into(),
    };
    SipEndpoint::start_with(cfg, opts).await.unwrap()
}

/// The next inbound call, within `secs`.
pub async fn next_call(
    calls: &mut mpsc::Receiver<sip::IncomingCall>,
    secs: u64,
) -> (sip::InboundInvite, sip::InboundLeg) {
    let call = tokio::time::timeout(Duration::from_secs(secs), calls.recv())
        .await
        .expect("inbound call in time")
        .expect("inbound receiver open");
    match call {
        sip::IncomingCall::Invite { invite, leg } => (invite, leg),
        other => panic!("unexpected {other:?}"),
    }
}

/// Receive inbound events until `pred` matches; returns everything seen.
pub async fn inbound_until(
    rx: &mut mpsc::Receiver<sip::InboundEvent>,
    secs: u64,
    pred: impl Fn(&sip::InboundEvent) -> bool,
) -> Vec<sip::InboundEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out; events so far: {seen:?}"))
            .unwrap_or_else(|| panic!("event stream closed; events so far: {seen:?}"));
        let done = pred(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

pub fn inbound_names(events: &[sip::InboundEvent]) -> Vec<&'static str> {
    use sip::InboundEvent as E;
    events
        .iter()
        .map(|e| match e {
            E::Confirmed => "Confirmed",
            E::Canceled => "Canceled",
            E::RemoteOffer { .. } => "RemoteOffer",
            E::RemoteBye => "RemoteBye",
            E::AckTimeout => "AckTimeout",
            E::Terminated => "Terminated",
        })
        .collect()
}

/// A CA and a leaf certificate for 127.0.0.1, made with the openssl CLI.
pub fn make_certs(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl CLI");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=dialtone test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
    ]);
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    (read("ca.pem"), read("leaf.pem"), read("leaf.key"))
}
