//! T.38 (UDPTL) offer/answer: our re-INVITE offer, gateways' answers, and answering a far
//! end that asks to switch to fax.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sdp::{
    answer_t38_offer, build_t38_offer, is_t38_offer, negotiate_t38_answer, Codec, LocalMedia,
    SdpError, SessionDescription, T38ErrorCorrection, T38Negotiated, T38Params, T38RateManagement,
};

fn local() -> LocalMedia {
    LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        port: 40000,
        codecs: vec![Codec::Pcmu],
        telephone_event: true,
        session_id: 1234,
        session_version: 2,
        ptime_ms: 20,
    }
}

fn sa(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
}

/// Joins lines with CRLF, as on the wire.
fn sdp(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

fn all_flags() -> T38Params {
    T38Params {
        fill_bit_removal: true,
        transcoding_mmr: true,
        transcoding_jbig: true,
        ..T38Params::default()
    }
}

// ---- defaults and our offer ----

#[test]
fn default_params() {
    assert_eq!(
        T38Params::default(),
        T38Params {
            version: 0,
            max_bit_rate: 14400,
            rate_management: T38RateManagement::TransferredTcf,
            max_buffer: Some(1800),
            max_datagram: Some(400),
            error_correction: T38ErrorCorrection::Redundancy,
            fill_bit_removal: false,
            transcoding_mmr: false,
            transcoding_jbig: false,
        }
    );
}

#[test]
fn offer_default_exact_text() {
    let offer = build_t38_offer(&local(), &T38Params::default());
    assert_eq!(
        offer,
        sdp(&[
            "v=0",
            "o=dialtone 1234 2 IN IP4 192.0.2.10",
            "s=dialtone",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=image 40000 udptl t38",
            "a=T38FaxVersion:0",
            "a=T38MaxBitRate:14400",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxMaxBuffer:1800",
            "a=T38FaxMaxDatagram:400",
            "a=T38FaxUdpEC:t38UDPRedundancy",
        ])
    );
}

#[test]
fn offer_flags_bare_and_absent_limits_left_out() {
    let params = T38Params {
        version: 3,
        max_bit_rate: 9600,
        rate_management: T38RateManagement::LocalTcf,
        max_buffer: None,
        max_datagram: None,
        error_correction: T38ErrorCorrection::None,
        ..all_flags()
    };
    let mut l = local();
    l.ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    l.port = 5004;
    assert_eq!(
        build_t38_offer(&l, &params),
        sdp(&[
            "v=0",
            "o=dialtone 1234 2 IN IP6 2001:db8::1",
            "s=dialtone",
            "c=IN IP6 2001:db8::1",
            "t=0 0",
            "m=image 5004 udptl t38",
            "a=T38FaxVersion:3",
            "a=T38MaxBitRate:9600",
            "a=T38FaxFillBitRemoval",
            "a=T38FaxTranscodingMMR",
            "a=T38FaxTranscodingJBIG",
            "a=T38FaxRateManagement:localTCF",
        ])
    );
}

#[test]
fn offer_parses_back() {
    for params in [T38Params::default(), all_flags()] {
        let offer = build_t38_offer(&local(), &params);
        let parsed = SessionDescription::parse(&offer).unwrap();
        assert_eq!(parsed.to_string(), offer);
        assert_eq!(parsed.media.len(), 1);
        let m = &parsed.media[0];
        assert_eq!(
            (m.media.as_str(), m.port, m.proto.as_str()),
            ("image", 40000, "udptl")
        );
        assert_eq!(m.formats, vec!["t38".to_string()]);
        assert!(is_t38_offer(&offer));
        // Read as an answer, our own offer settles to exactly what it says.
        assert_eq!(
            negotiate_t38_answer(&params, &offer).unwrap(),
            Some(T38Negotiated {
                remote: sa([192, 0, 2, 10], 40000),
                params: params.clone(),
            })
        );
    }
}

// ---- the far end's answer to our offer ----

const ASTERISK_ANSWER: &[&str] = &[
    "v=0",
    "o=- 1430258946 1430258948 IN IP4 203.0.113.5",
    "s=Asterisk",
    "c=IN IP4 203.0.113.5",
    "t=0 0",
    "m=image 4390 udptl t38",
    "a=T38FaxVersion:0",
    "a=T38MaxBitRate:14400",
    "a=T38FaxRateManagement:transferredTCF",
    "a=T38FaxMaxDatagram:400",
    "a=T38FaxUdpEC:t38UDPRedundancy",
];

#[test]
fn answer_asterisk() {
    let got = negotiate_t38_answer(&T38Params::default(), &sdp(ASTERISK_ANSWER))
        .unwrap()
        .unwrap();
    assert_eq!(got.remote, sa([203, 0, 113, 5], 4390));
    // No MaxBuffer in the answer: ours stands in.
    assert_eq!(got.params, T38Params::default());
}

#[test]
fn answer_cisco_media_connection_and_zero_flags() {
    let answer = sdp(&[
        "v=0",
        "o=CiscoSystemsSIP-GW-UserAgent 7291 2287 IN IP4 198.51.100.1",
        "s=SIP Call",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=image 30000 udptl t38",
        "c=IN IP4 198.51.100.20",
        "a=T38FaxVersion:0",
        "a=T38MaxBitRate:9600",
        "a=T38FaxFillBitRemoval:0",
        "a=T38FaxTranscodingMMR:0",
        "a=T38FaxTranscodingJBIG:0",
        "a=T38FaxRateManagement:transferredTCF",
        "a=T38FaxMaxBuffer:200",
        "a=T38FaxMaxDatagram:72",
        "a=T38FaxUdpEC:t38UDPRedundancy",
    ]);
    let got = negotiate_t38_answer(&all_flags(), &answer)
        .unwrap()
        .unwrap();
    assert_eq!(got.remote, sa([198, 51, 100, 20], 30000));
    assert_eq!(
        got.params,
        T38Params {
            version: 0,
            max_bit_rate: 9600,
            rate_management: T38RateManagement::TransferredTcf,
            max_buffer: Some(200),
            max_datagram: Some(72),
            error_correction: T38ErrorCorrection::Redundancy,
            fill_bit_removal: false,
            transcoding_mmr: false,
            transcoding_jbig: false,
        }
    );
}

#[test]
fn answer_lowercase_names_and_bare_flags() {
    let answer = sdp(&[
        "v=0",
        "o=gw 1 1 IN IP4 198.51.100.7",
        "s=-",
        "t=0 0",
        "m=IMAGE 6000 UDPTL T38",
        "c=IN IP4 198.51.100.7",
        "a=t38faxversion:2",
        "a=t38maxbitrate:14400",
        "a=t38faxfillbitremoval",
        "a=T38FAXTRANSCODINGMMR:1",
        "a=t38faxratemanagement:TRANSFERREDTCF",
        "a=t38faxmaxbuffer:262",
        "a=t38faxmaxdatagram:176",
        "a=t38faxudpec:T38UDPFEC",
    ]);
    let ours = T38Params {
        version: 3,
        ..all_flags()
    };
    let got = negotiate_t38_answer(&ours, &answer).unwrap().unwrap();
    assert_eq!(got.remote, sa([198, 51, 100, 7], 6000));
    assert_eq!(
        got.params,
        T38Params {
            version: 2,
            max_bit_rate: 14400,
            rate_management: T38RateManagement::TransferredTcf,
            max_buffer: Some(262),
            max_datagram: Some(176),
            error_correction: T38ErrorCorrection::Fec,
            fill_bit_removal: true,
            transcoding_mmr: true,
            transcoding_jbig: false,
        }
    );
}

#[test]
fn answer_minimal_falls_back() {
    // Only the m= line: version 0, our rate and limits, no error correction.
    let answer = sdp(&[
        "v=0",
        "o=gw 1 1 IN IP4 198.51.100.7",
        "s=-",
        "c=IN IP4 198.51.100.7",
        "t=0 0",
        "m=image 6000 udptl t38",
    ]);
    let ours = T38Params {
        version: 1,
        rate_management: T38RateManagement::LocalTcf,
        ..all_flags()
    };
    let got = negotiate_t38_answer(&ours, &answer).unwrap().unwrap();
    assert_eq!(
        got.params,
        T38Params {
            version: 0,
            max_bit_rate: 14400,
            rate_management: T38RateManagement::LocalTcf,
            max_buffer: Some(1800),
            max_datagram: Some(400),
            error_correction: T38ErrorCorrection::None,
            fill_bit_removal: false,
            transcoding_mmr: false,
            transcoding_jbig: false,
        }
    );
}

#[test]
fn answer_declined_port_zero() {
    let answer = sdp(&[
        "v=0",
        "o=- 1 2 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=image 0 udptl t38",
    ]);
    assert_eq!(
        negotiate_t38_answer(&T38Params::default(), &answer),
        Ok(None)
    );
}

#[test]
fn answer_declined_with_audio() {
    let answer = sdp(&[
        "v=0",
        "o=- 1 2 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
    ]);
    assert_eq!(
        negotiate_t38_answer(&T38Params::default(), &answer),
        Ok(None)
    );
}

#[test]
fn answer_garbage_is_error() {
    for text in [
        "",
        "garbage",
        "SIP/2.0 200 OK\r\n",
        "v=1\r\n",
        "v=0\r\nm=image\r\n",
    ] {
        assert!(
            negotiate_t38_answer(&T38Params::default(), text).is_err(),
            "{text:?}"
        );
    }
}

#[test]
fn answer_unusable_addresses() {
    let with_c = |c: Option<&str>| {
        let mut lines = vec!["v=0", "o=- 1 2 IN IP4 203.0.113.5", "s=-"];
        lines.extend(c);
        lines.extend(["t=0 0", "m=image 4390 udptl t38"]);
        sdp(&lines)
    };
    let ours = T38Params::default();
    assert_eq!(
        negotiate_t38_answer(&ours, &with_c(Some("c=IN IP4 0.0.0.0"))),
        Err(SdpError::InvalidAddress("0.0.0.0".into()))
    );
    assert_eq!(
        negotiate_t38_answer(&ours, &with_c(Some("c=IN IP6 ::"))),
        Err(SdpError::InvalidAddress("::".into()))
    );
    assert_eq!(
        negotiate_t38_answer(&ours, &with_c(Some("c=IN IP4 224.2.1.1/127"))),
        Err(SdpError::Multicast("224.2.1.1/127".into()))
    );
    assert_eq!(
        negotiate_t38_answer(&ours, &with_c(Some("c=IN IP4 gw.example.com"))),
        Err(SdpError::InvalidAddress("gw.example.com".into()))
    );
    assert_eq!(
        negotiate_t38_answer(&ours, &with_c(None)),
        Err(SdpError::MissingConnection)
    );
}

// ---- answering the far end's offer ----

const GATEWAY_OFFER: &[&str] = &[
    "v=0",
    "o=FreeSWITCH 1700000000 1700000001 IN IP4 203.0.113.9",
    "s=FreeSWITCH",
    "c=IN IP4 203.0.113.9",
    "t=0 0",
    "m=image 21000 udptl t38",
    "a=T38FaxVersion:0",
    "a=T38MaxBitRate:14400",
    "a=T38FaxFillBitRemoval",
    "a=T38FaxRateManagement:transferredTCF",
    "a=T38FaxMaxBuffer:2000",
    "a=T38FaxMaxDatagram:200",
    "a=T38FaxUdpEC:t38UDPRedundancy",
];

#[test]
fn answer_offer_image_only() {
    let offer = sdp(GATEWAY_OFFER);
    assert!(is_t38_offer(&offer));
    let (answer, got) = answer_t38_offer(&local(), &T38Params::default(), &offer).unwrap();
    assert_eq!(
        answer,
        sdp(&[
            "v=0",
            "o=dialtone 1234 2 IN IP4 192.0.2.10",
            "s=dialtone",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=image 40000 udptl t38",
            "a=T38FaxVersion:0",
            "a=T38MaxBitRate:14400",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxMaxBuffer:1800",
            "a=T38FaxMaxDatagram:400",
            "a=T38FaxUdpEC:t38UDPRedundancy",
        ])
    );
    assert_eq!(got.remote, sa([203, 0, 113, 9], 21000));
    assert_eq!(
        got.params,
        T38Params {
            // The offer's receive limits, which bind what we send.
            max_buffer: Some(2000),
            max_datagram: Some(200),
            ..T38Params::default()
        }
    );
    // Our answer, read back by an offerer with the gateway's parameters, settles the same.
    let theirs = T38Params {
        max_buffer: Some(2000),
        max_datagram: Some(200),
        fill_bit_removal: true,
        ..T38Params::default()
    };
    let back = negotiate_t38_answer(&theirs, &answer).unwrap().unwrap();
    assert_eq!(back.params.version, got.params.version);
    assert_eq!(back.params.max_bit_rate, got.params.max_bit_rate);
    assert!(!back.params.fill_bit_removal);
}

#[test]
fn answer_offer_audio_and_image() {
    let offer = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=audio 0 RTP/AVP 0",
        "m=image 30000 udptl t38",
        "c=IN IP4 198.51.100.20",
        "a=T38FaxVersion:3",
        "a=T38MaxBitRate:33600",
        "a=T38FaxFillBitRemoval:1",
        "a=T38FaxTranscodingMMR:1",
        "a=T38FaxTranscodingJBIG:0",
        "a=T38FaxRateManagement:transferredTCF",
        "a=T38FaxMaxBuffer:200",
        "a=T38FaxMaxDatagram:72",
        "a=T38FaxUdpEC:t38UDPRedundancy",
    ]);
    assert!(is_t38_offer(&offer));
    let ours = T38Params {
        version: 1,
        ..all_flags()
    };
    let (answer, got) = answer_t38_offer(&local(), &ours, &offer).unwrap();
    assert_eq!(
        answer,
        sdp(&[
            "v=0",
            "o=dialtone 1234 2 IN IP4 192.0.2.10",
            "s=dialtone",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=audio 0 RTP/AVP 0",
            "m=image 40000 udptl t38",
            "a=T38FaxVersion:1",
            "a=T38MaxBitRate:14400",
            "a=T38FaxFillBitRemoval",
            "a=T38FaxTranscodingMMR",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxMaxBuffer:1800",
            "a=T38FaxMaxDatagram:400",
            "a=T38FaxUdpEC:t38UDPRedundancy",
        ])
    );
    assert_eq!(
        got,
        T38Negotiated {
            remote: sa([198, 51, 100, 20], 30000),
            params: T38Params {
                version: 1,
                max_bit_rate: 14400,
                rate_management: T38RateManagement::TransferredTcf,
                max_buffer: Some(200),
                max_datagram: Some(72),
                error_correction: T38ErrorCorrection::Redundancy,
                fill_bit_removal: true,
                transcoding_mmr: true,
                transcoding_jbig: false,
            },
        }
    );
}

