//! Taps and streams: the media-thread ends of a fork (what a shard's tick calls, never
//! blocking) and, in ws.rs, the WebSocket tasks they feed off the media threads.
//!
//! - [`RtpTap`] sends the call's audio as RTP straight from the shard's tick, paced by it.
//! - [`QueueFork`] hands each tick's audio to a WebSocket task over a bounded queue; a full
//!   queue drops the frame (counted), so a slow or stalled server never slows the tick.
//! - [`StreamSource`] plays what a stream's server sends back (bot audio, `mark`, `clear`),
//!   taking it from a bounded queue the task fills.

pub(crate) mod ws;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use control::command::{ForkEncoding, ForkFormat};
use media::fork::{mix, FrameSource, MediaFork, Playout, RateConverter, Tracks};
use tokio::sync::mpsc;

/// Frames waiting for a WebSocket task, per fork (2 s of audio).
pub(crate) const FRAME_QUEUE: usize = 100;

/// Messages from a stream's server waiting for the media thread.
pub(crate) const BOT_QUEUE: usize = 256;

/// Bot audio queued to play, at most (samples at the call's rate): 2 minutes at 48 kHz.
const PLAYOUT_CAP: usize = 48_000 * 120;

/// Encodes 20 ms (or any length) of PCM in `format` (L16 little-endian).
pub(crate) fn encode(format: ForkFormat, pcm: &[i16], out: &mut Vec<u8>) {
    match format.encoding {
        ForkEncoding::Pcmu => out.extend(pcm.iter().map(|s| media::g711::ulaw_encode(*s))),
        ForkEncoding::Pcma => out.extend(pcm.iter().map(|s| media::g711::alaw_encode(*s))),
        ForkEncoding::L16 => {
            for s in pcm {
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
    }
}

/// The inverse of [`encode`]; an odd trailing byte of L16 is ignored.
pub(crate) fn decode(format: ForkFormat, bytes: &[u8], out: &mut Vec<i16>) {
    match format.encoding {
        ForkEncoding::Pcmu => out.extend(bytes.iter().map(|b| media::g711::ulaw_decode(*b))),
        ForkEncoding::Pcma => out.extend(bytes.iter().map(|b| media::g711::alaw_decode(*b))),
        ForkEncoding::L16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]])),
        ),
    }
}

/// One tick of a fork's audio at its format's rate: the tracks it asked for.
#[derive(Debug)]
pub(crate) struct ForkFrame {
    /// What the party says (for a mixed fork: both, summed).
    pub inbound: Option<Vec<i16>>,
    /// What the party hears.
    pub outbound: Option<Vec<i16>>,
}

/// Picks and converts a tick's tracks for a fork (shared by the RTP tap and the queue).
#[derive(Debug)]
struct TrackPicker {
    tracks: Tracks,
    inbound: RateConverter,
    outbound: RateConverter,
    silence: Vec<i16>,
    mixed: Vec<i16>,
}

impl TrackPicker {
    fn new(tracks: Tracks, rate: u32) -> TrackPicker {
        TrackPicker {
            tracks,
            inbound: RateConverter::new(rate),
            outbound: RateConverter::new(rate),
            silence: Vec::new(),
            mixed: Vec::new(),
        }
    }

    /// The tick's tracks at the fork's rate; a tick with nothing heard counts as silence.
    fn pick(&mut self, heard: Option<&[i16]>, sent: &[i16], rate: u32) -> ForkFrame {
        let heard = match heard {
            Some(h) => h,
            None => {
                self.silence.resize(sent.len(), 0);
                &self.silence[..]
            }
        };
        let convert = |conv: &mut RateConverter, pcm: &[i16]| {
            let mut out = Vec::with_capacity(conv.to_rate() as usize / 50);
            conv.convert(pcm, rate, &mut out);
            out
        };
        match self.tracks {
            Tracks::Inbound => ForkFrame {
                inbound: Some(convert(&mut self.inbound, heard)),
                outbound: None,
            },
            Tracks::Outbound => ForkFrame {
                inbound: None,
                outbound: Some(convert(&mut self.outbound, sent)),
            },
            Tracks::Both => ForkFrame {
                inbound: Some(convert(&mut self.inbound, heard)),
                outbound: Some(convert(&mut self.outbound, sent)),
            },
            Tracks::Mixed => {
                mix(heard, sent, &mut self.mixed);
                let mixed = std::mem::take(&mut self.mixed);
                let out = convert(&mut self.inbound, &mixed);
                self.mixed = mixed;
                ForkFrame {
                    inbound: Some(out),
                    outbound: None,
                }
            }
        }
    }
}

