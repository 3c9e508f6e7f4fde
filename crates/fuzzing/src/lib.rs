//! The bodies of the fuzz targets: one function per target, taking the raw input.
//!
//! `fuzz/` (cargo-fuzz, nightly) wraps each in a libFuzzer target; `tests/smoke.rs` runs each,
//! on stable, over the checked-in seed corpus (`fuzz/corpus/<target>/`) plus a few thousand
//! mutations of it, so CI exercises them without nightly. A target fails by panicking: the
//! library code must turn any input into a value or an error, and the few invariants checked
//! here (round trips, bounds) must hold.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::{json, Map, Value};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its cargo-fuzz binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("sdp_parse", sdp_parse),
    ("sdp_negotiate", sdp_negotiate),
    ("rtp_packet", rtp_packet),
    ("rtcp_packet", rtcp_packet),
    ("udptl_packet", udptl_packet),
    ("swml_document", swml_document),
    ("swml_expr", swml_expr),
    ("call_command", call_command),
    ("sip_message", sip_message),
    ("sip_fields", sip_fields),
    ("audio_decode", audio_decode),
];

/// Text the way the adapters hand it on: SIP bodies and HTTP texts are decoded lossily.
fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// `SessionDescription::parse`, then print and parse again: what we print must parse, and
/// printing is stable after one round.
pub fn sdp_parse(data: &[u8]) {
    let text = text(data);
    let Ok(sdp) = sdp::SessionDescription::parse(&text) else {
        return;
    };
    let printed = sdp.to_string();
    let again = match sdp::SessionDescription::parse(&printed) {
        Ok(again) => again,
        Err(e) => panic!("our own print does not parse: {e}\n{printed}"),
    };
    assert_eq!(again.to_string(), printed, "printing is not stable");
    for m in &sdp.media {
        for pt in m.payload_types() {
            let _ = (m.rtpmap(pt), m.fmtp(pt));
        }
        let _ = (m.ptime(), m.direction());
    }
    let _ = (sdp.ptime(), sdp.direction());
}

/// The local media setup a byte selects: codec set, telephone-event, ptime.
fn local_media(selector: u8) -> sdp::LocalMedia {
    let mut codecs: Vec<sdp::Codec> = sdp::Codec::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| selector & (1 << i) != 0)
        .map(|(_, c)| c)
        .collect();
    if selector & 0x40 != 0 {
        codecs.reverse();
    }
    sdp::LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        port: 40000,
        codecs,
        telephone_event: selector & 0x10 != 0,
        session_id: 1,
        session_version: 1,
        ptime_ms: if selector & 0x20 != 0 { 20 } else { 0 },
    }
}

/// Offer/answer: the first byte picks our codecs; the rest is the peer's SDP, taken both as an
/// offer (`answer_offer`) and as an answer to our offer (`negotiate_answer`). An answer we
/// build must parse and, when its first audio line is the one we accepted (an answer to an
/// offer of ours has one line), read back as an answer to the same local media it gives the
/// same codec.
pub fn sdp_negotiate(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let local = local_media(selector);
    let peer = text(rest);
    if let Ok(offer) = sdp::build_offer(&local) {
        assert!(sdp::SessionDescription::parse(&offer).is_ok(), "{offer}");
    }
    let _ = sdp::negotiate_answer(&local, &peer);
    t38_negotiate(&local, &peer);
    if let Ok((answer, negotiated)) = sdp::answer_offer(&local, &peer) {
        let parsed = match sdp::SessionDescription::parse(&answer) {
            Ok(parsed) => parsed,
            Err(e) => panic!("our answer does not parse: {e}\n{answer}"),
        };
        let first_audio = parsed
            .media
            .iter()
            .find(|m| m.media.eq_ignore_ascii_case("audio"));
        if first_audio.is_none_or(|m| m.port == 0) {
            return;
        }
        match sdp::negotiate_answer(&local, &answer) {
            Ok(back) => assert_eq!(back.codec, negotiated.codec, "{answer}"),
            Err(e) => panic!("our answer does not negotiate: {e}\n{answer}"),
        }
    }
}

