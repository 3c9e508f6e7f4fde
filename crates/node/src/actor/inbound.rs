//! Inbound calls: an INVITE to dialtone is matched against the configured routes (called
//! number or SIP user → SWML URL or inline document, with a `*` default route); a match
//! becomes a call with its own actor running the same engine as outbound calls, an unknown
//! destination is rejected with 404.

use std::sync::Arc;

use tracing::{info, warn};
use uuid::Uuid;

use control::call::CallInput;
use control::{DialRequest, Direction, EndReason, LegType, StatusEvent};

use crate::actor::script::ScriptWait;
use crate::actor::CallActor;
use crate::NodeInner;
use control::routing::route_for;

/// The caller's side of an inbound call, held by its actor.
pub(crate) struct InboundState {
    pub handle: sip::InboundHandle,
    pub offer: Option<String>,
    /// Our SDP answer and what it settled, computed when the call arrives.
    pub answer: Option<(String, crate::media_leg::NegotiatedMedia)>,
    /// 200 OK sent; waiting for the ACK.
    pub answering: bool,
}

impl CallActor {
    /// A new inbound call: take an RTP port, prepare our answer to the caller's offer, ring,
    /// and fetch the routed document (it decides whether and when to answer).
    pub(crate) async fn offer_inbound(&mut self) {
        let Some((port, (socket, rtcp))) = self.node.allocate_rtp_port() else {
            self.reject_inbound(503, "no free RTP port").await;
            return;
        };
        self.rtp = Some((port, socket));
        self.rtcp = rtcp;
        let local = crate::media_leg::local_media(&self.node.cfg, port, &self.request.codecs);
        let offer = self.inbound.as_ref().and_then(|i| i.offer.clone());
        let Some(offer) = offer else {
            self.reject_inbound(488, "offerless INVITE not supported")
                .await;
            return;
        };
        match crate::media_leg::answer_offer(&local, &offer, self.encryption()) {
            Ok((sdp, media)) => {
                self.local_sdp = Some(sdp.clone());
                if let Some(inbound) = self.inbound.as_mut() {
                    inbound.answer = Some((sdp, media));
                }
            }
            Err(detail) => {
                warn!(%detail, "no acceptable media in the caller's offer");
                self.reject_inbound(488, "Not Acceptable Here").await;
                return;
            }
        }
        self.local = Some(local);
        if let Some(inbound) = self.inbound.as_ref() {
            if let Err(e) = inbound.handle.ringing(None).await {
                warn!(error = %e, "could not send 180");
            }
        }
        self.start_document_fetch();
    }

    /// Rejects the caller's INVITE and ends the call (`failed`, `error`).
    async fn reject_inbound(&mut self, code: u16, reason: &str) {
        if let Some(inbound) = self.inbound.as_ref() {
            let _ = inbound.handle.reject(code, reason).await;
        }
        self.input(CallInput::Fail {
            reason: EndReason::Error,
            detail: format!("rejected with {code} {reason}"),
        })
        .await;
    }

    /// SWML `answer` (or a `play` that auto-answers) on a ringing inbound call: send 200 OK;
    /// the call is answered when the caller's ACK arrives.
    pub(crate) async fn answer_inbound(&mut self) -> Result<(), String> {
        let Some(inbound) = self.inbound.as_mut() else {
            return Ok(());
        };
        if inbound.answering {
            return Ok(());
        }
        let Some((sdp, _)) = inbound.answer.clone() else {
            return Err("no SDP answer prepared".into());
        };
        inbound.answering = true;
        let handle = inbound.handle.clone();
        handle.answer(sdp).await.map_err(|e| e.to_string())
    }

    /// SWML `answer.codecs` on a ringing inbound call: our answer is computed again with only
    /// those codecs (names as swml.md §6.4 lists them, case-insensitive, anything after `@`
    /// ignored), the first of them the caller offered winning. Codecs this server has
    /// no coder for (G729, AMR-WB, video) are skipped. An error when none is left, when the
    /// caller offered none of them, or when our SDP already went out with another codec.
    pub(crate) fn restrict_inbound_codecs(&mut self, list: &str) -> Result<(), String> {
        let wanted = sdp::Codec::list(list);
        if wanted.is_empty() {
            return Err(format!(
                "answer.codecs {list:?} names no codec this server can use (PCMU, PCMA, G722, OPUS)"
            ));
        }
        let Some(local) = self.local.clone() else {
            return Err("no local media prepared".into());
        };
        let encryption = self.encryption();
        let Some(inbound) = self.inbound.as_mut() else {
            return Ok(());
        };
        if self.media_running || inbound.answering {
            // Our SDP already went out (183 for early media, or the 200 of an answer waiting
            // for its ACK): the codec is settled.
            let settled = inbound.answer.as_ref().map(|(_, m)| m.codec);
            return match settled {
                Some(c) if wanted.contains(&c) => Ok(()),
                _ => Err("early media already settled a codec outside answer.codecs".into()),
            };
        }
        let Some(offer) = inbound.offer.clone() else {
            return Err("no SDP offer to answer".into());
        };
        let restricted = sdp::LocalMedia {
            codecs: wanted,
            ..local
        };
        let (sdp, media) = crate::media_leg::answer_offer(&restricted, &offer, encryption)
            .map_err(|e| format!("answer.codecs {list:?}: {e}"))?;
        info!(codec = ?media.codec, "answering with a codec of answer.codecs");
        inbound.answer = Some((sdp.clone(), media));
        self.local_sdp = Some(sdp);
        self.local = Some(restricted);
        Ok(())
    }

