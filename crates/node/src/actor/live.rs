//! `calling.live_transcribe` (calling-api.md §6.28) and SWML `live_transcribe` (swml.md §6.16):
//! the chosen legs' speech as utterances while the call runs. `remote-caller` is the far end of
//! this call (what dialtone hears), `local-caller` the near side (what dialtone sends: its
//! prompts, the agent's speech, a bridged peer). Each leg has its own continuous speech tap
//! (the node's recogniser, with `vad_silence_ms` as the end of an utterance); every utterance
//! goes to `webhook` as it is recognised when `live_events` is on (partials too), and the
//! transcript is kept for the summary — by the `ai` model backend — at the end (`ai_summary`) or
//! on demand (`summarize`). The events' shape is ours (calling-events.md §12, docs/ai.md).

use std::sync::Arc;

use control::command::{
    CallerLeg, LiveSpeechSettings, LiveTranscribeAction, LiveTranscribeParams, Summarize,
};
use control::session::{SpeechEvent, SpeechSpec};
use control::ControlError;
use serde_json::{json, Value};
use tracing::{info, warn, Instrument};

use crate::actor::CallActor;
use crate::shard::ShardCommand;

/// Key prefix of the live transcription's speech taps (then `remote` / `local`).
pub(crate) const LIVE_PREFIX: &str = "live:";
/// Utterances kept for the summary (the oldest go first).
const MAX_LINES: usize = 2_000;
const SUMMARY_PROMPT: &str = "Summarize this phone conversation in a few sentences.";

/// A live transcription (or translation, translate.rs) running on the call.
pub(crate) struct LiveTranscript {
    pub(crate) lang: String,
    pub(crate) legs: Vec<CallerLeg>,
    pub(crate) webhook: Option<String>,
    pub(crate) live_events: bool,
    pub(crate) ai_summary: bool,
    pub(crate) summary_prompt: Option<String>,
    pub(crate) lines: Vec<(CallerLeg, String)>,
    /// `calling.call.live_transcribe` or `calling.call.live_translate`.
    pub(crate) event_type: &'static str,
    pub(crate) translation: Option<crate::actor::translate::Translation>,
}

/// The speech taps' settings for a leg.
pub(crate) fn tap_spec(language: &str, speech: &LiveSpeechSettings) -> SpeechSpec {
    SpeechSpec {
        language: language.to_string(),
        hints: Vec::new(),
        digits_allowed: false,
        end_silence_ms: u64::from(speech.vad_silence_ms().max(1)),
        speech_timeout_ms: u64::from(speech.speech_timeout.max(1500)),
        partial_results: speech.live_events,
        continuous: true,
    }
}

pub(crate) fn leg_name(leg: CallerLeg) -> &'static str {
    match leg {
        CallerLeg::RemoteCaller => "remote-caller",
        CallerLeg::LocalCaller => "local-caller",
    }
}

fn tap_key(leg: CallerLeg) -> String {
    match leg {
        CallerLeg::RemoteCaller => format!("{LIVE_PREFIX}remote"),
        CallerLeg::LocalCaller => format!("{LIVE_PREFIX}local"),
    }
}

pub(crate) fn no_session() -> ControlError {
    ControlError::invalid_state("invalid_state", "no live transcription runs on this call")
}

/// One transcriber per call: a sidecar holds the taps.
pub(crate) fn sidecar_conflict() -> ControlError {
    ControlError::Conflict {
        code: "value_not_unique",
        message: "one transcriber per call: an AI sidecar runs".into(),
        attribute: None,
    }
}