#[test]
fn answer_offer_active_audio_alongside_is_refused() {
    let offer = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=image 30000 udptl t38",
        "a=T38FaxVersion:0",
        "m=audio 30002 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    let (answer, got) = answer_t38_offer(&local(), &T38Params::default(), &offer).unwrap();
    let parsed = SessionDescription::parse(&answer).unwrap();
    let lines: Vec<_> = parsed
        .media
        .iter()
        .map(|m| (m.media.as_str(), m.port, m.proto.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![("image", 40000, "udptl"), ("audio", 0, "RTP/AVP")]
    );
    assert!(parsed.media[1].attributes.is_empty());
    assert!(!parsed.media[1].formats.is_empty());
    assert_eq!(got.remote, sa([198, 51, 100, 1], 30000));
}

#[test]
fn answer_offer_fec_answered_with_redundancy() {
    let offer = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=image 30000 udptl t38",
        "a=T38FaxVersion:0",
        "a=T38MaxBitRate:14400",
        "a=T38FaxRateManagement:transferredTCF",
        "a=T38FaxUdpEC:t38UDPFEC",
    ]);
    let (answer, got) = answer_t38_offer(&local(), &T38Params::default(), &offer).unwrap();
    assert!(answer.contains("a=T38FaxUdpEC:t38UDPRedundancy\r\n"));
    assert!(!answer.contains("FEC"));
    assert_eq!(got.params.error_correction, T38ErrorCorrection::Redundancy);
    // No limits offered: ours stand in.
    assert_eq!(got.params.max_datagram, Some(400));
    assert_eq!(got.params.max_buffer, Some(1800));
}

