//! AudioFetcher against local HTTP servers on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audio::{AudioError, AudioFetcher, FetchConfig};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

#[derive(Clone)]
struct Server {
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
    tone: Arc<Vec<u8>>,
    long: Arc<Vec<u8>>,
}

impl Server {
    fn requests(&self, path: &str) -> Vec<HeaderMap> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, h)| h.clone())
            .collect()
    }
}

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn response(status: StatusCode, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    for (k, v) in headers {
        r.headers_mut().append(
            header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    r
}

async fn handle(State(s): State<Server>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    s.seen.lock().unwrap().push((path.clone(), headers.clone()));
    let tone = (*s.tone).clone();
    let wav = [("content-type", "audio/wav")];
    match path.as_str() {
        "/tone.wav" | "/play" => response(StatusCode::OK, &wav, tone),
        "/etag.wav" => {
            if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some("\"v1\"") {
                response(StatusCode::NOT_MODIFIED, &[("etag", "\"v1\"")], Vec::new())
            } else {
                response(StatusCode::OK, &[("etag", "\"v1\""), wav[0]], tone)
            }
        }
        "/lm.wav" => {
            if headers
                .get("if-modified-since")
                .and_then(|v| v.to_str().ok())
                == Some(LAST_MODIFIED)
            {
                response(StatusCode::NOT_MODIFIED, &[], Vec::new())
            } else {
                response(StatusCode::OK, &[("last-modified", LAST_MODIFIED)], tone)
            }
        }
        "/maxage.wav" => response(
            StatusCode::OK,
            &[("cache-control", "public, max-age=1"), ("etag", "\"m\"")],
            tone,
        ),
        "/nostore.wav" => response(StatusCode::OK, &[("cache-control", "no-store")], tone),
        "/auth.wav" => {
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some("Basic dXNlcjpwQHNz")
            {
                response(StatusCode::OK, &wav, tone)
            } else {
                response(StatusCode::UNAUTHORIZED, &[], Vec::new())
            }
        }
        "/page.html" => response(
            StatusCode::OK,
            &[("content-type", "text/html")],
            b"<!doctype html><html><body><h1>Not Found</h1></body></html>".to_vec(),
        ),
        "/big" => response(StatusCode::OK, &wav, vec![0u8; 2 * 1024 * 1024]),
        "/long.wav" => response(StatusCode::OK, &wav, (*s.long).clone()),
        "/redirect" => response(StatusCode::FOUND, &[("location", "/tone.wav")], Vec::new()),
        "/redirect-elsewhere" => response(
            StatusCode::FOUND,
            &[("location", "http://127.0.0.2:9/tone.wav")],
            Vec::new(),
        ),
        "/slow.wav" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            response(StatusCode::OK, &wav, tone)
        }
        "/slowish.wav" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            response(StatusCode::OK, &wav, tone)
        }
        _ => response(StatusCode::NOT_FOUND, &[], b"not found".to_vec()),
    }
}

async fn serve() -> (SocketAddr, Server) {
    let server = Server {
        seen: Arc::default(),
        // 1 kHz, 16 kHz mono, 0.5 s.
        tone: Arc::new(common::tone_wav(1000.0, 16_000, 0.5)),
        long: Arc::new(common::tone_wav(1000.0, 8_000, 3.0)),
    };
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(server.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

fn fetcher() -> AudioFetcher {
    init();
    AudioFetcher::new(FetchConfig {
        timeout: Duration::from_secs(2),
        ..FetchConfig::default()
    })
}

#[tokio::test]
async fn fetch_decodes_resamples_and_caches() {
    let (addr, server) = serve().await;
    let f = fetcher();
    let url = format!("http://{addr}/tone.wav");
    let pcm = f.fetch(&url, 8_000).await.unwrap();
    assert_eq!(pcm.rate, 8_000);
    assert!((pcm.samples.len() as i64 - 4_000).abs() <= 1);
    let p = common::goertzel(&pcm.samples[400..3600], 8_000, 1000.0);
    assert!((p - 0.25).abs() < 0.01, "{p}");

    let again = f.fetch(&url, 8_000).await.unwrap();
    assert!(Arc::ptr_eq(&pcm.samples, &again.samples));
    let st = f.cache_stats();
    assert_eq!((st.misses, st.hits, st.revalidated), (1, 1, 0));
    assert_eq!(server.requests("/tone.wav").len(), 1);
    let ua = server.requests("/tone.wav")[0]
        .get("user-agent")
        .cloned()
        .unwrap();
    assert!(ua.to_str().unwrap().starts_with("dialtone-audio/"));

    // Another rate is another key; a clone shares the cache.
    let wide = f.clone().fetch(&url, 16_000).await.unwrap();
    assert_eq!(wide.samples.len(), 8_000);
    assert_eq!(server.requests("/tone.wav").len(), 2);
    assert_eq!(f.cache_stats().keys, 2);
}

#[tokio::test]
async fn etag_revalidates_with_304() {
    let (addr, server) = serve().await;
    let f = fetcher();
    let url = format!("http://{addr}/etag.wav");
    let first = f.fetch(&url, 8_000).await.unwrap();
    let second = f.fetch(&url, 8_000).await.unwrap();
    assert!(
        Arc::ptr_eq(&first.samples, &second.samples),
        "304 reuses the PCM"
    );
    let st = f.cache_stats();
    assert_eq!((st.misses, st.hits, st.revalidated), (1, 0, 1));
    let reqs = server.requests("/etag.wav");
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].get("if-none-match").is_none());
    assert_eq!(reqs[1].get("if-none-match").unwrap(), "\"v1\"");
}

