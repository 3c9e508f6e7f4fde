//! The embedded TTS: flite via a small FFI, on a few dedicated threads. flite 2.x is thread
//! safe once initialised (its README; its testsuite's `multi_thread_main.c` shares one voice
//! between threads): it is initialised once per process, then the workers share the voices.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::{Audio, Tts, TtsError, TtsRequest};

/// Longest text synthesized in one request.
pub const MAX_TEXT_CHARS: usize = 4096;

#[repr(C)]
struct CstWave {
    kind: *const c_char,
    sample_rate: c_int,
    num_samples: c_int,
    num_channels: c_int,
    samples: *mut i16,
}

#[allow(non_camel_case_types)]
type cst_voice = c_void;

extern "C" {
    fn flite_init() -> c_int;
    fn flite_text_to_wave(text: *const c_char, voice: *mut cst_voice) -> *mut CstWave;
    fn delete_wave(w: *mut CstWave);
    fn register_cmu_us_kal(voxdir: *const c_char) -> *mut cst_voice;
    fn register_cmu_us_slt(voxdir: *const c_char) -> *mut cst_voice;
}

/// Which flite voice serves a request: ids naming a flite voice win, then gender.
fn pick_voice(r: &TtsRequest) -> FliteVoice {
    let v = r.voice.to_ascii_lowercase();
    if v.contains("kal") {
        return FliteVoice::Kal;
    }
    if v.contains("slt") {
        return FliteVoice::Slt;
    }
    if r.gender.eq_ignore_ascii_case("male") {
        FliteVoice::Kal
    } else {
        FliteVoice::Slt
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FliteVoice {
    /// US English male, 8 kHz diphone.
    Kal,
    /// US English female, 16 kHz.
    Slt,
}

type Job = (String, FliteVoice, oneshot::Sender<Result<Audio, TtsError>>);

/// Synthesis threads: a long text's chunks and several calls' speech go on side by side.
pub const WORKERS: usize = 2;

/// The flite engine. Cheap to clone.
#[derive(Clone)]
pub struct FliteTts {
    jobs: mpsc::Sender<Job>,
}

/// The registered voices (static in libflite, alive for the whole process).
#[derive(Clone, Copy)]
struct Voices {
    kal: *mut cst_voice,
    slt: *mut cst_voice,
}

// SAFETY: the voices are read-only once registered; flite synthesises with them from several
// threads after initialisation.
unsafe impl Send for Voices {}
unsafe impl Sync for Voices {}

/// flite is initialised and its voices registered once per process, before any synthesis.
fn voices() -> Voices {
    static VOICES: OnceLock<Voices> = OnceLock::new();
    // SAFETY: called once (OnceLock), before any worker synthesises.
    *VOICES.get_or_init(|| unsafe {
        flite_init();
        Voices {
            kal: register_cmu_us_kal(std::ptr::null()),
            slt: register_cmu_us_slt(std::ptr::null()),
        }
    })
}

impl FliteTts {
    pub fn start() -> Result<FliteTts, TtsError> {
        let voices = voices();
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..WORKERS {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("tts-flite-{i}"))
                .spawn(move || worker(&rx, voices))
                .map_err(|e| TtsError::Engine(e.to_string()))?;
        }
        Ok(FliteTts { jobs: tx })
    }
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>, voices: Voices) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((text, voice, reply)) = job else {
            return;
        };
        let vox = match voice {
            FliteVoice::Kal => voices.kal,
            FliteVoice::Slt => voices.slt,
        };
        let _ = reply.send(synthesize_blocking(&text, vox));
    }
}

fn synthesize_blocking(text: &str, vox: *mut cst_voice) -> Result<Audio, TtsError> {
    if vox.is_null() {
        return Err(TtsError::Engine("flite voice not available".into()));
    }
    // Interior NULs would cut the text short; drop them.
    let clean: String = text.chars().filter(|c| *c != '\0').collect();
    let c_text = CString::new(clean).map_err(|e| TtsError::Engine(e.to_string()))?;
    // SAFETY: valid NUL-terminated text and a registered voice; the wave is copied and freed
    // before returning.
    unsafe {
        let w = flite_text_to_wave(c_text.as_ptr(), vox);
        if w.is_null() {
            return Err(TtsError::Engine("flite produced no audio".into()));
        }
        let wave = &*w;
        let n = usize::try_from(wave.num_samples).unwrap_or(0)
            * usize::try_from(wave.num_channels.max(1)).unwrap_or(1);
        let samples = if wave.samples.is_null() || n == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(wave.samples, n).to_vec()
        };
        let rate = u32::try_from(wave.sample_rate).unwrap_or(8000);
        delete_wave(w);
        Ok(Audio {
            sample_rate: rate,
            samples,
        })
    }
}

