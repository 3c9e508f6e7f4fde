//! Where a recording's samples go: one file format each (WAV, MP3).

use crate::RecordError;

/// One recording file being written. The recorder hands it interleaved 16-bit samples (one
/// 20 ms frame at a time), asks for a durable checkpoint once a second of audio, and
/// finishes it once.
pub trait Sink: Send + std::fmt::Debug {
    /// Appends interleaved sample frames.
    fn write(&mut self, samples: &[i16]) -> Result<(), RecordError>;
    /// Makes everything written so far survive a crash of the process (handed to the OS,
    /// headers current); `durable` also syncs it to disk, to survive the machine's crash.
    fn checkpoint(&mut self, durable: bool) -> Result<(), RecordError>;
    /// Writes what is still buffered and syncs the file; called once, last.
    fn finish(&mut self) -> Result<(), RecordError>;
    /// Bytes of the file so far.
    fn size_bytes(&self) -> u64;
}
