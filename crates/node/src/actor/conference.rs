//! SWML `join_conference` on a real call: the node's [`control::conference::Conferences`] say
//! who is in which conference and whether it started; every participant's media moves to the
//! conference's shard, whose mixer (`media::conference`) sends each the others' audio. A
//! participant waiting for the start hears `wait_url`; one with `end_on_exit` ends it for all.

use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use swml::{Completion, ConferencePlan};

use crate::actor::script::ScriptWait;
use crate::actor::{ActorMsg, CallActor};
use crate::now_ms;
use crate::shard::ShardCommand;

/// This call in a conference.
pub(crate) struct Participant {
    plan: ConferencePlan,
    conference_id: Uuid,
    /// The wait audio while the conference has not started.
    wait_play: Option<String>,
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
        let joined = self
            .node
            .conferences
            .lock()
            .ok()
            .map(|mut c| c.join(&plan.name, me, plan.start_on_enter, plan.max_participants));
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
            self.node
                .conferences
                .lock()
                .ok()
                .map(|mut c| c.leave(&plan.name, me, false));
            return self
                .conference_done_with("media could not move".into(), "failed")
                .await;
        }
        info!(conference = %plan.name, started = joined.started, "joined the conference");
        self.participant = Some(Participant {
            plan,
            conference_id: joined.conference_id,
            wait_play: None,
        });
        if joined.created {
            self.conference_event("conference-create").await;
        }
        self.conference_event("participant-join").await;
        if joined.started {
            if !joined.woken.is_empty() {
                self.conference_event("conference-start").await;
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

    /// Into the conference's mix (coaching if the plan says so).
    pub(crate) fn mix_in(&mut self) {
        if !self.media_running {
            // Answered, its ACK still due: once the media runs.
            self.pending_mix = true;
            return;
        }
        let Some(p) = self.participant.as_ref() else {
            return;
        };
        let (conference, muted) = (p.conference_id, p.plan.muted);
        let coach = p
            .plan
            .coach
            .as_deref()
            .and_then(|c| Uuid::parse_str(c).ok());
        let call_id = self.ident.call_id;
        self.node.media.send(
            self.media_key,
            ShardCommand::ConferenceJoin {
                conference,
                call_id,
                muted,
            },
        );
        if let Some(target) = coach {
            self.node.media.send(
                self.media_key,
                ShardCommand::ConferenceCoach { call_id, target },
            );
        }
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
        self.stop_conference_wait().await;
        self.node.media.send(
            self.media_key,
            ShardCommand::ConferenceLeave {
                call_id: self.ident.call_id,
            },
        );
        self.conference_event("participant-leave").await;
        self.participant = None;
        info!("the conference ended; the script goes on");
        if self.script_wait == Some(ScriptWait::Conference) {
            Box::pin(self.complete_script(Completion::Conference("completed".into()))).await;
        }
    }

    /// This call ended: out of its conference, which ends for everyone with `end_on_exit` or
    /// when it was the last one in.
    pub(crate) async fn leave_conference(&mut self) {
        let Some(p) = self.participant.as_ref() else {
            return;
        };
        let (name, end) = (p.plan.name.clone(), p.plan.end_on_exit);
        let me = self.ident.call_id;
        let left = self
            .node
            .conferences
            .lock()
            .ok()
            .map(|mut c| c.leave(&name, me, end));
        self.conference_event("participant-leave").await;
        if let Some((rest, ended)) = left {
            if ended {
                self.conference_event("conference-end").await;
            }
            for other in rest {
                self.node.tell(other, ActorMsg::ConferenceEnded);
            }
        }
        self.participant = None;
    }

    /// A `calling.conference` event to the participant's `status_callback`.
    async fn conference_event(&self, status: &str) {
        let Some(p) = self.participant.as_ref() else {
            return;
        };
        let Some(url) = p.plan.status_callback.clone() else {
            return;
        };
        let params = json!({
            "status": status,
            "conference_id": p.conference_id,
            "name": p.plan.name,
            "call_id": self.ident.call_id,
            "node_id": self.ident.node_id,
            "muted": p.plan.muted,
        });
        let event = self.ident.envelope("calling.conference", now_ms(), params);
        self.node.notify(self.ident.call_id, &url, &event).await;
    }
}
