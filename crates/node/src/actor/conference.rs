//! SWML `join_conference` on a real call: the node's [`control::conference::Conferences`] say
//! who is in which conference and whether it started; every participant's media moves to the
//! conference's shard, whose mixer (`media::conference`) sends each the others' audio. A
//! participant waiting for the start hears `wait_url`; one with `end_on_exit` ends it for all.
//! `beep` is the mixer's; `record: record-from-start` records the mix of everyone through the
//! node's recorder thread (one recording per conference, started by the participant whose
//! join makes the conference run with a recording asked for, stopped when it ends). Operators
//! mute, unmute and kick participants through the node (lib.rs), which tells their actors.

use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use control::conference::{Entry, RecordRequest, Recording};
use swml::{Completion, ConferencePlan};

use crate::actor::script::ScriptWait;
use crate::actor::{ActorMsg, CallActor};
use crate::now_ms;
use crate::shard::ShardCommand;
use record::writer::{ConferenceOf, RecorderInput, RecordingMeta};

/// This call in a conference.
pub(crate) struct Participant {
    plan: ConferencePlan,
    conference_id: Uuid,
    /// The wait audio while the conference has not started.
    wait_play: Option<String>,
    /// Muted now (the plan's `muted`, then what an operator said).
    muted: bool,
    /// Its join was sent to the mixer.
    mixed: bool,
    /// The conference's recording, to start once this call is in the mix.
    record: Option<Recording>,
}

impl CallActor {
    /// Joins the plan's conference; the script waits for [`Completion::Conference`].
    pub(crate) async fn start_join_conference(&mut self, plan: ConferencePlan) {
        self.script_wait = Some(ScriptWait::Conference);
        if self.inbound_unanswered() {
            if let Err(e) = self.answer_inbound().await {
                warn!(error = %e, "join_conference: could not answer the caller");
            }
        }
        let me = self.ident.call_id;
        let entry = Entry {
            call_id: me,
            start_on_enter: plan.start_on_enter,
            max_participants: plan.max_participants,
            muted: plan.muted,
            coach: plan.coach.as_deref().and_then(|c| Uuid::parse_str(c).ok()),
            record: plan.record.then(|| RecordRequest {
                call_id: me,
                status_callback: plan.status_callback.clone(),
            }),
        };
        let joined = self
            .node
            .conferences
            .lock()
            .ok()
            .map(|mut c| c.join(&plan.name, entry));
        let joined = match joined {
            Some(Ok(j)) => j,
            Some(Err(e)) => return self.conference_done_with(e.to_string(), "failed").await,
            None => {
                return self
                    .conference_done_with("registry unusable".into(), "failed")
                    .await
            }
        };
        if !self.move_media_to(joined.conference_id).await {
            if let Ok(mut c) = self.node.conferences.lock() {
                // A recording it was to start is left to the next participant.
                if let Some(rec) = joined.record.as_ref() {
                    c.recording_not_started(&plan.name, rec.rec_id);
                }
                c.leave(&plan.name, me, false);
            }
            return self
                .conference_done_with("media could not move".into(), "failed")
                .await;
        }
        info!(conference = %plan.name, started = joined.started, "joined the conference");
        self.participant = Some(Box::new(Participant {
            muted: plan.muted,
            plan,
            conference_id: joined.conference_id,
            wait_play: None,
            mixed: false,
            record: joined.record,
        }));
        if joined.created {
            self.conference_event("conference-create", json!({})).await;
        }
        self.conference_event("participant-join", json!({})).await;
        if joined.started {
            if joined.started_now {
                self.conference_event("conference-start", json!({})).await;
            }
            for other in joined.woken {
                self.node.tell(other, ActorMsg::ConferenceStarted);
            }
            self.mix_in();
        } else {
            self.play_conference_wait().await;
        }
    }

    async fn conference_done_with(&mut self, why: String, result: &str) {
        warn!(%why, "join_conference failed");
        if self.script_wait == Some(ScriptWait::Conference) {
            Box::pin(self.complete_script(Completion::Conference(result.into()))).await;
        }
    }

    /// Into the conference's mix (coaching if the plan says so), and its recording if this
    /// call starts it.
    pub(crate) fn mix_in(&mut self) {
        if !self.media_running {
            // Answered, its ACK still due: once the media runs.
            self.pending_mix = true;
            return;
        }
        let Some(p) = self.participant.as_mut() else {
            return;
        };
        p.mixed = true;
        let (conference, muted) = (p.conference_id, p.muted);
        let beep = media::conference::Beeps {
            on_enter: p.plan.beep_on_enter,
            on_exit: p.plan.beep_on_exit,
        };
        let coach = p
            .plan
            .coach
            .as_deref()
            .and_then(|c| Uuid::parse_str(c).ok());
        let record = p.record.take();
        let call_id = self.ident.call_id;
        self.node.media.send(
            self.media_key,
            ShardCommand::ConferenceJoin {
                conference,
                call_id,
                muted,
                beep,
            },
        );
        if let Some(target) = coach {
            self.node.media.send(
                self.media_key,
                ShardCommand::ConferenceCoach { call_id, target },
            );
        }
        if let Some(rec) = record {
            self.start_conference_recording(rec);
        }
    }

