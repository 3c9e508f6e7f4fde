//! Signed webhook delivery from the durable outbox: HMAC-SHA1/SHA256 signatures, per-call
//! ordering, retries.
//!
//! A webhook is a row in the [`store`] outbox before it is an HTTP request. The worker started
//! by [`WebhookDelivery::spawn`] takes due jobs from the store, POSTs them signed, and records
//! the outcome: delivered (2xx), retried later with the configured backoff (5xx, 408, 429,
//! timeouts and connection errors), or given up (other 4xx, redirects, bad URLs, or the last
//! attempt failed). Jobs of different calls go out concurrently; jobs of one call strictly in
//! order, since the store only hands out a call's oldest pending job and the worker never has
//! two jobs of one call in flight. Delivery is at-least-once: a job whose outcome was not
//! recorded (shutdown, crash) is sent again by the next worker on the same store.
//!
//! [`events`] holds the JSON the server sends about a call: the event envelope,
//! `calling.call.state` (with `created_by` and `parent`), `calling.call.user_event`, and the
//! `call` object of a SWML fetch; the node fills in each call's [`events::CallIdentity`].

pub mod events;
mod sign;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use store::{Store, WebhookJob};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error, info, warn};

pub use sign::{sign, Signatures};

/// Header carrying the hex HMAC-SHA1 signature.
pub const SIGNATURE_HEADER: &str = "X-SignalWire-Signature";
/// Header carrying the hex HMAC-SHA256 signature.
pub const SHA256_SIGNATURE_HEADER: &str = "X-SignalWire-SHA256-Signature";

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The signing key for both signature headers.
    pub signing_key: Vec<u8>,
    /// Per-attempt limit for the whole request (connect, send, response head).
    pub timeout: Duration,
    /// Delays between attempts: a job gets `backoff.len() + 1` attempts.
    pub backoff: Vec<Duration>,
    pub user_agent: String,
    /// Safety poll: the worker looks at the outbox at least this often even without kicks.
    pub poll_interval: Duration,
    /// At most this many requests in flight (at least 1).
    pub concurrency: usize,
    /// At most this many requests in flight to one destination (the URL's scheme, host and
    /// port as written; at least 1), so that a receiver that hangs holds only its own slots
    /// and delays no other destination.
    pub per_destination: usize,
    /// When to stop retrying.
    pub retry: RetryPolicy,
    /// How long finished rows are kept.
    pub retention: Retention,
    /// Where webhooks may go (docs/security.md, "Egress"); a refused URL is given up at once.
    pub egress: Arc<egress::EgressPolicy>,
}

/// Retries: after `backoff` runs out, each delay is twice the previous one, at most
/// `max_delay`, until `max_attempts` attempts were made or the job is older than `max_age`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all; 0 means `backoff.len() + 1` (the list alone decides).
    pub max_attempts: u32,
    /// Give up once the next attempt would be later than this after the event; zero: no age
    /// limit.
    pub max_age: Duration,
    /// Cap of the doubled delays.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 0,
            max_age: Duration::ZERO,
            max_delay: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The delay before the attempt after `attempts` made ones, or `None` to give up.
    /// `age_ms` is how old the job is now.
    pub fn next_delay(&self, backoff: &[Duration], attempts: u32, age_ms: i64) -> Option<Duration> {
        let max_attempts = if self.max_attempts == 0 {
            u32::try_from(backoff.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1)
        } else {
            self.max_attempts
        };
        if attempts >= max_attempts {
            return None;
        }
        let n = attempts.saturating_sub(1) as usize;
        let delay = match backoff.get(n) {
            Some(d) => *d,
            None => {
                let last = backoff.last().copied().unwrap_or(Duration::from_secs(1));
                let doublings = u32::try_from(n + 1 - backoff.len())
                    .unwrap_or(u32::MAX)
                    .min(40);
                last.saturating_mul(1u32 << doublings.min(31))
                    .min(self.max_delay.max(last))
            }
        };
        if !self.max_age.is_zero() {
            let at = i128::from(age_ms) + delay.as_millis() as i128;
            if at > self.max_age.as_millis() as i128 {
                return None;
            }
        }
        Some(delay)
    }
}

