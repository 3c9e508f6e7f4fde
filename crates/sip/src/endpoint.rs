//! The endpoint: sockets, the stack's endpoint and transaction loop, and the
//! router for requests that arrive from the network.

use crate::inbound::{self, InboundHandle};
use crate::leg::{self, LegHandle};
use crate::{IncomingCall, OutboundInvite, OutboundLeg, SipConfig, SipError, SipOptions};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode, StatusCodeKind, Transport};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::{EndpointBuilder, TransactionReceiver};
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::udp::{UdpConnection, UdpInner};
use rsipstack::transport::{SipAddr, SipConnection, TlsConfig, TransportLayer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

/// Methods we answer; advertised in `Allow`.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE";

/// How long an answered out-of-dialog INVITE transaction is kept to absorb
/// the ACK and retransmit our final response (timer H is 64·T1).
pub(crate) const SERVER_INVITE_LINGER: Duration = Duration::from_secs(40);

/// The SIP endpoint: one UDP socket and one TCP listener on the same port
/// (and a TLS listener when [`SipOptions::tls`] asks for one), the stack's transaction layer, and every outbound leg placed through it.
/// Cheap to clone. Call [`SipEndpoint::shutdown`] to end it cleanly; when
/// the last clone is dropped without it, the stack stops at once (sockets
/// closed, live legs cut without BYE).
#[derive(Clone)]
pub struct SipEndpoint {
    inner: Arc<Owner>,
}

/// Held only by [`SipEndpoint`] clones (the tasks hold [`Inner`]): dropping
/// the last one stops everything.
struct Owner(Arc<Inner>);

impl std::ops::Deref for Owner {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.token.cancel();
    }
}

impl std::fmt::Debug for SipEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipEndpoint")
            .field("local_addr", &self.inner.local_addr)
            .field("advertised", &self.inner.advertised)
            .finish()
    }
}

/// The dialog key we route in-dialog requests by: Call-ID and our own tag
/// (the From tag of our INVITE, the To tag of the far end's requests).
pub(crate) type LegKey = (String, String);

pub(crate) struct Inner {
    pub(crate) endpoint: EndpointInnerRef,
    pub(crate) dialog_layer: DialogLayer,
    pub(crate) local_addr: SocketAddr,
    pub(crate) advertised: SocketAddr,
    /// The TLS listener's bound address and the address it is advertised as, when there is one.
    pub(crate) tls_local: Option<SocketAddr>,
    pub(crate) tls_advertised: Option<SocketAddr>,
    pub(crate) token: CancellationToken,
    pub(crate) transaction_timeout: Duration,
    legs: Mutex<HashMap<LegKey, LegEntry>>,
    shutting_down: AtomicBool,
    /// Inbound calls go to the receiver [`SipEndpoint::start`] returned.
    pub(crate) incoming_tx: mpsc::Sender<IncomingCall>,
    /// The transaction-user sender every dialog we place is built with. The stack sends on a
    /// dialog's sender only for a UAS (responses, the ACK), so a UAC dialog's goes unused; one
    /// shared (drained, discarding) channel saves each call the INVITE transaction's own
    /// channel, ~11 KiB that its sender kept alive for the whole call (docs/benchmarks.md,
    /// "Memory per call").
    pub(crate) uac_dialog_tu: rsipstack::transaction::transaction::TransactionEventSender,
    /// The dialog states of every call we place, routed to each leg (dialog_states.rs).
    pub(crate) uac_states: Arc<crate::dialog_states::StateRouter>,
}

/// A live leg of either direction, as the endpoint sees it.
#[derive(Clone)]
pub(crate) enum AnyHandle {
    Outbound(LegHandle),
    Inbound(InboundHandle),
}

impl AnyHandle {
    async fn hangup(&self) {
        match self {
            AnyHandle::Outbound(h) => h.hangup().await.ok(),
            AnyHandle::Inbound(h) => h.hangup().await.ok(),
        };
    }
}

struct LegEntry {
    dialog: InviteDialog,
    handle: AnyHandle,
}

