//! `ai` (swml.md §6.1): a conversational agent on the call, as a machine the interpreter steps
//! through the effects it already has — a turn is a `prompt` (the agent's words spoken while the
//! caller's speech is collected, so talking over the agent stops it: barge-in), a SWAIG tool call
//! is a `request` to the function's webhook — plus one of its own: [`Effect::Model`], a
//! chat-completions request the runtime sends to its model backend.
//!
//! What is honoured and what is accepted and ignored: docs/ai.md. Contexts and steps are in
//! ai_contexts.rs, the native functions in ai_native.rs, `data_map` functions in data_map.rs.

use std::collections::VecDeque;

use control::command::{CollectParams, MediaItem, PlayParams, SpeechParams, TtsItem};
use control::session::{CollectResult, OpResult};
use serde_json::{json, Map, Value};

use super::ai_contexts::{Contexts, Entered, Reset, CHANGE_CONTEXT, NEXT_STEP};
use super::ai_gather::{self, GATHER_SUBMIT};
use super::ai_languages::{self, Language, CHANGE_LANGUAGE};
use super::ai_mcp::{self, Discovery, McpServer};
use super::ai_native::{self, Native};
use super::ai_vars;
use super::ai_wake::{Wake, PAUSE_CONVERSATION};
use super::data_map::{self, DataMapRun, DataMapStep};
use super::{as_f64, set_var};
use crate::run::{
    BackgroundAudio, Completion, Effect, Flow, HttpRequest, ReturnHooks, Run, Waiting, MAX_FRAMES,
};

/// Tool rounds (model asks, tools answer) in one turn before the agent gives up on the turn.
const MAX_TOOL_ROUNDS: u32 = 5;
/// Turns in one session; a bound on a conversation that never ends.
const MAX_TURNS: u32 = 500;
/// What the caller hears when the model cannot answer.
const FALLBACK: &str = "I'm sorry, I cannot answer right now.";
/// How long one listen waits for the caller to start speaking, seconds.
const LISTEN_S: f64 = 10.0;
const SWAIG_TIMEOUT_MS: u64 = 10_000;
/// Most SWML documents one tool round may run inline.
const MAX_INLINE_SWML: usize = 8;
/// Most keys one keypad entry takes.
const MAX_DIGITS: u32 = 32;
/// Most hints `add_dynamic_hints` actions add.
const MAX_DYNAMIC_HINTS: usize = 500;
/// What the model is asked for a `consolidate` switch, and how its summary is put to it after.
const CONSOLIDATE_PROMPT: &str =
    "Summarise the conversation so far in a few sentences: what the user \
     wants, what they told you, what was done and what is still open. Write only the summary.";
const CONSOLIDATED: &str = "Summary of the conversation so far: ";

/// The operations of an agent's turn, for a runtime that must stop them
/// ([`Run::ai_stop`](crate::Run::ai_stop)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiTurnOps {
    pub play: String,
    pub collect: String,
}

/// `calling.ai.stop` on the waiting agent: it ends once its current effect completes. `Some`
/// with the turn's operations when it is listening (the runtime stops them and completes the
/// effect), `Some(None)` otherwise; `None` when no agent runs.
pub(crate) fn stop(agent: &mut Agent) -> Option<AiTurnOps> {
    agent.stop_requested = true;
    agent.turn_ops.clone()
}

/// `calling.ai_message` (calling-api.md §6.24).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AiMessage {
    /// `system` (a silent instruction), `user` (as if the caller said it: the agent answers)
    /// or `assistant` (as if the agent said it).
    pub role: String,
    pub text: Option<String>,
    pub global_data: Option<Map<String, Value>>,
    /// `reset.full_reset`: the conversation starts over (the prompt stays).
    pub full_reset: bool,
    /// `reset.system_prompt`: replaces the prompt.
    pub system_prompt: Option<String>,
    /// `reset.user_prompt`: a caller's message, as `role: user`.
    pub user_prompt: Option<String>,
}

/// Applies `m`; `Some(ops)` when the agent should answer a `user` message at once and is
/// listening: the runtime cuts that turn (as for a stop) and the model is asked.
pub(crate) fn message(agent: &mut Agent, m: AiMessage) -> Option<AiTurnOps> {
    if m.full_reset {
        agent.messages.truncate(1);
    }
    if let Some(system) = m.system_prompt {
        agent.base_prompt = system;
        refresh_system(agent);
    }
    let mut user = false;
    for (role, text) in [(m.role.as_str(), m.text), ("user", m.user_prompt)] {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            continue;
        };
        let role = match role {
            "user" | "assistant" => role,
            _ => "system",
        };
        user |= role == "user";
        agent.messages.push(json!({"role": role, "content": text}));
    }
    for (k, v) in m.global_data.into_iter().flatten() {
        agent.global_data.insert(k, v);
    }
    if user && agent.phase == Phase::Turn {
        agent.answer_now = true;
        return agent.turn_ops.clone();
    }
    None
}

/// One chat-completions request ([`Effect::Model`]): OpenAI-format `messages` and `tools`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// `params.ai_model`; the backend's default when absent.
    pub model: Option<String>,
    pub messages: Vec<Value>,
    pub tools: Vec<Value>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Speak the answer as it streams: the runtime starts `play` (its items left to the
    /// runtime: `prefix`, then the answer's text sentence by sentence) once the first words
    /// come, and says so in [`ModelReply::spoken`]. The turn then listens after that playback
    /// ([`Effect::Listen`]).
    pub speak: Option<SpeakPlan>,
    /// Words the runtime says as the request starts (a speech filler, while the model
    /// thinks); nobody waits for them, and the answer is spoken after them.
    pub filler: Option<Box<PlayParams>>,
}

/// How a model turn's answer is to be spoken as it streams ([`ModelRequest::speak`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakPlan {
    /// The playback's control id, voice and language; its items are the streamed speech.
    pub play: PlayParams,
    /// Words said before the answer (a function's `say`, fillers).
    pub prefix: String,
    /// The turn's collect, to start with the playback (the caller may talk over the answer
    /// while the model still writes it); the turn's [`Effect::Listen`] carries the same one.
    pub collect: CollectParams,
    /// How words are to be said (`pronounce`), applied to each sentence before synthesis.
    pub pronounce: Vec<super::ai_pronounce::Pronounce>,
}

/// The model's answer ([`Completion::Model`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReply {
    pub text: String,
    pub tool_calls: Vec<ModelToolCall>,
    /// The runtime spoke the answer's text (with the plan's prefix) as it streamed, in the
    /// plan's playback, which may still be playing.
    pub spoken: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

/// A SWAIG function the model may call.
#[derive(Debug, Clone)]
struct Function {
    name: String,
    description: String,
    parameters: Value,
    web_hook_url: Option<String>,
    meta_data_token: Option<String>,
    meta_data: Value,
    /// Answered by the engine itself (data_map.rs), no webhook.
    data_map: Option<Value>,
    /// Offered to the model (`active`, changed by `toggle_functions`).
    active: bool,
    /// Said while its webhook runs: its own `fillers`, else the language's
    /// `function_fillers` unless `skip_fillers` (which skips only the language's).
    fillers: Vec<String>,
    skip_fillers: bool,
    /// `wait_for_fillers`: the webhook goes out once the filler has been said.
    wait_for_fillers: bool,
    fillers_said: usize,
    /// `wait_file` (`wait_file_loops` times; 0: until the answer): mixed under the call while
    /// its webhook runs.
    wait_file: Option<BackgroundAudio>,
    /// A tool of this server of `SWAIG.mcp_servers` (its index): called over MCP.
    mcp: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `SWAIG.includes`: the remote functions' signatures are fetched before the first turn.
    Include,
    /// `SWAIG.mcp_servers`: their tools are listed before the first turn.
    Mcp,
    /// `params.initial_sleep_ms`: the wait before the first turn.
    Sleep,
    /// The agent speaks and the caller's answer is collected.
    Turn,
    /// The model is thinking.
    Model,
    /// A SWAIG function's webhook runs.
    Tool,
    /// The last words before the agent ends (a `say` with `stop`/`hangup`, the fallback).
    Closing,
    /// The model summarises the conversation so far (a `consolidate` switch).
    Consolidate,
    /// The post-prompt summary.
    Summary,
    /// The `post_conversation` report.
    Report,
    /// `calling.ai_hold`: the model words the hold announcement.
    HoldAnnounce,
    /// On hold: the announcement, then hold music until `calling.ai_unhold` or the timeout.
    Held,
    /// The agent's words play with barge-in off; the caller is heard once they end.
    Say,
}

/// How the session ends.
#[derive(Debug, Clone, Default, PartialEq)]
struct Ending {
    hangup: bool,
    stop: bool,
    failed: bool,
    /// Where the call goes after the agent (a `SWML` action with `transfer`, a `transfer`
    /// action): a document, a URL or a section, as `transfer`'s `dest`.
    transfer: Option<Value>,
}

