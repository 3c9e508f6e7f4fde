//! The outbound call state machine: pure, told the time.
//!
//! The call actor feeds it [`CallInput`]s (SIP outcomes, API commands, timer expiries) with `now`
//! in milliseconds since the Unix epoch, then drains [`CallOutput`]s and executes them. It owns
//! the status lifecycle (calling-api.md §4.3, ambiguity register A7), the end-reason mapping from
//! SIP codes, the ring timeout, and which state webhooks fire.

use std::collections::VecDeque;

use crate::status::{CallStatus, EndReason};

/// What the actor tells the core.
#[derive(Debug, Clone, PartialEq)]
pub enum CallInput {
    /// The actor picked the call up; it will now place the INVITE.
    Start,
    /// An inbound call: the caller's INVITE is here and we are ringing it. The caller decides
    /// how long it rings (no ring timer); the call answers when we send 200 and get the ACK.
    Offered,
    /// The INVITE went out.
    InviteSent,
    /// 180 or 183 arrived.
    Ringing,
    /// 200 OK arrived, was ACKed and its SDP negotiated.
    Answered,
    /// 200 OK arrived and was ACKed, but its SDP is unusable (none, no common codec): the call
    /// never counts as answered; we hang the leg up and the call fails.
    AnsweredUnusable { detail: String },
    /// A final non-2xx response; `code` 0 means no response at all (transport failure).
    Rejected { code: u16 },
    /// The far end sent BYE.
    RemoteHangup,
    /// `calling.end` / `update status=completed` / SWML `hangup`.
    Hangup { reason: EndReason },
    /// `update status=canceled` before answer.
    Cancel,
    /// The call cannot go on (no common codec, SWML fetch failed twice, media setup failed).
    Fail { reason: EndReason, detail: String },
    /// The SIP leg is gone (after our CANCEL/BYE completed, or any other way).
    LegTerminated,
    /// SWML `answer.max_duration`: hang the call up (`max_duration`) this many seconds after
    /// it was answered (capped at [`MAX_CALL_DURATION_SECS`]; 0 means the cap). Given before
    /// the answer, the clock starts at the answer; a later one replaces an earlier one.
    LimitDuration { secs: u64 },
}

/// What the core asks the actor to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutput {
    PlaceInvite,
    /// CANCEL the pending INVITE.
    CancelInvite,
    /// BYE the established dialog.
    SendBye,
    /// The status changed: persist it, and deliver `webhook_state` if the subscriber asked.
    StatusChanged {
        status: CallStatus,
        webhook_state: Option<&'static str>,
    },
    /// The call is over: release media, write the CDR, deliver `ended`, forget the call.
    Finished {
        status: CallStatus,
        end_reason: EndReason,
        detail: Option<String>,
    },
}

/// Call timers (one table, polled by the actor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTimer {
    /// `dial.timeout`: the far end did not answer in time → CANCEL, `noAnswer`.
    Ring,
    /// Our CANCEL or BYE got no conclusion: force the end so no call is stuck.
    Teardown,
    /// `answer.max_duration` reached → BYE, `max_duration`.
    MaxDuration,
}

/// The longest a call may last once answered when a limit is asked for (swml.md §2.12:
/// `answer.max_duration` defaults to 4 hours; larger values are capped to it).
pub const MAX_CALL_DURATION_SECS: u64 = 14_400;

/// How long we wait for a CANCEL/BYE to conclude before declaring the call over anyway.
pub const TEARDOWN_GRACE_MS: u64 = 34_000;

#[derive(Debug, Clone)]
pub struct OutboundCall {
    status: CallStatus,
    ring_timeout_ms: u64,
    ring_deadline: Option<u64>,
    teardown_deadline: Option<u64>,
    /// `answer.max_duration` in ms, and when it ends the call once answered.
    max_duration_ms: Option<u64>,
    max_duration_deadline: Option<u64>,
    /// Set once we decided how the call ends; the rest is waiting for the leg to go.
    pending_end: Option<(CallStatus, EndReason, Option<String>)>,
    answered_at: Option<u64>,
    ended_at: Option<u64>,
    outputs: VecDeque<CallOutput>,
}

