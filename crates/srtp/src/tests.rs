use crate::context::estimate_index;
use crate::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The RFC 3711 Appendix B.3 master key and salt, also used by the libsrtp known-answer
/// packets below.
fn b3_master() -> MasterKey {
    MasterKey::from_key_salt(&hex(
        "E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6",
    ))
    .unwrap()
}

fn ctx(suite: Suite) -> SrtpContext {
    SrtpContext::new(suite, &b3_master()).unwrap()
}

/// An RTP packet: PT 0, the given sequence number and SSRC, 160 bytes of payload.
fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
    p
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
    let stream = aes_cm_keystream(&key, &iv, 0xff02 * 16);
    let block = |n: usize| stream[n * 16..(n + 1) * 16].to_vec();
    assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

#[test]
fn rfc3711_b3_key_derivation() {
    let m = b3_master();
    assert_eq!(
        derive_session_key(&m.key, &m.salt, Label::RtpEncryption, 16),
        hex("C61E7A93744F39EE10734AFE3FF7A087")
    );
    assert_eq!(
        derive_session_key(&m.key, &m.salt, Label::RtpSalt, 14),
        hex("30CBBC08863D8C85D49DB34A9AE1")
    );
    assert_eq!(
        derive_session_key(&m.key, &m.salt, Label::RtpAuth, 20),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
    // The appendix lists the start of a longer PRF output for the auth label too.
    assert_eq!(
        derive_session_key(&m.key, &m.salt, Label::RtpAuth, 32),
        hex("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE")
    );
    // The SRTCP labels give different keys.
    assert_ne!(
        derive_session_key(&m.key, &m.salt, Label::RtcpEncryption, 16),
        derive_session_key(&m.key, &m.salt, Label::RtpEncryption, 16)
    );
}

// Known-answer packets (the widely used libsrtp validation vectors): SSRC 0xcafebabe,
// SEQ 0x1234, ROC 0; the SRTCP packet carries index 1.
const RTP_PLAIN: &str = "800f1234decafbadcafebabe abababababababababababababababab";
const SRTP_80: &str =
    "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb";
const RTCP_PLAIN: &str = "81c8000bcafebabe abababababababababababababababab";
const SRTCP_80: &str =
    "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798";

#[test]
fn known_answer_srtp_80() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut out = Vec::new();
    tx.protect_rtp(&hex(RTP_PLAIN), &mut out).unwrap();
    assert_eq!(out, hex(SRTP_80));
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    let mut plain = Vec::new();
    rx.unprotect_rtp(&hex(SRTP_80), &mut plain).unwrap();
    assert_eq!(plain, hex(RTP_PLAIN));
}

#[test]
fn known_answer_srtp_32() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_32);
    let mut out = Vec::new();
    tx.protect_rtp(&hex(RTP_PLAIN), &mut out).unwrap();
    let full = hex(SRTP_80);
    assert_eq!(out, full[..full.len() - 6]);
    let mut rx = ctx(Suite::AesCm128HmacSha1_32);
    let mut plain = Vec::new();
    rx.unprotect_rtp(&out, &mut plain).unwrap();
    assert_eq!(plain, hex(RTP_PLAIN));
}

#[test]
fn known_answer_srtcp() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        let mut tx = ctx(suite);
        let mut out = Vec::new();
        tx.protect_rtcp(&hex(RTCP_PLAIN), &mut out).unwrap();
        assert_eq!(out, hex(SRTCP_80), "{suite:?}");
        let mut rx = ctx(suite);
        let mut plain = Vec::new();
        rx.unprotect_rtcp(&out, &mut plain).unwrap();
        assert_eq!(plain, hex(RTCP_PLAIN));
    }
}

