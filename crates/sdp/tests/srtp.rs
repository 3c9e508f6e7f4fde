//! SDES-SRTP offer/answer (RFC 4568): `a=crypto` lines and `RTP/SAVP`.

use std::net::{IpAddr, Ipv4Addr};

use sdp::{
    add_sdes, answer_offer, answer_offer_srtp, build_offer, build_offer_srtp, crypto_lines,
    negotiate_answer_srtp, Codec, Crypto, CryptoSuite, Encryption, LocalMedia, SdesKey, SdpError,
    SessionDescription,
};

fn local() -> LocalMedia {
    LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        port: 40000,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: true,
        session_id: 1234,
        session_version: 1,
        ptime_ms: 20,
    }
}

/// Bytes 0..30, base64 `AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd`.
fn key_0_30() -> [u8; 30] {
    std::array::from_fn(|i| i as u8)
}

/// Bytes 100..130, base64 `ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CB`.
fn key_100_130() -> [u8; 30] {
    std::array::from_fn(|i| 100 + i as u8)
}

/// Our fresh key in the tests: bytes 200..230.
fn ours() -> [u8; 30] {
    std::array::from_fn(|i| 200 + i as u8)
}
const OURS_B64: &str = "yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl";

/// What baresip sends with `mediaenc=srtp-mand`: RTP/SAVP, a GCM suite we do not speak
/// first, then the AES-CM ones.
const BARESIP_SAVP_OFFER: &str = "v=0\r\n\
o=- 1207390946 3127318339 IN IP4 192.0.2.20\r\n\
s=-\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
m=audio 10000 RTP/SAVP 0 101\r\n\
b=AS:64\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=rtcp-rsize\r\n\
a=ssrc:2849208245 cname:4a0a7c5b-5a6d-4a2b-8f0a-0b3a3c0e5c1f\r\n\
a=crypto:1 AEAD_AES_256_GCM inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n\
a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CB\r\n";

#[test]
fn answers_a_baresip_savp_offer_with_the_first_supported_suite() {
    for encryption in [Encryption::Optional, Encryption::Mandatory] {
        let (answer, negotiated, srtp) =
            answer_offer_srtp(&local(), BARESIP_SAVP_OFFER, encryption, &ours()).unwrap();
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(negotiated.telephone_event_pt, Some(101));
        assert_eq!(
            answer,
            format!(
                "v=0\r\n\
                 o=dialtone 1234 1 IN IP4 192.0.2.10\r\n\
                 s=dialtone\r\n\
                 c=IN IP4 192.0.2.10\r\n\
                 t=0 0\r\n\
                 m=audio 40000 RTP/SAVP 0 101\r\n\
                 a=rtpmap:0 PCMU/8000\r\n\
                 a=rtpmap:101 telephone-event/8000\r\n\
                 a=fmtp:101 0-15\r\n\
                 a=ptime:20\r\n\
                 a=sendrecv\r\n\
                 a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{OURS_B64}\r\n"
            )
        );
        let srtp = srtp.unwrap();
        assert_eq!(srtp.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(srtp.tag, 2);
        assert_eq!(srtp.local, SdesKey::new(ours()));
        assert_eq!(srtp.remote, SdesKey::new(key_0_30()));
    }
}

#[test]
fn a_savp_offer_is_refused_when_encryption_is_forbidden() {
    let err = answer_offer_srtp(&local(), BARESIP_SAVP_OFFER, Encryption::Forbidden, &ours())
        .unwrap_err();
    assert_eq!(err, SdpError::UnsupportedTransport("RTP/SAVP".into()));
    // The plain answer_offer is unchanged: RTP/SAVP is not RTP/AVP.
    assert_eq!(
        answer_offer(&local(), BARESIP_SAVP_OFFER).unwrap_err(),
        SdpError::UnsupportedTransport("RTP/SAVP".into())
    );
}

fn plain_offer(extra: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
         m=audio 10000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"
    )
}

#[test]
fn plain_offers_under_each_policy() {
    let offer = plain_offer("");
    // Forbidden and optional answer exactly as answer_offer does.
    let (plain, n) = answer_offer(&local(), &offer).unwrap();
    for encryption in [Encryption::Forbidden, Encryption::Optional] {
        let (answer, negotiated, srtp) =
            answer_offer_srtp(&local(), &offer, encryption, &ours()).unwrap();
        assert_eq!(
            (answer.as_str(), &negotiated, srtp),
            (plain.as_str(), &n, None)
        );
    }
    assert_eq!(
        answer_offer_srtp(&local(), &offer, Encryption::Mandatory, &ours()).unwrap_err(),
        SdpError::EncryptionRequired
    );
}

