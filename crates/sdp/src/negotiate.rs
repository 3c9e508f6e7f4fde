//! RFC 3264 offer/answer for one audio stream plus RFC 4733 telephone-events.

use std::net::{IpAddr, SocketAddr};

use crate::crypto::{crypto_lines, has_crypto_attribute, Crypto, Encryption, SdesKey, SrtpParams};
use crate::model::{addr_type, Attribute, Connection, MediaDescription, Origin, RtpMap};
use crate::{Codec, Direction, SdpError, SessionDescription, SDES_KEY_SALT_LEN};

/// Dynamic payload types we offer for telephone-event at 8 kHz and 48 kHz.
const TELEPHONE_EVENT_PT_8K: u8 = 101;
const TELEPHONE_EVENT_PT_48K: u8 = 102;
const TELEPHONE_EVENT: &str = "telephone-event";
/// DTMF events 0-15 plus flash (RFC 4733 §3.2), what we offer.
const TELEPHONE_EVENT_FMTP: &str = "0-16";
/// What an offer without `a=fmtp` for its events means (RFC 4733 §7.1.1), and so what our
/// answer then says.
const TELEPHONE_EVENT_FMTP_DEFAULT: &str = "0-15";
const OPUS_FMTP: &str = "useinbandfec=1";

/// What we offer or answer with.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    pub ip: IpAddr,
    pub port: u16,
    /// Codecs in preference order; must not be empty ([`SdpError::NoCodecs`]).
    pub codecs: Vec<Codec>,
    pub telephone_event: bool,
    pub session_id: u64,
    pub session_version: u64,
    /// Packetization time to announce, normally 20; 0 leaves `a=ptime` out.
    pub ptime_ms: u32,
}

/// The outcome of a negotiation: how to send to the peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    pub codec: Codec,
    /// The payload type to send the codec with (the peer's number for it).
    pub payload_type: u8,
    pub clock_rate: u32,
    /// The peer's payload type for telephone-event, if both sides have it: the one at the
    /// codec's clock rate, else (Opus) the 8 kHz one most endpoints offer. Events are timed
    /// in the codec's clock either way, as such endpoints (baresip) time them.
    pub telephone_event_pt: Option<u8>,
    /// Media-level `c=` (else session-level) with the `m=` port; IP 0.0.0.0 means hold.
    pub remote: SocketAddr,
    /// The peer's direction attribute (`sendrecv` when absent).
    pub direction: Direction,
    pub ptime_ms: Option<u32>,
    /// RTCP shares the RTP port (RFC 5761): the peer's SDP has `a=rtcp-mux` (in an answer:
    /// it accepted ours; in an offer: our answer accepts it).
    pub rtcp_mux: bool,
}

fn dedup_codecs(codecs: &[Codec]) -> Result<Vec<Codec>, SdpError> {
    if codecs.is_empty() {
        return Err(SdpError::NoCodecs);
    }
    let mut out: Vec<Codec> = Vec::with_capacity(codecs.len());
    for c in codecs {
        if !out.contains(c) {
            out.push(*c);
        }
    }
    Ok(out)
}

fn rtpmap(payload_type: u8, name: &str, clock_rate: u32, params: Option<&str>) -> Attribute {
    Attribute::RtpMap(RtpMap {
        payload_type,
        encoding_name: name.to_string(),
        clock_rate,
        encoding_params: params.map(str::to_string),
    })
}

const RTCP_MUX: &str = "rtcp-mux";

fn rtcp_mux_attribute() -> Attribute {
    Attribute::Other {
        name: RTCP_MUX.into(),
        value: None,
    }
}

fn has_rtcp_mux(media: &MediaDescription) -> bool {
    media.attributes.iter().any(|a| {
        matches!(a, Attribute::Other { name, value: None } if name.eq_ignore_ascii_case(RTCP_MUX))
    })
}

fn fmtp(payload_type: u8, params: &str) -> Attribute {
    Attribute::Fmtp {
        payload_type,
        params: params.to_string(),
    }
}

fn codec_attributes(codec: Codec, pt: u8, attrs: &mut Vec<Attribute>) {
    attrs.push(rtpmap(
        pt,
        codec.encoding_name(),
        codec.rtp_clock_rate(),
        codec.encoding_params(),
    ));
    if codec == Codec::Opus {
        attrs.push(fmtp(pt, OPUS_FMTP));
    }
}

