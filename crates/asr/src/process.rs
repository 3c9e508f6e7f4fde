//! A speech engine in another process: free-form recognisers (Whisper through faster-whisper,
//! say) that are too heavy or too foreign to link, driven over stdin/stdout one utterance at a
//! time. Protocol (see scripts/asr/faster_whisper_engine.py): a JSON header line
//! `{"rate", "bytes", "language", "hints"}` then the PCM (16-bit little-endian mono); the
//! engine answers one JSON line, `{"text", "confidence"}` or `{"error"}`. It prints
//! `{"ready": true}` once loaded.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::{AsrError, RecognitionRequest, Recognizer, SpeechEngine, Transcript};

/// Longest utterance sent to the engine (60 s at 16 kHz): a runaway collect cannot make the
/// engine buffer without bound.
const MAX_SAMPLES: usize = 16_000 * 60;

struct Engine {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A recogniser process, started once and restarted if it dies; requests are served one at a
/// time (the node has one recogniser thread).
pub struct ProcessEngine {
    command: Vec<String>,
    engine: Arc<Mutex<Option<Engine>>>,
}

impl ProcessEngine {
    /// Starts `command` (program then arguments) and waits for its ready line.
    pub fn start(command: Vec<String>) -> Result<Self, AsrError> {
        let engine = spawn(&command)?;
        Ok(ProcessEngine {
            command,
            engine: Arc::new(Mutex::new(Some(engine))),
        })
    }
}

fn spawn(command: &[String]) -> Result<Engine, AsrError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| AsrError::Unavailable("empty engine command".into()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| AsrError::Unavailable(format!("starting {program}: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        return Err(AsrError::Unavailable("engine pipes unavailable".into()));
    };
    let mut engine = Engine {
        child,
        stdin,
        stdout: BufReader::new(stdout),
    };
    let ready = read_reply(&mut engine)?;
    if ready.get("ready").and_then(Value::as_bool) != Some(true) {
        return Err(AsrError::Unavailable(format!(
            "{program} did not say it is ready: {ready}"
        )));
    }
    Ok(engine)
}

fn read_reply(engine: &mut Engine) -> Result<Value, AsrError> {
    let mut line = String::new();
    match engine.stdout.read_line(&mut line) {
        Ok(0) => Err(AsrError::Engine("the engine process exited".into())),
        Ok(_) => serde_json::from_str(line.trim())
            .map_err(|e| AsrError::Engine(format!("unreadable engine reply: {e}"))),
        Err(e) => Err(AsrError::Engine(format!("reading the engine: {e}"))),
    }
}

fn ask(engine: &mut Engine, header: &Value, pcm: &[u8]) -> Result<Value, AsrError> {
    let io = |e: std::io::Error| AsrError::Engine(format!("writing to the engine: {e}"));
    engine
        .stdin
        .write_all(format!("{header}\n").as_bytes())
        .map_err(io)?;
    engine.stdin.write_all(pcm).map_err(io)?;
    engine.stdin.flush().map_err(io)?;
    read_reply(engine)
}

impl SpeechEngine for ProcessEngine {
    fn name(&self) -> &str {
        "process"
    }

    fn start(&self, request: &RecognitionRequest) -> Result<Box<dyn Recognizer>, AsrError> {
        Ok(Box::new(ProcessRecognizer {
            command: self.command.clone(),
            engine: self.engine.clone(),
            request: request.clone(),
            pcm: Vec::new(),
        }))
    }
}

struct ProcessRecognizer {
    command: Vec<String>,
    engine: Arc<Mutex<Option<Engine>>>,
    request: RecognitionRequest,
    pcm: Vec<i16>,
}

impl Recognizer for ProcessRecognizer {
    fn push(&mut self, pcm: &[i16]) {
        let room = MAX_SAMPLES.saturating_sub(self.pcm.len());
        self.pcm.extend_from_slice(&pcm[..pcm.len().min(room)]);
    }

    /// A batch engine: no interim hypotheses.
    fn partial(&mut self) -> Option<String> {
        None
    }

    fn finish(self: Box<Self>) -> Result<Transcript, AsrError> {
        let bytes: Vec<u8> = self.pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let header = json!({
            "rate": self.request.sample_rate,
            "bytes": bytes.len(),
            "language": self.request.language,
            "hints": self.request.hints,
        });
        let mut slot = self
            .engine
            .lock()
            .map_err(|_| AsrError::Engine("engine lock poisoned".into()))?;
        if slot.is_none() {
            *slot = Some(spawn(&self.command)?);
        }
        let reply = match slot.as_mut().map(|e| ask(e, &header, &bytes)) {
            Some(Ok(reply)) => reply,
            Some(Err(e)) => {
                // The process is in an unknown state: the next utterance starts a new one.
                *slot = None;
                return Err(e);
            }
            None => return Err(AsrError::Engine("no engine process".into())),
        };
        if let Some(err) = reply.get("error").and_then(Value::as_str) {
            return Err(AsrError::Engine(err.to_string()));
        }
        Ok(Transcript {
            text: reply
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string(),
            confidence: reply
                .get("confidence")
                .and_then(Value::as_f64)
                .map_or(0.0, |c| c.clamp(0.0, 1.0) as f32),
        })
    }
}

impl crate::Transcriber for ProcessEngine {
    fn name(&self) -> &str {
        "engine process"
    }

    /// Each piece is one request to the engine (no hints).
    fn transcribe(&self, pcm: &[i16], rate: u32, language: &str) -> Result<String, AsrError> {
        use crate::SpeechEngine as _;
        let request = RecognitionRequest {
            language: language.to_string(),
            hints: Vec::new(),
            sample_rate: rate,
            digits_allowed: false,
        };
        let mut texts = Vec::new();
        for piece in crate::transcription_pieces(pcm, rate) {
            let mut rec = self.start(&request)?;
            rec.push(piece);
            texts.push(rec.finish()?.text);
        }
        Ok(crate::join_pieces(texts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RecognitionRequest {
        RecognitionRequest {
            language: "en-US".into(),
            hints: vec!["yes".into()],
            sample_rate: 8000,
            digits_allowed: false,
        }
    }

    /// A shell stand-in that speaks the protocol: proves the framing and the restart, not any
    /// recognition (that is the e2e test with the real Whisper engine).
    fn echo_engine() -> Vec<String> {
        let script = r#"echo '{"ready": true}'
while IFS= read -r header; do
  n=$(printf '%s' "$header" | sed 's/.*"bytes":\([0-9]*\).*/\1/')
  head -c "$n" > /dev/null
  printf '{"text": " %s bytes ", "confidence": 0.5}\n' "$n"
done"#;
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn an_utterance_goes_to_the_process_and_its_reply_comes_back() {
        let engine = ProcessEngine::start(echo_engine()).unwrap();
        for n in [160usize, 800] {
            let mut r = engine.start(&request()).unwrap();
            r.push(&vec![7i16; n]);
            assert_eq!(r.partial(), None);
            let t = r.finish().unwrap();
            assert_eq!(t.text, format!("{} bytes", n * 2));
            assert!((t.confidence - 0.5).abs() < 1e-6);
        }
    }

    #[test]
    fn a_missing_program_or_a_dead_engine_is_a_clear_error() {
        let missing = ProcessEngine::start(vec!["/nonexistent/engine".into()]);
        assert!(matches!(missing, Err(AsrError::Unavailable(_))));
        let silent = ProcessEngine::start(vec!["sh".into(), "-c".into(), "exit 0".into()]);
        assert!(matches!(silent, Err(AsrError::Engine(_))));
        let engine = ProcessEngine::start(vec![
            "sh".into(),
            "-c".into(),
            r#"echo '{"ready": true}'; read -r x; exit 3"#.into(),
        ])
        .unwrap();
        let r = engine.start(&request()).unwrap();
        assert!(matches!(r.finish(), Err(AsrError::Engine(_))));
    }
}
