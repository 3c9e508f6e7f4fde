//! The HTTP side: one POST to `{base_url}/chat/completions` per answer, its body fed through
//! [`SseDecoder`] and [`ChatStream`] as it arrives, with the timeouts a live call needs (a
//! caller waiting in silence is worse than an error the agent can apologise for).
//!
//! The base URL is operator configuration, not input from a call, so this client does not go
//! through the node's egress policy; it ignores proxy environment variables and follows no
//! redirects (a 3xx is a [`LlmError::Status`]) so that the request, and its API key, go
//! exactly where configured.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Response, Url};
use serde_json::Value;
use tokio::time::Instant;
use tracing::debug;

use crate::backend::{ChatBackend, Flow};
use crate::sse::{SseDecoder, SseError, SseEvent, DEFAULT_MAX_EVENT_BYTES};
use crate::stream::{error_text, truncate, ChatEvent, ChatStream, Completion, StreamLimits};
use crate::types::ChatRequest;
use crate::LlmError;

/// Most of an error response's body kept in [`LlmError::Status`].
const MAX_BODY_EXCERPT: usize = 500;

/// Where the model is and how long to wait for it.
#[derive(Clone)]
pub struct BackendConfig {
    /// The API root, e.g. `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1` (vLLM),
    /// `http://127.0.0.1:11434/v1` (Ollama), `http://127.0.0.1:8080/v1` (llama.cpp).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>`; local servers usually need none.
    pub api_key: Option<String>,
    /// The model of requests that name none.
    pub model: String,
    pub connect_timeout: Duration,
    /// From sending the request to the first bytes of the answer's body (for a server that
    /// answers with one JSON document, that is the whole generation).
    pub first_byte_timeout: Duration,
    /// Longest silence between two pieces of the body once it has started.
    pub idle_timeout: Duration,
    /// Cap on one server-sent event, and on a whole non-streamed JSON answer.
    pub max_event_bytes: usize,
    pub limits: StreamLimits,
}

impl BackendConfig {
    /// Defaults fit a local or hosted model on a live call: 5 s to connect, 30 s to the first
    /// token (a long prompt on a small GPU), 20 s of silence mid-answer.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        BackendConfig {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(20),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            limits: StreamLimits::default(),
        }
    }
}

/// The key stays out of logs.
impl fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_event_bytes", &self.max_event_bytes)
            .field("limits", &self.limits)
            .finish()
    }
}

