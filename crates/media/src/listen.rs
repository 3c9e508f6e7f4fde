//! Who hears the far end's audio on the media thread, one 20 ms frame per tick, after the
//! jitter buffer: one [`FrameFilter`] per call (the denoiser) changes it first, then every
//! [`FrameListener`] (a detector, the speech segmenter of a collect) hears it and reports
//! typed [`ListenerEvent`]s. Layering: `detect` and `speech` know nothing of this module; it
//! wraps their events (and makes the detector a listener).

use crate::detect::{DetectEvent, DetectListener};
use crate::fax::FaxProgress;
use crate::packets::Packets;
use crate::speech::SpeechEvent;

/// Hears the far end's audio, one 20 ms frame per tick, after the jitter buffer and the filter.
/// It must not block: heavy work (speech recognition) goes to another thread.
pub trait FrameListener: Send {
    /// One frame of what the far end sent, at `rate`. What it has to say goes to `events`.
    fn on_frame(&mut self, now_us: u64, pcm: &[i16], rate: u32, events: &mut Vec<ListenerEvent>);
    /// Called on ticks where no audio came (nothing arrived yet, or a long gap), so timers
    /// inside a listener still run.
    fn on_idle(&mut self, now_us: u64, events: &mut Vec<ListenerEvent>) {
        let _ = (now_us, events);
    }
}

/// Changes the far end's audio in place before anyone hears it (one filter per call).
pub trait FrameFilter: Send {
    fn process(&mut self, pcm: &mut [i16], rate: u32);
}

/// Takes the call's audio over both ways, one 20 ms frame per tick: a fax modem. While one
/// runs, what the far end sent reaches it as it came (no filter, no loss concealment: a lost
/// frame is `None`, for the modem to bridge) and what it writes is all the call sends (no
/// playback, no bridge, nothing mixed in), so the modem's signal reaches the far end
/// untouched.
pub trait FrameModem: Send {
    /// One tick: `heard` is the far end's frame (None: lost, or nothing arrived), `out` the
    /// frame to send (the same length, at `rate`), to be filled completely.
    fn exchange(
        &mut self,
        now_us: u64,
        heard: Option<&[i16]>,
        out: &mut [i16],
        rate: u32,
        events: &mut Vec<ListenerEvent>,
    );
}

/// Takes the call's transport over in place of RTP: a T.38 fax terminal, whose UDPTL
/// datagrams use the call's media port once a re-INVITE moved the call to `m=image`. While one
/// runs, every datagram from the far end goes to it as it came, and each tick sends only what
/// it writes (no RTP, no RTCP).
pub trait PacketModem: Send {
    /// A datagram from the far end; false when it is not one of the modem's (malformed).
    fn on_packet(&mut self, now_us: u64, data: &[u8]) -> bool;
    /// One 20 ms tick: the datagrams to send go into `out`.
    fn tick(&mut self, now_us: u64, out: &mut Packets, events: &mut Vec<ListenerEvent>);
}

/// What a listener reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenerEvent {
    Detect(DetectEvent),
    Speech(SpeechEvent),
    /// From the call's [`FrameModem`] or [`PacketModem`] (a fax terminal).
    Fax(FaxProgress),
}

impl ListenerEvent {
    /// Whether the event may be dropped when its consumer is behind: only a speech segment's
    /// interim hypothesis, which a later partial or the final result supersedes.
    pub fn is_droppable(&self) -> bool {
        matches!(self, ListenerEvent::Speech(SpeechEvent::Partial { .. }))
    }
}

/// A [`ListenerEvent`] tagged with the key its listener was added under.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedEvent {
    pub key: String,
    pub event: ListenerEvent,
}

impl FrameListener for DetectListener {
    fn on_frame(&mut self, now_us: u64, pcm: &[i16], rate: u32, events: &mut Vec<ListenerEvent>) {
        let mut found = Vec::new();
        self.push_frame(now_us, pcm, rate, &mut found);
        events.extend(found.into_iter().map(ListenerEvent::Detect));
    }

    /// No audio arrived this tick: the far end is silent (many peers send nothing then), and
    /// the detectors' clock is the audio, so they hear 20 ms of silence.
    fn on_idle(&mut self, now_us: u64, events: &mut Vec<ListenerEvent>) {
        let mut found = Vec::new();
        self.idle(now_us, &mut found);
        events.extend(found.into_iter().map(ListenerEvent::Detect));
    }
}
