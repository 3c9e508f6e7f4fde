//! SDES (RFC 4568) `a=crypto` lines for SRTP: parsing the ones we can use, writing ours.
//!
//! `a=crypto:<tag> <suite> inline:<base64 of key||salt>[|<lifetime>][|<MKI>:<length>]
//! [<session params>]`. A line is usable when its suite is one we speak, it carries exactly
//! one `inline:` key of 30 bytes, its MKI (if any) is at most 4 bytes, and it asks for no
//! session parameter that changes the transform (`UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP`,
//! `UNAUTHENTICATED_SRTP`, `KDR` other than 0, `FEC_KEY`, or one we do not know). Other
//! lines are skipped, not errors: an offer may list several and the first usable one wins.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::model::{Attribute, MediaDescription};

/// Bytes of an AES-128 master key followed by its 112-bit master salt.
pub const SDES_KEY_SALT_LEN: usize = 30;

/// The SRTP crypto suites we negotiate (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// Our preference order.
    pub const ALL: [CryptoSuite; 2] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
    ];

    /// The SDP name, the same as `srtp::Suite::name`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        CryptoSuite::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One SDES master key: key || salt, with the optional lifetime and MKI of its line.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey {
    pub key_salt: [u8; SDES_KEY_SALT_LEN],
    /// The lifetime as written (`2^31`, `1048576`); not enforced.
    pub lifetime: Option<String>,
    /// `(value, length in bytes)`: packets carry `value` big-endian in `length` bytes.
    pub mki: Option<(u32, u8)>,
}

impl SdesKey {
    /// A key without lifetime or MKI (what we send).
    pub fn new(key_salt: [u8; SDES_KEY_SALT_LEN]) -> SdesKey {
        SdesKey {
            key_salt,
            lifetime: None,
            mki: None,
        }
    }

    /// The MKI bytes SRTP packets under this key carry (empty: none).
    pub fn mki_bytes(&self) -> Vec<u8> {
        match self.mki {
            Some((value, len)) => {
                let be = value.to_be_bytes();
                be[4 - usize::from(len).min(4)..].to_vec()
            }
            None => Vec::new(),
        }
    }
}

/// Never prints the key.
impl fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdesKey")
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish_non_exhaustive()
    }
}

/// A usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: CryptoSuite,
    pub key: SdesKey,
}

impl Crypto {
    /// Parses the value of an `a=crypto:` attribute; `None` when the line is malformed or
    /// asks for something we do not do.
    pub fn parse(value: &str) -> Option<Crypto> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next()?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let tag: u32 = tag.parse().ok()?;
        let suite = CryptoSuite::from_name(fields.next()?)?;
        let key_params = fields.next()?;
        if key_params.contains(';') {
            return None; // several keys (MKI-switched): not supported
        }
        let key = parse_inline(key_params)?;
        if !fields.all(session_param_ok) {
            return None;
        }
        Some(Crypto { tag, suite, key })
    }

    /// A line for our own key (no lifetime, no MKI).
    pub fn new(tag: u32, suite: CryptoSuite, key_salt: [u8; SDES_KEY_SALT_LEN]) -> Crypto {
        Crypto {
            tag,
            suite,
            key: SdesKey::new(key_salt),
        }
    }

    /// As an SDP attribute (`a=crypto:...`).
    pub fn to_attribute(&self) -> Attribute {
        Attribute::Other {
            name: "crypto".into(),
            value: Some(self.to_string()),
        }
    }
}

/// The attribute value: `<tag> <suite> inline:<key||salt>[|lifetime][|mki:len]`.
impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key.key_salt)
        )?;
        if let Some(l) = &self.key.lifetime {
            write!(f, "|{l}")?;
        }
        if let Some((v, len)) = self.key.mki {
            write!(f, "|{v}:{len}")?;
        }
        Ok(())
    }
}

fn parse_inline(param: &str) -> Option<SdesKey> {
    let (method, info) = param.split_once(':')?;
    if !method.eq_ignore_ascii_case("inline") {
        return None;
    }
    let mut parts = info.split('|');
    let encoded = parts.next()?;
    if encoded.len() > 64 {
        return None;
    }
    let bytes = STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
        .ok()?;
    let key_salt: [u8; SDES_KEY_SALT_LEN] = bytes.try_into().ok()?;
    let mut key = SdesKey::new(key_salt);
    for part in parts {
        if let Some((value, len)) = part.split_once(':') {
            if key.mki.is_some() {
                return None;
            }
            key.mki = Some(parse_mki(value, len)?);
        } else if key.lifetime.is_none() && key.mki.is_none() && lifetime_ok(part) {
            key.lifetime = Some(part.to_string());
        } else {
            return None;
        }
    }
    Some(key)
}

/// `2^n` or a decimal number.
fn lifetime_ok(s: &str) -> bool {
    let digits = s.strip_prefix("2^").unwrap_or(s);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `<value>:<length>`, length 1..=4 bytes (RFC 4568 allows up to 128; we carry up to 4),
/// the value fitting in it.
fn parse_mki(value: &str, len: &str) -> Option<(u32, u8)> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(value) || !digits(len) {
        return None;
    }
    let value: u64 = value.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    if !(1..=4).contains(&len) || value >= 1u64 << (8 * u32::from(len)) {
        return None;
    }
    Some((u32::try_from(value).ok()?, len))
}

/// Session parameters (RFC 4568 §6.3) that leave the default transform alone.
fn session_param_ok(p: &str) -> bool {
    let (name, value) = p.split_once('=').unwrap_or((p, ""));
    match name {
        "KDR" => value == "0",
        "WSH" | "FEC_ORDER" => true,
        _ => false,
    }
}

/// The usable crypto lines of a media section, in its order.
pub fn crypto_lines(media: &MediaDescription) -> Vec<Crypto> {
    media
        .attributes
        .iter()
        .filter_map(|a| match a {
            Attribute::Other {
                name,
                value: Some(v),
            } if name.eq_ignore_ascii_case("crypto") => Crypto::parse(v),
            _ => None,
        })
        .collect()
}

/// Whether a media section has any `a=crypto` line at all (usable or not).
pub(crate) fn has_crypto_attribute(media: &MediaDescription) -> bool {
    media
        .attributes
        .iter()
        .any(|a| matches!(a, Attribute::Other { name, .. } if name.eq_ignore_ascii_case("crypto")))
}

/// The SRTP a negotiation settled on: one suite, a key each way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpParams {
    pub suite: CryptoSuite,
    /// The tag of the chosen line.
    pub tag: u32,
    /// Our key: protect what we send with it.
    pub local: SdesKey,
    /// The peer's key: unprotect what it sends with it.
    pub remote: SdesKey,
}

/// Per-call media encryption, as `connect`'s `encryption` parameter names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Plain RTP only: `a=crypto` lines are ignored and an SRTP-only offer is refused
    /// (what `answer_offer` does).
    #[default]
    Forbidden,
    /// SRTP when the peer offers a usable key, plain RTP otherwise.
    Optional,
    /// SRTP or nothing.
    Mandatory,
}

impl Encryption {
    pub fn from_name(name: &str) -> Option<Encryption> {
        match name {
            "forbidden" => Some(Encryption::Forbidden),
            "optional" => Some(Encryption::Optional),
            "mandatory" => Some(Encryption::Mandatory),
            _ => None,
        }
    }
}