/// A running `ai` step.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    phase: Phase,
    messages: Vec<Value>,
    /// The prompt before the contexts' words (`messages[0]` is it plus them).
    base_prompt: String,
    contexts: Option<Contexts>,
    functions: Vec<Function>,
    natives: Vec<Native>,
    /// `SWAIG.includes` whose signatures are still to fetch.
    includes: VecDeque<Value>,
    /// `SWAIG.mcp_servers`; those whose tools are still to list (indexes), the discovery step
    /// of the one being listed, the one a tool call waits on.
    mcp_servers: Vec<McpServer>,
    mcp_pending: VecDeque<usize>,
    mcp_discovering: Option<(usize, Discovery)>,
    mcp_calling: Option<usize>,
    /// The step entered asks the agent to go on without the caller once it has spoken.
    skip_user_turn: bool,
    /// `wait_for_user`: the next turn listens without the agent speaking.
    wait_for_user: bool,
    /// An `isolated` context was entered: the conversation starts over after this tool round.
    isolate: bool,
    /// A switch asked for the conversation to be summarised after this tool round.
    consolidate: bool,
    /// A `wait_seconds` in progress: the function's answer when it is over.
    native_wait: Option<String>,
    /// The time of the completion being handled (Unix ms).
    now: u64,
    /// What the prompts' templates read of the call and the script (ai_vars.rs).
    call_vars: Map<String, Value>,
    /// The TTS voice and language (`languages[0]`: `voice`, `code`); the language is also the
    /// recogniser's.
    voice: Option<String>,
    language: Option<String>,
    /// `languages[0].function_fillers` (or `fillers`): said while a function runs.
    function_fillers: Vec<String>,
    fillers_said: usize,
    /// `languages[0].speech_fillers`: said while the model thinks about the caller's words;
    /// `filler_due`: the next model turn answers them.
    speech_fillers: Vec<String>,
    speech_fillers_said: usize,
    filler_due: bool,
    /// `SWAIG.internal_fillers`: phrases said while an engine function runs, by its name;
    /// `internal_filler`: the one the next model turn starts with.
    internal_fillers: Map<String, Value>,
    internal_filler: Option<String>,
    /// `params.enable_barge` (talking over the agent stops it); `static_greeting_no_barge`
    /// turns it off for the greeting only.
    barge: bool,
    no_barge_once: bool,
    /// `params.barge_min_words`: the caller's words it takes to cut the agent.
    barge_min_words: u32,
    /// `pronounce` (and the current language's): applied to what the agent says.
    pronounce: Vec<super::ai_pronounce::Pronounce>,
    /// The document's own `pronounce` rules (the language's follow them).
    doc_pronounce: Vec<super::ai_pronounce::Pronounce>,
    /// `languages` (or `multilingual`), and the one spoken now.
    languages: Vec<Language>,
    language_at: usize,
    default_hook: Option<String>,
    model: Option<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    global_data: Map<String, Value>,
    hints: Vec<String>,
    end_of_speech_s: f64,
    inactivity_ms: u64,
    /// `params.attention_timeout`: after that much of the caller's silence the model is given
    /// `attention_timeout_prompt` and says something to get their attention (off unless set).
    attention_ms: Option<u64>,
    attention_prompt: String,
    /// The end of the agent's last words to get attention (the silence counts from it too).
    attention_from: u64,
    /// The turn in progress answers the attention prompt.
    attention_turn: bool,
    /// When the caller last said something (or the session began).
    heard_at: u64,
    post_prompt: Option<String>,
    post_prompt_url: Option<String>,
    summary: Option<String>,
    tool_calls: VecDeque<ModelToolCall>,
    calling: Option<ModelToolCall>,
    /// The `data_map` function being called waits on one of its webhooks.
    data_map_run: Option<DataMapRun>,
    tool_rounds: u32,
    turns: u32,
    to_say: Vec<String>,
    /// SWML documents from `SWML` actions without `transfer`, to run before the agent goes on.
    inline_swml: VecDeque<Value>,
    /// `params.swaig_allow_swml` (default true): functions may run SWML on the call.
    allow_swml: bool,
    /// `params.swaig_set_global_data` (default true): functions may change `global_data`.
    allow_global_data: bool,
    /// `params.swaig_allow_settings` (default true): functions may change the model's settings.
    allow_settings: bool,
    /// `params.swaig_post_conversation` / `swaig_post_swml_vars`: what a function's webhook
    /// gets besides the call (the conversation; the script's variables, all or those named).
    post_conversation: bool,
    post_swml_vars: Option<Vec<String>>,
    /// Hints added by `add_dynamic_hints` actions (after the document's).
    dynamic_hints: Vec<String>,
    /// `params.ai_volume`: the agent's speech, in dB (−50 to 50).
    volume_db: f64,
    /// `params.conversation_sliding_window`: the model sees at most this many of the latest
    /// messages besides the system message (0: all).
    sliding_window: usize,
    /// `params.conscience`: reminded to the model after functions have answered.
    conscience: Option<String>,
    /// `params.app_name`: named in every webhook's body (`dialtone` by default).
    app_name: String,
    /// `ai_name`, `enable_pause`, `start_paused`, `speak_when_spoken_to` (ai_wake.rs).
    wake: Wake,
    /// `params.digit_terminators` / `digit_timeout`: the listens also take keypresses.
    digits: Option<control::command::DigitsParams>,
    /// `params.initial_sleep_ms`, still to wait before the first turn.
    initial_sleep_ms: u64,
    /// `params.background_file`, started with the agent.
    background_file: Option<BackgroundAudio>,
    /// A `playback_bg` (Some) or `stop_playback_bg` (None) action, for the runtime.
    background_change: Option<Option<BackgroundAudio>>,
    /// That `playback_bg` had `wait`: the agent waits for the file to play once.
    background_wait: bool,
    /// The background audio playing (stopped when the agent ends, back after hold music).
    background: Option<BackgroundAudio>,
    /// A function's `wait_file` plays in its place until the function answers.
    wait_file_on: bool,
    /// A `wait_for_fillers` function's webhook, sent once its filler has been said.
    request_after_filler: Option<HttpRequest>,
    /// `params.hold_music`: played (looping, under nothing) while on hold, after the
    /// announcement, instead of a ringback cadence.
    hold_music: Option<String>,
    /// On hold with `hold_music`: the announcement plays, the music comes once it is over
    /// (`music_on` while it plays).
    music_next: bool,
    music_on: bool,
    /// `calling.ai_unhold` came while on hold.
    unheld: bool,
    /// What `user_input` actions put in the caller's mouth, for the model's next turn.
    user_input: Vec<String>,
    /// The playback and the collect of the turn running now.
    turn_ops: Option<AiTurnOps>,
    /// The playback the model's answer is to be spoken in as it streams, and the turn's
    /// collect started with it (the model turn's [`SpeakPlan`]).
    speaking: Option<String>,
    planned_collect: Option<CollectParams>,
    /// `calling.ai.stop` came: the agent ends when its current effect completes.
    stop_requested: bool,
    /// A `user` message came (`calling.ai_message`): the turn is cut and the model answers.
    answer_now: bool,
    /// `calling.ai_hold` came: (timeout in seconds, the announcement's instruction).
    hold_requested: Option<(u32, String)>,
    /// The hold's length (seconds), its playback while on hold, and what `calling.ai_unhold`
    /// tells the model; `unhold_pending`: the unhold came before the hold music began.
    hold_timeout: u32,
    /// The model's answer that came with the hold, said before its announcement.
    hold_prefix: String,
    hold_play: Option<String>,
    unhold_prompt: Option<String>,
    unhold_pending: bool,
    ending: Ending,
    /// `params.static_greeting`.
    greeting: Option<String>,
    /// `params.hard_stop_time` as a deadline (Unix ms) and what the model is then told.
    hard_stop_at: Option<u64>,
    hard_stop_prompt: String,
    /// `params.local_tz`: the zone `check_time` answers in when the model names none.
    local_tz: String,
    /// The include whose signatures are being fetched.
    including: Option<Value>,
    session_id: String,
    started_at: u64,
}

fn failed(run: &mut Run, code: &'static str, why: impl Into<String>) -> Flow {
    run.warn(code, format!("ai: {}", why.into()));
    set_var(run, "ai_result", "failed");
    set_var(run, "return_value", "failed");
    Flow::Next
}

/// A prompt's text: `text`, or `pom` rendered as Markdown sections.
pub(crate) fn prompt_text(p: &Value) -> Option<String> {
    if let Some(t) = p.get("text").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    let pom = p.get("pom")?.as_array()?;
    let mut out = String::new();
    for section in pom {
        render_pom(section, 2, &mut out);
    }
    Some(out.trim_end().to_string())
}

fn render_pom(section: &Value, level: usize, out: &mut String) {
    if let Some(title) = section.get("title").and_then(Value::as_str) {
        out.push_str(&"#".repeat(level.min(6)));
        out.push(' ');
        out.push_str(title);
        out.push_str("\n\n");
    }
    if let Some(body) = section.get("body").and_then(Value::as_str) {
        out.push_str(body);
        out.push_str("\n\n");
    }
    if let Some(bullets) = section.get("bullets").and_then(Value::as_array) {
        let numbered = section
            .get("numberedBullets")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for (i, b) in bullets.iter().enumerate() {
            let text = crate::expr::stringify(b);
            if numbered {
                out.push_str(&format!("{}. {text}\n", i + 1));
            } else {
                out.push_str(&format!("- {text}\n"));
            }
        }
        out.push('\n');
    }
    if let Some(subs) = section.get("subsections").and_then(Value::as_array) {
        for s in subs {
            render_pom(s, level + 1, out);
        }
    }
}

/// The string at `key` of `v`, if it is one.
fn text_at(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A string parameter that says something (not missing, not blank), as written.
fn filled_at(v: &Value, key: &str) -> Option<String> {
    text_at(v, key).filter(|t| !t.trim().is_empty())
}

/// A count parameter of at least 1, capped at `max`.
fn count_at(v: &Value, key: &str, max: f64) -> Option<f64> {
    v.get(key)
        .and_then(as_f64)
        .filter(|n| n.is_finite() && *n >= 1.0)
        .map(|n| n.min(max))
}

fn ms_param(params: &Value, key: &str) -> Option<u64> {
    params
        .get(key)
        .and_then(as_f64)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64)
}

fn functions_of(swaig: &Value) -> Result<Vec<Function>, String> {
    let mut out = Vec::new();
    let Some(list) = swaig.get("functions") else {
        return Ok(out);
    };
    let Some(list) = list.as_array() else {
        return Err("`SWAIG.functions` must be a list".into());
    };
    for f in list {
        out.push(function_of(f)?);
    }
    Ok(out)
}

/// Filler phrases: a list, or `{"<language>": [...]}` (English first, else the first).
fn phrases(v: Option<&Value>) -> Vec<String> {
    ai_languages::phrases(v, "en-US")
}

/// One SWAIG function definition (`argument` is the deprecated spelling of `parameters`).
fn function_of(f: &Value) -> Result<Function, String> {
    let name = f
        .get("function")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("each SWAIG function needs a `function` name")?;
    let parameters = f
        .get("parameters")
        .or_else(|| f.get("argument"))
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    {
        Ok(Function {
            name: name.to_string(),
            description: f
                .get("description")
                .or_else(|| f.get("purpose"))
                .map(crate::expr::stringify)
                .unwrap_or_default(),
            parameters,
            web_hook_url: text_at(f, "web_hook_url"),
            meta_data_token: text_at(f, "meta_data_token"),
            meta_data: f.get("meta_data").cloned().unwrap_or_else(|| json!({})),
            data_map: f.get("data_map").cloned().filter(Value::is_object),
            active: f.get("active").and_then(super::as_bool) != Some(false),
            fillers: phrases(f.get("fillers")),
            skip_fillers: f.get("skip_fillers").and_then(super::as_bool) == Some(true),
            wait_for_fillers: f.get("wait_for_fillers").and_then(super::as_bool) == Some(true),
            fillers_said: 0,
            wait_file: filled_at(f, "wait_file").map(|url| BackgroundAudio {
                url,
                volume_db: 0.0,
                loops: loop_count(f.get("wait_file_loops")),
            }),
            mcp: None,
        })
    }
}

/// Parameters left as written: SWAIG's `data_map` and the prompts hold the AI's own templates
/// (`${args.x}`, `${lc:…}`, swml.md §5.7), which SWML expansion must not touch (§5.8).
const NOT_EXPANDED: [&str; 4] = ["prompt", "post_prompt", "SWAIG", "global_data"];

/// `amazon_bedrock` (swml.md §6.3): the same agent with `ai`'s narrower parameter set; what it
/// does not have (`contexts`) is left out, `prompt.voice_id` is accepted and not used. Its model
/// is the configured backend, like `ai`'s (docs/ai.md).
pub(crate) fn run_bedrock(run: &mut Run, params: &Value, now: u64) -> Flow {
    let mut params = params.clone();
    if let Some(prompt) = params.get_mut("prompt").and_then(Value::as_object_mut) {
        prompt.remove("contexts");
    }
    self::run(run, &params, now)
}

