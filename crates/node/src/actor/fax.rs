//! Faxes on the call (the session decides, control::session::fax): the document to send is
//! fetched through the egress policy and rendered to fax pages, the fax terminal is installed
//! as the call's modem, its pages and end go to the session, and the pages received are kept
//! as a PDF served like recordings (`GET /api/calling/faxes/{id}.pdf`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use control::command::{FaxDirection, FaxTransferParams};
use control::session::{FaxResult, SessionEvent};
use media::fax::{FaxOutcome, FaxProgress};
use tracing::{info, warn, Instrument};
use uuid::Uuid;

use crate::actor::{CallActor, TaskDone};
use crate::shard::ShardCommand;

/// Key prefix of a fax terminal on the call's media (then the fax's control_id).
pub(crate) const FAX_PREFIX: &str = "fax:";
/// A document larger than this is refused.
const DOCUMENT_MAX_BYTES: usize = 20 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Rendering or converting a document takes at most this long.
const CONVERT_TIMEOUT: Duration = Duration::from_secs(60);
/// After the call ended mid-fax, how long to wait for the terminal to let go of its file.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A fax on the call, once its terminal is installed.
pub(crate) struct RunningFax {
    control: Arc<fax::FaxControl>,
    direction: FaxDirection,
    fax_id: Uuid,
    work: PathBuf,
    /// The document sent (its URL), or where the pages received will be served.
    document: Option<String>,
    identity: String,
    pages: u32,
    /// Set once the terminal finished: the result, when its PDF is made.
    finishing: Option<tokio::sync::oneshot::Receiver<FaxResult>>,
    /// What its terminal was made for (a move to T.38 makes it again).
    job: fax::FaxJob,
}

impl RunningFax {
    /// Whether its T.30 session may start over on T.38: nothing of the document went yet.
    pub(crate) fn may_restart(&self) -> bool {
        self.pages == 0 && self.finishing.is_none()
    }

    /// Its terminal still runs (it has not finished).
    pub(crate) fn finishing_pending(&self) -> bool {
        self.finishing.is_none()
    }
}

/// What the node's tasks hand back for a fax.
pub(crate) enum FaxTask {
    /// The document is rendered (send) into `tiff` under `work`.
    Ready {
        fax_id: Uuid,
        work: PathBuf,
        tiff: PathBuf,
    },
    /// The fax could not start (document, rendering) or is over: its result.
    Done(FaxResult),
    /// The far end answered our T.38 offer for the fax that is `ready` (t38.rs).
    T38Answer {
        ready: Box<FaxTask>,
        offer: String,
        reply: Result<sip::Reoffer, String>,
    },
}

fn failure(text: impl Into<String>) -> FaxResult {
    FaxResult {
        result_text: text.into(),
        result_code: -1,
        ..FaxResult::default()
    }
}

/// The station id to send when the step gave none: the number of this call's own end,
/// T.30's 20 characters of digits, `+` and spaces.
fn default_identity(own: &str) -> String {
    let user = own
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .split(['@', ';'])
        .next()
        .unwrap_or("");
    user.chars()
        .filter(|c| c.is_ascii_digit() || *c == '+' || *c == ' ')
        .take(20)
        .collect()
}

/// Runs `cmd` with a time limit; Err says why it failed.
async fn run_tool(cmd: std::process::Command, what: &str) -> Result<(), String> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let out = tokio::time::timeout(CONVERT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("{what} took longer than {} s", CONVERT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{what} could not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{what} failed: {}",
            err.lines().next().unwrap_or("no output")
        ))
    }
}

