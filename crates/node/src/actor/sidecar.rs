//! `calling.ai_sidecar` (calling-api.md §6.26–6.27, swml.md §6.2): an AI observer that listens
//! to both legs (the live transcription's taps, live.rs: one transcriber per call), never
//! speaks, and at each customer turn asks the model for advice — with the user's SWAIG tools —
//! reporting every step as `{sidecar_event, call_info}` callbacks to `url` (calling-events.md
//! §10). `poke` makes it evaluate now, `ask` answers a one-off question (`ask_answer`), `stop`
//! detaches it (`stop`, `final`), `status` is the `+OK` counters line.

use std::sync::Arc;

use control::command::{AiPrompt, AiSidecarParams, CallerLeg, SidecarFunction};
use control::ControlError;
use serde_json::{json, Map, Value};
use tracing::{info, warn, Instrument};

use crate::actor::{CallActor, TaskDone};
use crate::NodeInner;

const DEFAULT_PROMPT: &str = "You listen to a phone call between an agent and a customer. \
     After each customer turn, give the agent one short, useful piece of advice, or call \
     sidecar_skip when there is nothing worth saying.";
const SKIP: &str = "sidecar_skip";
const SWAIG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a sidecar's callbacks go, and what every one of them carries.
#[derive(Clone)]
pub(crate) struct SidecarOut {
    node: Arc<NodeInner>,
    ident: webhook::events::CallIdentity,
    url: Option<String>,
    channel_data: Value,
}

impl SidecarOut {
    async fn send(&self, kind: &str, tick: u64, fields: Value) {
        let Some(url) = self.url.as_deref() else {
            return;
        };
        let mut event = json!({
            "type": kind,
            "ts": crate::now_ms().saturating_mul(1000),
            "tick_id": tick,
            "channel_data": self.channel_data,
        });
        if let (Some(e), Value::Object(more)) = (event.as_object_mut(), fields) {
            e.extend(more);
        }
        let body = json!({
            "sidecar_event": event,
            "call_info": {
                "call_id": self.ident.call_id,
                "project_id": self.ident.project_id,
                "space_id": self.ident.space_id,
                "content_type": "text/json",
                "content_disposition": "post_data",
                "conversation_type": "voice",
            },
        });
        self.node.notify(self.ident.call_id, url, &body).await;
    }
}

#[derive(Debug, Clone, Default)]
struct Stats {
    ticks: u64,
    insights: u64,
    skips: u64,
    tools: u64,
    errors: u64,
    in_tokens: u64,
    out_tokens: u64,
}

/// Tokens of `text` as models count them, roughly: the backend's own count is used when it
/// reports one.
fn estimated_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// A message's tokens (its text and tool calls, and a few for its framing).
fn message_tokens(m: &Value) -> u64 {
    let text = match m.get("content") {
        Some(Value::String(s)) => estimated_tokens(s),
        _ => 0,
    };
    let calls = m
        .get("tool_calls")
        .map_or(0, |c| estimated_tokens(&c.to_string()));
    text + calls + 4
}

/// The oldest messages dropped until the history fits `max_tokens` (the newest is kept, and
/// a tool answer never starts the history without the call it answers).
fn trim_history(history: &mut Vec<Value>, max_tokens: u64) {
    let mut total: u64 = history.iter().map(message_tokens).sum();
    let mut drop = 0;
    while drop + 1 < history.len() && total > max_tokens {
        total -= message_tokens(&history[drop]);
        drop += 1;
    }
    while drop < history.len().saturating_sub(1)
        && history[drop].get("role").and_then(Value::as_str) == Some("tool")
    {
        drop += 1;
    }
    history.drain(..drop);
}

