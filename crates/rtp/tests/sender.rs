use rtp::{parse, RtpError, RtpSender, SenderConfig, SenderEvent, TelephoneEvent};

const AUDIO: &[u8] = &[0xff; 160];

fn sender(seq: u16, ts: u32, step: u32, event_pt: Option<u8>) -> RtpSender {
    RtpSender::new(SenderConfig {
        ssrc: 0x1122_3344,
        initial_sequence: seq,
        initial_timestamp: ts,
        audio_payload_type: 0,
        event_payload_type: event_pt,
        timestamp_step: step,
    })
}

#[derive(Debug, Clone, PartialEq)]
struct Sent {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn tick(s: &mut RtpSender) -> Sent {
    let mut out = vec![1, 2, 3]; // must be cleared
    s.next_packet(AUDIO, &mut out);
    let p = parse(&out).unwrap();
    Sent {
        marker: p.marker,
        pt: p.payload_type,
        seq: p.sequence,
        ts: p.timestamp,
        ssrc: p.ssrc,
        payload: p.payload.to_vec(),
    }
}

fn ticks(s: &mut RtpSender, n: usize) -> Vec<Sent> {
    (0..n).map(|_| tick(s)).collect()
}

#[test]
fn audio_sequence_timestamp_marker() {
    let mut s = sender(65534, u32::MAX - 159, 160, Some(101));
    assert_eq!(s.sequence(), 65534);
    assert_eq!(s.timestamp(), u32::MAX - 159);
    assert_eq!(s.ssrc(), 0x1122_3344);
    let p = ticks(&mut s, 4);
    assert_eq!(
        p.iter().map(|p| p.seq).collect::<Vec<_>>(),
        vec![65534, 65535, 0, 1]
    );
    assert_eq!(
        p.iter().map(|p| p.ts).collect::<Vec<_>>(),
        vec![u32::MAX - 159, 0, 160, 320]
    );
    assert_eq!(
        p.iter().map(|p| p.marker).collect::<Vec<_>>(),
        vec![true, false, false, false]
    );
    assert!(p
        .iter()
        .all(|p| p.pt == 0 && p.payload == AUDIO && p.ssrc == 0x1122_3344));
    assert_eq!(s.sequence(), 2);
    assert_eq!(s.timestamp(), 480);
    assert!(!s.sending_digits());
    assert_eq!(s.poll_event(), None);
}

fn event(p: &Sent) -> TelephoneEvent {
    assert_eq!(p.pt, 101, "{p:?}");
    TelephoneEvent::parse(&p.payload).unwrap()
}

#[test]
fn one_digit_is_five_packets_plus_two_end_retransmissions() {
    let mut s = sender(100, 1000, 160, Some(101));
    ticks(&mut s, 2);
    s.queue_digits("1").unwrap();
    assert!(s.sending_digits());
    let p = ticks(&mut s, 10);
    let start_ts = 1000 + 2 * 160;
    for (i, pkt) in p[..7].iter().enumerate() {
        let ev = event(pkt);
        assert_eq!(ev.event, 1);
        assert_eq!(ev.volume, 10);
        assert_eq!(
            pkt.ts, start_ts,
            "all packets of one event share its timestamp"
        );
        assert_eq!(pkt.marker, i == 0);
        let n = (i as u16 + 1).min(5);
        assert_eq!(ev.duration, 160 * n);
        assert_eq!(ev.end, i >= 4);
    }
    assert_eq!(p.iter().filter(|p| p.pt == 101).count(), 7);
    // Then audio, at the timestamp the clock reached.
    for (i, pkt) in p[7..].iter().enumerate() {
        assert_eq!(pkt.pt, 0);
        assert!(!pkt.marker);
        assert_eq!(pkt.ts, start_ts + 160 * (7 + i as u32));
    }
    // Sequence numbers are contiguous across the event.
    for (i, pkt) in p.iter().enumerate() {
        assert_eq!(pkt.seq, 102 + i as u16);
    }
    assert!(!s.sending_digits());
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));
    assert_eq!(s.poll_event(), None);
    ticks(&mut s, 30);
    assert_eq!(s.poll_event(), None);
}

#[test]
fn digits_done_after_final_retransmission() {
    let mut s = sender(0, 0, 160, Some(101));
    s.queue_digits("#").unwrap();
    for _ in 0..6 {
        tick(&mut s);
        assert_eq!(s.poll_event(), None);
        assert!(s.sending_digits());
    }
    tick(&mut s);
    assert!(!s.sending_digits());
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));
}

#[test]
fn first_packet_of_stream_is_an_event() {
    let mut s = sender(7, 0, 160, Some(101));
    s.queue_digits("5").unwrap();
    let p = ticks(&mut s, 8);
    assert!(p[0].marker);
    assert!(p[1..].iter().all(|p| !p.marker));
    assert_eq!(event(&p[0]).event, 5);
    assert_eq!(p[7].pt, 0);
}

