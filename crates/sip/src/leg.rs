//! One outbound leg: building the INVITE, driving its transaction, turning
//! the stack's dialog states into [`LegEvent`]s, and the [`LegHandle`].

use crate::endpoint::{Inner, LegKey};
use crate::request::{self, UriTransport};
use crate::session_timer::{self, Refresher, SessionTimer};
use crate::{LegEvent, OutboundInvite, OutboundLeg, SipError};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogInner, DialogState, TerminatedReason, TransactionHandle};
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::dialog::DialogId;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::uri::ParamsExt;
use rsipstack::sip::{
    Auth, Header, Method, Request, Response, Scheme, SipMessage, StatusCode, StatusCodeKind,
    Transport, Uri,
};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn, Instrument, Span};

/// How long the call layer has to answer a [`LegEvent::RemoteOffer`].
const OFFER_TIMEOUT: Duration = Duration::from_secs(2);
/// Capacity of a leg's event channel.
const EVENT_CAPACITY: usize = 64;

/// Act on a placed leg. Cheap to clone; valid for the leg's whole life
/// (calls after [`LegEvent::Terminated`] are no-ops).
#[derive(Clone)]
pub struct LegHandle {
    core: Arc<LegCore>,
}

impl std::fmt::Debug for LegHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegHandle")
            .field("call_ref", &self.core.call_ref)
            .field("call_id", &self.core.call_id)
            .finish()
    }
}

struct LegCore {
    dialog: InviteDialog,
    /// The same dialog's state, to put back what the stack's parse of the far end's Contact
    /// dropped (`;transport=udp`).
    dialog_inner: Arc<DialogInner>,
    call_ref: String,
    call_id: String,
    span: Span,
    /// A CANCEL was started (at most one per leg).
    cancel_started: AtomicBool,
    /// A BYE was started (at most one per leg).
    bye_started: AtomicBool,
    /// The SDP we last sent (offer, or answer to a remote re-offer).
    last_local_sdp: Arc<Mutex<String>>,
    endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    /// Where the NOTIFYs of our REFER go.
    refer_slot: crate::refer::ReferSlot,
    /// The `Session-Expires` our INVITE asked for.
    session_expires: Option<u32>,
}

pub(crate) fn body_text(body: &[u8]) -> Option<String> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        Some(String::from_utf8_lossy(body).into_owned())
    }
}

pub(crate) fn reason_of(resp: &Response) -> String {
    resp.wire_reason
        .clone()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| resp.status_code.text().to_string())
}

