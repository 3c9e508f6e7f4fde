//! Last-moment fixes to requests the stack sends (its `MessageInspector`
//! hook), for interoperability with strict peers:
//!
//! * rsipstack 0.7.14 quotes the qop of its digest answer (`qop="auth"`);
//!   RFC 2617/3261 make it a token (`qop=auth`), and parsers that compare
//!   the raw value (pjsip-based servers, for one) reject the quoted form.
//! * When it re-sends an INVITE with credentials it appends the new Via at
//!   the end of the header list; RFC 3261 §7.3.1 recommends Via first, and
//!   some proxies only look there.
//!
//! * The ACK to a non-2xx final response gets the response's Via (with `received=` and the
//!   `rport` value); RFC 3261 §17.1.1.3 wants the INVITE's: both are taken out again.
//! * Its typed Contact drops `;transport=udp`, so the 2xx ACK's Request-URI lost it; it is
//!   put back from the 2xx's Contact (kept here from the response until the ACK goes).
//! * It has no TLS listener of its own (ours is in endpoint.rs), so the Via of a request
//!   sent over TLS names our UDP port; it gets the TLS listener's.
//!
//! None of the changes touches what the transaction layer matches on (the Via
//! branch and values are unchanged; only order and one quote pair).

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Method, Param, Request, SipMessage, StatusCodeKind, Transport, Uri};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;
use std::collections::VecDeque;
use std::sync::Mutex;

pub(crate) struct WireFixes {
    /// Our advertised UDP address and TLS listener address: a request sent over TLS names
    /// the latter in its Via (see `tls::fix_tls_via`).
    tls_via: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// Remote targets that name `;transport=udp`, from 2xx responses to INVITE, by Call-ID
    /// and To tag, until the ACK to that 2xx is sent (at most [`UDP_TARGETS`]).
    udp_targets: Mutex<VecDeque<(DialogKey, Uri)>>,
}

type DialogKey = (String, String);

/// 2xx responses whose ACK has not been sent yet, at most (the ACK follows at once).
const UDP_TARGETS: usize = 64;

impl WireFixes {
    pub(crate) fn new(tls_via: Option<(std::net::SocketAddr, std::net::SocketAddr)>) -> Self {
        WireFixes {
            tls_via,
            udp_targets: Mutex::new(VecDeque::new()),
        }
    }

    /// The 2xx ACK's Request-URI is the stack's parse of the 2xx's Contact, which drops
    /// `;transport=udp`: put the Contact's URI back.
    fn restore_ack_target(&self, req: &mut Request) {
        let Some(key) = dialog_key(&req.headers) else {
            return;
        };
        let mut targets = self.udp_targets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pos) = targets.iter().position(|(k, _)| *k == key) else {
            return;
        };
        if let Some((_, uri)) = targets.remove(pos) {
            restore_udp(&mut req.uri, &uri);
        }
    }
}

/// Call-ID and To tag of a message.
fn dialog_key(headers: &rsipstack::sip::Headers) -> Option<DialogKey> {
    let call_id = headers.iter().find_map(|h| match h {
        Header::CallId(c) => Some(c.value().to_string()),
        _ => None,
    })?;
    let to_tag = headers.iter().find_map(|h| match h {
        Header::To(t) => t.tag().ok().flatten().map(|t| t.value().to_string()),
        _ => None,
    })?;
    Some((call_id, to_tag))
}

/// The URI of the first Contact, as written (the stack's typed Contact drops
/// `;transport=udp`), when it names `;transport=udp`. Only the `<...>` form: without angle
/// brackets the parameters are the header's, not the URI's.
pub(crate) fn contact_udp_uri(headers: &rsipstack::sip::Headers) -> Option<Uri> {
    let value = headers.iter().find_map(|h| match h {
        Header::Contact(c) => Some(c.value().to_string()),
        _ => None,
    })?;
    let start = value.find('<')?;
    let end = start + value[start..].find('>')?;
    let uri = rsipstack::sip::parse_uri(&value[start + 1..end]).ok()?;
    uri.params
        .iter()
        .any(|p| matches!(p, Param::Transport(Transport::Udp)))
        .then_some(uri)
}

/// `target` is `written` without its `;transport=udp` (the stack dropped it): add it back.
/// Any other difference leaves `target` as it is.
pub(crate) fn restore_udp(target: &mut Uri, written: &Uri) {
    let has_transport = target
        .params
        .iter()
        .any(|p| matches!(p, Param::Transport(_)));
    if has_transport
        || target.host_with_port != written.host_with_port
        || target.auth != written.auth
        || target.scheme != written.scheme
    {
        return;
    }
    target.params.push(Param::Transport(Transport::Udp));
}

