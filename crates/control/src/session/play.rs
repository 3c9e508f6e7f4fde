//! Playbacks: prepared off the media path, queued on the call's player, controlled by
//! `control_id`, reported as `calling.call.play` events.

use super::ops::{Op, PlayOp};
use super::{
    Action, CallEvent, CallSession, OpResult, Origin, PlayState, PlaybackId, PlayerEvent, PlayerOp,
};
use crate::command::PlayParams;
use crate::service::ControlError;

impl CallSession {
    pub(super) fn start_play(
        &mut self,
        params: PlayParams,
        origin: Origin,
        prompt_of: Option<String>,
    ) -> Result<PlaybackId, ControlError> {
        let id = self.next_playback + 1;
        let op = PlayOp {
            control_id: params.control_id.clone(),
            id,
            status_url: params.status_url.clone(),
            origin,
            volume_db: params.volume,
            loops: params.loops,
            on_player: false,
            stop_requested: false,
            prompt_of,
        };
        self.ops.insert(params.control_id.clone(), Op::Play(op))?;
        self.next_playback = id;
        self.actions.push_back(Action::PreparePlay { id, params });
        Ok(id)
    }

    pub(super) fn control_play(
        &mut self,
        control_id: &str,
        op: PlayerOp,
    ) -> Result<(), ControlError> {
        let play = self.ops.play_mut(control_id)?;
        if let PlayerOp::Volume(db) = op {
            play.volume_db = db;
        }
        let id = play.id;
        match op {
            // Not on the player yet: it stops once its audio is ready.
            PlayerOp::Stop if !play.on_player => play.stop_requested = true,
            // Pause/resume/volume before it plays apply to what is queued (volume is kept).
            _ if !play.on_player => {}
            _ => self.actions.push_back(Action::PlayControl { id, op }),
        }
        Ok(())
    }

    pub(super) fn on_play_ready(&mut self, now: u64, id: PlaybackId, result: Result<(), String>) {
        let Some(play) = self.ops.play_by_id(id) else {
            return;
        };
        let control_id = play.control_id.clone();
        match result {
            Ok(()) if play.stop_requested => {
                self.on_player_event(now, PlayerEvent::Stopped(id));
            }
            Ok(()) => {
                let (volume_db, loops) = (play.volume_db, play.loops);
                if let Ok(play) = self.ops.play_mut(&control_id) {
                    play.on_player = true;
                }
                self.actions.push_back(Action::QueuePlay {
                    id,
                    volume_db,
                    loops,
                });
            }
            Err(message) => self.on_player_event(now, PlayerEvent::Error { id, message }),
        }
    }

    pub(super) fn on_player_event(&mut self, now: u64, event: PlayerEvent) {
        let (id, state, error) = match event {
            PlayerEvent::Playing(id) | PlayerEvent::Resumed(id) => (id, PlayState::Playing, None),
            PlayerEvent::Paused(id) => (id, PlayState::Paused, None),
            PlayerEvent::Finished(id) | PlayerEvent::Stopped(id) => (id, PlayState::Finished, None),
            PlayerEvent::Error { id, message } => (id, PlayState::Error, Some(message)),
        };
        let Some(play) = self.ops.play_by_id(id).cloned() else {
            return;
        };
        self.emit(CallEvent::Play {
            control_id: play.control_id.clone(),
            status_url: play.status_url.clone(),
            state,
        });
        if !matches!(state, PlayState::Finished | PlayState::Error) {
            return;
        }
        self.ops.remove(&play.control_id);
        if play.origin.script_waits() {
            let result = match error {
                None => Ok(()),
                Some(message) => Err(message),
            };
            self.script_done(&play.control_id, OpResult::Played(result));
        }
        // A prompt's playback ended: its collect's input timers start now.
        if let Some(collect) = play.prompt_of {
            if let Ok(c) = self.ops.collect_mut(&collect) {
                c.prompt_play = None;
                if c.deadline.is_none() {
                    c.deadline = Some(now + c.initial_timeout_ms);
                }
            }
        }
    }
}
