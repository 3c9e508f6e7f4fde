//! A media shard's sockets and how it reads them.
//!
//! Batched (the default on Linux): one epoll set per shard says which sockets have datagrams
//! waiting, and each of those is drained by `recvmmsg`, several datagrams per system call. A
//! shard of N calls then makes about one receive call per arriving packet plus one `epoll_wait`
//! per round, where polling every socket costs two or three calls per call per tick (the RTP
//! read, the read that finds it empty, the RTCP socket's read) whether anything came or not.
//! Polling (the fallback, `media_io = "poll"`, and what runs where epoll cannot be set up):
//! every socket is read until empty each round.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use uuid::Uuid;

/// How a shard reads its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaIo {
    /// Readiness from epoll, reads by `recvmmsg`.
    #[default]
    Batched,
    /// Every socket read until empty every round.
    Poll,
}

impl MediaIo {
    pub fn parse(s: &str) -> Option<MediaIo> {
        match s {
            "batched" => Some(MediaIo::Batched),
            "poll" => Some(MediaIo::Poll),
            _ => None,
        }
    }
}

/// Which of a call's sockets a datagram came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Rtp,
    Rtcp,
}

/// A call's sockets: RTP, and RTCP on the port above when it could be bound.
pub struct CallSockets {
    pub rtp: UdpSocket,
    pub rtcp: Option<UdpSocket>,
}

/// Datagrams read from one socket at most per round, so one flooded port cannot starve the
/// shard's other calls.
const MAX_PER_SOCKET: usize = 64;
/// Datagrams one `recvmmsg` may return.
const BATCH: usize = 8;
/// Largest datagram read whole (longer ones are cut, as with any fixed buffer).
const DATAGRAM: usize = 2048;

/// The sockets of a shard's calls.
pub struct SocketSet {
    calls: HashMap<Uuid, CallSockets>,
    poller: Option<Poller>,
    /// What each epoll token stands for; tokens are reused through `free`.
    tokens: Vec<Option<(Uuid, Port)>>,
    free: Vec<u64>,
    /// Each call's tokens (RTP, RTCP).
    token_of: HashMap<Uuid, (u64, Option<u64>)>,
    batch: RecvBatch,
    /// A buffer for the polling path.
    buf: Vec<u8>,
}

