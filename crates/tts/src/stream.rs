//! Speech in chunks: the text is split into sentences (long ones at commas, then spaces) and
//! synthesised one chunk after another, each chunk handed to the player as soon as it is
//! ready ([`SpeechStream`], a [`media::playback::ChunkStream`]), so a long `say` starts
//! playing after its first sentence and the engine never holds more than one chunk.

use std::sync::Arc;

use media::playback::{ChunkStream, StreamPoll};
use tokio::sync::mpsc;
use tracing::warn;

use crate::{Audio, Tts, TtsRequest};

/// Longest chunk handed to the engine, in characters.
pub const MAX_CHUNK_CHARS: usize = 240;
/// How long fed text that ends like a sentence waits for more before it is spoken as one.
pub const SENTENCE_END_GRACE: std::time::Duration = std::time::Duration::from_millis(150);
/// Chunks synthesised ahead of the one playing (bounds memory for any length of text).
pub const CHUNKS_AHEAD: usize = 2;

/// Splits `text` into chunks of at most `max_chars` characters: at sentence ends (`.`, `!`,
/// `?` followed by a space or the end, and line breaks); a longer sentence at its last comma,
/// semicolon or colon, else its last space, else anywhere. Chunks are trimmed; chunks with
/// nothing to pronounce (no letter or digit) are dropped.
pub fn split_sentences(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current: Vec<char> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        current.push(c);
        let next_is_break = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_break) {
            push_chunk(&mut out, &current);
            current.clear();
        } else if current.len() >= max_chars {
            let cut = cut_point(&current);
            push_chunk(&mut out, &current[..cut]);
            current.drain(..cut);
        }
        i += 1;
    }
    push_chunk(&mut out, &current);
    out
}

/// Where to cut a full chunk: after its last clause mark, else at its last space, else at
/// its end (never at its very start, so every cut makes progress).
fn cut_point(chunk: &[char]) -> usize {
    let after = |pred: fn(char) -> bool| {
        chunk
            .iter()
            .rposition(|c| pred(*c))
            .map(|i| i + 1)
            .filter(|&i| i > 1 && i < chunk.len())
    };
    after(|c| matches!(c, ',' | ';' | ':'))
        .or_else(|| after(char::is_whitespace))
        .unwrap_or(chunk.len())
}

fn push_chunk(out: &mut Vec<String>, chunk: &[char]) {
    let s: String = chunk.iter().collect();
    let s = s.trim();
    if s.chars().any(char::is_alphanumeric) {
        out.push(s.to_string());
    }
}

