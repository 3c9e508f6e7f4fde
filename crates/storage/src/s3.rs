//! An S3-compatible bucket: path-style PUT/GET signed with AWS Signature V4 over the caller's
//! HTTP client (a few lines instead of an SDK's compile time).

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{ObjectStore, StorageError};

/// `[storage] kind = "s3"`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Base URL of the service, e.g. `http://127.0.0.1:9000` (path-style addressing).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Prepended to every object key (e.g. `recordings/`).
    pub prefix: String,
}

// The secret stays out of logs.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A bucket's objects; keys given to it are prefixed with the configured prefix.
#[derive(Clone)]
pub struct S3Bucket {
    cfg: S3Config,
    http: reqwest::Client,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut m = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// RFC 3986 unreserved characters stay; everything else is %-encoded (not `/` in paths).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The SigV4 `Authorization` header for a request without query string.
fn authorization(
    cfg: &S3Config,
    method: &str,
    host: &str,
    path: &str,
    payload_hash: &str,
    amz_date: &str,
) -> String {
    let date = &amz_date[..8];
    let canonical = format!(
        "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload_hash}"
    );
    let scope = format!("{date}/{}/s3/aws4_request", cfg.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k = hmac(format!("AWS4{}", cfg.secret_key).as_bytes(), date);
    let k = hmac(&k, &cfg.region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    let sig = hex(&hmac(&k, &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}",
        cfg.access_key
    )
}

impl S3Bucket {
    pub fn new(cfg: S3Config, http: reqwest::Client) -> Self {
        S3Bucket { cfg, http }
    }

    /// The object key of `name` (prefix included).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.cfg.prefix)
    }

    fn request(&self, method: reqwest::Method, key: &str, body: &[u8]) -> reqwest::RequestBuilder {
        let endpoint = self.cfg.endpoint.trim_end_matches('/');
        let path = format!(
            "/{}/{}",
            uri_encode(&self.cfg.bucket, false),
            uri_encode(key, true)
        );
        let host = endpoint
            .split_once("://")
            .map_or(endpoint, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let payload_hash = sha256_hex(body);
        let auth = authorization(
            &self.cfg,
            method.as_str(),
            &host,
            &path,
            &payload_hash,
            &amz_date,
        );
        self.http
            .request(method, format!("{endpoint}{path}"))
            .header("x-amz-date", amz_date)
            .header("x-amz-content-sha256", payload_hash)
            .header("authorization", auth)
            .timeout(Duration::from_secs(60))
    }
}

#[async_trait]
impl ObjectStore for S3Bucket {
    async fn put(&self, name: &str, body: Vec<u8>, content_type: &str) -> Result<(), StorageError> {
        let key = self.key(name);
        let r = self
            .request(reqwest::Method::PUT, &key, &body)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        if r.status().is_success() {
            return Ok(());
        }
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        Err(StorageError::Status {
            status,
            body: body.chars().take(300).collect(),
        })
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let key = self.key(name);
        let r = self.request(reqwest::Method::GET, &key, b"").send().await?;
        match r.status().as_u16() {
            200 => Ok(Some(r.bytes().await?.to_vec())),
            404 => Ok(None),
            status => Err(StorageError::Status {
                status,
                body: r
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same request signed by botocore's S3SigV4Auth (the AWS SDK for Python).
    #[test]
    fn signature_matches_botocore() {
        let cfg = S3Config {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "recs".into(),
            region: "us-east-1".into(),
            access_key: "testkey".into(),
            secret_key: "testsecret".into(),
            prefix: "calls/".into(),
        };
        let hash = sha256_hex(b"hello");
        assert_eq!(
            hash,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let path = format!("/{}/{}", cfg.bucket, uri_encode("calls/a b.mp3", true));
        assert_eq!(path, "/recs/calls/a%20b.mp3");
        let auth = authorization(
            &cfg,
            "PUT",
            "127.0.0.1:9000",
            &path,
            &hash,
            "20261202T010455Z",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=testkey/20261202/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=ac61c0e512fc07e9e5798d7ffa1c2cb4b6edf160b7071b97e1622f2b2c492423"
        );
        assert_eq!(uri_encode("a+b/c", false), "a%2Bb%2Fc");
    }
}