/// The T.38 side of `sdp_negotiate`: the peer's text as a far end's answer to our T.38 offer
/// and as its own T.38 offer. Our answer must parse and, read back as an answer, settle on a
/// stream at our port.
fn t38_negotiate(local: &sdp::LocalMedia, peer: &str) {
    let ours = sdp::T38Params::default();
    let _ = sdp::negotiate_t38_answer(&ours, peer);
    let offered = sdp::is_t38_offer(peer);
    if let Ok((answer, _)) = sdp::answer_t38_offer(local, &ours, peer) {
        assert!(
            offered,
            "answered a T.38 offer is_t38_offer refuses\n{peer}"
        );
        match sdp::negotiate_t38_answer(&ours, &answer) {
            Ok(Some(back)) => assert_eq!(back.remote.port(), local.port, "{answer}"),
            other => panic!("our T.38 answer does not read back: {other:?}\n{answer}"),
        }
    }
}

/// RTP packets: `parse` (and `write` of what it read parses back the same), telephone-event
/// payloads, and the receive accounting over a sequence of packets. The input is a list of
/// packets, each preceded by a length byte.
pub fn rtp_packet(data: &[u8]) {
    let mut receiver = rtp::Receiver::new(8000);
    let mut now_us: u64 = 0;
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        now_us += 20_000 + len as u64 * 97;
        let Ok(pkt) = rtp::parse(packet) else {
            continue;
        };
        let mut out = Vec::new();
        rtp::write(
            pkt.marker,
            pkt.payload_type,
            pkt.sequence,
            pkt.timestamp,
            pkt.ssrc,
            pkt.payload,
            &mut out,
        );
        match rtp::parse(&out) {
            Ok(back) => assert_eq!(back, pkt),
            Err(e) => panic!("a written packet does not parse: {e}"),
        }
        if let Ok(ev) = rtp::TelephoneEvent::parse(pkt.payload) {
            let back = rtp::TelephoneEvent::parse(&ev.to_bytes()).ok();
            assert_eq!(back, Some(ev));
        }
        receiver.on_packet(&pkt, now_us);
    }
    let stats = receiver.stats();
    let _ = format!("{stats:?}");
}

/// RTCP as a call receives it on its RTCP port: `rtp::rtcp::parse` of any datagram, and the
/// call's RTCP state reading it. What we build parses back to what we put in.
pub fn rtcp_packet(data: &[u8]) {
    let mut call = media::rtcp::CallRtcp::new("fuzz@dialtone".into());
    let ntp = 0xE9B3_1234_0000_0000u64;
    if let Ok(got) = rtp::rtcp::parse(data) {
        for b in &got.blocks {
            let _ = rtp::rtcp::round_trip_ms(b, ntp);
            let again = rtp::rtcp::compound_report(1, "x", None, Some(*b));
            assert_eq!(rtp::rtcp::parse(&again).map(|r| r.blocks), Ok(vec![*b]));
        }
    }
    let accepted = call.on_rtcp(ntp, data, 0x1111);
    assert_eq!(call.stats().reports_received, u64::from(accepted));
}

