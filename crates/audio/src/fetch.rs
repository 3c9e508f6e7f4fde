//! Fetching audio by URL with a small validator-aware cache and single-flight per key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::{decode, resample, AudioError, Pcm, MAX_RATE, MIN_RATE};

/// How long a response with neither validators nor `Cache-Control: max-age` stays cached.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Upper bound on a `max-age` we honour.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest URL accepted.
const MAX_URL_LEN: usize = 8 * 1024;
/// Redirects followed.
const MAX_REDIRECTS: usize = 5;
/// Total PCM the cache keeps, in samples (256 MiB of i16), whatever `cache_entries` says;
/// least recently used entries go first when it is exceeded.
pub const CACHE_MAX_SAMPLES: u64 = 128 * 1024 * 1024;

/// Limits and identity for [`AudioFetcher`].
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Whole-request time limit: connect, headers and body.
    pub timeout: Duration,
    /// Largest body accepted, in bytes; bigger bodies are aborted while streaming.
    pub max_bytes: u64,
    /// Longest audio accepted, in milliseconds of decoded audio.
    pub max_ms: u64,
    /// Number of (URL, rate) keys kept; least recently used first out. 0 disables caching.
    pub cache_entries: usize,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
    /// Where audio may be fetched from (docs/security.md, "Egress").
    pub egress: Arc<egress::EgressPolicy>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            timeout: Duration::from_secs(10),
            max_bytes: 20 * 1024 * 1024,
            max_ms: 30 * 60 * 1000,
            cache_entries: 256,
            user_agent: concat!("dialtone-audio/", env!("CARGO_PKG_VERSION")).to_string(),
            egress: Arc::default(),
        }
    }
}

/// Counters that show what the cache did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Served from a fresh entry without touching the network.
    pub hits: u64,
    /// Went to the network and did not end in a 304 (downloads, and failures).
    pub misses: u64,
    /// Revalidated with a conditional request that got 304; the cached PCM was reused.
    pub revalidated: u64,
    /// (URL, rate) keys currently tracked (at most `cache_entries`).
    pub keys: usize,
}

/// Fetches, decodes and resamples audio by URL, caching by (URL, target rate).
///
/// Cache rules, per response:
/// - `Cache-Control: no-store` ⇒ not cached.
/// - `Cache-Control: max-age=N` ⇒ used without revalidation for N s (capped at [`MAX_TTL`]);
///   `no-cache` counts as `max-age=0`.
/// - otherwise, with `ETag` / `Last-Modified` ⇒ revalidated on every use with `If-None-Match` /
///   `If-Modified-Since`; a 304 reuses the cached PCM without re-decoding.
/// - otherwise ⇒ cached for [`DEFAULT_TTL`] (60 s), then fetched again.
///
/// A stale entry with validators is always revalidated rather than re-downloaded. Concurrent
/// fetches of the same key share one request (the later callers wait and then hit the cache).
/// Only `http` and `https`; userinfo in the URL is sent as Basic auth and never logged. Errors are
/// not cached.
///
/// Cheap to clone; clones share the cache and the HTTP client.
#[derive(Clone)]
pub struct AudioFetcher {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: FetchConfig,
    client: OnceLock<egress::EgressClient>,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    tick: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    revalidated: AtomicU64,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The normalised URL including any userinfo, so different credentials never share.
    url: String,
    rate: u32,
}

struct Slot {
    entry: tokio::sync::Mutex<Option<Entry>>,
    last_used: AtomicU64,
    /// Samples held by `entry` (kept outside the async lock for the budget scan).
    samples: AtomicU64,
}

struct Entry {
    pcm: Pcm,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    /// `max-age` (or `no-cache` = 0) from the last response that carried one.
    max_age: Option<Duration>,
    fresh_until: Instant,
}