pub(crate) fn run(run: &mut Run, params: &Value, now: u64) -> Flow {
    let p = super::expand_except(run, params, &NOT_EXPANDED);
    let Some(prompt) = p.get("prompt") else {
        return failed(
            run,
            "relay_script_method_parameter_missing",
            "needs `prompt`",
        );
    };
    if !prompt.is_object() {
        return failed(
            run,
            "relay_script_element_wrong_type",
            "`prompt` must be an object with `text` or `pom`",
        );
    }
    let Some(system) = prompt_text(prompt) else {
        return failed(
            run,
            "relay_script_method_parameter_missing",
            "`prompt` needs `text` or `pom`",
        );
    };
    let swaig = p.get("SWAIG").cloned().unwrap_or_else(|| json!({}));
    let functions = match functions_of(&swaig) {
        Ok(f) => f,
        Err(why) => return failed(run, "relay_script_method_parameter_invalid_value", why),
    };
    let contexts = match Contexts::from_prompt(prompt) {
        Ok(c) => c,
        Err(why) => return failed(run, "relay_script_method_parameter_invalid_value", why),
    };
    let includes: VecDeque<Value> = swaig
        .get("includes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| i.get("url").and_then(Value::as_str).is_some())
        .cloned()
        .collect();
    let tuning = p.get("params").cloned().unwrap_or_else(|| json!({}));
    let hints = p
        .get("hints")
        .and_then(Value::as_array)
        .map(|h| {
            h.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    other => text_at(other, "hint"),
                })
                .collect()
        })
        .unwrap_or_default();
    let mcp_servers: Vec<McpServer> = swaig
        .get("mcp_servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(McpServer::of)
        .take(super::ai_mcp::MAX_SERVERS)
        .collect();
    let post_prompt = p.get("post_prompt").and_then(prompt_text);
    let (languages, start_language) = ai_languages::of(&p);
    let language_names: Vec<String> = languages.iter().map(|l| l.name.clone()).collect();
    let call_id = run
        .scope
        .call
        .get("call_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let session_id = format!("{call_id}-ai-{}", run.new_control_id("ai"));
    let mut agent = Agent {
        phase: Phase::Turn,
        messages: vec![json!({"role": "system", "content": system.clone()})],
        base_prompt: system,
        contexts,
        functions,
        natives: ai_native::enabled(&swaig),
        internal_fillers: swaig
            .get("internal_fillers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        internal_filler: None,
        includes,
        mcp_pending: (0..mcp_servers.len()).collect(),
        mcp_servers,
        mcp_discovering: None,
        mcp_calling: None,
        skip_user_turn: false,
        wait_for_user: false,
        isolate: false,
        consolidate: false,
        allow_global_data: true,
        allow_settings: true,
        post_conversation: false,
        post_swml_vars: None,
        dynamic_hints: Vec::new(),
        volume_db: 0.0,
        sliding_window: 0,
        conscience: None,
        wake: Wake::of(&tuning),
        digits: digits_of(&tuning),
        initial_sleep_ms: ms_param(&tuning, "initial_sleep_ms").map_or(0, |ms| ms.min(300_000)),
        app_name: filled_at(&tuning, "app_name").unwrap_or_else(|| "dialtone".to_string()),
        native_wait: None,
        now,
        call_vars: ai_vars::call_vars(&run.scope, &language_names, text_at(&tuning, "direction")),
        voice: None,
        language: None,
        function_fillers: Vec::new(),
        fillers_said: 0,
        speech_fillers: Vec::new(),
        speech_fillers_said: 0,
        filler_due: false,
        barge: true,
        no_barge_once: false,
        barge_min_words: 0,
        pronounce: Vec::new(),
        doc_pronounce: super::ai_pronounce::rules(p.get("pronounce")),
        languages,
        language_at: 0,
        default_hook: swaig.get("defaults").and_then(default_hook),
        model: text_at(&tuning, "ai_model"),
        temperature: prompt.get("temperature").and_then(as_f64),
        top_p: prompt.get("top_p").and_then(as_f64),
        max_tokens: prompt
            .get("max_tokens")
            .and_then(as_f64)
            .filter(|t| *t >= 1.0)
            .map(|t| t.min(4096.0) as u32),
        global_data: p
            .get("global_data")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        hints,
        end_of_speech_s: ms_param(&tuning, "end_of_speech_timeout").unwrap_or(700) as f64 / 1000.0,
        inactivity_ms: ms_param(&tuning, "inactivity_timeout").unwrap_or(600_000),
        attention_ms: ms_param(&tuning, "attention_timeout")
            .filter(|ms| *ms > 0)
            .map(|ms| ms.clamp(1_000, 600_000)),
        attention_prompt: filled_at(&tuning, "attention_timeout_prompt")
            .unwrap_or_else(|| ATTENTION_PROMPT.to_string()),
        attention_from: now,
        attention_turn: false,
        heard_at: now,
        post_prompt,
        post_prompt_url: text_at(&p, "post_prompt_url"),
        summary: None,
        tool_calls: VecDeque::new(),
        calling: None,
        data_map_run: None,
        tool_rounds: 0,
        turns: 0,
        to_say: Vec::new(),
        inline_swml: VecDeque::new(),
        allow_swml: true,
        background_file: None,
        background_change: None,
        background_wait: false,
        wait_file_on: false,
        request_after_filler: None,
        background: None,
        hold_music: None,
        music_next: false,
        music_on: false,
        unheld: false,
        user_input: Vec::new(),
        turn_ops: None,
        speaking: None,
        planned_collect: None,
        stop_requested: false,
        answer_now: false,
        hold_requested: None,
        hold_timeout: 0,
        hold_prefix: String::new(),
        hold_play: None,
        unhold_prompt: None,
        unhold_pending: false,
        ending: Ending::default(),
        greeting: None,
        hard_stop_at: None,
        hard_stop_prompt: String::new(),
        local_tz: ai_native::DEFAULT_LOCAL_TZ.to_string(),
        including: None,
        session_id,
        started_at: now,
    };
    use_language(&mut agent, start_language);
    agent.barge = tuning.get("enable_barge").and_then(super::as_bool) != Some(false);
    agent.allow_swml = tuning.get("swaig_allow_swml").and_then(super::as_bool) != Some(false);
    agent.allow_global_data =
        tuning.get("swaig_set_global_data").and_then(super::as_bool) != Some(false);
    agent.allow_settings =
        tuning.get("swaig_allow_settings").and_then(super::as_bool) != Some(false);
    agent.post_conversation = tuning
        .get("swaig_post_conversation")
        .and_then(super::as_bool)
        == Some(true);
    agent.post_swml_vars = match tuning.get("swaig_post_swml_vars") {
        Some(Value::Array(names)) => Some(
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        Some(v) if super::as_bool(v) == Some(true) => Some(Vec::new()),
        _ => None,
    };
    agent.volume_db = tuning
        .get("ai_volume")
        .and_then(as_f64)
        .filter(|v| v.is_finite())
        .map_or(0.0, |v| v.clamp(-50.0, 50.0));
    agent.sliding_window =
        count_at(&tuning, "conversation_sliding_window", 10_000.0).map_or(0, |n| n as usize);
    agent.conscience = filled_at(&tuning, "conscience");
    // `params.convo`: the conversation so far, as if it had happened.
    for m in tuning
        .get("convo")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = m.get("role").and_then(Value::as_str);
        let content = m.get("content").and_then(Value::as_str);
        if let (Some(role @ ("user" | "assistant" | "system")), Some(content)) = (role, content) {
            agent
                .messages
                .push(json!({"role": role, "content": content}));
        }
    }
    if agent.max_tokens.is_none() {
        agent.max_tokens = tuning
            .get("max_response_tokens")
            .and_then(as_f64)
            .filter(|t| *t >= 1.0)
            .map(|t| t.min(4096.0) as u32);
    }
    agent.barge_min_words = count_at(&tuning, "barge_min_words", 100.0).map_or(0, |n| n as u32);
    agent.hold_music = filled_at(&tuning, "hold_music");
    agent.background_file = filled_at(&tuning, "background_file").map(|url| BackgroundAudio {
        url,
        volume_db: tuning
            .get("background_file_volume")
            .and_then(as_f64)
            .unwrap_or(0.0),
        loops: loop_count(tuning.get("background_file_loops")),
    });
    agent.hard_stop_at = tuning
        .get("hard_stop_time")
        .and_then(duration_ms)
        .map(|ms| now.saturating_add(ms));
    agent.hard_stop_prompt =
        filled_at(&tuning, "hard_stop_prompt").unwrap_or_else(|| HARD_STOP_PROMPT.to_string());
    if let Some(tz) = filled_at(&tuning, "local_tz") {
        agent.local_tz = tz;
    }
    agent.greeting = filled_at(&tuning, "static_greeting");
    agent.no_barge_once = agent.greeting.is_some()
        && tuning
            .get("static_greeting_no_barge")
            .and_then(super::as_bool)
            == Some(true);
    // `params.wait_for_user`: without a greeting the caller speaks first.
    agent.wait_for_user = agent.greeting.is_none()
        && tuning.get("wait_for_user").and_then(super::as_bool) == Some(true);
    refresh_system(&mut agent);
    let effect = setup_next(run, &mut agent, now);
    wait(agent, effect)
}

/// Before the first turn: the next include's signatures, the next MCP server's tools, then
/// the first turn itself.
fn setup_next(run: &mut Run, agent: &mut Agent, now: u64) -> Effect {
    if let Some(include) = agent.includes.pop_front() {
        agent.phase = Phase::Include;
        let request = signature_request(run, agent, &include);
        agent.including = Some(include);
        return Effect::Request(request);
    }
    if let Some(i) = agent.mcp_pending.pop_front() {
        agent.phase = Phase::Mcp;
        agent.mcp_discovering = Some((i, Discovery::Initialize));
        return Effect::Request(agent.mcp_servers[i].discovery_request(Discovery::Initialize));
    }
    let sleep_ms = std::mem::take(&mut agent.initial_sleep_ms);
    if sleep_ms > 0 {
        agent.phase = Phase::Sleep;
        return pause(run, sleep_ms);
    }
    begin(run, agent, now)
}

/// A step of an MCP server's discovery answered: the next step, or its tools join the
/// agent's; a server that fails is a warning and the agent goes on without it.
fn on_mcp(run: &mut Run, mut agent: Agent, c: Completion, now: u64) {
    if let Some((i, step)) = agent.mcp_discovering.take() {
        let answer = match &c {
            Completion::Http(Ok(r)) => Ok(r),
            Completion::Http(Err(e)) => Err(e.clone()),
            _ => Err("an unexpected answer".to_string()),
        };
        let vars = resource_vars(&agent, i);
        let server = &mut agent.mcp_servers[i];
        let outcome = answer.and_then(|r| match step {
            Discovery::Initialize => server.on_answer(r).map(|_| Some(Discovery::Initialized)),
            Discovery::Initialized => server.on_notified(r).map(|()| Some(Discovery::ListTools)),
            Discovery::ListTools => server.on_answer(r).map(|result| {
                for def in ai_mcp::tool_definitions(&result) {
                    let Ok(mut f) = function_of(&def) else {
                        continue;
                    };
                    if !agent.functions.iter().any(|g| g.name == f.name) {
                        f.mcp = Some(i);
                        agent.functions.push(f);
                    }
                }
                server.resources.then_some(Discovery::ListResources)
            }),
            Discovery::ListResources => server.on_answer(r).map(|result| {
                server.on_resource_list(&result);
                Some(Discovery::ListTemplates)
            }),
            Discovery::ListTemplates => server.on_answer(r).map(|result| {
                server.on_template_list(&result, &vars);
                server.has_reads().then_some(Discovery::ReadResource)
            }),
            Discovery::ReadResource => server.on_answer(r).map(|result| {
                let fields = server.on_read(&result);
                let more = server.has_reads();
                agent.global_data.extend(fields);
                more.then_some(Discovery::ReadResource)
            }),
        });
        // A step of the resources that fails is passed over; the tools stay.
        let outcome = match outcome {
            Err(e)
                if matches!(
                    step,
                    Discovery::ListResources | Discovery::ListTemplates | Discovery::ReadResource
                ) =>
            {
                let url = agent.mcp_servers[i].url.clone();
                run.warn(
                    "relay_script_method_execute_failed",
                    format!("ai: the MCP server {url}'s resources: {e}"),
                );
                let server = &mut agent.mcp_servers[i];
                match step {
                    Discovery::ListResources => Ok(Some(Discovery::ListTemplates)),
                    Discovery::ReadResource => {
                        server.read_done();
                        Ok(server.has_reads().then_some(Discovery::ReadResource))
                    }
                    _ => Ok(server.has_reads().then_some(Discovery::ReadResource)),
                }
            }
            other => other,
        };
        match outcome {
            Ok(Some(next)) => {
                agent.mcp_discovering = Some((i, next));
                let request = agent.mcp_servers[i].discovery_request(next);
                return wait_again(run, agent, Effect::Request(request));
            }
            Ok(None) => {}
            Err(e) => {
                let url = agent.mcp_servers[i].url.clone();
                run.warn(
                    "relay_script_method_execute_failed",
                    format!("ai: the MCP server {url} gave no tools: {e}"),
                );
            }
        }
    }
    let effect = setup_next(run, &mut agent, now);
    wait_again(run, agent, effect);
}

/// Server `i`'s `resource_vars`, expanded with the prompt variables (`${caller_id_number}`).
fn resource_vars(agent: &Agent, i: usize) -> Vec<(String, String)> {
    agent.mcp_servers[i]
        .resource_vars
        .iter()
        .map(|(k, v)| (k.clone(), expand_prompt(agent, v)))
        .collect()
}

/// `params.digit_terminators` / `digit_timeout` (ms, default 3000): keypresses are taken as
/// the caller's words, up to a terminator or that long after the last key.
fn digits_of(params: &Value) -> Option<control::command::DigitsParams> {
    let terminators = text_at(params, "digit_terminators");
    let timeout = ms_param(params, "digit_timeout");
    if terminators.is_none() && timeout.is_none() {
        return None;
    }
    Some(control::command::DigitsParams {
        max: MAX_DIGITS,
        terminators: terminators.unwrap_or_default(),
        digit_timeout: timeout.unwrap_or(3000).clamp(500, 30_000) as f64 / 1000.0,
    })
}

/// `SWAIG.defaults.web_hook_url`, with `web_hook_auth_user`/`web_hook_auth_password` put in
/// it as its user info.
fn default_hook(defaults: &Value) -> Option<String> {
    let url = defaults.get("web_hook_url").and_then(Value::as_str)?;
    let user = text_at(defaults, "web_hook_auth_user");
    let pass = text_at(defaults, "web_hook_auth_password")
        .or_else(|| text_at(defaults, "web_hook_auth_pass"));
    Some(crate::url::with_basic_auth(
        url,
        user.as_deref(),
        pass.as_deref(),
    ))
}

/// `params.hard_stop_time`: `hh:mm:ss`, `mm:ss`, seconds, or a number with `s`, `m` or `h`.
fn duration_ms(v: &Value) -> Option<u64> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        _ => return None,
    };
    let secs: f64 = if let Some(n) = text.strip_suffix('h') {
        n.trim().parse::<f64>().ok()? * 3600.0
    } else if let Some(n) = text.strip_suffix('m') {
        n.trim().parse::<f64>().ok()? * 60.0
    } else if let Some(n) = text.strip_suffix('s') {
        n.trim().parse().ok()?
    } else {
        let mut total = 0.0;
        for part in text.split(':') {
            total = total * 60.0 + part.trim().parse::<f64>().ok()?;
        }
        total
    };
    (secs.is_finite() && secs > 0.0).then(|| (secs.min(86_400.0) * 1000.0) as u64)
}