fn event_attributes(pt: u8, clock_rate: u32, attrs: &mut Vec<Attribute>) {
    attrs.push(rtpmap(pt, TELEPHONE_EVENT, clock_rate, None));
    attrs.push(fmtp(pt, TELEPHONE_EVENT_FMTP));
}

pub(crate) fn session(local: &LocalMedia, media: Vec<MediaDescription>) -> SessionDescription {
    SessionDescription {
        origin: Origin {
            username: "dialtone".into(),
            session_id: local.session_id.to_string(),
            session_version: local.session_version.to_string(),
            net_type: "IN".into(),
            addr_type: addr_type(local.ip).into(),
            address: local.ip.to_string(),
        },
        session_name: "dialtone".into(),
        connection: Some(Connection::for_ip(local.ip)),
        timing: vec!["0 0".into()],
        attributes: Vec::new(),
        other_lines: Vec::new(),
        media,
    }
}

/// Builds our offer: one `m=audio` RTP/AVP stream with `local.codecs` in order, then
/// telephone-event at 8 kHz (PT 101) and, when Opus is offered, at 48 kHz (PT 102).
pub fn build_offer(local: &LocalMedia) -> Result<String, SdpError> {
    Ok(session(local, vec![offer_media(local)?]).to_string())
}

/// [`build_offer`] made an SRTP offer with [`add_sdes`]: `RTP/SAVP` and our `a=crypto`
/// lines (usually one, `1 AES_CM_128_HMAC_SHA1_80` with a fresh key).
pub fn build_offer_srtp(local: &LocalMedia, crypto: &[Crypto]) -> Result<String, SdpError> {
    let mut media = offer_media(local)?;
    add_sdes(&mut media, crypto);
    Ok(session(local, vec![media]).to_string())
}

/// Best-effort SRTP (what `encryption: optional` offers): [`build_offer`]'s plain `RTP/AVP`
/// stream with our `a=crypto` lines added. A peer that knows SDES answers with one of them
/// and the call is encrypted; any other peer ignores the lines and answers in the clear
/// (an `RTP/SAVP` offer would be refused by it).
pub fn build_offer_best_effort_srtp(
    local: &LocalMedia,
    crypto: &[Crypto],
) -> Result<String, SdpError> {
    let mut media = offer_media(local)?;
    media
        .attributes
        .extend(crypto.iter().map(Crypto::to_attribute));
    Ok(session(local, vec![media]).to_string())
}

/// Makes a media section an SDES-SRTP one: the proto becomes `RTP/SAVP` (`RTP/SAVPF` from
/// `RTP/AVPF`) and `crypto` are added as `a=crypto` lines after the other attributes.
pub fn add_sdes(media: &mut MediaDescription, crypto: &[Crypto]) {
    media.proto = if media.proto.eq_ignore_ascii_case("RTP/AVPF") {
        "RTP/SAVPF".into()
    } else {
        "RTP/SAVP".into()
    };
    media
        .attributes
        .extend(crypto.iter().map(Crypto::to_attribute));
}

fn offer_media(local: &LocalMedia) -> Result<MediaDescription, SdpError> {
    let codecs = dedup_codecs(&local.codecs)?;
    let mut formats: Vec<u8> = codecs.iter().map(|c| c.default_payload_type()).collect();
    let mut attributes = Vec::new();
    for c in &codecs {
        codec_attributes(*c, c.default_payload_type(), &mut attributes);
    }
    if local.telephone_event {
        formats.push(TELEPHONE_EVENT_PT_8K);
        event_attributes(TELEPHONE_EVENT_PT_8K, 8000, &mut attributes);
        if codecs.contains(&Codec::Opus) {
            formats.push(TELEPHONE_EVENT_PT_48K);
            event_attributes(TELEPHONE_EVENT_PT_48K, 48000, &mut attributes);
        }
    }
    if local.ptime_ms > 0 {
        attributes.push(Attribute::Ptime(local.ptime_ms));
    }
    attributes.push(Attribute::Direction(Direction::SendRecv));
    // RFC 5761 §5.1.1: offered; our RTCP port stays open in case the answer declines it.
    attributes.push(rtcp_mux_attribute());
    Ok(MediaDescription {
        media: "audio".into(),
        port: local.port,
        port_count: None,
        proto: "RTP/AVP".into(),
        formats: formats.iter().map(u8::to_string).collect(),
        connection: None,
        attributes,
        other_lines: Vec::new(),
    })
}

