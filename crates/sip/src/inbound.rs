//! Inbound calls: an out-of-dialog INVITE becomes a UAS dialog, handed to
//! the call layer as [`IncomingCall::Invite`]; the [`InboundHandle`] rings,
//! answers, rejects and hangs up, and the dialog's states become
//! [`InboundEvent`]s.

use crate::endpoint::{self, AnyHandle, Inner, LegKey};
use crate::leg::{answer_remote_offer, body_text};
use crate::{InboundEvent, InboundInvite, InboundLeg, IncomingCall, SipError};
use rsipstack::dialog::dialog::{DialogInner, DialogState, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::dialog::DialogId;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Auth, Header, Param, Scheme, StatusCode, Transport, Uri};
use rsipstack::transaction::key::TransactionRole;
use rsipstack::transaction::make_tag;
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, info, warn, Instrument, Span};

/// Capacity of an inbound call's event channel.
const EVENT_CAPACITY: usize = 64;

/// Act on an inbound call. Cheap to clone; valid for the call's whole life
/// (after [`InboundEvent::Terminated`] the calls fail with
/// [`SipError::InvalidState`] or are no-ops, see each method).
#[derive(Clone)]
pub struct InboundHandle {
    core: Arc<InboundCore>,
}

impl std::fmt::Debug for InboundHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundHandle")
            .field("call_id", &self.core.call_id)
            .finish()
    }
}

struct InboundCore {
    dialog: InviteDialog,
    call_id: String,
    span: Span,
    /// A final response (answer, reject, or the 480 of a hangup) was
    /// claimed: at most one per INVITE.
    final_claimed: AtomicBool,
    /// A BYE was started (at most one per call).
    bye_started: AtomicBool,
    /// Hang up as soon as the caller ACKs (hangup asked while the 200 was
    /// not yet acknowledged: RFC 3261 §15 wants no BYE before the ACK).
    bye_pending: AtomicBool,
    /// The SDP we last sent (our answer, or answer to a re-offer).
    last_local_sdp: Arc<Mutex<String>>,
    /// The dialog's state and the caller's connection (for a REFER's copy of the dialog,
    /// with the caller's INVITE the dialog keeps), and where the NOTIFYs of our REFER go.
    dialog_inner: Arc<DialogInner>,
    connection: Option<rsipstack::transport::SipConnection>,
    endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    refer_slot: crate::refer::ReferSlot,
}

fn gone() -> SipError {
    SipError::InvalidState("the call is no longer waiting for an answer".into())
}

fn already_final() -> SipError {
    SipError::InvalidState("the INVITE already has a final response".into())
}

impl InboundHandle {
    /// Transfer the caller by REFER once the call is confirmed; as [`crate::LegHandle::refer`].
    pub async fn refer(&self, req: crate::ReferRequest) -> Result<crate::ReferOutcome, SipError> {
        let d = crate::refer::ReferDialog {
            real: &self.core.dialog_inner,
            initial: self.core.dialog.initial_request(),
            endpoint: self.core.endpoint.clone(),
            connection: self.core.connection.clone(),
            slot: &self.core.refer_slot,
        };
        crate::refer::refer(d, req)
            .instrument(self.core.span.clone())
            .await
    }

    /// A re-INVITE with a new offer once the call is confirmed; as [`crate::LegHandle::reoffer`].
    pub async fn reoffer(&self, sdp: String) -> Result<crate::Reoffer, SipError> {
        crate::leg::send_reoffer(&self.core.dialog, &self.core.last_local_sdp, sdp)
            .instrument(self.core.span.clone())
            .await
    }

    /// The dialog once the caller's ACK confirmed it, to persist so a restart can end it
    /// ([`crate::SavedDialog`]); `None` before and after.
    pub fn saved_dialog(&self) -> Option<crate::SavedDialog> {
        crate::SavedDialog::of(&self.core.dialog)
    }

    /// `180 Ringing`, or `183 Session Progress` with `early_sdp` (early
    /// media). May be sent more than once; an error after the final
    /// response or once the caller cancelled.
    pub async fn ringing(&self, early_sdp: Option<String>) -> Result<(), SipError> {
        if self.core.final_claimed.load(Ordering::SeqCst) {
            return Err(already_final());
        }
        if !self.core.dialog.state().can_cancel() {
            return Err(gone());
        }
        let (headers, body) = match early_sdp.filter(|s| !s.trim().is_empty()) {
            Some(sdp) => (
                Some(vec![Header::ContentType("application/sdp".into())]),
                Some(sdp.into_bytes()),
            ),
            None => (None, None),
        };
        let _enter = self.core.span.enter();
        debug!(early_media = body.is_some(), "ringing");
        self.core.dialog.ringing(headers, body)?;
        Ok(())
    }