/// The first turn: the static greeting spoken, or the model asked for its opening words —
/// or, with `params.wait_for_user`, the caller heard first.
fn begin(run: &mut Run, agent: &mut Agent, now: u64) -> Effect {
    if let Some(background) = agent.background_file.take() {
        agent.background = Some(background.clone());
        run.emit(Effect::Background(Some(background)));
    }
    if std::mem::take(&mut agent.wait_for_user) || agent.wake.paused {
        return turn_effect(run, agent, "", now);
    }
    match agent.greeting.clone() {
        Some(greeting) => {
            agent
                .messages
                .push(json!({"role": "assistant", "content": greeting}));
            turn_effect(run, agent, &greeting, now)
        }
        None => ask_for_turn(run, agent),
    }
}

/// The system prompt: the base prompt, then what the current context and step say.
fn refresh_system(agent: &mut Agent) {
    let mut text = match &agent.contexts {
        Some(c) => format!("{}\n\n{}", agent.base_prompt.trim_end(), c.instructions()),
        None => agent.base_prompt.clone(),
    };
    if let Some(languages) = ai_languages::instructions(&agent.languages, agent.language_at) {
        text = format!("{}\n\n{languages}", text.trim_end());
    }
    let text = expand_prompt(agent, &text);
    if let Some(first) = agent.messages.first_mut() {
        first["content"] = json!(text);
    }
}

/// The prompt variables now (ai_vars.rs).
fn prompt_vars(agent: &Agent) -> Map<String, Value> {
    ai_vars::prompt_vars(
        &agent.call_vars,
        agent.now,
        &agent.local_tz,
        &agent.global_data,
    )
}

/// The agent speaks language `at` of its languages from now on: its voice, its code (the
/// speech language), its fillers and `pronounce` rules (after the document's).
fn use_language(agent: &mut Agent, at: usize) {
    agent.pronounce = agent.doc_pronounce.clone();
    let Some(lang) = agent.languages.get(at) else {
        return;
    };
    agent.language_at = at;
    agent.voice = lang.voice.clone();
    agent.language = lang.code.clone();
    agent.function_fillers = lang.function_fillers.clone();
    agent.speech_fillers = lang.speech_fillers.clone();
    agent.pronounce.extend(lang.pronounce.iter().cloned());
}

/// A prompt's text with its templates expanded: the prompt variables, `global_data`, the
/// script's variables (prompts are the AI's templates, never SWML's).
fn expand_prompt(agent: &Agent, text: &str) -> String {
    if !ai_vars::has_templates(text) {
        return text.to_string();
    }
    let data = ai_vars::prompt_data(prompt_vars(agent), &agent.global_data);
    ai_vars::expand(text, &data, agent.now)
}

/// `get_signature` (swml.md §6.1, "Signature request"): the include's functions described by
/// its server.
fn signature_request(run: &Run, agent: &Agent, include: &Value) -> HttpRequest {
    let url = text_at(include, "url").unwrap_or_default();
    let c = &run.scope.call;
    let body = json!({
        "action": "get_signature",
        "functions": include.get("functions").cloned().unwrap_or_else(|| json!([])),
        "meta_data": include.get("meta_data").cloned().unwrap_or_else(|| json!({})),
        "call_id": c.get("call_id").cloned().unwrap_or(Value::Null),
        "ai_session_id": agent.session_id,
        "app_name": agent.app_name,
        "content_type": "text/swaig",
        "content_disposition": "function signature request",
        "version": "2.0",
    });
    post_json(url, &body)
}