#[tokio::test]
async fn last_modified_revalidates_with_304() {
    let (addr, server) = serve().await;
    let f = fetcher();
    let url = format!("http://{addr}/lm.wav");
    f.fetch(&url, 8_000).await.unwrap();
    f.fetch(&url, 8_000).await.unwrap();
    assert_eq!(f.cache_stats().revalidated, 1);
    let reqs = server.requests("/lm.wav");
    assert_eq!(reqs[1].get("if-modified-since").unwrap(), LAST_MODIFIED);
}

#[tokio::test]
async fn max_age_is_fresh_then_revalidated() {
    let (addr, server) = serve().await;
    let f = fetcher();
    let url = format!("http://{addr}/maxage.wav");
    f.fetch(&url, 8_000).await.unwrap();
    f.fetch(&url, 8_000).await.unwrap();
    assert_eq!(f.cache_stats().hits, 1);
    assert_eq!(server.requests("/maxage.wav").len(), 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Stale: the server has an ETag but answers 200 (it ignores If-None-Match here).
    f.fetch(&url, 8_000).await.unwrap();
    let reqs = server.requests("/maxage.wav");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].get("if-none-match").unwrap(), "\"m\"");
    assert_eq!(f.cache_stats().misses, 2);
}

#[tokio::test]
async fn no_store_is_not_cached() {
    let (addr, server) = serve().await;
    let f = fetcher();
    let url = format!("http://{addr}/nostore.wav");
    f.fetch(&url, 8_000).await.unwrap();
    f.fetch(&url, 8_000).await.unwrap();
    assert_eq!(server.requests("/nostore.wav").len(), 2);
    assert_eq!(f.cache_stats().hits, 0);
}