/// How long finished outbox rows are kept; zero keeps them forever.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retention {
    pub delivered: Duration,
    pub given_up: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            signing_key: Vec::new(),
            timeout: Duration::from_secs(10),
            backoff: vec![Duration::from_secs(1), Duration::from_secs(4)],
            user_agent: concat!("dialtone/", env!("CARGO_PKG_VERSION")).to_owned(),
            poll_interval: Duration::from_secs(1),
            concurrency: 16,
            per_destination: 4,
            retry: RetryPolicy::default(),
            retention: Retention::default(),
            egress: Arc::default(),
        }
    }
}

/// What delivery has done since the worker started (the operator's `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub delivered: u64,
    /// Failed attempts that were rescheduled.
    pub retries: u64,
    pub given_up: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    retries: AtomicU64,
    given_up: AtomicU64,
}

/// Starts the delivery worker.
pub struct WebhookDelivery;

impl WebhookDelivery {
    /// Spawns the worker on the current tokio runtime (panics outside one, like
    /// `tokio::spawn`). It runs until [`DeliveryHandle::shutdown`] or until every handle is
    /// dropped.
    pub fn spawn(store: Store, cfg: DeliveryConfig) -> DeliveryHandle {
        let kick = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let mut worker = Worker::new(store, cfg, Arc::clone(&kick), stop_rx);
        worker.counters = Arc::clone(&counters);
        let task = tokio::spawn(worker.run());
        DeliveryHandle {
            inner: Arc::new(HandleInner {
                counters,
                kick,
                stop: stop_tx,
                task: Mutex::new(Some(task)),
            }),
        }
    }
}

/// Controls a running worker. Cheap to clone.
#[derive(Clone)]
pub struct DeliveryHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    counters: Arc<Counters>,
    kick: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for DeliveryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryHandle").finish_non_exhaustive()
    }
}

impl DeliveryHandle {
    /// A job was enqueued: look at the outbox now. Never blocks; kicks while the worker is
    /// busy are coalesced, none is lost.
    pub fn kick(&self) {
        self.inner.kick.notify_one();
    }

    /// Delivered, rescheduled and given-up counts since the worker started.
    pub fn stats(&self) -> DeliveryStats {
        let c = &self.inner.counters;
        DeliveryStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            given_up: c.given_up.load(Ordering::Relaxed),
        }
    }

    /// Stops the worker and waits for it to end. Attempts in flight are abandoned; their jobs
    /// stay pending in the outbox and are sent again by the next worker.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                if e.is_panic() {
                    error!(error = %e, "webhook delivery worker panicked");
                }
            }
        }
    }
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Delivered(StatusCode),
    /// Worth another attempt (5xx, 408, 429, timeout, connection error).
    Retry(String),
    /// Never worth another attempt.
    Permanent(String),
}

struct Worker {
    store: Store,
    cfg: Arc<DeliveryConfig>,
    kick: Arc<Notify>,
    stop: watch::Receiver<bool>,
    client: Option<egress::EgressClient>,
    tasks: JoinSet<()>,
    /// Job ids and their destinations in flight, by the task sending them.
    in_flight: HashMap<tokio::task::Id, (i64, String)>,
    /// Requests in flight per destination.
    per_origin: HashMap<String, usize>,
    /// When retention last ran (ms).
    purged_at_ms: i64,
    counters: Arc<Counters>,
}

impl Worker {
    fn new(
        store: Store,
        mut cfg: DeliveryConfig,
        kick: Arc<Notify>,
        stop: watch::Receiver<bool>,
    ) -> Worker {
        cfg.concurrency = cfg.concurrency.max(1);
        cfg.per_destination = cfg.per_destination.max(1);
        if cfg.poll_interval.is_zero() {
            cfg.poll_interval = Duration::from_millis(1);
        }
        Worker {
            store,
            cfg: Arc::new(cfg),
            kick,
            stop,
            client: None,
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            per_origin: HashMap::new(),
            purged_at_ms: 0,
            counters: Arc::default(),
        }
    }

