//! T.38 fax over UDPTL: the SDP of ITU-T T.38 Annex D, exchanged in a re-INVITE that moves
//! an established call from audio to fax (RFC 3264 offer/answer).

use std::net::SocketAddr;

use crate::model::{Attribute, MediaDescription};
use crate::negotiate::{rejected, session, LocalMedia};
use crate::{excerpt, SdpError, SessionDescription};

const VERSION: &str = "T38FaxVersion";
const MAX_BIT_RATE: &str = "T38MaxBitRate";
const FILL_BIT_REMOVAL: &str = "T38FaxFillBitRemoval";
const TRANSCODING_MMR: &str = "T38FaxTranscodingMMR";
const TRANSCODING_JBIG: &str = "T38FaxTranscodingJBIG";
const RATE_MANAGEMENT: &str = "T38FaxRateManagement";
const MAX_BUFFER: &str = "T38FaxMaxBuffer";
const MAX_DATAGRAM: &str = "T38FaxMaxDatagram";
const UDP_EC: &str = "T38FaxUdpEC";

/// How the TCF training check is handled (`a=T38FaxRateManagement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T38RateManagement {
    /// `transferredTCF`: the TCF crosses the IP network; what T.38 prescribes over UDP.
    TransferredTcf,
    /// `localTCF`: each gateway generates and checks TCF itself (meant for TCP).
    LocalTcf,
}

impl T38RateManagement {
    pub fn as_str(self) -> &'static str {
        match self {
            T38RateManagement::TransferredTcf => "transferredTCF",
            T38RateManagement::LocalTcf => "localTCF",
        }
    }

    /// Parses an attribute value, case-insensitively since gateways vary.
    pub fn from_value(value: &str) -> Option<T38RateManagement> {
        [
            T38RateManagement::TransferredTcf,
            T38RateManagement::LocalTcf,
        ]
        .into_iter()
        .find(|r| r.as_str().eq_ignore_ascii_case(value.trim()))
    }
}

/// UDPTL error protection (`a=T38FaxUdpEC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T38ErrorCorrection {
    /// No attribute: every IFP packet is sent once.
    None,
    /// `t38UDPRedundancy`: each datagram repeats earlier packets; every UDPTL stack has it.
    Redundancy,
    /// `t38UDPFEC`: parity packets; rarely implemented, and not sent by dialtone.
    Fec,
}

impl T38ErrorCorrection {
    /// The attribute value, `None` for no attribute.
    pub fn as_value(self) -> Option<&'static str> {
        match self {
            T38ErrorCorrection::None => None,
            T38ErrorCorrection::Redundancy => Some("t38UDPRedundancy"),
            T38ErrorCorrection::Fec => Some("t38UDPFEC"),
        }
    }

    /// Parses an attribute value, case-insensitively.
    pub fn from_value(value: &str) -> Option<T38ErrorCorrection> {
        [T38ErrorCorrection::Redundancy, T38ErrorCorrection::Fec]
            .into_iter()
            .find(|e| {
                e.as_value()
                    .is_some_and(|v| v.eq_ignore_ascii_case(value.trim()))
            })
    }
}

/// T.38 session parameters (T.38 Annex D SDP attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Params {
    /// `a=T38FaxVersion`; 0 when absent.
    pub version: u32,
    /// `a=T38MaxBitRate`, in bit/s.
    pub max_bit_rate: u32,
    /// `a=T38FaxRateManagement`.
    pub rate_management: T38RateManagement,
    /// `a=T38FaxMaxBuffer`: the declaring side's receive buffer, in bytes.
    pub max_buffer: Option<u32>,
    /// `a=T38FaxMaxDatagram`: the largest UDPTL payload the declaring side accepts.
    pub max_datagram: Option<u32>,
    /// `a=T38FaxUdpEC`.
    pub error_correction: T38ErrorCorrection,
    /// `a=T38FaxFillBitRemoval`.
    pub fill_bit_removal: bool,
    /// `a=T38FaxTranscodingMMR`.
    pub transcoding_mmr: bool,
    /// `a=T38FaxTranscodingJBIG`.
    pub transcoding_jbig: bool,
}

