//! Commands on a running AI agent, the AI sidecar and live transcription/translation
//! (calling-api.md §6.22–6.29). Nothing executes them yet; they are typed so that the API
//! validates them once and the node can answer them precisely.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::defaults;

/// `calling.ai_hold` (§6.22); `timeout` in seconds (ambiguity register A8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiHoldParams {
    #[serde(default = "defaults::ai_hold_timeout")]
    pub timeout: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// `calling.ai_unhold` (§6.23).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiUnholdParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AiRole {
    #[default]
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiReset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_reset: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
}

/// `calling.ai_message` (§6.24).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiMessageParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_text: Option<String>,
    /// Who says `message_text` (system when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<AiRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<AiReset>,
    /// The user's own data for the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_data: Option<Map<String, Value>>,
}

impl AiMessageParams {
    pub fn role(&self) -> AiRole {
        self.role.unwrap_or_default()
    }
}

/// `calling.ai.stop` (§6.25).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiStopParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_id: Option<String>,
}

/// Which party's speech (live transcription, translation, the sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerLeg {
    RemoteCaller,
    LocalCaller,
}

pub fn both_legs() -> Vec<CallerLeg> {
    vec![CallerLeg::RemoteCaller, CallerLeg::LocalCaller]
}

/// A prompt: plain text, or one of `text`, `pom` (prompt object model) or `file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AiPrompt {
    Plain(String),
    Text { text: String },
    Pom { pom: Vec<Value> },
    File { file: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WebHookAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_hook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_hook_auth_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_hook_auth_password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarFunction {
    pub function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// A JSON Schema of the function's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub web_hook: WebHookAuth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SidecarSwaig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<WebHookAuth>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<SidecarFunction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<Vec<Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarPermissions {
    #[serde(default = "defaults::yes")]
    pub swaig_allow_swml: bool,
    #[serde(default = "defaults::yes")]
    pub swaig_allow_settings: bool,
    #[serde(default = "defaults::yes")]
    pub swaig_set_global_data: bool,
}

impl Default for SidecarPermissions {
    fn default() -> Self {
        SidecarPermissions {
            swaig_allow_swml: true,
            swaig_allow_settings: true,
            swaig_set_global_data: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SpeechEngine {
    #[default]
    Deepgram,
    Google,
}

/// The sidecar's `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarTuning {
    #[serde(default = "defaults::sidecar_idle_timeout_ms")]
    pub idle_timeout_ms: u32,
    #[serde(default)]
    pub min_interval_ms: u32,
    #[serde(default = "defaults::sidecar_max_iters_per_tick")]
    pub max_iters_per_tick: u32,
    #[serde(default = "defaults::sidecar_max_history_tokens")]
    pub max_history_tokens: u32,
    #[serde(default = "defaults::yes")]
    pub act_on_channel: bool,
    #[serde(default)]
    pub final_summary: bool,
    #[serde(default)]
    pub ai_summary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_summary_prompt: Option<String>,
    #[serde(default = "defaults::ai_model")]
    pub summary_model: String,
    #[serde(default)]
    pub live_events: bool,
    #[serde(default)]
    pub verbose_utterances: bool,
    #[serde(default)]
    pub speech_engine: SpeechEngine,
    #[serde(default)]
    pub speech_timeout: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vad_silence_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vad_thresh: Option<u32>,
    #[serde(default)]
    pub debug_level: u32,
    #[serde(default)]
    pub debug: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcribe_prompt: Option<String>,
}

impl Default for SidecarTuning {
    fn default() -> Self {
        SidecarTuning {
            idle_timeout_ms: defaults::sidecar_idle_timeout_ms(),
            min_interval_ms: 0,
            max_iters_per_tick: defaults::sidecar_max_iters_per_tick(),
            max_history_tokens: defaults::sidecar_max_history_tokens(),
            act_on_channel: true,
            final_summary: false,
            ai_summary: false,
            ai_summary_prompt: None,
            summary_model: defaults::ai_model(),
            live_events: false,
            verbose_utterances: false,
            speech_engine: SpeechEngine::default(),
            speech_timeout: 0,
            vad_silence_ms: None,
            vad_thresh: None,
            debug_level: 0,
            debug: false,
            transcribe_prompt: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Summarize {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarAction {
    pub summarize: Summarize,
}

/// `calling.ai_sidecar` (§6.26).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiSidecarParams {
    pub lang: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<AiPrompt>,
    #[serde(default = "defaults::ai_model")]
    pub model: String,
    #[serde(default = "both_legs")]
    pub direction: Vec<CallerLeg>,
    #[serde(default = "defaults::remote_caller")]
    pub customer_role: CallerLeg,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "SWAIG", default, skip_serializing_if = "Option::is_none")]
    pub swaig: Option<SidecarSwaig>,
    #[serde(default)]
    pub permissions: SidecarPermissions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_data: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hints: Option<Vec<String>>,
    #[serde(default)]
    pub params: SidecarTuning,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<SidecarAction>,
}

/// `calling.ai_sidecar.poke` / `.ask` (§6.27).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarTextParams {
    pub text: String,
}

/// Speech settings shared by live transcription and translation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSpeechSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    #[serde(default)]
    pub live_events: bool,
    #[serde(default)]
    pub ai_summary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_summary_prompt: Option<String>,
    #[serde(default)]
    pub speech_engine: SpeechEngine,
    /// Milliseconds.
    #[serde(default = "defaults::live_speech_timeout")]
    pub speech_timeout: u32,
    /// Milliseconds; the engine's own default when absent ([`LiveSpeechSettings::vad_silence_ms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vad_silence_ms: Option<u32>,
    #[serde(default = "defaults::live_vad_thresh")]
    pub vad_thresh: u32,
    #[serde(default)]
    pub debug_level: u32,
}

impl LiveSpeechSettings {
    pub fn vad_silence_ms(&self) -> u32 {
        self.vad_silence_ms.unwrap_or(match self.speech_engine {
            SpeechEngine::Google => 500,
            SpeechEngine::Deepgram => 300,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscribeStart {
    pub lang: String,
    #[serde(default = "both_legs")]
    pub direction: Vec<CallerLeg>,
    #[serde(flatten)]
    pub speech: LiveSpeechSettings,
}

/// `calling.live_transcribe` (§6.28): `"stop"` or one action object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveTranscribeAction {
    Stop,
    Start(TranscribeStart),
    Summarize(Summarize),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveTranscribeParams {
    pub action: LiveTranscribeAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslateStart {
    pub from_lang: String,
    pub to_lang: String,
    pub direction: Vec<CallerLeg>,
    #[serde(default = "defaults::translate_voice")]
    pub from_voice: String,
    #[serde(default = "defaults::translate_voice")]
    pub to_voice: String,
    /// A preset (`polite`, `rude`, …) or `prompt:<text>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_to: Option<String>,
    #[serde(flatten)]
    pub speech: LiveSpeechSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslateInject {
    pub message: String,
    pub direction: CallerLeg,
}

/// `calling.live_translate` (§6.29).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveTranslateAction {
    Stop,
    Start(TranslateStart),
    Summarize(Summarize),
    Inject(TranslateInject),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveTranslateParams {
    pub action: LiveTranslateAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}