#[test]
fn best_effort_srtp_on_rtp_avp_with_crypto_lines() {
    // baresip `mediaenc=srtp`: RTP/AVP, but with keys.
    let offer = plain_offer(
        "a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CB|2^31\r\n",
    );
    let (answer, _, srtp) =
        answer_offer_srtp(&local(), &offer, Encryption::Optional, &ours()).unwrap();
    assert!(
        answer.contains("m=audio 40000 RTP/AVP 0 101\r\n"),
        "{answer}"
    );
    assert!(answer.contains(&format!(
        "a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:{OURS_B64}\r\n"
    )));
    let srtp = srtp.unwrap();
    assert_eq!(srtp.suite, CryptoSuite::AesCm128HmacSha1_32);
    assert_eq!(srtp.remote.key_salt, key_100_130());
    assert_eq!(srtp.remote.lifetime.as_deref(), Some("2^31"));
    // Forbidden ignores the keys and answers in the clear, as answer_offer always did.
    let (answer, _, srtp) =
        answer_offer_srtp(&local(), &offer, Encryption::Forbidden, &ours()).unwrap();
    assert!(srtp.is_none());
    assert!(!answer.contains("crypto"));
}

#[test]
fn savp_offer_without_a_usable_key() {
    let offer = BARESIP_SAVP_OFFER
        .replace("a=crypto:2", "a=x-crypto:2")
        .replace("a=crypto:3", "a=x-crypto:3");
    for encryption in [Encryption::Optional, Encryption::Mandatory] {
        assert_eq!(
            answer_offer_srtp(&local(), &offer, encryption, &ours()).unwrap_err(),
            SdpError::NoCommonCrypto
        );
    }
}

#[test]
fn prefers_the_secure_stream_of_a_two_line_offer() {
    // Some phones offer the same audio twice: RTP/AVP, then RTP/SAVP.
    let offer = format!(
        "{}m=audio 10002 RTP/SAVP 0\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n",
        plain_offer("")
    );
    let (answer, negotiated, srtp) =
        answer_offer_srtp(&local(), &offer, Encryption::Optional, &ours()).unwrap();
    assert_eq!(negotiated.remote.port(), 10002);
    assert!(srtp.is_some());
    let sdp = SessionDescription::parse(&answer).unwrap();
    assert_eq!(sdp.media[0].port, 0);
    assert_eq!(sdp.media[1].port, 40000);
    assert_eq!(sdp.media[1].proto, "RTP/SAVP");
    let (_, negotiated, srtp) =
        answer_offer_srtp(&local(), &offer, Encryption::Forbidden, &ours()).unwrap();
    assert_eq!((negotiated.remote.port(), srtp), (10000, None));
    // A secure stream the offerer already rejected (port 0) is not chosen.
    let offer = offer.replace("m=audio 10002", "m=audio 0");
    let (_, negotiated, srtp) =
        answer_offer_srtp(&local(), &offer, Encryption::Optional, &ours()).unwrap();
    assert_eq!((negotiated.remote.port(), srtp), (10000, None));
}

#[test]
fn crypto_line_parsing() {
    let c = Crypto::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20|1:4",
    )
    .unwrap();
    assert_eq!(c.tag, 1);
    assert_eq!(c.suite, CryptoSuite::AesCm128HmacSha1_80);
    assert_eq!(c.key.key_salt, key_0_30());
    assert_eq!(c.key.lifetime.as_deref(), Some("2^20"));
    assert_eq!(c.key.mki, Some((1, 4)));
    assert_eq!(c.key.mki_bytes(), vec![0, 0, 0, 1]);
    // Display writes it back.
    assert_eq!(
        c.to_string(),
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20|1:4"
    );
    // MKI without lifetime, and harmless session parameters.
    let c = Crypto::parse(
        "9 AES_CM_128_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|255:1 KDR=0 WSH=128",
    )
    .unwrap();
    assert_eq!((c.key.mki, c.key.mki_bytes()), (Some((255, 1)), vec![255]));
    // The key never shows in debug output.
    assert!(!format!("{c:?}").contains("AAEC"));

    let key = "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
    for bad in [
        String::new(),
        "1".into(),
        format!("x AES_CM_128_HMAC_SHA1_80 {key}"),
        format!("1234567890 AES_CM_128_HMAC_SHA1_80 {key}"),
        format!("1 AEAD_AES_128_GCM {key}"),
        format!("1 aes_cm_128_hmac_sha1_80 {key}"),
        "1 AES_CM_128_HMAC_SHA1_80".into(),
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYX".into(),
        "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd".into(),
        format!("1 AES_CM_128_HMAC_SHA1_80 uri:{key}"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key};{key}"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1:5"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key}|256:1"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1:0"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1:4|2^20"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^x"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTP"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTCP"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNAUTHENTICATED_SRTP"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key} KDR=24"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key} FEC_KEY=x"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key} SOMETHING_NEW"),
    ] {
        assert_eq!(Crypto::parse(&bad), None, "{bad}");
    }
}

