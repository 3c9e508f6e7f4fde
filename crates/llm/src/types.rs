//! The request side of the chat-completions API, serialised exactly as OpenAI documents it
//! (the shape vLLM, Ollama and llama.cpp's server accept too): messages, tools, and the
//! request body.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::LlmError;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One message of the conversation. Deserialisable too, so a conversation can be stored and
/// read back as the API's own JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// `None` (sent as `null`) only for an assistant message that is just tool calls.
    pub content: Option<String>,
    /// Assistant messages: the tools the model called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Tool messages: which call this is the result of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// An optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    fn new(role: Role, content: Option<String>) -> Self {
        Message {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Message::new(Role::System, Some(content.into()))
    }

    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, Some(content.into()))
    }

    pub fn assistant_text(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, Some(content.into()))
    }

    /// An assistant turn that only called tools (`content: null`).
    pub fn assistant_tool_calls(calls: Vec<ToolCall>) -> Self {
        Message {
            tool_calls: calls,
            ..Message::new(Role::Assistant, None)
        }
    }

    /// The result of the tool call `id`, as text (often JSON) the model reads.
    pub fn tool_result(id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(id.into()),
            ..Message::new(Role::Tool, Some(content.into()))
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A function call the model asked for. Flat here; on the wire it is
/// `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireToolCall", from = "WireToolCall")]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: JSON text, not checked, because models do write
    /// invalid JSON and the agent should be able to say so to the model.
    pub arguments: String,
}

impl ToolCall {
    /// The arguments parsed. Empty text counts as `{}` (some servers send that for a function
    /// without parameters).
    pub fn arguments_json(&self) -> Result<Value, LlmError> {
        if self.arguments.trim().is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(&self.arguments).map_err(|e| LlmError::Arguments(e.to_string()))
    }
}

#[derive(Serialize, Deserialize)]
struct WireToolCall {
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    function: WireFunctionCall,
}

#[derive(Serialize, Deserialize)]
struct WireFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

fn function_type() -> String {
    "function".to_owned()
}

impl From<ToolCall> for WireToolCall {
    fn from(c: ToolCall) -> Self {
        WireToolCall {
            id: c.id,
            kind: function_type(),
            function: WireFunctionCall {
                name: c.name,
                arguments: c.arguments,
            },
        }
    }
}

impl From<WireToolCall> for ToolCall {
    fn from(w: WireToolCall) -> Self {
        ToolCall {
            id: w.id,
            name: w.function.name,
            arguments: w.function.arguments,
        }
    }
}

/// A function the model may call. On the wire:
/// `{"type": "function", "function": {"name", "description", "parameters"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "WireTool", from = "WireTool")]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// A JSON schema of the arguments object; `null` leaves it out.
    pub parameters: Value,
}

impl Tool {
    pub fn function(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> Self {
        Tool {
            name: name.into(),
            description: Some(description.into()),
            parameters,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireTool {
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    function: WireFunction,
}

#[derive(Serialize, Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    parameters: Value,
}

impl From<Tool> for WireTool {
    fn from(t: Tool) -> Self {
        WireTool {
            kind: function_type(),
            function: WireFunction {
                name: t.name,
                description: t.description,
                parameters: t.parameters,
            },
        }
    }
}

impl From<WireTool> for Tool {
    fn from(w: WireTool) -> Self {
        Tool {
            name: w.function.name,
            description: w.function.description,
            parameters: w.function.parameters,
        }
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// `"auto"`: the model decides.
    Auto,
    /// `"none"`: no tool calls.
    None,
    /// `"required"`: at least one tool call.
    Required,
    /// `{"type": "function", "function": {"name": ...}}`: that function.
    Function(String),
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolChoice::Auto => s.serialize_str("auto"),
            ToolChoice::None => s.serialize_str("none"),
            ToolChoice::Required => s.serialize_str("required"),
            ToolChoice::Function(name) => serde_json::json!({
                "type": "function",
                "function": { "name": name },
            })
            .serialize(s),
        }
    }
}

/// One chat-completion request. There is no `stream` field: the body always says
/// `"stream": true` (a server that answers with one JSON document anyway is accepted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// `None`: the backend's configured model.
    pub model: Option<String>,
    pub messages: Vec<Message>,
    /// Left out of the body when empty (some servers reject `"tools": []`).
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Asks for a final usage chunk (`stream_options.include_usage`); off by default because
    /// not every server knows the option.
    pub include_usage: bool,
}

impl ChatRequest {
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    pub fn with_tools(mut self, tools: Vec<Tool>) -> Self {
        self.tools = tools;
        self
    }