impl OutboundCall {
    pub fn new(ring_timeout_secs: u32) -> Self {
        OutboundCall {
            status: CallStatus::Queued,
            ring_timeout_ms: u64::from(ring_timeout_secs) * 1000,
            ring_deadline: None,
            teardown_deadline: None,
            max_duration_ms: None,
            max_duration_deadline: None,
            pending_end: None,
            answered_at: None,
            ended_at: None,
            outputs: VecDeque::new(),
        }
    }

    pub fn status(&self) -> CallStatus {
        self.status
    }

    pub fn answered_at(&self) -> Option<u64> {
        self.answered_at
    }

    pub fn ended_at(&self) -> Option<u64> {
        self.ended_at
    }

    pub fn is_finished(&self) -> bool {
        self.status.is_terminal()
    }

    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.outputs.pop_front()
    }

    /// The earliest instant the actor must call [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<u64> {
        [
            self.ring_deadline,
            self.teardown_deadline,
            self.max_duration_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When `answer.max_duration` will end the call (ms since the epoch), once answered.
    pub fn max_duration_deadline(&self) -> Option<u64> {
        self.max_duration_deadline
    }

    pub fn handle_timeout(&mut self, now: u64) {
        if self.ring_deadline.is_some_and(|d| now >= d) {
            self.ring_deadline = None;
            self.on_timer(now, CallTimer::Ring);
        }
        if self.teardown_deadline.is_some_and(|d| now >= d) {
            self.teardown_deadline = None;
            self.on_timer(now, CallTimer::Teardown);
        }
        if self.max_duration_deadline.is_some_and(|d| now >= d) {
            self.max_duration_deadline = None;
            self.on_timer(now, CallTimer::MaxDuration);
        }
    }

    fn on_timer(&mut self, now: u64, timer: CallTimer) {
        match timer {
            CallTimer::Ring if self.status.is_pre_answer() && self.pending_end.is_none() => {
                self.begin_teardown(now, CallStatus::Ended, EndReason::NoAnswer, None, true);
            }
            CallTimer::Teardown => {
                if let Some((status, reason, detail)) = self.pending_end.take() {
                    let detail = detail.or_else(|| Some("far end never confirmed teardown".into()));
                    self.finish(now, status, reason, detail);
                }
            }
            CallTimer::MaxDuration
                if self.status == CallStatus::Answered && self.pending_end.is_none() =>
            {
                self.begin_teardown(
                    now,
                    CallStatus::Ended,
                    EndReason::MaxDuration,
                    Some("answer.max_duration reached".into()),
                    false,
                );
            }
            CallTimer::Ring | CallTimer::MaxDuration => {}
        }
    }

    pub fn handle(&mut self, now: u64, input: CallInput) {
        if self.status.is_terminal() {
            return;
        }
        match input {
            CallInput::Start => {
                if self.status == CallStatus::Queued {
                    self.set_status(CallStatus::Initiated);
                    self.outputs.push_back(CallOutput::PlaceInvite);
                }
            }
            CallInput::Offered => {
                if self.status == CallStatus::Queued {
                    self.set_status(CallStatus::Created);
                    self.set_status(CallStatus::Ringing);
                }
            }
            CallInput::InviteSent => {
                if matches!(self.status, CallStatus::Initiated) && self.pending_end.is_none() {
                    self.set_status(CallStatus::Created);
                    self.ring_deadline = Some(now + self.ring_timeout_ms);
                }
            }
            CallInput::Ringing => {
                if matches!(self.status, CallStatus::Created) && self.pending_end.is_none() {
                    self.set_status(CallStatus::Ringing);
                }
            }
            CallInput::Answered => self.on_answered(now),
            CallInput::AnsweredUnusable { detail } => {
                self.ring_deadline = None;
                match self.pending_end {
                    Some(_) => self.outputs.push_back(CallOutput::SendBye),
                    None if self.status.is_pre_answer() => self.begin_teardown(
                        now,
                        CallStatus::Failed,
                        EndReason::Error,
                        Some(detail),
                        false,
                    ),
                    None => {}
                }
            }
            CallInput::Rejected { code } => self.on_rejected(now, code),
            CallInput::RemoteHangup => {
                let (status, reason) = match self.pending_end.take() {
                    Some((s, r, _)) => (s, r),
                    None => (CallStatus::Ended, EndReason::Hangup),
                };
                self.finish(now, status, reason, None);
            }
            CallInput::Hangup { reason } => {
                if self.pending_end.is_some() {
                    return;
                }
                if self.status == CallStatus::Answered {
                    self.begin_teardown(now, CallStatus::Ended, reason, None, false);
                } else {
                    self.begin_teardown(now, CallStatus::Canceled, reason, None, true);
                }
            }
            CallInput::Cancel => {
                if self.pending_end.is_none() && self.status.is_pre_answer() {
                    self.begin_teardown(now, CallStatus::Canceled, EndReason::Cancel, None, true);
                }
            }
            CallInput::Fail { reason, detail } => {
                if self.pending_end.is_some() {
                    return;
                }
                match self.status {
                    CallStatus::Answered => {
                        self.begin_teardown(now, CallStatus::Ended, reason, Some(detail), false)
                    }
                    CallStatus::Queued | CallStatus::Initiated => {
                        self.finish(now, CallStatus::Failed, reason, Some(detail))
                    }
                    _ => self.begin_teardown(now, CallStatus::Failed, reason, Some(detail), true),
                }
            }
            CallInput::LimitDuration { secs } => {
                let secs = if secs == 0 {
                    MAX_CALL_DURATION_SECS
                } else {
                    secs.min(MAX_CALL_DURATION_SECS)
                };
                self.max_duration_ms = Some(secs * 1000);
                self.max_duration_deadline = self.answered_at.map(|at| at + secs * 1000);
            }
            CallInput::LegTerminated => {
                let (status, reason, detail) =
                    self.pending_end
                        .take()
                        .unwrap_or((CallStatus::Ended, EndReason::Hangup, None));
                self.finish(now, status, reason, detail);
            }
        }
    }

    fn on_answered(&mut self, now: u64) {
        self.ring_deadline = None;
        match self.pending_end {
            // A 200 raced our CANCEL: the leg is answered but we already decided to end it.
            Some(_) => {
                self.outputs.push_back(CallOutput::SendBye);
            }
            None if self.status.is_pre_answer() => {
                self.answered_at = Some(now);
                self.max_duration_deadline = self.max_duration_ms.map(|ms| now + ms);
                self.set_status(CallStatus::Answered);
            }
            None => {}
        }
    }

    fn on_rejected(&mut self, now: u64, code: u16) {
        self.ring_deadline = None;
        if let Some((status, reason, detail)) = self.pending_end.take() {
            // The 487 (or anything else) concluding our CANCEL.
            self.finish(now, status, reason, detail);
            return;
        }
        let (status, reason) = outcome_for_sip_code(code, self.status);
        self.finish(now, status, reason, Some(format!("SIP {code}")));
    }

    fn begin_teardown(
        &mut self,
        now: u64,
        status: CallStatus,
        reason: EndReason,
        detail: Option<String>,
        before_answer: bool,
    ) {
        self.ring_deadline = None;
        self.max_duration_deadline = None;
        self.pending_end = Some((status, reason, detail));
        self.teardown_deadline = Some(now + TEARDOWN_GRACE_MS);
        if self.status == CallStatus::Initiated {
            // The INVITE is not out yet: nothing to cancel on the wire.
            if let Some((s, r, d)) = self.pending_end.take() {
                self.finish(now, s, r, d);
            }
            return;
        }
        self.set_status(CallStatus::Ending);
        self.outputs.push_back(if before_answer {
            CallOutput::CancelInvite
        } else {
            CallOutput::SendBye
        });
    }

    fn finish(&mut self, now: u64, status: CallStatus, reason: EndReason, detail: Option<String>) {
        self.ring_deadline = None;
        self.teardown_deadline = None;
        self.max_duration_deadline = None;
        self.pending_end = None;
        self.ended_at = Some(now);
        self.status = status;
        self.outputs.push_back(CallOutput::Finished {
            status,
            end_reason: reason,
            detail,
        });
    }

    fn set_status(&mut self, status: CallStatus) {
        self.status = status;
        let webhook_state = match status {
            CallStatus::Created => Some("created"),
            CallStatus::Ringing => Some("ringing"),
            CallStatus::Answered => Some("answered"),
            CallStatus::Ending => Some("ending"),
            _ => None,
        };
        self.outputs.push_back(CallOutput::StatusChanged {
            status,
            webhook_state,
        });
    }
}

