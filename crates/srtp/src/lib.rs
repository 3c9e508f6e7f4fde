//! RFC 3711 SRTP and SRTCP for SDES-keyed calls (RFC 4568). Pure: no sockets, no clock.
//!
//! * Suites: `AES_CM_128_HMAC_SHA1_80` (RTP and RTCP) and `AES_CM_128_HMAC_SHA1_32` (a 32-bit
//!   RTP tag; SRTCP keeps its 80-bit tag, RFC 4568 §6.2.2).
//! * Key derivation with the AES-CM PRF (labels 0..5, key_derivation_rate 0), checked
//!   against RFC 3711 Appendix B.3; the AES-CM keystream against Appendix B.2.
//! * [`SrtpContext`]: `protect_rtp`/`unprotect_rtp`, `protect_rtcp`/`unprotect_rtcp`, with
//!   the rollover counter estimated per RFC 3711 §3.3.1, a 128-packet replay window per
//!   SSRC, and tags compared in constant time.
//!
//! One context holds one master key. With SDES each side sends with its own key, so a call
//! has two: one made from our key (protects what we send) and one from the key the peer's
//! `a=crypto` gave (unprotects what it sends). Every input is treated as hostile: malformed
//! packets are errors, never panics.

mod context;
mod kdf;
mod replay;

pub use context::SrtpContext;
pub use kdf::{aes_cm_keystream, derive_session_key, Label};

/// Length of an AES-128 master key in bytes.
pub const MASTER_KEY_LEN: usize = 16;
/// Length of a master salt in bytes (112 bits).
pub const MASTER_SALT_LEN: usize = 14;
/// An SDES `inline:` key is the master key followed by the master salt.
pub const MASTER_KEY_SALT_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
/// Packets the replay window remembers behind the highest index seen.
pub const REPLAY_WINDOW: u64 = 128;
/// SRTCP tags are 80 bits for both suites.
pub const SRTCP_TAG_LEN: usize = 10;

/// A crypto suite (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit RTP tag (80 bits on SRTCP).
    AesCm128HmacSha1_32,
}

impl Suite {
    /// The SDP name (`AES_CM_128_HMAC_SHA1_80`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite an SDP name stands for (exact, case-sensitive as RFC 4568 spells them).
    pub fn from_name(name: &str) -> Option<Suite> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// Length of the SRTP authentication tag in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// A master key and salt, as an SDES `inline:` parameter carries them.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub key: [u8; MASTER_KEY_LEN],
    pub salt: [u8; MASTER_SALT_LEN],
}

impl MasterKey {
    /// Splits 30 bytes of key || salt.
    pub fn from_key_salt(bytes: &[u8]) -> Result<MasterKey, SrtpError> {
        if bytes.len() != MASTER_KEY_SALT_LEN {
            return Err(SrtpError::KeyLength(bytes.len()));
        }
        let mut key = [0u8; MASTER_KEY_LEN];
        let mut salt = [0u8; MASTER_SALT_LEN];
        key.copy_from_slice(&bytes[..MASTER_KEY_LEN]);
        salt.copy_from_slice(&bytes[MASTER_KEY_LEN..]);
        Ok(MasterKey { key, salt })
    }

    /// Key || salt, 30 bytes.
    pub fn to_key_salt(&self) -> [u8; MASTER_KEY_SALT_LEN] {
        let mut out = [0u8; MASTER_KEY_SALT_LEN];
        out[..MASTER_KEY_LEN].copy_from_slice(&self.key);
        out[MASTER_KEY_LEN..].copy_from_slice(&self.salt);
        out
    }
}

/// Never prints the key material.
impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("master key and salt must be 30 bytes, got {0}")]
    KeyLength(usize),
    #[error("MKI longer than 4 bytes ({0})")]
    MkiLength(usize),
    #[error("packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("not an RTP/RTCP version 2 packet")]
    Version,
    #[error("RTP header (CSRC list or extension) runs past the payload")]
    Header,
    #[error("authentication tag does not match")]
    Auth,
    #[error("MKI does not match")]
    Mki,
    #[error("replayed packet (index {0})")]
    Replay(u64),
    #[error("packet older than the replay window (index {0})")]
    TooOld(u64),
    #[error("the master key has protected all the packets it may (RFC 3711 §9.2)")]
    KeyExhausted,
}

#[cfg(test)]
mod tests;
