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
//! * It has no TLS listener of its own (ours is in endpoint.rs), so the Via of a request
//!   sent over TLS names our UDP port; it gets the TLS listener's.
//!
//! None of the changes touches what the transaction layer matches on (the Via
//! branch and values are unchanged; only order and one quote pair).

use rsipstack::sip::{Header, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

pub(crate) struct WireFixes {
    /// Our advertised UDP address and TLS listener address: a request sent over TLS names
    /// the latter in its Via (see `tls::fix_tls_via`).
    pub(crate) tls_via: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
}

impl MessageInspector for WireFixes {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        match msg {
            SipMessage::Request(mut req) => {
                via_first(&mut req.headers.0);
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