    async fn run(mut self) {
        debug!("webhook delivery worker started");
        loop {
            if *self.stop.borrow() {
                break;
            }
            let wait = self.step().await;
            tokio::select! {
                biased;
                changed = self.stop.changed() => {
                    // A stop, or every handle dropped.
                    if changed.is_err() || *self.stop.borrow() {
                        break;
                    }
                }
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => {
                            error!(error = %e, "webhook delivery task failed");
                            e.id()
                        }
                    };
                    if let Some((_, origin)) = self.in_flight.remove(&id) {
                        if let Some(n) = self.per_origin.get_mut(&origin) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                self.per_origin.remove(&origin);
                            }
                        }
                    }
                }
                _ = self.kick.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Abandon what is in flight: those jobs are still pending in the outbox.
        self.tasks.shutdown().await;
        debug!("webhook delivery worker stopped");
    }

    /// Starts every due job there is room for; returns how long to sleep at most.
    async fn step(&mut self) -> Duration {
        let poll = self.cfg.poll_interval;
        let Some(client) = self.client() else {
            return poll;
        };
        self.retention().await;
        let room = self.cfg.concurrency.saturating_sub(self.tasks.len());
        if room > 0 {
            // In-flight jobs are still pending, so ask for enough to fill the room anyway;
            // destinations with no room left are not asked for at all.
            let full: Vec<String> = self
                .per_origin
                .iter()
                .filter(|(_, n)| **n >= self.cfg.per_destination)
                .map(|(o, _)| o.clone())
                .collect();
            let limit = room + self.in_flight.len() + self.cfg.per_destination * room;
            match self.store.due_webhooks_except(now_ms(), limit, full).await {
                Ok(jobs) => {
                    let busy: HashSet<i64> = self.in_flight.values().map(|(id, _)| *id).collect();
                    let mut started = 0;
                    for job in jobs.into_iter().filter(|j| !busy.contains(&j.id)) {
                        if started == room {
                            break;
                        }
                        let origin = origin(&job.url);
                        let n = self.per_origin.entry(origin.clone()).or_insert(0);
                        if *n >= self.cfg.per_destination {
                            continue;
                        }
                        *n += 1;
                        started += 1;
                        let job_id = job.id;
                        let task = self.tasks.spawn(deliver(
                            client.clone(),
                            Arc::clone(&self.cfg),
                            self.store.clone(),
                            job,
                            Arc::clone(&self.counters),
                        ));
                        self.in_flight.insert(task.id(), (job_id, origin));
                    }
                }
                Err(e) => {
                    error!(error = %e, "cannot read the webhook outbox");
                    return poll;
                }
            }
        }
        match self.store.next_webhook_due_at().await {
            Ok(Some(at)) => {
                let ahead = at.saturating_sub(now_ms());
                if ahead > 0 {
                    poll.min(Duration::from_millis(
                        u64::try_from(ahead).unwrap_or(u64::MAX),
                    ))
                } else {
                    // Due already: in flight, or waiting for room; a finished task wakes us.
                    poll
                }
            }
            Ok(None) => poll,
            Err(e) => {
                error!(error = %e, "cannot read the webhook outbox");
                poll
            }
        }
    }

    /// Applies the retention policy, at most once a minute.
    async fn retention(&mut self) {
        let r = &self.cfg.retention;
        if r.delivered.is_zero() && r.given_up.is_zero() {
            return;
        }
        let now = now_ms();
        if now.saturating_sub(self.purged_at_ms) < 60_000 {
            return;
        }
        self.purged_at_ms = now;
        let before = |keep: Duration| {
            if keep.is_zero() {
                i64::MIN
            } else {
                now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
            }
        };
        match self
            .store
            .purge_webhooks(before(r.delivered), before(r.given_up))
            .await
        {
            Ok(0) => {}
            Ok(n) => info!(rows = n, "webhook outbox retention: finished rows removed"),
            Err(e) => warn!(error = %e, "webhook outbox retention failed"),
        }
    }

    /// The HTTP client, built on first use and again after a failed build.
    fn client(&mut self) -> Option<egress::EgressClient> {
        if self.client.is_none() {
            match build_client(&self.cfg) {
                Ok(c) => self.client = Some(c),
                Err(e) => error!(error = %e, "cannot build the webhook HTTP client"),
            }
        }
        self.client.clone()
    }
}

