//! The client against an in-test OpenAI-compatible server on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use futures_util::future::{BoxFuture, FutureExt};
use llm::{
    BackendConfig, ChatBackend, ChatEvent, ChatRequest, Completion, FinishReason, Flow, LlmError,
    Message, OpenAiClient, Tool, ToolCall, Usage,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A server answering every request with `answer()`.
async fn serve(
    answer: impl Fn() -> BoxFuture<'static, Response> + Send + Sync + 'static,
) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let answer = Arc::new(answer);
    let seen2 = seen.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let (seen, answer) = (seen2.clone(), answer.clone());
        async move {
            seen.lock().unwrap().push(Seen {
                path: uri.path().to_owned(),
                headers,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
            answer().await
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, seen }
}

/// What the streamed body does after its last piece.
#[derive(Clone, Copy)]
enum Then {
    End,
    /// Keeps the connection open, sending nothing.
    Hold,
    /// Breaks the connection.
    Fail,
}

/// `text` in pieces of `n` bytes (splitting lines and characters anywhere).
fn pieces(text: &str, n: usize) -> Vec<Vec<u8>> {
    text.as_bytes().chunks(n).map(<[u8]>::to_vec).collect()
}

/// A streamed answer: `pieces`, `gap` apart. `gone` is notified when the client is seen to
/// have gone away (a piece could not be sent).
fn streamed(
    content_type: &'static str,
    pieces: Vec<Vec<u8>>,
    gap: Duration,
    then: Then,
    gone: Option<Arc<Notify>>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let went_away = || {
            if let Some(g) = &gone {
                g.notify_one();
            }
        };
        for p in pieces {
            tokio::time::sleep(gap).await;
            if tx.send(Ok(Bytes::from(p))).await.is_err() {
                went_away();
                return;
            }
        }
        match then {
            Then::End => {}
            Then::Hold => {
                tx.closed().await;
                went_away();
            }
            Then::Fail => {
                let _ = tx.send(Err(std::io::Error::other("cut"))).await;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(stream))
        .unwrap()
}

fn sse_text(chunks: &[Value], done: bool) -> String {
    let mut text = String::from(": keep-alive\n\n");
    for c in chunks {
        text.push_str(&format!("data: {c}\n\n"));
    }
    if done {
        text.push_str("data: [DONE]\n\n");
    }
    text
}

fn content(t: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
           "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]})
}

fn finish(reason: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
           "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

fn tool_delta(index: u64, delta: Value) -> Value {
    let mut d = delta;
    d["index"] = json!(index);
    json!({"choices": [{"index": 0, "delta": {"tool_calls": [d]}, "finish_reason": null}]})
}

fn config(addr: SocketAddr) -> BackendConfig {
    let mut c = BackendConfig::new(format!("http://{addr}/v1"), "test-model");
    c.api_key = Some("sk-test".into());
    c.first_byte_timeout = Duration::from_secs(5);
    c.idle_timeout = Duration::from_secs(5);
    c
}

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather in a city.",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

fn request() -> ChatRequest {
    let mut req = ChatRequest::new(vec![
        Message::system("You answer phone calls. Be brief."),
        Message::user("Weather in Paris?"),
        Message::assistant_tool_calls(vec![ToolCall {
            id: "call_0".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        }]),
        Message::tool_result("call_0", r#"{"sky":"clear"}"#),
    ])
    .with_tools(vec![weather_tool()]);
    req.temperature = Some(0.2);
    req
}

/// Runs one request, collecting the events; no test may hang.
async fn run(
    client: &OpenAiClient,
    req: &ChatRequest,
    stop_after: Option<usize>,
) -> (Vec<ChatEvent>, Result<Completion, LlmError>) {
    let mut events = Vec::new();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        client.chat_stream(req, |e| {
            events.push(e);
            if stop_after.is_some_and(|n| events.len() >= n) {
                Flow::Stop
            } else {
                Flow::Continue
            }
        }),
    )
    .await
    .expect("the client returned");
    (events, result)
}

fn text(s: &str) -> ChatEvent {
    ChatEvent::TextDelta(s.into())
}

#[tokio::test]
async fn streamed_text_arrives_in_order_and_request_is_as_sent() {
    let chunks = [
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
        content("It is"),
        content(" clear"),
        content(" in Par"),
        content("is \u{2600}\u{fe0f}."),
        finish("stop"),
        json!({"choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}),
    ];
    let body = sse_text(&chunks, true);
    let server = serve(move || {
        let body = body.clone();
        async move {
            streamed(
                "text/event-stream",
                pieces(&body, 7),
                Duration::from_millis(2),
                Then::End,
                None,
            )
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let mut req = request();
    req.include_usage = true;
    let (events, result) = run(&client, &req, None).await;
    let completion = result.unwrap();

    let usage = Usage {
        prompt_tokens: 42,
        completion_tokens: 7,
        total_tokens: 49,
    };
    assert_eq!(
        events,
        vec![
            text("It is"),
            text(" clear"),
            text(" in Par"),
            text("is \u{2600}\u{fe0f}."),
            ChatEvent::Finished {
                reason: FinishReason::Stop
            },
            ChatEvent::Usage(usage),
            ChatEvent::Done,
        ]
    );
    assert_eq!(
        completion,
        Completion {
            text: "It is clear in Paris \u{2600}\u{fe0f}.".into(),
            tool_calls: vec![],
            finish_reason: Some(FinishReason::Stop),
            usage: Some(usage),
            stopped: false,
        }
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.path, "/v1/chat/completions");
    assert_eq!(s.headers["authorization"], "Bearer sk-test");
    assert_eq!(s.headers["accept"], "text/event-stream");
    assert_eq!(s.headers["content-type"], "application/json");
    assert_eq!(s.body["stream"], json!(true));
    assert_eq!(s.body["model"], json!("test-model"));
    assert_eq!(s.body["temperature"], json!(0.2));
    assert_eq!(s.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        s.body["messages"],
        serde_json::to_value(&req.messages).unwrap()
    );
    assert_eq!(
        s.body["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
               "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
    );
    assert_eq!(
        s.body["tools"],
        json!([{"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}])
    );
    assert!(s.body.get("top_p").is_none());
    assert!(s.body.get("tool_choice").is_none());
}

#[tokio::test]
async fn streamed_tool_calls_make_the_completion() {
    let chunks = [
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": null,
            "tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                            "function": {"name": "get_", "arguments": ""}}]}}]}),
        tool_delta(
            1,
            json!({"id": "call_b", "type": "function", "function": {"name": "trans"}}),
        ),
        tool_delta(
            0,
            json!({"function": {"name": "weather", "arguments": "{\"city\""}}),
        ),
        tool_delta(
            1,
            json!({"function": {"name": "fer", "arguments": "{\"to\": \"sa"}}),
        ),
        tool_delta(0, json!({"function": {"arguments": ": \"Paris\"}"}})),
        tool_delta(1, json!({"function": {"arguments": "les\"}"}})),
        finish("tool_calls"),
    ];
    let body = sse_text(&chunks, true).replace('\n', "\r\n");
    let server = serve(move || {
        let body = body.clone();
        async move {
            streamed(
                "text/event-stream; charset=utf-8",
                pieces(&body, 5),
                Duration::from_millis(1),
                Then::End,
                None,
            )
        }
        .boxed()
    })
    .await;
    // No key, and a base URL ending with a slash.
    let mut cfg = config(server.addr);
    cfg.api_key = None;
    cfg.base_url.push('/');
    let client = OpenAiClient::new(cfg).unwrap();
    let (events, result) = run(&client, &request(), None).await;
    let completion = result.unwrap();

    let calls = vec![
        ToolCall {
            id: "call_a".into(),
            name: "get_weather".into(),
            arguments: r#"{"city": "Paris"}"#.into(),
        },
        ToolCall {
            id: "call_b".into(),
            name: "transfer".into(),
            arguments: r#"{"to": "sales"}"#.into(),
        },
    ];
    assert_eq!(
        events,
        vec![
            ChatEvent::ToolCalls(calls.clone()),
            ChatEvent::Finished {
                reason: FinishReason::ToolCalls
            },
            ChatEvent::Done,
        ]
    );
    assert_eq!(completion.tool_calls, calls);
    assert_eq!(completion.text, "");
    assert_eq!(completion.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        completion.tool_calls[0].arguments_json().unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        completion.tool_calls[1].arguments_json().unwrap(),
        json!({"to": "sales"})
    );
    assert_eq!(
        completion.to_message(),
        Message::assistant_tool_calls(calls)
    );
    let seen = server.seen();
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert!(seen[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn unauthorized_is_a_status_error_with_the_body() {
    let server = serve(|| {
        async {
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"error": {"message": "Incorrect API key provided: sk-te**st.",
                                     "type": "invalid_request_error", "param": null,
                                     "code": "invalid_api_key"}})
                    .to_string(),
                ))
                .unwrap()
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let (events, result) = run(&client, &request(), None).await;
    assert!(events.is_empty());
    match result {
        Err(LlmError::Status { code, body_excerpt }) => {
            assert_eq!(code, 401);
            assert!(
                body_excerpt.contains("Incorrect API key provided"),
                "{body_excerpt}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn long_error_body_is_cut_to_an_excerpt() {
    let server = serve(|| {
        async {
            let page = format!("<html>{}</html>", "\u{e9}".repeat(20_000));
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::from(page))
                .unwrap()
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let (_, result) = run(&client, &request(), None).await;
    match result {
        Err(LlmError::Status { code, body_excerpt }) => {
            assert_eq!(code, 502);
            assert!(body_excerpt.len() <= 500, "{}", body_excerpt.len());
            assert!(body_excerpt.starts_with("<html>\u{e9}"));
            assert!(!body_excerpt.contains('\u{fffd}'));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn no_answer_at_all_is_a_first_byte_timeout() {
    let server = serve(|| {
        async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Response::new(Body::empty())
        }
        .boxed()
    })
    .await;
    let mut cfg = config(server.addr);
    cfg.first_byte_timeout = Duration::from_millis(300);
    let client = OpenAiClient::new(cfg).unwrap();
    let started = Instant::now();
    let (events, result) = run(&client, &request(), None).await;
    assert_eq!(
        result,
        Err(LlmError::FirstByteTimeout(Duration::from_millis(300)))
    );
    assert!(events.is_empty());
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn headers_without_a_body_is_a_first_byte_timeout() {
    let server = serve(|| {
        async {
            streamed(
                "text/event-stream",
                Vec::new(),
                Duration::ZERO,
                Then::Hold,
                None,
            )
        }
        .boxed()
    })
    .await;
    let mut cfg = config(server.addr);
    cfg.first_byte_timeout = Duration::from_millis(300);
    let client = OpenAiClient::new(cfg).unwrap();
    let (_, result) = run(&client, &request(), None).await;
    assert_eq!(
        result,
        Err(LlmError::FirstByteTimeout(Duration::from_millis(300)))
    );
}

#[tokio::test]
async fn stalled_answer_is_an_idle_timeout() {
    let body = sse_text(&[content("Let me"), content(" check")], false);
    let server = serve(move || {
        let body = body.clone();
        async move {
            streamed(
                "text/event-stream",
                pieces(&body, 1000),
                Duration::ZERO,
                Then::Hold,
                None,
            )
        }
        .boxed()
    })
    .await;
    let mut cfg = config(server.addr);
    cfg.idle_timeout = Duration::from_millis(300);
    let client = OpenAiClient::new(cfg).unwrap();
    let started = Instant::now();
    let (events, result) = run(&client, &request(), None).await;
    assert_eq!(
        result,
        Err(LlmError::IdleTimeout(Duration::from_millis(300)))
    );
    assert_eq!(events, vec![text("Let me"), text(" check")]);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = OpenAiClient::new(config(addr)).unwrap();
    let (events, result) = run(&client, &request(), None).await;
    assert!(events.is_empty());
    assert!(matches!(result, Err(LlmError::Connect(_))), "{result:?}");
}

#[tokio::test]
async fn stop_returns_at_once_with_what_came_and_drops_the_answer() {
    let mut chunks = vec![content("Sure, ")];
    chunks.extend((0..200).map(|i| content(&format!("word{i} "))));
    chunks.push(finish("stop"));
    let body = sse_text(&chunks, true);
    let gone = Arc::new(Notify::new());
    let gone2 = gone.clone();
    let server = serve(move || {
        let (body, gone) = (body.clone(), gone2.clone());
        async move {
            // One event per piece (the keep-alive comment first), 50 ms apart: 10 s in all.
            let events = body.split_inclusive("\n\n").map(|e| e.as_bytes().to_vec());
            streamed(
                "text/event-stream",
                events.collect(),
                Duration::from_millis(50),
                Then::End,
                Some(gone),
            )
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let started = Instant::now();
    let (events, result) = run(&client, &request(), Some(1)).await;
    let elapsed = started.elapsed();
    let completion = result.unwrap();
    assert_eq!(events, vec![text("Sure, ")]);
    assert_eq!(completion.text, "Sure, ");
    assert!(completion.stopped);
    assert_eq!(completion.finish_reason, None);
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // The server notices: its next pieces cannot be sent.
    tokio::time::timeout(Duration::from_secs(5), gone.notified())
        .await
        .expect("the server saw the client go away");
}

#[tokio::test]
async fn non_streamed_json_answer_is_accepted() {
    let server = serve(|| {
        async {
            let doc = json!({
                "id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "test-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "One moment.",
                    "tool_calls": [{"id": "call_x", "type": "function",
                                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                    "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
            });
            streamed(
                "application/json",
                pieces(&doc.to_string(), 16),
                Duration::from_millis(1),
                Then::End,
                None,
            )
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let (events, result) = run(&client, &request(), None).await;
    let completion = result.unwrap();
    let call = ToolCall {
        id: "call_x".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Oslo"}"#.into(),
    };
    assert_eq!(events[0], text("One moment."));
    assert_eq!(events[1], ChatEvent::ToolCalls(vec![call.clone()]));
    assert_eq!(completion.text, "One moment.");
    assert_eq!(completion.tool_calls, vec![call]);
    assert_eq!(completion.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(completion.usage.map(|u| u.total_tokens), Some(21));
    assert!(!completion.stopped);
    let message = completion.to_message();
    assert_eq!(message.content.as_deref(), Some("One moment."));
    assert_eq!(message.tool_calls.len(), 1);
}

#[tokio::test]
async fn error_object_mid_stream_is_a_backend_error() {
    let body = sse_text(
        &[
            content("Hel"),
            json!({"error": {"message": "CUDA out of memory", "type": "server_error", "code": 500}}),
        ],
        false,
    );
    let server = serve(move || {
        let body = body.clone();
        async move {
            streamed(
                "text/event-stream",
                pieces(&body, 9),
                Duration::ZERO,
                Then::End,
                None,
            )
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let (events, result) = run(&client, &request(), None).await;
    assert_eq!(events, vec![text("Hel")]);
    assert_eq!(result, Err(LlmError::Backend("CUDA out of memory".into())));
}

#[tokio::test]
async fn error_event_is_a_backend_error() {
    let body =
        "event: error\ndata: {\"error\": {\"message\": \"context too long\"}}\n\n".to_owned();
    let server = serve(move || {
        let body = body.clone();
        async move {
            streamed(
                "text/event-stream",
                pieces(&body, 100),
                Duration::ZERO,
                Then::End,
                None,
            )
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let (_, result) = run(&client, &request(), None).await;
    assert_eq!(result, Err(LlmError::Backend("context too long".into())));
}

#[tokio::test]
async fn connection_cut_mid_answer_is_a_transport_error() {
    let body = sse_text(&[content("Hel")], false);
    let server = serve(move || {
        let body = body.clone();
        async move {
            streamed(
                "text/event-stream",
                pieces(&body, 100),
                Duration::ZERO,
                Then::Fail,
                None,
            )
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let (events, result) = run(&client, &request(), None).await;
    assert_eq!(events, vec![text("Hel")]);
    assert!(matches!(result, Err(LlmError::Transport(_))), "{result:?}");
}

#[tokio::test]
async fn answer_ending_without_done_is_accepted() {
    let body = sse_text(&[content("Bye."), finish("stop")], false);
    let server = serve(move || {
        let body = body.clone();
        async move {
            streamed(
                "text/event-stream",
                pieces(&body, 100),
                Duration::ZERO,
                Then::End,
                None,
            )
        }
        .boxed()
    })
    .await;
    let client = OpenAiClient::new(config(server.addr)).unwrap();
    let (_, result) = run(&client, &request(), None).await;
    let completion = result.unwrap();
    assert_eq!(completion.text, "Bye.");
    assert_eq!(completion.finish_reason, Some(FinishReason::Stop));
}

#[tokio::test]
async fn works_through_the_backend_trait_on_another_task() {
    let body = sse_text(&[content("Hi"), finish("stop")], true);
    let server = serve(move || {
        let body = body.clone();
        async move {
            streamed(
                "text/event-stream",
                pieces(&body, 100),
                Duration::ZERO,
                Then::End,
                None,
            )
        }
        .boxed()
    })
    .await;
    let backend: Arc<dyn ChatBackend> = Arc::new(OpenAiClient::new(config(server.addr)).unwrap());
    let mut req = request();
    req.model = Some("other-model".into());
    let completion = tokio::spawn(async move {
        let mut deltas = 0;
        let c = backend
            .chat_stream(&req, &mut |e| {
                if matches!(e, ChatEvent::TextDelta(_)) {
                    deltas += 1;
                }
                Flow::Continue
            })
            .await;
        (deltas, c)
    })
    .await
    .unwrap();
    assert_eq!(completion.0, 1);
    assert_eq!(completion.1.unwrap().text, "Hi");
    assert_eq!(server.seen()[0].body["model"], json!("other-model"));
}