#[test]
fn rtp_round_trip_with_csrcs_and_extension() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    // V=2, X=1, CC=1; one CSRC; a one-word extension; then the payload.
    let mut p = vec![0x91, 0x00, 0x00, 0x07, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    p.extend_from_slice(&[1, 2, 3, 4]);
    p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0, 0]);
    p.extend_from_slice(b"payload bytes");
    let (mut s, mut back) = (Vec::new(), Vec::new());
    tx.protect_rtp(&p, &mut s).unwrap();
    // Header, CSRC and extension stay in the clear; the payload does not.
    assert_eq!(s[..24], p[..24]);
    assert_ne!(s[24..p.len()], p[24..]);
    assert_eq!(s.len(), p.len() + 10);
    rx.unprotect_rtp(&s, &mut back).unwrap();
    assert_eq!(back, p);
}

#[test]
fn rtp_round_trip_across_sequence_wrap() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    let seqs: Vec<u16> = (0..40u32).map(|n| (65520 + n) as u16).collect();
    let protected: Vec<Vec<u8>> = seqs
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            tx.protect_rtp(&rtp(*s, 7), &mut out).unwrap();
            out
        })
        .collect();
    // After the wrap the sender uses ROC 1: the same sequence number with ROC 0 gives a
    // different ciphertext.
    let mut fresh = ctx(Suite::AesCm128HmacSha1_80);
    let mut roc0 = Vec::new();
    fresh.protect_rtp(&rtp(5, 7), &mut roc0).unwrap();
    let roc1 = &protected[seqs.iter().position(|s| *s == 5).unwrap()];
    assert_ne!(&roc0, roc1);
    // Deliver with some reordering across the wrap (65535 after 0 and 1).
    let mut order: Vec<usize> = (0..protected.len()).collect();
    let at = seqs.iter().position(|s| *s == 65535).unwrap();
    order.remove(at);
    order.insert(at + 2, at);
    let mut plain = Vec::new();
    for i in order {
        rx.unprotect_rtp(&protected[i], &mut plain).unwrap();
        assert_eq!(plain, rtp(seqs[i], 7));
    }
    // The ROC-0 packet with sequence 5 is now 65536 behind: rejected, not decrypted.
    assert!(rx.unprotect_rtp(&roc0, &mut plain).is_err());
    assert!(plain.is_empty());
}

#[test]
fn rollover_counter_follows_several_wraps() {
    // Steps of 20000 wrap the 16-bit sequence number every three or four packets; sender and
    // receiver both keep counting (a receiver that lost track would fail authentication).
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    let (mut s, mut out) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for n in 0..40u32 {
        let seq = (n * 20000) as u16;
        tx.protect_rtp(&rtp(seq, 5), &mut s).unwrap();
        // Every (ROC, SEQ) index is new: no two packets are alike.
        assert!(seen.insert(s.clone()));
        rx.unprotect_rtp(&s, &mut out).unwrap();
        assert_eq!(out, rtp(seq, 5), "packet {n}");
    }
}

#[test]
fn rollover_counter_estimation() {
    // RFC 3711 §3.3.1 cases, highest = ROC << 16 | s_l.
    let at = |roc: u64, s_l: u64| (roc << 16) | s_l;
    assert_eq!(estimate_index(at(0, 100), 101), Some(101));
    assert_eq!(estimate_index(at(0, 100), 50), Some(50));
    // s_l low, SEQ far above: from the previous ROC.
    assert_eq!(estimate_index(at(3, 10), 65530), Some(at(2, 65530)));
    assert_eq!(estimate_index(at(0, 10), 65530), None);
    // s_l high, SEQ far below: the next ROC.
    assert_eq!(estimate_index(at(3, 65530), 2), Some(at(4, 2)));
    assert_eq!(estimate_index(at(3, 65530), 40000), Some(at(3, 40000)));
    // The boundary: s_l - 32768 = 7232.
    assert_eq!(estimate_index(at(3, 40000), 7231), Some(at(4, 7231)));
    assert_eq!(estimate_index(at(3, 40000), 7232), Some(at(3, 7232)));
    assert_eq!(estimate_index(at(3, 100), 32868), Some(at(3, 32868)));
    assert_eq!(estimate_index(at(3, 100), 32869), Some(at(2, 32869)));
}

