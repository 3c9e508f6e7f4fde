//! One `calling.record` from start to end: the file plus what ends it early. A [`Recording`]
//! writes each 20 ms frame it is given, runs the VAD that ends it on `initial_timeout`
//! (nothing said: [`Outcome::NoInput`]) or `end_silence_timeout` (said something, then
//! silence), stops it at `max_length`, writes frames dropped before a frame (the writer was
//! behind) as silence so the recording keeps its timeline, and when it ends says what the
//! final event reports. Its clock is the audio: one frame = 20 ms.

use std::path::Path;

use media::vad::Vad;

use crate::{
    repair, repair_mp3, Format, PauseBehavior, RecordError, Recorder, RecordingInfo,
    RecordingOptions,
};

/// Milliseconds of audio in one frame.
const FRAME_MS: u64 = 20;

/// What ends a recording besides a stop or the call's end.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Recorded audio (paused-and-skipped audio not counted) at which it stops.
    pub max_length_ms: Option<u64>,
    /// Audio without speech from the start after which it ends as [`Outcome::NoInput`].
    pub initial_timeout_ms: Option<u64>,
    /// Silence after speech after which it ends.
    pub end_silence_ms: Option<u64>,
    /// VAD sensitivity, 0–100.
    pub sensitivity: u8,
    /// The VAD listens to what the far end says (else to what we send).
    pub vad_on_heard: bool,
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stopped, end of speech, max length or hang-up.
    Finished,
    /// Nothing was said within `initial_timeout`.
    NoInput,
    Error(String),
}

impl Outcome {
    /// The `state` of the recording's final event.
    pub fn state(&self) -> &'static str {
        match self {
            Outcome::Finished => "finished",
            Outcome::NoInput => "no_input",
            Outcome::Error(_) => "error",
        }
    }
}

/// What the final event of a recording reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub outcome: Outcome,
    pub duration_ms: u64,
    pub size_bytes: u64,
    /// Silence written in place of frames dropped because the writer was behind.
    pub gap_ms: u64,
    /// The file holds playable audio (always on finished / no_input; on error when writes
    /// failed after some audio was written).
    pub playable: bool,
}

/// An open recording.
pub struct Recording {
    writer: Recorder,
    limits: Limits,
    vad: Vad,
    heard_speech: bool,
    frames: u64,
    gap_frames: u64,
}

impl Recording {
    /// Creates the file at `path` (its folder must exist).
    pub fn create(
        path: &Path,
        opts: RecordingOptions,
        format: Format,
        limits: Limits,
    ) -> Result<Recording, RecordError> {
        let writer = Recorder::create_as(path, opts, format)?;
        Ok(Recording {
            vad: Vad::new(opts.sample_rate, limits.sensitivity),
            writer,
            limits,
            heard_speech: false,
            frames: 0,
            gap_frames: 0,
        })
    }

    pub fn pause(&mut self, behavior: PauseBehavior) {
        self.writer.pause(behavior);
    }

    pub fn resume(&mut self) {
        self.writer.resume();
    }

    /// Writes `gap_frames` frames of silence (frames dropped just before this one), then the
    /// frame (`heard`: what the far end said, `sent`: what we sent). Returns how the recording
    /// ends when this ends it; nothing more is written then.
    pub fn push(&mut self, heard: &[i16], sent: &[i16], gap_frames: u32) -> Option<Outcome> {
        if gap_frames > 0 {
            self.gap_frames += u64::from(gap_frames);
            let (quiet_heard, quiet_sent) = (vec![0; heard.len()], vec![0; sent.len()]);
            for _ in 0..gap_frames {
                if let Some(outcome) = self.write(&quiet_heard, &quiet_sent) {
                    return Some(outcome);
                }
            }
        }
        self.write(heard, sent)
    }