/// Build the INVITE, hand it to the transaction layer and start the leg's
/// task.
pub(crate) fn place(inner: &Arc<Inner>, req: OutboundInvite) -> Result<OutboundLeg, SipError> {
    let target = request::parse_target(&req.target)?;
    let from = request::parse_party("from", &req.from_uri)?;
    let to = request::parse_party("to", &req.to_uri)?;
    let display = req
        .from_display
        .as_deref()
        .and_then(request::quoted_display_name);
    if let Some(c) = &req.credentials {
        request::check_username(&c.username)?;
    }
    let mut extra = vec![Header::Allow(crate::endpoint::ALLOW.into())];
    for (name, value) in &req.extra_headers {
        extra.push(request::extra_header(name, value)?);
    }
    if let Some(se) = req.session_expires.filter(|s| *s > 0) {
        extra.push(Header::Other("Session-Expires".into(), se.to_string()));
        extra.push(Header::Supported("timer".into()));
        if let Some(min_se) = req.min_se.filter(|m| *m > 0) {
            extra.push(Header::Other("Min-SE".into(), min_se.to_string()));
        }
    }

    // Contact: our advertised address, with the caller's user part. Toward a TLS target,
    // when we listen for TLS, our TLS listener (with `;transport=tls`, which the stack keeps
    // as given), so the far end's requests come back over TLS.
    let tls_contact = (target.transport == UriTransport::Tls)
        .then_some(inner.tls_advertised)
        .flatten();
    let contact = Uri {
        scheme: Some(match (tls_contact, target.uri.scheme.as_ref()) {
            (Some(_), Some(Scheme::Sips)) => Scheme::Sips,
            _ => Scheme::Sip,
        }),
        auth: from.auth.as_ref().map(|a| Auth {
            user: a.user.clone(),
            password: None,
        }),
        host_with_port: tls_contact.unwrap_or(inner.advertised).into(),
        params: match tls_contact {
            Some(_) => vec![rsipstack::sip::Param::Transport(Transport::Tls)],
            None => vec![],
        },
        headers: vec![],
    };
    // `sips:` without `;transport=tls` still has to go (and say in Via that
    // it goes) over TLS: name the transport explicitly.
    let destination = (target.transport == UriTransport::Tls
        && target.uri.transport() != Some(&Transport::Tls))
    .then(|| SipAddr {
        r#type: Some(Transport::Tls),
        addr: target.uri.host_with_port.clone(),
    });
    // Where the INVITE goes, resolved the way the transaction will resolve
    // it (see `LegTask::run`).
    let mut next_hop = match &destination {
        Some(d) => d.clone(),
        None => SipAddr::try_from(&target.uri)?,
    };
    if target.transport == UriTransport::Tls && next_hop.addr.port.is_none() {
        next_hop.addr.port = Some(5061.into());
    }
    let sdp = req.sdp_offer.clone();
    let opt = InviteOption {
        caller_display_name: display,
        caller: from,
        callee: target.uri.clone(),
        destination: destination.clone(),
        content_type: Some("application/sdp".into()),
        contact: contact.clone(),
        credential: req.credentials.as_ref().map(|c| Credential {
            username: c.username.clone(),
            password: c.password.clone(),
            realm: None,
            auth_username: None,
        }),
        headers: Some(extra),
        call_id: req.call_id.clone(),
        ..Default::default()
    };

    let mut request = inner.dialog_layer.make_invite_request(&opt)?;
    // The stack uses the request URI as the To URI; ours may differ.
    let to_header: Header = rsipstack::sip::typed::To {
        display_name: None,
        uri: to,
        params: vec![],
    }
    .into();
    for h in request.headers.iter_mut() {
        if matches!(h, Header::To(_)) {
            *h = to_header.clone();
        }
    }
    if sdp.trim().is_empty() {
        request
            .headers
            .retain(|h| !matches!(h, Header::ContentType(_)));
    }
    request.body = sdp.clone().into_bytes();
    request
        .headers
        .unique_push(Header::ContentLength((request.body.len() as u32).into()));

    let key = TransactionKey::from_request(&request, TransactionRole::Client)?;
    let mut tx = Transaction::new_client(key, request.clone(), inner.endpoint.clone(), None);
    if let Some(d) = destination {
        tx.destination = Some(d);
    }
    let id = DialogId::try_from(&tx)?;
    let local_contact = request
        .contact_header()
        .ok()
        .and_then(|c| c.typed().ok().map(|c| c.uri))
        .unwrap_or(contact);
    let dialog_inner = DialogInner::new(
        TransactionRole::Client,
        id.clone(),
        request,
        inner.endpoint.clone(),
        inner.uac_states.sender(),
        opt.credential,
        Some(local_contact),
        inner.uac_dialog_tu.clone(),
    )?;
    let dialog_inner = Arc::new(dialog_inner);
    let dialog = InviteDialog::from_inner(dialog_inner.clone());

    let span = tracing::info_span!(
        "sip_leg",
        call_ref = %req.call_ref,
        call_id = %id.call_id,
    );
    let core = Arc::new(LegCore {
        dialog: dialog.clone(),
        dialog_inner,
        call_ref: req.call_ref.clone(),
        call_id: id.call_id.clone(),
        span: span.clone(),
        cancel_started: AtomicBool::new(false),
        bye_started: AtomicBool::new(false),
        last_local_sdp: Arc::new(Mutex::new(sdp)),
        endpoint: inner.endpoint.clone(),
        refer_slot: Default::default(),
        session_expires: req.session_expires.filter(|s| *s > 0),
    });
    let handle = LegHandle { core: core.clone() };
    let leg_key: LegKey = (id.call_id.clone(), id.local_tag.clone());
    // Open before the INVITE goes out: its states start with it.
    let states = inner.uac_states.open(leg_key.clone());
    inner.register_leg(
        leg_key.clone(),
        dialog,
        crate::endpoint::AnyHandle::Outbound(handle.clone()),
    );

    let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
    {
        let _enter = span.enter();
        info!(target = %req.target, "placing INVITE");
    }
    let task = LegTask {
        inner: inner.clone(),
        core,
        key: leg_key,
        events: events_tx,
        states,
        trying_sent: false,
        receiver_gone: false,
        pending: Vec::new(),
        timer: None,
        refresh: None,
    };
    let final_rx = {
        let _enter = span.enter();
        drive_invite(inner.clone(), task.core.dialog.clone(), tx, next_hop)
    };
    tokio::spawn(task.run(final_rx).instrument(span));
    Ok(OutboundLeg {
        events: events_rx,
        handle,
    })
}