#[test]
fn tampered_rtp_is_rejected_at_every_byte() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        let mut tx = ctx(suite);
        let mut good = Vec::new();
        tx.protect_rtp(&rtp(1000, 42), &mut good).unwrap();
        for i in 0..good.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                let mut rx = ctx(suite);
                let mut out = Vec::new();
                assert!(rx.unprotect_rtp(&bad, &mut out).is_err(), "byte {i}");
                assert!(out.is_empty());
            }
        }
        // Truncated or extended packets fail too.
        let mut rx = ctx(suite);
        let mut out = Vec::new();
        assert!(rx.unprotect_rtp(&good[..good.len() - 1], &mut out).is_err());
        let mut longer = good.clone();
        longer.push(0);
        assert!(rx.unprotect_rtp(&longer, &mut out).is_err());
        rx.unprotect_rtp(&good, &mut out).unwrap();
    }
}

#[test]
fn wrong_key_fails_authentication() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut other = SrtpContext::new(
        Suite::AesCm128HmacSha1_80,
        &MasterKey::from_key_salt(&[7; 30]).unwrap(),
    )
    .unwrap();
    let mut s = Vec::new();
    tx.protect_rtp(&rtp(1, 1), &mut s).unwrap();
    let mut out = Vec::new();
    assert_eq!(other.unprotect_rtp(&s, &mut out), Err(SrtpError::Auth));
    tx.protect_rtcp(&hex(RTCP_PLAIN), &mut s).unwrap();
    assert_eq!(other.unprotect_rtcp(&s, &mut out), Err(SrtpError::Auth));
}

#[test]
fn replays_and_too_old_packets_are_rejected() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    let packets: Vec<Vec<u8>> = (0..300u16)
        .map(|s| {
            let mut out = Vec::new();
            tx.protect_rtp(&rtp(s, 9), &mut out).unwrap();
            out
        })
        .collect();
    let mut out = Vec::new();
    rx.unprotect_rtp(&packets[10], &mut out).unwrap();
    assert_eq!(
        rx.unprotect_rtp(&packets[10], &mut out),
        Err(SrtpError::Replay(10))
    );
    rx.unprotect_rtp(&packets[200], &mut out).unwrap();
    // 120 behind the highest: still inside the window, once.
    rx.unprotect_rtp(&packets[80], &mut out).unwrap();
    assert_eq!(
        rx.unprotect_rtp(&packets[80], &mut out),
        Err(SrtpError::Replay(80))
    );
    // 190 behind: outside it.
    assert_eq!(
        rx.unprotect_rtp(&packets[10], &mut out),
        Err(SrtpError::TooOld(10))
    );
    assert_eq!(
        rx.unprotect_rtp(&packets[11], &mut out),
        Err(SrtpError::TooOld(11))
    );
    rx.unprotect_rtp(&packets[199], &mut out).unwrap();
    rx.unprotect_rtp(&packets[201], &mut out).unwrap();
    assert_eq!(
        rx.unprotect_rtp(&packets[200], &mut out),
        Err(SrtpError::Replay(200))
    );
}