/// What dialtone offers.
///
/// * Version 0: understood by every gateway, and higher versions only add V.34 fax, which
///   we do not relay anyway; the answer can only lower it.
/// * 14400 bit/s: V.17, the fastest non-V.34 modem.
/// * `transferredTCF`: the method T.38 prescribes for UDPTL.
/// * MaxBuffer 1800: one second of page data at 14400 bit/s.
/// * MaxDatagram 400: room for a 14400 bit/s IFP packet with several redundant copies,
///   yet well under the 548 bytes of UDP payload a 576-byte minimum-MTU path carries
///   unfragmented; the value common gateways (Asterisk, FreeSWITCH) use too.
/// * Redundancy: the only UDPTL error protection every stack implements.
/// * No fill-bit removal or transcoding: we relay the page data as it comes.
impl Default for T38Params {
    fn default() -> Self {
        T38Params {
            version: 0,
            max_bit_rate: 14400,
            rate_management: T38RateManagement::TransferredTcf,
            max_buffer: Some(1800),
            max_datagram: Some(400),
            error_correction: T38ErrorCorrection::Redundancy,
            fill_bit_removal: false,
            transcoding_mmr: false,
            transcoding_jbig: false,
        }
    }
}

impl T38Params {
    /// The attribute lines in the order of the Annex D examples: flags only when true,
    /// buffer and datagram limits only when known.
    fn attributes(&self) -> Vec<Attribute> {
        let attr = |name: &str, value: Option<String>| Attribute::Other {
            name: name.to_string(),
            value,
        };
        let mut out = vec![
            attr(VERSION, Some(self.version.to_string())),
            attr(MAX_BIT_RATE, Some(self.max_bit_rate.to_string())),
        ];
        for (on, name) in [
            (self.fill_bit_removal, FILL_BIT_REMOVAL),
            (self.transcoding_mmr, TRANSCODING_MMR),
            (self.transcoding_jbig, TRANSCODING_JBIG),
        ] {
            if on {
                out.push(attr(name, None));
            }
        }
        out.push(attr(
            RATE_MANAGEMENT,
            Some(self.rate_management.as_str().to_string()),
        ));
        if let Some(n) = self.max_buffer {
            out.push(attr(MAX_BUFFER, Some(n.to_string())));
        }
        if let Some(n) = self.max_datagram {
            out.push(attr(MAX_DATAGRAM, Some(n.to_string())));
        }
        if let Some(ec) = self.error_correction.as_value() {
            out.push(attr(UDP_EC, Some(ec.to_string())));
        }
        out
    }
}

/// The outcome of a T.38 negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Negotiated {
    /// Where to send UDPTL: media-level `c=` (else session-level) with the `m=image` port.
    pub remote: SocketAddr,
    /// What both sides settled. `max_buffer` and `max_datagram` are the far end's receive
    /// limits (ours when it gave none), since those are what our sender must respect.
    pub params: T38Params,
}

/// What one side's SDP declared; `None` where an attribute was absent or unparsable, so
/// that the settling rules, not a made-up value, decide.
#[derive(Debug, Default)]
struct Declared {
    version: Option<u32>,
    max_bit_rate: Option<u32>,
    rate_management: Option<T38RateManagement>,
    max_buffer: Option<u32>,
    max_datagram: Option<u32>,
    error_correction: Option<T38ErrorCorrection>,
    fill_bit_removal: Option<bool>,
    transcoding_mmr: Option<bool>,
    transcoding_jbig: Option<bool>,
}

/// A count: zero is as meaningless as garbage for a rate or a size.
fn positive(value: Option<&str>) -> Option<u32> {
    value?.trim().parse().ok().filter(|n| *n > 0)
}

/// Annex D flags are bare; some gateways write `:1` or `:0`. Anything else is not a yes.
fn flag(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("") => true,
        Some(v) => v == "1" || v.eq_ignore_ascii_case("true"),
    }
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

