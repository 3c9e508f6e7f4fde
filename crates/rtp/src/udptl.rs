//! UDPTL, the transport of T.38 fax: each datagram carries one IFP packet (opaque here) and,
//! because UDP loses datagrams and a fax cannot afford holes, copies of the few IFPs before it.
//! Pure: the caller owns the socket and the T.38 engine.
//!
//! Wire form (ITU-T T.38 `UDPTLPacket`, ASN.1 PER aligned): `seq-number` (2 octets), the
//! primary IFP as an open type (length determinant + octets), then one octet whose top bit
//! chooses the error recovery: `0` secondary IFPs (a count, then each as an open type, most
//! recent first), `1` FEC info. FEC is validated and ignored: every gateway does redundancy,
//! and recovering from FEC would need its XOR scheme for a case we never negotiate.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;

/// Largest IFP packet we accept or send (a T.38 IFP is at most a few hundred octets).
pub const MAX_IFP_LEN: usize = 2048;
/// Most secondaries read from one datagram (more are ignored, not an error).
pub const MAX_SECONDARIES: usize = 16;

/// A datagram this far behind the expected one is a duplicate or arrived late.
const MAX_MISORDER: u16 = 100;
/// A jump forward up to this far is a loss; beyond it (or further behind than
/// [`MAX_MISORDER`]) it is a stray datagram or a restarted sender, told apart by the next one.
const MAX_DROPOUT: u16 = 3000;

/// Everything that can be wrong with a UDPTL datagram or an IFP to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UdptlError {
    /// A length or count announces more octets than the datagram has.
    #[error("UDPTL datagram truncated")]
    Truncated,
    /// PER fragmentation (lengths of 16K and more): no IFP is that long.
    #[error("fragmented length in a UDPTL datagram")]
    FragmentedLength,
    /// An IFP longer than [`MAX_IFP_LEN`].
    #[error("IFP packet of {0} octets, more than {MAX_IFP_LEN}")]
    TooLong(usize),
    /// More secondaries than [`MAX_SECONDARIES`] to encode: the receiver would drop the rest.
    #[error("{0} secondary IFP packets, more than {MAX_SECONDARIES}")]
    TooManySecondaries(usize),
    /// The IFP alone does not fit the far end's maximum datagram.
    #[error("UDPTL datagram of {len} octets, more than the maximum {max}")]
    DatagramTooLarge { len: usize, max: usize },
}

/// The secondary IFPs of a datagram, most recent first. A fixed array so decoding never
/// allocates; dereferences to a slice.
#[derive(Clone, Copy)]
pub struct Secondaries<'a> {
    items: [&'a [u8]; MAX_SECONDARIES],
    len: usize,
}

impl<'a> Secondaries<'a> {
    pub const fn new() -> Self {
        Self {
            items: [&[]; MAX_SECONDARIES],
            len: 0,
        }
    }

    /// Keeps `ifp` if there is room; past [`MAX_SECONDARIES`] the oldest are the ones left out.
    fn push(&mut self, ifp: &'a [u8]) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = ifp;
            self.len += 1;
        }
    }
}

impl Default for Secondaries<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Deref for Secondaries<'a> {
    type Target = [&'a [u8]];

    fn deref(&self) -> &Self::Target {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

impl PartialEq for Secondaries<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Secondaries<'_> {}

impl fmt::Debug for Secondaries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One decoded datagram, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdptlPacket<'a> {
    pub seq: u16,
    pub primary: &'a [u8],
    /// Earlier IFPs, most recent first (`secondaries[0]` is `seq - 1`); empty for FEC packets.
    pub secondaries: Secondaries<'a>,
    /// The datagram chose FEC rather than redundancy (its FEC data is not kept).
    pub fec: bool,
}

/// Reads PER fields off the front of a datagram; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn octet(&mut self) -> Result<u8, UdptlError> {
        let (&first, rest) = self.0.split_first().ok_or(UdptlError::Truncated)?;
        self.0 = rest;
        Ok(first)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], UdptlError> {
        if n > self.0.len() {
            return Err(UdptlError::Truncated);
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    /// A PER unconstrained length determinant (one or two octets; fragments refused).
    fn length(&mut self) -> Result<usize, UdptlError> {
        let first = self.octet()?;
        match first >> 6 {
            0 | 1 => Ok(usize::from(first)),
            2 => Ok((usize::from(first & 0x3F) << 8) | usize::from(self.octet()?)),
            _ => Err(UdptlError::FragmentedLength),
        }
    }

    /// An open type or octet string holding an IFP (or FEC data, which is as long).
    fn ifp(&mut self) -> Result<&'a [u8], UdptlError> {
        let len = self.length()?;
        if len > MAX_IFP_LEN {
            return Err(UdptlError::TooLong(len));
        }
        self.take(len)
    }
}

