//! Blind transfer by REFER (RFC 3515) on an answered leg, either direction, and what we do
//! with a REFER the far end sends us.
//!
//! Sending: the REFER goes in the leg's dialog (`Refer-To: <to>`, `Referred-By: <from>` when
//! given). The stack's in-dialog request path answers a 401/407 only with the dialog's own
//! credentials and *terminates the dialog* when it cannot answer, so the REFER is sent through
//! a throwaway copy of the dialog that carries the REFER's credentials (same Call-ID, tags,
//! remote target, route set, next CSeq); the real dialog's CSeq is advanced past it after. The
//! implicit subscription's NOTIFYs arrive in the real dialog: the leg task hands those with
//! `Event: refer` to the waiting REFER ([`ReferSlot`]) and answers each 200. The outcome is
//! decided by the pure [`ReferTracker`]: a non-2xx to the REFER fails; then the `message/sipfrag`
//! of each NOTIFY: 1xx goes on, 2xx succeeds, 3xx-6xx fails; a subscription terminated without
//! a final status, or no final NOTIFY in time, fails.
//!
//! Receiving: a REFER from the far end is declined (`603 Decline` with a `Warning` saying
//! so): this node does not act on transfers its peers ask for (docs/connect.md, "REFER").
//! A NOTIFY that no REFER of ours waits for is answered `481`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogInner, DialogState, TransactionHandle};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode, StatusCodeKind};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::SipConnection;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::{Credentials, SipError};

/// What the call layer asks for.
#[derive(Debug, Clone)]
pub struct ReferRequest {
    /// The `Refer-To` target: a bare `sip:`/`sips:` URI.
    pub refer_to: String,
    /// `Referred-By` (a bare `sip:`/`sips:` URI), when given.
    pub referred_by: Option<String>,
    /// Used on 401/407 only.
    pub credentials: Option<Credentials>,
    /// How long to wait, after the REFER is accepted, for the NOTIFY with a final status.
    pub notify_timeout: Duration,
}

/// How a REFER ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferOutcome {
    /// The transferee reported (by NOTIFY) that the target answered 2xx.
    pub success: bool,
    /// The final response to our REFER (`202`), when one came.
    pub response_code: Option<u16>,
    /// The last status the NOTIFYs reported (`100`, `180`, `200`, `486` ...).
    pub notify_code: Option<u16>,
    /// Why it failed, or "transferred".
    pub reason: String,
}

/// Where a leg's NOTIFYs of the implicit refer subscription go while a REFER waits.
#[derive(Clone, Default)]
pub(crate) struct ReferSlot(Arc<Mutex<Option<mpsc::UnboundedSender<NotifyStatus>>>>);

/// One NOTIFY of the refer subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotifyStatus {
    /// The status line of its `message/sipfrag` body (`None` when it has none we can read).
    pub code: Option<u16>,
    /// `Subscription-State: terminated`.
    pub terminated: bool,
}

impl ReferSlot {
    fn open(&self) -> Option<mpsc::UnboundedReceiver<NotifyStatus>> {
        let mut slot = self.0.lock().ok()?;
        if slot.as_ref().is_some_and(|tx| !tx.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        *slot = Some(tx);
        Some(rx)
    }

    pub(crate) fn close(&self) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = None;
        }
    }

    /// An in-dialog NOTIFY: handed to the waiting REFER (200) or refused (481).
    pub(crate) fn on_notify(&self, req: Request, handle: TransactionHandle) {
        let is_refer = header(&req, "Event")
            .or_else(|| header(&req, "o"))
            .is_some_and(|e| event_is_refer(&e));
        let waiting = self
            .0
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .filter(|tx| !tx.is_closed());
        let status = NotifyStatus {
            code: parse_sipfrag(&req.body),
            terminated: header(&req, "Subscription-State")
                .is_some_and(|s| subscription_terminated(&s)),
        };
        let reply = match (is_refer, waiting) {
            (true, Some(tx)) => {
                debug!(code = ?status.code, terminated = status.terminated, "refer NOTIFY");
                let _ = tx.send(status);
                StatusCode::OK
            }
            _ => {
                debug!("NOTIFY without a subscription of ours, 481");
                StatusCode::CallTransactionDoesNotExist
            }
        };
        tokio::spawn(async move { handle.reply(reply).await.ok() });
    }
}