    /// SWML `play` with `auto_answer: false` on a ringing inbound call: early media (183 with
    /// our SDP, media starts before the answer).
    pub(crate) async fn early_media_inbound(&mut self) -> Result<(), String> {
        if self.media_running {
            return Ok(());
        }
        let Some(inbound) = self.inbound.as_ref() else {
            return Ok(());
        };
        let Some((sdp, media)) = inbound.answer.clone() else {
            return Err("no SDP answer prepared".into());
        };
        inbound
            .handle
            .ringing(Some(sdp))
            .await
            .map_err(|e| e.to_string())?;
        self.start_media(media)
    }

    /// Whether this is an inbound call still waiting to be answered.
    pub(crate) fn inbound_unanswered(&self) -> bool {
        self.inbound.is_some() && self.core.status().is_pre_answer()
    }

    pub(crate) async fn on_inbound_event(&mut self, ev: sip::InboundEvent) {
        match ev {
            sip::InboundEvent::Confirmed => {
                let media = self
                    .inbound
                    .as_ref()
                    .and_then(|i| i.answer.as_ref().map(|(_, m)| m.clone()));
                self.input(CallInput::Answered).await;
                let started = match media {
                    Some(m) => self.start_media(m),
                    None => Err("no negotiated media".into()),
                };
                match started {
                    Ok(()) => {
                        if self.script_wait == Some(ScriptWait::Answer) {
                            self.complete_script(swml::Completion::Done).await;
                        }
                    }
                    Err(detail) => {
                        warn!(%detail, "media could not start; hanging up");
                        self.input(CallInput::Fail {
                            reason: EndReason::Error,
                            detail,
                        })
                        .await;
                    }
                }
            }
            sip::InboundEvent::Canceled => {
                info!("the caller canceled before answer");
                self.input(CallInput::RemoteHangup).await;
            }
            sip::InboundEvent::RemoteOffer { sdp, respond } => {
                self.on_remote_offer(sdp, respond).await
            }
            sip::InboundEvent::RemoteBye => self.input(CallInput::RemoteHangup).await,
            sip::InboundEvent::AckTimeout => {
                self.input(CallInput::Fail {
                    reason: EndReason::Error,
                    detail: "the caller never ACKed our 200 OK".into(),
                })
                .await
            }
            sip::InboundEvent::Terminated => {
                self.in_events = None;
                self.input(CallInput::LegTerminated).await
            }
        }
    }
}

impl NodeInner {
    /// An INVITE arrived: route it, or reject it with 404.
    pub(crate) async fn accept_inbound(
        self: &Arc<Self>,
        invite: sip::InboundInvite,
        leg: sip::InboundLeg,
    ) {
        let Some(route) = route_for(&self.cfg.inbound_routes, &invite.request_user).cloned() else {
            info!(to = %invite.request_uri, "no inbound route; 404");
            let _ = leg.handle.reject(404, "Not Found").await;
            return;
        };
        let call_id = Uuid::new_v4();
        let to = if invite.request_user.is_empty() {
            invite.to_uri.clone()
        } else {
            invite.request_user.clone()
        };
        let from = if invite.from_user.is_empty() {
            invite.from_uri.clone()
        } else {
            invite.from_user.clone()
        };
        let leg_type = if control::routing::is_e164(&to) {
            LegType::RelayPstnCall
        } else {
            LegType::RelaySipCall
        };
        let request = DialRequest {
            from: from.clone(),
            to: Some(to.clone()),
            url: route.url.clone(),
            swml: route.swml.clone(),
            status_url: route.status_url.clone(),
            status_events: vec![
                StatusEvent::Created,
                StatusEvent::Ringing,
                StatusEvent::Answered,
                StatusEvent::Ended,
            ],
            timeout_secs: 60,
            ..DialRequest::default()
        };
        let (record, ident) = self.new_call(call_id, Direction::Inbound, leg_type, &request, &to);
        let inbox = match self.register(call_id, record.project_id, true) {
            Ok(inbox) => inbox,
            Err(e) => {
                info!(to = %invite.request_uri, reason = %e, "inbound call refused; 503");
                let _ = leg.handle.reject(503, "Service Unavailable").await;
                return;
            }
        };
        if let Err(e) = self.store.insert_call(record.clone()).await {
            warn!(error = %e, "could not store the inbound call; 503");
            self.unregister(call_id);
            let _ = leg.handle.reject(503, "Service Unavailable").await;
            return;
        }
        self.cfg.metrics.call_setups.with(&["inbound"]).inc();
        let sip_route = control::routing::Route {
            request_uri: invite.request_uri.clone(),
            to_uri: invite.to_uri.clone(),
            username: None,
            password: None,
        };
        let mut actor = CallActor::new(ident, request, sip_route, record, self.clone(), inbox);
        actor.inbound = Some(InboundState {
            handle: leg.handle,
            offer: invite.sdp.clone(),
            answer: None,
            answering: false,
        });
        actor.in_events = Some(leg.events);
        info!(%call_id, from = %from, to = %to, "inbound call");
        tokio::spawn(actor.run());
    }
}