#[test]
fn answer_offer_without_error_correction_answers_none() {
    let offer = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=image 30000 udptl t38",
        "a=T38FaxVersion:0",
        "a=T38MaxBitRate:9600",
    ]);
    let (answer, got) = answer_t38_offer(&local(), &T38Params::default(), &offer).unwrap();
    assert!(!answer.contains("T38FaxUdpEC"));
    assert!(answer.contains("a=T38MaxBitRate:9600\r\n"));
    assert_eq!(got.params.error_correction, T38ErrorCorrection::None);
    // Absent rate management: the UDPTL method.
    assert_eq!(
        got.params.rate_management,
        T38RateManagement::TransferredTcf
    );
}

#[test]
fn answer_offer_local_tcf_echoed() {
    let offer = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=image 30000 udptl t38",
        "a=T38FaxRateManagement:localTCF",
    ]);
    assert!(is_t38_offer(&offer));
    let (answer, got) = answer_t38_offer(&local(), &T38Params::default(), &offer).unwrap();
    assert!(answer.contains("a=T38FaxRateManagement:localTCF\r\n"));
    assert_eq!(got.params.rate_management, T38RateManagement::LocalTcf);
}

#[test]
fn answer_offer_without_image_is_error() {
    let audio_only = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0",
    ]);
    let image_disabled = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0",
        "m=image 0 udptl t38",
    ]);
    let image_over_tcp = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=image 30000 tcp t38",
    ]);
    for offer in [&audio_only, &image_disabled, &image_over_tcp] {
        assert!(!is_t38_offer(offer), "{offer}");
        assert_eq!(
            answer_t38_offer(&local(), &T38Params::default(), offer),
            Err(SdpError::NoT38),
            "{offer}"
        );
    }
}

