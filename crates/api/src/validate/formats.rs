//! Value formats shared by several commands (calling-api.md §3). Pure predicates, no allocation
//! beyond what parsing needs.

use std::net::Ipv4Addr;

use uuid::Uuid;

/// RFC 4122 hyphenated text (either case); the simple, braced and URN forms are refused.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

/// `^\+[1-9]\d{1,14}$` (the same rule routing uses).
pub use control::routing::is_e164;

/// Case-insensitive prefix test that never slices inside a UTF-8 character.
pub fn has_prefix_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn has_no_blanks(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `sip:` or `sips:` followed by `[user@]host[...]` with a non-empty host.
pub fn is_sip_uri(s: &str) -> bool {
    let rest = if has_prefix_ignore_case(s, "sips:") {
        &s[5..]
    } else if has_prefix_ignore_case(s, "sip:") {
        &s[4..]
    } else {
        return false;
    };
    if rest.is_empty() || !has_no_blanks(rest) {
        return false;
    }
    let host_part = match rest.rsplit_once('@') {
        Some((user, host)) if !user.is_empty() => host,
        Some(_) => return false,
        None => rest,
    };
    let host = host_part.split([';', '?']).next().unwrap_or_default();
    !host.is_empty() && !host.starts_with(':')
}

/// Splits `scheme://authority/...` and checks the authority has a host and a valid port.
fn has_valid_authority(after_scheme: &str) -> bool {
    if after_scheme.is_empty() || !has_no_blanks(after_scheme) {
        return false;
    }
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = match authority.rsplit_once('@') {
        Some((_credentials, host_port)) => host_port,
        None => authority,
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((v6, after)) => (v6, after.strip_prefix(':')),
            None => return false,
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    let port_ok = match port {
        None => true,
        Some(p) => !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n > 0),
    };
    !host.is_empty() && port_ok
}

fn url_with_scheme(s: &str, schemes: &[&str]) -> bool {
    schemes.iter().any(|scheme| {
        let prefix_len = scheme.len() + 3;
        has_prefix_ignore_case(s, scheme)
            && s.get(scheme.len()..prefix_len) == Some("://")
            && has_valid_authority(&s[prefix_len..])
    })
}

/// Absolute `http://` or `https://` URL with a host (credentials `user:pass@` allowed).
pub fn is_http_url(s: &str) -> bool {
    url_with_scheme(s, &["http", "https"])
}

/// `wss://` URL (streams refuse plain `ws://`).
pub fn is_wss_url(s: &str) -> bool {
    url_with_scheme(s, &["wss"])
}

/// `ws://` or `wss://` URL.
pub fn is_ws_url(s: &str) -> bool {
    url_with_scheme(s, &["ws", "wss"])
}

/// DTMF set: `0-9`, `A-D` (either case), `*`, `#`.
pub fn is_dtmf(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, 'A'..='D' | 'a'..='d' | '*' | '#'))
}

/// `dial.send_digits`: DTMF plus `w` (wait) and `,` (pause).
pub fn is_send_digits(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, 'A'..='D' | 'a'..='d' | '*' | '#' | 'w' | ','))
}

/// A short caller-id token (the SIP user part shown to SIP/WebRTC destinations): 1–64 of
/// `A-Z a-z 0-9 _ . -`.
pub fn is_caller_id_token(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// TTS voice names allow only `.` and `-` besides letters and digits.
pub fn is_voice_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

/// Not private, loopback, link-local, shared (CGNAT), documentation, benchmarking, multicast,
/// reserved or broadcast space.
pub fn is_public_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..=127).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..=19).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    !reserved
}

/// A `custom_variables` key: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn is_variable_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        for ok in ["+15105550100", "+12", "+123456789012345"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in [
            "15105550100",
            "+0123",
            "+1",
            "+1234567890123456",
            "+1 510",
            "+",
            "",
            "+1a",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn sip_uris() {
        for ok in [
            "sip:alice@pbx.example.net",
            "SIP:alice@h",
            "sips:bob@h:5061;transport=tls",
            "sip:pbx.example.net",
            "sip:+15105550100@carrier",
        ] {
            assert!(is_sip_uri(ok), "{ok}");
        }
        for bad in [
            "sip:",
            "sip:@host",
            "sip:alice@",
            "tel:+1555",
            "sip:al ice@h",
            "alice@h",
            "sip:a@;x",
        ] {
            assert!(!is_sip_uri(bad), "{bad}");
        }
    }

    #[test]
    fn http_urls() {
        for ok in [
            "https://example.com",
            "http://user:pass@example.com:8080/x?y=1#z",
            "HTTPS://EXAMPLE.COM/",
            "http://[::1]:8080/hook",
            "http://127.0.0.1/x",
        ] {
            assert!(is_http_url(ok), "{ok}");
        }
        for bad in [
            "ftp://example.com",
            "https://",
            "https:///path",
            "example.com",
            "https://exa mple.com",
            "https://h:0",
            "https://h:70000",
            "https://h:",
            "http:/x",
            "wss://x",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
        assert!(is_wss_url("wss://media.example.net/s"));
        assert!(!is_wss_url("ws://media.example.net/s"));
        assert!(is_ws_url("ws://media.example.net/s"));
    }

    #[test]
    fn uuids() {
        assert!(parse_uuid("0e9c80d7-a149-4917-892d-420043709f45").is_some());
        assert!(parse_uuid("0E9C80D7-A149-4917-892D-420043709F45").is_some());
        assert!(parse_uuid("0e9c80d7a1494917892d420043709f45").is_none());
        assert!(parse_uuid("{0e9c80d7-a149-4917-892d-420043709f45}").is_none());
        assert!(parse_uuid("nope").is_none());
    }

    #[test]
    fn digit_sets() {
        assert!(is_dtmf("0123456789ABCDabcd*#"));
        assert!(!is_dtmf("E"));
        assert!(is_send_digits("1w2,3#"));
        assert!(!is_send_digits("1x"));
    }

    #[test]
    fn public_addresses() {
        for private in [
            "10.1.2.3",
            "127.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.5",
            "198.18.0.1",
        ] {
            assert!(!is_public_ipv4(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "1.1.1.1"] {
            assert!(is_public_ipv4(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn variable_names_and_tokens() {
        assert!(is_variable_name("ticket_id"));
        assert!(is_variable_name("_x1"));
        assert!(!is_variable_name("1x"));
        assert!(!is_variable_name("a-b"));
        assert!(!is_variable_name(""));
        assert!(is_caller_id_token("alice.smith-1"));
        assert!(!is_caller_id_token("alice smith"));
        assert!(is_voice_name("gcloud.en-US-Neural2-A"));
        assert!(!is_voice_name("amazon.Joanna:neural"));
    }
}