/// Starts the INVITE transaction's driver: its own task, because its receive loop is not
/// cancel-safe and so is never raced against anything else. A function of its own, not part
/// of the leg task, so that the leg task's future (which lives as long as the call) has no
/// room for the transaction. Call within the leg's span.
fn drive_invite(
    inner: Arc<Inner>,
    driver_dialog: InviteDialog,
    mut tx: Transaction,
    next_hop: SipAddr,
) -> oneshot::Receiver<InviteOutcome> {
    let (final_tx, final_rx) = oneshot::channel::<InviteOutcome>();
    tokio::spawn(
        async move {
            let work = async {
                // Resolve and connect first. The stack treats a failed
                // lookup (DNS, TCP refused, TLS handshake) as transient
                // and retries it on timer A until timer B, so a dead TCP
                // peer would take 32 s to fail: fail it now instead.
                let lookup = tokio::time::timeout(
                    inner.transaction_timeout,
                    inner.endpoint.transport_layer.lookup(&next_hop, None),
                )
                .await;
                let reached = match lookup {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("cannot reach {next_hop}: {e}")),
                    Err(_) => Err(format!("cannot reach {next_hop}: timed out")),
                };
                if let Err(why) = reached {
                    warn!(reason = %why, "INVITE not sent");
                    let _ = final_tx.send(Err(why));
                    return;
                }
                let result = driver_dialog.process_invite(&mut tx).await;
                // Its provisional states reach the leg before the final response does.
                inner.uac_states.flush().await;
                let confirmed_tag = match &result {
                    Ok((id, Some(r))) if r.status_code.kind() == StatusCodeKind::Successful => {
                        Some(id.remote_tag.clone())
                    }
                    _ => None,
                };
                let _ = final_tx.send(result.map(|(_, r)| r).map_err(|e| e.to_string()));
                if let Some(confirmed_tag) = confirmed_tag {
                    // RFC 6026 Accepted state (timer M): keep receiving
                    // so retransmitted 2xx are ACKed again (the
                    // transaction does that), and end forked branches.
                    let mut forks: Vec<String> = Vec::new();
                    while let Some(msg) = tx.receive().await {
                        let SipMessage::Response(resp) = msg else {
                            continue;
                        };
                        let Some(tag) = to_tag(&resp) else { continue };
                        if resp.status_code.kind() != StatusCodeKind::Successful
                            || tag == confirmed_tag
                            || forks.contains(&tag)
                        {
                            continue;
                        }
                        forks.push(tag);
                        tokio::spawn(
                            bye_forked_branch(inner.clone(), tx.original.clone(), resp)
                                .in_current_span(),
                        );
                    }
                }
            };
            tokio::select! {
                _ = inner.token.cancelled() => {}
                _ = work => {}
            }
        }
        .in_current_span(),
    );
    final_rx
}

/// A refresh UPDATE's response: its status and `Session-Expires`, or `None` when none came.
type RefreshOutcome = Option<(u16, Option<String>)>;

/// The outcome of the refresh in flight (pending while there is none).
async fn refresh_outcome(
    refresh: &mut Option<oneshot::Receiver<RefreshOutcome>>,
) -> RefreshOutcome {
    match refresh {
        Some(rx) => rx.await.unwrap_or(None),
        None => std::future::pending().await,
    }
}

/// How the INVITE transaction ended: its final response, or why there was
/// none (a local or transport failure).
type InviteOutcome = Result<Option<Response>, String>;

struct LegTask {
    inner: Arc<Inner>,
    core: Arc<LegCore>,
    key: LegKey,
    events: mpsc::Sender<LegEvent>,
    /// This leg's dialog states (dialog_states.rs).
    states: Arc<crate::dialog_states::Inbox>,
    trying_sent: bool,
    receiver_gone: bool,
    /// In-dialog requests seen before `Answered` was emitted.
    pending: Vec<DialogState>,
    /// The session timer in force (RFC 4028), with when to act next and when a session we
    /// could not refresh is given up.
    timer: Option<RunningTimer>,
    /// The outcome of our refresh UPDATE in flight: a one-shot per refresh, made when it is
    /// sent (a channel kept for the call's life would cost every call a block of messages).
    refresh: Option<oneshot::Receiver<RefreshOutcome>>,
}

struct RunningTimer {
    timer: SessionTimer,
    /// Refresh (we refresh) or BYE (the far end refreshes) at this instant.
    next: tokio::time::Instant,
    /// We refresh and a refresh failed: BYE at this instant unless one succeeds.
    give_up: tokio::time::Instant,
    /// A refresh UPDATE is in flight.
    refreshing: bool,
}

impl RunningTimer {
    fn start(timer: SessionTimer) -> RunningTimer {
        let now = tokio::time::Instant::now();
        RunningTimer {
            timer,
            next: now + Duration::from_millis(timer.next_action_after_ms()),
            give_up: now + Duration::from_millis(timer.give_up_after_ms()),
            refreshing: false,
        }
    }
}