/// A client of one OpenAI-compatible server. Cheap to clone (connections are pooled).
#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    endpoint: Url,
    auth: Option<HeaderValue>,
    model: String,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    max_event_bytes: usize,
    limits: StreamLimits,
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("host", &self.endpoint.host_str())
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiClient {
    /// Checks the configuration and builds the HTTP client; nothing is sent yet.
    pub fn new(config: BackendConfig) -> Result<Self, LlmError> {
        let endpoint = endpoint(&config.base_url)?;
        let auth = match &config.api_key {
            Some(key) => {
                let mut v =
                    HeaderValue::from_str(&format!("Bearer {}", key.trim())).map_err(|_| {
                        LlmError::Config("the API key is not a valid header value".into())
                    })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        // reqwest panics when no rustls provider is installed; the binary installs ring at
        // start, and a process that did not (a test, an embedder) gets ring here.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("dialtone/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Config(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(OpenAiClient {
            http,
            endpoint,
            auth,
            model: config.model,
            first_byte_timeout: config.first_byte_timeout,
            idle_timeout: config.idle_timeout,
            max_event_bytes: config.max_event_bytes,
            limits: config.limits,
        })
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The model of requests that name none.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Streams one answer to `on_event`; see [`ChatBackend::chat_stream`].
    pub async fn chat_stream(
        &self,
        req: &ChatRequest,
        mut on_event: impl FnMut(ChatEvent) -> Flow,
    ) -> Result<Completion, LlmError> {
        self.run(req, &mut on_event).await
    }

    async fn run<F>(&self, req: &ChatRequest, on_event: &mut F) -> Result<Completion, LlmError>
    where
        F: FnMut(ChatEvent) -> Flow + ?Sized,
    {
        let body = req.body(&self.model)?;
        let started = Instant::now();
        let model = req.model.as_deref().unwrap_or(&self.model);
        debug!(
            host = self.endpoint.host_str(),
            model,
            messages = req.messages.len(),
            tools = req.tools.len(),
            "chat completion request"
        );
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(ACCEPT, "text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let first_deadline = started + self.first_byte_timeout;
        let resp = match tokio::time::timeout_at(first_deadline, request.send()).await {
            Err(_) => return Err(LlmError::FirstByteTimeout(self.first_byte_timeout)),
            Ok(Err(e)) => return Err(send_error(e)),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        if !status.is_success() {
            let body_excerpt = excerpt(resp, self.idle_timeout).await;
            debug!(status = status.as_u16(), "chat completion refused");
            return Err(LlmError::Status {
                code: status.as_u16(),
                body_excerpt,
            });
        }
        let json = is_json(resp.headers());
        let mut body = Body {
            resp,
            first_deadline: Some(first_deadline),
            first_byte_timeout: self.first_byte_timeout,
            idle_timeout: self.idle_timeout,
        };
        let mut answer = Answer {
            stream: ChatStream::new(self.limits),
            completion: Completion::default(),
        };
        let flow = if json {
            self.read_json(&mut body, &mut answer, on_event).await
        } else {
            self.read_sse(&mut body, &mut answer, on_event).await
        };
        // Dropping the body here, read or not, closes an unfinished answer's connection.
        drop(body);
        let flow = flow.inspect_err(|e| debug!(error = %e, "chat completion failed"))?;
        let mut completion = answer.completion;
        completion.stopped = flow == Flow::Stop;
        debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            stopped = completion.stopped,
            finish_reason = completion.finish_reason.as_ref().map(|r| r.as_str()),
            text_bytes = completion.text.len(),
            tool_calls = completion.tool_calls.len(),
            "chat completion answered"
        );
        Ok(completion)
    }

    /// A `text/event-stream` answer, event by event.
    async fn read_sse<F>(
        &self,
        body: &mut Body,
        answer: &mut Answer,
        on_event: &mut F,
    ) -> Result<Flow, LlmError>
    where
        F: FnMut(ChatEvent) -> Flow + ?Sized,
    {
        let mut sse = SseDecoder::new(self.max_event_bytes);
        let mut pending: Vec<SseEvent> = Vec::new();
        while let Some(chunk) = body.next().await? {
            let pushed = sse.push(&chunk, &mut |e| pending.push(e));
            if let Err(SseError::EventTooLarge { limit }) = pushed {
                return Err(LlmError::TooLarge {
                    what: "event bytes",
                    limit,
                });
            }
            for event in pending.drain(..) {
                if answer.event(event, on_event)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            // Some servers keep the connection open after `[DONE]`: do not wait for its end.
            if answer.stream.is_done() {
                return Ok(Flow::Continue);
            }
        }
        sse.finish(&mut |e| pending.push(e));
        for event in pending.drain(..) {
            if answer.event(event, on_event)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        let events = answer.stream.finish()?;
        Ok(answer.deliver(events, on_event))
    }

    /// A server that ignored `stream: true` and sent one `chat.completion` document.
    async fn read_json<F>(
        &self,
        body: &mut Body,
        answer: &mut Answer,
        on_event: &mut F,
    ) -> Result<Flow, LlmError>
    where
        F: FnMut(ChatEvent) -> Flow + ?Sized,
    {
        let mut doc = Vec::new();
        while let Some(chunk) = body.next().await? {
            if doc.len() + chunk.len() > self.max_event_bytes {
                return Err(LlmError::TooLarge {
                    what: "response bytes",
                    limit: self.max_event_bytes,
                });
            }
            doc.extend_from_slice(&chunk);
        }
        let text = std::str::from_utf8(&doc)
            .map_err(|e| LlmError::Malformed(format!("answer is not UTF-8: {e}")))?;
        let events = answer.stream.push_data(text)?;
        if answer.deliver(events, on_event) == Flow::Stop {
            return Ok(Flow::Stop);
        }
        let events = answer.stream.finish()?;
        Ok(answer.deliver(events, on_event))
    }
}

#[async_trait]
impl ChatBackend for OpenAiClient {
    async fn chat_stream(
        &self,
        req: &ChatRequest,
        on_event: &mut (dyn FnMut(ChatEvent) -> Flow + Send),
    ) -> Result<Completion, LlmError> {
        self.run(req, on_event).await
    }
}

/// The answer being received: its decoder, and the completion of what the caller was given.
struct Answer {
    stream: ChatStream,
    completion: Completion,
}

impl Answer {
    /// One server-sent event: an `error` event fails the answer, anything else is a chunk.
    fn event<F>(&mut self, event: SseEvent, on_event: &mut F) -> Result<Flow, LlmError>
    where
        F: FnMut(ChatEvent) -> Flow + ?Sized,
    {
        if event.event.as_deref() == Some("error") {
            let message = match serde_json::from_str::<Value>(&event.data) {
                Ok(Value::Object(o)) if o.contains_key("error") => {
                    error_text(o.get("error").unwrap_or(&Value::Null))
                }
                Ok(v) => error_text(&v),
                Err(_) => truncate(event.data, MAX_BODY_EXCERPT),
            };
            return Err(LlmError::Backend(message));
        }
        let events = self.stream.push_data(&event.data)?;
        Ok(self.deliver(events, on_event))
    }

    /// Hands events to the caller until it says stop; the completion holds exactly what it
    /// was given.
    fn deliver<F>(&mut self, events: Vec<ChatEvent>, on_event: &mut F) -> Flow
    where
        F: FnMut(ChatEvent) -> Flow + ?Sized,
    {
        for event in events {
            self.completion.apply(&event);
            if on_event(event) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

/// The response body with the first-byte deadline, then the idle timeout, applied.
struct Body {
    resp: Response,
    /// Until the first bytes arrive.
    first_deadline: Option<Instant>,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

impl Body {
    async fn next(&mut self) -> Result<Option<Bytes>, LlmError> {
        loop {
            let chunk = match self.first_deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, self.resp.chunk())
                    .await
                    .map_err(|_| LlmError::FirstByteTimeout(self.first_byte_timeout))?,
                None => tokio::time::timeout(self.idle_timeout, self.resp.chunk())
                    .await
                    .map_err(|_| LlmError::IdleTimeout(self.idle_timeout))?,
            };
            match chunk.map_err(|e| LlmError::Transport(error_chain(&e.without_url())))? {
                Some(c) if c.is_empty() => continue,
                Some(c) => {
                    self.first_deadline = None;
                    return Ok(Some(c));
                }
                None => return Ok(None),
            }
        }
    }
}

/// `{base_url}/chat/completions`, whether or not the base ends with `/`.
fn endpoint(base_url: &str) -> Result<Url, LlmError> {
    let mut url =
        Url::parse(base_url.trim()).map_err(|e| LlmError::Config(format!("base URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LlmError::Config(format!(
            "base URL: scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|_| LlmError::Config("base URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    Ok(url)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .is_some_and(|ct| ct.contains("json") && !ct.contains("event-stream"))
}

fn send_error(e: reqwest::Error) -> LlmError {
    let connect = e.is_connect();
    let text = error_chain(&e.without_url());
    if connect {
        LlmError::Connect(text)
    } else {
        LlmError::Transport(text)
    }
}

/// An error and its causes on one line (reqwest's own message says little alone).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// The start of an error response's body, for the log and the agent's error message.
async fn excerpt(mut resp: Response, wait: Duration) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        while buf.len() < MAX_BODY_EXCERPT {
            match resp.chunk().await {
                Ok(Some(c)) => buf.extend_from_slice(&c),
                _ => break,
            }
        }
    })
    .await;
    buf.truncate(MAX_BODY_EXCERPT);
    let text = match std::str::from_utf8(&buf) {
        Ok(s) => s.to_owned(),
        // Cut inside a character: drop its start rather than show U+FFFD.
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&buf[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(&buf).into_owned(),
    };
    truncate(text.trim().to_owned(), MAX_BODY_EXCERPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_joins_with_or_without_a_slash() {
        for (base, want) in [
            (
                "http://127.0.0.1:8080/v1",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:8080/v1/",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
            (
                " https://api.openai.com/v1 ",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://localhost:11434",
                "http://localhost:11434/chat/completions",
            ),
            (
                "http://localhost:11434/",
                "http://localhost:11434/chat/completions",
            ),
            (
                "http://h/openai/v1?api-version=1",
                "http://h/openai/v1/chat/completions?api-version=1",
            ),
        ] {
            assert_eq!(endpoint(base).unwrap().as_str(), want, "{base}");
        }
    }

    #[test]
    fn endpoint_refuses_what_is_not_http() {
        for base in [
            "",
            "127.0.0.1:8080/v1",
            "ftp://h/v1",
            "mailto:a@b",
            "unix:/tmp/s",
        ] {
            assert!(matches!(endpoint(base), Err(LlmError::Config(_))), "{base}");
        }
    }

    #[test]
    fn api_key_must_be_a_header_value() {
        let mut cfg = BackendConfig::new("http://127.0.0.1:1/v1", "m");
        cfg.api_key = Some("sk-bad\nkey".into());
        assert!(matches!(OpenAiClient::new(cfg), Err(LlmError::Config(_))));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let mut cfg = BackendConfig::new("http://127.0.0.1:1/v1", "m");
        cfg.api_key = Some("sk-secret".into());
        let text = format!("{cfg:?}");
        assert!(!text.contains("sk-secret"), "{text}");
        assert!(text.contains("<redacted>"));
        let client = OpenAiClient::new(cfg).unwrap();
        assert!(!format!("{client:?}").contains("sk-secret"));
    }

    #[test]
    fn content_types() {
        let h = |ct: &str| {
            let mut m = HeaderMap::new();
            m.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            is_json(&m)
        };
        assert!(h("application/json"));
        assert!(h("Application/JSON; charset=utf-8"));
        assert!(!h("text/event-stream"));
        assert!(!h("text/event-stream; charset=utf-8"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
