//! `SWAIG.mcp_servers` (swml.md §6.1): tools discovered from Model Context Protocol servers
//! over the Streamable HTTP transport — `initialize` (the server may hand out a session in
//! `Mcp-Session-Id`), `notifications/initialized`, `tools/list` before the first turn, then
//! `tools/call` for each call of one of its tools. Sans-IO: each step is an [`HttpRequest`]
//! the runtime performs; an answer is a JSON-RPC message as JSON or as a Server-Sent Events
//! stream.

use serde_json::{json, Value};

use crate::run::{HttpRequest, HttpResponse};

const TIMEOUT_MS: u64 = 10_000;
/// The protocol revision dialtone asks for (the server answers with the one it speaks).
const PROTOCOL_VERSION: &str = "2025-06-18";
/// Most `SWAIG.mcp_servers` an agent or a sidecar uses.
pub const MAX_SERVERS: usize = 8;
/// Most tools taken from one server, and longest tool result kept.
const MAX_TOOLS: usize = 64;
const MAX_RESULT_CHARS: usize = 16 * 1024;

/// One server of `SWAIG.mcp_servers`.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    pub url: String,
    headers: Vec<(String, String)>,
    session: Option<String>,
    protocol: Option<String>,
    next_id: u64,
}

/// Where a server's discovery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    Initialize,
    Initialized,
    ListTools,
}

impl McpServer {
    /// A server entry `{url, headers?}`; `None` without a usable URL.
    pub fn of(entry: &Value) -> Option<McpServer> {
        let url = entry.get("url")?.as_str()?.trim();
        if url.is_empty() {
            return None;
        }
        let headers = super::string_pairs(entry.get("headers"));
        Some(McpServer {
            url: url.to_string(),
            headers,
            session: None,
            protocol: None,
            next_id: 0,
        })
    }

    /// The request of a discovery step (its JSON-RPC id is the server's last).
    pub fn discovery_request(&mut self, step: Discovery) -> HttpRequest {
        match step {
            Discovery::Initialize => self.request(
                "initialize",
                json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                       "clientInfo": {"name": "dialtone", "version": env!("CARGO_PKG_VERSION")}}),
                true,
            ),
            Discovery::Initialized => self.request("notifications/initialized", Value::Null, false),
            Discovery::ListTools => self.request("tools/list", json!({}), true),
        }
    }

    /// `tools/call` of `name` with the model's `arguments`.
    pub fn call_request(&mut self, name: &str, arguments: Value) -> HttpRequest {
        let arguments = if arguments.is_object() {
            arguments
        } else {
            json!({})
        };
        self.request(
            "tools/call",
            json!({"name": name, "arguments": arguments}),
            true,
        )
    }

    fn request(&mut self, method: &str, params: Value, with_id: bool) -> HttpRequest {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if with_id {
            self.next_id += 1;
            message["id"] = json!(self.next_id);
        }
        if !params.is_null() {
            message["params"] = params;
        }
        let mut headers = self.headers.clone();
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push((
            "Accept".into(),
            "application/json, text/event-stream".into(),
        ));
        if let Some(session) = &self.session {
            headers.push(("Mcp-Session-Id".into(), session.clone()));
        }
        if let Some(version) = &self.protocol {
            headers.push(("MCP-Protocol-Version".into(), version.clone()));
        }
        HttpRequest {
            url: self.url.clone(),
            method: "POST".into(),
            headers,
            body: Some(message.to_string()),
            timeout_ms: TIMEOUT_MS,
            connect_timeout_ms: TIMEOUT_MS,
            save_variables: false,
            filler: None,
        }
    }

    /// The answer to the server's last request: its JSON-RPC `result`. The session and the
    /// protocol revision an `initialize` answer gives are kept.
    pub fn on_answer(&mut self, answer: &HttpResponse) -> Result<Value, String> {
        if !(200..300).contains(&answer.code) {
            return Err(format!("HTTP {}", answer.code));
        }
        if let Some((_, session)) = answer
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("mcp-session-id"))
        {
            self.session = Some(session.clone());
        }
        let result = rpc_result(&answer.body, self.next_id)?;
        if let Some(version) = result.get("protocolVersion").and_then(Value::as_str) {
            self.protocol = Some(version.to_string());
        }
        Ok(result)
    }

    /// A notification's answer: any 2xx.
    pub fn on_notified(&self, answer: &HttpResponse) -> Result<(), String> {
        if (200..300).contains(&answer.code) {
            Ok(())
        } else {
            Err(format!("HTTP {}", answer.code))
        }
    }
}

/// The `result` of the JSON-RPC response with `id` in `body` (JSON, or SSE `data:` lines).
fn rpc_result(body: &str, id: u64) -> Result<Value, String> {
    let messages: Vec<Value> = match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(batch)) => batch,
        Ok(one) => vec![one],
        Err(_) => body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect(),
    };
    let response = messages
        .into_iter()
        .find(|m| m.get("id").and_then(Value::as_u64) == Some(id))
        .ok_or_else(|| "no answer to the request".to_string())?;
    if let Some(error) = response.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("an error");
        return Err(format!("the server answered: {message}"));
    }
    response
        .get("result")
        .cloned()
        .ok_or_else(|| "an answer without a result".to_string())
}