#[test]
fn rtcp_round_trip_replay_and_tamper() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    // An RR followed by an SDES, as a compound packet.
    let compound = hex(
        "81c90007 00001234 00005678 01000002 00000010 00000020 00000001 00000002
         81ca0003 00001234 01046162 63640000",
    );
    let mut s = Vec::new();
    let mut plain = Vec::new();
    let mut first = Vec::new();
    for n in 1..=5u32 {
        tx.protect_rtcp(&compound, &mut s).unwrap();
        assert_eq!(s.len(), compound.len() + 4 + 10);
        assert_eq!(s[..8], compound[..8]);
        assert_eq!(
            s[compound.len()..compound.len() + 4],
            (0x8000_0000 | n).to_be_bytes()
        );
        rx.unprotect_rtcp(&s, &mut plain).unwrap();
        assert_eq!(plain, compound);
        if n == 1 {
            first = s.clone();
        }
    }
    assert_eq!(rx.unprotect_rtcp(&s, &mut plain), Err(SrtpError::Replay(5)));
    assert_eq!(
        rx.unprotect_rtcp(&first, &mut plain),
        Err(SrtpError::Replay(1))
    );
    for i in 0..s.len() {
        let mut bad = s.clone();
        bad[i] ^= 0x04;
        let mut fresh = ctx(Suite::AesCm128HmacSha1_80);
        assert!(fresh.unprotect_rtcp(&bad, &mut plain).is_err(), "byte {i}");
    }
}

#[test]
fn clearing_the_srtcp_e_flag_fails_authentication() {
    // The E flag is authenticated: an attacker cannot make us read ciphertext as clear.
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut s = Vec::new();
    tx.protect_rtcp(&hex(RTCP_PLAIN), &mut s).unwrap();
    let word = s.len() - 14;
    s[word] &= 0x7f;
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    let mut out = Vec::new();
    assert_eq!(rx.unprotect_rtcp(&s, &mut out), Err(SrtpError::Auth));
}

#[test]
fn mki_round_trip_and_mismatch() {
    let m = b3_master();
    let mut tx = SrtpContext::with_mki(Suite::AesCm128HmacSha1_80, &m, &[0, 0, 0, 1]).unwrap();
    let mut rx = SrtpContext::with_mki(Suite::AesCm128HmacSha1_80, &m, &[0, 0, 0, 1]).unwrap();
    let mut other = SrtpContext::with_mki(Suite::AesCm128HmacSha1_80, &m, &[0, 0, 0, 2]).unwrap();
    let (mut s, mut out) = (Vec::new(), Vec::new());
    tx.protect_rtp(&rtp(3, 3), &mut s).unwrap();
    assert_eq!(s.len(), rtp(3, 3).len() + 14);
    assert_eq!(other.unprotect_rtp(&s, &mut out), Err(SrtpError::Mki));
    rx.unprotect_rtp(&s, &mut out).unwrap();
    assert_eq!(out, rtp(3, 3));
    tx.protect_rtcp(&hex(RTCP_PLAIN), &mut s).unwrap();
    assert_eq!(other.unprotect_rtcp(&s, &mut out), Err(SrtpError::Mki));
    rx.unprotect_rtcp(&s, &mut out).unwrap();
    assert_eq!(out, hex(RTCP_PLAIN));
    assert_eq!(
        SrtpContext::with_mki(Suite::AesCm128HmacSha1_80, &m, &[0; 5]).err(),
        Some(SrtpError::MkiLength(5))
    );
}

#[test]
fn receive_state_is_bounded_and_only_made_by_authentic_packets() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    let (mut s, mut out) = (Vec::new(), Vec::new());
    for ssrc in 0..100u32 {
        tx.protect_rtp(&rtp(1, ssrc), &mut s).unwrap();
        rx.unprotect_rtp(&s, &mut out).unwrap();
        let mut forged = s.clone();
        forged[8..12].copy_from_slice(&(ssrc + 1000).to_be_bytes());
        assert_eq!(rx.unprotect_rtp(&forged, &mut out), Err(SrtpError::Auth));
    }
    assert_eq!(rx.rx_ssrcs(), replay::MAX_SSRCS);
}