/// A header's value by name (case-insensitive; any of `names`, for compact forms).
pub(crate) fn header_value(headers: &rsipstack::sip::Headers, names: &[&str]) -> Option<String> {
    headers.iter().find_map(|h| {
        let text = h.to_string();
        let (n, v) = text.split_once(':')?;
        let n = n.trim();
        names
            .iter()
            .any(|name| n.eq_ignore_ascii_case(name))
            .then(|| v.trim().to_string())
    })
}

const SESSION_EXPIRES: &[&str] = &["Session-Expires", "x"];

/// What the leg does after a dialog state.
enum Next {
    Continue,
    Exit,
}

impl LegTask {
    async fn emit(&mut self, ev: LegEvent) {
        if self.receiver_gone {
            return;
        }
        if self.events.send(ev).await.is_err() {
            self.on_receiver_gone();
        }
    }

    /// Nobody listens any more: do not leave an orphan call.
    fn on_receiver_gone(&mut self) {
        if self.receiver_gone {
            return;
        }
        self.receiver_gone = true;
        warn!("leg event receiver dropped; hanging the leg up");
        LegHandle {
            core: self.core.clone(),
        }
        .start_hangup();
    }

    async fn run(mut self, mut final_rx: oneshot::Receiver<InviteOutcome>) {
        let mut answered = false;
        loop {
            tokio::select! {
                biased;
                _ = self.inner.token.cancelled() => {
                    self.emit(LegEvent::Terminated).await;
                    break;
                }
                _ = self.events.closed(), if !self.receiver_gone => self.on_receiver_gone(),
                _ = sleep_until_next(&self.timer), if self.timer.is_some() => {
                    if let Next::Exit = self.on_timer().await {
                        break;
                    }
                }
                outcome = refresh_outcome(&mut self.refresh), if self.refresh.is_some() => {
                    self.refresh = None;
                    if let Next::Exit = self.on_refreshed(outcome).await {
                        break;
                    }
                }
                state = self.states.recv() => {
                    if let Next::Exit = self.on_state(state, answered).await {
                        break;
                    }
                }
                result = &mut final_rx, if !answered => {
                    // States sent before the final response come first (the driver flushed
                    // them into the inbox before handing the response over).
                    let states = self.states.clone();
                    while let Some(state) = states.try_recv() {
                        self.on_state(state, false).await;
                    }
                    match self.on_final(result).await {
                        Next::Continue => {
                            answered = true;
                            // Requests of the far end that came before we
                            // reported the answer.
                            for state in std::mem::take(&mut self.pending) {
                                self.on_state(state, true).await;
                            }
                        }
                        Next::Exit => break,
                    }
                }
            }
        }
        self.inner.remove_leg(&self.key);
        self.inner.uac_states.close(&self.key);
        // A REFER still waiting for NOTIFYs learns the leg is gone.
        self.core.refer_slot.close();
        debug!("leg finished");
    }

    async fn on_final(&mut self, result: Result<InviteOutcome, oneshot::error::RecvError>) -> Next {
        let resp = match result {
            Ok(Ok(Some(resp))) => resp,
            Ok(Ok(None)) => {
                self.fail(0, "INVITE transaction ended without a final response")
                    .await;
                return Next::Exit;
            }
            Ok(Err(why)) => {
                warn!(reason = %why, "INVITE failed locally");
                self.fail(0, &why).await;
                return Next::Exit;
            }
            Err(_) => {
                self.fail(0, "INVITE task ended").await;
                return Next::Exit;
            }
        };
        let code = resp.status_code.code();
        if code == 422 {
            let asked = self.core.session_expires.unwrap_or(0);
            let min_se = header_value(&resp.headers, &["Min-SE"])
                .as_deref()
                .and_then(session_timer::parse_min_se);
            if let Some(min_se) = min_se.filter(|m| asked > 0 && *m > asked) {
                info!(
                    asked,
                    min_se, "422 Session Interval Too Small; the call layer retries"
                );
                let call_id = self.core.call_id.clone();
                self.emit(LegEvent::IntervalTooSmall { min_se, call_id })
                    .await;
                return Next::Exit;
            }
        }
        if resp.status_code.kind() != StatusCodeKind::Successful {
            info!(code, "INVITE failed");
            let reason = reason_of(&resp);
            self.fail(code, &reason).await;
            return Next::Exit;
        }
        info!(code, "answered");
        if let Some(written) = crate::wire::contact_udp_uri(&resp.headers) {
            let mut target = self.core.dialog_inner.remote_uri.lock();
            crate::wire::restore_udp(&mut target, &written);
        }
        if self.core.session_expires.is_some() {
            let se = header_value(&resp.headers, SESSION_EXPIRES);
            self.timer = session_timer::from_answer(se.as_deref()).map(RunningTimer::start);
            match &self.timer {
                Some(t) => info!(
                    interval = t.timer.interval_secs,
                    refresher = ?t.timer.refresher,
                    "session timer"
                ),
                None => info!("the answer has no Session-Expires: no session timer"),
            }
        }
        self.emit(LegEvent::Answered {
            sdp: body_text(&resp.body),
        })
        .await;
        // The dialog may already be over: a CANCEL crossed the 200 (the
        // stack ACKs and BYEs it), or the far end's BYE or our hangup won
        // the race with this event.
        if let DialogState::Terminated(_, reason) = self.core.dialog.state() {
            debug!(?reason, "dialog ended as it was answered");
            if matches!(reason, TerminatedReason::UasBye) {
                self.emit(LegEvent::RemoteBye).await;
            }
            self.emit(LegEvent::Terminated).await;
            return Next::Exit;
        }
        Next::Continue
    }