    /// `200 OK` with our SDP (`Contact` is our advertised address). The
    /// stack retransmits it until the caller's ACK ([`InboundEvent::Confirmed`])
    /// or 64·T1 ([`InboundEvent::AckTimeout`]). A second final response
    /// (answer or reject) is an error, as is answering a cancelled call.
    /// A CANCEL crossing this answer may still win: watch for
    /// [`InboundEvent::Canceled`].
    pub async fn answer(&self, sdp: String) -> Result<(), SipError> {
        if !self.core.dialog.state().can_cancel() {
            return Err(gone());
        }
        if self.core.final_claimed.swap(true, Ordering::SeqCst) {
            return Err(already_final());
        }
        if let Ok(mut l) = self.core.last_local_sdp.lock() {
            l.clone_from(&sdp);
        }
        let mut headers = vec![Header::Allow(endpoint::ALLOW.into())];
        let body = if sdp.trim().is_empty() {
            None
        } else {
            headers.push(Header::ContentType("application/sdp".into()));
            Some(sdp.into_bytes())
        };
        let _enter = self.core.span.enter();
        info!("answering");
        self.core.dialog.accept(Some(headers), body)?;
        Ok(())
    }

    /// A final non-2xx response (`code` 300..=699, e.g. 404, 486, 488,
    /// 603); `reason` is the reason phrase (empty: the standard one). The
    /// caller's ACK is absorbed by the transaction. A second final response
    /// is an error.
    pub async fn reject(&self, code: u16, reason: &str) -> Result<(), SipError> {
        if !(300..=699).contains(&code) {
            return Err(SipError::InvalidState(format!(
                "{code} is not a final non-2xx status code"
            )));
        }
        if reason.chars().any(|c| c.is_control()) {
            return Err(SipError::InvalidHeader {
                name: "reason phrase".into(),
                reason: "contains control characters".into(),
            });
        }
        if !self.core.dialog.state().can_cancel() {
            return Err(gone());
        }
        if self.core.final_claimed.swap(true, Ordering::SeqCst) {
            return Err(already_final());
        }
        self.send_reject(code, reason);
        Ok(())
    }

    fn send_reject(&self, code: u16, reason: &str) {
        let reason = reason.trim();
        let status = if reason.is_empty() {
            StatusCode::from(code)
        } else {
            StatusCode::Other(code, reason.to_string())
        };
        let _enter = self.core.span.enter();
        info!(code, "rejecting");
        if let Err(e) = self.core.dialog.reject(Some(status), None) {
            warn!(code, error = %e, "cannot send the final response");
        }
    }

    /// After the answer: BYE (once the caller ACKed our 200; if the ACK
    /// never comes the stack sends it at the ACK timeout). Before the
    /// answer: `480 Temporarily Unavailable`. After the end: no-op.
    /// Returns once the request is started; the outcome arrives as events.
    pub async fn hangup(&self) -> Result<(), SipError> {
        match self.core.dialog.state() {
            DialogState::Calling(_) | DialogState::Trying(_) | DialogState::Early(_, _) => {
                if self.core.final_claimed.swap(true, Ordering::SeqCst) {
                    // An answer is on its way: BYE once it is confirmed.
                    self.core.bye_pending.store(true, Ordering::SeqCst);
                    if self.core.dialog.state().is_confirmed() {
                        self.start_bye();
                    }
                } else {
                    self.send_reject(480, "Temporarily Unavailable");
                }
            }
            DialogState::Terminated(_, _) => {}
            DialogState::WaitAck(_, _) => {
                self.core.bye_pending.store(true, Ordering::SeqCst);
                // The ACK may have arrived meanwhile.
                if self.core.dialog.state().is_confirmed() {
                    self.start_bye();
                }
            }
            _ => self.start_bye(),
        }
        Ok(())
    }

    fn start_bye(&self) {
        if self.core.bye_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let dialog = self.core.dialog.clone();
        tokio::spawn(
            async move {
                info!("sending BYE");
                if let Err(e) = dialog.bye().await {
                    warn!(error = %e, "BYE failed");
                }
            }
            .instrument(self.core.span.clone()),
        );
    }

