//! A call's SDES-SRTP (RFC 3711 / RFC 4568): the two contexts of one call and the scratch
//! buffer their packets pass through. With SDES each side sends under its own master key, so
//! `tx` protects what we send (our key) and `rx` unprotects what the far end sends (its key).
//!
//! The shard runs every datagram through this before the call's graph sees it, and every
//! packet the graph makes through it before the socket: the graph and the latch only ever see
//! plain, authenticated RTP.

use srtp::{MasterKey, SrtpContext, SrtpError, Suite};

/// One direction's key as the SDP settled it: 30 bytes of key || salt and its MKI (empty when
/// the `a=crypto` line had none).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    pub key_salt: Vec<u8>,
    pub mki: Vec<u8>,
}

/// Never prints key material.
impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpKey(.., mki {} bytes)", self.mki.len())
    }
}

impl SrtpKey {
    fn context(&self, suite: Suite) -> Result<SrtpContext, SrtpError> {
        let master = MasterKey::from_key_salt(&self.key_salt)?;
        SrtpContext::with_mki(suite, &master, &self.mki)
    }
}

/// `SrtpContext::unprotect_rtp` or `unprotect_rtcp`.
type Unprotect = fn(&mut SrtpContext, &[u8], &mut Vec<u8>) -> Result<(), SrtpError>;

/// The SRTP of one call.
pub struct SrtpSession {
    tx: SrtpContext,
    rx: SrtpContext,
    /// The far end's context before its last re-key, until its new key has authenticated a
    /// packet: datagrams it sent under the old key just before it switched are still good.
    rx_before: Option<Box<SrtpContext>>,
    suite: Suite,
    scratch: Vec<u8>,
    /// Datagrams that did not authenticate (or were replays), since the call started.
    rejected: u64,
    last_error: Option<SrtpError>,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// `ours` protects what we send, `theirs` unprotects what the far end sends.
    pub fn new(suite: Suite, ours: &SrtpKey, theirs: &SrtpKey) -> Result<Self, SrtpError> {
        Ok(SrtpSession {
            tx: ours.context(suite)?,
            rx: theirs.context(suite)?,
            rx_before: None,
            suite,
            scratch: Vec::with_capacity(256),
            rejected: 0,
            last_error: None,
        })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The far end re-keyed (a re-INVITE with a new `a=crypto` key, RFC 4568 §7.1.4): what it
    /// sends is unprotected with the new key from now on; what we send keeps its context (our
    /// key, rollover counter and SRTCP index go on).
    pub fn rekey_remote(&mut self, theirs: &SrtpKey) -> Result<(), SrtpError> {
        let before = std::mem::replace(&mut self.rx, theirs.context(self.suite)?);
        self.rx_before = Some(Box::new(before));
        Ok(())
    }

    /// Datagrams refused since the call started.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Why the last refused datagram was refused.
    pub fn last_error(&self) -> Option<&SrtpError> {
        self.last_error.as_ref()
    }

    fn refused(&mut self, e: SrtpError) -> Option<&[u8]> {
        self.rejected += 1;
        self.last_error = Some(e);
        None
    }

    /// The plain RTP inside an SRTP datagram; `None` (and counted) when it does not
    /// authenticate, is replayed or malformed.
    pub fn unprotect_rtp(&mut self, datagram: &[u8]) -> Option<&[u8]> {
        self.unprotect(datagram, SrtpContext::unprotect_rtp, true)
    }

    /// The plain RTCP compound packet inside an SRTCP datagram; `None` (and counted) otherwise.
    pub fn unprotect_rtcp(&mut self, datagram: &[u8]) -> Option<&[u8]> {
        self.unprotect(datagram, SrtpContext::unprotect_rtcp, false)
    }

    /// `datagram` opened by the far end's context, or by its context before its last re-key;
    /// an RTP packet (`ends_old_key`) that the current context opens retires the old one.
    fn unprotect(&mut self, datagram: &[u8], open: Unprotect, ends_old_key: bool) -> Option<&[u8]> {
        match open(&mut self.rx, datagram, &mut self.scratch) {
            Ok(()) => {
                if ends_old_key {
                    self.rx_before = None;
                }
                Some(&self.scratch)
            }
            Err(e) => {
                let opened_by_old = self
                    .rx_before
                    .as_mut()
                    .is_some_and(|old| open(old, datagram, &mut self.scratch).is_ok());
                if opened_by_old {
                    Some(&self.scratch)
                } else {
                    self.refused(e)
                }
            }
        }
    }

    /// Our RTP packet protected for the wire; `None` only when the key is exhausted (2^48
    /// packets) or the graph made a malformed packet.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Option<&[u8]> {
        self.tx.protect_rtp(packet, &mut self.scratch).ok()?;
        Some(&self.scratch)
    }

