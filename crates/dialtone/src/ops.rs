//! The operator's probes and metrics (README "Operator endpoints"), unauthenticated and on the
//! API listener only: `GET /health` (the process answers), `GET /ready` (store, SIP and media
//! shards up, not draining: 200, else 503 naming what is not), `GET /metrics` (Prometheus text),
//! and the middleware that times every API request.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// What the probes read: the node and the operator's own store connection.
#[derive(Clone)]
pub struct Probes {
    pub node: node::Node,
    pub store: store::Store,
}

/// A store check slower than this counts as down.
const STORE_CHECK: Duration = Duration::from_secs(2);

pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn ready(State(p): State<Probes>) -> Response {
    // The node's own connection (the one calls are written through) and the operator's.
    let store_ok = p.node.store_up(STORE_CHECK).await
        && matches!(
            tokio::time::timeout(STORE_CHECK, p.store.schema_version()).await,
            Ok(Ok(_))
        );
    let (sip_ok, media_ok) = p.node.sip_and_media_up();
    let draining = p.node.is_draining();
    let ready = store_ok && sip_ok && media_ok && !draining;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "store": if store_ok { "up" } else { "down" },
            "sip": if sip_ok { "up" } else { "down" },
            "media": if media_ok { "up" } else { "down" },
            "draining": draining,
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(p): State<Probes>) -> Response {
    let node = &p.node;
    let calls_by_state = match p.store.live_calls_by_status().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count live calls");
            Vec::new()
        }
    };
    let webhook_queue_depth = p.store.pending_webhooks().await.ok().map(|n| n as u64);
    let wh = node.webhook_stats();
    let snap = metrics::Snapshot {
        calls_by_state,
        calls_live: node.live_calls() as u64,
        max_calls: node.max_calls() as u64,
        webhook_queue_depth,
        webhooks_delivered: wh.delivered,
        webhook_retries: wh.retries,
        webhooks_given_up: wh.given_up,
        rtp_ports_free: node.rtp_ports_free() as u64,
        draining: node.is_draining(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        node.metrics().render(&snap),
    )
        .into_response()
}

/// Times every request into `dialtone_api_request_duration_seconds` and counts 5xx answers as
/// errors. The route label is the route's pattern, never the raw path (ids would make a new
/// series per call).
pub async fn timed(
    State(m): State<std::sync::Arc<metrics::Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    // Known methods only: a client inventing methods must not invent series.
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let route = route_of(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    m.api_requests
        .with(&[method, route, status.as_str()])
        .observe(started.elapsed());
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        m.errors.with(&["api_5xx"]).inc();
    }
    response
}

fn route_of(path: &str) -> &'static str {
    match path {
        "/api/calling/calls" => "/api/calling/calls",
        "/health" => "/health",
        "/ready" => "/ready",
        "/metrics" => "/metrics",
        "/api/calling/webhooks/failed" => "/api/calling/webhooks/failed",
        "/api/openapi.json" => "/api/openapi.json",
        p if p.starts_with("/api/calling/calls/") => "/api/calling/calls/{id}",
        p if p.starts_with("/api/calling/recordings/") => "/api/calling/recordings/{file}",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn routes_are_patterns_not_paths() {
        assert_eq!(
            route_of("/api/calling/calls/6f1c8e9a-0000-4000-8000-000000000000"),
            "/api/calling/calls/{id}"
        );
        assert_eq!(route_of("/api/calling/calls"), "/api/calling/calls");
        assert_eq!(route_of("/wp-admin"), "other");
        assert_eq!(
            route_of("/api/calling/recordings/x.wav"),
            "/api/calling/recordings/{file}"
        );
    }
}
