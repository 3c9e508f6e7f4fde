//! T.38 on a fax call: a receiving fax offers it by re-INVITE (`m=image udptl t38`) before
//! its terminal starts, either side accepts the far end's offer while a fax is on the call,
//! a refusal leaves the fax on G.711. The side that offered T.38 offers the call's audio back
//! once its fax is over (the other side waits for that offer), so a flow that goes on after
//! the fax has its audio again.

use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{info, warn, Instrument};

use crate::actor::fax::FaxTask;
use crate::actor::{CallActor, TaskDone};
use crate::media_leg;
use crate::shard::ShardCommand;

/// How long a far end's T.38 offer that came before any fax waits for the flow to start one
/// (a receiving gateway offers T.38 as soon as it answers, while our `send_fax` may be a few
/// milliseconds away); then it is refused. Under the SIP adapter's 2 s for an answer.
const OFFER_WAITS_FOR_FAX: Duration = Duration::from_millis(1500);

/// The audio offer after our T.38 fax is tried again this often after a 491 (the far end's
/// fax ends a moment after ours), this long apart.
const AUDIO_BACK_RETRIES: usize = 3;
const AUDIO_BACK_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A far end's T.38 offer waiting for a fax to start ([`OFFER_WAITS_FOR_FAX`]).
pub(crate) struct WaitingOffer {
    offer: String,
    respond: oneshot::Sender<Result<String, u16>>,
    /// Which wait this is (a later offer replaces it, and its own timer counts).
    serial: u64,
}

/// How the call carries T.38 since the switch.
pub(crate) struct T38Mode {
    pub negotiated: sdp::T38Negotiated,
    /// We offered it (and so offer the audio back when the fax is over).
    pub we_offered: bool,
}

/// What dialtone offers and answers with.
pub(crate) fn our_params() -> sdp::T38Params {
    sdp::T38Params::default()
}

/// The terminal's settings for what the SDP exchange settled.
pub(crate) fn terminal_config(n: &sdp::T38Negotiated) -> fax::T38Config {
    fax::T38Config {
        version: n.params.version,
        max_bit_rate: n.params.max_bit_rate,
        local_tcf: n.params.rate_management == sdp::T38RateManagement::LocalTcf,
        max_datagram: n
            .params
            .max_datagram
            .map_or(rtp::udptl::MAX_IFP_LEN, |d| d as usize),
        fill_bit_removal: n.params.fill_bit_removal,
    }
}

impl CallActor {
    /// Whether a fax may move this call to T.38 now: allowed, a SIP call whose media runs in
    /// the clear (UDPTL has no SRTP).
    pub(crate) fn t38_possible(&self) -> bool {
        self.media_running && self.t38_allowed()
    }

    /// As [`CallActor::t38_possible`], the media running or not (an inbound call answered a
    /// moment ago runs it once the ACK comes).
    pub(crate) fn t38_allowed(&self) -> bool {
        let media = self.media.as_ref().or_else(|| {
            self.inbound
                .as_ref()
                .and_then(|i| i.answer.as_ref())
                .map(|(_, m)| m)
        });
        self.node.cfg.fax_t38
            && self.virtual_media.is_none()
            && media.is_some_and(|m| m.srtp.is_none())
            && self.sip_leg().is_some()
    }

