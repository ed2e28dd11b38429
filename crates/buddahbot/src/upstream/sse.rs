//! An incremental reader of `text/event-stream` bytes: network reads go in as they arrive,
//! complete events' `data` payloads come out as borrowed slices.
//!
//! # Design
//! The model API streams a few hundred bytes per token, and one network read often holds many
//! events (or half of one). [`SseScanner`] keeps the bytes it was fed in one buffer and hands
//! out each event's data as a slice of that buffer, so an event costs no allocation and no
//! copy beyond the one into the buffer; only an event whose data spans several `data:` lines
//! (which the OpenAI protocol never sends, but the format allows) is joined into a second
//! buffer. An event is handed out only once its terminating blank line has arrived; until
//! then the scanner keeps its position at the event's start, so a read may end anywhere,
//! between `\r` and `\n` included.
//!
//! Follows the WHATWG event-stream rules this client needs: lines end in `\r\n`, `\n` or
//! `\r`; a line starting with `:` is a comment; `data` lines of one event join with `\n`; a
//! field name without a colon has an empty value; one space after the colon is dropped; an
//! event without data is not dispatched; an incomplete event at the end of the stream is
//! dropped. `event:` and `id:` are read past (the OpenAI protocol does not use them).

/// Bytes consumed before the buffer is compacted on the next feed.
const COMPACT_AFTER: usize = 16 * 1024;

/// Reads events out of a byte stream fed in pieces.
#[derive(Debug, Default)]
pub struct SseScanner {
    buf: Vec<u8>,
    /// Start of the first event not handed out yet.
    pos: usize,
    /// The data of a multi-line event, joined.
    joined: Vec<u8>,
}

/// Where an event's data is: one line of the buffer, or joined from several.
#[derive(Debug, Clone, Copy)]
enum Data {
    Line(usize, usize),
    Joined,
}

/// One line of the buffer: its content range and where the next line starts.
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

impl SseScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the network.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= COMPACT_AFTER {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The data of the next complete event, or `None` until more bytes arrive.
    pub fn next_event(&mut self) -> Option<&[u8]> {
        let (data, next) = self.scan()?;
        self.pos = next;
        Some(self.slice(data))
    }

    /// The data of the next complete event, left in place for [`next_event`](Self::next_event).
    pub fn peek_event(&mut self) -> Option<&[u8]> {
        let (data, _) = self.scan()?;
        Some(self.slice(data))
    }

    fn slice(&self, data: Data) -> &[u8] {
        match data {
            Data::Line(start, end) => &self.buf[start..end],
            Data::Joined => &self.joined,
        }
    }

