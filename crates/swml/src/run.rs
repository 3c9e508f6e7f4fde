//! The SWML interpreter: a pure machine, told the time (swml.md §2).
//!
//! Driving contract (like str0m's run loop):
//! 1. [`Run::start`] once, then repeatedly drain [`Run::poll_effect`] and execute each effect.
//! 2. A blocking effect (answer, play, send_digits, request, fetch, control, prompt) is answered with exactly one
//!    [`Run::complete`]; until then the script does not advance.
//! 3. Call [`Run::handle_timeout`] when [`Run::poll_timeout`] is due (`sleep`, or at once after
//!    a slice of JavaScript: [`Run::is_yielding`]). [`Run::step`] wraps the calls of 1–3 that
//!    may run steps (and JavaScript), for a runtime that runs them on other threads.
//! 4. [`Run::call_ended`] when the call goes away; the script stops at once.
//!
//! The machine never blocks, owns no sockets and reads no clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use control::command::{CollectParams, PlayParams};
use control::session::OpResult;
use control::CallCommand;
use serde_json::{Map, Value};

use crate::expr::{ExprError, Scope};
use crate::methods;

/// Execute frames allowed at once (swml.md §2.12).
pub const MAX_FRAMES: usize = 32;
/// Nested block levels allowed in one frame.
pub const MAX_BLOCK_DEPTH: usize = 64;
/// Transfers per call (swml.md §2.12).
pub const MAX_TRANSFERS: u32 = 32;
/// Instantaneous steps run without yielding before the script is judged runaway.
pub const MAX_STEPS_PER_ADVANCE: usize = 10_000;

/// What the runtime must do for the script.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Blocking: answer (no-op on an answered leg), then report completion. `codecs` is the
    /// method's comma list, for an inbound call not answered yet.
    Answer {
        max_duration_secs: u64,
        codecs: Option<String>,
    },
    /// Blocking: play, exactly as REST `calling.play` with these params would; an inbound
    /// call still ringing is answered first (`auto_answer`) or given early media.
    Play {
        params: PlayParams,
        auto_answer: bool,
    },
    /// Blocking: send RFC 4733 digits (`w` = 0.5 s, `W` = 1 s pause).
    SendDigits { digits: String },
    /// Blocking: an HTTP request; complete with [`Completion::Http`].
    Request(HttpRequest),
    /// Blocking: fetch a SWML document (POST, signed); complete with [`Completion::Document`].
    Fetch { url: String, payload: Value },
    /// Fire and forget.
    UserEvent { event: Value },
    /// Fire and forget: a `calling.script.warning`.
    Warning(ScriptWarning),
    /// Terminal: hang the call up. The script is over. `end_of_document`: the document ran
    /// off its end (no `hangup` step said so), which a `connect` `confirm` script reads as
    /// "accepted".
    Hangup {
        reason: String,
        end_of_document: bool,
    },
    /// A call-control command, the same typed value the REST API runs (`calling.record`,
    /// `calling.detect`, `calling.denoise`, ...). Blocking: complete with
    /// [`Completion::Started`] once it started ([`ControlWait::Started`]) or
    /// [`Completion::Op`] with its final result ([`ControlWait::Final`]); `Failed` when the
    /// command is refused.
    Control {
        command: CallCommand,
        wait: ControlWait,
    },
    /// Blocking: play while `calling.collect` runs; the collect's input timers start when the
    /// playback ends, and input stops the playback (barge-in). Complete with the collect's
    /// result ([`Completion::Op`]).
    Prompt {
        play: PlayParams,
        collect: CollectParams,
    },
    /// Blocking: `calling.collect` for the answer to the playback `play_id` the runtime
    /// started itself (a model's answer spoken as it streamed, [`ModelRequest::speak`]): as in
    /// a `Prompt`, input stops that playback and the input timers start when it ends — at once
    /// when it has. Complete with the collect's result ([`Completion::Op`]).
    ///
    /// [`ModelRequest::speak`]: crate::ModelRequest::speak
    Listen {
        play_id: String,
        collect: CollectParams,
    },
    /// Blocking: dial the plan's far ends and bridge the first to answer; complete with
    /// [`Completion::Connect`] when the bridge ended or every destination failed.
    Connect(crate::methods::connect::ConnectPlan),
    /// Blocking: wait in a queue; complete with [`Completion::Queue`].
    EnterQueue(crate::methods::enter_queue::QueuePlan),
    /// Blocking: a SIP REFER of the call, exactly as REST `calling.refer` with these params
    /// would; complete with [`Completion::Refer`] once its outcome is known (`Failed` when
    /// the command is refused, e.g. on a call that is not SIP).
    Refer(control::command::ReferParams),
    /// Blocking: join a conference until it ends; complete with [`Completion::Conference`].
    JoinConference(crate::methods::join_conference::ConferencePlan),
    /// Blocking: a fax on the call (`send_fax` / `receive_fax`); complete with
    /// [`Completion::Op`] (`OpResult::Faxed`) when it ended, `Failed` when it was refused.
    Fax(control::command::FaxTransferParams),
    /// Blocking: a chat-completions request of the `ai` agent to the model backend; complete
    /// with [`Completion::Model`].
    Model(crate::methods::ai::ModelRequest),
    /// Fire and forget: audio mixed under what the call sends (the `ai` agent's
    /// `background_file` and `playback_bg`), replacing any before it; `None` stops it.
    Background(Option<BackgroundAudio>),
}

