use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sdp::{
    answer_offer, build_offer, negotiate_answer, Codec, Direction, LocalMedia, Negotiated,
    SdpError, SessionDescription,
};

fn local(codecs: &[Codec], te: bool) -> LocalMedia {
    LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        port: 40000,
        codecs: codecs.to_vec(),
        telephone_event: te,
        session_id: 1234,
        session_version: 1,
        ptime_ms: 20,
    }
}

fn all() -> LocalMedia {
    local(&[Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma], true)
}

fn sa(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
}

#[test]
fn codec_constants() {
    let c: Vec<_> = Codec::ALL
        .iter()
        .map(|c| {
            (
                c.encoding_name(),
                c.rtp_clock_rate(),
                c.default_payload_type(),
            )
        })
        .collect();
    assert_eq!(
        c,
        vec![
            ("PCMU", 8000, 0),
            ("PCMA", 8000, 8),
            ("G722", 8000, 9),
            ("opus", 48000, 111)
        ]
    );
}

#[test]
fn offer_pcmu_only() {
    let o = build_offer(&local(&[Codec::Pcmu], true)).unwrap();
    assert_eq!(
        o,
        "v=0\r\n\
         o=dialtone 1234 1 IN IP4 192.0.2.10\r\n\
         s=dialtone\r\n\
         c=IN IP4 192.0.2.10\r\n\
         t=0 0\r\n\
         m=audio 40000 RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n\
         a=rtcp-mux\r\n"
    );
}

#[test]
fn offer_all_codecs() {
    let o = build_offer(&all()).unwrap();
    assert_eq!(
        o,
        "v=0\r\n\
         o=dialtone 1234 1 IN IP4 192.0.2.10\r\n\
         s=dialtone\r\n\
         c=IN IP4 192.0.2.10\r\n\
         t=0 0\r\n\
         m=audio 40000 RTP/AVP 111 9 0 8 101 102\r\n\
         a=rtpmap:111 opus/48000/2\r\n\
         a=fmtp:111 useinbandfec=1\r\n\
         a=rtpmap:9 G722/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=rtpmap:102 telephone-event/48000\r\n\
         a=fmtp:102 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n\
         a=rtcp-mux\r\n"
    );
}

#[test]
fn offer_variants() {
    let o = build_offer(&local(&[Codec::Pcma, Codec::G722], false)).unwrap();
    assert!(o.contains("m=audio 40000 RTP/AVP 8 9\r\n"));
    assert!(!o.contains("telephone-event"));
    let o = build_offer(&local(&[Codec::Opus], true)).unwrap();
    assert!(o.contains("m=audio 40000 RTP/AVP 111 101 102\r\n"));
    // Duplicates are offered once.
    let o = build_offer(&local(&[Codec::Pcmu, Codec::Pcmu], false)).unwrap();
    assert!(o.contains("m=audio 40000 RTP/AVP 0\r\n"));
    let mut v6 = local(&[Codec::Pcmu], false);
    v6.ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let o = build_offer(&v6).unwrap();
    assert!(o.contains("o=dialtone 1234 1 IN IP6 2001:db8::1\r\n"));
    assert!(o.contains("c=IN IP6 2001:db8::1\r\n"));
    assert_eq!(build_offer(&local(&[], true)), Err(SdpError::NoCodecs));
    // Every line ends in CRLF.
    for codecs in [vec![Codec::Pcmu], vec![Codec::Opus, Codec::Pcma]] {
        let o = build_offer(&local(&codecs, true)).unwrap();
        assert!(o.ends_with("\r\n"));
        assert_eq!(o.matches('\n').count(), o.matches("\r\n").count());
    }
}

#[test]
fn offer_round_trips_through_the_model() {
    for l in [all(), local(&[Codec::Pcmu], false)] {
        let o = build_offer(&l).unwrap();
        let parsed = SessionDescription::parse(&o).unwrap();
        assert_eq!(parsed.to_string(), o);
        let m = &parsed.media[0];
        assert_eq!(m.port, 40000);
        assert_eq!(m.ptime(), Some(20));
        assert_eq!(m.direction(), Some(Direction::SendRecv));
    }
}

const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[test]
fn sipp_default_answer() {
    let n = negotiate_answer(&all(), SIPP).unwrap();
    assert_eq!(
        n,
        Negotiated {
            codec: Codec::Pcmu,
            payload_type: 0,
            clock_rate: 8000,
            telephone_event_pt: None,
            remote: sa([127, 0, 0, 1], 6000),
            direction: Direction::SendRecv,
            ptime_ms: None,
            rtcp_mux: false,
        }
    );
}

