//! The `ai` agent's model turns (the agent itself is swml::methods::ai): an
//! [`swml::ModelRequest`] goes to the configured OpenAI-compatible backend (llm), its whole
//! answer comes back as [`swml::Completion::Model`]. When the agent asks
//! ([`swml::SpeakPlan`]), the answer is spoken as it streams: at its first words a playback
//! starts whose speech is synthesised sentence by sentence from the text still arriving.

use std::sync::Arc;

use control::command::AiMessageParams;
use control::session::Origin;
use control::{CallCommand, ControlError};
use tracing::{info, warn, Instrument};

use tokio::sync::mpsc;

use crate::actor::script::ScriptWait;
use crate::actor::{CallActor, TaskDone};

/// The media key of the agent's background audio.
const AI_BACKGROUND_KEY: &str = "ai-background";

fn no_agent() -> ControlError {
    ControlError::invalid_state("invalid_state", "no AI agent is running on this call")
}

/// What the caller's agent is told when no backend is configured.
const NO_BACKEND: &str = "no AI model backend is configured (ai_base_url)";

/// The chat request of a model turn.
pub(crate) fn chat_request(req: swml::ModelRequest) -> Result<llm::ChatRequest, String> {
    let messages = req
        .messages
        .into_iter()
        .map(serde_json::from_value::<llm::Message>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a conversation message does not fit the model API: {e}"))?;
    let tools = req
        .tools
        .iter()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some(llm::Tool::function(
                f.get("name")?.as_str()?,
                f.get("description").and_then(|d| d.as_str()).unwrap_or(""),
                f.get("parameters").cloned().unwrap_or_default(),
            ))
        })
        .collect();
    let mut chat = llm::ChatRequest::new(messages).with_tools(tools);
    chat.model = req.model;
    chat.temperature = req.temperature;
    chat.top_p = req.top_p;
    chat.max_tokens = req.max_tokens;
    Ok(chat)
}

async fn ask(
    backend: Option<Arc<dyn llm::ChatBackend>>,
    mut req: swml::ModelRequest,
    tasks: crate::actor::TaskSender,
) -> Result<swml::ModelReply, String> {
    let backend = backend.ok_or_else(|| NO_BACKEND.to_string())?;
    let mut plan = req.speak.take();
    let chat = chat_request(req)?;
    let started = std::time::Instant::now();
    let mut feed: Option<mpsc::UnboundedSender<String>> = None;
    let mut on_event = |event: llm::ChatEvent| {
        if let llm::ChatEvent::TextDelta(text) = event {
            if let Some(plan) = plan.take() {
                // The first words: the playback starts with them.
                let (tx, rx) = mpsc::unbounded_channel();
                if !plan.prefix.trim().is_empty() {
                    let _ = tx.send(format!("{} ", plan.prefix.trim()));
                }
                info!(
                    first_words_ms = started.elapsed().as_millis() as u64,
                    "ai answer spoken as it streams"
                );
                let _ = tasks.send(TaskDone::AiSpeak {
                    play: Box::new((plan.play, plan.collect)),
                    feed: rx,
                    pronounce: plan.pronounce,
                });
                feed = Some(tx);
            }
            if let Some(tx) = &feed {
                let _ = tx.send(text);
            }
        }
        llm::Flow::Continue
    };
    let done = backend.chat_stream(&chat, &mut on_event).await;
    // The speech ends with the answer (or with what came of it before a failure).
    let spoken = feed.take().is_some();
    let done = done.map_err(|e| e.to_string())?;
    info!(
        ms = started.elapsed().as_millis() as u64,
        tools = done.tool_calls.len(),
        chars = done.text.len(),
        spoken,
        "ai model answered"
    );
    Ok(swml::ModelReply {
        spoken,
        text: done.text,
        tool_calls: done
            .tool_calls
            .into_iter()
            .map(|t| swml::ModelToolCall {
                id: t.id,
                name: t.name,
                arguments: t.arguments,
            })
            .collect(),
    })
}