    /// Our RTCP compound packet protected for the wire (SRTCP, E=1).
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Option<&[u8]> {
        self.tx.protect_rtcp(packet, &mut self.scratch).ok()?;
        Some(&self.scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: u8) -> SrtpKey {
        SrtpKey {
            key_salt: vec![fill; 30],
            mki: Vec::new(),
        }
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend(std::iter::repeat_n(0x55, 160));
        p
    }

    /// Two ends of one call: what one protects with its key the other unprotects with the same
    /// key as "theirs"; a packet under a stranger's key, a replay or a flipped bit is refused
    /// and counted.
    #[test]
    fn both_ends_of_a_call_interoperate_and_refuse_forgeries() {
        let suite = Suite::AesCm128HmacSha1_80;
        let mut us = SrtpSession::new(suite, &key(1), &key(2)).unwrap();
        let mut them = SrtpSession::new(suite, &key(2), &key(1)).unwrap();
        let wire = us.protect_rtp(&rtp(1)).unwrap().to_vec();
        assert_eq!(wire.len(), 172 + 10);
        assert_eq!(them.unprotect_rtp(&wire).unwrap(), &rtp(1)[..]);
        assert!(them.unprotect_rtp(&wire).is_none(), "replay refused");
        let mut flipped = us.protect_rtp(&rtp(2)).unwrap().to_vec();
        flipped[20] ^= 1;
        assert!(them.unprotect_rtp(&flipped).is_none());
        let mut stranger = SrtpSession::new(suite, &key(9), &key(1)).unwrap();
        let forged = stranger.protect_rtp(&rtp(3)).unwrap().to_vec();
        assert!(them.unprotect_rtp(&forged).is_none());
        assert_eq!(them.rejected(), 3);
        assert_eq!(them.last_error(), Some(&SrtpError::Auth));

        let back = them.protect_rtp(&rtp(40)).unwrap().to_vec();
        assert_eq!(us.unprotect_rtp(&back).unwrap(), &rtp(40)[..]);

        let rr = [0x80, 201, 0, 1, 0, 0, 0, 7];
        let srtcp = us.protect_rtcp(&rr).unwrap().to_vec();
        assert_eq!(them.unprotect_rtcp(&srtcp).unwrap(), &rr[..]);
    }

    /// The far end re-keys: its new packets need the new key, ours keep flowing under ours.
    #[test]
    fn rekeying_the_far_end_keeps_our_stream() {
        let suite = Suite::AesCm128HmacSha1_32;
        let mut us = SrtpSession::new(suite, &key(1), &key(2)).unwrap();
        let mut them_old = SrtpSession::new(suite, &key(2), &key(1)).unwrap();
        let mut them_new = SrtpSession::new(suite, &key(3), &key(1)).unwrap();
        let a = us.protect_rtp(&rtp(1)).unwrap().to_vec();
        assert!(them_old.unprotect_rtp(&a).is_some());
        us.rekey_remote(&key(3)).unwrap();
        let from_new = them_new.protect_rtp(&rtp(5)).unwrap().to_vec();
        assert_eq!(us.unprotect_rtp(&from_new).unwrap(), &rtp(5)[..]);
        let b = us.protect_rtp(&rtp(2)).unwrap().to_vec();
        assert!(them_old.unprotect_rtp(&b).is_some(), "our key is unchanged");
        assert!(SrtpSession::new(
            suite,
            &SrtpKey {
                key_salt: vec![0; 29],
                mki: vec![]
            },
            &key(1)
        )
        .is_err());
    }

    /// Packets the far end sent under its old key just before it switched still play; once
    /// its new key has authenticated a packet, the old one is refused.
    #[test]
    fn the_old_key_is_good_until_the_new_one_has_been_heard() {
        let suite = Suite::AesCm128HmacSha1_80;
        let mut us = SrtpSession::new(suite, &key(1), &key(2)).unwrap();
        let mut them_old = SrtpSession::new(suite, &key(2), &key(1)).unwrap();
        let mut them_new = SrtpSession::new(suite, &key(3), &key(1)).unwrap();
        let late = them_old.protect_rtp(&rtp(10)).unwrap().to_vec();
        let later = them_old.protect_rtp(&rtp(11)).unwrap().to_vec();
        us.rekey_remote(&key(3)).unwrap();
        assert_eq!(us.unprotect_rtp(&late).unwrap(), &rtp(10)[..]);
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 7];
        let old_srtcp = them_old.protect_rtcp(&rr).unwrap().to_vec();
        assert_eq!(us.unprotect_rtcp(&old_srtcp).unwrap(), &rr[..]);
        let fresh = them_new.protect_rtp(&rtp(12)).unwrap().to_vec();
        assert_eq!(us.unprotect_rtp(&fresh).unwrap(), &rtp(12)[..]);
        assert!(us.unprotect_rtp(&later).is_none(), "the old key is over");
        assert_eq!(us.rejected(), 1);
    }
}