impl SocketSet {
    /// Sockets read as `io` says; batched falls back to polling (with a warning) when epoll
    /// cannot be set up.
    pub fn new(io: MediaIo) -> SocketSet {
        let poller = match io {
            MediaIo::Poll => None,
            MediaIo::Batched => match Poller::new() {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "epoll unavailable: media sockets are polled");
                    None
                }
            },
        };
        SocketSet {
            calls: HashMap::new(),
            poller,
            tokens: Vec::new(),
            free: Vec::new(),
            token_of: HashMap::new(),
            batch: RecvBatch::new(),
            buf: vec![0; DATAGRAM],
        }
    }

    /// Whether reads are batched (epoll + `recvmmsg`).
    pub fn batched(&self) -> bool {
        self.poller.is_some()
    }

    pub fn get(&self, call_id: &Uuid) -> Option<&CallSockets> {
        self.calls.get(call_id)
    }

    pub fn insert(&mut self, call_id: Uuid, sockets: CallSockets) {
        self.remove(&call_id);
        let rtp = self.register(call_id, Port::Rtp, sockets.rtp.as_raw_fd());
        let rtcp = sockets
            .rtcp
            .as_ref()
            .map(|s| self.register(call_id, Port::Rtcp, s.as_raw_fd()));
        self.token_of.insert(call_id, (rtp, rtcp));
        self.calls.insert(call_id, sockets);
    }

    /// The call's RTCP socket (bound after the call was added).
    pub fn set_rtcp(&mut self, call_id: Uuid, socket: UdpSocket) {
        if !self.calls.contains_key(&call_id) {
            return;
        }
        let token = self.register(call_id, Port::Rtcp, socket.as_raw_fd());
        if let Some((_, old)) = self.token_of.get_mut(&call_id) {
            if let Some(old) = old.replace(token) {
                self.release(old);
            }
        }
        if let Some(call) = self.calls.get_mut(&call_id) {
            if let Some(old) = call.rtcp.replace(socket) {
                self.deregister(old.as_raw_fd());
            }
        }
    }

    /// Takes the call's sockets out (the call ended or moves to another shard).
    pub fn remove(&mut self, call_id: &Uuid) -> Option<CallSockets> {
        let call = self.calls.remove(call_id)?;
        if let Some((rtp, rtcp)) = self.token_of.remove(call_id) {
            self.release(rtp);
            if let Some(t) = rtcp {
                self.release(t);
            }
        }
        self.deregister(call.rtp.as_raw_fd());
        if let Some(s) = &call.rtcp {
            self.deregister(s.as_raw_fd());
        }
        Some(call)
    }

    fn register(&mut self, call_id: Uuid, port: Port, fd: RawFd) -> u64 {
        let token = match self.free.pop() {
            Some(t) => t,
            None => {
                self.tokens.push(None);
                (self.tokens.len() - 1) as u64
            }
        };
        self.tokens[token as usize] = Some((call_id, port));
        if let Some(p) = &self.poller {
            if let Err(e) = p.add(fd, token) {
                // Unreadable in batched mode: the call would hear nothing. Say so loudly.
                tracing::error!(%call_id, error = %e, "media socket not added to the shard's epoll set");
            }
        }
        token
    }

    fn release(&mut self, token: u64) {
        if let Some(slot) = self.tokens.get_mut(token as usize) {
            *slot = None;
            self.free.push(token);
        }
    }

    fn deregister(&self, fd: RawFd) {
        if let Some(p) = &self.poller {
            p.delete(fd);
        }
    }

    /// Reads what has arrived on every call's sockets, handing each datagram to `on` (the
    /// call, which port, the bytes, the sender). Returns how many RTP datagrams came in.
    pub fn read(&mut self, mut on: impl FnMut(Uuid, Port, &[u8], SocketAddr)) -> u64 {
        let mut rtp_in = 0u64;
        let mut count = |port: Port| {
            if port == Port::Rtp {
                rtp_in += 1;
            }
        };
        let Some(poller) = self.poller.as_mut() else {
            for (call_id, call) in self.calls.iter() {
                let ports = [
                    (Port::Rtcp, call.rtcp.as_ref()),
                    (Port::Rtp, Some(&call.rtp)),
                ];
                for (port, socket) in ports {
                    let Some(socket) = socket else { continue };
                    for _ in 0..MAX_PER_SOCKET {
                        match socket.recv_from(&mut self.buf) {
                            Ok((n, from)) => {
                                count(port);
                                on(*call_id, port, &self.buf[..n], from);
                            }
                            Err(_) => break,
                        }
                    }
                }
            }
            return rtp_in;
        };
        let ready = match poller.wait() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "epoll_wait failed");
                0
            }
        };
        for i in 0..ready {
            let token = poller.token(i);
            let Some(Some((call_id, port))) = self.tokens.get(token as usize).copied() else {
                continue;
            };
            let Some(call) = self.calls.get(&call_id) else {
                continue;
            };
            let socket = match port {
                Port::Rtp => &call.rtp,
                Port::Rtcp => match &call.rtcp {
                    Some(s) => s,
                    None => continue,
                },
            };
            let fd = socket.as_raw_fd();
            let mut taken = 0;
            while taken < MAX_PER_SOCKET {
                let n = match self.batch.recv(fd) {
                    Ok(n) => n,
                    Err(_) => break,
                };
                for k in 0..n {
                    if let Some((data, from)) = self.batch.datagram(k) {
                        count(port);
                        on(call_id, port, data, from);
                    }
                }
                taken += n;
                // Fewer than asked for: the socket is empty (level-triggered epoll reports
                // it again next round if more came meanwhile).
                if n < BATCH {
                    break;
                }
            }
        }
        rtp_in
    }
}

/// An epoll set (level-triggered, read readiness) and the events of its last wait.
struct Poller {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
    ready: usize,
}

impl Poller {
    fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller {
            fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            ready: 0,
        })
    }

    fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open; `ev` outlives the call.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn delete(&self, fd: RawFd) {
        // SAFETY: a null event is allowed for EPOLL_CTL_DEL; an fd not in the set only fails.
        unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            );
        }
    }

    /// Ready sockets now (never waits); the events array grows when it came back full.
    fn wait(&mut self) -> io::Result<usize> {
        // SAFETY: `events` is a valid buffer of `len` entries for the kernel to fill.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                i32::try_from(self.events.len()).unwrap_or(i32::MAX),
                0,
            )
        };
        if n < 0 {
            self.ready = 0;
            return Err(io::Error::last_os_error());
        }
        self.ready = n as usize;
        if self.ready == self.events.len() {
            // More may be ready than fit: they come next round; make room for them.
            let len = self.events.len() * 2;
            self.events
                .resize(len, libc::epoll_event { events: 0, u64: 0 });
        }
        Ok(self.ready)
    }

    fn token(&self, i: usize) -> u64 {
        // A copy out of the (packed) event.
        let ev = self.events[i];
        ev.u64
    }
}

/// Buffers for one `recvmmsg` of up to [`BATCH`] datagrams.
struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    received: usize,
}

