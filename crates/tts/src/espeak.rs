//! Speech in the languages flite has no voice for: eSpeak NG (Debian's `espeak-ng`, run as a
//! program: the text on its stdin, a WAV on its stdout). Its voices are listed once at start;
//! a request in a language it has a voice for (`es-ES` → `es`, `pt-BR` → `pt-br`) or naming
//! one (`espeak:fr-fr`) is spoken by it. A missing program leaves flite alone
//! ([`crate::Speech`]).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::{Audio, Tts, TtsError, TtsRequest};

/// The program, looked up on `PATH`.
pub const PROGRAM: &str = "espeak-ng";
/// Longest a synthesis may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most WAV bytes read back (a 4,096-character text is well under this at 22,050 Hz).
const MAX_WAV_BYTES: usize = 32 * 1024 * 1024;

/// Language tags with another name in eSpeak NG.
const ALIASES: [(&str, &str); 4] = [("zh", "cmn"), ("no", "nb"), ("iw", "he"), ("in", "id")];

/// The eSpeak NG engine and its voices. Cheap to share.
#[derive(Debug, Clone)]
pub struct EspeakTts {
    voices: Arc<Vec<String>>,
}

impl EspeakTts {
    /// The engine, when the program runs and lists its voices (once, at start).
    pub fn start() -> Result<EspeakTts, TtsError> {
        let out = std::process::Command::new(PROGRAM)
            .arg("--voices")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| TtsError::Engine(format!("{PROGRAM}: {e}")))?;
        let voices = voice_list(&String::from_utf8_lossy(&out.stdout));
        if voices.is_empty() {
            return Err(TtsError::Engine(format!("{PROGRAM} lists no voices")));
        }
        Ok(EspeakTts {
            voices: Arc::new(voices),
        })
    }

    #[cfg(test)]
    fn with_voices(voices: &[&str]) -> EspeakTts {
        EspeakTts {
            voices: Arc::new(voices.iter().map(|v| v.to_string()).collect()),
        }
    }

    /// The voice that speaks `request`, if it is eSpeak NG's: one it names (`espeak:<voice>`),
    /// else one of its language unless that is English (flite's).
    pub fn voice_for(&self, request: &TtsRequest) -> Option<String> {
        let has = |v: &str| self.voices.iter().any(|x| x == v);
        if let Some(named) = request
            .voice
            .strip_prefix("espeak:")
            .or_else(|| request.voice.strip_prefix("espeak."))
        {
            let named = named.trim().to_ascii_lowercase();
            if has(&named) {
                return Some(named);
            }
        }
        let tag = request
            .language
            .trim()
            .to_ascii_lowercase()
            .replace('_', "-");
        let primary = tag.split('-').next().unwrap_or("");
        if primary.is_empty() || primary == "en" {
            return None;
        }
        if has(&tag) {
            return Some(tag);
        }
        let primary = ALIASES
            .iter()
            .find(|(from, _)| *from == primary)
            .map_or(primary, |(_, to)| to);
        has(primary).then(|| primary.to_string())
    }

    async fn speak(&self, voice: &str, text: &str) -> Result<Audio, TtsError> {
        let mut child = Command::new(PROGRAM)
            .args(["-v", voice, "--stdout", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TtsError::Engine(format!("{PROGRAM}: {e}")))?;
        let mut stdin = child.stdin.take().ok_or_else(|| engine("no stdin"))?;
        let mut stdout = child.stdout.take().ok_or_else(|| engine("no stdout"))?;
        let text = text.to_string();
        let run = async move {
            // Written from a task: a long text's audio must be read while it is written.
            let writer = tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.write_all(b"\n").await;
            });
            let mut wav = Vec::new();
            (&mut stdout)
                .take(MAX_WAV_BYTES as u64)
                .read_to_end(&mut wav)
                .await
                .map_err(|e| engine(&e.to_string()))?;
            let _ = writer.await;
            let status = child.wait().await.map_err(|e| engine(&e.to_string()))?;
            if !status.success() {
                return Err(engine(&format!("exited with {status}")));
            }
            parse_wav(&wav)
        };
        tokio::time::timeout(TIMEOUT, run)
            .await
            .map_err(|_| engine("timed out"))?
    }
}

fn engine(why: &str) -> TtsError {
    TtsError::Engine(format!("{PROGRAM}: {why}"))
}

