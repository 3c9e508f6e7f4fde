//! Entry points for the fuzz targets (`fuzz/`, `crates/fuzzing`): what the adapter does with
//! bytes a stranger sends and with the strings the call layer hands it, without sockets or a
//! runtime. Not part of the adapter's API; every function returns nothing and must not panic.

use std::net::SocketAddr;

use rsipstack::sip::{Header, SipMessage, Transport};
use rsipstack::transport::connection::SipConnection;

use crate::{endpoint, inbound, leg, request, wire};

/// One datagram as the UDP transport receives it: the stack's parser and its `received`/`rport`
/// update, then everything the adapter reads from a request or response before any dialog
/// logic (the Max-Forwards/CSeq checks, the INVITE's facts and SDP body, the To tag and reason
/// of a response, the digest and Via fixes applied to what we send).
pub fn message(data: &[u8]) {
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return; // the transport drops these before parsing
    }
    let Ok(msg) = SipMessage::try_from(data) else {
        return;
    };
    let from = SocketAddr::from(([192, 0, 2, 7], 5062));
    let Ok(msg) = SipConnection::update_msg_received(msg, from, Transport::Udp) else {
        return;
    };
    match msg {
        SipMessage::Request(mut req) => {
            let _ = endpoint::request_fault(&req);
            let _ = inbound::describe_request(&req, Some(from), "udp");
            let _ = leg::body_text(&req.body);
            for h in req.headers.iter() {
                if let Header::Authorization(_) | Header::ProxyAuthorization(_) = h {
                    if let Some(fixed) = wire::unquote_qop(h.value()) {
                        assert_eq!(fixed.len() + 2, h.value().len());
                    }
                }
            }
            let before = req.headers.iter().count();
            wire::via_first(&mut req.headers.0);
            assert_eq!(req.headers.iter().count(), before);
            let _ = req.to_string();
        }
        SipMessage::Response(resp) => {
            let _ = leg::reason_of(&resp);
            let _ = leg::to_tag(&resp);
            let _ = leg::body_text(&resp.body);
            let _ = resp.to_string();
        }
    }
}

/// The fields of an outbound INVITE as the call layer gives them (a request URI, From/To URIs,
/// a display name, a digest username, one extra header), checked the way `place` checks them.
/// `data` is the six strings separated by `\n`.
pub fn outbound_fields(data: &str) {
    let mut parts = data.split('\n');
    let mut next = || parts.next().unwrap_or("");
    let (target, from, display, username, name, value) =
        (next(), next(), next(), next(), next(), next());
    if let Ok(t) = request::parse_target(target) {
        let _ = t.uri.to_string();
    }
    if let Ok(uri) = request::parse_party("from", from) {
        let _ = uri.to_string();
    }
    if let Some(name) = request::quoted_display_name(display) {
        assert!(!name.contains(['"', '\\', '<', '>']));
    }
    let _ = request::check_username(username);
    if let Ok(h) = request::extra_header(name, value) {
        let _ = h.to_string();
    }
    let _ = request::percent_decode(target);
}