impl Entry {
    fn has_validators(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

/// What a response's headers say about caching.
#[derive(Debug, PartialEq, Eq)]
struct CacheControl {
    no_store: bool,
    max_age: Option<Duration>,
}

impl AudioFetcher {
    /// A fetcher with its own HTTP client (built on first use, so a missing TLS provider is an
    /// [`AudioError::Http`] from `fetch`, not a panic here).
    pub fn new(cfg: FetchConfig) -> Self {
        AudioFetcher {
            inner: Arc::new(Inner {
                cfg,
                client: OnceLock::new(),
                slots: Mutex::new(HashMap::new()),
                tick: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                revalidated: AtomicU64::new(0),
            }),
        }
    }

    /// A fetcher that uses the given client (which carries its own egress policy). The
    /// per-request timeout and `User-Agent` of `cfg` are still applied.
    pub fn with_client(cfg: FetchConfig, client: egress::EgressClient) -> Self {
        let f = Self::new(cfg);
        let _ = f.inner.client.set(client);
        f
    }

    /// The configuration in use.
    pub fn config(&self) -> &FetchConfig {
        &self.inner.cfg
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        let i = &self.inner;
        CacheStats {
            hits: i.hits.load(Ordering::Relaxed),
            misses: i.misses.load(Ordering::Relaxed),
            revalidated: i.revalidated.load(Ordering::Relaxed),
            keys: lock(&i.slots).len(),
        }
    }

    /// Fetch `url` (http/https), decode it and resample it to `rate`, through the cache.
    pub async fn fetch(&self, url: &str, rate: u32) -> Result<Pcm, AudioError> {
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(AudioError::Unsupported(format!("sample rate {rate} Hz")));
        }
        let target = Target::parse(url)?;
        let key = Key {
            url: target.key.clone(),
            rate,
        };
        let slot = self.slot(&key);
        let mut entry = slot.entry.lock().await;

        if let Some(e) = entry.as_ref() {
            if Instant::now() < e.fresh_until {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(url = %target.url, rate, "audio cache hit");
                return Ok(e.pcm.clone());
            }
        }

        let result = self.fetch_network(&target, rate, &mut entry).await;
        let held = entry.as_ref().map_or(0, |e| e.pcm.samples.len() as u64);
        slot.samples.store(held, Ordering::Relaxed);
        drop(entry);
        self.enforce_budget(&key);
        match &result {
            Ok(Outcome::Revalidated(_)) => {
                self.inner.revalidated.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Outcome::Downloaded(_)) | Err(_) => {
                self.inner.misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        match result {
            Ok(Outcome::Revalidated(pcm)) | Ok(Outcome::Downloaded(pcm)) => Ok(pcm),
            Err(e) => {
                tracing::debug!(url = %target.url, error = %e, "audio fetch failed");
                Err(e)
            }
        }
    }

    async fn fetch_network(
        &self,
        target: &Target,
        rate: u32,
        entry: &mut Option<Entry>,
    ) -> Result<Outcome, AudioError> {
        let cfg = &self.inner.cfg;
        let network = async {
            let client = self.client()?;
            let mut req = client
                .get(target.url.clone())
                .map_err(|e| AudioError::Refused(e.to_string()))?
                .timeout(cfg.timeout)
                .header(header::USER_AGENT, cfg.user_agent.as_str());
            if let Some((user, pass)) = &target.auth {
                req = req.basic_auth(user, Some(pass));
            }
            let mut conditional = false;
            if let Some(e) = entry.as_ref() {
                if let Some(etag) = &e.etag {
                    req = req.header(header::IF_NONE_MATCH, etag.clone());
                    conditional = true;
                }
                if let Some(lm) = &e.last_modified {
                    req = req.header(header::IF_MODIFIED_SINCE, lm.clone());
                    conditional = true;
                }
            }
            let mut resp = req.send().await.map_err(http_error)?;
            let status = resp.status();
            if status == StatusCode::NOT_MODIFIED && conditional {
                return Ok(Err(resp.headers().clone()));
            }
            if !status.is_success() {
                return Err(AudioError::Status(status.as_u16()));
            }
            if let Some(len) = resp.content_length() {
                if len > cfg.max_bytes {
                    return Err(AudioError::TooLarge(len));
                }
            }
            let headers = resp.headers().clone();
            let initial = resp.content_length().unwrap_or(0).min(cfg.max_bytes);
            let mut body = BytesMut::with_capacity(initial.min(1 << 20) as usize);
            while let Some(chunk) = resp.chunk().await.map_err(http_error)? {
                let len = body.len() as u64 + chunk.len() as u64;
                if len > cfg.max_bytes {
                    // Dropping the response closes the connection: the rest is never read.
                    return Err(AudioError::TooLarge(len));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Ok((headers, body.freeze())))
        };
        // The client timeout covers the body too; this is a second, independent bound.
        let fetched =
            match tokio::time::timeout(cfg.timeout + Duration::from_millis(250), network).await {
                Ok(r) => r?,
                Err(_) => return Err(AudioError::Http("timed out".into())),
            };

        let (headers, body) = match fetched {
            Err(headers_304) => {
                if let Some(e) = entry.as_mut() {
                    if let Some(v) = headers_304.get(header::ETAG) {
                        e.etag = Some(v.clone());
                    }
                    if let Some(v) = headers_304.get(header::LAST_MODIFIED) {
                        e.last_modified = Some(v.clone());
                    }
                    let cc = cache_control(&headers_304);
                    if cc.max_age.is_some() {
                        e.max_age = cc.max_age;
                    }
                    let ttl = ttl(e.max_age, e.has_validators());
                    e.fresh_until = Instant::now() + ttl;
                    let pcm = e.pcm.clone();
                    if cc.no_store {
                        // This caller still gets the PCM it had; nothing is kept.
                        *entry = None;
                    }
                    tracing::debug!(url = %target.url, rate, "audio revalidated (304)");
                    return Ok(Outcome::Revalidated(pcm));
                }
                // Unreachable: a conditional request needs an entry. Treat as a bad status.
                return Err(AudioError::Status(304));
            }
            Ok(ok) => ok,
        };

        let hint = target
            .extension()
            .or_else(|| content_type_ext(&headers))
            .map(str::to_string);
        let max_ms = cfg.max_ms;
        let pcm = tokio::task::spawn_blocking(move || {
            let pcm = decode(&body, hint.as_deref(), max_ms)?;
            resample(&pcm, rate)
        })
        .await
        .map_err(|e| AudioError::Internal(format!("decode task: {e}")))??;
        tracing::debug!(
            url = %target.url,
            rate,
            ms = pcm.duration_ms(),
            "audio fetched and decoded"
        );

        let cc = cache_control(&headers);
        let etag = headers.get(header::ETAG).cloned();
        let last_modified = headers.get(header::LAST_MODIFIED).cloned();
        let has_validators = etag.is_some() || last_modified.is_some();
        let ttl = ttl(cc.max_age, has_validators);
        if cc.no_store || (ttl.is_zero() && !has_validators) {
            *entry = None;
        } else {
            *entry = Some(Entry {
                pcm: pcm.clone(),
                etag,
                last_modified,
                max_age: cc.max_age,
                fresh_until: Instant::now() + ttl,
            });
        }
        Ok(Outcome::Downloaded(pcm))
    }

    fn client(&self) -> Result<&egress::EgressClient, AudioError> {
        if let Some(c) = self.inner.client.get() {
            return Ok(c);
        }
        let cfg = &self.inner.cfg;
        let client = egress::EgressClient::new(
            cfg.egress.clone(),
            egress::ClientOptions {
                purpose: "audio",
                timeout: Some(cfg.timeout),
                connect_timeout: Some(cfg.timeout),
                user_agent: Some(cfg.user_agent.clone()),
                max_redirects: MAX_REDIRECTS,
            },
        )
        .map_err(|e| AudioError::Http(format!("building HTTP client: {}", chain(&e))))?;
        // If another task won the race, use its client.
        let _ = self.inner.client.set(client);
        self.inner
            .client
            .get()
            .ok_or_else(|| AudioError::Internal("HTTP client missing".into()))
    }

    /// The slot for `key`, created (and the least recently used one evicted) if needed.
    fn slot(&self, key: &Key) -> Arc<Slot> {
        let tick = self.inner.tick.fetch_add(1, Ordering::Relaxed);
        let cap = self.inner.cfg.cache_entries;
        let fresh = || {
            Arc::new(Slot {
                entry: tokio::sync::Mutex::new(None),
                last_used: AtomicU64::new(tick),
                samples: AtomicU64::new(0),
            })
        };
        if cap == 0 {
            return fresh();
        }
        let mut slots = lock(&self.inner.slots);
        if let Some(s) = slots.get(key) {
            s.last_used.store(tick, Ordering::Relaxed);
            return s.clone();
        }
        while slots.len() >= cap {
            let oldest = slots
                .iter()
                .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            match oldest {
                // A task still working on an evicted slot finishes; its result is not kept.
                Some(k) => {
                    slots.remove(&k);
                }
                None => break,
            }
        }
        let s = fresh();
        slots.insert(key.clone(), s.clone());
        s
    }
}

impl AudioFetcher {
    /// Evicts least recently used entries (never `keep`) while the cache holds more than
    /// [`CACHE_MAX_SAMPLES`].
    fn enforce_budget(&self, keep: &Key) {
        let mut slots = lock(&self.inner.slots);
        loop {
            let total: u64 = slots
                .values()
                .map(|s| s.samples.load(Ordering::Relaxed))
                .sum();
            if total <= CACHE_MAX_SAMPLES {
                return;
            }
            let victim = slots
                .iter()
                .filter(|(k, s)| *k != keep && s.samples.load(Ordering::Relaxed) > 0)
                .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    slots.remove(&k);
                }
                None => return,
            }
        }
    }
}

enum Outcome {
    Revalidated(Pcm),
    Downloaded(Pcm),
}

/// A parsed, checked request target.
struct Target {
    /// What is requested: no userinfo, no fragment. Safe to log.
    url: Url,
    auth: Option<(String, String)>,
    key: String,
}

impl Target {
    fn parse(raw: &str) -> Result<Target, AudioError> {
        let raw = raw.trim();
        if raw.len() > MAX_URL_LEN {
            return Err(AudioError::BadUrl(format!(
                "longer than {MAX_URL_LEN} bytes"
            )));
        }
        let mut url = Url::parse(raw).map_err(|e| AudioError::BadUrl(e.to_string()))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(AudioError::BadUrl(format!(
                    "scheme {other:?} (only http and https)"
                )))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(AudioError::BadUrl("no host".into()));
        }
        url.set_fragment(None);
        let key = url.as_str().to_string();
        let auth = if !url.username().is_empty() || url.password().is_some() {
            let user = percent_decode(url.username());
            let pass = url.password().map(percent_decode).unwrap_or_default();
            // Cannot fail for http(s) URLs with a host; ignore the unit error regardless.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some((user, pass))
        } else {
            None
        };
        Ok(Target { url, auth, key })
    }

    /// The extension of the last path segment, e.g. `wav`.
    fn extension(&self) -> Option<&str> {
        let last = self.url.path().rsplit('/').next()?;
        let (_, ext) = last.rsplit_once('.')?;
        (!ext.is_empty() && ext.len() <= 5 && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then_some(ext)
    }
}

fn content_type_ext(headers: &HeaderMap) -> Option<&'static str> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = ct.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg-3" => Some("mp3"),
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => Some("wav"),
        "audio/ogg" | "application/ogg" | "audio/vorbis" | "audio/x-vorbis+ogg" => Some("ogg"),
        _ => None,
    }
}