/// A sidecar attached to the call.
pub(crate) struct Sidecar {
    out: SidecarOut,
    model: Option<String>,
    system: String,
    customer: CallerLeg,
    functions: Vec<SidecarFunction>,
    default_hook: Option<String>,
    global_data: Map<String, Value>,
    history: Vec<Value>,
    transcript: Vec<Value>,
    customer_text: String,
    agent_text: String,
    tick: u64,
    stats: Stats,
    busy: bool,
    /// A turn (or poke) came while the model was busy: evaluate again when it is done.
    again: bool,
    summary: Option<String>,
    started_at: u64,
    /// `params.max_iters_per_tick`, `max_history_tokens`, `min_interval_ms`.
    max_iters: u32,
    /// `permissions`: what its tools' actions may do.
    permissions: control::command::SidecarPermissions,
    mcp: Mcp,
    max_history_tokens: u64,
    min_interval_ms: u64,
    /// When the model was last asked (Unix ms), and whether an evaluation waits for the
    /// interval to pass.
    evaluated_at: u64,
    due: bool,
}

fn no_sidecar() -> ControlError {
    ControlError::invalid_state("invalid_state", "no AI sidecar is attached to this call")
}

fn prompt_text(p: Option<&AiPrompt>) -> String {
    match p {
        Some(AiPrompt::Plain(t)) | Some(AiPrompt::Text { text: t }) => t.clone(),
        Some(AiPrompt::Pom { pom }) => pom
            .iter()
            .map(|s| {
                let title = s.get("title").and_then(Value::as_str).unwrap_or("");
                let body = s.get("body").and_then(Value::as_str).unwrap_or("");
                format!("## {title}\n\n{body}\n")
            })
            .collect(),
        Some(AiPrompt::File { .. }) | None => DEFAULT_PROMPT.to_string(),
    }
}

fn leg_name(leg: CallerLeg) -> &'static str {
    match leg {
        CallerLeg::RemoteCaller => "remote-caller",
        CallerLeg::LocalCaller => "local-caller",
    }
}

/// What one evaluation did, for the actor to merge.
pub(crate) struct Evaluated {
    history: Vec<Value>,
    global_data: Map<String, Value>,
    stats: Stats,
    mcp: Mcp,
}

/// `SWAIG.mcp_servers`: the servers (their sessions), and once listed (at the first
/// evaluation) their tools, each with its server's index.
#[derive(Debug, Clone, Default)]
struct Mcp {
    servers: Vec<swml::mcp::McpServer>,
    tools: Vec<(usize, Value)>,
    listed: bool,
}

