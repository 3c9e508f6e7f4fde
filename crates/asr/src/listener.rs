//! Speech recognition for `calling.collect` with `speech`, off the media thread.
//!
//! One [`SpeechWorker`] thread per node runs every recognition (the engine is created once).
//! Each speech collect adds a [`SpeechListener`] on the call's audio (key `speech:<control_id>`):
//! on the media thread it runs media's [`SpeechSegmenter`] (VAD, utterances, timers) and
//! forwards the frames of an utterance to the worker over one bounded channel shared by all
//! calls (a full channel drops the frame and counts it, never blocks). The worker answers on a
//! per-listener channel that the listener drains without blocking on every tick and hands to
//! the segmenter, which turns them into typed speech events for the actor.
//!
//! `initial_timeout` (no_input) is the session's timer, shared with digits.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{RecognitionRequest, Recognizer, SpeechEngine};
use media::listen::{FrameListener, ListenerEvent};
use media::speech::{
    Recognised as Answer, SegmentAction, SegmenterConfig, SpeechEvent, SpeechSegmenter,
};
use tracing::{debug, info, warn};

/// Frames (20 ms) the shared channel holds: ~10 s of one caller's speech.
const QUEUE_FRAMES: usize = 512;
/// Interim hypotheses are asked for every this many frames of audio (200 ms).
const PARTIAL_EVERY_FRAMES: u32 = 10;
/// A recognition older than this is abandoned by the worker (its listener went away).
const MAX_SESSION: Duration = Duration::from_secs(300);

enum Job {
    Start {
        session: u64,
        request: RecognitionRequest,
        partials: bool,
        answers: Sender<Answer>,
    },
    Audio {
        session: u64,
        pcm: Vec<i16>,
    },
    Finish {
        session: u64,
    },
    Cancel {
        session: u64,
    },
}

/// The node's recogniser thread. Cheap to clone.
#[derive(Clone)]
pub struct SpeechWorker {
    jobs: SyncSender<Job>,
    next_session: Arc<AtomicU64>,
    /// Frames dropped because the channel was full (all calls).
    dropped: Arc<AtomicU64>,
}

struct Session {
    rec: Box<dyn Recognizer>,
    answers: Sender<Answer>,
    partials: bool,
    started: Instant,
    frames_since_partial: u32,
}

impl SpeechWorker {
    /// Starts the thread, which first creates the engine with `make` (loading a model takes a
    /// moment, so not on the caller's thread); when that fails every recognition answers an
    /// error naming why.
    pub fn start<F>(make: F) -> SpeechWorker
    where
        F: FnOnce() -> Result<Arc<dyn SpeechEngine>, String> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(QUEUE_FRAMES);
        let spawned = std::thread::Builder::new()
            .name("asr".into())
            .spawn(move || {
                let engine = make();
                match &engine {
                    Ok(e) => info!(engine = e.name(), "speech recognition ready"),
                    Err(why) => warn!(%why, "speech recognition unavailable"),
                }
                run(engine, rx)
            });
        if let Err(e) = spawned {
            warn!(error = %e, "speech recognition thread did not start");
        }
        SpeechWorker {
            jobs: tx,
            next_session: Arc::new(AtomicU64::new(1)),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Frames dropped so far because the recogniser fell behind.
    #[allow(dead_code)] // read by tests; a metric later
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn run(engine: Result<Arc<dyn SpeechEngine>, String>, jobs: Receiver<Job>) {
    let mut sessions: HashMap<u64, Session> = HashMap::new();
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Start {
                session,
                request,
                partials,
                answers,
            } => {
                let started = match &engine {
                    Ok(e) => e.start(&request).map_err(|e| e.to_string()),
                    Err(why) => Err(why.clone()),
                };
                match started {
                    Ok(rec) => {
                        sessions.insert(
                            session,
                            Session {
                                rec,
                                answers,
                                partials,
                                started: Instant::now(),
                                frames_since_partial: 0,
                            },
                        );
                    }
                    Err(e) => {
                        warn!(error = %e, "speech recognition could not start");
                        let _ = answers.send(Answer::Error(e));
                    }
                }
            }
            Job::Audio { session, pcm } => {
                if let Some(s) = sessions.get_mut(&session) {
                    s.rec.push(&pcm);
                    s.frames_since_partial += 1;
                    if s.partials && s.frames_since_partial >= PARTIAL_EVERY_FRAMES {
                        s.frames_since_partial = 0;
                        if let Some(text) = s.rec.partial() {
                            let _ = s.answers.send(Answer::Partial(text));
                        }
                    }
                }
            }
            Job::Finish { session } => {
                if let Some(s) = sessions.remove(&session) {
                    let answer = match s.rec.finish() {
                        Ok(t) => Answer::Final {
                            text: t.text,
                            confidence: t.confidence,
                        },
                        Err(e) => Answer::Error(e.to_string()),
                    };
                    let _ = s.answers.send(answer);
                }
            }
            Job::Cancel { session } => {
                sessions.remove(&session);
            }
        }
        sessions.retain(|id, s| {
            let keep = s.started.elapsed() < MAX_SESSION;
            if !keep {
                debug!(session = id, "abandoned recognition dropped");
            }
            keep
        });
    }
}

