//! The seam between the agent and whatever produces its answers: the OpenAI-compatible client
//! here, and later a scripted backend in tests or another provider.

use async_trait::async_trait;

use crate::stream::{ChatEvent, Completion};
use crate::types::ChatRequest;
use crate::LlmError;

/// What the caller wants after an event: more, or nothing more (barge-in: the caller started
/// talking, so the rest of the answer is useless and its generation should stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// A model that answers a conversation as a stream of events.
#[async_trait]
pub trait ChatBackend: Send + Sync {
    /// Sends `req` and hands every event to `on_event` as it arrives. On [`Flow::Stop`] the
    /// answer is abandoned at once (for HTTP: the connection is closed, which tells the
    /// server to stop generating) and the completion so far is returned, marked `stopped`.
    async fn chat_stream(
        &self,
        req: &ChatRequest,
        on_event: &mut (dyn FnMut(ChatEvent) -> Flow + Send),
    ) -> Result<Completion, LlmError>;
}