impl CallActor {
    /// `calling.ai_sidecar`: attach (both legs are heard), or with `action.summarize` a
    /// one-off summary of what the running sidecar heard.
    pub(crate) async fn ai_sidecar(&mut self, p: AiSidecarParams) -> Result<(), ControlError> {
        if let Some(action) = p.action {
            let transcript = self
                .sidecar
                .as_ref()
                .map(|s| transcript_text(&s.transcript))
                .ok_or_else(no_sidecar)?;
            let out = self.sidecar.as_ref().map(|s| s.out.clone());
            let prompt = action
                .summarize
                .prompt
                .or(p.params.ai_summary_prompt)
                .unwrap_or_else(|| "Summarize this phone conversation.".into());
            let backend = self.node.model.clone();
            let webhook = action.summarize.webhook;
            tokio::spawn(
                async move {
                    let summary = crate::actor::live::summarize(backend, &prompt, &transcript)
                        .await
                        .unwrap_or_else(|e| format!("(no summary: {e})"));
                    if let Some(mut out) = out {
                        if webhook.is_some() {
                            out.url = webhook;
                        }
                        out.send("summary", 0, json!({"summary": summary})).await;
                    }
                }
                .in_current_span(),
            );
            return Ok(());
        }
        if self.sidecar.is_some() || self.live.is_some() {
            return Err(ControlError::Conflict {
                code: "value_not_unique",
                message: "one transcriber per call: an AI sidecar or a live transcription \
                          already runs"
                    .into(),
                attribute: None,
            });
        }
        if p.direction.len() < 2 {
            return Err(ControlError::Unprocessable {
                code: "invalid_parameter",
                message: "an AI sidecar hears both legs: remote-caller and local-caller".into(),
                attribute: Some("direction".into()),
            });
        }
        let spec = control::session::SpeechSpec {
            language: p.lang.clone(),
            hints: p.hints.clone().unwrap_or_default(),
            digits_allowed: false,
            end_silence_ms: u64::from(p.params.vad_silence_ms.unwrap_or(500).max(100)),
            speech_timeout_ms: if p.params.speech_timeout == 0 {
                60_000
            } else {
                u64::from(p.params.speech_timeout.max(1500))
            },
            partial_results: false,
            continuous: true,
        };
        for leg in [CallerLeg::RemoteCaller, CallerLeg::LocalCaller] {
            self.set_live_tap(leg, Some(spec.clone()));
        }
        let channel_data = json!({"call_id": self.ident.call_id,
            "caller_id_number": self.ident.from, "destination_number": self.ident.to});
        let out = SidecarOut {
            node: self.node.clone(),
            ident: self.ident.clone(),
            url: p.url.clone(),
            channel_data,
        };
        let swaig = p.swaig.unwrap_or_default();
        let default_hook = swaig.defaults.as_ref().and_then(|d| {
            d.web_hook_url.as_deref().map(|u| {
                swml::url::with_basic_auth(
                    u,
                    d.web_hook_auth_user.as_deref(),
                    d.web_hook_auth_password.as_deref(),
                )
            })
        });
        let model = (p.model != "gpt-4o-mini").then(|| p.model.clone());
        let tools: Vec<&str> = swaig
            .functions
            .iter()
            .map(|f| f.function.as_str())
            .collect();
        let global_data = p.global_data.unwrap_or_default();
        out.send(
            "start",
            0,
            json!({"model": p.model, "tools": tools, "global_data": global_data}),
        )
        .await;
        info!(lang = %p.lang, tools = swaig.functions.len(), "ai sidecar attached");
        self.sidecar = Some(Box::new(Sidecar {
            out,
            model,
            system: prompt_text(p.prompt.as_ref()),
            customer: p.customer_role,
            functions: swaig.functions,
            default_hook,
            global_data,
            history: Vec::new(),
            transcript: Vec::new(),
            customer_text: String::new(),
            agent_text: String::new(),
            tick: 0,
            stats: Stats::default(),
            busy: false,
            again: false,
            summary: (p.params.ai_summary || p.params.final_summary).then(|| {
                p.params
                    .ai_summary_prompt
                    .clone()
                    .unwrap_or_else(|| "Summarize this phone conversation.".to_string())
            }),
            started_at: crate::now_ms(),
            max_iters: p.params.max_iters_per_tick.clamp(1, 20),
            permissions: p.permissions.clone(),
            mcp: Mcp {
                servers: swaig
                    .mcp_servers
                    .iter()
                    .flatten()
                    .filter_map(swml::mcp::McpServer::of)
                    .take(swml::mcp::MAX_SERVERS)
                    .collect(),
                tools: Vec::new(),
                listed: false,
            },
            max_history_tokens: u64::from(p.params.max_history_tokens.clamp(1000, 200_000)),
            min_interval_ms: u64::from(p.params.min_interval_ms.min(60_000)),
            evaluated_at: 0,
            due: false,
        }));
        Ok(())
    }

    /// An utterance the sidecar's taps heard: a customer's ends a turn.
    pub(crate) async fn sidecar_heard(&mut self, leg: CallerLeg, text: String) {
        let Some(s) = self.sidecar.as_mut() else {
            return;
        };
        s.transcript
            .push(json!({"role": leg_name(leg), "text": text, "ts": crate::now_ms()}));
        if leg != s.customer {
            if !s.agent_text.is_empty() {
                s.agent_text.push(' ');
            }
            s.agent_text.push_str(&text);
            return;
        }
        if !s.customer_text.is_empty() {
            s.customer_text.push(' ');
        }
        s.customer_text.push_str(&text);
        let customer = std::mem::take(&mut s.customer_text);
        let agent = std::mem::take(&mut s.agent_text);
        s.tick += 1;
        s.stats.ticks += 1;
        let delta = if agent.is_empty() {
            format!("Customer: {customer}")
        } else {
            format!("Agent: {agent}\nCustomer: {customer}")
        };
        s.out
            .send(
                "turn",
                s.tick,
                json!({"transcript_delta": delta, "customer_text": customer, "agent_text": agent}),
            )
            .await;
        s.history.push(json!({"role": "user", "content": delta}));
        self.sidecar_evaluate();
    }