/// A clip looped under the call's audio ([`Effect::Background`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundAudio {
    pub url: String,
    /// Gain in dB.
    pub volume_db: f64,
    /// Times it plays; 0 until stopped.
    pub loops: u32,
}

/// When a [`Effect::Control`] completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlWait {
    Started,
    /// The final result; for a `calling.detect` with `detect_message_end`, the machine's
    /// `READY` rather than `MACHINE`.
    Final,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub save_variables: bool,
    /// Words the runtime says on the call while it waits (an AI function's filler); the wait
    /// does not wait for them.
    pub filler: Option<PlayParams>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptWarning {
    pub code: &'static str,
    pub message: String,
    pub method: String,
    pub section: String,
    pub step_index: usize,
}

/// How a blocking effect ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Done,
    Failed {
        message: String,
    },
    Http(Result<HttpResponse, String>),
    Document(Result<Value, String>),
    /// A call-control operation started ([`ControlWait::Started`]); `url` is where a
    /// recording will be.
    Started {
        control_id: String,
        url: Option<String>,
    },
    /// A call-control operation's final result.
    Op(OpResult),
    /// A `connect` ended: `Ok` after a bridge (the far end hung up), `Err` with the failure
    /// reason (`no_answer`, `busy`, `declined`, `error`) when no destination was bridged.
    Connect(Result<(), String>),
    /// An `enter_queue` ended.
    Queue(crate::methods::enter_queue::QueueOutcome),
    /// A `sip_refer` ended.
    Refer(ReferResult),
    /// The participant left its conference: `join_conference_result` (`completed`, `failed`).
    Conference(String),
    /// The model's answer to an [`Effect::Model`], or why there is none.
    Model(Result<crate::methods::ai::ModelReply, String>),
}

/// How a REFER ended: the transfer succeeded (the NOTIFYs reported a 2xx), the answer to the
/// REFER and the last status the NOTIFYs reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferResult {
    pub success: bool,
    pub response_code: Option<u16>,
    pub notify_code: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Level {
    pub steps: Arc<Vec<Value>>,
    pub idx: usize,
}

/// Branch hooks of the `execute` that pushed a frame (swml.md §2.6 step 6).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReturnHooks {
    pub on_return: Option<Value>,
    pub result: Option<Value>,
    /// An `ai` agent that ran this document inline (a SWAIG `SWML` action without
    /// `transfer`): it takes the call back when the document is done.
    pub resume_ai: Option<Box<crate::methods::ai::Agent>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub doc: Arc<Value>,
    pub section: String,
    pub levels: Vec<Level>,
    pub params: Map<String, Value>,
    pub goto_counts: HashMap<String, u32>,
    pub hooks: ReturnHooks,
}

/// What a blocking effect will do with its completion.
#[derive(Debug, Clone)]
pub(crate) enum Waiting {
    Method {
        name: &'static str,
    },
    Sleep {
        until: Option<u64>,
    },
    /// The script spent a slice of JavaScript in one go: it goes on at `at` (at once), so a
    /// runtime can handle other events between slices and let other scripts run.
    Yield {
        at: u64,
    },
    Request {
        url: String,
        save_variables: bool,
    },
    ExecuteFetch {
        params: Map<String, Value>,
        hooks: ReturnHooks,
    },
    TransferFetch {
        params: Map<String, Value>,
    },
    /// A call-control method (record, prompt, detect_machine, denoise, ...) waiting on its
    /// command; `started` is when it began (for `detect_ms`).
    Control {
        name: &'static str,
        started: u64,
    },
    /// A `connect` dialling or bridged; its `result` hook and `transfer_after_bridge` run after.
    Connect {
        result: Option<Value>,
        transfer_after_bridge: Option<String>,
    },
    /// An `enter_queue` waiting; `transfer_after_bridge` runs after a bridge.
    Queue {
        transfer_after_bridge: Option<String>,
    },
    /// A `sip_refer` to `to` waiting for its outcome.
    Refer {
        to: String,
    },
    /// In a conference (or, `room`, a `join_room`); its `result` hook runs after.
    Conference {
        result: Option<Value>,
        room: bool,
    },
    /// An `ai` agent between two of its effects.
    Ai(Box<crate::methods::ai::Agent>),
}