#[test]
fn our_srtp_offer_and_its_answer() {
    let mine = Crypto::new(1, CryptoSuite::AesCm128HmacSha1_80, ours());
    let offer = build_offer_srtp(&local(), std::slice::from_ref(&mine)).unwrap();
    // Exactly the plain offer with the proto switched and our crypto line added.
    let expected = build_offer(&local())
        .unwrap()
        .replace("RTP/AVP", "RTP/SAVP")
        + &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{OURS_B64}\r\n");
    assert_eq!(offer, expected);

    let answer = "v=0\r\no=- 2 2 IN IP4 192.0.2.30\r\ns=-\r\nc=IN IP4 192.0.2.30\r\nt=0 0\r\n\
                  m=audio 12000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
                  a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CB\r\n";
    let (negotiated, srtp) =
        negotiate_answer_srtp(&local(), answer, std::slice::from_ref(&mine)).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(srtp.local.key_salt, ours());
    assert_eq!(srtp.remote.key_salt, key_100_130());

    // An answer in the clear, with another tag, or another suite is not SRTP.
    for bad in [
        answer
            .replace("RTP/SAVP", "RTP/AVP")
            .replace("a=crypto", "a=x"),
        answer.replace("a=crypto:1", "a=crypto:2"),
        answer.replace("SHA1_80", "SHA1_32"),
    ] {
        assert_eq!(
            negotiate_answer_srtp(&local(), &bad, std::slice::from_ref(&mine)).unwrap_err(),
            SdpError::NoCommonCrypto
        );
    }
}

#[test]
fn add_sdes_switches_the_profile() {
    let mut sdp = SessionDescription::parse(&build_offer(&local()).unwrap()).unwrap();
    let lines = [
        Crypto::new(1, CryptoSuite::AesCm128HmacSha1_80, key_0_30()),
        Crypto::new(2, CryptoSuite::AesCm128HmacSha1_32, key_100_130()),
    ];
    add_sdes(&mut sdp.media[0], &lines);
    assert_eq!(sdp.media[0].proto, "RTP/SAVP");
    let reparsed = SessionDescription::parse(&sdp.to_string()).unwrap();
    assert_eq!(crypto_lines(&reparsed.media[0]), lines.to_vec());
    sdp.media[0].proto = "RTP/AVPF".into();
    add_sdes(&mut sdp.media[0], &[]);
    assert_eq!(sdp.media[0].proto, "RTP/SAVPF");
}

/// A small deterministic generator (xorshift64*).
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn random_crypto_lines_never_panic() {
    let alphabet: Vec<char> = "0123456789 :|;^=+/AES_CM_128_HMAC_SHA1_80inlineKDRWSHé\u{0}\t"
        .chars()
        .collect();
    let mut state = 0x1234_5678_9abc_def1u64;
    let base = BARESIP_SAVP_OFFER;
    for _ in 0..5000 {
        let len = (next(&mut state) % 90) as usize;
        let junk: String = (0..len)
            .map(|_| alphabet[(next(&mut state) % alphabet.len() as u64) as usize])
            .collect();
        let _ = Crypto::parse(&junk);
        let prefix = &"1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
            [..(next(&mut state) % 73) as usize];
        let _ = Crypto::parse(&format!("{prefix}{junk}"));
        let offer = format!("{base}a=crypto:{prefix}{junk}\r\n");
        for e in [
            Encryption::Forbidden,
            Encryption::Optional,
            Encryption::Mandatory,
        ] {
            let _ = answer_offer_srtp(&local(), &offer, e, &ours());
        }
    }
}

/// The negotiated keys drive the srtp crate: the caller's packets (protected with the key of
/// its line) open with `remote`, ours (protected with `local`) open on the caller's side.
#[test]
fn negotiated_keys_drive_srtp_both_ways() {
    let (_, _, params) =
        answer_offer_srtp(&local(), BARESIP_SAVP_OFFER, Encryption::Mandatory, &ours()).unwrap();
    let params = params.unwrap();
    let suite = srtp::Suite::from_name(params.suite.name()).unwrap();
    for s in CryptoSuite::ALL {
        assert_eq!(
            srtp::Suite::from_name(s.name()).map(|x| x.name()),
            Some(s.name())
        );
    }
    let context = |key: &SdesKey| {
        let master = srtp::MasterKey::from_key_salt(&key.key_salt).unwrap();
        srtp::SrtpContext::with_mki(suite, &master, &key.mki_bytes()).unwrap()
    };
    // The caller's side: it sends with its own key (tag 2 = bytes 0..30) and reads ours.
    let caller_tx_key = SdesKey::new(key_0_30());
    let mut caller_tx = context(&caller_tx_key);
    let mut caller_rx = context(&SdesKey::new(ours()));
    let mut our_rx = context(&params.remote);
    let mut our_tx = context(&params.local);

    let mut rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe];
    rtp.extend([0xd5; 160]);
    let (mut wire, mut plain) = (Vec::new(), Vec::new());
    caller_tx.protect_rtp(&rtp, &mut wire).unwrap();
    our_rx.unprotect_rtp(&wire, &mut plain).unwrap();
    assert_eq!(plain, rtp);
    our_tx.protect_rtp(&rtp, &mut wire).unwrap();
    caller_rx.unprotect_rtp(&wire, &mut plain).unwrap();
    assert_eq!(plain, rtp);
    // Our key does not open the caller's packets.
    caller_tx.protect_rtp(&rtp, &mut wire).unwrap();
    assert!(caller_rx.unprotect_rtp(&wire, &mut plain).is_err());
}
