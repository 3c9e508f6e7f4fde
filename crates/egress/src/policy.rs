//! The pure decision: which URLs and which addresses an outbound request may reach.
//!
//! The order of the rules (docs/security.md, "Egress"):
//!
//! 1. the scheme is `http` or `https`, and the URL has a host;
//! 2. a `deny` entry matching the host name or the address refuses;
//! 3. an `allow` CIDR containing the address allows (it lifts every rule below);
//! 4. unspecified, link-local, cloud-metadata, multicast and reserved addresses are refused;
//! 5. an `allow` host name allows (it lifts `public-only` for that name);
//! 6. in `public-only` mode loopback, private, shared (CGNAT) and other non-global addresses are
//!    refused; in the default mode they are allowed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use reqwest::Url;

/// Which addresses beyond the public internet are reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Loopback and private ranges are allowed: a self-hosted server's receivers often live
    /// on the same host or network.
    #[default]
    Default,
    /// Only globally routable addresses (and what `allow` lists).
    PublicOnly,
}

impl FromStr for Mode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Mode, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "default" | "" => Ok(Mode::Default),
            "public-only" | "public_only" => Ok(Mode::PublicOnly),
            _ => Err(ConfigError::Mode(s.to_owned())),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Default => "default",
            Mode::PublicOnly => "public-only",
        })
    }
}

/// A configuration mistake in the egress section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("egress mode {0:?} is neither \"default\" nor \"public-only\"")]
    Mode(String),
    #[error("egress entry {0:?} is neither an address, a CIDR, a host name nor *.domain")]
    Entry(String),
}

/// One `allow` / `deny` entry: a network or a host name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An address or CIDR (`127.0.0.1`, `10.0.0.0/8`, `fd00::/8`).
    Net(IpNet),
    /// `hooks.example.com` (that name only) or `*.example.com` (names below it, not the
    /// domain itself). Lower case, without a trailing dot.
    Host { name: String, subdomains: bool },
}

impl FromStr for Entry {
    type Err = ConfigError;

    fn from_str(raw: &str) -> Result<Entry, ConfigError> {
        let s = raw.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Entry::Net(net.trunc()));
        }
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Entry::Net(IpNet::from(ip)));
        }
        let lower = s.trim_end_matches('.').to_ascii_lowercase();
        let (name, subdomains) = match lower.strip_prefix("*.") {
            Some(rest) => (rest.to_owned(), true),
            None => (lower, false),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(ConfigError::Entry(raw.to_owned()));
        }
        Ok(Entry::Host { name, subdomains })
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Net(n) => write!(f, "{n}"),
            Entry::Host {
                name,
                subdomains: true,
            } => write!(f, "*.{name}"),
            Entry::Host { name, .. } => f.write_str(name),
        }
    }
}

impl Entry {
    fn matches_host(&self, host: &str) -> bool {
        let Entry::Host { name, subdomains } = self else {
            return false;
        };
        let host = host.trim_end_matches('.');
        if *subdomains {
            host.len() > name.len() + 1
                && host[host.len() - name.len()..].eq_ignore_ascii_case(name)
                && host.as_bytes()[host.len() - name.len() - 1] == b'.'
        } else {
            host.eq_ignore_ascii_case(name)
        }
    }

    fn matches_addr(&self, ip: IpAddr) -> bool {
        match self {
            Entry::Net(n) => n.contains(&ip) || n.contains(&ip.to_canonical()),
            Entry::Host { .. } => false,
        }
    }
}

