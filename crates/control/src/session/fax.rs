//! Faxes (SWML `send_fax` / `receive_fax`) as operations of the call: one at a time, in the op
//! table under their `control_id`, stopped by `calling.send_fax.stop` /
//! `calling.receive_fax.stop`. The driver gets the document ready and runs the fax terminal
//! on the call's media; it reports the fax running, each page and the end, and this module
//! turns those into `calling.call.fax` events and the waiting script's result.

use super::ops::{does_not_exist, Op};
use super::{Action, CallEvent, CallSession, FaxProgress, FaxResult, OpResult, Origin};
use crate::command::{FaxDirection, FaxTransferParams};
use crate::service::ControlError;

#[derive(Debug, Clone)]
pub(crate) struct FaxOp {
    pub origin: Origin,
    pub params: FaxTransferParams,
    /// Pages that went or came whole so far.
    pub pages: u32,
    /// The PDF's URL once the fax runs.
    pub document: Option<String>,
    pub identity: String,
    /// `.stop` asked for its end; the result says `stopped`.
    pub stopping: bool,
}

impl CallSession {
    /// SWML `send_fax` / `receive_fax` (the REST API cannot start a fax).
    pub fn start_fax(
        &mut self,
        params: FaxTransferParams,
        origin: Origin,
    ) -> Result<(), ControlError> {
        self.check_live()?;
        if self.ops.iter().any(|op| matches!(op, Op::Fax(_))) {
            return Err(ControlError::invalid_state(
                "invalid_state",
                "a fax already runs on this call",
            ));
        }
        if params.direction == FaxDirection::Send
            && params.document.as_deref().is_none_or(str::is_empty)
        {
            return Err(ControlError::Unprocessable {
                code: "missing_parameter",
                message: "send_fax needs a `document` (a PDF URL)".into(),
                attribute: Some("document".into()),
            });
        }
        let control_id = params.control_id.clone();
        let op = FaxOp {
            origin,
            params: params.clone(),
            pages: 0,
            document: None,
            identity: String::new(),
            stopping: false,
        };
        self.ops.insert(control_id, Op::Fax(op))?;
        self.actions.push_back(Action::StartFax { params });
        Ok(())
    }

    pub(super) fn stop_fax(
        &mut self,
        control_id: &str,
        direction: FaxDirection,
    ) -> Result<(), ControlError> {
        match self.ops.get_mut(control_id) {
            Some(Op::Fax(f)) if f.params.direction == direction => {
                if !f.stopping {
                    f.stopping = true;
                    self.actions.push_back(Action::StopFax {
                        control_id: control_id.to_owned(),
                    });
                }
                Ok(())
            }
            _ => Err(does_not_exist(direction.method(), control_id)),
        }
    }

    pub(super) fn on_fax_started(
        &mut self,
        control_id: &str,
        document: Option<String>,
        identity: String,
    ) {
        if let Some(Op::Fax(f)) = self.ops.get_mut(control_id) {
            f.document = document;
            f.identity = identity;
        }
    }

    pub(super) fn on_fax_page(&mut self, control_id: &str, number: u32) {
        let Some(Op::Fax(f)) = self.ops.get_mut(control_id) else {
            return;
        };
        f.pages = f.pages.max(number);
        let event = CallEvent::Fax {
            control_id: control_id.to_owned(),
            status_url: f.params.status_url.clone(),
            direction: f.params.direction,
            progress: FaxProgress::Page { number },
        };
        self.emit(event);
    }

    pub(super) fn on_fax_finished(&mut self, control_id: &str, mut result: FaxResult) {
        let Some(Op::Fax(f)) = self.ops.remove(control_id) else {
            return;
        };
        if f.stopping {
            result.success = false;
            result.result_text = "stopped".into();
        }
        if result.identity.is_empty() {
            result.identity = f.identity.clone();
        }
        if result.document.is_none() {
            result.document = f.document.clone();
        }
        self.emit(CallEvent::Fax {
            control_id: control_id.to_owned(),
            status_url: f.params.status_url.clone(),
            direction: f.params.direction,
            progress: FaxProgress::Finished(result.clone()),
        });
        if f.origin.script_waits() {
            self.script_done(control_id, OpResult::Faxed(result));
        }
    }

    /// The call is gone: the driver reports each fax's end once its terminal let go (the
    /// outcome may still be a success: the far end hangs up right after confirming the last
    /// page).
    pub(super) fn end_faxes_with_the_call(&mut self) {
        let ids: Vec<String> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Fax(f) => Some(f.params.control_id.clone()),
                _ => None,
            })
            .collect();
        for control_id in ids {
            let Some(Op::Fax(f)) = self.ops.remove(&control_id) else {
                continue;
            };
            self.actions.push_back(Action::AbandonFax {
                control_id,
                direction: f.params.direction,
                status_url: f.params.status_url,
                stopped: f.stopping,
            });
        }
    }
}