/// The codec a payload type in `media` stands for: its rtpmap if present, else the
/// static assignment.
fn codec_of(media: &MediaDescription, pt: u8) -> Option<Codec> {
    match media.rtpmap(pt) {
        Some(m) => Codec::from_rtpmap(&m.encoding_name, m.clock_rate),
        None => Codec::from_static_payload_type(pt),
    }
}

/// Which side's order picks the codec.
#[derive(Clone, Copy)]
enum Pick {
    /// The first listed in the peer's SDP (their answer to our offer: their choice).
    TheirOrder,
    /// The first of ours the peer listed (our answer to their offer: our preference list).
    OurOrder,
}

/// The codec to use and the peer's payload type for it.
fn choose_codec(media: &MediaDescription, codecs: &[Codec], pick: Pick) -> Option<(Codec, u8)> {
    let listed = || {
        media
            .payload_types()
            .filter_map(|pt| codec_of(media, pt).map(|c| (c, pt)))
    };
    match pick {
        Pick::TheirOrder => listed().find(|(c, _)| codecs.contains(c)),
        Pick::OurOrder => codecs
            .iter()
            .find_map(|ours| listed().find(|(c, _)| c == ours)),
    }
}

/// The peer's telephone-event payload type for a codec at `clock_rate`: the first listed at
/// that rate, else, for a codec not at 8 kHz, the first at 8 kHz.
fn telephone_event_pt(media: &MediaDescription, clock_rate: u32) -> Option<u8> {
    let at = |rate: u32| {
        media.payload_types().find(|pt| {
            media.rtpmap(*pt).is_some_and(|m| {
                m.encoding_name.eq_ignore_ascii_case(TELEPHONE_EVENT) && m.clock_rate == rate
            })
        })
    };
    at(clock_rate).or_else(|| (clock_rate != 8000).then(|| at(8000)).flatten())
}

fn is_audio(m: &MediaDescription) -> bool {
    m.media.eq_ignore_ascii_case("audio")
}

fn is_rtp_avp(m: &MediaDescription) -> bool {
    m.proto.eq_ignore_ascii_case("RTP/AVP") || m.proto.eq_ignore_ascii_case("RTP/AVPF")
}

fn is_rtp_savp(m: &MediaDescription) -> bool {
    m.proto.eq_ignore_ascii_case("RTP/SAVP") || m.proto.eq_ignore_ascii_case("RTP/SAVPF")
}

/// Negotiates the audio stream `media` of `sdp` against our capabilities.
fn negotiate_media(
    local: &LocalMedia,
    codecs: &[Codec],
    pick: Pick,
    sdp: &SessionDescription,
    media: &MediaDescription,
) -> Result<Negotiated, SdpError> {
    if media.port == 0 {
        return Err(SdpError::MediaRejected);
    }
    let (codec, payload_type) = choose_codec(media, codecs, pick).ok_or(SdpError::NoCommonCodec)?;
    let clock_rate = codec.rtp_clock_rate();
    let telephone_event_pt = if local.telephone_event {
        telephone_event_pt(media, clock_rate)
    } else {
        None
    };
    let connection = media
        .connection_in(sdp)
        .ok_or(SdpError::MissingConnection)?;
    let ip = connection.ip()?;
    if ip.is_multicast() {
        // RTP to a group address would be heard by every member (and reflected traffic
        // amplified); calls are unicast only.
        return Err(SdpError::Multicast(crate::excerpt(&connection.address)));
    }
    let remote = SocketAddr::new(ip, media.port);
    Ok(Negotiated {
        codec,
        payload_type,
        clock_rate,
        telephone_event_pt,
        remote,
        direction: media
            .direction()
            .or(sdp.direction())
            .unwrap_or(Direction::SendRecv),
        ptime_ms: media.ptime().or(sdp.ptime()),
        rtcp_mux: has_rtcp_mux(media),
    })
}

