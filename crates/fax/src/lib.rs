//! Fax terminals for calls: T.30 over G.711 audio on Debian's spandsp, driven one 20 ms frame
//! per media tick (the audio is the engine's clock, so it runs on virtual time in tests), and
//! the conversions of documents to and from the TIFF-F files the engine reads and writes.
//!
//! spandsp reads the next page (send) or writes the page just received (receive) at page
//! boundaries, a few times per fax: that small file I/O happens on the media thread.

mod ffi;
mod t38;
pub mod tiff;

pub use t38::{T38Config, T38Terminal};

use std::ffi::{c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use media::fax::{FaxOutcome, FaxProgress};
use media::listen::{FrameModem, ListenerEvent};

/// The only rate spandsp's modems run at.
pub const FAX_RATE: u32 = 8000;

/// What a fax session does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaxDirection {
    /// Send the pages of this TIFF-F file.
    Send { tiff: PathBuf },
    /// Write the pages received into this TIFF-F file.
    Receive { tiff: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaxJob {
    pub direction: FaxDirection,
    /// Whether this side placed the call (it sends CNG; the answering side sends CED).
    pub calling_party: bool,
    /// Our station id (TSI when sending, CSI when receiving), at most 20 characters.
    pub identity: Option<String>,
    /// The header line printed on every page sent.
    pub header_info: Option<String>,
    /// Offer error correction (ECM): pages survive packet loss.
    pub ecm: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaxError {
    #[error("the fax engine could not start")]
    Init,
    #[error("{0} must not contain a NUL character")]
    Nul(&'static str),
}

/// Shared between a terminal (on the media thread) and whoever runs the operation.
#[derive(Debug, Default)]
pub struct FaxControl {
    stop: AtomicBool,
    closed: AtomicBool,
    /// How the session ended, once it did (also when the terminal was dropped mid-fax).
    outcome: std::sync::Mutex<Option<FaxOutcome>>,
}

impl FaxControl {
    /// Ends the session at the next frame (its `Finished` says it did not complete).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// True once the engine let go of its TIFF file (after `Finished`, or when the terminal
    /// was dropped with the call): the received pages can be read.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How the session ended (None while it runs). A call that hangs up right after the last
    /// page was confirmed still ends in success: this is where that shows when the call's
    /// media, and with it the terminal, are already gone.
    pub fn outcome(&self) -> Option<FaxOutcome> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }

    fn note_outcome(&self, events: &[FaxProgress]) {
        for e in events {
            if let FaxProgress::Finished(o) = e {
                if let Ok(mut slot) = self.outcome.lock() {
                    *slot = Some(o.clone());
                }
            }
        }
    }
}

/// What spandsp's callbacks write, read back by the terminal after each call into it.
struct Shared {
    sending: bool,
    pages_reported: u32,
    events: Vec<FaxProgress>,
    finished: bool,
}

impl Shared {
    /// Reports each page finished since the last report.
    fn pages_up_to(&mut self, pages: u32) {
        while self.pages_reported < pages {
            self.pages_reported += 1;
            self.events.push(FaxProgress::Page {
                number: self.pages_reported,
            });
        }
    }
}

fn stats_of(t30: *mut ffi::T30State) -> ffi::T30Stats {
    let mut stats = ffi::T30Stats::default();
    // SAFETY: t30 belongs to a live fax state (callbacks only run inside its own calls) and
    // `stats` is a t30_stats_t the library fills in.
    unsafe { ffi::t30_get_transfer_statistics(t30, &mut stats) };
    stats
}

fn pages_done(shared: &Shared, stats: &ffi::T30Stats) -> u32 {
    let n = if shared.sending {
        stats.pages_tx
    } else {
        stats.pages_rx
    };
    u32::try_from(n).unwrap_or(0)
}

/// Phase D: a page went or came; the stats say how many so far.
unsafe extern "C" fn on_phase_d(t30: *mut ffi::T30State, user: *mut c_void, _fcf: c_int) -> c_int {
    // SAFETY: `user` is the terminal's boxed Shared, alive as long as the fax state.
    let shared = unsafe { &mut *(user as *mut Shared) };
    let stats = stats_of(t30);
    let pages = pages_done(shared, &stats);
    shared.pages_up_to(pages);
    ffi::T30_ERR_OK
}

/// Phase E: the session is over.
unsafe extern "C" fn on_phase_e(t30: *mut ffi::T30State, user: *mut c_void, code: c_int) {
    // SAFETY: as in on_phase_d.
    let shared = unsafe { &mut *(user as *mut Shared) };
    if shared.finished {
        return;
    }
    let stats = stats_of(t30);
    let pages = pages_done(shared, &stats);
    shared.pages_up_to(pages);
    // SAFETY: spandsp returns a static string (or null) for any code, and the far end's id
    // as a NUL-terminated buffer inside the state (or null).
    let text = unsafe { c_text(ffi::t30_completion_code_to_str(code)) };
    let remote_identity = unsafe { c_text(ffi::t30_get_rx_ident(t30)) }
        .trim()
        .to_owned();
    shared.finished = true;
    shared.events.push(FaxProgress::Finished(FaxOutcome {
        success: code == ffi::T30_ERR_OK,
        code,
        text,
        pages,
        remote_identity,
        bit_rate: u32::try_from(stats.bit_rate).unwrap_or(0),
        ecm: stats.error_correcting_mode != 0,
    }));
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn c_text(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn c_string(what: &'static str, s: &str) -> Result<CString, FaxError> {
    CString::new(s).map_err(|_| FaxError::Nul(what))
}

fn path_c_string(p: &Path) -> Result<CString, FaxError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| FaxError::Nul("the TIFF path"))
}

/// One fax session on one call, as the call's [`FrameModem`].
pub struct FaxTerminal {
    state: NonNull<ffi::FaxState>,
    shared: Box<Shared>,
    control: Arc<FaxControl>,
    rx: Vec<i16>,
}

// SAFETY: the spandsp state is used by one thread at a time (the terminal is moved to the
// media thread and only used there); it holds no thread-bound resources.
unsafe impl Send for FaxTerminal {}

/// A job's strings as spandsp takes them.
struct JobStrings {
    identity: Option<CString>,
    header: Option<CString>,
    sending: bool,
    file: CString,
}

impl JobStrings {
    fn of(job: &FaxJob) -> Result<JobStrings, FaxError> {
        let identity = job
            .identity
            .as_deref()
            .map(|id| c_string("identity", &truncate(id, 20)))
            .transpose()?;
        let header = job
            .header_info
            .as_deref()
            .map(|h| c_string("header_info", &truncate(h, 50)))
            .transpose()?;
        let (sending, file) = match &job.direction {
            FaxDirection::Send { tiff } => (true, path_c_string(tiff)?),
            FaxDirection::Receive { tiff } => (false, path_c_string(tiff)?),
        };
        Ok(JobStrings {
            identity,
            header,
            sending,
            file,
        })
    }

    fn shared(&self) -> Box<Shared> {
        Box::new(Shared {
            sending: self.sending,
            pages_reported: 0,
            events: Vec::new(),
            finished: false,
        })
    }
}

/// Sets up a terminal's T.30 engine for `job` (the same over audio and over T.38); `modems`
/// are the T30_SUPPORT_* bits allowed.
///
/// # Safety
/// `t30` belongs to a live fax or T.38 terminal state; `shared` outlives that state.
unsafe fn configure_t30(
    t30: *mut ffi::T30State,
    job: &FaxJob,
    strings: &JobStrings,
    shared: &mut Shared,
    modems: c_int,
    trace_tag: &std::ffi::CStr,
) {
    let user = (shared as *mut Shared).cast::<c_void>();
    // SAFETY: every string is copied by spandsp before the call returns (ident 20, header
    // 50, file name 256 bytes); the caller keeps `shared` alive as long as the state.
    unsafe {
        if let Some(id) = &strings.identity {
            ffi::t30_set_tx_ident(t30, id.as_ptr());
        }
        if let Some(h) = &strings.header {
            ffi::t30_set_tx_page_header_info(t30, h.as_ptr());
        }
        if strings.sending {
            ffi::t30_set_tx_file(t30, strings.file.as_ptr(), -1, -1);
        } else {
            ffi::t30_set_rx_file(t30, strings.file.as_ptr(), -1);
        }
        ffi::t30_set_ecm_capability(t30, c_int::from(job.ecm));
        ffi::t30_set_supported_modems(t30, modems);
        let mut compressions =
            ffi::T30_SUPPORT_T4_1D_COMPRESSION | ffi::T30_SUPPORT_T4_2D_COMPRESSION;
        if job.ecm {
            // T.6 needs ECM.
            compressions |= ffi::T30_SUPPORT_T6_COMPRESSION;
        }
        ffi::t30_set_supported_compressions(t30, compressions);
        // spandsp's own T.30 trace on stderr, for diagnosing a fax that fails.
        if std::env::var_os("DIALTONE_FAX_TRACE").is_some() {
            let log = ffi::t30_get_logging_state(t30);
            ffi::span_log_set_level(log, 0x0400 | 0x0200 | 0x2000 | 5);
            ffi::span_log_set_tag(log, trace_tag.as_ptr());
        }
        ffi::t30_set_phase_d_handler(t30, Some(on_phase_d), user);
        ffi::t30_set_phase_e_handler(t30, Some(on_phase_e), user);
    }
}

/// The `Finished` of a session ended before its phase E could run (it never started).
fn cut_short(shared: &mut Shared) {
    if !shared.finished {
        shared.finished = true;
        shared.events.push(FaxProgress::Finished(FaxOutcome {
            text: "Call dropped prematurely".into(),
            code: -1,
            pages: shared.pages_reported,
            ..FaxOutcome::default()
        }));
    }
}

impl FaxTerminal {
    pub fn new(job: &FaxJob) -> Result<(FaxTerminal, Arc<FaxControl>), FaxError> {
        let strings = JobStrings::of(job)?;
        // SAFETY: a null state asks spandsp to allocate one; it is freed in Drop.
        let raw = unsafe { ffi::fax_init(std::ptr::null_mut(), c_int::from(job.calling_party)) };
        let state = NonNull::new(raw).ok_or(FaxError::Init)?;
        let mut shared = strings.shared();
        let tag = if strings.sending { c"TX" } else { c"RX" };
        // SAFETY: state is live; `shared` is boxed and outlives the state (Drop frees the
        // state first).
        unsafe {
            ffi::fax_set_transmit_on_idle(state.as_ptr(), 1);
            // Up to 9600 bit/s (V.29, V.27ter): V.17's 1.4 s training breaks on a single lost
            // packet, and fax over VoIP is commonly capped at 9600 for that reason.
            configure_t30(
                ffi::fax_get_t30_state(state.as_ptr()),
                job,
                &strings,
                &mut shared,
                ffi::T30_SUPPORT_V27TER | ffi::T30_SUPPORT_V29,
                tag,
            );
        }
        let control = Arc::new(FaxControl::default());
        Ok((
            FaxTerminal {
                state,
                shared,
                control: control.clone(),
                rx: Vec::with_capacity(160),
            },
            control,
        ))
    }

    /// One frame of 8 kHz audio each way (`heard` None: silence came).
    pub fn process(
        &mut self,
        heard: Option<&[i16]>,
        out: &mut [i16],
        events: &mut Vec<FaxProgress>,
    ) {
        out.fill(0);
        if !self.shared.finished {
            if self.control.stop_requested() {
                self.terminate();
            } else {
                let max = c_int::try_from(out.len()).unwrap_or(0);
                // SAFETY: the state is live; the buffers hold `len` and `max` samples.
                unsafe {
                    match heard {
                        Some(pcm) => {
                            self.rx.clear();
                            self.rx.extend_from_slice(pcm);
                            let len = c_int::try_from(self.rx.len()).unwrap_or(0);
                            ffi::fax_rx(self.state.as_ptr(), self.rx.as_mut_ptr(), len);
                        }
                        // A lost frame: the modems hold their state (no phase hop, no
                        // equaliser drift) and the timers run on, as if it had come.
                        None => {
                            ffi::fax_rx_fillin(self.state.as_ptr(), max);
                        }
                    }
                    ffi::fax_tx(self.state.as_ptr(), out.as_mut_ptr(), max);
                }
            }
            if self.shared.finished {
                self.control.note_outcome(&self.shared.events);
                self.control.closed.store(true, Ordering::Release);
            }
        }
        events.append(&mut self.shared.events);
    }

    /// Ends the session now (phase E runs: `Finished` follows, the TIFF file is closed).
    fn terminate(&mut self) {
        // SAFETY: the state is live.
        unsafe { ffi::t30_terminate(ffi::fax_get_t30_state(self.state.as_ptr())) };
        // A session that never started has no phase E to run.
        cut_short(&mut self.shared);
    }
}

impl FrameModem for FaxTerminal {
    fn exchange(
        &mut self,
        _now_us: u64,
        heard: Option<&[i16]>,
        out: &mut [i16],
        rate: u32,
        events: &mut Vec<ListenerEvent>,
    ) {
        if rate != FAX_RATE {
            // The operation checks the codec first; never feed a modem the wrong rate.
            out.fill(0);
            return;
        }
        let mut found = Vec::new();
        self.process(heard, out, &mut found);
        events.extend(found.into_iter().map(ListenerEvent::Fax));
    }
}

impl Drop for FaxTerminal {
    fn drop(&mut self) {
        if !self.shared.finished {
            // The call went away mid-fax: close the file so the pages so far are readable.
            self.terminate();
            self.control.note_outcome(&self.shared.events);
        }
        // SAFETY: the state was allocated by fax_init and is not used after this.
        unsafe { ffi::fax_free(self.state.as_ptr()) };
        self.control.closed.store(true, Ordering::Release);
    }
}

/// At most `max` characters (spandsp's fields are fixed-size).
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