/// Synthesises one chunk and hands it on; false when the stream is over (the listener left,
/// or the first chunk failed: the playback fails rather than starting silent).
async fn speak_chunk<F>(
    tts: &dyn Tts,
    request: &TtsRequest,
    text: String,
    index: usize,
    convert: &F,
    tx: &mpsc::Sender<Chunk>,
) -> bool
where
    F: Fn(&Audio) -> Result<Arc<[i16]>, String> + Sync,
{
    let chunk = TtsRequest {
        text,
        ..request.clone()
    };
    let audio = match tts.synthesize(&chunk).await {
        // The first sentence starts at its first sound: engines pad their output (flite:
        // ~200 ms), which every caller would wait through. Later sentences keep theirs, the
        // pause between sentences.
        Ok(audio) if index == 0 => convert(&audio).map(trim_leading_silence),
        Ok(audio) => convert(&audio),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = &audio {
        if index > 0 {
            // The speech so far plays on; this sentence is skipped.
            warn!(error = %e, chunk = index, "a sentence could not be synthesised");
            return true;
        }
    }
    let first_failed = audio.is_err();
    tx.send(audio).await.is_ok() && !first_failed
}

/// Below this, a sample is silence (of 32767).
const SILENCE_LEVEL: u16 = 300;
/// Kept before the first sound, in samples at 8 kHz (scaled at other rates by their length).
const LEAD_KEPT: usize = 160;

/// `samples` from a little before their first sound (all of them when there is none).
pub fn trim_leading_silence(samples: Arc<[i16]>) -> Arc<[i16]> {
    match samples
        .iter()
        .position(|s| s.unsigned_abs() > SILENCE_LEVEL)
    {
        Some(first) if first > LEAD_KEPT => Arc::from(&samples[first - LEAD_KEPT..]),
        _ => samples,
    }
}

/// Text arriving in pieces, cut into the chunks [`split_sentences`] would make as soon as they
/// are complete: a sentence once the character after its end has come (`3.` may be `3.5`), a
/// long run without one at [`MAX_CHUNK_CHARS`].
#[derive(Debug, Default)]
pub struct SentenceFeed {
    pending: String,
}

impl SentenceFeed {
    /// Adds `text`; returns the chunks it completed.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.pending.push_str(text);
        let mut out = Vec::new();
        if let Some(cut) = last_sentence_end(&self.pending) {
            let done: String = self.pending.drain(..cut).collect();
            out.extend(split_sentences(&done, MAX_CHUNK_CHARS));
        }
        if self.pending.chars().count() > MAX_CHUNK_CHARS {
            let mut parts = split_sentences(&self.pending, MAX_CHUNK_CHARS);
            // The last part may go on: it waits for more (a space after it is kept, so the
            // next word does not run into it).
            let spaced = self.pending.ends_with(char::is_whitespace);
            self.pending = parts.pop().unwrap_or_default();
            if spaced {
                self.pending.push(' ');
            }
            out.extend(parts);
        }
        out
    }

    /// The text is complete: what is left.
    pub fn finish(self) -> Vec<String> {
        split_sentences(&self.pending, MAX_CHUNK_CHARS)
    }

    /// The text so far ends like a sentence (it may yet go on: `3.` of `3.5`).
    pub fn may_have_ended(&self) -> bool {
        self.pending.trim_end().ends_with(['.', '!', '?'])
    }

    /// What is pending, as chunks, now (the writer paused after a sentence end).
    pub fn take_pending(&mut self) -> Vec<String> {
        split_sentences(&std::mem::take(&mut self.pending), MAX_CHUNK_CHARS)
    }
}

/// The byte index just after the last sentence end of `text` that is known to be one.
fn last_sentence_end(text: &str) -> Option<usize> {
    let mut end = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_some_and(|(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
            end = Some(i + c.len_utf8());
        }
    }
    end
}

/// One chunk of speech at the call's rate, or why it could not be had.
pub type Chunk = Result<Arc<[i16]>, String>;

/// Speech arriving chunk by chunk from a synthesis task; dropping it stops the task.
#[derive(Debug)]
pub struct SpeechStream {
    rx: mpsc::Receiver<Chunk>,
    first: Option<Arc<[i16]>>,
}

impl SpeechStream {
    /// Starts synthesising `request` chunk by chunk on a task (within a tokio runtime);
    /// `convert` turns each chunk's audio into samples at the call's rate. Markup (SSML) is
    /// not split: it is one chunk.
    pub fn start<F>(tts: Arc<dyn Tts>, request: TtsRequest, convert: F) -> SpeechStream
    where
        F: Fn(&Audio) -> Result<Arc<[i16]>, String> + Send + Sync + 'static,
    {
        let chunks = if request.text.trim_start().starts_with('<') {
            vec![request.text.clone()]
        } else {
            split_sentences(&request.text, MAX_CHUNK_CHARS)
        };
        let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
        tokio::spawn(async move {
            for (index, text) in chunks.into_iter().enumerate() {
                if !speak_chunk(&*tts, &request, text, index, &convert, &tx).await {
                    return;
                }
            }
        });
        SpeechStream { rx, first: None }
    }

    /// Like [`SpeechStream::start`], for text that is still being written (a language model's
    /// answer as it streams): each sentence is synthesised as soon as it is complete; the
    /// speech ends once `text` closes and the rest is spoken. `request.text` is not used.
    pub fn fed<F>(
        tts: Arc<dyn Tts>,
        request: TtsRequest,
        text: mpsc::UnboundedReceiver<String>,
        convert: F,
    ) -> SpeechStream
    where
        F: Fn(&Audio) -> Result<Arc<[i16]>, String> + Send + Sync + 'static,
    {
        SpeechStream::fed_rewritten(tts, request, text, convert, |chunk| chunk)
    }