#[test]
fn static_payload_type_without_rtpmap() {
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 0\r\n";
    let n = negotiate_answer(&all(), a).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
    let a = a.replace("8 0", "9");
    let n = negotiate_answer(&all(), &a).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.clock_rate),
        (Codec::G722, 9, 8000)
    );
}

#[test]
fn dynamic_opus_96_with_telephone_event() {
    let a = "v=0\r\n\
             o=- 99 2 IN IP4 203.0.113.5\r\n\
             s=-\r\n\
             c=IN IP4 203.0.113.5\r\n\
             t=0 0\r\n\
             m=audio 5004 RTP/AVP 96 97\r\n\
             a=rtpmap:96 OPUS/48000/2\r\n\
             a=fmtp:96 minptime=10;useinbandfec=1\r\n\
             a=rtpmap:97 telephone-event/48000\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n";
    let n = negotiate_answer(&all(), a).unwrap();
    assert_eq!(n.codec, Codec::Opus);
    assert_eq!(n.payload_type, 96);
    assert_eq!(n.clock_rate, 48000);
    assert_eq!(n.telephone_event_pt, Some(97));
    assert_eq!(n.remote, sa([203, 0, 113, 5], 5004));
    assert_eq!(n.ptime_ms, Some(20));
    // Opus was not offered: no common codec.
    assert_eq!(
        negotiate_answer(&local(&[Codec::Pcmu], true), a),
        Err(SdpError::NoCommonCodec)
    );
    // Without local telephone-event support, none is negotiated.
    let n = negotiate_answer(&local(&[Codec::Opus], false), a).unwrap();
    assert_eq!(n.telephone_event_pt, None);
}

#[test]
fn telephone_event_100_matched_at_codec_clock_rate() {
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
             m=audio 7078 RTP/AVP 0 100 105\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:105 telephone-event/48000\r\n\
             a=rtpmap:100 Telephone-Event/8000\r\n\
             a=fmtp:100 0-15\r\n\
             a=recvonly\r\n";
    let n = negotiate_answer(&all(), a).unwrap();
    assert_eq!(n.codec, Codec::Pcmu);
    assert_eq!(n.telephone_event_pt, Some(100));
    assert_eq!(n.direction, Direction::RecvOnly);
    // Only a 48 kHz event for an 8 kHz codec: none.
    let a2 = a.replace("0 100 105", "0 105");
    let n = negotiate_answer(&all(), &a2).unwrap();
    assert_eq!(n.telephone_event_pt, None);
}

#[test]
fn answer_order_wins() {
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\n\
             m=audio 9000 RTP/AVP 18 8 0 111\r\n\
             a=rtpmap:18 G729/8000\r\n\
             a=rtpmap:111 opus/48000/2\r\n";
    let n = negotiate_answer(&all(), a).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
    // An rtpmap overrides the static meaning, and a wrong clock rate does not match.
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\n\
             m=audio 9000 RTP/AVP 96 0\r\n\
             a=rtpmap:96 PCMU/16000\r\n";
    let n = negotiate_answer(&all(), a).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
}