/// What a speech collect asked for.
#[derive(Debug, Clone)]
pub struct SpeechParams {
    pub request: RecognitionRequest,
    pub segments: SegmenterConfig,
}

/// The tap on a call's audio for one speech collect (runs on the media thread).
pub struct SpeechListener {
    request: RecognitionRequest,
    partials: bool,
    segmenter: SpeechSegmenter,
    actions: Vec<SegmentAction>,
    said: Vec<SpeechEvent>,
    worker: SpeechWorker,
    answers_tx: Sender<Answer>,
    answers: Receiver<Answer>,
    session: u64,
    /// A Start/Finish the full channel refused, sent again next tick (only audio is dropped).
    pending: VecDeque<Job>,
    dropped: u64,
}

impl SpeechListener {
    pub fn new(worker: SpeechWorker, params: SpeechParams) -> SpeechListener {
        let (answers_tx, answers) = mpsc::channel();
        SpeechListener {
            request: params.request,
            partials: params.segments.partial_results,
            segmenter: SpeechSegmenter::new(params.segments),
            actions: Vec::new(),
            said: Vec::new(),
            worker,
            answers_tx,
            answers,
            session: 0,
            pending: VecDeque::new(),
            dropped: 0,
        }
    }

    fn send_control(&mut self, job: Job) {
        if self.pending.is_empty() {
            match self.worker.jobs.try_send(job) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(job)) => self.pending.push_back(job),
            }
        } else {
            self.pending.push_back(job);
        }
    }

    fn flush_pending(&mut self) {
        while let Some(job) = self.pending.pop_front() {
            if let Err(TrySendError::Full(job)) = self.worker.jobs.try_send(job) {
                self.pending.push_front(job);
                return;
            }
        }
    }

    fn send_audio(&mut self, pcm: Vec<i16>) {
        if !self.pending.is_empty() {
            self.count_drop();
            return;
        }
        let job = Job::Audio {
            session: self.session,
            pcm,
        };
        if self.worker.jobs.try_send(job).is_err() {
            self.count_drop();
        }
    }

    fn count_drop(&mut self) {
        self.dropped += 1;
        self.worker.dropped.fetch_add(1, Ordering::Relaxed);
        if self.dropped.is_power_of_two() {
            warn!(
                dropped = self.dropped,
                "speech frames dropped: recogniser behind"
            );
        }
    }

    /// Every tick: refused jobs again, then the worker's answers to the segmenter.
    fn drain(&mut self) {
        self.flush_pending();
        while let Ok(answer) = self.answers.try_recv() {
            if let Answer::Final { text, confidence } = &answer {
                info!(%text, confidence, "speech recognised");
            }
            self.segmenter.on_recognised(answer, &mut self.said);
        }
    }

    /// What the segmenter asked for, to the worker.
    fn run_actions(&mut self) {
        let mut actions = std::mem::take(&mut self.actions);
        for action in actions.drain(..) {
            match action {
                SegmentAction::Start { rate } => {
                    self.session = self.worker.next_session.fetch_add(1, Ordering::Relaxed);
                    let mut request = self.request.clone();
                    request.sample_rate = rate;
                    self.send_control(Job::Start {
                        session: self.session,
                        request,
                        partials: self.partials,
                        answers: self.answers_tx.clone(),
                    });
                }
                SegmentAction::Audio(pcm) => self.send_audio(pcm),
                SegmentAction::Finish => self.send_control(Job::Finish {
                    session: self.session,
                }),
            }
        }
        self.actions = actions;
    }
}

