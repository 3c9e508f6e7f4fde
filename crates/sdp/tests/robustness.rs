//! Untrusted input never panics: random bytes, truncations and line mutations.

use std::net::{IpAddr, Ipv4Addr};

use sdp::{answer_offer, build_offer, negotiate_answer, Codec, LocalMedia, SessionDescription};

fn local() -> LocalMedia {
    LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        port: 4000,
        codecs: vec![Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma],
        telephone_event: true,
        session_id: 1,
        session_version: 1,
        ptime_ms: 20,
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Everything must return, and whatever parses must display and re-parse identically.
fn exercise(text: &str) {
    if let Ok(parsed) = SessionDescription::parse(text) {
        let shown = parsed.to_string();
        let again = SessionDescription::parse(&shown).expect("display re-parses");
        assert_eq!(again, parsed, "{text:?}");
    }
    let _ = negotiate_answer(&local(), text);
    let _ = answer_offer(&local(), text);
}

const SAMPLE: &str =
    "v=0\r\no=- 99 2 IN IP4 203.0.113.5\r\ns=-\r\ni=x\r\nc=IN IP4 203.0.113.5/127\r\nb=AS:1\r\n\
t=0 0\r\nr=7d 1h 0 25h\r\na=sendrecv\r\nm=audio 5004/2 RTP/AVP 96 97 0 8 9\r\nc=IN IP4 10.0.0.1\r\n\
a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:97 telephone-event/48000\r\n\
a=fmtp:97 0-16\r\na=ptime:20\r\na=recvonly\r\nm=video 0 RTP/AVP 31\r\n";

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..5_000 {
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&String::from_utf8_lossy(&bytes));
        // Random text over an SDP-ish alphabet, so that the parser gets deeper.
        let alphabet = b"vocstmab=: /\r\n0123456789IPN4.audioRTP/AVPrtpmapfmtp";
        let text: String = (0..len)
            .map(|_| char::from(alphabet[rng.below(alphabet.len())]))
            .collect();
        exercise(&format!("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n{text}"));
    }
}

#[test]
fn truncations_of_real_sdp() {
    let offer = build_offer(&local()).unwrap();
    for text in [SAMPLE, offer.as_str()] {
        for (i, _) in text.char_indices() {
            exercise(&text[..i]);
            exercise(&text[i..]);
        }
    }
}

#[test]
fn line_mutations() {
    let mut rng = Rng(42);
    let lines: Vec<&str> = SAMPLE.split("\r\n").collect();
    let junk = [
        "",
        "=",
        "a=",
        "a=rtpmap:",
        "a=rtpmap:300 PCMU/8000",
        "a=rtpmap:96 /",
        "a=rtpmap:96 x/y",
        "a=fmtp:",
        "a=ptime:-1",
        "a=ptime:99999999999",
        "m=audio 1",
        "m=audio 65535 RTP/AVP",
        "m=audio 1/ RTP/AVP 0",
        "c=IN IP4 999.1.1.1",
        "c=IN IP6 ::ffff::",
        "o=",
        "t=",
        "é=ü",
        "a=rtpmap:0 PCMU/8000/1/2/3",
        "m=audio 6000 RTP/AVP 256 -1 x 0",
    ];
    for _ in 0..5_000 {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(l.len());
            match rng.below(4) {
                0 => l[i] = junk[rng.below(junk.len())].to_string(),
                1 => {
                    l.remove(i);
                }
                2 => {
                    let j = rng.below(l.len());
                    l.swap(i, j);
                }
                _ => {
                    let s = &l[i];
                    let cut = rng.below(s.len() + 1);
                    if s.is_char_boundary(cut) {
                        l[i] = s[..cut].to_string();
                    }
                }
            }
            if l.is_empty() {
                break;
            }
        }
        let sep = if rng.below(2) == 0 { "\r\n" } else { "\n" };
        exercise(&l.join(sep));
    }
}

#[test]
fn multicast_connection_is_refused() {
    for (session_c, media_c) in [
        ("c=IN IP4 224.2.1.1/127\r\n", ""),
        ("c=IN IP4 203.0.113.5\r\n", "c=IN IP4 239.255.255.250/1\r\n"),
        ("", "c=IN IP6 ff02::1\r\n"),
    ] {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\n{session_c}t=0 0\r\n\
             m=audio 5004 RTP/AVP 0\r\n{media_c}a=rtpmap:0 PCMU/8000\r\n"
        );
        assert!(
            matches!(
                answer_offer(&local(), &sdp),
                Err(sdp::SdpError::Multicast(_))
            ),
            "{sdp}"
        );
        assert!(
            matches!(
                negotiate_answer(&local(), &sdp),
                Err(sdp::SdpError::Multicast(_))
            ),
            "{sdp}"
        );
    }
    // The same offer with a unicast address is answered.
    let unicast = "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
                   m=audio 5004 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    assert!(answer_offer(&local(), unicast).is_ok());
}
