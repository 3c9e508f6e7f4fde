use sdp::{Attribute, Direction, RtpMap, SdpError, SessionDescription};

#[test]
fn parses_the_model() {
    let text = "v=0\r\n\
                o=alice 2890844526 2890842807 IN IP4 10.47.16.5\r\n\
                s=SDP Seminar\r\n\
                i=A Seminar\r\n\
                c=IN IP4 224.2.17.12/127\r\n\
                t=2873397496 2873404696\r\n\
                a=recvonly\r\n\
                m=audio 49170 RTP/AVP 0 96\r\n\
                a=rtpmap:96 L16/16000/2\r\n\
                a=fmtp:96 foo=bar; baz\r\n\
                a=ptime:40\r\n\
                a=ptime:x\r\n\
                a=rtpmap:oops\r\n\
                a=tool:y\r\n\
                m=video 51372/2 RTP/AVP 99\r\n\
                c=IN IP6 ::1\r\n\
                b=AS:128\r\n\
                a=rtpmap:99 h263-1998/90000\r\n";
    let s = SessionDescription::parse(text).unwrap();
    assert_eq!(s.origin.username, "alice");
    assert_eq!(s.origin.session_id, "2890844526");
    assert_eq!(s.origin.session_version, "2890842807");
    assert_eq!(s.session_name, "SDP Seminar");
    assert_eq!(s.other_lines, vec![('i', "A Seminar".to_string())]);
    let c = s.connection.as_ref().unwrap();
    assert_eq!(c.address, "224.2.17.12/127");
    assert_eq!(c.ip().unwrap().to_string(), "224.2.17.12");
    assert_eq!(s.timing, vec!["2873397496 2873404696".to_string()]);
    assert_eq!(s.direction(), Some(Direction::RecvOnly));
    assert_eq!(s.media.len(), 2);
    let a = &s.media[0];
    assert_eq!(
        (a.media.as_str(), a.port, a.port_count),
        ("audio", 49170, None)
    );
    assert_eq!(a.payload_types().collect::<Vec<_>>(), vec![0, 96]);
    assert_eq!(
        a.rtpmap(96),
        Some(&RtpMap {
            payload_type: 96,
            encoding_name: "L16".into(),
            clock_rate: 16000,
            encoding_params: Some("2".into()),
        })
    );
    assert_eq!(a.rtpmap(0), None);
    assert_eq!(a.fmtp(96), Some("foo=bar; baz"));
    assert_eq!(a.ptime(), Some(40));
    assert_eq!(a.direction(), None);
    assert!(a.attributes.contains(&Attribute::Other {
        name: "ptime".into(),
        value: Some("x".into())
    }));
    assert!(a.attributes.contains(&Attribute::Other {
        name: "rtpmap".into(),
        value: Some("oops".into())
    }));
    let v = &s.media[1];
    assert_eq!((v.port, v.port_count), (51372, Some(2)));
    assert_eq!(
        v.connection.as_ref().unwrap().ip().unwrap().to_string(),
        "::1"
    );
    assert_eq!(v.other_lines, vec![('b', "AS:128".to_string())]);
    // Display is CRLF, in RFC order, and round-trips exactly for this ordered input.
    assert_eq!(s.to_string(), text);
}

#[test]
fn defaults_and_tolerance() {
    // No s=, no t=, BOM, blank lines, LF only.
    let s = SessionDescription::parse("\u{feff}v=0\n\no=- 1 1 IN IP4 1.1.1.1\n\n").unwrap();
    assert_eq!(s.session_name, "-");
    assert!(s.timing.is_empty());
    assert!(s.media.is_empty());
    assert_eq!(s.to_string(), "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\n");
}

#[test]
fn specific_errors() {
    assert_eq!(SessionDescription::parse(""), Err(SdpError::MissingVersion));
    assert_eq!(
        SessionDescription::parse("v=2\r\n"),
        Err(SdpError::UnsupportedVersion("2".into()))
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\ns=x\r\n"),
        Err(SdpError::MissingOrigin)
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio x RTP/AVP 0\r\n"),
        Err(SdpError::InvalidLine {
            line: 3,
            reason: "malformed m= line"
        })
    );
    let long = format!("v={}", "9".repeat(1000));
    match SessionDescription::parse(&long) {
        Err(SdpError::UnsupportedVersion(v)) => assert_eq!(v.len(), 64),
        other => panic!("{other:?}"),
    }
}