/// Fetches the PDF (egress policy, size cap) and renders it to fax pages.
async fn render_document(
    http: egress::EgressClient,
    url: String,
    work: PathBuf,
) -> Result<PathBuf, String> {
    let parsed = reqwest::Url::parse(&url).map_err(|_| format!("invalid document URL {url}"))?;
    let send = http
        .get(parsed)
        .map_err(|e| e.to_string())?
        .timeout(FETCH_TIMEOUT)
        .send();
    let mut resp = tokio::time::timeout(FETCH_TIMEOUT, send)
        .await
        .map_err(|_| "fetching the document timed out".to_string())?
        .map_err(|e| egress::refusal(&e).map_or_else(|| e.to_string(), ToString::to_string))?;
    if !resp.status().is_success() {
        return Err(format!("fetching the document answered {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > DOCUMENT_MAX_BYTES {
            return Err(format!(
                "the document is larger than {DOCUMENT_MAX_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if !body.starts_with(b"%PDF") {
        return Err("the document is not a PDF".into());
    }
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| e.to_string())?;
    let pdf = work.join("document.pdf");
    let tiff = work.join("document.tif");
    tokio::fs::write(&pdf, &body)
        .await
        .map_err(|e| e.to_string())?;
    run_tool(
        fax::tiff::render_command(&pdf, &tiff),
        "rendering the document",
    )
    .await?;
    let rendered = tokio::fs::read(&tiff).await.map_err(|e| e.to_string())?;
    match fax::tiff::count_pages(&rendered) {
        Some(n) if n > 0 => Ok(tiff),
        _ => Err("the document has no pages".into()),
    }
}

/// Turns the pages received into the fax's PDF in storage. Ok(false): no page came.
async fn keep_received(
    storage: &storage::Recordings,
    project: Uuid,
    fax_id: Uuid,
    tiff: &Path,
) -> Result<bool, String> {
    let data = match tokio::fs::read(tiff).await {
        Ok(d) => d,
        Err(_) => return Ok(false),
    };
    if fax::tiff::count_pages(&data).unwrap_or(0) == 0 {
        return Ok(false);
    }
    storage.ready(project).await.map_err(|e| e.to_string())?;
    let dest = storage.fax_path(project, fax_id);
    let partial = dest.with_extension("pdf.part");
    run_tool(
        fax::tiff::pdf_command(tiff, &partial),
        "converting the fax to PDF",
    )
    .await?;
    tokio::fs::rename(&partial, &dest)
        .await
        .map_err(|e| e.to_string())?;
    storage.upload_fax(project, fax_id).await;
    Ok(true)
}

impl CallActor {
    fn fax_task(&self, control_id: String, task: FaxTask) {
        let _ = self.tasks_tx.send(TaskDone::Fax {
            control_id,
            task: Box::new(task),
        });
    }

    fn fax_work_dir(&self, fax_id: Uuid) -> PathBuf {
        self.node
            .cfg
            .data_dir
            .join("fax-work")
            .join(fax_id.to_string())
    }

    /// Gets the fax the session asked for ready; it runs once [`CallActor::install_fax`] did.
    pub(crate) fn start_fax(&mut self, params: FaxTransferParams) {
        let control_id = params.control_id.clone();
        self.fax_params.insert(
            control_id.clone(),
            PendingFax {
                params: params.clone(),
                stop_requested: false,
                t38_offered: false,
                transport: "audio",
            },
        );
        // An inbound call answered a moment ago runs its media once the ACK comes; its codec
        // is settled already.
        let codec = self.media.as_ref().map(|m| m.codec).or_else(|| {
            self.inbound
                .as_ref()
                .and_then(|i| i.answer.as_ref())
                .map(|(_, m)| m.codec)
        });
        if !matches!(codec, Some(sdp::Codec::Pcmu | sdp::Codec::Pcma)) {
            let why = match codec {
                Some(c) => format!("fax needs G.711 (PCMU or PCMA); this call uses {c:?}"),
                None => "the call has no media".to_string(),
            };
            warn!(%control_id, %why, "fax refused");
            return self.fax_task(control_id, FaxTask::Done(failure(why)));
        }
        self.answer_waiting_t38_offer();
        let fax_id = Uuid::new_v4();
        let work = self.fax_work_dir(fax_id);
        info!(%control_id, %fax_id, direction = params.direction.as_str(), "fax starting");
        match params.direction {
            FaxDirection::Send => {
                let http = self.node.http.clone();
                let url = params.document.clone().unwrap_or_default();
                let tx = self.tasks_tx.clone();
                tokio::spawn(
                    async move {
                        let task = match render_document(http, url, work.clone()).await {
                            Ok(tiff) => FaxTask::Ready { fax_id, work, tiff },
                            Err(why) => {
                                warn!(%why, "fax document unusable");
                                let _ = tokio::fs::remove_dir_all(&work).await;
                                FaxTask::Done(failure(why))
                            }
                        };
                        let _ = tx.send(TaskDone::Fax {
                            control_id,
                            task: Box::new(task),
                        });
                    }
                    .in_current_span(),
                );
            }
            FaxDirection::Receive => {
                let tiff = work.join("received.tif");
                match std::fs::create_dir_all(&work) {
                    Ok(()) => self.fax_task(control_id, FaxTask::Ready { fax_id, work, tiff }),
                    Err(e) => self.fax_task(control_id, FaxTask::Done(failure(e.to_string()))),
                }
            }
        }
    }

    pub(crate) async fn on_fax_task(&mut self, control_id: String, task: FaxTask) {
        match task {
            FaxTask::Ready { fax_id, work, tiff } => {
                self.install_fax(control_id, fax_id, work, tiff).await
            }
            FaxTask::T38Answer {
                ready,
                offer,
                reply,
            } => {
                self.on_t38_answer(offer, reply);
                if let FaxTask::Ready { fax_id, work, tiff } = *ready {
                    self.install_fax(control_id, fax_id, work, tiff).await
                }
            }
            FaxTask::Done(result) => {
                let pending = self.fax_params.remove(&control_id);
                if self.faxes.remove(&control_id).is_some() {
                    self.node.cfg.metrics.faxes_active.dec();
                }
                if let Some(p) = pending {
                    count_fax(&self.node, p.params.direction, p.transport, result.success);
                }
                self.op_event(SessionEvent::FaxFinished { control_id, result })
                    .await
            }
        }
    }

    /// The fax terminal goes onto the call's media; the fax runs.
    async fn install_fax(
        &mut self,
        control_id: String,
        fax_id: Uuid,
        work: PathBuf,
        tiff: PathBuf,
    ) {
        let Some(params) = self.fax_params.get(&control_id).cloned() else {
            let _ = tokio::fs::remove_dir_all(&work).await;
            return;
        };
        if params.stop_requested {
            // Stopped while the document was being fetched (or T.38 negotiated).
            let _ = tokio::fs::remove_dir_all(&work).await;
            self.fax_params.remove(&control_id);
            self.t38_fax_over(&control_id);
            let result = failure("stopped");
            return self
                .op_event(SessionEvent::FaxFinished { control_id, result })
                .await;
        }
        let own = if self.inbound.is_some() {
            &self.record.to
        } else {
            &self.record.from
        };
        let identity = params
            .params
            .identity
            .clone()
            .unwrap_or_else(|| default_identity(own));
        let direction = params.params.direction;
        if direction == FaxDirection::Receive
            && !params.t38_offered
            && self.t38.is_none()
            && !self.media_running
            && self.t38_allowed()
        {
            // T.38 is offered once the call is confirmed (its media runs then).
            self.faxes_awaiting_media
                .push((control_id, FaxTask::Ready { fax_id, work, tiff }));
            return;
        }
        if direction == FaxDirection::Receive
            && !params.t38_offered
            && self.t38.is_none()
            && self.t38_possible()
        {
            if let Some(p) = self.fax_params.get_mut(&control_id) {
                p.t38_offered = true;
            }
            return self.offer_t38(control_id, FaxTask::Ready { fax_id, work, tiff });
        }
        let job = fax::FaxJob {
            direction: match direction {
                FaxDirection::Send => fax::FaxDirection::Send { tiff },
                FaxDirection::Receive => fax::FaxDirection::Receive { tiff },
            },
            calling_party: self.inbound.is_none(),
            identity: Some(identity.clone()).filter(|i| !i.is_empty()),
            header_info: params.params.header_info.clone(),
            ecm: true,
        };
        let key = format!("{FAX_PREFIX}{control_id}");
        let installed = match self.t38.as_ref().map(|m| m.negotiated.clone()) {
            Some(negotiated) => self.install_t38_terminal(&job, &negotiated, key),
            None => self.install_audio_terminal(&job, key),
        };
        let control = match installed {
            Ok(c) => c,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&work).await;
                self.fax_params.remove(&control_id);
                let result = failure(e.to_string());
                return self
                    .op_event(SessionEvent::FaxFinished { control_id, result })
                    .await;
            }
        };
        let document = match direction {
            FaxDirection::Send => params.params.document.clone(),
            FaxDirection::Receive => Some(format!(
                "{}/api/calling/faxes/{fax_id}.pdf",
                self.node.cfg.public_url.trim_end_matches('/')
            )),
        };
        let transport = self.fax_transport();
        if let Some(p) = self.fax_params.get_mut(&control_id) {
            p.transport = transport;
        }
        info!(%control_id, transport, "fax running");
        self.node.cfg.metrics.faxes_active.inc();
        self.faxes.insert(
            control_id.clone(),
            RunningFax {
                control,
                direction,
                fax_id,
                work,
                document: document.clone(),
                identity: identity.clone(),
                pages: 0,
                finishing: None,
                job,
            },
        );
        self.op_event(SessionEvent::FaxStarted {
            control_id,
            document,
            identity,
        })
        .await;
    }

    /// What the fax terminal reported.
    pub(crate) async fn on_fax_progress(&mut self, control_id: String, progress: FaxProgress) {
        match progress {
            FaxProgress::Page { number } => {
                if let Some(f) = self.faxes.get_mut(&control_id) {
                    f.pages = f.pages.max(number);
                }
                info!(%control_id, page = number, "fax page");
                self.op_event(SessionEvent::FaxPage { control_id, number })
                    .await
            }
            FaxProgress::Finished(outcome) => self.fax_finished(control_id, outcome),
        }
    }

    /// The fax is over: its terminal comes off the media, the pages received become the PDF,
    /// then the session hears the result ([`FaxTask::Done`]).
    fn fax_finished(&mut self, control_id: String, outcome: FaxOutcome) {
        let Some(running) = self.faxes.get_mut(&control_id) else {
            return;
        };
        if running.finishing.is_some() {
            return;
        }
        // Kept until the result is in: a hang-up meanwhile waits for it (abandon_fax).
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        running.finishing = Some(result_rx);
        let f = FinishedFax {
            direction: running.direction,
            fax_id: running.fax_id,
            work: running.work.clone(),
            document: running.document.clone(),
            identity: running.identity.clone(),
        };
        if let Ok(mut deferred) = self.deferred_modem.lock() {
            *deferred = None;
        }
        info!(%control_id, success = outcome.success, code = outcome.code, text = %outcome.text,
            pages = outcome.pages, "fax finished");
        let call_id = self.ident.call_id;
        let key = format!("{FAX_PREFIX}{control_id}");
        self.node.media.send(
            self.media_key,
            ShardCommand::SetModem {
                call_id,
                key: key.clone(),
                modem: None,
            },
        );
        self.node.media.send(
            self.media_key,
            ShardCommand::SetPacketModem {
                call_id,
                key,
                modem: None,
            },
        );
        self.t38_fax_over(&control_id);
        let storage = self.node.storage.clone();
        let project = self.ident.project_id;
        let tx = self.tasks_tx.clone();
        tokio::spawn(
            async move {
                let mut result = FaxResult {
                    success: outcome.success,
                    result_code: outcome.code,
                    result_text: outcome.text,
                    pages: outcome.pages,
                    identity: f.identity,
                    remote_identity: outcome.remote_identity,
                    document: f.document.clone(),
                };
                if f.direction == FaxDirection::Receive {
                    let tiff = f.work.join("received.tif");
                    match keep_received(&storage, project, f.fax_id, &tiff).await {
                        Ok(true) => {}
                        Ok(false) => result.document = None,
                        Err(why) => {
                            warn!(%why, "received fax not kept");
                            result.document = None;
                            result.success = false;
                            result.result_text = why;
                        }
                    }
                }
                let _ = tokio::fs::remove_dir_all(&f.work).await;
                let _ = result_tx.send(result.clone());
                let _ = tx.send(TaskDone::Fax {
                    control_id,
                    task: Box::new(FaxTask::Done(result)),
                });
            }
            .in_current_span(),
        );
    }

    /// `.stop`: the terminal ends the session at its next frame (its `Finished` follows).
    pub(crate) fn stop_fax(&mut self, control_id: &str) {
        if let Some(f) = self.faxes.get(control_id) {
            f.control.stop();
        } else if let Some(p) = self.fax_params.get_mut(control_id) {
            p.stop_requested = true;
        }
    }

    /// The call ended mid-fax: once the terminal let go of its file (the call's media is
    /// gone, and the terminal with it), the pages received so far become the PDF and the
    /// `finished` event says how it ended — a success when the last page was confirmed before
    /// the hang-up.
    pub(crate) fn abandon_fax(
        &mut self,
        control_id: String,
        direction: FaxDirection,
        status_url: Option<String>,
        stopped: bool,
    ) {
        let transport = self
            .fax_params
            .remove(&control_id)
            .map_or("audio", |p| p.transport);
        let mut running = self.faxes.remove(&control_id);
        let awaiting = self
            .faxes_awaiting_media
            .iter()
            .position(|(id, _)| *id == control_id)
            .map(|i| self.faxes_awaiting_media.remove(i).1);
        if let Some(FaxTask::Ready { work, .. }) = awaiting {
            tokio::spawn(async move {
                let _ = tokio::fs::remove_dir_all(&work).await;
            });
        }
        if running.is_some() {
            self.node.cfg.metrics.faxes_active.dec();
        }
        let storage = self.node.storage.clone();
        let node = self.node.clone();
        let ident = self.ident.clone();
        tokio::spawn(
            async move {
                let mut result = failure("hangup");
                if let Some(done) = running.as_mut().and_then(|f| f.finishing.take()) {
                    // It had finished already: its own result (and PDF) stand.
                    if let Ok(Ok(r)) = tokio::time::timeout(CONVERT_TIMEOUT, done).await {
                        result = r;
                    }
                } else if let Some(f) = running {
                    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
                    while !f.control.closed() && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let outcome = f.control.outcome();
                    let pages = outcome.as_ref().map_or(f.pages, |o| o.pages.max(f.pages));
                    result = FaxResult {
                        success: outcome.as_ref().is_some_and(|o| o.success),
                        result_code: outcome.as_ref().map_or(-1, |o| o.code),
                        result_text: outcome
                            .as_ref()
                            .filter(|o| o.success)
                            .map_or_else(|| "hangup".to_string(), |o| o.text.clone()),
                        pages,
                        identity: f.identity.clone(),
                        remote_identity: outcome.map(|o| o.remote_identity).unwrap_or_default(),
                        document: f.document.clone(),
                    };
                    if direction == FaxDirection::Receive {
                        let tiff = f.work.join("received.tif");
                        match keep_received(&storage, ident.project_id, f.fax_id, &tiff).await {
                            Ok(true) => {}
                            Ok(false) => result.document = None,
                            Err(why) => {
                                warn!(%why, "pages of a fax cut by hang-up not kept");
                                result.document = None;
                            }
                        }
                    }
                    let _ = tokio::fs::remove_dir_all(&f.work).await;
                }
                if stopped {
                    result.success = false;
                    result.result_text = "stopped".into();
                }
                info!(%control_id, success = result.success, pages = result.pages,
                    text = %result.result_text, "fax ended with the call");
                count_fax(&node, direction, transport, result.success);
                let event = control::session::CallEvent::Fax {
                    control_id,
                    status_url,
                    direction,
                    progress: control::session::FaxProgress::Finished(result),
                };
                if let Some((name, Some(url), mut params)) =
                    webhook::events::operation_event(event, None)
                {
                    params["call_id"] = serde_json::json!(ident.call_id);
                    params["node_id"] = serde_json::json!(ident.node_id);
                    let event = ident.envelope(name, crate::now_ms(), params);
                    node.notify(ident.call_id, &url, &event).await;
                }
            }
            .in_current_span(),
        );
    }
}

impl CallActor {
    /// What a fax terminal started now runs over.
    fn fax_transport(&self) -> &'static str {
        if self.t38.is_some() {
            "t38"
        } else {
            "audio"
        }
    }

    /// A G.711 terminal becomes the call's modem (deferred until the media runs).
    fn install_audio_terminal(
        &mut self,
        job: &fax::FaxJob,
        key: String,
    ) -> Result<Arc<fax::FaxControl>, fax::FaxError> {
        let (terminal, control) = fax::FaxTerminal::new(job)?;
        if self.media_running {
            self.node.media.send(
                self.media_key,
                ShardCommand::SetModem {
                    call_id: self.ident.call_id,
                    key,
                    modem: Some(Box::new(terminal)),
                },
            );
        } else if let Ok(mut deferred) = self.deferred_modem.lock() {
            *deferred = Some((key, Box::new(terminal)));
        }
        Ok(control)
    }

    /// A T.38 terminal carries the call in place of RTP.
    fn install_t38_terminal(
        &mut self,
        job: &fax::FaxJob,
        negotiated: &sdp::T38Negotiated,
        key: String,
    ) -> Result<Arc<fax::FaxControl>, fax::FaxError> {
        let config = crate::actor::t38::terminal_config(negotiated);
        let (terminal, control) = fax::T38Terminal::new(job, &config, rand::random())?;
        self.node.media.send(
            self.media_key,
            ShardCommand::SetPacketModem {
                call_id: self.ident.call_id,
                key,
                modem: Some(Box::new(terminal)),
            },
        );
        Ok(control)
    }

    /// The call moved to T.38 under a fax whose G.711 session got nothing across yet: it
    /// starts over on a T.38 terminal.
    pub(crate) fn restart_fax_on_t38(&mut self, control_id: &str) {
        let Some(negotiated) = self.t38.as_ref().map(|m| m.negotiated.clone()) else {
            return;
        };
        let Some(job) = self.faxes.get(control_id).map(|f| f.job.clone()) else {
            return;
        };
        let key = format!("{FAX_PREFIX}{control_id}");
        if let Ok(mut deferred) = self.deferred_modem.lock() {
            *deferred = None;
        }
        self.node.media.send(
            self.media_key,
            ShardCommand::SetModem {
                call_id: self.ident.call_id,
                key: key.clone(),
                modem: None,
            },
        );
        match self.install_t38_terminal(&job, &negotiated, key) {
            Ok(control) => {
                info!(%control_id, "fax restarted on T.38");
                if let Some(f) = self.faxes.get_mut(control_id) {
                    f.control = control;
                }
                if let Some(p) = self.fax_params.get_mut(control_id) {
                    p.transport = "t38";
                }
            }
            Err(e) => warn!(%control_id, error = %e, "fax could not restart on T.38"),
        }
    }
}

