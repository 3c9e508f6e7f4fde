//! The seam between a call's signalling and its media: SDP offer/answer for the call's RTP port,
//! and the per-call media core ([`RtpLeg`]) a shard ticks every 20 ms.
//!
//! Every tick the core takes the next 20 ms frame from the call's [`Player`] (silence when
//! nothing plays), encodes it with the negotiated codec and sends one RTP packet.

use std::collections::VecDeque;
use std::net::SocketAddr;

use rand::Rng;
use uuid::Uuid;

use crate::config::NodeConfig;
use crate::shard::{
    FrameFilter, FrameListener, ListenerEvent, MediaEvent, MediaLeg, MediaStats, PlayOp,
};
use media::playback::{PlaybackId, Player, Source};

/// Codecs offered when the dial names none (the spec's "platform default").
const DEFAULT_CODECS: [sdp::Codec; 2] = [sdp::Codec::Pcmu, sdp::Codec::Pcma];

/// What offer/answer settled for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct NegotiatedMedia {
    pub remote: SocketAddr,
    pub codec: sdp::Codec,
    pub payload_type: u8,
    pub telephone_event_pt: Option<u8>,
}

impl From<sdp::Negotiated> for NegotiatedMedia {
    fn from(n: sdp::Negotiated) -> Self {
        NegotiatedMedia {
            remote: n.remote,
            codec: n.codec,
            payload_type: n.payload_type,
            telephone_event_pt: n.telephone_event_pt,
        }
    }
}

/// The dial's audio codecs in our SDP vocabulary, in the caller's order, without duplicates.
/// Video and G.729 are accepted by validation but never offered (no encoder).
pub fn offered_codecs(requested: &[control::Codec]) -> Vec<sdp::Codec> {
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
        out.extend(DEFAULT_CODECS);
    }
    out
}

