//! `calling.live_translate` (calling-api.md §6.29) and SWML `live_translate` (swml.md §6.17):
//! live transcription (live.rs) whose utterances are translated by the model — the
//! `remote-caller` speaks `from_lang`, the `local-caller` `to_lang`; each final utterance is
//! translated into the other language (with the leg's `filter_*` as an instruction) and sent as
//! a `calling.call.live_translate` event and spoken to the other party: the remote caller's
//! words to the call this one is bridged to (a `connect`), the local side's to the remote
//! caller. `inject` translates a message into a party's language and speaks it to that party.
//! On a plain call the local side is dialtone itself: nobody to speak to (docs/ai.md).

use control::command::{
    CallerLeg, LiveTranslateAction, LiveTranslateParams, MediaItem, PlayParams, TtsItem,
};
use control::session::Origin;
use control::{CallCommand, ControlError};
use serde_json::json;
use tracing::{info, warn, Instrument};

use crate::actor::live::{leg_name, no_session, tap_spec, LiveTranscript};
use crate::actor::{CallActor, TaskDone};

/// What a running translation needs beside the transcription.
#[derive(Debug, Clone)]
pub(crate) struct Translation {
    pub from_lang: String,
    pub to_lang: String,
    filter_from: Option<String>,
    filter_to: Option<String>,
    status_url: Option<String>,
    /// Until when (Unix ms, roughly) a translation is being said to the remote caller: the
    /// local side's tap hears it too (it is in what the call sends), and is not translated
    /// back.
    quiet_until: u64,
}

/// The other party of a translated conversation.
fn other(leg: CallerLeg) -> CallerLeg {
    match leg {
        CallerLeg::RemoteCaller => CallerLeg::LocalCaller,
        CallerLeg::LocalCaller => CallerLeg::RemoteCaller,
    }
}

/// About how long flite takes to say `text`, with the utterance's end silence after it.
fn speaking_ms(text: &str) -> u64 {
    1500 + 70 * text.chars().count() as u64
}

impl Translation {
    /// The languages of `leg`'s speech and of its translation.
    fn langs(&self, leg: CallerLeg) -> (&str, &str) {
        match leg {
            CallerLeg::RemoteCaller => (&self.from_lang, &self.to_lang),
            CallerLeg::LocalCaller => (&self.to_lang, &self.from_lang),
        }
    }

    /// The instruction for translating `leg`'s words.
    fn instruction(&self, leg: CallerLeg) -> String {
        let (from, to) = self.langs(leg);
        let filter = match leg {
            CallerLeg::RemoteCaller => self.filter_from.as_deref(),
            CallerLeg::LocalCaller => self.filter_to.as_deref(),
        };
        let style = match filter {
            Some(custom) if custom.starts_with("prompt:") => {
                format!(" {}", custom.trim_start_matches("prompt:").trim())
            }
            Some("polite") => " Make it polite.".into(),
            Some("rude") => " Make it rude.".into(),
            Some("professional") => " Make it professional.".into(),
            Some("shakespeare") => " Phrase it as Shakespeare would.".into(),
            Some("gen-z") => " Phrase it as Gen Z would.".into(),
            _ => String::new(),
        };
        format!(
            "Translate the user's words from the language {from} into the language {to}.{style} \
             Answer with the translation only."
        )
    }
}

impl CallActor {
    /// `calling.live_translate`: start, stop, summarize (in both languages), inject.
    pub(crate) async fn live_translate(
        &mut self,
        p: LiveTranslateParams,
    ) -> Result<(), ControlError> {
        match p.action {
            LiveTranslateAction::Start(start) => {
                let legs = self.begin_live(&start.direction).await?;
                let translation = Translation {
                    from_lang: start.from_lang.clone(),
                    to_lang: start.to_lang.clone(),
                    filter_from: start.filter_from.clone(),
                    filter_to: start.filter_to.clone(),
                    status_url: p.status_url,
                    quiet_until: 0,
                };
                for leg in &legs {
                    let (lang, _) = translation.langs(*leg);
                    let spec = tap_spec(lang, &start.speech);
                    self.set_live_tap(*leg, Some(spec));
                }
                info!(from = %start.from_lang, to = %start.to_lang, legs = legs.len(),
                      "live translation started");
                let live = LiveTranscript {
                    lang: start.from_lang,
                    legs,
                    webhook: start.speech.webhook,
                    live_events: start.speech.live_events,
                    ai_summary: start.speech.ai_summary,
                    summary_prompt: start.speech.ai_summary_prompt,
                    lines: Vec::new(),
                    event_type: "calling.call.live_translate",
                    translation: Some(translation),
                };
                self.translation_state(&live, "started").await;
                self.live = Some(Box::new(live));
                Ok(())
            }
            LiveTranslateAction::Stop => {
                let live = self.live_session(true)?;
                // The stop's own `stopped` goes to the webhook (live.rs); the status URL too.
                if let Some(url) = live.translation.as_ref().and_then(|t| t.status_url.clone()) {
                    self.translation_state_to(&url, "stopped").await;
                }
                self.stop_live(true).await;
                Ok(())
            }
            LiveTranslateAction::Summarize(s) => {
                self.summarize_live(self.live_session(true)?, Some(s));
                Ok(())
            }
            LiveTranslateAction::Inject(inject) => {
                let t = self
                    .live
                    .as_ref()
                    .and_then(|l| l.translation.clone())
                    .ok_or_else(no_session)?;
                let to = inject.direction;
                if to == CallerLeg::LocalCaller && self.local_listeners().is_empty() {
                    return Err(ControlError::NotImplemented {
                        command: "calling.live_translate inject to the local-caller of a call \
                                  that is not bridged nor in a conference (the near side is \
                                  dialtone itself)"
                            .into(),
                    });
                }
                // Into the listener's language, from the other party's.
                let instruction = t.instruction(other(to));
                let backend = self.node.model.clone();
                let tx = self.tasks_tx.clone();
                let language = t.langs(to).0.to_string();
                tokio::spawn(
                    async move {
                        match crate::actor::live::summarize(backend, &instruction, &inject.message)
                            .await
                        {
                            Ok(text) => {
                                let _ = tx.send(TaskDone::TranslationSay { text, language, to });
                            }
                            Err(e) => warn!(error = %e, "live translation: inject not translated"),
                        }
                    }
                    .in_current_span(),
                );
                Ok(())
            }
        }
    }

