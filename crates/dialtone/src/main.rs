//! `dialtone`: one binary. `dialtone serve` runs the HTTP API, SIP, media, webhooks and storage.

mod config;
mod http;
mod local_model;
mod operator;
mod ops;

// jemalloc, not glibc's malloc: a call's setup (its HTTP request, INVITE transaction, SWML
// fetch) frees memory between long-lived allocations, and glibc kept those holes resident —
// ~100 KiB of RSS per playing call at 1,000 calls against ~72 with jemalloc, same heap
// (docs/benchmarks.md, "Session 16"). Its background threads (the crate's
// `background_threads` feature) give freed pages back on time, not only when the thread that
// freed them allocates again.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing::info;

#[derive(Parser)]
#[command(
    name = "dialtone",
    version,
    about = "Self-hosted SignalWire-compatible programmable voice server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API, SIP over UDP and TCP, RTP, webhooks, SQLite store).
    Serve {
        /// TOML configuration file (also DIALTONE_CONFIG). Environment variables override it.
        #[arg(long, env = "DIALTONE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// SWML tools.
    Swml {
        #[command(subcommand)]
        command: SwmlCommand,
    },
}

#[derive(Subcommand)]
enum SwmlCommand {
    /// Check a SWML document (JSON or YAML): the runtime validator (errors and ignored names),
    /// labels, sections and expressions, and the signalwire-sdk schema as an informational lint.
    Validate { file: PathBuf },
    /// Run a SWML document against a simulated call on virtual time and print what happens.
    Run {
        file: PathBuf,
        /// Stop after this many virtual seconds.
        #[arg(long, default_value_t = 3600)]
        max_seconds: u64,
        /// Print the final variables as JSON.
        #[arg(long)]
        vars: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Swml { command } => swml_tool(command),
    }
}

fn load_document(
    file: &std::path::Path,
) -> anyhow::Result<Result<swml::Document, swml::SwmlError>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(swml::Document::from_text(&text))
}

fn swml_tool(command: SwmlCommand) -> anyhow::Result<()> {
    match command {
        SwmlCommand::Validate { file } => {
            // Exit status 1 when dialtone would refuse the document (the runtime validator) or
            // the semantic lint finds a problem; warnings and the SDK schema lint only report.
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.display();
            let mut failed = false;
            let doc = match swml::Document::from_text(&text) {
                Ok(d) => Some(d),
                Err(e) => {
                    eprintln!("{name}: invalid: {e}");
                    failed = true;
                    None
                }
            };
            if let Some(doc) = &doc {
                for w in doc.warnings() {
                    eprintln!("{name}: warning: {w}");
                }
                for f in swml::lint::lint(doc.as_value()) {
                    eprintln!("{name}: {}: {}", f.path, f.message);
                    failed = true;
                }
            }
            if let Ok(raw) = swml::parse_text(&text) {
                for finding in swml::schema_lint(&raw) {
                    eprintln!(
                        "{name}: schema lint ({}, informational): {finding}",
                        swml::SCHEMA_LINT_SOURCE
                    );
                }
            }
            if failed {
                std::process::exit(1);
            }
            println!("{name}: valid");
            Ok(())
        }
        SwmlCommand::Run {
            file,
            max_seconds,
            vars,
        } => {
            let doc = match load_document(&file)? {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    std::process::exit(1);
                }
            };
            let opts = swml::simulate::SimOptions {
                max_ms: max_seconds * 1000,
                ..Default::default()
            };
            let (trace, final_vars) = swml::simulate::simulate(doc.into_value(), opts);
            for line in trace {
                println!("{:>8.3}s  {}", line.at_ms as f64 / 1000.0, line.text);
            }
            if vars {
                println!("{}", serde_json::to_string_pretty(&final_vars)?);
            }
            Ok(())
        }
    }
}