impl CallActor {
    /// `calling.ai.stop`: the agent ends (its report is sent) and the script goes on. A turn
    /// it is listening in is cut at once ([`CallActor::cut_ai_turn`]).
    pub(crate) async fn ai_stop(&mut self) -> Result<(), ControlError> {
        let run = self.script.as_mut().ok_or_else(no_agent)?;
        let listening = run.ai_stop().ok_or_else(no_agent)?;
        info!("ai agent stopped by calling.ai.stop");
        if let Some(ops) = listening {
            self.cut_ai_turn(ops, "stopped by calling.ai.stop").await;
        }
        // An answer being spoken while the model still writes stops now; the agent ends when
        // the model is done.
        if let Some(play) = self.ops.ai_speaking.take() {
            let stop =
                CallCommand::PlayStop(control::command::ControlIdParams { control_id: play });
            let _ = self.op_command(stop, Origin::Rest).await;
            self.drop_ai_listening().await;
        }
        Ok(())
    }

    /// The model's first words: they are spoken as the rest streams in, unless the agent no
    /// longer waits for this answer.
    pub(crate) async fn start_ai_speech(
        &mut self,
        plan: Box<(
            control::command::PlayParams,
            control::command::CollectParams,
        )>,
        feed: mpsc::UnboundedReceiver<String>,
        pronounce: Vec<swml::Pronounce>,
    ) {
        if self.script_wait != Some(ScriptWait::Model) {
            return;
        }
        let (mut play, collect) = *plan;
        let control_id = play.control_id.clone();
        self.ops
            .speech_feeds
            .insert(control_id.clone(), (feed, pronounce));
        // The items stand for the fed speech (crate::prepare::MediaPrep::prepare_fed).
        play.play = vec![control::command::MediaItem::Silence { duration: 0.0 }];
        let origin = Origin::Script { wait_final: false };
        if let Err(e) = self.op_command(CallCommand::Play(play), origin).await {
            self.ops.speech_feeds.remove(&control_id);
            warn!(error = %e, "the ai answer could not be spoken as it streams");
            return;
        }
        self.ops.ai_speaking = Some(control_id.clone());
        // The caller is heard from now on: talking over the answer stops it even while the
        // model still writes (the result waits for the turn, script.rs `script_listen`).
        let collect_id = collect.control_id.clone();
        let listening = self
            .ops
            .session
            .listen_after(crate::now_ms(), &control_id, collect);
        self.drain_ops().await;
        match listening {
            Ok(()) => self.ops.ai_listening = Some((collect_id, None)),
            Err(e) => warn!(error = %e, "the caller cannot be heard over the streaming answer"),
        }
    }

    /// The turn's collect started with a streamed answer, when the turn does not take it (the
    /// answer called functions, the agent stops or holds): stopped, its result dropped.
    pub(crate) async fn drop_ai_listening(&mut self) {
        if let Some((collect, _)) = self.ops.ai_listening.take() {
            let stop = CallCommand::CollectStop(control::command::ControlIdParams {
                control_id: collect,
            });
            let _ = self.op_command(stop, Origin::Rest).await;
        }
    }

    /// The model's whole answer.
    pub(crate) async fn on_model_answer(&mut self, result: Result<swml::ModelReply, String>) {
        if self.script_wait != Some(ScriptWait::Model) {
            return;
        }
        let speaking = self.ops.ai_speaking.take();
        let result = result.map(|mut reply| {
            // Spoken only if its playback started.
            reply.spoken &= speaking.is_some();
            reply
        });
        self.complete_script(swml::Completion::Model(result)).await;
        // A turn that listens has taken the early collect by now (script_listen).
        self.drop_ai_listening().await;
    }

    /// `calling.ai_message`: a message for the agent (a `user` one is answered at once, the
    /// turn it listens in cut), `global_data` merged, `reset` applied.
    pub(crate) async fn ai_message(&mut self, p: AiMessageParams) -> Result<(), ControlError> {
        let role = match p.role() {
            control::command::AiRole::System => "system",
            control::command::AiRole::User => "user",
            control::command::AiRole::Assistant => "assistant",
        };
        let reset = p.reset.clone();
        let message = swml::AiMessage {
            role: role.to_string(),
            text: p.message_text,
            global_data: p.global_data,
            full_reset: reset.as_ref().and_then(|r| r.full_reset).unwrap_or(false),
            system_prompt: reset.as_ref().and_then(|r| r.system_prompt.clone()),
            user_prompt: reset.and_then(|r| r.user_prompt),
        };
        let run = self.script.as_mut().ok_or_else(no_agent)?;
        if let Some(ops) = run.ai_message(message).ok_or_else(no_agent)? {
            self.cut_ai_turn(ops, "answering calling.ai_message").await;
        }
        Ok(())
    }

