//! The seam between a call's signalling and its media: SDP offer/answer for the call's RTP port,
//! and the call's media graph ([`media::graph::CallGraph`]) a shard ticks every 20 ms, with its
//! recording tap into the node's recorder thread.

use std::net::SocketAddr;

use media::graph::{CallGraph, FrameTap, GraphConfig, MediaLeg};
use rand::Rng;
use uuid::Uuid;

use crate::config::NodeConfig;
use record::writer::RecorderHandle;

/// What offer/answer settled for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct NegotiatedMedia {
    pub remote: SocketAddr,
    pub codec: sdp::Codec,
    pub payload_type: u8,
    pub telephone_event_pt: Option<u8>,
    /// The far end takes our audio (its direction is `sendrecv`/`recvonly`).
    pub sending: bool,
    /// SDES-SRTP keys, when the call is encrypted.
    pub srtp: Option<sdp::SrtpParams>,
    /// RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
}

impl NegotiatedMedia {
    fn new(n: sdp::Negotiated, srtp: Option<sdp::SrtpParams>) -> Self {
        NegotiatedMedia {
            remote: n.remote,
            codec: n.codec,
            payload_type: n.payload_type,
            telephone_event_pt: n.telephone_event_pt,
            sending: takes_our_audio(&n),
            srtp,
            rtcp_mux: n.rtcp_mux,
        }
    }
}

/// Our media encryption policy in the SDP crate's terms.
pub fn encryption_of(e: control::MediaEncryption) -> sdp::Encryption {
    match e {
        control::MediaEncryption::Forbidden => sdp::Encryption::Forbidden,
        control::MediaEncryption::Optional => sdp::Encryption::Optional,
        control::MediaEncryption::Mandatory => sdp::Encryption::Mandatory,
    }
}

/// A fresh SDES master key and salt (RFC 4568 §6.1: random per session).
fn fresh_key() -> [u8; sdp::SDES_KEY_SALT_LEN] {
    rand::thread_rng().gen()
}

/// The call's SRTP contexts for the shard, from what SDP settled.
pub fn srtp_session(p: &sdp::SrtpParams) -> Result<Box<media::secure::SrtpSession>, String> {
    let suite = srtp::Suite::from_name(p.suite.name())
        .ok_or_else(|| format!("SRTP suite {} has no transform", p.suite.name()))?;
    media::secure::SrtpSession::new(suite, &srtp_key(&p.local), &srtp_key(&p.remote))
        .map(Box::new)
        .map_err(|e| format!("SRTP keys: {e}"))
}

pub fn srtp_key(k: &sdp::SdesKey) -> media::secure::SrtpKey {
    media::secure::SrtpKey {
        key_salt: k.key_salt.to_vec(),
        mki: k.mki_bytes(),
    }
}

/// Whether the far end of `n` takes our audio: not when it said `sendonly` or `inactive`, nor
/// when it held the call the old way (`c=0.0.0.0`).
pub(crate) fn takes_our_audio(n: &sdp::Negotiated) -> bool {
    matches!(
        n.direction,
        sdp::Direction::SendRecv | sdp::Direction::RecvOnly
    ) && !n.remote.ip().is_unspecified()
}

