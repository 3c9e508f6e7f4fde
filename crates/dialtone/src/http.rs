//! The HTTP server around the API router, with the limits a server reachable by strangers
//! needs (docs/security.md): a cap on open connections in total and per peer address, a time
//! limit for a request's headers, an idle limit for a connection that moves no bytes, and a
//! time limit for a whole request (a trickled body). HTTP/1.1 only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_peer: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
}

/// Open connections per peer address.
#[derive(Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A stream that notes when bytes last moved (milliseconds since `epoch`).
struct Tracked<S> {
    inner: S,
    epoch: Instant,
    last: Arc<AtomicU64>,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request (body included) that takes longer than the limit is answered 408.
async fn request_deadline(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let body = serde_json::json!({"errors": [{
                "type": "validation_error",
                "code": "request_timeout",
                "message": format!("the request took longer than {} ms", limit.as_millis()),
            }]});
            (axum::http::StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response()
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish (up to
/// 5 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let limit = limits.request_timeout;
    let app = app.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| request_deadline(limit, req, next),
    ));
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Arc::new(Peers::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (or similar): wait for connections to close.
                warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            debug!(%peer, "HTTP connection refused: connection limit reached");
            continue;
        };
        let Some(slot) = peers.take(peer.ip(), limits.max_per_peer) else {
            debug!(%peer, "HTTP connection refused: per-peer limit reached");
            continue;
        };
        let last = Arc::new(AtomicU64::new(epoch.elapsed().as_millis() as u64));
        let io = TokioIo::new(Tracked {
            inner: stream,
            epoch,
            last: last.clone(),
        });
        tokio::spawn(connection(
            io,
            app.clone(),
            limits.clone(),
            epoch,
            last,
            stop_rx.clone(),
            (permit, slot),
        ));
    }
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while total.available_permits() < limits.max_connections
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connection(
    io: TokioIo<Tracked<tokio::net::TcpStream>>,
    app: Router,
    limits: Limits,
    epoch: Instant,
    last: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    _held: (OwnedSemaphorePermit, PeerSlot),
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let idle_ms = limits.idle_timeout.as_millis() as u64;
    let mut tick = tokio::time::interval(Duration::from_millis((idle_ms / 4).clamp(50, 1000)));
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = tick.tick() => {
                let now = epoch.elapsed().as_millis() as u64;
                if now.saturating_sub(last.load(Ordering::Relaxed)) > idle_ms {
                    debug!("HTTP connection closed: idle");
                    return;
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
