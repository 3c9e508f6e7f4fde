//! A sans-IO accumulator of streamed chat-completion chunks: the `data` of each server-sent
//! event goes in, and what the agent acts on comes out — text as it arrives (to start
//! speaking early), tool calls once they are whole, and how the answer finished.
//!
//! Tolerant of what OpenAI-compatible servers actually send: fields split over any number of
//! chunks, unknown fields, `null`s, usage-only chunks, tool calls without `index` or `id`, a
//! whole non-streamed message in place of a delta. Bounded: text and tool calls are capped.

use serde::Deserialize;
use serde_json::Value;

use crate::types::{Message, Role, ToolCall};
use crate::LlmError;

/// Caps on one answer, so a runaway or hostile backend cannot grow memory without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Text of the answer, in bytes.
    pub max_text_bytes: usize,
    /// Ids, names and arguments of all tool calls together, in bytes.
    pub max_tool_call_bytes: usize,
    pub max_tool_calls: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_text_bytes: 256 * 1024,
            max_tool_call_bytes: 256 * 1024,
            max_tool_calls: 32,
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Other(String),
}

impl FinishReason {
    pub fn parse(s: &str) -> Self {
        match s {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

/// Token counts, when the server reports them (zero when a count is missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// What an answer tells the caller, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// More text, as soon as it arrives.
    TextDelta(String),
    /// Every tool call of the answer, whole: at the finish reason, or at the end of the
    /// stream when the server gave none.
    ToolCalls(Vec<ToolCall>),
    /// Token counts (a usage chunk, or the `usage` of a whole JSON answer).
    Usage(Usage),
    /// The model finished, and why. At most once.
    Finished { reason: FinishReason },
    /// `data: [DONE]`: nothing more will come.
    Done,
}

/// The whole assistant message of one answer, built from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// `None` when the caller stopped early or the server never said.
    pub finish_reason: Option<FinishReason>,
    pub usage: Option<Usage>,
    /// The caller stopped the answer (`Flow::Stop`): this is what came before.
    pub stopped: bool,
}

impl Completion {
    /// Takes one event into the message (so a backend built on events, scripted or not, can
    /// produce its completion the same way).
    pub fn apply(&mut self, event: &ChatEvent) {
        match event {
            ChatEvent::TextDelta(t) => self.text.push_str(t),
            ChatEvent::ToolCalls(calls) => self.tool_calls.extend(calls.iter().cloned()),
            ChatEvent::Usage(u) => self.usage = Some(*u),
            ChatEvent::Finished { reason } => self.finish_reason = Some(reason.clone()),
            ChatEvent::Done => {}
        }
    }

    /// The assistant message to append to the conversation (`content: null` when the answer
    /// is only tool calls).
    pub fn to_message(&self) -> Message {
        let content =
            (!self.text.is_empty() || self.tool_calls.is_empty()).then(|| self.text.clone());
        Message {
            role: Role::Assistant,
            content,
            tool_calls: self.tool_calls.clone(),
            tool_call_id: None,
            name: None,
        }
    }
}

/// A tool call still arriving.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug)]
pub struct ChatStream {
    limits: StreamLimits,
    text_bytes: usize,
    tool_bytes: usize,
    /// Tool calls in order of first appearance.
    calls: Vec<PartialCall>,
    /// The wire `index` of each call in `calls`.
    slots: Vec<(u64, usize)>,
    /// Tool calls already handed out (their number counts against the cap).
    emitted_calls: usize,
    finished: bool,
    done: bool,
    /// Whether any chunk was seen: an answer with none is not an answer.
    seen_chunk: bool,
}

impl Default for ChatStream {
    fn default() -> Self {
        ChatStream::new(StreamLimits::default())
    }
}

impl ChatStream {
    pub fn new(limits: StreamLimits) -> Self {
        ChatStream {
            limits,
            text_bytes: 0,
            tool_bytes: 0,
            calls: Vec::new(),
            slots: Vec::new(),
            emitted_calls: 0,
            finished: false,
            done: false,
            seen_chunk: false,
        }
    }