#[test]
fn no_common_codec() {
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.4\r\ns=-\r\nc=IN IP4 10.0.0.4\r\nt=0 0\r\n\
             m=audio 9000 RTP/AVP 18 96\r\na=rtpmap:18 G729/8000\r\n";
    assert_eq!(negotiate_answer(&all(), a), Err(SdpError::NoCommonCodec));
    // PCMA answered but only PCMU offered.
    let a = SIPP
        .replace("RTP/AVP 0", "RTP/AVP 8")
        .replace("0 PCMU", "8 PCMA");
    assert_eq!(
        negotiate_answer(&local(&[Codec::Pcmu], true), &a),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn rejected_stream() {
    let a = SIPP.replace("audio 6000", "audio 0");
    assert_eq!(negotiate_answer(&all(), &a), Err(SdpError::MediaRejected));
}

#[test]
fn missing_connection() {
    let a = SIPP.replace("c=IN IP4 127.0.0.1\r\n", "");
    assert_eq!(
        negotiate_answer(&all(), &a),
        Err(SdpError::MissingConnection)
    );
    let a = SIPP.replace("127.0.0.1\r\nt", "example.com\r\nt");
    assert!(matches!(
        negotiate_answer(&all(), &a),
        Err(SdpError::InvalidAddress(_))
    ));
}

#[test]
fn media_connection_overrides_session() {
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
             m=audio 9000 RTP/AVP 0\r\nc=IN IP4 10.0.0.6/127\r\n";
    assert_eq!(
        negotiate_answer(&all(), a).unwrap().remote,
        sa([10, 0, 0, 6], 9000)
    );
    // Media-level only.
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nt=0 0\r\n\
             m=audio 9000 RTP/AVP 0\r\nc=IN IP6 ::1\r\n";
    assert_eq!(
        negotiate_answer(&all(), a).unwrap().remote,
        "[::1]:9000".parse().unwrap()
    );
}

#[test]
fn hold_address_allowed() {
    let a = SIPP
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
        .replace("PCMU/8000\r\n", "PCMU/8000\r\na=sendonly\r\n");
    let n = negotiate_answer(&all(), &a).unwrap();
    assert_eq!(n.remote, sa([0, 0, 0, 0], 6000));
    assert_eq!(n.direction, Direction::SendOnly);
}

#[test]
fn session_level_direction_and_ptime() {
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
             a=inactive\r\na=ptime:30\r\nm=audio 9000 RTP/AVP 0\r\n";
    let n = negotiate_answer(&all(), a).unwrap();
    assert_eq!(n.direction, Direction::Inactive);
    assert_eq!(n.ptime_ms, Some(30));
    let a = a.replace("RTP/AVP 0\r\n", "RTP/AVP 0\r\na=sendrecv\r\na=ptime:20\r\n");
    let n = negotiate_answer(&all(), &a).unwrap();
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(n.ptime_ms, Some(20));
}

#[test]
fn lf_only_unknown_lines_and_video_first() {
    let a = "v=0\n\
             o=- 1 1 IN IP4 10.0.0.7\n\
             s=call\n\
             i=some info\n\
             c=IN IP4 10.0.0.7\n\
             b=AS:84\n\
             t=0 0\n\
             a=group:BUNDLE 0 1\n\
             a=weird\n\
             m=video 9100 RTP/AVP 96\n\
             a=rtpmap:96 H264/90000\n\
             m=audio 9000 RTP/AVP 8 101\n\
             b=TIAS:64000\n\
             a=rtpmap:8 PCMA/8000\n\
             a=rtpmap:101 telephone-event/8000\n\
             a=rtcp:9001\n\
             a=x-unknown:foo bar\n\
             y=strange line\n\
             a=sendrecv\n\
             \n";
    let n = negotiate_answer(&all(), a).unwrap();
    assert_eq!(n.codec, Codec::Pcma);
    assert_eq!(n.payload_type, 8);
    assert_eq!(n.telephone_event_pt, Some(101));
    assert_eq!(n.remote, sa([10, 0, 0, 7], 9000));
    // Round trip: display is CRLF and re-parses to the same model.
    let parsed = SessionDescription::parse(a).unwrap();
    let shown = parsed.to_string();
    assert!(shown.contains("\r\n"));
    assert_eq!(SessionDescription::parse(&shown).unwrap(), parsed);
    assert_eq!(
        SessionDescription::parse(&shown).unwrap().to_string(),
        shown
    );
    assert!(shown.contains("a=x-unknown:foo bar\r\n"));
    assert!(shown.contains("y=strange line\r\n"));
}

#[test]
fn no_audio() {
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\nt=0 0\r\n\
             m=video 9100 RTP/AVP 96\r\n";
    assert_eq!(negotiate_answer(&all(), a), Err(SdpError::NoAudio));
    let a = "v=0\r\no=- 1 1 IN IP4 10.0.0.7\r\ns=-\r\nt=0 0\r\n";
    assert_eq!(negotiate_answer(&all(), a), Err(SdpError::NoAudio));
    assert_eq!(answer_offer(&all(), a).unwrap_err(), SdpError::NoAudio);
}

#[test]
fn garbage_is_an_error() {
    for g in [
        "",
        "\r\n",
        "hello world",
        "<html>",
        "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
        "o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n",
        "v=0\r\ns=-\r\n",
        "v=0\r\no=- 1 IN IP4 1.2.3.4\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nthis is not sdp\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio notaport RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n=x\r\n",
        "v=0\r\nv=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
    ] {
        assert!(SessionDescription::parse(g).is_err(), "{g:?}");
        assert!(negotiate_answer(&all(), g).is_err(), "{g:?}");
        assert!(answer_offer(&all(), g).is_err(), "{g:?}");
    }
    let big = format!(
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n{}",
        "a=x\r\n".repeat(20_000)
    );
    assert!(matches!(
        SessionDescription::parse(&big),
        Err(SdpError::TooLarge(_))
    ));
}

#[test]
fn answer_offer_pcmu_with_events() {
    let offer =
        "v=0\r\no=peer 5 6 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
                 m=audio 20000 RTP/AVP 18 0 8 100\r\n\
                 a=rtpmap:18 G729/8000\r\n\
                 a=rtpmap:100 telephone-event/8000\r\n\
                 a=fmtp:100 0-15\r\n\
                 a=ptime:30\r\n\
                 a=sendonly\r\n";
    // Our order, not the offer's, picks: PCMA first here.
    let (_, n) = answer_offer(&local(&[Codec::Pcma, Codec::Pcmu], true), offer).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
    let mut l = local(&[Codec::Pcmu, Codec::Pcma], true);
    l.session_version = 7;
    let (answer, n) = answer_offer(&l, offer).unwrap();
    assert_eq!(
        n,
        Negotiated {
            codec: Codec::Pcmu,
            payload_type: 0,
            clock_rate: 8000,
            telephone_event_pt: Some(100),
            remote: sa([198, 51, 100, 1], 20000),
            direction: Direction::SendOnly,
            ptime_ms: Some(30),
            rtcp_mux: false,
        }
    );
    assert_eq!(
        answer,
        "v=0\r\n\
         o=dialtone 1234 7 IN IP4 192.0.2.10\r\n\
         s=dialtone\r\n\
         c=IN IP4 192.0.2.10\r\n\
         t=0 0\r\n\
         m=audio 40000 RTP/AVP 0 100\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:100 telephone-event/8000\r\n\
         a=fmtp:100 0-15\r\n\
         a=ptime:30\r\n\
         a=recvonly\r\n"
    );
    // Our own answer negotiates back to the same codec.
    let back = negotiate_answer(&l, &answer).unwrap();
    assert_eq!((back.codec, back.payload_type), (Codec::Pcmu, 0));
    assert_eq!(back.telephone_event_pt, Some(100));
    assert_eq!(back.direction, Direction::RecvOnly);
}

#[test]
fn answer_offer_directions_mirror() {
    for (offered, answered) in [
        ("sendrecv", "sendrecv"),
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
    ] {
        let offer = format!("{SIPP}a={offered}\r\n");
        let (answer, _) = answer_offer(&all(), &offer).unwrap();
        assert!(answer.ends_with(&format!("a={answered}\r\n")), "{answer}");
    }
    // No direction: sendrecv; no ptime: ours.
    let (answer, n) = answer_offer(&all(), SIPP).unwrap();
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(n.ptime_ms, None);
    assert!(answer.ends_with("a=ptime:20\r\na=sendrecv\r\n"));
    assert!(answer.contains("m=audio 40000 RTP/AVP 0\r\n"));
}

#[test]
fn answer_offer_opus_dynamic() {
    let offer = "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n\
                 m=audio 30000 RTP/AVP 109 0 101 110\r\n\
                 a=rtpmap:109 opus/48000/2\r\n\
                 a=rtpmap:101 telephone-event/8000\r\n\
                 a=rtpmap:110 telephone-event/48000\r\n";
    let opus_first = local(&[Codec::Opus, Codec::Pcmu], true);
    let (answer, n) = answer_offer(&opus_first, offer).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event_pt),
        (Codec::Opus, 109, Some(110))
    );
    assert!(answer.contains("m=audio 40000 RTP/AVP 109 110\r\n"));
    assert!(answer.contains("a=rtpmap:109 opus/48000/2\r\na=fmtp:109 useinbandfec=1\r\n"));
    // No fmtp in the offer means events 0-15 (RFC 4733 §7.1.1).
    assert!(answer.contains("a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-15\r\n"));
    // Our preference list picks among what the offer has: PCMU before Opus.
    let (_, n) = answer_offer(&local(&[Codec::Pcmu, Codec::Opus], true), offer).unwrap();
    assert_eq!((n.codec, n.telephone_event_pt), (Codec::Pcmu, Some(101)));
    let (answer, n) = answer_offer(&local(&[Codec::Pcmu], false), offer).unwrap();
    assert_eq!((n.codec, n.telephone_event_pt), (Codec::Pcmu, None));
    assert!(answer.contains("m=audio 40000 RTP/AVP 0\r\n"));
}