    /// Offers T.38 for a receiving fax; its terminal starts once the far end answered
    /// ([`CallActor::on_t38_answer`]).
    pub(crate) fn offer_t38(&mut self, control_id: String, ready: FaxTask) {
        let (Some(leg), Some(local)) = (self.sip_leg(), self.local.as_mut()) else {
            let _ = self.tasks_tx.send(TaskDone::Fax {
                control_id,
                task: Box::new(ready),
            });
            return;
        };
        local.session_version += 1;
        let offer = sdp::build_t38_offer(local, &our_params());
        info!(%control_id, "offering T.38");
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let reply = leg.reoffer(offer.clone()).await.map_err(|e| e.to_string());
                let _ = tx.send(TaskDone::Fax {
                    control_id,
                    task: Box::new(FaxTask::T38Answer {
                        ready: Box::new(ready),
                        offer,
                        reply,
                    }),
                });
            }
            .in_current_span(),
        );
    }

    /// The far end's answer to our T.38 offer: the call moves to T.38, or the fax stays on
    /// G.711; then the fax's terminal starts.
    pub(crate) fn on_t38_answer(&mut self, offer: String, reply: Result<sip::Reoffer, String>) {
        match reply {
            Ok(sip::Reoffer::Accepted { answer }) => {
                match sdp::negotiate_t38_answer(&our_params(), &answer) {
                    Ok(Some(n)) => {
                        info!(remote = %n.remote, "the far end took T.38");
                        self.local_sdp = Some(offer);
                        self.enter_t38(n, true);
                    }
                    other => {
                        // A 2xx that declined the only stream: ask for the audio back.
                        warn!(answer = ?other.err(), "T.38 answer unusable; back to audio");
                        self.offer_audio_back(None);
                    }
                }
            }
            Ok(sip::Reoffer::Refused { code }) => {
                info!(code, "the far end refused T.38; the fax goes over G.711");
            }
            Err(e) => warn!(error = %e, "T.38 offer failed; the fax goes over G.711"),
        }
    }

    fn enter_t38(&mut self, negotiated: sdp::T38Negotiated, we_offered: bool) {
        let call_id = self.ident.call_id;
        self.node.media.send(
            self.media_key,
            ShardCommand::SetRemote {
                call_id,
                remote: negotiated.remote,
            },
        );
        self.node.media.send(
            self.media_key,
            ShardCommand::SetSending {
                call_id,
                sending: true,
            },
        );
        self.t38 = Some(T38Mode {
            negotiated,
            we_offered,
        });
    }

    /// A far end's offer to move the call to T.38, answered now, or once a fax starts within
    /// [`OFFER_WAITS_FOR_FAX`] when none runs yet.
    pub(crate) fn on_t38_offer_or_wait(
        &mut self,
        offer: String,
        respond: oneshot::Sender<Result<String, u16>>,
    ) {
        if !(self.fax_params.is_empty() && self.t38.is_none() && self.t38_possible()) {
            let _ = respond.send(self.on_t38_offer(&offer));
            return;
        }
        if let Some(earlier) = self.t38_offer_waiting.take() {
            let _ = earlier.respond.send(Err(491));
        }
        self.t38_offer_serial += 1;
        let serial = self.t38_offer_serial;
        info!("T.38 offered before any fax: waiting for the flow to start one");
        self.t38_offer_waiting = Some(WaitingOffer {
            offer,
            respond,
            serial,
        });
        let tx = self.tasks_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(OFFER_WAITS_FOR_FAX).await;
            let _ = tx.send(TaskDone::T38OfferWaited { serial });
        });
    }

    /// A fax started: a T.38 offer waiting for one is answered.
    pub(crate) fn answer_waiting_t38_offer(&mut self) {
        if let Some(w) = self.t38_offer_waiting.take() {
            let _ = w.respond.send(self.on_t38_offer(&w.offer));
        }
    }

    /// No fax started in time: the waiting offer is refused.
    pub(crate) fn t38_offer_waited(&mut self, serial: u64) {
        if self
            .t38_offer_waiting
            .as_ref()
            .is_some_and(|w| w.serial == serial)
        {
            if let Some(w) = self.t38_offer_waiting.take() {
                info!("no fax started: T.38 refused (488)");
                let _ = w.respond.send(Err(488));
            }
        }
    }

    /// A far end's offer to move the call to T.38: accepted while a fax is on the call and
    /// none has got a page across on G.711 yet (a running one restarts on T.38).
    pub(crate) fn on_t38_offer(&mut self, offer: &str) -> Result<String, u16> {
        if !self.t38_possible() || self.fax_params.is_empty() {
            info!("T.38 offered with no fax on the call (or T.38 off): 488");
            return Err(488);
        }
        if self.t38.is_none() && self.faxes.values().any(|f| !f.may_restart()) {
            info!("T.38 offered mid-document: 488, the fax stays on G.711");
            return Err(488);
        }
        let local = self.local.as_mut().ok_or(488u16)?;
        local.session_version += 1;
        let (answer, negotiated) =
            sdp::answer_t38_offer(local, &our_params(), offer).map_err(|e| {
                warn!(error = %e, "T.38 offer not acceptable");
                488u16
            })?;
        let moving = self.t38.is_none();
        info!(remote = %negotiated.remote, "T.38 accepted");
        self.local_sdp = Some(answer.clone());
        let we_offered = self.t38.as_ref().is_some_and(|m| m.we_offered);
        self.enter_t38(negotiated, we_offered);
        if moving {
            let running: Vec<String> = self.faxes.keys().cloned().collect();
            for control_id in running {
                self.restart_fax_on_t38(&control_id);
            }
        }
        Ok(answer)
    }

    /// A far end's audio offer while the call is on T.38: the fax transport ends. While a
    /// fax still runs on it the answer is 491 (RFC 3261 §14.2: try again later), as when our
    /// fax ends a moment after the far end's. Ok: answer it as any re-INVITE, then
    /// [`CallActor::left_t38`].
    pub(crate) fn may_leave_t38(&self) -> Result<(), u16> {
        if self.t38.is_some() && self.faxes.values().any(|f| f.finishing_pending()) {
            info!("audio offered while a T.38 fax runs: 491");
            return Err(491);
        }
        Ok(())
    }

    /// The call's media is audio again.
    pub(crate) fn left_t38(&mut self) {
        if self.t38.take().is_some() {
            info!("back to audio after T.38");
            for control_id in self.fax_params.keys() {
                self.node.media.send(
                    self.media_key,
                    ShardCommand::SetPacketModem {
                        call_id: self.ident.call_id,
                        key: format!("{}{control_id}", crate::actor::fax::FAX_PREFIX),
                        modem: None,
                    },
                );
            }
        }
    }

    /// A fax on a T.38 call is over: nothing is sent until the audio is back (RTP would reach
    /// the far end's UDPTL port), and the side that offered T.38 offers the audio back.
    pub(crate) fn t38_fax_over(&mut self, control_id: &str) {
        let Some(we_offered) = self.t38.as_ref().map(|m| m.we_offered) else {
            return;
        };
        self.node.media.send(
            self.media_key,
            ShardCommand::SetSending {
                call_id: self.ident.call_id,
                sending: false,
            },
        );
        if we_offered {
            self.offer_audio_back(Some(control_id));
        }
    }

    /// Our T.38 fax is over: offer the call's audio back (its codec as it was, so the media
    /// graph goes on unchanged). `control_id` names the fax, for the log.
    pub(crate) fn offer_audio_back(&mut self, control_id: Option<&str>) {
        let (Some(leg), Some(media), Some(local)) =
            (self.sip_leg(), self.media.as_ref(), self.local.as_mut())
        else {
            return;
        };
        local.session_version += 1;
        let audio = sdp::LocalMedia {
            codecs: vec![media.codec],
            ..local.clone()
        };
        let offer = match sdp::build_offer(&audio) {
            Ok(o) => o,
            Err(e) => return warn!(error = %e, "no audio offer to leave T.38"),
        };
        info!(fax = ?control_id, "offering the audio back after T.38");
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let mut reply = leg.reoffer(offer.clone()).await.map_err(|e| e.to_string());
                for _ in 0..AUDIO_BACK_RETRIES {
                    if !matches!(reply, Ok(sip::Reoffer::Refused { code: 491 })) {
                        break;
                    }
                    tokio::time::sleep(AUDIO_BACK_RETRY_AFTER).await;
                    reply = leg.reoffer(offer.clone()).await.map_err(|e| e.to_string());
                }
                let _ = tx.send(TaskDone::AudioBack {
                    local: Box::new(audio),
                    offer,
                    reply,
                });
            }
            .in_current_span(),
        );
    }

    /// The far end's answer to our audio offer after T.38.
    pub(crate) fn on_audio_back(
        &mut self,
        audio: sdp::LocalMedia,
        offer: String,
        reply: Result<sip::Reoffer, String>,
    ) {
        let answer = match reply {
            Ok(sip::Reoffer::Accepted { answer }) => answer,
            Ok(sip::Reoffer::Refused { code }) => {
                return warn!(code, "the far end kept T.38 (audio offer refused)")
            }
            Err(e) => return warn!(error = %e, "audio offer after T.38 failed"),
        };
        match sdp::negotiate_answer(&audio, &answer) {
            Ok(n) => {
                let call_id = self.ident.call_id;
                if !n.remote.ip().is_unspecified() && n.remote.port() != 0 {
                    self.node.media.send(
                        self.media_key,
                        ShardCommand::SetRemote {
                            call_id,
                            remote: n.remote,
                        },
                    );
                }
                let sending = media_leg::takes_our_audio(&n);
                self.node.media.send(
                    self.media_key,
                    ShardCommand::SetSending { call_id, sending },
                );
                self.local_sdp = Some(offer);
                self.left_t38();
            }
            Err(e) => warn!(error = %e, "audio answer after T.38 unusable"),
        }
    }
}