/// RFC 3261 §17.1.1.3: the ACK to a non-2xx final response carries the INVITE's top Via;
/// the stack copies the response's, where the far end added `received=` and the `rport`
/// value. Our Via always has a bare `rport` and no `received`, so both are put back; a 2xx
/// ACK's Via (a new branch and nothing else) is left alone.
pub(crate) fn ack_via_as_sent(headers: &mut [Header]) {
    let Some(h) = headers.iter_mut().find(|h| matches!(h, Header::Via(_))) else {
        return;
    };
    let Header::Via(via) = h else {
        return;
    };
    let Ok(mut typed) = via.typed() else {
        return;
    };
    let before = typed.params.len();
    typed.params.retain(|p| !matches!(p, Param::Received(_)));
    let mut changed = typed.params.len() != before;
    for p in typed.params.iter_mut() {
        if let Param::Rport(Some(_)) = p {
            *p = Param::Rport(None);
            changed = true;
        }
    }
    if changed {
        *h = Header::Via(typed.into());
    }
}

impl MessageInspector for WireFixes {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        match msg {
            SipMessage::Request(mut req) => {
                via_first(&mut req.headers.0);
                if req.method == Method::Ack {
                    ack_via_as_sent(&mut req.headers.0);
                    self.restore_ack_target(&mut req);
                }
                if let Some((udp, tls)) = self.tls_via {
                    crate::tls::fix_tls_via(&mut req.headers.0, udp, tls);
                }
                for h in req.headers.iter_mut() {
                    match h {
                        Header::Authorization(a) => {
                            if let Some(v) = unquote_qop(a.value()) {
                                *h = Header::Authorization(v.into());
                            }
                        }
                        Header::ProxyAuthorization(a) => {
                            if let Some(v) = unquote_qop(a.value()) {
                                *h = Header::ProxyAuthorization(v.into());
                            }
                        }
                        _ => {}
                    }
                }
                SipMessage::Request(req)
            }
            other => other,
        }
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        if let SipMessage::Response(resp) = &msg {
            let invite_2xx = resp.status_code.kind() == StatusCodeKind::Successful
                && resp
                    .cseq_header()
                    .ok()
                    .and_then(|c| c.method().ok())
                    .is_some_and(|m| m == Method::Invite);
            if invite_2xx {
                if let (Some(uri), Some(key)) =
                    (contact_udp_uri(&resp.headers), dialog_key(&resp.headers))
                {
                    let mut targets = self.udp_targets.lock().unwrap_or_else(|p| p.into_inner());
                    if !targets.iter().any(|(k, _)| *k == key) {
                        if targets.len() >= UDP_TARGETS {
                            targets.pop_front();
                        }
                        targets.push_back((key, uri));
                    }
                }
            }
        }
        msg
    }
}

/// Move the Via headers to the top, keeping their order and the order of
/// everything else.
pub(crate) fn via_first(headers: &mut Vec<Header>) {
    if headers
        .iter()
        .position(|h| !matches!(h, Header::Via(_)))
        .is_none_or(|first_other| {
            !headers[first_other..]
                .iter()
                .any(|h| matches!(h, Header::Via(_)))
        })
    {
        return;
    }
    let (mut vias, rest): (Vec<Header>, Vec<Header>) = std::mem::take(headers)
        .into_iter()
        .partition(|h| matches!(h, Header::Via(_)));
    vias.extend(rest);
    *headers = vias;
}

