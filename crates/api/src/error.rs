//! SignalWire-shaped error responses (calling-api.md §5) and the mapping from
//! [`control::ControlError`].
//!
//! Every error body is `{"errors": [{type, code, message, attribute, url}]}` (issue 16), except
//! the 401, which stays the documented `{"error":"Unauthorized"}` (ambiguity register A11: the
//! operation's OpenAPI declares exactly that closed body, and it is answered before anything of
//! the request is read). `type` is `validation_error` for 400/409/422,
//! `request_error` for 404/405/413, `not_implemented` for 501 and `server_error` for 500/503.
//! docs/call-lifecycle.md ("Error bodies") has the table.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use control::ControlError;
use serde::Serialize;
use serde_json::json;

use crate::validate::{FieldError, Rejection};

/// The documentation link every `errors[]` item carries.
pub const ERROR_DOCS_URL: &str = "https://signalwire.com/docs/apis/error-codes";

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: u32 = 1;

/// One `errors[]` item (`RestApiErrorItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorItem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    pub attribute: Option<String>,
    pub url: &'static str,
}

impl ErrorItem {
    pub fn validation(code: &str, message: impl Into<String>, attribute: Option<String>) -> Self {
        ErrorItem {
            kind: "validation_error",
            code: code.to_owned(),
            message: message.into(),
            attribute,
            url: ERROR_DOCS_URL,
        }
    }
}

impl From<FieldError> for ErrorItem {
    fn from(e: FieldError) -> Self {
        ErrorItem::validation(e.code, e.message, e.attribute)
    }
}

/// Everything an API request can fail with. Each variant is one documented response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not a JSON object, or `calling.collect` has neither mode.
    #[error("bad request: {message}")]
    BadRequest {
        message: String,
        attribute: Option<String>,
    },
    #[error("unauthorized")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("payload too large")]
    PayloadTooLarge,
    /// 422 with one item per failing attribute.
    #[error("validation failed")]
    Unprocessable(Vec<ErrorItem>),
    /// 409: a second singleton operation.
    #[error("conflict")]
    Conflict(Vec<ErrorItem>),
    /// 501: the command is valid but not built on this node yet.
    #[error("{command} is not implemented by this dialtone server yet")]
    NotImplemented { command: String },
    /// 503: retryable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 503 with a reason the client is told: the node takes no new call now (`max_calls`,
    /// RTP ports, drain).
    #[error("service unavailable: {message}")]
    AtCapacity { code: &'static str, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::BadRequest => ApiError::bad_request("the request body is not valid", None),
            Rejection::Invalid(errors) => {
                ApiError::Unprocessable(errors.into_iter().map(ErrorItem::from).collect())
            }
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound => ApiError::NotFound,
            ControlError::InvalidState {
                code,
                message,
                attribute,
            }
            | ControlError::Unprocessable {
                code,
                message,
                attribute,
            } => ApiError::Unprocessable(vec![ErrorItem::validation(code, message, attribute)]),
            ControlError::Conflict {
                code,
                message,
                attribute,
            } => ApiError::Conflict(vec![ErrorItem::validation(code, message, attribute)]),
            ControlError::NotImplemented { command } => ApiError::NotImplemented { command },
            ControlError::Unavailable(why) => ApiError::Unavailable(why),
            ControlError::AtCapacity { code, message } => ApiError::AtCapacity { code, message },
            ControlError::Internal(why) => ApiError::Internal(why),
        }
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>, attribute: Option<&str>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            attribute: attribute.map(str::to_owned),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) | ApiError::AtCapacity { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> serde_json::Value {
        let item = |kind: &'static str, code: &str, message: String, attribute: Option<String>| json!({ "errors": [ErrorItem { kind, code: code.to_owned(), message, attribute, url: ERROR_DOCS_URL }] });
        match self {
            ApiError::Unprocessable(items) | ApiError::Conflict(items) => {
                json!({ "errors": items })
            }
            ApiError::BadRequest { message, attribute } => item(
                "validation_error",
                "bad_request",
                message.clone(),
                attribute.clone(),
            ),
            // The documented closed shape (A11).
            ApiError::Unauthorized => json!({ "error": "Unauthorized" }),
            ApiError::NotFound => item(
                "request_error",
                "not_found",
                "the resource does not exist, or does not belong to this project".into(),
                None,
            ),
            ApiError::MethodNotAllowed => item(
                "request_error",
                "method_not_allowed",
                "this HTTP method is not allowed on this path".into(),
                None,
            ),
            ApiError::PayloadTooLarge => item(
                "request_error",
                "payload_too_large",
                "the request body is larger than this server accepts".into(),
                None,
            ),
            ApiError::NotImplemented { command } => item(
                "not_implemented",
                "feature_not_available",
                format!("{command} is not implemented by this dialtone server yet"),
                Some("command".into()),
            ),
            ApiError::Unavailable(_) => item(
                "server_error",
                "service_unavailable",
                "the server cannot take this request now; retry".into(),
                None,
            ),
            ApiError::AtCapacity { code, message } => {
                item("server_error", code, message.clone(), None)
            }
            // The reason stays in the log: internals are not told to clients.
            ApiError::Internal(_) => item(
                "server_error",
                "internal_error",
                "internal server error".into(),
                None,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(why) => tracing::error!(error = %why, "internal error"),
            ApiError::Unavailable(why) => tracing::warn!(reason = %why, "service unavailable"),
            ApiError::AtCapacity { message, .. } => tracing::info!(%message, "new call refused"),
            _ => tracing::debug!(status = self.status().as_u16(), "request rejected"),
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"dialtone\""),
                );
            }
            ApiError::Unavailable(_) | ApiError::AtCapacity { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            _ => {}
        }
        response
    }
}
