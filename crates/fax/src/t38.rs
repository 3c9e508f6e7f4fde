//! A fax terminal over T.38 (UDPTL): spandsp's T.38 terminal makes and reads the IFP packets
//! of the T.30 session, [`rtp::udptl`] wraps them in UDPTL datagrams with redundancy. Driven
//! one 20 ms tick at a time like the audio terminal, so it runs on virtual time in tests.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use media::fax::FaxProgress;
use media::listen::{ListenerEvent, PacketModem};
use media::packets::Packets;
use rtp::udptl::{UdptlReceiver, UdptlSender};

use crate::{configure_t30, cut_short, ffi, FaxControl, FaxError, FaxJob, JobStrings, Shared};

/// Samples of the 8 kHz clock spandsp's T.38 timers count per tick.
const TICK_SAMPLES: c_int = 160;
/// Earlier IFPs carried in each datagram (T.38 §9.1 redundancy): three covers the bursts of
/// loss a network shows far more often than longer ones.
const REDUNDANCY_DEPTH: usize = 3;
/// How often a packet that ends a burst (an indicator, the last HDLC or image packet) goes
/// out: nothing follows it soon to carry it as redundancy.
const END_REPEATS: c_int = 3;
/// At most this many copies of one packet, whatever spandsp asks.
const MAX_REPEATS: usize = 4;

/// What the SDP exchange settled for the T.38 session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Config {
    pub version: u32,
    /// The fastest image data rate allowed (bit/s, `T38MaxBitRate`).
    pub max_bit_rate: u32,
    /// Training is checked by the receiving gateway (`localTCF`), else sent as data.
    pub local_tcf: bool,
    /// The largest datagram the far end takes (`T38FaxMaxDatagram`).
    pub max_datagram: usize,
    pub fill_bit_removal: bool,
}

/// The IFP packets spandsp handed over since the last tick, with their repeat counts.
#[derive(Default)]
struct TxQueue {
    packets: Vec<(Vec<u8>, usize)>,
}

unsafe extern "C" fn on_tx_packet(
    _core: *mut ffi::T38CoreState,
    user: *mut c_void,
    buf: *const u8,
    len: c_int,
    count: c_int,
) -> c_int {
    // SAFETY: `user` is the terminal's boxed TxQueue, alive as long as the T.38 state; `buf`
    // holds `len` bytes for the duration of the call.
    let queue = unsafe { &mut *(user as *mut TxQueue) };
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    if buf.is_null() {
        return -1;
    }
    let packet = unsafe { std::slice::from_raw_parts(buf, len) }.to_vec();
    let repeats = usize::try_from(count).unwrap_or(1).clamp(1, MAX_REPEATS);
    queue.packets.push((packet, repeats));
    0
}

/// One fax session on one call over T.38, as the call's [`PacketModem`].
pub struct T38Terminal {
    state: NonNull<ffi::T38TerminalState>,
    shared: Box<Shared>,
    tx: Box<TxQueue>,
    control: Arc<FaxControl>,
    sender: UdptlSender,
    receiver: UdptlReceiver,
    datagram: Vec<u8>,
}

// SAFETY: as for the audio terminal: used by one thread at a time, no thread-bound resources.
unsafe impl Send for T38Terminal {}

impl T38Terminal {
    pub fn new(
        job: &FaxJob,
        config: &T38Config,
        first_seq: u16,
    ) -> Result<(T38Terminal, Arc<FaxControl>), FaxError> {
        let strings = JobStrings::of(job)?;
        let mut shared = strings.shared();
        let mut tx = Box::<TxQueue>::default();
        let tx_user = (&mut *tx as *mut TxQueue).cast::<c_void>();
        // SAFETY: a null state asks spandsp to allocate one (freed in Drop); `tx` is boxed
        // and outlives it.
        let raw = unsafe {
            ffi::t38_terminal_init(
                std::ptr::null_mut(),
                c_int::from(job.calling_party),
                Some(on_tx_packet),
                tx_user,
            )
        };
        let state = NonNull::new(raw).ok_or(FaxError::Init)?;
        // What our datagram can hold after its UDPTL header (seq, lengths, one secondary).
        let max_datagram = config.max_datagram.clamp(64, rtp::udptl::MAX_IFP_LEN);
        let ifp_max = c_int::try_from(max_datagram.saturating_sub(8)).unwrap_or(c_int::MAX);
        let tag = if strings.sending { c"T38TX" } else { c"T38RX" };
        // SAFETY: the state is live; the core and T.30 pointers belong to it.
        unsafe {
            let s = state.as_ptr();
            ffi::t38_terminal_set_config(s, 0);
            ffi::t38_terminal_set_tep_mode(s, 0);
            ffi::t38_terminal_set_fill_bit_removal(s, c_int::from(config.fill_bit_removal));
            let core = ffi::t38_terminal_get_t38_core_state(s);
            ffi::t38_set_t38_version(core, c_int::try_from(config.version.min(3)).unwrap_or(0));
            ffi::t38_set_max_datagram_size(core, ifp_max);
            ffi::t38_set_data_rate_management_method(
                core,
                if config.local_tcf {
                    ffi::T38_DATA_RATE_MANAGEMENT_LOCAL_TCF
                } else {
                    ffi::T38_DATA_RATE_MANAGEMENT_TRANSFERRED_TCF
                },
            );
            ffi::t38_set_fastest_image_data_rate(
                core,
                c_int::try_from(config.max_bit_rate.clamp(2400, 14400)).unwrap_or(14400),
            );
            for (category, repeats) in [
                (ffi::T38_PACKET_CATEGORY_INDICATOR, END_REPEATS),
                (ffi::T38_PACKET_CATEGORY_CONTROL_DATA, 1),
                (ffi::T38_PACKET_CATEGORY_CONTROL_DATA_END, END_REPEATS),
                (ffi::T38_PACKET_CATEGORY_IMAGE_DATA, 1),
                (ffi::T38_PACKET_CATEGORY_IMAGE_DATA_END, END_REPEATS),
            ] {
                ffi::t38_set_redundancy_control(core, category, repeats);
            }
            // A lost packet here is not a hole in a modem signal: V.17's 14400 bit/s is safe.
            let mut modems = ffi::T30_SUPPORT_V27TER | ffi::T30_SUPPORT_V29;
            if config.max_bit_rate >= 7200 {
                modems |= ffi::T30_SUPPORT_V17;
            }
            configure_t30(
                ffi::t38_terminal_get_t30_state(s),
                job,
                &strings,
                &mut shared,
                modems,
                tag,
            );
        }
        let control = Arc::new(FaxControl::default());
        Ok((
            T38Terminal {
                state,
                shared,
                tx,
                control: control.clone(),
                sender: UdptlSender::new(first_seq, REDUNDANCY_DEPTH, max_datagram),
                receiver: UdptlReceiver::new(),
                datagram: Vec::with_capacity(max_datagram),
            },
            control,
        ))
    }