/// What one step did. A short-lived return value, never stored, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Flow {
    Next,
    Wait(Waiting, Option<Box<Effect>>),
    /// The step changed the program counter itself (jump, block entry, frame push/pop).
    Jumped,
    Stop,
}

/// One call into the machine that may run steps, and so evaluate JavaScript: what a runtime
/// hands to an evaluator thread (the rest of the contract is cheap and never evaluates).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Start,
    Timeout,
    Complete(Completion),
    Replace(Value),
}

pub struct Run {
    pub(crate) scope: Scope,
    pub(crate) stack: Vec<Frame>,
    pub(crate) waiting: Option<Waiting>,
    pub(crate) transfers: u32,
    pub(crate) finished: bool,
    effects: VecDeque<Effect>,
    /// Method and position of the step being run, for warnings.
    pub(crate) current: (String, String, usize),
    /// Numbers the control_ids of the commands the script starts.
    pub(crate) next_control: u64,
}

impl Run {
    /// A run of `doc` (already loaded and validated by `Document`) on a call described by `call`.
    pub fn new(doc: Value, call: Map<String, Value>, envs: Map<String, Value>) -> Run {
        let mut run = Run {
            scope: Scope {
                call,
                envs,
                ..Scope::default()
            },
            stack: Vec::new(),
            waiting: None,
            transfers: 0,
            finished: false,
            effects: VecDeque::new(),
            current: (String::new(), String::new(), 0),
            next_control: 0,
        };
        run.enter_document(Arc::new(doc), "main", Map::new(), ReturnHooks::default());
        run
    }

    /// Shares `budget` (the call's, over every document it runs) with this run's JavaScript.
    pub fn set_js_budget(&mut self, budget: crate::expr::JsBudget) {
        self.scope.js = budget;
    }

    /// [`Run::start`], [`Run::handle_timeout`], [`Run::complete`] or [`Run::replace_document`].
    pub fn step(&mut self, now: u64, step: Step) {
        match step {
            Step::Start => self.start(now),
            Step::Timeout => self.handle_timeout(now),
            Step::Complete(c) => self.complete(now, c),
            Step::Replace(doc) => self.replace_document(now, doc),
        }
    }

    pub fn vars(&self) -> &Map<String, Value> {
        &self.scope.vars
    }

    /// `calling.ai.stop` for the script's running `ai` step: `None` when there is none;
    /// `Some(Some(ops))` when the agent is listening — the runtime stops that playback and
    /// collect and completes the step's effect (any completion: the agent ends on it); else
    /// `Some(None)`: the agent ends when its current effect completes.
    pub fn ai_stop(&mut self) -> Option<Option<crate::methods::ai::AiTurnOps>> {
        match self.waiting.as_mut() {
            Some(Waiting::Ai(agent)) => Some(crate::methods::ai::stop(agent)),
            _ => None,
        }
    }

    /// `calling.ai_hold` for the running `ai` step: `None` when there is none; `Some(Some(ops))`
    /// when it listens (the runtime cuts that turn, as for [`Run::ai_stop`]); the agent then
    /// announces the hold and plays hold music for `timeout_s` or until `calling.ai_unhold`.
    pub fn ai_hold(
        &mut self,
        timeout_s: u32,
        prompt: Option<String>,
    ) -> Option<Option<crate::methods::ai::AiTurnOps>> {
        match self.waiting.as_mut() {
            Some(Waiting::Ai(agent)) => {
                Some(crate::methods::ai::request_hold(agent, timeout_s, prompt))
            }
            _ => None,
        }
    }

    /// `calling.ai_unhold`: `None` when no agent runs; `Some(Some(play))` when it is on hold —
    /// the runtime stops that playback and the agent resumes; `Some(None)` otherwise.
    pub fn ai_unhold(&mut self, prompt: Option<String>) -> Option<Option<String>> {
        match self.waiting.as_mut() {
            Some(Waiting::Ai(agent)) => Some(crate::methods::ai::request_unhold(agent, prompt)),
            _ => None,
        }
    }