    /// [`SpeechStream::fed`], each sentence passed through `rewrite` before it is
    /// synthesised (pronunciation rules: whole sentences, so a rule never straddles two
    /// pieces of streamed text).
    pub fn fed_rewritten<F, R>(
        tts: Arc<dyn Tts>,
        request: TtsRequest,
        mut text: mpsc::UnboundedReceiver<String>,
        convert: F,
        rewrite: R,
    ) -> SpeechStream
    where
        F: Fn(&Audio) -> Result<Arc<[i16]>, String> + Send + Sync + 'static,
        R: Fn(String) -> String + Send + Sync + 'static,
    {
        let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
        tokio::spawn(async move {
            let mut feed = SentenceFeed::default();
            let mut index = 0;
            loop {
                // A sentence end with nothing after it yet is taken as one if no more text
                // comes soon (a model pausing after its first sentence).
                let next = if feed.may_have_ended() {
                    match tokio::time::timeout(SENTENCE_END_GRACE, text.recv()).await {
                        Ok(next) => next,
                        Err(_) => {
                            for chunk in feed.take_pending() {
                                if !speak_chunk(
                                    &*tts,
                                    &request,
                                    rewrite(chunk),
                                    index,
                                    &convert,
                                    &tx,
                                )
                                .await
                                {
                                    return;
                                }
                                index += 1;
                            }
                            continue;
                        }
                    }
                } else {
                    text.recv().await
                };
                let (chunks, last) = match next {
                    Some(more) => (feed.push(&more), false),
                    None => (std::mem::take(&mut feed).finish(), true),
                };
                for chunk in chunks {
                    if !speak_chunk(&*tts, &request, rewrite(chunk), index, &convert, &tx).await {
                        return;
                    }
                    index += 1;
                }
                if last {
                    return;
                }
            }
        });
        SpeechStream { rx, first: None }
    }

