//! The per-call RTP packetizer: one packet per 20 ms tick, audio or RFC 4733 events.

use std::collections::VecDeque;

use crate::packet::{digit_to_event, write, TelephoneEvent};
use crate::RtpError;

/// Ticks (20 ms each) a digit's tone lasts: 100 ms.
const DIGIT_TICKS: u32 = 5;
/// Extra copies of the final (E bit) packet after the first one (RFC 4733 §2.5.1.4).
const END_RETRANSMISSIONS: u32 = 2;
/// Ticks of audio between two digits: 60 ms.
const GAP_TICKS: u32 = 3;
/// Ticks for `w` (500 ms) and `W` (1 s).
const SHORT_PAUSE_TICKS: u32 = 25;
const LONG_PAUSE_TICKS: u32 = 50;
/// Event volume: −10 dBm0, a usual DTMF level.
const EVENT_VOLUME: u8 = 10;

/// How a call's outgoing stream is set up. The caller picks random SSRC, sequence and
/// timestamp starting points (RFC 3550 §5.1).
#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub ssrc: u32,
    pub initial_sequence: u16,
    pub initial_timestamp: u32,
    pub audio_payload_type: u8,
    pub event_payload_type: Option<u8>,
    /// RTP clock ticks per 20 ms packet: 160 for PCMU/PCMA/G.722, 960 for Opus.
    pub timestamp_step: u32,
}