/// What kind of address an IP is, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `0.0.0.0/8`, `::` (on Linux, connecting to 0.0.0.0 reaches the host itself).
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud provider's instance metadata or platform endpoint (169.254.169.254,
    /// 169.254.170.2, fd00:ec2::254, 100.100.100.200, 168.63.129.16).
    Metadata,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `240.0.0.0/4` (with the broadcast address) and the deprecated IPv4-compatible `::/96`.
    Reserved,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`, the deprecated site-local `fec0::/10`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT shared space.
    Shared,
    /// Other ranges that are not globally routable: IETF protocol assignments, benchmarking,
    /// documentation, discard, local-use NAT64.
    NonGlobal,
    /// Everything else.
    Public,
}

impl Class {
    /// Refused unless an `allow` CIDR contains the address.
    pub fn always_refused(self) -> bool {
        matches!(
            self,
            Class::Unspecified
                | Class::LinkLocal
                | Class::Metadata
                | Class::Multicast
                | Class::Reserved
        )
    }

    /// A short description for logs and errors.
    pub fn describe(self) -> &'static str {
        match self {
            Class::Unspecified => "an unspecified address",
            Class::Loopback => "a loopback address",
            Class::LinkLocal => "a link-local address",
            Class::Metadata => "a cloud metadata address",
            Class::Multicast => "a multicast address",
            Class::Reserved => "a reserved address",
            Class::Private => "a private address",
            Class::Shared => "a shared (CGNAT) address",
            Class::NonGlobal => "a non-global address",
            Class::Public => "a public address",
        }
    }
}

const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    let n = Ipv6Addr::new(
        net[0], net[1], net[2], net[3], net[4], net[5], net[6], net[7],
    );
    u128::from(ip) & mask == u128::from(n) & mask
}

/// The class of an IPv4 address.
pub fn classify_v4(ip: Ipv4Addr) -> Class {
    if METADATA_V4.contains(&ip) {
        return Class::Metadata;
    }
    let table: &[([u8; 4], u32, Class)] = &[
        ([0, 0, 0, 0], 8, Class::Unspecified),
        ([127, 0, 0, 0], 8, Class::Loopback),
        ([169, 254, 0, 0], 16, Class::LinkLocal),
        ([224, 0, 0, 0], 4, Class::Multicast),
        ([240, 0, 0, 0], 4, Class::Reserved),
        ([10, 0, 0, 0], 8, Class::Private),
        ([172, 16, 0, 0], 12, Class::Private),
        ([192, 168, 0, 0], 16, Class::Private),
        ([100, 64, 0, 0], 10, Class::Shared),
        ([192, 0, 0, 0], 24, Class::NonGlobal),
        ([192, 0, 2, 0], 24, Class::NonGlobal),
        ([192, 88, 99, 0], 24, Class::NonGlobal),
        ([198, 18, 0, 0], 15, Class::NonGlobal),
        ([198, 51, 100, 0], 24, Class::NonGlobal),
        ([203, 0, 113, 0], 24, Class::NonGlobal),
    ];
    table
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map_or(Class::Public, |(_, _, c)| *c)
}

/// The class of an IP address. IPv6 addresses that carry an IPv4 address the host or a
/// gateway would reach (v4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
/// are the class of that IPv4 address.
pub fn classify(ip: IpAddr) -> Class {
    let v6 = match ip {
        IpAddr::V4(v4) => return classify_v4(v4),
        IpAddr::V6(v6) => v6,
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let o = v6.octets();
    if in_v6(v6, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return classify_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if in_v6(v6, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return classify_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    if METADATA_V6.contains(&v6) {
        return Class::Metadata;
    }
    if v6.is_unspecified() {
        return Class::Unspecified;
    }
    if v6.is_loopback() {
        return Class::Loopback;
    }
    let table: &[([u16; 8], u32, Class)] = &[
        ([0, 0, 0, 0, 0, 0, 0, 0], 96, Class::Reserved),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Class::LinkLocal),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Class::Multicast),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Class::Private),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Class::Private),
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Class::NonGlobal),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Class::NonGlobal),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Class::NonGlobal),
    ];
    table
        .iter()
        .find(|(net, len, _)| in_v6(v6, *net, *len))
        .map_or(Class::Public, |(_, _, c)| *c)
}

/// Why a URL or an address was refused: the rule, for the operator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Only `http` and `https`.
    Scheme(String),
    /// A URL without a host.
    NoHost,
    /// An `egress.deny` entry matched.
    Denied(Entry),
    /// The address is of a class refused unless an `egress.allow` CIDR contains it.
    AlwaysRefused(Class),
    /// `public-only` mode and a non-public address.
    PublicOnly(Class),
}

impl Rule {
    /// A short stable name for logs: `scheme`, `no-host`, `deny`, `always-refused`,
    /// `public-only`.
    pub fn key(&self) -> &'static str {
        match self {
            Rule::Scheme(_) => "scheme",
            Rule::NoHost => "no-host",
            Rule::Denied(_) => "deny",
            Rule::AlwaysRefused(_) => "always-refused",
            Rule::PublicOnly(_) => "public-only",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Scheme(s) => write!(f, "scheme {s:?} is not http or https"),
            Rule::NoHost => f.write_str("the URL has no host"),
            Rule::Denied(e) => write!(f, "matches egress.deny entry {e}"),
            Rule::AlwaysRefused(c) => write!(
                f,
                "{}, refused unless an egress.allow CIDR contains it",
                c.describe()
            ),
            Rule::PublicOnly(c) => write!(f, "{}, refused in public-only mode", c.describe()),
        }
    }
}

/// A refusal or a failure to find where to connect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The policy refused the target (a URL, a host name or an address).
    #[error("egress policy refused {target}: {rule}")]
    Refused { target: String, rule: Rule },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    /// Too many redirects.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

impl EgressError {
    fn refused(target: impl fmt::Display, rule: Rule) -> EgressError {
        EgressError::Refused {
            target: target.to_string(),
            rule,
        }
    }

    /// The rule, when this is a refusal.
    pub fn rule(&self) -> Option<&Rule> {
        match self {
            EgressError::Refused { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

/// The egress policy: a mode and the operator's `allow` and `deny` lists. Pure; see the
/// module documentation for the order of the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    pub mode: Mode,
    pub allow: Vec<Entry>,
    pub deny: Vec<Entry>,
}

impl EgressPolicy {
    /// A policy from configuration text: the mode and the entries as written.
    pub fn parse<A, D>(mode: &str, allow: A, deny: D) -> Result<EgressPolicy, ConfigError>
    where
        A: IntoIterator,
        A::Item: AsRef<str>,
        D: IntoIterator,
        D::Item: AsRef<str>,
    {
        let entries = |it: Vec<String>| -> Result<Vec<Entry>, ConfigError> {
            it.iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.parse())
                .collect()
        };
        Ok(EgressPolicy {
            mode: mode.parse()?,
            allow: entries(allow.into_iter().map(|s| s.as_ref().to_owned()).collect())?,
            deny: entries(deny.into_iter().map(|s| s.as_ref().to_owned()).collect())?,
        })
    }

    /// What can be decided from the URL alone: the scheme, a denied host name, and a host
    /// that is an address literal (which is connected to without resolution).
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::refused(
                redact(url),
                Rule::Scheme(url.scheme().to_owned()),
            ));
        }
        match url.host() {
            None => Err(EgressError::refused(redact(url), Rule::NoHost)),
            Some(url::Host::Domain(d)) => self.check_name(d),
            Some(url::Host::Ipv4(a)) => self.check_addr(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => self.check_addr(IpAddr::V6(a)),
        }
    }

    /// [`check_url`](Self::check_url) on URL text; text that does not parse as a URL passes
    /// (its syntax is for the caller to judge). For checks up front, before any request.
    pub fn check_url_text(&self, raw: &str) -> Result<(), EgressError> {
        match Url::parse(raw.trim()) {
            Ok(url) => self.check_url(&url),
            Err(_) => Ok(()),
        }
    }

    /// A host name before resolution: refused when a `deny` host entry matches it.
    pub fn check_name(&self, host: &str) -> Result<(), EgressError> {
        match self.deny.iter().find(|e| e.matches_host(host)) {
            Some(e) => Err(EgressError::refused(host, Rule::Denied(e.clone()))),
            None => Ok(()),
        }
    }

    /// An address literal (no host name).
    pub fn check_addr(&self, ip: IpAddr) -> Result<(), EgressError> {
        self.check_resolved(None, ip)
    }

    /// An address `host` resolved to (or a literal address when `host` is `None`).
    pub fn check_resolved(&self, host: Option<&str>, ip: IpAddr) -> Result<(), EgressError> {
        let target = || match host {
            Some(h) => format!("{h} ({ip})"),
            None => ip.to_string(),
        };
        if let Some(h) = host {
            self.check_name(h)?;
        }
        if let Some(e) = self.deny.iter().find(|e| e.matches_addr(ip)) {
            return Err(EgressError::refused(target(), Rule::Denied(e.clone())));
        }
        if self.allow.iter().any(|e| e.matches_addr(ip)) {
            return Ok(());
        }
        let class = classify(ip);
        if class.always_refused() {
            return Err(EgressError::refused(target(), Rule::AlwaysRefused(class)));
        }
        if let Some(h) = host {
            if self.allow.iter().any(|e| e.matches_host(h)) {
                return Ok(());
            }
        }
        if self.mode == Mode::PublicOnly && class != Class::Public {
            return Err(EgressError::refused(target(), Rule::PublicOnly(class)));
        }
        Ok(())
    }

    /// Every address a name resolved to must pass; one refused address refuses the name (a
    /// name that answers with a metadata address next to a public one is not trusted).
    pub fn check_all<I>(&self, host: &str, addrs: I) -> Result<(), EgressError>
    where
        I: IntoIterator<Item = IpAddr>,
    {
        let mut any = false;
        for ip in addrs {
            any = true;
            self.check_resolved(Some(host), ip)?;
        }
        if !any {
            return Err(EgressError::Resolve {
                host: host.to_owned(),
                reason: "no addresses".into(),
            });
        }
        Ok(())
    }
}

/// A URL for logs: without userinfo, query or fragment.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}
