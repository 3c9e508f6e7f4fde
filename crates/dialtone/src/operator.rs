//! Operator-only routes that read the store directly (README "API extensions"):
//! `GET /api/calling/webhooks/failed?limit=N` lists the webhooks delivery gave up on, newest
//! first, so undeliverable events are visible without reading logs.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

#[derive(Clone)]
struct Operator {
    store: store::Store,
    credentials: Arc<Vec<api::Credential>>,
}

#[derive(Deserialize)]
struct FailedQuery {
    limit: Option<String>,
}

pub fn router(store: store::Store, credentials: Vec<api::Credential>) -> Router {
    Router::new()
        .route("/api/calling/webhooks/failed", get(failed))
        .with_state(Operator {
            store,
            credentials: Arc::new(credentials),
        })
}

fn error(status: StatusCode, code: &str, message: &str, attribute: Option<&str>) -> Response {
    let body = json!({"errors": [{
        "type": "validation_error",
        "code": code,
        "message": message,
        "attribute": attribute,
        "url": api::ERROR_DOCS_URL,
    }]});
    (status, Json(body)).into_response()
}

async fn failed(
    State(op): State<Operator>,
    headers: HeaderMap,
    Query(q): Query<FailedQuery>,
) -> Response {
    let Some(project) = api::authenticate(&op.credentials, &headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Unauthorized"})),
        )
            .into_response();
    };
    let limit = match q.limit.as_deref().filter(|l| !l.is_empty()) {
        None => 50,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_parameter",
                    "limit must be an integer between 1 and 1000",
                    Some("limit"),
                )
            }
        },
    };
    match op.store.given_up_webhooks(project, limit).await {
        Ok(rows) => {
            let data: Vec<_> = rows
                .into_iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "call_id": r.call_id,
                        "url": without_userinfo(&r.url),
                        "attempts": r.attempts,
                        "created_at_ms": r.created_at_ms,
                        "last_attempt_at_ms": r.last_attempt_at_ms,
                        "last_error": r.last_error,
                    })
                })
                .collect();
            Json(json!({ "data": data })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot list failed webhooks");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "cannot read the webhook outbox",
                None,
            )
        }
    }
}

/// The URL without `user:password@`, which may hold the receiver's credentials.
fn without_userinfo(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..i + 3], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_userinfo;

    #[test]
    fn userinfo_removed() {
        assert_eq!(
            without_userinfo("https://u:p@h.example:8443/x?a@b"),
            "https://h.example:8443/x?a@b"
        );
        assert_eq!(without_userinfo("http://h/x"), "http://h/x");
        assert_eq!(without_userinfo("nonsense"), "nonsense");
    }
}