// SAFETY: the raw pointers inside `iovecs`/`headers` point into this struct's own heap buffers
// and are rewritten before every use; nothing is shared between threads.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    fn new() -> RecvBatch {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        RecvBatch {
            bufs: vec![0; BATCH * DATAGRAM],
            addrs: vec![zero_addr; BATCH],
            iovecs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ],
            headers: vec![zero_hdr; BATCH],
            received: 0,
        }
    }

    /// Reads up to [`BATCH`] datagrams from `fd` without waiting.
    fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.received = 0;
        let base = self.bufs.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: `i * DATAGRAM` is inside `bufs` (BATCH * DATAGRAM bytes).
            self.iovecs[i] = libc::iovec {
                iov_base: unsafe { base.add(i * DATAGRAM) }.cast(),
                iov_len: DATAGRAM,
            };
            let h = &mut self.headers[i];
            h.msg_len = 0;
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points at this struct's buffers, valid for the call's duration.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = n as usize;
        Ok(self.received)
    }

    /// The `k`th datagram of the last read and its sender.
    fn datagram(&self, k: usize) -> Option<(&[u8], SocketAddr)> {
        if k >= self.received {
            return None;
        }
        let h = &self.headers[k];
        let len = (h.msg_len as usize).min(DATAGRAM);
        let from = socket_addr(&self.addrs[k])?;
        Some((&self.bufs[k * DATAGRAM..k * DATAGRAM + len], from))
    }
}

/// The sender's address from the kernel's `sockaddr_storage`.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let a: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Both ways of reading give every datagram once, with its sender and port, whatever the
    /// burst size (more than one `recvmmsg` batch, more than the per-socket cap over rounds),
    /// and forget a removed call's sockets.
    #[test]
    fn batched_and_polled_reads_give_every_datagram_once() {
        for io in [MediaIo::Batched, MediaIo::Poll] {
            let mut set = SocketSet::new(io);
            assert_eq!(set.batched(), io == MediaIo::Batched);
            let calls: Vec<(Uuid, UdpSocket, UdpSocket, UdpSocket)> = (0..3)
                .map(|_| {
                    let (rtp, peer) = pair();
                    let (rtcp, _) = pair();
                    (Uuid::new_v4(), rtp, rtcp, peer)
                })
                .collect();
            for (id, rtp, rtcp, _) in &calls {
                set.insert(
                    *id,
                    CallSockets {
                        rtp: rtp.try_clone().unwrap(),
                        rtcp: None,
                    },
                );
                set.set_rtcp(*id, rtcp.try_clone().unwrap());
            }
            // Call k gets 5 + 7k RTP datagrams (up to 19: more than two batches) and one RTCP.
            for (k, (_, rtp, rtcp, peer)) in calls.iter().enumerate() {
                for i in 0..(5 + 7 * k) {
                    peer.send_to(&[k as u8, i as u8], rtp.local_addr().unwrap())
                        .unwrap();
                }
                peer.send_to(&[0xc8, k as u8], rtcp.local_addr().unwrap())
                    .unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut got: Vec<(Uuid, Port, Vec<u8>, SocketAddr)> = Vec::new();
            let n = set.read(|id, port, data, from| got.push((id, port, data.to_vec(), from)));
            assert_eq!(n, 5 + 12 + 19, "{io:?}");
            for (k, (id, _, _, peer)) in calls.iter().enumerate() {
                let rtp: Vec<&Vec<u8>> = got
                    .iter()
                    .filter(|g| g.0 == *id && g.1 == Port::Rtp)
                    .map(|g| &g.2)
                    .collect();
                let want: Vec<Vec<u8>> = (0..(5 + 7 * k)).map(|i| vec![k as u8, i as u8]).collect();
                assert_eq!(rtp, want.iter().collect::<Vec<_>>(), "{io:?} call {k}");
                let rtcp: Vec<_> = got
                    .iter()
                    .filter(|g| g.0 == *id && g.1 == Port::Rtcp)
                    .collect();
                assert_eq!(rtcp.len(), 1);
                assert_eq!(rtcp[0].2, vec![0xc8, k as u8]);
                assert!(got
                    .iter()
                    .filter(|g| g.0 == *id)
                    .all(|g| g.3 == peer.local_addr().unwrap()));
            }
            // Nothing more: a second read finds nothing.
            assert_eq!(set.read(|_, _, _, _| panic!("nothing left")), 0);
            // A removed call is not read any more, the others still are.
            let (gone, rtp0, _, peer0) = &calls[0];
            assert!(set.remove(gone).is_some());
            peer0.send_to(&[9], rtp0.local_addr().unwrap()).unwrap();
            let (kept, rtp1, _, peer1) = &calls[1];
            peer1.send_to(&[8], rtp1.local_addr().unwrap()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut ids = Vec::new();
            set.read(|id, _, _, _| ids.push(id));
            assert_eq!(ids, vec![*kept], "{io:?}");
        }
    }

    /// A flooded port gives at most the per-socket cap per round; the rest waits.
    #[test]
    fn one_flooded_socket_is_read_at_most_the_cap_per_round() {
        for io in [MediaIo::Batched, MediaIo::Poll] {
            let mut set = SocketSet::new(io);
            let (rtp, peer) = pair();
            let id = Uuid::new_v4();
            let addr = rtp.local_addr().unwrap();
            set.insert(id, CallSockets { rtp, rtcp: None });
            for i in 0..100u8 {
                peer.send_to(&[i], addr).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(set.read(|_, _, _, _| {}), MAX_PER_SOCKET as u64, "{io:?}");
            assert_eq!(
                set.read(|_, _, _, _| {}),
                100 - MAX_PER_SOCKET as u64,
                "{io:?}"
            );
        }
    }
}