impl CallActor {
    /// `calling.live_transcribe`: start (a running one is replaced), stop (with its summary
    /// when `ai_summary`), summarize now.
    pub(crate) async fn live_transcribe(
        &mut self,
        p: LiveTranscribeParams,
    ) -> Result<(), ControlError> {
        match p.action {
            LiveTranscribeAction::Start(start) => {
                let legs = self.begin_live(&start.direction).await?;
                let spec = tap_spec(&start.lang, &start.speech);
                for leg in &legs {
                    self.set_live_tap(*leg, Some(spec.clone()));
                }
                info!(lang = %start.lang, legs = legs.len(), "live transcription started");
                let live = LiveTranscript {
                    lang: start.lang,
                    legs,
                    webhook: start.speech.webhook,
                    live_events: start.speech.live_events,
                    ai_summary: start.speech.ai_summary,
                    summary_prompt: start.speech.ai_summary_prompt,
                    lines: Vec::new(),
                    event_type: "calling.call.live_transcribe",
                    translation: None,
                };
                self.live_event(&live, json!({"kind": "state", "state": "started"}))
                    .await;
                self.live = Some(Box::new(live));
                Ok(())
            }
            LiveTranscribeAction::Stop => {
                self.live_session(false)?;
                self.stop_live(true).await;
                Ok(())
            }
            LiveTranscribeAction::Summarize(s) => {
                self.summarize_live(self.live_session(false)?, Some(s));
                Ok(())
            }
        }
    }

    /// The running live transcription (`translating`: translation), or 422 `invalid_state`.
    pub(crate) fn live_session(&self, translating: bool) -> Result<&LiveTranscript, ControlError> {
        self.live
            .as_deref()
            .filter(|l| l.translation.is_some() == translating)
            .ok_or_else(no_session)
    }

    /// Before a live transcription or translation starts: a sidecar holds the taps (409), a
    /// running one is replaced; the legs it hears (both when none are named).
    pub(crate) async fn begin_live(
        &mut self,
        direction: &[CallerLeg],
    ) -> Result<Vec<CallerLeg>, ControlError> {
        if self.sidecar.is_some() {
            return Err(sidecar_conflict());
        }
        self.stop_live(false).await;
        Ok(if direction.is_empty() {
            control::command::both_legs()
        } else {
            direction.to_vec()
        })
    }

    pub(crate) fn set_live_tap(&mut self, leg: CallerLeg, spec: Option<SpeechSpec>) {
        let listener = spec.map(|spec| {
            Box::new(asr::listener::SpeechListener::new(
                self.node.speech.clone(),
                crate::actor::ops::speech_params(spec),
            )) as Box<dyn media::listen::FrameListener>
        });
        self.node.media.send(
            self.media_key,
            ShardCommand::SetListener {
                call_id: self.ident.call_id,
                key: tap_key(leg),
                listener,
                sent: leg == CallerLeg::LocalCaller,
            },
        );
    }

    /// Ends the running transcription (the call ended, a stop, a new start): its taps go, and
    /// with `report`, the summary (when asked for) and the `stopped` state are sent.
    pub(crate) async fn stop_live(&mut self, report: bool) {
        let Some(live) = self.live.take() else {
            return;
        };
        for leg in live.legs.clone() {
            self.set_live_tap(leg, None);
        }
        info!(utterances = live.lines.len(), "live transcription stopped");
        if report {
            if live.ai_summary {
                self.summarize_live(&live, None);
            }
            self.live_event(&live, json!({"kind": "state", "state": "stopped"}))
                .await;
        }
    }

    /// What a live tap heard (key without its prefix: `remote` / `local`).
    pub(crate) async fn on_live_speech(&mut self, tap: &str, event: SpeechEvent) {
        let leg = match tap {
            "remote" => CallerLeg::RemoteCaller,
            "local" => CallerLeg::LocalCaller,
            _ => return,
        };
        if self.sidecar.is_some() {
            if let SpeechEvent::Result { text, .. } = event {
                if !text.trim().is_empty() {
                    self.sidecar_heard(leg, text.trim().to_string()).await;
                }
            }
            return;
        }
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let (text, last) = match event {
            SpeechEvent::Result { text, .. } => (text, true),
            SpeechEvent::Partial { text } => (text, false),
            SpeechEvent::StartOfInput => return,
            SpeechEvent::Error { message } => {
                warn!(%message, leg = leg_name(leg), "live transcription: recognition failed");
                return;
            }
        };
        let text = text.trim().to_string();
        if text.is_empty() {
            return;
        }
        if last {
            if live.lines.len() == MAX_LINES {
                live.lines.remove(0);
            }
            live.lines.push((leg, text.clone()));
        }
        if let Some(t) = live.translation.clone().filter(|_| last) {
            return self.translate_utterance(leg, text, t);
        }
        if !live.live_events {
            return;
        }
        let lang = live.lang.clone();
        let params = json!({"kind": "utterance", "direction": leg_name(leg), "lang": lang,
                            "text": text, "final": last});
        if let Some(live) = self.live.as_ref() {
            self.live_event(live, params).await;
        }
    }