#[test]
fn answer_offer_unspecified_address_is_error() {
    let offer = sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 0.0.0.0",
        "t=0 0",
        "m=image 30000 udptl t38",
    ]);
    // It does ask for fax; we just cannot send anywhere.
    assert!(is_t38_offer(&offer));
    assert_eq!(
        answer_t38_offer(&local(), &T38Params::default(), &offer),
        Err(SdpError::InvalidAddress("0.0.0.0".into()))
    );
}

#[test]
fn answer_offer_garbage_is_error() {
    for text in [
        "",
        "hello",
        "v=0\r\no=broken\r\n",
        "m=image 1 udptl t38\r\n",
    ] {
        assert!(!is_t38_offer(text), "{text:?}");
        assert!(
            answer_t38_offer(&local(), &T38Params::default(), text).is_err(),
            "{text:?}"
        );
    }
}

#[test]
fn is_t38_offer_cases() {
    assert!(is_t38_offer(&sdp(GATEWAY_OFFER)));
    assert!(is_t38_offer(&sdp(ASTERISK_ANSWER)));
    assert!(is_t38_offer(&build_t38_offer(
        &local(),
        &T38Params::default()
    )));
    assert!(!is_t38_offer(&sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=image 30000 udptl jpeg",
    ])));
    assert!(!is_t38_offer(&sdp(&[
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=video 30000 udptl t38",
    ])));
}