/// A REFER from the far end: declined, with the reason in a `Warning`.
pub(crate) fn decline_incoming(req: &Request, handle: TransactionHandle) {
    let refer_to = header(req, "Refer-To").or_else(|| header(req, "r"));
    info!(refer_to = ?refer_to, "the far end asks for a transfer by REFER; 603");
    tokio::spawn(async move {
        let warning = Header::Other(
            "Warning".into(),
            "399 dialtone \"transfer by REFER is not accepted here\"".into(),
        );
        handle
            .respond(StatusCode::Decline, Some(vec![warning]), None)
            .await
            .ok()
    });
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers.iter().find_map(|h| {
        let text = h.to_string();
        let (n, v) = text.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// `Event: refer` (or `refer;id=7`).
pub(crate) fn event_is_refer(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("refer"))
}

/// `Subscription-State: terminated;reason=noresource`.
pub(crate) fn subscription_terminated(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("terminated"))
}

/// The status code of a `message/sipfrag` body's status line (`SIP/2.0 180 Ringing`).
pub(crate) fn parse_sipfrag(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code: u16 = parts.next()?.parse().ok()?;
    (100..700).contains(&code).then_some(code)
}

/// The REFER's progress, told each response and NOTIFY; says when it is over. Pure.
#[derive(Debug, Default)]
pub(crate) struct ReferTracker {
    response_code: Option<u16>,
    notify_code: Option<u16>,
}

impl ReferTracker {
    /// The final response to the REFER: a failure ends it.
    pub(crate) fn on_response(&mut self, code: u16, reason: &str) -> Option<ReferOutcome> {
        self.response_code = Some(code);
        (!(200..300).contains(&code)).then(|| self.end(false, format!("REFER {code} {reason}")))
    }

    /// A NOTIFY: a final sipfrag status or the end of the subscription ends it.
    pub(crate) fn on_notify(&mut self, n: NotifyStatus) -> Option<ReferOutcome> {
        if let Some(code) = n.code {
            self.notify_code = Some(code);
            if (200..300).contains(&code) {
                return Some(self.end(true, "transferred".into()));
            }
            if code >= 300 {
                return Some(self.end(false, format!("the transfer target answered {code}")));
            }
        }
        n.terminated.then(|| {
            self.end(
                false,
                "the subscription ended without a final status".into(),
            )
        })
    }

    /// Whatever else ended the wait (timeout, the leg ended, no response at all).
    pub(crate) fn give_up(&self, why: &str) -> ReferOutcome {
        self.end(false, why.into())
    }

    fn end(&self, success: bool, reason: String) -> ReferOutcome {
        ReferOutcome {
            success,
            response_code: self.response_code,
            notify_code: self.notify_code,
            reason,
        }
    }
}

/// The parts of a leg a REFER needs.
pub(crate) struct ReferDialog<'a> {
    pub real: &'a Arc<DialogInner>,
    pub initial: Request,
    pub endpoint: EndpointInnerRef,
    pub connection: Option<SipConnection>,
    pub slot: &'a ReferSlot,
}

/// Sends the REFER and follows it to its outcome. Errors are for a REFER that could not be
/// built or sent at all (bad URI, leg not answered).
pub(crate) async fn refer(d: ReferDialog<'_>, req: ReferRequest) -> Result<ReferOutcome, SipError> {
    let to = crate::request::parse_sip_uri("refer_to", &req.refer_to)?;
    let mut headers = Vec::new();
    if let Some(by) = &req.referred_by {
        let by = crate::request::parse_sip_uri("referred_by", by)?;
        headers.push(Header::Other("Referred-By".into(), format!("<{by}>")));
    }
    if !d.real.is_confirmed() {
        return Err(SipError::InvalidState("REFER needs an answered leg".into()));
    }
    let Some(mut notifies) = d.slot.open() else {
        return Err(SipError::InvalidState(
            "a REFER is already in progress".into(),
        ));
    };
    let result = async {
        let (copy, mut states) = throwaway(&d, req.credentials.as_ref())?;
        let dialog = InviteDialog::from_inner(copy.clone());
        info!(refer_to = %to, "sending REFER");
        let sent = dialog
            .refer(
                rsipstack::sip::headers::ReferTo::new(format!("<{to}>")),
                Some(headers),
                None,
            )
            .await;
        // The copy's CSeq moved on: so does the real dialog's.
        let used = copy.local_seq.load(Ordering::SeqCst);
        d.real.local_seq.fetch_max(used, Ordering::SeqCst);
        let mut tracker = ReferTracker::default();
        match sent? {
            Some(resp) => {
                let code = resp.status_code.code();
                info!(code, "REFER answered");
                if let Some(done) = tracker.on_response(code, &crate::leg::reason_of(&resp)) {
                    return Ok(done);
                }
                if resp.status_code.kind() != StatusCodeKind::Successful {
                    return Ok(tracker.give_up("REFER refused"));
                }
            }
            None => {
                // The copy records a challenge it could not answer as its own end.
                let auth = std::iter::from_fn(|| states.try_recv().ok()).any(|s| {
                    matches!(
                        s,
                        DialogState::Terminated(
                            _,
                            rsipstack::dialog::dialog::TerminatedReason::ProxyAuthRequired
                        )
                    )
                });
                let why = if auth {
                    "REFER challenged and the credentials were refused or missing"
                } else {
                    "no response to the REFER"
                };
                return Ok(tracker.give_up(why));
            }
        }
        let wait = async {
            while let Some(n) = notifies.recv().await {
                if let Some(done) = tracker.on_notify(n) {
                    return Some(done);
                }
            }
            None
        };
        match tokio::time::timeout(req.notify_timeout, wait).await {
            Ok(Some(done)) => Ok(done),
            Ok(None) => Ok(tracker.give_up("the leg ended")),
            Err(_) => Ok(tracker.give_up("no final NOTIFY in time")),
        }
    }
    .await;
    d.slot.close();
    if let Ok(o) = &result {
        info!(success = o.success, reason = %o.reason, "REFER finished");
    } else {
        warn!("REFER could not be sent");
    }
    result
}

