//! The node's operator metrics (README "Operator endpoints"): lock-free counters, gauges and
//! fixed-bucket histograms, a few labelled families, and their Prometheus text exposition
//! (format 0.0.4). No global registry: one [`Metrics`] per node, shared by `Arc`, so several
//! nodes in one process (tests) keep their own numbers.
//!
//! Values that live elsewhere (calls by state, webhook queue depth, delivery counters) are
//! read at scrape time and handed to [`Metrics::render`] in a [`Snapshot`].

mod prom;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use prom::Text;

/// A monotonic count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Observations in seconds, counted into fixed cumulative buckets (upper bounds, seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); one more than `bounds` for `+Inf`.
    buckets: Vec<AtomicU64>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe_secs(&self, secs: f64) {
        let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((secs * 1e6).round() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe(&self, d: std::time::Duration) {
        self.observe_secs(d.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// (upper bound, cumulative count) for each bucket, `+Inf` last; sum in seconds; count.
    fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            acc += b.load(Ordering::Relaxed);
            out.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), acc));
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (out, sum, acc)
    }
}

/// A member's label names and values.
type Labels = Vec<(&'static str, String)>;

/// One metric per value of its labels, created on first use.
#[derive(Debug)]
pub struct Family<T> {
    labels: &'static [&'static str],
    make: fn() -> T,
    members: Mutex<BTreeMap<Vec<String>, Arc<T>>>,
}

impl<T> Family<T> {
    pub fn new(labels: &'static [&'static str], make: fn() -> T) -> Family<T> {
        Family {
            labels,
            make,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// The member for these label values (missing ones are empty, extra ones ignored).
    pub fn with(&self, values: &[&str]) -> Arc<T> {
        let key: Vec<String> = (0..self.labels.len())
            .map(|i| values.get(i).copied().unwrap_or("").to_owned())
            .collect();
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members
            .entry(key)
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    fn each(&self) -> Vec<(Labels, Arc<T>)> {
        let members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members
            .iter()
            .map(|(k, v)| {
                let labels = self.labels.iter().copied().zip(k.iter().cloned()).collect();
                (labels, v.clone())
            })
            .collect()
    }
}

/// Latency buckets (seconds) for API requests.
pub const API_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Dial → answer buckets (seconds).
pub const ANSWER_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];
/// Media tick lateness buckets (seconds): 100 µs to 20 ms (one tick) and beyond.
pub const TICK_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
];

/// Everything a node counts itself. Cheap to share (`Arc<Metrics>`).
#[derive(Debug)]
pub struct Metrics {
    /// Calls accepted, by direction (`outbound`, `inbound`, `script`, `transfer`).
    pub call_setups: Family<Counter>,
    /// Calls refused before they started, by reason (`max_calls`, `no_rtp_port`, `draining`).
    pub calls_refused: Family<Counter>,
    /// Calls ended, by end reason.
    pub calls_ended: Family<Counter>,
    /// Outbound calls and transfer legs: from the call's creation (the dial) to its answer.
    pub dial_answer: Histogram,
    /// API requests by method, route and status.
    pub api_requests: Family<Histogram>,
    /// How late each media tick started against its 20 ms schedule.
    pub media_tick_lateness: Histogram,
    /// RTP packets, by direction (`in`, `out`).
    pub rtp_packets: Family<Counter>,
    /// RTP packets we could not send (socket buffer full) or received and lost.
    pub rtp_dropped: Family<Counter>,
    /// Datagrams received on an RTP port that were not the call's valid RTP.
    pub rtp_rejected: Counter,
    /// Recordings open now.
    pub recordings_active: Gauge,
    /// Faxes whose terminal runs on a call now.
    pub faxes_active: Gauge,
    /// Faxes ended, by direction (`send`, `receive`), result (`success`, `failed`) and
    /// transport (`audio`: G.711, `t38`).
    pub faxes: Family<Counter>,
    /// Errors by kind (`api_5xx`, `call_error`, `invite_failed`, `store_write`,
    /// `webhook_enqueue`).
    pub errors: Family<Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            call_setups: Family::new(&["direction"], Counter::default),
            calls_refused: Family::new(&["reason"], Counter::default),
            calls_ended: Family::new(&["reason"], Counter::default),
            dial_answer: Histogram::new(ANSWER_BUCKETS),
            api_requests: Family::new(&["method", "route", "status"], || {
                Histogram::new(API_BUCKETS)
            }),
            media_tick_lateness: Histogram::new(TICK_BUCKETS),
            rtp_packets: Family::new(&["direction"], Counter::default),
            rtp_dropped: Family::new(&["direction"], Counter::default),
            rtp_rejected: Counter::default(),
            recordings_active: Gauge::default(),
            faxes_active: Gauge::default(),
            faxes: Family::new(&["direction", "result", "transport"], Counter::default),
            errors: Family::new(&["kind"], Counter::default),
        }
    }
}