    /// One datagram from the far end; false when it is not UDPTL.
    pub fn receive(&mut self, data: &[u8]) -> bool {
        if self.shared.finished {
            return true;
        }
        let core = self.core();
        let delivered = self.receiver.receive(data, |seq, ifp| {
            let Ok(len) = c_int::try_from(ifp.len()) else {
                return;
            };
            if len == 0 {
                return;
            }
            // SAFETY: the state is live; `ifp` holds `len` bytes for the call.
            unsafe { ffi::t38_core_rx_ifp_packet(core, ifp.as_ptr(), len, seq) };
        });
        self.note_end();
        delivered.is_ok()
    }

    /// One 20 ms tick: spandsp's timers run, the packets it made become datagrams in `out`.
    pub fn process(&mut self, out: &mut Packets, events: &mut Vec<FaxProgress>) {
        if !self.shared.finished {
            if self.control.stop_requested() {
                self.terminate();
            } else {
                // SAFETY: the state is live.
                unsafe { ffi::t38_terminal_send_timeout(self.state.as_ptr(), TICK_SAMPLES) };
            }
            self.note_end();
        }
        for (ifp, repeats) in self.tx.packets.drain(..) {
            if self.sender.packet(&ifp, &mut self.datagram).is_err() {
                continue;
            }
            for _ in 0..repeats {
                out.push(&self.datagram);
            }
        }
        events.append(&mut self.shared.events);
    }

    /// Received IFPs rebuilt from redundancy, and those lost for good.
    pub fn recovered_and_lost(&self) -> (u64, u64) {
        (self.receiver.recovered(), self.receiver.lost())
    }

    fn core(&self) -> *mut ffi::T38CoreState {
        // SAFETY: the state is live.
        unsafe { ffi::t38_terminal_get_t38_core_state(self.state.as_ptr()) }
    }

    fn t30(&self) -> *mut ffi::T30State {
        // SAFETY: the state is live.
        unsafe { ffi::t38_terminal_get_t30_state(self.state.as_ptr()) }
    }

    fn note_end(&self) {
        if self.shared.finished {
            self.control.note_outcome(&self.shared.events);
            self.control.closed.store(true, Ordering::Release);
        }
    }

    /// Ends the session now (phase E runs: `Finished` follows, the TIFF file is closed).
    fn terminate(&mut self) {
        // SAFETY: the state is live.
        unsafe { ffi::t30_terminate(self.t30()) };
        cut_short(&mut self.shared);
    }
}

impl PacketModem for T38Terminal {
    fn on_packet(&mut self, _now_us: u64, data: &[u8]) -> bool {
        self.receive(data)
    }

    fn tick(&mut self, _now_us: u64, out: &mut Packets, events: &mut Vec<ListenerEvent>) {
        let mut found = Vec::new();
        self.process(out, &mut found);
        events.extend(found.into_iter().map(ListenerEvent::Fax));
    }
}

impl Drop for T38Terminal {
    fn drop(&mut self) {
        if !self.shared.finished {
            // The call went away mid-fax: close the file so the pages so far are readable.
            self.terminate();
            self.control.note_outcome(&self.shared.events);
        }
        // SAFETY: the state was allocated by t38_terminal_init and is not used after this.
        unsafe { ffi::t38_terminal_free(self.state.as_ptr()) };
        self.control.closed.store(true, Ordering::Release);
    }
}