    /// Waits for the first chunk, so an engine that cannot speak fails the playback before
    /// it starts; text with nothing to pronounce is an error too.
    pub async fn first_chunk(&mut self) -> Result<(), String> {
        match self.rx.recv().await {
            Some(Ok(samples)) => {
                self.first = Some(samples);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Err("text is empty".into()),
        }
    }
}

impl ChunkStream for SpeechStream {
    fn poll_chunk(&mut self) -> StreamPoll {
        if let Some(first) = self.first.take() {
            return StreamPoll::Chunk(first);
        }
        match self.rx.try_recv() {
            Ok(Ok(samples)) => StreamPoll::Chunk(samples),
            Ok(Err(_)) | Err(mpsc::error::TryRecvError::Disconnected) => StreamPoll::End,
            Err(mpsc::error::TryRecvError::Empty) => StreamPoll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_cuts_sentences_as_they_complete() {
        let mut feed = SentenceFeed::default();
        assert!(feed.push("It is 3").is_empty());
        assert!(feed.push(".").is_empty(), "3. may be 3.5");
        let mut got = Vec::new();
        let mut feed = SentenceFeed::default();
        for piece in ["It is 3", ".5 deg", "rees. Sunny", " all day!", " Bye"] {
            got.extend(feed.push(piece));
        }
        assert_eq!(got, ["It is 3.5 degrees.", "Sunny all day!"]);
        assert_eq!(feed.finish(), ["Bye"]);
        // A long run with no sentence end is cut once it is longer than a chunk.
        let mut feed = SentenceFeed::default();
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(feed.push("word "));
        }
        got.extend(feed.finish());
        assert!(got.len() >= 2 && got.iter().all(|c| c.chars().count() <= MAX_CHUNK_CHARS));
        assert_eq!(got.join(" ").split_whitespace().count(), 100);
        // Whatever the pieces, the chunks are those of the whole text.
        let text = "Hello there. How are you? I am fine, thanks!\nNew line. 3.14 is pi.";
        for size in 1..8 {
            let mut feed = SentenceFeed::default();
            let mut got = Vec::new();
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(size) {
                got.extend(feed.push(&piece.iter().collect::<String>()));
            }
            got.extend(feed.finish());
            assert_eq!(
                got,
                split_sentences(text, MAX_CHUNK_CHARS),
                "pieces of {size}"
            );
        }
    }
    use crate::TtsError;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What is pronounced: letters and digits, in order.
    fn squash(s: &str) -> String {
        s.chars().filter(|c| c.is_alphanumeric()).collect()
    }

    #[test]
    fn sentences_split_at_their_ends_and_line_breaks() {
        let text = "Hello there. How are you? Fine!\\nNext line\nThe value is 3.14 today. Done";
        let text = text.replace("\\n", "\n");
        assert_eq!(
            split_sentences(&text, 240),
            vec![
                "Hello there.",
                "How are you?",
                "Fine!",
                "Next line",
                "The value is 3.14 today.",
                "Done"
            ]
        );
    }

    #[test]
    fn long_sentences_split_at_commas_then_spaces_then_anywhere() {
        let text = "one two three, four five six seven eight nine ten eleven twelve";
        let chunks = split_sentences(text, 20);
        assert_eq!(chunks[0], "one two three,");
        assert!(chunks.iter().all(|c| c.chars().count() <= 20), "{chunks:?}");
        assert_eq!(squash(&chunks.concat()), squash(text));
        let word = "x".repeat(50);
        let chunks = split_sentences(&word, 20);
        assert_eq!(chunks, vec!["x".repeat(20), "x".repeat(20), "x".repeat(10)]);
    }

    #[test]
    fn every_letter_is_kept_in_order_and_no_chunk_is_too_long() {
        let mut text = String::new();
        for i in 0..400 {
            text.push_str(&format!("Sentence number {i} has, a comma; and words"));
            text.push_str([". ", "! ", "? ", "\n", " ", "... "][i % 6]);
        }
        text.push_str(&"é".repeat(700));
        for max in [1, 7, 60, 240] {
            let chunks = split_sentences(&text, max);
            assert!(chunks.iter().all(|c| c.chars().count() <= max));
            assert!(squash(&chunks.concat()) == squash(&text), "max {max}");
        }
        assert!(split_sentences(" ... \n !? ", 240).is_empty());
    }

    /// An engine that speaks one sample per character, slowly after the first call.
    struct Slow(AtomicUsize);

    #[async_trait]
    impl Tts for Slow {
        async fn synthesize(&self, r: &TtsRequest) -> Result<Arc<Audio>, TtsError> {
            if r.text.contains("bad") {
                return Err(TtsError::Engine("cannot".into()));
            }
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(Audio {
                sample_rate: 8000,
                samples: vec![1; r.text.chars().count()],
            }))
        }
    }

    fn request(text: &str) -> TtsRequest {
        TtsRequest {
            text: text.into(),
            voice: String::new(),
            language: "en-US".into(),
            gender: "female".into(),
        }
    }

    fn convert(a: &Audio) -> Result<Arc<[i16]>, String> {
        Ok(Arc::from(a.samples.as_slice()))
    }