#[test]
fn two_digits_have_a_60ms_gap() {
    let mut s = sender(0, 0, 160, Some(101));
    s.queue_digits("1*").unwrap();
    let p = ticks(&mut s, 20);
    let kinds: String = p
        .iter()
        .map(|p| if p.pt == 101 { 'e' } else { 'a' })
        .collect();
    assert_eq!(kinds, "eeeeeeeaaaeeeeeeeaaa");
    assert_eq!(event(&p[10]).event, 10);
    assert!(p[10].marker);
    assert_eq!(p[10].ts, 10 * 160);
    assert_eq!(event(&p[10]).duration, 160);
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));
    assert_eq!(s.poll_event(), None);
}

#[test]
fn pauses_send_audio() {
    let mut s = sender(0, 0, 160, Some(101));
    s.queue_digits("w").unwrap();
    let p = ticks(&mut s, 25);
    assert!(p.iter().all(|p| p.pt == 0 && p.payload == AUDIO));
    assert!(!s.sending_digits());
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));

    s.queue_digits("W2").unwrap();
    let p = ticks(&mut s, 57);
    assert!(p[..50].iter().all(|p| p.pt == 0));
    assert!(p[50..].iter().all(|p| p.pt == 101));
    assert_eq!(event(&p[50]).event, 2);
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));
}

#[test]
fn digit_then_pause_then_digit() {
    let mut s = sender(0, 0, 160, Some(101));
    s.queue_digits("1w2").unwrap();
    let p = ticks(&mut s, 7 + 25 + 7);
    assert!(p[..7].iter().all(|p| p.pt == 101));
    assert!(p[7..32].iter().all(|p| p.pt == 0));
    assert!(p[32..].iter().all(|p| p.pt == 101));
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));
}

#[test]
fn opus_step_and_event_durations() {
    let mut s = sender(0, 0, 960, Some(102));
    s.queue_digits("9").unwrap();
    let p = ticks(&mut s, 8);
    let durations: Vec<u16> = p[..7]
        .iter()
        .map(|p| TelephoneEvent::parse(&p.payload).unwrap().duration)
        .collect();
    assert_eq!(durations, vec![960, 1920, 2880, 3840, 4800, 4800, 4800]);
    assert_eq!(p[7].ts, 7 * 960);
}

#[test]
fn invalid_digits_queue_nothing() {
    let mut s = sender(0, 0, 160, Some(101));
    assert_eq!(
        s.queue_digits("12x3"),
        Err(RtpError::InvalidDigit {
            ch: 'x',
            position: 2
        })
    );
    assert!(!s.sending_digits());
    assert!(s.queue_digits("1 2").is_err());
    assert!(s.queue_digits("1é").is_err());
    assert!(!s.sending_digits());
    let p = ticks(&mut s, 10);
    assert!(p.iter().all(|p| p.pt == 0));
    assert_eq!(s.poll_event(), None);
}

#[test]
fn no_event_payload_type_errors() {
    let mut s = sender(0, 0, 160, None);
    assert_eq!(s.queue_digits("1"), Err(RtpError::NoEventPayloadType));
    assert!(!s.sending_digits());
}

#[test]
fn all_digit_characters_accepted() {
    let mut s = sender(0, 0, 160, Some(101));
    s.queue_digits("0123456789*#ABCDabcd").unwrap();
    let mut events = Vec::new();
    for _ in 0..(20 * 10 + 5) {
        let p = tick(&mut s);
        if p.pt == 101 && p.marker {
            events.push(event(&p).event);
        }
    }
    assert_eq!(
        events,
        vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 12, 13, 14, 15]
    );
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));
}

#[test]
fn queueing_more_while_sending_appends_and_reports_once() {
    let mut s = sender(0, 0, 160, Some(101));
    s.queue_digits("1").unwrap();
    ticks(&mut s, 3);
    s.queue_digits("2").unwrap();
    let p = ticks(&mut s, 4 + 3 + 7);
    assert_eq!(p.iter().filter(|p| p.pt == 101 && p.marker).count(), 1);
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));
    assert_eq!(s.poll_event(), None);
}

#[test]
fn empty_string_reports_done_when_idle() {
    let mut s = sender(0, 0, 160, Some(101));
    s.queue_digits("").unwrap();
    assert_eq!(s.poll_event(), Some(SenderEvent::DigitsDone));
    assert_eq!(s.poll_event(), None);
}

#[test]
fn sequence_wraps_across_digits() {
    let mut s = sender(65533, 0, 160, Some(101));
    s.queue_digits("1").unwrap();
    let p = ticks(&mut s, 9);
    let seqs: Vec<u16> = p.iter().map(|p| p.seq).collect();
    assert_eq!(seqs, vec![65533, 65534, 65535, 0, 1, 2, 3, 4, 5]);
    for (i, pkt) in p.iter().enumerate().skip(7) {
        assert_eq!(pkt.ts, 160 * i as u32);
    }
}