/// Values read elsewhere at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Live calls by status (`queued`, `ringing`, `answered`, …), from the store.
    pub calls_by_state: Vec<(String, u64)>,
    /// Calls the node holds now (its actors).
    pub calls_live: u64,
    pub max_calls: u64,
    /// Webhooks neither delivered nor given up (None: the store could not say).
    pub webhook_queue_depth: Option<u64>,
    pub webhooks_delivered: u64,
    pub webhook_retries: u64,
    pub webhooks_given_up: u64,
    pub rtp_ports_free: u64,
    pub draining: bool,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The Prometheus text exposition of these metrics and the scrape-time `snap`.
    pub fn render(&self, snap: &Snapshot) -> String {
        let mut t = Text::default();
        t.header("dialtone_calls", "gauge", "Live calls by status.");
        for (state, n) in &snap.calls_by_state {
            t.sample("dialtone_calls", &[("state", state.as_str())], *n as f64);
        }
        t.gauge(
            "dialtone_calls_live",
            "Calls the node holds now.",
            snap.calls_live as f64,
        );
        t.gauge(
            "dialtone_max_calls",
            "The configured cap on concurrent calls.",
            snap.max_calls as f64,
        );
        t.gauge(
            "dialtone_draining",
            "1 while the node drains for shutdown (new calls refused).",
            if snap.draining { 1.0 } else { 0.0 },
        );
        t.gauge(
            "dialtone_rtp_ports_free",
            "RTP ports of the configured range not in use.",
            snap.rtp_ports_free as f64,
        );
        t.counter_family(
            "dialtone_call_setups_total",
            "Calls accepted, by direction (rate() gives setups per second).",
            &self.call_setups,
        );
        t.counter_family(
            "dialtone_calls_refused_total",
            "Calls refused before they started, by reason.",
            &self.calls_refused,
        );
        t.counter_family(
            "dialtone_calls_ended_total",
            "Calls ended, by end reason.",
            &self.calls_ended,
        );
        t.histogram(
            "dialtone_dial_answer_seconds",
            "Outbound calls and transfer legs: from the dial (the call created) to the answer.",
            &[],
            &self.dial_answer,
        );
        t.histogram_family(
            "dialtone_api_request_duration_seconds",
            "HTTP API requests by method, route and status.",
            &self.api_requests,
        );
        t.histogram(
            "dialtone_media_tick_lateness_seconds",
            "How late each media tick started against its 20 ms schedule.",
            &[],
            &self.media_tick_lateness,
        );
        t.counter_family(
            "dialtone_rtp_packets_total",
            "RTP packets received (in) and sent (out).",
            &self.rtp_packets,
        );
        t.counter_family(
            "dialtone_rtp_packets_dropped_total",
            "RTP packets not sent (out: socket buffer full) or lost on the way in (in).",
            &self.rtp_dropped,
        );
        t.counter(
            "dialtone_rtp_packets_rejected_total",
            "Datagrams on an RTP port that were not the call's valid RTP.",
            self.rtp_rejected.get(),
        );
        t.gauge(
            "dialtone_recordings_active",
            "Recordings open now.",
            self.recordings_active.get() as f64,
        );
        t.gauge(
            "dialtone_faxes_active",
            "Faxes running on calls now.",
            self.faxes_active.get() as f64,
        );
        t.counter_family(
            "dialtone_faxes_total",
            "Faxes ended, by direction and result.",
            &self.faxes,
        );
        if let Some(depth) = snap.webhook_queue_depth {
            t.gauge(
                "dialtone_webhook_queue_depth",
                "Webhooks in the outbox neither delivered nor given up.",
                depth as f64,
            );
        }
        t.counter(
            "dialtone_webhooks_delivered_total",
            "Webhooks delivered.",
            snap.webhooks_delivered,
        );
        t.counter(
            "dialtone_webhook_retries_total",
            "Webhook attempts that failed and were rescheduled.",
            snap.webhook_retries,
        );
        t.counter(
            "dialtone_webhooks_given_up_total",
            "Webhooks delivery gave up on.",
            snap.webhooks_given_up,
        );
        t.counter_family("dialtone_errors_total", "Errors by kind.", &self.errors);
        t.finish()
    }
}

#[cfg(test)]
mod tests;
