//! The per-call media graph a shard ticks every 20 ms, told the time and handed datagrams; it
//! owns no socket. Every tick it takes the next 20 ms frame from the call's [`Player`]
//! (silence when nothing plays), mixes in a bridged peer's audio, encodes it with the
//! negotiated codec and gives back one RTP packet. What the far end sends goes, only while
//! someone listens, through a jitter buffer and the decoder to the call's [`FrameFilter`], the
//! in-band DTMF detector, every [`FrameListener`], the bridge and the recording tap.

use std::collections::VecDeque;

use crate::dtmf::{Digit, DtmfDeduper, InBandDetector, Rfc4733Receiver};
use crate::fork::{FrameSource, MediaFork};
use crate::jitter::{JitterBuffer, Pulled};
use crate::listen::{
    FrameFilter, FrameListener, FrameModem, KeyedEvent, ListenerEvent, PacketModem,
};
use crate::packets::Packets;
use crate::playback::{PlaybackId, Player, PlayerEvent, Source};
use crate::resample::Resampler;
use crate::{AudioDecoder, AudioEncoder, CodecKind, MediaError};

/// What a shard drives for one call.
pub trait MediaLeg: Send {
    /// Append this tick's outgoing RTP packets to `out`.
    fn on_tick(&mut self, now_us: u64, out: &mut Packets);
    /// A datagram arrived on the call's RTP port. Returns true if it was a valid RTP packet.
    fn on_rtp(&mut self, now_us: u64, data: &[u8]) -> bool;
    /// Start sending RFC 4733 digits.
    fn send_digits(&mut self, digits: &str) -> Result<(), String>;
    /// Queue a playback (REST `calling.play` or SWML `play`) behind any already queued.
    fn play(&mut self, id: PlaybackId, sources: Vec<Source>, volume_db: f64, loops: u32);
    /// Pause, resume, stop or re-level a playback. False if there is no such playback.
    fn control_play(&mut self, id: PlaybackId, op: PlayOp) -> bool;
    /// Notable things since the last call (digits sent, ...).
    fn poll_event(&mut self) -> Option<MediaEvent>;
    /// While recorded, every tick's audio (heard and sent) goes to the tap.
    fn set_tap(&mut self, tap: Option<Box<dyn FrameTap>>);
    /// In-band DTMF detection on the far end's audio (RFC 4733 digits are always reported).
    fn set_digit_detection(&mut self, in_band: bool);
    /// Bridged to another call: decode what the far end sends so the peer can hear it.
    fn set_bridged(&mut self, bridged: bool);
    /// The far end's audio received since the last tick, one 20 ms frame at `pcm_rate()`, if
    /// a whole frame is there (bridged legs only): written into `out` (cleared first; its
    /// capacity is reused, so a warm buffer is not reallocated). False (and `out` empty) when
    /// there is no whole frame.
    fn take_received_frame(&mut self, out: &mut Vec<i16>) -> bool;
    /// The peer's audio for this tick (at the peer's rate `rate`), mixed into what we send.
    fn push_bridged_frame(&mut self, pcm: &[i16], rate: u32);
    /// The call's codec.
    fn codec(&self) -> Option<CodecKind> {
        None
    }
    /// The codec whose payload this leg could hand its bridged peer untouched: when nothing
    /// on this leg needs the far end's decoded audio (no recording, detector, listener, fork,
    /// filter) and the codec is stateless (G.711). None otherwise.
    fn relay_codec(&self) -> Option<CodecKind> {
        None
    }
    /// Relay (true): keep the far end's payload as it came, for `take_received_payload`,
    /// instead of decoding it for the peer. The shard decides it each tick.
    fn set_relay(&mut self, relay: bool) {
        let _ = relay;
    }
    /// The far end's payload of the last tick, when relaying (written into `out`).
    fn take_received_payload(&mut self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }
    /// The peer's payload for this tick (same codec): sent as it is when nothing of ours is
    /// to be mixed in, else decoded and mixed like `push_bridged_frame`.
    fn push_bridged_payload(&mut self, payload: &[u8]) {
        let _ = payload;
    }
    /// Receive counters for the CDR and for tests.
    fn stats(&self) -> MediaStats;
    /// The PCM rate of the call's codec.
    fn pcm_rate(&self) -> u32;
    /// Adds (Some) or removes (None) a fork of the call's audio (a tap, a stream) under `key`.
    fn set_fork(&mut self, key: String, fork: Option<Box<dyn crate::fork::MediaFork>>) {
        let _ = (key, fork);
    }
    /// Adds (Some) or removes (None) audio mixed into what the call sends under `key`.
    fn set_source(&mut self, key: String, source: Option<Box<dyn crate::fork::FrameSource>>) {
        let _ = (key, source);
    }
    /// Installs (Some) or removes (None) the modem that takes the call's audio over both ways
    /// (a fax terminal); its events come keyed by `key` like a listener's.
    fn set_modem(&mut self, key: String, modem: Option<Box<dyn FrameModem>>) {
        let _ = (key, modem);
    }
    /// Installs (Some) or removes (None) the modem that replaces the call's RTP with its own
    /// datagrams (a T.38 terminal); its events come keyed by `key` like a listener's.
    fn set_packet_modem(&mut self, key: String, modem: Option<Box<dyn PacketModem>>) {
        let _ = (key, modem);
    }
    /// False while a [`PacketModem`] carries the call: datagrams are not RTP or RTCP then.
    fn carries_rtp(&self) -> bool {
        true
    }
    /// Adds (Some) or removes (None) a listener on the far end's audio under `key`.
    fn set_listener(&mut self, key: String, listener: Option<Box<dyn FrameListener>>);
    /// Adds (Some) or removes (None) a listener on what the call sends (its prompts, a
    /// bridged peer's voice) under `key`. Legs that send nothing of their own ignore it.
    fn set_sent_listener(&mut self, key: String, listener: Option<Box<dyn FrameListener>>) {
        let _ = (key, listener);
    }
    /// Sets (Some) or removes (None) the filter applied to the far end's audio before anyone
    /// hears it (recording, detectors, speech, the bridge): the denoiser.
    fn set_filter(&mut self, filter: Option<Box<dyn FrameFilter>>);
    /// What the call's RTCP reports need of its streams (`None`: no RTCP for this leg); each
    /// call starts a new report interval of the received stream's counters.
    fn rtcp_inputs(&mut self) -> Option<crate::rtcp::RtcpInputs> {
        None
    }
}