/// UDPTL (T.38 fax) as a call receives it: `rtp::udptl::decode` of any datagram; what decodes
/// encodes again (redundancy form) and decodes back equal. A receiver then gets the datagram
/// under a schedule of sequence numbers (duplicate, gap, late, far jumps): it delivers only the
/// datagram's own IFPs, in order, under their sequence numbers, and its counters never
/// decrease. The packet's IFPs sent through a `UdptlSender` reach a fresh receiver once each.
pub fn udptl_packet(data: &[u8]) {
    use rtp::udptl::{decode, encode, UdptlReceiver, UdptlSender, MAX_SECONDARIES};

    let Ok(packet) = decode(data) else {
        let refused =
            UdptlReceiver::new().receive(data, |_, _| panic!("delivered from a bad datagram"));
        assert!(refused.is_err());
        return;
    };
    let mut out = Vec::new();
    if let Err(e) = encode(packet.seq, packet.primary, &packet.secondaries, &mut out) {
        panic!("a decoded packet does not encode: {e}");
    }
    match decode(&out) {
        Ok(back) if packet.fec => {
            assert_eq!((back.seq, back.primary), (packet.seq, packet.primary));
            assert!(back.secondaries.is_empty() && !back.fec);
        }
        Ok(back) => assert_eq!(back, packet),
        Err(e) => panic!("an encoded packet does not decode: {e}"),
    }

    let mut receiver = UdptlReceiver::new();
    let mut counters = (0, 0, 0);
    let mut datagram = data.to_vec();
    for offset in [
        0u16, 0, 1, 3, 2, 40, 39, 5000, 5001, 0x8000, 0x7F00, 0x7F01, 0x7F02,
    ] {
        let seq = packet.seq.wrapping_add(offset);
        if let Some(head) = datagram.get_mut(..2) {
            head.copy_from_slice(&seq.to_be_bytes());
        }
        let mut last: Option<u16> = None;
        let result = receiver.receive(&datagram, |at, ifp| {
            assert!(!ifp.is_empty(), "an empty IFP delivered");
            if at == seq {
                assert_eq!(ifp, packet.primary);
            } else {
                let back = usize::from(seq.wrapping_sub(at)) - 1;
                assert_eq!(packet.secondaries.get(back), Some(&ifp), "{at} for {seq}");
            }
            if let Some(last) = last {
                let step = usize::from(at.wrapping_sub(last));
                assert!((1..=MAX_SECONDARIES).contains(&step), "{last} then {at}");
            }
            last = Some(at);
        });
        assert!(result.is_ok());
        let now = (receiver.recovered(), receiver.lost(), receiver.dropped());
        assert!(
            now.0 >= counters.0 && now.1 >= counters.1 && now.2 >= counters.2,
            "{counters:?} then {now:?}"
        );
        counters = now;
    }

    let ifps: Vec<&[u8]> = packet
        .secondaries
        .iter()
        .rev()
        .copied()
        .chain([packet.primary])
        .collect();
    let max_datagram = 16 + usize::from(packet.seq % 512);
    let mut sender = UdptlSender::new(packet.seq, usize::from(packet.seq % 5), max_datagram);
    let mut sent: Vec<(u16, &[u8], Vec<u8>)> = Vec::new();
    for &ifp in &ifps {
        let seq = sender.next_seq();
        if sender.packet(ifp, &mut out).is_ok() {
            assert!(out.len() <= max_datagram, "{} > {max_datagram}", out.len());
            sent.push((seq, ifp, out.clone()));
        }
    }
    let mut receiver = UdptlReceiver::new();
    let mut got = Vec::new();
    for (_, _, datagram) in &sent {
        let result = receiver.receive(datagram, |seq, ifp| got.push((seq, ifp.to_vec())));
        assert!(result.is_ok(), "our datagram is refused: {result:?}");
    }
    let expected: Vec<(u16, Vec<u8>)> = sent
        .iter()
        .filter(|(_, ifp, _)| !ifp.is_empty())
        .map(|(seq, ifp, _)| (*seq, ifp.to_vec()))
        .collect();
    assert_eq!(got, expected);
    for (_, _, datagram) in &sent {
        let result = receiver.receive(datagram, |seq, _| panic!("{seq} delivered twice"));
        assert!(result.is_ok());
    }
    assert_eq!(
        (receiver.recovered(), receiver.lost(), receiver.dropped()),
        (0, 0, sent.len() as u64)
    );
}

/// The SWML loader and the runtime validator: `parse_text` then `check::check`; a document that
/// passes must pass again in its normalised form, and the string form (`dial.swml` as text)
/// must behave like the object.
pub fn swml_document(data: &[u8]) {
    let text = text(data);
    let Ok(value) = swml::parse_text(&text) else {
        return;
    };
    let _ = swml::lint::lint(&value);
    if !value.is_object() {
        return;
    }
    match swml::check::check(value) {
        Ok(checked) => {
            if let Err(problems) = swml::check::check(checked.value.clone()) {
                panic!("the normalised document is refused: {problems:?}");
            }
            let doc = swml::Document::from_value(Value::String(text));
            assert!(doc.is_ok(), "{doc:?}");
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            let _ = swml::SwmlError::Invalid(problems).code();
        }
    }
}

