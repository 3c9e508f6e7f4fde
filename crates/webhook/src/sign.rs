//! `X-SignalWire-Signature` / `X-SignalWire-SHA256-Signature`: lower-case hex HMAC of the URL
//! followed directly by the raw body (no separator).

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Both signatures of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    /// For `X-SignalWire-Signature`.
    pub sha1_hex: String,
    /// For `X-SignalWire-SHA256-Signature`.
    pub sha256_hex: String,
}

/// Lower-case hex HMAC-SHA1 and HMAC-SHA256 of `url + body` with `key`. `url` must be exactly
/// the URL the request is sent to (credentials removed), `body` exactly the bytes sent.
pub fn sign(key: &[u8], url: &str, body: &[u8]) -> Signatures {
    let parts = [url.as_bytes(), body];
    Signatures {
        sha1_hex: to_hex(&hmac::<Sha1>(key, &parts)),
        sha256_hex: to_hex(&hmac::<Sha256>(key, &parts)),
    }
}

/// The block size of SHA-1 and SHA-256, the only hashes used here.
const BLOCK: usize = 64;

/// HMAC (RFC 2104) over the concatenation of `parts`, for a hash with a 64-byte block and a
/// digest of at most 64 bytes. Infallible for every key length, unlike `Mac::new_from_slice`.
fn hmac<D: Digest>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        let hashed = D::digest(key);
        let n = hashed.len().min(BLOCK);
        block[..n].copy_from_slice(&hashed[..n]);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = D::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let inner = inner.finalize();
    let mut outer = D::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(&inner);
    outer.finalize().to_vec()
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(to_hex(&[]), "");
    }

    // RFC 2202 test case 1 and RFC 4231 test case 1 (key 0x0b * 20, data "Hi There").
    #[test]
    fn rfc_vectors() {
        let key = [0x0bu8; 20];
        assert_eq!(
            to_hex(&hmac::<Sha1>(&key, &[b"Hi There"])),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            to_hex(&hmac::<Sha256>(&key, &[b"Hi", b" There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    // RFC 4231 test case 6: a 131-byte key is hashed first.
    #[test]
    fn long_key_is_hashed() {
        let key = [0xaau8; 131];
        assert_eq!(
            to_hex(&hmac::<Sha256>(
                &key,
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
