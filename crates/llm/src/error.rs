//! What can go wrong talking to a model backend. Strings rather than wrapped sources, so the
//! error is `Clone` and can be handed to the agent, logged and compared in tests.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The backend configuration cannot work (bad base URL, API key not a header value).
    #[error("invalid model backend configuration: {0}")]
    Config(String),
    /// No TCP/TLS connection to the backend (refused, unreachable, connect timeout, DNS).
    #[error("cannot connect to the model backend: {0}")]
    Connect(String),
    /// The connection failed after it was made (reset mid-response, bad HTTP).
    #[error("model backend transport error: {0}")]
    Transport(String),
    /// A non-2xx answer; the body is cut to a short excerpt.
    #[error("model backend answered HTTP {code}: {body_excerpt}")]
    Status { code: u16, body_excerpt: String },
    /// Nothing of the answer arrived in time (headers and the first body bytes).
    #[error("no answer from the model backend within {0:?}")]
    FirstByteTimeout(Duration),
    /// The answer started, then stalled for this long.
    #[error("the model backend stalled for {0:?} mid-answer")]
    IdleTimeout(Duration),
    /// The answer is not a chat completion (bad JSON, bad UTF-8, wrong shape).
    #[error("malformed answer from the model backend: {0}")]
    Malformed(String),
    /// The backend reported an error in the answer itself (an `error` object).
    #[error("model backend error: {0}")]
    Backend(String),
    /// A bound on what one answer may hold was exceeded.
    #[error("model answer exceeds the {what} limit of {limit}")]
    TooLarge { what: &'static str, limit: usize },
    /// A tool call's arguments are not a JSON value.
    #[error("tool call arguments are not valid JSON: {0}")]
    Arguments(String),
}