    /// `[DONE]` was seen: the answer is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// One event's data: a JSON chunk, or `[DONE]`. Also takes a whole non-streamed
    /// completion (`message` in place of `delta`). Data after `[DONE]` is ignored.
    pub fn push_data(&mut self, data: &str) -> Result<Vec<ChatEvent>, LlmError> {
        let data = data.trim();
        if self.done || data.is_empty() {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        if data == "[DONE]" {
            self.seen_chunk = true;
            self.done = true;
            self.flush_calls(&mut events);
            events.push(ChatEvent::Done);
            return Ok(events);
        }
        let chunk: WireChunk = serde_json::from_str(data)
            .map_err(|e| LlmError::Malformed(format!("chunk is not a chat completion: {e}")))?;
        if let Some(err) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            return Err(LlmError::Backend(error_text(err)));
        }
        if chunk.object.as_deref() == Some("error") {
            let message = chunk
                .message
                .as_ref()
                .map_or("unknown error".into(), error_text);
            return Err(LlmError::Backend(message));
        }
        self.seen_chunk = true;
        for choice in chunk.choices.unwrap_or_default() {
            // Only one answer is asked for (no `n`); others would be noise.
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    self.text_bytes += text.len();
                    if self.text_bytes > self.limits.max_text_bytes {
                        return Err(LlmError::TooLarge {
                            what: "text bytes",
                            limit: self.limits.max_text_bytes,
                        });
                    }
                    events.push(ChatEvent::TextDelta(text));
                }
                for (pos, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                    self.tool_delta(pos, call)?;
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                if !self.finished {
                    self.finished = true;
                    self.flush_calls(&mut events);
                    events.push(ChatEvent::Finished {
                        reason: FinishReason::parse(&reason),
                    });
                }
            }
        }
        if let Some(u) = chunk.usage {
            events.push(ChatEvent::Usage(Usage {
                prompt_tokens: u.prompt_tokens.unwrap_or(0),
                completion_tokens: u.completion_tokens.unwrap_or(0),
                total_tokens: u.total_tokens.unwrap_or(0),
            }));
        }
        Ok(events)
    }

    /// The end of the body: tool calls still pending come out. An answer without a single
    /// chunk is an error; one that ended without `[DONE]` or a finish reason is accepted (the
    /// server closed it cleanly), and its completion then has no finish reason.
    pub fn finish(&mut self) -> Result<Vec<ChatEvent>, LlmError> {
        if !self.seen_chunk {
            return Err(LlmError::Malformed(
                "the answer ended before any chunk".into(),
            ));
        }
        let mut events = Vec::new();
        self.flush_calls(&mut events);
        Ok(events)
    }

