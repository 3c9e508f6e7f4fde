//! Media shards: a few OS threads, each owning many calls' RTP sockets and media state
//! ([`media::shard::ShardMedia`]: the calls' media graphs, bridges and RTP latching), all ticked
//! together every 20 ms. No thread and no timer per call; the tick never blocks (sockets are
//! non-blocking, events go out on an unbounded channel where only droppable events are
//! bounded: [`EventSink`]).
//!
//! A shard is told the time by its own loop and passes it down: the media cores never ask.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use media::graph::FrameTap;
pub use media::latch::LatchPolicy;
use media::playback::{PlaybackId, PlayerEvent, Source};
use media::shard::ShardMedia;
use tokio::sync::mpsc;
use uuid::Uuid;

use media::queue::{DropBudget, Permit};

pub use crate::shard_io::MediaIo;
use crate::shard_io::{CallSockets, Port, SocketSet};

/// The 20 ms media clock.
pub const TICK: Duration = Duration::from_millis(20);

pub use media::graph::{MediaEvent, MediaLeg, MediaStats, PlayOp};
pub use media::listen::{FrameFilter, FrameListener};

/// One event of a call, as a shard hands it to the node.
#[derive(Debug)]
pub struct ShardEvent {
    pub call_id: Uuid,
    pub event: MediaEvent,
    /// For a droppable event: its place in the budget, freed when the actor is done with it.
    pub permit: Option<Permit>,
}

/// Droppable events admitted at once (sent and not yet handled by their actor), all shards.
pub const DROPPABLE_EVENTS_IN_FLIGHT: usize = 1024;

/// Where the shards' events go: one unbounded channel, so a send never blocks the tick and
/// never loses what an operation or a script waits on; droppable events
/// ([`MediaEvent::is_droppable`]) first take a permit from a budget of
/// [`DROPPABLE_EVENTS_IN_FLIGHT`] and are dropped, counted and warned about when none is left.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<ShardEvent>,
    droppable: Arc<DropBudget>,
}

impl EventSink {
    pub fn new(droppable_cap: usize) -> (EventSink, mpsc::UnboundedReceiver<ShardEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = EventSink {
            tx,
            droppable: DropBudget::new("media events (speech partials, live stats)", droppable_cap),
        };
        (sink, rx)
    }

    /// Hands `event` to the node. Never blocks.
    pub fn emit(&self, call_id: Uuid, event: MediaEvent) {
        let permit = if event.is_droppable() {
            match self.droppable.try_admit() {
                Some(p) => Some(p),
                None => return,
            }
        } else {
            None
        };
        // Fails only once the node has stopped listening (shutdown): nothing to tell then.
        let _ = self.tx.send(ShardEvent {
            call_id,
            event,
            permit,
        });
    }

    /// Droppable events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.droppable.dropped()
    }
}