    fn start_hangup(&self) {
        let handle = self.clone();
        tokio::spawn(async move { handle.hangup().await.ok() });
    }
}

/// A re-INVITE for an inbound dialog whose 200 is not ACKed yet: the stack
/// would treat it as the initial INVITE and never answer it.
pub(crate) fn reinvite_too_early(dialog: &InviteDialog) -> bool {
    dialog.role() == TransactionRole::Server && !dialog.state().is_confirmed()
}

/// `uri` as text, its user part decoded first (the stack keeps user parts as
/// written but percent-encodes them when printing).
fn uri_text(uri: &Uri) -> String {
    let mut uri = uri.clone();
    if let Some(auth) = uri.auth.as_mut() {
        if let Some(decoded) = crate::request::percent_decode(&auth.user) {
            auth.user = decoded;
        }
    }
    uri.to_string()
}

fn uri_user(uri: &Uri) -> String {
    uri.auth
        .as_ref()
        .map(|a| crate::request::percent_decode(&a.user).unwrap_or_else(|| a.user.clone()))
        .unwrap_or_default()
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
        Transport::Ws => "ws",
        Transport::Wss => "wss",
        _ => "udp",
    }
}

/// The facts of the INVITE; `None` when a header we need does not parse.
fn describe(tx: &Transaction) -> Option<InboundInvite> {
    let (source, transport) = match &tx.connection {
        Some(conn) => (
            conn.get_remote_addr().and_then(|a| a.get_socketaddr().ok()),
            transport_name(conn.transport()),
        ),
        None => (None, "udp"),
    };
    describe_request(&tx.original, source, transport)
}

/// [`describe`] of the request alone (the fuzz targets call it without a transaction).
pub(crate) fn describe_request(
    req: &rsipstack::sip::Request,
    source: Option<SocketAddr>,
    transport: &'static str,
) -> Option<InboundInvite> {
    let call_id = req.call_id_header().ok()?.value().to_string();
    let from = req.from_header().ok()?.typed().ok()?;
    let to = req.to_header().ok()?.typed().ok()?;
    Some(InboundInvite {
        call_id,
        request_uri: uri_text(&req.uri),
        request_user: uri_user(&req.uri),
        from_uri: uri_text(&from.uri),
        from_user: uri_user(&from.uri),
        from_display: from
            .display_name
            .map(|d| d.trim().trim_matches('"').to_string())
            .filter(|d| !d.is_empty()),
        to_uri: uri_text(&to.uri),
        sdp: body_text(&req.body),
        source: source.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        transport,
        headers: req
            .headers
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect(),
    })
}

/// Keep a server INVITE transaction that has its final response, to
/// retransmit a non-2xx (UDP) and absorb the ACK.
async fn linger(tx: &mut Transaction) {
    if tx.is_terminated() {
        return;
    }
    let _ = tokio::time::timeout(endpoint::SERVER_INVITE_LINGER, async {
        while tx.receive().await.is_some() {}
    })
    .await;
}

async fn refuse(tx: &mut Transaction, status: StatusCode) {
    endpoint::reply(tx, status, vec![]).await;
    linger(tx).await;
}

/// Our Contact (without user) for a dialog whose INVITE arrived over `transport`: over TLS
/// the TLS listener's address, `sips:` when the Request-URI was `sips:` (RFC 3261 §8.1.1.8)
/// and `sip:...;transport=tls` otherwise; over TCP `;transport=tcp`; else plain.
pub(crate) fn contact_for(
    transport: Option<Transport>,
    sips: bool,
    advertised: std::net::SocketAddr,
    tls_advertised: Option<std::net::SocketAddr>,
) -> Uri {
    let (scheme, addr, params) = match transport {
        Some(Transport::Tls) if sips => {
            (Scheme::Sips, tls_advertised.unwrap_or(advertised), vec![])
        }
        Some(t @ Transport::Tls) => (
            Scheme::Sip,
            tls_advertised.unwrap_or(advertised),
            vec![Param::Transport(t)],
        ),
        Some(t @ Transport::Tcp) => (Scheme::Sip, advertised, vec![Param::Transport(t)]),
        _ => (Scheme::Sip, advertised, vec![]),
    };
    Uri {
        scheme: Some(scheme),
        auth: None,
        host_with_port: addr.into(),
        params,
        headers: vec![],
    }
}

