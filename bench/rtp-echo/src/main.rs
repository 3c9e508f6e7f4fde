//! A lean RTP echo peer for the load benchmarks (`bench/dial_load.py --echo lean`).
//!
//! `sipp -rtp_echo` echoes with one `recvfrom` and one `sendto` per packet and, on the bench's
//! two cores, takes CPU the server under test needs. This program does the same job — every
//! datagram that reaches its one socket goes back to where it came from — with `recvmmsg` and
//! `sendmmsg`, up to 64 datagrams per system call, on one thread. sipp still answers the SIP
//! side (its 200 OK's SDP names this program's port).
//!
//! A server paced as dialtone is sends a few packets at a time all through the tick, so a reader
//! that wakes for each gets two or three per call. After a batch that was not full the echo
//! naps (`--nap-us`, 1 ms by default) so the next read finds a millisecond's packets waiting: the
//! echoes leave up to that much later, in exchange for a few system calls per millisecond
//! instead of one pair per wake-up. The receive buffer (`--rcvbuf`) must hold what arrives
//! while the echo naps or waits for a core.
//!
//! Usage: `rtp-echo [--bind 127.0.0.1:PORT] [--rcvbuf BYTES] [--nap-us MICROSECONDS]`. It prints
//! `listening ADDR` once bound and, when it gets SIGINT or SIGTERM, one line of counters, then
//! exits.

use std::io::{self, Write};
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Datagrams read or sent per system call.
const BATCH: usize = 64;
/// Large enough for any RTP packet the server sends (and a jumbo one).
const DATAGRAM: usize = 2048;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

#[derive(Default)]
struct Counters {
    received: u64,
    sent: u64,
    send_failed: u64,
    read_calls: u64,
    send_calls: u64,
}

