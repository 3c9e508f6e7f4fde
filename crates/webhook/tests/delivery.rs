//! Delivery against a real HTTP server on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use store::{NewWebhook, Store};
use uuid::Uuid;
use webhook::{sign, DeliveryConfig, DeliveryHandle, Retention, RetryPolicy, WebhookDelivery};

const KEY: &[u8] = b"PSK_test_signing_key";

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// What the test server saw, in order: `start <body>` when a request arrived and `end <body>`
/// just before its response was sent.
#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

type Script = dyn Fn(&str, usize) -> (u16, Duration) + Send + Sync;

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Seen>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// `script(body, nth)` answers the `nth` (0-based) request carrying `body` with a status
    /// after a delay.
    async fn start(
        script: impl Fn(&str, usize) -> (u16, Duration) + Send + Sync + 'static,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let (req2, log2) = (requests.clone(), log.clone());
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (requests, log, script) = (req2.clone(), log2.clone(), script.clone());
            async move {
                let text = String::from_utf8_lossy(&body).into_owned();
                let nth = {
                    let mut reqs = requests.lock().unwrap();
                    let nth = reqs.iter().filter(|s| s.body == body.as_ref()).count();
                    reqs.push(Seen {
                        uri: uri.to_string(),
                        headers,
                        body: body.to_vec(),
                    });
                    log.lock().unwrap().push(format!("start {text}"));
                    nth
                };
                let (status, delay) = script(&text, nth);
                tokio::time::sleep(delay).await;
                log.lock().unwrap().push(format!("end {text}"));
                StatusCode::from_u16(status).unwrap()
            }
        });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            addr,
            requests,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn requests(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }

    fn count(&self, body: &str) -> usize {
        self.requests()
            .iter()
            .filter(|s| s.body == body.as_bytes())
            .count()
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn ok() -> impl Fn(&str, usize) -> (u16, Duration) + Send + Sync + 'static {
    |_, _| (200, Duration::ZERO)
}

fn config(backoff_ms: &[u64]) -> DeliveryConfig {
    DeliveryConfig {
        signing_key: KEY.to_vec(),
        timeout: Duration::from_secs(5),
        backoff: backoff_ms
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect(),
        user_agent: "dialtone-test/1".into(),
        // Long: deliveries in these tests must come from kicks and the retry timer.
        poll_interval: Duration::from_secs(60),
        concurrency: 16,
        ..DeliveryConfig::default()
    }
}

async fn enqueue(store: &Store, call: Option<Uuid>, url: &str, body: &str) -> i64 {
    store
        .enqueue_webhook(NewWebhook {
            call_id: call,
            url: url.to_owned(),
            body: body.as_bytes().to_vec(),
            created_at_ms: now_ms(),
        })
        .await
        .unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits until the outbox is empty.
async fn drained(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.pending_webhooks().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "outbox not drained in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn hmac_sha1_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(data);
    hex(&mac.finalize().into_bytes())
}

fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
}

/// Checks both signature headers against `url + body` with the hmac crate.
fn assert_signed(seen: &Seen, url: &str) {
    let mut data = url.as_bytes().to_vec();
    data.extend_from_slice(&seen.body);
    assert_eq!(
        header(seen, "x-signalwire-signature"),
        hmac_sha1_hex(KEY, &data)
    );
    assert_eq!(
        header(seen, "x-signalwire-sha256-signature"),
        hmac_sha256_hex(KEY, &data)
    );
}

