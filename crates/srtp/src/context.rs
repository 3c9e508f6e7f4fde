//! The SRTP/SRTCP crypto context of one master key (RFC 3711 §3.2, §3.3, §3.4).

use aes::cipher::KeyInit;
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::kdf::{apply_aes_cm, derive_session_key, Label};
use crate::replay::{ReplayWindow, SsrcTable};
use crate::{MasterKey, SrtpError, Suite, MASTER_SALT_LEN, SRTCP_TAG_LEN};

/// Largest SRTP packet index (48 bits).
const MAX_RTP_INDEX: u64 = (1 << 48) - 1;
/// Largest SRTCP index (31 bits).
const MAX_RTCP_INDEX: u32 = 0x7fff_ffff;
/// The E flag of the SRTCP index word: the payload is encrypted.
const E_FLAG: u32 = 0x8000_0000;
const RTP_HEADER_LEN: usize = 12;
const RTCP_HEADER_LEN: usize = 8;

/// The session keys of one direction of use (SRTP or SRTCP).
#[derive(Clone)]
struct SessionKeys {
    cipher: Aes128,
    salt: [u8; MASTER_SALT_LEN],
    auth: Hmac<Sha1>,
}

impl SessionKeys {
    fn derive(
        master: &MasterKey,
        enc: Label,
        auth: Label,
        salt: Label,
    ) -> Result<SessionKeys, SrtpError> {
        let enc_key = derive_session_key(&master.key, &master.salt, enc, 16);
        let auth_key = derive_session_key(&master.key, &master.salt, auth, 20);
        let salt_bytes = derive_session_key(&master.key, &master.salt, salt, MASTER_SALT_LEN);
        let cipher =
            Aes128::new_from_slice(&enc_key).map_err(|_| SrtpError::KeyLength(enc_key.len()))?;
        // HMAC takes keys of any length; the error arm is unreachable in practice.
        let auth = <Hmac<Sha1> as Mac>::new_from_slice(&auth_key)
            .map_err(|_| SrtpError::KeyLength(auth_key.len()))?;
        let mut salt = [0u8; MASTER_SALT_LEN];
        salt.copy_from_slice(&salt_bytes);
        Ok(SessionKeys { cipher, salt, auth })
    }

    /// IV = (k_s << 16) XOR (SSRC << 64) XOR (index << 16) (RFC 3711 §4.1.1).
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *d ^= s;
        }
        iv
    }

    /// The full 160-bit HMAC-SHA1 of the parts, in order.
    fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.auth.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// SRTP and SRTCP with one master key: protects what we send with it, or unprotects what
/// the peer sends with it. Per-SSRC state (sending: highest index and SRTCP index;
/// receiving: highest index and replay window) lives in small bounded tables; receive state
/// is only created or moved by packets that authenticated.
#[derive(Clone)]
pub struct SrtpContext {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// The MKI sent with every packet and expected on every packet (empty: none).
    mki: Vec<u8>,
    tx_rtp: SsrcTable<u64>,
    rx_rtp: SsrcTable<ReplayWindow>,
    tx_rtcp: SsrcTable<u32>,
    rx_rtcp: SsrcTable<ReplayWindow>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("mki_len", &self.mki.len())
            .finish_non_exhaustive()
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The length of an RTP header with its CSRC list and extension, checked against `packet`.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < RTP_HEADER_LEN {
        return Err(SrtpError::TooShort(packet.len()));
    }
    if packet[0] >> 6 != 2 {
        return Err(SrtpError::Version);
    }
    let mut len = RTP_HEADER_LEN + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        if packet.len() < len + 4 {
            return Err(SrtpError::Header);
        }
        len += 4 + 4 * usize::from(be16(packet, len + 2));
    }
    if len > packet.len() {
        return Err(SrtpError::Header);
    }
    Ok(len)
}

