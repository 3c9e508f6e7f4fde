//! Our narrow SIP adapter over the pinned SIP stack crate: place, cancel, hang
//! up, answer re-INVITEs; digest credentials.
//!
//! The stack is `rsipstack =0.7.14` (docs/architecture.md §7). None of its
//! types appear in this crate's public API: the call layer sees
//! [`SipEndpoint`], [`OutboundInvite`], [`OutboundLeg`], [`LegEvent`],
//! [`LegHandle`], [`IncomingCall`], [`InboundInvite`], [`InboundLeg`],
//! [`InboundEvent`], [`InboundHandle`], [`SavedDialog`] and [`SipError`] only, so the stack can be
//! replaced by our own sans-IO core later without touching the call layer.
//!
//! # What the adapter does on the wire
//!
//! * One UDP socket and one TCP listener on the same port
//!   ([`SipConfig::listen`]); Via and Contact advertise
//!   [`SipConfig::external_ip`] and that port; the Call-ID ends in
//!   `@external_ip`. Optionally a TLS listener on its own port
//!   ([`SipOptions::tls`], [`TlsServer`]), with the TCP listener's limits: calls
//!   over it get a Contact on it, requests we send over TLS name it in Via.
//! * Outbound INVITE to `sip:`/`sips:` URIs; `;transport=tcp` selects TCP,
//!   `sips:` (or `;transport=tls`) selects TLS (trust anchors:
//!   [`SipOptions::tls_ca_pem`]; with a TLS listener, the Contact is on it). The next hop is resolved (A/AAAA/SRV) and,
//!   for TCP/TLS, connected before the INVITE is sent: an unreachable peer is
//!   `Failed { code: 0 }` at once instead of after timer B.
//! * Digest auth on 401 and 407: the INVITE is re-sent once with
//!   credentials (`Authorization` / `Proxy-Authorization`, next CSeq, new
//!   branch); a second challenge is final ([`LegEvent::Failed`] with
//!   401/407). A challenge marked `stale=true` is answered again (the stack
//!   allows that).
//! * INVITE retransmission on UDP (timer A), timer B → `Failed { code: 408 }`,
//!   timer C (180 s of ringing) → 408, ACK for non-2xx finals (transaction
//!   layer, same branch), ACK for 2xx before [`LegEvent::Answered`] is
//!   reported (and again for every retransmitted 2xx during timer M).
//! * A second 2xx with another To tag (the INVITE forked) is ACKed and ended
//!   with a BYE; the first answer is the call.
//! * CANCEL on the INVITE's branch; BYE in both directions (ours is
//!   retransmitted per timers E/F on UDP); re-INVITE and UPDATE from the far
//!   end through [`LegEvent::RemoteOffer`]; our own re-INVITE with a new offer
//!   ([`LegHandle::reoffer`], [`InboundHandle::reoffer`]: the switch to T.38 fax);
//!   in-dialog OPTIONS → 200; a REFER
//!   from the far end → 603 with a `Warning` (we do not take transfers); a
//!   NOTIFY of the refer subscription of our own REFER → 200, any other
//!   NOTIFY → 481; other in-dialog requests (INFO, MESSAGE) → 501; requests
//!   in an early dialog → 501.
//! * Session timers (RFC 4028) on legs we place ([`OutboundInvite::session_expires`],
//!   [`session_timer`]): `Session-Expires` + `Supported: timer` on the INVITE, one retry
//!   after a 422 ([`LegEvent::IntervalTooSmall`]), bodyless UPDATE refreshes when the 2xx
//!   makes us the refresher, BYE ([`LegEvent::SessionExpired`]) when the far end should
//!   refresh and does not; our 2xx to a far end's refresh echoes its `Session-Expires`.
//! * REFER on an answered leg, either direction ([`LegHandle::refer`],
//!   [`InboundHandle::refer`]): `Refer-To`, optional `Referred-By`, digest
//!   auth with the REFER's own credentials, then the NOTIFY `message/sipfrag`
//!   progress until a final status (refer.rs).
//! * Out-of-dialog INVITE (inbound call): `100 Trying` at once, then the
//!   call goes to the receiver of [`SipEndpoint::start`] as
//!   [`IncomingCall::Invite`] (`try_send`: a full queue is answered `503`, a
//!   dropped receiver `404 No route`). An INVITE without Contact, or whose
//!   From/To do not parse, is `400`. The [`InboundHandle`] sends 180/183,
//!   one final response (200 with our SDP and `Contact` = the advertised
//!   address, `;transport=tcp` over TCP; or 3xx-6xx), and BYE. The stack
//!   retransmits our 200 (timer G) until the ACK ([`InboundEvent::Confirmed`])
//!   or 64·T1 (then BYE, [`InboundEvent::AckTimeout`]) and our non-2xx until
//!   its ACK; CANCEL before the answer → 200 + 487
//!   ([`InboundEvent::Canceled`]); the caller's BYE → 200
//!   ([`InboundEvent::RemoteBye`]); re-INVITE/UPDATE/in-dialog OPTIONS/other
//!   methods as for outbound legs; a re-INVITE before the caller ACKed our
//!   200 → 491. Over UDP, TCP and TLS (Contact `;transport=tls` on the TLS
//!   listener, `sips:` when the Request-URI was).
//! * Out-of-dialog OPTIONS → 200 (with `Allow`); requests for an unknown
//!   dialog → 481; other methods → 405. Datagrams and stream data that do not parse
//!   are dropped and logged by the stack (tests throw garbage at both).
//!
//! # Concurrency
//!
//! Each leg runs in its own task (span `sip_leg` with the caller's
//! `call_ref` and the Call-ID). [`LegHandle::cancel`] and
//! [`LegHandle::hangup`] return as soon as the request is started (at most
//! one CANCEL and one BYE per leg); the outcome arrives as events, ending with
//! exactly one [`LegEvent::Terminated`], after which the stream closes.
//!
//! # Notes on the stack (rsipstack 0.7.14)
//!
//! * `DialogLayer::do_invite` sends the request URI as the To URI, so the
//!   adapter builds the INVITE with `make_invite_request`, puts our To back,
//!   drives `InviteDialog::process_invite` itself and keeps its own dialog
//!   table (Call-ID + our tag) to route in-dialog requests. The stack's
//!   `end_forked_branch` is private, hence our own BYE for forked 2xx.
//! * The stack retries a failed transport lookup (DNS, TCP refused, TLS
//!   handshake) on timer A until timer B; the adapter resolves/connects
//!   first so such failures are immediate (`Failed { code: 0 }`).
//! * Its name-addr parser knows no quoted-pair escapes and splits at the
//!   first `<`: display names lose `"`, `\`, `<`, `>` (see
//!   [`OutboundInvite::from_display`]).
//! * It keeps a URI's user part as written but percent-encodes it when
//!   printing: `sip:%2B1555@h` would go out as `%252B1555`, so the adapter
//!   decodes user parts when it parses the caller's URIs.
//! * Its digest answer quotes `qop` and its re-sent INVITE carries Via last;
//!   a `MessageInspector` (`wire.rs`) sends `qop=auth` and Via first.
//! * It answers `CANCEL` before any provisional response only once one
//!   arrives (RFC 3261 §9.1): cancelling a far end that never answers ends
//!   with timer B (`Failed { code: 408 }`).
//! * A 2xx other than 200 to the INVITE is ACKed by the transaction but the
//!   stack does not confirm the dialog: reported as `Failed { code }`.
//! * rustls must use the ring provider: call [`install_crypto_provider`].
//! * Inbound: `DialogLayer::get_or_create_server_invite` registers the
//!   dialog in the stack's own table, which we do not route by; the adapter
//!   builds the UAS `DialogInner` itself (same steps) and keeps it in its
//!   dialog table. The dialog's `handle()` drives the INVITE transaction
//!   (our responses go through the transaction's event channel).
//! * Its UAS dialog treats an INVITE in a dialog not yet confirmed as the
//!   initial INVITE and never answers it: the adapter answers 491 first.
//! * It drops an INVITE without a From tag unanswered (no transaction).
//! * A non-INVITE server transaction that sent its final response ends at
//!   once and drops `last_response`: the adapter counts a terminated
//!   transaction as answered (no second, 501, response is attempted).
//! * Its ACK to a non-2xx final copies the response's Via (`received=`,
//!   `rport=` value) and its typed Contact drops `;transport=udp` from remote
//!   targets: `wire.rs` and the dialog setup put both back (docs/interop.md).
//! * Its Via for a request over TLS names the port of its first listener
//!   (UDP: our TLS listener is not one of its listeners, so the adapter
//!   keeps its own accept loop and limits); `wire.rs` puts the TLS port there.
//!
//! # Not implemented yet
//!
//! Sending re-INVITE/UPDATE ourselves (either direction) other than the UPDATE of a session
//! refresh,
//! acting on a REFER of the far end, receiving INFO DTMF, PRACK/100rel on our side (a far end that
//! requires it gets PRACKs from the stack, untested), session timers on inbound calls, client
//! certificates on the TLS listener, early-dialog UPDATE, the answer SDP of an offerless INVITE or
//! re-INVITE (it arrives in the ACK and is not surfaced), a timeout for
//! inbound calls the call layer never answers (the caller's CANCEL or
//! timer C ends them), and routing by anything but the receiver (one queue
//! for every inbound INVITE).

