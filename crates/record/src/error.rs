use std::path::PathBuf;

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file operation failed.
    #[error("recording {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file (or its directory).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The sample rate is not one we can record at.
    #[error("unsupported sample rate {0} Hz (a multiple of 50 in 8000..=192000)")]
    SampleRate(u32),
    /// A frame did not hold exactly 20 ms of audio.
    #[error("{direction} frame has {got} samples, expected {expected} (20 ms)")]
    FrameLength {
        /// `listen` or `speak`.
        direction: &'static str,
        /// Samples given.
        got: usize,
        /// Samples in 20 ms at the recording's rate.
        expected: usize,
    },
    /// The WAV format's 32-bit sizes cannot describe more audio.
    #[error("recording reached the WAV size limit (4 GiB)")]
    TooLarge,
    /// An earlier write failed; the recorder writes nothing more (use [`crate::repair`]).
    #[error("recording stopped after an earlier write error")]
    Failed,
    /// The MP3 encoder failed.
    #[error("mp3 encoder: {0}")]
    Mp3(#[source] crate::LameError),
    /// The file holds no MP3 frame.
    #[error("not a repairable MP3 file {path}")]
    NotMp3 {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a WAV file this crate can repair.
    #[error("not a repairable WAV file {path}: {reason}")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl RecordError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        RecordError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
