//! Running the call's SWML on the real call: the actor drives the pure [`swml::Run`] and
//! executes its effects with the same machinery the REST commands use (the media shard's
//! player, the document fetcher, the webhook outbox), so every feature is written once.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tracing::{info, warn, Instrument};

use control::call::CallInput;
use control::command::{CollectParams, PlayParams};
use control::session::Origin;
use control::{CallCommand, EndReason};
use swml::{Completion, Effect};

use crate::actor::{CallActor, DocPurpose, TaskDone};
use crate::now_ms;
use crate::shard::ShardCommand;

/// The blocking effect the script is waiting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScriptWait {
    /// Our 200 OK to an inbound call is out; the caller's ACK completes `answer`.
    Answer,
    Digits,
    Http,
    Fetch,
    /// The final result of an operation the script started (play, prompt, record, detect):
    /// the session reports it as `Action::ScriptDone`.
    Op {
        control_id: String,
    },
    /// A `connect` dialling or bridged (crate::actor::connect).
    Connect,
    /// An `enter_queue` waiting or bridged (crate::actor::queue).
    Queue,
    /// In a conference (crate::actor::conference).
    Conference,
    /// A `sip_refer` waiting for the REFER's outcome (crate::actor::refer).
    Refer,
    /// The `ai` agent's model thinking (crate::actor::ai).
    Model,
}

/// Largest response body `request` keeps (swml.md: `request` stores the body in variables).
const REQUEST_MAX_BODY: usize = 64 * 1024;