/// Counters a fork shares with whoever reports on it.
#[derive(Debug, Default)]
pub(crate) struct ForkCounters {
    pub frames: AtomicU64,
    pub dropped: AtomicU64,
    pub send_errors: AtomicU64,
}

impl ForkCounters {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.frames.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.send_errors.load(Ordering::Relaxed),
        )
    }
}

/// A fork feeding a WebSocket task: each tick's tracks go on a bounded queue; when it is
/// full the frame is dropped and counted.
pub(crate) struct QueueFork {
    picker: TrackPicker,
    tx: mpsc::Sender<ForkFrame>,
    counters: Arc<ForkCounters>,
}

impl QueueFork {
    pub fn new(
        tracks: Tracks,
        rate: u32,
        tx: mpsc::Sender<ForkFrame>,
        counters: Arc<ForkCounters>,
    ) -> QueueFork {
        QueueFork {
            picker: TrackPicker::new(tracks, rate),
            tx,
            counters,
        }
    }
}

impl MediaFork for QueueFork {
    fn on_frame(&mut self, _now_us: u64, heard: Option<&[i16]>, sent: &[i16], rate: u32) {
        let frame = self.picker.pick(heard, sent, rate);
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.counters.frames.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The task is gone; the actor takes the fork down.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// An RTP tap: the call's audio (one direction or both mixed) as G.711 RTP to `dest`, sent
/// from the media thread on its 20 ms clock (`ptime` groups or splits frames).
pub(crate) struct RtpTap {
    picker: TrackPicker,
    socket: UdpSocket,
    dest: SocketAddr,
    format: ForkFormat,
    samples_per_packet: usize,
    pending: Vec<i16>,
    packet: Vec<u8>,
    payload: Vec<u8>,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    first: bool,
    counters: Arc<ForkCounters>,
}

impl RtpTap {
    pub fn new(
        socket: UdpSocket,
        dest: SocketAddr,
        tracks: Tracks,
        format: ForkFormat,
        ptime_ms: u32,
        counters: Arc<ForkCounters>,
    ) -> RtpTap {
        RtpTap {
            picker: TrackPicker::new(tracks, format.rate),
            socket,
            dest,
            format,
            samples_per_packet: (format.rate * ptime_ms.max(10) / 1000) as usize,
            pending: Vec::new(),
            packet: Vec::with_capacity(1500),
            payload: Vec::with_capacity(1024),
            ssrc: rand::random(),
            sequence: rand::random(),
            timestamp: rand::random(),
            first: true,
            counters,
        }
    }

    fn payload_type(&self) -> u8 {
        match self.format.encoding {
            ForkEncoding::Pcma => 8,
            _ => 0,
        }
    }
}

impl MediaFork for RtpTap {
    fn on_frame(&mut self, _now_us: u64, heard: Option<&[i16]>, sent: &[i16], rate: u32) {
        let frame = self.picker.pick(heard, sent, rate);
        let Some(pcm) = frame.inbound.or(frame.outbound) else {
            return;
        };
        self.pending.extend_from_slice(&pcm);
        while self.pending.len() >= self.samples_per_packet {
            self.payload.clear();
            encode(
                self.format,
                &self.pending[..self.samples_per_packet],
                &mut self.payload,
            );
            self.pending.drain(..self.samples_per_packet);
            self.packet.clear();
            rtp::write(
                self.first,
                self.payload_type(),
                self.sequence,
                self.timestamp,
                self.ssrc,
                &self.payload,
                &mut self.packet,
            );
            self.first = false;
            self.sequence = self.sequence.wrapping_add(1);
            self.timestamp = self.timestamp.wrapping_add(self.samples_per_packet as u32);
            // Non-blocking: a full socket buffer loses this packet, never the tick.
            match self.socket.send_to(&self.packet, self.dest) {
                Ok(_) => self.counters.frames.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.counters.send_errors.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

/// What a stream's server sent, for the media thread.
#[derive(Debug)]
pub(crate) enum BotMessage {
    /// Audio at the call's rate.
    Audio(Vec<i16>),
    Mark(String),
    Clear,
}

/// Plays a stream's bot audio into the call: takes what the task queued, keeps it in a
/// bounded [`Playout`], and reports each `mark` back once the audio before it played.
pub(crate) struct StreamSource {
    rx: mpsc::Receiver<BotMessage>,
    playout: Playout,
    marks: mpsc::UnboundedSender<String>,
    done: Vec<String>,
    counters: Arc<ForkCounters>,
}

impl StreamSource {
    pub fn new(
        rx: mpsc::Receiver<BotMessage>,
        marks: mpsc::UnboundedSender<String>,
        counters: Arc<ForkCounters>,
    ) -> StreamSource {
        StreamSource {
            rx,
            playout: Playout::new(PLAYOUT_CAP),
            marks,
            done: Vec::new(),
            counters,
        }
    }
}

impl FrameSource for StreamSource {
    fn mix_into(&mut self, _now_us: u64, out: &mut [i16], _rate: u32) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                BotMessage::Audio(pcm) => {
                    let lost = self.playout.push_audio(&pcm);
                    if lost > 0 {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                BotMessage::Mark(name) => {
                    if !self.playout.push_mark(name) {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                BotMessage::Clear => self.playout.clear(&mut self.done),
            }
        }
        self.playout.mix_next(out, &mut self.done);
        for name in self.done.drain(..) {
            // The task may be gone (the stream ended): nobody to tell.
            let _ = self.marks.send(name);
        }
    }
}

/// The tracks of a tap's `direction` (PlayDirection for taps: `speak` = what the party says,
/// `listen` = what it hears, `both` = mixed).
pub(crate) fn tap_tracks(direction: control::command::AudioDirection) -> Tracks {
    match direction {
        control::command::AudioDirection::Speak => Tracks::Inbound,
        control::command::AudioDirection::Listen => Tracks::Outbound,
        control::command::AudioDirection::Both => Tracks::Mixed,
    }
}

/// The tracks of a stream's `track`.
pub(crate) fn stream_tracks(track: control::command::StreamTrack) -> Tracks {
    match track {
        control::command::StreamTrack::InboundTrack => Tracks::Inbound,
        control::command::StreamTrack::OutboundTrack => Tracks::Outbound,
        control::command::StreamTrack::BothTracks => Tracks::Both,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// G.711 and L16 round-trip (G.711 within its quantisation).
    #[test]
    fn codecs_round_trip() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 397) % 20_000 - 10_000) as i16)
            .collect();
        for format in [
            ForkFormat::PCMU,
            ForkFormat {
                encoding: ForkEncoding::Pcma,
                rate: 8000,
            },
            ForkFormat {
                encoding: ForkEncoding::L16,
                rate: 16_000,
            },
        ] {
            let mut bytes = Vec::new();
            encode(format, &pcm, &mut bytes);
            let mut back = Vec::new();
            decode(format, &bytes, &mut back);
            assert_eq!(back.len(), pcm.len());
            for (a, b) in pcm.iter().zip(&back) {
                assert!((i32::from(*a) - i32::from(*b)).abs() <= 320, "{format:?}");
            }
        }
        let mut back = Vec::new();
        decode(
            ForkFormat {
                encoding: ForkEncoding::L16,
                rate: 8000,
            },
            &[1, 0, 2],
            &mut back,
        );
        assert_eq!(back, vec![1]);
    }

    /// A tap at 30 ms sends 3 packets per 4 ticks, each of 240 samples, with consecutive
    /// sequence numbers and timestamps, from the media thread's own socket.
    #[test]
    fn rtp_tap_packetises_by_ptime() {
        let Ok(rx) = UdpSocket::bind("127.0.0.1:0") else {
            return;
        };
        let Ok(tx) = UdpSocket::bind("127.0.0.1:0") else {
            return;
        };
        let Ok(dest) = rx.local_addr() else { return };
        let counters = Arc::new(ForkCounters::default());
        let mut tap = RtpTap::new(
            tx,
            dest,
            Tracks::Inbound,
            ForkFormat::PCMU,
            30,
            counters.clone(),
        );
        for _ in 0..4 {
            tap.on_frame(0, Some(&[100; 160]), &[0; 160], 8000);
        }
        let _ = rx.set_read_timeout(Some(std::time::Duration::from_secs(1)));
        let mut buf = [0u8; 2048];
        let mut last: Option<(u16, u32)> = None;
        for _ in 0..2 {
            let Ok(n) = rx.recv(&mut buf) else {
                panic!("no packet")
            };
            let Ok(p) = rtp::parse(&buf[..n]) else {
                panic!("not RTP")
            };
            assert_eq!((p.payload_type, p.payload.len()), (0, 240));
            if let Some((seq, ts)) = last {
                assert_eq!(p.sequence, seq.wrapping_add(1));
                assert_eq!(p.timestamp, ts.wrapping_add(240));
            }
            last = Some((p.sequence, p.timestamp));
        }
        assert_eq!(counters.snapshot().0, 2);
    }

    /// A full queue drops frames (counted) instead of waiting; both tracks travel apart.
    #[test]
    fn queue_fork_drops_when_full() {
        let (tx, mut rx) = mpsc::channel(2);
        let counters = Arc::new(ForkCounters::default());
        let mut fork = QueueFork::new(Tracks::Both, 8000, tx, counters.clone());
        for _ in 0..5 {
            fork.on_frame(0, Some(&[1; 320]), &[2; 320], 16_000);
        }
        assert_eq!(counters.snapshot(), (2, 3, 0));
        let Ok(frame) = rx.try_recv() else {
            panic!("no frame")
        };
        assert_eq!(frame.inbound.map(|f| f.len()), Some(160));
        assert_eq!(frame.outbound.map(|f| f.len()), Some(160));
    }

    /// Bot audio plays in order into the call's frame; marks come back once played; a
    /// clear releases the pending marks at once.
    #[test]
    fn stream_source_plays_and_echoes_marks() {
        let (tx, rx) = mpsc::channel(8);
        let (mtx, mut mrx) = mpsc::unbounded_channel();
        let mut src = StreamSource::new(rx, mtx, Arc::new(ForkCounters::default()));
        let _ = tx.try_send(BotMessage::Audio(vec![5; 200]));
        let _ = tx.try_send(BotMessage::Mark("one".into()));
        let _ = tx.try_send(BotMessage::Audio(vec![6; 500]));
        let _ = tx.try_send(BotMessage::Mark("two".into()));
        let mut out = [0i16; 160];
        src.mix_into(0, &mut out, 8000);
        assert_eq!(out[0], 5);
        assert!(mrx.try_recv().is_err());
        let mut out = [0i16; 160];
        src.mix_into(0, &mut out, 8000);
        assert_eq!((out[39], out[40]), (5, 6));
        assert_eq!(mrx.try_recv().ok(), Some("one".to_string()));
        let _ = tx.try_send(BotMessage::Clear);
        let mut out = [0i16; 160];
        src.mix_into(0, &mut out, 8000);
        assert!(out.iter().all(|s| *s == 0));
        assert_eq!(mrx.try_recv().ok(), Some("two".to_string()));
    }
}