    async fn fail(&mut self, code: u16, reason: &str) {
        self.emit(LegEvent::Failed {
            code,
            reason: reason.to_string(),
        })
        .await;
        self.emit(LegEvent::Terminated).await;
    }

    async fn on_state(&mut self, state: DialogState, answered: bool) -> Next {
        let in_dialog_request = matches!(
            state,
            DialogState::Updated(..)
                | DialogState::Options(..)
                | DialogState::Info(..)
                | DialogState::Refer(..)
                | DialogState::Message(..)
                | DialogState::Notify(..)
                | DialogState::Publish(..)
        );
        if in_dialog_request && !answered {
            // The dialog is confirmed but `Answered` is not out yet: keep
            // the events in order.
            self.pending.push(state);
            return Next::Continue;
        }
        match state {
            DialogState::Trying(_) if !answered && !self.trying_sent => {
                self.trying_sent = true;
                self.emit(LegEvent::Trying).await;
            }
            DialogState::Early(_, resp) if !answered => {
                let code = resp.status_code.code();
                debug!(code, "provisional response");
                self.emit(LegEvent::Ringing {
                    code,
                    sdp: body_text(&resp.body),
                })
                .await;
            }
            DialogState::Updated(_, req, handle) => {
                self.on_far_end_refresh(&req);
                self.remote_offer(req, handle)
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
            // During setup the final response (not the state) decides.
            DialogState::Terminated(_, reason) if answered => {
                info!(?reason, "dialog terminated");
                if matches!(reason, TerminatedReason::UasBye) {
                    self.emit(LegEvent::RemoteBye).await;
                }
                self.emit(LegEvent::Terminated).await;
                return Next::Exit;
            }
            _ => {}
        }
        Next::Continue
    }

    /// A re-INVITE or UPDATE of the far end refreshes the session (RFC 4028 §10): the
    /// interval starts again; a `Session-Expires` in it may change the interval and the
    /// refresher (`refresher=uac` is the far end, who sent it).
    fn on_far_end_refresh(&mut self, req: &Request) {
        let Some(running) = &self.timer else { return };
        let mut timer = running.timer;
        if let Some((secs, refresher)) = header_value(&req.headers, SESSION_EXPIRES)
            .as_deref()
            .and_then(session_timer::parse_session_expires)
        {
            timer.interval_secs = secs;
            timer.refresher = match refresher.as_deref() {
                Some("uas") => Refresher::Us,
                _ => Refresher::FarEnd,
            };
        }
        debug!(
            interval = timer.interval_secs,
            "session refreshed by the far end"
        );
        self.timer = Some(RunningTimer::start(timer));
    }

    /// The session timer's instant came: refresh, or end a session nobody refreshed.
    async fn on_timer(&mut self) -> Next {
        let Some(running) = self.timer.as_mut() else {
            return Next::Continue;
        };
        let now = tokio::time::Instant::now();
        let expired = match running.timer.refresher {
            Refresher::FarEnd => true,
            Refresher::Us => now >= running.give_up,
        };
        if expired {
            warn!(
                interval = running.timer.interval_secs,
                refresher = ?running.timer.refresher,
                "session expired without a refresh; sending BYE"
            );
            self.timer = None;
            self.emit(LegEvent::SessionExpired).await;
            LegHandle {
                core: self.core.clone(),
            }
            .start_bye();
            return Next::Continue;
        }
        // Nothing more to do until the refresh's outcome or the give-up instant.
        running.next = running.give_up;
        if running.refreshing {
            return Next::Continue;
        }
        running.refreshing = true;
        let headers = vec![
            Header::Other("Session-Expires".into(), running.timer.refresh_header()),
            Header::Supported("timer".into()),
        ];
        let dialog = self.core.dialog.clone();
        let (tx, rx) = oneshot::channel();
        self.refresh = Some(rx);
        info!(
            interval = running.timer.interval_secs,
            "refreshing the session (UPDATE)"
        );
        tokio::spawn(
            async move {
                let outcome = match dialog.update(Some(headers), None).await {
                    Ok(Some(resp)) => Some((
                        resp.status_code.code(),
                        header_value(&resp.headers, SESSION_EXPIRES),
                    )),
                    Ok(None) | Err(_) => None,
                };
                tx.send(outcome).ok();
            }
            .in_current_span(),
        );
        Next::Continue
    }

    /// Our refresh UPDATE's outcome.
    async fn on_refreshed(&mut self, outcome: Option<(u16, Option<String>)>) -> Next {
        let Some(running) = self.timer.as_mut() else {
            return Next::Continue;
        };
        running.refreshing = false;
        match outcome {
            Some((code, se)) if (200..300).contains(&code) => {
                // The 2xx may name another interval (or hand the refreshing to the far end).
                let timer = session_timer::from_answer(se.as_deref()).unwrap_or(running.timer);
                debug!(interval = timer.interval_secs, "session refreshed");
                self.timer = Some(RunningTimer::start(timer));
            }
            other => {
                let code = other.map(|(c, _)| c);
                if session_timer::refresh_failure_ends_session(code) {
                    warn!(?code, "session refresh failed; ending the session");
                    self.timer = None;
                    self.emit(LegEvent::SessionExpired).await;
                    LegHandle {
                        core: self.core.clone(),
                    }
                    .start_bye();
                } else {
                    // Leave it to expire (the give-up instant is already the next one).
                    warn!(?code, "session refresh refused; the session will expire");
                }
            }
        }
        Next::Continue
    }

    /// A re-INVITE or UPDATE from the far end: ask the call layer.
    fn remote_offer(&self, req: Request, handle: TransactionHandle) {
        let events = (!self.receiver_gone).then(|| self.events.clone());
        answer_remote_offer(
            req,
            handle,
            self.core.last_local_sdp.clone(),
            events,
            |sdp, respond| LegEvent::RemoteOffer { sdp, respond },
        );
    }
}

/// Our re-INVITE with a new offer `sdp` on a confirmed dialog (either direction), and what
/// the far end made of it. The stack ACKs a 2xx; a non-2xx leaves the session as it was
/// (RFC 3261 §14.1).
pub(crate) async fn send_reoffer(
    dialog: &InviteDialog,
    last_local_sdp: &Mutex<String>,
    sdp: String,
) -> Result<crate::Reoffer, SipError> {
    if !dialog.state().is_confirmed() {
        return Err(SipError::InvalidState(
            "a re-INVITE needs an answered, live call".into(),
        ));
    }
    info!("sending a re-INVITE");
    let headers = vec![Header::ContentType("application/sdp".into())];
    let resp = dialog
        .reinvite(Some(headers), Some(sdp.clone().into_bytes()))
        .await?;
    let Some(resp) = resp else {
        return Err(SipError::Stack("the re-INVITE got no response".into()));
    };
    let code = resp.status_code.code();
    if resp.status_code.kind() != StatusCodeKind::Successful {
        info!(code, "re-INVITE refused");
        return Ok(crate::Reoffer::Refused { code });
    }
    if let Ok(mut l) = last_local_sdp.lock() {
        *l = sdp;
    }
    match body_text(&resp.body) {
        Some(answer) => Ok(crate::Reoffer::Accepted { answer }),
        // A 2xx without an answer breaks offer/answer; the far end keeps its old view.
        None => Ok(crate::Reoffer::Refused { code }),
    }
}

/// A re-INVITE or UPDATE from the far end (either leg direction): ask the
/// call layer through `events` (built by `make`), answer within
/// [`OFFER_TIMEOUT`] whatever happens.
pub(crate) fn answer_remote_offer<E: Send + 'static>(
    req: Request,
    handle: TransactionHandle,
    last_local_sdp: Arc<Mutex<String>>,
    events: Option<mpsc::Sender<E>>,
    make: fn(Option<String>, oneshot::Sender<Result<String, u16>>) -> E,
) {
    let sdp = body_text(&req.body);
    let method = req.method;
    // RFC 4028 §9: a 2xx to a refresh that asked for a session timer names it too.
    let timer_headers: Vec<Header> =
        session_timer::echo_for_refresh(header_value(&req.headers, SESSION_EXPIRES).as_deref())
            .map(|se| {
                vec![
                    Header::Other("Session-Expires".into(), se),
                    Header::Other("Require".into(), "timer".into()),
                ]
            })
            .unwrap_or_default();
    tokio::spawn(
        async move {
            if method == Method::Update && sdp.is_none() {
                // A session refresh without an offer: nothing to negotiate.
                if timer_headers.is_empty() {
                    handle.reply(StatusCode::OK).await.ok();
                } else {
                    handle
                        .respond(StatusCode::OK, Some(timer_headers), None)
                        .await
                        .ok();
                }
                return;
            }
            info!(%method, has_sdp = sdp.is_some(), "remote offer");
            let (respond, answer) = oneshot::channel();
            let asked = async {
                let events = events?;
                events.send(make(sdp, respond)).await.ok()?;
                answer.await.ok()
            };
            let outcome = tokio::time::timeout(OFFER_TIMEOUT, asked)
                .await
                .ok()
                .flatten();
            let last = last_local_sdp.lock().map(|s| s.clone()).unwrap_or_default();
            let (status, body) = match outcome {
                Some(Ok(answer)) => {
                    if let Ok(mut l) = last_local_sdp.lock() {
                        l.clone_from(&answer);
                    }
                    (StatusCode::OK, answer)
                }
                Some(Err(code)) if (300..700).contains(&code) => {
                    (StatusCode::from(code), String::new())
                }
                Some(Err(code)) => {
                    warn!(
                        code,
                        "RemoteOffer rejected with a non-error code; sending 500"
                    );
                    (StatusCode::ServerInternalError, String::new())
                }
                None => {
                    debug!("no answer to the remote offer in time; reusing the last local SDP");
                    (StatusCode::OK, last)
                }
            };
            let code = status.code();
            let ok = status == StatusCode::OK;
            let r = if body.is_empty() {
                if ok && !timer_headers.is_empty() {
                    handle.respond(status, Some(timer_headers), None).await
                } else {
                    handle.reply(status).await
                }
            } else {
                let mut headers = vec![Header::ContentType("application/sdp".into())];
                if ok {
                    headers.extend(timer_headers);
                }
                handle
                    .respond(status, Some(headers), Some(body.into_bytes()))
                    .await
            };
            match r {
                Ok(()) => debug!(code, "answered remote offer"),
                Err(_) => warn!(code, "could not answer the remote offer (transaction gone)"),
            }
        }
        .in_current_span(),
    );
}