/// The voice names of `espeak-ng --voices` (its second column: `es`, `pt-br`, `fr-fr`, …).
fn voice_list(listing: &str) -> Vec<String> {
    listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Mono 16-bit PCM from a WAV as eSpeak NG writes it to a pipe: its sizes are placeholders, so
/// the data chunk runs to the end of what was read.
fn parse_wav(bytes: &[u8]) -> Result<Audio, TtsError> {
    let bad = |why: &str| engine(&format!("its WAV {why}"));
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("is not RIFF/WAVE"));
    }
    let mut at = 12;
    let mut format: Option<(u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let body = at + 8;
        if id == b"data" {
            let (channels, rate, bits) = format.ok_or_else(|| bad("has no fmt chunk"))?;
            if channels != 1 || bits != 16 || rate == 0 {
                return Err(bad("is not mono 16-bit"));
            }
            let end = bytes.len().min(body.saturating_add(size as usize));
            let samples = bytes[body..end]
                .chunks_exact(2)
                .map(|s| i16::from_le_bytes([s[0], s[1]]))
                .collect();
            return Ok(Audio {
                sample_rate: rate,
                samples,
            });
        }
        if id == b"fmt " {
            let f = bytes
                .get(body..body + 16)
                .ok_or_else(|| bad("fmt is short"))?;
            format = Some((
                u16::from_le_bytes([f[2], f[3]]),
                u32::from_le_bytes([f[4], f[5], f[6], f[7]]),
                u16::from_le_bytes([f[14], f[15]]),
            ));
        }
        at = body.saturating_add(size as usize + (size as usize & 1));
    }
    Err(bad("has no data"))
}

#[async_trait]
impl Tts for EspeakTts {
    async fn synthesize(&self, request: &TtsRequest) -> Result<Arc<Audio>, TtsError> {
        if request.text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        if request.text.chars().count() > crate::flite::MAX_TEXT_CHARS {
            return Err(TtsError::TooLong(crate::flite::MAX_TEXT_CHARS));
        }
        let voice = self.voice_for(request).unwrap_or_else(|| "en-us".into());
        self.speak(&voice, &request.text).await.map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(voice: &str, language: &str) -> TtsRequest {
        TtsRequest {
            text: "hola".into(),
            voice: voice.into(),
            language: language.into(),
            gender: String::new(),
        }
    }

    #[test]
    fn a_language_finds_its_voice_and_english_stays_with_flite() {
        let e = EspeakTts::with_voices(&["es", "pt-br", "pt", "fr-fr", "cmn", "en-us"]);
        assert_eq!(e.voice_for(&req("", "es-ES")).as_deref(), Some("es"));
        assert_eq!(e.voice_for(&req("", "pt-BR")).as_deref(), Some("pt-br"));
        assert_eq!(e.voice_for(&req("", "pt_PT")).as_deref(), Some("pt"));
        assert_eq!(e.voice_for(&req("", "zh-CN")).as_deref(), Some("cmn"));
        assert_eq!(e.voice_for(&req("", "en-US")), None);
        assert_eq!(e.voice_for(&req("", "")), None);
        assert_eq!(e.voice_for(&req("", "xx-YY")), None);
        assert_eq!(
            e.voice_for(&req("espeak:fr-fr", "en-US")).as_deref(),
            Some("fr-fr")
        );
        assert_eq!(
            e.voice_for(&req("Polly.Lucia", "es-ES")).as_deref(),
            Some("es")
        );
    }

    #[test]
    fn voices_are_read_from_the_listing() {
        let listing = "Pty Language       Age/Gender VoiceName          File                 Other Languages\n \
                       5  af              --/M      Afrikaans          gmw/af\n \
                       5  pt-BR           --/M      Portuguese_(Brazil) roa/pt-BR          pt\n";
        assert_eq!(voice_list(listing), ["af", "pt-br"]);
    }

    #[test]
    fn a_piped_wav_with_placeholder_sizes_is_read_to_its_end() {
        let mut wav = b"RIFF\xff\xff\xff\x7fWAVEfmt \x10\x00\x00\x00".to_vec();
        wav.extend_from_slice(&[1, 0, 1, 0]); // PCM, mono
        wav.extend_from_slice(&22050u32.to_le_bytes());
        wav.extend_from_slice(&44100u32.to_le_bytes());
        wav.extend_from_slice(&[2, 0, 16, 0]);
        wav.extend_from_slice(b"data\x00\xf0\xff\x7f");
        wav.extend_from_slice(&[1, 0, 0xff, 0xff, 7]); // two samples and a stray byte
        let audio = parse_wav(&wav).unwrap();
        assert_eq!((audio.sample_rate, audio.samples), (22050, vec![1, -1]));
        assert!(parse_wav(b"RIFF....WAVE").is_err());
        assert!(parse_wav(b"not a wav at all").is_err());
        let mut stereo = wav.clone();
        stereo[22] = 2;
        assert!(parse_wav(&stereo).is_err());
    }

    /// The real program, where it is installed (scripts/test.sh installs it; CI requires it).
    #[tokio::test]
    async fn the_program_speaks_spanish() {
        let engine = match EspeakTts::start() {
            Ok(e) => e,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let audio = engine.synthesize(&req("", "es-ES")).await.expect("spoken");
        assert_eq!(audio.sample_rate, 22050);
        assert!(audio.duration_ms() > 200, "{} ms", audio.duration_ms());
        assert!(audio.samples.iter().any(|s| s.unsigned_abs() > 1000));
    }
}