/// An out-of-dialog INVITE: 100 Trying, then a UAS dialog handed to the
/// call layer, whose INVITE transaction this task drives to its end.
pub(crate) async fn handle_invite(inner: &Arc<Inner>, mut tx: Transaction) {
    if let Err(e) = tx.send_trying().await {
        debug!(error = %e, "cannot send 100 Trying");
    }
    let Some(invite) = describe(&tx) else {
        refuse(&mut tx, StatusCode::BadRequest).await;
        return;
    };
    let mut id = match DialogId::try_from(&tx) {
        Ok(id) => id,
        Err(e) => {
            debug!(error = %e, "INVITE without a usable dialog id");
            refuse(&mut tx, StatusCode::BadRequest).await;
            return;
        }
    };
    id.local_tag = make_tag().to_string();

    // Contact: our advertised address, with the called user; over TCP or TLS
    // the caller must keep using that transport for its in-dialog requests.
    let transport = tx.connection.as_ref().map(|c| c.transport());
    let contact = Uri {
        auth: (!invite.request_user.is_empty()).then(|| Auth {
            user: invite.request_user.clone(),
            password: None,
        }),
        ..contact_for(
            transport,
            tx.original.uri.scheme == Some(Scheme::Sips),
            inner.advertised,
            inner.tls_advertised,
        )
    };
    let (state_tx, state_rx) = tokio::sync::mpsc::unbounded_channel();
    let dialog_inner = match DialogInner::new(
        TransactionRole::Server,
        id.clone(),
        tx.original.clone(),
        inner.endpoint.clone(),
        state_tx,
        None,
        Some(contact),
        tx.tu_sender.clone(),
    ) {
        Ok(d) => d,
        Err(e) => {
            // Typically no Contact header.
            debug!(error = %e, "cannot build a dialog for the INVITE");
            refuse(&mut tx, StatusCode::BadRequest).await;
            return;
        }
    };
    *dialog_inner.remote_contact.lock() = tx.original.contact_header().ok().cloned();
    if let Some(written) = crate::wire::contact_udp_uri(&tx.original.headers) {
        // The stack's parse of the caller's Contact dropped `;transport=udp`.
        crate::wire::restore_udp(&mut dialog_inner.remote_uri.lock(), &written);
    }
    if let Some(t @ (Transport::Tcp | Transport::Tls)) = transport {
        let mut remote_uri = dialog_inner.remote_uri.lock();
        if !remote_uri
            .params
            .iter()
            .any(|p| matches!(p, Param::Transport(_)))
        {
            remote_uri.params.push(Param::Transport(t));
        }
    }
    dialog_inner.set_server_connection(tx.connection.clone());
    let dialog_inner = Arc::new(dialog_inner);
    let dialog = InviteDialog::from_inner(dialog_inner.clone());

    let span = tracing::info_span!("sip_inbound", call_id = %id.call_id);
    let core = Arc::new(InboundCore {
        dialog: dialog.clone(),
        call_id: id.call_id.clone(),
        span: span.clone(),
        final_claimed: AtomicBool::new(false),
        bye_started: AtomicBool::new(false),
        bye_pending: AtomicBool::new(false),
        last_local_sdp: Arc::new(Mutex::new(String::new())),
        dialog_inner,
        connection: tx.connection.clone(),
        endpoint: inner.endpoint.clone(),
        refer_slot: Default::default(),
    });
    let handle = InboundHandle { core: core.clone() };
    let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
    {
        let _enter = span.enter();
        info!(
            from = %invite.from_uri,
            to = %invite.request_uri,
            source = %invite.source,
            transport = invite.transport,
            "inbound INVITE"
        );
    }
    let call = IncomingCall::Invite {
        invite,
        leg: InboundLeg {
            events: events_rx,
            handle: handle.clone(),
        },
    };
    match inner.incoming_tx.try_send(call) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            warn!(call_id = %id.call_id, "inbound call queue full; 503");
            refuse(&mut tx, StatusCode::ServiceUnavailable).await;
            return;
        }
        Err(TrySendError::Closed(_)) => {
            debug!(call_id = %id.call_id, "nobody takes inbound calls; 404");
            refuse(&mut tx, StatusCode::Other(404, "No route".into())).await;
            return;
        }
    }

    let key: LegKey = (id.call_id.clone(), id.local_tag.clone());
    inner.register_leg(key.clone(), dialog.clone(), AnyHandle::Inbound(handle));
    let task = InboundTask {
        inner: inner.clone(),
        core,
        key,
        events: events_tx,
        state_rx,
        receiver_gone: false,
        answered: false,
        confirmed: false,
    };
    tokio::spawn(task.run().instrument(span.clone()));

    // Drive the INVITE transaction: our 1xx/final responses (sent through
    // the dialog), the caller's CANCEL and ACK, 2xx retransmissions.
    let mut driver = dialog;
    async {
        if let Err(e) = driver.handle(&mut tx).await {
            debug!(error = %e, "INVITE transaction ended with an error");
        }
        linger(&mut tx).await;
    }
    .instrument(span)
    .await;
}

