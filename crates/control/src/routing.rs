//! Where a `dial` goes on the wire: SIP URIs directly, E.164 numbers through the default trunk.

use std::fmt;

/// A SIP trunk given as `sip:[user[:password]@]host[:port][;transport=udp|tcp]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Trunk {
    pub host: String,
    pub port: Option<u16>,
    pub transport_tcp: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for Trunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("Trunk")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("transport_tcp", &self.transport_tcp)
            .field("username", &self.username)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("E.164 destinations need a SIP trunk (set DIALTONE_DEFAULT_TRUNK)")]
    NoTrunk,
    #[error("destination `{0}` is not a SIP URI or E.164 number this node can reach")]
    Unroutable(String),
    #[error("trunk URI is invalid: {0}")]
    BadTrunk(String),
}

impl Trunk {
    pub fn parse(uri: &str) -> Result<Trunk, RouteError> {
        let bad = || RouteError::BadTrunk("expected sip:[user[:password]@]host[:port]".into());
        let rest = uri.strip_prefix("sip:").ok_or_else(bad)?;
        let (main, params) = match rest.split_once(';') {
            Some((m, p)) => (m, p),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match main.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, main),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (Some(user.to_string()), Some(pass.to_string())),
                None => (Some(u.to_string()), None),
            },
            None => (None, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(']') || h.ends_with(']') => {
                (h.to_string(), Some(p.parse::<u16>().map_err(|_| bad())?))
            }
            _ => (hostport.to_string(), None),
        };
        if host.is_empty() {
            return Err(bad());
        }
        let transport_tcp = params
            .split(';')
            .any(|p| p.eq_ignore_ascii_case("transport=tcp"));
        Ok(Trunk {
            host,
            port,
            transport_tcp,
            username,
            password,
        })
    }

    /// The request URI for a number on this trunk.
    pub fn uri_for(&self, number: &str) -> String {
        let mut uri = format!("sip:{number}@{}", self.host);
        if let Some(p) = self.port {
            uri.push_str(&format!(":{p}"));
        }
        if self.transport_tcp {
            uri.push_str(";transport=tcp");
        }
        uri
    }
}

/// The resolved wire target of a dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub request_uri: String,
    pub to_uri: String,
    /// Digest credentials for 401/407: the dial's own, else the trunk's.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl RouteError {
    /// The 422 a destination that cannot be routed answers, naming the attribute it came in.
    pub fn to_control(&self, attribute: &str) -> crate::ControlError {
        crate::ControlError::Unprocessable {
            code: match self {
                RouteError::NoTrunk => "not_routable",
                _ => "to_destination_unresolvable",
            },
            message: self.to_string(),
            attribute: Some(attribute.into()),
        }
    }
}

pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

pub fn resolve(
    to: &str,
    trunk: Option<&Trunk>,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Route, RouteError> {
    let lower = to.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        return Ok(Route {
            request_uri: to.to_string(),
            to_uri: strip_uri_params(to),
            username: username.map(str::to_string),
            password: password.map(str::to_string),
        });
    }
    if is_e164(to) {
        let trunk = trunk.ok_or(RouteError::NoTrunk)?;
        let uri = trunk.uri_for(to);
        return Ok(Route {
            to_uri: strip_uri_params(&uri),
            request_uri: uri,
            username: username
                .map(str::to_string)
                .or_else(|| trunk.username.clone()),
            password: password
                .map(str::to_string)
                .or_else(|| trunk.password.clone()),
        });
    }
    Err(RouteError::Unroutable(to.to_string()))
}

/// The From URI for the INVITE: a SIP URI as given, otherwise the number/token at our address.
pub fn from_uri(from: &str, caller_id: Option<&str>, local_host: &str) -> String {
    let who = caller_id.unwrap_or(from);
    let lower = who.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        who.to_string()
    } else {
        let user: String = who
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()&=$,;?/".contains(*c))
            .collect();
        let user = if user.is_empty() {
            "dialtone".to_string()
        } else {
            user
        };
        format!("sip:{user}@{local_host}")
    }
}