    fn flush_calls(&mut self, events: &mut Vec<ChatEvent>) {
        if self.calls.is_empty() {
            return;
        }
        let first = self.emitted_calls;
        let calls: Vec<ToolCall> = std::mem::take(&mut self.calls)
            .into_iter()
            .enumerate()
            .map(|(i, c)| ToolCall {
                // A server that gives no id still needs one for the tool result to refer to.
                id: if c.id.is_empty() {
                    format!("call_{}", first + i)
                } else {
                    c.id
                },
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        self.slots.clear();
        self.emitted_calls += calls.len();
        events.push(ChatEvent::ToolCalls(calls));
    }

    /// Merges one tool-call fragment into its call.
    fn tool_delta(&mut self, pos: usize, delta: WireToolDelta) -> Result<(), LlmError> {
        let id = delta.id.filter(|id| !id.is_empty());
        let slot = self.slot_for(delta.index, id.as_deref(), pos)?;
        let (name, arguments) = match delta.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let arguments = match arguments {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            // Some servers send the arguments as a JSON object rather than its text.
            Some(other) => Some(other.to_string()),
        };
        let mut added = 0;
        let call = &mut self.calls[slot];
        if let Some(id) = id {
            if call.id.is_empty() {
                added += id.len();
                call.id = id;
            }
        }
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            // Fragments are appended; a server repeating the whole name with every
            // arguments fragment must not make it `nameName`.
            let repeated = call.name == name && !call.arguments.is_empty();
            if !repeated {
                added += name.len();
                call.name.push_str(&name);
            }
        }
        if let Some(args) = arguments {
            added += args.len();
            call.arguments.push_str(&args);
        }
        self.tool_bytes += added;
        if self.tool_bytes > self.limits.max_tool_call_bytes {
            return Err(LlmError::TooLarge {
                what: "tool call bytes",
                limit: self.limits.max_tool_call_bytes,
            });
        }
        Ok(())
    }

    /// Which call a fragment belongs to: by `index`, else by `id`, else by position in the
    /// chunk's list (the shape of a whole non-streamed message). A new `id` where a call with
    /// another one is pending starts a new call (servers that number every call 0).
    fn slot_for(
        &mut self,
        index: Option<u64>,
        id: Option<&str>,
        pos: usize,
    ) -> Result<usize, LlmError> {
        if let (None, Some(id)) = (index, id) {
            if let Some(slot) = self.calls.iter().position(|c| c.id == id) {
                return Ok(slot);
            }
        }
        let index = index.unwrap_or(pos as u64);
        let Some(k) = self.slots.iter().position(|(i, _)| *i == index) else {
            let slot = self.new_slot()?;
            self.slots.push((index, slot));
            return Ok(slot);
        };
        let slot = self.slots[k].1;
        let pending = &self.calls[slot].id;
        if id.is_some_and(|id| !pending.is_empty() && pending != id) {
            let slot = self.new_slot()?;
            self.slots[k].1 = slot;
            return Ok(slot);
        }
        Ok(slot)
    }

    fn new_slot(&mut self) -> Result<usize, LlmError> {
        if self.calls.len() + self.emitted_calls >= self.limits.max_tool_calls {
            return Err(self.too_many_calls());
        }
        self.calls.push(PartialCall::default());
        Ok(self.calls.len() - 1)
    }

    fn too_many_calls(&self) -> LlmError {
        LlmError::TooLarge {
            what: "tool call count",
            limit: self.limits.max_tool_calls,
        }
    }
}

/// Most of a backend's error message kept: enough to diagnose, not a whole page.
const MAX_ERROR_TEXT: usize = 500;

/// The message of an error value: `{"message": ...}`, a bare string, or the JSON itself.
pub(crate) fn error_text(err: &Value) -> String {
    let text = match err {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(m)) => m.clone(),
            _ => err.to_string(),
        },
        other => other.to_string(),
    };
    truncate(text, MAX_ERROR_TEXT)
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
    /// vLLM's bare error objects: `{"object": "error", "message": ...}`.
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    message: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: Option<u64>,
    /// `message` is the whole answer of a non-streamed completion: the same shape.
    #[serde(default, alias = "message")]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolDelta>>,
}

#[derive(Deserialize)]
struct WireToolDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunctionDelta>,
}