/// Opus with only an 8 kHz telephone-event (baresip): the 8 kHz one is used, both in the
/// answer we give and in the answer we get, so DTMF works on Opus calls.
#[test]
fn opus_calls_use_an_8khz_telephone_event() {
    let offer = "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n\
                 m=audio 30000 RTP/AVP 96 101\r\n\
                 a=rtpmap:96 opus/48000/2\r\n\
                 a=rtpmap:101 telephone-event/8000\r\n\
                 a=fmtp:101 0-15\r\n";
    let (answer, n) = answer_offer(&all(), offer).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event_pt),
        (Codec::Opus, 96, Some(101))
    );
    assert!(answer.contains("m=audio 40000 RTP/AVP 96 101\r\n"));
    assert!(answer.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"));
    let n = negotiate_answer(&local(&[Codec::Opus], true), offer).unwrap();
    assert_eq!(n.telephone_event_pt, Some(101));
}

/// A G.722-only or Opus-only caller is answered with that codec (the default list has all
/// four), not refused.
#[test]
fn wideband_only_offers_are_answered() {
    for (m, map, codec) in [
        ("9", "a=rtpmap:9 G722/8000\r\n", Codec::G722),
        ("111", "a=rtpmap:111 opus/48000/2\r\n", Codec::Opus),
    ] {
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP {m}\r\n{map}"
        );
        let (_, n) = answer_offer(&all(), &offer).unwrap();
        assert_eq!(n.codec, codec);
    }
}