/// `To` header URIs carry no URI parameters such as `transport`.
fn strip_uri_params(uri: &str) -> String {
    match uri.split_once(';') {
        Some((base, _)) => base.to_string(),
        None => uri.to_string(),
    }
}

/// One configured route for inbound calls.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRoute {
    /// The called number or SIP user (the Request-URI user), or `*` for every other call.
    pub destination: String,
    /// Where the call's SWML document is fetched (POST, signed).
    pub url: Option<String>,
    /// An inline document (validated when the configuration is loaded).
    pub swml: Option<serde_json::Value>,
    /// Where `calling.call.state` webhooks for these calls go.
    pub status_url: Option<String>,
}

/// The route for a call to `called_user`: an exact match (a leading `+` is optional on
/// either side), else the `*` route.
pub fn route_for<'a>(routes: &'a [InboundRoute], called_user: &str) -> Option<&'a InboundRoute> {
    let bare = |s: &str| s.trim_start_matches('+').to_ascii_lowercase();
    let wanted = bare(called_user);
    routes
        .iter()
        .find(|r| r.destination != "*" && bare(&r.destination) == wanted)
        .or_else(|| routes.iter().find(|r| r.destination == "*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_parsing() {
        let t = Trunk::parse("sip:alice:s3cret@127.0.0.1:5070;transport=tcp").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, Some(5070));
        assert!(t.transport_tcp);
        assert_eq!(t.username.as_deref(), Some("alice"));
        assert_eq!(t.password.as_deref(), Some("s3cret"));
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(
            t.uri_for("+14155550100"),
            "sip:+14155550100@127.0.0.1:5070;transport=tcp"
        );
        let plain = Trunk::parse("sip:carrier.example").unwrap();
        assert_eq!(plain.port, None);
        assert!(Trunk::parse("http://x").is_err());
        assert!(Trunk::parse("sip:h:notaport").is_err());
    }

    #[test]
    fn resolves_sip_and_e164() {
        let r = resolve(
            "sip:bob@127.0.0.1:5099;transport=tcp",
            None,
            Some("u"),
            Some("p"),
        )
        .unwrap();
        assert_eq!(r.request_uri, "sip:bob@127.0.0.1:5099;transport=tcp");
        assert_eq!(r.to_uri, "sip:bob@127.0.0.1:5099");
        assert_eq!(r.username.as_deref(), Some("u"));
        assert_eq!(
            resolve("+14155550100", None, None, None),
            Err(RouteError::NoTrunk)
        );
        let t = Trunk::parse("sip:tu:tp@10.0.0.1").unwrap();
        let r = resolve("+14155550100", Some(&t), None, None).unwrap();
        assert_eq!(r.request_uri, "sip:+14155550100@10.0.0.1");
        assert_eq!(r.password.as_deref(), Some("tp"));
        assert!(matches!(
            resolve("verto:x@y", Some(&t), None, None),
            Err(RouteError::Unroutable(_))
        ));
    }

    #[test]
    fn from_uris() {
        assert_eq!(
            from_uri("+15105550100", None, "127.0.0.1"),
            "sip:+15105550100@127.0.0.1"
        );
        assert_eq!(from_uri("x", Some("sip:ceo@corp"), "h"), "sip:ceo@corp");
        assert_eq!(from_uri("<>\"", None, "h"), "sip:dialtone@h");
        assert!(is_e164("+14155550100"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("14155550100"));
    }

    fn route(dest: &str) -> InboundRoute {
        InboundRoute {
            destination: dest.into(),
            url: Some(format!("http://127.0.0.1/{dest}")),
            swml: None,
            status_url: None,
        }
    }

    #[test]
    fn exact_then_default() {
        let routes = vec![route("+15551230000"), route("support"), route("*")];
        assert_eq!(
            route_for(&routes, "15551230000").unwrap().destination,
            "+15551230000"
        );
        assert_eq!(
            route_for(&routes, "+15551230000").unwrap().destination,
            "+15551230000"
        );
        assert_eq!(
            route_for(&routes, "Support").unwrap().destination,
            "support"
        );
        assert_eq!(route_for(&routes, "sales").unwrap().destination, "*");
        assert!(route_for(&routes[..2], "sales").is_none());
        assert!(route_for(&[], "x").is_none());
    }
}
