//! Validation of what the call layer hands us before it goes on the wire:
//! URIs, display names and extra headers. Pure; no I/O.
//!
//! Everything here is input-derived, so nothing panics: a bad value is a
//! [`SipError`] naming the field.

use crate::SipError;
use rsipstack::sip::uri::ParamsExt;
use rsipstack::sip::{Header, Host, Scheme, Transport, Uri};

/// The transport a request URI asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UriTransport {
    Udp,
    Tcp,
    Tls,
}

/// A parsed request URI plus the transport it selects.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub uri: Uri,
    pub transport: UriTransport,
}

fn has_forbidden_chars(s: &str) -> bool {
    s.chars().any(|c| c == '\r' || c == '\n' || c == '\0')
}

fn is_valid_host(host: &Host) -> bool {
    match host {
        Host::IpAddr(_) => true,
        Host::Domain(d) => {
            let d = d.0.as_str();
            !d.is_empty()
                && d.len() <= 253
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && !d.starts_with('.')
                && !d.starts_with('-')
        }
    }
}

fn uri_error(field: &'static str, uri: &str, reason: impl Into<String>) -> SipError {
    SipError::InvalidUri {
        field,
        uri: uri.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn parse_sip_uri(field: &'static str, s: &str) -> Result<Uri, SipError> {
    if has_forbidden_chars(s) {
        return Err(uri_error(field, s, "contains CR, LF or NUL"));
    }
    let trimmed = s.trim();
    if trimmed.starts_with('<') || trimmed.ends_with('>') {
        return Err(uri_error(field, s, "give the bare URI, without <>"));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(uri_error(
            field,
            s,
            "contains whitespace or control characters",
        ));
    }
    let mut uri = Uri::try_from(trimmed).map_err(|e| uri_error(field, s, e.to_string()))?;
    // rsipstack keeps the user part as written but percent-encodes it when
    // it prints the URI: decode it here, or `%2B` would go out as `%252B`.
    if let Some(auth) = uri.auth.as_mut() {
        auth.user = percent_decode(&auth.user)
            .ok_or_else(|| uri_error(field, s, "bad percent-encoding in the user part"))?;
    }
    match uri.scheme {
        Some(Scheme::Sip) | Some(Scheme::Sips) => {}
        _ => return Err(uri_error(field, s, "scheme must be sip: or sips:")),
    }
    if !is_valid_host(&uri.host_with_port.host) {
        return Err(uri_error(field, s, "bad host"));
    }
    if let Some(auth) = &uri.auth {
        if auth.user.is_empty() {
            return Err(uri_error(field, s, "empty user part"));
        }
        if auth.password.is_some() {
            return Err(uri_error(field, s, "passwords in URIs are not allowed"));
        }
    }
    if uri.host_with_port.port.as_ref().is_some_and(|p| p.0 == 0) {
        return Err(uri_error(field, s, "port 0"));
    }
    Ok(uri)
}

/// `%XX` escapes to the characters they stand for; `None` when an escape is
/// malformed or the result is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The request URI of an outbound INVITE: `sip:` or `sips:`, with an
/// optional `;transport=udp|tcp|tls`. `sips:` means TLS.
pub(crate) fn parse_target(s: &str) -> Result<Target, SipError> {
    let uri = parse_sip_uri("target", s)?;
    let sips = uri.scheme == Some(Scheme::Sips);
    let transport = match (sips, uri.transport()) {
        (true, None) => UriTransport::Tls,
        (false, None) | (false, Some(Transport::Udp)) => UriTransport::Udp,
        (false, Some(Transport::Tcp)) => UriTransport::Tcp,
        // `sips:...;transport=tcp` is the RFC 3261 spelling of TLS over TCP.
        (_, Some(Transport::Tcp)) | (_, Some(Transport::Tls)) => UriTransport::Tls,
        (true, Some(Transport::Udp)) => {
            return Err(uri_error("target", s, "sips: cannot use transport=udp"))
        }
        (_, Some(other)) => {
            return Err(uri_error(
                "target",
                s,
                format!("unsupported transport {other}"),
            ))
        }
    };
    if !uri.headers.is_empty() {
        return Err(uri_error(
            "target",
            s,
            "URI headers (?...) are not allowed in a request URI",
        ));
    }
    Ok(Target { uri, transport })
}

/// A From or To URI (`sip:` or `sips:`).
pub(crate) fn parse_party(field: &'static str, s: &str) -> Result<Uri, SipError> {
    let mut uri = parse_sip_uri(field, s)?;
    // Transport and similar parameters have no meaning in From/To.
    uri.params.retain(|p| {
        !matches!(
            p,
            rsipstack::sip::Param::Transport(_) | rsipstack::sip::Param::Tag(_)
        )
    });
    if !uri.headers.is_empty() {
        return Err(uri_error(field, s, "URI headers (?...) are not allowed"));
    }
    Ok(uri)
}

/// A display name safe to put inside double quotes.
///
/// rsipstack 0.7.14 re-parses our From header for in-dialog requests with a
/// name-addr parser that knows no quoted-pair escapes and splits at the first
/// `<`: an escaped `\"` or a `<` in the name came back mangled in our BYE.
/// So `"`, `\`, `<`, `>` and control characters are dropped rather than
/// escaped.
pub(crate) fn quoted_display_name(name: &str) -> Option<String> {
    let out: String = name
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '<' | '>'))
        .collect();
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// A digest username goes into a quoted-string of our Authorization header.
pub(crate) fn check_username(username: &str) -> Result<(), SipError> {
    if username.is_empty()
        || username
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(SipError::InvalidHeader {
            name: "Authorization".into(),
            reason: "the username is empty or has quotes, backslashes or control characters".into(),
        });
    }
    Ok(())
}