#[test]
fn answer_offer_rejects_other_streams() {
    let offer = "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n\
                 m=audio 30002 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xyz\r\n\
                 m=audio 30000 RTP/AVP 0\r\n\
                 m=video 30004 RTP/AVP 96 97\r\n";
    let (answer, n) = answer_offer(&all(), offer).unwrap();
    assert_eq!(n.remote, sa([10, 1, 1, 1], 30000));
    let parsed = SessionDescription::parse(&answer).unwrap();
    let ports: Vec<u16> = parsed.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![0, 40000, 0]);
    assert!(answer.contains("m=audio 0 RTP/SAVP 0\r\n"));
    assert!(answer.contains("m=video 0 RTP/AVP 96\r\n"));
    // Only SRTP offered.
    let srtp = "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n\
                m=audio 30002 RTP/SAVP 0\r\n";
    assert_eq!(
        answer_offer(&all(), srtp).unwrap_err(),
        SdpError::UnsupportedTransport("RTP/SAVP".into())
    );
}

#[test]
fn answer_offer_errors() {
    assert_eq!(
        answer_offer(&local(&[], true), SIPP).unwrap_err(),
        SdpError::NoCodecs
    );
    assert_eq!(
        answer_offer(&local(&[Codec::Pcma], true), SIPP).unwrap_err(),
        SdpError::NoCommonCodec
    );
    assert_eq!(
        answer_offer(&all(), &SIPP.replace("6000", "0")).unwrap_err(),
        SdpError::MediaRejected
    );
    assert_eq!(
        answer_offer(&all(), &SIPP.replace("c=IN IP4 127.0.0.1\r\n", "")).unwrap_err(),
        SdpError::MissingConnection
    );
    assert_eq!(
        negotiate_answer(&local(&[], true), SIPP).unwrap_err(),
        SdpError::NoCodecs
    );
}

#[test]
fn hold_reinvite_answered() {
    let offer = SIPP
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
        .replace("PCMU/8000\r\n", "PCMU/8000\r\na=sendonly\r\n");
    let (answer, n) = answer_offer(&all(), &offer).unwrap();
    assert_eq!(n.remote.ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert!(answer.contains("a=recvonly\r\n"));
}

/// RFC 5761: an answer that keeps `a=rtcp-mux` accepts ours; an offer's `a=rtcp-mux` is
/// accepted in our answer; without it, neither side muxes.
#[test]
fn rtcp_mux_is_offered_and_accepted() {
    let muxed_answer = format!("{SIPP}a=rtcp-mux\r\n");
    assert!(negotiate_answer(&all(), &muxed_answer).unwrap().rtcp_mux);
    assert!(!negotiate_answer(&all(), SIPP).unwrap().rtcp_mux);
    let (answer, n) = answer_offer(&all(), &muxed_answer).unwrap();
    assert!(
        n.rtcp_mux && answer.ends_with("a=sendrecv\r\na=rtcp-mux\r\n"),
        "{answer}"
    );
    let (answer, n) = answer_offer(&all(), SIPP).unwrap();
    assert!(!n.rtcp_mux && !answer.contains("rtcp-mux"), "{answer}");
}