fn build_client(cfg: &DeliveryConfig) -> Result<egress::EgressClient, reqwest::Error> {
    let user_agent = match HeaderValue::from_str(&cfg.user_agent) {
        Ok(_) => cfg.user_agent.clone(),
        Err(_) => {
            warn!(user_agent = %cfg.user_agent, "invalid webhook User-Agent; using the default");
            concat!("dialtone/", env!("CARGO_PKG_VERSION")).to_owned()
        }
    };
    // reqwest panics when no rustls provider is installed; the binary installs ring at start,
    // and a process that did not (a test, an embedder) gets ring here rather than a panic.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    egress::EgressClient::new(
        cfg.egress.clone(),
        egress::ClientOptions {
            purpose: "webhook",
            timeout: Some(cfg.timeout),
            connect_timeout: Some(cfg.timeout),
            user_agent: Some(user_agent),
            // The signature covers the URL we were given; a redirect would break it.
            max_redirects: 0,
        },
    )
}

/// One attempt at one job, and recording its outcome.
async fn deliver(
    client: egress::EgressClient,
    cfg: Arc<DeliveryConfig>,
    store: Store,
    job: WebhookJob,
    counters: Arc<Counters>,
) {
    let attempt = job.attempts.saturating_add(1);
    let call_id = job.call_id.map(|c| c.to_string()).unwrap_or_default();
    let outcome = attempt_once(&client, &cfg, &job).await;
    let now = now_ms();
    let recorded = match outcome {
        Outcome::Delivered(status) => {
            info!(
                job_id = job.id,
                call_id,
                status = status.as_u16(),
                attempt,
                "webhook delivered"
            );
            counters.delivered.fetch_add(1, Ordering::Relaxed);
            store
                .mark_webhook_delivered(job.id, now, status.as_u16())
                .await
        }
        Outcome::Permanent(why) => {
            warn!(job_id = job.id, call_id, attempt, error = %why, "webhook given up");
            counters.given_up.fetch_add(1, Ordering::Relaxed);
            store.give_up_webhook(job.id, attempt, &why).await
        }
        // `backoff[n]` is the delay after attempt n + 1; then doubling (RetryPolicy).
        Outcome::Retry(why) => {
            match cfg
                .retry
                .next_delay(&cfg.backoff, attempt, now.saturating_sub(job.created_at_ms))
            {
                Some(delay) => {
                    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                    warn!(job_id = job.id, call_id, attempt, error = %why, retry_in_ms = delay_ms,
                    "webhook attempt failed; will retry");
                    counters.retries.fetch_add(1, Ordering::Relaxed);
                    store
                        .reschedule_webhook(job.id, attempt, now.saturating_add(delay_ms), &why)
                        .await
                }
                None => {
                    warn!(job_id = job.id, call_id, attempt, error = %why,
                    "webhook attempt failed; no attempts left, given up");
                    counters.given_up.fetch_add(1, Ordering::Relaxed);
                    store.give_up_webhook(job.id, attempt, &why).await
                }
            }
        }
    };
    if let Err(e) = recorded {
        // The job stays pending and will be sent again; hold its call back a little so a
        // failing store does not turn into a tight resend loop.
        error!(job_id = job.id, call_id, error = %e, "cannot record the webhook outcome");
        tokio::time::sleep(cfg.poll_interval).await;
    }
}

async fn attempt_once(
    client: &egress::EgressClient,
    cfg: &DeliveryConfig,
    job: &WebhookJob,
) -> Outcome {
    let target = match Target::parse(&job.url) {
        Ok(t) => t,
        Err(why) => return Outcome::Permanent(why),
    };
    let sigs = sign(&cfg.signing_key, target.url.as_str(), &job.body);
    // A job without a body is a GET webhook: its event is in the URL's query
    // (events::get_url); every POSTed event has a JSON body.
    let request = if job.body.is_empty() {
        client.get(target.url)
    } else {
        client.post(target.url).map(|r| {
            r.header(CONTENT_TYPE, "application/json")
                .body(job.body.clone())
        })
    };
    let request = match request {
        Ok(r) => r,
        Err(refused) => return Outcome::Permanent(refused.to_string()),
    };
    let mut request = request
        .header(SIGNATURE_HEADER, sigs.sha1_hex)
        .header(SHA256_SIGNATURE_HEADER, sigs.sha256_hex);
    if let Some(auth) = target.authorization {
        request = request.header(AUTHORIZATION, auth);
    }
    match request.send().await {
        Ok(response) => classify(response.status()),
        Err(e) if e.is_builder() => Outcome::Permanent(format!("cannot build the request: {e}")),
        Err(e) if e.is_timeout() => Outcome::Retry(format!("timed out: {e}")),
        // Refused where the name resolved: as final as a refused URL.
        Err(e) if egress::refusal(&e).is_some() => {
            Outcome::Permanent(egress::refusal(&e).map_or_else(String::new, ToString::to_string))
        }
        Err(e) => Outcome::Retry(format!("request failed: {}", error_chain(&e))),
    }
}