/// `... qop="auth", ...` → `... qop=auth, ...`; `None` when there is
/// nothing to change.
pub(crate) fn unquote_qop(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let mut search = 0;
    while let Some(pos) = lower[search..].find("qop") {
        let start = search + pos;
        // A parameter name: preceded by a separator, followed by `=`.
        let before_ok = start == 0 || matches!(lower.as_bytes()[start - 1], b' ' | b',' | b'\t');
        let rest = &value[start + 3..];
        let trimmed = rest.trim_start();
        if before_ok && trimmed.starts_with('=') {
            let after_eq = trimmed[1..].trim_start();
            if let Some(quoted) = after_eq.strip_prefix('"') {
                let end = quoted.find('"')?;
                let token = &quoted[..end];
                if token.is_empty() || !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return None;
                }
                let value_start = value.len() - after_eq.len();
                let value_end = value_start + 1 + end + 1;
                return Some(format!(
                    "{}{}{}",
                    &value[..value_start],
                    token,
                    &value[value_end..]
                ));
            }
            return None;
        }
        search = start + 3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_via_loses_what_the_far_end_added() {
        let mut h = vec![Header::Via(
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa;rport=5062;received=198.51.100.7".into(),
        )];
        ack_via_as_sent(&mut h);
        assert_eq!(
            h[0].to_string(),
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa;rport"
        );
        // A 2xx ACK's Via (branch only) is left as it is.
        let mut h = vec![Header::Via(
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKb".into(),
        )];
        ack_via_as_sent(&mut h);
        assert_eq!(
            h[0].to_string(),
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKb"
        );
    }

    #[test]
    fn transport_udp_is_restored_only_to_the_same_target() {
        let mut h = rsipstack::sip::Headers::default();
        h.push(Header::Contact(
            "\"Bob\" <sip:bob@192.0.2.9:5070;transport=UDP;ob>;expires=60".into(),
        ));
        let written = contact_udp_uri(&h).unwrap();
        let mut target = rsipstack::sip::parse_uri("sip:bob@192.0.2.9:5070;ob").unwrap();
        restore_udp(&mut target, &written);
        assert!(target
            .to_string()
            .to_ascii_lowercase()
            .contains("transport=udp"));
        let mut other = rsipstack::sip::parse_uri("sip:bob@192.0.2.9:5071").unwrap();
        restore_udp(&mut other, &written);
        assert!(!other.to_string().contains("transport"));
        // Without <>, the parameters are the header's; TCP is not UDP.
        for c in [
            "sip:bob@192.0.2.9:5070;transport=udp",
            "<sip:bob@192.0.2.9:5070;transport=tcp>",
            "<sip:bob@192.0.2.9:5070>",
        ] {
            let mut h = rsipstack::sip::Headers::default();
            h.push(Header::Contact(c.into()));
            assert!(contact_udp_uri(&h).is_none(), "{c}");
        }
    }

    #[test]
    fn qop_is_unquoted() {
        let v = r#"Digest username="alice", realm="x", nonce="n", uri="sip:b@h", response="r", algorithm=MD5, qop="auth", nc=00000001, cnonce="c""#;
        assert_eq!(
            unquote_qop(v).unwrap(),
            r#"Digest username="alice", realm="x", nonce="n", uri="sip:b@h", response="r", algorithm=MD5, qop=auth, nc=00000001, cnonce="c""#
        );
        assert_eq!(
            unquote_qop(r#"Digest qop = "auth-int", nc=1"#).unwrap(),
            "Digest qop = auth-int, nc=1"
        );
        // Already a token, absent, or inside another value: untouched.
        assert_eq!(unquote_qop("Digest qop=auth, nc=1"), None);
        assert_eq!(unquote_qop(r#"Digest username="qop=""#), None);
        assert_eq!(unquote_qop(r#"Digest username="x", realm="y""#), None);
        assert_eq!(unquote_qop(r#"Digest qop="auth"#), None);
        assert_eq!(unquote_qop(r#"Digest myqop="auth""#), None);
    }

    #[test]
    fn unquote_qop_never_panics() {
        let alphabet = ["qop", "=", "\"", " ", ",", "auth", "é", "Q", "\t", "x"];
        let mut x: u32 = 7;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(x % 12) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                s.push_str(alphabet[(x % alphabet.len() as u32) as usize]);
            }
            if let Some(out) = unquote_qop(&s) {
                assert_eq!(out.len() + 2, s.len(), "{s:?} -> {out:?}");
            }
        }
    }

    #[test]
    fn via_moves_to_the_top() {
        let mut h = vec![
            Header::CallId("a".into()),
            Header::Via("SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1".into()),
            Header::MaxForwards(70.into()),
            Header::Via("SIP/2.0/UDP 5.6.7.8;branch=z9hG4bK2".into()),
        ];
        via_first(&mut h);
        let names: Vec<_> = h.iter().map(|h| h.name().to_string()).collect();
        assert_eq!(names, ["Via", "Via", "Call-ID", "Max-Forwards"]);
        assert!(h[0].value().contains("1.2.3.4"));
        let before = h.clone();
        via_first(&mut h);
        assert_eq!(h, before);
    }
}