#[tokio::test]
async fn concurrent_fetches_share_one_request() {
    let (addr, server) = serve().await;
    let f = fetcher();
    let url = format!("http://{addr}/slowish.wav");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            let url = url.clone();
            tokio::spawn(async move { f.fetch(&url, 8_000).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(server.requests("/slowish.wav").len(), 1);
    let st = f.cache_stats();
    assert_eq!((st.misses, st.hits), (1, 7));
}

#[tokio::test]
async fn errors_status_html_large_long() {
    let (addr, _server) = serve().await;
    init();
    let f = AudioFetcher::new(FetchConfig {
        timeout: Duration::from_secs(2),
        max_bytes: 64 * 1024,
        max_ms: 1_000,
        ..FetchConfig::default()
    });
    let r = f.fetch(&format!("http://{addr}/nothing.wav"), 8_000).await;
    assert_eq!(r.unwrap_err(), AudioError::Status(404));
    let r = f.fetch(&format!("http://{addr}/page.html"), 8_000).await;
    assert!(matches!(r, Err(AudioError::Decode(_))), "{r:?}");
    let r = f.fetch(&format!("http://{addr}/big"), 8_000).await;
    assert_eq!(r.unwrap_err(), AudioError::TooLarge(2 * 1024 * 1024));
    let r = f.fetch(&format!("http://{addr}/long.wav"), 8_000).await;
    assert!(matches!(r, Err(AudioError::TooLong(_))), "{r:?}");
    let r = f.fetch(&format!("http://{addr}/auth.wav"), 8_000).await;
    assert_eq!(r.unwrap_err(), AudioError::Status(401));
    // Errors are not cached.
    assert_eq!(f.cache_stats().hits, 0);
}

#[tokio::test]
async fn bad_urls() {
    let f = fetcher();
    for url in [
        "ftp://127.0.0.1/a.wav",
        "file:///etc/passwd",
        "say:hello",
        "http://",
        "",
    ] {
        let r = f.fetch(url, 8_000).await;
        assert!(matches!(r, Err(AudioError::BadUrl(_))), "{url}: {r:?}");
    }
    let r = f.fetch("http://127.0.0.1/a.wav", 0).await;
    assert!(matches!(r, Err(AudioError::Unsupported(_))));
}

#[tokio::test]
async fn userinfo_becomes_basic_auth_and_redirects_are_followed() {
    let (addr, server) = serve().await;
    let f = fetcher();
    let pcm = f
        .fetch(&format!("http://user:p%40ss@{addr}/auth.wav"), 8_000)
        .await
        .unwrap();
    assert_eq!(pcm.rate, 8_000);
    // The credentials went in the header, not the request line.
    let reqs = server.requests("/auth.wav");
    assert_eq!(reqs.len(), 1);
    let pcm = f
        .fetch(&format!("http://{addr}/redirect"), 16_000)
        .await
        .unwrap();
    assert_eq!(pcm.samples.len(), 8_000);
    // No extension in the URL: the bytes are probed.
    f.fetch(&format!("http://{addr}/play"), 8_000)
        .await
        .unwrap();
}

#[tokio::test]
async fn unreachable_port_fails_promptly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let f = fetcher();
    let start = Instant::now();
    let r = f
        .fetch(&format!("http://127.0.0.1:{port}/a.wav"), 8_000)
        .await;
    assert!(matches!(r, Err(AudioError::Http(_))), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(f.cache_stats().misses, 1);
}

#[tokio::test]
async fn slow_server_times_out() {
    let (addr, _server) = serve().await;
    init();
    let f = AudioFetcher::new(FetchConfig {
        timeout: Duration::from_millis(300),
        ..FetchConfig::default()
    });
    let start = Instant::now();
    let r = f.fetch(&format!("http://{addr}/slow.wav"), 8_000).await;
    assert!(matches!(r, Err(AudioError::Http(_))), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// A raw server that streams an endless chunked body and counts what it managed to write.
async fn endless_server() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    tokio::spawn(async move {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut buf = vec![0u8; 4096];
        let mut req = Vec::new();
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let head =
            b"HTTP/1.1 200 OK\r\ncontent-type: audio/wav\r\ntransfer-encoding: chunked\r\n\r\n";
        if sock.write_all(head).await.is_err() {
            return;
        }
        let chunk = vec![0x55u8; 16 * 1024];
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        // Up to 1 GiB; stops when the client goes away.
        for _ in 0..(1 << 16) {
            if sock.write_all(&framed).await.is_err() {
                return;
            }
            w.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    (addr, written)
}

#[tokio::test]
async fn streaming_body_over_the_limit_is_aborted() {
    let (addr, written) = endless_server().await;
    init();
    let f = AudioFetcher::new(FetchConfig {
        timeout: Duration::from_secs(5),
        max_bytes: 256 * 1024,
        ..FetchConfig::default()
    });
    let r = f.fetch(&format!("http://{addr}/endless.wav"), 8_000).await;
    match r {
        Err(AudioError::TooLarge(n)) => assert!(n > 256 * 1024 && n <= 256 * 1024 + 32 * 1024),
        other => panic!("{other:?}"),
    }
    // The server notices the closed connection long before it has written much.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = written.load(Ordering::Relaxed);
    assert!(sent < 64 * 1024 * 1024, "server wrote {sent} bytes");
}

#[tokio::test]
async fn lru_keeps_at_most_cache_entries() {
    let (addr, server) = serve().await;
    init();
    let f = AudioFetcher::new(FetchConfig {
        cache_entries: 2,
        ..FetchConfig::default()
    });
    let url = format!("http://{addr}/tone.wav");
    for rate in [8_000, 16_000, 48_000] {
        f.fetch(&url, rate).await.unwrap();
    }
    assert_eq!(f.cache_stats().keys, 2);
    // 8 kHz was least recently used and is gone; 48 kHz is still there.
    f.fetch(&url, 48_000).await.unwrap();
    assert_eq!(f.cache_stats().hits, 1);
    f.fetch(&url, 8_000).await.unwrap();
    assert_eq!(server.requests("/tone.wav").len(), 4);
}

fn fetcher_with(policy: egress::EgressPolicy) -> AudioFetcher {
    init();
    AudioFetcher::new(FetchConfig {
        timeout: Duration::from_secs(2),
        egress: Arc::new(policy),
        ..FetchConfig::default()
    })
}

#[tokio::test]
async fn a_refused_url_is_an_error_and_nothing_is_sent() {
    let (addr, server) = serve().await;
    let none: [&str; 0] = [];
    let f = fetcher_with(egress::EgressPolicy::parse("public-only", none, none).unwrap());
    for url in [
        format!("http://{addr}/tone.wav"),
        format!("http://localhost:{}/tone.wav", addr.port()),
    ] {
        match f.fetch(&url, 8_000).await {
            Err(AudioError::Refused(why)) => assert!(why.contains("public-only"), "{why}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    assert!(server.requests("/tone.wav").is_empty());
    // Non-loopback targets (169.254.169.254 …) are the pure policy's unit tests (crates/egress):
    // a test here would send a packet off the host if the policy were broken.
}

#[tokio::test]
async fn a_redirect_to_a_denied_address_is_not_followed() {
    let (addr, server) = serve().await;
    let none: [&str; 0] = [];
    let f = fetcher_with(egress::EgressPolicy::parse("default", none, ["127.0.0.2"]).unwrap());
    match f
        .fetch(&format!("http://{addr}/redirect-elsewhere"), 8_000)
        .await
    {
        Err(AudioError::Refused(why)) => {
            assert!(why.contains("egress.deny entry 127.0.0.2/32"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests("/redirect-elsewhere").len(), 1);
}
