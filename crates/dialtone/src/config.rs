//! Configuration: a TOML file (named by `DIALTONE_CONFIG` or `--config`), overridden by
//! `DIALTONE_*` environment variables, with embedded defaults so a fresh machine needs neither.
//! Every key is documented in the README.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub http_listen: SocketAddr,
    pub sip_listen: SocketAddr,
    pub external_ip: Option<IpAddr>,
    pub rtp_ports: String,
    /// Whose RTP a call accepts: `sdp-address` (default) or `any`.
    pub rtp_latch: String,
    /// How media sockets are read: `batched` (default: epoll + recvmmsg) or `poll`.
    pub media_io: String,
    /// The media shard threads' nice value (-20..=19; negative needs CAP_SYS_NICE).
    pub media_thread_nice: i32,
    pub data_dir: PathBuf,
    pub project_id: Option<String>,
    pub api_token: Option<String>,
    pub signing_key: Option<String>,
    pub space_id: Option<String>,
    pub default_trunk: Option<String>,
    pub media_shards: usize,
    /// Threads of the SWML evaluator pool (0: half the cores, at least 2) and a call's
    /// JavaScript budget in interrupt ticks (docs/security.md).
    pub script_threads: usize,
    pub swml_js_budget: u32,
    pub max_body_bytes: usize,
    pub swml_fetch_timeout_ms: u64,
    pub swml_max_bytes: usize,
    /// Largest audio file `play` fetches, and its longest duration.
    /// Base of the recording URLs handed out (default `http://<http_listen>`).
    pub public_url: Option<String>,
    pub audio_max_bytes: u64,
    pub audio_max_seconds: u64,
    pub webhook_timeout_ms: u64,
    pub webhook_backoff_ms: Vec<u64>,
    /// Webhook retries past `webhook_backoff_ms` (doubling, capped) and retention.
    pub webhook_max_attempts: u32,
    pub webhook_max_age_ms: u64,
    pub webhook_max_delay_ms: u64,
    pub webhook_per_destination: usize,
    pub webhook_keep_delivered_ms: u64,
    pub webhook_keep_failed_ms: u64,
    /// HTTP server limits (crates/dialtone/src/http.rs, docs/security.md).
    pub http_max_connections: usize,
    pub http_max_connections_per_peer: usize,
    pub http_header_timeout_ms: u64,
    pub http_idle_timeout_ms: u64,
    pub http_request_timeout_ms: u64,
    /// Codec preference for offers and answers, e.g. `PCMU,PCMA,G722,OPUS`.
    pub codecs: String,
    /// SDES-SRTP for calls we answer (`forbidden`, `optional`, `mandatory`) and the default for
    /// calls we place (a dial's `encryption` overrides it), docs/srtp.md.
    pub inbound_encryption: String,
    pub outbound_encryption: String,
    /// SIP/TCP listener limits (sip::TcpLimits, docs/security.md).
    pub sip_tcp_max_connections: usize,
    pub sip_tcp_max_silent: usize,
    pub sip_tcp_max_silent_per_peer: usize,
    pub sip_tcp_first_data_timeout_ms: u64,
    pub sip_tcp_idle_timeout_ms: u64,
    /// SIP over TLS: the listener (off unless set), its certificate chain and key (PEM
    /// files), and the CA bundle (PEM) that verifies the far end of calls we place over TLS.
    pub sip_tls_listen: Option<SocketAddr>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    /// PEM certificates trusted for `wss://` streams and taps besides the public web roots
    /// (a self-hosted endpoint with its own CA, tests with a self-signed certificate).
    pub ws_ca_file: Option<PathBuf>,
    /// RTP taps (`calling.tap`, SWML `tap` to `rtp://`) may send to private, loopback and
    /// reserved addresses; off by default (ambiguity register A14).
    pub tap_allow_private: bool,
    /// Faxes offer and accept T.38 (UDPTL) by re-INVITE; off: fax over G.711 audio only.
    pub fax_t38: bool,
    pub log: String,
    pub log_format: String,
    /// Where inbound calls go (`[[inbound_routes]]` tables).
    pub inbound_routes: Vec<InboundRouteSetting>,
    /// `DIALTONE_INBOUND_URL`: a `*` route to this SWML URL for every call no route names.
    pub inbound_url: Option<String>,
    /// Where finished recordings are kept (`[storage]`).
    pub storage: StorageSetting,
    /// A free-form speech engine run as a separate process (program and arguments, split on
    /// whitespace), used instead of the embedded pocketsphinx grammar engine.
    pub asr_command: Option<String>,
    /// The `ai` agent's model backend: an OpenAI-compatible chat-completions base URL (e.g.
    /// `https://api.openai.com/v1`, `http://127.0.0.1:8080/v1`), its API key and default model.
    pub ai_base_url: Option<String>,
    pub ai_api_key: Option<String>,
    pub ai_model: String,
    /// The embedded model: a command that runs an OpenAI-compatible server on the loopback
    /// port dialtone puts for `{port}` (scripts/ai/local_model.py), started when no
    /// `ai_base_url` is set (crate::local_model).
    pub ai_local_command: Option<String>,
    /// Calls held at once at most (every leg counts; 0: only the RTP ports limit).
    pub max_calls: usize,
    /// On SIGTERM: seconds live calls may go on before the rest are hung up.
    pub drain_secs: u64,
    /// Where URLs a user or a document supplies may lead (`[egress]`, docs/security.md).
    pub egress: EgressSetting,
}