impl Declared {
    /// Reads the media section's attributes, then the session's (some endpoints put them
    /// there); the first usable occurrence of each wins.
    fn read(sdp: &SessionDescription, media: &MediaDescription) -> Declared {
        let mut d = Declared::default();
        for a in media.attributes.iter().chain(&sdp.attributes) {
            let Attribute::Other { name, value } = a else {
                continue;
            };
            let value = value.as_deref();
            let is = |canonical: &str| name.eq_ignore_ascii_case(canonical);
            if is(VERSION) {
                set(&mut d.version, value.and_then(|v| v.trim().parse().ok()));
            } else if is(MAX_BIT_RATE) {
                set(&mut d.max_bit_rate, positive(value));
            } else if is(RATE_MANAGEMENT) {
                set(
                    &mut d.rate_management,
                    value.and_then(T38RateManagement::from_value),
                );
            } else if is(MAX_BUFFER) {
                set(&mut d.max_buffer, positive(value));
            } else if is(MAX_DATAGRAM) {
                set(&mut d.max_datagram, positive(value));
            } else if is(UDP_EC) {
                set(
                    &mut d.error_correction,
                    value.and_then(T38ErrorCorrection::from_value),
                );
            } else if is(FILL_BIT_REMOVAL) {
                set(&mut d.fill_bit_removal, Some(flag(value)));
            } else if is(TRANSCODING_MMR) {
                set(&mut d.transcoding_mmr, Some(flag(value)));
            } else if is(TRANSCODING_JBIG) {
                set(&mut d.transcoding_jbig, Some(flag(value)));
            }
        }
        d
    }

    /// The parameters both sides can live with, before the rules that depend on who
    /// offered: lower version and rate, flags only when both have them.
    fn settle(&self, ours: &T38Params) -> T38Params {
        T38Params {
            version: ours.version.min(self.version.unwrap_or(0)),
            max_bit_rate: self
                .max_bit_rate
                .map_or(ours.max_bit_rate, |r| r.min(ours.max_bit_rate)),
            rate_management: self.rate_management.unwrap_or(ours.rate_management),
            max_buffer: self.max_buffer.or(ours.max_buffer),
            max_datagram: self.max_datagram.or(ours.max_datagram),
            error_correction: self.error_correction.unwrap_or(T38ErrorCorrection::None),
            fill_bit_removal: ours.fill_bit_removal && self.fill_bit_removal.unwrap_or(false),
            transcoding_mmr: ours.transcoding_mmr && self.transcoding_mmr.unwrap_or(false),
            transcoding_jbig: ours.transcoding_jbig && self.transcoding_jbig.unwrap_or(false),
        }
    }
}

fn is_t38(m: &MediaDescription) -> bool {
    m.media.eq_ignore_ascii_case("image")
        && m.proto.eq_ignore_ascii_case("udptl")
        && m.formats.iter().any(|f| f.eq_ignore_ascii_case("t38"))
}

fn image_media(port: u16, params: &T38Params) -> MediaDescription {
    MediaDescription {
        media: "image".into(),
        port,
        port_count: None,
        proto: "udptl".into(),
        formats: vec!["t38".into()],
        connection: None,
        attributes: params.attributes(),
        other_lines: Vec::new(),
    }
}

/// Unlike audio, 0.0.0.0 cannot mean hold here: a fax stream that sends nowhere fails.
fn remote_address(
    sdp: &SessionDescription,
    media: &MediaDescription,
) -> Result<SocketAddr, SdpError> {
    let connection = media
        .connection_in(sdp)
        .ok_or(SdpError::MissingConnection)?;
    let ip = connection.ip()?;
    if ip.is_unspecified() {
        return Err(SdpError::InvalidAddress(excerpt(&connection.address)));
    }
    if ip.is_multicast() {
        return Err(SdpError::Multicast(excerpt(&connection.address)));
    }
    Ok(SocketAddr::new(ip, media.port))
}

/// Our offer to switch a call to fax (sent in a re-INVITE): the session lines of
/// [`build_offer`](crate::build_offer) around a single `m=image <port> udptl t38`, which
/// replaces the audio stream.
pub fn build_t38_offer(local: &LocalMedia, params: &T38Params) -> String {
    session(local, vec![image_media(local.port, params)]).to_string()
}

/// Reads the far end's answer to our [`build_t38_offer`]. `Ok(None)` is a refusal (its
/// T.38 stream has port 0, or it answered without one, e.g. with audio): the call stays
/// on audio, so that is not an error. Version and rate are lowered to the answer's; rate
/// management, error correction and the receive limits are the answer's (answerer's
/// choice under Annex D).
pub fn negotiate_t38_answer(
    ours: &T38Params,
    answer_sdp: &str,
) -> Result<Option<T38Negotiated>, SdpError> {
    let sdp = SessionDescription::parse(answer_sdp)?;
    // The active one decides: an answer to an offer with a declined image stream beside the
    // accepted one has a port-0 section first (found by the sdp_negotiate fuzz target).
    let Some(media) = sdp.media.iter().find(|m| is_t38(m) && m.port != 0) else {
        return Ok(None);
    };
    let remote = remote_address(&sdp, media)?;
    let params = Declared::read(&sdp, media).settle(ours);
    Ok(Some(T38Negotiated { remote, params }))
}