#[async_trait]
impl Tts for FliteTts {
    async fn synthesize(&self, request: &TtsRequest) -> Result<Arc<Audio>, TtsError> {
        let text = strip_ssml(&request.text);
        if text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(TtsError::TooLong(MAX_TEXT_CHARS));
        }
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((text, pick_voice(request), tx))
            .map_err(|_| TtsError::Engine("flite worker stopped".into()))?;
        let audio = rx
            .await
            .map_err(|_| TtsError::Engine("flite worker stopped".into()))??;
        Ok(Arc::new(audio))
    }
}

/// flite does not read SSML: speak the text content of the markup.
fn strip_ssml(text: &str) -> String {
    if !text.trim_start().starts_with('<') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str, gender: &str) -> TtsRequest {
        TtsRequest {
            text: text.into(),
            voice: "Polly.Salli".into(),
            language: "en-US".into(),
            gender: gender.into(),
        }
    }

    #[tokio::test]
    async fn synthesizes_speech_with_plausible_duration_and_energy() {
        let tts = FliteTts::start().unwrap();
        for (gender, rate) in [("male", 8000), ("female", 16000)] {
            let a = tts
                .synthesize(&req("please press one for sales", gender))
                .await
                .unwrap();
            assert_eq!(a.sample_rate, rate);
            let ms = a.duration_ms();
            assert!((800..5000).contains(&ms), "{gender}: {ms} ms");
            let rms = (a.samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>()
                / a.samples.len() as f64)
                .sqrt();
            assert!(
                rms > 300.0,
                "{gender}: speech should carry energy, rms {rms}"
            );
        }
    }

    #[tokio::test]
    async fn longer_text_takes_longer_and_bad_input_is_an_error() {
        let tts = FliteTts::start().unwrap();
        let short = tts.synthesize(&req("hello", "male")).await.unwrap();
        let long = tts
            .synthesize(&req(
                "hello, this is a much longer sentence to speak",
                "male",
            ))
            .await
            .unwrap();
        assert!(long.duration_ms() > 2 * short.duration_ms());
        assert_eq!(
            tts.synthesize(&req("   ", "male")).await,
            Err(TtsError::EmptyText)
        );
        assert!(tts.synthesize(&req("a\0b", "male")).await.is_ok());
        assert!(matches!(
            tts.synthesize(&req(&"x ".repeat(3000), "male")).await,
            Err(TtsError::TooLong(_))
        ));
    }

    fn rms(a: &Audio) -> f64 {
        (a.samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / a.samples.len() as f64)
            .sqrt()
    }

    /// Both voices on both workers at once give what one at a time gives: the same samples
    /// for the diphone voice (deterministic), the same length and level for the CG voice
    /// (its excitation is random even alone).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_synthesis_matches_sequential() {
        let tts = Arc::new(FliteTts::start().unwrap());
        let texts = [
            ("male", "the quick brown fox jumps over the lazy dog"),
            ("female", "please hold while we connect your call"),
            ("male", "your balance is forty two dollars and ten cents"),
            ("female", "thank you for calling, goodbye"),
            (
                "male",
                "press one for sales, two for support, or stay on the line",
            ),
        ];
        let mut alone = Vec::new();
        for (gender, text) in texts {
            alone.push(tts.synthesize(&req(text, gender)).await.unwrap());
        }
        for _ in 0..4 {
            let tasks: Vec<_> = texts
                .iter()
                .map(|(gender, text)| {
                    let tts = tts.clone();
                    let r = req(text, gender);
                    tokio::spawn(async move { tts.synthesize(&r).await })
                })
                .collect();
            for ((task, expected), (gender, _)) in tasks.into_iter().zip(&alone).zip(texts) {
                let got = task.await.unwrap().unwrap();
                if gender == "male" {
                    assert!(got == *expected, "diphone speech differs when concurrent");
                } else {
                    assert_eq!(got.samples.len(), expected.samples.len());
                    assert!((rms(&got) / rms(expected) - 1.0).abs() < 0.1);
                }
            }
        }
    }

    #[test]
    fn ssml_and_voice_mapping() {
        assert_eq!(
            strip_ssml("<speak>Your code is <say-as>A1</say-as>.</speak>"),
            "Your code is A1."
        );
        assert_eq!(strip_ssml("plain <not tag"), "plain <not tag");
        assert_eq!(pick_voice(&req("x", "male")), FliteVoice::Kal);
        assert_eq!(pick_voice(&req("x", "female")), FliteVoice::Slt);
        let mut r = req("x", "female");
        r.voice = "flite.kal".into();
        assert_eq!(pick_voice(&r), FliteVoice::Kal);
    }
}