/// `[egress]`: `mode` (`default` or `public-only`), `allow` and `deny` lists of addresses,
/// CIDRs, host names and `*.domain` patterns.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct EgressSetting {
    pub mode: String,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl EgressSetting {
    pub fn policy(&self) -> anyhow::Result<egress::EgressPolicy> {
        egress::EgressPolicy::parse(&self.mode, &self.allow, &self.deny).context("[egress]")
    }

    fn apply_env(&mut self) {
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        };
        if let Some(v) = env("DIALTONE_EGRESS_MODE") {
            self.mode = v;
        }
        if let Some(v) = env("DIALTONE_EGRESS_ALLOW") {
            self.allow = list(v);
        }
        if let Some(v) = env("DIALTONE_EGRESS_DENY") {
            self.deny = list(v);
        }
    }
}

/// `[storage]`: `kind = "local"` (default: the data dir) or `"s3"` (an S3-compatible bucket;
/// recordings are still written to the data dir first and uploaded when they end).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSetting {
    pub kind: String,
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub region: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub prefix: String,
}

impl Default for StorageSetting {
    fn default() -> Self {
        StorageSetting {
            kind: "local".into(),
            endpoint: None,
            bucket: None,
            region: "us-east-1".into(),
            access_key: None,
            secret_key: None,
            prefix: String::new(),
        }
    }
}

impl StorageSetting {
    /// The S3 settings when `kind = "s3"`; an error names what is missing.
    pub fn s3(&self) -> anyhow::Result<Option<storage::S3Config>> {
        match self.kind.as_str() {
            "local" => Ok(None),
            "s3" => {
                let need = |v: &Option<String>, name: &str| {
                    v.clone()
                        .ok_or_else(|| anyhow::anyhow!("storage kind s3 needs {name}"))
                };
                let endpoint = need(&self.endpoint, "endpoint (DIALTONE_S3_ENDPOINT)")?;
                if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                    bail!("storage endpoint must be an http:// or https:// URL");
                }
                Ok(Some(storage::S3Config {
                    endpoint,
                    bucket: need(&self.bucket, "bucket (DIALTONE_S3_BUCKET)")?,
                    region: self.region.clone(),
                    access_key: need(&self.access_key, "access_key (DIALTONE_S3_ACCESS_KEY)")?,
                    secret_key: need(&self.secret_key, "secret_key (DIALTONE_S3_SECRET_KEY)")?,
                    prefix: self.prefix.clone(),
                }))
            }
            other => bail!("storage kind must be local or s3, not {other}"),
        }
    }
}

