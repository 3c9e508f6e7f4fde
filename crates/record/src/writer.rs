//! The node's recording writer: one thread that owns every open recording file. Media shards
//! hand it each recorded call's 20 ms frames (what the far end said, what we sent) without
//! blocking; it feeds them to each open `crate::Recording` (WAV or MP3; which also decides
//! when `initial_timeout`, `end_silence_timeout` or `max_length` ends it) and reports every
//! ending to the node — which queues the `calling.call.record` webhook itself, so a recording that
//! ends because the call did is still reported.
//!
//! The queue into the thread is bounded for frames only (queue.rs): at most
//! [`QUEUE_FRAMES`] frames wait at once, all calls together. When the thread falls that far
//! behind (a slow disk), the media thread drops the tick's frame instead of waiting, counts it
//! and warns (at most once a second); the call's next frame that gets through carries the
//! number dropped before it, and the recorder writes that much silence first, so the
//! recording keeps its timeline. A recording with such a gap says so when it ends (a warning
//! and a `recording_gap` entry in the call's event log with `gap_ms`). Start, pause, resume
//! and stop are never dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

use media::queue::{DropBudget, Permit};

/// Frames (20 ms each, one call's) waiting for the recorder at most, all calls together:
/// ~40 s of one call's audio, or 80 ms each of 500 recorded calls. At most ~8 MB (48 kHz).
pub const QUEUE_FRAMES: usize = 2_000;
/// How long the writer waits, once it has written everything queued, before it looks again.
const CAUGHT_UP_NAP: std::time::Duration = std::time::Duration::from_millis(10);

/// One tick of a recorded call's audio.
pub struct TapFrame {
    pub call_id: Uuid,
    /// What the far end said (decoded; zeros when nothing arrived), then what we sent: two
    /// halves of one buffer, which goes back to the handle's pool once written.
    samples: Vec<i16>,
    /// Frames of this call dropped just before this one (the recorder was behind): written
    /// as silence first.
    pub gap_frames: u32,
}

impl TapFrame {
    /// What the far end said.
    pub fn heard(&self) -> &[i16] {
        &self.samples[..self.samples.len() / 2]
    }

    /// What we sent.
    pub fn sent(&self) -> &[i16] {
        &self.samples[self.samples.len() / 2..]
    }
}

/// Frame buffers the recorder has written, for the media threads to fill again: a recorded
/// call's tick allocates nothing. Both sides only `try_lock` (the media tick never waits; a
/// lost race costs one allocation or one free).
#[derive(Default)]
struct FramePool {
    free: Mutex<Vec<Vec<i16>>>,
}