/// Our side of the call's media: the advertised address, the RTP port and the codecs we take.
pub fn local_media(cfg: &NodeConfig, port: u16, codecs: &[control::Codec]) -> sdp::LocalMedia {
    sdp::LocalMedia {
        ip: cfg.external_ip,
        port,
        codecs: offered_codecs(codecs),
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

/// A re-INVITE/UPDATE offer from the far end: our answer, and the new remote address unless the
/// far end put the call on hold (`c=0.0.0.0`), in which case the old one stays.
pub fn answer_remote_offer(
    local: &mut sdp::LocalMedia,
    offer: &str,
) -> Result<(String, Option<SocketAddr>), String> {
    local.session_version += 1;
    let (answer, n) = sdp::answer_offer(local, offer).map_err(|e| format!("SDP offer: {e}"))?;
    let remote = (!n.remote.ip().is_unspecified() && n.remote.port() != 0).then_some(n.remote);
    Ok((answer, remote))
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

/// A new media core for an answered call.
pub fn new_leg(session: &NegotiatedMedia, call_id: Uuid) -> Result<Box<dyn MediaLeg>, String> {
    let kind = codec_kind(session.codec);
    let encoder = media::encoder(kind).map_err(|e| format!("{kind:?} encoder: {e}"))?;
    let decoder = media::decoder(kind).map_err(|e| format!("{kind:?} decoder: {e}"))?;
    let mut rng = rand::thread_rng();
    let sender = rtp::RtpSender::new(rtp::SenderConfig {
        ssrc: rng.gen(),
        initial_sequence: rng.gen(),
        initial_timestamp: rng.gen(),
        audio_payload_type: session.payload_type,
        event_payload_type: session.telephone_event_pt,
        timestamp_step: session.codec.rtp_clock_rate() / 50,
    });
    tracing::debug!(%call_id, codec = ?session.codec, pt = session.payload_type, "media leg created");
    Ok(Box::new(RtpLeg {
        sender,
        encoder,
        frame: vec![0; kind.frame_samples()],
        decoder,
        bridged: false,
        received: VecDeque::new(),
        decoded: Vec::with_capacity(kind.frame_samples()),
        from_peer: Vec::new(),
        rate: kind.sample_rate(),
        jitter: media::jitter::JitterBuffer::new(
            session.codec.rtp_clock_rate() / 50,
            JITTER_MIN_MS,
            JITTER_MAX_MS,
        ),
        rfc4733: media::dtmf::Rfc4733Receiver::new(session.codec.rtp_clock_rate()),
        in_band: None,
        dedup: media::dtmf::DtmfDeduper::with_window_ms(DTMF_DEDUP_MS),
        call_id,
        tap: None,
        tap_gap_frames: 0,
        player: Player::new(kind.sample_rate(), kind.frame_samples()),
        payload: Vec::with_capacity(256),
        receiver: rtp::Receiver::new(session.codec.rtp_clock_rate()),
        audio_pt: session.payload_type,
        event_pt: session.telephone_event_pt,
        garbage: 0,
        other_pt: 0,
        events: VecDeque::new(),
        listeners: Vec::new(),
        listener_events: Vec::new(),
        filter: None,
    }))
}

/// Jitter buffer bounds for the far end's audio.
const JITTER_MIN_MS: u32 = 40;
const JITTER_MAX_MS: u32 = 200;
/// A carrier sending a key both as RFC 4733 and in-band reports it once (the in-band copy
/// comes out of the jitter buffer up to its delay later).
const DTMF_DEDUP_MS: u64 = 200 + JITTER_MAX_MS as u64;

impl RtpLeg {
    fn listening(&self) -> bool {
        self.bridged || self.in_band.is_some() || self.tap.is_some() || !self.listeners.is_empty()
    }

    /// One 20 ms frame of the far end's audio out of the jitter buffer, to the detectors and
    /// the bridge.
    fn hear(&mut self, now_us: u64) {
        self.decoded.clear();
        match self.jitter.pull(now_us) {
            media::jitter::Pulled::Frame(payload) => {
                if self.decoder.decode(&payload, &mut self.decoded).is_err() {
                    self.decoder.conceal(&mut self.decoded);
                }
            }
            media::jitter::Pulled::Missing => self.decoder.conceal(&mut self.decoded),
            media::jitter::Pulled::Empty => {
                self.decoded.clear();
                self.idle_listeners(now_us);
                return;
            }
        }
        if let Some(filter) = self.filter.as_mut() {
            filter.process(&mut self.decoded, self.rate);
        }
        for (key, listener) in self.listeners.iter_mut() {
            listener.on_frame(now_us, &self.decoded, self.rate, &mut self.listener_events);
            for event in self.listener_events.drain(..) {
                self.events.push_back(MediaEvent::Listener(ListenerEvent {
                    key: key.clone(),
                    event,
                }));
            }
        }
        if let Some(detector) = self.in_band.as_mut() {
            let found = detector.push(&self.decoded);
            for d in found {
                self.offer_digit(now_us, d);
            }
        }
        if self.bridged {
            self.received.extend(self.decoded.iter().copied());
            // Keep at most 200 ms: a peer that stalls must not grow memory.
            let cap = self.frame.len() * 10;
            while self.received.len() > cap {
                self.received.pop_front();
            }
        }
    }

    fn idle_listeners(&mut self, now_us: u64) {
        for (key, listener) in self.listeners.iter_mut() {
            listener.on_idle(now_us, &mut self.listener_events);
            for event in self.listener_events.drain(..) {
                self.events.push_back(MediaEvent::Listener(ListenerEvent {
                    key: key.clone(),
                    event,
                }));
            }
        }
    }

    fn offer_digit(&mut self, now_us: u64, d: media::dtmf::Digit) {
        if let Some(d) = self.dedup.offer(now_us / 1000, d) {
            self.events.push_back(MediaEvent::Digit(d.digit));
        }
    }
}

/// The media core of one call: one RTP packet out per tick, every datagram in accounted.
struct RtpLeg {
    sender: rtp::RtpSender,
    encoder: Box<dyn media::AudioEncoder>,
    frame: Vec<i16>,
    decoder: Box<dyn media::AudioDecoder>,
    /// Bridged: the far end's audio is decoded into `received` for the peer.
    bridged: bool,
    received: VecDeque<i16>,
    decoded: Vec<i16>,
    /// The peer's frame for this tick, at our rate.
    from_peer: Vec<i16>,
    rate: u32,
    /// The far end's audio in order (only while someone listens: a bridge or a detector).
    jitter: media::jitter::JitterBuffer,
    rfc4733: media::dtmf::Rfc4733Receiver,
    /// In-band DTMF detection, on while a digit collect runs.
    in_band: Option<media::dtmf::InBandDetector>,
    dedup: media::dtmf::DtmfDeduper,
    call_id: Uuid,
    /// Set while the call is recorded: every tick's audio goes to the recorder.
    tap: Option<crate::recorder::RecorderHandle>,
    /// Frames the recorder queue refused since the last one it took.
    tap_gap_frames: u32,
    player: Player,
    payload: Vec<u8>,
    receiver: rtp::Receiver,
    audio_pt: u8,
    event_pt: Option<u8>,
    garbage: u64,
    other_pt: u64,
    events: VecDeque<MediaEvent>,
    /// Detectors and speech taps on the far end's audio, by key.
    listeners: Vec<(String, Box<dyn FrameListener>)>,
    listener_events: Vec<serde_json::Value>,
    /// The denoiser, applied before anyone hears the far end.
    filter: Option<Box<dyn FrameFilter>>,
}

impl MediaLeg for RtpLeg {
    fn on_tick(&mut self, now_us: u64, out: &mut Vec<Vec<u8>>) {
        if self.listening() {
            self.hear(now_us);
        }
        self.player.next_frame(&mut self.frame);
        if !self.from_peer.is_empty() {
            for (out, peer) in self.frame.iter_mut().zip(self.from_peer.iter()) {
                *out = out.saturating_add(*peer);
            }
            self.from_peer.clear();
        }
        if let Some(tap) = self.tap.as_ref() {
            // A full recorder queue drops this frame (never waits); the next one says so.
            match tap.admit_frame() {
                Some(permit) => {
                    let heard = if self.decoded.len() == self.frame.len() {
                        self.decoded.clone()
                    } else {
                        vec![0; self.frame.len()]
                    };
                    let frame = crate::recorder::TapFrame {
                        call_id: self.call_id,
                        heard,
                        sent: self.frame.clone(),
                        gap_frames: std::mem::take(&mut self.tap_gap_frames),
                    };
                    tap.send_frame(frame, permit);
                }
                None => self.tap_gap_frames = self.tap_gap_frames.saturating_add(1),
            }
        }
        while let Some(ev) = self.player.poll_event() {
            self.events.push_back(MediaEvent::Play(ev));
        }
        self.payload.clear();
        if self.encoder.encode(&self.frame, &mut self.payload).is_err() {
            // Cannot happen for a frame of the codec's own size; skip the packet, keep the clock.
            self.payload.clear();
        }
        let mut pkt = Vec::with_capacity(12 + self.payload.len().max(4));
        self.sender.next_packet(&self.payload, &mut pkt);
        out.push(pkt);
        while let Some(ev) = self.sender.poll_event() {
            match ev {
                rtp::SenderEvent::DigitsDone => self.events.push_back(MediaEvent::DigitsSent),
            }
        }
    }

    fn on_rtp(&mut self, now_us: u64, data: &[u8]) -> bool {
        match rtp::parse(data) {
            Ok(pkt) => {
                if pkt.payload_type == self.audio_pt || Some(pkt.payload_type) == self.event_pt {
                    self.receiver.on_packet(&pkt, now_us);
                    if Some(pkt.payload_type) == self.event_pt {
                        if let Some(d) = self.rfc4733.on_event(pkt.timestamp, pkt.payload) {
                            self.offer_digit(now_us, d);
                        }
                    } else if self.listening() {
                        self.jitter.push(
                            now_us,
                            pkt.ssrc,
                            pkt.sequence,
                            pkt.timestamp,
                            pkt.payload,
                        );
                    }
                } else {
                    // Comfort noise or a codec we did not agree on: a real RTP source all the same.
                    self.other_pt += 1;
                }
                true
            }
            Err(_) => {
                self.garbage += 1;
                false
            }
        }
    }

    fn send_digits(&mut self, digits: &str) -> Result<(), String> {
        // `,` is a pause like `w` (spec: "w (wait) and , (pause)").
        let digits: String = digits
            .chars()
            .map(|c| if c == ',' { 'w' } else { c })
            .collect();
        self.sender.queue_digits(&digits).map_err(|e| e.to_string())
    }

    fn play(&mut self, id: PlaybackId, sources: Vec<Source>, volume_db: f64, loops: u32) {
        self.player.enqueue_looped(id, sources, volume_db, loops);
    }

    fn control_play(&mut self, id: PlaybackId, op: PlayOp) -> bool {
        match op {
            PlayOp::Pause => self.player.pause(id),
            PlayOp::Resume => self.player.resume(id),
            PlayOp::Stop => self.player.stop(id),
            PlayOp::Volume(db) => self.player.set_volume(id, db),
        }
    }

    fn set_tap(&mut self, tap: Option<crate::recorder::RecorderHandle>) {
        self.tap = tap;
        self.tap_gap_frames = 0;
    }

    fn set_digit_detection(&mut self, in_band: bool) {
        self.in_band = in_band.then(|| media::dtmf::InBandDetector::new(self.rate));
    }

    fn set_bridged(&mut self, bridged: bool) {
        self.bridged = bridged;
        if !bridged {
            self.received.clear();
            self.from_peer.clear();
        }
    }

    fn take_received_frame(&mut self) -> Option<Vec<i16>> {
        let n = self.frame.len();
        if self.received.len() < n {
            return None;
        }
        Some(self.received.drain(..n).collect())
    }

    fn push_bridged_frame(&mut self, pcm: &[i16], rate: u32) {
        resample_linear(pcm, rate, self.rate, self.frame.len(), &mut self.from_peer);
    }

    fn pcm_rate(&self) -> u32 {
        self.rate
    }

    fn set_listener(&mut self, key: String, listener: Option<Box<dyn FrameListener>>) {
        self.listeners.retain(|(k, _)| *k != key);
        if let Some(l) = listener {
            self.listeners.push((key, l));
        }
    }

    fn set_filter(&mut self, filter: Option<Box<dyn FrameFilter>>) {
        self.filter = filter;
    }

    fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    fn stats(&self) -> MediaStats {
        let s = self.receiver.stats();
        MediaStats {
            packets_sent: 0,
            packets_received: s.packets_received + self.other_pt,
            packets_lost: s.packets_lost,
            garbage_received: self.garbage,
        }
    }
}

/// Converts one frame between call rates (8/16/48 kHz) by linear interpolation into exactly
/// `out_len` samples. Bridging needs it per 20 ms frame on the media thread, so it is kept
/// simple and allocation-free beyond `out`.
fn resample_linear(input: &[i16], in_rate: u32, out_rate: u32, out_len: usize, out: &mut Vec<i16>) {
    out.clear();
    if input.is_empty() || in_rate == 0 || out_rate == 0 {
        return;
    }
    if in_rate == out_rate {
        out.extend(input.iter().take(out_len).copied());
        out.resize(out_len, 0);
        return;
    }
    let step = f64::from(in_rate) / f64::from(out_rate);
    let last = input.len() - 1;
    for i in 0..out_len {
        let pos = i as f64 * step;
        let j = (pos as usize).min(last);
        let k = (j + 1).min(last);
        let frac = pos - j as f64;
        let v = f64::from(input[j]) * (1.0 - frac) + f64::from(input[k]) * frac;
        out.push(v as i16);
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
        };
        let mut leg = new_leg(&session, Uuid::new_v4()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let recorder = crate::recorder::RecorderHandle::over(tx, 2);
        leg.set_tap(Some(recorder.clone()));
        let mut out = Vec::new();
        for tick in 0..5u64 {
            leg.on_tick(tick * 20_000, &mut out);
        }
        assert_eq!(out.len(), 5, "every tick still sends its packet");
        assert_eq!(recorder.dropped_frames(), 3);
        let gaps = |rx: &std::sync::mpsc::Receiver<crate::recorder::RecorderInput>| {
            rx.try_iter()
                .filter_map(|i| match i {
                    crate::recorder::RecorderInput::Frame(f, _) => Some(f.gap_frames),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(gaps(&rx), vec![0, 0]);
        leg.on_tick(100_000, &mut out);
        assert_eq!(gaps(&rx), vec![3]);
    }

    #[test]
    fn linear_resampling_keeps_length_and_level() {
        let tone: Vec<i16> = (0..160)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 500.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        let mut up = Vec::new();
        resample_linear(&tone, 8000, 16000, 320, &mut up);
        assert_eq!(up.len(), 320);
        assert_eq!(up[0], tone[0]);
        assert_eq!(up[2], tone[1]);
        let peak = up.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((7500..=8000).contains(&peak), "{peak}");
        let mut down = Vec::new();
        resample_linear(&up, 16000, 8000, 160, &mut down);
        assert_eq!(down.len(), 160);
        assert_eq!(down[1], up[2]);
        let mut same = Vec::new();
        resample_linear(&tone[..100], 8000, 8000, 160, &mut same);
        assert_eq!(same.len(), 160);
        assert_eq!(same[150], 0);
        resample_linear(&[], 8000, 16000, 320, &mut same);
        assert!(same.is_empty());
    }
}