pub enum ShardCommand {
    Add {
        call_id: Uuid,
        socket: UdpSocket,
        remote: SocketAddr,
        leg: Box<dyn MediaLeg>,
        /// Set before the first tick, so no plain packet leaves an encrypted call.
        srtp: Option<Box<media::secure::SrtpSession>>,
        rtcp_mux: bool,
    },
    /// The call's SRTP replaced (a re-INVITE changed it; `None`: plain from now on).
    SetSrtp {
        call_id: Uuid,
        srtp: Option<Box<media::secure::SrtpSession>>,
    },
    /// The far end re-keyed: its new key, ours unchanged.
    RekeySrtpRemote {
        call_id: Uuid,
        theirs: media::secure::SrtpKey,
    },
    SetRtcpMux {
        call_id: Uuid,
        muxed: bool,
    },
    SetRemote {
        call_id: Uuid,
        remote: SocketAddr,
    },
    /// The call's RTCP socket (its RTP port + 1), after `Add`.
    SetRtcpSocket {
        call_id: Uuid,
        socket: UdpSocket,
    },
    /// Whether the far end takes our audio (SDP direction, hold).
    SetSending {
        call_id: Uuid,
        sending: bool,
    },
    SendDigits {
        call_id: Uuid,
        digits: String,
    },
    Play {
        call_id: Uuid,
        id: PlaybackId,
        sources: Vec<Source>,
        volume_db: f64,
        loops: u32,
    },
    PlayControl {
        call_id: Uuid,
        id: PlaybackId,
        op: PlayOp,
    },
    /// Join two calls' audio (both must be on this shard: send with the same key).
    Bridge {
        a: Uuid,
        b: Uuid,
    },
    Unbridge {
        call_id: Uuid,
    },
    DetectDigits {
        call_id: Uuid,
        in_band: bool,
    },
    SetTap {
        call_id: Uuid,
        tap: Option<record::writer::RecorderHandle>,
    },
    SetListener {
        call_id: Uuid,
        key: String,
        listener: Option<Box<dyn FrameListener>>,
        /// On what the call sends rather than on what it hears.
        sent: bool,
    },
    SetFilter {
        call_id: Uuid,
        filter: Option<Box<dyn FrameFilter>>,
    },
    /// Installs (Some) or removes (None) the modem that takes the call's audio over (a fax).
    SetModem {
        call_id: Uuid,
        key: String,
        modem: Option<Box<dyn media::listen::FrameModem>>,
    },
    /// Installs (Some) or removes (None) the T.38 terminal that carries the call in place of
    /// RTP.
    SetPacketModem {
        call_id: Uuid,
        key: String,
        modem: Option<Box<dyn media::listen::PacketModem>>,
    },
    /// Adds (Some) or removes (None) a tap or stream of the call's audio.
    SetFork {
        call_id: Uuid,
        key: String,
        fork: Option<Box<dyn media::fork::MediaFork>>,
    },
    /// Adds (Some) or removes (None) audio mixed into what the call sends (a stream's bot).
    SetSource {
        call_id: Uuid,
        key: String,
        source: Option<Box<dyn media::fork::FrameSource>>,
    },
    Remove {
        call_id: Uuid,
        reply: Option<tokio::sync::oneshot::Sender<MediaStats>>,
    },
    /// The call joins a conference's mix (its media already on the conference's shard).
    ConferenceJoin {
        conference: Uuid,
        call_id: Uuid,
        muted: bool,
        /// Whether the others hear a beep when it comes in and when it goes.
        beep: media::conference::Beeps,
    },
    ConferenceLeave {
        call_id: Uuid,
    },
    /// Mutes or unmutes a participant (an operator's request).
    ConferenceMute {
        call_id: Uuid,
        muted: bool,
    },
    /// Records the conference's mix of everyone through `tap` (None: no longer).
    ConferenceRecord {
        conference: Uuid,
        tap: Option<Box<dyn media::graph::FrameTap>>,
    },
    /// The call coaches `target` (it hears everyone, only `target` hears it).
    ConferenceCoach {
        call_id: Uuid,
        target: Uuid,
    },
    /// Takes the call's media (and sockets) out, to move it to another shard.
    Export {
        call_id: Uuid,
        reply: tokio::sync::oneshot::Sender<Option<Box<ExportedCall>>>,
    },
    /// A call exported by another shard, here from now on.
    Import {
        call_id: Uuid,
        call: Box<ExportedCall>,
    },
    Shutdown,
}

/// Handle to a set of shards; calls are placed by hashing their id.
#[derive(Clone)]
pub struct MediaShards {
    senders: Arc<Vec<std_mpsc::Sender<ShardCommand>>>,
    threads: Arc<Vec<thread::JoinHandle<()>>>,
    pub events: EventSink,
    rtp_rejected: Arc<AtomicU64>,
}

impl MediaShards {
    /// Starts `count` shard threads. Media events go to `events` ([`EventSink`]: never
    /// blocks; only droppable events are bounded). Each call's RTP sources are checked by
    /// `latch` ([`media::latch`]).
    pub fn start(
        count: usize,
        events: EventSink,
        latch: LatchPolicy,
        metrics: Arc<metrics::Metrics>,
    ) -> std::io::Result<Self> {
        Self::start_with_io(count, events, latch, metrics, MediaIo::default(), 0)
    }