/// RFC 3711 §3.3.1: the packet index of `seq` given the highest index seen so far, or
/// `None` for a packet from before the stream's first rollover counter (ROC - 1 < 0).
pub(crate) fn estimate_index(highest: u64, seq: u16) -> Option<u64> {
    let roc = (highest >> 16) as i64;
    let s_l = (highest & 0xffff) as i64;
    let seq = i64::from(seq);
    let v = if s_l < 32768 {
        if seq - s_l > 32768 {
            roc - 1
        } else {
            roc
        }
    } else if s_l - 32768 > seq {
        roc + 1
    } else {
        roc
    };
    (v >= 0).then_some(((v as u64) << 16) | seq as u64)
}

impl SrtpContext {
    /// A context for `suite` with `master`, key_derivation_rate 0, no MKI.
    pub fn new(suite: Suite, master: &MasterKey) -> Result<SrtpContext, SrtpError> {
        SrtpContext::with_mki(suite, master, &[])
    }

    /// A context whose packets carry (and must carry) `mki` (RFC 3711 §3.1; at most 4
    /// bytes, as SDES `|MKI:v:len` allows 1..=128 but nobody uses more).
    pub fn with_mki(
        suite: Suite,
        master: &MasterKey,
        mki: &[u8],
    ) -> Result<SrtpContext, SrtpError> {
        if mki.len() > 4 {
            return Err(SrtpError::MkiLength(mki.len()));
        }
        Ok(SrtpContext {
            suite,
            rtp: SessionKeys::derive(master, Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt)?,
            rtcp: SessionKeys::derive(
                master,
                Label::RtcpEncryption,
                Label::RtcpAuth,
                Label::RtcpSalt,
            )?,
            mki: mki.to_vec(),
            tx_rtp: SsrcTable::default(),
            rx_rtp: SsrcTable::default(),
            tx_rtcp: SsrcTable::default(),
            rx_rtcp: SsrcTable::default(),
        })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Bytes SRTP adds to an RTP packet (MKI + tag).
    pub fn rtp_overhead(&self) -> usize {
        self.mki.len() + self.suite.rtp_tag_len()
    }

    /// Bytes SRTCP adds to an RTCP packet (index word + MKI + tag).
    pub fn rtcp_overhead(&self) -> usize {
        4 + self.mki.len() + SRTCP_TAG_LEN
    }

    /// Encrypts and authenticates one RTP packet into `out` (cleared first). The index is
    /// the sequence number extended with a rollover counter kept per SSRC, bumped when the
    /// sequence number wraps.
    pub fn protect_rtp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        out.clear();
        let header_len = rtp_header_len(packet)?;
        let seq = be16(packet, 2);
        let ssrc = be32(packet, 8);
        let highest = self.tx_rtp.get(ssrc).copied();
        let index = match highest {
            Some(h) => estimate_index(h, seq).ok_or(SrtpError::TooOld(u64::from(seq)))?,
            None => u64::from(seq),
        };
        if index > MAX_RTP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        out.reserve(packet.len() + self.rtp_overhead());
        out.extend_from_slice(packet);
        apply_aes_cm(
            &self.rtp.cipher,
            &self.rtp.iv(ssrc, index),
            &mut out[header_len..],
        );
        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = self.rtp.tag(&[out.as_slice(), &roc]);
        out.extend_from_slice(&self.mki);
        out.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        self.tx_rtp
            .put(ssrc, highest.map_or(index, |h| h.max(index)));
        Ok(())
    }