    fn write(&mut self, heard: &[i16], sent: &[i16]) -> Option<Outcome> {
        if let Err(e) = self.writer.write_frame(Some(heard), Some(sent)) {
            return Some(Outcome::Error(e.to_string()));
        }
        self.frames += 1;
        let elapsed_ms = self.frames * FRAME_MS;
        self.vad.push_frame(if self.limits.vad_on_heard {
            heard
        } else {
            sent
        });
        if self.vad.is_speech() {
            self.heard_speech = true;
        }
        if self
            .limits
            .max_length_ms
            .is_some_and(|max| self.writer.duration_ms() >= max)
        {
            return Some(Outcome::Finished);
        }
        if !self.heard_speech {
            if self
                .limits
                .initial_timeout_ms
                .is_some_and(|t| elapsed_ms >= t)
            {
                return Some(Outcome::NoInput);
            }
        } else if self
            .limits
            .end_silence_ms
            .is_some_and(|t| !self.vad.is_speech() && u64::from(self.vad.silence_ms()) >= t)
        {
            return Some(Outcome::Finished);
        }
        None
    }

    /// Silence written so far in place of dropped frames, ms.
    pub fn gap_ms(&self) -> u64 {
        self.gap_frames * FRAME_MS
    }

    /// Closes the file and says what the final event reports. A write error already decided
    /// the outcome; finishing then fails too (nothing more is written), and the file is
    /// repaired so what reached it plays.
    pub fn end(self, outcome: Outcome) -> Ending {
        let gap_ms = self.gap_ms();
        let path = self.writer.path().to_path_buf();
        let format = self.writer.format();
        let finished = match outcome {
            Outcome::Error(e) => {
                // Closed before the repair, so nothing buffered lands after it.
                drop(self.writer);
                Err(e)
            }
            ok => self
                .writer
                .finish()
                .map(|info| (ok, info))
                .map_err(|e| e.to_string()),
        };
        match finished {
            Ok((outcome, info)) => Ending {
                outcome,
                duration_ms: info.duration_ms,
                size_bytes: info.size_bytes,
                gap_ms,
                playable: true,
            },
            Err(why) => match repair_file(&path, format) {
                Ok(info) => Ending {
                    outcome: Outcome::Error(why),
                    duration_ms: info.duration_ms,
                    size_bytes: info.size_bytes,
                    gap_ms,
                    playable: info.duration_ms > 0,
                },
                Err(_) => Ending {
                    outcome: Outcome::Error(why),
                    duration_ms: 0,
                    size_bytes: 0,
                    gap_ms,
                    playable: false,
                },
            },
        }
    }
}