/// The scope every expression target runs in: a little of each of the four scopes.
fn expr_scope() -> swml::expr::Scope {
    let obj = |v: Value| -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    };
    swml::expr::Scope {
        call: obj(json!({
            "call_id": "c0ffee00-0000-4000-8000-000000000001",
            "from": "+14155550123",
            "to": "sip:bob@example.com",
            "type": "sip",
            "headers": [{"name": "X-A", "value": "1"}],
        })),
        vars: obj(json!({
            "prompt_value": "1",
            "items": [1, 2.5, "three", null, {"k": [true]}],
            "nested": {"a": {"b-c": {"d": 4}}},
            "big": 1e300,
        })),
        envs: obj(json!({"ticket": "T-1"})),
        params: obj(json!({"a": "1", "b": 2})),
        ..Default::default()
    }
}

/// The expression engine: the first byte picks `check_syntax`, `evaluate`, `expand_str` or
/// `condition`; the rest is the expression or string.
pub fn swml_expr(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = text(rest);
    let scope = expr_scope();
    match mode % 4 {
        0 => {
            let _ = swml::expr::check_syntax(&text);
        }
        1 => {
            let _ = swml::expr::placeholder_bodies(&text);
            let _ = swml::expr::blank_placeholders(&text);
            let _ = scope.evaluate(&text);
        }
        2 => {
            let v = scope.expand_str(&text, &mut |_| {});
            if let Value::String(s) = v {
                assert!(s.len() <= swml::expr::MAX_EXPANDED_BYTES.max(text.len()));
            }
        }
        _ => {
            let _ = scope.condition(&Value::String(text));
        }
    }
    // One expression may overrun what was left by at most its own interrupt budget.
    assert!(scope.js.get() <= scope.js.limit() + swml::expr::JS_SCRIPT_BUDGET / 10);
}

/// The command validators: a request body (`{"command", "params"}`) through the API's
/// `validate_request`; a command it accepts must survive `params_json` → `from_json`
/// unchanged. The body's own command and params also go straight to
/// `CallCommand::from_json`.
pub fn call_command(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for reject_private in [true, false] {
        let options = api::ValidationOptions {
            reject_private_tap_addresses: reject_private,
            ..Default::default()
        };
        match api::validate_request(&body, options) {
            Ok(api::ValidatedRequest::Call { command, .. }) => {
                if command.kind() != control::command::CommandName::Update {
                    let again =
                        control::CallCommand::from_json(command.name(), command.params_json());
                    match again {
                        Ok(again) => assert_eq!(&again, command.as_ref()),
                        Err(e) => panic!("{} params do not round-trip: {e}", command.name()),
                    }
                }
            }
            Ok(api::ValidatedRequest::Dial(_)) => {}
            Err(api::Rejection::Invalid(errors)) => assert!(!errors.is_empty()),
            Err(api::Rejection::BadRequest) => {}
        }
    }
    let name = body.get("command").and_then(Value::as_str).unwrap_or("");
    let params = body.get("params").cloned().unwrap_or(Value::Null);
    if let Ok(cmd) = control::CallCommand::from_json(name, params) {
        let _ = cmd.params_json();
    }
    if let Some(name) = control::command::CommandName::parse(name) {
        assert_eq!(name.as_str(), body["command"]);
    }
}

/// One SIP datagram through the stack's parser and the adapter's handling of it.
pub fn sip_message(data: &[u8]) {
    sip::fuzz::message(data);
}

/// The outbound INVITE fields the call layer hands the adapter (URIs, display name, digest
/// username, extra header), separated by newlines.
pub fn sip_fields(data: &[u8]) {
    sip::fuzz::outbound_fields(&text(data));
}

/// Longest audio decoded per input: keeps each run short.
pub const AUDIO_MAX_MS: u64 = 3_000;

/// `audio::decode`: the first byte picks the file-name hint; the rest is the file. Decoded audio
/// never exceeds the length limit.
pub fn audio_decode(data: &[u8]) {
    let Some((&hint, file)) = data.split_first() else {
        return;
    };
    let hint = match hint % 6 {
        0 => None,
        1 => Some("wav"),
        2 => Some("mp3"),
        3 => Some("ogg"),
        4 => Some(".WAV"),
        _ => Some("x/../y"),
    };
    if let Ok(pcm) = audio::decode(file, hint, AUDIO_MAX_MS) {
        assert!(
            pcm.duration_ms() <= AUDIO_MAX_MS,
            "{} ms",
            pcm.duration_ms()
        );
        assert!(!pcm.samples.is_empty());
    }
}