impl FramePool {
    fn take(&self) -> Vec<i16> {
        match self.free.try_lock() {
            Ok(mut free) => free.pop().unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    fn give_back(&self, mut buf: Vec<i16>) {
        if let Ok(mut free) = self.free.try_lock() {
            // Never more than the queue can hold: the pool does not outgrow the load.
            if free.len() < QUEUE_FRAMES {
                buf.clear();
                free.push(buf);
            }
        }
    }
}

/// Who to tell when the recording ends (the webhook is built from it).
#[derive(Debug, Clone)]
pub struct RecordingMeta {
    /// Set for a whole-call transcription's recording: transcribed once it ends.
    pub transcript: Option<TranscriptTarget>,
    pub control_id: String,
    pub status_url: Option<String>,
    pub url: String,
    pub format: String,
    pub audio: serde_json::Value,
    pub started_ms: u64,
    pub project_id: Uuid,
    /// A conference's recording (its frames come keyed by the conference's id, not a call's).
    pub conference: Option<ConferenceOf>,
}

/// The conference a recording is of: its final event is a `calling.conference` `record-stop`
/// to the `status_url`, sent about the call that asked for it.
#[derive(Debug, Clone)]
pub struct ConferenceOf {
    pub conference_id: Uuid,
    pub name: String,
    pub call_id: Uuid,
}

/// Where a transcription's transcript goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptTarget {
    pub status_url: Option<String>,
    /// The leg transcribed (`params.segment_id` of `calling.transcript.*`).
    pub segment_id: Uuid,
}

pub struct StartRecording {
    pub rec_id: Uuid,
    pub call_id: Uuid,
    pub path: PathBuf,
    pub format: crate::Format,
    pub opts: crate::RecordingOptions,
    pub limits: crate::Limits,
    pub meta: RecordingMeta,
}

pub enum RecorderInput {
    /// A frame holds its place in the frame budget until written.
    Frame(TapFrame, Permit),
    Start(Box<StartRecording>),
    Pause {
        rec_id: Uuid,
        behavior: crate::PauseBehavior,
    },
    Resume {
        rec_id: Uuid,
    },
    Stop {
        rec_id: Uuid,
    },
    Shutdown,
}

#[derive(Debug, Clone)]
pub struct RecordingDone {
    pub rec_id: Uuid,
    pub call_id: Uuid,
    pub outcome: crate::Outcome,
    pub duration_ms: u64,
    pub size_bytes: u64,
    /// Silence written in place of frames dropped because the recorder was behind.
    pub gap_ms: u64,
    /// The file holds playable audio (always on finished / no_input; on error when writes
    /// failed after some audio was written).
    pub playable: bool,
    pub meta: RecordingMeta,
}

impl RecordingDone {
    /// The ending of a recording a crash cut off (the process died while it was written):
    /// the file at `path` is repaired so it plays (`crate::repair_file`) and reported
    /// `finished` with the duration and size it now has; a file that cannot be repaired (gone,
    /// not audio) is reported as an `error` and not playable.
    pub fn after_crash(
        rec_id: Uuid,
        call_id: Uuid,
        path: &std::path::Path,
        meta: RecordingMeta,
    ) -> RecordingDone {
        let repaired = crate::Format::from_name(&meta.format)
            .ok_or_else(|| format!("unknown recording format {:?}", meta.format))
            .and_then(|f| crate::repair_file(path, f).map_err(|e| e.to_string()));
        let (outcome, duration_ms, size_bytes, playable) = match repaired {
            Ok(info) => (
                crate::Outcome::Finished,
                info.duration_ms,
                info.size_bytes,
                true,
            ),
            Err(why) => {
                warn!(%rec_id, error = %why, "recording cut by a crash could not be repaired");
                (crate::Outcome::Error(why), 0, 0, false)
            }
        };
        RecordingDone {
            rec_id,
            call_id,
            outcome,
            duration_ms,
            size_bytes,
            gap_ms: 0,
            playable,
            meta,
        }
    }
}

struct Open {
    call_id: Uuid,
    recording: crate::Recording,
    meta: RecordingMeta,
}

#[derive(Clone)]
pub struct RecorderHandle {
    tx: std_mpsc::Sender<RecorderInput>,
    frames: Arc<DropBudget>,
    pool: Arc<FramePool>,
}

impl RecorderHandle {
    /// Starts the writer thread; endings go to `done`.
    pub fn start(done: mpsc::UnboundedSender<RecordingDone>) -> std::io::Result<RecorderHandle> {
        let (tx, rx) = std_mpsc::channel();
        let handle = RecorderHandle::over(tx, QUEUE_FRAMES);
        let pool = handle.pool.clone();
        thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(rx, done, &pool))?;
        Ok(handle)
    }

    /// A handle onto `tx` holding at most `frames` frames in its queue.
    pub fn over(tx: std_mpsc::Sender<RecorderInput>, frames: usize) -> RecorderHandle {
        RecorderHandle {
            tx,
            frames: DropBudget::new("recorder frames", frames),
            pool: Arc::default(),
        }
    }

    /// Start, pause, resume, stop, shutdown: never dropped, never blocks.
    pub fn send(&self, input: RecorderInput) {
        let _ = self.tx.send(input);
    }

    /// A place in the queue for one frame, or None when the recorder is [`QUEUE_FRAMES`]
    /// behind: the caller drops the frame (counted here) and reports the gap with its next
    /// frame. Never blocks (the media thread calls it every tick of a recorded call).
    pub fn admit_frame(&self) -> Option<Permit> {
        self.frames.try_admit()
    }

    /// One tick of `call_id`'s audio in a pooled buffer (`heard` None: silence).
    pub fn frame(
        &self,
        call_id: Uuid,
        heard: Option<&[i16]>,
        sent: &[i16],
        gap_frames: u32,
    ) -> TapFrame {
        let mut samples = self.pool.take();
        match heard {
            Some(h) if h.len() == sent.len() => samples.extend_from_slice(h),
            _ => samples.resize(sent.len(), 0),
        }
        samples.extend_from_slice(sent);
        TapFrame {
            call_id,
            samples,
            gap_frames,
        }
    }