    /// `record-from-start`: the mix of everyone (16 kHz mono MP3, like a call's default
    /// recording) to the recorder thread, stored and served like a call's recordings; a
    /// `record-start` event to the status_callback of the participant who asked for it. Not
    /// async (a deferred mix starts it from `start_media`): the row and the event are written
    /// by a task.
    fn start_conference_recording(&mut self, rec: Recording) {
        let Some(p) = self.participant.as_ref() else {
            return;
        };
        let (conference_id, name) = (p.conference_id, p.plan.name.clone());
        let format = record::Format::Mp3;
        let project_id = self.ident.project_id;
        let rec_id = rec.rec_id;
        let path = self.node.storage.path(project_id, rec_id, format);
        let url = format!(
            "{}/api/calling/recordings/{rec_id}.{}",
            self.node.cfg.public_url.trim_end_matches('/'),
            format.extension()
        );
        let meta = RecordingMeta {
            transcript: None,
            control_id: format!("conference-{conference_id}"),
            status_url: rec.request.status_callback.clone(),
            url: url.clone(),
            format: format.extension().into(),
            audio: json!({"format": format.extension(), "direction": "both", "stereo": false}),
            started_ms: now_ms(),
            project_id,
            conference: Some(ConferenceOf {
                conference_id,
                name,
                call_id: rec.request.call_id,
            }),
        };
        let open = store::OpenRecording {
            id: rec_id,
            call_id: conference_id,
            project_id,
            control_id: meta.control_id.clone(),
            status_url: meta.status_url.clone(),
            url: url.clone(),
            format: meta.format.clone(),
            audio: meta.audio.to_string(),
            path: path.to_string_lossy().into_owned(),
            started_at_ms: meta.started_ms as i64,
        };
        self.node.cfg.metrics.recordings_active.inc();
        // Frames come keyed by the conference's id (the tap's "call").
        self.node.recorder.send(RecorderInput::Start(Box::new(
            record::writer::StartRecording {
                rec_id,
                call_id: conference_id,
                path,
                format,
                opts: record::RecordingOptions {
                    sample_rate: 16_000,
                    channels: record::Channels::Mono,
                    direction: record::Direction::Listen,
                },
                limits: record::Limits {
                    max_length_ms: None,
                    initial_timeout_ms: None,
                    end_silence_ms: None,
                    sensitivity: 50,
                    vad_on_heard: true,
                },
                meta,
            },
        )));
        self.node.media.send(
            self.media_key,
            ShardCommand::ConferenceRecord {
                conference: conference_id,
                tap: Some(Box::new(crate::media_leg::RecorderTap {
                    handle: self.node.recorder.clone(),
                    call_id: conference_id,
                })),
            },
        );
        info!(%rec_id, "recording the conference");
        let extra = json!({"recording_id": rec_id, "url": url, "format": format.extension()});
        let event =
            rec.request.status_callback.as_ref().and_then(|url| {
                Some((url.clone(), self.conference_params("record-start", extra)?))
            });
        let (node, me) = (self.node.clone(), self.ident.call_id);
        let envelope = event.map(|(url, params)| {
            (
                url,
                self.ident.envelope("calling.conference", now_ms(), params),
            )
        });
        tokio::spawn(async move {
            if let Err(e) = node.store.recording_started(open).await {
                warn!(%rec_id, error = %e, "could not keep the conference recording's metadata");
            }
            if let Some((url, event)) = envelope {
                node.notify(me, &url, &event).await;
            }
        });
    }

    async fn play_conference_wait(&mut self) {
        let Some(items) = self.participant.as_ref().map(|p| p.plan.wait_audio.clone()) else {
            return;
        };
        let id = format!("conference-wait-{}", Uuid::new_v4());
        let started = self.start_looped_play(id, items).await;
        if let Some(p) = self.participant.as_mut() {
            p.wait_play = started;
        }
    }

    async fn stop_conference_wait(&mut self) {
        let wait_play = self.participant.as_mut().and_then(|p| p.wait_play.take());
        self.stop_play(wait_play).await;
    }

    /// Another participant started the conference: stop waiting, into the mix.
    pub(crate) async fn conference_started(&mut self) {
        if self.participant.is_none() {
            return;
        }
        self.stop_conference_wait().await;
        info!("the conference started");
        self.mix_in();
    }

    /// The conference ended (a participant with `end_on_exit` left): out of the mix, and the
    /// script goes on.
    pub(crate) async fn conference_ended(&mut self) {
        if self.participant.is_none() {
            return;
        }
        self.out_of_the_mix().await;
        self.conference_event("participant-leave", json!({})).await;
        self.participant = None;
        info!("the conference ended; the script goes on");
        if self.script_wait == Some(ScriptWait::Conference) {
            Box::pin(self.complete_script(Completion::Conference("completed".into()))).await;
        }
    }

