//! Call queues on a real call: SWML `enter_queue` (the caller waits, hearing hold audio) and the
//! agent's side, `connect` to `queue:<name>` (crate::actor::connect), which takes the
//! longest-waiting caller, moves its own media to the caller's shard and bridges the two. Who
//! waits where is the node's [`control::queue::Queues`].

use std::time::Duration;

use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use control::queue::{Left, QueueStatus, Waiting};
use control::EndReason;
use swml::{Completion, QueueOutcome, QueuePlan};

use crate::actor::bridge::PeerEvent;
use crate::actor::script::ScriptWait;
use crate::actor::{ActorMsg, CallActor};
use crate::now_ms;
use crate::shard::ShardCommand;

/// A caller in a queue.
pub(crate) struct Queued {
    plan: QueuePlan,
    control_id: String,
    entered_ms: u64,
    entry: QueueStatus,
    /// The hold audio while waiting.
    wait_play: Option<String>,
    /// The agent bridged to this caller, once taken, and when.
    agent: Option<Uuid>,
    dequeued_ms: Option<u64>,
}

impl CallActor {
    /// SWML `enter_queue`: answer if need be, join the line, play the hold audio; the script
    /// waits for [`Completion::Queue`].
    pub(crate) async fn start_enter_queue(&mut self, plan: QueuePlan) {
        self.script_wait = Some(ScriptWait::Queue);
        if self.inbound_unanswered() {
            if let Err(e) = self.answer_inbound().await {
                warn!(error = %e, "enter_queue: could not answer the caller");
            }
        }
        let now = now_ms();
        let waiting = Waiting {
            call_id: self.ident.call_id,
            media_key: self.media_key,
            since_ms: now,
        };
        let entered = self.with_queues(|q| q.enter(&plan.queue_name, waiting));
        let entry = match entered {
            Some(Ok(status)) => status,
            Some(Err(e)) => return self.queue_failed(e.to_string()).await,
            None => {
                return self
                    .queue_failed("the queue registry is unusable".into())
                    .await
            }
        };
        info!(queue = %plan.queue_name, position = entry.position, size = entry.size, "entered the queue");
        let control_id = format!("queue-{}", Uuid::new_v4());
        // No hold music is bundled: without wait audio the caller hears a ring.
        let wait_play = self
            .start_looped_play(format!("{control_id}-wait"), plan.wait_audio.clone())
            .await;
        let secs = plan.wait_time_secs;
        self.queued = Some(Box::new(Queued {
            plan,
            control_id,
            entered_ms: now,
            entry,
            wait_play,
            agent: None,
            dequeued_ms: None,
        }));
        self.queue_event("enqueue", entry).await;
        let (node, me) = (self.node.clone(), self.ident.call_id);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            node.tell(me, ActorMsg::QueueTimeout);
        });
    }

    async fn queue_failed(&mut self, message: String) {
        warn!(%message, "enter_queue failed");
        self.complete_queue(QueueOutcome {
            result: "failed".into(),
            wait_time: -1,
            entry_position: -1,
            entry_size: -1,
        })
        .await;
    }

    /// `wait_time` ran out: the caller leaves the line, unless an agent took it meanwhile.
    pub(crate) async fn queue_timeout(&mut self) {
        let Some(q) = self.queued.as_ref() else {
            return;
        };
        if q.agent.is_some() {
            return;
        }
        let me = self.ident.call_id;
        if let Some(Left::TakenBy(_)) = self.with_queues(|r| r.leave(me)) {
            // The agent's news is on its way: the bridge wins over the timeout.
            self.with_queues(|r| r.settle(me));
            return;
        }
        info!("queue wait_time is over");
        self.finish_queue("timeout").await;
    }

    /// News from the agent of this queued caller; false when it is not about one.
    pub(crate) async fn queue_peer_event(&mut self, ev: &PeerEvent) -> bool {
        let Some(q) = self.queued.as_mut() else {
            return false;
        };
        match *ev {
            PeerEvent::QueueBridged { agent } if q.agent.is_none() => {
                q.agent = Some(agent);
                q.dequeued_ms = Some(now_ms());
                let wait_play = q.wait_play.take();
                let me = self.ident.call_id;
                self.with_queues(|r| r.settle(me));
                self.stop_play(wait_play).await;
                info!(%agent, "an agent took the call from the queue");
                let status = self.queue_status();
                self.queue_event("dequeue", status).await;
                true
            }
            PeerEvent::Ended { call_id, .. } | PeerEvent::Disconnected { call_id }
                if q.agent == Some(call_id) =>
            {
                info!(agent = %call_id, "the agent's bridge ended; the script goes on");
                self.finish_queue("connected").await;
                true
            }
            _ => false,
        }
    }

    /// Runs `f` on the node's queues (`None` only if a thread panicked holding them).
    fn with_queues<T>(&self, f: impl FnOnce(&mut control::queue::Queues) -> T) -> Option<T> {
        self.node.queues.lock().ok().map(|mut q| f(&mut q))
    }

    fn queue_status(&self) -> QueueStatus {
        let me = self.ident.call_id;
        self.queued
            .as_ref()
            .and_then(|q| self.with_queues(|r| r.status_of(&q.plan.queue_name, me)))
            .unwrap_or(QueueStatus {
                queue_id: Uuid::nil(),
                position: 0,
                size: 0,
                avg_time_secs: 0,
            })
    }

    /// The wait is over (`connected` after a bridge, `timeout`, `hangup`).
    async fn finish_queue(&mut self, result: &str) {
        if result != "connected" {
            if let Some(q) = self.queued.as_ref() {
                let status = self.queue_status_of(q);
                self.queue_event("leave", status).await;
            }
        }
        let Some(q) = self.queued.take() else {
            return;
        };
        self.stop_play(q.wait_play.clone()).await;
        self.complete_queue(outcome_of(&q, result)).await;
    }

    fn queue_status_of(&self, q: &Queued) -> QueueStatus {
        let me = self.ident.call_id;
        self.with_queues(|r| QueueStatus {
            position: 0,
            ..r.status_of(&q.plan.queue_name, me)
        })
        .unwrap_or(q.entry)
    }

    async fn complete_queue(&mut self, outcome: QueueOutcome) {
        if self.script_wait == Some(ScriptWait::Queue) {
            Box::pin(self.complete_script(Completion::Queue(outcome))).await;
        }
    }

    /// The caller's call ended: out of the line, and its agent (if any) is told.
    pub(crate) fn end_queue(&mut self) {
        let Some(q) = self.queued.take() else {
            return;
        };
        let me = self.ident.call_id;
        let agent = match self.with_queues(|r| r.leave(me)) {
            Some(Left::TakenBy(agent)) => Some(agent),
            _ => q.agent,
        };
        if let Some(agent) = agent {
            self.node.tell(
                agent,
                ActorMsg::Peer(PeerEvent::Ended {
                    call_id: self.ident.call_id,
                    end_reason: self.end_reason.unwrap_or(EndReason::Hangup),
                }),
            );
        }
    }

    /// `calling.disconnect` on a caller an agent took: the bridge comes apart, the agent's
    /// script and this one go on. False when this call is not such a caller.
    pub(crate) async fn queue_disconnect(&mut self) -> bool {
        let Some(agent) = self.queue_agent() else {
            return false;
        };
        self.node.tell(
            agent,
            ActorMsg::Peer(PeerEvent::Disconnected {
                call_id: self.ident.call_id,
            }),
        );
        self.node.media.send(
            self.media_key,
            ShardCommand::Unbridge {
                call_id: self.ident.call_id,
            },
        );
        self.finish_queue("connected").await;
        true
    }

    /// The agent that took this caller from its queue and is bridged to it, if any.
    pub(crate) fn queue_agent(&self) -> Option<Uuid> {
        self.queued.as_ref().and_then(|q| q.agent)
    }

    /// The agent's side: take the longest-waiting caller of `name` and bridge to it. The
    /// caller's id, or why there is none.
    pub(crate) async fn take_from_queue(&mut self, name: &str) -> Result<Uuid, &'static str> {
        let me = self.ident.call_id;
        let taken = self.with_queues(|r| r.take(name, me, now_ms())).flatten();
        let Some(caller) = taken else {
            info!(queue = %name, "connect: nobody waits in the queue");
            return Err("no_answer");
        };
        if !self.move_media_to(caller.media_key).await {
            return Err("error");
        }
        let told = self.node.tell(
            caller.call_id,
            ActorMsg::Peer(PeerEvent::QueueBridged { agent: me }),
        );
        if !told {
            return Err("error");
        }
        self.bridge_media(caller.call_id);
        info!(queue = %name, caller = %caller.call_id, "connect: took a caller from the queue");
        Ok(caller.call_id)
    }

    /// A `calling.call.queue` event to the queue's `status_url`.
    async fn queue_event(&self, status: &str, s: QueueStatus) {
        let Some(q) = self.queued.as_ref() else {
            return;
        };
        let Some(url) = q.plan.status_url.clone() else {
            return;
        };
        let now = now_ms();
        let mut params = json!({
            "status": status,
            "id": s.queue_id,
            "name": q.plan.queue_name,
            "position": s.position,
            "size": s.size,
            "avg_time": s.avg_time_secs,
            "enqueue_ts": q.entered_ms * 1000,
            "control_id": q.control_id,
            "call_id": self.ident.call_id,
            "node_id": self.ident.node_id,
        });
        match status {
            "dequeue" => params["dequeue_ts"] = json!(now * 1000),
            "leave" => params["leave_ts"] = json!(now * 1000),
            _ => {}
        }
        let event = self.ident.envelope("calling.call.queue", now, params);
        self.node.notify(self.ident.call_id, &url, &event).await;
    }
}

fn outcome_of(q: &Queued, result: &str) -> QueueOutcome {
    QueueOutcome {
        result: result.into(),
        wait_time: (q
            .dequeued_ms
            .unwrap_or_else(now_ms)
            .saturating_sub(q.entered_ms)
            / 1000) as i64,
        entry_position: q.entry.position as i64,
        entry_size: q.entry.size as i64,
    }
}
