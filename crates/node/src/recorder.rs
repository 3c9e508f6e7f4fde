//! The node's recording writer: one thread that owns every open recording file. Media shards
//! hand it each recorded call's 20 ms frames (what the far end said, what we sent) without
//! blocking; it writes them with `record::Recorder` (WAV or MP3), runs the VAD that ends a recording on
//! `initial_timeout` / `end_silence_timeout`, enforces `max_length`, and reports every ending
//! to the node — which queues the `calling.call.record` webhook itself, so a recording that
//! ends because the call did is still reported.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::thread;

use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

/// One tick of a recorded call's audio.
pub struct TapFrame {
    pub call_id: Uuid,
    /// What the far end said (decoded; zeros when nothing arrived).
    pub heard: Vec<i16>,
    /// What we sent.
    pub sent: Vec<i16>,
}

/// What the recorder needs to know about a recording's limits.
#[derive(Debug, Clone)]
pub struct RecordLimits {
    pub max_length_ms: Option<u64>,
    pub initial_timeout_ms: Option<u64>,
    pub end_silence_ms: Option<u64>,
    pub sensitivity: u8,
    /// The VAD listens to what the far end says (else to what we send).
    pub vad_on_heard: bool,
}

/// Who to tell when the recording ends (the webhook is built from it).
#[derive(Debug, Clone)]
pub struct RecordingMeta {
    pub control_id: String,
    pub status_url: Option<String>,
    pub url: String,
    pub format: String,
    pub audio: serde_json::Value,
    pub started_ms: u64,
    pub project_id: Uuid,
}

pub struct StartRecording {
    pub rec_id: Uuid,
    pub call_id: Uuid,
    pub path: PathBuf,
    pub format: record::Format,
    pub opts: record::RecordingOptions,
    pub limits: RecordLimits,
    pub meta: RecordingMeta,
}

pub enum RecorderInput {
    Frame(TapFrame),
    Start(Box<StartRecording>),
    Pause {
        rec_id: Uuid,
        behavior: record::PauseBehavior,
    },
    Resume {
        rec_id: Uuid,
    },
    Stop {
        rec_id: Uuid,
    },
    Shutdown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordingOutcome {
    /// Stopped, terminator, end of speech, max length or hang-up.
    Finished,
    /// Nothing was said within `initial_timeout`.
    NoInput,
    Error(String),
}

#[derive(Debug, Clone)]
pub struct RecordingDone {
    pub rec_id: Uuid,
    pub call_id: Uuid,
    pub outcome: RecordingOutcome,
    pub duration_ms: u64,
    pub size_bytes: u64,
    /// The file holds playable audio (always on finished / no_input; on error when writes
    /// failed after some audio was written).
    pub playable: bool,
    pub meta: RecordingMeta,
}

struct Open {
    call_id: Uuid,
    writer: record::Recorder,
    limits: RecordLimits,
    meta: RecordingMeta,
    vad: media::vad::Vad,
    heard_speech: bool,
    frames: u64,
}

#[derive(Clone)]
pub struct RecorderHandle {
    tx: std_mpsc::Sender<RecorderInput>,
}

impl RecorderHandle {
    /// Starts the writer thread; endings go to `done`.
    pub fn start(done: mpsc::UnboundedSender<RecordingDone>) -> std::io::Result<RecorderHandle> {
        let (tx, rx) = std_mpsc::channel();
        thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(rx, done))?;
        Ok(RecorderHandle { tx })
    }

    /// Never blocks (the media thread calls it every tick of a recorded call).
    pub fn send(&self, input: RecorderInput) {
        let _ = self.tx.send(input);
    }
}

fn run(rx: std_mpsc::Receiver<RecorderInput>, done: mpsc::UnboundedSender<RecordingDone>) {
    let mut open: HashMap<Uuid, Open> = HashMap::new();
    // Each call's open recordings: a frame finds its files without a scan of all of them.
    let mut by_call: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let forget = |by_call: &mut HashMap<Uuid, Vec<Uuid>>, open: &HashMap<Uuid, Open>, rec_id| {
        if let Some(call_id) = open.get(&rec_id).map(|r| r.call_id) {
            if let Some(ids) = by_call.get_mut(&call_id) {
                ids.retain(|id| *id != rec_id);
                if ids.is_empty() {
                    by_call.remove(&call_id);
                }
            }
        }
    };
    while let Ok(input) = rx.recv() {
        match input {
            RecorderInput::Frame(f) => {
                let mut ended = Vec::new();
                for rec_id in by_call.get(&f.call_id).into_iter().flatten() {
                    if let Some(rec) = open.get_mut(rec_id) {
                        if let Some(outcome) = write(rec, &f) {
                            ended.push((*rec_id, outcome));
                        }
                    }
                }
                for (rec_id, outcome) in ended {
                    forget(&mut by_call, &open, rec_id);
                    close(&mut open, rec_id, outcome, &done);
                }
            }
            RecorderInput::Start(start) => {
                let StartRecording {
                    rec_id,
                    call_id,
                    path,
                    format,
                    opts,
                    limits,
                    meta,
                } = *start;
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                match record::Recorder::create_as(&path, opts, format) {
                    Ok(writer) => {
                        let vad = media::vad::Vad::new(opts.sample_rate, limits.sensitivity);
                        by_call.entry(call_id).or_default().push(rec_id);
                        open.insert(
                            rec_id,
                            Open {
                                call_id,
                                writer,
                                limits,
                                meta,
                                vad,
                                heard_speech: false,
                                frames: 0,
                            },
                        );
                    }
                    Err(e) => {
                        warn!(%rec_id, error = %e, "recording could not start");
                        let _ = done.send(RecordingDone {
                            rec_id,
                            call_id,
                            outcome: RecordingOutcome::Error(e.to_string()),
                            duration_ms: 0,
                            size_bytes: 0,
                            playable: false,
                            meta,
                        });
                    }
                }
            }
            RecorderInput::Pause { rec_id, behavior } => {
                if let Some(r) = open.get_mut(&rec_id) {
                    r.writer.pause(behavior);
                }
            }
            RecorderInput::Resume { rec_id } => {
                if let Some(r) = open.get_mut(&rec_id) {
                    r.writer.resume();
                }
            }
            RecorderInput::Stop { rec_id } => {
                forget(&mut by_call, &open, rec_id);
                close(&mut open, rec_id, RecordingOutcome::Finished, &done)
            }
            RecorderInput::Shutdown => break,
        }
    }
    // Shutting down: finish every file so none is left without its header.
    let ids: Vec<Uuid> = open.keys().copied().collect();
    for rec_id in ids {
        close(&mut open, rec_id, RecordingOutcome::Finished, &done);
    }
}