    /// The call stops hearing the wait audio and leaves the mix.
    async fn out_of_the_mix(&mut self) {
        self.stop_conference_wait().await;
        self.node.media.send(
            self.media_key,
            ShardCommand::ConferenceLeave {
                call_id: self.ident.call_id,
            },
        );
    }

    /// An operator muted or unmuted this participant: into the mix (at once, or when it
    /// joins it), `participant-mute` / `participant-unmute` to its status_callback.
    pub(crate) async fn conference_mute(&mut self, muted: bool) {
        let Some(p) = self.participant.as_mut() else {
            return;
        };
        if p.muted == muted {
            return;
        }
        p.muted = muted;
        if p.mixed {
            self.node.media.send(
                self.media_key,
                ShardCommand::ConferenceMute {
                    call_id: self.ident.call_id,
                    muted,
                },
            );
        }
        info!(muted, "an operator changed this participant's mute");
        let status = if muted {
            "participant-mute"
        } else {
            "participant-unmute"
        };
        self.conference_event(status, json!({})).await;
    }

    /// An operator kicked this participant: it leaves the conference as if it had hung up
    /// (the others hear its exit beep; with `end_on_exit` the conference ends), the call
    /// stays up and its script goes on with `join_conference_result = completed`.
    pub(crate) async fn conference_kick(&mut self) {
        if self.participant.is_none() {
            return;
        }
        self.out_of_the_mix().await;
        info!("an operator took this call out of its conference; the script goes on");
        self.leave_conference().await;
        if self.script_wait == Some(ScriptWait::Conference) {
            Box::pin(self.complete_script(Completion::Conference("completed".into()))).await;
        }
    }

    /// The others in the conference this call is in (none when it is in none).
    pub(crate) fn conference_others(&self) -> Vec<Uuid> {
        let Some(p) = self.participant.as_ref() else {
            return Vec::new();
        };
        let me = self.ident.call_id;
        let everyone = self
            .node
            .conferences
            .lock()
            .map(|c| c.participants(&p.plan.name))
            .unwrap_or_default();
        everyone.into_iter().filter(|id| *id != me).collect()
    }

    /// This call leaves its conference (it ended, or it was kicked), which ends for everyone
    /// with `end_on_exit` or when it was the last one in; an ending conference's recording
    /// stops (its `record-stop` follows from the recorder, lib.rs).
    pub(crate) async fn leave_conference(&mut self) {
        let Some(p) = self.participant.as_ref() else {
            return;
        };
        let (name, end) = (p.plan.name.clone(), p.plan.end_on_exit);
        // A recording it was still to start (its media never ran) is left to the next one.
        let unstarted = p.record.as_ref().map(|r| r.rec_id);
        let me = self.ident.call_id;
        let left = self.node.conferences.lock().ok().map(|mut c| {
            if let Some(rec_id) = unstarted {
                c.recording_not_started(&name, rec_id);
            }
            c.leave(&name, me, end)
        });
        self.conference_event("participant-leave", json!({})).await;
        if let Some(left) = left {
            if let Some(rec) = left.recording {
                self.node
                    .recorder
                    .send(RecorderInput::Stop { rec_id: rec.rec_id });
            }
            if left.ended {
                self.conference_event("conference-end", json!({})).await;
            }
            for other in left.rest {
                self.node.tell(other, ActorMsg::ConferenceEnded);
            }
        }
        self.participant = None;
    }

    /// A `calling.conference` event to the participant's `status_callback`.
    async fn conference_event(&self, status: &str, extra: serde_json::Value) {
        let url = self
            .participant
            .as_ref()
            .and_then(|p| p.plan.status_callback.clone());
        self.conference_event_to(url.as_deref(), status, extra)
            .await;
    }

    /// A `calling.conference` event about this participant to `url`, `extra` merged into its
    /// params.
    async fn conference_event_to(&self, url: Option<&str>, status: &str, extra: serde_json::Value) {
        let (Some(url), Some(params)) = (url, self.conference_params(status, extra)) else {
            return;
        };
        let event = self.ident.envelope("calling.conference", now_ms(), params);
        self.node.notify(self.ident.call_id, url, &event).await;
    }

    /// The params of a `calling.conference` event about this participant.
    fn conference_params(
        &self,
        status: &str,
        extra: serde_json::Value,
    ) -> Option<serde_json::Value> {
        let p = self.participant.as_ref()?;
        let mut params = json!({
            "status": status,
            "conference_id": p.conference_id,
            "name": p.plan.name,
            "call_id": self.ident.call_id,
            "node_id": self.ident.node_id,
            "muted": p.muted,
        });
        if let (Some(params), serde_json::Value::Object(extra)) = (params.as_object_mut(), extra) {
            params.extend(extra);
        }
        Some(params)
    }
}