mod dialog_states;
mod endpoint;
mod error;
mod inbound;
mod leg;
mod refer;
mod request;
mod saved;
pub mod session_timer;
mod tls;
mod wire;

#[doc(hidden)]
pub mod fuzz;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use endpoint::SipEndpoint;
pub use error::SipError;
pub use inbound::InboundHandle;
pub use leg::LegHandle;
pub use refer::{ReferOutcome, ReferRequest};
pub use saved::SavedDialog;
use tokio::sync::{mpsc, oneshot};

/// Install rustls' `ring` crypto provider as the process default, once.
///
/// The SIP stack's TLS client uses rustls' process-wide provider; when more
/// than one provider is compiled into the binary rustls cannot choose and
/// panics. Call this at start-up (tests call it too). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed: fine either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where the endpoint listens and what it advertises.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// UDP and TCP are both bound on this address. Port 0 picks a port free
    /// for both.
    pub listen: SocketAddr,
    /// Advertised in Via and Contact (with the bound port). Never 0.0.0.0.
    pub external_ip: IpAddr,
    /// `User-Agent` of every request and response we send.
    pub user_agent: String,
}

/// Tuning that most callers leave at its default ([`SipEndpoint::start`]).
#[derive(Debug, Clone)]
pub struct SipOptions {
    /// RFC 3261 T1, the RTT estimate: first INVITE/BYE retransmission on
    /// UDP. Default 500 ms.
    pub t1: Duration,
    /// RFC 3261 T2, the cap of non-INVITE retransmission intervals.
    /// Default 4 s.
    pub t2: Duration,
    /// Transaction timeout (timers B and F, 64·T1 by the RFC). Default 32 s.
    pub transaction_timeout: Duration,
    /// PEM trust anchors for outbound TLS (`sips:`). Without them no server
    /// certificate verifies and TLS calls fail (`Failed { code: 0 }`).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// A SIP-over-TLS listener beside UDP and TCP; `None` (the default) binds none.
    pub tls: Option<TlsServer>,
    /// Limits on the TCP listener, and on the TLS listener too (docs/security.md).
    pub tcp: TcpLimits,
}