/// One `[[inbound_routes]]` table: `destination` (called number, SIP user or `*`) and either
/// `url` (a SWML document URL) or `swml` (an inline document as JSON or YAML text).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRouteSetting {
    pub destination: String,
    pub url: Option<String>,
    pub swml: Option<String>,
    pub status_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sip_listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            external_ip: None,
            rtp_ports: "20000-29999".into(),
            rtp_latch: "sdp-address".into(),
            media_io: "batched".into(),
            media_thread_nice: -10,
            data_dir: PathBuf::from("./dialtone-data"),
            project_id: None,
            api_token: None,
            signing_key: None,
            space_id: None,
            default_trunk: None,
            media_shards: 0,
            script_threads: 0,
            swml_js_budget: swml::expr::JS_SCRIPT_BUDGET,
            max_body_bytes: 1024 * 1024,
            swml_fetch_timeout_ms: 10_000,
            swml_max_bytes: 1024 * 1024,
            public_url: None,
            audio_max_bytes: 20 * 1024 * 1024,
            audio_max_seconds: 1800,
            webhook_timeout_ms: 10_000,
            webhook_backoff_ms: vec![1_000, 4_000],
            webhook_max_attempts: 40,
            webhook_max_age_ms: 24 * 3600 * 1000,
            webhook_max_delay_ms: 3600 * 1000,
            webhook_per_destination: 4,
            webhook_keep_delivered_ms: 7 * 24 * 3600 * 1000,
            webhook_keep_failed_ms: 30 * 24 * 3600 * 1000,
            http_max_connections: 1024,
            http_max_connections_per_peer: 256,
            http_header_timeout_ms: 10_000,
            http_idle_timeout_ms: 60_000,
            http_request_timeout_ms: 30_000,
            codecs: "PCMU,PCMA,G722,OPUS".into(),
            inbound_encryption: "optional".into(),
            outbound_encryption: "forbidden".into(),
            sip_tcp_max_connections: 1024,
            sip_tcp_max_silent: 256,
            sip_tcp_max_silent_per_peer: 16,
            sip_tcp_first_data_timeout_ms: 10_000,
            sip_tcp_idle_timeout_ms: 120_000,
            sip_tls_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
            ws_ca_file: None,
            tap_allow_private: false,
            fax_t38: true,
            log: "info".into(),
            log_format: "text".into(),
            inbound_routes: Vec::new(),
            inbound_url: None,
            asr_command: None,
            ai_base_url: None,
            ai_api_key: None,
            ai_model: "gpt-4o-mini".into(),
            ai_local_command: None,
            storage: StorageSetting::default(),
            egress: EgressSetting::default(),
            max_calls: 1000,
            drain_secs: 30,
        }
    }
}

impl Settings {
    /// The TLS listener of `sip_tls_listen`, its certificate and key read from their files;
    /// `None` when `sip_tls_listen` is not set. A file that cannot be read, or a certificate and
    /// key that do not make a TLS server, is an error naming the files.
    pub fn sip_tls(&self) -> anyhow::Result<Option<sip::TlsServer>> {
        let Some(listen) = self.sip_tls_listen else {
            return Ok(None);
        };
        let (Some(cert), Some(key)) = (&self.tls_cert_file, &self.tls_key_file) else {
            bail!("sip_tls_listen needs tls_cert_file and tls_key_file");
        };
        let tls = sip::TlsServer {
            listen,
            cert_pem: read_pem("tls_cert_file", cert)?,
            key_pem: read_pem("tls_key_file", key)?,
        };
        tls.check().with_context(|| {
            format!(
                "tls_cert_file {} and tls_key_file {}",
                cert.display(),
                key.display()
            )
        })?;
        Ok(Some(tls))
    }

    /// The CA bundle of `ws_ca_file`, if set.
    pub fn ws_ca_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.ws_ca_file
            .as_deref()
            .map(|p| read_pem("ws_ca_file", p))
            .transpose()
    }

    /// The CA bundle of `tls_ca_file`, if set.
    pub fn tls_ca_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.tls_ca_file
            .as_deref()
            .map(|p| read_pem("tls_ca_file", p))
            .transpose()
    }
}

fn read_pem(key: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let data =
        std::fs::read(path).with_context(|| format!("{key}: cannot read {}", path.display()))?;
    if !data.windows(11).any(|w| w == b"-----BEGIN ") {
        bail!("{key}: {} is not a PEM file", path.display());
    }
    Ok(data)
}

/// The project credentials and keys, from configuration or generated on first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub project_id: Uuid,
    pub api_token: String,
    pub signing_key: String,
    pub space_id: Uuid,
    pub node_id: Uuid,
}