    /// [`MediaShards::start`], with the sockets read as `io` says and each shard thread at
    /// `nice` (0 leaves the process's priority; a negative value needs CAP_SYS_NICE, and
    /// without it the threads run at the default priority, said once in the log).
    pub fn start_with_io(
        count: usize,
        events: EventSink,
        latch: LatchPolicy,
        metrics: Arc<metrics::Metrics>,
        io: MediaIo,
        nice: i32,
    ) -> std::io::Result<Self> {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        let rtp_rejected = Arc::new(AtomicU64::new(0));
        for i in 0..count.max(1) {
            let (tx, rx) = std_mpsc::channel();
            let ev = events.clone();
            let m = metrics.clone();
            let rejected = rtp_rejected.clone();
            threads.push(
                thread::Builder::new()
                    .name(format!("media-shard-{i}"))
                    .spawn(move || {
                        let report = (i == 0).then_some("media threads (media_thread_nice)");
                        crate::thread_priority::set_own_nice(nice, report);
                        run_shard(rx, ev, latch, rejected, m, io)
                    })?,
            );
            senders.push(tx);
        }
        Ok(MediaShards {
            senders: Arc::new(senders),
            threads: Arc::new(threads),
            events,
            rtp_rejected,
        })
    }

    /// RTP datagrams refused by the source check since start, all shards (for metrics).
    pub fn rtp_rejected(&self) -> u64 {
        self.rtp_rejected.load(Ordering::Relaxed)
    }

    /// Whether every shard thread still runs (the node's readiness).
    pub fn all_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    fn shard_index(&self, key: Uuid) -> usize {
        (key.as_u128() % self.senders.len() as u128) as usize
    }

    fn shard_for(&self, call_id: Uuid) -> &std_mpsc::Sender<ShardCommand> {
        &self.senders[self.shard_index(call_id)]
    }

    /// Whether calls placed by these two keys share a shard.
    pub fn same_shard(&self, a: Uuid, b: Uuid) -> bool {
        self.shard_index(a) == self.shard_index(b)
    }

    pub fn send(&self, call_id: Uuid, cmd: ShardCommand) {
        // A send fails only when the shard has stopped (shutdown); nothing left to do then.
        let _ = self.shard_for(call_id).send(cmd);
    }

    pub fn shutdown(&self) {
        for s in self.senders.iter() {
            let _ = s.send(ShardCommand::Shutdown);
        }
    }
}