impl Inner {
    pub(crate) fn register_leg(&self, key: LegKey, dialog: InviteDialog, handle: AnyHandle) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.insert(key, LegEntry { dialog, handle });
        }
    }

    pub(crate) fn remove_leg(&self, key: &LegKey) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.remove(key);
        }
    }

    fn find_dialog(&self, key: &LegKey) -> Option<InviteDialog> {
        self.legs
            .lock()
            .ok()
            .and_then(|legs| legs.get(key).map(|e| e.dialog.clone()))
    }

    fn leg_count(&self) -> usize {
        self.legs.lock().map(|l| l.len()).unwrap_or(0)
    }

    fn handles(&self) -> Vec<AnyHandle> {
        self.legs
            .lock()
            .map(|l| l.values().map(|e| e.handle.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst) || self.token.is_cancelled()
    }
}

fn bind_error(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> SipError {
    move |source| SipError::Bind { addr, source }
}

/// Bind UDP and TCP on the same port. With port 0, retry until a port is
/// free for both.
fn bind_pair(listen: SocketAddr) -> Result<(std::net::UdpSocket, std::net::TcpListener), SipError> {
    if listen.port() != 0 {
        let udp = std::net::UdpSocket::bind(listen).map_err(bind_error(listen))?;
        let tcp = std::net::TcpListener::bind(listen).map_err(bind_error(listen))?;
        return Ok((udp, tcp));
    }
    let mut last_err = None;
    for _ in 0..32 {
        let udp = std::net::UdpSocket::bind(listen).map_err(bind_error(listen))?;
        let port = udp.local_addr().map_err(bind_error(listen))?.port();
        let addr = SocketAddr::new(listen.ip(), port);
        match std::net::TcpListener::bind(addr) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(SipError::Bind {
        addr: listen,
        source: last_err
            .unwrap_or_else(|| std::io::Error::other("no port free for both UDP and TCP")),
    })
}

impl SipEndpoint {
    /// Bind UDP and TCP on `cfg.listen`, start the stack, and return the
    /// endpoint with the receiver of inbound calls (see [`IncomingCall`];
    /// it queues 16 calls, more are refused with 503). Drop the receiver to
    /// refuse every inbound call with `404 No route`.
    pub async fn start(
        cfg: SipConfig,
    ) -> Result<(SipEndpoint, mpsc::Receiver<IncomingCall>), SipError> {
        Self::start_with(cfg, SipOptions::default()).await
    }

    /// [`SipEndpoint::start`] with explicit timers, TLS trust anchors and TLS listener. A
    /// TLS certificate and key that do not make a server are [`SipError::Config`], checked
    /// before anything is bound.
    pub async fn start_with(
        cfg: SipConfig,
        opts: SipOptions,
    ) -> Result<(SipEndpoint, mpsc::Receiver<IncomingCall>), SipError> {
        if cfg.external_ip.is_unspecified() {
            return Err(SipError::Config(
                "external_ip must be a routable address, not 0.0.0.0/::".into(),
            ));
        }
        if cfg.external_ip.is_ipv4() != cfg.listen.is_ipv4() && !cfg.listen.ip().is_unspecified() {
            return Err(SipError::Config(
                "external_ip and listen must be the same IP family".into(),
            ));
        }
        if opts.t1.is_zero() || opts.t2 < opts.t1 || opts.transaction_timeout < opts.t1 {
            return Err(SipError::Config(
                "timers must satisfy 0 < t1 <= t2, t1 <= transaction_timeout".into(),
            ));
        }
        if cfg.user_agent.chars().any(|c| c.is_control()) {
            return Err(SipError::Config(
                "user_agent contains control characters".into(),
            ));
        }

        // The certificate is checked before anything is bound: a bad file is a clear error.
        let tls_acceptor = match &opts.tls {
            Some(t) => {
                if t.listen.is_ipv4() != cfg.external_ip.is_ipv4()
                    && !t.listen.ip().is_unspecified()
                {
                    return Err(SipError::Config(
                        "external_ip and the TLS listen address must be the same IP family".into(),
                    ));
                }
                Some((crate::tls::acceptor(&t.cert_pem, &t.key_pem)?, t.listen))
            }
            None => None,
        };
        let (udp, tcp) = bind_pair(cfg.listen)?;
        let tls_listener = match &tls_acceptor {
            Some((acceptor, listen)) => {
                let l = std::net::TcpListener::bind(listen).map_err(bind_error(*listen))?;
                l.set_nonblocking(true).map_err(bind_error(*listen))?;
                let bound = l.local_addr().map_err(bind_error(*listen))?;
                let l = tokio::net::TcpListener::from_std(l).map_err(bind_error(*listen))?;
                Some((acceptor.clone(), l, bound))
            }
            None => None,
        };
        let tls_local = tls_listener.as_ref().map(|(_, _, bound)| *bound);
        let tls_advertised = tls_local.map(|a| SocketAddr::new(cfg.external_ip, a.port()));
        udp.set_nonblocking(true).map_err(bind_error(cfg.listen))?;
        tcp.set_nonblocking(true).map_err(bind_error(cfg.listen))?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(bind_error(cfg.listen))?;
        let local_addr = udp.local_addr().map_err(bind_error(cfg.listen))?;
        let advertised = SocketAddr::new(cfg.external_ip, local_addr.port());

        let token = CancellationToken::new();
        let transport_layer = TransportLayer::new(token.child_token());
        transport_layer.set_stream_idle_timeout(opts.tcp.idle_timeout);
        if let Some(ca) = opts.tls_ca_pem.clone() {
            transport_layer.set_tls_config(TlsConfig {
                ca_certs: Some(ca),
                ..Default::default()
            });
        }
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(bind_error(cfg.listen))?;
        let udp_conn = UdpConnection::attach(
            UdpInner {
                conn: Arc::new(udp),
                addr: SipAddr {
                    r#type: Some(Transport::Udp),
                    addr: local_addr.into(),
                },
            },
            Some(advertised),
            Some(token.child_token()),
        )
        .await;
        transport_layer.add_transport(udp_conn.into());

        let option = EndpointOption {
            t1: opts.t1,
            t2: opts.t2,
            t1x64: opts.transaction_timeout,
            callid_suffix: Some(cfg.external_ip.to_string()),
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_user_agent(&cfg.user_agent)
            .with_transport_layer(transport_layer)
            .with_cancel_token(token.child_token())
            .with_option(option)
            .with_inspector(Box::new(crate::wire::WireFixes::new(
                tls_advertised.map(|tls| (advertised, tls)),
            )))
            .with_allows(vec![
                Method::Invite,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
                Method::Options,
                Method::Update,
            ])
            .build();
        let incoming = endpoint.incoming_transactions()?;
        let endpoint_inner = endpoint.inner.clone();
        let dialog_layer = DialogLayer::new(endpoint_inner.clone());

        let (incoming_tx, incoming_rx) = mpsc::channel(16);
        let inner = Arc::new(Inner {
            endpoint: endpoint_inner.clone(),
            dialog_layer,
            local_addr,
            advertised,
            tls_local,
            tls_advertised,
            token: token.clone(),
            transaction_timeout: opts.transaction_timeout,
            legs: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            incoming_tx,
            uac_dialog_tu: rsipstack::transaction::transaction::transaction_event_sender_noop(),
            uac_states: crate::dialog_states::StateRouter::start(token.clone()),
        });

        let span =
            tracing::info_span!("sip_endpoint", local = %local_addr, advertised = %advertised);
        // The stack's transaction/timer/transport loop.
        let serve_token = token.clone();
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = serve_token.cancelled() => {}
                    r = endpoint_inner.serve() => {
                        if let Err(e) = r {
                            warn!(error = %e, "SIP stack stopped");
                        }
                    }
                }
                drop(endpoint);
            }
            .instrument(span.clone()),
        );
        tokio::spawn(
            accept_streams(inner.clone(), tcp, None, opts.tcp.clone()).instrument(span.clone()),
        );
        if let Some((acceptor, listener, bound)) = tls_listener {
            tokio::spawn(
                accept_streams(inner.clone(), listener, Some(acceptor), opts.tcp.clone())
                    .instrument(span.clone()),
            );
            info!(tls_local = %bound, "SIP TLS listener started");
        }
        tokio::spawn(route_incoming(inner.clone(), incoming).instrument(span));

        info!(%local_addr, %advertised, "SIP endpoint started");
        Ok((
            SipEndpoint {
                inner: Arc::new(Owner(inner)),
            },
            incoming_rx,
        ))
    }

    /// The bound address (UDP and TCP share the port).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The TLS listener's bound address, when [`crate::SipOptions::tls`] asked for one.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.inner.tls_local
    }

    /// Whether the endpoint still serves (not shut down, stack not stopped):
    /// the node's readiness check.
    pub fn is_running(&self) -> bool {
        !self.inner.is_shut_down()
    }

    /// The address advertised in Via and Contact (`external_ip` and the
    /// bound port).
    pub fn advertised_addr(&self) -> SocketAddr {
        self.inner.advertised
    }

    /// Send an INVITE. Returns once the request is handed to the
    /// transaction layer; progress and the outcome arrive on
    /// [`OutboundLeg::events`]. Errors are local (bad URI or header, shut
    /// down); SIP failures are [`crate::LegEvent::Failed`].
    pub async fn invite(&self, req: OutboundInvite) -> Result<OutboundLeg, SipError> {
        if self.inner.is_shut_down() {
            return Err(SipError::Shutdown);
        }
        leg::place(&self.inner.0, req)
    }

    /// Ends a dialog a previous process left up (a crash): BYE to its remote target through
    /// its route set, with the next CSeq, and waits for the far end's final response (at
    /// most the transaction timeout). The dialog is not kept afterwards; whatever the far end
    /// answers (200, 481), it is over.
    pub async fn bye_saved(&self, saved: &crate::SavedDialog) -> Result<(), SipError> {
        if self.inner.is_shut_down() {
            return Err(SipError::Shutdown);
        }
        let snapshot = saved.snapshot()?;
        let id = snapshot.id.clone();
        let (state_tx, _state_rx) = self.inner.dialog_layer.new_dialog_state_channel();
        self.inner
            .dialog_layer
            .restore_from_snapshot(snapshot, state_tx)?;
        let result = match self.inner.dialog_layer.get_dialog(&id) {
            Some(rsipstack::dialog::dialog::Dialog::Invite(d)) => {
                tracing::info!(call_id = %id.call_id, "ending a dialog left by a previous process with BYE");
                d.bye().await.map_err(SipError::from)
            }
            _ => Err(SipError::Stack(format!(
                "saved dialog {} could not be restored",
                id.call_id
            ))),
        };
        self.inner.dialog_layer.remove_dialog(&id);
        result
    }

    /// Hang up every live leg (outbound: CANCEL or BYE; inbound: 480 or
    /// BYE), wait up to 2 s for them to end, then stop the stack and close the sockets. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        for handle in self.inner.handles() {
            handle.hangup().await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.inner.leg_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.inner.token.cancel();
        info!(local = %self.inner.local_addr, "SIP endpoint shut down");
    }
}