impl FrameListener for SpeechListener {
    fn on_frame(&mut self, now_us: u64, pcm: &[i16], rate: u32, events: &mut Vec<ListenerEvent>) {
        self.drain();
        self.segmenter
            .on_frame(now_us, pcm, rate, &mut self.actions, &mut self.said);
        self.run_actions();
        events.extend(self.said.drain(..).map(ListenerEvent::Speech));
    }

    fn on_idle(&mut self, now_us: u64, events: &mut Vec<ListenerEvent>) {
        self.drain();
        self.segmenter.on_idle(now_us, &mut self.actions);
        self.run_actions();
        events.extend(self.said.drain(..).map(ListenerEvent::Speech));
    }
}

impl Drop for SpeechListener {
    fn drop(&mut self) {
        if self.segmenter.in_utterance() {
            let _ = self.worker.jobs.try_send(Job::Cancel {
                session: self.session,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AsrError, Transcript};
    use media::speech::Phase;
    use std::sync::Mutex;

    /// Recognises every utterance as `text`, recording how much audio it got.
    struct Fixed {
        text: &'static str,
        samples: Arc<Mutex<usize>>,
    }
    struct FixedRec {
        text: &'static str,
        samples: Arc<Mutex<usize>>,
        got: usize,
    }
    impl SpeechEngine for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn start(&self, _: &RecognitionRequest) -> Result<Box<dyn Recognizer>, AsrError> {
            Ok(Box::new(FixedRec {
                text: self.text,
                samples: self.samples.clone(),
                got: 0,
            }))
        }
    }
    impl Recognizer for FixedRec {
        fn push(&mut self, pcm: &[i16]) {
            self.got += pcm.len();
        }
        fn partial(&mut self) -> Option<String> {
            (self.got > 0).then(|| self.text.split(' ').next().unwrap_or("").to_string())
        }
        fn finish(self: Box<Self>) -> Result<Transcript, AsrError> {
            if let Ok(mut s) = self.samples.lock() {
                *s = self.got;
            }
            Ok(Transcript {
                text: self.text.into(),
                confidence: 0.9,
            })
        }
    }

    fn params(partials: bool, continuous: bool) -> SpeechParams {
        SpeechParams {
            request: RecognitionRequest {
                language: "en-US".into(),
                hints: vec![],
                sample_rate: 8000,
                digits_allowed: false,
            },
            segments: SegmenterConfig {
                end_silence_ms: 500,
                speech_timeout_ms: 10_000,
                partial_results: partials,
                continuous,
            },
        }
    }

    fn kind(e: &ListenerEvent) -> &'static str {
        match e {
            ListenerEvent::Speech(SpeechEvent::StartOfInput) => "start_of_input",
            ListenerEvent::Speech(SpeechEvent::Partial { .. }) => "partial",
            ListenerEvent::Speech(SpeechEvent::Result { .. }) => "result",
            ListenerEvent::Speech(SpeechEvent::Error { .. }) => "error",
            ListenerEvent::Detect(_) => "detect",
            ListenerEvent::Fax(_) => "fax",
        }
    }

    fn voice(i: u64) -> Vec<i16> {
        (0..160)
            .map(|n| {
                let t = (i * 160 + n) as f32 / 8000.0;
                ((t * 2.0 * std::f32::consts::PI * 300.0).sin() * 8000.0) as i16
            })
            .collect()
    }

    /// Drives `l` with `silence_ms` of silence, `speech_ms` of voice, then silence until the
    /// result (bounded), collecting the events.
    fn drive(l: &mut SpeechListener, speech_ms: u64, t0: &mut u64) -> Vec<ListenerEvent> {
        let mut events = Vec::new();
        let mut frame = 0;
        for i in 0..(speech_ms / 20 + 1000) {
            let pcm = if i >= 10 && i < 10 + speech_ms / 20 {
                voice(i)
            } else {
                vec![0i16; 160]
            };
            l.on_frame(*t0, &pcm, 8000, &mut events);
            *t0 += 20_000;
            frame += 1;
            if events.iter().any(|e| kind(e) == "result") {
                break;
            }
            // Let the worker thread run.
            if frame % 25 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        events
    }

    #[test]
    fn an_utterance_gives_start_then_result_after_end_silence() {
        let samples = Arc::new(Mutex::new(0));
        let engine: Arc<dyn SpeechEngine> = Arc::new(Fixed {
            text: "yes please",
            samples: samples.clone(),
        });
        let worker = SpeechWorker::start(move || Ok(engine));
        let mut l = SpeechListener::new(worker, params(false, false));
        let mut t = 0;
        let events = drive(&mut l, 600, &mut t);
        assert_eq!(kind(&events[0]), "start_of_input");
        assert_eq!(
            events.last(),
            Some(&ListenerEvent::Speech(SpeechEvent::Result {
                text: "yes please".into(),
                confidence: 0.9
            }))
        );
        assert!(!events.iter().any(|e| kind(e) == "partial"));
        // Preroll + the speech + the end silence reached the recogniser.
        let got = samples.lock().map(|s| *s).unwrap_or(0);
        assert!(got >= 8 * (600 + 500), "{got}");
        assert_eq!(l.segmenter.phase(), Phase::Done);
    }

    #[test]
    fn partials_and_continuous_restart() {
        let engine: Arc<dyn SpeechEngine> = Arc::new(Fixed {
            text: "one two",
            samples: Arc::new(Mutex::new(0)),
        });
        let worker = SpeechWorker::start(move || Ok(engine));
        let mut l = SpeechListener::new(worker, params(true, true));
        let mut t = 0;
        let first = drive(&mut l, 1_000, &mut t);
        assert!(first.iter().any(|e| kind(e) == "partial"), "{first:?}");
        assert_eq!(l.segmenter.phase(), Phase::Waiting);
        let second = drive(&mut l, 400, &mut t);
        assert!(second.iter().any(|e| kind(e) == "start_of_input"));
        assert!(second.iter().any(|e| kind(e) == "result"));
    }

    #[test]
    fn no_engine_reports_an_error() {
        let worker = SpeechWorker::start(|| Err("no pocketsphinx".into()));
        let mut l = SpeechListener::new(worker, params(false, false));
        let mut t = 0;
        let mut events = Vec::new();
        for _ in 0..200 {
            events.extend(drive(&mut l, 300, &mut t));
            if events.iter().any(|e| kind(e) == "error") {
                break;
            }
        }
        assert!(events.contains(&ListenerEvent::Speech(SpeechEvent::Error {
            message: "no pocketsphinx".into()
        })));
    }

    #[test]
    fn a_full_channel_drops_audio_and_counts() {
        // A worker whose thread is stuck: its channel fills up.
        let (tx, _rx) = mpsc::sync_channel(4);
        let worker = SpeechWorker {
            jobs: tx,
            next_session: Arc::new(AtomicU64::new(1)),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let mut l = SpeechListener::new(worker.clone(), params(false, false));
        let mut events = Vec::new();
        for i in 0..100 {
            l.on_frame(i * 20_000, &voice(i), 8000, &mut events);
        }
        assert!(worker.dropped_frames() > 50, "{}", worker.dropped_frames());
    }
}