struct InboundTask {
    inner: Arc<Inner>,
    core: Arc<InboundCore>,
    key: LegKey,
    events: mpsc::Sender<InboundEvent>,
    state_rx: tokio::sync::mpsc::UnboundedReceiver<DialogState>,
    receiver_gone: bool,
    answered: bool,
    confirmed: bool,
}

impl InboundTask {
    async fn emit(&mut self, ev: InboundEvent) {
        if self.receiver_gone {
            return;
        }
        if self.events.send(ev).await.is_err() {
            self.on_receiver_gone();
        }
    }

    fn on_receiver_gone(&mut self) {
        if self.receiver_gone {
            return;
        }
        self.receiver_gone = true;
        warn!("inbound event receiver dropped; hanging the call up");
        InboundHandle {
            core: self.core.clone(),
        }
        .start_hangup();
    }

    async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                _ = self.inner.token.cancelled() => {
                    self.emit(InboundEvent::Terminated).await;
                    break;
                }
                _ = self.events.closed(), if !self.receiver_gone => self.on_receiver_gone(),
                state = self.state_rx.recv() => {
                    let Some(state) = state else {
                        self.emit(InboundEvent::Terminated).await;
                        break;
                    };
                    if self.on_state(state).await {
                        break;
                    }
                }
            }
        }
        self.inner.remove_leg(&self.key);
        // A REFER still waiting for NOTIFYs learns the leg is gone.
        self.core.refer_slot.close();
        debug!("inbound call finished");
    }

    /// Returns true when the dialog is over.
    async fn on_state(&mut self, state: DialogState) -> bool {
        match state {
            DialogState::WaitAck(_, _) => self.answered = true,
            DialogState::Confirmed(_, _) if !self.confirmed => {
                self.confirmed = true;
                info!("confirmed");
                self.emit(InboundEvent::Confirmed).await;
                if self.core.bye_pending.load(Ordering::SeqCst) {
                    InboundHandle {
                        core: self.core.clone(),
                    }
                    .start_bye();
                }
            }
            DialogState::Updated(_, req, handle) => {
                let events = (!self.receiver_gone).then(|| self.events.clone());
                answer_remote_offer(
                    req,
                    handle,
                    self.core.last_local_sdp.clone(),
                    events,
                    |sdp, respond| InboundEvent::RemoteOffer { sdp, respond },
                );
            }
            DialogState::Options(_, _, handle) => {
                tokio::spawn(async move { handle.reply(StatusCode::OK).await.ok() });
            }
            DialogState::Refer(_, req, handle) => crate::refer::decline_incoming(&req, handle),
            DialogState::Notify(_, req, handle) => self.core.refer_slot.on_notify(req, handle),
            DialogState::Info(_, req, handle)
            | DialogState::Message(_, req, handle)
            | DialogState::Publish(_, req, handle) => {
                debug!(method = %req.method, "in-dialog request not supported, 501");
                tokio::spawn(async move { handle.reply(StatusCode::NotImplemented).await.ok() });
            }
            DialogState::Terminated(_, reason) => {
                info!(?reason, "dialog terminated");
                match reason {
                    TerminatedReason::UacCancel => self.emit(InboundEvent::Canceled).await,
                    TerminatedReason::UacBye => self.emit(InboundEvent::RemoteBye).await,
                    TerminatedReason::Timeout => self.emit(InboundEvent::AckTimeout).await,
                    _ => {}
                }
                self.emit(InboundEvent::Terminated).await;
                return true;
            }
            _ => {}
        }
        false
    }
}