/// A copy of the confirmed dialog that carries the REFER's credentials; its state channel
/// tells whether a challenge ended it.
fn throwaway(
    d: &ReferDialog<'_>,
    credentials: Option<&Credentials>,
) -> Result<
    (
        Arc<DialogInner>,
        tokio::sync::mpsc::UnboundedReceiver<DialogState>,
    ),
    SipError,
> {
    let real = d.real;
    let id = real.id.lock().clone();
    let (state_tx, state_rx) = tokio::sync::mpsc::unbounded_channel();
    let copy = DialogInner::new(
        real.role,
        id.clone(),
        d.initial.clone(),
        d.endpoint.clone(),
        state_tx,
        credentials.map(|c| Credential {
            username: c.username.clone(),
            password: c.password.clone(),
            realm: None,
            auth_username: None,
        }),
        real.local_contact.clone(),
        rsipstack::transaction::transaction::transaction_event_sender_noop(),
    )?;
    *copy.remote_uri.lock() = real.remote_uri.lock().clone();
    *copy.to.lock() = real.to.lock().clone();
    *copy.route_set.lock() = real.route_set.lock().clone();
    *copy.remote_contact.lock() = real.remote_contact.lock().clone();
    copy.local_seq
        .store(real.local_seq.load(Ordering::SeqCst), Ordering::SeqCst);
    if d.connection.is_some() {
        copy.set_server_connection(d.connection.clone());
    }
    *copy.state.lock() = DialogState::Confirmed(id, Default::default());
    Ok((Arc::new(copy), state_rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(parse_sipfrag(b"SIP/2.0 100 Trying\r\n"), Some(100));
        assert_eq!(parse_sipfrag(b"\r\nSIP/2.0 200 OK"), Some(200));
        assert_eq!(
            parse_sipfrag(b"sip/2.0 486 Busy Here\r\nVia: x\r\n"),
            Some(486)
        );
        assert_eq!(parse_sipfrag(b"SIP/2.0 99 Low"), None);
        assert_eq!(parse_sipfrag(b"INVITE sip:a@b SIP/2.0"), None);
        assert_eq!(parse_sipfrag(b""), None);
        assert_eq!(parse_sipfrag(&[0xff, 0xfe]), None);
    }

    #[test]
    fn event_and_subscription_state() {
        assert!(event_is_refer("refer"));
        assert!(event_is_refer("Refer;id=93"));
        assert!(!event_is_refer("presence"));
        assert!(subscription_terminated("terminated;reason=noresource"));
        assert!(!subscription_terminated("active;expires=60"));
    }

    fn n(code: Option<u16>, terminated: bool) -> NotifyStatus {
        NotifyStatus { code, terminated }
    }

    #[test]
    fn accepted_then_trying_ringing_ok_is_success() {
        let mut t = ReferTracker::default();
        assert_eq!(t.on_response(202, "Accepted"), None);
        assert_eq!(t.on_notify(n(Some(100), false)), None);
        assert_eq!(t.on_notify(n(Some(180), false)), None);
        let done = t.on_notify(n(Some(200), true)).unwrap();
        assert!(done.success);
        assert_eq!(done.response_code, Some(202));
        assert_eq!(done.notify_code, Some(200));
    }

    #[test]
    fn refused_refer_and_failed_target() {
        let mut t = ReferTracker::default();
        let done = t.on_response(603, "Decline").unwrap();
        assert!(!done.success);
        assert_eq!((done.response_code, done.notify_code), (Some(603), None));

        let mut t = ReferTracker::default();
        t.on_response(202, "Accepted");
        let done = t.on_notify(n(Some(486), true)).unwrap();
        assert!(!done.success);
        assert_eq!(done.notify_code, Some(486));
    }

    #[test]
    fn subscription_ended_without_final_or_timeout_fails() {
        let mut t = ReferTracker::default();
        t.on_response(202, "Accepted");
        assert_eq!(t.on_notify(n(Some(100), false)), None);
        let done = t.on_notify(n(None, true)).unwrap();
        assert!(!done.success);
        assert_eq!(done.notify_code, Some(100));
        let late = t.give_up("no final NOTIFY in time");
        assert!(!late.success);
        assert_eq!(late.response_code, Some(202));
    }
}
