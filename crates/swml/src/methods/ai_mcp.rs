//! `SWAIG.mcp_servers` (swml.md §6.1): tools discovered from Model Context Protocol servers
//! over the Streamable HTTP transport — `initialize` (the server may hand out a session in
//! `Mcp-Session-Id`), `notifications/initialized`, `tools/list` before the first turn, then
//! `tools/call` for each call of one of its tools. A server with `resources: true` is also read
//! before the first turn (`resources/list`, `resources/templates/list` with the URI templates
//! filled from `resource_vars`, `resources/read` of each): what it holds goes into the agent's
//! `global_data`. Sans-IO: each step is an [`HttpRequest`]
//! the runtime performs; an answer is a JSON-RPC message as JSON or as a Server-Sent Events
//! stream.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

use crate::run::{HttpRequest, HttpResponse};

const TIMEOUT_MS: u64 = 10_000;
/// The protocol revision dialtone asks for (the server answers with the one it speaks).
const PROTOCOL_VERSION: &str = "2025-06-18";
/// Most `SWAIG.mcp_servers` an agent or a sidecar uses.
pub const MAX_SERVERS: usize = 8;
/// Most tools taken from one server, and longest tool result kept.
const MAX_TOOLS: usize = 64;
const MAX_RESULT_CHARS: usize = 16 * 1024;
/// Most resources read from one server.
const MAX_RESOURCES: usize = 16;

/// One server of `SWAIG.mcp_servers`.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    pub url: String,
    headers: Vec<(String, String)>,
    session: Option<String>,
    protocol: Option<String>,
    next_id: u64,
    /// `resources: true`: its resources are read into `global_data`.
    pub resources: bool,
    /// `resource_vars`: the values of the URI templates' variables (before expansion).
    pub resource_vars: Vec<(String, String)>,
    /// Resources still to read: their name and URI.
    to_read: VecDeque<(String, String)>,
}

/// Where a server's discovery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    Initialize,
    Initialized,
    ListTools,
    ListResources,
    ListTemplates,
    ReadResource,
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
            resources: entry.get("resources").and_then(super::as_bool) == Some(true),
            resource_vars: super::string_pairs(entry.get("resource_vars")),
            to_read: VecDeque::new(),
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
            Discovery::ListResources => self.request("resources/list", json!({}), true),
            Discovery::ListTemplates => self.request("resources/templates/list", json!({}), true),
            Discovery::ReadResource => {
                let uri = self.to_read.front().map_or("", |(_, uri)| uri.as_str());
                let params = json!({"uri": uri});
                self.request("resources/read", params, true)
            }
        }
    }

    /// A `resources/list` result: its resources are to be read.
    pub fn on_resource_list(&mut self, result: &Value) {
        for r in listed(result, "resources") {
            if let (Some(uri), name) = (text_of(r, "uri"), text_of(r, "name")) {
                self.queue_read(name.unwrap_or(uri), uri);
            }
        }
    }

    /// A `resources/templates/list` result: each template whose variables `vars` all give is
    /// filled (RFC 6570's simple `{var}`, the value percent-encoded) and to be read.
    pub fn on_template_list(&mut self, result: &Value, vars: &[(String, String)]) {
        for t in listed(result, "resourceTemplates") {
            let Some(template) = text_of(t, "uriTemplate") else {
                continue;
            };
            if let Some(uri) = fill_template(template, vars) {
                self.queue_read(text_of(t, "name").unwrap_or(template), &uri);
            }
        }
    }

    fn queue_read(&mut self, name: &str, uri: &str) {
        if self.to_read.len() < MAX_RESOURCES {
            self.to_read.push_back((name.to_string(), uri.to_string()));
        }
    }

    /// A resource is still to be read.
    pub fn has_reads(&self) -> bool {
        !self.to_read.is_empty()
    }

    /// The resource being read is done (read, or not to be had).
    pub fn read_done(&mut self) {
        self.to_read.pop_front();
    }

    /// A `resources/read` result of the resource being read: what goes into `global_data` —
    /// a JSON object's keys, else its text under the resource's name.
    pub fn on_read(&mut self, result: &Value) -> Map<String, Value> {
        let name = self
            .to_read
            .front()
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        self.read_done();
        let mut out = Map::new();
        for content in listed(result, "contents") {
            let Some(text) = text_of(content, "text") else {
                continue;
            };
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(fields)) => out.extend(fields),
                _ => {
                    let kept: String = text.chars().take(MAX_RESULT_CHARS).collect();
                    out.insert(name.clone(), Value::String(kept));
                }
            }
        }
        out
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

fn listed<'a>(result: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    result
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn text_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|t| !t.is_empty())
}

/// `template` with each `{name}` replaced by its value in `vars`, encoded as a URI path segment
/// is (RFC 3986 `pchar`: `+`, `:`, `@` and the other sub-delimiters stay, so a caller's E.164
/// number reads as itself — the official MCP SDK does not decode template values); `None`
/// when one has no value.
fn fill_template(template: &str, vars: &[(String, String)]) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let name = &rest[open + 1..close];
        let (_, value) = vars.iter().find(|(k, _)| k == name)?;
        out.push_str(&path_segment(value));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn path_segment(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        let kept = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if kept {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

    #[test]
    fn uri_templates_are_filled_only_when_every_variable_has_a_value() {
        let vars = vec![("id".to_string(), "+1 555/0".to_string())];
        assert_eq!(
            fill_template("crm://c/{id}?x=1", &vars).as_deref(),
            Some("crm://c/+1%20555%2F0?x=1")
        );
        assert_eq!(fill_template("crm://c/{other}", &vars), None);
        assert_eq!(fill_template("crm://c/{id", &vars), None);
        assert_eq!(fill_template("plain", &vars).as_deref(), Some("plain"));
    }

    #[test]
    fn a_read_resource_gives_its_object_or_its_text() {
        let mut s = McpServer::of(&json!({"url": "http://m", "resources": true})).unwrap();
        s.on_resource_list(
            &json!({"resources": [{"uri": "a://1", "name": "one"}, {"uri": "a://2"}]}),
        );
        assert!(s.has_reads());
        let first = s.on_read(&json!({"contents": [{"text": "{\"k\": 1}"}, {"text": "plain"}]}));
        assert_eq!(Value::Object(first), json!({"k": 1, "one": "plain"}));
        // A resource without a name goes under its URI.
        let second = s.on_read(&json!({"contents": [{"text": "[1, 2]"}]}));
        assert_eq!(Value::Object(second), json!({"a://2": "[1, 2]"}));
        assert!(!s.has_reads());
    }
}
