//! Our narrow SIP adapter over the pinned SIP stack crate: place, cancel, hang
//! up, answer re-INVITEs; digest credentials.
//!
//! The stack is `rsipstack =0.7.14` (docs/architecture.md §7). None of its
//! types appear in this crate's public API: the call layer sees
//! [`SipEndpoint`], [`OutboundInvite`], [`OutboundLeg`], [`LegEvent`],
//! [`LegHandle`], [`IncomingCall`] and [`SipError`] only, so the stack can be
//! replaced by our own sans-IO core later without touching the call layer.
//!
//! # What the adapter does on the wire
//!
//! * One UDP socket and one TCP listener on the same port
//!   ([`SipConfig::listen`]); Via and Contact advertise
//!   [`SipConfig::external_ip`] and that port.
//! * Outbound INVITE to `sip:`/`sips:` URIs; `;transport=tcp` selects TCP,
//!   `sips:` (or `;transport=tls`) selects TLS (client only, see
//!   [`SipOptions::tls_ca_pem`]).
//! * Digest auth on 401 and 407: the INVITE is re-sent once with
//!   credentials; a second challenge is final ([`LegEvent::Failed`] with
//!   401/407). A stale nonce is retried (the stack allows that).
//! * INVITE retransmission on UDP (timer A), timer B → `Failed { code: 408 }`,
//!   ACK for non-2xx finals (transaction layer), ACK for 2xx before
//!   [`LegEvent::Answered`] is reported.
//! * CANCEL on the INVITE's branch; BYE in both directions (our BYE is
//!   retransmitted per timers E/F on UDP); re-INVITE and UPDATE from the far
//!   end through [`LegEvent::RemoteOffer`].
//! * Out-of-dialog OPTIONS → 200; out-of-dialog INVITE → `404 No route` (see
//!   [`IncomingCall`]); unknown in-dialog requests → 481; datagrams that do
//!   not parse are dropped and logged by the stack.
//!
//! # Concurrency
//!
//! Each leg runs in its own task (span `sip_leg` with the caller's
//! `call_ref`). [`LegHandle::cancel`] and [`LegHandle::hangup`] return as
//! soon as the request is started; the outcome arrives as events, ending
//! with exactly one [`LegEvent::Terminated`].

mod endpoint;
mod error;
mod leg;
mod request;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use endpoint::SipEndpoint;
pub use error::SipError;
pub use leg::LegHandle;
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
    /// certificate verifies and TLS calls end with timer B (`Failed { code: 408 }`).
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl Default for SipOptions {
    fn default() -> Self {
        SipOptions {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            transaction_timeout: Duration::from_secs(32),
            tls_ca_pem: None,
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
    /// The dialog is gone, for any reason. Last event.
    Terminated,
}

/// An out-of-dialog request that starts an inbound call.
///
/// Reserved for the inbound-routing issue: today the adapter answers every
/// out-of-dialog INVITE itself with `404 No route` and never sends on the
/// receiver returned by [`SipEndpoint::start`]. Keep the receiver; the
/// variants will carry a handle to ring/answer/reject.
#[derive(Debug)]
#[non_exhaustive]
pub enum IncomingCall {
    /// An INVITE outside any dialog (not emitted yet, see above).
    Invite(InboundInvite),
}

/// The facts of an inbound INVITE (not emitted yet, see [`IncomingCall`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InboundInvite {
    pub call_id: String,
    pub request_uri: String,
    pub from_uri: String,
    pub to_uri: String,
    pub sdp: Option<String>,
    pub source: SocketAddr,
}
