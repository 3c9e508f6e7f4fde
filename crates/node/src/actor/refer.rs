//! `calling.refer` and SWML `sip_refer`: one implementation. The REFER runs in the SIP adapter
//! (sip::LegHandle::refer / InboundHandle::refer) on a task of its own; its outcome goes to the
//! `status_url` as `calling.call.refer` from that task (so it is sent even when the far end's
//! BYE ends the call first) and back to the actor for a script that waits on it.

use std::time::Duration;

use control::command::ReferParams;
use control::LegType;
use control::{CallStatus, ControlError};
use tracing::{info, Instrument};

use crate::actor::{CallActor, SipLeg, TaskDone};
use crate::now_ms;

/// How long a REFER the far end accepted may take to report the transfer's final status.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(120);

impl CallActor {
    /// Sends the REFER; `for_script`: a `sip_refer` waits for [`TaskDone::Refer`]. Refused
    /// (422 `invalid_state`) on a call that is not SIP, not answered, or already referring.
    pub(crate) fn start_refer(
        &mut self,
        p: ReferParams,
        for_script: bool,
    ) -> Result<(), ControlError> {
        let invalid = |m: &str| Err(ControlError::invalid_state("invalid_state", m));
        if self.ident.leg_type != LegType::RelaySipCall || self.virtual_media.is_some() {
            return invalid("calling.refer needs a SIP call (PSTN legs cannot be REFERred)");
        }
        if self.core.status() != CallStatus::Answered {
            return invalid("the call is not answered");
        }
        if self.refer_running {
            return invalid("a REFER is already in progress on this call");
        }
        let Some(leg) = self.sip_leg() else {
            return invalid("the call has no SIP leg");
        };
        let target = p.device.params;
        let req = sip::ReferRequest {
            refer_to: target.to.clone(),
            referred_by: target.from,
            credentials: match (target.username, target.password) {
                (Some(username), Some(password)) => Some(sip::Credentials { username, password }),
                _ => None,
            },
            notify_timeout: NOTIFY_TIMEOUT,
        };
        self.refer_running = true;
        let node = self.node.clone();
        let ident = self.ident.clone();
        let call_id = self.ident.call_id;
        let status_url = p.status_url;
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let result = match leg {
                    SipLeg::Outbound(h) => h.refer(req).await,
                    SipLeg::Inbound(h) => h.refer(req).await,
                };
                let outcome = result.unwrap_or_else(|e| sip::ReferOutcome {
                    success: false,
                    response_code: None,
                    notify_code: None,
                    reason: e.to_string(),
                });
                info!(success = outcome.success, reason = %outcome.reason, "REFER outcome");
                if let Some(url) = status_url {
                    let ev = ident.refer_event(
                        &target.to,
                        outcome.success,
                        outcome.response_code,
                        outcome.notify_code,
                        now_ms(),
                    );
                    node.notify(call_id, &url, &ev).await;
                }
                let _ = tx.send(TaskDone::Refer {
                    for_script,
                    result: swml::ReferResult {
                        success: outcome.success,
                        response_code: outcome.response_code,
                        notify_code: outcome.notify_code,
                    },
                });
            }
            .in_current_span(),
        );
        Ok(())
    }

    pub(crate) async fn on_refer_done(&mut self, for_script: bool, result: swml::ReferResult) {
        self.refer_running = false;
        if for_script && self.script_wait == Some(crate::actor::script::ScriptWait::Refer) {
            self.complete_script(swml::Completion::Refer(result)).await;
        }
    }
}