    /// `calling.ai_message` for the running `ai` step: `None` when there is none; `Some(Some(ops))`
    /// when a `user` message should be answered at once and the agent is listening — the
    /// runtime stops that turn's playback and collect and completes the step's effect, as for
    /// [`Run::ai_stop`]; else `Some(None)` (the message joins the model's next turn).
    pub fn ai_message(
        &mut self,
        m: crate::methods::ai::AiMessage,
    ) -> Option<Option<crate::methods::ai::AiTurnOps>> {
        match self.waiting.as_mut() {
            Some(Waiting::Ai(agent)) => Some(crate::methods::ai::message(agent, m)),
            _ => None,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Waiting only to go on after a slice of JavaScript ([`crate::expr::JS_SLICE`]).
    pub fn is_yielding(&self) -> bool {
        matches!(self.waiting, Some(Waiting::Yield { .. }))
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.waiting {
            Some(Waiting::Sleep { until }) => *until,
            Some(Waiting::Yield { at }) => Some(*at),
            _ => None,
        }
    }

    pub fn start(&mut self, now: u64) {
        self.advance(now);
    }

    pub fn handle_timeout(&mut self, now: u64) {
        if let Some(Waiting::Sleep { until: Some(t) } | Waiting::Yield { at: t }) = self.waiting {
            if now >= t {
                self.waiting = None;
                self.advance(now);
            }
        }
    }

    /// The call is gone: nothing more runs (swml.md §2.9).
    pub fn call_ended(&mut self) {
        self.finished = true;
        self.waiting = None;
    }

    /// Replaces the running document (REST `update` with url/swml, `calling.transfer`).
    pub fn replace_document(&mut self, now: u64, doc: Value) {
        if self.finished {
            return;
        }
        self.stack.clear();
        self.waiting = None;
        self.enter_document(Arc::new(doc), "main", Map::new(), ReturnHooks::default());
        self.advance(now);
    }

    pub fn complete(&mut self, now: u64, completion: Completion) {
        let Some(waiting) = self.waiting.take() else {
            return;
        };
        if self.finished {
            return;
        }
        methods::on_completion(self, waiting, completion, now);
        if !self.finished && self.waiting.is_none() {
            self.advance(now);
        }
    }

    /// A control_id for a command the script starts, unique on the call.
    pub(crate) fn new_control_id(&mut self, method: &str) -> String {
        self.next_control += 1;
        format!("swml-{method}-{}", self.next_control)
    }

    pub(crate) fn emit(&mut self, e: Effect) {
        self.effects.push_back(e);
    }

    pub(crate) fn warn(&mut self, code: &'static str, message: impl Into<String>) {
        let message = message.into();
        self.scope
            .vars
            .insert("script_error".into(), Value::String(code.into()));
        self.scope.vars.insert(
            "script_error_message".into(),
            Value::String(message.clone()),
        );
        let (method, section, step_index) = self.current.clone();
        self.emit(Effect::Warning(ScriptWarning {
            code,
            message,
            method,
            section,
            step_index,
        }));
    }

    /// Ends the script and the call.
    pub(crate) fn hang_up(&mut self, reason: &str) {
        self.finish(reason, false);
    }

    /// The document ran off its end: the call is hung up (swml.md §2.9).
    fn end_of_document(&mut self) {
        self.finish("hangup", true);
    }

    fn finish(&mut self, reason: &str, end_of_document: bool) {
        self.finished = true;
        self.waiting = None;
        self.emit(Effect::Hangup {
            reason: reason.to_string(),
            end_of_document,
        });
    }

    /// A fatal error: warn, then hang up with `error` (swml.md §2.11 over-limit policy).
    pub(crate) fn fail(&mut self, code: &'static str, message: impl Into<String>) {
        self.warn(code, message);
        self.hang_up("error");
    }

    /// Expands placeholders in a step's parameters; expression errors warn and yield "".
    pub(crate) fn expand(&mut self, v: &Value) -> Value {
        let mut errors: Vec<ExprError> = Vec::new();
        let out = self.scope.expand(v, &mut |e| errors.push(e));
        for e in errors {
            self.expr_error(e);
        }
        out
    }

    /// An expression failed: a warning, and the script continues with empty text — unless
    /// the call's JavaScript budget is spent (the script fails: a warning, then hangup with
    /// `error`) or the call is ending (the script stops quietly).
    pub(crate) fn expr_error(&mut self, e: ExprError) {
        if self.finished {
            return;
        }
        match e {
            ExprError::Cancelled => self.call_ended(),
            ExprError::ScriptBudget => self.fail("relay_script_js_eval_error", e.to_string()),
            e => self.warn("relay_script_js_eval_error", e.to_string()),
        }
    }

    pub(crate) fn enter_document(
        &mut self,
        doc: Arc<Value>,
        section: &str,
        params: Map<String, Value>,
        hooks: ReturnHooks,
    ) -> bool {
        let steps = match doc
            .get("sections")
            .and_then(|s| s.get(section))
            .and_then(Value::as_array)
        {
            Some(s) => Arc::new(s.clone()),
            None => return false,
        };
        self.scope.params = params.clone();
        self.stack.push(Frame {
            doc,
            section: section.to_string(),
            levels: vec![Level { steps, idx: 0 }],
            params,
            goto_counts: HashMap::new(),
            hooks,
        });
        true
    }

    /// Enters a nested block of the current frame; after it, execution resumes after the
    /// owning step (whose index was already advanced).
    pub(crate) fn enter_block(&mut self, steps: &Value) -> bool {
        let Some(arr) = steps.as_array() else {
            return false;
        };
        let Some(frame) = self.stack.last_mut() else {
            return false;
        };
        if frame.levels.len() >= MAX_BLOCK_DEPTH {
            self.fail("relay_script_nested_too_deep", "blocks nested too deep");
            return false;
        }
        frame.levels.push(Level {
            steps: Arc::new(arr.clone()),
            idx: 0,
        });
        true
    }

    /// Pops the top frame (subroutine finished) and runs the caller's hooks. Returns false when
    /// there is no caller: the script is over.
    pub(crate) fn pop_frame(&mut self, now: u64) -> bool {
        let Some(done) = self.stack.pop() else {
            return false;
        };
        let Some(caller) = self.stack.last() else {
            self.stack.push(done);
            return false;
        };
        self.scope.params = caller.params.clone();
        methods::execute::after_return(self, done.hooks, now);
        true
    }

    fn advance(&mut self, now: u64) {
        let mut budget = MAX_STEPS_PER_ADVANCE;
        let js_at_start = self.scope.js.get();
        while !self.finished && self.waiting.is_none() {
            if self.scope.js.get().saturating_sub(js_at_start) >= crate::expr::JS_SLICE {
                self.waiting = Some(Waiting::Yield { at: now });
                return;
            }
            if budget == 0 {
                self.fail(
                    "relay_script_internal_error",
                    "too many steps without waiting (runaway script)",
                );
                return;
            }
            budget -= 1;
            let Some(frame) = self.stack.last_mut() else {
                self.end_of_document();
                return;
            };
            let section = frame.section.clone();
            let depth = frame.levels.len();
            let Some(level) = frame.levels.last_mut() else {
                self.end_of_document();
                return;
            };
            if level.idx >= level.steps.len() {
                if depth > 1 {
                    frame.levels.pop();
                    continue;
                }
                // Section ran off its end: return to the caller, or the script is over.
                if !self.pop_frame(now) {
                    self.end_of_document();
                }
                continue;
            }
            let step = level.steps[level.idx].clone();
            let step_index = level.idx;
            level.idx += 1;
            let (name, params) = match step
                .as_object()
                .and_then(|o| o.iter().next().filter(|_| o.len() == 1))
            {
                Some((k, v)) => (k.clone(), v.clone()),
                None => match step.as_str() {
                    // Bare-string steps such as `- answer` or `- hangup`.
                    Some(s) => (s.to_string(), Value::Object(Map::new())),
                    None => {
                        self.current = (String::new(), section, step_index);
                        self.warn(
                            "relay_script_method_missing_name",
                            "a step must have exactly one method",
                        );
                        continue;
                    }
                },
            };
            self.current = (name.clone(), section, step_index);
            let flow = methods::dispatch(self, &name, &params, now);
            if self.finished {
                // The step failed the script (its JavaScript budget, for one): what it
                // would have done next is not done.
                self.waiting = None;
                return;
            }
            match flow {
                Flow::Next | Flow::Jumped => {}
                Flow::Wait(w, effect) => {
                    self.waiting = Some(w);
                    if let Some(e) = effect {
                        self.emit(*e);
                    }
                }
                Flow::Stop => return,
            }
        }
    }
}