#[test]
fn signatures_of_known_values() {
    // Expected values from Python's hmac module:
    // hmac.new(k, url.encode() + body, hashlib.sha1 / hashlib.sha256).hexdigest()
    let url = "https://example.com/hooks/state?x=1&y=2";
    let body = br#"{"event_type":"calling.call.state"}"#;
    let s = sign(b"PSK_test_key", url, body);
    assert_eq!(s.sha1_hex, "992724f9355a15158d6f0df1499026113c7e8576");
    assert_eq!(
        s.sha256_hex,
        "6da002cfbaa9a3015c379ab17ccd86c7e7ca35d28b1833ec8282d0bf08abb2dd"
    );
    // A key longer than the hash block.
    let long = [b'k'; 100];
    let s = sign(&long, url, body);
    assert_eq!(s.sha1_hex, "1c06b9865150717b4ab7b8b61c230411b57d43de");
    assert_eq!(
        s.sha256_hex,
        "879daac3c797676fce881d9931cbf8d44085996ffdbd82a8c3b865484f811194"
    );
    // Empty key, URL and body.
    let s = sign(b"", "", b"");
    assert_eq!(s.sha1_hex, "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
    assert_eq!(
        s.sha256_hex,
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
    );
}

#[test]
fn signatures_match_the_hmac_crate() {
    for key_len in [0usize, 1, 20, 63, 64, 65, 200] {
        let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
        let url = "http://127.0.0.1:8080/a/b?c=d";
        let body: Vec<u8> = (0..key_len * 3).map(|i| (i * 13) as u8).collect();
        let mut data = url.as_bytes().to_vec();
        data.extend_from_slice(&body);
        let s = sign(&key, url, &body);
        assert_eq!(s.sha1_hex, hmac_sha1_hex(&key, &data), "key {key_len}");
        assert_eq!(s.sha256_hex, hmac_sha256_hex(&key, &data), "key {key_len}");
    }
}

#[test]
fn default_config() {
    let c = DeliveryConfig::default();
    assert_eq!(c.backoff, [Duration::from_secs(1), Duration::from_secs(4)]);
    assert_eq!(c.poll_interval, Duration::from_secs(1));
    assert_eq!(c.concurrency, 16);
}

#[tokio::test]
async fn delivered_job_is_signed_and_typed() {
    init();
    let server = Server::start(ok()).await;
    let store = Store::open_in_memory().await.unwrap();
    let worker = WebhookDelivery::spawn(store.clone(), config(&[10]));
    let url = server.url("/hooks/state?x=1&y=two");
    let body = r#"{"event_type":"calling.call.state","params":{"call_state":"ended"}}"#;
    enqueue(&store, Some(Uuid::new_v4()), &url, body).await;
    worker.kick();
    drained(&store).await;

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.uri, "/hooks/state?x=1&y=two");
    assert_eq!(s.body, body.as_bytes());
    assert_eq!(header(s, "content-type"), "application/json");
    assert_eq!(header(s, "user-agent"), "dialtone-test/1");
    assert!(s.headers.get("authorization").is_none());
    assert_signed(s, &url);
    worker.shutdown().await;
}