fn count_fax(
    node: &crate::NodeInner,
    direction: FaxDirection,
    transport: &'static str,
    success: bool,
) {
    let result = if success { "success" } else { "failed" };
    node.cfg
        .metrics
        .faxes
        .with(&[direction.as_str(), result, transport])
        .inc();
}

/// What the end of a fax needs of it.
struct FinishedFax {
    direction: FaxDirection,
    fax_id: Uuid,
    work: PathBuf,
    document: Option<String>,
    identity: String,
}

/// A fax the session started, until it ends.
#[derive(Clone)]
pub(crate) struct PendingFax {
    pub params: FaxTransferParams,
    /// `.stop` came while the document was being fetched.
    pub stop_requested: bool,
    /// T.38 was offered for it already (a receiving fax offers once).
    pub t38_offered: bool,
    /// How its terminal runs: `audio` (G.711) or `t38`, for the metrics.
    pub transport: &'static str,
}

#[cfg(test)]
mod tests {
    use super::default_identity;

    #[test]
    fn the_default_identity_is_the_own_number() {
        assert_eq!(default_identity("+15551230000"), "+15551230000");
        assert_eq!(
            default_identity("sip:+1555@example.com;user=phone"),
            "+1555"
        );
        assert_eq!(default_identity("sip:alice@example.com"), "");
        assert_eq!(default_identity("+1234567890123456789012345").len(), 20);
    }
}
