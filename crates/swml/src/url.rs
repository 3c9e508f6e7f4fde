//! URL pieces shared by the interpreter, the API and the node: percent-encoding and webhook
//! credentials put into a URL's user info.

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` with `user`/`pass` (percent-encoded) as its user info — webhooks' basic auth given
/// beside the URL (`web_hook_auth_user`/`_password`). A URL with user info of its own, or no
/// user, stays as it is.
pub fn with_basic_auth(url: &str, user: Option<&str>, pass: Option<&str>) -> String {
    match (user, url.split_once("://")) {
        (Some(user), Some((scheme, rest))) if !rest.contains('@') => format!(
            "{scheme}://{}:{}@{rest}",
            percent_encode(user),
            percent_encode(pass.unwrap_or(""))
        ),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_puts_credentials_in() {
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(percent_encode("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(
            with_basic_auth("https://h.test/x", Some("u@1"), Some("p:w")),
            "https://u%401:p%3Aw@h.test/x"
        );
        assert_eq!(
            with_basic_auth("https://a:b@h.test/x", Some("u"), Some("p")),
            "https://a:b@h.test/x"
        );
        assert_eq!(
            with_basic_auth("https://h.test/x", None, Some("p")),
            "https://h.test/x"
        );
    }
}