/// An include's signatures arrived: its functions join the agent's (those it names, when it
/// names any), their webhook the include's URL unless they give one.
fn on_signatures(run: &mut Run, mut agent: Agent, c: Completion, now: u64) {
    if let Some(include) = agent.including.take() {
        let url = text_at(&include, "url").unwrap_or_default();
        let listed = match c {
            Completion::Http(Ok(r)) if (200..300).contains(&r.code) => {
                match serde_json::from_str::<Value>(&r.body) {
                    Ok(Value::Array(list)) => list,
                    Ok(Value::Object(m)) => m
                        .get("functions")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        if listed.is_empty() {
            run.warn(
                "relay_script_method_execute_failed",
                format!("ai: the include {url} gave no function signatures"),
            );
        }
        let wanted: Vec<&str> = include
            .get("functions")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for def in &listed {
            let Ok(mut f) = function_of(def) else {
                continue;
            };
            let unwanted = !wanted.is_empty() && !wanted.contains(&f.name.as_str());
            if unwanted || agent.functions.iter().any(|g| g.name == f.name) {
                continue;
            }
            f.web_hook_url = f.web_hook_url.or_else(|| Some(url.clone()));
            if let Some(meta) = include.get("meta_data").filter(|m| m.is_object()) {
                if f.meta_data.as_object().is_none_or(|m| m.is_empty()) {
                    f.meta_data = meta.clone();
                }
            }
            agent.functions.push(f);
        }
    }
    let effect = setup_next(run, &mut agent, now);
    wait_again(run, agent, effect);
}

fn wait(agent: Agent, effect: Effect) -> Flow {
    Flow::Wait(Waiting::Ai(Box::new(agent)), Some(Box::new(effect)))
}

/// Keeps the step waiting from a completion: the next effect of the same agent.
fn wait_again(run: &mut Run, agent: Agent, effect: Effect) {
    run.waiting = Some(Waiting::Ai(Box::new(agent)));
    run.emit(effect);
}

/// The agent's words, played (answering an inbound call that is still ringing).
fn play_effect(play: PlayParams) -> Effect {
    Effect::Play {
        params: play,
        auto_answer: true,
    }
}

fn speech(text: &str) -> Vec<MediaItem> {
    if text.trim().is_empty() {
        vec![MediaItem::Silence { duration: 0.1 }]
    } else {
        vec![MediaItem::Tts(TtsItem {
            text: text.to_string(),
            language: None,
            gender: None,
            voice: None,
        })]
    }
}

/// A playback of the agent's: its voice and language.
fn agent_play(run: &mut Run, agent: &Agent, prefix: &str, mut items: Vec<MediaItem>) -> PlayParams {
    for item in &mut items {
        if let MediaItem::Tts(t) = item {
            t.text = super::ai_pronounce::pronounced(&agent.pronounce, &t.text);
        }
    }
    let mut play = PlayParams::new(run.new_control_id(prefix), items);
    play.voice = agent.voice.clone();
    play.volume = agent.volume_db;
    if let Some(language) = &agent.language {
        play.language = language.clone();
    }
    play
}

/// The agent says `text` while the caller's answer is collected; the listening after it lasts
/// at most what is left of the inactivity timeout.
fn turn_effect(run: &mut Run, agent: &mut Agent, text: &str, now: u64) -> Effect {
    let barge = agent.barge && !std::mem::take(&mut agent.no_barge_once);
    let play = agent_play(run, agent, "ai-say", speech(text));
    if !barge && !text.trim().is_empty() {
        // Heard out: the words play whole, then the caller is heard.
        agent.phase = Phase::Say;
        return play_effect(play);
    }
    let collect = listening(run, agent, &play.control_id, now);
    Effect::Prompt { play, collect }
}

/// The turn after an answer spoken as it streamed: the caller is heard once (and while) the
/// playback `play_id` plays.
fn listen_effect(
    run: &mut Run,
    agent: &mut Agent,
    play_id: String,
    planned: Option<CollectParams>,
    now: u64,
) -> Effect {
    // The collect the runtime started with the playback, when it was planned.
    let collect = match planned {
        Some(collect) => {
            enter_turn(agent, &play_id, &collect);
            collect
        }
        None => listening(run, agent, &play_id, now),
    };
    Effect::Listen { play_id, collect }
}

/// The collect of a turn whose words play in `play_id`.
fn listening(run: &mut Run, agent: &mut Agent, play_id: &str, now: u64) -> CollectParams {
    let collect = turn_collect(run, agent, now);
    enter_turn(agent, play_id, &collect);
    collect
}

fn enter_turn(agent: &mut Agent, play_id: &str, collect: &CollectParams) {
    agent.phase = Phase::Turn;
    agent.turns += 1;
    agent.turn_ops = Some(AiTurnOps {
        play: play_id.to_string(),
        collect: collect.control_id.clone(),
    });
}

/// A turn's speech collect: at most what is left of the inactivity timeout (and of the
/// attention timeout and the hard stop), the end-of-speech timeout, the hints, the language.
fn turn_collect(run: &mut Run, agent: &Agent, now: u64) -> CollectParams {
    let mut collect = CollectParams::new(run.new_control_id("ai-listen"));
    let idle_ms = now.saturating_sub(agent.heard_at);
    let mut left_ms = agent.inactivity_ms.saturating_sub(idle_ms);
    if let Some(attention) = agent.attention_ms {
        let quiet_ms = now.saturating_sub(agent.heard_at.max(agent.attention_from));
        left_ms = left_ms.min(attention.saturating_sub(quiet_ms));
    }
    if let Some(at) = agent.hard_stop_at {
        left_ms = left_ms.min(at.saturating_sub(now));
    }
    let left_s = left_ms as f64 / 1000.0;
    collect.initial_timeout = left_s.clamp(1.0, LISTEN_S);
    collect.start_input_timers = false;
    let mut s = SpeechParams::new();
    s.end_silence_timeout = agent.end_of_speech_s.max(0.3);
    s.hints = agent.hints.clone();
    s.hints.extend(agent.dynamic_hints.iter().cloned());
    if let Some(language) = &agent.language {
        s.language = language.clone();
    }
    collect.speech = Some(s);
    collect.digits = agent.digits.clone();
    collect.barge_min_words = agent.barge_min_words;
    collect
}

fn model_request(agent: &Agent, mut messages: Vec<Value>, tools: bool) -> ModelRequest {
    if agent.sliding_window > 0 {
        slide(&mut messages, agent.sliding_window);
    }
    ModelRequest {
        model: agent.model.clone(),
        messages,
        tools: if tools {
            let allowed = |name: &str| agent.contexts.as_ref().is_none_or(|c| c.allows(name));
            let mut tools: Vec<Value> = agent
                .functions
                .iter()
                .filter(|f| f.active && allowed(&f.name))
                .map(|f| {
                    json!({"type": "function", "function": {
                        "name": f.name, "description": f.description, "parameters": f.parameters}})
                })
                .collect();
            // A gathering step offers gather_submit and its question's functions only.
            if !agent.contexts.as_ref().is_some_and(Contexts::gathering) {
                tools.extend(agent.natives.iter().map(|n| n.tool()));
                tools.extend(ai_languages::tool(&agent.languages));
                tools.extend(agent.wake.tool());
            }
            tools.extend(agent.contexts.iter().flat_map(Contexts::tools));
            tools
        } else {
            Vec::new()
        },
        temperature: agent.temperature,
        top_p: agent.top_p,
        max_tokens: agent.max_tokens,
        speak: None,
        filler: None,
    }
}

/// `conversation_sliding_window`: the system message and at most the `window` latest messages
/// after it — never starting with a tool's result whose call was cut off.
fn slide(messages: &mut Vec<Value>, window: usize) {
    if messages.len() <= window + 1 {
        return;
    }
    let mut from = messages.len() - window;
    while from < messages.len() && messages[from]["role"] == "tool" {
        from += 1;
    }
    messages.drain(1..from);
}

/// The model asked for the agent's next words, to be spoken as they stream when nothing
/// else must happen first (an ending, a hold, a step that moves on by itself).
fn ask_for_turn(run: &mut Run, agent: &mut Agent) -> Effect {
    // The prompt variables as they are now (the time, global_data).
    refresh_system(agent);
    agent.phase = Phase::Model;
    agent.planned_collect = None;
    let mut req = model_request(agent, agent.messages.clone(), true);
    if let Some(conscience) = &agent.conscience {
        // After the functions' results: a reminder for this request only.
        if req.messages.last().is_some_and(|m| m["role"] == "tool") {
            req.messages
                .push(json!({"role": "system", "content": conscience}));
        }
    }
    let mut phrase = agent.internal_filler.take();
    if std::mem::take(&mut agent.filler_due) && !agent.speech_fillers.is_empty() {
        let list = &agent.speech_fillers;
        phrase = phrase.or_else(|| Some(list[agent.speech_fillers_said % list.len()].clone()));
        agent.speech_fillers_said += 1;
    }
    if let Some(phrase) = phrase {
        let play = agent_play(run, agent, "ai-filler", speech(&phrase));
        req.filler = Some(Box::new(play));
    }
    let plain = agent.barge
        && !(agent.ending.hangup
            || agent.ending.stop
            || agent.hold_requested.is_some()
            || agent.skip_user_turn
            || agent.wait_for_user
            || agent.contexts.as_ref().is_some_and(Contexts::is_end));
    if plain {
        let play = agent_play(run, agent, "ai-say", Vec::new());
        agent.speaking = Some(play.control_id.clone());
        let collect = turn_collect(run, agent, agent.now);
        agent.planned_collect = Some(collect.clone());
        req.speak = Some(SpeakPlan {
            play,
            prefix: agent.to_say.join(" "),
            collect,
            pronounce: agent.pronounce.clone(),
        });
    }
    Effect::Model(req)
}

pub(crate) fn on_completion(run: &mut Run, mut agent: Agent, c: Completion, now: u64) {
    agent.turn_ops = None;
    agent.now = now;
    let stoppable = matches!(
        agent.phase,
        Phase::Include
            | Phase::Mcp
            | Phase::Sleep
            | Phase::Turn
            | Phase::Model
            | Phase::Tool
            | Phase::Consolidate
            | Phase::Say
    );
    if agent.stop_requested && stoppable {
        agent.stop_requested = false;
        agent.ending.stop = true;
        settle_tool_calls(&mut agent);
        return finish(run, agent);
    }
    // A hold waits for a turn (a model turn or a tool call is let finish first).
    if agent.phase == Phase::Turn {
        if let Some((timeout, prompt)) = agent.hold_requested.take() {
            return hold(run, agent, timeout, prompt, String::new());
        }
    }
    if std::mem::take(&mut agent.answer_now) && agent.phase == Phase::Turn {
        agent.heard_at = now;
        agent.tool_rounds = 0;
        let effect = ask_for_turn(run, &mut agent);
        return wait_again(run, agent, effect);
    }
    let out_of_time = agent.hard_stop_at.is_some_and(|at| now >= at);
    if out_of_time && agent.phase == Phase::Turn {
        agent.hard_stop_at = None;
        return hard_stop(run, agent);
    }
    match agent.phase {
        Phase::Include => on_signatures(run, agent, c, now),
        Phase::Mcp => on_mcp(run, agent, c, now),
        Phase::Sleep => {
            let effect = setup_next(run, &mut agent, now);
            wait_again(run, agent, effect);
        }
        Phase::Turn => on_heard(run, agent, c, now),
        Phase::Model => on_model(run, agent, c, now),
        Phase::Tool => on_tool(run, agent, c),
        Phase::Closing => finish(run, agent),
        Phase::Consolidate => {
            match c {
                Completion::Model(Ok(reply)) if !reply.text.trim().is_empty() => {
                    agent.messages.truncate(1);
                    agent.messages.push(json!({"role": "system", "content":
                        format!("{CONSOLIDATED}{}", reply.text.trim())}));
                    // The summary is what an isolated context keeps of the conversation.
                    agent.isolate = false;
                }
                _ => run.warn(
                    "relay_script_method_execute_failed",
                    "ai: the model did not summarise the conversation; it is kept whole",
                ),
            }
            after_tool_round(run, agent)
        }
        Phase::Say => {
            // The caller's silence counts from the end of the agent's words.
            silence_starts(&mut agent, now);
            let effect = turn_effect(run, &mut agent, "", now);
            wait_again(run, agent, effect);
        }
        Phase::Summary => {
            if let Completion::Model(Ok(reply)) = c {
                agent.summary = Some(reply.text);
            }
            report_or_end(run, agent);
        }
        Phase::Report => end(run, agent),
        Phase::HoldAnnounce => {
            let text = match c {
                Completion::Model(Ok(reply)) if !reply.text.trim().is_empty() => reply.text,
                _ => HOLD_SAY.to_string(),
            };
            agent
                .messages
                .push(json!({"role": "assistant", "content": text}));
            let prefix = std::mem::take(&mut agent.hold_prefix);
            let spoken = if prefix.trim().is_empty() {
                text
            } else {
                format!("{prefix} {text}")
            };
            let mut items = speech(&spoken);
            agent.unheld = std::mem::take(&mut agent.unhold_pending);
            if !agent.unheld {
                if agent.hold_music.is_some() {
                    agent.music_next = true;
                } else {
                    items.push(MediaItem::Ringtone {
                        name: "us".into(),
                        duration: Some(f64::from(agent.hold_timeout)),
                        single_cycle: false,
                    });
                }
            }
            let play = agent_play(run, &agent, "ai-hold", items);
            agent.hold_play = Some(play.control_id.clone());
            agent.phase = Phase::Held;
            wait_again(run, agent, play_effect(play));
        }
        Phase::Held if std::mem::take(&mut agent.music_next) && !agent.unheld => {
            // The announcement is over: the music, for what is left of the hold.
            if let Some(url) = agent.hold_music.clone() {
                agent.music_on = true;
                run.emit(Effect::Background(Some(BackgroundAudio {
                    url,
                    volume_db: 0.0,
                    loops: 0,
                })));
            }
            let items = vec![MediaItem::Silence {
                duration: f64::from(agent.hold_timeout),
            }];
            let play = agent_play(run, &agent, "ai-hold", items);
            agent.hold_play = Some(play.control_id.clone());
            wait_again(run, agent, play_effect(play));
        }
        Phase::Held => {
            agent.hold_play = None;
            agent.music_next = false;
            agent.unheld = false;
            if std::mem::take(&mut agent.music_on) {
                // The agent's own background audio (if any) comes back after the music.
                run.emit(Effect::Background(agent.background.clone()));
            }
            let prompt = agent
                .unhold_prompt
                .take()
                .unwrap_or_else(|| UNHOLD_PROMPT.to_string());
            agent
                .messages
                .push(json!({"role": "system", "content": prompt}));
            agent.heard_at = now;
            let effect = ask_for_turn(run, &mut agent);
            wait_again(run, agent, effect);
        }
    }
}

/// `params.hard_stop_time` is up: the model words the goodbye (no tools), it is said, the agent
/// ends.
fn hard_stop(run: &mut Run, mut agent: Agent) {
    agent.ending.stop = true;
    let prompt = agent.hard_stop_prompt.clone();
    agent
        .messages
        .push(json!({"role": "system", "content": prompt}));
    agent.phase = Phase::Model;
    let req = model_request(&agent, agent.messages.clone(), false);
    wait_again(run, agent, Effect::Model(req));
}

const HARD_STOP_PROMPT: &str = "The time for this conversation is up. Tell the user, politely      and briefly, that you have to end the call now.";

/// The instruction before hold music (calling-api.md §6.22), what is said when the model has
/// nothing to say, and the instruction after it (§6.23).
const HOLD_PROMPT: &str = "Tell the user you are putting them on hold.";
/// `params.attention_timeout_prompt`'s default (swml.md §6.1).
const ATTENTION_PROMPT: &str =
    "The user has not responded, try to get their attention. Stay in the same language.";
const HOLD_SAY: &str = "Please hold.";
const UNHOLD_PROMPT: &str = "The user has been taken off hold.";

/// Function calls the model made that will not be answered (the agent was stopped): each gets
/// a result, so the conversation stays one the model API accepts.
fn settle_tool_calls(agent: &mut Agent) {
    agent.data_map_run = None;
    let open: Vec<ModelToolCall> = agent
        .calling
        .take()
        .into_iter()
        .chain(agent.tool_calls.drain(..))
        .collect();
    for call in open {
        push_tool_result(
            agent,
            &call.id,
            "The conversation ended before this function answered.",
        );
    }
}

/// `calling.ai_hold` takes effect: the model words the announcement (no tools), then `said`
/// (an answer not spoken yet), the announcement and hold music play ([`Phase::Held`]).
fn hold(run: &mut Run, mut agent: Agent, timeout: u32, prompt: String, said: String) {
    agent
        .messages
        .push(json!({"role": "system", "content": prompt}));
    agent.hold_prefix = said;
    agent.hold_timeout = timeout;
    agent.phase = Phase::HoldAnnounce;
    let req = model_request(&agent, agent.messages.clone(), false);
    wait_again(run, agent, Effect::Model(req));
}

/// `calling.ai_hold` on the waiting agent: it goes on hold at its next turn — at once when it
/// listens (`Some(ops)`: the runtime cuts that turn), else once the model turn or function
/// call in progress is over (its answer is said with the announcement). Ignored while on hold
/// or ending.
pub(crate) fn request_hold(
    agent: &mut Agent,
    timeout: u32,
    prompt: Option<String>,
) -> Option<AiTurnOps> {
    if !matches!(
        agent.phase,
        Phase::Include | Phase::Mcp | Phase::Turn | Phase::Model | Phase::Tool | Phase::Consolidate
    ) {
        return None;
    }
    let prompt = prompt
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| HOLD_PROMPT.to_string());
    agent.hold_requested = Some((timeout.clamp(1, 900), prompt));
    agent.turn_ops.clone()
}

/// `calling.ai_unhold`: the hold ends (its playback, returned, is to be stopped by the
/// runtime); `prompt` is what the model is told. None when the agent is not on hold.
pub(crate) fn request_unhold(agent: &mut Agent, prompt: Option<String>) -> Option<String> {
    agent.unhold_prompt = prompt.filter(|p| !p.trim().is_empty());
    match agent.phase {
        Phase::Held => {
            agent.unheld = true;
            agent.hold_play.clone()
        }
        Phase::HoldAnnounce => {
            agent.unhold_pending = true;
            None
        }
        _ => {
            // A hold that has not begun is called off.
            agent.hold_requested = None;
            agent.unhold_prompt = None;
            None
        }
    }
}

/// The agent's words are over: the caller's silence counts from now — for the inactivity
/// timeout too, unless they were said to get the caller's attention.
fn silence_starts(agent: &mut Agent, now: u64) {
    if std::mem::take(&mut agent.attention_turn) {
        agent.attention_from = now;
    } else {
        agent.heard_at = now;
    }
}

fn on_heard(run: &mut Run, mut agent: Agent, c: Completion, now: u64) {
    match c {
        Completion::Op(OpResult::Collected(
            CollectResult::Speech { text, .. } | CollectResult::Digit { digits: text, .. },
        )) if !text.trim().is_empty() => {
            agent.heard_at = now;
            agent.attention_turn = false;
            if !agent.wake.answers(&text) {
                // Paused, or spoken to by name only: heard, not answered.
                if agent.wake.only_when_named {
                    agent
                        .messages
                        .push(json!({"role": "user", "content": text.trim()}));
                }
                let effect = turn_effect(run, &mut agent, "", now);
                return wait_again(run, agent, effect);
            }
            agent.tool_rounds = 0;
            agent
                .messages
                .push(json!({"role": "user", "content": text.trim()}));
            agent.filler_due = true;
            let effect = ask_for_turn(run, &mut agent);
            wait_again(run, agent, effect);
        }
        Completion::Op(OpResult::Collected(
            CollectResult::NoInput
            | CollectResult::NoMatch
            | CollectResult::Speech { .. }
            | CollectResult::Digit { .. },
        )) => {
            if now.saturating_sub(agent.heard_at) >= agent.inactivity_ms || agent.turns >= MAX_TURNS
            {
                return finish(run, agent);
            }
            let quiet_ms = now.saturating_sub(agent.heard_at.max(agent.attention_from));
            if agent.attention_ms.is_some_and(|ms| quiet_ms >= ms) {
                // The model is told, and what it says is the next turn's words.
                let prompt = agent.attention_prompt.clone();
                agent
                    .messages
                    .push(json!({"role": "system", "content": prompt}));
                agent.attention_turn = true;
                agent.tool_rounds = 0;
                let effect = ask_for_turn(run, &mut agent);
                return wait_again(run, agent, effect);
            }
            let effect = turn_effect(run, &mut agent, "", now);
            wait_again(run, agent, effect);
        }
        Completion::Failed { message } => {
            run.warn(
                "relay_script_method_execute_failed",
                format!("ai: listening failed: {message}"),
            );
            agent.ending.failed = true;
            finish(run, agent);
        }
        // The call ended under the agent, or the collect errored.
        _ => {
            agent.ending.failed = true;
            finish(run, agent);
        }
    }
}

fn on_model(run: &mut Run, mut agent: Agent, c: Completion, now: u64) {
    let reply = match c {
        Completion::Model(Ok(reply)) => reply,
        Completion::Model(Err(why)) | Completion::Failed { message: why } => {
            run.warn(
                "relay_script_method_execute_failed",
                format!("ai: the model did not answer: {why}"),
            );
            agent.ending.failed = true;
            return closing(run, agent, FALLBACK.to_string());
        }
        _ => {
            agent.ending.failed = true;
            return closing(run, agent, FALLBACK.to_string());
        }
    };
    // Spoken as it streamed: the words before it were said with it.
    let spoken = agent.speaking.take().filter(|_| reply.spoken);
    // Used only when this answer is the turn's words (the runtime stops it otherwise).
    let planned = agent.planned_collect.take();
    if spoken.is_some() {
        agent.to_say.clear();
    }
    let mut message = json!({"role": "assistant",
        "content": if reply.text.is_empty() && !reply.tool_calls.is_empty() { Value::Null } else { json!(reply.text) }});
    if !reply.tool_calls.is_empty() {
        message["tool_calls"] = reply
            .tool_calls
            .iter()
            .map(|t| json!({"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}))
            .collect();
    }
    agent.messages.push(message);
    if !reply.tool_calls.is_empty() && agent.tool_rounds < MAX_TOOL_ROUNDS {
        agent.tool_rounds += 1;
        agent.tool_calls = reply.tool_calls.into();
        return next_tool(run, agent);
    }
    let mut text = std::mem::take(&mut agent.to_say).join(" ");
    if !reply.text.is_empty() && spoken.is_none() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&reply.text);
    }
    if agent.contexts.as_ref().is_some_and(Contexts::is_end) {
        // The last step: the agent's answer in it closes the conversation.
        agent.ending.stop = true;
    }
    if agent.ending.hangup || agent.ending.stop {
        return closing(run, agent, text);
    }
    if std::mem::take(&mut agent.skip_user_turn) && !reply.text.trim().is_empty() {
        // The step goes on without the caller: the answer is said with the next one.
        agent.to_say.push(text);
        agent.phase = Phase::Model;
        let req = model_request(&agent, agent.messages.clone(), true);
        return wait_again(run, agent, Effect::Model(req));
    }
    if let Some((timeout, prompt)) = agent.hold_requested.take() {
        // The answer is said with the hold's announcement.
        return hold(run, agent, timeout, prompt, text);
    }
    // The caller's silence counts from the end of the agent's answer, not from its question.
    silence_starts(&mut agent, now);
    let effect = match spoken {
        Some(play_id) => listen_effect(run, &mut agent, play_id, planned, now),
        None => turn_effect(run, &mut agent, &text, now),
    };
    wait_again(run, agent, effect);
}

/// Times a clip plays, as `background_file_loops` / `wait_file_loops` say: 0 (until stopped)
/// when absent or below one.
fn loop_count(value: Option<&Value>) -> u32 {
    value
        .and_then(as_f64)
        .filter(|n| n.is_finite() && *n >= 1.0)
        .map_or(0, |n| n.min(f64::from(u32::MAX)) as u32)
}

/// A function's `wait_file` starts under the call as its webhook (or MCP call, or data_map
/// fetch) goes out.
fn start_wait_file(run: &mut Run, agent: &mut Agent, function: Option<&Function>) {
    if let Some(file) = function.and_then(|f| f.wait_file.clone()) {
        agent.wait_file_on = true;
        run.emit(Effect::Background(Some(file)));
    }
}

/// The function answered: the agent's own background audio (if any) takes the wait file's
/// place.
fn end_wait_file(run: &mut Run, agent: &mut Agent) {
    if std::mem::take(&mut agent.wait_file_on) {
        run.emit(Effect::Background(agent.background.clone()));
    }
}

/// A `playback_bg` / `stop_playback_bg` action takes effect. With `wait`, the file is played
/// once in the open (what played under the call stops) and the agent goes on when it has
/// ended: the effect to wait for.
fn change_background(run: &mut Run, agent: &mut Agent) -> Option<Effect> {
    let change = agent.background_change.take()?;
    match change {
        Some(file) if std::mem::take(&mut agent.background_wait) => {
            agent.background = None;
            run.emit(Effect::Background(None));
            let items = vec![MediaItem::Audio { url: file.url }];
            Some(play_effect(PlayParams::new(
                run.new_control_id("ai-playback-bg"),
                items,
            )))
        }
        change => {
            agent.background = change.clone();
            run.emit(Effect::Background(change));
            None
        }
    }
}

/// The next SWAIG call the model asked for, or the model again once all have answered.
fn next_tool(run: &mut Run, mut agent: Agent) {
    // Every way a function ends comes here (a data_map's next fetch and an `@{sleep}` pause
    // do not: the wait file goes on under them).
    end_wait_file(run, &mut agent);
    loop {
        if let Some(effect) = change_background(run, &mut agent) {
            // Back here (no call pending) once the file has played.
            agent.phase = Phase::Tool;
            return wait_again(run, agent, effect);
        }
        let Some(call) = agent.tool_calls.pop_front() else {
            break;
        };
        let function = agent
            .functions
            .iter()
            .find(|f| f.name == call.name && f.active)
            .cloned();
        if function.is_none() {
            match engine_function(run, &mut agent, &call) {
                Engine::Answered => continue,
                Engine::Waits(effect) => {
                    agent.phase = Phase::Tool;
                    agent.calling = Some(call);
                    return wait_again(run, agent, *effect);
                }
                Engine::NotOurs => {}
            }
        }
        if let Some(i) = function.as_ref().and_then(|f| f.mcp) {
            let args: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
            let mut request = agent.mcp_servers[i].call_request(&call.name, args);
            if let Some(f) = function.as_ref() {
                request.filler = filler(run, &mut agent, f);
            }
            start_wait_file(run, &mut agent, function.as_ref());
            agent.phase = Phase::Tool;
            agent.calling = Some(call);
            agent.mcp_calling = Some(i);
            return wait_again(run, agent, Effect::Request(request));
        }
        if let Some(map) = function.as_ref().and_then(|f| f.data_map.clone()) {
            let data = template_data(run, &agent, function.as_ref(), &call);
            match data_map::start(&map, data, agent.now) {
                DataMapStep::Done(reply, sleep_ms) => {
                    apply_result(run, &mut agent, &call, reply);
                    if sleep_ms > 0 {
                        agent.phase = Phase::Tool;
                        let effect = pause(run, sleep_ms);
                        return wait_again(run, agent, effect);
                    }
                    continue;
                }
                DataMapStep::Fetch(request, pending) => {
                    start_wait_file(run, &mut agent, function.as_ref());
                    agent.phase = Phase::Tool;
                    agent.calling = Some(call);
                    agent.data_map_run = Some(pending);
                    return wait_again(run, agent, Effect::Request(*request));
                }
            }
        }
        let hook = function
            .as_ref()
            .and_then(|f| f.web_hook_url.clone())
            .or_else(|| function.as_ref().and(agent.default_hook.clone()));
        let (Some(function), Some(url)) = (function, hook) else {
            let why = format!("the function {} is not available", call.name);
            push_tool_result(&mut agent, &call.id, &why);
            continue;
        };
        let body = swaig_body(run, &agent, &function, &call);
        let mut request = post_json(url, &body);
        request.filler = filler(run, &mut agent, &function);
        start_wait_file(run, &mut agent, Some(&function));
        agent.phase = Phase::Tool;
        agent.calling = Some(call);
        if function.wait_for_fillers {
            if let Some(said) = request.filler.take() {
                // The webhook goes out once the filler has been said (`on_tool`).
                agent.request_after_filler = Some(request);
                return wait_again(run, agent, play_effect(said));
            }
        }
        return wait_again(run, agent, Effect::Request(request));
    }
    if !(agent.ending.hangup || agent.ending.stop) {
        if let Some(doc) = agent.inline_swml.pop_front() {
            return run_inline(run, agent, doc);
        }
    }
    agent.inline_swml.clear();
    if agent.ending.hangup || agent.ending.stop {
        let text = std::mem::take(&mut agent.to_say).join(" ");
        return closing(run, agent, text);
    }
    if std::mem::take(&mut agent.consolidate) && agent.messages.len() > 1 {
        return ask_over_the_conversation(run, agent, Phase::Consolidate, CONSOLIDATE_PROMPT);
    }
    after_tool_round(run, agent);
}

/// The model is asked, without tools, for something about the whole conversation (its summary
/// for a consolidation or the post prompt): `instruction` follows the conversation.
fn ask_over_the_conversation(run: &mut Run, mut agent: Agent, phase: Phase, instruction: &str) {
    agent.phase = phase;
    let mut messages = agent.messages.clone();
    messages.push(json!({"role": "system", "content": instruction}));
    let req = model_request(&agent, messages, false);
    wait_again(run, agent, Effect::Model(req));
}

/// The tool round is over and the conversation goes on: an isolated context's clean slate, the
/// words put in the caller's mouth, then the caller's turn or the model's.
fn after_tool_round(run: &mut Run, mut agent: Agent) {
    if std::mem::take(&mut agent.isolate) {
        agent.messages.truncate(1);
    }
    for text in std::mem::take(&mut agent.user_input) {
        agent
            .messages
            .push(json!({"role": "user", "content": text}));
    }
    if std::mem::take(&mut agent.wait_for_user) {
        let text = std::mem::take(&mut agent.to_say).join(" ");
        let now = agent.now;
        agent.heard_at = now;
        let effect = turn_effect(run, &mut agent, &text, now);
        return wait_again(run, agent, effect);
    }
    let effect = ask_for_turn(run, &mut agent);
    wait_again(run, agent, effect);
}

/// The agent waits `ms` in silence (`wait_seconds`, a `data_map`'s `@{sleep}`).
fn pause(run: &mut Run, ms: u64) -> Effect {
    let items = vec![MediaItem::Silence {
        duration: ms as f64 / 1000.0,
    }];
    play_effect(PlayParams::new(run.new_control_id("ai-wait"), items))
}

/// Runs a function's SWML on the call (its `main` section, as an `execute` would); the agent
/// takes the call back when it is done ([`resume`]). A document that does not validate is a
/// warning and the agent goes on.
fn run_inline(run: &mut Run, agent: Agent, doc: Value) {
    let doc = match crate::Document::from_value(doc) {
        Ok(d) => d.into_value(),
        Err(e) => {
            run.warn(e.code(), format!("ai: a function's SWML: {e}"));
            return next_tool(run, agent);
        }
    };
    if doc.pointer("/sections/main").is_none() || run.stack.len() >= MAX_FRAMES {
        run.warn(
            "relay_script_method_execute_failed",
            "ai: a function's SWML has no main section, or runs too deep",
        );
        return next_tool(run, agent);
    }
    let hooks = ReturnHooks {
        resume_ai: Some(Box::new(agent)),
        ..ReturnHooks::default()
    };
    run.enter_document(std::sync::Arc::new(doc), "main", Map::new(), hooks);
}

/// The SWML a function ran is done: the agent goes on (its next inline document, or the
/// model's next turn).
pub(crate) fn resume(run: &mut Run, mut agent: Agent, now: u64) {
    agent.now = now;
    agent.heard_at = now;
    agent.phase = Phase::Tool;
    next_tool(run, agent);
}

/// How the engine took a tool call that no SWAIG function of the document answers.
enum Engine {
    Answered,
    /// It answers once this effect completes (`wait_seconds`).
    Waits(Box<Effect>),
    NotOurs,
}

/// A phrase of `SWAIG.internal_fillers` for the engine function `name` (each list's phrases
/// in turn, counted across the session).
fn internal_filler(agent: &mut Agent, name: &str) -> Option<String> {
    let list = phrases(agent.internal_fillers.get(name));
    let phrase = list.get(agent.fillers_said % list.len().max(1))?.clone();
    agent.fillers_said += 1;
    Some(phrase)
}

/// `next_step`, `change_context` and the enabled native functions, answered by the engine
/// (an `internal_fillers` phrase said as the model goes on, or before a wait).
fn engine_function(run: &mut Run, agent: &mut Agent, call: &ModelToolCall) -> Engine {
    let mut engine = engine_answer(run, agent, call);
    if matches!(engine, Engine::NotOurs) {
        return engine;
    }
    if let Some(phrase) = internal_filler(agent, &call.name) {
        match &mut engine {
            // Said before the wait.
            Engine::Waits(effect) => {
                if let Effect::Play { params, .. } = effect.as_mut() {
                    let said = super::ai_pronounce::pronounced(&agent.pronounce, &phrase);
                    params.play.splice(0..0, speech(&said));
                }
            }
            _ => agent.internal_filler = Some(phrase),
        }
    }
    engine
}

fn engine_answer(run: &mut Run, agent: &mut Agent, call: &ModelToolCall) -> Engine {
    let args: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
    let arg = |k: &str| args.get(k).map(crate::expr::stringify).unwrap_or_default();
    let answer = match call.name.as_str() {
        GATHER_SUBMIT if agent.contexts.as_ref().is_some_and(Contexts::gathering) => {
            let submitted = agent.contexts.as_mut().map(|c| c.submit(&args));
            match submitted {
                Some(Ok(answer)) => {
                    gathered(agent, answer, &call.id);
                    return Engine::Answered;
                }
                Some(Err(why)) => why,
                None => return Engine::NotOurs,
            }
        }
        PAUSE_CONVERSATION if agent.wake.pausable && !agent.wake.paused => {
            // After this round the agent listens without a word.
            agent.wait_for_user = true;
            agent.wake.pause()
        }
        CHANGE_LANGUAGE if agent.languages.len() > 1 => {
            let asked = arg("language");
            match ai_languages::find(&agent.languages, &asked) {
                Some(at) => {
                    use_language(agent, at);
                    refresh_system(agent);
                    let name = &agent.languages[at].name;
                    format!("Now speaking {name}: answer in {name}.")
                }
                None => {
                    let names: Vec<&str> =
                        agent.languages.iter().map(|l| l.name.as_str()).collect();
                    format!(
                        "`{asked}` is not one of the languages: {}",
                        names.join(", ")
                    )
                }
            }
        }
        NEXT_STEP | CHANGE_CONTEXT if agent.contexts.is_some() => {
            let step = call.name == NEXT_STEP;
            let target = arg(if step { "step" } else { "context" });
            match move_to(agent, step, &target, true) {
                Ok(()) => format!(
                    "Now in the {} `{target}`; follow its instructions.",
                    if step { "step" } else { "context" }
                ),
                Err(why) => why,
            }
        }
        name => match Native::named(name).filter(|n| agent.natives.contains(n)) {
            Some(Native::CheckTime) => {
                let tz = args.get("timezone").and_then(Value::as_str);
                ai_native::check_time(agent.now, tz, &agent.local_tz)
            }
            Some(Native::WaitSeconds) => {
                let seconds = ai_native::wait_seconds(&args);
                agent.native_wait = Some(format!("Waited {seconds} seconds."));
                return Engine::Waits(Box::new(pause(run, u64::from(seconds) * 1000)));
            }
            Some(Native::WaitForUser) => {
                agent.wait_for_user = true;
                "Waiting for the user to speak; say nothing now.".to_string()
            }
            Some(Native::AdjustResponseLatency) => "OK.".to_string(),
            None => return Engine::NotOurs,
        },
    };
    push_tool_result(agent, &call.id, &answer);
    Engine::Answered
}

/// An answer of a gathering step: into `global_data` (under `output_key` when it has one), and
/// the model's call out of the conversation (the next question is in the system message).
fn gathered(agent: &mut Agent, answer: ai_gather::Answer, call_id: &str) {
    let slot = match answer.output_key {
        Some(key) => {
            let entry = agent.global_data.entry(key).or_insert_with(|| json!({}));
            if !entry.is_object() {
                *entry = json!({});
            }
            entry.as_object_mut()
        }
        None => Some(&mut agent.global_data),
    };
    if let Some(slot) = slot {
        slot.insert(answer.key, answer.value);
    }
    drop_tool_call(&mut agent.messages, call_id);
    if let Some(contexts) = &agent.contexts {
        agent.skip_user_turn = contexts.skips_user_turn();
    }
    refresh_system(agent);
}

/// The tool call `id` taken out of the model's message (the message too, when nothing is left
/// of it).
fn drop_tool_call(messages: &mut Vec<Value>, id: &str) {
    let Some(at) = messages.iter().rposition(|m| {
        m.get("tool_calls")
            .and_then(Value::as_array)
            .is_some_and(|calls| calls.iter().any(|c| c["id"] == id))
    }) else {
        return;
    };
    let message = &mut messages[at];
    if let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) {
        calls.retain(|c| c["id"] != id);
        if !calls.is_empty() {
            return;
        }
    }
    let said = message
        .get("content")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    if said {
        if let Some(m) = message.as_object_mut() {
            m.remove("tool_calls");
        }
    } else {
        messages.remove(at);
    }
}

/// Moves the conversation to the step or context `target` (`checked`: only where the current
/// step allows, as for the model's own tools); the system prompt follows.
fn move_to(agent: &mut Agent, step: bool, target: &str, checked: bool) -> Result<(), String> {
    let Some(contexts) = agent.contexts.as_mut() else {
        return Err("this conversation has no contexts".into());
    };
    let entered: Entered = if step {
        contexts.go_step(target, checked)?
    } else {
        contexts.go_context(target, checked)?
    };
    agent.skip_user_turn = contexts.skips_user_turn();
    if let Some(filler) = entered.filler {
        agent.to_say.push(filler);
    }
    switch(agent, entered.reset);
    refresh_system(agent);
    Ok(())
}

/// A context switch's changes. Mid-round the conversation must keep the model's function calls
/// and their results: it is summarised or wiped once the round is over.
fn switch(agent: &mut Agent, reset: Reset) {
    if let Some(system) = reset.system_prompt {
        agent.base_prompt = system;
        refresh_system(agent);
    }
    if let Some(user) = reset.user_prompt {
        let user = expand_prompt(agent, &user);
        agent.user_input.push(user);
    }
    agent.consolidate |= reset.consolidate;
    agent.isolate |= reset.full_reset;
}

/// What the agent says while `function`'s webhook runs, if anything: the phrases of its list
/// in turn (its own list counts its own calls); `skip_fillers` leaves out the language's.
fn filler(run: &mut Run, agent: &mut Agent, function: &Function) -> Option<PlayParams> {
    if function.fillers.is_empty() && function.skip_fillers {
        return None;
    }
    let phrase = if function.fillers.is_empty() {
        let list = &agent.function_fillers;
        let phrase = list.get(agent.fillers_said % list.len().max(1))?.clone();
        agent.fillers_said += 1;
        phrase
    } else {
        let own = agent
            .functions
            .iter_mut()
            .find(|f| f.name == function.name)?;
        let phrase = own
            .fillers
            .get(own.fillers_said % own.fillers.len())?
            .clone();
        own.fillers_said += 1;
        phrase
    };
    Some(agent_play(run, agent, "ai-filler", speech(&phrase)))
}

fn push_tool_result(agent: &mut Agent, id: &str, content: &str) {
    agent
        .messages
        .push(json!({"role": "tool", "tool_call_id": id, "content": content}));
}

/// The request body of a SWAIG function call (swml.md §6.1, "Webhooks the AI calls").
fn swaig_body(run: &Run, agent: &Agent, f: &Function, call: &ModelToolCall) -> Value {
    let parsed: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
    let c = &run.scope.call;
    let get = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let mut body = json!({
        "function": f.name,
        "argument": {"parsed": [parsed], "raw": call.arguments, "substituted": ""},
        "argument_desc": f.parameters,
        "description": f.description,
        "purpose": f.description,
        "call_id": get("call_id"),
        "ai_session_id": agent.session_id,
        "app_name": agent.app_name,
        "global_data": agent.global_data,
        "meta_data_token": f.meta_data_token,
        "meta_data": f.meta_data,
        "caller_id_name": c.get("from").cloned().unwrap_or(Value::Null),
        "caller_id_num": c.get("from").cloned().unwrap_or(Value::Null),
        "channel_active": true,
        "channel_offhook": true,
        "channel_ready": true,
        "content_type": "text/swaig",
        "content_disposition": "SWAIG Function",
        "version": "2.0",
        "conversation_type": "voice",
        "project_id": get("project_id"),
        "space_id": get("space_id"),
    });
    if agent.post_conversation {
        body["call_log"] = json!(agent
            .messages
            .iter()
            .filter(|m| m["role"] != "system")
            .collect::<Vec<_>>());
    }
    if let Some(names) = &agent.post_swml_vars {
        let vars = &run.scope.vars;
        let chosen: Map<String, Value> = vars
            .iter()
            .filter(|(k, _)| names.is_empty() || names.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        body["SWMLVars"] = Value::Object(chosen);
    }
    body
}

/// What a `data_map`'s templates can read (swml.md §5.7).
fn template_data(
    run: &Run,
    agent: &Agent,
    function: Option<&Function>,
    call: &ModelToolCall,
) -> Value {
    let args: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
    let c = &run.scope.call;
    let get = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let vars = prompt_vars(agent);
    let own = json!({
        "args": args,
        "global_data": agent.global_data,
        "meta_data": function.map_or(Value::Null, |f| f.meta_data.clone()),
        "call_id": get("call_id"),
        "ai_session_id": agent.session_id,
        "function": call.name,
        "caller_id_name": get("from"),
        "caller_id_num": get("from"),
        "project_id": get("project_id"),
        "space_id": get("space_id"),
        "app_name": agent.app_name,
    });
    // The prompt variables are merged into the root, under the call data's own keys.
    let mut data = vars.clone();
    data.insert("prompt_vars".into(), Value::Object(vars));
    for (k, v) in own.as_object().into_iter().flatten() {
        data.insert(k.clone(), v.clone());
    }
    Value::Object(data)
}

/// A webhook's answer: a SWAIG function's result, or a `data_map` webhook's response (which
/// may lead to its next webhook).
fn on_tool(run: &mut Run, mut agent: Agent, c: Completion) {
    if let Some(request) = agent.request_after_filler.take() {
        return wait_again(run, agent, Effect::Request(request));
    }
    let Some(call) = agent.calling.take() else {
        return next_tool(run, agent);
    };
    if let Some(answer) = agent.native_wait.take() {
        push_tool_result(&mut agent, &call.id, &answer);
        return next_tool(run, agent);
    }
    if let Some(i) = agent.mcp_calling.take() {
        let answer = match &c {
            Completion::Http(Ok(r)) => agent.mcp_servers[i]
                .on_answer(r)
                .map(|result| ai_mcp::call_text(&result)),
            Completion::Http(Err(e)) => Err(e.clone()),
            _ => Err("an unexpected answer".to_string()),
        };
        let text = answer.unwrap_or_else(|e| format!("The tool failed: {e}"));
        push_tool_result(&mut agent, &call.id, &text);
        return next_tool(run, agent);
    }
    let response = match c {
        Completion::Http(Ok(r)) => Some(r),
        _ => None,
    };
    if let Some(pending) = agent.data_map_run.take() {
        let (code, body) = response.map_or((None, String::new()), |r| (Some(r.code), r.body));
        match pending.on_response(code, &body) {
            DataMapStep::Done(reply, sleep_ms) => {
                apply_result(run, &mut agent, &call, reply);
                if sleep_ms > 0 {
                    let effect = pause(run, sleep_ms);
                    return wait_again(run, agent, effect);
                }
            }
            DataMapStep::Fetch(request, pending) => {
                agent.calling = Some(call);
                agent.data_map_run = Some(pending);
                return wait_again(run, agent, Effect::Request(*request));
            }
        }
        return next_tool(run, agent);
    }
    let reply = response
        .filter(|r| (200..300).contains(&r.code))
        .and_then(|r| serde_json::from_str::<Value>(&r.body).ok());
    apply_result(run, &mut agent, &call, reply);
    next_tool(run, agent);
}

/// A function's result: its `response` goes back to the model, its actions act.
fn apply_result(run: &mut Run, agent: &mut Agent, call: &ModelToolCall, reply: Option<Value>) {
    let Some(reply) = reply else {
        push_tool_result(
            agent,
            &call.id,
            "The function failed; tell the user it is not available.",
        );
        return;
    };
    let response = match reply.get("response") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other
            .get("tool_result")
            .map(crate::expr::stringify)
            .unwrap_or_else(|| other.to_string()),
        None => String::new(),
    };
    push_tool_result(agent, &call.id, &response);
    let actions: Vec<Value> = match reply.get("action") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    for action in actions {
        let Some(action) = action.as_object() else {
            continue;
        };
        for (name, value) in action {
            match name.as_str() {
                "say" => agent.to_say.push(crate::expr::stringify(value)),
                "stop" if super::as_bool(value) != Some(false) => agent.ending.stop = true,
                "hangup" if super::as_bool(value) != Some(false) => agent.ending.hangup = true,
                "set_global_data" if agent.allow_global_data => {
                    if let Some(m) = value.as_object() {
                        for (k, v) in m {
                            agent.global_data.insert(k.clone(), v.clone());
                        }
                    }
                }
                "unset_global_data" if agent.allow_global_data => {
                    for k in keys_of(value) {
                        agent.global_data.remove(&k);
                    }
                }
                "add_dynamic_hints" => {
                    for h in value.as_array().into_iter().flatten() {
                        let hint = match h {
                            Value::String(s) => Some(s.clone()),
                            other => text_at(other, "hint"),
                        };
                        if let Some(hint) = hint.filter(|h| !h.trim().is_empty()) {
                            if agent.dynamic_hints.len() < MAX_DYNAMIC_HINTS {
                                agent.dynamic_hints.push(hint);
                            }
                        }
                    }
                }
                "clear_dynamic_hints" => agent.dynamic_hints.clear(),
                "end_of_speech_timeout" => {
                    if let Some(ms) = as_f64(value).filter(|ms| ms.is_finite() && *ms > 0.0) {
                        agent.end_of_speech_s = ms.min(60_000.0) / 1000.0;
                    }
                }
                "settings" if agent.allow_settings => apply_settings(agent, value),
                "replace_in_history" => {
                    // The function's result, as the model sees it from now on.
                    let text = match value {
                        Value::String(t) => Some(t.clone()),
                        other if super::as_bool(other) == Some(true) => Some(String::new()),
                        _ => None,
                    };
                    if let Some(text) = text {
                        replace_tool_result(&mut agent.messages, &call.id, &text);
                    }
                }
                "user_event" if value.is_object() => {
                    run.emit(Effect::UserEvent {
                        event: value.clone(),
                    });
                }
                "wait_for_user" if super::as_bool(value) != Some(false) => {
                    agent.wait_for_user = true;
                }
                "toggle_functions" => {
                    for t in value.as_array().into_iter().flatten() {
                        let name = t.get("function").and_then(Value::as_str);
                        let on = t.get("active").and_then(super::as_bool).unwrap_or(true);
                        for f in agent
                            .functions
                            .iter_mut()
                            .filter(|f| Some(f.name.as_str()) == name)
                        {
                            f.active = on;
                        }
                    }
                }
                "user_input" => agent.user_input.push(crate::expr::stringify(value)),
                // `wait` (keep the agent from prompting the caller while it plays) is
                // accepted and not used (docs/ai.md).
                "playback_bg" => {
                    let file = match value {
                        Value::Object(o) => o.get("file").map(crate::expr::stringify),
                        other => Some(crate::expr::stringify(other)),
                    };
                    if let Some(url) = file.filter(|f| !f.trim().is_empty()) {
                        agent.background_change = Some(Some(BackgroundAudio {
                            url,
                            volume_db: 0.0,
                            loops: 1,
                        }));
                        agent.background_wait =
                            value.get("wait").and_then(super::as_bool) == Some(true);
                    }
                }
                "stop_playback_bg" if super::as_bool(value) != Some(false) => {
                    agent.background_change = Some(None);
                }
                "context_switch" => switch(agent, Reset::from_value(Some(value))),
                "hold" => {
                    // An int of seconds or `{timeout}`; 300 by default, at most 900.
                    let timeout = match value {
                        Value::Object(o) => o.get("timeout").and_then(as_f64),
                        other => as_f64(other),
                    }
                    .filter(|t| t.is_finite() && *t >= 1.0)
                    .map_or(300, |t| t.min(900.0) as u32);
                    agent.hold_requested = Some((timeout, HOLD_PROMPT.to_string()));
                }
                "change_context" | "change_step" => {
                    // A step or context that does not exist is no move.
                    let target = crate::expr::stringify(value);
                    let _ = move_to(agent, name == "change_step", &target, false);
                }
                "set_meta_data" | "unset_meta_data" => {
                    edit_meta_data(agent, &call.name, name == "set_meta_data", value)
                }
                // SWML on the call: with `transfer` the agent ends and the call is handed to
                // it; without, it runs once this tool round is over and the agent goes on.
                "SWML" if agent.allow_swml => {
                    let doc = match value {
                        Value::String(text) => crate::parse_text(text).ok(),
                        other => Some(other.clone()),
                    };
                    let Some(doc) = doc else { continue };
                    if action.get("transfer").and_then(super::as_bool) == Some(true) {
                        agent.ending.transfer = Some(doc);
                        agent.ending.stop = true;
                    } else if agent.inline_swml.len() < MAX_INLINE_SWML {
                        agent.inline_swml.push_back(doc);
                    }
                }
                "transfer" if !action.contains_key("SWML") => {
                    let dest = match value {
                        Value::Object(o) => o.get("dest").cloned(),
                        Value::String(_) => Some(value.clone()),
                        _ => None,
                    };
                    if let Some(dest) = dest {
                        agent.ending.transfer = Some(dest);
                        agent.ending.stop = true;
                    }
                }
                _ => {}
            }
        }
    }
}

/// A `settings` action: the model's `temperature`, `top_p`, `max_tokens` from now on.
fn apply_settings(agent: &mut Agent, value: &Value) {
    if let Some(t) = value
        .get("temperature")
        .and_then(as_f64)
        .filter(|t| (0.0..=2.0).contains(t))
    {
        agent.temperature = Some(t);
    }
    if let Some(p) = value
        .get("top_p")
        .and_then(as_f64)
        .filter(|p| (0.0..=1.0).contains(p))
    {
        agent.top_p = Some(p);
    }
    if let Some(n) = value
        .get("max_tokens")
        .and_then(as_f64)
        .filter(|n| *n >= 1.0)
    {
        agent.max_tokens = Some(n.min(4096.0) as u32);
    }
}

/// The result of tool call `id` replaced by `text` in the conversation.
fn replace_tool_result(messages: &mut [Value], id: &str, text: &str) {
    if let Some(m) = messages
        .iter_mut()
        .rev()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == id)
    {
        m["content"] = json!(text);
    }
}

/// The keys an `unset_*` action names: one string or a list.
fn keys_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(k) => vec![k.clone()],
        Value::Array(keys) => keys
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// `set_meta_data` / `unset_meta_data` of the function `name`: shared by every function with
/// the same `meta_data_token` (or its own when it has none).
fn edit_meta_data(agent: &mut Agent, name: &str, set: bool, value: &Value) {
    let token = agent
        .functions
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.meta_data_token.clone());
    let Some(token) = token else {
        return;
    };
    for f in agent
        .functions
        .iter_mut()
        .filter(|f| f.name == name || (token.is_some() && f.meta_data_token == token))
    {
        if !f.meta_data.is_object() {
            f.meta_data = json!({});
        }
        let Some(m) = f.meta_data.as_object_mut() else {
            continue;
        };
        if set {
            for (k, v) in value.as_object().into_iter().flatten() {
                m.insert(k.clone(), v.clone());
            }
        } else {
            for k in keys_of(value) {
                m.remove(&k);
            }
        }
    }
}