    pub fn send_frame(&self, frame: TapFrame, permit: Permit) {
        let _ = self.tx.send(RecorderInput::Frame(frame, permit));
    }

    /// Frames dropped so far because the recorder was behind (all calls).
    #[allow(dead_code)] // read by tests; a metric later
    pub fn dropped_frames(&self) -> u64 {
        self.frames.dropped()
    }
}

/// Hashes the node's own ids (random v4 UUIDs from `Uuid::new_v4`, never chosen by a caller) by
/// folding their bytes with one multiply per 8: two map lookups per recorded frame were SipHash's
/// 1.7 % of a listening node's samples (docs/perf.md), and keys nobody can choose need no
/// protection from collisions made on purpose.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

type IdMap<V> = HashMap<Uuid, V, std::hash::BuildHasherDefault<IdHasher>>;

fn run(
    rx: std_mpsc::Receiver<RecorderInput>,
    done: mpsc::UnboundedSender<RecordingDone>,
    pool: &FramePool,
) {
    let mut open: IdMap<Open> = IdMap::default();
    // Each call's open recordings: a frame finds its files without a scan of all of them.
    let mut by_call: IdMap<Vec<Uuid>> = IdMap::default();
    let forget = |by_call: &mut IdMap<Vec<Uuid>>, open: &IdMap<Open>, rec_id| {
        if let Some(call_id) = open.get(&rec_id).map(|r| r.call_id) {
            if let Some(ids) = by_call.get_mut(&call_id) {
                ids.retain(|id| *id != rec_id);
                if ids.is_empty() {
                    by_call.remove(&call_id);
                }
            }
        }
    };
    loop {
        let input = match rx.try_recv() {
            Ok(input) => input,
            Err(std_mpsc::TryRecvError::Empty) => {
                // Caught up: let the next media phases' frames gather before waking again,
                // one wake-up per half tick rather than one per phase (recording is never
                // waited on; the queue holds two ticks of 1,000 recorded calls).
                thread::sleep(CAUGHT_UP_NAP);
                match rx.recv() {
                    Ok(input) => input,
                    Err(_) => break,
                }
            }
            Err(std_mpsc::TryRecvError::Disconnected) => break,
        };
        match input {
            RecorderInput::Frame(f, permit) => {
                // The place is free again as soon as the frame is out of the queue.
                drop(permit);
                let mut ended = Vec::new();
                for rec_id in by_call.get(&f.call_id).into_iter().flatten() {
                    if let Some(rec) = open.get_mut(rec_id) {
                        if let Some(outcome) = rec.recording.push(f.heard(), f.sent(), f.gap_frames)
                        {
                            ended.push((*rec_id, outcome));
                        }
                    }
                }
                pool.give_back(f.samples);
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
                match crate::Recording::create(&path, opts, format, limits) {
                    Ok(recording) => {
                        by_call.entry(call_id).or_default().push(rec_id);
                        open.insert(
                            rec_id,
                            Open {
                                call_id,
                                recording,
                                meta,
                            },
                        );
                    }
                    Err(e) => {
                        warn!(%rec_id, error = %e, "recording could not start");
                        let _ = done.send(RecordingDone {
                            rec_id,
                            call_id,
                            outcome: crate::Outcome::Error(e.to_string()),
                            duration_ms: 0,
                            size_bytes: 0,
                            gap_ms: 0,
                            playable: false,
                            meta,
                        });
                    }
                }
            }
            RecorderInput::Pause { rec_id, behavior } => {
                if let Some(r) = open.get_mut(&rec_id) {
                    r.recording.pause(behavior);
                }
            }
            RecorderInput::Resume { rec_id } => {
                if let Some(r) = open.get_mut(&rec_id) {
                    r.recording.resume();
                }
            }
            RecorderInput::Stop { rec_id } => {
                forget(&mut by_call, &open, rec_id);
                close(&mut open, rec_id, crate::Outcome::Finished, &done)
            }
            RecorderInput::Shutdown => break,
        }
    }
    // Shutting down: finish every file so none is left without its header.
    let ids: Vec<Uuid> = open.keys().copied().collect();
    for rec_id in ids {
        close(&mut open, rec_id, crate::Outcome::Finished, &done);
    }
}