    /// The model is asked for advice on the conversation so far (on a task), unless it is
    /// already thinking: then once more when it is done.
    fn sidecar_evaluate(&mut self) {
        let Some(s) = self.sidecar.as_mut() else {
            return;
        };
        if s.busy {
            s.again = true;
            return;
        }
        let now = crate::now_ms();
        let next_at = s.evaluated_at.saturating_add(s.min_interval_ms);
        if s.evaluated_at > 0 && now < next_at {
            // `min_interval_ms`: one evaluation when the interval is over covers every turn
            // that came meanwhile.
            if !std::mem::take(&mut s.due) {
                let tx = self.tasks_tx.clone();
                let wait = std::time::Duration::from_millis(next_at - now);
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(TaskDone::SidecarDue);
                });
            }
            s.due = true;
            return;
        }
        s.evaluated_at = now;
        s.busy = true;
        let job = Evaluation {
            backend: self.node.model.clone(),
            http: self.node.http.clone(),
            out: s.out.clone(),
            model: s.model.clone(),
            system: s.system.clone(),
            functions: s.functions.clone(),
            default_hook: s.default_hook.clone(),
            history: s.history.clone(),
            global_data: s.global_data.clone(),
            tick: s.tick,
            max_iters: s.max_iters,
            permissions: s.permissions.clone(),
            mcp: s.mcp.clone(),
        };
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let done = job.run().await;
                let _ = tx.send(TaskDone::Sidecar(Box::new(done)));
            }
            .in_current_span(),
        );
    }

    pub(crate) fn sidecar_due(&mut self) {
        if let Some(s) = self.sidecar.as_mut() {
            if std::mem::take(&mut s.due) {
                self.sidecar_evaluate();
            }
        }
    }

    pub(crate) fn sidecar_evaluated(&mut self, done: Evaluated) {
        let Some(s) = self.sidecar.as_mut() else {
            return;
        };
        s.busy = false;
        s.history = done.history;
        trim_history(&mut s.history, s.max_history_tokens);
        s.stats.in_tokens += done.stats.in_tokens;
        s.stats.out_tokens += done.stats.out_tokens;
        s.global_data = done.global_data;
        s.mcp = done.mcp;
        s.stats.insights += done.stats.insights;
        s.stats.skips += done.stats.skips;
        s.stats.tools += done.stats.tools;
        s.stats.errors += done.stats.errors;
        if std::mem::take(&mut s.again) {
            self.sidecar_evaluate();
        }
    }

    /// `calling.ai_sidecar.poke`: a message for the sidecar, answered now.
    pub(crate) fn sidecar_poke(&mut self, text: String) -> Result<(), ControlError> {
        let s = self.sidecar.as_mut().ok_or_else(no_sidecar)?;
        s.tick += 1;
        s.stats.ticks += 1;
        s.history.push(json!({"role": "user", "content": text}));
        // "Respond now": not held back by `min_interval_ms`.
        s.evaluated_at = 0;
        self.sidecar_evaluate();
        Ok(())
    }

    /// `calling.ai_sidecar.ask`: a one-off question about the call; the answer comes as
    /// `ask_answer` with the returned `ask_id`.
    pub(crate) async fn sidecar_ask(&mut self, question: String) -> Result<String, ControlError> {
        let s = self.sidecar.as_ref().ok_or_else(no_sidecar)?;
        let ask_id = uuid::Uuid::new_v4().to_string();
        let tick = s.tick;
        s.out
            .send(
                "ask_request",
                tick,
                json!({"question": question, "ask_id": ask_id, "triggered_by": "ask"}),
            )
            .await;
        let mut messages = vec![json!({"role": "system", "content": s.system})];
        messages.extend(s.history.iter().cloned());
        messages.push(json!({"role": "user", "content": question}));
        let (backend, out, model, id) = (
            self.node.model.clone(),
            s.out.clone(),
            s.model.clone(),
            ask_id.clone(),
        );
        tokio::spawn(
            async move {
                match ask_model(backend, model, messages, Vec::new()).await {
                    Ok(reply) => {
                        out.send(
                            "ask_answer",
                            tick,
                            json!({"raw": reply.text, "iter": 0, "total_iters": 1,
                                   "ask_id": id, "triggered_by": "ask"}),
                        )
                        .await
                    }
                    Err(e) => {
                        out.send(
                            "error",
                            tick,
                            json!({"error_reason": "llm_error", "detail": e, "ask_id": id,
                                   "triggered_by": "ask"}),
                        )
                        .await
                    }
                }
            }
            .in_current_span(),
        );
        Ok(ask_id)
    }

    /// `calling.ai_sidecar.status`: the spec's single `+OK` line of counters.
    pub(crate) fn sidecar_status(&self) -> Result<String, ControlError> {
        let s = self.sidecar.as_ref().ok_or_else(no_sidecar)?;
        Ok(format!(
            "+OK running=1 ticks={} insights={} skips={} tools={} errors={} in_tokens={} \
             out_tokens={} history_size={} event_log_bytes=0",
            s.stats.ticks,
            s.stats.insights,
            s.stats.skips,
            s.stats.tools,
            s.stats.errors,
            s.stats.in_tokens,
            s.stats.out_tokens,
            s.history.len()
        ))
    }

    /// Detaches the sidecar: its taps go, `stop` and `final` are sent.
    pub(crate) async fn stop_sidecar(&mut self, reason: &str) -> Result<(), ControlError> {
        let s = self.sidecar.take().ok_or_else(no_sidecar)?;
        for leg in [CallerLeg::RemoteCaller, CallerLeg::LocalCaller] {
            self.set_live_tap(leg, None);
        }
        info!(reason, ticks = s.stats.ticks, "ai sidecar detached");
        s.out
            .send("stop", s.tick, json!({"stop_reason": reason}))
            .await;
        let ended = crate::now_ms();
        let backend = self.node.model.clone();
        let reason = reason.to_string();
        tokio::spawn(
            async move {
                let summary = match &s.summary {
                    Some(prompt) => {
                        let text = transcript_text(&s.transcript);
                        crate::actor::live::summarize(backend, prompt, &text)
                            .await
                            .ok()
                    }
                    None => None,
                };
                let st = &s.stats;
                s.out
                    .send(
                        "final",
                        s.tick,
                        json!({
                            "stop_reason": reason,
                            "summary": summary,
                            "history": s.history,
                            "transcript": s.transcript,
                            "event_log": [],
                            "stats": {"ticks": st.ticks, "insights": st.insights, "skips": st.skips,
                                      "tools": st.tools, "errors": st.errors},
                            "metrics": {},
                            "global_data": s.global_data,
                            "model": s.model.clone().unwrap_or_else(|| "default".into()),
                            "started_at": s.started_at,
                            "ended_at": ended,
                            "duration_ms": ended.saturating_sub(s.started_at),
                        }),
                    )
                    .await;
            }
            .in_current_span(),
        );
        Ok(())
    }
}