fn classify(status: StatusCode) -> Outcome {
    let code = status.as_u16();
    match code {
        200..=299 => Outcome::Delivered(status),
        408 | 429 => Outcome::Retry(format!("HTTP {code}")),
        400..=499 => Outcome::Permanent(format!("HTTP {code}")),
        500..=599 => Outcome::Retry(format!("HTTP {code}")),
        _ => Outcome::Permanent(format!("HTTP {code} (not followed)")),
    }
}

/// A reqwest error with its causes, which carry the useful part ("connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A URL's destination for the per-destination limit: its text up to the end of the
/// authority (`https://hooks.example:8443`), credentials included as written. A URL that does
/// not look like one is its own destination.
pub fn origin(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            url[..i + 3 + end].to_owned()
        }
        None => url.to_owned(),
    }
}

/// Where a job goes: the URL without credentials, and the credentials as Basic auth.
#[derive(Debug)]
struct Target {
    url: Url,
    authorization: Option<String>,
}

impl Target {
    fn parse(raw: &str) -> Result<Target, String> {
        let mut url = Url::parse(raw).map_err(|e| format!("invalid webhook URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("unsupported webhook URL scheme {:?}", url.scheme()));
        }
        let authorization = if !url.username().is_empty() || url.password().is_some() {
            let mut credentials = percent_decode(url.username());
            credentials.push(b':');
            credentials.extend(percent_decode(url.password().unwrap_or("")));
            url.set_username("")
                .and_then(|()| url.set_password(None))
                .map_err(|()| "cannot remove the credentials from the webhook URL".to_owned())?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            Some(format!("Basic {encoded}"))
        } else {
            None
        };
        Ok(Target { url, authorization })
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%3Ac"), b"a@b:c");
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%zz%2f"), b"%zz/");
        assert_eq!(percent_decode("%C3%A9"), "é".as_bytes());
        assert_eq!(percent_decode(""), b"");
    }

    #[test]
    fn credentials_become_basic_auth() {
        let t = Target::parse("http://us%40er:p%3Ass@example.com:8080/hook?a=1").unwrap();
        assert_eq!(t.url.as_str(), "http://example.com:8080/hook?a=1");
        let expected = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(t.authorization, Some(format!("Basic {expected}")));

        let t = Target::parse("https://user@example.com/").unwrap();
        assert_eq!(t.url.as_str(), "https://example.com/");
        let expected = base64::engine::general_purpose::STANDARD.encode("user:");
        assert_eq!(t.authorization, Some(format!("Basic {expected}")));

        let t = Target::parse("https://example.com/x").unwrap();
        assert_eq!(t.authorization, None);
    }

    #[test]
    fn bad_targets_are_permanent() {
        assert!(Target::parse("not a url").is_err());
        assert!(Target::parse("ftp://example.com/").is_err());
        assert!(Target::parse("mailto:a@b").is_err());
    }

    #[test]
    fn status_classes() {
        let c = |n| classify(StatusCode::from_u16(n).unwrap());
        assert!(matches!(c(200), Outcome::Delivered(_)));
        assert!(matches!(c(204), Outcome::Delivered(_)));
        assert!(matches!(c(500), Outcome::Retry(_)));
        assert!(matches!(c(503), Outcome::Retry(_)));
        assert!(matches!(c(408), Outcome::Retry(_)));
        assert!(matches!(c(429), Outcome::Retry(_)));
        assert!(matches!(c(400), Outcome::Permanent(_)));
        assert!(matches!(c(404), Outcome::Permanent(_)));
        assert!(matches!(c(302), Outcome::Permanent(_)));
    }
}