/// One batch's buffers: the datagrams, their sources, and the two header arrays (`recvmmsg`
/// fills `recv`; `send` points at the same bytes with each datagram's length and source).
struct Batch {
    data: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    recv_iov: Vec<libc::iovec>,
    send_iov: Vec<libc::iovec>,
    recv: Vec<libc::mmsghdr>,
    send: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Batch {
        // SAFETY: plain C structs for which all-zero bytes are a valid value.
        let (addr, hdr): (libc::sockaddr_storage, libc::mmsghdr) = unsafe { (zeroed(), zeroed()) };
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut batch = Batch {
            data: vec![0; BATCH * DATAGRAM],
            addrs: vec![addr; BATCH],
            recv_iov: vec![empty; BATCH],
            send_iov: vec![empty; BATCH],
            recv: vec![hdr; BATCH],
            send: vec![hdr; BATCH],
        };
        // The vectors are never resized, so these pointers stay valid for the batch's life.
        let base = batch.data.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: i * DATAGRAM is inside `data` (BATCH * DATAGRAM bytes).
            let slot = unsafe { base.add(i * DATAGRAM) }.cast();
            batch.recv_iov[i] = libc::iovec {
                iov_base: slot,
                iov_len: DATAGRAM,
            };
            batch.send_iov[i] = libc::iovec {
                iov_base: slot,
                iov_len: 0,
            };
            let addr = (&mut batch.addrs[i] as *mut libc::sockaddr_storage).cast();
            batch.recv[i].msg_hdr.msg_iov = &mut batch.recv_iov[i];
            batch.recv[i].msg_hdr.msg_iovlen = 1;
            batch.recv[i].msg_hdr.msg_name = addr;
            batch.send[i].msg_hdr.msg_iov = &mut batch.send_iov[i];
            batch.send[i].msg_hdr.msg_iovlen = 1;
            batch.send[i].msg_hdr.msg_name = addr;
        }
        batch
    }

    /// Reads up to [`BATCH`] datagrams, waiting for the first (until the socket's timeout).
    fn read(&mut self, fd: libc::c_int) -> io::Result<usize> {
        for hdr in &mut self.recv {
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_len = 0;
        }
        // SAFETY: every header points into this batch's live buffers, sized as declared.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.recv.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Sends the first `n` datagrams read back to their sources; returns how many went out.
    fn echo(&mut self, fd: libc::c_int, n: usize, counters: &mut Counters) -> usize {
        for i in 0..n {
            self.send_iov[i].iov_len = self.recv[i].msg_len as usize;
            self.send[i].msg_hdr.msg_namelen = self.recv[i].msg_hdr.msg_namelen;
        }
        let mut done = 0;
        let mut went = 0;
        while done < n {
            counters.send_calls += 1;
            // SAFETY: headers done..n point into this batch's live buffers.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    self.send[done..n].as_mut_ptr(),
                    (n - done) as libc::c_uint,
                    0,
                )
            };
            if sent <= 0 {
                // A full send buffer or an unreachable source: that datagram is dropped, as a
                // phone's would be; the rest of the batch still goes.
                done += 1;
                counters.send_failed += 1;
                continue;
            }
            done += sent as usize;
            went += sent as usize;
        }
        went
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("rtp-echo: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let mut bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut rcvbuf: Option<libc::c_int> = None;
    let mut nap = Duration::from_millis(1);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad or missing value for {arg}"),
            )
        };
        match arg.as_str() {
            "--bind" => bind = value.and_then(|v| v.parse().ok()).ok_or_else(bad)?,
            "--rcvbuf" => rcvbuf = Some(value.and_then(|v| v.parse().ok()).ok_or_else(bad)?),
            "--nap-us" => {
                nap = Duration::from_micros(value.and_then(|v| v.parse().ok()).ok_or_else(bad)?)
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown argument {arg}"),
                ))
            }
        }
    }
    let socket = UdpSocket::bind(bind)?;
    // The read waits at most this long, so a signal is noticed even on an idle socket.
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let fd = socket.as_raw_fd();
    if let Some(bytes) = rcvbuf {
        // SAFETY: a valid socket and an int option value of the declared size.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&bytes as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    println!("listening {}", socket.local_addr()?);
    io::stdout().flush()?;

    let mut batch = Batch::new();
    let mut counters = Counters::default();
    while !STOP.load(Ordering::Relaxed) {
        counters.read_calls += 1;
        match batch.read(fd) {
            Ok(n) => {
                counters.received += n as u64;
                let sent = batch.echo(fd, n, &mut counters);
                counters.sent += sent as u64;
                if n < BATCH && !nap.is_zero() {
                    std::thread::sleep(nap);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    println!(
        "received {} sent {} send_failed {} read_calls {} send_calls {}",
        counters.received,
        counters.sent,
        counters.send_failed,
        counters.read_calls,
        counters.send_calls
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_datagram_goes_back_to_its_source() {
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        echo.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let peers: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        // More than one batch in all, of different lengths, from three sources.
        let mut expected = Vec::new();
        for k in 0..(BATCH + 10) {
            let peer = &peers[k % 3];
            let payload = vec![k as u8; 12 + k % 200];
            peer.send_to(&payload, echo.local_addr().unwrap()).unwrap();
            expected.push((k % 3, payload));
        }
        let mut batch = Batch::new();
        let mut counters = Counters::default();
        let mut echoed = 0;
        while echoed < expected.len() {
            let n = batch.read(echo.as_raw_fd()).unwrap();
            assert!(n <= BATCH);
            echoed += batch.echo(echo.as_raw_fd(), n, &mut counters);
        }
        assert_eq!(counters.send_failed, 0);
        for (who, payload) in expected {
            let mut buf = [0u8; DATAGRAM];
            peers[who]
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let (len, from) = peers[who].recv_from(&mut buf).unwrap();
            assert_eq!(from, echo.local_addr().unwrap());
            assert_eq!(&buf[..len], &payload[..]);
        }
    }
}
