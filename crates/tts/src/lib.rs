//! Text-to-speech behind a provider trait. The embedded default engine is flite (Debian's
//! `libflite`), initialised once and run on [`flite::WORKERS`] threads that share its voices;
//! languages flite has no voice for are spoken by eSpeak NG when it is installed ([`Speech`]);
//! results are cached by (text, voice, language) so a prompt played to many calls is
//! synthesized once. Long text is spoken sentence by sentence ([`stream`]).

pub mod espeak;
pub mod flite;
pub mod stream;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

pub use espeak::EspeakTts;
pub use flite::FliteTts;
pub use stream::{split_sentences, SentenceFeed, SpeechStream};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TtsError {
    #[error("text is empty")]
    EmptyText,
    #[error("text is longer than {0} characters")]
    TooLong(usize),
    #[error("speech engine failed: {0}")]
    Engine(String),
}

/// What to say and how (SWML `say:` with `say_voice`/`say_language`/`say_gender`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TtsRequest {
    pub text: String,
    /// Provider voice id such as `Polly.Salli` or `gcloud.en-US-Neural2-A`; engines map ids they
    /// do not have onto their own voices.
    pub voice: String,
    pub language: String,
    /// `female` or `male`.
    pub gender: String,
}

/// Mono 16-bit PCM at the engine's native rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

impl Audio {
    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / u64::from(self.sample_rate)
    }
}

#[async_trait]
pub trait Tts: Send + Sync + 'static {
    async fn synthesize(&self, request: &TtsRequest) -> Result<Arc<Audio>, TtsError>;
}

/// The node's speech: eSpeak NG for a request in a language it has a voice for (or naming one
/// of its voices), `english` (flite) for the rest — and for everything when eSpeak NG is not
/// installed.
pub struct Speech<E: Tts> {
    english: E,
    other: Option<EspeakTts>,
}

impl<E: Tts> Speech<E> {
    pub fn new(english: E, other: Option<EspeakTts>) -> Self {
        Speech { english, other }
    }
}

#[async_trait]
impl<E: Tts> Tts for Speech<E> {
    async fn synthesize(&self, request: &TtsRequest) -> Result<Arc<Audio>, TtsError> {
        match &self.other {
            Some(other) if other.voice_for(request).is_some() => other.synthesize(request).await,
            _ => self.english.synthesize(request).await,
        }
    }
}

/// Most audio the cache keeps, in bytes of samples: entries are a few seconds each (one
/// sentence of a long text), so the entry count alone would not bound memory.
pub const CACHE_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Cached entries, their recency order (oldest first) and their size in bytes.
type CacheState = (HashMap<TtsRequest, Arc<Audio>>, VecDeque<TtsRequest>, usize);

fn audio_bytes(a: &Audio) -> usize {
    a.samples.len() * std::mem::size_of::<i16>()
}

/// An LRU cache in front of any engine, bounded by entries and by [`CACHE_MAX_BYTES`].
pub struct CachedTts<T: Tts> {
    inner: T,
    capacity: usize,
    max_bytes: usize,
    state: Mutex<CacheState>,
}

impl<T: Tts> CachedTts<T> {
    pub fn new(inner: T, capacity: usize) -> Self {
        Self::with_max_bytes(inner, capacity, CACHE_MAX_BYTES)
    }

    pub fn with_max_bytes(inner: T, capacity: usize, max_bytes: usize) -> Self {
        CachedTts {
            inner,
            capacity: capacity.max(1),
            max_bytes,
            state: Mutex::new((HashMap::new(), VecDeque::new(), 0)),
        }
    }

    fn get(&self, key: &TtsRequest) -> Option<Arc<Audio>> {
        let mut st = self.state.lock().ok()?;
        let hit = st.0.get(key).cloned()?;
        st.1.retain(|k| k != key);
        st.1.push_back(key.clone());
        Some(hit)
    }

    fn put(&self, key: TtsRequest, audio: Arc<Audio>) {
        let size = audio_bytes(&audio);
        if size > self.max_bytes {
            return;
        }
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        st.2 += size;
        match st.0.insert(key.clone(), audio) {
            None => st.1.push_back(key),
            Some(old) => st.2 -= audio_bytes(&old),
        }
        while st.0.len() > self.capacity || st.2 > self.max_bytes {
            let Some(old) = st.1.pop_front() else { break };
            if let Some(gone) = st.0.remove(&old) {
                st.2 -= audio_bytes(&gone);
            }
        }
    }
}

#[async_trait]
impl<T: Tts> Tts for CachedTts<T> {
    async fn synthesize(&self, request: &TtsRequest) -> Result<Arc<Audio>, TtsError> {
        // Gender only matters when the voice id does not pin a voice; keep it in the key anyway.
        if let Some(hit) = self.get(request) {
            return Ok(hit);
        }
        let audio = self.inner.synthesize(request).await?;
        self.put(request.clone(), audio.clone());
        Ok(audio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    #[async_trait]
    impl Tts for Counting {
        async fn synthesize(&self, r: &TtsRequest) -> Result<Arc<Audio>, TtsError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(Audio {
                sample_rate: 8000,
                samples: vec![0; r.text.len()],
            }))
        }
    }

    fn req(t: &str) -> TtsRequest {
        TtsRequest {
            text: t.into(),
            voice: "v".into(),
            language: "en-US".into(),
            gender: "female".into(),
        }
    }

    #[tokio::test]
    async fn cache_is_bounded_by_bytes_too() {
        // Entries of 2 bytes per character; room for 100 bytes.
        let c = CachedTts::with_max_bytes(Counting(AtomicUsize::new(0)), 100, 100);
        c.synthesize(&req(&"a".repeat(30))).await.unwrap(); // 60 bytes
        c.synthesize(&req(&"b".repeat(15))).await.unwrap(); // 30 bytes: 90 in all
        c.synthesize(&req(&"c".repeat(10))).await.unwrap(); // 20: evicts a
        assert_eq!(c.state.lock().unwrap().2, 50);
        c.synthesize(&req(&"b".repeat(15))).await.unwrap();
        assert_eq!(c.inner.0.load(Ordering::SeqCst), 3, "b is still cached");
        c.synthesize(&req(&"a".repeat(30))).await.unwrap();
        assert_eq!(c.inner.0.load(Ordering::SeqCst), 4, "a was evicted");
        // Too big for the cache at all: served, not kept.
        c.synthesize(&req(&"d".repeat(60))).await.unwrap();
        assert!(c.state.lock().unwrap().2 <= 100);
        assert!(!c
            .state
            .lock()
            .unwrap()
            .0
            .contains_key(&req(&"d".repeat(60))));
    }

    #[tokio::test]
    async fn cache_hits_and_evicts_least_recent() {
        let c = CachedTts::new(Counting(AtomicUsize::new(0)), 2);
        c.synthesize(&req("a")).await.unwrap();
        c.synthesize(&req("a")).await.unwrap();
        assert_eq!(c.inner.0.load(Ordering::SeqCst), 1);
        c.synthesize(&req("b")).await.unwrap();
        c.synthesize(&req("a")).await.unwrap(); // a is now most recent
        c.synthesize(&req("c")).await.unwrap(); // evicts b
        c.synthesize(&req("a")).await.unwrap();
        assert_eq!(c.inner.0.load(Ordering::SeqCst), 3);
        c.synthesize(&req("b")).await.unwrap();
        assert_eq!(c.inner.0.load(Ordering::SeqCst), 4);
    }
}