/// Negotiates the peer's answer to our [`build_offer`]: the first payload type in the
/// answer's first `m=audio` line that maps to a codec we offered.
pub fn negotiate_answer(local: &LocalMedia, answer_sdp: &str) -> Result<Negotiated, SdpError> {
    let sdp = SessionDescription::parse(answer_sdp)?;
    negotiate_answer_audio(local, &sdp).map(|(n, _)| n)
}

/// The answer's first `m=audio` line negotiated against what we offered.
fn negotiate_answer_audio<'a>(
    local: &LocalMedia,
    sdp: &'a SessionDescription,
) -> Result<(Negotiated, &'a MediaDescription), SdpError> {
    let codecs = dedup_codecs(&local.codecs)?;
    let media = sdp
        .media
        .iter()
        .find(|m| is_audio(m))
        .ok_or(SdpError::NoAudio)?;
    let negotiated = negotiate_media(local, &codecs, Pick::TheirOrder, sdp, media)?;
    Ok((negotiated, media))
}

/// Negotiates the answer to our [`build_offer_srtp`]: as [`negotiate_answer`], plus the
/// answer's `a=crypto` line, which must carry the tag and suite of one we offered
/// ([`SdpError::NoCommonCrypto`] otherwise: an SRTP offer answered in the clear).
pub fn negotiate_answer_srtp(
    local: &LocalMedia,
    answer_sdp: &str,
    offered: &[Crypto],
) -> Result<(Negotiated, SrtpParams), SdpError> {
    let sdp = SessionDescription::parse(answer_sdp)?;
    let (negotiated, media) = negotiate_answer_audio(local, &sdp)?;
    let srtp = crypto_lines(media)
        .into_iter()
        .find_map(|theirs| {
            offered
                .iter()
                .find(|ours| ours.tag == theirs.tag && ours.suite == theirs.suite)
                .map(|ours| SrtpParams {
                    suite: ours.suite,
                    tag: ours.tag,
                    local: ours.key.clone(),
                    remote: theirs.key,
                })
        })
        .ok_or(SdpError::NoCommonCrypto)?;
    Ok((negotiated, srtp))
}

/// Answers a peer's offer (a re-INVITE or an inbound call): the first codec of
/// `local.codecs` (our preference list) that the offer has, with the offerer's payload type
/// numbers, plus its telephone-event (at the codec's rate, else 8 kHz) with the events the
/// offer listed. Every other `m=` line is rejected with port 0,
/// as RFC 3264 §6 requires one answer line per offer line. Plain RTP only: this is
/// [`answer_offer_srtp`] with [`Encryption::Forbidden`].
pub fn answer_offer(
    local: &LocalMedia,
    remote_offer_sdp: &str,
) -> Result<(String, Negotiated), SdpError> {
    let (sdp, negotiated, _) = answer_with(
        local,
        remote_offer_sdp,
        Encryption::Forbidden,
        &[0; SDES_KEY_SALT_LEN],
    )?;
    Ok((sdp, negotiated))
}

/// [`answer_offer`] with SDES-SRTP (RFC 4568 §7.1.2) under an encryption policy:
///
/// * `Forbidden`: exactly [`answer_offer`]; `a=crypto` lines are ignored, an offer with only
///   `RTP/SAVP` audio is refused ([`SdpError::UnsupportedTransport`]).
/// * `Optional`: the first audio stream (`RTP/SAVP`, or best-effort `RTP/AVP` with crypto
///   lines) with a usable `a=crypto` line is answered with SRTP; failing that, the first
///   plain `RTP/AVP` one in the clear.
/// * `Mandatory`: SRTP or [`SdpError::NoCommonCrypto`] / [`SdpError::EncryptionRequired`].
///
/// With SRTP the answer echoes the stream's proto and carries one `a=crypto` line: the
/// offer's first usable line's tag and suite with our key `key_salt` (fresh random bytes
/// from the caller; 16 of key then 14 of salt). The [`SrtpParams`] say which key protects
/// what we send (ours) and which unprotects what we receive (theirs, with its MKI).
pub fn answer_offer_srtp(
    local: &LocalMedia,
    remote_offer_sdp: &str,
    encryption: Encryption,
    key_salt: &[u8; SDES_KEY_SALT_LEN],
) -> Result<(String, Negotiated, Option<SrtpParams>), SdpError> {
    answer_with(local, remote_offer_sdp, encryption, key_salt)
}