/// Something the sender reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderEvent {
    /// Every queued digit and pause has been sent.
    DigitsDone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Digit(u8),
    Pause(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Active {
    /// A digit in progress: `ticks` event packets already sent (including retransmissions).
    Digit {
        event: u8,
        start_timestamp: u32,
        ticks: u32,
    },
    /// Audio for `remaining` more ticks (a pause, or the gap before the next digit).
    Audio { remaining: u32 },
}

/// Builds one RTP packet per 20 ms tick. Sequence numbers increase by one per packet and
/// the timestamp by `timestamp_step` per tick, whether the packet carries audio or an event.
#[derive(Debug, Clone)]
pub struct RtpSender {
    cfg: SenderConfig,
    sequence: u16,
    timestamp: u32,
    first_packet: bool,
    queue: VecDeque<Item>,
    active: Option<Active>,
    /// A digit finished and the next one must wait for the inter-digit gap.
    gap_pending: bool,
    events: VecDeque<SenderEvent>,
}

impl RtpSender {
    pub fn new(cfg: SenderConfig) -> Self {
        RtpSender {
            sequence: cfg.initial_sequence,
            timestamp: cfg.initial_timestamp,
            cfg,
            first_packet: true,
            queue: VecDeque::new(),
            active: None,
            gap_pending: false,
            events: VecDeque::new(),
        }
    }

    /// Queues DTMF digits (`0-9 * # A-D a-d`) and pauses (`w` = 500 ms, `W` = 1 s) after
    /// whatever is already queued. The whole string is validated first: on an invalid
    /// character nothing is queued. Errors when no telephone-event payload type was
    /// negotiated. An empty string on an idle sender reports [`SenderEvent::DigitsDone`]
    /// at once, so a caller waiting for it is never stuck.
    pub fn queue_digits(&mut self, digits: &str) -> Result<(), RtpError> {
        if self.cfg.event_payload_type.is_none() {
            return Err(RtpError::NoEventPayloadType);
        }
        let mut items = Vec::with_capacity(digits.len());
        for (position, ch) in digits.chars().enumerate() {
            let item = match ch {
                'w' => Item::Pause(SHORT_PAUSE_TICKS),
                'W' => Item::Pause(LONG_PAUSE_TICKS),
                _ => match digit_to_event(ch) {
                    Some(ev) => Item::Digit(ev),
                    None => return Err(RtpError::InvalidDigit { ch, position }),
                },
            };
            items.push(item);
        }
        if items.is_empty() {
            if !self.sending_digits() {
                self.events.push_back(SenderEvent::DigitsDone);
            }
            return Ok(());
        }
        self.queue.extend(items);
        Ok(())
    }

    /// Writes exactly one packet for this 20 ms tick into `out` (cleared first): the
    /// current telephone-event packet while a digit is being sent, otherwise
    /// `audio_payload` with the audio payload type.
    pub fn next_packet(&mut self, audio_payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let tick_timestamp = self.timestamp;
        let step = self.cfg.timestamp_step;
        if self.active.is_none() {
            self.start_next_item(tick_timestamp);
        }
        let mut marker = self.first_packet;
        match self.active {
            Some(Active::Digit {
                event,
                start_timestamp,
                ticks,
            }) => {
                let pt = self
                    .cfg
                    .event_payload_type
                    .unwrap_or(self.cfg.audio_payload_type);
                // Packets 1..=DIGIT_TICKS grow the duration; retransmissions repeat the last.
                let n = (ticks + 1).min(DIGIT_TICKS);
                let duration = u16::try_from(step.saturating_mul(n)).unwrap_or(u16::MAX);
                let ev = TelephoneEvent {
                    event,
                    end: ticks + 1 >= DIGIT_TICKS,
                    volume: EVENT_VOLUME,
                    duration,
                };
                marker |= ticks == 0;
                write(
                    marker,
                    pt,
                    self.sequence,
                    start_timestamp,
                    self.cfg.ssrc,
                    &ev.to_bytes(),
                    out,
                );
                let ticks = ticks + 1;
                if ticks >= DIGIT_TICKS + END_RETRANSMISSIONS {
                    self.active = None;
                    self.gap_pending = true;
                    self.finish_if_idle();
                } else {
                    self.active = Some(Active::Digit {
                        event,
                        start_timestamp,
                        ticks,
                    });
                }
            }
            Some(Active::Audio { remaining }) => {
                self.write_audio(marker, tick_timestamp, audio_payload, out);
                if remaining <= 1 {
                    self.active = None;
                    self.finish_if_idle();
                } else {
                    self.active = Some(Active::Audio {
                        remaining: remaining - 1,
                    });
                }
            }
            None => self.write_audio(marker, tick_timestamp, audio_payload, out),
        }
        self.first_packet = false;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(step);
    }

    fn write_audio(&self, marker: bool, timestamp: u32, payload: &[u8], out: &mut Vec<u8>) {
        write(
            marker,
            self.cfg.audio_payload_type,
            self.sequence,
            timestamp,
            self.cfg.ssrc,
            payload,
            out,
        );
    }

    /// Makes the next queued item active (or the inter-digit gap before it).
    fn start_next_item(&mut self, tick_timestamp: u32) {
        match self.queue.front().copied() {
            None => {
                self.gap_pending = false;
            }
            Some(Item::Digit(event)) => {
                if self.gap_pending {
                    self.gap_pending = false;
                    self.active = Some(Active::Audio {
                        remaining: GAP_TICKS,
                    });
                } else {
                    self.queue.pop_front();
                    self.active = Some(Active::Digit {
                        event,
                        start_timestamp: tick_timestamp,
                        ticks: 0,
                    });
                }
            }
            Some(Item::Pause(ticks)) => {
                self.queue.pop_front();
                self.gap_pending = false;
                self.active = Some(Active::Audio { remaining: ticks });
            }
        }
    }

    /// Reports `DigitsDone` when the last queued item has just finished.
    fn finish_if_idle(&mut self) {
        if self.queue.is_empty() && self.active.is_none() {
            self.gap_pending = false;
            self.events.push_back(SenderEvent::DigitsDone);
        }
    }

    /// True while queued digits or pauses remain to be sent.
    pub fn sending_digits(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty()
    }

    /// The next event for the owner, if any.
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }

    /// The sequence number the next packet will carry.
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    /// The RTP timestamp of the next tick.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    pub fn ssrc(&self) -> u32 {
        self.cfg.ssrc
    }
}