    /// `calling.ai_hold`: the agent announces the hold (a turn it listens in is cut) and hold
    /// music plays for `timeout` seconds or until `calling.ai_unhold`.
    pub(crate) async fn ai_hold(
        &mut self,
        timeout: u32,
        prompt: Option<String>,
    ) -> Result<(), ControlError> {
        let run = self.script.as_mut().ok_or_else(no_agent)?;
        if let Some(ops) = run.ai_hold(timeout, prompt).ok_or_else(no_agent)? {
            self.cut_ai_turn(ops, "put on hold by calling.ai_hold")
                .await;
        }
        Ok(())
    }

    /// `calling.ai_unhold`: the hold music stops and the agent resumes.
    pub(crate) async fn ai_unhold(&mut self, prompt: Option<String>) -> Result<(), ControlError> {
        let run = self.script.as_mut().ok_or_else(no_agent)?;
        if let Some(play) = run.ai_unhold(prompt).ok_or_else(no_agent)? {
            // Its end completes the hold (the script waits on that playback).
            let stop =
                CallCommand::PlayStop(control::command::ControlIdParams { control_id: play });
            let _ = self.op_command(stop, Origin::Rest).await;
        }
        Ok(())
    }

    /// Ends the agent's listening turn now: its playback and collect are stopped and the
    /// step's wait is completed here (a stopped collect reports nothing itself).
    async fn cut_ai_turn(&mut self, ops: swml::AiTurnOps, why: &str) {
        for stop in [
            CallCommand::CollectStop(control::command::ControlIdParams {
                control_id: ops.collect,
            }),
            CallCommand::PlayStop(control::command::ControlIdParams {
                control_id: ops.play,
            }),
        ] {
            // Either may be over already (a playback that ended, a collect that answered).
            let _ = self.op_command(stop, Origin::Rest).await;
        }
        self.complete_script(swml::Completion::Failed {
            message: why.to_string(),
        })
        .await;
    }

    /// The agent's background audio (`background_file`, `playback_bg`): fetched and decoded
    /// on a task, then mixed under what the call sends; `None` stops it.
    pub(crate) fn ai_background(&mut self, audio: Option<swml::BackgroundAudio>) {
        self.ops.ai_background += 1;
        let serial = self.ops.ai_background;
        let Some(audio) = audio else {
            return self.set_ai_background(None);
        };
        let prep = self.node.prep.clone();
        let rate = self.pcm_rate();
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let clip = prep.clip(&audio.url, rate).await.map(|pcm| (pcm, audio));
                let _ = tx.send(TaskDone::AiBackground { serial, clip });
            }
            .in_current_span(),
        );
    }

    pub(crate) fn ai_background_ready(
        &mut self,
        serial: u64,
        clip: Result<(Arc<[i16]>, swml::BackgroundAudio), String>,
    ) {
        if serial != self.ops.ai_background {
            return;
        }
        match clip {
            Ok((pcm, audio)) => {
                info!(url = %audio.url, loops = audio.loops, "background audio plays");
                let clip = media::background::LoopedClip::new(pcm, audio.volume_db, audio.loops);
                self.set_ai_background(Some(Box::new(clip)));
            }
            Err(e) => warn!(error = %e, "the agent's background audio could not be had"),
        }
    }

    fn set_ai_background(&mut self, source: Option<Box<dyn media::fork::FrameSource>>) {
        if !self.media_running {
            return;
        }
        self.node.media.send(
            self.media_key,
            crate::shard::ShardCommand::SetSource {
                call_id: self.ident.call_id,
                key: AI_BACKGROUND_KEY.to_string(),
                source,
            },
        );
    }

    /// A model turn of the call's `ai` step, on a task of its own.
    pub(crate) async fn script_model(&mut self, mut req: swml::ModelRequest) {
        if let Some(filler) = req.filler.take() {
            // Said while the model thinks; the answer's playback queues after it.
            let origin = Origin::Script { wait_final: false };
            if let Err(e) = self.op_command(CallCommand::Play(*filler), origin).await {
                tracing::debug!(error = %e, "a speech filler could not be played");
            }
        }
        self.script_wait = Some(ScriptWait::Model);
        let backend = self.node.model.clone();
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let result = ask(backend, req, tx.clone()).await;
                if let Err(e) = &result {
                    warn!(error = %e, "ai model turn failed");
                }
                let _ = tx.send(TaskDone::Model(result));
            }
            .in_current_span(),
        );
    }
}