    #[tokio::test]
    async fn a_stream_yields_each_sentence_in_order_and_skips_a_failed_one() {
        let engine = Arc::new(Slow(AtomicUsize::new(0)));
        let mut s = SpeechStream::start(
            engine.clone(),
            request("One. A bad one. Three three."),
            convert,
        );
        s.first_chunk().await.unwrap();
        let mut lengths = Vec::new();
        loop {
            match s.poll_chunk() {
                StreamPoll::Chunk(c) => lengths.push(c.len()),
                StreamPoll::Pending => tokio::task::yield_now().await,
                StreamPoll::End => break,
            }
        }
        assert_eq!(lengths, vec![4, 12]);
        assert_eq!(engine.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_first_sentence_failing_fails_the_stream_and_synthesis_stays_ahead_by_two() {
        let engine = Arc::new(Slow(AtomicUsize::new(0)));
        let mut s = SpeechStream::start(engine.clone(), request("bad. Two."), convert);
        assert_eq!(
            s.first_chunk().await,
            Err("speech engine failed: cannot".into())
        );
        assert_eq!(engine.0.load(Ordering::SeqCst), 0);
        // Nobody plays: the task synthesises the first chunk and at most two more, then waits.
        let text = (0..20)
            .map(|i| format!("Line {i}."))
            .collect::<Vec<_>>()
            .join(" ");
        let engine = Arc::new(Slow(AtomicUsize::new(0)));
        let _s = SpeechStream::start(engine.clone(), request(&text), convert);
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert_eq!(engine.0.load(Ordering::SeqCst), 1 + CHUNKS_AHEAD);
    }

    /// The lengths of the chunks left in `s`, until it ends.
    async fn chunk_lengths(s: &mut SpeechStream) -> Vec<usize> {
        let mut lengths = Vec::new();
        loop {
            match s.poll_chunk() {
                StreamPoll::Chunk(c) => lengths.push(c.len()),
                StreamPoll::Pending => tokio::task::yield_now().await,
                StreamPoll::End => return lengths,
            }
        }
    }

    /// Fed text: the first sentence plays as soon as it is complete, before the rest is
    /// written; the stream ends once the feed closes and the rest is spoken.
    #[tokio::test]
    async fn a_fed_stream_speaks_each_sentence_once_it_is_complete() {
        let engine = Arc::new(Slow(AtomicUsize::new(0)));
        let (feed, text) = mpsc::unbounded_channel();
        let mut s = SpeechStream::fed(engine.clone(), request(""), text, convert);
        feed.send("Hi".to_string()).unwrap();
        feed.send(" there. Still wri".to_string()).unwrap();
        s.first_chunk().await.unwrap();
        assert!(matches!(s.poll_chunk(), StreamPoll::Chunk(c) if c.len() == "Hi there.".len()));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(
            matches!(s.poll_chunk(), StreamPoll::Pending),
            "the rest waits"
        );
        feed.send("ting".to_string()).unwrap();
        drop(feed);
        let rest = chunk_lengths(&mut s).await;
        assert_eq!(rest, vec!["Still writing".len()]);
        // A feed that closes with nothing to say fails the playback.
        let (feed, text) = mpsc::unbounded_channel::<String>();
        drop(feed);
        let mut s = SpeechStream::fed(engine, request(""), text, convert);
        assert!(s.first_chunk().await.is_err());
    }

    /// A writer that pauses after a sentence: the sentence is spoken once the grace is over,
    /// without waiting for what comes next.
    #[tokio::test(start_paused = true)]
    async fn a_sentence_end_before_a_pause_is_spoken_after_the_grace() {
        let engine = Arc::new(Slow(AtomicUsize::new(0)));
        let (feed, text) = mpsc::unbounded_channel();
        let mut s = SpeechStream::fed(engine, request(""), text, convert);
        feed.send("Hello there.".to_string()).unwrap();
        let started = tokio::time::Instant::now();
        s.first_chunk().await.unwrap();
        assert_eq!(started.elapsed(), SENTENCE_END_GRACE);
        assert!(matches!(s.poll_chunk(), StreamPoll::Chunk(c) if c.len() == "Hello there.".len()));
        feed.send(" More.".to_string()).unwrap();
        drop(feed);
        let rest = chunk_lengths(&mut s).await;
        assert_eq!(rest, vec!["More.".len()]);
    }

    #[test]
    fn the_first_sentence_starts_at_its_first_sound() {
        let mut padded = vec![0i16; 2000];
        padded.extend([5000, -5000, 4000]);
        let trimmed = trim_leading_silence(Arc::from(padded.as_slice()));
        assert_eq!(trimmed.len(), LEAD_KEPT + 3);
        assert_eq!(trimmed[LEAD_KEPT], 5000);
        let quiet: Arc<[i16]> = Arc::from(vec![10i16; 500].as_slice());
        assert_eq!(
            trim_leading_silence(quiet.clone()).len(),
            500,
            "no sound: untouched"
        );
        let short: Arc<[i16]> = Arc::from(vec![0, 0, 9000].as_slice());
        assert_eq!(trim_leading_silence(short).len(), 3);
    }
}