/// Where a recorded call's audio goes every tick. Must never block.
pub trait FrameTap: Send {
    /// This tick's audio: what was heard from the far end (None: nothing, silence) and what
    /// was sent, with how many frames were refused since the last one taken. False: refused
    /// (the queue is full), this frame is lost.
    fn offer(&mut self, heard: Option<&[i16]>, sent: &[i16], gap_frames: u32) -> bool;
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    DigitsSent,
    DigitsFailed(String),
    Play(PlayerEvent),
    /// A DTMF key the far end pressed (RFC 4733 or in-band, once per press).
    Digit(char),
    /// A listener on the far end's audio reported something.
    Listener(KeyedEvent),
    /// The call's media counters while it is live (after an RTCP report went or came);
    /// each one supersedes the last, so it may be dropped.
    Stats(MediaStats),
}

impl MediaEvent {
    /// Whether this event may be dropped when the node is behind: a speech segment's
    /// interim hypotheses, which a later partial or the final result supersedes, and live
    /// media counters, which the next report (or the final ones at hang-up) supersede.
    /// Everything else is waited on by an operation or a script (a playback's end, a key, a
    /// transcript, a detector's verdict) and is never dropped.
    pub fn is_droppable(&self) -> bool {
        match self {
            MediaEvent::Listener(l) => l.event.is_droppable(),
            MediaEvent::Stats(_) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlayOp {
    Pause,
    Resume,
    Stop,
    Volume(f64),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub garbage_received: u64,
    /// Datagrams refused by the RTP source check (`media::latch`), set by the shard.
    pub packets_rejected: u64,
    /// SRTP/SRTCP datagrams that did not authenticate or were replays, set by the shard.
    pub srtp_rejected: u64,
    /// Interarrival jitter of the far end's stream as we measured it (RFC 3550 A.8), in µs.
    pub jitter_us: u64,
    /// The RTP clock of our stream (what the far end's jitter about it is counted in).
    pub rtp_clock_rate: u32,
    /// What RTCP told (set by the shard).
    pub rtcp: crate::rtcp::RtcpStats,
}

impl MediaStats {
    /// Our measured jitter of the far end's stream, in ms.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_us as f64 / 1000.0
    }

    /// The far end's jitter of our stream (its last report block about us), in ms.
    pub fn remote_jitter_ms(&self) -> Option<f64> {
        let units = self.rtcp.remote_jitter?;
        (self.rtp_clock_rate > 0)
            .then(|| f64::from(units) * 1000.0 / f64::from(self.rtp_clock_rate))
    }

    /// The far end's loss of our stream since its previous report, 0.0–1.0.
    pub fn remote_fraction_lost(&self) -> Option<f64> {
        self.rtcp.remote_fraction_lost.map(|f| f64::from(f) / 256.0)
    }
}

/// What offer/answer settled, and the random start of our RTP stream.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    pub codec: CodecKind,
    /// The codec's RTP clock rate (8000 for G.722, 48000 for Opus).
    pub rtp_clock_rate: u32,
    pub ssrc: u32,
    pub initial_sequence: u16,
    pub initial_timestamp: u32,
    pub payload_type: u8,
    pub telephone_event_pt: Option<u8>,
}

/// Jitter buffer bounds for the far end's audio.
const JITTER_MIN_MS: u32 = 40;
const JITTER_MAX_MS: u32 = 200;
/// The floor while a fork (a tap, a stream) carries the audio out live: its consumer (a bot
/// answering the caller) waits on every millisecond, and keeps a buffer of its own. The
/// target still grows with the measured jitter.
const FORK_JITTER_MIN_MS: u32 = 20;
/// A carrier sending a key both as RFC 4733 and in-band reports it once (the in-band copy
/// comes out of the jitter buffer up to its delay later).
const DTMF_DEDUP_MS: u64 = 200 + JITTER_MAX_MS as u64;

impl CallGraph {
    /// A new media graph for an answered call.
    pub fn new(cfg: &GraphConfig) -> Result<CallGraph, MediaError> {
        let kind = cfg.codec;
        let step = cfg.rtp_clock_rate / 50;
        Ok(CallGraph {
            sender: rtp::RtpSender::new(rtp::SenderConfig {
                ssrc: cfg.ssrc,
                initial_sequence: cfg.initial_sequence,
                initial_timestamp: cfg.initial_timestamp,
                audio_payload_type: cfg.payload_type,
                event_payload_type: cfg.telephone_event_pt,
                timestamp_step: step,
            }),
            encoder: crate::encoder(kind)?,
            frame: vec![0; kind.frame_samples()],
            decoder: crate::decoder(kind)?,
            bridged: false,
            codec: kind,
            relay: false,
            received_payload: Vec::with_capacity(kind.frame_samples()),
            has_received_payload: false,
            peer_payload: Vec::with_capacity(kind.frame_samples()),
            has_peer_payload: false,
            received: VecDeque::new(),
            decoded: Vec::with_capacity(kind.frame_samples()),
            from_peer: Vec::new(),
            peer_resampler: None,
            rate: kind.sample_rate(),
            jitter: JitterBuffer::new(step, JITTER_MIN_MS, JITTER_MAX_MS),
            rfc4733: Rfc4733Receiver::new(cfg.rtp_clock_rate),
            events_seen: false,
            in_band: None,
            dedup: DtmfDeduper::with_window_ms(DTMF_DEDUP_MS),
            tap: None,
            tap_gap_frames: 0,
            player: Player::new(kind.sample_rate(), kind.frame_samples()),
            payload: Vec::with_capacity(256),
            packet: Vec::with_capacity(12 + 256),
            receiver: rtp::Receiver::new(cfg.rtp_clock_rate),
            rtp_clock_rate: cfg.rtp_clock_rate,
            audio_pt: cfg.payload_type,
            event_pt: cfg.telephone_event_pt,
            garbage: 0,
            other_pt: 0,
            events: VecDeque::new(),
            listeners: Vec::new(),
            sent_listeners: Vec::new(),
            listener_events: Vec::new(),
            filter: None,
            forks: Vec::new(),
            sources: Vec::new(),
            modem: None,
            modem_copy: Vec::new(),
            packet_modem: None,
        })
    }