fn parse_bool(name: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name} must be true or false"),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Settings::default(),
        };
        s.apply_env()?;
        s.check()?;
        Ok(s)
    }

    /// The `codecs` list, every name one we have a coder for.
    pub fn codec_preference(&self) -> anyhow::Result<Vec<sdp::Codec>> {
        let names: Vec<&str> = self.codecs.split(',').map(str::trim).collect();
        let codecs = sdp::Codec::list(&self.codecs);
        if names.iter().any(|n| sdp::Codec::list(n).is_empty()) || codecs.is_empty() {
            bail!(
                "codecs must be a comma list of PCMU, PCMA, G722, OPUS (got {:?})",
                self.codecs
            );
        }
        Ok(codecs)
    }

    /// `inbound_encryption` and `outbound_encryption`, each one of SignalWire's names.
    pub fn encryption(&self) -> anyhow::Result<(sdp::Encryption, sdp::Encryption)> {
        let parse = |key: &str, v: &str| {
            sdp::Encryption::from_name(v).with_context(|| {
                format!("{key} must be forbidden, optional or mandatory (got {v:?})")
            })
        };
        Ok((
            parse("inbound_encryption", &self.inbound_encryption)?,
            parse("outbound_encryption", &self.outbound_encryption)?,
        ))
    }

    fn apply_env(&mut self) -> anyhow::Result<()> {
        if let Some(v) = env("DIALTONE_HTTP_LISTEN") {
            self.http_listen = v
                .parse()
                .context("DIALTONE_HTTP_LISTEN must be host:port")?;
        }
        if let Some(v) = env("DIALTONE_CODECS") {
            self.codecs = v;
        }
        if let Some(v) = env("DIALTONE_INBOUND_ENCRYPTION") {
            self.inbound_encryption = v;
        }
        if let Some(v) = env("DIALTONE_OUTBOUND_ENCRYPTION") {
            self.outbound_encryption = v;
        }
        if let Some(v) = env("DIALTONE_SIP_LISTEN") {
            self.sip_listen = v.parse().context("DIALTONE_SIP_LISTEN must be ip:port")?;
        }
        if let Some(v) = env("DIALTONE_EXTERNAL_IP") {
            self.external_ip = Some(
                v.parse()
                    .context("DIALTONE_EXTERNAL_IP must be an IP address")?,
            );
        }
        if let Some(v) = env("DIALTONE_RTP_PORTS") {
            self.rtp_ports = v;
        }
        if let Some(v) = env("DIALTONE_RTP_LATCH") {
            self.rtp_latch = v;
        }
        if let Some(v) = env("DIALTONE_MEDIA_IO") {
            self.media_io = v;
        }
        if let Some(v) = env("DIALTONE_MEDIA_THREAD_NICE") {
            self.media_thread_nice = v
                .parse()
                .context("DIALTONE_MEDIA_THREAD_NICE must be a number from -20 to 19")?;
        }
        if let Some(v) = env("DIALTONE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("DIALTONE_SIP_TLS_LISTEN") {
            self.sip_tls_listen = Some(
                v.parse()
                    .context("DIALTONE_SIP_TLS_LISTEN must be ip:port")?,
            );
        }
        for (var, field) in [
            ("DIALTONE_TLS_CERT_FILE", &mut self.tls_cert_file),
            ("DIALTONE_TLS_KEY_FILE", &mut self.tls_key_file),
            ("DIALTONE_TLS_CA_FILE", &mut self.tls_ca_file),
            ("DIALTONE_WS_CA_FILE", &mut self.ws_ca_file),
        ] {
            if let Some(v) = env(var) {
                *field = Some(PathBuf::from(v));
            }
        }
        macro_rules! opt {
            ($var:literal, $field:ident) => {
                if let Some(v) = env($var) {
                    self.$field = Some(v);
                }
            };
        }
        opt!("DIALTONE_PROJECT_ID", project_id);
        opt!("DIALTONE_API_TOKEN", api_token);
        opt!("DIALTONE_SIGNING_KEY", signing_key);
        opt!("DIALTONE_SPACE_ID", space_id);
        opt!("DIALTONE_DEFAULT_TRUNK", default_trunk);
        opt!("DIALTONE_INBOUND_URL", inbound_url);
        opt!("DIALTONE_PUBLIC_URL", public_url);
        opt!("DIALTONE_ASR_COMMAND", asr_command);
        opt!("DIALTONE_AI_BASE_URL", ai_base_url);
        opt!("DIALTONE_AI_API_KEY", ai_api_key);
        opt!("DIALTONE_AI_LOCAL_COMMAND", ai_local_command);
        if let Some(v) = env("DIALTONE_AI_MODEL") {
            self.ai_model = v;
        }
        if let Some(v) = env("DIALTONE_TAP_ALLOW_PRIVATE") {
            self.tap_allow_private = parse_bool("DIALTONE_TAP_ALLOW_PRIVATE", &v)?;
        }
        if let Some(v) = env("DIALTONE_FAX_T38") {
            self.fax_t38 = parse_bool("DIALTONE_FAX_T38", &v)?;
        }
        if let Some(v) = env("DIALTONE_MEDIA_SHARDS") {
            self.media_shards = v
                .parse()
                .context("DIALTONE_MEDIA_SHARDS must be a number")?;
        }
        if let Some(v) = env("DIALTONE_SCRIPT_THREADS") {
            self.script_threads = v
                .parse()
                .context("DIALTONE_SCRIPT_THREADS must be a number")?;
        }
        if let Some(v) = env("DIALTONE_SWML_JS_BUDGET") {
            self.swml_js_budget = v
                .parse()
                .context("DIALTONE_SWML_JS_BUDGET must be a number")?;
        }
        if let Some(v) = env("DIALTONE_WEBHOOK_BACKOFF_MS") {
            self.webhook_backoff_ms = v
                .split(',')
                .map(|p| p.trim().parse::<u64>())
                .collect::<Result<_, _>>()
                .context("DIALTONE_WEBHOOK_BACKOFF_MS must be comma-separated milliseconds")?;
        }
        for (var, field) in [
            (
                "DIALTONE_HTTP_MAX_CONNECTIONS",
                &mut self.http_max_connections,
            ),
            (
                "DIALTONE_HTTP_MAX_CONNECTIONS_PER_PEER",
                &mut self.http_max_connections_per_peer,
            ),
            (
                "DIALTONE_SIP_TCP_MAX_CONNECTIONS",
                &mut self.sip_tcp_max_connections,
            ),
            ("DIALTONE_SIP_TCP_MAX_SILENT", &mut self.sip_tcp_max_silent),
            (
                "DIALTONE_SIP_TCP_MAX_SILENT_PER_PEER",
                &mut self.sip_tcp_max_silent_per_peer,
            ),
        ] {
            if let Some(v) = env(var) {
                *field = v
                    .parse()
                    .with_context(|| format!("{var} must be a number"))?;
            }
        }
        if let Some(v) = env("DIALTONE_WEBHOOK_MAX_ATTEMPTS") {
            self.webhook_max_attempts = v
                .parse()
                .context("DIALTONE_WEBHOOK_MAX_ATTEMPTS must be a number")?;
        }
        if let Some(v) = env("DIALTONE_WEBHOOK_PER_DESTINATION") {
            self.webhook_per_destination = v
                .parse()
                .context("DIALTONE_WEBHOOK_PER_DESTINATION must be a number")?;
        }
        for (var, field) in [
            ("DIALTONE_WEBHOOK_MAX_AGE_MS", &mut self.webhook_max_age_ms),
            (
                "DIALTONE_WEBHOOK_MAX_DELAY_MS",
                &mut self.webhook_max_delay_ms,
            ),
            (
                "DIALTONE_WEBHOOK_KEEP_DELIVERED_MS",
                &mut self.webhook_keep_delivered_ms,
            ),
            (
                "DIALTONE_WEBHOOK_KEEP_FAILED_MS",
                &mut self.webhook_keep_failed_ms,
            ),
            (
                "DIALTONE_HTTP_HEADER_TIMEOUT_MS",
                &mut self.http_header_timeout_ms,
            ),
            (
                "DIALTONE_HTTP_IDLE_TIMEOUT_MS",
                &mut self.http_idle_timeout_ms,
            ),
            (
                "DIALTONE_HTTP_REQUEST_TIMEOUT_MS",
                &mut self.http_request_timeout_ms,
            ),
            (
                "DIALTONE_SIP_TCP_FIRST_DATA_TIMEOUT_MS",
                &mut self.sip_tcp_first_data_timeout_ms,
            ),
            (
                "DIALTONE_SIP_TCP_IDLE_TIMEOUT_MS",
                &mut self.sip_tcp_idle_timeout_ms,
            ),
        ] {
            if let Some(v) = env(var) {
                *field = v
                    .parse()
                    .with_context(|| format!("{var} must be milliseconds"))?;
            }
        }
        if let Some(v) = env("DIALTONE_SWML_FETCH_TIMEOUT_MS") {
            self.swml_fetch_timeout_ms = v.parse().context("DIALTONE_SWML_FETCH_TIMEOUT_MS")?;
        }
        if let Some(v) = env("DIALTONE_LOG") {
            self.log = v;
        }
        if let Some(v) = env("DIALTONE_STORAGE") {
            self.storage.kind = v;
        }
        let st = &mut self.storage;
        for (var, field) in [
            ("DIALTONE_S3_ENDPOINT", &mut st.endpoint),
            ("DIALTONE_S3_BUCKET", &mut st.bucket),
            ("DIALTONE_S3_ACCESS_KEY", &mut st.access_key),
            ("DIALTONE_S3_SECRET_KEY", &mut st.secret_key),
        ] {
            if let Some(v) = env(var) {
                *field = Some(v);
            }
        }
        if let Some(v) = env("DIALTONE_S3_REGION") {
            st.region = v;
        }
        if let Some(v) = env("DIALTONE_S3_PREFIX") {
            st.prefix = v;
        }
        if let Some(v) = env("DIALTONE_LOG_FORMAT") {
            self.log_format = v;
        }
        self.egress.apply_env();
        if let Some(v) = env("DIALTONE_MAX_CALLS") {
            self.max_calls = v.parse().context("DIALTONE_MAX_CALLS must be a number")?;
        }
        if let Some(v) = env("DIALTONE_DRAIN_SECS") {
            self.drain_secs = v.parse().context("DIALTONE_DRAIN_SECS must be seconds")?;
        }
        Ok(())
    }

    fn check(&self) -> anyhow::Result<()> {
        self.storage.s3()?;
        self.egress.policy()?;
        if self.http_max_connections == 0 || self.http_max_connections_per_peer == 0 {
            bail!("http_max_connections and http_max_connections_per_peer must be at least 1");
        }
        if self.http_header_timeout_ms == 0
            || self.http_idle_timeout_ms == 0
            || self.http_request_timeout_ms == 0
        {
            bail!("http_*_timeout_ms must be at least 1");
        }
        if self.sip_tcp_max_connections == 0
            || self.sip_tcp_max_silent == 0
            || self.sip_tcp_max_silent_per_peer == 0
            || self.sip_tcp_first_data_timeout_ms == 0
            || self.sip_tcp_idle_timeout_ms == 0
        {
            bail!("sip_tcp_* limits must be at least 1");
        }
        if self.sip_tls_listen.is_some()
            && (self.tls_cert_file.is_none() || self.tls_key_file.is_none())
        {
            bail!("sip_tls_listen needs tls_cert_file and tls_key_file");
        }
        self.codec_preference()?;
        self.encryption()?;
        self.rtp_latch_policy()?;
        self.media_io_mode()?;
        if !(-20..=19).contains(&self.media_thread_nice) {
            bail!("media_thread_nice must be from -20 to 19");
        }
        let (lo, hi) = self.rtp_port_range()?;
        if hi < lo + 2 {
            bail!("rtp_ports {lo}-{hi} leaves no even port pair");
        }
        if let Some(trunk) = &self.default_trunk {
            if !trunk.starts_with("sip:") {
                bail!(
                    "default_trunk must be a sip: URI, e.g. sip:user:password@carrier.example:5060"
                );
            }
        }
        for r in &self.inbound_routes {
            if r.destination.trim().is_empty() {
                bail!("inbound_routes: destination must not be empty (use \"*\" for the default route)");
            }
            match (&r.url, &r.swml) {
                (Some(u), None) if u.starts_with("http://") || u.starts_with("https://") => {}
                (None, Some(_)) => {}
                _ => bail!(
                    "inbound_routes {}: give exactly one of url (http/https) or swml",
                    r.destination
                ),
            }
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!("log_format must be text or json");
        }
        Ok(())
    }

    pub fn media_io_mode(&self) -> anyhow::Result<node::shard_io::MediaIo> {
        node::shard_io::MediaIo::parse(&self.media_io)
            .context("media_io must be \"batched\" or \"poll\"")
    }

    pub fn rtp_latch_policy(&self) -> anyhow::Result<node::shard::LatchPolicy> {
        node::shard::LatchPolicy::parse(&self.rtp_latch)
            .context("rtp_latch must be \"sdp-address\" or \"any\"")
    }

    pub fn rtp_port_range(&self) -> anyhow::Result<(u16, u16)> {
        let (a, b) = self
            .rtp_ports
            .split_once('-')
            .context("rtp_ports must look like 20000-29999")?;
        let lo: u16 = a.trim().parse().context("rtp_ports low end")?;
        let hi: u16 = b.trim().parse().context("rtp_ports high end")?;
        if lo < 1024 || hi < lo {
            bail!("rtp_ports must be an ascending range above 1023");
        }
        Ok((lo, hi))
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Configured values win; otherwise the ones saved in the data dir; otherwise new ones, saved
/// (mode 0600) and printed once so the operator can use them.
pub fn credentials(s: &Settings) -> anyhow::Result<Credentials> {
    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("creating data dir {}", s.data_dir.display()))?;
    let path = s.data_dir.join("credentials.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The data dir and an existing credentials file are the owner's only.
        let _ = std::fs::set_permissions(&s.data_dir, std::fs::Permissions::from_mode(0o700));
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} owner-only", path.display()))?;
        }
    }
    let saved: Option<Credentials> = match std::fs::read_to_string(&path) {
        Ok(text) => {
            Some(toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?)
        }
        Err(_) => None,
    };
    let parse_uuid = |v: &Option<String>, name: &str| -> anyhow::Result<Option<Uuid>> {
        v.as_deref()
            .map(|x| Uuid::parse_str(x).with_context(|| format!("{name} must be a UUID")))
            .transpose()
    };
    let generated = saved.is_none();
    let base = saved.unwrap_or_else(|| Credentials {
        project_id: Uuid::new_v4(),
        api_token: format!("PT{}", random_hex(24)),
        signing_key: format!("PSK_{}", random_hex(24)),
        space_id: Uuid::new_v4(),
        node_id: Uuid::new_v4(),
    });
    if generated {
        let text = toml::to_string(&base).context("serialising credentials")?;
        write_private(&path, &text)?;
    }
    let creds = Credentials {
        project_id: parse_uuid(&s.project_id, "project_id")?.unwrap_or(base.project_id),
        api_token: s.api_token.clone().unwrap_or(base.api_token),
        signing_key: s.signing_key.clone().unwrap_or(base.signing_key),
        space_id: parse_uuid(&s.space_id, "space_id")?.unwrap_or(base.space_id),
        node_id: base.node_id,
    };
    if generated {
        // Printed on first start only, on purpose, so the operator can copy them.
        println!(
            "dialtone: generated credentials (saved in {}):",
            path.display()
        );
        println!("  DIALTONE_PROJECT_ID={}", creds.project_id);
        if s.api_token.is_none() {
            println!("  DIALTONE_API_TOKEN={}", creds.api_token);
        }
        if s.signing_key.is_none() {
            println!("  DIALTONE_SIGNING_KEY={}", creds.signing_key);
        }
    }
    Ok(creds)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(text.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// The address advertised in Via/Contact and SDP: configured, else the SIP listen address,
/// else (listening on 0.0.0.0) the first non-loopback IPv4 interface. Never 0.0.0.0.
pub fn external_ip(s: &Settings) -> anyhow::Result<IpAddr> {
    if let Some(ip) = s.external_ip {
        if ip.is_unspecified() {
            bail!("external_ip must not be 0.0.0.0");
        }
        return Ok(ip);
    }
    if !s.sip_listen.ip().is_unspecified() {
        return Ok(s.sip_listen.ip());
    }
    let interfaces = if_addrs::get_if_addrs().context("listing network interfaces")?;
    interfaces
        .iter()
        .map(|i| i.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .context("no non-loopback IPv4 interface: set external_ip (DIALTONE_EXTERNAL_IP)")
}

pub fn init_tracing(s: &Settings) {
    // Raw SIP (the stack logs each message at INFO) only when `sip` is at DEBUG.
    let with_stack = |f: &str| match sip::stack_log_directive(f) {
        Some(d) if f.trim().is_empty() => d.to_string(),
        Some(d) => format!("{f},{d}"),
        None => f.to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(with_stack(&s.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(with_stack("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if s.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_file() {
        let s = Settings::default();
        assert_eq!(s.http_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.sip_listen.to_string(), "0.0.0.0:5060");
        assert_eq!(s.rtp_port_range().unwrap(), (20000, 29999));
        let parsed: Settings = toml::from_str(
            "http_listen = \"127.0.0.1:9000\"\nrtp_ports = \"30000-30100\"\ndefault_trunk = \"sip:a:b@127.0.0.1:5099\"\n",
        )
        .unwrap();
        assert_eq!(parsed.rtp_port_range().unwrap(), (30000, 30100));
        assert!(toml::from_str::<Settings>("no_such_key = 1").is_err());
    }

    #[test]
    fn credentials_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let a = credentials(&s).unwrap();
        let b = credentials(&s).unwrap();
        assert_eq!(a.project_id, b.project_id);
        assert_eq!(a.api_token, b.api_token);
        let pinned = Settings {
            api_token: Some("tok".into()),
            ..s
        };
        assert_eq!(credentials(&pinned).unwrap().api_token, "tok");
    }

    #[test]
    fn storage_s3_from_the_file_needs_its_keys() {
        let s: Settings = toml::from_str(
            "[storage]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"b\"\n\
             access_key = \"k\"\nsecret_key = \"s\"\nprefix = \"rec/\"\n",
        )
        .unwrap();
        let c = s.storage.s3().unwrap().unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.region.as_str(), c.prefix.as_str()),
            ("b", "us-east-1", "rec/")
        );
        assert_eq!(Settings::default().storage.s3().unwrap(), None);
        let missing: Settings = toml::from_str("[storage]\nkind = \"s3\"\n").unwrap();
        assert!(missing
            .check()
            .unwrap_err()
            .to_string()
            .contains("endpoint"));
        let bad: Settings = toml::from_str("[storage]\nkind = \"ftp\"\n").unwrap();
        assert!(bad.check().is_err());
    }

    #[test]
    fn egress_section_is_parsed_and_checked() {
        let s: Settings = toml::from_str(
            "[egress]\nmode = \"public-only\"\nallow = [\"10.1.0.0/16\", \"*.corp.example\"]\n\
             deny = [\"127.0.0.1\"]\n",
        )
        .unwrap();
        let p = s.egress.policy().unwrap();
        assert_eq!(p.mode, egress::Mode::PublicOnly);
        assert_eq!((p.allow.len(), p.deny.len()), (2, 1));
        assert_eq!(
            Settings::default().egress.policy().unwrap(),
            egress::EgressPolicy::default()
        );
        let bad: Settings = toml::from_str("[egress]\nmode = \"open\"\n").unwrap();
        assert!(bad.check().is_err());
        let bad: Settings = toml::from_str("[egress]\ndeny = [\"10.0.0.0/99\"]\n").unwrap();
        assert!(bad.check().is_err());
        assert!(toml::from_str::<Settings>("[egress]\nallow_all = true\n").is_err());
    }

    #[test]
    fn bad_ranges_rejected() {
        let s = Settings {
            rtp_ports: "30000".into(),
            ..Settings::default()
        };
        assert!(s.check().is_err());
        let s = Settings {
            rtp_ports: "500-600".into(),
            ..Settings::default()
        };
        assert!(s.check().is_err());
    }

    #[test]
    fn sip_tls_keys() {
        let off = Settings::default();
        assert!(off.sip_tls().unwrap().is_none());
        assert!(off.tls_ca_pem().unwrap().is_none());

        let no_files: Settings = toml::from_str("sip_tls_listen = \"127.0.0.1:5061\"\n").unwrap();
        assert!(no_files
            .check()
            .unwrap_err()
            .to_string()
            .contains("tls_cert_file"));

        let dir = std::env::temp_dir().join(format!("dialtone-tls-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("x.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not pem").unwrap();
        let text = format!(
            "sip_tls_listen = \"127.0.0.1:5061\"\ntls_cert_file = {:?}\ntls_key_file = {:?}\ntls_ca_file = {:?}\n",
            pem, pem, pem
        );
        let s: Settings = toml::from_str(&text).unwrap();
        s.check().unwrap();
        assert_eq!(s.sip_tls_listen.unwrap().to_string(), "127.0.0.1:5061");
        assert!(s.tls_ca_pem().unwrap().is_some());
        // PEM, but no certificate and key a TLS server can use: the error names the files.
        let e = format!("{:#}", s.sip_tls().unwrap_err());
        assert!(e.contains("x.pem") && e.contains("TLS"), "{e}");

        let missing = Settings {
            tls_key_file: Some(dir.join("missing.pem")),
            ..s.clone()
        };
        let e = missing.sip_tls().unwrap_err().to_string();
        assert!(
            e.contains("tls_key_file") && e.contains("missing.pem"),
            "{e}"
        );
        let junk = Settings {
            tls_ca_file: Some(junk),
            ..s
        };
        let e = junk.tls_ca_pem().unwrap_err().to_string();
        assert!(e.contains("not a PEM"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn sip_tcp_limits_from_the_file() {
        let s: Settings =
            toml::from_str("sip_tcp_max_silent_per_peer = 4\nsip_tcp_idle_timeout_ms = 5000\n")
                .unwrap();
        assert_eq!(
            (s.sip_tcp_max_silent_per_peer, s.sip_tcp_idle_timeout_ms),
            (4, 5000)
        );
        assert!(s.check().is_ok());
        let zero: Settings = toml::from_str("sip_tcp_max_connections = 0\n").unwrap();
        assert!(zero.check().unwrap_err().to_string().contains("sip_tcp"));
    }

    #[test]
    fn media_io_is_batched_unless_poll_is_chosen() {
        let s = Settings::default();
        assert_eq!(s.media_io_mode().unwrap(), node::shard_io::MediaIo::Batched);
        let s: Settings = toml::from_str("media_io = \"poll\"\n").unwrap();
        assert_eq!(s.media_io_mode().unwrap(), node::shard_io::MediaIo::Poll);
        let s: Settings = toml::from_str("media_io = \"io_uring\"\n").unwrap();
        assert!(s.check().unwrap_err().to_string().contains("media_io"));
    }

    #[test]
    fn media_threads_are_favoured_unless_told_otherwise() {
        assert_eq!(Settings::default().media_thread_nice, -10);
        let s: Settings = toml::from_str("media_thread_nice = 0\n").unwrap();
        assert_eq!(s.media_thread_nice, 0);
        s.check().unwrap();
        let s: Settings = toml::from_str("media_thread_nice = -21\n").unwrap();
        assert!(s
            .check()
            .unwrap_err()
            .to_string()
            .contains("media_thread_nice"));
    }

    #[test]
    fn rtp_latch_is_sdp_address_unless_any_is_chosen() {
        let s = Settings::default();
        assert_eq!(
            s.rtp_latch_policy().unwrap(),
            node::shard::LatchPolicy::SdpAddress
        );
        let s: Settings = toml::from_str("rtp_latch = \"any\"\n").unwrap();
        assert_eq!(s.rtp_latch_policy().unwrap(), node::shard::LatchPolicy::Any);
        let s: Settings = toml::from_str("rtp_latch = \"sdp\"\n").unwrap();
        assert!(s.check().unwrap_err().to_string().contains("rtp_latch"));
    }
}