/// Last words, then the session ends.
fn closing(run: &mut Run, mut agent: Agent, text: String) {
    if text.trim().is_empty() {
        return finish(run, agent);
    }
    agent.phase = Phase::Closing;
    let play = agent_play(run, &agent, "ai-say", speech(&text));
    wait_again(run, agent, play_effect(play));
}

/// The conversation is over: the summary and the report, then the script goes on.
fn finish(run: &mut Run, agent: Agent) {
    if agent.post_prompt_url.is_some() {
        let context_post = agent.contexts.as_ref().and_then(Contexts::post_prompt);
        if let Some(post) = context_post.or_else(|| agent.post_prompt.clone()) {
            let post = expand_prompt(&agent, &post);
            return ask_over_the_conversation(run, agent, Phase::Summary, &post);
        }
    }
    report_or_end(run, agent);
}

fn report_or_end(run: &mut Run, mut agent: Agent) {
    let Some(url) = agent.post_prompt_url.clone() else {
        return end(run, agent);
    };
    agent.phase = Phase::Report;
    let call_log: Vec<Value> = agent
        .messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) != Some("system"))
        .cloned()
        .collect();
    let summary = agent.summary.clone();
    let body = json!({
        "action": "post_conversation",
        "call_id": run.scope.call.get("call_id").cloned().unwrap_or(Value::Null),
        "ai_session_id": agent.session_id,
        "app_name": agent.app_name,
        "call_log": call_log,
        "raw_call_log": agent.messages,
        "post_prompt_data": {"raw": summary, "substituted": summary, "parsed": []},
        "SWMLVars": Value::Object(run.scope.vars.clone()),
        "global_data": agent.global_data,
        "times": {"started_at_ms": agent.started_at},
        "content_type": "text/swaig",
        "version": "2.0",
    });
    wait_again(run, agent, Effect::Request(post_json(url, &body)));
}