/// A `tools/list` result as SWAIG function definitions (`inputSchema` as the parameters).
pub fn tool_definitions(result: &Value) -> Vec<Value> {
    result
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let name = t.get("name")?.as_str()?;
            let schema = t
                .get("inputSchema")
                .filter(|s| s.is_object())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            Some(json!({"function": name,
                        "description": t.get("description").and_then(Value::as_str).unwrap_or(name),
                        "parameters": schema}))
        })
        .take(MAX_TOOLS)
        .collect()
}

/// A `tools/call` result as the text the model gets: its text content (structured content
/// as JSON when there is no text); a result marked `isError` says the tool failed.
pub fn call_text(result: &Value) -> String {
    let mut text: String = result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    if text.is_empty() {
        if let Some(structured) = result.get("structuredContent") {
            text = structured.to_string();
        }
    }
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        text = format!("The tool failed: {text}");
    }
    if text.chars().count() > MAX_RESULT_CHARS {
        text = text.chars().take(MAX_RESULT_CHARS).collect();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            code: 200,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    #[test]
    fn a_server_is_initialised_listed_and_called() {
        let mut s =
            McpServer::of(&json!({"url": "http://mcp.test/mcp", "headers": {"X-Key": "k"}}))
                .unwrap();
        let init = s.discovery_request(Discovery::Initialize);
        assert_eq!(init.method, "POST");
        assert!(init.headers.contains(&("X-Key".into(), "k".into())));
        let body: Value = serde_json::from_str(init.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["method"], "initialize");
        assert_eq!(body["id"], 1);
        // The answer as an SSE stream, with the session in a header.
        let result = s
            .on_answer(&answer(
                &[("mcp-session-id", "sess-9"), ("content-type", "text/event-stream")],
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-03-26\"}}\n\n",
            ))
            .unwrap();
        assert_eq!(result["protocolVersion"], "2025-03-26");
        let note = s.discovery_request(Discovery::Initialized);
        let body: Value = serde_json::from_str(note.body.as_deref().unwrap()).unwrap();
        assert!(body.get("id").is_none(), "a notification has no id");
        assert!(note
            .headers
            .contains(&("Mcp-Session-Id".into(), "sess-9".into())));
        assert!(note
            .headers
            .contains(&("MCP-Protocol-Version".into(), "2025-03-26".into())));
        let list = s.discovery_request(Discovery::ListTools);
        assert!(list.body.as_deref().unwrap().contains("\"id\":2"));
        let tools = s
            .on_answer(&answer(&[], r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[
                {"name":"get_weather","description":"Weather","inputSchema":{"type":"object","properties":{"city":{"type":"string"}}}},
                {"name":"bare"}, {"description":"no name"}]}}"#))
            .unwrap();
        let defs = tool_definitions(&tools);
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0]["function"], "get_weather");
        assert_eq!(
            defs[0]["parameters"]["properties"]["city"]["type"],
            "string"
        );
        assert_eq!(
            defs[1]["parameters"],
            json!({"type": "object", "properties": {}})
        );
        let call = s.call_request("get_weather", json!({"city": "Paris"}));
        assert!(call
            .body
            .as_deref()
            .unwrap()
            .contains(r#""arguments":{"city":"Paris"}"#));
        let result = s
            .on_answer(&answer(&[], r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"sunny"},{"type":"image","data":"x"}]}}"#))
            .unwrap();
        assert_eq!(call_text(&result), "sunny");
        assert_eq!(
            call_text(&json!({"content": [{"type": "text", "text": "no city"}], "isError": true})),
            "The tool failed: no city"
        );
        assert_eq!(
            call_text(&json!({"content": [], "structuredContent": {"t": 1}})),
            r#"{"t":1}"#
        );
    }

    #[test]
    fn bad_answers_are_errors() {
        let mut s = McpServer::of(&json!({"url": "http://mcp.test/mcp"})).unwrap();
        s.discovery_request(Discovery::Initialize);
        assert!(s.on_answer(&answer(&[], "<html>")).is_err());
        assert!(s
            .on_answer(&answer(&[], r#"{"jsonrpc":"2.0","id":7,"result":{}}"#))
            .is_err());
        let e = s
            .on_answer(&answer(
                &[],
                r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no such method"}}"#,
            ))
            .unwrap_err();
        assert!(e.contains("no such method"), "{e}");
        let mut down = answer(&[], "");
        down.code = 500;
        assert!(s.on_answer(&down).is_err());
        assert!(s.on_notified(&down).is_err());
        assert!(McpServer::of(&json!({"url": " "})).is_none());
        assert!(McpServer::of(&json!({})).is_none());
    }
}