impl CallActor {
    /// The document is ready and the call answered: run it.
    pub(crate) async fn start_script(&mut self, doc: Value) {
        let call = match self
            .ident
            .fetch_call_object("answered", Some(&self.route.to_uri))
        {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let envs: Map<String, Value> = self
            .request
            .custom_variables
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        info!("running the call's SWML document");
        let mut run = swml::Run::new(doc, call, envs);
        run.set_js_budget(self.js.clone());
        self.script = Some(run);
        self.step_script(swml::Step::Start).await;
        self.drain_script().await;
    }

    /// `update` with url/swml or `calling.transfer` to a document: the running flow is
    /// abandoned (its playback stopped) and the new one starts at its `main`.
    pub(crate) async fn replace_script(&mut self, doc: Value) {
        self.stop_flow_plays(false).await;
        self.script_wait = None;
        match self.script.as_mut() {
            Some(run) if !run.is_finished() => {
                info!("replacing the running SWML document");
                self.step_script(swml::Step::Replace(doc)).await;
                self.drain_script().await;
            }
            _ => self.start_script(doc).await,
        }
    }

    /// The call is over: nothing more runs.
    pub(crate) fn end_script(&mut self) {
        if let Some(run) = self.script.as_mut() {
            run.call_ended();
        }
        self.script_wait = None;
    }

    pub(crate) fn script_deadline(&self) -> Option<u64> {
        self.script.as_ref().and_then(|r| r.poll_timeout())
    }

    pub(crate) async fn script_timeout(&mut self) {
        self.step_script(swml::Step::Timeout).await;
        self.drain_script().await;
    }

    /// Runs one step of the script (it may evaluate JavaScript) on the node's evaluator pool,
    /// off the async runtime. Ending the call cancels the call's budget, which stops it.
    async fn step_script(&mut self, step: swml::Step) {
        let Some(run) = self.script.take() else {
            return;
        };
        self.script = self.node.eval.step(run, now_ms(), step, &self.js).await;
        if self.script.is_none() {
            warn!("the script's step failed on the evaluator; the script is stopped");
            self.script_wait = None;
        }
    }

    /// Answers the effect the script waits on and runs on.
    pub(crate) async fn complete_script(&mut self, completion: Completion) {
        if self.script_wait.take().is_none() {
            return;
        }
        self.step_script(swml::Step::Complete(completion)).await;
        self.drain_script().await;
    }

    pub(crate) async fn on_digits_sent(&mut self, result: Result<(), String>) {
        match &result {
            Ok(()) => info!("digits sent"),
            Err(e) => warn!(error = %e, "digits could not be sent"),
        }
        if self.script_wait == Some(ScriptWait::Digits) {
            let completion = match result {
                Ok(()) => Completion::Done,
                Err(message) => Completion::Failed { message },
            };
            self.complete_script(completion).await;
        }
    }

    /// Executes every effect the script has emitted, until it blocks or ends.
    pub(crate) async fn drain_script(&mut self) {
        loop {
            let Some(effect) = self.script.as_mut().and_then(|r| r.poll_effect()) else {
                return;
            };
            let name = effect_name(&effect);
            let span = tracing::info_span!("swml", method = name);
            self.apply_effect(effect).instrument(span).await;
        }
    }

    async fn apply_effect(&mut self, effect: Effect) {
        match effect {
            Effect::Answer {
                max_duration_secs,
                codecs,
            } => {
                // The call is hung up `max_duration` after its answer (swml.md §6.4; capped
                // at 4 hours by the call core). For an outbound leg, already answered, the
                // clock started at its answer.
                self.input(CallInput::LimitDuration {
                    secs: max_duration_secs,
                })
                .await;
                if self.inbound_unanswered() {
                    if let Some(Err(message)) =
                        codecs.as_deref().map(|c| self.restrict_inbound_codecs(c))
                    {
                        warn!(%message, "answer.codecs cannot be honoured; the answer fails");
                        self.complete_now(Completion::Failed { message }).await;
                        return;
                    }
                    self.script_wait = Some(ScriptWait::Answer);
                    if let Err(message) = self.answer_inbound().await {
                        self.complete_now(Completion::Failed { message }).await;
                    }
                } else {
                    // Outbound calls run their document once answered: nothing to do.
                    self.complete_now(Completion::Done).await;
                }
            }
            Effect::Play {
                params,
                auto_answer,
            } => {
                if self.inbound_unanswered() {
                    let ready = if auto_answer {
                        self.answer_inbound().await
                    } else {
                        self.early_media_inbound().await
                    };
                    if let Err(e) = ready {
                        warn!(error = %e, auto_answer, "could not open media before playing");
                    }
                }
                // Waiting before it starts: its end may be reported while it starts.
                self.script_wait = Some(ScriptWait::Op {
                    control_id: params.control_id.clone(),
                });
                let play = CallCommand::Play(params);
                let script = Origin::Script { wait_final: true };
                if let Err(e) = self.op_command(play, script).await {
                    self.complete_now(Completion::Failed {
                        message: e.to_string(),
                    })
                    .await;
                }
            }
            Effect::SendDigits { digits } => {
                self.script_wait = Some(ScriptWait::Digits);
                self.node.media.send(
                    self.media_key,
                    ShardCommand::SendDigits {
                        call_id: self.ident.call_id,
                        digits,
                    },
                );
            }
            Effect::Request(mut req) => {
                if let Some(filler) = req.filler.take() {
                    // Said while the request runs; nobody waits for it.
                    let origin = Origin::Script { wait_final: false };
                    if let Err(e) = self.op_command(CallCommand::Play(filler), origin).await {
                        tracing::debug!(error = %e, "a filler could not be played");
                    }
                }
                self.script_wait = Some(ScriptWait::Http);
                let tx = self.tasks_tx.clone();
                let client = self.node.http.clone();
                tokio::spawn(
                    async move {
                        let result = perform_request(&client, req).await;
                        let _ = tx.send(TaskDone::Http(result));
                    }
                    .in_current_span(),
                );
            }
            Effect::Fetch { url, payload } => {
                self.script_wait = Some(ScriptWait::Fetch);
                let fetcher = self.node.fetcher.clone();
                let tx = self.tasks_tx.clone();
                tokio::spawn(
                    async move {
                        let result = fetcher
                            .fetch_document(&url, control::HttpMethod::Post, &payload)
                            .await
                            .map(|d| d.into_value())
                            .map_err(|e| e.to_string());
                        let _ = tx.send(TaskDone::Document {
                            purpose: DocPurpose::Script,
                            result,
                        });
                    }
                    .in_current_span(),
                );
            }
            Effect::UserEvent { event } => self.user_event(event).await,
            Effect::Warning(w) => {
                warn!(code = w.code, message = %w.message, method = %w.method, "SWML warning");
                let params = json!({
                    "call_id": self.ident.call_id,
                    "node_id": self.ident.node_id,
                    "segment_id": self.ident.segment_id,
                    "code": w.code,
                    "message": w.message,
                    "method": w.method,
                    "section": w.section,
                    "step_index": w.step_index,
                });
                self.call_event("swml_warning", params.clone()).await;
                let event = self
                    .ident
                    .envelope("calling.script.warning", now_ms(), params);
                if let Some(url) = self.record.status_url.clone() {
                    self.node.notify(self.ident.call_id, &url, &event).await;
                }
            }
            Effect::Control { command, wait } => self.script_control(command, wait).await,
            Effect::Fax(params) => self.script_fax(params).await,
            Effect::Model(req) => self.script_model(req).await,
            Effect::Background(audio) => self.ai_background(audio),
            Effect::Prompt { play, collect } => self.script_prompt(play, collect).await,
            Effect::Listen { play_id, collect } => self.script_listen(play_id, collect).await,
            Effect::Connect(plan) => self.start_connect(plan).await,
            Effect::EnterQueue(plan) => self.start_enter_queue(plan).await,
            Effect::JoinConference(plan) => self.start_join_conference(plan).await,
            Effect::Refer(params) => {
                self.script_wait = Some(ScriptWait::Refer);
                if let Err(e) = self.start_refer(params, true) {
                    self.complete_now(Completion::Failed {
                        message: e.to_string(),
                    })
                    .await;
                }
            }
            Effect::Hangup {
                reason,
                end_of_document,
            } => {
                if end_of_document && self.confirming {
                    self.confirm_accepted();
                    return;
                }
                let reason = EndReason::parse(&reason).unwrap_or(EndReason::Hangup);
                info!(reason = reason.as_str(), "SWML hangs up");
                self.script_wait = None;
                if !self.core.status().is_terminal() {
                    self.input(CallInput::Hangup { reason }).await;
                }
            }
        }
    }

    /// SWML `user_event` and REST `calling.user_event`: kept in the call's event log and, when
    /// the call has a `status_url`, delivered there as a signed `calling.call.user_event`
    /// (whatever `status_events` says: it is not a call state).
    pub(crate) async fn user_event(&mut self, event: Value) {
        self.call_event("user_event", event.clone()).await;
        if let Some(url) = self.record.status_url.clone() {
            let ev = self.ident.user_event(event, now_ms());
            self.node.notify(self.ident.call_id, &url, &ev).await;
        }
    }

    /// An operation the script started produced its final result (the session's
    /// `ScriptDone`): a no-op unless the script waits on that `control_id`.
    pub(crate) async fn script_op_finished(&mut self, control_id: &str, completion: Completion) {
        if let Some((early, result)) = self.ops.ai_listening.as_mut() {
            if early == control_id {
                // Heard while the model still wrote: kept for the turn that takes it.
                *result = Some(completion);
                return;
            }
        }
        match &self.script_wait {
            Some(ScriptWait::Op { control_id: waited }) if waited == control_id => {}
            _ => return,
        }
        self.complete_script(completion).await;
    }

    /// Runs a call-control command for the script, exactly as a REST request would.
    async fn control_command(
        &mut self,
        command: CallCommand,
        origin: Origin,
    ) -> Result<control::CommandOk, control::ControlError> {
        let status = self.core.status();
        // Boxed: commands can run the script again (transfer), which can run commands.
        Box::pin(self.on_call_command(status, command, origin)).await
    }

    /// Call-control methods work on an answered call: an inbound call still ringing is
    /// answered first (as `play` does by default).
    async fn answer_for_control(&mut self) -> Result<(), String> {
        if self.inbound_unanswered() {
            self.answer_inbound().await?;
        }
        Ok(())
    }

    /// SWML record / record_call / stop_record_call / detect_machine / denoise: the same
    /// command REST runs.
    async fn script_control(&mut self, command: CallCommand, wait: swml::ControlWait) {
        if let Err(message) = self.answer_for_control().await {
            self.complete_now(Completion::Failed { message }).await;
            return;
        }
        let control_id = command.control_id().unwrap_or_default().to_owned();
        let wait_final = wait == swml::ControlWait::Final;
        if wait_final {
            // Waiting before it starts: its end may be reported while it starts.
            self.script_wait = Some(ScriptWait::Op {
                control_id: control_id.clone(),
            });
        }
        match self
            .control_command(command, Origin::Script { wait_final })
            .await
        {
            Err(e) => {
                self.complete_now(Completion::Failed {
                    message: e.to_string(),
                })
                .await
            }
            Ok(_) if !wait_final => {
                let url = self.recording_url(&control_id);
                self.complete_now(Completion::Started { control_id, url })
                    .await;
            }
            Ok(_) => {}
        }
    }

    /// SWML `send_fax` / `receive_fax`: the fax runs as an operation of the call; the script
    /// waits for its end.
    async fn script_fax(&mut self, params: control::command::FaxTransferParams) {
        if let Err(message) = self.answer_for_control().await {
            self.complete_now(Completion::Failed { message }).await;
            return;
        }
        self.script_wait = Some(ScriptWait::Op {
            control_id: params.control_id.clone(),
        });
        let result = self
            .ops
            .session
            .start_fax(params, Origin::Script { wait_final: true });
        self.drain_ops().await;
        if let Err(e) = result {
            self.complete_now(Completion::Failed {
                message: e.to_string(),
            })
            .await;
        }
    }

    /// SWML prompt: the collect starts with its timers held, the playback starts; the
    /// playback's end starts the timers, the first input stops the playback.
    async fn script_prompt(&mut self, play: PlayParams, collect: CollectParams) {
        if let Err(message) = self.answer_for_control().await {
            self.complete_now(Completion::Failed { message }).await;
            return;
        }
        self.script_wait = Some(ScriptWait::Op {
            control_id: collect.control_id.clone(),
        });
        if let Err(e) = self.op_prompt(play, collect).await {
            self.complete_now(Completion::Failed {
                message: e.to_string(),
            })
            .await;
        }
    }

    /// The `ai` agent listens after the answer it spoke as the model wrote it.
    async fn script_listen(&mut self, play_id: String, collect: CollectParams) {
        self.script_wait = Some(ScriptWait::Op {
            control_id: collect.control_id.clone(),
        });
        let early = self
            .ops
            .ai_listening
            .take_if(|(id, _)| *id == collect.control_id);
        if let Some((_, heard)) = early {
            // Started with the answer's playback: its result, now or when it comes.
            if let Some(completion) = heard {
                self.complete_now(completion).await;
            }
            return;
        }
        let result = self.ops.session.listen_after(now_ms(), &play_id, collect);
        self.drain_ops().await;
        if let Err(e) = result {
            self.complete_now(Completion::Failed {
                message: e.to_string(),
            })
            .await;
        }
    }

    /// Completes a blocking effect right away (the effect needed no I/O).
    async fn complete_now(&mut self, completion: Completion) {
        self.script_wait = None;
        self.step_script(swml::Step::Complete(completion)).await;
    }
}

fn effect_name(e: &Effect) -> &'static str {
    match e {
        Effect::Answer { .. } => "answer",
        Effect::Play { .. } => "play",
        Effect::SendDigits { .. } => "send_digits",
        Effect::Request(_) => "request",
        Effect::Fetch { .. } => "fetch",
        Effect::UserEvent { .. } => "user_event",
        Effect::Warning(_) => "warning",
        Effect::Hangup { .. } => "hangup",
        Effect::Control { command, .. } => command.name(),
        Effect::Prompt { .. } => "prompt",
        Effect::Listen { .. } => "ai",
        Effect::Connect(_) => "connect",
        Effect::EnterQueue(_) => "enter_queue",
        Effect::JoinConference(_) => "join_conference",
        Effect::Refer(_) => "sip_refer",
        Effect::Fax(p) => p.direction.method(),
        Effect::Model(_) | Effect::Background(_) => "ai",
    }
}

/// The HTTP call of SWML `request`, bounded in time and size.
pub(crate) async fn perform_request(
    client: &egress::EgressClient,
    req: swml::HttpRequest,
) -> Result<swml::HttpResponse, String> {
    let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("unsupported method {}", req.method))?;
    let url = reqwest::Url::parse(&req.url).map_err(|_| format!("invalid URL {}", req.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("invalid URL {}", req.url));
    }
    let mut builder = client
        .request(method, url)
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_millis(req.timeout_ms.max(1)));
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    let connect_and_send = builder.send();
    let mut resp = tokio::time::timeout(
        Duration::from_millis(req.timeout_ms.max(req.connect_timeout_ms).max(1)),
        connect_and_send,
    )
    .await
    .map_err(|_| "request timed out".to_string())?
    .map_err(|e| egress::refusal(&e).map_or_else(|| e.to_string(), ToString::to_string))?;
    let code = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > REQUEST_MAX_BODY {
            return Err(format!("response larger than {REQUEST_MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(swml::HttpResponse {
        code,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