/// Decodes one datagram. Octets after a complete packet are ignored (some stacks pad).
/// Secondaries past [`MAX_SECONDARIES`] are checked but not kept.
pub fn decode(data: &[u8]) -> Result<UdptlPacket<'_>, UdptlError> {
    let mut r = Reader(data);
    let seq = u16::from_be_bytes([r.octet()?, r.octet()?]);
    let primary = r.ifp()?;
    let mut secondaries = Secondaries::new();
    let fec = r.octet()? & 0x80 != 0;
    if fec {
        // fec-npackets: an unconstrained INTEGER (length + octets); unused.
        let n = r.length()?;
        r.take(n)?;
        for _ in 0..r.length()? {
            r.ifp()?;
        }
    } else {
        // Each entry takes at least one octet, so the loop ends with the data.
        for _ in 0..r.length()? {
            secondaries.push(r.ifp()?);
        }
    }
    Ok(UdptlPacket {
        seq,
        primary,
        secondaries,
        fec,
    })
}

/// Octets a length determinant for `len` takes (`len` < 16384).
fn length_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        2
    }
}

fn put_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&[0x80 | (len >> 8) as u8, len as u8]);
    }
}

/// Appends one datagram (redundancy form) to `out`; on error `out` is left as it was.
pub fn encode(
    seq: u16,
    primary: &[u8],
    secondaries: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<(), UdptlError> {
    if secondaries.len() > MAX_SECONDARIES {
        return Err(UdptlError::TooManySecondaries(secondaries.len()));
    }
    if let Some(long) = std::iter::once(&primary)
        .chain(secondaries)
        .find(|ifp| ifp.len() > MAX_IFP_LEN)
    {
        return Err(UdptlError::TooLong(long.len()));
    }
    out.extend_from_slice(&seq.to_be_bytes());
    put_length(primary.len(), out);
    out.extend_from_slice(primary);
    out.push(0x00);
    put_length(secondaries.len(), out);
    for ifp in secondaries {
        put_length(ifp.len(), out);
        out.extend_from_slice(ifp);
    }
    Ok(())
}

/// Sends IFPs as UDPTL datagrams with redundancy: each datagram carries the new IFP and up to
/// `depth` earlier ones (most recent first), fewer when the datagram would exceed `max_datagram`
/// octets (the far end's `T38FaxMaxDatagram`).
#[derive(Debug, Clone)]
pub struct UdptlSender {
    seq: u16,
    depth: usize,
    max_datagram: usize,
    /// The last `depth` IFPs, most recent first; their buffers are reused.
    history: VecDeque<Vec<u8>>,
}

impl UdptlSender {
    /// `depth` is capped at [`MAX_SECONDARIES`], all a receiver reads.
    pub fn new(first_seq: u16, depth: usize, max_datagram: usize) -> Self {
        let depth = depth.min(MAX_SECONDARIES);
        Self {
            seq: first_seq,
            depth,
            max_datagram,
            history: VecDeque::with_capacity(depth),
        }
    }

    /// The sequence number of the next datagram.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }

    /// Encodes the next datagram for `ifp` into `out` (cleared first) and advances the sequence
    /// number. On error nothing is to be sent: the sequence number and history stay as they were.
    pub fn packet(&mut self, ifp: &[u8], out: &mut Vec<u8>) -> Result<(), UdptlError> {
        out.clear();
        if ifp.len() > MAX_IFP_LEN {
            return Err(UdptlError::TooLong(ifp.len()));
        }
        // seq, primary, choice octet, count (one octet: at most 16 secondaries).
        let mut len = 2 + length_len(ifp.len()) + ifp.len() + 2;
        if len > self.max_datagram {
            return Err(UdptlError::DatagramTooLarge {
                len,
                max: self.max_datagram,
            });
        }
        let mut secondaries: [&[u8]; MAX_SECONDARIES] = [&[]; MAX_SECONDARIES];
        let mut count = 0;
        // Secondaries are positional (seq-1, seq-2, …): the first that does not fit ends them.
        for (slot, old) in secondaries.iter_mut().zip(&self.history) {
            let more = length_len(old.len()) + old.len();
            if len + more > self.max_datagram {
                break;
            }
            len += more;
            *slot = old.as_slice();
            count += 1;
        }
        encode(self.seq, ifp, secondaries.get(..count).unwrap_or(&[]), out)?;
        self.seq = self.seq.wrapping_add(1);
        if self.depth > 0 {
            let mut buf = if self.history.len() >= self.depth {
                self.history.pop_back().unwrap_or_default()
            } else {
                Vec::new()
            };
            buf.clear();
            buf.extend_from_slice(ifp);
            self.history.push_front(buf);
        }
        Ok(())
    }
}

/// Turns received datagrams back into the IFP stream, in order: a datagram that follows a gap
/// first yields the missing IFPs it carries as secondaries (oldest first, each with its own
/// sequence number), then its primary. Duplicates and datagrams up to 100 behind are dropped.
///
/// The stream starts at the first datagram received (its secondaries are not delivered: what
/// came before is unknown). A jump of more than 3000 forward, or more than 100 back, is
/// dropped as a stray datagram unless the next such datagram follows it (`seq + 1`): then the
/// sender restarted, and the stream resynchronises there, the first datagram of the new run
/// recovered from the second's secondaries. Empty IFPs carry nothing and are not delivered.
#[derive(Debug, Clone, Default)]
pub struct UdptlReceiver {
    /// The sequence number that follows the last one delivered; `None` before the first.
    expected: Option<u16>,
    /// After an implausible jump: the sequence number that would confirm it.
    probation: Option<u16>,
    recovered: u64,
    lost: u64,
    dropped: u64,
}

impl UdptlReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns Err only for a malformed datagram (nothing delivered then).
    pub fn receive(
        &mut self,
        data: &[u8],
        mut deliver: impl FnMut(u16, &[u8]),
    ) -> Result<(), UdptlError> {
        let packet = decode(data)?;
        let seq = packet.seq;
        let Some(expected) = self.expected else {
            self.accept(&packet, 0, &mut deliver);
            return Ok(());
        };
        let ahead = seq.wrapping_sub(expected);
        if ahead <= MAX_DROPOUT {
            self.probation = None;
            self.accept(&packet, usize::from(ahead), &mut deliver);
        } else if expected.wrapping_sub(seq) <= MAX_MISORDER {
            self.dropped += 1;
        } else if self.probation == Some(seq) {
            self.probation = None;
            self.accept(&packet, 1, &mut deliver);
        } else {
            self.probation = Some(seq.wrapping_add(1));
            self.dropped += 1;
        }
        Ok(())
    }

    /// Delivers `packet` after the `missing` IFPs just before it, those its secondaries carry.
    fn accept(
        &mut self,
        packet: &UdptlPacket<'_>,
        missing: usize,
        deliver: &mut impl FnMut(u16, &[u8]),
    ) {
        let carried = missing.min(packet.secondaries.len());
        self.lost += (missing - carried) as u64;
        let recoverable = packet.secondaries.get(..carried).unwrap_or(&[]);
        for (back, ifp) in recoverable.iter().enumerate().rev() {
            if !ifp.is_empty() {
                deliver(packet.seq.wrapping_sub(back as u16 + 1), ifp);
                self.recovered += 1;
            }
        }
        if !packet.primary.is_empty() {
            deliver(packet.seq, packet.primary);
        }
        self.expected = Some(packet.seq.wrapping_add(1));
    }

    /// IFPs delivered from secondaries.
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// IFPs missing that no secondary carried.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Datagrams thrown away: duplicates, late ones, stray jumps.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn encoded(seq: u16, primary: &[u8], secondaries: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(seq, primary, secondaries, &mut out).unwrap();
        out
    }

    /// Feeds datagrams to `rx`, returning what it delivered.
    fn run(rx: &mut UdptlReceiver, datagrams: &[&Vec<u8>]) -> Vec<(u16, Vec<u8>)> {
        let mut got = Vec::new();
        for d in datagrams {
            rx.receive(d, |seq, ifp| got.push((seq, ifp.to_vec())))
                .unwrap();
        }
        got
    }

    /// The datagrams a depth-`depth` sender makes for IFPs `[i]` (i in `0..n`).
    fn stream(first_seq: u16, depth: usize, n: usize) -> Vec<Vec<u8>> {
        let mut tx = UdptlSender::new(first_seq, depth, 1400);
        (0..n)
            .map(|i| {
                let mut out = Vec::new();
                tx.packet(&[i as u8], &mut out).unwrap();
                out
            })
            .collect()
    }

    fn ifp(seq: u16, i: u8) -> (u16, Vec<u8>) {
        (seq, vec![i])
    }

    #[test]
    fn indicator_without_secondaries() {
        let bytes = hex("12 34 02 00 01 00 00");
        assert_eq!(encoded(0x1234, &[0x00, 0x01], &[]), bytes);
        let p = decode(&bytes).unwrap();
        assert_eq!(p.seq, 0x1234);
        assert_eq!(p.primary, [0x00, 0x01]);
        assert!(p.secondaries.is_empty());
        assert!(!p.fec);
    }

    #[test]
    fn two_secondaries() {
        let bytes = hex("01 02 03 c0 01 80 00 02 02 00 03 01 aa");
        assert_eq!(
            encoded(0x0102, &[0xC0, 0x01, 0x80], &[&[0x00, 0x03], &[0xAA]]),
            bytes
        );
        let p = decode(&bytes).unwrap();
        assert_eq!(p.seq, 0x0102);
        assert_eq!(p.primary, [0xC0, 0x01, 0x80]);
        assert_eq!(*p.secondaries, [&[0x00, 0x03][..], &[0xAA][..]]);
    }

    #[test]
    fn long_primary_uses_two_octet_length() {
        let primary = [0x5A; 200];
        let bytes = encoded(1, &primary, &[]);
        assert_eq!(bytes.len(), 2 + 2 + 200 + 2);
        assert_eq!(bytes[..4], [0x00, 0x01, 0x80, 0xC8]);
        assert_eq!(bytes[204..], [0x00, 0x00]);
        assert_eq!(decode(&bytes).unwrap().primary, primary);
        let largest = encoded(2, &[1; MAX_IFP_LEN], &[]);
        assert_eq!(largest[2..4], [0x88, 0x00]);
    }

    #[test]
    fn fec_form_is_validated_and_yields_the_primary() {
        // npackets = 3 (one octet), two FEC entries.
        let bytes = hex("00 07 02 00 01 80 01 03 02 02 aa bb 01 cc");
        let p = decode(&bytes).unwrap();
        assert_eq!((p.seq, p.primary, p.fec), (7, &[0x00, 0x01][..], true));
        assert!(p.secondaries.is_empty());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Err(UdptlError::Truncated), "{cut}");
        }
    }

    #[test]
    fn round_trips_across_length_forms() {
        for len in [0, 1, 2, 126, 127, 128, 129, 255, 256, 1000, MAX_IFP_LEN] {
            let primary: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let second = vec![0xEE; len / 2 + 127];
            let secondaries: [&[u8]; 3] = [&second, &primary, &[]];
            for count in 0..=3 {
                let bytes = encoded(len as u16, &primary, &secondaries[..count]);
                let p = decode(&bytes).unwrap();
                assert_eq!(p.seq, len as u16);
                assert_eq!(p.primary, primary);
                assert_eq!(*p.secondaries, secondaries[..count]);
            }
        }
        let mut many: Vec<&[u8]> = vec![&[1u8, 2][..]; MAX_SECONDARIES];
        many[15] = &[9];
        let bytes = encoded(9, &[], &many);
        let p = decode(&bytes).unwrap();
        assert_eq!(*p.secondaries, many[..]);
        assert!(p.primary.is_empty());
    }

    #[test]
    fn encode_refuses_what_decode_would_not_return() {
        let mut out = vec![0xFF];
        let long = [0; MAX_IFP_LEN + 1];
        assert_eq!(
            encode(1, &long, &[], &mut out),
            Err(UdptlError::TooLong(MAX_IFP_LEN + 1))
        );
        assert_eq!(
            encode(1, &[], &[&[], &long], &mut out),
            Err(UdptlError::TooLong(MAX_IFP_LEN + 1))
        );
        let many: Vec<&[u8]> = vec![&[1u8][..]; MAX_SECONDARIES + 1];
        assert_eq!(
            encode(1, &[], &many, &mut out),
            Err(UdptlError::TooManySecondaries(MAX_SECONDARIES + 1))
        );
        assert_eq!(out, [0xFF]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let datagrams = [
            hex("12 34 02 00 01 00 00"),
            hex("01 02 03 c0 01 80 00 02 02 00 03 01 aa"),
            encoded(5, &[7; 200], &[&[8; 130], &[], &[9; 3]]),
        ];
        for bytes in &datagrams {
            for cut in 0..bytes.len() {
                assert_eq!(decode(&bytes[..cut]), Err(UdptlError::Truncated), "{cut}");
            }
        }
    }

    #[test]
    fn trailing_octets_are_ignored() {
        let bytes = hex("12 34 02 00 01 00 01 01 aa");
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0, 0, 0xFF, 0xC0]);
        assert_eq!(decode(&padded), decode(&bytes));
        assert!(decode(&bytes).is_ok());
    }

    #[test]
    fn malformed_lengths_and_counts() {
        // Fragmented primary length, and fragmented count of secondaries.
        assert_eq!(
            decode(&hex("00 01 c1 00")),
            Err(UdptlError::FragmentedLength)
        );
        assert_eq!(
            decode(&hex("00 01 01 aa 00 c0 01 aa")),
            Err(UdptlError::FragmentedLength)
        );
        // Five secondaries announced, one present.
        assert_eq!(
            decode(&hex("00 01 01 aa 00 05 01 bb")),
            Err(UdptlError::Truncated)
        );
        // A count no datagram could hold.
        assert_eq!(
            decode(&hex("00 01 01 aa 00 bf ff")),
            Err(UdptlError::Truncated)
        );
        // A primary longer than any IFP, with the octets present.
        let mut long = hex("00 01 88 01");
        long.extend_from_slice(&[0; MAX_IFP_LEN + 1]);
        long.extend_from_slice(&[0, 0]);
        assert_eq!(decode(&long), Err(UdptlError::TooLong(MAX_IFP_LEN + 1)));
        // No error-recovery octet.
        assert_eq!(decode(&hex("00 01 01 aa")), Err(UdptlError::Truncated));
    }

    #[test]
    fn extra_secondaries_are_checked_but_not_kept() {
        let mut bytes = hex("00 20 01 aa 00 14");
        for i in 0..20u8 {
            bytes.extend_from_slice(&[1, i]);
        }
        let p = decode(&bytes).unwrap();
        assert_eq!(p.secondaries.len(), MAX_SECONDARIES);
        assert_eq!(p.secondaries[15], [15]);
        assert_eq!(
            decode(&bytes[..bytes.len() - 1]),
            Err(UdptlError::Truncated)
        );
    }

    #[test]
    fn sender_keeps_the_last_depth_ifps() {
        let mut tx = UdptlSender::new(100, 3, 1400);
        let mut out = Vec::new();
        for i in 0..6u8 {
            tx.packet(&[i; 5], &mut out).unwrap();
            let p = decode(&out).unwrap();
            assert_eq!(p.seq, 100 + u16::from(i));
            assert_eq!(p.primary, [i; 5]);
            let want: Vec<[u8; 5]> = (0..i).rev().take(3).map(|j| [j; 5]).collect();
            let got: Vec<&[u8]> = p.secondaries.to_vec();
            assert_eq!(got, want.iter().map(|w| &w[..]).collect::<Vec<_>>(), "{i}");
        }
        assert_eq!(tx.next_seq(), 106);
    }

    #[test]
    fn sender_drops_the_oldest_secondaries_to_fit() {
        // Header 2 + primary 1+100 + choice 1 + count 1 = 105; each secondary 1+100.
        for (max, fits) in [(105, 0), (205, 0), (206, 1), (306, 1), (307, 2), (408, 3)] {
            let mut tx = UdptlSender::new(0, 3, max);
            let mut out = Vec::new();
            for i in 0..4u8 {
                tx.packet(&[i; 100], &mut out).unwrap();
                assert!(out.len() <= max);
            }
            let p = decode(&out).unwrap();
            assert_eq!(p.secondaries.len(), fits, "{max}");
            for (back, s) in p.secondaries.iter().enumerate() {
                assert_eq!(*s, [2 - back as u8; 100]);
            }
        }
        // A small secondary after a big one is not sent alone: secondaries are positional.
        let mut tx = UdptlSender::new(0, 3, 60);
        let mut out = Vec::new();
        for ifp in [&[1u8; 3][..], &[2; 50], &[3; 3], &[4; 3]] {
            tx.packet(ifp, &mut out).unwrap();
        }
        assert_eq!(*decode(&out).unwrap().secondaries, [&[3u8; 3][..]]);
    }

    #[test]
    fn sender_refuses_an_ifp_that_cannot_fit() {
        let mut tx = UdptlSender::new(7, 3, 50);
        let mut out = vec![1, 2, 3];
        assert_eq!(
            tx.packet(&[0; 47], &mut out),
            Err(UdptlError::DatagramTooLarge { len: 52, max: 50 })
        );
        assert!(out.is_empty());
        assert_eq!(
            tx.packet(&[0; MAX_IFP_LEN + 1], &mut out),
            Err(UdptlError::TooLong(MAX_IFP_LEN + 1))
        );
        tx.packet(&[0; 45], &mut out).unwrap();
        assert_eq!(out.len(), 50);
        let p = decode(&out).unwrap();
        assert_eq!((p.seq, p.secondaries.len()), (7, 0));
    }

    #[test]
    fn sender_sequence_wraps_and_depth_is_capped() {
        let mut tx = UdptlSender::new(65534, 100, 1400);
        let mut out = Vec::new();
        let mut seqs = Vec::new();
        for i in 0..20u8 {
            tx.packet(&[i], &mut out).unwrap();
            seqs.push(decode(&out).unwrap().seq);
        }
        assert_eq!(seqs[..4], [65534, 65535, 0, 1]);
        assert_eq!(decode(&out).unwrap().secondaries.len(), MAX_SECONDARIES);
        let mut none = UdptlSender::new(0, 0, 1400);
        none.packet(&[1], &mut out).unwrap();
        none.packet(&[2], &mut out).unwrap();
        assert_eq!(out, [0, 1, 1, 2, 0, 0]);
    }

    #[test]
    fn receiver_delivers_in_order() {
        let d = stream(10, 3, 4);
        let mut rx = UdptlReceiver::new();
        let got = run(&mut rx, &[&d[0], &d[1], &d[2], &d[3]]);
        assert_eq!(got, [ifp(10, 0), ifp(11, 1), ifp(12, 2), ifp(13, 3)]);
        assert_eq!((rx.recovered(), rx.lost(), rx.dropped()), (0, 0, 0));
    }

    #[test]
    fn receiver_recovers_a_lost_datagram() {
        let d = stream(10, 3, 4);
        let mut rx = UdptlReceiver::new();
        let got = run(&mut rx, &[&d[0], &d[2], &d[3]]);
        assert_eq!(got, [ifp(10, 0), ifp(11, 1), ifp(12, 2), ifp(13, 3)]);
        assert_eq!((rx.recovered(), rx.lost(), rx.dropped()), (1, 0, 0));
    }

    #[test]
    fn receiver_counts_a_gap_longer_than_the_redundancy() {
        let d = stream(0, 2, 8);
        let mut rx = UdptlReceiver::new();
        // 1..=5 lost: 4 and 5 ride in 6, 1..=3 are gone.
        let got = run(&mut rx, &[&d[0], &d[6], &d[7]]);
        assert_eq!(got, [ifp(0, 0), ifp(4, 4), ifp(5, 5), ifp(6, 6), ifp(7, 7)]);
        assert_eq!((rx.recovered(), rx.lost(), rx.dropped()), (2, 3, 0));
    }

    #[test]
    fn receiver_drops_duplicates_and_late_datagrams() {
        let d = stream(10, 3, 5);
        let mut rx = UdptlReceiver::new();
        // 1 arrives after 2 (which carried it), 3 twice, 0 again at the end.
        let got = run(&mut rx, &[&d[0], &d[2], &d[1], &d[3], &d[3], &d[4], &d[0]]);
        assert_eq!(
            got,
            [ifp(10, 0), ifp(11, 1), ifp(12, 2), ifp(13, 3), ifp(14, 4)]
        );
        assert_eq!((rx.recovered(), rx.lost(), rx.dropped()), (1, 0, 3));
    }

    #[test]
    fn receiver_wraps_around() {
        let d = stream(65534, 3, 6);
        let mut rx = UdptlReceiver::new();
        let got = run(&mut rx, &[&d[0], &d[1], &d[2], &d[3], &d[4], &d[5]]);
        let seqs: Vec<u16> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [65534, 65535, 0, 1, 2, 3]);
        // A gap across the wrap is recovered with the right sequence numbers.
        let mut rx = UdptlReceiver::new();
        let got = run(&mut rx, &[&d[0], &d[3], &d[2], &d[4]]);
        assert_eq!(
            got,
            [
                ifp(65534, 0),
                ifp(65535, 1),
                ifp(0, 2),
                ifp(1, 3),
                ifp(2, 4)
            ]
        );
        assert_eq!((rx.recovered(), rx.lost(), rx.dropped()), (2, 0, 1));
    }

    #[test]
    fn receiver_ignores_a_stray_datagram() {
        let d = stream(500, 3, 3);
        let stray = encoded(20_000, &[0xEE], &[&[0xDD]]);
        let mut rx = UdptlReceiver::new();
        let got = run(&mut rx, &[&d[0], &stray, &d[1], &d[2]]);
        assert_eq!(got, [ifp(500, 0), ifp(501, 1), ifp(502, 2)]);
        assert_eq!((rx.recovered(), rx.lost(), rx.dropped()), (0, 0, 1));
    }

    #[test]
    fn receiver_resynchronises_on_a_restarted_sender() {
        for restart_at in [0u16, 40_000] {
            let old = stream(1000, 3, 2);
            let new = stream(restart_at, 3, 3);
            let mut rx = UdptlReceiver::new();
            let got = run(&mut rx, &[&old[0], &old[1], &new[0], &new[1], &new[2]]);
            let r = restart_at;
            assert_eq!(
                got,
                [
                    ifp(1000, 0),
                    ifp(1001, 1),
                    ifp(r, 0),
                    ifp(r + 1, 1),
                    ifp(r + 2, 2)
                ]
            );
            assert_eq!((rx.recovered(), rx.lost(), rx.dropped()), (1, 0, 1));
        }
    }

    #[test]
    fn receiver_skips_empty_ifps_and_fec_gaps_are_lost() {
        let mut rx = UdptlReceiver::new();
        let first = encoded(1, &[], &[]);
        let fec = hex("00 04 01 44 80 01 02 00");
        let got = run(&mut rx, &[&first, &fec]);
        assert_eq!(got, [(4, vec![0x44])]);
        assert_eq!((rx.recovered(), rx.lost(), rx.dropped()), (0, 2, 0));
        let again = encoded(5, &[0x55], &[&[0x44]]);
        assert_eq!(run(&mut rx, &[&again]), [(5, vec![0x55])]);
    }

    #[test]
    fn receiver_rejects_malformed_datagrams_without_effect() {
        let d = stream(0, 3, 3);
        let mut rx = UdptlReceiver::new();
        run(&mut rx, &[&d[0]]);
        let mut called = false;
        assert_eq!(
            rx.receive(&d[2][..d[2].len() - 1], |_, _| called = true),
            Err(UdptlError::Truncated)
        );
        assert!(!called);
        assert_eq!(run(&mut rx, &[&d[1]]), [ifp(1, 1)]);
    }

    /// Depth-3 redundancy under 10 % pseudo-random loss (plus one forced run of 6): every IFP
    /// arrives once, in order, except the oldest of each run of more than 3 losses.
    #[test]
    fn loss_simulation() {
        const N: usize = 2000;
        const FIRST: u16 = 64_900;
        let ifps: Vec<Vec<u8>> = (0..N)
            .map(|i| {
                let mut v = (i as u16).to_be_bytes().to_vec();
                v.resize(2 + (i * 37) % 300, i as u8);
                v
            })
            .collect();
        let mut tx = UdptlSender::new(FIRST, 3, 1400);
        let mut rx = UdptlReceiver::new();
        let mut lcg: u32 = 0x1234_5678;
        let mut arrived = vec![false; N];
        let mut got = Vec::new();
        let mut out = Vec::new();
        for (i, ifp) in ifps.iter().enumerate() {
            tx.packet(ifp, &mut out).unwrap();
            lcg = lcg.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            if (lcg >> 16).is_multiple_of(10) || (1000..1006).contains(&i) {
                continue;
            }
            arrived[i] = true;
            rx.receive(&out, |seq, ifp| got.push((seq, ifp.to_vec())))
                .unwrap();
        }
        let first = arrived.iter().position(|&a| a).unwrap();
        let last = arrived.iter().rposition(|&a| a).unwrap();
        let mut expected = Vec::new();
        let mut lost_for_good = 0;
        for (i, ifp) in ifps.iter().enumerate().take(last + 1).skip(first) {
            let next_arrival = (i..N).find(|&j| arrived[j]).unwrap();
            if next_arrival - i <= 3 {
                expected.push((FIRST.wrapping_add(i as u16), ifp.clone()));
            } else {
                lost_for_good += 1;
            }
        }
        assert_eq!(got, expected);
        let missing = (first..=last).filter(|&i| !arrived[i]).count() as u64;
        let arrivals = arrived.iter().filter(|&&a| a).count() as u64;
        assert_eq!(rx.lost(), lost_for_good);
        assert_eq!(rx.recovered() + rx.lost(), missing);
        assert_eq!(arrivals + rx.recovered(), got.len() as u64);
        assert_eq!(rx.dropped(), 0);
        assert!(rx.lost() >= 3 && rx.recovered() > 150, "{rx:?}");
    }
}