/// The dial's audio codecs in our SDP vocabulary, in the caller's order, without duplicates;
/// the operator's preference list (`codecs`) when it names none. Video and G.729 are accepted
/// by validation but never offered (no encoder).
pub fn offered_codecs(requested: &[control::Codec], preference: &[sdp::Codec]) -> Vec<sdp::Codec> {
    let mut out = Vec::new();
    for c in requested {
        let mapped = match c {
            control::Codec::Pcmu => Some(sdp::Codec::Pcmu),
            control::Codec::Pcma => Some(sdp::Codec::Pcma),
            control::Codec::G722 => Some(sdp::Codec::G722),
            control::Codec::Opus { .. } => Some(sdp::Codec::Opus),
            _ => None,
        };
        if let Some(m) = mapped {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    if out.is_empty() {
        out.extend_from_slice(preference);
    }
    out
}

/// Our side of the call's media: the advertised address, the RTP port and the codecs we take.
pub fn local_media(cfg: &NodeConfig, port: u16, codecs: &[control::Codec]) -> sdp::LocalMedia {
    sdp::LocalMedia {
        ip: cfg.external_ip,
        port,
        codecs: offered_codecs(codecs, &cfg.codecs),
        telephone_event: true,
        session_id: rand::thread_rng().gen_range(1..u32::MAX as u64),
        session_version: 1,
        ptime_ms: 20,
    }
}

/// Our offer under `encryption` and the `a=crypto` lines it carries (none when plain):
/// `optional` adds them to a plain `RTP/AVP` offer (best effort), `mandatory` offers
/// `RTP/SAVP`.
pub fn build_offer(
    local: &sdp::LocalMedia,
    encryption: sdp::Encryption,
) -> Result<(String, Vec<sdp::Crypto>), String> {
    let crypto = match encryption {
        sdp::Encryption::Forbidden => Vec::new(),
        _ => vec![sdp::Crypto::new(
            1,
            sdp::CryptoSuite::AesCm128HmacSha1_80,
            fresh_key(),
        )],
    };
    let offer = match encryption {
        sdp::Encryption::Forbidden => sdp::build_offer(local),
        sdp::Encryption::Optional => sdp::build_offer_best_effort_srtp(local, &crypto),
        sdp::Encryption::Mandatory => sdp::build_offer_srtp(local, &crypto),
    }
    .map_err(|e| format!("building the SDP offer: {e}"))?;
    Ok((offer, crypto))
}

/// The far end's answer to our offer (which carried `offered` crypto lines).
pub fn negotiate(
    local: &sdp::LocalMedia,
    answer: &str,
    offered: &[sdp::Crypto],
    encryption: sdp::Encryption,
) -> Result<NegotiatedMedia, String> {
    let settled = if offered.is_empty() {
        sdp::negotiate_answer(local, answer).map(|n| (n, None))
    } else {
        match sdp::negotiate_answer_srtp(local, answer, offered) {
            Ok((n, keys)) => Ok((n, Some(keys))),
            // Best effort: a peer that does not do SDES answered in the clear.
            Err(sdp::SdpError::NoCommonCrypto) if encryption != sdp::Encryption::Mandatory => {
                sdp::negotiate_answer(local, answer).map(|n| (n, None))
            }
            Err(e) => Err(e),
        }
    };
    let (n, keys) = settled.map_err(|e| format!("SDP answer: {e}"))?;
    if n.remote.ip().is_unspecified() || n.remote.port() == 0 {
        // Held from the start: we still need somewhere to send; symmetric RTP latching finds
        // the real source once the far end sends.
        return Err("SDP answer gives no address to send RTP to".into());
    }
    Ok(NegotiatedMedia::new(n, keys))
}

/// What our answer to a re-INVITE/UPDATE offer settled.
pub struct Reanswer {
    pub sdp: String,
    /// The far end's new address, unless it put the call on hold (`c=0.0.0.0`): the old one
    /// stays then.
    pub remote: Option<SocketAddr>,
    /// Whether it takes our audio now (a hold or a resume).
    pub sending: bool,
    pub srtp: Option<sdp::SrtpParams>,
    pub rtcp_mux: bool,
}

/// A re-INVITE/UPDATE offer from the far end. Our key stays the one `current` has (RFC 4568
/// §7.1.4: our stream's rollover counter and index go on) unless the suite changes.
pub fn answer_remote_offer(
    local: &mut sdp::LocalMedia,
    offer: &str,
    encryption: sdp::Encryption,
    current: Option<&sdp::SrtpParams>,
) -> Result<Reanswer, String> {
    local.session_version += 1;
    let key = current.map_or_else(fresh_key, |c| c.local.key_salt);
    let mut answered = sdp::answer_offer_srtp(local, offer, encryption, &key);
    if let (Ok((_, _, Some(new))), Some(old)) = (&answered, current) {
        if new.suite != old.suite {
            answered = sdp::answer_offer_srtp(local, offer, encryption, &fresh_key());
        }
    }
    let (sdp, n, srtp) = answered.map_err(|e| format!("SDP offer: {e}"))?;
    Ok(Reanswer {
        sdp,
        remote: (!n.remote.ip().is_unspecified() && n.remote.port() != 0).then_some(n.remote),
        sending: takes_our_audio(&n),
        srtp,
        rtcp_mux: n.rtcp_mux,
    })
}

/// The PCM rate the call's audio is prepared at (the negotiated codec's own rate).
pub fn pcm_rate(c: sdp::Codec) -> u32 {
    codec_kind(c).sample_rate()
}

/// Our answer to an inbound call's offer under `encryption`, and what it settles.
pub fn answer_offer(
    local: &sdp::LocalMedia,
    offer: &str,
    encryption: sdp::Encryption,
) -> Result<(String, NegotiatedMedia), String> {
    let (answer, n, srtp) = sdp::answer_offer_srtp(local, offer, encryption, &fresh_key())
        .map_err(|e| format!("SDP offer: {e}"))?;
    if n.remote.ip().is_unspecified() || n.remote.port() == 0 {
        return Err("SDP offer gives no address to send RTP to".into());
    }
    Ok((answer, NegotiatedMedia::new(n, srtp)))
}

fn codec_kind(c: sdp::Codec) -> media::CodecKind {
    match c {
        sdp::Codec::Pcmu => media::CodecKind::Pcmu,
        sdp::Codec::Pcma => media::CodecKind::Pcma,
        sdp::Codec::G722 => media::CodecKind::G722,
        sdp::Codec::Opus => media::CodecKind::Opus,
    }
}

/// A new media graph for an answered call, its RTP stream starting at random.
pub fn new_leg(session: &NegotiatedMedia, call_id: Uuid) -> Result<Box<dyn MediaLeg>, String> {
    let kind = codec_kind(session.codec);
    let mut rng = rand::thread_rng();
    let graph = CallGraph::new(&GraphConfig {
        codec: kind,
        rtp_clock_rate: session.codec.rtp_clock_rate(),
        ssrc: rng.gen(),
        initial_sequence: rng.gen(),
        initial_timestamp: rng.gen(),
        payload_type: session.payload_type,
        telephone_event_pt: session.telephone_event_pt,
    })
    .map_err(|e| format!("{kind:?} codec: {e}"))?;
    tracing::debug!(%call_id, codec = ?session.codec, pt = session.payload_type, "media leg created");
    Ok(Box::new(graph))
}

/// A recorded call's tap: each tick's audio to the recorder thread, dropped (never waited
/// for) when the recorder's frame budget is spent.
pub(crate) struct RecorderTap {
    pub handle: RecorderHandle,
    pub call_id: Uuid,
}

impl FrameTap for RecorderTap {
    fn offer(&mut self, heard: Option<&[i16]>, sent: &[i16], gap_frames: u32) -> bool {
        let Some(permit) = self.handle.admit_frame() else {
            return false;
        };
        let frame = self.handle.frame(self.call_id, heard, sent, gap_frames);
        self.handle.send_frame(frame, permit);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorder queue is full: the media tick drops the frame instead of waiting, and the
    /// next frame that gets through carries how many were dropped.
    #[test]
    fn full_recorder_queue_drops_frames_and_reports_the_gap() {
        let session = NegotiatedMedia {
            remote: "127.0.0.1:9".parse().unwrap(),
            codec: sdp::Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: None,
            sending: true,
            srtp: None,
            rtcp_mux: false,
        };
        let mut leg = new_leg(&session, Uuid::new_v4()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let recorder = record::writer::RecorderHandle::over(tx, 2);
        leg.set_tap(Some(Box::new(RecorderTap {
            handle: recorder.clone(),
            call_id: Uuid::new_v4(),
        })));
        let mut out = media::packets::Packets::new();
        for tick in 0..5u64 {
            leg.on_tick(tick * 20_000, &mut out);
        }
        assert_eq!(out.len(), 5, "every tick still sends its packet");
        assert_eq!(recorder.dropped_frames(), 3);
        let gaps = |rx: &std::sync::mpsc::Receiver<record::writer::RecorderInput>| {
            rx.try_iter()
                .filter_map(|i| match i {
                    record::writer::RecorderInput::Frame(f, _) => Some(f.gap_frames),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(gaps(&rx), vec![0, 0]);
        leg.on_tick(100_000, &mut out);
        assert_eq!(gaps(&rx), vec![3]);
    }

    fn local() -> sdp::LocalMedia {
        sdp::LocalMedia {
            ip: "127.0.0.1".parse().unwrap(),
            port: 40000,
            codecs: vec![sdp::Codec::Pcmu],
            telephone_event: true,
            session_id: 1,
            session_version: 1,
            ptime_ms: 20,
        }
    }

    /// The far end's answer to `offer`, as an SDES peer (`srtp`) or a plain one would give it.
    fn far_answer(offer: &str, srtp: bool) -> String {
        let far = sdp::LocalMedia {
            port: 50000,
            ..local()
        };
        let policy = if srtp {
            sdp::Encryption::Optional
        } else {
            sdp::Encryption::Forbidden
        };
        let (answer, _, _) = sdp::answer_offer_srtp(&far, offer, policy, &[7; 30]).unwrap();
        answer
    }

    /// `optional` offers keys in a plain RTP/AVP offer: an SDES peer's answer encrypts the
    /// call, a plain peer's answer leaves it plain; `mandatory` offers RTP/SAVP and refuses a
    /// plain answer; `forbidden` offers no keys.
    #[test]
    fn offers_and_answers_under_each_encryption_policy() {
        use sdp::Encryption::*;
        let (offer, crypto) = build_offer(&local(), Optional).unwrap();
        assert!(
            offer.contains("RTP/AVP 0 101")
                && offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
        );
        let n = negotiate(&local(), &far_answer(&offer, true), &crypto, Optional).unwrap();
        let keys = n.srtp.unwrap();
        assert_eq!(keys.remote.key_salt, [7; 30]);
        assert_eq!(keys.local.key_salt, crypto[0].key.key_salt);
        assert!(srtp_session(&keys).is_ok());
        let plain = negotiate(&local(), &far_answer(&offer, false), &crypto, Optional).unwrap();
        assert!(plain.srtp.is_none());

        let (offer, crypto) = build_offer(&local(), Mandatory).unwrap();
        assert!(offer.contains("RTP/SAVP 0 101"));
        assert!(
            negotiate(&local(), &far_answer(&offer, true), &crypto, Mandatory)
                .is_ok_and(|n| n.srtp.is_some())
        );
        let plain_answer = far_answer(&build_offer(&local(), Forbidden).unwrap().0, false);
        assert!(negotiate(&local(), &plain_answer, &crypto, Mandatory).is_err());

        let (offer, crypto) = build_offer(&local(), Forbidden).unwrap();
        assert!(crypto.is_empty() && !offer.contains("crypto"));
        // Two offers never share a key.
        assert_ne!(
            build_offer(&local(), Optional).unwrap().1,
            build_offer(&local(), Optional).unwrap().1
        );
    }

    /// A re-INVITE from an SRTP peer: our answer keeps our key (our stream goes on), and
    /// takes the peer's new key when it re-keys.
    #[test]
    fn a_reinvite_keeps_our_key() {
        let far = sdp::LocalMedia {
            port: 50000,
            ..local()
        };
        let peer_offer = |key: u8| {
            sdp::build_offer_srtp(
                &far,
                &[sdp::Crypto::new(
                    3,
                    sdp::CryptoSuite::AesCm128HmacSha1_32,
                    [key; 30],
                )],
            )
            .unwrap()
        };
        let (_, first) = answer_offer(&local(), &peer_offer(1), sdp::Encryption::Optional).unwrap();
        let first = first.srtp.unwrap();
        let mut l = local();
        let re = answer_remote_offer(
            &mut l,
            &peer_offer(2),
            sdp::Encryption::Optional,
            Some(&first),
        )
        .unwrap();
        let again = re.srtp.unwrap();
        assert_eq!(
            (again.local.key_salt, again.remote.key_salt),
            (first.local.key_salt, [2; 30])
        );
        assert!(re.sdp.contains("a=crypto:3 AES_CM_128_HMAC_SHA1_32"));
        assert!(answer_offer(&local(), &peer_offer(1), sdp::Encryption::Forbidden).is_err());
    }
}