    /// The JSON body as sent, with `default_model` when the request names none.
    pub fn body(&self, default_model: &str) -> Result<Vec<u8>, LlmError> {
        let wire = WireRequest {
            model: self.model.as_deref().unwrap_or(default_model),
            messages: &self.messages,
            tools: &self.tools,
            tool_choice: self.tool_choice.as_ref(),
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            stream: true,
            stream_options: self.include_usage.then_some(StreamOptions {
                include_usage: true,
            }),
        };
        serde_json::to_vec(&wire).map_err(|e| LlmError::Config(format!("request body: {e}")))
    }
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "<[Tool]>::is_empty")]
    tools: &'a [Tool],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body_json(req: &ChatRequest, model: &str) -> Value {
        serde_json::from_slice(&req.body(model).unwrap()).unwrap()
    }

    fn weather_call() -> ToolCall {
        ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        }
    }

    #[test]
    fn minimal_request_has_only_model_messages_and_stream() {
        let req = ChatRequest::new(vec![Message::user("Hi")]);
        let text = String::from_utf8(req.body("m1").unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"model":"m1","messages":[{"role":"user","content":"Hi"}],"stream":true}"#
        );
    }

    #[test]
    fn full_request_serialises_as_openai_documents() {
        let tool = Tool::function(
            "get_weather",
            "Current weather in a city.",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        );
        let req = ChatRequest {
            model: Some("gpt-test".into()),
            messages: vec![
                Message::system("Be brief."),
                Message::user("Weather in Paris?").with_name("caller"),
                Message::assistant_tool_calls(vec![weather_call()]),
                Message::tool_result("call_1", r#"{"sky":"clear"}"#),
                Message::assistant_text("Clear skies."),
            ],
            tools: vec![tool],
            tool_choice: Some(ToolChoice::Auto),
            temperature: Some(0.7),
            top_p: Some(0.9),
            max_tokens: Some(256),
            include_usage: true,
        };
        assert_eq!(
            body_json(&req, "ignored"),
            json!({
                "model": "gpt-test",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Weather in Paris?", "name": "caller"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                    ]},
                    {"role": "tool", "content": "{\"sky\":\"clear\"}", "tool_call_id": "call_1"},
                    {"role": "assistant", "content": "Clear skies."}
                ],
                "tools": [{"type": "function", "function": {
                    "name": "get_weather",
                    "description": "Current weather in a city.",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
                }}],
                "tool_choice": "auto",
                "temperature": 0.7,
                "top_p": 0.9,
                "max_tokens": 256,
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn tool_choice_forms() {
        let v = |c: ToolChoice| serde_json::to_value(c).unwrap();
        assert_eq!(v(ToolChoice::None), json!("none"));
        assert_eq!(v(ToolChoice::Required), json!("required"));
        assert_eq!(
            v(ToolChoice::Function("f".into())),
            json!({"type": "function", "function": {"name": "f"}})
        );
    }

    #[test]
    fn messages_read_back_from_api_json() {
        let m: Message = serde_json::from_value(json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
        }))
        .unwrap();
        assert_eq!(m, Message::assistant_tool_calls(vec![weather_call()]));
        let m: Message = serde_json::from_value(json!({"role": "user", "content": "x"})).unwrap();
        assert_eq!(m, Message::user("x"));
    }

    #[test]
    fn tool_without_parameters_leaves_them_out() {
        let t = Tool {
            name: "hang_up".into(),
            description: None,
            parameters: Value::Null,
        };
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            json!({"type": "function", "function": {"name": "hang_up"}})
        );
    }

    #[test]
    fn arguments_parse_and_empty_is_an_empty_object() {
        assert_eq!(
            weather_call().arguments_json().unwrap(),
            json!({"city": "Paris"})
        );
        let mut c = weather_call();
        c.arguments = "  ".into();
        assert_eq!(c.arguments_json().unwrap(), json!({}));
        c.arguments = r#"{"city": "Par"#.into();
        assert!(matches!(c.arguments_json(), Err(LlmError::Arguments(_))));
    }
}
