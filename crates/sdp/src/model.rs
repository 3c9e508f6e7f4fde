//! The SDP model (RFC 8866 §5): parsing and CRLF display.

use std::fmt;
use std::net::IpAddr;

use crate::{excerpt, Direction, SdpError, MAX_SDP_LEN};

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: String,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

/// `c=<nettype> <addrtype> <connection-address>` (the address may carry `/ttl[/n]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

impl Connection {
    /// A connection line for one IP address.
    pub fn for_ip(ip: IpAddr) -> Self {
        Connection {
            net_type: "IN".into(),
            addr_type: addr_type(ip).into(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP (any `/ttl` suffix dropped). Host names are not resolved.
    pub fn ip(&self) -> Result<IpAddr, SdpError> {
        let host = self.address.split('/').next().unwrap_or_default();
        host.parse()
            .map_err(|_| SdpError::InvalidAddress(excerpt(&self.address)))
    }
}

pub(crate) fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding_name: String,
    pub clock_rate: u32,
    pub encoding_params: Option<String>,
}

/// An `a=` line. The ones negotiation needs are parsed; the rest are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    RtpMap(RtpMap),
    Fmtp {
        payload_type: u8,
        params: String,
    },
    Ptime(u32),
    Direction(Direction),
    /// Any other attribute, or a known one whose value did not parse.
    Other {
        name: String,
        value: Option<String>,
    },
}

impl Attribute {
    fn parse(text: &str) -> Attribute {
        let (name, value) = match text.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (text.trim(), None),
        };
        let parsed = match (name.to_ascii_lowercase().as_str(), value) {
            ("rtpmap", Some(v)) => parse_rtpmap(v).map(Attribute::RtpMap),
            ("fmtp", Some(v)) => {
                let (pt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
                pt.parse().ok().map(|payload_type| Attribute::Fmtp {
                    payload_type,
                    params: params.trim().to_string(),
                })
            }
            ("ptime", Some(v)) => v.parse().ok().map(Attribute::Ptime),
            (n, None) => Direction::from_attribute(n).map(Attribute::Direction),
            _ => None,
        };
        parsed.unwrap_or_else(|| Attribute::Other {
            name: name.to_string(),
            value: value.map(str::to_string),
        })
    }
}

fn parse_rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, rest) = v.split_once(char::is_whitespace)?;
    let payload_type: u8 = pt.parse().ok()?;
    if payload_type > 127 {
        return None;
    }
    let mut parts = rest.trim().splitn(3, '/');
    let encoding_name = parts.next()?.trim();
    if encoding_name.is_empty() {
        return None;
    }
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let encoding_params = parts.next().map(|p| p.trim().to_string());
    Some(RtpMap {
        payload_type,
        encoding_name: encoding_name.to_string(),
        clock_rate,
        encoding_params,
    })
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(m) => {
                write!(
                    f,
                    "rtpmap:{} {}/{}",
                    m.payload_type, m.encoding_name, m.clock_rate
                )?;
                if let Some(p) = &m.encoding_params {
                    write!(f, "/{p}")?;
                }
                Ok(())
            }
            Attribute::Fmtp {
                payload_type,
                params,
            } => write!(f, "fmtp:{payload_type} {params}"),
            Attribute::Ptime(p) => write!(f, "ptime:{p}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Other { name, value: None } => f.write_str(name),
            Attribute::Other {
                name,
                value: Some(v),
            } => write!(f, "{name}:{v}"),
        }
    }
}

/// An `m=` section with its `c=`, attributes and other lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub media: String,
    pub port: u16,
    /// The `/<number of ports>` suffix, if any.
    pub port_count: Option<u32>,
    /// `RTP/AVP`, ...
    pub proto: String,
    /// Formats in preference order (payload type numbers for RTP).
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub attributes: Vec<Attribute>,
    /// Other lines (`i=`, `b=`, `k=`, unknown) as (type, value), in order.
    pub other_lines: Vec<(char, String)>,
}

impl MediaDescription {
    /// The formats that are RTP payload type numbers, in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
    }

    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap(m) if m.payload_type == payload_type => Some(m),
            _ => None,
        })
    }

    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp {
                payload_type: pt,
                params,
            } if *pt == payload_type => Some(params.as_str()),
            _ => None,
        })
    }

    pub fn ptime(&self) -> Option<u32> {
        ptime(&self.attributes)
    }

    pub fn direction(&self) -> Option<Direction> {
        direction(&self.attributes)
    }

    /// Its `c=` line, else the session's (RFC 8866 §5.7).
    pub fn connection_in<'a>(&'a self, sdp: &'a SessionDescription) -> Option<&'a Connection> {
        self.connection.as_ref().or(sdp.connection.as_ref())
    }
}

fn ptime(attrs: &[Attribute]) -> Option<u32> {
    attrs.iter().find_map(|a| match a {
        Attribute::Ptime(p) => Some(*p),
        _ => None,
    })
}

