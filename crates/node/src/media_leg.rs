//! The seam between a call's signalling and its media: SDP offer/answer for the call's RTP port,
//! and the call's media graph ([`media::graph::CallGraph`]) a shard ticks every 20 ms, with its
//! recording tap into the node's recorder thread.

use std::net::SocketAddr;

use media::graph::{CallGraph, FrameTap, GraphConfig, MediaLeg};
use rand::Rng;
use uuid::Uuid;

use crate::config::NodeConfig;
use record::writer::{RecorderHandle, TapFrame};

/// What offer/answer settled for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct NegotiatedMedia {
    pub remote: SocketAddr,
    pub codec: sdp::Codec,
    pub payload_type: u8,
    pub telephone_event_pt: Option<u8>,
    /// The far end takes our audio (its direction is `sendrecv`/`recvonly`).
    pub sending: bool,
}

impl From<sdp::Negotiated> for NegotiatedMedia {
    fn from(n: sdp::Negotiated) -> Self {
        NegotiatedMedia {
            remote: n.remote,
            codec: n.codec,
            payload_type: n.payload_type,
            telephone_event_pt: n.telephone_event_pt,
            sending: takes_our_audio(&n),
        }
    }
}

/// Whether the far end of `n` takes our audio: not when it said `sendonly` or `inactive`, nor
/// when it held the call the old way (`c=0.0.0.0`).
fn takes_our_audio(n: &sdp::Negotiated) -> bool {
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

pub fn build_offer(local: &sdp::LocalMedia) -> Result<String, String> {
    sdp::build_offer(local).map_err(|e| format!("building the SDP offer: {e}"))
}

/// The far end's answer to our offer.
pub fn negotiate(local: &sdp::LocalMedia, answer: &str) -> Result<NegotiatedMedia, String> {
    let n = sdp::negotiate_answer(local, answer).map_err(|e| format!("SDP answer: {e}"))?;
    if n.remote.ip().is_unspecified() || n.remote.port() == 0 {
        // Held from the start: we still need somewhere to send; symmetric RTP latching finds
        // the real source once the far end sends.
        return Err("SDP answer gives no address to send RTP to".into());
    }
    Ok(n.into())
}

/// A re-INVITE/UPDATE offer from the far end: our answer, the new remote address unless the
/// far end put the call on hold (`c=0.0.0.0`), in which case the old one stays, and whether it
/// takes our audio now (a hold or a resume).
pub fn answer_remote_offer(
    local: &mut sdp::LocalMedia,
    offer: &str,
) -> Result<(String, Option<SocketAddr>, bool), String> {
    local.session_version += 1;
    let (answer, n) = sdp::answer_offer(local, offer).map_err(|e| format!("SDP offer: {e}"))?;
    let remote = (!n.remote.ip().is_unspecified() && n.remote.port() != 0).then_some(n.remote);
    Ok((answer, remote, takes_our_audio(&n)))
}

/// The PCM rate the call's audio is prepared at (the negotiated codec's own rate).
pub fn pcm_rate(c: sdp::Codec) -> u32 {
    codec_kind(c).sample_rate()
}

/// Our answer to an inbound call's offer, and what it settles.
pub fn answer_offer(
    local: &sdp::LocalMedia,
    offer: &str,
) -> Result<(String, NegotiatedMedia), String> {
    let (answer, n) = sdp::answer_offer(local, offer).map_err(|e| format!("SDP offer: {e}"))?;
    if n.remote.ip().is_unspecified() || n.remote.port() == 0 {
        return Err("SDP offer gives no address to send RTP to".into());
    }
    Ok((answer, n.into()))
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
        let frame = TapFrame {
            call_id: self.call_id,
            heard: heard.map_or_else(|| vec![0; sent.len()], <[i16]>::to_vec),
            sent: sent.to_vec(),
            gap_frames,
        };
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
        };
        let mut leg = new_leg(&session, Uuid::new_v4()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let recorder = record::writer::RecorderHandle::over(tx, 2);
        leg.set_tap(Some(Box::new(RecorderTap {
            handle: recorder.clone(),
            call_id: Uuid::new_v4(),
        })));
        let mut out = Vec::new();
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
}
