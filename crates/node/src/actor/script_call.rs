//! `dial` with `to_script` and no `to`: a call whose destination end is a SWML script. Two
//! calls are made without any SIP: the dialled call runs the dial's `url`/`swml`, its
//! destination end (a child call, `parent_id` = the dialled call) runs `to_script`, and their
//! media is real RTP between two of our own ports on loopback, so every method (play, digits,
//! later record/collect) works exactly as on a SIP call. Either end hanging up ends the other.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

use serde_json::Value;
use tracing::info;
use uuid::Uuid;

use control::{CommandOk, ControlError, DialRequest, Direction, LegType};

use crate::actor::CallActor;
use crate::media_leg::NegotiatedMedia;
use crate::NodeInner;
use control::routing::Route;

/// What the destination end runs: a document URL or an inline document.
fn script_document(script: Value) -> Result<(Option<String>, Option<Value>), ControlError> {
    match script {
        Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
            Ok((Some(s), None))
        }
        Value::String(s) => {
            let doc = swml::Document::from_text(&s)
                .map_err(|e| crate::fetch::invalid_document("to_script", e))?;
            Ok((None, Some(doc.into_value())))
        }
        other => Ok((None, Some(crate::fetch::load_document("to_script", other)?))),
    }
}

impl NodeInner {
    pub(crate) async fn dial_script(
        self: &Arc<Self>,
        project: Uuid,
        mut request: DialRequest,
    ) -> Result<CommandOk, ControlError> {
        let script = request.to_script.take().unwrap_or(Value::Null);
        let (script_url, script_swml) = script_document(script)?;
        if let Some(doc) = request.swml.take() {
            request.swml = Some(crate::fetch::load_document("swml", doc)?);
        }
        let (origin_port, origin_socket) = self.virtual_rtp_port()?;
        let (dest_port, dest_socket) = match self.virtual_rtp_port() {
            Ok(p) => p,
            Err(e) => {
                self.ports.release(origin_port);
                return Err(e);
            }
        };
        let loopback = self.virtual_media_ip();
        let to = format!("script:{}", script_url.as_deref().unwrap_or("inline"));

        let origin_id = Uuid::new_v4();
        let dest_id = Uuid::new_v4();
        let (mut origin_record, origin_ident) = self.new_call(
            origin_id,
            Direction::OutboundApi,
            LegType::RelaySipCall,
            &request,
            &to,
        );
        origin_record.project_id = project;
        let origin_ident = webhook::events::CallIdentity {
            project_id: project,
            ..origin_ident
        };
        let dest_request = DialRequest {
            from: request.from.clone(),
            to: Some(to.clone()),
            url: script_url,
            swml: script_swml,
            custom_variables: request.custom_variables.clone(),
            timeout_secs: request.timeout_secs,
            ..DialRequest::default()
        };
        let (mut dest_record, dest_ident) = self.new_call(
            dest_id,
            Direction::Outbound,
            LegType::RelaySipCall,
            &dest_request,
            &to,
        );
        dest_record.project_id = project;
        dest_record.parent_id = Some(origin_id);
        let dest_ident = webhook::events::CallIdentity {
            project_id: project,
            ..dest_ident
        }
        .child_of(origin_id, Some(LegType::RelaySipCall.device_type()));
        let registered = self.register(origin_id, project, false).and_then(|o| {
            self.register(dest_id, project, false)
                .map(|d| (o, d))
                .inspect_err(|_| self.unregister(origin_id))
        });
        let (origin_rx, dest_rx) = match registered {
            Ok(r) => r,
            Err(e) => {
                self.ports.release(origin_port);
                self.ports.release(dest_port);
                return Err(e);
            }
        };
        for record in [&origin_record, &dest_record] {
            if let Err(e) = self.store.insert_call(record.clone()).await {
                self.unregister(origin_id);
                self.unregister(dest_id);
                self.ports.release(origin_port);
                self.ports.release(dest_port);
                return Err(ControlError::Internal(e.to_string()));
            }
        }
        self.cfg.metrics.call_setups.with(&["script"]).inc();
        let route = Route {
            request_uri: to.clone(),
            to_uri: to.clone(),
            username: None,
            password: None,
        };
        let media_to = |port: u16| NegotiatedMedia {
            remote: SocketAddr::new(loopback, port),
            codec: sdp::Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
            sending: true,
            srtp: None,
            rtcp_mux: false,
        };
        let leg = origin_record.leg();

        let mut origin = CallActor::new(
            origin_ident,
            request,
            route.clone(),
            origin_record,
            self.clone(),
            origin_rx,
        );
        origin.rtp = Some((origin_port, origin_socket));
        origin.virtual_media = Some(Box::new(media_to(dest_port)));
        origin.ops.session.transferred(dest_id, false);
        let mut dest = CallActor::new(
            dest_ident,
            dest_request,
            route,
            dest_record,
            self.clone(),
            dest_rx,
        );
        dest.rtp = Some((dest_port, dest_socket));
        dest.virtual_media = Some(Box::new(media_to(origin_port)));
        dest.ops.session.far_leg_of(origin_id);
        info!(call_id = %origin_id, script_end = %dest_id, "dial to a script accepted");
        tokio::spawn(origin.run());
        tokio::spawn(dest.run());
        Ok(CommandOk::leg(leg))
    }

    /// Virtual legs talk RTP to each other over loopback (or the SIP listen address when it
    /// is a specific one, since that is what the sockets are bound to).
    fn virtual_media_ip(&self) -> IpAddr {
        let ip = self.cfg.sip_listen.ip();
        if ip.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            ip
        }
    }

    fn virtual_rtp_port(&self) -> Result<(u16, UdpSocket), ControlError> {
        self.allocate_rtp_port()
            .map(|(port, (rtp, _))| (port, rtp))
            .ok_or_else(|| ControlError::AtCapacity {
                code: "no_rtp_port",
                message: "every RTP port of this server is in use (rtp_ports)".into(),
            })
    }
}

impl CallActor {
    /// A script end (or the call dialled to one) starts answered: no SIP, media at once.
    pub(crate) async fn start_virtual(&mut self) {
        let Some(media) = self.virtual_media.clone() else {
            return;
        };
        self.input(control::call::CallInput::Offered).await;
        if let Err(detail) = self.start_media(*media) {
            self.input(control::call::CallInput::Fail {
                reason: control::EndReason::Error,
                detail,
            })
            .await;
            return;
        }
        self.input(control::call::CallInput::Answered).await;
        self.start_document_fetch();
    }
}