#[tokio::test]
async fn one_call_in_order_other_calls_concurrently() {
    init();
    // The first job of call A is answered slowly.
    let server = Server::start(|body, _| {
        let delay = if body == "a1" { 300 } else { 0 };
        (200, Duration::from_millis(delay))
    })
    .await;
    let store = Store::open_in_memory().await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let url = server.url("/hook");
    for (call, body) in [(a, "a1"), (a, "a2"), (b, "b1"), (a, "a3"), (b, "b2")] {
        enqueue(&store, Some(call), &url, body).await;
    }
    let worker = WebhookDelivery::spawn(store.clone(), config(&[10]));
    drained(&store).await;
    worker.shutdown().await;

    let log = server.log();
    let pos = |e: &str| {
        log.iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} not in {log:?}"))
    };
    // Call A strictly sequential: each job starts only after the previous one was answered.
    assert!(pos("end a1") < pos("start a2"), "{log:?}");
    assert!(pos("end a2") < pos("start a3"), "{log:?}");
    assert!(pos("end b1") < pos("start b2"), "{log:?}");
    // Call B did not wait behind call A's slow job.
    assert!(pos("end b2") < pos("end a1"), "{log:?}");
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn server_error_is_retried_with_backoff() {
    init();
    let server = Server::start(|_, nth| (if nth == 0 { 500 } else { 200 }, Duration::ZERO)).await;
    let store = Store::open_in_memory().await.unwrap();
    let worker = WebhookDelivery::spawn(store.clone(), config(&[150, 150]));
    let url = server.url("/retry");
    let started = Instant::now();
    enqueue(&store, None, &url, "r1").await;
    worker.kick();
    drained(&store).await;
    // The retry waited for its backoff (with the 60 s poll, only the retry timer woke it).
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(server.count("r1"), 2);
    for s in server.requests() {
        assert_signed(&s, &url);
    }
    assert_eq!(
        worker.stats(),
        webhook::DeliveryStats {
            delivered: 1,
            retries: 1,
            given_up: 0
        }
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn retries_stop_after_the_last_backoff() {
    init();
    let server = Server::start(|body, _| {
        let status = match body {
            "busy" => 429,
            "slow" => 408,
            _ => 503,
        };
        (status, Duration::ZERO)
    })
    .await;
    let store = Store::open_in_memory().await.unwrap();
    let worker = WebhookDelivery::spawn(store.clone(), config(&[10, 20]));
    let url = server.url("/down");
    for body in ["down", "busy", "slow"] {
        enqueue(&store, Some(Uuid::new_v4()), &url, body).await;
    }
    worker.kick();
    drained(&store).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // backoff.len() + 1 attempts each, then given up.
    for body in ["down", "busy", "slow"] {
        assert_eq!(server.count(body), 3, "{body}");
    }
    assert!(store.due_webhooks(i64::MAX, 10).await.unwrap().is_empty());
    let stats = worker.stats();
    assert_eq!((stats.retries, stats.given_up, stats.delivered), (6, 3, 0));
    worker.shutdown().await;
}

#[tokio::test]
async fn client_error_gives_up_at_once_and_the_call_moves_on() {
    init();
    let server =
        Server::start(|body, _| (if body == "first" { 404 } else { 200 }, Duration::ZERO)).await;
    let store = Store::open_in_memory().await.unwrap();
    let worker = WebhookDelivery::spawn(store.clone(), config(&[10, 10]));
    let call = Some(Uuid::new_v4());
    let url = server.url("/gone");
    enqueue(&store, call, &url, "first").await;
    enqueue(&store, call, &url, "second").await;
    worker.kick();
    drained(&store).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.count("first"), 1);
    assert_eq!(server.count("second"), 1);
    let log = server.log();
    assert_eq!(
        log,
        ["start first", "end first", "start second", "end second"]
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn url_credentials_become_basic_auth() {
    init();
    let server = Server::start(ok()).await;
    let store = Store::open_in_memory().await.unwrap();
    let worker = WebhookDelivery::spawn(store.clone(), config(&[10]));
    let with_creds = format!("http://us%40er:p%3Ass@{}/auth/hook?q=1", server.addr);
    enqueue(&store, Some(Uuid::new_v4()), &with_creds, r#"{"a":1}"#).await;
    worker.kick();
    drained(&store).await;

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    let expected = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
    assert_eq!(header(s, "authorization"), format!("Basic {expected}"));
    assert_eq!(s.uri, "/auth/hook?q=1");
    // Signed over the URL without credentials, as sent.
    assert_signed(s, &server.url("/auth/hook?q=1"));
    worker.shutdown().await;
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retried() {
    init();
    let server = Server::start(|_, nth| {
        let delay = if nth == 0 { 5_000 } else { 0 };
        (200, Duration::from_millis(delay))
    })
    .await;
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let store = Store::open_in_memory().await.unwrap();
    let mut cfg = config(&[10, 10]);
    // Long enough that the second, prompt answer never times out on a loaded machine.
    cfg.timeout = Duration::from_millis(1_500);
    let worker = WebhookDelivery::spawn(store.clone(), cfg);
    enqueue(&store, Some(Uuid::new_v4()), &server.url("/slow"), "slow").await;
    enqueue(
        &store,
        Some(Uuid::new_v4()),
        &format!("http://{closed}/nobody"),
        "refused",
    )
    .await;
    enqueue(&store, None, "not a url", "invalid").await;
    worker.kick();
    drained(&store).await;
    // The slow job timed out once, then went through.
    assert_eq!(server.count("slow"), 2);
    worker.shutdown().await;
}

#[tokio::test]
async fn pending_jobs_survive_a_restart() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dialtone.db");
    // The first request for "one" hangs; everything else succeeds.
    let server = Server::start(|body, nth| {
        let delay = if body == "one" && nth == 0 {
            3_600_000
        } else {
            0
        };
        (200, Duration::from_millis(delay))
    })
    .await;
    let call = Some(Uuid::new_v4());
    let url = server.url("/durable");
    {
        let store = Store::open(&path).await.unwrap();
        let worker = WebhookDelivery::spawn(store.clone(), config(&[10]));
        enqueue(&store, call, &url, "one").await;
        enqueue(&store, call, &url, "two").await;
        worker.kick();
        until("the first request", || server.count("one") == 1).await;
        // Shut down with "one" in flight: it stays pending.
        tokio::time::timeout(Duration::from_secs(5), worker.shutdown())
            .await
            .expect("shutdown does not wait for the hanging request");
        assert_eq!(store.pending_webhooks().await.unwrap(), 2);
        // Queued while no worker runs.
        enqueue(&store, call, &url, "three").await;
    }
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.pending_webhooks().await.unwrap(), 3);
    let worker: DeliveryHandle = WebhookDelivery::spawn(store.clone(), config(&[10]));
    drained(&store).await;
    worker.shutdown().await;
    assert_eq!(server.count("one"), 2, "resent after the restart");
    assert_eq!(server.count("two"), 1);
    assert_eq!(server.count("three"), 1);
    let log = server.log();
    let after: Vec<_> = log.iter().filter(|l| l.starts_with("end")).collect();
    assert_eq!(after, ["end one", "end two", "end three"]);
}

#[tokio::test]
async fn shutdown_twice_and_kick_after_shutdown_are_harmless() {
    init();
    let store = Store::open_in_memory().await.unwrap();
    let worker = WebhookDelivery::spawn(store.clone(), config(&[10]));
    let other = worker.clone();
    worker.shutdown().await;
    other.shutdown().await;
    other.kick();
}

#[tokio::test]
async fn concurrency_is_bounded() {
    init();
    let server = Server::start(|_, _| (200, Duration::from_millis(80))).await;
    let store = Store::open_in_memory().await.unwrap();
    let url = server.url("/bounded");
    for i in 0..6 {
        enqueue(&store, Some(Uuid::new_v4()), &url, &format!("c{i}")).await;
    }
    let mut cfg = config(&[10]);
    cfg.concurrency = 2;
    let worker = WebhookDelivery::spawn(store.clone(), cfg);
    drained(&store).await;
    worker.shutdown().await;
    let (mut open, mut max) = (0i32, 0i32);
    for line in server.log() {
        open += if line.starts_with("start") { 1 } else { -1 };
        max = max.max(open);
    }
    assert_eq!(max, 2, "{:?}", server.log());
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn kicks_wake_an_idle_worker() {
    init();
    let server = Server::start(ok()).await;
    let store = Store::open_in_memory().await.unwrap();
    let worker = WebhookDelivery::spawn(store.clone(), config(&[10]));
    // Let the worker go idle on its 60 s poll first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..3 {
        enqueue(&store, None, &server.url("/kick"), &format!("k{i}")).await;
        worker.kick();
        drained(&store).await;
    }
    assert_eq!(server.requests().len(), 3);
    worker.shutdown().await;
}

#[tokio::test]
async fn a_hanging_receiver_delays_no_other_destination() {
    init();
    // A receiver that accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_addr = hang.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let healthy = Server::start(ok()).await;
    let store = Store::open_in_memory().await.unwrap();
    let mut cfg = config(&[10_000]);
    cfg.timeout = Duration::from_secs(30);
    let worker = WebhookDelivery::spawn(store.clone(), cfg);
    // Forty webhooks of forty calls to the hanging receiver first, then ten to the healthy one.
    for i in 0..40 {
        enqueue(
            &store,
            Some(Uuid::new_v4()),
            &format!("http://{hang_addr}/h{i}"),
            "stuck",
        )
        .await;
    }
    worker.kick();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    for i in 0..10 {
        enqueue(
            &store,
            Some(Uuid::new_v4()),
            &healthy.url("/ok"),
            &format!("ok{i}"),
        )
        .await;
        worker.kick();
    }
    until("the healthy receiver's webhooks", || {
        (0..10).all(|i| healthy.count(&format!("ok{i}")) == 1)
    })
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // The hanging destination holds at most its own slots (the healthy rows are marked
    // delivered just after their receiver got them).
    until_async(|| async { store.pending_webhooks().await.unwrap() == 40 }).await;
    worker.shutdown().await;
}

#[test]
fn retry_policy_doubles_after_the_list_up_to_the_cap_and_age() {
    let backoff = [Duration::from_secs(1), Duration::from_secs(4)];
    // The default: the list alone decides (three attempts).
    let p = RetryPolicy::default();
    assert_eq!(p.next_delay(&backoff, 1, 0), Some(Duration::from_secs(1)));
    assert_eq!(p.next_delay(&backoff, 2, 0), Some(Duration::from_secs(4)));
    assert_eq!(p.next_delay(&backoff, 3, 0), None);
    // Hours of retries: doubling to the cap, bounded by attempts and age.
    let p = RetryPolicy {
        max_attempts: 40,
        max_age: Duration::from_secs(24 * 3600),
        max_delay: Duration::from_secs(3600),
    };
    let mut age = 0i64;
    let mut delays = Vec::new();
    let mut attempts = 1;
    while let Some(d) = p.next_delay(&backoff, attempts, age) {
        delays.push(d.as_secs());
        age += d.as_millis() as i64;
        attempts += 1;
    }
    assert_eq!(&delays[..6], [1, 4, 8, 16, 32, 64]);
    assert!(delays.iter().all(|&d| d <= 3600));
    assert!(age > 20 * 3600 * 1000 && age <= 24 * 3600 * 1000, "{age}");
    assert!(attempts <= 40);
    let p = RetryPolicy {
        max_attempts: 5,
        ..p
    };
    assert_eq!(p.next_delay(&backoff, 5, 0), None);
}

#[tokio::test]
async fn retention_removes_old_finished_rows_and_failures_are_listed() {
    init();
    let server = Server::start(|body, _| {
        if body == "bad" {
            (404, Duration::ZERO)
        } else {
            (200, Duration::ZERO)
        }
    })
    .await;
    let store = Store::open_in_memory().await.unwrap();
    // Failures are listed per project: the project of the webhook's call.
    let (project, call) = project_call(&store).await;
    let worker = WebhookDelivery::spawn(store.clone(), config(&[]));
    enqueue(&store, Some(call), &server.url("/a"), "good").await;
    let bad = enqueue(&store, Some(call), &server.url("/b"), "bad").await;
    worker.kick();
    drained(&store).await;
    let failed = store.given_up_webhooks(project, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, bad);
    assert_eq!(failed[0].last_error, "HTTP 404");
    assert!(store
        .given_up_webhooks(Uuid::new_v4(), 10)
        .await
        .unwrap()
        .is_empty());
    worker.shutdown().await;
    // Kept while young; gone once older than the retention.
    assert_eq!(store.purge_webhooks(0, 0).await.unwrap(), 0);
    let later = i64::MAX;
    assert_eq!(store.purge_webhooks(later, i64::MIN).await.unwrap(), 1);
    assert_eq!(store.given_up_webhooks(project, 10).await.unwrap().len(), 1);
    assert_eq!(store.purge_webhooks(later, later).await.unwrap(), 1);
    assert!(store
        .given_up_webhooks(project, 10)
        .await
        .unwrap()
        .is_empty());
    // The worker applies a configured retention by itself.
    let mut cfg = config(&[]);
    cfg.retention = Retention {
        delivered: Duration::from_millis(1),
        given_up: Duration::from_millis(1),
    };
    enqueue(&store, Some(call), &server.url("/b"), "bad").await;
    let worker = WebhookDelivery::spawn(store.clone(), cfg.clone());
    worker.kick();
    drained(&store).await;
    worker.shutdown().await;
    assert_eq!(store.given_up_webhooks(project, 10).await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let worker = WebhookDelivery::spawn(store.clone(), cfg);
    until_async(|| async {
        store
            .given_up_webhooks(project, 10)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    worker.shutdown().await;
}

/// A call of a new project, for webhooks listed per project.
async fn project_call(store: &Store) -> (Uuid, Uuid) {
    let (project, call) = (Uuid::new_v4(), Uuid::new_v4());
    store
        .insert_call(store::CallRecord {
            id: call,
            project_id: project,
            status_events: "[]".into(),
            dial_request: "{}".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    (project, call)
}

async fn until_async<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn origins() {
    use webhook::origin;
    assert_eq!(origin("http://a.example:8080/x?y"), "http://a.example:8080");
    assert_eq!(origin("https://u:p@a.example?q"), "https://u:p@a.example");
    assert_eq!(origin("https://a.example"), "https://a.example");
    assert_eq!(origin("nonsense"), "nonsense");
}

#[tokio::test]
async fn a_refused_destination_is_given_up_at_once_and_gets_nothing() {
    init();
    let server = Server::start(ok()).await;
    let store = Store::open_in_memory().await.unwrap();
    let mut cfg = config(&[10, 10]);
    cfg.egress = Arc::new(
        egress::EgressPolicy::parse("public-only", [] as [&str; 0], [] as [&str; 0]).unwrap(),
    );
    let worker = WebhookDelivery::spawn(store.clone(), cfg);
    let (project, call) = project_call(&store).await;
    // A literal loopback address, and a name that resolves to one.
    let literal = enqueue(&store, Some(call), &server.url("/hook"), "literal").await;
    let by_name = format!("http://localhost:{}/hook", server.addr.port());
    let named = enqueue(&store, Some(call), &by_name, "named").await;
    worker.kick();
    drained(&store).await;
    worker.shutdown().await;
    assert!(server.requests().is_empty());
    let failed = store.given_up_webhooks(project, 10).await.unwrap();
    assert_eq!(failed.len(), 2);
    for f in &failed {
        assert!(f.id == literal || f.id == named);
        assert!(
            f.last_error.contains("refused in public-only mode"),
            "{}",
            f.last_error
        );
    }
}
