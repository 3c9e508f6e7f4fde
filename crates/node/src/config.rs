//! Everything a node needs to run, already parsed (the binary reads the TOML file and the
//! environment into this).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use control::routing::Trunk;

/// Where the `ai` agent's model runs (docs/ai.md).
#[derive(Clone)]
pub struct AiBackend {
    /// E.g. `https://api.openai.com/v1`, `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Used when a document names no `params.ai_model`.
    pub model: String,
}

impl std::fmt::Debug for AiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiBackend")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("model", &self.model)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub sip_listen: SocketAddr,
    /// Advertised in Via/Contact and SDP; never 0.0.0.0.
    pub external_ip: IpAddr,
    pub rtp_ports: (u16, u16),
    /// Whose RTP a call accepts: the SDP's address (default) or any source (opt-in).
    pub rtp_latch: media::latch::LatchPolicy,
    /// How the media shards read their sockets (batched: epoll + recvmmsg; or polled).
    pub media_io: crate::shard_io::MediaIo,
    /// The media shard threads' nice value (docs/benchmarks.md: on a busy box the ticks are
    /// late by tens of milliseconds at the default priority).
    pub media_thread_nice: i32,
    pub data_dir: PathBuf,
    pub project_id: Uuid,
    pub api_token: String,
    pub signing_key: String,
    pub space_id: Uuid,
    pub node_id: Uuid,
    pub default_trunk: Option<Trunk>,
    /// Where inbound calls go; none means every inbound INVITE is answered 404.
    pub inbound_routes: Vec<control::routing::InboundRoute>,
    pub media_shards: usize,
    pub swml_fetch_timeout: Duration,
    pub swml_max_bytes: usize,
    pub audio_max_bytes: u64,
    pub audio_max_seconds: u64,
    pub webhook_timeout: Duration,
    pub webhook_backoff: Vec<Duration>,
    pub webhook_retry: webhook::RetryPolicy,
    pub webhook_per_destination: usize,
    pub webhook_retention: webhook::Retention,
    pub user_agent: String,
    /// Base of the URLs handed out for recordings (`http://<http_listen>` by default).
    pub public_url: String,
    /// Where finished recordings go besides the data dir (`[storage] kind = "s3"`).
    pub s3: Option<storage::S3Config>,
    /// A speech engine in another process (program, arguments) instead of the embedded one.
    pub asr_command: Option<Vec<String>>,
    /// Codecs in preference order, for our offers (when a dial names none) and our answers.
    pub codecs: Vec<sdp::Codec>,
    /// SDES-SRTP for calls we answer, and for calls we place when the dial names none.
    pub inbound_encryption: sdp::Encryption,
    pub outbound_encryption: sdp::Encryption,
    /// Limits on the SIP/TCP listener (and the TLS one).
    pub sip_tcp: sip::TcpLimits,
    /// The SIP/TLS listener (address, certificate, key), if any.
    pub sip_tls: Option<sip::TlsServer>,
    /// PEM trust anchors for calls we place over TLS (`sips:`, `;transport=tls`).
    pub sip_tls_ca_pem: Option<Vec<u8>>,
    /// Where URLs a user or a document supplies may lead (`[egress]`, docs/security.md).
    pub egress: egress::EgressPolicy,
    /// PEM certificates trusted for `wss://` streams and taps besides the public roots.
    pub ws_ca_pem: Option<Vec<u8>>,
    /// RTP taps may send to private, loopback and reserved addresses (off: refused).
    pub tap_allow_private: bool,
    /// The `ai` agent's model backend (an OpenAI-compatible chat-completions server); None:
    /// `ai` steps say they cannot answer.
    pub ai: Option<AiBackend>,
    /// Faxes switch the call to T.38 by re-INVITE (a receiving fax offers it, either side
    /// accepts the far end's offer); off: fax over G.711 only.
    pub fax_t38: bool,
    /// Calls (every leg counts) held at once at most; more are refused with 503 (API and SIP).
    /// 0: no cap but the RTP ports.
    pub max_calls: usize,
    /// What the node counts for `/metrics`.
    pub metrics: std::sync::Arc<metrics::Metrics>,
    /// Threads that run SWML steps and their JavaScript (the evaluator pool).
    pub script_threads: usize,
    /// A call's JavaScript budget in interrupt ticks (`swml::expr::JS_SCRIPT_BUDGET`).
    pub js_budget: u32,
}