    fn listening(&self) -> bool {
        self.bridged
            || self.in_band.is_some()
            || self.tap.is_some()
            || !self.listeners.is_empty()
            || !self.forks.is_empty()
            || self.modem.is_some()
    }

    /// One 20 ms frame of the far end's audio out of the jitter buffer, to the detectors and
    /// the bridge.
    fn hear(&mut self, now_us: u64) {
        self.decoded.clear();
        match self.jitter.pull(now_us) {
            // Relaying: nobody here needs the audio, the peer sends the payload as it came.
            Pulled::Frame(payload) if self.relay => {
                self.received_payload.clear();
                self.received_payload.extend_from_slice(&payload);
                self.has_received_payload = true;
                self.jitter.recycle(payload);
                return;
            }
            Pulled::Frame(payload) => {
                if self.decoder.decode(&payload, &mut self.decoded).is_err() {
                    self.conceal();
                }
                self.jitter.recycle(payload);
            }
            Pulled::Missing => self.conceal(),
            Pulled::Empty => {
                self.decoded.clear();
                self.idle_listeners(now_us);
                return;
            }
        }
        if let Some(filter) = self.filter.as_mut().filter(|_| self.modem.is_none()) {
            filter.process(&mut self.decoded, self.rate);
        }
        for (key, listener) in self.listeners.iter_mut() {
            listener.on_frame(now_us, &self.decoded, self.rate, &mut self.listener_events);
            for event in self.listener_events.drain(..) {
                self.events.push_back(MediaEvent::Listener(KeyedEvent {
                    key: key.clone(),
                    event,
                }));
            }
        }
        if let Some(detector) = self.in_band.as_mut().filter(|_| !self.events_seen) {
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

    /// A lost frame: the decoder's concealment, except for a modem, which is told nothing
    /// came (it bridges the gap itself: a made-up waveform would be taken for signal).
    fn conceal(&mut self) {
        if self.modem.is_some() {
            self.decoded.clear();
        } else {
            self.decoder.conceal(&mut self.decoded);
        }
    }

    /// The modem's tick: it hears the far end as it came and writes all that is sent.
    fn modem_frame(&mut self, now_us: u64) -> bool {
        let Some((key, modem)) = self.modem.as_mut() else {
            return false;
        };
        let heard = (self.decoded.len() == self.frame.len()).then_some(&self.decoded[..]);
        self.frame.fill(0);
        modem.exchange(
            now_us,
            heard,
            &mut self.frame,
            self.rate,
            &mut self.listener_events,
        );
        for event in self.listener_events.drain(..) {
            self.events.push_back(MediaEvent::Listener(KeyedEvent {
                key: key.clone(),
                event,
            }));
        }
        self.from_peer.clear();
        true
    }

    /// Fax over G.711: a lost packet is a 20 ms hole in a modem signal, and a hole in a
    /// training sequence or a control frame costs a retry or the whole fax. So each packet
    /// goes twice, the copy one tick after the original (time-diverse, like RFC 2198
    /// redundancy): the far end's jitter buffer keeps whichever comes and drops the other as
    /// a duplicate, and a packet is lost only when both are.
    fn send_modem_copy(&mut self, out: &mut Packets) {
        if !self.modem_copy.is_empty() {
            out.push(&self.modem_copy);
        }
        self.modem_copy.clear();
        self.modem_copy.extend_from_slice(&self.packet);
    }

    fn poll_sender_events(&mut self) {
        while let Some(ev) = self.sender.poll_event() {
            match ev {
                rtp::SenderEvent::DigitsDone => self.events.push_back(MediaEvent::DigitsSent),
            }
        }
    }

    fn idle_listeners(&mut self, now_us: u64) {
        for (key, listener) in self.listeners.iter_mut() {
            listener.on_idle(now_us, &mut self.listener_events);
            for event in self.listener_events.drain(..) {
                self.events.push_back(MediaEvent::Listener(KeyedEvent {
                    key: key.clone(),
                    event,
                }));
            }
        }
    }

    fn offer_digit(&mut self, now_us: u64, d: Digit) {
        if let Some(d) = self.dedup.offer(now_us / 1000, d) {
            self.events.push_back(MediaEvent::Digit(d.digit));
        }
    }
}

/// The media graph of one call: one RTP packet out per tick, every datagram in accounted.
pub struct CallGraph {
    sender: rtp::RtpSender,
    encoder: Box<dyn AudioEncoder>,
    frame: Vec<i16>,
    decoder: Box<dyn AudioDecoder>,
    /// Bridged: the far end's audio is decoded into `received` for the peer.
    bridged: bool,
    codec: CodecKind,
    /// Relaying: the far end's payload is kept as it came (`received_payload`), not decoded.
    relay: bool,
    received_payload: Vec<u8>,
    has_received_payload: bool,
    /// The peer's payload for this tick (relayed to us), if any.
    peer_payload: Vec<u8>,
    has_peer_payload: bool,
    received: VecDeque<i16>,
    decoded: Vec<i16>,
    /// The peer's frame for this tick, at our rate.
    from_peer: Vec<i16>,
    /// Converts the peer's audio to our rate when it differs (made on the first frame).
    peer_resampler: Option<Resampler>,
    rate: u32,
    /// The far end's audio in order (only while someone listens: a bridge or a detector).
    jitter: JitterBuffer,
    rfc4733: Rfc4733Receiver,
    /// The far end sends RFC 4733 events: its keys come from those, and the same keys heard
    /// in-band (a phone that also plays the tones) are not reported a second time.
    events_seen: bool,
    /// In-band DTMF detection, on while a digit collect runs.
    in_band: Option<InBandDetector>,
    dedup: DtmfDeduper,
    /// Set while the call is recorded: every tick's audio goes to the recorder.
    tap: Option<Box<dyn FrameTap>>,
    /// Frames the recorder queue refused since the last one it took.
    tap_gap_frames: u32,
    player: Player,
    payload: Vec<u8>,
    /// This tick's RTP packet, built here and copied into the shard's packets.
    packet: Vec<u8>,
    receiver: rtp::Receiver,
    rtp_clock_rate: u32,
    audio_pt: u8,
    event_pt: Option<u8>,
    garbage: u64,
    other_pt: u64,
    events: VecDeque<MediaEvent>,
    /// Detectors and speech taps on the far end's audio, by key.
    listeners: Vec<(String, Box<dyn FrameListener>)>,
    /// Speech taps on what the call sends, by key (live transcription of the near side).
    sent_listeners: Vec<(String, Box<dyn FrameListener>)>,
    listener_events: Vec<ListenerEvent>,
    /// The denoiser, applied before anyone hears the far end.
    filter: Option<Box<dyn FrameFilter>>,
    /// Taps and streams, by key: each tick's audio both ways.
    forks: Vec<(String, Box<dyn MediaFork>)>,
    /// Audio from outside mixed into what the call sends (a stream's bot), by key.
    sources: Vec<(String, Box<dyn FrameSource>)>,
    /// A fax terminal, by key: while set, it alone makes what the call sends.
    modem: Option<(String, Box<dyn FrameModem>)>,
    /// The last packet sent while a modem runs, sent again on the next tick.
    modem_copy: Vec<u8>,
    /// A T.38 terminal, by key: while set, the call's datagrams are its own, not RTP.
    packet_modem: Option<(String, Box<dyn PacketModem>)>,
}

impl MediaLeg for CallGraph {
    fn on_tick(&mut self, now_us: u64, out: &mut Packets) {
        if let Some((key, modem)) = self.packet_modem.as_mut() {
            modem.tick(now_us, out, &mut self.listener_events);
            for event in self.listener_events.drain(..) {
                self.events.push_back(MediaEvent::Listener(KeyedEvent {
                    key: key.clone(),
                    event,
                }));
            }
            return;
        }
        if self.listening() {
            self.hear(now_us);
        }
        if std::mem::take(&mut self.has_peer_payload) && self.modem.is_none() {
            let ours_to_mix = !self.player.is_idle()
                || !self.sources.is_empty()
                || !self.forks.is_empty()
                || !self.sent_listeners.is_empty()
                || self.tap.is_some();
            if !ours_to_mix && self.peer_payload.len() == self.frame.len() {
                // A relayed peer and nothing of ours: its payload goes out as it came.
                self.sender
                    .next_packet(&self.peer_payload, &mut self.packet);
                out.push(&self.packet);
                self.poll_sender_events();
                return;
            }
            // Something of ours to mix in: the peer's payload is decoded (G.711: stateless,
            // so the call's own decoder serves) and mixed like a decoded peer frame.
            self.from_peer.clear();
            if self
                .decoder
                .decode(&self.peer_payload, &mut self.from_peer)
                .is_err()
            {
                self.from_peer.clear();
            }
            self.from_peer.resize(self.frame.len(), 0);
        }
        if !self.modem_frame(now_us) {
            self.player.next_frame(&mut self.frame);
            if !self.from_peer.is_empty() {
                for (out, peer) in self.frame.iter_mut().zip(self.from_peer.iter()) {
                    *out = out.saturating_add(*peer);
                }
                self.from_peer.clear();
            }
            for (_, source) in self.sources.iter_mut() {
                source.mix_into(now_us, &mut self.frame, self.rate);
            }
        }
        for (key, listener) in self.sent_listeners.iter_mut() {
            listener.on_frame(now_us, &self.frame, self.rate, &mut self.listener_events);
            for event in self.listener_events.drain(..) {
                self.events.push_back(MediaEvent::Listener(KeyedEvent {
                    key: key.clone(),
                    event,
                }));
            }
        }
        if !self.forks.is_empty() {
            let heard = (self.decoded.len() == self.frame.len()).then_some(&self.decoded[..]);
            for (_, fork) in self.forks.iter_mut() {
                fork.on_frame(now_us, heard, &self.frame, self.rate);
            }
        }
        if let Some(tap) = self.tap.as_mut() {
            // A full recorder queue drops this frame (never waits); the next one says so.
            let heard = (self.decoded.len() == self.frame.len()).then_some(&self.decoded[..]);
            if tap.offer(heard, &self.frame, self.tap_gap_frames) {
                self.tap_gap_frames = 0;
            } else {
                self.tap_gap_frames = self.tap_gap_frames.saturating_add(1);
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
        self.sender.next_packet(&self.payload, &mut self.packet);
        out.push(&self.packet);
        if self.modem.is_some() {
            self.send_modem_copy(out);
        }
        self.poll_sender_events();
    }

    fn on_rtp(&mut self, now_us: u64, data: &[u8]) -> bool {
        if let Some((_, modem)) = self.packet_modem.as_mut() {
            return modem.on_packet(now_us, data);
        }
        match rtp::parse(data) {
            Ok(pkt) => {
                if pkt.payload_type == self.audio_pt || Some(pkt.payload_type) == self.event_pt {
                    self.receiver.on_packet(&pkt, now_us);
                    if Some(pkt.payload_type) == self.event_pt {
                        self.events_seen = true;
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

    fn set_tap(&mut self, tap: Option<Box<dyn FrameTap>>) {
        self.tap = tap;
        self.tap_gap_frames = 0;
    }

    fn set_digit_detection(&mut self, in_band: bool) {
        self.in_band = in_band.then(|| InBandDetector::new(self.rate));
    }

    fn set_bridged(&mut self, bridged: bool) {
        self.bridged = bridged;
        self.relay = false;
        self.has_received_payload = false;
        self.has_peer_payload = false;
        if !bridged {
            self.received.clear();
            self.from_peer.clear();
            // The next peer is a new stream.
            self.peer_resampler = None;
        }
    }

    fn take_received_frame(&mut self, out: &mut Vec<i16>) -> bool {
        out.clear();
        let n = self.frame.len();
        if self.received.len() < n {
            return false;
        }
        out.extend(self.received.drain(..n));
        true
    }

    fn push_bridged_frame(&mut self, pcm: &[i16], rate: u32) {
        self.from_peer.clear();
        let n = self.frame.len();
        if rate == self.rate {
            self.from_peer.extend(pcm.iter().take(n).copied());
        } else {
            if self.peer_resampler.as_ref().map(Resampler::from_rate) != Some(rate) {
                self.peer_resampler = Resampler::new(rate, self.rate).ok();
            }
            let Some(resampler) = self.peer_resampler.as_mut() else {
                // A rate no call has (0, or a ratio too fine): the peer is not heard.
                return;
            };
            resampler.process(pcm, &mut self.from_peer);
        }
        // 20 ms in gives exactly 20 ms out; anything else is padded or cut to our frame.
        self.from_peer.resize(n, 0);
    }

    fn pcm_rate(&self) -> u32 {
        self.rate
    }

    fn codec(&self) -> Option<CodecKind> {
        Some(self.codec)
    }

    fn relay_codec(&self) -> Option<CodecKind> {
        let quiet_here = self.bridged
            && self.in_band.is_none()
            && self.tap.is_none()
            && self.listeners.is_empty()
            && self.forks.is_empty()
            && self.filter.is_none()
            && self.modem.is_none();
        let stateless = matches!(self.codec, CodecKind::Pcmu | CodecKind::Pcma);
        (quiet_here && stateless).then_some(self.codec)
    }

    fn set_relay(&mut self, relay: bool) {
        self.relay = relay;
        if !relay {
            self.has_received_payload = false;
        }
    }

    fn take_received_payload(&mut self, out: &mut Vec<u8>) -> bool {
        if !std::mem::take(&mut self.has_received_payload) {
            return false;
        }
        out.clear();
        out.extend_from_slice(&self.received_payload);
        true
    }

    fn push_bridged_payload(&mut self, payload: &[u8]) {
        self.peer_payload.clear();
        self.peer_payload.extend_from_slice(payload);
        self.has_peer_payload = true;
    }

    fn set_modem(&mut self, key: String, modem: Option<Box<dyn FrameModem>>) {
        match modem {
            Some(m) => self.modem = Some((key, m)),
            None if self.modem.as_ref().is_some_and(|(k, _)| *k == key) => {
                self.modem = None;
                self.modem_copy = Vec::new();
            }
            None => {}
        }
    }

    fn set_packet_modem(&mut self, key: String, modem: Option<Box<dyn PacketModem>>) {
        match modem {
            Some(m) => self.packet_modem = Some((key, m)),
            None if self.packet_modem.as_ref().is_some_and(|(k, _)| *k == key) => {
                self.packet_modem = None;
            }
            None => {}
        }
    }

    fn carries_rtp(&self) -> bool {
        self.packet_modem.is_none()
    }

    fn set_listener(&mut self, key: String, listener: Option<Box<dyn FrameListener>>) {
        self.listeners.retain(|(k, _)| *k != key);
        if let Some(l) = listener {
            self.listeners.push((key, l));
        }
    }

    fn set_sent_listener(&mut self, key: String, listener: Option<Box<dyn FrameListener>>) {
        self.sent_listeners.retain(|(k, _)| *k != key);
        if let Some(l) = listener {
            self.sent_listeners.push((key, l));
        }
    }

    fn set_filter(&mut self, filter: Option<Box<dyn FrameFilter>>) {
        self.filter = filter;
    }

    fn set_fork(&mut self, key: String, fork: Option<Box<dyn MediaFork>>) {
        self.forks.retain(|(k, _)| *k != key);
        if let Some(f) = fork {
            self.forks.push((key, f));
        }
        self.jitter.set_min_delay_ms(if self.forks.is_empty() {
            JITTER_MIN_MS
        } else {
            FORK_JITTER_MIN_MS
        });
    }

    fn set_source(&mut self, key: String, source: Option<Box<dyn FrameSource>>) {
        self.sources.retain(|(k, _)| *k != key);
        if let Some(s) = source {
            self.sources.push((key, s));
        }
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
            packets_rejected: 0,
            srtp_rejected: 0,
            jitter_us: jitter_us(s.jitter_rtp_units, self.rtp_clock_rate),
            rtp_clock_rate: self.rtp_clock_rate,
            rtcp: crate::rtcp::RtcpStats::default(),
        }
    }

    fn rtcp_inputs(&mut self) -> Option<crate::rtcp::RtcpInputs> {
        if self.packet_modem.is_some() {
            // UDPTL has no RTCP; the RTP stream pauses, its reports with it.
            return None;
        }
        Some(crate::rtcp::RtcpInputs {
            ssrc: self.sender.ssrc(),
            rtp_timestamp: self.sender.timestamp(),
            received: self.receiver.report_block_inputs(),
        })
    }
}

/// A jitter in RTP clock units as µs (0 for a clock of 0).
fn jitter_us(units: f64, clock_rate: u32) -> u64 {
    if clock_rate == 0 || !units.is_finite() || units <= 0.0 {
        return 0;
    }
    (units * 1_000_000.0 / f64::from(clock_rate)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jitters in RTP clock units become ms at the call's clock; loss fractions are /256.
    #[test]
    fn stats_in_milliseconds() {
        assert_eq!(jitter_us(80.0, 8000), 10_000);
        assert_eq!(jitter_us(480.0, 48_000), 10_000);
        assert_eq!((jitter_us(5.0, 0), jitter_us(f64::NAN, 8000)), (0, 0));
        let mut s = MediaStats {
            jitter_us: 1_500,
            rtp_clock_rate: 8000,
            ..Default::default()
        };
        assert_eq!(s.jitter_ms(), 1.5);
        assert_eq!(
            (s.remote_jitter_ms(), s.remote_fraction_lost()),
            (None, None)
        );
        s.rtcp.remote_jitter = Some(16);
        s.rtcp.remote_fraction_lost = Some(64);
        assert_eq!(s.remote_jitter_ms(), Some(2.0));
        assert_eq!(s.remote_fraction_lost(), Some(0.25));
        s.rtp_clock_rate = 0;
        assert_eq!(s.remote_jitter_ms(), None);
    }

    fn config(codec: CodecKind) -> GraphConfig {
        GraphConfig {
            codec,
            rtp_clock_rate: 8000,
            ssrc: 1,
            initial_sequence: 1,
            initial_timestamp: 0,
            payload_type: 9,
            telephone_event_pt: None,
        }
    }

    /// A phone that sends RFC 4733 events and also plays the key's tones in its audio gives
    /// one digit per press, even when the audio breaks up mid-press (the in-band detector would
    /// hear two presses); without events the unbroken tones alone give it.
    #[test]
    fn a_key_sent_both_ways_is_reported_once() {
        for with_events in [true, false] {
            let mut cfg = config(CodecKind::Pcmu);
            cfg.payload_type = 0;
            cfg.telephone_event_pt = Some(101);
            let Ok(mut g) = CallGraph::new(&cfg) else {
                panic!("graph");
            };
            g.set_digit_detection(true);
            let mut gen = crate::tone::ToneGenerator::new(8000, &[770.0, 1336.0], 8000);
            let mut pcm = vec![0i16; 160];
            let mut digits = Vec::new();
            let mut out = crate::packets::Packets::new();
            for tick in 0u32..80 {
                let now = u64::from(tick) * 20_000;
                // A 1 s press of "5" (its audio broken for 100 ms when events come too), then
                // silence.
                let dropout = with_events && (20..25).contains(&tick);
                if tick < 50 && !dropout {
                    gen.fill(&mut pcm);
                } else {
                    pcm.iter_mut().for_each(|x| *x = 0);
                }
                let payload: Vec<u8> = pcm.iter().map(|x| crate::g711::ulaw_encode(*x)).collect();
                let mut pkt = Vec::new();
                rtp::write(false, 0, tick as u16, tick * 160, 7, &payload, &mut pkt);
                g.on_rtp(now, &pkt);
                if with_events && tick < 53 {
                    let ev = rtp::TelephoneEvent {
                        event: 5,
                        end: tick >= 50,
                        volume: 10,
                        duration: (tick.min(50) * 160) as u16,
                    };
                    let mut pkt = Vec::new();
                    rtp::write(
                        tick == 0,
                        101,
                        1000 + tick as u16,
                        0,
                        7,
                        &ev.to_bytes(),
                        &mut pkt,
                    );
                    g.on_rtp(now, &pkt);
                }
                out.clear();
                g.on_tick(now, &mut out);
                while let Some(e) = g.poll_event() {
                    if let MediaEvent::Digit(d) = e {
                        digits.push(d);
                    }
                }
            }
            assert_eq!(digits, vec!['5'], "with events: {with_events}");
        }
    }

    /// A narrowband peer's tone reaches a wideband call band-limited (no image at 7 kHz),
    /// at its level, with no click between frames; same rates are copied.
    #[test]
    fn bridged_frames_are_resampled_across_frames() {
        let Ok(mut g) = CallGraph::new(&config(CodecKind::G722)) else {
            panic!("graph");
        };
        let mut gen = crate::tone::ToneGenerator::new(8000, &[1000.0], 10_000);
        let mut heard = Vec::new();
        let mut frame = vec![0i16; 160];
        for _ in 0..50 {
            gen.fill(&mut frame);
            g.push_bridged_frame(&frame, 8000);
            assert_eq!(g.from_peer.len(), 320);
            heard.extend_from_slice(&g.from_peer);
        }
        let steady = &heard[320 * 5..];
        let level = crate::tone::goertzel_dbfs(steady, 16_000, 1000.0);
        let image = crate::tone::goertzel_dbfs(steady, 16_000, 7000.0);
        let want = 20.0 * (10_000.0f32 / 32768.0).log10();
        assert!((level - want).abs() < 0.2, "{level} {want}");
        assert!(image < level - 60.0, "{image}");
        // The largest step between neighbours stays that of a 1 kHz sine at 16 kHz.
        let max_step = steady
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0);
        assert!(max_step < 4000, "{max_step}");
        // A wideband peer: copied, padded to a frame; an unusable rate gives nothing.
        g.push_bridged_frame(&[5; 100], 16_000);
        assert_eq!(
            (g.from_peer.len(), g.from_peer[99], g.from_peer[100]),
            (320, 5, 0)
        );
        g.push_bridged_frame(&frame, 0);
        assert!(g.from_peer.is_empty());
        g.push_bridged_frame(&[], 48_000);
        assert_eq!(g.from_peer.len(), 320);
    }

    /// A modem (a fax terminal) makes all the call sends: the playback does not reach the far
    /// end, each packet goes twice (the copy a tick later), and it hears a lost frame as
    /// `None`, not as concealment.
    #[test]
    fn a_modem_owns_the_call_audio_and_each_packet_goes_twice() {
        #[derive(Default)]
        struct Log {
            heard: Vec<Option<i16>>,
        }
        struct Modem(std::sync::Arc<std::sync::Mutex<Log>>);
        impl FrameModem for Modem {
            fn exchange(
                &mut self,
                _: u64,
                heard: Option<&[i16]>,
                out: &mut [i16],
                _: u32,
                events: &mut Vec<ListenerEvent>,
            ) {
                out.fill(1000);
                if let Ok(mut l) = self.0.lock() {
                    l.heard.push(heard.map(|h| h[0]));
                }
                events.push(ListenerEvent::Fax(crate::fax::FaxProgress::Page {
                    number: 1,
                }));
            }
        }
        let mut cfg = config(CodecKind::Pcmu);
        cfg.payload_type = 0;
        let Ok(mut g) = CallGraph::new(&cfg) else {
            panic!("graph");
        };
        g.play(
            1,
            vec![Source::Tone {
                freqs: vec![440.0],
                ms: 10_000,
            }],
            0.0,
            1,
        );
        let log = std::sync::Arc::new(std::sync::Mutex::new(Log::default()));
        g.set_modem("fax-1".into(), Some(Box::new(Modem(log.clone()))));
        let mut out = Packets::new();
        let mut sent = Vec::new();
        for tick in 0u32..12 {
            let now = u64::from(tick) * 20_000;
            out.clear();
            g.on_tick(now, &mut out);
            sent.push(out.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
            // The far end sends a constant 500; packet 6 is lost.
            if tick != 6 {
                let payload = vec![crate::g711::ulaw_encode(500); 160];
                let mut pkt = Vec::new();
                rtp::write(false, 0, tick as u16, tick * 160, 7, &payload, &mut pkt);
                assert!(g.on_rtp(now + 1_000, &pkt));
            }
        }
        // One packet on the first tick, then each tick's own and the last one's copy.
        assert_eq!(sent[0].len(), 1);
        for k in 1..sent.len() {
            assert_eq!(sent[k].len(), 2);
            assert_eq!(sent[k][1], sent[k - 1][0]);
        }
        // Every payload is the modem's 1000 (the tone never plays).
        let level = crate::g711::ulaw_encode(1000);
        assert!(sent
            .iter()
            .flatten()
            .all(|p| p[12..].iter().all(|b| *b == level)));
        let heard = log.lock().map(|l| l.heard.clone()).unwrap_or_default();
        let lost = heard.iter().filter(|h| h.is_none()).count();
        let came: Vec<i16> = heard.iter().flatten().copied().collect();
        assert!(
            !came.is_empty() && came.iter().all(|x| (x - 500).abs() < 20),
            "{heard:?}"
        );
        // Before the first frame is due, and the lost one: nothing, never a made-up frame.
        assert!(
            heard
                .windows(3)
                .any(|w| w[0].is_some() && w[1].is_none() && w[2].is_some()),
            "{heard:?}"
        );
        assert!(lost >= 2);
        match g.poll_event() {
            Some(MediaEvent::Listener(k)) => assert_eq!(k.key, "fax-1"),
            other => panic!("{other:?}"),
        }
        g.set_modem("fax-1".into(), None);
        out.clear();
        g.on_tick(12 * 20_000, &mut out);
        assert_eq!(out.len(), 1);
    }

    /// A packet modem (T.38) takes the call's datagrams as they come and sends only its own:
    /// no RTP while it runs, no RTCP, its events keyed; removed, RTP goes on.
    #[test]
    fn a_packet_modem_replaces_rtp_both_ways() {
        #[derive(Default)]
        struct Log {
            got: Vec<Vec<u8>>,
        }
        struct Udptl(std::sync::Arc<std::sync::Mutex<Log>>);
        impl crate::listen::PacketModem for Udptl {
            fn on_packet(&mut self, _: u64, data: &[u8]) -> bool {
                if let Ok(mut l) = self.0.lock() {
                    l.got.push(data.to_vec());
                }
                data.first() == Some(&0x00)
            }
            fn tick(&mut self, _: u64, out: &mut Packets, events: &mut Vec<ListenerEvent>) {
                out.push(&[0x00, 0x01, 0x02]);
                events.push(ListenerEvent::Fax(crate::fax::FaxProgress::Page {
                    number: 2,
                }));
            }
        }
        let mut cfg = config(CodecKind::Pcmu);
        cfg.payload_type = 0;
        let Ok(mut g) = CallGraph::new(&cfg) else {
            panic!("graph");
        };
        let log = std::sync::Arc::new(std::sync::Mutex::new(Log::default()));
        assert!(g.carries_rtp() && g.rtcp_inputs().is_some());
        g.set_packet_modem("fax-1".into(), Some(Box::new(Udptl(log.clone()))));
        assert!(!g.carries_rtp() && g.rtcp_inputs().is_none());
        let mut out = Packets::new();
        g.on_tick(0, &mut out);
        assert_eq!(
            out.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
            vec![vec![0, 1, 2]]
        );
        // An RTP packet is not the modem's, a UDPTL datagram is: both reach it as they came.
        let mut rtp_pkt = Vec::new();
        rtp::write(false, 0, 1, 160, 7, &[0xff; 160], &mut rtp_pkt);
        assert!(!g.on_rtp(1_000, &rtp_pkt));
        assert!(g.on_rtp(2_000, &[0x00, 0x05, 0x01, 0x00]));
        assert_eq!(log.lock().map(|l| l.got.len()).unwrap_or(0), 2);
        match g.poll_event() {
            Some(MediaEvent::Listener(k)) => assert_eq!(k.key, "fax-1"),
            other => panic!("{other:?}"),
        }
        // Another key does not remove it; its own does.
        g.set_packet_modem("fax-2".into(), None);
        assert!(!g.carries_rtp());
        g.set_packet_modem("fax-1".into(), None);
        assert!(g.carries_rtp());
        out.clear();
        g.on_tick(20_000, &mut out);
        let sent: Vec<Vec<u8>> = out.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(sent.len(), 1);
        assert!(rtp::parse(&sent[0]).is_ok());
    }
}

#[cfg(test)]
mod fork_latency_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type First = Arc<Mutex<Option<u64>>>;

    fn note_loud(first: &First, now_us: u64, pcm: &[i16]) {
        if pcm.iter().any(|s| s.unsigned_abs() > 1000) {
            let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(now_us);
        }
    }

    fn pcmu_graph() -> CallGraph {
        CallGraph::new(&GraphConfig {
            codec: CodecKind::Pcmu,
            rtp_clock_rate: 8000,
            ssrc: 1,
            initial_sequence: 1,
            initial_timestamp: 0,
            payload_type: 0,
            telephone_event_pt: None,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The far end's packet `k`: 20 ms of loud PCMU (0x80 is +8031).
    fn loud_packet(k: u16) -> Vec<u8> {
        let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        pkt[2..4].copy_from_slice(&k.to_be_bytes());
        pkt[4..8].copy_from_slice(&(u32::from(k) * 160).to_be_bytes());
        pkt.extend(std::iter::repeat_n(0x80u8, 160));
        pkt
    }

    /// Notes the first tick whose far-end audio is loud, as a fork.
    struct ForkEar(First);

    impl MediaFork for ForkEar {
        fn on_frame(&mut self, now_us: u64, heard: Option<&[i16]>, _: &[i16], _: u32) {
            note_loud(&self.0, now_us, heard.unwrap_or_default());
        }
    }

    /// The same, as a listener (a detector hears this way).
    struct ListenerEar(First);

    impl FrameListener for ListenerEar {
        fn on_frame(&mut self, now_us: u64, pcm: &[i16], _: u32, _: &mut Vec<ListenerEvent>) {
            note_loud(&self.0, now_us, pcm);
        }
    }

    /// When the far end's first frame, sent 2 ms after a tick, is heard.
    fn first_heard_us(through_fork: bool) -> u64 {
        let mut g = pcmu_graph();
        let first = First::default();
        if through_fork {
            g.set_fork("stream".into(), Some(Box::new(ForkEar(first.clone()))));
        } else {
            g.set_listener("detect".into(), Some(Box::new(ListenerEar(first.clone()))));
        }
        let mut out = Packets::new();
        for k in 0..20u16 {
            let now = u64::from(k) * 20_000;
            g.on_tick(now, &mut out);
            assert!(g.on_rtp(now + 2_000, &loud_packet(k)));
        }
        let first = *first.lock().unwrap_or_else(|e| e.into_inner());
        first.unwrap_or_else(|| panic!("nothing heard"))
    }

    /// A live fork gets the far end's audio at the next tick after it came (18 ms here); a
    /// detector alone waits for the 40 ms target (38 ms: the tick nearest it).
    #[test]
    fn a_fork_hears_the_far_end_a_tick_sooner() {
        assert_eq!(first_heard_us(true), 20_000);
        assert_eq!(first_heard_us(false), 40_000);
    }

    /// A listener on what the call sends hears its playback — and nothing of the far end's.
    #[test]
    fn a_sent_listener_hears_what_the_call_plays() {
        let mut g = pcmu_graph();
        let sent = First::default();
        g.set_sent_listener(
            "live:local".into(),
            Some(Box::new(ListenerEar(sent.clone()))),
        );
        let mut out = Packets::new();
        // The far end is loud from the start; the call plays a loud sound from 100 ms on.
        for k in 0..20u16 {
            let now = u64::from(k) * 20_000;
            if k == 5 {
                let loud: std::sync::Arc<[i16]> = vec![8000i16; 1600].into();
                g.play(1, vec![crate::playback::Source::Pcm(loud)], 0.0, 1);
            }
            g.on_tick(now, &mut out);
            assert!(g.on_rtp(now + 2_000, &loud_packet(k)));
        }
        let first = *sent.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(first, Some(100_000));
        // Removed by its key, it hears no more.
        g.set_sent_listener("live:local".into(), None);
        assert!(g.sent_listeners.is_empty());
    }
}