fn close(
    open: &mut IdMap<Open>,
    rec_id: Uuid,
    outcome: crate::Outcome,
    done: &mpsc::UnboundedSender<RecordingDone>,
) {
    let Some(rec) = open.remove(&rec_id) else {
        return;
    };
    let gap_ms = rec.recording.gap_ms();
    if gap_ms > 0 {
        warn!(%rec_id, gap_ms, "recording has silence where frames were dropped (recorder behind)");
    }
    let end = rec.recording.end(outcome);
    if let crate::Outcome::Error(why) = &end.outcome {
        warn!(%rec_id, error = %why, "recording failed");
    }
    let _ = done.send(RecordingDone {
        rec_id,
        call_id: rec.call_id,
        outcome: end.outcome,
        duration_ms: end.duration_ms,
        size_bytes: end.size_bytes,
        gap_ms: end.gap_ms,
        playable: end.playable,
        meta: rec.meta,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids' hashes spread over a table's buckets: 10,000 random ids give (nearly) as many
    /// distinct low 16 bits as a uniform hash would, and distinct full hashes.
    #[test]
    fn ids_hash_apart() {
        use std::hash::BuildHasher;
        let build = std::hash::BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (0..10_000)
            .map(|_| build.hash_one(Uuid::new_v4()))
            .collect();
        let full: std::collections::HashSet<u64> = hashes.iter().copied().collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xffff).collect();
        assert_eq!(full.len(), 10_000);
        // A uniform hash fills ~65536 * (1 - e^(-10000/65536)) = 9,277 distinct buckets.
        assert!(low.len() > 9_000, "{}", low.len());
        let mut map: IdMap<u32> = IdMap::default();
        let ids: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        for (i, id) in ids.iter().enumerate() {
            map.insert(*id, i as u32);
        }
        assert!(ids
            .iter()
            .enumerate()
            .all(|(i, id)| map.get(id) == Some(&(i as u32))));
    }

    fn frame(call_id: Uuid, gap_frames: u32) -> TapFrame {
        let mut samples = vec![1000; 160];
        samples.extend([-1000; 160]);
        TapFrame {
            call_id,
            samples,
            gap_frames,
        }
    }

    /// Filling the queue: frames past the bound are refused (counted), control inputs never
    /// are, and a written frame frees its place.
    #[test]
    fn full_queue_refuses_frames_not_control() {
        let (tx, rx) = std_mpsc::channel();
        let handle = RecorderHandle::over(tx, 3);
        let call = Uuid::new_v4();
        for _ in 0..3 {
            let permit = handle.admit_frame();
            assert!(permit.is_some());
            if let Some(p) = permit {
                handle.send_frame(frame(call, 0), p);
            }
        }
        for _ in 0..4 {
            assert!(handle.admit_frame().is_none());
        }
        assert_eq!(handle.dropped_frames(), 4);
        let rec_id = Uuid::new_v4();
        handle.send(RecorderInput::Stop { rec_id });
        let queued: Vec<RecorderInput> = rx.try_iter().collect();
        assert_eq!(queued.len(), 4);
        assert!(matches!(queued.last(), Some(RecorderInput::Stop { .. })));
        drop(queued);
        assert!(handle.admit_frame().is_some());
    }

    /// A frame's two halves are what was heard and sent; a written frame's buffer is the next
    /// frame's (no allocation per tick).
    #[test]
    fn frames_reuse_written_buffers() {
        let (tx, _rx) = std_mpsc::channel();
        let handle = RecorderHandle::over(tx, 10);
        let call_id = Uuid::new_v4();
        let f = handle.frame(call_id, Some(&[1, 2, 3]), &[4, 5, 6], 0);
        assert_eq!((f.heard(), f.sent()), (&[1, 2, 3][..], &[4, 5, 6][..]));
        let silent = handle.frame(call_id, None, &[7, 8], 2);
        assert_eq!((silent.heard(), silent.sent()), (&[0, 0][..], &[7, 8][..]));
        let at = f.samples.as_ptr();
        handle.pool.give_back(f.samples);
        let again = handle.frame(call_id, Some(&[9; 3]), &[9; 3], 0);
        assert_eq!(again.samples.as_ptr(), at);
        assert_eq!(again.heard(), &[9; 3]);
    }

    /// Frames dropped before a frame are written as silence: the recording keeps its
    /// timeline and reports the gap.
    #[test]
    fn gap_is_written_as_silence_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std_mpsc::channel();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let handle = RecorderHandle::over(tx, 100);
        let pool = handle.pool.clone();
        let worker = thread::spawn(move || run(rx, done_tx, &pool));
        let (call_id, rec_id) = (Uuid::new_v4(), Uuid::new_v4());
        handle.send(RecorderInput::Start(Box::new(StartRecording {
            rec_id,
            call_id,
            path: dir.path().join("r.wav"),
            format: crate::Format::Wav,
            opts: crate::RecordingOptions {
                sample_rate: 8000,
                channels: crate::Channels::Mono,
                direction: crate::Direction::Both,
            },
            limits: crate::Limits {
                max_length_ms: None,
                initial_timeout_ms: None,
                end_silence_ms: None,
                sensitivity: 50,
                vad_on_heard: true,
            },
            meta: RecordingMeta {
                transcript: None,
                control_id: "rec".into(),
                status_url: None,
                url: String::new(),
                format: "wav".into(),
                audio: serde_json::Value::Null,
                started_ms: 0,
                project_id: Uuid::new_v4(),
                conference: None,
            },
        })));
        for gap in [0, 0, 5, 0] {
            if let Some(p) = handle.admit_frame() {
                handle.send_frame(frame(call_id, gap), p);
            }
        }
        handle.send(RecorderInput::Stop { rec_id });
        handle.send(RecorderInput::Shutdown);
        worker.join().unwrap();
        let done = done_rx.try_recv().unwrap();
        assert_eq!(done.outcome, crate::Outcome::Finished);
        assert_eq!(done.gap_ms, 100);
        assert_eq!(done.duration_ms, (4 + 5) * 20);
    }

    fn meta(format: &str) -> RecordingMeta {
        RecordingMeta {
            transcript: None,
            control_id: "rec".into(),
            status_url: Some("http://127.0.0.1:9/rec".into()),
            url: String::new(),
            format: format.into(),
            audio: serde_json::Value::Null,
            started_ms: 0,
            project_id: Uuid::new_v4(),
            conference: None,
        }
    }

    /// A WAV file as a crash leaves it: the header still says no data, one second of 8 kHz
    /// mono audio behind it.
    fn crashed_wav(path: &std::path::Path) {
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&36u32.to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes()); // PCM
        b.extend_from_slice(&1u16.to_le_bytes()); // mono
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&16000u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend(std::iter::repeat_n(0x11u8, 16_000));
        std::fs::write(path, b).unwrap();
    }

    #[test]
    fn a_recording_cut_by_a_crash_is_repaired_and_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        crashed_wav(&path);
        let (rec_id, call_id) = (Uuid::new_v4(), Uuid::new_v4());
        let done = RecordingDone::after_crash(rec_id, call_id, &path, meta("wav"));
        assert_eq!(done.outcome, crate::Outcome::Finished);
        assert!(done.playable);
        assert_eq!((done.duration_ms, done.size_bytes), (1000, 44 + 16_000));
        assert_eq!((done.rec_id, done.call_id), (rec_id, call_id));
        assert_eq!(
            done.meta.status_url.as_deref(),
            Some("http://127.0.0.1:9/rec")
        );
        // The header now says so.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[40..44], &16_000u32.to_le_bytes());
    }

    #[test]
    fn a_recording_whose_file_is_gone_ends_in_error() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone.mp3");
        let done = RecordingDone::after_crash(Uuid::new_v4(), Uuid::new_v4(), &gone, meta("mp3"));
        assert!(matches!(done.outcome, crate::Outcome::Error(_)));
        assert!(!done.playable);
        let odd = RecordingDone::after_crash(Uuid::new_v4(), Uuid::new_v4(), &gone, meta("mp4"));
        assert!(matches!(odd.outcome, crate::Outcome::Error(_)));
    }
}