/// A JSON POST to the user's side (a SWAIG function, the report).
fn post_json(url: String, body: &Value) -> HttpRequest {
    HttpRequest {
        url,
        method: "POST".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Some(body.to_string()),
        timeout_ms: SWAIG_TIMEOUT_MS,
        connect_timeout_ms: SWAIG_TIMEOUT_MS,
        save_variables: false,
        filler: None,
    }
}

fn end(run: &mut Run, agent: Agent) {
    if agent.background.is_some() {
        run.emit(Effect::Background(None));
    }
    let result = if agent.ending.failed {
        "failed"
    } else {
        "success"
    };
    set_var(run, "ai_result", result);
    set_var(run, "return_value", result);
    if agent.ending.hangup {
        return run.hang_up("hangup");
    }
    if let Some(dest) = agent.ending.transfer {
        // As a `transfer` step would: the call's script is handed over for good.
        match super::transfer::run(run, &json!({ "dest": dest })) {
            Flow::Wait(waiting, effect) => {
                run.waiting = Some(waiting);
                if let Some(e) = effect {
                    run.emit(*e);
                }
            }
            Flow::Next | Flow::Jumped | Flow::Stop => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_stop_times_read_as_durations() {
        assert_eq!(duration_ms(&json!("1:02:03")), Some(3_723_000));
        assert_eq!(duration_ms(&json!("05:00")), Some(300_000));
        assert_eq!(duration_ms(&json!("90")), Some(90_000));
        assert_eq!(duration_ms(&json!(90)), Some(90_000));
        assert_eq!(duration_ms(&json!("2m")), Some(120_000));
        assert_eq!(duration_ms(&json!("1.5h")), Some(5_400_000));
        assert_eq!(duration_ms(&json!("45s")), Some(45_000));
        for bad in [
            json!("soon"),
            json!("-5"),
            json!("0"),
            json!(""),
            json!(true),
            json!("1::2"),
        ] {
            assert_eq!(duration_ms(&bad), None, "{bad}");
        }
        assert_eq!(
            duration_ms(&json!("1e9")),
            Some(86_400_000),
            "a day at most"
        );
    }
}