    async fn translation_state(&self, live: &LiveTranscript, state: &str) {
        self.live_event(live, json!({"kind": "state", "state": state}))
            .await;
        if let Some(url) = live.translation.as_ref().and_then(|t| t.status_url.clone()) {
            self.translation_state_to(&url, state).await;
        }
    }

    async fn translation_state_to(&self, url: &str, state: &str) {
        let params = json!({"call_id": self.ident.call_id, "node_id": self.ident.node_id,
                            "kind": "state", "state": state});
        let event = self
            .ident
            .envelope("calling.call.live_translate", crate::now_ms(), params);
        self.node.notify(self.ident.call_id, url, &event).await;
    }

    /// A final utterance of a translated leg: the model translates it (on a task); the event
    /// carries both, and the translation is said to the other party.
    pub(crate) fn translate_utterance(&self, leg: CallerLeg, text: String, t: Translation) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        if leg == CallerLeg::LocalCaller && crate::now_ms() < t.quiet_until {
            tracing::debug!(%text, "live translation: our own translation, heard back, left out");
            return;
        }
        let url = live.webhook.clone();
        let instruction = t.instruction(leg);
        let (lang, to_lang) = t.langs(leg);
        let (lang, to_lang) = (lang.to_string(), to_lang.to_string());
        let backend = self.node.model.clone();
        let node = self.node.clone();
        let ident = self.ident.clone();
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let translated = crate::actor::live::summarize(backend, &instruction, &text).await;
                if let Ok(said) = &translated {
                    let _ = tx.send(TaskDone::TranslationSay {
                        text: said.clone(),
                        language: to_lang.clone(),
                        to: other(leg),
                    });
                }
                let Some(url) = url else {
                    return;
                };
                let mut params = json!({"kind": "utterance", "direction": leg_name(leg),
                    "lang": lang, "to_lang": to_lang, "text": text, "final": true,
                    "call_id": ident.call_id, "node_id": ident.node_id});
                match translated {
                    Ok(t) => params["translated_text"] = json!(t),
                    Err(e) => {
                        warn!(error = %e, "live translation: not translated");
                        params["translated_text"] = serde_json::Value::Null;
                        params["error"] = json!(e);
                    }
                }
                let event = ident.envelope("calling.call.live_translate", crate::now_ms(), params);
                node.notify(ident.call_id, &url, &event).await;
            }
            .in_current_span(),
        );
    }

    /// Who hears what is said to the local side: the call this one is bridged to (a
    /// `connect`, a queue's agent), or the others in its conference.
    fn local_listeners(&self) -> Vec<uuid::Uuid> {
        match self.bridged_peer() {
            Some(peer) => vec![peer],
            None => self.conference_others(),
        }
    }

    /// A translation (of an utterance, or an injected message) said to `to`: the remote
    /// caller on this call; the local side is the call this one is bridged to, or the others
    /// in its conference (else nobody: a plain call's local side is dialtone).
    pub(crate) async fn say_translation(&mut self, text: String, language: String, to: CallerLeg) {
        let Some(t) = self.live.as_mut().and_then(|l| l.translation.as_mut()) else {
            return;
        };
        if text.trim().is_empty() {
            return;
        }
        if to == CallerLeg::RemoteCaller {
            t.quiet_until = t.quiet_until.max(crate::now_ms()) + speaking_ms(&text);
        }
        let item = MediaItem::Tts(TtsItem {
            text,
            language: Some(language),
            gender: None,
            voice: None,
        });
        let play = PlayParams::new(format!("translate-{}", uuid::Uuid::new_v4()), vec![item]);
        match to {
            CallerLeg::RemoteCaller => {
                let origin = Origin::Script { wait_final: false };
                if let Err(e) = self.op_command(CallCommand::Play(play), origin).await {
                    warn!(error = %e, "live translation: a translation could not be spoken");
                }
            }
            CallerLeg::LocalCaller => {
                let listeners = self.local_listeners();
                if listeners.is_empty() {
                    tracing::debug!("live translation: no bridged party to speak to");
                }
                for peer in listeners {
                    // Each plays it as a command of its own (its answer is not awaited: it
                    // tells its own status URL how the playback went); in a conference each
                    // participant's playback reaches only its own far end.
                    let mut play = play.clone();
                    play.control_id = format!("translate-{}", uuid::Uuid::new_v4());
                    let (reply, _) = tokio::sync::oneshot::channel();
                    let sent = self.node.tell(
                        peer,
                        crate::actor::ActorMsg::Command {
                            command: Box::new(CallCommand::Play(play)),
                            reply,
                        },
                    );
                    if !sent {
                        warn!(%peer, "live translation: the bridged call is gone");
                    }
                }
            }
        }
    }
}
