//! A sans-IO decoder of Server-Sent Events, the `text/event-stream` framing of streamed chat
//! completions. Bytes go in as the transport delivers them, split anywhere (inside a line,
//! inside a UTF-8 character, between the CR and LF of a line end); whole events come out.
//!
//! Follows the WHATWG parsing rules for the fields we need (`data`, `event`, comments,
//! `\n`/`\r\n`/`\r` line ends, one leading BOM) with two deliberate departures: one event's
//! size is capped, and [`SseDecoder::finish`] dispatches a trailing event that the stream did
//! not close with a blank line (servers that end on `data: [DONE]\n` do exist).

/// Default cap on one event: far above any chat-completion chunk, low enough to bound memory.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name; `None` for the default type (`message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event (its lines so far) grew past the cap; it was dropped, and decoding resumed at
    /// the next blank line.
    #[error("a server-sent event exceeds {limit} bytes")]
    EventTooLarge { limit: usize },
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug)]
pub struct SseDecoder {
    max_event_bytes: usize,
    /// The current line, without its line end.
    line: Vec<u8>,
    /// Whether the current line has any byte (kept apart from `line` because a line being
    /// discarded is not stored, yet must not count as blank).
    line_has_bytes: bool,
    /// Data lines of the current event, each followed by `\n` (the last one removed at
    /// dispatch), as the spec's data buffer.
    data: String,
    event: Option<String>,
    /// The last byte seen was a CR: an LF right after it (maybe in the next push) belongs to
    /// the same line end.
    after_cr: bool,
    /// The current event overflowed: skip lines until a blank one.
    discarding: bool,
    /// How many bytes of a leading BOM have matched; `None` once the stream start is past.
    bom_matched: Option<usize>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            max_event_bytes,
            line: Vec::new(),
            line_has_bytes: false,
            data: String::new(),
            event: None,
            after_cr: false,
            discarding: false,
            bom_matched: Some(0),
        }
    }

    /// Decodes `bytes`, calling `out` for every event they complete. All the bytes are always
    /// consumed: an `Err` means at least one event among them was dropped for its size, and
    /// the events before and after it were still delivered.
    pub fn push(&mut self, bytes: &[u8], out: &mut impl FnMut(SseEvent)) -> Result<(), SseError> {
        let mut result = Ok(());
        let mut bytes = self.skip_bom(bytes, &mut result);
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.append(bytes, &mut result);
                    break;
                }
                Some(i) => {
                    self.append(&bytes[..i], &mut result);
                    let cr = bytes[i] == b'\r';
                    bytes = &bytes[i + 1..];
                    if cr {
                        match bytes.first() {
                            Some(b'\n') => bytes = &bytes[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                    self.end_line(out, &mut result);
                }
            }
        }
        result
    }

    /// The end of the stream: a last line without line end is taken as a line, and an event
    /// not closed by a blank line is dispatched. The decoder is then ready for a new stream.
    pub fn finish(&mut self, out: &mut impl FnMut(SseEvent)) {
        let mut ignored = Ok(());
        if let Some(matched) = self.bom_matched.take() {
            // A stream that was only the start of a BOM: those bytes were text.
            self.append(&BOM[..matched], &mut ignored);
        }
        if self.line_has_bytes {
            self.end_line(out, &mut ignored);
        }
        if !self.discarding {
            self.dispatch(out);
        }
        *self = SseDecoder::new(self.max_event_bytes);
    }

    /// Strips one BOM at the very start of the stream, however it is split across pushes.
    fn skip_bom<'a>(&mut self, bytes: &'a [u8], result: &mut Result<(), SseError>) -> &'a [u8] {
        let Some(matched) = self.bom_matched else {
            return bytes;
        };
        let want = &BOM[matched..];
        let n = want.len().min(bytes.len());
        if bytes[..n] == want[..n] {
            if n == want.len() {
                self.bom_matched = None;
            } else {
                self.bom_matched = Some(matched + n);
            }
            return &bytes[n..];
        }
        // Not a BOM after all: what matched of it is ordinary text.
        self.bom_matched = None;
        self.append(&BOM[..matched], result);
        bytes
    }

    /// Adds bytes to the current line, unless the event has grown past the cap.
    fn append(&mut self, bytes: &[u8], result: &mut Result<(), SseError>) {
        if bytes.is_empty() {
            return;
        }
        self.line_has_bytes = true;
        if self.discarding {
            return;
        }
        if self.line.len() + bytes.len() + self.data.len() > self.max_event_bytes {
            self.overflow(result);
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn overflow(&mut self, result: &mut Result<(), SseError>) {
        self.discarding = true;
        self.line.clear();
        self.data.clear();
        self.event = None;
        *result = Err(SseError::EventTooLarge {
            limit: self.max_event_bytes,
        });
    }

    fn end_line(&mut self, out: &mut impl FnMut(SseEvent), result: &mut Result<(), SseError>) {
        let blank = !std::mem::take(&mut self.line_has_bytes);
        if self.discarding {
            if blank {
                self.discarding = false;
            }
            return;
        }
        if blank {
            self.dispatch(out);
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        self.field(&line, result);
        line.clear();
        self.line = line;
    }

    /// One non-blank line: a comment or a `field: value`.
    fn field(&mut self, line: &[u8], result: &mut Result<(), SseError>) {
        if line.first() == Some(&b':') {
            return;
        }
        // Bytes are kept until the line end, so a character split by the transport is whole
        // here; anything still invalid becomes U+FFFD.
        let text = String::from_utf8_lossy(line);
        let (name, value) = match text.find(':') {
            Some(i) => {
                let value = &text[i + 1..];
                (&text[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&text[..], ""),
        };
        match name {
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    self.overflow(result);
                    return;
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => {
                self.event = (!value.is_empty()).then(|| value.to_owned());
            }
            // `id`, `retry` and unknown fields: nothing a chat completion needs.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut impl FnMut(SseEvent)) {
        let event = self.event.take();
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        out(SseEvent { event, data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_pieces(pieces: &[&[u8]], max: usize) -> (Vec<SseEvent>, usize) {
        let mut d = SseDecoder::new(max);
        let mut events = Vec::new();
        let mut errors = 0;
        for p in pieces {
            if d.push(p, &mut |e| events.push(e)).is_err() {
                errors += 1;
            }
        }
        d.finish(&mut |e| events.push(e));
        (events, errors)
    }

    fn decode(bytes: &[u8]) -> Vec<SseEvent> {
        decode_pieces(&[bytes], DEFAULT_MAX_EVENT_BYTES).0
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    /// Line ends of every kind, a comment, an event name, multi-line data, characters of
    /// two to four bytes, and a last event without blank line.
    const SAMPLE: &[u8] = "\u{feff}: keep-alive\r\n\
        data: {\"a\":\"h\u{e9}llo \u{1f44b}\"}\r\n\r\n\
        event: update\rdata:first\rdata:  second\r\r\
        data: \u{20ac}uro\n\n\
        id: 7\nretry: 100\n\n\
        data: [DONE]"
        .as_bytes();

    fn sample_events() -> Vec<SseEvent> {
        vec![
            ev(None, "{\"a\":\"h\u{e9}llo \u{1f44b}\"}"),
            ev(Some("update"), "first\n second"),
            ev(None, "\u{20ac}uro"),
            ev(None, "[DONE]"),
        ]
    }

    #[test]
    fn sample_decodes_whole() {
        assert_eq!(decode(SAMPLE), sample_events());
    }

    #[test]
    fn every_split_into_two_decodes_the_same() {
        for i in 0..=SAMPLE.len() {
            let (events, errors) =
                decode_pieces(&[&SAMPLE[..i], &SAMPLE[i..]], DEFAULT_MAX_EVENT_BYTES);
            assert_eq!(events, sample_events(), "split at {i}");
            assert_eq!(errors, 0);
        }
    }

    #[test]
    fn every_split_into_three_decodes_the_same() {
        for i in 0..=SAMPLE.len() {
            for j in i..=SAMPLE.len() {
                let pieces = [&SAMPLE[..i], &SAMPLE[i..j], &SAMPLE[j..]];
                let (events, _) = decode_pieces(&pieces, DEFAULT_MAX_EVENT_BYTES);
                assert_eq!(events, sample_events(), "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_decodes_the_same() {
        let pieces: Vec<&[u8]> = SAMPLE.chunks(1).collect();
        assert_eq!(
            decode_pieces(&pieces, DEFAULT_MAX_EVENT_BYTES).0,
            sample_events()
        );
    }

    #[test]
    fn crlf_cr_and_lf_line_ends_are_equivalent() {
        let lf = decode(b"data: a\ndata: b\n\ndata: c\n\n");
        let crlf = decode(b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n");
        let cr = decode(b"data: a\rdata: b\r\rdata: c\r\r");
        assert_eq!(lf, vec![ev(None, "a\nb"), ev(None, "c")]);
        assert_eq!(crlf, lf);
        assert_eq!(cr, lf);
    }

    #[test]
    fn cr_then_lf_in_the_next_push_is_one_line_end() {
        // Were the LF taken as a second line end, it would be a blank line dispatching "a"
        // alone.
        let (events, _) = decode_pieces(&[b"data: a\r", b"\ndata: b\n\n"], 1024);
        assert_eq!(events, vec![ev(None, "a\nb")]);
    }

    #[test]
    fn comments_are_ignored_and_do_not_dispatch() {
        let events = decode(b": ping\n\n:\n\ndata: x\n: inside\n\n");
        assert_eq!(events, vec![ev(None, "x")]);
    }

    #[test]
    fn multi_line_data_is_joined_and_only_one_space_stripped() {
        let events = decode(b"data:a\ndata:  b\ndata\ndata: \n\n");
        assert_eq!(events, vec![ev(None, "a\n b\n\n")]);
    }

    #[test]
    fn empty_data_line_dispatches_an_empty_event() {
        assert_eq!(decode(b"data:\n\n"), vec![ev(None, "")]);
    }

    #[test]
    fn event_name_applies_to_one_event_only() {
        let events = decode(b"event: error\ndata: x\n\ndata: y\n\nevent: lone\n\ndata: z\n\n");
        assert_eq!(
            events,
            vec![ev(Some("error"), "x"), ev(None, "y"), ev(None, "z")]
        );
    }

    #[test]
    fn partial_bom_is_text() {
        assert_eq!(decode(b"\xEF\xBBdata: x\n\n").len(), 0);
        let (events, _) = decode_pieces(&[b"\xEF", b"\xBB\xBF", b"data: x\n\n"], 1024);
        assert_eq!(events, vec![ev(None, "x")]);
    }

    #[test]
    fn oversize_event_is_reported_and_decoding_recovers() {
        let mut input = b"data: ok1\n\ndata: ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend_from_slice(b"\ndata: more\n\ndata: ok2\n\n");
        for piece in [input.len(), 7, 1] {
            let pieces: Vec<&[u8]> = input.chunks(piece).collect();
            let (events, errors) = decode_pieces(&pieces, 64);
            assert_eq!(events, vec![ev(None, "ok1"), ev(None, "ok2")], "{piece}");
            assert!(errors >= 1);
        }
    }

    #[test]
    fn many_data_lines_are_capped_too() {
        let mut input = b"data: a\n".repeat(100);
        input.extend_from_slice(b"\ndata: after\n\n");
        let mut d = SseDecoder::new(64);
        let mut events = Vec::new();
        let r = d.push(&input, &mut |e| events.push(e));
        assert_eq!(r, Err(SseError::EventTooLarge { limit: 64 }));
        assert_eq!(events, vec![ev(None, "after")]);
    }

    #[test]
    fn oversize_comment_line_is_capped() {
        let mut input = b":".to_vec();
        input.extend(std::iter::repeat_n(b'c', 200));
        input.extend_from_slice(b"\n\ndata: x\n\n");
        let (events, errors) = decode_pieces(&[&input], 64);
        assert_eq!(events, vec![ev(None, "x")]);
        assert_eq!(errors, 1);
    }

    #[test]
    fn finish_dispatches_a_trailing_event_and_resets() {
        let mut d = SseDecoder::default();
        let mut events = Vec::new();
        d.push(b"data: [DONE]\n", &mut |e| events.push(e)).unwrap();
        assert!(events.is_empty());
        d.finish(&mut |e| events.push(e));
        assert_eq!(events, vec![ev(None, "[DONE]")]);
        d.push(b"data: again", &mut |e| events.push(e)).unwrap();
        d.finish(&mut |e| events.push(e));
        assert_eq!(events.len(), 2);
        assert_eq!(events[1], ev(None, "again"));
    }

    #[test]
    fn finish_drops_an_event_being_discarded() {
        let mut d = SseDecoder::new(8);
        let mut events = Vec::new();
        assert!(d
            .push(b"data: 0123456789", &mut |e| events.push(e))
            .is_err());
        d.finish(&mut |e| events.push(e));
        assert!(events.is_empty());
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(decode(b"data: a\xFFb\n\n"), vec![ev(None, "a\u{fffd}b")]);
    }
}
