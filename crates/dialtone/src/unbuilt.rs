//! The call control this build answers with while the call runtime (`crates/node`: SIP, RTP,
//! call actors, webhooks, store) is not part of the binary yet. Every request is still fully
//! authenticated and validated by the API; what would need a live call answers 501 naming the
//! missing capability, never a fake success (developers' guide: "Honest").

use async_trait::async_trait;
use uuid::Uuid;

use control::{
    CallCommand, CallControl, CallFilter, CallLeg, CallPage, CommandOk, ControlError, DialRequest,
};

pub struct UnbuiltNode;

const MISSING: &str = "(SIP calling runtime not built yet)";

#[async_trait]
impl CallControl for UnbuiltNode {
    async fn dial(&self, _project: Uuid, _request: DialRequest) -> Result<CommandOk, ControlError> {
        Err(ControlError::NotImplemented {
            command: format!("dial {MISSING}"),
        })
    }

    async fn command(
        &self,
        _project: Uuid,
        _call_id: Uuid,
        _command: CallCommand,
    ) -> Result<CommandOk, ControlError> {
        // No call can exist without the runtime: every id is unknown.
        Err(ControlError::NotFound)
    }

    async fn get_call(&self, _project: Uuid, _call_id: Uuid) -> Result<CallLeg, ControlError> {
        Err(ControlError::NotFound)
    }

    async fn list_calls(
        &self,
        _project: Uuid,
        _filter: CallFilter,
    ) -> Result<CallPage, ControlError> {
        Ok(CallPage {
            calls: Vec::new(),
            next_cursor: None,
        })
    }
}
