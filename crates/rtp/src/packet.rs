//! RTP header (RFC 3550 §5.1) and telephone-event payload (RFC 4733 §2.3).

use crate::RtpError;

/// Length of the fixed RTP header with no CSRCs and no extension.
pub const RTP_HEADER_LEN: usize = 12;

/// A parsed RTP packet borrowing its payload (padding, CSRCs and extension removed).
#[derive(Debug, Clone, PartialEq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses an RTP packet. Only version 2 is accepted; payload types 72..=76 are RTCP
/// multiplexed on the same port and come back as [`RtpError::Rtcp`].
pub fn parse(data: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let len = data.len();
    let truncated = |needed: usize| RtpError::Truncated { needed, len };
    if len < RTP_HEADER_LEN {
        return Err(truncated(RTP_HEADER_LEN));
    }
    let b0 = data[0];
    let b1 = data[1];
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let payload_type = b1 & 0x7f;
    if (72..=76).contains(&payload_type) {
        return Err(RtpError::Rtcp(payload_type));
    }
    let has_padding = b0 & 0x20 != 0;
    let has_extension = b0 & 0x10 != 0;
    let csrc_count = usize::from(b0 & 0x0f);
    let marker = b1 & 0x80 != 0;
    let sequence = be16(data, 2).ok_or_else(|| truncated(RTP_HEADER_LEN))?;
    let timestamp = be32(data, 4).ok_or_else(|| truncated(RTP_HEADER_LEN))?;
    let ssrc = be32(data, 8).ok_or_else(|| truncated(RTP_HEADER_LEN))?;

    let mut offset = RTP_HEADER_LEN + 4 * csrc_count;
    if len < offset {
        return Err(truncated(offset));
    }
    if has_extension {
        // 16-bit profile-defined field, then the length in 32-bit words (excluding this word).
        let words = be16(data, offset + 2).ok_or_else(|| truncated(offset + 4))?;
        offset += 4 + 4 * usize::from(words);
        if len < offset {
            return Err(truncated(offset));
        }
    }
    let mut end = len;
    if has_padding {
        let available = len - offset;
        // The last octet counts the padding octets, itself included.
        let padding = usize::from(data[len - 1]);
        if padding == 0 || padding > available {
            return Err(RtpError::BadPadding { padding, available });
        }
        end = len - padding;
    }
    let payload = data.get(offset..end).ok_or_else(|| truncated(offset))?;
    Ok(RtpPacket {
        marker,
        payload_type,
        sequence,
        timestamp,
        ssrc,
        payload,
    })
}

/// Appends a 12-byte RTP header (version 2, no padding, no extension, no CSRCs) and the
/// payload to `out`. `payload_type` is masked to 7 bits.
pub fn write(
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    out.reserve(RTP_HEADER_LEN + payload.len());
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (payload_type & 0x7f));
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An RFC 4733 §2.3 named-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-9, 10 = `*`, 11 = `#`, 12-15 = A-D for DTMF).
    pub event: u8,
    /// The E bit: this is the end of the event.
    pub end: bool,
    /// Power level as a positive number of −dBm0, 0..=63.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units, from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 bytes of `payload` (RFC 4733 allows several events in one packet
    /// by redundancy; only the first block is read). The reserved bit is ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, RtpError> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(TelephoneEvent {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3f,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(RtpError::EventTruncated(payload.len())),
        }
    }

    /// Appends the 4-byte payload to `out` (volume masked to 6 bits, reserved bit zero).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// The 4-byte payload.
    pub fn to_bytes(&self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d0,
            d1,
        ]
    }
}

