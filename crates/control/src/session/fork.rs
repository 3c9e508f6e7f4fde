//! Media forks — taps (`calling.tap`) and streams (`calling.stream`) — as operations of the
//! call: their `control_id`s share the op table, their lifecycle events (`tapping`/
//! `streaming`, `finished`) come from here. The driver builds the fork itself (sockets,
//! WebSocket) and reports when it runs ([`SessionEvent::ForkStarted`]) or ended by itself
//! ([`SessionEvent::ForkEnded`]).

use super::ops::{does_not_exist, Op};
use super::{Action, CallEvent, CallSession, ForkInfo, ForkSpec, ForkState, OpResult, Origin};
use crate::command::{ForkFormat, TapDevice};
use crate::service::ControlError;

#[derive(Debug, Clone)]
pub(super) struct ForkOp {
    pub origin: Origin,
    pub spec: ForkSpec,
    /// What the running fork reported (codec, rate, source address).
    pub info: Option<ForkInfo>,
}

impl CallSession {
    pub(super) fn start_fork(
        &mut self,
        spec: ForkSpec,
        origin: Origin,
    ) -> Result<(), ControlError> {
        check_format(&spec)?;
        let control_id = spec.control_id().to_owned();
        let op = ForkOp {
            origin,
            spec: spec.clone(),
            info: None,
        };
        self.ops.insert(control_id.clone(), Op::Fork(op))?;
        self.actions
            .push_back(Action::StartFork { control_id, spec });
        Ok(())
    }

    /// `calling.tap.stop` / `calling.stream.stop`: the fork ends now with its `finished` event.
    pub(super) fn stop_fork(
        &mut self,
        control_id: &str,
        kind: &'static str,
    ) -> Result<(), ControlError> {
        match self.ops.get(control_id) {
            Some(Op::Fork(f)) if f.spec.kind() == kind => {}
            _ => return Err(does_not_exist(kind, control_id)),
        }
        self.end_fork(control_id, Some("stopped".into()));
        Ok(())
    }

    pub(super) fn on_fork_started(&mut self, control_id: &str, info: ForkInfo) {
        let Some(Op::Fork(f)) = self.ops.get_mut(control_id) else {
            return;
        };
        f.info = Some(info.clone());
        let waits = f.origin.script_waits();
        // Reported once: the script's wait ends here, not again at the fork's end.
        f.origin = Origin::Script { wait_final: false };
        let spec = f.spec.clone();
        self.emit(CallEvent::Fork {
            spec: Box::new(spec),
            state: ForkState::Started,
            info: Some(info.clone()),
        });
        if waits {
            self.script_done(control_id, OpResult::Forked(Ok(info)));
        }
    }

    /// The fork ended by itself (its peer closed, a connection failed) or was stopped.
    pub(super) fn on_fork_ended(&mut self, control_id: &str, reason: String) {
        if matches!(self.ops.get(control_id), Some(Op::Fork(_))) {
            self.end_fork(control_id, Some(reason));
        }
    }

    /// Removes the fork, tells the driver to take it down, reports `finished` (and a waiting
    /// script's failure when it never ran).
    pub(super) fn end_fork(&mut self, control_id: &str, reason: Option<String>) {
        let Some(Op::Fork(f)) = self.ops.remove(control_id) else {
            return;
        };
        self.actions.push_back(Action::StopFork {
            control_id: control_id.to_owned(),
        });
        if f.origin.script_waits() {
            let why = reason.clone().unwrap_or_else(|| "ended".into());
            self.script_done(control_id, OpResult::Forked(Err(why)));
        }
        self.emit(CallEvent::Fork {
            spec: Box::new(f.spec),
            state: ForkState::Finished { reason },
            info: f.info,
        });
    }
}

/// A codec the fork cannot send is refused before anything starts.
fn check_format(spec: &ForkSpec) -> Result<(), ControlError> {
    match spec {
        ForkSpec::Stream(s) => ForkFormat::parse_stream(s.codec.as_deref())
            .map(|_| ())
            .map_err(|message| ControlError::Unprocessable {
                code: "invalid_parameter",
                message,
                attribute: Some("codec".into()),
            }),
        ForkSpec::Tap(t) => {
            let codec = match &t.device {
                TapDevice::Rtp { codec, .. } | TapDevice::Ws { codec, .. } => *codec,
            };
            match codec {
                Some(c) if ForkFormat::for_tap(c).is_none() => Err(ControlError::NotImplemented {
                    command: "calling.tap with codec OPUS".into(),
                }),
                _ => Ok(()),
            }
        }
    }
}