/// Headers the stack builds itself; letting the caller add them would
/// duplicate or contradict ours.
const RESERVED: &[&str] = &[
    "via",
    "v",
    "from",
    "f",
    "to",
    "t",
    "call-id",
    "i",
    "cseq",
    "contact",
    "m",
    "content-length",
    "l",
    "content-type",
    "c",
    "max-forwards",
    "route",
    "record-route",
    "authorization",
    "proxy-authorization",
    "user-agent",
    "allow",
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// One caller-supplied header, checked and converted.
pub(crate) fn extra_header(name: &str, value: &str) -> Result<Header, SipError> {
    let bad = |reason: &str| SipError::InvalidHeader {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(bad("not a header name"));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(bad("set by the SIP adapter itself"));
    }
    if has_forbidden_chars(value) {
        return Err(bad("value contains CR, LF or NUL"));
    }
    Ok(rsipstack::sip::headers::make_header(
        name,
        value.trim().to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_select_transport() {
        let t = parse_target("sip:+15551234567@trunk.example.com").unwrap();
        assert_eq!(t.transport, UriTransport::Udp);
        let t = parse_target("sip:bob@127.0.0.1:5070;transport=tcp").unwrap();
        assert_eq!(t.transport, UriTransport::Tcp);
        let t = parse_target("sip:bob@127.0.0.1:5070;transport=TCP").unwrap();
        assert_eq!(t.transport, UriTransport::Tcp);
        let t = parse_target("sips:bob@example.com").unwrap();
        assert_eq!(t.transport, UriTransport::Tls);
        let t = parse_target("sip:example.com;transport=tls").unwrap();
        assert_eq!(t.transport, UriTransport::Tls);
    }

    #[test]
    fn bad_targets_are_errors() {
        for bad in [
            "",
            "bob@example.com",
            "tel:+15551234567",
            "http://example.com",
            "sip:",
            "sip:bob@",
            "sip:bob@exa mple.com",
            "sip:bob@example.com\r\nVia: x",
            "<sip:bob@example.com>",
            "sip:bob@example.com;transport=ws",
            "sips:bob@example.com;transport=udp",
            "sip:bob@example.com?Subject=hi",
            "sip:bob:pw@example.com",
            "sip:bob@example.com:0",
            "sip:bob@example.com:99999",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn percent_escapes_are_not_doubled() {
        let t = parse_target("sip:%2B15551234567@trunk.example.com").unwrap();
        assert_eq!(t.uri.to_string(), "sip:+15551234567@trunk.example.com");
        let t = parse_target("sip:a%20b@h.com").unwrap();
        assert_eq!(t.uri.to_string(), "sip:a%20b@h.com");
        assert!(parse_target("sip:%2@h.com").is_err());
        assert!(parse_target("sip:%ff@h.com").is_err());
        assert!(parse_target("sip:+1 555@h.com").is_err());
    }

    #[test]
    fn party_uris_drop_transport_and_tag() {
        let u = parse_party("from", "sip:alice@example.com;transport=tcp;tag=x").unwrap();
        assert_eq!(u.to_string(), "sip:alice@example.com");
    }

    #[test]
    fn display_names_are_escaped() {
        assert_eq!(
            quoted_display_name("Ann \"the\" \\ <caller>\r\n").as_deref(),
            Some("Ann the caller")
        );
        assert_eq!(quoted_display_name("  \r\n "), None);
    }

    #[test]
    fn usernames_are_checked() {
        assert!(check_username("alice").is_ok());
        assert!(check_username("+15551234567").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a\"b").is_err());
        assert!(check_username("a\r\nX: y").is_err());
    }

    #[test]
    fn extra_headers_are_checked() {
        assert!(extra_header("X-Call-Ref", "abc").is_ok());
        assert!(extra_header("P-Asserted-Identity", "<sip:+1555@x>").is_ok());
        assert!(extra_header("Via", "SIP/2.0/UDP 1.2.3.4").is_err());
        assert!(extra_header("call-id", "x").is_err());
        assert!(extra_header("X Bad", "x").is_err());
        assert!(extra_header("X-Inject", "a\r\nVia: evil").is_err());
        assert!(extra_header("", "x").is_err());
    }
}
