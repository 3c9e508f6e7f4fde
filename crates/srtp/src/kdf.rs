//! AES counter mode (RFC 3711 §4.1.1) and the key derivation PRF built on it (§4.3).

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use aes::Aes128;
use ctr::{flavors, CtrCore};

use crate::{MASTER_KEY_LEN, MASTER_SALT_LEN};

/// The key derivation labels of RFC 3711 §4.3.1 and §4.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Label {
    RtpEncryption = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// XORs the AES-CM keystream that starts at counter block `iv` into `data`. The counter is
/// the whole 128-bit block, incremented big-endian, as in RFC 3711 Appendix B.2.
pub(crate) fn apply_aes_cm(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    let core = CtrCore::<Aes128, flavors::Ctr128BE>::inner_iv_init(cipher.clone(), iv.into());
    let mut stream = StreamCipherCoreWrapper::from_core(core);
    stream.apply_keystream(data);
}

/// `len` bytes of AES-CM keystream for `key` starting at counter block `iv` (the raw
/// transform, for tests and diagnostics).
pub fn aes_cm_keystream(key: &[u8; 16], iv: &[u8; 16], len: usize) -> Vec<u8> {
    let cipher = Aes128::new(key.into());
    let mut out = vec![0u8; len];
    apply_aes_cm(&cipher, iv, &mut out);
    out
}

/// The session key of one label with key_derivation_rate 0 (so r = 0): the AES-CM PRF
/// keyed with the master key, at IV = (label << 48 XOR master_salt) << 16, truncated to
/// `len` bytes.
pub fn derive_session_key(
    master_key: &[u8; MASTER_KEY_LEN],
    master_salt: &[u8; MASTER_SALT_LEN],
    label: Label,
    len: usize,
) -> Vec<u8> {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(master_salt);
    // key_id = label || r (48 bits of zero), right-aligned in the 112-bit salt: the label
    // lands on byte 7.
    iv[7] ^= label as u8;
    aes_cm_keystream(master_key, &iv, len)
}