    pub(crate) async fn live_event(&self, live: &LiveTranscript, mut params: Value) {
        let Some(url) = live.webhook.as_deref() else {
            return;
        };
        params["call_id"] = json!(self.ident.call_id);
        params["node_id"] = json!(self.ident.node_id);
        let event = self
            .ident
            .envelope(live.event_type, crate::now_ms(), params);
        self.node.notify(self.ident.call_id, url, &event).await;
    }

    /// The model summarises the transcript (on a task); the summary goes to the summarize
    /// action's webhook, else the start's.
    pub(crate) fn summarize_live(&self, live: &LiveTranscript, on_demand: Option<Summarize>) {
        let url = on_demand
            .as_ref()
            .and_then(|s| s.webhook.clone())
            .or_else(|| live.webhook.clone());
        let Some(url) = url else {
            return;
        };
        let prompt = on_demand
            .and_then(|s| s.prompt)
            .or_else(|| live.summary_prompt.clone())
            .unwrap_or_else(|| SUMMARY_PROMPT.to_string());
        let transcript: String = live
            .lines
            .iter()
            .map(|(leg, text)| format!("{}: {text}\n", leg_name(*leg)))
            .collect();
        let backend = self.node.model.clone();
        let node = self.node.clone();
        let ident = self.ident.clone();
        let lang = live.lang.clone();
        let event_type = live.event_type;
        // A translation's summary comes in both its languages.
        let other = live.translation.as_ref().map(|t| t.to_lang.clone());
        tokio::spawn(
            async move {
                let summary = summarize(backend.clone(), &prompt, &transcript).await;
                let mut params = match summary {
                    Ok(text) => json!({"kind": "summary", "summary": text}),
                    Err(e) => {
                        warn!(error = %e, "live transcription: no summary");
                        json!({"kind": "summary", "summary": Value::Null, "error": e})
                    }
                };
                if let (Some(to), Some(text)) = (other, params["summary"].as_str()) {
                    let asked = format!(
                        "Translate this text into the language {to}. Answer with the translation only."
                    );
                    let translated = summarize(backend, &asked, text).await.ok();
                    params["summaries"] = json!({lang.clone(): text, to: translated});
                }
                params["lang"] = json!(lang);
                params["call_id"] = json!(ident.call_id);
                params["node_id"] = json!(ident.node_id);
                let event = ident.envelope(event_type, crate::now_ms(), params);
                node.notify(ident.call_id, &url, &event).await;
            }
            .in_current_span(),
        );
    }
}

/// One answer of the model to `prompt` about `transcript`.
pub(crate) async fn summarize(
    backend: Option<Arc<dyn llm::ChatBackend>>,
    prompt: &str,
    transcript: &str,
) -> Result<String, String> {
    let backend = backend.ok_or("no AI model backend is configured (ai_base_url)")?;
    let messages = vec![
        serde_json::from_value::<llm::Message>(json!({"role": "system", "content": prompt}))
            .map_err(|e| e.to_string())?,
        serde_json::from_value::<llm::Message>(json!({"role": "user", "content": transcript}))
            .map_err(|e| e.to_string())?,
    ];
    let chat = llm::ChatRequest::new(messages);
    let done = backend
        .chat_stream(&chat, &mut |_| llm::Flow::Continue)
        .await
        .map_err(|e| e.to_string())?;
    Ok(done.text.trim().to_string())
}