// ---- hostile input ----

fn offer_with(attrs: &[&str]) -> String {
    let mut lines = vec![
        "v=0",
        "o=- 5 6 IN IP4 198.51.100.1",
        "s=-",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=image 30000 udptl t38",
    ];
    lines.extend(attrs);
    sdp(&lines)
}

#[test]
fn hostile_values_fall_back() {
    let offer = offer_with(&[
        "a=T38FaxVersion:99999999999999999999999",
        "a=T38MaxBitRate:",
        "a=T38FaxRateManagement:transferredTCF\u{0301}",
        "a=T38FaxMaxBuffer:-5",
        "a=T38FaxMaxDatagram:0",
        "a=T38FaxUdpEC:t38UDPRedundancy;drop table",
        "a=T38FaxFillBitRemoval:peut-être",
        "a=T38FaxTranscodingMMR:\u{1F4E0}",
        "a=T38FaxTranscodingJBIG:",
        "a=T38FaxVersion:1",
    ]);
    let ours = T38Params {
        version: 3,
        ..all_flags()
    };
    let (answer, got) = answer_t38_offer(&local(), &ours, &offer).unwrap();
    assert_eq!(
        got.params,
        T38Params {
            // The first T38FaxVersion was garbage, so the later one counts.
            version: 1,
            max_bit_rate: 14400,
            rate_management: T38RateManagement::TransferredTcf,
            max_buffer: Some(1800),
            max_datagram: Some(400),
            error_correction: T38ErrorCorrection::None,
            fill_bit_removal: false,
            transcoding_mmr: false,
            // Present with an empty value: present is what a flag means.
            transcoding_jbig: true,
        }
    );
    assert!(answer.is_ascii());
    let got = negotiate_t38_answer(&ours, &offer).unwrap().unwrap();
    assert_eq!(got.params.version, 1);
    assert_eq!(got.params.max_bit_rate, 14400);
}