/// Accepted connections that have not sent anything yet, per peer address.
#[derive(Default)]
struct Silent(Mutex<HashMap<std::net::IpAddr, usize>>);

impl Silent {
    fn take(&self, ip: std::net::IpAddr, max: usize) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }
    fn put(&self, ip: std::net::IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// Our TCP and TLS listeners: each accepted stream that sends its first bytes in time (for
/// TLS: whose handshake also completes within that time) becomes a connection of the stack's
/// transport layer (which reads and frames it). Connections beyond the limits
/// ([`crate::TcpLimits`]) are closed at once.
async fn accept_streams(
    inner: Arc<Inner>,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: crate::TcpLimits,
) {
    let (kind, local) = match &tls {
        None => (
            "TCP",
            SipAddr {
                r#type: Some(Transport::Tcp),
                addr: inner.advertised.into(),
            },
        ),
        Some(_) => (
            "TLS",
            SipAddr {
                r#type: Some(Transport::Tls),
                addr: inner.tls_advertised.unwrap_or(inner.advertised).into(),
            },
        ),
    };
    let silent_total = Arc::new(tokio::sync::Semaphore::new(limits.max_silent));
    let silent_peers = Arc::new(Silent::default());
    loop {
        let accepted = tokio::select! {
            _ = inner.token.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, kind, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if inner.endpoint.transport_layer.connections_count() >= limits.max_connections {
            debug!(%peer, kind, "connection refused: connection limit reached");
            continue;
        }
        let Ok(permit) = silent_total.clone().try_acquire_owned() else {
            debug!(%peer, kind, "connection refused: too many silent connections");
            continue;
        };
        if !silent_peers.take(peer.ip(), limits.max_silent_per_peer) {
            debug!(%peer, kind, "connection refused: too many silent connections from the peer");
            continue;
        }
        let inner = inner.clone();
        let local = local.clone();
        let silent_peers = silent_peers.clone();
        let first_data = limits.first_data_timeout;
        let tls = tls.clone();
        tokio::spawn(
            async move {
                let mut probe = [0u8; 1];
                let started = tokio::time::Instant::now();
                let spoke = tokio::select! {
                    _ = inner.token.cancelled() => false,
                    r = tokio::time::timeout(first_data, stream.peek(&mut probe)) => {
                        matches!(r, Ok(Ok(n)) if n > 0)
                    }
                };
                if !spoke {
                    silent_peers.put(peer.ip());
                    drop(permit);
                    debug!(%peer, kind, "connection closed: nothing sent in time");
                    return;
                }
                let conn = match tls {
                    None => {
                        silent_peers.put(peer.ip());
                        drop(permit);
                        TcpConnection::from_stream(stream, local, Some(inner.token.child_token()))
                            .map(SipConnection::Tcp)
                    }
                    Some(acceptor) => {
                        // The handshake counts as the first data: it has what is left of
                        // `first_data_timeout`, and the connection stays silent until it ends.
                        let left = first_data.saturating_sub(started.elapsed());
                        let handshake = tokio::select! {
                            _ = inner.token.cancelled() => None,
                            r = tokio::time::timeout(left, acceptor.accept(stream)) => Some(r),
                        };
                        silent_peers.put(peer.ip());
                        drop(permit);
                        let tls_stream = match handshake {
                            Some(Ok(Ok(s))) => s,
                            Some(Ok(Err(e))) => {
                                debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Some(Err(_)) => {
                                debug!(%peer, "TLS connection closed: handshake not done in time");
                                return;
                            }
                            None => return,
                        };
                        let remote = SipAddr {
                            r#type: Some(Transport::Tls),
                            addr: peer.into(),
                        };
                        TlsConnection::from_server_stream(
                            tls_stream,
                            local,
                            remote,
                            Some(inner.token.child_token()),
                        )
                        .await
                        .map(SipConnection::Tls)
                    }
                };
                match conn {
                    Ok(conn) => {
                        debug!(%peer, kind, "connection accepted");
                        inner.endpoint.transport_layer.add_connection(conn);
                    }
                    Err(e) => warn!(%peer, kind, error = %e, "cannot use accepted connection"),
                }
            }
            .in_current_span(),
        );
    }
}

/// Every request that starts a server transaction lands here.
async fn route_incoming(inner: Arc<Inner>, mut incoming: TransactionReceiver) {
    loop {
        let tx = tokio::select! {
            _ = inner.token.cancelled() => break,
            tx = incoming.recv() => match tx {
                Some(tx) => tx,
                None => break,
            },
        };
        let inner = inner.clone();
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = inner.token.cancelled() => {}
                    _ = handle_request(&inner, tx) => {}
                }
            }
            .in_current_span(),
        );
    }
}