fn transcript_text(lines: &[Value]) -> String {
    lines
        .iter()
        .map(|l| {
            format!(
                "{}: {}\n",
                l["role"].as_str().unwrap_or(""),
                l["text"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// One evaluation: the model, its tool calls answered by the user's webhooks, until it gives
/// advice, skips, or runs out of iterations.
struct Evaluation {
    backend: Option<Arc<dyn llm::ChatBackend>>,
    http: egress::EgressClient,
    out: SidecarOut,
    model: Option<String>,
    system: String,
    functions: Vec<SidecarFunction>,
    default_hook: Option<String>,
    history: Vec<Value>,
    global_data: Map<String, Value>,
    tick: u64,
    max_iters: u32,
    permissions: control::command::SidecarPermissions,
    mcp: Mcp,
}

impl Evaluation {
    fn tools(&self) -> Vec<Value> {
        let mut tools: Vec<Value> = self
            .functions
            .iter()
            .map(|f| {
                json!({"type": "function", "function": {
                    "name": f.function,
                    "description": f.description.clone().or_else(|| f.purpose.clone()).unwrap_or_default(),
                    "parameters": f.parameters.clone().map(Value::Object)
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}}))}})
            })
            .collect();
        for (_, def) in &self.mcp.tools {
            tools.push(json!({"type": "function", "function": {
                "name": def["function"], "description": def["description"],
                "parameters": def["parameters"]}}));
        }
        tools.push(json!({"type": "function", "function": {"name": SKIP,
            "description": "Nothing worth telling the agent now.",
            "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}}));
        tools
    }

    /// Lists the MCP servers' tools (once, at the first evaluation); a server that fails is
    /// an `error` callback and left out.
    async fn list_mcp_tools(&mut self) {
        use swml::mcp::{tool_definitions, Discovery};
        if std::mem::replace(&mut self.mcp.listed, true) {
            return;
        }
        for i in 0..self.mcp.servers.len() {
            let mut listed = Err(String::new());
            for step in [
                Discovery::Initialize,
                Discovery::Initialized,
                Discovery::ListTools,
            ] {
                let request = self.mcp.servers[i].discovery_request(step);
                let answer = crate::actor::script::perform_request(&self.http, request).await;
                let server = &mut self.mcp.servers[i];
                listed = match (answer, step) {
                    (Ok(a), Discovery::Initialized) => server.on_notified(&a).map(|()| Value::Null),
                    (Ok(a), _) => server.on_answer(&a),
                    (Err(e), _) => Err(e),
                };
                if listed.is_err() {
                    break;
                }
            }
            match listed {
                Ok(result) => {
                    for def in tool_definitions(&result) {
                        let name = def["function"].as_str().unwrap_or_default();
                        let taken = self.functions.iter().any(|f| f.function == name)
                            || self.mcp.tools.iter().any(|(_, d)| d["function"] == name);
                        if !taken && name != SKIP {
                            self.mcp.tools.push((i, def));
                        }
                    }
                }
                Err(e) => {
                    let url = self.mcp.servers[i].url.clone();
                    warn!(%url, error = %e, "ai sidecar: an MCP server gave no tools");
                    self.out
                        .send(
                            "error",
                            self.tick,
                            json!({"error_reason": "mcp_failure", "url": url, "detail": e}),
                        )
                        .await;
                }
            }
        }
    }

    /// A call of an MCP server's tool: its text for the model.
    async fn call_mcp_tool(&mut self, i: usize, name: &str, args: Value) -> String {
        let request = self.mcp.servers[i].call_request(name, args);
        let answer = crate::actor::script::perform_request(&self.http, request).await;
        let result = answer.and_then(|a| self.mcp.servers[i].on_answer(&a));
        match result {
            Ok(r) => swml::mcp::call_text(&r),
            Err(e) => format!("The tool failed: {e}"),
        }
    }

    async fn run(mut self) -> Evaluated {
        let mut stats = Stats::default();
        self.list_mcp_tools().await;
        let tools = self.tools();
        for iter in 0..self.max_iters {
            let mut messages = vec![json!({"role": "system", "content": self.system})];
            messages.extend(self.history.iter().cloned());
            let asked_tokens: u64 = messages.iter().map(message_tokens).sum();
            self.out
                .send(
                    "request",
                    self.tick,
                    json!({"model": self.model, "iter": iter, "messages_count": messages.len(),
                           "messages_token_count": asked_tokens, "tool_choice": "auto"}),
                )
                .await;
            let reply = match ask_model(
                self.backend.clone(),
                self.model.clone(),
                messages,
                tools.clone(),
            )
            .await
            {
                Ok(r) => {
                    let (asked, answered) = match &r.usage {
                        Some(u) => (u.prompt_tokens, u.completion_tokens),
                        None => (
                            asked_tokens,
                            estimated_tokens(&r.text)
                                + r.tool_calls
                                    .iter()
                                    .map(|t| estimated_tokens(&t.arguments) + 4)
                                    .sum::<u64>(),
                        ),
                    };
                    stats.in_tokens += asked;
                    stats.out_tokens += answered;
                    r
                }
                Err(e) => {
                    stats.errors += 1;
                    warn!(error = %e, "ai sidecar: the model did not answer");
                    self.out
                        .send(
                            "error",
                            self.tick,
                            json!({"error_reason": "llm_error", "detail": e}),
                        )
                        .await;
                    break;
                }
            };
            if reply.tool_calls.is_empty() {
                if reply.text.trim().is_empty() {
                    stats.skips += 1;
                    self.out.send("skip", self.tick, json!({})).await;
                } else {
                    stats.insights += 1;
                    self.out
                        .send(
                            "insight",
                            self.tick,
                            json!({"raw": reply.text, "iter": iter, "total_iters": iter + 1}),
                        )
                        .await;
                    self.history
                        .push(json!({"role": "assistant", "content": reply.text}));
                }
                break;
            }
            self.history.push(json!({"role": "assistant", "content": Value::Null,
                "tool_calls": reply.tool_calls.iter().map(|t| json!({"id": t.id, "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments}})).collect::<Vec<_>>()}));
            let mut skipped = false;
            for call in &reply.tool_calls {
                let args: Value =
                    serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
                if call.name == SKIP {
                    stats.skips += 1;
                    skipped = true;
                    self.out
                        .send("skip", self.tick, json!({"reason": args.get("reason")}))
                        .await;
                    self.history.push(
                        json!({"role": "tool", "tool_call_id": call.id, "content": "skipped"}),
                    );
                    continue;
                }
                stats.tools += 1;
                self.out
                    .send(
                        "tool_call",
                        self.tick,
                        json!({"name": call.name, "arguments": args, "iter": iter}),
                    )
                    .await;
                let response = self.call_tool(&call.name, args, &mut stats).await;
                self.out
                    .send(
                        "tool_result",
                        self.tick,
                        json!({"name": call.name, "response": response, "iter": iter}),
                    )
                    .await;
                self.history
                    .push(json!({"role": "tool", "tool_call_id": call.id, "content": response}));
            }
            if skipped {
                break;
            }
        }
        Evaluated {
            history: self.history,
            global_data: self.global_data,
            stats,
            mcp: self.mcp,
        }
    }

    /// A `set_global_data` (an object merged) or `unset_global_data` (a key or keys) action;
    /// each change a `global_data_change` callback.
    async fn edit_global_data(&mut self, set: bool, value: &Value) {
        let changes: Vec<(String, Option<Value>)> = if set {
            value
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect()
        } else {
            match value {
                Value::String(k) => vec![(k.clone(), None)],
                Value::Array(keys) => keys
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|k| (k.to_string(), None))
                    .collect(),
                _ => Vec::new(),
            }
        };
        for (k, v) in changes {
            let old = match &v {
                Some(v) => self.global_data.insert(k.clone(), v.clone()),
                None => self.global_data.remove(&k),
            };
            self.out
                .send(
                    "global_data_change",
                    self.tick,
                    json!({"key": k, "old_value": old, "new_value": v}),
                )
                .await;
        }
    }

    /// A tool's webhook (calling-events.md §10: `{function, argument, call_id, global_data,
    /// channel_data}`); its `response` for the model, its `set_global_data` applied, its other
    /// actions reported and not executed (the sidecar does not act on the call).
    async fn call_tool(&mut self, name: &str, args: Value, stats: &mut Stats) -> String {
        if let Some(i) = self
            .mcp
            .tools
            .iter()
            .find(|(_, d)| d["function"] == name)
            .map(|(i, _)| *i)
        {
            return self.call_mcp_tool(i, name, args).await;
        }
        let function = self.functions.iter().find(|f| f.function == name);
        let url = function
            .and_then(|f| {
                f.web_hook.web_hook_url.as_deref().map(|u| {
                    swml::url::with_basic_auth(
                        u,
                        f.web_hook.web_hook_auth_user.as_deref(),
                        f.web_hook.web_hook_auth_password.as_deref(),
                    )
                })
            })
            .or_else(|| self.default_hook.clone());
        let Some(url) = url.filter(|_| function.is_some()) else {
            return format!("the function {name} is not available");
        };
        let body = json!({"function": name, "argument": args, "call_id": self.out.ident.call_id,
                          "global_data": self.global_data, "channel_data": self.out.channel_data});
        let reply = async {
            let parsed = reqwest::Url::parse(&url).map_err(|e| e.to_string())?;
            let resp = self
                .http
                .request(reqwest::Method::POST, parsed)
                .map_err(|e| e.to_string())?
                .timeout(SWAIG_TIMEOUT)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let code = resp.status().as_u16();
            let text = resp.text().await.map_err(|e| e.to_string())?;
            if !(200..300).contains(&code) {
                return Err(format!("HTTP {code}"));
            }
            serde_json::from_str::<Value>(&text).map_err(|e| e.to_string())
        }
        .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                stats.errors += 1;
                self.out
                    .send(
                        "error",
                        self.tick,
                        json!({"error_reason": "webhook_http_failure", "function": name, "detail": e}),
                    )
                    .await;
                return "The function failed.".to_string();
            }
        };
        let actions: Vec<Value> = match reply.get("action") {
            Some(Value::Array(a)) => a.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        };
        for action in actions {
            for (kind, value) in action.as_object().into_iter().flatten() {
                let global = matches!(kind.as_str(), "set_global_data" | "unset_global_data");
                if global && self.permissions.swaig_set_global_data {
                    self.edit_global_data(kind == "set_global_data", value)
                        .await;
                    continue;
                }
                let mut fields =
                    json!({"action": kind, "source_function": name, "executed": false});
                let permitted = match kind.as_str() {
                    "SWML" | "transfer" => self.permissions.swaig_allow_swml,
                    "settings" | "toggle_functions" => self.permissions.swaig_allow_settings,
                    _ => !global,
                };
                if !permitted {
                    fields["reason"] = json!("not_permitted");
                } else if kind == "say" {
                    fields["spoken"] = json!(false);
                    fields["reason"] = json!("no_tts_in_sidecar");
                }
                self.out.send("action", self.tick, fields).await;
            }
        }
        match reply.get("response") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

async fn ask_model(
    backend: Option<Arc<dyn llm::ChatBackend>>,
    model: Option<String>,
    messages: Vec<Value>,
    tools: Vec<Value>,
) -> Result<llm::Completion, String> {
    let backend = backend.ok_or("no AI model backend is configured (ai_base_url)")?;
    let chat = crate::actor::ai::chat_request(swml::ModelRequest {
        model,
        messages,
        tools,
        temperature: None,
        top_p: None,
        max_tokens: None,
        speak: None,
        filler: None,
    })?;
    backend
        .chat_stream(&chat, &mut |_| llm::Flow::Continue)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_trimmed_to_its_tokens_oldest_first() {
        let msg = |role: &str, n: usize| json!({"role": role, "content": "x".repeat(n)});
        // 400 characters = 100 tokens + 4 of framing each.
        let mut h: Vec<Value> = (0..30).map(|_| msg("user", 400)).collect();
        trim_history(&mut h, 1000);
        assert_eq!(h.len(), 9, "9 × 104 tokens fit in 1000");
        // A tool answer is not left without its call.
        let mut h = vec![
            msg("user", 4000),
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]}),
            msg("tool", 400),
            msg("user", 400),
        ];
        trim_history(&mut h, 210);
        assert_eq!(h.len(), 1, "the tool answer went with its call: {h:?}");
        assert_eq!(h[0]["role"], "user");
        // The newest message stays even when it alone is too long.
        let mut h = vec![msg("user", 40_000)];
        trim_history(&mut h, 1000);
        assert_eq!(h.len(), 1);
        assert_eq!(estimated_tokens("abcde"), 2);
    }
}
