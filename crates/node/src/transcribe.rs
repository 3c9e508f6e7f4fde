//! Whole-call transcription (`calling.transcribe`): once a transcription's recording has ended
//! (stop, or the call's end — the actor may be gone by then), its audio is transcribed off the
//! async runtime and `calling.transcript.completed` / `.failed` goes to its `status_url`.
//!
//! The engine is the configured free-form one (`asr_command`, e.g. Whisper) when there is one,
//! else the embedded pocketsphinx in language-model mode; started on first use, one per node.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use crate::{now_ms, NodeInner};

/// Longest recording transcribed (4 h, the longest bridge).
const MAX_MS: u64 = 4 * 3600 * 1000;

/// A transcription's finished recording.
pub(crate) struct TranscriptJob {
    pub call_id: Uuid,
    pub project_id: Uuid,
    pub path: PathBuf,
    pub playable: bool,
    pub target: record::writer::TranscriptTarget,
}

pub(crate) type Engine = Result<Arc<dyn asr::Transcriber>, String>;

/// The node's transcriber, built on first use (starting an engine process takes a moment).
pub(crate) fn make_engine(command: Option<Vec<String>>) -> Engine {
    match command {
        Some(command) => asr::ProcessEngine::start(command)
            .map(|e| Arc::new(e) as Arc<dyn asr::Transcriber>)
            .map_err(|e| e.to_string()),
        None => asr::Pocketsphinx::new(asr::PocketsphinxConfig::default())
            .map(|e| Arc::new(e) as Arc<dyn asr::Transcriber>)
            .map_err(|e| e.to_string()),
    }
}

impl NodeInner {
    pub(crate) async fn transcribe_recording(self: Arc<Self>, job: TranscriptJob) {
        let command = self.cfg.asr_command.clone();
        let engine = self
            .transcriber
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || make_engine(command))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
            })
            .await
            .clone();
        let path = job.path.clone();
        let result = match (engine, job.playable) {
            (Err(why), _) => Err(format!("no transcription engine: {why}")),
            (Ok(_), false) => Err("the recording holds no audio".to_string()),
            (Ok(engine), true) => {
                tokio::task::spawn_blocking(move || transcribe_file(&*engine, &path))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
            }
        };
        let id = Uuid::new_v4();
        let (event_type, text) = match result {
            Ok(text) => {
                info!(call_id = %job.call_id, words = text.split_whitespace().count(), "transcript completed");
                ("calling.transcript.completed", Some(text))
            }
            Err(why) => {
                warn!(call_id = %job.call_id, %why, "transcript failed");
                ("calling.transcript.failed", None)
            }
        };
        let event = webhook::events::transcript_event(
            event_type,
            webhook::events::TranscriptIds {
                id,
                project_id: job.project_id,
                space_id: self.cfg.space_id,
                call_id: job.call_id,
                segment_id: job.target.segment_id,
            },
            text.as_deref(),
            now_ms(),
        );
        let _ = self
            .store
            .append_call_event(
                job.call_id,
                now_ms() as i64,
                "transcript",
                json!({ "id": id, "event_type": event_type, "text": text }).to_string(),
            )
            .await;
        if let Some(url) = job.target.status_url.as_deref() {
            self.notify(job.call_id, url, &event).await;
        }
    }
}

/// The text of a WAV recording (mono, the call's rate; other rates than 8 and 16 kHz are
/// resampled to 16 kHz first).
fn transcribe_file(
    engine: &dyn asr::Transcriber,
    path: &std::path::Path,
) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the recording: {e}"))?;
    let pcm = audio::decode(&bytes, Some("wav"), MAX_MS).map_err(|e| e.to_string())?;
    let (samples, rate): (Vec<i16>, u32) = match pcm.rate {
        8000 | 16_000 => (pcm.samples.to_vec(), pcm.rate),
        other => {
            let mut rs =
                media::resample::Resampler::new(other, 16_000).map_err(|e| e.to_string())?;
            let mut out =
                Vec::with_capacity(pcm.samples.len() * 16_000 / other.max(1) as usize + 1);
            rs.process(&pcm.samples, &mut out);
            (out, 16_000)
        }
    };
    engine
        .transcribe(&samples, rate, "en-US")
        .map_err(|e| e.to_string())
}