/// Whether a far end's (re-)INVITE asks to switch to fax: it has an active
/// `m=image udptl t38` stream. Malformed SDP is not such a request.
pub fn is_t38_offer(offer_sdp: &str) -> bool {
    SessionDescription::parse(offer_sdp)
        .is_ok_and(|sdp| sdp.media.iter().any(|m| is_t38(m) && m.port != 0))
}

/// Answers a far end's T.38 offer: its first active `m=image udptl t38` stream accepted on
/// `local.port`, every other stream (an audio one offered alongside, say) refused with
/// port 0, one answer line per offer line as RFC 3264 §6 requires.
///
/// Our answer lowers version and rate, echoes the offer's rate management (Annex D
/// requires the answerer to), keeps flags both sides have, and gives our own MaxBuffer and
/// MaxDatagram (they declare what *we* can receive). Error correction follows the offer,
/// except that an FEC offer is answered with redundancy: Annex D lets the answerer step
/// down, and we implement no FEC. The returned [`T38Negotiated`] carries the offer's
/// receive limits instead, as those bind what we send.
pub fn answer_t38_offer(
    local: &LocalMedia,
    ours: &T38Params,
    offer_sdp: &str,
) -> Result<(String, T38Negotiated), SdpError> {
    let offer = SessionDescription::parse(offer_sdp)?;
    let chosen = offer
        .media
        .iter()
        .position(|m| is_t38(m) && m.port != 0)
        .ok_or(SdpError::NoT38)?;
    let offered = &offer.media[chosen];
    let remote = remote_address(&offer, offered)?;
    let declared = Declared::read(&offer, offered);
    let mut settled = declared.settle(ours);
    settled.rate_management = declared
        .rate_management
        .unwrap_or(T38RateManagement::TransferredTcf);
    if settled.error_correction == T38ErrorCorrection::Fec {
        settled.error_correction = T38ErrorCorrection::Redundancy;
    }
    let answered = T38Params {
        max_buffer: ours.max_buffer,
        max_datagram: ours.max_datagram,
        ..settled.clone()
    };
    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == chosen {
                image_media(local.port, &answered)
            } else {
                rejected(m)
            }
        })
        .collect();
    Ok((
        session(local, media).to_string(),
        T38Negotiated {
            remote,
            params: settled,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values_round_trip() {
        for r in [
            T38RateManagement::TransferredTcf,
            T38RateManagement::LocalTcf,
        ] {
            assert_eq!(T38RateManagement::from_value(r.as_str()), Some(r));
        }
        assert_eq!(
            T38RateManagement::from_value(" LOCALtcf "),
            Some(T38RateManagement::LocalTcf)
        );
        assert_eq!(T38RateManagement::from_value("remoteTCF"), None);
        for e in [T38ErrorCorrection::Redundancy, T38ErrorCorrection::Fec] {
            assert_eq!(
                T38ErrorCorrection::from_value(e.as_value().unwrap()),
                Some(e)
            );
        }
        assert_eq!(
            T38ErrorCorrection::from_value("t38udpfec"),
            Some(T38ErrorCorrection::Fec)
        );
        assert_eq!(T38ErrorCorrection::from_value(""), None);
    }

    #[test]
    fn flag_values() {
        assert!(flag(None));
        assert!(flag(Some("")));
        assert!(flag(Some("1")));
        assert!(flag(Some(" TRUE ")));
        assert!(!flag(Some("0")));
        assert!(!flag(Some("false")));
        assert!(!flag(Some("maybe")));
    }

    #[test]
    fn positive_counts_only() {
        assert_eq!(positive(Some("72")), Some(72));
        assert_eq!(positive(Some("0")), None);
        assert_eq!(positive(Some("")), None);
        assert_eq!(positive(Some("-1")), None);
        assert_eq!(positive(Some("4294967296")), None);
        assert_eq!(positive(None), None);
    }
}
