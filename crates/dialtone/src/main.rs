//! `dialtone`: one binary. `dialtone serve` runs the HTTP API, SIP, media, webhooks and storage.

mod config;
mod unbuilt;

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
    /// Check a SWML document (JSON or YAML): the schema, then labels, sections and expressions.
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
            let doc = match load_document(&file)? {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    std::process::exit(1);
                }
            };
            let findings = swml::lint::lint(doc.as_value());
            if findings.is_empty() {
                println!("{}: valid", file.display());
                return Ok(());
            }
            for f in &findings {
                eprintln!("{}: {}: {}", file.display(), f.path, f.message);
            }
            std::process::exit(1);
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
    let creds = config::credentials(&settings)?;
    let state = api::ApiState::new(
        std::sync::Arc::new(unbuilt::UnbuiltNode),
        vec![api::Credential {
            project_id: creds.project_id,
            token: creds.api_token.clone(),
        }],
    )
    .with_max_body_bytes(settings.max_body_bytes);
    let app = api::router(state);
    let listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", settings.http_listen))?;
    info!(http = %listener.local_addr()?, "dialtone is listening (API only: the SIP calling runtime is not built yet)");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server")?;
    Ok(())
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