/// Why a request must be refused before anything else looks at it: `Max-Forwards: 0` (483)
/// or a CSeq that does not name the request's method or does not parse (400).
pub(crate) fn request_fault(req: &rsipstack::sip::Request) -> Option<(StatusCode, &'static str)> {
    if let Ok(mf) = req.max_forwards_header() {
        if mf.value().trim().parse::<u32>() == Ok(0) {
            return Some((StatusCode::TooManyHops, "Max-Forwards is 0"));
        }
    }
    match req.cseq_header().ok().and_then(|c| c.method().ok()) {
        Some(m) if m == req.method => None,
        Some(_) => Some((
            StatusCode::BadRequest,
            "CSeq method differs from the request's",
        )),
        None => Some((StatusCode::BadRequest, "CSeq does not parse")),
    }
}

/// Whether the server transaction has had its final response. A non-INVITE transaction that
/// answered ends at once (reliable transports, and a 2xx on any) and the stack then drops its
/// `last_response`: a terminated transaction has answered, too (nothing can be sent on it).
pub(crate) fn final_sent(tx: &Transaction) -> bool {
    tx.state == rsipstack::transaction::TransactionState::Terminated
        || tx
            .last_response
            .as_ref()
            .is_some_and(|r| r.status_code.kind() != StatusCodeKind::Provisional)
}