/// Maps a DTMF character to its RFC 4733 event code: `0`-`9` → 0-9, `*` → 10, `#` → 11,
/// `A`-`D` (either case) → 12-15.
pub fn digit_to_event(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_parse_round_trips() {
        let mut out = Vec::new();
        write(
            true,
            111,
            65535,
            0xdead_beef,
            0x0102_0304,
            b"hello",
            &mut out,
        );
        assert_eq!(out.len(), 12 + 5);
        assert_eq!(out[0], 0x80);
        let p = parse(&out).unwrap();
        assert_eq!(
            p,
            RtpPacket {
                marker: true,
                payload_type: 111,
                sequence: 65535,
                timestamp: 0xdead_beef,
                ssrc: 0x0102_0304,
                payload: b"hello",
            }
        );
        out.clear();
        write(false, 0, 1, 2, 3, &[], &mut out);
        let p = parse(&out).unwrap();
        assert!(!p.marker);
        assert_eq!(p.payload_type, 0);
        assert!(p.payload.is_empty());
    }

    #[test]
    fn write_appends() {
        let mut out = vec![9, 9];
        write(false, 8, 7, 6, 5, &[1], &mut out);
        assert_eq!(out.len(), 2 + 13);
        assert_eq!(&out[..2], &[9, 9]);
        assert_eq!(parse(&out[2..]).unwrap().sequence, 7);
    }

    fn header(b0: u8, b1: u8) -> Vec<u8> {
        let mut v = vec![b0, b1, 0x12, 0x34, 0, 0, 0, 160, 0xaa, 0xbb, 0xcc, 0xdd];
        v.truncate(12);
        v
    }

    #[test]
    fn parses_csrc_extension_and_padding() {
        // V=2, P=1, X=1, CC=2.
        let mut d = header(0x80 | 0x20 | 0x10 | 2, 0x80 | 8);
        d.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // two CSRCs
        d.extend_from_slice(&[0xbe, 0xde, 0, 2]); // extension: 2 words
        d.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        d.extend_from_slice(b"abc");
        d.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let p = parse(&d).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.sequence, 0x1234);
        assert_eq!(p.timestamp, 160);
        assert_eq!(p.ssrc, 0xaabb_ccdd);
        assert_eq!(p.payload, b"abc");
    }

    #[test]
    fn csrc_only_and_extension_only() {
        let mut d = header(0x80 | 1, 0);
        d.extend_from_slice(&[0, 0, 0, 9, b'x']);
        assert_eq!(parse(&d).unwrap().payload, b"x");

        let mut d = header(0x90, 0);
        d.extend_from_slice(&[0x10, 0x00, 0, 0, b'y']);
        assert_eq!(parse(&d).unwrap().payload, b"y");
    }

    #[test]
    fn padding_can_consume_whole_payload() {
        let mut d = header(0xa0, 0);
        d.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(parse(&d).unwrap().payload, b"");
    }

    #[test]
    fn malformed_inputs_error() {
        assert!(matches!(parse(&[]), Err(RtpError::Truncated { .. })));
        assert!(matches!(
            parse(&[0x80; 11]),
            Err(RtpError::Truncated { .. })
        ));
        let v1 = header(0x40, 0);
        assert_eq!(parse(&v1), Err(RtpError::BadVersion(1)));
        let v0 = header(0x00, 0);
        assert_eq!(parse(&v0), Err(RtpError::BadVersion(0)));
        // Padding longer than what follows the header.
        let mut d = header(0xa0, 0);
        d.extend_from_slice(&[1, 2, 9]);
        assert!(matches!(
            parse(&d),
            Err(RtpError::BadPadding { padding: 9, .. })
        ));
        // Padding count of zero.
        let mut d = header(0xa0, 0);
        d.extend_from_slice(&[1, 0]);
        assert!(matches!(
            parse(&d),
            Err(RtpError::BadPadding { padding: 0, .. })
        ));
        // Padding bit with nothing after the header: the count byte is part of the header.
        let d = header(0xa0, 0);
        assert!(matches!(parse(&d), Err(RtpError::BadPadding { .. })));
        // CSRC count beyond the data.
        let d = header(0x8f, 0);
        assert!(matches!(
            parse(&d),
            Err(RtpError::Truncated { needed: 72, .. })
        ));
        // Extension header truncated, and extension length beyond the data.
        let mut d = header(0x90, 0);
        d.extend_from_slice(&[0xbe, 0xde]);
        assert!(matches!(parse(&d), Err(RtpError::Truncated { .. })));
        let mut d = header(0x90, 0);
        d.extend_from_slice(&[0xbe, 0xde, 0xff, 0xff]);
        assert!(matches!(parse(&d), Err(RtpError::Truncated { .. })));
    }

    #[test]
    fn rtcp_payload_types_are_rejected() {
        // RTCP SR (200) and RR (201), BYE (203), APP (204): marker bit + PT 72..=76.
        for pt in 200u8..=204 {
            let d = header(0x80, pt);
            assert_eq!(parse(&d), Err(RtpError::Rtcp(pt & 0x7f)));
        }
        for pt in 72u8..=76 {
            assert_eq!(parse(&header(0x80, pt)), Err(RtpError::Rtcp(pt)));
        }
        assert!(parse(&header(0x80, 71)).is_ok());
        assert!(parse(&header(0x80, 77)).is_ok());
    }

    /// xorshift64*: deterministic pseudo-random bytes without a dependency.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn random_and_truncated_bytes_never_panic() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            let len = (rng(&mut seed) % 80) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
            if len > 0 && rng(&mut seed) & 1 == 0 {
                d[0] = (d[0] & 0x3f) | 0x80; // mostly version 2, to reach deeper paths
            }
            if let Ok(p) = parse(&d) {
                assert!(p.payload.len() <= d.len());
            }
            let _ = TelephoneEvent::parse(&d);
        }
        // Every prefix of a full-featured packet.
        let mut d = header(0x80 | 0x20 | 0x10 | 1, 0);
        d.extend_from_slice(&[0, 0, 0, 1, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 7, 7, 2]);
        for n in 0..=d.len() {
            let _ = parse(&d[..n]);
        }
        assert!(parse(&d).is_ok());
    }

    #[test]
    fn telephone_event_round_trip() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        let mut out = Vec::new();
        ev.write(&mut out);
        assert_eq!(out, vec![11, 0x80 | 10, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&out), Ok(ev));
        // Reserved bit ignored; volume masked.
        assert_eq!(
            TelephoneEvent::parse(&[1, 0x40 | 0x3f, 0, 160]),
            Ok(TelephoneEvent {
                event: 1,
                end: false,
                volume: 63,
                duration: 160
            })
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(RtpError::EventTruncated(3))
        );
    }

    #[test]
    fn digits_map_to_events() {
        for (i, c) in "0123456789".chars().enumerate() {
            assert_eq!(digit_to_event(c), Some(i as u8));
        }
        assert_eq!(digit_to_event('*'), Some(10));
        assert_eq!(digit_to_event('#'), Some(11));
        for (i, c) in "ABCD".chars().enumerate() {
            assert_eq!(digit_to_event(c), Some(12 + i as u8));
            assert_eq!(digit_to_event(c.to_ascii_lowercase()), Some(12 + i as u8));
        }
        for c in ['E', 'e', 'w', 'W', ' ', '+', 'é', '٣'] {
            assert_eq!(digit_to_event(c), None);
        }
    }
}