    /// Finds the next complete event with data (events without data are consumed on the
    /// way): where its data is, and where the event after it starts.
    fn scan(&mut self) -> Option<(Data, usize)> {
        let mut at = self.pos;
        let mut data: Option<Data> = None;
        loop {
            let line = self.line_at(at)?;
            at = line.next;
            if line.start == line.end {
                // A blank line ends the event.
                match data {
                    None => {
                        self.pos = at;
                        continue;
                    }
                    Some(data) => return Some((data, at)),
                }
            }
            let content = &self.buf[line.start..line.end];
            if content[0] == b':' {
                continue;
            }
            let (name, value_start) = match content.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let skip = usize::from(content.get(colon + 1) == Some(&b' '));
                    (&content[..colon], line.start + colon + 1 + skip)
                }
                None => (content, line.end),
            };
            if name != b"data" {
                continue;
            }
            data = Some(match data {
                None => Data::Line(value_start, line.end),
                Some(Data::Line(start, end)) => {
                    self.joined.clear();
                    self.joined.extend_from_slice(&self.buf[start..end]);
                    self.joined.push(b'\n');
                    self.joined
                        .extend_from_slice(&self.buf[value_start..line.end]);
                    Data::Joined
                }
                Some(Data::Joined) => {
                    self.joined.push(b'\n');
                    self.joined
                        .extend_from_slice(&self.buf[value_start..line.end]);
                    Data::Joined
                }
            });
        }
    }

    /// The line starting at `at`, if its end has arrived. A `\r` as the last byte could be
    /// the first half of `\r\n`, so it does not end a line until the next byte is known.
    fn line_at(&self, at: usize) -> Option<Line> {
        let rest = self.buf.get(at..)?;
        let end = memchr::memchr2(b'\n', b'\r', rest)?;
        let next = match rest[end] {
            b'\r' => match rest.get(end + 1) {
                Some(b'\n') => end + 2,
                Some(_) => end + 1,
                None => return None,
            },
            _ => end + 1,
        };
        Some(Line {
            start: at,
            end: at + end,
            next: at + next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(scanner: &mut SseScanner) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(data) = scanner.next_event() {
            out.push(String::from_utf8(data.to_vec()).unwrap());
        }
        out
    }

    /// Every way of splitting `input` in two reads gives the same events as one read.
    fn assert_split_anywhere(input: &str, want: &[&str]) {
        let bytes = input.as_bytes();
        for cut in 0..=bytes.len() {
            let mut scanner = SseScanner::new();
            scanner.feed(&bytes[..cut]);
            let mut got = events(&mut scanner);
            scanner.feed(&bytes[cut..]);
            got.extend(events(&mut scanner));
            assert_eq!(got, want, "split at byte {cut} of {input:?}");
        }
        // And byte by byte.
        let mut scanner = SseScanner::new();
        let mut got = Vec::new();
        for b in bytes {
            scanner.feed(std::slice::from_ref(b));
            got.extend(events(&mut scanner));
        }
        assert_eq!(got, want, "byte by byte: {input:?}");
    }

    #[test]
    fn openai_chunks_come_out_whole_however_the_reads_split_them() {
        let input = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n",
        );
        assert_split_anywhere(
            input,
            &[
                "{\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}",
                "{\"choices\":[{\"delta\":{\"content\":\" there\"}}]}",
                "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}",
                "[DONE]",
            ],
        );
    }

    #[test]
    fn crlf_and_cr_line_ends_comments_and_other_fields_are_understood() {
        let input = concat!(
            ": keep-alive\r\n\r\n",
            "event: message\r\nid: 7\r\ndata: {\"a\":1}\r\n\r\n",
            "data:{\"b\":2}\r\r",
            ":comment\ndata: x\n\n",
        );
        assert_split_anywhere(input, &["{\"a\":1}", "{\"b\":2}", "x"]);
    }

    #[test]
    fn data_lines_of_one_event_join_with_newlines() {
        assert_split_anywhere(
            "data: {\ndata:  \"a\": 1\ndata\ndata: }\n\ndata: next\n\n",
            &["{\n \"a\": 1\n\n}", "next"],
        );
    }

    #[test]
    fn an_unfinished_event_waits_and_the_buffer_is_reused() {
        let mut scanner = SseScanner::new();
        scanner.feed(b"data: {\"x\":");
        assert!(scanner.next_event().is_none());
        scanner.feed(b"1}\n");
        assert!(scanner.next_event().is_none());
        scanner.feed(b"\n");
        assert_eq!(scanner.next_event(), Some(&b"{\"x\":1}"[..]));
        // Consumed bytes are dropped when new ones come.
        scanner.feed(b"data: y\n\n");
        assert_eq!(scanner.buf.len(), 9);
        assert_eq!(events(&mut scanner), ["y"]);
    }

    #[test]
    fn a_peeked_event_is_handed_out_again() {
        let mut scanner = SseScanner::new();
        scanner.feed(b": hi\n\ndata: a\ndata: b\n\ndata: c\n\n");
        assert_eq!(scanner.peek_event(), Some(&b"a\nb"[..]));
        assert_eq!(scanner.peek_event(), Some(&b"a\nb"[..]));
        assert_eq!(events(&mut scanner), ["a\nb", "c"]);
        assert_eq!(scanner.peek_event(), None);
    }

    #[test]
    fn a_large_stream_compacts_its_buffer() {
        let mut scanner = SseScanner::new();
        let event = format!("data: {}\n\n", "z".repeat(1000));
        for _ in 0..100 {
            // Half an event stays behind each time, so the buffer is never simply cleared.
            scanner.feed(event.as_bytes());
            scanner.feed(&event.as_bytes()[..10]);
            assert_eq!(events(&mut scanner).len(), 1);
            scanner.feed(&event.as_bytes()[10..]);
            assert_eq!(events(&mut scanner).len(), 1);
        }
        assert!(scanner.buf.len() < 2 * COMPACT_AFTER);
    }
}