    /// Authenticates (constant-time tag check), replay-checks and decrypts one SRTP packet
    /// into `out` (cleared first; left empty on error).
    pub fn unprotect_rtp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        out.clear();
        let tag_len = self.suite.rtp_tag_len();
        let trailer = self.mki.len() + tag_len;
        if packet.len() < RTP_HEADER_LEN + trailer {
            return Err(SrtpError::TooShort(packet.len()));
        }
        let body_len = packet.len() - trailer;
        let (body, rest) = packet.split_at(body_len);
        let (mki, tag) = rest.split_at(self.mki.len());
        let header_len = rtp_header_len(body)?;
        let seq = be16(body, 2);
        let ssrc = be32(body, 8);
        let window = self.rx_rtp.get(ssrc).copied();
        let index = match window {
            Some(w) => {
                let index =
                    estimate_index(w.highest, seq).ok_or(SrtpError::TooOld(u64::from(seq)))?;
                w.check(index)?;
                index
            }
            None => u64::from(seq),
        };
        if index > MAX_RTP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        if mki != self.mki.as_slice() {
            return Err(SrtpError::Mki);
        }
        let roc = ((index >> 16) as u32).to_be_bytes();
        let expected = self.rtp.tag(&[body, &roc]);
        if !bool::from(expected[..tag_len].ct_eq(tag)) {
            return Err(SrtpError::Auth);
        }
        out.extend_from_slice(body);
        apply_aes_cm(
            &self.rtp.cipher,
            &self.rtp.iv(ssrc, index),
            &mut out[header_len..],
        );
        let window = match window {
            Some(mut w) => {
                w.accept(index);
                w
            }
            None => ReplayWindow::new(index),
        };
        self.rx_rtp.put(ssrc, window);
        Ok(())
    }

    /// Encrypts and authenticates one (compound) RTCP packet into `out` (cleared first):
    /// everything after the first 8 bytes is encrypted, then E=1 and the SRTCP index
    /// (per sender SSRC, first 1) are appended, then the MKI and an 80-bit tag.
    pub fn protect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        out.clear();
        if packet.len() < RTCP_HEADER_LEN {
            return Err(SrtpError::TooShort(packet.len()));
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::Version);
        }
        let ssrc = be32(packet, 4);
        let index = self.tx_rtcp.get(ssrc).copied().unwrap_or(0) + 1;
        if index > MAX_RTCP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        out.reserve(packet.len() + self.rtcp_overhead());
        out.extend_from_slice(packet);
        apply_aes_cm(
            &self.rtcp.cipher,
            &self.rtcp.iv(ssrc, u64::from(index)),
            &mut out[RTCP_HEADER_LEN..],
        );
        out.extend_from_slice(&(E_FLAG | index).to_be_bytes());
        let tag = self.rtcp.tag(&[out.as_slice()]);
        out.extend_from_slice(&self.mki);
        out.extend_from_slice(&tag[..SRTCP_TAG_LEN]);
        self.tx_rtcp.put(ssrc, index);
        Ok(())
    }

    /// Authenticates, replay-checks (by SRTCP index) and, when its E flag is set, decrypts
    /// one SRTCP packet into `out` (cleared first; left empty on error).
    pub fn unprotect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        out.clear();
        let trailer = self.mki.len() + SRTCP_TAG_LEN;
        if packet.len() < RTCP_HEADER_LEN + 4 + trailer {
            return Err(SrtpError::TooShort(packet.len()));
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::Version);
        }
        let (authenticated, rest) = packet.split_at(packet.len() - trailer);
        let (mki, tag) = rest.split_at(self.mki.len());
        let word_at = authenticated.len() - 4;
        let e_index = be32(authenticated, word_at);
        let encrypted = e_index & E_FLAG != 0;
        let index = u64::from(e_index & MAX_RTCP_INDEX);
        let ssrc = be32(packet, 4);
        let window = self.rx_rtcp.get(ssrc).copied();
        if let Some(w) = &window {
            w.check(index)?;
        }
        if mki != self.mki.as_slice() {
            return Err(SrtpError::Mki);
        }
        let expected = self.rtcp.tag(&[authenticated]);
        if !bool::from(expected[..SRTCP_TAG_LEN].ct_eq(tag)) {
            return Err(SrtpError::Auth);
        }
        out.extend_from_slice(&authenticated[..word_at]);
        if encrypted {
            apply_aes_cm(
                &self.rtcp.cipher,
                &self.rtcp.iv(ssrc, index),
                &mut out[RTCP_HEADER_LEN..],
            );
        }
        let window = match window {
            Some(mut w) => {
                w.accept(index);
                w
            }
            None => ReplayWindow::new(index),
        };
        self.rx_rtcp.put(ssrc, window);
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn rx_ssrcs(&self) -> usize {
        self.rx_rtp.len()
    }
}
