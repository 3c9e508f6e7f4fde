//! Fetching SWML documents from a URL: signed like every webhook, bounded in time and size,
//! validated before use (calling-events.md §2, swml.md §3).

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use control::{ControlError, HttpMethod};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid URL {0}")]
    BadUrl(String),
    #[error("request failed: {0}")]
    Http(String),
    #[error("request refused: {0}")]
    Refused(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("response is not UTF-8 text")]
    NotText,
    #[error("invalid SWML: {0}")]
    Invalid(#[from] swml::SwmlError),
}

#[derive(Clone)]
pub struct Fetcher {
    client: egress::EgressClient,
    signing_key: Vec<u8>,
    max_bytes: usize,
}

impl Fetcher {
    /// Fails only when no HTTP client can be built (no TLS provider).
    pub fn new(
        signing_key: &str,
        timeout: Duration,
        max_bytes: usize,
        user_agent: &str,
        egress: std::sync::Arc<egress::EgressPolicy>,
    ) -> Result<Self, reqwest::Error> {
        let client = egress::EgressClient::new(
            egress,
            egress::ClientOptions {
                purpose: "swml fetch",
                timeout: Some(timeout),
                connect_timeout: Some(timeout),
                user_agent: Some(user_agent.to_owned()),
                max_redirects: 3,
            },
        )?;
        Ok(Fetcher {
            client,
            signing_key: signing_key.as_bytes().to_vec(),
            max_bytes,
        })
    }

    /// POSTs `payload` (or GETs with its key fields as query parameters, ambiguity register A12)
    /// and returns the validated document.
    pub async fn fetch_document(
        &self,
        url: &str,
        method: HttpMethod,
        payload: &Value,
    ) -> Result<swml::Document, FetchError> {
        let mut parsed = reqwest::Url::parse(url).map_err(|_| FetchError::BadUrl(url.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl(url.into()));
        }
        let auth = basic_auth_from_userinfo(&parsed);
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let body: Vec<u8> = match method {
            HttpMethod::Post => {
                serde_json::to_vec(payload).map_err(|e| FetchError::Http(e.to_string()))?
            }
            HttpMethod::Get => {
                let call = &payload["call"];
                let mut q = parsed.query_pairs_mut();
                for key in ["call_id", "from", "to", "direction", "project_id"] {
                    if let Some(v) = call.get(key).and_then(Value::as_str) {
                        q.append_pair(key, v);
                    }
                }
                drop(q);
                Vec::new()
            }
        };
        let sigs = webhook::sign(&self.signing_key, parsed.as_str(), &body);
        let refused = |e: egress::EgressError| FetchError::Refused(e.to_string());
        let mut req = match method {
            HttpMethod::Post => self
                .client
                .post(parsed.clone())
                .map_err(refused)?
                .header("Content-Type", "application/json")
                .body(body),
            HttpMethod::Get => self.client.get(parsed.clone()).map_err(refused)?,
        };
        req = req
            .header(
                "Accept",
                "application/json, application/yaml, text/yaml, */*",
            )
            .header("X-SignalWire-Signature", sigs.sha1_hex)
            .header("X-SignalWire-SHA256-Signature", sigs.sha256_hex);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let mut resp = req.send().await.map_err(|e| match egress::refusal(&e) {
            Some(r) => FetchError::Refused(r.to_string()),
            None => FetchError::Http(e.to_string()),
        })?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?
        {
            if buf.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            buf.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(buf).map_err(|_| FetchError::NotText)?;
        let doc = swml::Document::from_text(&text)?;
        log_document_warnings("fetched document", &doc);
        Ok(doc)
    }
}

fn basic_auth_from_userinfo(url: &reqwest::Url) -> Option<String> {
    if url.username().is_empty() {
        return None;
    }
    let user = percent_decode(url.username());
    let pass = percent_decode(url.password().unwrap_or(""));
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    Some(format!("Basic {token}"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A SWML document a user sent (`dial.swml`, `update.swml`, a `calling.transfer` object,
/// `to_script`), checked by the runtime validator (docs/swml-validation.md); an invalid one is
/// a 422 naming `attribute`, with the `relay_script_*` code of its first problem.
pub(crate) fn load_document(attribute: &str, doc: Value) -> Result<Value, ControlError> {
    swml::Document::from_value(doc)
        .map(|d| {
            log_document_warnings(attribute, &d);
            d.into_value()
        })
        .map_err(|e| invalid_document(attribute, e))
}

/// Unknown names the validator ignored, logged (they are not errors: swml.md §1.7).
pub(crate) fn log_document_warnings(source: &str, doc: &swml::Document) {
    for w in doc.warnings() {
        tracing::info!(source, code = w.code, path = %w.path, "SWML: {}", w.message);
    }
}

pub(crate) fn invalid_document(attribute: &str, e: swml::SwmlError) -> ControlError {
    ControlError::Unprocessable {
        code: e.code(),
        message: format!("{attribute}: {e}"),
        attribute: Some(attribute.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_becomes_basic_auth() {
        let u = reqwest::Url::parse("http://us%40er:p%3Ass@127.0.0.1:1/x").unwrap();
        let h = basic_auth_from_userinfo(&u).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(h.trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(decoded, b"us@er:p:ss");
        assert!(basic_auth_from_userinfo(&reqwest::Url::parse("http://h/").unwrap()).is_none());
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