/// The TLS listener: where it listens and the certificate it presents. Calls that arrive
/// over it are answered with a Contact on it (`;transport=tls`, or `sips:` when the
/// Request-URI was `sips:`), so the caller's in-dialog requests come back over TLS; our own
/// requests over TLS name its port in Via, and calls we place to `sips:`/`;transport=tls`
/// targets give it as their Contact. No client certificate is asked for.
#[derive(Clone)]
pub struct TlsServer {
    /// Address to listen on; port 0 picks one ([`SipEndpoint::tls_local_addr`]).
    pub listen: SocketAddr,
    /// The certificate chain, PEM, leaf first.
    pub cert_pem: Vec<u8>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl TlsServer {
    /// Whether the certificate and key make a TLS server (what [`SipEndpoint::start_with`]
    /// checks before binding): PEM with a certificate, a private key, the key the
    /// certificate's. Errors are [`SipError::Config`].
    pub fn check(&self) -> Result<(), SipError> {
        tls::acceptor(&self.cert_pem, &self.key_pem).map(|_| ())
    }
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("listen", &self.listen)
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What the TCP listener allows a peer. An accepted connection is held by the adapter until
/// its first bytes arrive (it must send within `first_data_timeout`); only then is it handed
/// to the stack, which closes it after `idle_timeout` without data.
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Connections (ours and the stack's, inbound and outbound) beyond which new inbound
    /// connections are closed at once. Default 1024.
    pub max_connections: usize,
    /// Accepted connections that have not sent anything yet, in total. Default 256.
    pub max_silent: usize,
    /// The same per peer address. Default 16.
    pub max_silent_per_peer: usize,
    /// Time a new connection has to send its first bytes. Default 10 s.
    pub first_data_timeout: Duration,
    /// A connection that sends nothing for this long is closed. Default 120 s.
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 1024,
            max_silent: 256,
            max_silent_per_peer: 16,
            first_data_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

impl Default for SipOptions {
    fn default() -> Self {
        SipOptions {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            transaction_timeout: Duration::from_secs(32),
            tls_ca_pem: None,
            tls: None,
            tcp: TcpLimits::default(),
        }
    }
}

/// Digest credentials, used only when the far end challenges (401/407).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One outbound call attempt.
#[derive(Debug, Clone)]
pub struct OutboundInvite {
    /// Request URI: `sip:`/`sips:` (may carry `;transport=tcp`). E.164
    /// numbers are resolved by the caller to `sip:+1...@trunk`.
    pub target: String,
    /// From URI (`sip:user@host`).
    pub from_uri: String,
    /// From display name. `"`, `\`, `<`, `>` and control characters are
    /// dropped (the stack cannot round-trip them, see the crate docs).
    pub from_display: Option<String>,
    /// To URI.
    pub to_uri: String,
    /// Used on 401/407 only.
    pub credentials: Option<Credentials>,
    /// SDP offer carried by the INVITE (`application/sdp`).
    pub sdp_offer: String,
    /// Extra headers (e.g. `X-...`, `P-Asserted-Identity`). Headers the
    /// stack builds itself (Via, From, To, Call-ID, CSeq, Contact,
    /// Content-*, Max-Forwards, Route, Authorization, User-Agent, Allow) are
    /// refused with [`SipError::InvalidHeader`].
    pub extra_headers: Vec<(String, String)>,
    /// RFC 4028 session timer: `Session-Expires: <n>` and `Supported: timer` on the INVITE;
    /// the 2xx decides who refreshes ([`session_timer`]). `None`: no session timer asked for.
    pub session_expires: Option<u32>,
    /// `Min-SE: <n>` on the INVITE (set when retrying after a 422, [`LegEvent::IntervalTooSmall`]).
    pub min_se: Option<u32>,
    /// The Call-ID to use instead of a new one: the retry after a 422 keeps the first
    /// INVITE's (its CSeq is higher; the From tag is new).
    pub call_id: Option<String>,
    /// For tracing spans only.
    pub call_ref: String,
}

/// A placed leg: its event stream and a handle to act on it.
#[derive(Debug)]
pub struct OutboundLeg {
    pub events: mpsc::Receiver<LegEvent>,
    pub handle: LegHandle,
}

/// What happens to an outbound leg, in order. [`LegEvent::Terminated`] is
/// always the last event.
///
/// What the far end answered to our re-INVITE ([`LegHandle::reoffer`],
/// [`InboundHandle::reoffer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reoffer {
    /// A 2xx with its SDP answer (the stack ACKed it).
    Accepted { answer: String },
    /// A final non-2xx (e.g. 488 Not Acceptable Here, 491 Request Pending), or a 2xx without
    /// an answer: the session stays as it was.
    Refused { code: u16 },
}

/// If the event receiver is dropped while the leg is alive, the adapter
/// hangs the leg up (CANCEL or BYE) rather than leave an orphan call.
#[derive(Debug)]
pub enum LegEvent {
    /// 100 Trying.
    Trying,
    /// 180 / 183 (183 usually with SDP: early media); also other 1xx.
    Ringing { code: u16, sdp: Option<String> },
    /// 200 OK to the INVITE; we already sent the ACK.
    Answered { sdp: Option<String> },
    /// Final non-2xx (486, 603, 404, 487 after our CANCEL, 401/407 after a
    /// second challenge, 408 on timer B ...) or `code: 0` when the stack
    /// failed locally (e.g. the request could not be sent at all).
    Failed { code: u16, reason: String },
    /// Re-INVITE or UPDATE from the far end. Reply `Ok(answer_sdp)` (sent
    /// in a 200) or `Err(code)` (e.g. 488). If the sender is dropped or 2 s
    /// pass, the adapter answers 200 with the last local SDP. `sdp: None`
    /// is an offerless re-INVITE: the SDP you return is our offer (the
    /// answer in the ACK is not surfaced).
    RemoteOffer {
        sdp: Option<String>,
        respond: oneshot::Sender<Result<String, u16>>,
    },
    /// The far end hung up (we already answered its BYE with 200).
    RemoteBye,
    /// The session timer ran out (RFC 4028: the far end, the refresher, sent no refresh in
    /// time, or our refresh got 408/481/no response). The adapter has started the BYE;
    /// `Terminated` follows.
    SessionExpired,
    /// `422 Session Interval Too Small` to an INVITE with `session_expires`: place it again
    /// with `session_expires` and `min_se` set to `min_se` (RFC 4028 §7.4), once. This is
    /// the leg's last event (no `Failed`, no `Terminated`).
    IntervalTooSmall { min_se: u32, call_id: String },
    /// The dialog is gone, for any reason. Last event.
    Terminated,
}

/// An out-of-dialog request that starts an inbound call, delivered on the
/// receiver returned by [`SipEndpoint::start`].
///
/// The endpoint has already sent `100 Trying`. If the receiver is full the
/// endpoint answers `503 Service Unavailable` itself; if it was dropped,
/// `404 No route`.
#[derive(Debug)]
#[non_exhaustive]
pub enum IncomingCall {
    /// An INVITE outside any dialog: ring, answer or reject it through
    /// [`InboundLeg::handle`]; what the caller does arrives on
    /// [`InboundLeg::events`].
    Invite {
        invite: InboundInvite,
        leg: InboundLeg,
    },
}

/// The facts of an inbound INVITE, as the caller sent them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InboundInvite {
    /// SIP Call-ID.
    pub call_id: String,
    /// The Request-URI, e.g. `sip:+15551230000@10.0.0.1:5060`.
    pub request_uri: String,
    /// User part of the Request-URI, percent-decoded (`""` if none).
    pub request_user: String,
    /// From URI (no tag, no display name).
    pub from_uri: String,
    /// User part of the From URI, percent-decoded (`""` if none).
    pub from_user: String,
    /// From display name, without quotes.
    pub from_display: Option<String>,
    /// To URI.
    pub to_uri: String,
    /// The SDP offer; `None` for an offerless INVITE (then the SDP given to
    /// [`InboundHandle::answer`] is our offer; the caller's answer comes in
    /// the ACK and is not surfaced yet).
    pub sdp: Option<String>,
    /// Where the INVITE came from (the datagram's source or the TCP peer).
    pub source: SocketAddr,
    /// `"udp"` or `"tcp"`.
    pub transport: &'static str,
    /// Every header of the INVITE, in order, as `(name, value)`.
    pub headers: Vec<(String, String)>,
}

/// An inbound call: its event stream and a handle to act on it.
///
/// If the event receiver is dropped while the call is alive, the adapter
/// hangs it up (`480` before the answer, BYE after), like outbound legs.
#[derive(Debug)]
pub struct InboundLeg {
    pub events: mpsc::Receiver<InboundEvent>,
    pub handle: InboundHandle,
}

/// What happens to an inbound call, in order. [`InboundEvent::Terminated`]
/// is always the last event.
#[derive(Debug)]
pub enum InboundEvent {
    /// The caller's ACK to our 200 arrived: the call is established.
    Confirmed,
    /// The caller sent CANCEL before we answered (the stack already replied
    /// 200 to the CANCEL and 487 to the INVITE).
    Canceled,
    /// Re-INVITE or UPDATE from the caller; same semantics as
    /// [`LegEvent::RemoteOffer`] (2 s to reply, then the last local SDP).
    RemoteOffer {
        sdp: Option<String>,
        respond: oneshot::Sender<Result<String, u16>>,
    },
    /// The caller hung up (we answered its BYE with 200).
    RemoteBye,
    /// No ACK for our 200 within 64·T1 ([`SipOptions::transaction_timeout`]):
    /// the dialog failed and the stack sent BYE.
    AckTimeout,
    /// The dialog is gone, for any reason. Last event.
    Terminated,
}

/// The `tracing` directive for the SIP stack's own target (`rsipstack`) to append to an
/// operator's log filter, or `None` when the filter names that target itself.
///
/// The stack logs every raw SIP message it sends or receives at INFO; a flood of datagrams
/// would grow the log without bound. Raw SIP is debugging output: it is shown only when the
/// filter enables DEBUG (or TRACE) for `sip` (or, with no `sip` directive, globally);
/// otherwise the stack is limited to warnings.
pub fn stack_log_directive(filter: &str) -> Option<&'static str> {
    let mut global = None;
    let mut sip = None;
    for d in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match d.split_once('=') {
            Some((target, _)) if target.trim().starts_with("rsipstack") => return None,
            Some((target, level)) if target.trim() == "sip" => sip = Some(level.trim()),
            Some(_) => {}
            None => global = Some(d),
        }
    }
    let verbose = |level: &str| {
        let l = level.to_ascii_lowercase();
        l == "debug" || l == "trace"
    };
    if sip.or(global).is_some_and(verbose) {
        Some("rsipstack=info")
    } else {
        Some("rsipstack=warn")
    }
}

#[cfg(test)]
mod log_tests {
    use super::stack_log_directive as d;

    #[test]
    fn raw_sip_only_at_debug() {
        assert_eq!(d("info"), Some("rsipstack=warn"));
        assert_eq!(d(""), Some("rsipstack=warn"));
        assert_eq!(d("info,sip=debug"), Some("rsipstack=info"));
        assert_eq!(d("debug"), Some("rsipstack=info"));
        assert_eq!(d("debug,sip=info"), Some("rsipstack=warn"));
        assert_eq!(d("TRACE"), Some("rsipstack=info"));
        assert_eq!(d("info,rsipstack=debug"), None);
        assert_eq!(d("info,rsipstack::transport=info"), None);
    }
}