#[test]
fn huge_values_take_the_minimum() {
    let offer = offer_with(&[
        "a=T38FaxVersion:4294967295",
        "a=T38MaxBitRate:4294967295",
        "a=T38FaxMaxBuffer:4294967295",
        "a=T38FaxMaxDatagram:4294967295",
    ]);
    let ours = T38Params::default();
    let (answer, got) = answer_t38_offer(&local(), &ours, &offer).unwrap();
    assert!(answer.contains("a=T38FaxVersion:0\r\n"));
    assert!(answer.contains("a=T38MaxBitRate:14400\r\n"));
    assert_eq!(got.params.max_datagram, Some(u32::MAX));
    assert_eq!(got.params.max_buffer, Some(u32::MAX));
}

#[test]
fn no_panic_on_truncations_and_mutations() {
    let mut cases = Vec::new();
    for base in [sdp(GATEWAY_OFFER), sdp(ASTERISK_ANSWER)] {
        for (i, _) in base.char_indices() {
            cases.push(base[..i].to_string());
        }
        for (from, to) in [
            ("udptl", ""),
            ("t38", "T38 t38 t38"),
            ("21000", "65536"),
            ("21000", "0"),
            (":", ""),
            ("0\r\n", "\u{00e9}\u{200b}\r\n"),
            ("IN IP4", "IN IP6"),
            ("\r\n", "\n"),
        ] {
            cases.push(base.replace(from, to));
        }
    }
    let ours = all_flags();
    for text in &cases {
        let _ = is_t38_offer(text);
        let _ = negotiate_t38_answer(&ours, text);
        if let Ok((answer, _)) = answer_t38_offer(&local(), &ours, text) {
            assert!(SessionDescription::parse(&answer).is_ok(), "{text:?}");
        }
    }
}

/// An answer whose first image stream is declined (port 0) and a later one active: the active
/// one is the answer (found by the `sdp_negotiate` fuzz target: our own answer to such an offer
/// did not read back).
#[test]
fn answer_with_a_declined_image_stream_before_the_active_one() {
    let offer = "v=0\r\no=gw 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=image 0 udptl t38\r\nm=image 30000 udptl t38\r\na=T38FaxVersion:0\r\n";
    let local = sdp::LocalMedia {
        ip: "192.0.2.1".parse().unwrap(),
        port: 40000,
        codecs: vec![sdp::Codec::Pcmu],
        telephone_event: true,
        session_id: 1,
        session_version: 1,
        ptime_ms: 20,
    };
    let ours = sdp::T38Params::default();
    let (answer, settled) = sdp::answer_t38_offer(&local, &ours, offer).unwrap();
    assert_eq!(settled.remote.port(), 30000);
    let back = sdp::negotiate_t38_answer(&ours, &answer)
        .unwrap()
        .expect("accepted");
    assert_eq!(back.remote.port(), 40000);
    let far = sdp::negotiate_t38_answer(&ours, offer)
        .unwrap()
        .expect("the active stream");
    assert_eq!(far.remote.port(), 30000);
}