/// Makes a recording file a crash left behind playable (WAV: header sizes from the file
/// length; MP3: a partial last frame cut off).
pub fn repair_file(path: &Path, format: Format) -> Result<RecordingInfo, RecordError> {
    match format {
        Format::Wav => repair(path),
        Format::Mp3 => repair_mp3(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channels, Direction};

    const RATE: u32 = 8000;

    fn opts() -> RecordingOptions {
        RecordingOptions {
            sample_rate: RATE,
            channels: Channels::Mono,
            direction: Direction::Both,
        }
    }

    fn limits() -> Limits {
        Limits {
            max_length_ms: None,
            initial_timeout_ms: None,
            end_silence_ms: None,
            sensitivity: 50,
            vad_on_heard: true,
        }
    }

    fn quiet() -> Vec<i16> {
        vec![0; (RATE / 50) as usize]
    }

    /// A loud 300 Hz tone: voiced for the VAD.
    fn loud(frame: u64) -> Vec<i16> {
        let n = (RATE / 50) as usize;
        (0..n)
            .map(|i| {
                let t = (frame as usize * n + i) as f32 / RATE as f32;
                (8000.0 * (2.0 * std::f32::consts::PI * 300.0 * t).sin()) as i16
            })
            .collect()
    }

    /// Pushes frames from `audio(frame number)` until one ends the recording (at most `max`);
    /// returns that frame's number (1-based) and the outcome.
    fn run(
        rec: &mut Recording,
        max: u64,
        audio: impl Fn(u64) -> (Vec<i16>, Vec<i16>),
    ) -> Option<(u64, Outcome)> {
        (1..=max).find_map(|n| {
            let (heard, sent) = audio(n);
            rec.push(&heard, &sent, 0).map(|o| (n, o))
        })
    }

    fn create(dir: &tempfile::TempDir, limits: Limits) -> Recording {
        Recording::create(&dir.path().join("r.wav"), opts(), Format::Wav, limits).unwrap()
    }

    #[test]
    fn nothing_said_ends_as_no_input_at_the_initial_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = create(
            &dir,
            Limits {
                initial_timeout_ms: Some(1000),
                ..limits()
            },
        );
        assert_eq!(
            run(&mut rec, 500, |_| (quiet(), quiet())),
            Some((50, Outcome::NoInput))
        );
        let end = rec.end(Outcome::NoInput);
        assert_eq!(end.outcome, Outcome::NoInput);
        assert_eq!(end.duration_ms, 1000);
        assert!(end.playable);
    }

    #[test]
    fn silence_after_speech_ends_it_and_speech_cancels_the_initial_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = create(
            &dir,
            Limits {
                initial_timeout_ms: Some(200),
                end_silence_ms: Some(500),
                ..limits()
            },
        );
        // Speech from the start for 1 s, then silence: ends 500 ms into the silence (after the
        // VAD's hangover), never as no_input.
        let (n, outcome) = run(&mut rec, 500, |n| {
            let heard = if n <= 50 { loud(n) } else { quiet() };
            (heard, quiet())
        })
        .unwrap();
        assert_eq!(outcome, Outcome::Finished);
        assert!((50 + 25..=50 + 25 + 15).contains(&n), "ended at frame {n}");
    }

    #[test]
    fn the_vad_listens_to_the_chosen_direction() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = create(
            &dir,
            Limits {
                initial_timeout_ms: Some(400),
                vad_on_heard: false,
                ..limits()
            },
        );
        // Loud audio heard does not count when the VAD listens to what we send.
        assert_eq!(
            run(&mut rec, 100, |n| (loud(n), quiet())),
            Some((20, Outcome::NoInput))
        );
    }

    #[test]
    fn max_length_counts_recorded_audio() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = create(
            &dir,
            Limits {
                max_length_ms: Some(400),
                ..limits()
            },
        );
        // Skipped (paused) audio is not recorded, so it does not count.
        rec.pause(PauseBehavior::Skip);
        assert_eq!(run(&mut rec, 10, |_| (quiet(), quiet())), None);
        rec.resume();
        assert_eq!(
            run(&mut rec, 100, |n| (loud(n), loud(n))),
            Some((20, Outcome::Finished))
        );
        assert_eq!(rec.end(Outcome::Finished).duration_ms, 400);
    }

    #[test]
    fn a_gap_is_written_as_silence_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = create(&dir, limits());
        for gap in [0, 0, 5, 0] {
            assert_eq!(rec.push(&loud(1), &quiet(), gap), None);
        }
        let end = rec.end(Outcome::Finished);
        assert_eq!(end.gap_ms, 100);
        assert_eq!(end.duration_ms, (4 + 5) * 20);
        assert_eq!(end.outcome, Outcome::Finished);
    }

    #[test]
    fn a_gap_that_reaches_a_limit_ends_it_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = create(
            &dir,
            Limits {
                max_length_ms: Some(100),
                ..limits()
            },
        );
        assert_eq!(rec.push(&loud(1), &quiet(), 0), None);
        assert_eq!(rec.push(&loud(2), &quiet(), 10), Some(Outcome::Finished));
        assert_eq!(rec.end(Outcome::Finished).duration_ms, 100);
    }

    #[test]
    fn outcomes_name_their_final_state() {
        assert_eq!(Outcome::Finished.state(), "finished");
        assert_eq!(Outcome::NoInput.state(), "no_input");
        assert_eq!(Outcome::Error("x".into()).state(), "error");
    }

    #[test]
    fn an_error_outcome_keeps_the_audio_written_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = create(&dir, limits());
        for n in 1..=10 {
            assert_eq!(rec.push(&loud(n), &quiet(), 0), None);
        }
        let end = rec.end(Outcome::Error("disk full".into()));
        assert_eq!(end.outcome, Outcome::Error("disk full".into()));
        assert!(end.playable);
        assert_eq!(end.duration_ms, 200);
    }
}