fn cache_control(headers: &HeaderMap) -> CacheControl {
    let mut cc = CacheControl {
        no_store: false,
        max_age: None,
    };
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim().to_string(), Some(a.trim().trim_matches('"'))),
                None => (directive.clone(), None),
            };
            match (name.as_str(), arg) {
                ("no-store", _) => cc.no_store = true,
                ("no-cache", _) => cc.max_age = Some(Duration::ZERO),
                ("max-age", Some(a)) if cc.max_age != Some(Duration::ZERO) => {
                    if let Ok(secs) = a.parse::<u64>() {
                        cc.max_age = Some(Duration::from_secs(secs).min(MAX_TTL));
                    }
                }
                _ => {}
            }
        }
    }
    cc
}

fn ttl(max_age: Option<Duration>, has_validators: bool) -> Duration {
    match max_age {
        Some(a) => a,
        None if has_validators => Duration::ZERO,
        None => DEFAULT_TTL,
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn http_error(e: reqwest::Error) -> AudioError {
    if let Some(refused) = egress::refusal(&e) {
        return AudioError::Refused(refused.to_string());
    }
    if e.is_timeout() {
        return AudioError::Http(format!("timed out: {}", chain(&e)));
    }
    AudioError::Http(chain(&e))
}

/// An error and its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let msg = src.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = src.source();
    }
    s
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn parses_cache_control() {
        assert_eq!(
            cache_control(&hm(&[("cache-control", "public, max-age=30")])),
            CacheControl {
                no_store: false,
                max_age: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(
            cache_control(&hm(&[("cache-control", "max-age=99999999999")])).max_age,
            Some(MAX_TTL)
        );
        assert_eq!(
            cache_control(&hm(&[("cache-control", "no-cache, max-age=30")])).max_age,
            Some(Duration::ZERO)
        );
        assert!(cache_control(&hm(&[("cache-control", "No-Store")])).no_store);
        assert_eq!(
            cache_control(&hm(&[("cache-control", "max-age=abc")])).max_age,
            None
        );
        assert_eq!(cache_control(&HeaderMap::new()).max_age, None);
    }

    #[test]
    fn ttl_rules() {
        assert_eq!(ttl(None, false), DEFAULT_TTL);
        assert_eq!(ttl(None, true), Duration::ZERO);
        assert_eq!(
            ttl(Some(Duration::from_secs(5)), true),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn url_rules() {
        assert!(matches!(
            Target::parse("ftp://example.com/a.wav"),
            Err(AudioError::BadUrl(_))
        ));
        assert!(matches!(
            Target::parse("file:///etc/passwd"),
            Err(AudioError::BadUrl(_))
        ));
        assert!(matches!(
            Target::parse("not a url"),
            Err(AudioError::BadUrl(_))
        ));
        assert!(matches!(Target::parse(""), Err(AudioError::BadUrl(_))));
        let long = format!("http://h/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(Target::parse(&long), Err(AudioError::BadUrl(_))));

        let t = Target::parse("https://us%65r:p%40ss@Example.com/x/Tone.WAV?q=1#frag").unwrap();
        assert_eq!(t.url.as_str(), "https://example.com/x/Tone.WAV?q=1");
        assert_eq!(t.auth, Some(("user".into(), "p@ss".into())));
        assert_eq!(t.extension(), Some("WAV"));
        assert!(t.key.contains("us%65r"));

        let t = Target::parse("http://example.com/play").unwrap();
        assert_eq!(t.auth, None);
        assert_eq!(t.extension(), None);
    }

    #[test]
    fn percent_decoding_is_total() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(percent_decode("x%41"), "xA");
    }

    #[test]
    fn content_type_hints() {
        assert_eq!(
            content_type_ext(&hm(&[("content-type", "audio/mpeg")])),
            Some("mp3")
        );
        assert_eq!(
            content_type_ext(&hm(&[("content-type", "Audio/X-WAV; charset=x")])),
            Some("wav")
        );
        assert_eq!(
            content_type_ext(&hm(&[("content-type", "text/html")])),
            None
        );
    }
}