fn serve(config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = config::Settings::load(config_file.as_deref())?;
    config::init_tracing(&settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dialtone")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(settings))
}

async fn run(settings: config::Settings) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        owner_only_files();
        match raise_fd_limit() {
            Some((soft, hard)) => info!(soft, hard, "open file limit"),
            None => tracing::warn!("cannot read the open file limit"),
        }
    }
    let creds = config::credentials(&settings)?;
    sip::install_crypto_provider();
    let mut node_cfg = node_config(&settings, &creds)?;
    // Held for as long as dialtone runs: dropping it stops the model's server.
    let _local_model = match (&node_cfg.ai, settings.ai_local_command.as_deref()) {
        (None, Some(command)) if !command.trim().is_empty() => {
            std::fs::create_dir_all(&settings.data_dir)
                .with_context(|| format!("creating {}", settings.data_dir.display()))?;
            let log = settings.data_dir.join("ai-local-model.log");
            let local = local_model::start(command, &log)?;
            node_cfg.ai = Some(node::config::AiBackend {
                base_url: local.base_url.clone(),
                api_key: None,
                model: "embedded".into(),
            });
            Some(local)
        }
        _ => None,
    };
    let node = node::Node::start(node_cfg)
        .await
        .context("starting the call runtime")?;
    let state = api::ApiState::new(
        std::sync::Arc::new(node.clone()),
        vec![api::Credential {
            project_id: creds.project_id,
            token: creds.api_token.clone(),
        }],
    )
    .with_max_body_bytes(settings.max_body_bytes)
    .with_reject_private_tap_addresses(!settings.tap_allow_private)
    .with_egress(std::sync::Arc::new(settings.egress.policy()?));
    // A second connection to the same database (WAL) for the operator's read-only routes.
    let operator_store = store::Store::open(settings.data_dir.join("dialtone.db"))
        .await
        .context("opening the store for operator routes")?;
    let app = api::router(state)
        .merge(operator::router(
            operator_store.clone(),
            vec![api::Credential {
                project_id: creds.project_id,
                token: creds.api_token.clone(),
            }],
        ))
        .merge(ops::router(ops::Probes {
            node: node.clone(),
            store: operator_store,
        }))
        .layer(axum::middleware::from_fn_with_state(
            node.metrics().clone(),
            ops::timed,
        ));
    let listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", settings.http_listen))?;
    info!(http = %listener.local_addr()?, sip = %node.sip_addr(), "dialtone is listening");
    let limits = http::Limits {
        max_connections: settings.http_max_connections,
        max_per_peer: settings.http_max_connections_per_peer,
        header_timeout: std::time::Duration::from_millis(settings.http_header_timeout_ms),
        idle_timeout: std::time::Duration::from_millis(settings.http_idle_timeout_ms),
        request_timeout: std::time::Duration::from_millis(settings.http_request_timeout_ms),
    };
    let drain = std::time::Duration::from_secs(settings.drain_secs);
    http::serve(listener, app, limits, drain_on_signal(node.clone(), drain)).await;
    node.shutdown_flushing(WEBHOOK_FLUSH).await;
    info!("dialtone stopped");
    Ok(())
}

/// How long a shutdown waits for the outbox to empty after the last call ended.
const WEBHOOK_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves once a SIGTERM (or Ctrl-C) came and the drain is over: new calls are refused at
/// once (API and SIP 503, `/ready` 503) while the API keeps serving, and live calls may go on
/// for up to `drain`; a second signal cuts the drain short. What is left is then hung up.
async fn drain_on_signal(node: node::Node, drain: std::time::Duration) {
    shutdown_signal().await;
    node.begin_drain();
    info!(
        live_calls = node.live_calls(),
        drain_secs = drain.as_secs(),
        "shutting down: no new calls, draining"
    );
    let wait = async {
        let deadline = tokio::time::Instant::now() + drain;
        while node.live_calls() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = wait => {}
        _ = shutdown_signal() => info!("second signal: the drain is cut short"),
    }
    info!(
        live_calls = node.live_calls(),
        "drain over; hanging up the rest"
    );
}

/// Raises the soft limit on open files to the hard limit, so that connection caps, not the
/// descriptor limit, decide what is refused. Returns (soft, hard) after the change.
#[cfg(unix)]
fn raise_fd_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim = wanted;
            }
        }
    }
    // rlim_t is not u64 on every platform.
    #[allow(clippy::unnecessary_cast)]
    Some((lim.rlim_cur as u64, lim.rlim_max as u64))
}

/// Files this process creates (database, credentials, recordings) are the owner's only.
#[cfg(unix)]
fn owner_only_files() {
    // SAFETY: umask has no memory effects.
    unsafe {
        libc::umask(0o077);
    }
}