/// Writes one frame; returns how the recording ends if this frame ends it.
fn write(rec: &mut Open, f: &TapFrame) -> Option<RecordingOutcome> {
    if let Err(e) = rec.writer.write_frame(Some(&f.heard), Some(&f.sent)) {
        return Some(RecordingOutcome::Error(e.to_string()));
    }
    rec.frames += 1;
    let elapsed_ms = rec.frames * 20;
    let voice = if rec.limits.vad_on_heard {
        &f.heard
    } else {
        &f.sent
    };
    rec.vad.push_frame(voice);
    if rec.vad.is_speech() {
        rec.heard_speech = true;
    }
    if rec
        .limits
        .max_length_ms
        .is_some_and(|max| rec.writer.duration_ms() >= max)
    {
        return Some(RecordingOutcome::Finished);
    }
    if !rec.heard_speech {
        if rec
            .limits
            .initial_timeout_ms
            .is_some_and(|t| elapsed_ms >= t)
        {
            return Some(RecordingOutcome::NoInput);
        }
    } else if rec
        .limits
        .end_silence_ms
        .is_some_and(|t| !rec.vad.is_speech() && u64::from(rec.vad.silence_ms()) >= t)
    {
        return Some(RecordingOutcome::Finished);
    }
    None
}

fn close(
    open: &mut HashMap<Uuid, Open>,
    rec_id: Uuid,
    outcome: RecordingOutcome,
    done: &mpsc::UnboundedSender<RecordingDone>,
) {
    let Some(rec) = open.remove(&rec_id) else {
        return;
    };
    let path = rec.writer.path().to_path_buf();
    let format = rec.writer.format();
    // A write error already decided the outcome; finishing then fails too (nothing more is
    // written), and the file is repaired so what reached it plays.
    let finished = match outcome {
        RecordingOutcome::Error(e) => {
            // Closed before the repair, so nothing buffered lands after it.
            drop(rec.writer);
            Err(e)
        }
        ok => rec
            .writer
            .finish()
            .map(|info| (ok, info))
            .map_err(|e| e.to_string()),
    };
    let (outcome, duration_ms, size_bytes, playable) = match finished {
        Ok((outcome, info)) => (outcome, info.duration_ms, info.size_bytes, true),
        Err(why) => {
            warn!(%rec_id, error = %why, "recording failed");
            match repair(&path, format) {
                Ok(info) => (
                    RecordingOutcome::Error(why),
                    info.duration_ms,
                    info.size_bytes,
                    info.duration_ms > 0,
                ),
                Err(_) => (RecordingOutcome::Error(why), 0, 0, false),
            }
        }
    };
    let _ = done.send(RecordingDone {
        rec_id,
        call_id: rec.call_id,
        outcome,
        duration_ms,
        size_bytes,
        playable,
        meta: rec.meta,
    });
}

fn repair(
    path: &std::path::Path,
    format: record::Format,
) -> Result<record::RecordingInfo, record::RecordError> {
    match format {
        record::Format::Wav => record::repair(path),
        record::Format::Mp3 => record::repair_mp3(path),
    }
}

/// A recording file in the data dir: `<project>/<recording id>.<format>`.
pub(crate) struct StoredRecording {
    pub project: String,
    pub path: std::path::PathBuf,
    pub format: record::Format,
}

/// Every recording file below `dir` (files of other kinds are skipped).
pub(crate) fn stored_recordings(dir: &std::path::Path) -> Vec<StoredRecording> {
    let mut out = Vec::new();
    let Ok(projects) = std::fs::read_dir(dir) else {
        return out;
    };
    for project in projects.flatten() {
        let Ok(files) = std::fs::read_dir(project.path()) else {
            continue;
        };
        let name = project.file_name().to_string_lossy().into_owned();
        for file in files.flatten() {
            let path = file.path();
            let format = path
                .extension()
                .and_then(|e| e.to_str())
                .and_then(record::Format::from_name);
            if let Some(format) = format {
                out.push(StoredRecording {
                    project: name.clone(),
                    path,
                    format,
                });
            }
        }
    }
    out
}

/// Makes every recording a crash left behind playable (WAV: header sizes from the file
/// length; MP3: a partial last frame cut off).
pub fn repair_all(dir: &std::path::Path) {
    for rec in stored_recordings(dir) {
        if let Err(e) = repair(&rec.path, rec.format) {
            warn!(path = %rec.path.display(), error = %e, "recording could not be repaired");
        }
    }
}