pub(crate) async fn reply(tx: &mut Transaction, status: StatusCode, headers: Vec<Header>) {
    let code = status.code();
    if let Err(e) = tx.reply_with(status, headers, None).await {
        debug!(code, error = %e, "cannot send response");
    }
}

async fn handle_request(inner: &Arc<Inner>, mut tx: Transaction) {
    let method = tx.original.method;
    let call_id = tx
        .original
        .call_id_header()
        .ok()
        .map(|c| c.value().to_string());
    let to_tag = tx
        .original
        .to_header()
        .ok()
        .and_then(|t| t.tag().ok().flatten())
        .map(|t| t.value().to_string());
    debug!(%method, uri = %tx.original.uri, ?call_id, ?to_tag, "incoming request");

    if let Some((status, why)) = request_fault(&tx.original) {
        // RFC 3261 §16.3 (Max-Forwards: 0 → 483) and §8.2 (a CSeq whose method is not the
        // request's → 400). An ACK gets no response; it is dropped.
        debug!(%method, code = status.code(), why, "request refused");
        if method != Method::Ack {
            reply(&mut tx, status, vec![]).await;
        }
        return;
    }

    if let (Some(call_id), Some(to_tag)) = (call_id, to_tag) {
        // In-dialog: route to the leg's dialog.
        match inner.find_dialog(&(call_id, to_tag)) {
            Some(dialog) if method == Method::Invite && inbound::reinvite_too_early(&dialog) => {
                // A re-INVITE before the caller ACKed our 200 (RFC 3261
                // §14.2): the stack would never answer it.
                reply(&mut tx, StatusCode::RequestPending, vec![]).await;
            }
            Some(mut dialog) => {
                if let Err(e) = dialog.handle(&mut tx).await {
                    debug!(%method, error = %e, "in-dialog request handling failed");
                }
                if method != Method::Ack && !final_sent(&tx) {
                    // The stack leaves requests in an early dialog unanswered.
                    reply(&mut tx, StatusCode::NotImplemented, vec![]).await;
                }
            }
            None if method == Method::Ack => {}
            None => reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await,
        }
        return;
    }

    match method {
        Method::Options => {
            let headers = vec![
                Header::Allow(ALLOW.into()),
                Header::Accept("application/sdp".into()),
            ];
            reply(&mut tx, StatusCode::OK, headers).await;
        }
        Method::Invite => inbound::handle_invite(inner, tx).await,
        Method::Ack => {}
        Method::Bye | Method::Cancel | Method::Update | Method::Info | Method::PRack => {
            reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await;
        }
        _ => {
            reply(
                &mut tx,
                StatusCode::MethodNotAllowed,
                vec![Header::Allow(ALLOW.into())],
            )
            .await;
        }
    }
}
