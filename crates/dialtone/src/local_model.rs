//! The embedded language model (docs/ai.md): when no `ai_base_url` is set and
//! `ai_local_command` is, dialtone runs that command — an OpenAI-compatible server on a
//! loopback port dialtone picks (`{port}` in the command) — as a child process for as long as
//! it runs, and the `ai` agent talks to it. The model it ships (SmolLM2-135M) is tiny: fast,
//! and poor at conversation and tools, which the log says at start.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tracing::{info, warn};

/// How long the server may take to load its model before dialtone says it never came up.
const READY_WITHIN: Duration = Duration::from_secs(180);

/// The running server; dropping it stops the process.
pub struct LocalModel {
    pub base_url: String,
    _stop: oneshot::Sender<()>,
}

/// Starts `command` (split on whitespace; `{port}` replaced) with its output in `log_path`.
pub fn start(command: &str, log_path: &Path) -> anyhow::Result<LocalModel> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free loopback port for the embedded AI model")?
        .port();
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| w.replace("{port}", &port.to_string()))
        .collect();
    let (program, args) = words.split_first().context("ai_local_command is empty")?;
    let log = std::fs::File::create(log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent. The server dies
    // with dialtone even when dialtone is killed outright.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the embedded AI model ({program})"))?;
    warn!(
        command = %command,
        log = %log_path.display(),
        "starting the embedded AI model: a tiny local model that answers poorly and calls tools \
         unreliably; set ai_base_url (DIALTONE_AI_BASE_URL) to a real backend"
    );
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(async move {
        tokio::select! {
            status = child.wait() => match status {
                Ok(s) => warn!(status = %s, "the embedded AI model's server exited"),
                Err(e) => warn!(error = %e, "the embedded AI model's server is gone"),
            },
            _ = stopped => {
                let _ = child.kill().await;
            }
        }
    });
    tokio::spawn(wait_ready(port));
    Ok(LocalModel {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        _stop: stop,
    })
}

/// Logs once the server answers `GET /v1/models` (or that it never did).
async fn wait_ready(port: u16) {
    let started = Instant::now();
    while started.elapsed() < READY_WITHIN {
        if models_answer(port).await {
            info!(
                ms = started.elapsed().as_millis() as u64,
                "the embedded AI model is ready"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    warn!(
        secs = READY_WITHIN.as_secs(),
        "the embedded AI model did not come up; ai steps will say they cannot answer"
    );
}

async fn models_answer(port: u16) -> bool {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"GET /v1/models HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await?;
        Ok::<bool, std::io::Error>(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ask).await,
        Ok(Ok(true))
    )
}