#[derive(Deserialize)]
struct WireFunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push_all(stream: &mut ChatStream, chunks: &[Value]) -> Vec<ChatEvent> {
        let mut events = Vec::new();
        for c in chunks {
            events.extend(stream.push_data(&c.to_string()).unwrap());
        }
        events
    }

    fn content(text: &str) -> Value {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
    }

    fn finish(reason: &str) -> Value {
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
    }

    fn text(s: &str) -> ChatEvent {
        ChatEvent::TextDelta(s.into())
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    fn completion_of(events: &[ChatEvent]) -> Completion {
        let mut c = Completion::default();
        events.iter().for_each(|e| c.apply(e));
        c
    }

    #[test]
    fn content_deltas_come_out_in_order() {
        let mut s = ChatStream::default();
        let first = json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": null, "logprobs": null}],
                           "system_fingerprint": "fp", "x_unknown": {"deep": [1, 2]}});
        let mut events = push_all(
            &mut s,
            &[
                first,
                content("Hel"),
                content("lo, "),
                content("world"),
                finish("stop"),
            ],
        );
        events.extend(s.push_data("[DONE]").unwrap());
        assert_eq!(
            events,
            vec![
                text("Hel"),
                text("lo, "),
                text("world"),
                ChatEvent::Finished {
                    reason: FinishReason::Stop
                },
                ChatEvent::Done,
            ]
        );
        assert!(s.is_done());
        assert_eq!(s.finish().unwrap(), vec![]);
        let c = completion_of(&events);
        assert_eq!(c.text, "Hello, world");
        assert_eq!(c.finish_reason, Some(FinishReason::Stop));
        assert_eq!(c.to_message(), Message::assistant_text("Hello, world"));
    }

    #[test]
    fn null_content_and_empty_choices_are_nothing() {
        let mut s = ChatStream::default();
        let events = push_all(
            &mut s,
            &[
                json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": null}}]}),
                json!({"choices": []}),
                json!({"choices": null}),
                json!({"choices": [{"index": 0, "delta": null, "finish_reason": null}]}),
            ],
        );
        assert!(events.is_empty());
    }

    #[test]
    fn interleaved_tool_calls_in_fragments_come_out_whole() {
        let tc = |index: u64, v: Value| {
            let mut d = v;
            d["index"] = json!(index);
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [d]}, "finish_reason": null}]})
        };
        let chunks = [
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": null,
                "tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                "function": {"name": "get_", "arguments": ""}}]}}]}),
            tc(
                1,
                json!({"id": "call_b", "type": "function", "function": {"name": "transfer"}}),
            ),
            tc(
                0,
                json!({"function": {"name": "weather", "arguments": "{\"ci"}}),
            ),
            tc(1, json!({"function": {"arguments": "{\"to\":"}})),
            tc(0, json!({"function": {"arguments": "ty\": \"Par"}})),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 1, "function": {"arguments": "\"sales\"}"}},
                {"index": 0, "function": {"arguments": "is\"}"}}]}}]}),
        ];
        let mut s = ChatStream::default();
        let mut events = push_all(&mut s, &chunks);
        assert!(events.is_empty(), "nothing before the calls are whole");
        events.extend(s.push_data(&finish("tool_calls").to_string()).unwrap());
        let calls = vec![
            call("call_a", "get_weather", r#"{"city": "Paris"}"#),
            call("call_b", "transfer", r#"{"to":"sales"}"#),
        ];
        assert_eq!(
            events,
            vec![
                ChatEvent::ToolCalls(calls.clone()),
                ChatEvent::Finished {
                    reason: FinishReason::ToolCalls
                }
            ]
        );
        assert_eq!(calls[0].arguments_json().unwrap(), json!({"city": "Paris"}));
        assert_eq!(calls[1].arguments_json().unwrap(), json!({"to": "sales"}));
        let c = completion_of(&events);
        assert_eq!(c.to_message(), Message::assistant_tool_calls(calls));
        assert_eq!(s.push_data("[DONE]").unwrap(), vec![ChatEvent::Done]);
    }

    #[test]
    fn tool_calls_without_finish_reason_come_out_at_done() {
        let mut s = ChatStream::default();
        let events = push_all(
            &mut s,
            &[json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "x", "function": {"name": "f", "arguments": "{}"}}]}}]})],
        );
        assert!(events.is_empty());
        assert_eq!(
            s.push_data("[DONE]").unwrap(),
            vec![
                ChatEvent::ToolCalls(vec![call("x", "f", "{}")]),
                ChatEvent::Done
            ]
        );
    }

    #[test]
    fn tool_calls_without_finish_reason_or_done_come_out_at_the_end() {
        let mut s = ChatStream::default();
        push_all(
            &mut s,
            &[json!({"choices": [{"delta": {"tool_calls": [
                {"function": {"name": "f", "arguments": {"a": 1}}}]}}]})],
        );
        // No id from the server: one is made up for the tool result to refer to.
        assert_eq!(
            s.finish().unwrap(),
            vec![ChatEvent::ToolCalls(vec![call(
                "call_0",
                "f",
                r#"{"a":1}"#
            )])]
        );
    }

    #[test]
    fn tool_calls_come_out_even_with_finish_reason_stop() {
        let mut s = ChatStream::default();
        let events = push_all(
            &mut s,
            &[
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "id": "x", "function": {"name": "f", "arguments": "{}"}}]}}]}),
                finish("stop"),
            ],
        );
        assert_eq!(
            events,
            vec![
                ChatEvent::ToolCalls(vec![call("x", "f", "{}")]),
                ChatEvent::Finished {
                    reason: FinishReason::Stop
                }
            ]
        );
    }

    #[test]
    fn a_new_id_at_the_same_index_is_a_new_call() {
        let mut s = ChatStream::default();
        push_all(
            &mut s,
            &[
                json!({"choices": [{"delta": {"tool_calls": [
                    {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}}]}),
                json!({"choices": [{"delta": {"tool_calls": [
                    {"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}}]}),
                json!({"choices": [{"delta": {"tool_calls": [
                    {"index": 0, "id": "b", "function": {"name": "g", "arguments": ""}}]}}]}),
            ],
        );
        assert_eq!(
            s.finish().unwrap(),
            vec![ChatEvent::ToolCalls(vec![
                call("a", "f", "{}"),
                call("b", "g", "{}")
            ])]
        );
    }

    #[test]
    fn a_whole_non_streamed_completion_is_accepted() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sure.",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}
                ]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        });
        let mut s = ChatStream::default();
        let mut events = s.push_data(&body.to_string()).unwrap();
        events.extend(s.finish().unwrap());
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
        };
        assert_eq!(
            events,
            vec![
                text("Sure."),
                ChatEvent::ToolCalls(vec![call("c1", "f", r#"{"a":1}"#), call("c2", "g", "{}")]),
                ChatEvent::Finished {
                    reason: FinishReason::ToolCalls
                },
                ChatEvent::Usage(usage),
            ]
        );
    }

    #[test]
    fn finish_reasons_parse() {
        for (s, r) in [
            ("stop", FinishReason::Stop),
            ("length", FinishReason::Length),
            ("tool_calls", FinishReason::ToolCalls),
            ("content_filter", FinishReason::ContentFilter),
            ("function_call", FinishReason::Other("function_call".into())),
        ] {
            let mut st = ChatStream::default();
            let events = st.push_data(&finish(s).to_string()).unwrap();
            assert_eq!(events, vec![ChatEvent::Finished { reason: r.clone() }]);
            assert_eq!(r.as_str(), s);
        }
    }

    #[test]
    fn only_the_first_finish_reason_counts() {
        let mut s = ChatStream::default();
        let events = push_all(&mut s, &[finish("length"), finish("stop")]);
        assert_eq!(
            events,
            vec![ChatEvent::Finished {
                reason: FinishReason::Length
            }]
        );
    }

    #[test]
    fn done_ends_the_stream_and_later_data_is_ignored() {
        let mut s = ChatStream::default();
        assert_eq!(s.push_data(" [DONE] ").unwrap(), vec![ChatEvent::Done]);
        assert!(s.is_done());
        assert_eq!(s.push_data(&content("late").to_string()).unwrap(), vec![]);
        assert_eq!(s.push_data("garbage").unwrap(), vec![]);
    }

    #[test]
    fn error_objects_are_backend_errors() {
        let mut s = ChatStream::default();
        push_all(&mut s, &[content("Hi")]);
        let err = s
            .push_data(r#"{"error": {"message": "model overloaded", "type": "server_error", "code": 503}}"#)
            .unwrap_err();
        assert_eq!(err, LlmError::Backend("model overloaded".into()));
        let err = ChatStream::default()
            .push_data(r#"{"error": "bare string"}"#)
            .unwrap_err();
        assert_eq!(err, LlmError::Backend("bare string".into()));
        let err = ChatStream::default()
            .push_data(r#"{"object": "error", "message": "bad request", "code": 400}"#)
            .unwrap_err();
        assert_eq!(err, LlmError::Backend("bad request".into()));
        let long = "e".repeat(5000);
        let err = ChatStream::default()
            .push_data(&json!({"error": {"message": long}}).to_string())
            .unwrap_err();
        assert!(matches!(err, LlmError::Backend(m) if m.len() == MAX_ERROR_TEXT));
    }

    #[test]
    fn usage_only_chunk_reports_usage() {
        let mut s = ChatStream::default();
        let events = push_all(
            &mut s,
            &[
                content("x"),
                finish("stop"),
                json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": null}}),
            ],
        );
        assert_eq!(
            events.last(),
            Some(&ChatEvent::Usage(Usage {
                prompt_tokens: 3,
                completion_tokens: 1,
                total_tokens: 0
            }))
        );
        assert_eq!(
            completion_of(&events).usage.map(|u| u.prompt_tokens),
            Some(3)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for data in [
            "{not json",
            "[1,2]",
            "\"text\"",
            r#"{"choices": [{"delta": {"content": 5}}]}"#,
        ] {
            let err = ChatStream::default().push_data(data).unwrap_err();
            assert!(matches!(err, LlmError::Malformed(_)), "{data}: {err:?}");
        }
    }

    #[test]
    fn an_answer_without_chunks_is_malformed() {
        let mut s = ChatStream::default();
        assert_eq!(s.push_data("  ").unwrap(), vec![]);
        assert!(matches!(s.finish(), Err(LlmError::Malformed(_))));
    }

    #[test]
    fn text_is_capped() {
        let limits = StreamLimits {
            max_text_bytes: 10,
            ..StreamLimits::default()
        };
        let mut s = ChatStream::new(limits);
        s.push_data(&content("12345").to_string()).unwrap();
        s.push_data(&content("67890").to_string()).unwrap();
        let err = s.push_data(&content("1").to_string()).unwrap_err();
        assert_eq!(
            err,
            LlmError::TooLarge {
                what: "text bytes",
                limit: 10
            }
        );
    }

    #[test]
    fn tool_call_arguments_are_capped() {
        let limits = StreamLimits {
            max_tool_call_bytes: 32,
            ..StreamLimits::default()
        };
        let mut s = ChatStream::new(limits);
        let frag = |a: &str| {
            json!({"choices": [{"delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": a}}]}}]})
            .to_string()
        };
        s.push_data(&frag("0123456789")).unwrap();
        s.push_data(&frag("0123456789")).unwrap();
        s.push_data(&frag("0123456789")).unwrap();
        assert!(matches!(
            s.push_data(&frag("0123456789")),
            Err(LlmError::TooLarge {
                what: "tool call bytes",
                limit: 32
            })
        ));
    }

    #[test]
    fn tool_call_count_is_capped() {
        let limits = StreamLimits {
            max_tool_calls: 2,
            ..StreamLimits::default()
        };
        let mut s = ChatStream::new(limits);
        let new_call = |i: u64| {
            json!({"choices": [{"delta": {"tool_calls": [
                {"index": i, "id": format!("c{i}"), "function": {"name": "f"}}]}}]})
            .to_string()
        };
        s.push_data(&new_call(0)).unwrap();
        s.push_data(&new_call(1)).unwrap();
        assert!(matches!(
            s.push_data(&new_call(4_000_000_000)),
            Err(LlmError::TooLarge {
                what: "tool call count",
                limit: 2
            })
        ));
    }

    #[test]
    fn repeated_whole_name_is_not_doubled() {
        let mut s = ChatStream::default();
        let frag = |a: &str| {
            json!({"choices": [{"delta": {"tool_calls": [
                {"index": 0, "id": "x", "function": {"name": "lookup", "arguments": a}}]}}]})
            .to_string()
        };
        s.push_data(&frag("{\"q\":")).unwrap();
        s.push_data(&frag("1}")).unwrap();
        assert_eq!(
            s.finish().unwrap(),
            vec![ChatEvent::ToolCalls(vec![call("x", "lookup", "{\"q\":1}")])]
        );
    }

    #[test]
    fn text_only_completion_message_and_empty_answer() {
        let c = Completion::default();
        assert_eq!(c.to_message(), Message::assistant_text(""));
    }
}