/// The configured inbound routes; inline documents are loaded and validated now, so a bad one
/// stops the start with a clear message rather than failing calls later.
fn inbound_routes(s: &config::Settings) -> anyhow::Result<Vec<control::routing::InboundRoute>> {
    let mut routes = Vec::new();
    for r in &s.inbound_routes {
        let swml = match &r.swml {
            Some(text) => {
                let doc = swml::Document::from_text(text)
                    .map_err(|e| anyhow::anyhow!("inbound_routes {}: swml: {e}", r.destination))?;
                for w in doc.warnings() {
                    tracing::warn!(route = %r.destination, "inbound route swml: {w}");
                }
                Some(doc.into_value())
            }
            None => None,
        };
        routes.push(control::routing::InboundRoute {
            destination: r.destination.trim().to_string(),
            url: r.url.clone(),
            swml,
            status_url: r.status_url.clone(),
        });
    }
    if let Some(url) = &s.inbound_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("DIALTONE_INBOUND_URL must be an http(s) URL");
        }
        routes.retain(|r| r.destination != "*");
        routes.push(control::routing::InboundRoute {
            destination: "*".into(),
            url: Some(url.clone()),
            swml: None,
            status_url: None,
        });
    }
    Ok(routes)
}

fn node_config(
    s: &config::Settings,
    creds: &config::Credentials,
) -> anyhow::Result<node::NodeConfig> {
    let default_trunk = s
        .default_trunk
        .as_deref()
        .map(control::routing::Trunk::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("default_trunk: {e}"))?;
    let inbound_routes = inbound_routes(s)?;
    Ok(node::NodeConfig {
        inbound_routes,
        sip_listen: s.sip_listen,
        external_ip: config::external_ip(s)?,
        rtp_ports: s.rtp_port_range()?,
        rtp_latch: s.rtp_latch_policy()?,
        media_io: s.media_io_mode()?,
        media_thread_nice: s.media_thread_nice,
        data_dir: s.data_dir.clone(),
        project_id: creds.project_id,
        api_token: creds.api_token.clone(),
        signing_key: creds.signing_key.clone(),
        space_id: creds.space_id,
        node_id: creds.node_id,
        default_trunk,
        media_shards: if s.media_shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            s.media_shards
        },
        swml_fetch_timeout: std::time::Duration::from_millis(s.swml_fetch_timeout_ms),
        swml_max_bytes: s.swml_max_bytes,
        audio_max_bytes: s.audio_max_bytes,
        audio_max_seconds: s.audio_max_seconds,
        webhook_timeout: std::time::Duration::from_millis(s.webhook_timeout_ms),
        webhook_backoff: s
            .webhook_backoff_ms
            .iter()
            .map(|ms| std::time::Duration::from_millis(*ms))
            .collect(),
        webhook_retry: webhook::RetryPolicy {
            max_attempts: s.webhook_max_attempts,
            max_age: std::time::Duration::from_millis(s.webhook_max_age_ms),
            max_delay: std::time::Duration::from_millis(s.webhook_max_delay_ms),
        },
        webhook_per_destination: s.webhook_per_destination,
        webhook_retention: webhook::Retention {
            delivered: std::time::Duration::from_millis(s.webhook_keep_delivered_ms),
            given_up: std::time::Duration::from_millis(s.webhook_keep_failed_ms),
        },
        user_agent: format!("dialtone/{}", env!("CARGO_PKG_VERSION")),
        public_url: s
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", s.http_listen)),
        s3: s.storage.s3()?,
        egress: s.egress.policy()?,
        asr_command: s
            .asr_command
            .as_deref()
            .map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.is_empty()),
        codecs: s.codec_preference()?,
        inbound_encryption: s.encryption()?.0,
        outbound_encryption: s.encryption()?.1,
        sip_tcp: sip::TcpLimits {
            max_connections: s.sip_tcp_max_connections,
            max_silent: s.sip_tcp_max_silent,
            max_silent_per_peer: s.sip_tcp_max_silent_per_peer,
            first_data_timeout: std::time::Duration::from_millis(s.sip_tcp_first_data_timeout_ms),
            idle_timeout: std::time::Duration::from_millis(s.sip_tcp_idle_timeout_ms),
        },
        sip_tls: s.sip_tls()?,
        sip_tls_ca_pem: s.tls_ca_pem()?,
        ws_ca_pem: s.ws_ca_pem()?,
        tap_allow_private: s.tap_allow_private,
        fax_t38: s.fax_t38,
        ai: s
            .ai_base_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .map(|base_url| node::config::AiBackend {
                base_url,
                api_key: s.ai_api_key.clone(),
                model: s.ai_model.clone(),
            }),
        max_calls: s.max_calls,
        metrics: metrics::Metrics::new(),
        script_threads: if s.script_threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| (n.get() / 2).max(2))
        } else {
            s.script_threads
        },
        js_budget: s.swml_js_budget,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