fn run_shard(
    rx: std_mpsc::Receiver<ShardCommand>,
    events: EventSink,
    latch: LatchPolicy,
    rejected: Arc<AtomicU64>,
    metrics: Arc<metrics::Metrics>,
    io: MediaIo,
) {
    let (rtp_in, rtp_out) = (
        metrics.rtp_packets.with(&["in"]),
        metrics.rtp_packets.with(&["out"]),
    );
    let rtp_out_dropped = metrics.rtp_dropped.with(&["out"]);
    let origin = Instant::now();
    let mut media: ShardMedia<Uuid> = ShardMedia::with_phases(latch, SEND_SLOTS);
    // This shard's rejections already added to the node's counter.
    let mut counted = 0;
    let mut sockets = SocketSet::new(io);
    let mut next_slot = origin + SEND_SLOT;
    let mut slot = 0usize;
    // Every slot is the tick of one phase's calls: a report every 10 s.
    let mut stats = media::tick_stats::TickStats::reporting_every(500 * SEND_SLOTS);
    let mut scheduled = origin;
    // The calls' events of a round, handed to the node together at phase 0: events spread over
    // the slots would wake the node's runtime in each of them (twice the wake-ups at 1,000
    // playing calls). They wait at most one round.
    let mut round_events: Vec<(Uuid, MediaEvent)> = Vec::new();
    loop {
        let slot_start = Instant::now();
        let now_us = slot_start.duration_since(origin).as_micros() as u64;
        let (mut n_in, mut n_out, mut n_failed) = (0u64, 0u64, 0u64);
        // Commands first, every slot: whatever a command changes (a new SRTP key, a call's
        // remote address) is in force before any datagram that came after it is read.
        loop {
            match rx.try_recv() {
                Ok(ShardCommand::Shutdown) | Err(std_mpsc::TryRecvError::Disconnected) => return,
                Ok(cmd) => apply(cmd, &mut media, &mut sockets, &events),
                Err(std_mpsc::TryRecvError::Empty) => break,
            }
        }
        // What arrived: every slot when reads are batched (a round that finds nothing costs
        // one epoll_wait), once a tick when every socket is polled. RTCP is read as often,
        // although reports come every few seconds: the arrival time of a report is part of
        // the round trip it measures.
        if slot == 0 || sockets.batched() {
            let ntp = if media.is_empty() {
                0
            } else {
                media::rtcp::ntp_now()
            };
            media.set_ntp(ntp);
            n_in = sockets.read(|call_id, port, data, from| match port {
                Port::Rtcp => {
                    media.on_rtcp(call_id, ntp, data, from);
                }
                Port::Rtp => {
                    if let Some(r) = media.on_datagram(call_id, now_us, data, from) {
                        tracing::warn!(
                            %call_id,
                            from = %r.from,
                            rejected = r.since_last,
                            rejected_total = r.total,
                            "RTP from an address the call's SDP did not advertise dropped"
                        );
                    }
                }
            });
        }
        if slot == 0 {
            let total = media.rejected_total();
            if total > counted {
                rejected.fetch_add(total - counted, Ordering::Relaxed);
                metrics.rtp_rejected.add(total - counted);
                counted = total;
            }
            let ntp = media::rtcp::ntp_now();
            media.poll_rtcp(now_us, ntp, |call_id, dest, pkt| {
                send_rtcp(&sockets, call_id, dest, pkt);
            });
            // Live counters for the call's actor (and its record): a droppable event, never a
            // wait.
            media.poll_live_stats(now_us, LIVE_STATS_EVERY_US, |call_id, stats| {
                events.emit(call_id, MediaEvent::Stats(stats))
            });
        }
        // The calls of this slot's phase tick and send at once (non-blocking: a full socket
        // buffer loses the packet, never the tick). Each call keeps its phase, so a far end
        // that receives many of a node's calls gets them spread over the 20 ms, and the time
        // from a packet's arrival to its call's next tick is the same every round.
        media.tick_phase(
            now_us,
            slot,
            |call_id, to, pkt| match sockets.get(&call_id) {
                Some(call) => {
                    if call.rtp.send_to(pkt, to).is_ok() {
                        n_out += 1;
                        true
                    } else {
                        n_failed += 1;
                        false
                    }
                }
                None => false,
            },
            |call_id, ev| round_events.push((call_id, ev)),
        );
        if slot == 0 {
            for (call_id, ev) in round_events.drain(..) {
                events.emit(call_id, ev);
            }
        }
        for (counter, n) in [
            (&rtp_in, n_in),
            (&rtp_out, n_out),
            (&rtp_out_dropped, n_failed),
        ] {
            if n > 0 {
                counter.add(n);
            }
        }
        let now = Instant::now();
        if !media.is_empty() {
            let late = slot_start.saturating_duration_since(scheduled).as_micros() as u64;
            let work = now.saturating_duration_since(slot_start).as_micros() as u64;
            metrics.media_tick_lateness.observe_secs(late as f64 / 1e6);
            if let Some(r) = stats.record(late, work) {
                tracing::info!(
                    calls = media.len(),
                    tick_late_p50_us = r.late_p50_us,
                    tick_late_p99_us = r.late_p99_us,
                    tick_late_max_us = r.late_max_us,
                    tick_work_p50_us = r.work_p50_us,
                    tick_work_p99_us = r.work_p99_us,
                    "media tick timing"
                );
            }
        }
        slot = (slot + 1) % SEND_SLOTS;
        scheduled = next_slot;
        // Absolute schedule: a late round does not shift every later one.
        if next_slot > now {
            // Commands wait at most one slot (2 ms).
            thread::sleep(next_slot - now);
        } else if now - next_slot > TICK * 50 {
            // Far behind (machine suspended): resynchronise instead of bursting.
            next_slot = now;
        }
        next_slot += SEND_SLOT;
    }
}

/// Slots of a tick: each call ticks and sends in one of them (its phase, fixed by its id in
/// [`ShardMedia`]), so a far end that receives many of a node's calls gets them spread over
/// the 20 ms.
const SEND_SLOTS: usize = 10;
const SEND_SLOT: Duration = Duration::from_millis(20 / SEND_SLOTS as u64);

/// A call's actor hears its live stats at most this often (each one is a store write): the
/// first report at once, then about once per RTCP interval however many reports go and come.
const LIVE_STATS_EVERY_US: u64 = 4_000_000;

/// One RTCP packet out: from the RTP socket when muxed, else from the RTCP socket.
fn send_rtcp(sockets: &SocketSet, call_id: Uuid, dest: media::shard::RtcpDestination, pkt: &[u8]) {
    let Some(call) = sockets.get(&call_id) else {
        return;
    };
    let socket = if dest.muxed {
        Some(&call.rtp)
    } else {
        call.rtcp.as_ref()
    };
    if let Some(socket) = socket {
        let _ = socket.send_to(pkt, dest.to);
    }
}