async fn sleep_until_next(timer: &Option<RunningTimer>) {
    match timer {
        Some(t) => tokio::time::sleep_until(t.next).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn to_tag(resp: &Response) -> Option<String> {
    resp.to_header()
        .ok()?
        .tag()
        .ok()
        .flatten()
        .map(|t| t.value().to_string())
}

/// A second 2xx with another To tag: the INVITE forked and another branch
/// answered too. The transaction already ACKed it; we keep one session, so
/// that dialog is ended with a BYE (RFC 3261 §13.2.2.4). The stack does this
/// only inside `DialogLayer::do_invite`, which we do not use (it cannot send
/// a To URI different from the request URI), so we build a throwaway
/// confirmed dialog for the branch and let it send the BYE.
async fn bye_forked_branch(inner: Arc<Inner>, invite: Request, resp: Response) {
    let result: Result<(), SipError> = async {
        let call_id = invite.call_id_header()?.value().to_string();
        let local_tag = invite
            .from_header()?
            .tag()?
            .map(|t| t.value().to_string())
            .unwrap_or_default();
        let remote_tag = to_tag(&resp).unwrap_or_default();
        let id = DialogId {
            call_id,
            local_tag,
            remote_tag: remote_tag.clone(),
        };
        let contact = resp
            .typed_contact_headers()?
            .first()
            .map(|c| c.uri.clone())
            .ok_or_else(|| SipError::Stack("forked 2xx without Contact".into()))?;
        let (state_tx, _) = tokio::sync::mpsc::unbounded_channel();
        let dialog_inner = DialogInner::new(
            TransactionRole::Client,
            id.clone(),
            invite,
            inner.endpoint.clone(),
            state_tx,
            None,
            None,
            inner.uac_dialog_tu.clone(),
        )?;
        dialog_inner.set_remote_target(contact, resp.contact_header().ok().cloned());
        let mut routes: Vec<rsipstack::sip::Route> = resp
            .typed_record_route_headers()
            .unwrap_or_default()
            .into_iter()
            .map(|rr| rsipstack::sip::Route::new(rr.to_string()))
            .collect();
        routes.reverse();
        *dialog_inner.route_set.lock() = routes;
        *dialog_inner.state.lock() = DialogState::Confirmed(id, resp);
        info!(tag = %remote_tag, "a forked branch answered too; ending it with BYE");
        InviteDialog::from_inner(Arc::new(dialog_inner))
            .bye()
            .await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        warn!(error = %e, "could not end a forked branch");
    }
}

impl LegHandle {
    /// The dialog once answered, to persist so a restart can end it ([`crate::SavedDialog`]);
    /// `None` before the answer and after the end.
    pub fn saved_dialog(&self) -> Option<crate::SavedDialog> {
        crate::SavedDialog::of(&self.core.dialog)
    }

    /// Before the final response: CANCEL (same branch as the INVITE); the
    /// far end's 487 arrives as `Failed { code: 487 }`. Before any response
    /// at all the CANCEL waits for the first provisional (RFC 3261 §9.1);
    /// if none ever comes the INVITE ends with timer B (`Failed { 408 }`).
    ///
    /// If a 200 crosses the CANCEL, the stack ACKs it and sends BYE; the
    /// leg reports `Answered` then `Terminated`. On an answered leg this is
    /// [`LegHandle::hangup`]. Returns once the request is started.
    pub async fn cancel(&self) -> Result<(), SipError> {
        match self.core.dialog.state() {
            DialogState::Calling(_) | DialogState::Trying(_) | DialogState::Early(_, _) => {
                if self.core.cancel_started.swap(true, Ordering::SeqCst) {
                    return Ok(());
                }
                let dialog = self.core.dialog.clone();
                tokio::spawn(
                    async move {
                        info!("cancelling");
                        if let Err(e) = dialog.cancel().await {
                            // 481 to the CANCEL: the final response won.
                            debug!(error = %e, "CANCEL not accepted");
                        }
                    }
                    .instrument(self.core.span.clone()),
                );
                Ok(())
            }
            DialogState::Terminated(_, _) => Ok(()),
            _ => {
                self.start_bye();
                Ok(())
            }
        }
    }

    /// After answer: BYE (retransmitted per timers E/F on UDP); the leg then
    /// reports `Terminated`. Before answer: the same as
    /// [`LegHandle::cancel`]. After the end: no-op. Returns once the request
    /// is started.
    pub async fn hangup(&self) -> Result<(), SipError> {
        match self.core.dialog.state() {
            DialogState::Calling(_) | DialogState::Trying(_) | DialogState::Early(_, _) => {
                self.cancel().await
            }
            DialogState::Terminated(_, _) => Ok(()),
            _ => {
                self.start_bye();
                Ok(())
            }
        }
    }

    fn start_hangup(&self) {
        let handle = self.clone();
        tokio::spawn(async move { handle.hangup().await.ok() });
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

    /// Transfer the far end by REFER and follow its NOTIFYs to the outcome (refer.rs). Errors
    /// only when the REFER cannot be sent (bad URI, leg not answered, one already running);
    /// a refused or failed transfer is an `Ok` outcome with `success: false`.
    pub async fn refer(&self, req: crate::ReferRequest) -> Result<crate::ReferOutcome, SipError> {
        let d = crate::refer::ReferDialog {
            real: &self.core.dialog_inner,
            // Our INVITE (the dialog keeps it; a REFER's copy of the dialog is built from it).
            initial: self.core.dialog.initial_request(),
            endpoint: self.core.endpoint.clone(),
            connection: None,
            slot: &self.core.refer_slot,
        };
        crate::refer::refer(d, req)
            .instrument(self.core.span.clone())
            .await
    }

    /// Send a re-INVITE with a new offer (a switch to T.38 fax and back) and wait for the
    /// far end's answer ([`send_reoffer`]).
    pub async fn reoffer(&self, sdp: String) -> Result<crate::Reoffer, SipError> {
        send_reoffer(&self.core.dialog, &self.core.last_local_sdp, sdp)
            .instrument(self.core.span.clone())
            .await
    }

    /// Send one DTMF digit as SIP INFO (`application/dtmf-relay`, 160 ms) and
    /// wait for the far end's final response.
    pub async fn send_info_dtmf(&self, digit: char) -> Result<(), SipError> {
        let digit = digit.to_ascii_uppercase();
        if !matches!(digit, '0'..='9' | '*' | '#' | 'A'..='D') {
            return Err(SipError::InvalidState(format!(
                "{digit:?} is not a DTMF digit"
            )));
        }
        if !self.core.dialog.state().is_confirmed() {
            return Err(SipError::InvalidState(
                "INFO needs an answered, live leg".into(),
            ));
        }
        let body = format!("Signal={digit}\r\nDuration=160\r\n").into_bytes();
        let resp = self
            .core
            .dialog
            .info(
                Some(vec![Header::ContentType("application/dtmf-relay".into())]),
                Some(body),
            )
            .instrument(self.core.span.clone())
            .await?;
        match resp {
            Some(r) if r.status_code.kind() == StatusCodeKind::Successful => Ok(()),
            Some(r) => Err(SipError::Rejected {
                code: r.status_code.code(),
                reason: reason_of(&r),
            }),
            None => Err(SipError::Stack("INFO got no response".into())),
        }
    }
}