fn direction(attrs: &[Attribute]) -> Option<Direction> {
    attrs.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

/// A session description: `v=0`, `o=`, `s=`, an optional session `c=`, `t=` lines,
/// session attributes and the media sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub session_name: String,
    pub connection: Option<Connection>,
    /// `t=` values verbatim (`0 0` for a permanent session).
    pub timing: Vec<String>,
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`i=`, `u=`, `e=`, `p=`, `b=`, `r=`, `z=`, `k=`, unknown)
    /// as (type, value), in order.
    pub other_lines: Vec<(char, String)>,
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses an SDP body. Lines may end in CRLF or LF; blank lines are skipped; unknown
    /// line types and attributes are kept. Errors on anything that is not `<letter>=...`,
    /// a missing `v=0` first line, a missing or malformed `o=`, and malformed `c=`/`m=`.
    pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        if text.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge(text.len()));
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut saw_version = false;
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut timing = Vec::new();
        let mut attributes = Vec::new();
        let mut other_lines = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();

        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let invalid = |reason| SdpError::InvalidLine {
                line: line_no,
                reason,
            };
            let bytes = line.as_bytes();
            if bytes.len() < 2 || !bytes[0].is_ascii_alphabetic() || bytes[1] != b'=' {
                return Err(if saw_version {
                    invalid("not a <type>=<value> line")
                } else {
                    SdpError::MissingVersion
                });
            }
            let kind = char::from(bytes[0]);
            // Both leading bytes are ASCII, so index 2 is a char boundary.
            let value = line.get(2..).unwrap_or_default();
            if !saw_version {
                if kind != 'v' {
                    return Err(SdpError::MissingVersion);
                }
                if value.trim() != "0" {
                    return Err(SdpError::UnsupportedVersion(excerpt(value)));
                }
                saw_version = true;
                continue;
            }
            match kind {
                'v' => return Err(invalid("repeated v= line")),
                'm' => media.push(parse_media(value).ok_or(invalid("malformed m= line"))?),
                'c' => {
                    let c = parse_connection(value).ok_or(invalid("malformed c= line"))?;
                    match media.last_mut() {
                        Some(m) => m.connection = Some(c),
                        None => connection = Some(c),
                    }
                }
                'a' => {
                    let a = Attribute::parse(value);
                    match media.last_mut() {
                        Some(m) => m.attributes.push(a),
                        None => attributes.push(a),
                    }
                }
                'o' if media.is_empty() => {
                    if origin.is_some() {
                        return Err(invalid("repeated o= line"));
                    }
                    origin = Some(parse_origin(value).ok_or(invalid("malformed o= line"))?);
                }
                's' if media.is_empty() && session_name.is_none() => {
                    session_name = Some(value.to_string());
                }
                't' if media.is_empty() => timing.push(value.trim().to_string()),
                _ => match media.last_mut() {
                    Some(m) => m.other_lines.push((kind, value.to_string())),
                    None => other_lines.push((kind, value.to_string())),
                },
            }
        }
        if !saw_version {
            return Err(SdpError::MissingVersion);
        }
        // Keep the other lines in the order Display writes them, so that
        // `parse(display(x)) == x`.
        other_lines.sort_by_key(|(k, _)| session_rank(*k));
        for m in &mut media {
            m.other_lines.sort_by_key(|(k, _)| media_rank(*k));
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::MissingOrigin)?,
            session_name: session_name.unwrap_or_else(|| "-".to_string()),
            connection,
            timing,
            attributes,
            other_lines,
            media,
        })
    }

    pub fn ptime(&self) -> Option<u32> {
        ptime(&self.attributes)
    }

    pub fn direction(&self) -> Option<Direction> {
        direction(&self.attributes)
    }
}

/// Where a session-level line goes in RFC 8866 §5 order: i u e p, (c), b, (t), r z, k,
/// then unknown types.
fn session_rank(kind: char) -> u8 {
    match kind {
        'i' | 'u' | 'e' | 'p' => 0,
        'b' => 1,
        'r' | 'z' => 2,
        'k' => 3,
        _ => 4,
    }
}

/// Media-level order: i, (c), b, k, then unknown types.
fn media_rank(kind: char) -> u8 {
    match kind {
        'i' => 0,
        'b' => 1,
        'k' => 2,
        _ => 3,
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let f: Vec<&str> = value.split_whitespace().collect();
    match f.as_slice() {
        [username, id, version, net, addr_type, address] => Some(Origin {
            username: username.to_string(),
            session_id: id.to_string(),
            session_version: version.to_string(),
            net_type: net.to_string(),
            addr_type: addr_type.to_string(),
            address: address.to_string(),
        }),
        _ => None,
    }
}

fn parse_connection(value: &str) -> Option<Connection> {
    let f: Vec<&str> = value.split_whitespace().collect();
    match f.as_slice() {
        [net, addr_type, address] => Some(Connection {
            net_type: net.to_string(),
            addr_type: addr_type.to_string(),
            address: address.to_string(),
        }),
        _ => None,
    }
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut f = value.split_whitespace();
    let media = f.next()?.to_string();
    let port_field = f.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = f.next()?.to_string();
    Some(MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats: f.map(str::to_string).collect(),
        connection: None,
        attributes: Vec::new(),
        other_lines: Vec::new(),
    })
}

fn write_others(
    f: &mut fmt::Formatter<'_>,
    lines: &[(char, String)],
    pick: impl Fn(char) -> bool,
) -> fmt::Result {
    for (kind, value) in lines.iter().filter(|(k, _)| pick(*k)) {
        write!(f, "{kind}={value}\r\n")?;
    }
    Ok(())
}

fn write_connection(f: &mut fmt::Formatter<'_>, c: &Option<Connection>) -> fmt::Result {
    match c {
        Some(c) => write!(f, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address),
        None => Ok(()),
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt_ in &self.formats {
            write!(f, " {fmt_}")?;
        }
        f.write_str("\r\n")?;
        write_others(f, &self.other_lines, |k| media_rank(k) == 0)?;
        write_connection(f, &self.connection)?;
        write_others(f, &self.other_lines, |k| media_rank(k) > 0)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}

/// Writes the description in RFC 8866 line order with CRLF line endings.
impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        f.write_str("v=0\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        write_others(f, &self.other_lines, |k| session_rank(k) == 0)?;
        write_connection(f, &self.connection)?;
        write_others(f, &self.other_lines, |k| session_rank(k) == 1)?;
        for t in &self.timing {
            write!(f, "t={t}\r\n")?;
        }
        write_others(f, &self.other_lines, |k| session_rank(k) > 1)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}