/// A call's media and sockets on their way from one shard to another.
pub struct ExportedCall {
    leg: media::shard::MovedLeg<Uuid>,
    sockets: CallSockets,
}

fn apply(
    cmd: ShardCommand,
    media: &mut ShardMedia<Uuid>,
    sockets: &mut SocketSet,
    events: &EventSink,
) {
    let emit = |call_id: Uuid, ev: MediaEvent| events.emit(call_id, ev);
    match cmd {
        ShardCommand::Add {
            call_id,
            socket,
            remote,
            leg,
            srtp,
            rtcp_mux,
        } => {
            sockets.insert(
                call_id,
                CallSockets {
                    rtp: socket,
                    rtcp: None,
                },
            );
            media.add(call_id, remote, leg);
            media.set_srtp(call_id, srtp);
            media.set_rtcp_mux(call_id, rtcp_mux);
        }
        ShardCommand::SetSrtp { call_id, srtp } => media.set_srtp(call_id, srtp),
        ShardCommand::RekeySrtpRemote { call_id, theirs } => {
            if !media.rekey_srtp_remote(call_id, &theirs) {
                tracing::warn!(%call_id, "SRTP re-key of a call without SRTP ignored");
            }
        }
        ShardCommand::SetRtcpMux { call_id, muxed } => media.set_rtcp_mux(call_id, muxed),
        ShardCommand::SetRtcpSocket { call_id, socket } => {
            sockets.set_rtcp(call_id, socket);
        }
        ShardCommand::SetRemote { call_id, remote } => media.set_remote(call_id, remote),
        ShardCommand::SetSending { call_id, sending } => media.set_sending(call_id, sending),
        ShardCommand::SendDigits { call_id, digits } => match media.graph(call_id) {
            Some(leg) => {
                if let Err(e) = leg.send_digits(&digits) {
                    tracing::warn!(%call_id, error = %e, "send_digits rejected by media");
                    emit(call_id, MediaEvent::DigitsFailed(e));
                }
            }
            None => emit(
                call_id,
                MediaEvent::DigitsFailed("the call has no media".into()),
            ),
        },
        ShardCommand::Play {
            call_id,
            id,
            sources,
            volume_db,
            loops,
        } => match media.graph(call_id) {
            Some(leg) => leg.play(id, sources, volume_db, loops),
            None => emit(
                call_id,
                MediaEvent::Play(PlayerEvent::Error {
                    id,
                    message: "the call has no media".into(),
                }),
            ),
        },
        ShardCommand::PlayControl { call_id, id, op } => {
            if let Some(leg) = media.graph(call_id) {
                leg.control_play(id, op);
            }
        }
        ShardCommand::Bridge { a, b } => {
            if !media.bridge(a, b) {
                tracing::warn!(%a, %b, "bridge of calls not on this shard ignored");
            }
        }
        ShardCommand::Unbridge { call_id } => media.unbridge(call_id),
        ShardCommand::SetTap { call_id, tap } => {
            if let Some(leg) = media.graph(call_id) {
                leg.set_tap(tap.map(|handle| {
                    Box::new(crate::media_leg::RecorderTap { handle, call_id }) as Box<dyn FrameTap>
                }));
            }
        }
        ShardCommand::SetListener {
            call_id,
            key,
            listener,
            sent,
        } => {
            if let Some(leg) = media.graph(call_id) {
                if sent {
                    leg.set_sent_listener(key, listener);
                } else {
                    leg.set_listener(key, listener);
                }
            }
        }
        ShardCommand::SetFilter { call_id, filter } => {
            if let Some(leg) = media.graph(call_id) {
                leg.set_filter(filter);
            }
        }
        ShardCommand::SetModem {
            call_id,
            key,
            modem,
        } => {
            if let Some(leg) = media.graph(call_id) {
                leg.set_modem(key, modem);
            }
        }
        ShardCommand::SetPacketModem {
            call_id,
            key,
            modem,
        } => {
            if let Some(leg) = media.graph(call_id) {
                leg.set_packet_modem(key, modem);
            }
        }
        ShardCommand::SetFork { call_id, key, fork } => {
            if let Some(leg) = media.graph(call_id) {
                leg.set_fork(key, fork);
            }
        }
        ShardCommand::SetSource {
            call_id,
            key,
            source,
        } => {
            if let Some(leg) = media.graph(call_id) {
                leg.set_source(key, source);
            }
        }
        ShardCommand::DetectDigits { call_id, in_band } => {
            if let Some(leg) = media.graph(call_id) {
                leg.set_digit_detection(in_band);
            }
        }
        ShardCommand::Remove { call_id, reply } => {
            // RTCP BYE: the far end learns our stream ended (RFC 3550 §6.6).
            if let Some((dest, bye)) = media.rtcp_bye(call_id) {
                send_rtcp(sockets, call_id, dest, &bye);
            }
            sockets.remove(&call_id);
            let stats = media.remove(call_id);
            if let Some(r) = reply {
                let _ = r.send(stats.unwrap_or_default());
            }
        }
        ShardCommand::ConferenceJoin {
            conference,
            call_id,
            muted,
            beep,
        } => {
            if !media.conference_join(conference, call_id, muted, beep) {
                tracing::warn!(%call_id, %conference, "conference join refused by the media shard");
            }
        }
        ShardCommand::ConferenceLeave { call_id } => media.conference_leave(call_id),
        ShardCommand::ConferenceMute { call_id, muted } => {
            if !media.conference_set_muted(call_id, muted) {
                tracing::warn!(%call_id, "mute refused: not in a conference on this shard");
            }
        }
        ShardCommand::ConferenceRecord { conference, tap } => {
            if !media.conference_record(conference, tap) {
                tracing::warn!(%conference, "conference recording refused: no mix on this shard");
            }
        }
        ShardCommand::ConferenceCoach { call_id, target } => {
            if !media.conference_set_coach(call_id, Some(target)) {
                tracing::warn!(%call_id, %target, "coach refused: not in one conference");
            }
        }
        ShardCommand::Export { call_id, reply } => {
            let call = match (media.take(call_id), sockets.remove(&call_id)) {
                (Some(leg), Some(sockets)) => Some(Box::new(ExportedCall { leg, sockets })),
                _ => None,
            };
            let _ = reply.send(call);
        }
        ShardCommand::Import { call_id, call } => {
            sockets.insert(call_id, call.sockets);
            media.put(call_id, call.leg);
        }
        ShardCommand::Shutdown => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::detect::DetectEvent;
    use media::listen::{KeyedEvent, ListenerEvent};
    use media::speech::SpeechEvent;

    struct Counter {
        ticks: u64,
        rx: u64,
    }

    impl MediaLeg for Counter {
        fn on_tick(&mut self, _now: u64, out: &mut media::packets::Packets) {
            self.ticks += 1;
            out.push(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        }
        fn on_rtp(&mut self, _now: u64, data: &[u8]) -> bool {
            let ok = data.len() >= 12 && data[0] >> 6 == 2;
            if ok {
                self.rx += 1;
            }
            ok
        }
        fn send_digits(&mut self, _d: &str) -> Result<(), String> {
            Ok(())
        }
        fn play(&mut self, _id: PlaybackId, _s: Vec<Source>, _v: f64, _l: u32) {}
        fn control_play(&mut self, _id: PlaybackId, _op: PlayOp) -> bool {
            false
        }
        fn set_bridged(&mut self, _b: bool) {}
        fn set_digit_detection(&mut self, _in_band: bool) {}
        fn set_tap(&mut self, _tap: Option<Box<dyn FrameTap>>) {}
        fn set_listener(&mut self, _key: String, _l: Option<Box<dyn FrameListener>>) {}
        fn set_filter(&mut self, _f: Option<Box<dyn FrameFilter>>) {}
        fn take_received_frame(&mut self, out: &mut Vec<i16>) -> bool {
            out.clear();
            false
        }
        fn push_bridged_frame(&mut self, _pcm: &[i16], _rate: u32) {}
        fn pcm_rate(&self) -> u32 {
            8000
        }
        fn rtcp_inputs(&mut self) -> Option<media::rtcp::RtcpInputs> {
            Some(media::rtcp::RtcpInputs {
                ssrc: 0x0102_0304,
                rtp_timestamp: 0,
                received: None,
            })
        }
        fn poll_event(&mut self) -> Option<MediaEvent> {
            None
        }
        fn stats(&self) -> MediaStats {
            MediaStats {
                packets_received: self.rx,
                ..Default::default()
            }
        }
    }

    fn speech(event: SpeechEvent) -> MediaEvent {
        MediaEvent::Listener(KeyedEvent {
            key: "speech:c1".into(),
            event: ListenerEvent::Speech(event),
        })
    }

    fn partial() -> MediaEvent {
        speech(SpeechEvent::Partial { text: "hel".into() })
    }

    /// Filling the droppable budget: further partials are dropped and counted, while events
    /// that operations and scripts wait on (a playback's end, a key, a transcript) still all
    /// get through, however many are queued and however slow the consumer is.
    #[test]
    fn full_sink_drops_only_droppable_events() {
        let (sink, mut rx) = EventSink::new(4);
        let call = Uuid::new_v4();
        for _ in 0..10 {
            sink.emit(call, partial());
        }
        assert_eq!(sink.dropped(), 6);
        let id: PlaybackId = 7;
        for _ in 0..5_000 {
            sink.emit(call, MediaEvent::Play(PlayerEvent::Finished(id)));
            sink.emit(call, MediaEvent::Digit('5'));
        }
        sink.emit(
            call,
            speech(SpeechEvent::Result {
                text: "hello".into(),
                confidence: 0.5,
            }),
        );
        assert_eq!(sink.dropped(), 6, "non-droppable events are never dropped");
        let mut got = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            got.push(ev);
        }
        assert_eq!(got.len(), 4 + 10_000 + 1);
        assert_eq!(got.iter().filter(|e| e.permit.is_some()).count(), 4);
        assert!(matches!(
            got.last().map(|e| &e.event),
            Some(MediaEvent::Listener(KeyedEvent {
                event: ListenerEvent::Speech(SpeechEvent::Result { .. }),
                ..
            }))
        ));
        // Handling the admitted partials frees the budget: new partials flow again.
        drop(got);
        sink.emit(call, partial());
        assert_eq!(sink.dropped(), 6);
        assert!(rx.try_recv().is_ok_and(|e| e.permit.is_some()));
    }

    #[test]
    fn only_partials_and_live_stats_are_droppable() {
        assert!(partial().is_droppable());
        assert!(MediaEvent::Stats(MediaStats::default()).is_droppable());
        for ev in [
            SpeechEvent::StartOfInput,
            SpeechEvent::Result {
                text: String::new(),
                confidence: 0.0,
            },
            SpeechEvent::Error {
                message: String::new(),
            },
        ] {
            assert!(!speech(ev.clone()).is_droppable(), "{ev:?}");
        }
        let detect = MediaEvent::Listener(KeyedEvent {
            key: "detect:d1".into(),
            event: ListenerEvent::Detect(DetectEvent::Finished),
        });
        assert!(!detect.is_droppable());
        assert!(!MediaEvent::Play(PlayerEvent::Finished(1)).is_droppable());
        assert!(!MediaEvent::DigitsSent.is_droppable());
    }

    /// Real sockets on loopback: the shard paces ~50 packets/s and latches onto the sender.
    #[tokio::test]
    async fn shard_paces_and_latches() {
        for io in [MediaIo::Batched, MediaIo::Poll] {
            shard_paces_and_latches_with(io).await;
        }
    }

    async fn shard_paces_and_latches_with(io: MediaIo) {
        let (ev_tx, _ev_rx) = EventSink::new(16);
        let shards = MediaShards::start_with_io(
            1,
            ev_tx,
            LatchPolicy::default(),
            metrics::Metrics::new(),
            io,
            0,
        )
        .unwrap();
        let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
        ours.set_nonblocking(true).unwrap();
        let our_addr = ours.local_addr().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Advertised address is wrong on purpose: latching must find the real peer.
        let bogus: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let id = Uuid::new_v4();
        shards.send(
            id,
            ShardCommand::Add {
                call_id: id,
                socket: ours,
                remote: bogus,
                leg: Box::new(Counter { ticks: 0, rx: 0 }),
                srtp: None,
                rtcp_mux: false,
            },
        );
        peer.send_to(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2], our_addr)
            .unwrap();
        let mut got = 0;
        let start = Instant::now();
        let mut buf = [0u8; 64];
        while start.elapsed() < Duration::from_millis(1000) {
            if peer.recv_from(&mut buf).is_ok() {
                got += 1;
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        shards.send(
            id,
            ShardCommand::Remove {
                call_id: id,
                reply: Some(tx),
            },
        );
        let stats = rx.await.unwrap();
        shards.shutdown();
        assert_eq!(stats.packets_received, 1);
        // ~50 in one second after latching; generous bounds, this is not a timing test.
        assert!((30..=60).contains(&got), "got {got} packets in 1 s");
    }

    /// Real sockets: a report from the far end's RTCP port reaches the call's actor as live
    /// stats (a droppable event), with the RTP sent so far; the media thread never waits.
    #[tokio::test]
    async fn a_far_end_report_becomes_live_stats() {
        for io in [MediaIo::Batched, MediaIo::Poll] {
            a_far_end_report_becomes_live_stats_with(io).await;
        }
    }

    async fn a_far_end_report_becomes_live_stats_with(io: MediaIo) {
        let (ev_tx, mut ev_rx) = EventSink::new(16);
        let shards = MediaShards::start_with_io(
            1,
            ev_tx,
            LatchPolicy::default(),
            metrics::Metrics::new(),
            io,
            0,
        )
        .unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&rtp, &rtcp] {
            s.set_nonblocking(true).unwrap();
        }
        let rtcp_addr = rtcp.local_addr().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let id = Uuid::new_v4();
        shards.send(
            id,
            ShardCommand::Add {
                call_id: id,
                socket: rtp,
                remote: peer.local_addr().unwrap(),
                leg: Box::new(Counter { ticks: 0, rx: 0 }),
                srtp: None,
                rtcp_mux: false,
            },
        );
        shards.send(
            id,
            ShardCommand::SetRtcpSocket {
                call_id: id,
                socket: rtcp,
            },
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rr = rtp::rtcp::compound_report(0x0a0b_0c0d, "peer", None, None);
        peer.send_to(&rr, rtcp_addr).unwrap();
        // Our own first report (due within 2.5 s, by the call's spread) is told too; when it
        // came first, the far end's waits for the next telling (LIVE_STATS_EVERY_US).
        let stats = loop {
            let ev = tokio::time::timeout(Duration::from_secs(6), ev_rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(ev.permit.is_some(), "live stats are droppable");
            let MediaEvent::Stats(stats) = ev.event else {
                panic!("{:?}", ev.event);
            };
            if stats.rtcp.reports_received > 0 {
                break stats;
            }
            assert_eq!(stats.rtcp.reports_sent, 1, "{stats:?}");
        };
        shards.send(
            id,
            ShardCommand::Remove {
                call_id: id,
                reply: None,
            },
        );
        shards.shutdown();
        assert_eq!(stats.rtcp.reports_received, 1);
        assert!(stats.packets_sent >= 5, "{stats:?}");
    }

    /// Real sockets: a stranger on another loopback address gets nothing and is counted in
    /// the shards' total (the number metrics read); the advertised address still latches.
    #[tokio::test]
    async fn a_stranger_is_refused_and_counted() {
        for io in [MediaIo::Batched, MediaIo::Poll] {
            a_stranger_is_refused_and_counted_with(io).await;
        }
    }

    async fn a_stranger_is_refused_and_counted_with(io: MediaIo) {
        let (ev_tx, _ev_rx) = EventSink::new(16);
        let shards = MediaShards::start_with_io(
            2,
            ev_tx,
            LatchPolicy::SdpAddress,
            metrics::Metrics::new(),
            io,
            -10,
        )
        .unwrap();
        let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
        ours.set_nonblocking(true).unwrap();
        let our_addr = ours.local_addr().unwrap();
        let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
        stranger
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let id = Uuid::new_v4();
        shards.send(
            id,
            ShardCommand::Add {
                call_id: id,
                socket: ours,
                remote: "127.0.0.1:9".parse().unwrap(),
                leg: Box::new(Counter { ticks: 0, rx: 0 }),
                srtp: None,
                rtcp_mux: false,
            },
        );
        let rtp = [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut got = 0;
        let mut buf = [0u8; 64];
        for _ in 0..5 {
            stranger.send_to(&rtp, our_addr).unwrap();
            if stranger.recv_from(&mut buf).is_ok() {
                got += 1;
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        shards.send(
            id,
            ShardCommand::Remove {
                call_id: id,
                reply: Some(tx),
            },
        );
        let stats = rx.await.unwrap();
        shards.shutdown();
        assert_eq!(got, 0, "the stranger received the call's packets");
        assert_eq!((stats.packets_received, stats.packets_rejected), (0, 5));
        assert_eq!(shards.rtp_rejected(), 5);
    }
}