#[test]
fn malformed_packets_are_errors() {
    let mut c = ctx(Suite::AesCm128HmacSha1_80);
    let mut out = Vec::new();
    assert_eq!(
        c.protect_rtp(&[0x80; 11], &mut out),
        Err(SrtpError::TooShort(11))
    );
    assert_eq!(
        c.protect_rtp(&[0x40; 12], &mut out),
        Err(SrtpError::Version)
    );
    // CC = 15 but no CSRCs.
    assert_eq!(c.protect_rtp(&[0x8f; 20], &mut out), Err(SrtpError::Header));
    // X set, extension length 0xffff.
    let mut x = vec![
        0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff,
    ];
    assert_eq!(c.protect_rtp(&x, &mut out), Err(SrtpError::Header));
    x.truncate(13);
    assert_eq!(c.protect_rtp(&x, &mut out), Err(SrtpError::Header));
    assert_eq!(
        c.protect_rtcp(&[0x80; 7], &mut out),
        Err(SrtpError::TooShort(7))
    );
    assert_eq!(
        c.unprotect_rtcp(&[0x80; 21], &mut out),
        Err(SrtpError::TooShort(21))
    );
    assert_eq!(
        c.unprotect_rtp(&[0x80; 21], &mut out),
        Err(SrtpError::TooShort(21))
    );
    assert_eq!(
        MasterKey::from_key_salt(&[0; 29]).err(),
        Some(SrtpError::KeyLength(29))
    );
    assert_eq!(format!("{:?}", b3_master()), "MasterKey(..)");
}

/// A small deterministic generator for the fuzz-style tests (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_never_panic_and_never_authenticate() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        let mut c = ctx(suite);
        let mut out = Vec::new();
        for _ in 0..20_000 {
            let len = rng.below(300);
            let mut p = rng.bytes(len);
            if len > 0 && rng.below(2) == 0 {
                p[0] = (p[0] & 0x3f) | 0x80; // mostly version 2, to get past the first check
            }
            assert!(c.unprotect_rtp(&p, &mut out).is_err());
            assert!(out.is_empty());
            assert!(c.unprotect_rtcp(&p, &mut out).is_err());
            assert!(out.is_empty());
            // Protecting arbitrary bytes either fails cleanly or round-trips.
            if c.protect_rtp(&p, &mut out).is_ok() {
                let sent = out.clone();
                let mut rx = ctx(suite);
                rx.unprotect_rtp(&sent, &mut out).unwrap();
                assert_eq!(out, p);
            }
            let _ = c.protect_rtcp(&p, &mut out);
        }
    }
}

#[test]
fn random_mutations_of_real_packets_are_rejected() {
    let mut rng = Rng(0xfeed_0000_beef_0002);
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    let mut s = Vec::new();
    let mut out = Vec::new();
    for seq in 0..2000u16 {
        tx.protect_rtp(&rtp(seq, 77), &mut s).unwrap();
        let mut bad = s.clone();
        match rng.below(3) {
            0 => {
                let i = rng.below(bad.len());
                bad[i] ^= 1 << rng.below(8);
            }
            1 => bad.truncate(rng.below(bad.len())),
            _ => {
                let extra = rng.below(8) + 1;
                bad.extend(rng.bytes(extra));
            }
        }
        assert!(rx.unprotect_rtp(&bad, &mut out).is_err(), "seq {seq}");
        rx.unprotect_rtp(&s, &mut out).unwrap();
        assert_eq!(out, rtp(seq, 77));
    }
}

/// `cargo test --release -p srtp -- --ignored --nocapture throughput`: a rough cost per
/// packet (G.711 20 ms packets, protect + unprotect).
#[test]
#[ignore]
fn throughput() {
    let mut tx = ctx(Suite::AesCm128HmacSha1_80);
    let mut rx = ctx(Suite::AesCm128HmacSha1_80);
    let (mut s, mut out) = (Vec::new(), Vec::new());
    let n = 200_000u32;
    let start = std::time::Instant::now();
    for i in 0..n {
        tx.protect_rtp(&rtp(i as u16, 1), &mut s).unwrap();
        rx.unprotect_rtp(&s, &mut out).unwrap();
    }
    let per = start.elapsed() / n;
    println!("protect + unprotect of a 172-byte RTP packet: {per:?}");
}