/// Maps a final SIP failure to the call's terminal status and end reason (documented in
/// `docs/call-lifecycle.md`): a far end that said busy, declined or did not answer ended the call
/// (`ended`); a destination that could not be reached at all failed it (`failed`).
pub fn outcome_for_sip_code(code: u16, status: CallStatus) -> (CallStatus, EndReason) {
    match code {
        486 | 600 => (CallStatus::Ended, EndReason::Busy),
        603 | 607 | 608 => (CallStatus::Ended, EndReason::Decline),
        480 | 487 => (CallStatus::Ended, EndReason::NoAnswer),
        408 if status == CallStatus::Ringing => (CallStatus::Ended, EndReason::NoAnswer),
        404 | 484 | 604 => (CallStatus::Failed, EndReason::NotFound),
        _ => (CallStatus::Failed, EndReason::Error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(c: &mut OutboundCall) -> Vec<CallOutput> {
        std::iter::from_fn(|| c.poll_output()).collect()
    }

    fn started(timeout: u32) -> OutboundCall {
        let mut c = OutboundCall::new(timeout);
        c.handle(0, CallInput::Start);
        c.handle(1, CallInput::InviteSent);
        drain(&mut c);
        c
    }

    fn states(outs: &[CallOutput]) -> Vec<&'static str> {
        outs.iter()
            .filter_map(|o| match o {
                CallOutput::StatusChanged { webhook_state, .. } => *webhook_state,
                _ => None,
            })
            .collect()
    }

    /// `answer.max_duration` on virtual time: set after the answer it counts from the answer;
    /// reached, the call is BYEd and ends `max_duration`.
    #[test]
    fn max_duration_hangs_up_after_answer() {
        let mut c = started(30);
        c.handle(2_000, CallInput::Answered);
        drain(&mut c);
        c.handle(5_000, CallInput::LimitDuration { secs: 10 });
        assert_eq!(c.poll_timeout(), Some(12_000));
        c.handle_timeout(11_999);
        assert!(drain(&mut c).is_empty());
        c.handle_timeout(12_000);
        let outs = drain(&mut c);
        assert!(outs.contains(&CallOutput::SendBye), "{outs:?}");
        assert_eq!(c.status(), CallStatus::Ending);
        c.handle(12_050, CallInput::LegTerminated);
        assert_eq!(
            drain(&mut c),
            vec![CallOutput::Finished {
                status: CallStatus::Ended,
                end_reason: EndReason::MaxDuration,
                detail: Some("answer.max_duration reached".into()),
            }]
        );
    }

    /// Given before the answer (an inbound `answer` waits for the ACK), the clock starts at
    /// the answer; the limit is capped at 4 hours; a hang-up first clears it.
    #[test]
    fn max_duration_before_answer_capped_and_cleared() {
        let mut c = OutboundCall::new(30);
        c.handle(0, CallInput::Offered);
        c.handle(100, CallInput::LimitDuration { secs: 1_000_000 });
        assert_eq!(c.poll_timeout(), None, "not answered yet");
        c.handle(1_000, CallInput::Answered);
        drain(&mut c);
        assert_eq!(
            c.poll_timeout(),
            Some(1_000 + MAX_CALL_DURATION_SECS * 1000)
        );
        c.handle(
            2_000,
            CallInput::Hangup {
                reason: EndReason::Hangup,
            },
        );
        assert_eq!(c.max_duration_deadline(), None);
        c.handle(2_100, CallInput::LegTerminated);
        let outs = drain(&mut c);
        assert!(outs.contains(&CallOutput::Finished {
            status: CallStatus::Ended,
            end_reason: EndReason::Hangup,
            detail: None,
        }));
    }

    #[test]
    fn answered_call_then_remote_bye() {
        let mut c = OutboundCall::new(30);
        c.handle(0, CallInput::Start);
        assert_eq!(c.status(), CallStatus::Initiated);
        c.handle(0, CallInput::InviteSent);
        c.handle(500, CallInput::Ringing);
        c.handle(3500, CallInput::Answered);
        let outs = drain(&mut c);
        assert_eq!(outs[1], CallOutput::PlaceInvite);
        assert_eq!(states(&outs), vec!["created", "ringing", "answered"]);
        assert_eq!(c.answered_at(), Some(3500));
        assert_eq!(c.poll_timeout(), None, "ring timer cleared on answer");
        c.handle(10_000, CallInput::RemoteHangup);
        assert_eq!(
            drain(&mut c),
            vec![CallOutput::Finished {
                status: CallStatus::Ended,
                end_reason: EndReason::Hangup,
                detail: None
            }]
        );
        assert!(c.is_finished());
    }

    #[test]
    fn inbound_call_rings_answers_and_is_hung_up() {
        let mut c = OutboundCall::new(1);
        c.handle(0, CallInput::Offered);
        let outs = drain(&mut c);
        assert!(!outs.contains(&CallOutput::PlaceInvite));
        assert_eq!(states(&outs), vec!["created", "ringing"]);
        assert_eq!(
            c.poll_timeout(),
            None,
            "the caller decides how long it rings"
        );
        c.handle(5_000, CallInput::Answered);
        assert_eq!(states(&drain(&mut c)), vec!["answered"]);
        c.handle(
            9_000,
            CallInput::Hangup {
                reason: EndReason::Hangup,
            },
        );
        assert!(drain(&mut c).contains(&CallOutput::SendBye));
        c.handle(9_010, CallInput::LegTerminated);
        assert_eq!(
            drain(&mut c),
            vec![CallOutput::Finished {
                status: CallStatus::Ended,
                end_reason: EndReason::Hangup,
                detail: None
            }]
        );
    }

    #[test]
    fn unusable_answer_is_byed_and_fails_without_answering() {
        let mut c = started(30);
        c.handle(100, CallInput::Ringing);
        drain(&mut c);
        c.handle(
            200,
            CallInput::AnsweredUnusable {
                detail: "no codec in common".into(),
            },
        );
        let outs = drain(&mut c);
        assert!(outs.contains(&CallOutput::SendBye));
        assert!(!states(&outs).contains(&"answered"));
        assert_eq!(c.answered_at(), None);
        c.handle(300, CallInput::LegTerminated);
        assert_eq!(
            drain(&mut c),
            vec![CallOutput::Finished {
                status: CallStatus::Failed,
                end_reason: EndReason::Error,
                detail: Some("no codec in common".into())
            }]
        );
    }

    #[test]
    fn inbound_caller_gives_up_before_answer() {
        let mut c = OutboundCall::new(60);
        c.handle(0, CallInput::Offered);
        drain(&mut c);
        c.handle(2_000, CallInput::RemoteHangup);
        assert_eq!(
            drain(&mut c),
            vec![CallOutput::Finished {
                status: CallStatus::Ended,
                end_reason: EndReason::Hangup,
                detail: None
            }]
        );
        assert_eq!(c.answered_at(), None);
    }

    #[test]
    fn ring_timeout_cancels_then_ends_no_answer() {
        let mut c = started(5);
        c.handle(100, CallInput::Ringing);
        assert_eq!(c.poll_timeout(), Some(5001));
        c.handle_timeout(5000);
        assert!(drain(&mut c)
            .iter()
            .all(|o| !matches!(o, CallOutput::CancelInvite)));
        c.handle_timeout(5001);
        let outs = drain(&mut c);
        assert!(outs.contains(&CallOutput::CancelInvite));
        assert_eq!(c.status(), CallStatus::Ending);
        c.handle(5100, CallInput::Rejected { code: 487 });
        assert_eq!(
            drain(&mut c),
            vec![CallOutput::Finished {
                status: CallStatus::Ended,
                end_reason: EndReason::NoAnswer,
                detail: None
            }]
        );
    }

    #[test]
    fn api_cancel_before_answer_is_canceled() {
        let mut c = started(60);
        c.handle(10, CallInput::Cancel);
        assert!(drain(&mut c).contains(&CallOutput::CancelInvite));
        c.handle(20, CallInput::Rejected { code: 487 });
        assert_eq!(c.status(), CallStatus::Canceled);
    }

    #[test]
    fn two_hundred_racing_cancel_is_byed_and_stays_canceled() {
        let mut c = started(60);
        c.handle(10, CallInput::Cancel);
        drain(&mut c);
        c.handle(11, CallInput::Answered);
        assert_eq!(drain(&mut c), vec![CallOutput::SendBye]);
        assert_eq!(c.answered_at(), None);
        c.handle(12, CallInput::LegTerminated);
        assert_eq!(c.status(), CallStatus::Canceled);
    }

    #[test]
    fn busy_decline_and_unreachable() {
        for (code, status, reason) in [
            (486, CallStatus::Ended, EndReason::Busy),
            (603, CallStatus::Ended, EndReason::Decline),
            (480, CallStatus::Ended, EndReason::NoAnswer),
            (404, CallStatus::Failed, EndReason::NotFound),
            (503, CallStatus::Failed, EndReason::Error),
            (0, CallStatus::Failed, EndReason::Error),
        ] {
            let mut c = started(60);
            c.handle(10, CallInput::Rejected { code });
            let outs = drain(&mut c);
            assert!(
                matches!(&outs[..], [CallOutput::Finished { status: s, end_reason: r, .. }] if *s == status && *r == reason),
                "{code}: {outs:?}"
            );
        }
    }

    #[test]
    fn hangup_after_answer_byes_and_teardown_timer_unsticks() {
        let mut c = started(60);
        c.handle(10, CallInput::Answered);
        drain(&mut c);
        c.handle(
            20,
            CallInput::Hangup {
                reason: EndReason::Hangup,
            },
        );
        let outs = drain(&mut c);
        assert!(outs.contains(&CallOutput::SendBye));
        assert_eq!(states(&outs), vec!["ending"]);
        // Far end never answers the BYE: the call still ends.
        c.handle_timeout(20 + TEARDOWN_GRACE_MS);
        assert_eq!(c.status(), CallStatus::Ended);
        assert_eq!(c.ended_at(), Some(20 + TEARDOWN_GRACE_MS));
    }

    #[test]
    fn fail_before_invite_fails_at_once() {
        let mut c = OutboundCall::new(60);
        c.handle(0, CallInput::Start);
        drain(&mut c);
        c.handle(
            1,
            CallInput::Fail {
                reason: EndReason::Error,
                detail: "no RTP port".into(),
            },
        );
        assert_eq!(c.status(), CallStatus::Failed);
        assert!(!drain(&mut c)
            .iter()
            .any(|o| matches!(o, CallOutput::CancelInvite)));
    }

    #[test]
    fn inputs_after_the_end_are_ignored() {
        let mut c = started(60);
        c.handle(1, CallInput::Rejected { code: 486 });
        drain(&mut c);
        c.handle(2, CallInput::Answered);
        c.handle(3, CallInput::RemoteHangup);
        assert!(drain(&mut c).is_empty());
        assert_eq!(c.status(), CallStatus::Ended);
    }
}