/// The audio stream to answer and, for SRTP, the offer's crypto line we take.
fn pick_stream(
    offer: &SessionDescription,
    encryption: Encryption,
) -> Result<(usize, Option<Crypto>), SdpError> {
    let audio = || offer.media.iter().enumerate().filter(|(_, m)| is_audio(m));
    if encryption != Encryption::Forbidden {
        let secure = audio()
            .filter(|(_, m)| m.port != 0 && (is_rtp_savp(m) || is_rtp_avp(m)))
            .find_map(|(i, m)| crypto_lines(m).into_iter().next().map(|c| (i, Some(c))));
        if let Some(found) = secure {
            return Ok(found);
        }
    }
    if encryption != Encryption::Mandatory {
        if let Some((i, _)) = audio().find(|(_, m)| is_rtp_avp(m)) {
            return Ok((i, None));
        }
    }
    let first = audio().next().map(|(_, m)| m).ok_or(SdpError::NoAudio)?;
    Err(if encryption == Encryption::Forbidden {
        SdpError::UnsupportedTransport(crate::excerpt(&first.proto))
    } else if audio().any(|(_, m)| is_rtp_savp(m) || has_crypto_attribute(m)) {
        SdpError::NoCommonCrypto
    } else if audio().any(|(_, m)| is_rtp_avp(m)) {
        SdpError::EncryptionRequired
    } else {
        SdpError::UnsupportedTransport(crate::excerpt(&first.proto))
    })
}

fn answer_with(
    local: &LocalMedia,
    remote_offer_sdp: &str,
    encryption: Encryption,
    key_salt: &[u8; SDES_KEY_SALT_LEN],
) -> Result<(String, Negotiated, Option<SrtpParams>), SdpError> {
    let codecs = dedup_codecs(&local.codecs)?;
    let offer = SessionDescription::parse(remote_offer_sdp)?;
    let (chosen, crypto) = pick_stream(&offer, encryption)?;
    let offered = &offer.media[chosen];
    let negotiated = negotiate_media(local, &codecs, Pick::OurOrder, &offer, offered)?;

    let mut formats = vec![negotiated.payload_type.to_string()];
    let mut attributes = Vec::new();
    codec_attributes(negotiated.codec, negotiated.payload_type, &mut attributes);
    if let Some(pt) = negotiated.telephone_event_pt {
        formats.push(pt.to_string());
        let rate = offered
            .rtpmap(pt)
            .map_or(negotiated.clock_rate, |m| m.clock_rate);
        attributes.push(rtpmap(pt, TELEPHONE_EVENT, rate, None));
        let events = offered.fmtp(pt).unwrap_or(TELEPHONE_EVENT_FMTP_DEFAULT);
        attributes.push(fmtp(pt, events));
    }
    let ptime = negotiated.ptime_ms.unwrap_or(local.ptime_ms);
    if ptime > 0 {
        attributes.push(Attribute::Ptime(ptime));
    }
    attributes.push(Attribute::Direction(negotiated.direction.mirrored()));
    if negotiated.rtcp_mux {
        attributes.push(rtcp_mux_attribute());
    }
    let srtp = crypto.map(|theirs| {
        let ours = Crypto::new(theirs.tag, theirs.suite, *key_salt);
        attributes.push(ours.to_attribute());
        SrtpParams {
            suite: theirs.suite,
            tag: theirs.tag,
            local: SdesKey::new(*key_salt),
            remote: theirs.key,
        }
    });

    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == chosen {
                MediaDescription {
                    media: m.media.clone(),
                    port: local.port,
                    port_count: None,
                    proto: m.proto.clone(),
                    formats: formats.clone(),
                    connection: None,
                    attributes: attributes.clone(),
                    other_lines: Vec::new(),
                }
            } else {
                rejected(m)
            }
        })
        .collect();
    Ok((session(local, media).to_string(), negotiated, srtp))
}

/// An answer line refusing an offered stream (RFC 3264 §6).
pub(crate) fn rejected(m: &MediaDescription) -> MediaDescription {
    let mut formats = m.formats.clone();
    formats.truncate(1);
    if formats.is_empty() {
        formats.push("0".into());
    }
    MediaDescription {
        media: m.media.clone(),
        port: 0,
        port_count: None,
        proto: m.proto.clone(),
        formats,
        connection: None,
        attributes: Vec::new(),
        other_lines: Vec::new(),
    }
}
