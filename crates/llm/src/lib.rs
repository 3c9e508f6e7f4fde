//! The model backend of the conversational AI agent (SWML `ai` with SWAIG tools): a client of
//! the OpenAI-compatible chat-completions API, streamed, with tool calls, so an operator can
//! point the agent at OpenAI or at a self-hosted server speaking the same API (vLLM, Ollama,
//! llama.cpp's `llama-server`).
//!
//! The node's SWML `ai` agent uses it through [`ChatBackend`] (node/src/actor/ai.rs).
//!
//! - [`sse`]: Server-Sent Events framing, sans-IO;
//! - [`stream`]: chat-completion chunks to events and a [`Completion`], sans-IO;
//! - [`types`]: the request (messages, tools) as the API expects it;
//! - [`backend`]: the [`ChatBackend`] trait and [`Flow`];
//! - [`client`]: [`OpenAiClient`], the HTTP side.

pub mod backend;
pub mod client;
mod error;
pub mod sse;
pub mod stream;
pub mod types;

pub use backend::{ChatBackend, Flow};
pub use client::{BackendConfig, OpenAiClient};
pub use error::LlmError;
pub use stream::{ChatEvent, ChatStream, Completion, FinishReason, StreamLimits, Usage};
pub use types::{ChatRequest, Message, Role, Tool, ToolCall, ToolChoice};
