//! Reads a `chat.completion.chunk` event into a [`ChunkView`]: the fields the turn uses,
//! borrowed from the event's text, everything else skipped without being decoded.
//!
//! # Why not serde
//! The turn reads one of these per token, and reading them was the largest piece of the
//! server's work per streamed turn. Through serde a 240-byte chunk of the mock costs ~5,300
//! instructions (callgrind; ~6,700 before its strings were borrowed and its UTF-8 checked
//! once): each of its ~15 keys is decoded, matched by a generated visitor and its value
//! walked by `ignore_value`. Here it costs ~4,100: a key is compared as the bytes it is, an
//! ignored value is stepped over by finding its end, a string's end is looked for eight
//! bytes at a time and a string is copied only when it holds escapes. The result is the
//! `ChunkView` serde gives (tests/properties.rs compares the two on generated and on damaged
//! chunks), with the same refusals for the fields we read: `null` where a list, an object or
//! a number is required, a number out of range, an invalid escape or a lone surrogate,
//! trailing characters. It is not a validator of what it skips: a skipped value need only be
//! well nested, as the OpenAI wire always is.

use std::{borrow::Cow, ops::Range};

use super::wire::{
    ChoiceView, ChunkView, CompletionTokensDetails, DeltaView, ErrorView, FunctionDelta,
    ToolCallDelta, WireUsage,
};

/// Why an event is not a chunk we can read: where reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a chat.completion.chunk we can read (at byte {at})")]
pub struct ChunkError {
    at: usize,
}

/// The bytes that end a run of plain characters in a string: a quote, a backslash, a control
/// character.
static STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stops[b] = true;
        b += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

/// The high bit of each byte of `word` (little-endian) that may be a quote, a backslash or a
/// control character; the lowest one set is exact.
fn stop_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte below `n` (all of them, for a byte below 0x80) borrows in `x - n`.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    (below(quote, 1) | below(backslash, 1) | below(word, 0x20)) & HIGHS
}

/// Where the run of plain string characters from `at` ends: at a quote, a backslash, a
/// control character (invalid in a string) or the end of `bytes`. Eight bytes at a time while
/// eight are left (strings here are short: a vectorised search costs more to set up), then
/// byte by byte.
fn plain_run(bytes: &[u8], mut at: usize) -> usize {
    while let Some(word) = bytes.get(at..at + 8) {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        let stops = stop_bytes(u64::from_le_bytes(eight));
        if stops != 0 {
            // The lowest flagged byte is always a real stop (a false flag can only come from
            // a borrow out of a real one below it).
            return at + (stops.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|&b| STOPS[usize::from(b)])
        .unwrap_or(rest.len())
}

/// Nesting a skipped value may have (serde_json's own limit).
const MAX_DEPTH: usize = 128;

/// Reads one chunk event's JSON.
///
/// # Errors
/// [`ChunkError`] when the text is not JSON, or a field we read has the wrong type.
pub fn read(text: &str) -> Result<ChunkView<'_>, ChunkError> {
    let mut reader = Reader { text, at: 0 };
    let view = reader.chunk()?;
    reader.space();
    if reader.at == text.len() {
        Ok(view)
    } else {
        Err(reader.error())
    }
}

/// Reads the chunks of one stream, the way [`read`] does, but learns their shape: a model's
/// chunks are all alike (the same id, time and model, one choice, one text field) but for the
/// text. When a chunk has the bytes of the last one read in full before and after that text,
/// and the text between them is plain (no quote, escape or control character), it reads as
/// that one did with the new text: the reader, going left to right, would take the same steps
/// over the same bytes and end the string at the same closing quote. That costs two
/// comparisons and a scan of the text instead of reading ~15 keys. tests/properties.rs checks
/// it against [`read`] on chunks with every kind of text put in, and on damaged ones.
#[derive(Debug, Default)]
pub struct Shape {
    learned: Option<Learned>,
}

/// The last chunk read in full, when it is one the next may follow.
#[derive(Debug)]
struct Learned {
    text: String,
    /// Where its text field's value lies (between its quotes).
    start: usize,
    end: usize,
    field: TextField,
    /// Where its id and model lie, before the text.
    id: Option<Range<usize>>,
    model: Option<Range<usize>>,
    created: Option<i64>,
    usage: Option<WireUsage>,
}

/// The delta's field that carries the text.
#[derive(Debug, Clone, Copy)]
enum TextField {
    Content,
    ReasoningContent,
    Reasoning,
}

impl Shape {
    /// [`read`]: the same answer for every text.
    ///
    /// # Errors
    /// As [`read`].
    pub fn read<'a>(&mut self, text: &'a str) -> Result<ChunkView<'a>, ChunkError> {
        if let Some(view) = self.learned.as_ref().and_then(|l| l.follow(text)) {
            return Ok(view);
        }
        let view = read(text)?;
        let spare = self.learned.take().map(|l| l.text).unwrap_or_default();
        self.learned = Learned::of(text, &view, spare);
        Ok(view)
    }
}

/// Where `part`, a slice of `text`, lies in it.
fn span(text: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= text.len()).then_some(start..end)
}

/// Where a field read without a copy lies: `Some(None)` when it is absent, `None` when it
/// was copied (it held escapes), which leaves no shape to learn.
fn place(text: &str, field: Option<&Cow<'_, str>>) -> Option<Option<Range<usize>>> {
    match field {
        None => Some(None),
        Some(Cow::Borrowed(part)) => span(text, part).map(Some),
        Some(Cow::Owned(_)) => None,
    }
}

impl Learned {
    /// The shape of `view`, read from `text`, if the next chunks may follow it: one choice
    /// whose delta has one text field (not copied) and nothing else, no finish reason, no
    /// error, an id and model (if any) before the text. `spare` is reused for the copy.
    fn of(text: &str, view: &ChunkView<'_>, mut spare: String) -> Option<Self> {
        let [choice] = view.choices.as_slice() else {
            return None;
        };
        let delta = &choice.delta;
        if view.error.is_some()
            || choice.finish_reason.is_some()
            || delta.role.is_some()
            || delta.tool_calls.is_some()
        {
            return None;
        }
        let (field, value) = match (&delta.content, &delta.reasoning_content, &delta.reasoning) {
            (Some(value), None, None) => (TextField::Content, value),
            (None, Some(value), None) => (TextField::ReasoningContent, value),
            (None, None, Some(value)) => (TextField::Reasoning, value),
            _ => return None,
        };
        let value = place(text, Some(value))??;
        let id = place(text, view.id.as_ref())?;
        let model = place(text, view.model.as_ref())?;
        // The bytes around the value are its quotes: what the next chunk shares with this one
        // ends with the opening quote and starts again with the closing one.
        let before =
            |field: &Option<Range<usize>>| field.as_ref().is_none_or(|f| f.end < value.start);
        if value.start == 0
            || text.as_bytes().get(value.end) != Some(&b'"')
            || !before(&id)
            || !before(&model)
        {
            return None;
        }
        spare.clear();
        spare.push_str(text);
        Some(Self {
            text: spare,
            start: value.start,
            end: value.end,
            field,
            id,
            model,
            created: view.created,
            usage: view.usage,
        })
    }

    /// `text` read as a chunk of this shape, if it is one.
    fn follow<'a>(&self, text: &'a str) -> Option<ChunkView<'a>> {
        let (old, new) = (self.text.as_bytes(), text.as_bytes());
        let end = new.len().checked_sub(old.len() - self.end)?;
        if end < self.start
            || new.get(..self.start) != old.get(..self.start)
            || new.get(end..) != old.get(self.end..)
            || plain_run(new, self.start) != end
        {
            return None;
        }
        let value = Some(Cow::Borrowed(text.get(self.start..end)?));
        let mut delta = DeltaView::default();
        match self.field {
            TextField::Content => delta.content = value,
            TextField::ReasoningContent => delta.reasoning_content = value,
            TextField::Reasoning => delta.reasoning = value,
        }
        let at = |field: &Option<Range<usize>>| match field {
            Some(range) => text.get(range.clone()).map(|s| Some(Cow::Borrowed(s))),
            None => Some(None),
        };
        Some(ChunkView {
            id: at(&self.id)?,
            created: self.created,
            model: at(&self.model)?,
            choices: vec![ChoiceView {
                delta,
                finish_reason: None,
            }],
            usage: self.usage,
            error: None,
        })
    }
}

type Read<T> = Result<T, ChunkError>;

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self) -> ChunkError {
        ChunkError { at: self.at }
    }

    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.byte(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The next byte that is not white space, left in place.
    fn next(&mut self) -> Option<u8> {
        self.space();
        self.byte()
    }

    fn expect(&mut self, byte: u8) -> Read<()> {
        if self.next() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Takes `null` if it is next.
    fn null(&mut self) -> Read<bool> {
        if self.next() != Some(b'n') {
            return Ok(false);
        }
        self.literal("null")?;
        Ok(true)
    }

    fn literal(&mut self, word: &str) -> Read<()> {
        if self.text.as_bytes().get(self.at..self.at + word.len()) == Some(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// An object, handing each key to `field`, which reads (or skips) its value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &[u8]) -> Read<()>) -> Read<()> {
        self.expect(b'{')?;
        if self.next() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            if self.next() != Some(b'"') {
                return Err(self.error());
            }
            let key = self.string()?;
            self.expect(b':')?;
            field(self, key.as_bytes())?;
            match self.next() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error()),
            }
        }
    }

    /// An object, or `null` (then `None`).
    fn nullable_object<T: Default>(
        &mut self,
        mut field: impl FnMut(&mut Self, &mut T, &[u8]) -> Read<()>,
    ) -> Read<Option<T>> {
        if self.null()? {
            return Ok(None);
        }
        let mut value = T::default();
        self.object(|reader, key| field(reader, &mut value, key))?;
        Ok(Some(value))
    }

    /// An array, `item` reading each element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Read<()>) -> Read<()> {
        self.expect(b'[')?;
        if self.next() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.next() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error()),
            }
        }
    }

    /// A string, borrowed unless it holds escapes.
    fn string(&mut self) -> Read<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.at;
        let end = plain_run(self.text.as_bytes(), start);
        self.at = end;
        match self.byte() {
            Some(b'"') => {
                self.at += 1;
                self.text
                    .get(start..end)
                    .map(Cow::Borrowed)
                    .ok_or_else(|| self.error())
            }
            Some(b'\\') => {
                let mut owned = String::with_capacity(end - start + 16);
                owned.push_str(self.text.get(start..end).ok_or_else(|| self.error())?);
                self.unescape_rest(&mut owned)?;
                Ok(Cow::Owned(owned))
            }
            _ => Err(self.error()),
        }
    }

    /// The rest of a string from an escape on, appended to `out`.
    fn unescape_rest(&mut self, out: &mut String) -> Read<()> {
        loop {
            // A backslash.
            self.at += 1;
            let escaped = self.byte().ok_or_else(|| self.error())?;
            self.at += 1;
            out.push(match escaped {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode_escape()?,
                _ => return Err(self.error()),
            });
            let end = plain_run(self.text.as_bytes(), self.at);
            out.push_str(self.text.get(self.at..end).ok_or_else(|| self.error())?);
            self.at = end;
            match self.byte() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {}
                _ => return Err(self.error()),
            }
        }
    }

    /// The character of a `\u` escape (its `\u` read), a surrogate pair taken whole.
    fn unicode_escape(&mut self) -> Read<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                self.literal("\\u")?;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.error());
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error()),
            _ => u32::from(first),
        };
        char::from_u32(code).ok_or_else(|| self.error())
    }

    fn hex4(&mut self) -> Read<u16> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error())?;
        self.at += 4;
        u16::from_str_radix(digits, 16).map_err(|_| self.error())
    }

    /// A string or `null`.
    fn nullable_string(&mut self) -> Read<Option<Cow<'a, str>>> {
        if self.null()? {
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// An integer (no fraction, no exponent) that fits `T`.
    fn integer<T: TryFrom<i128>>(&mut self) -> Read<T> {
        self.space();
        let start = self.at;
        let negative = self.byte() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits = self.at;
        let mut value: u64 = 0;
        let mut fits = true;
        while let Some(digit) = self.byte().filter(u8::is_ascii_digit) {
            let next = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')));
            fits &= next.is_some();
            value = next.unwrap_or(value);
            self.at += 1;
        }
        let count = self.at - digits;
        let well_formed = count > 0
            && !(count > 1 && self.text.as_bytes().get(digits) == Some(&b'0'))
            && !matches!(self.byte(), Some(b'.' | b'e' | b'E'));
        if !well_formed || !fits {
            return Err(ChunkError { at: start });
        }
        let value = if negative {
            -i128::from(value)
        } else {
            i128::from(value)
        };
        T::try_from(value).map_err(|_| ChunkError { at: start })
    }

    /// An integer or `null`.
    fn nullable_integer<T: TryFrom<i128>>(&mut self) -> Read<Option<T>> {
        if self.null()? {
            return Ok(None);
        }
        self.integer().map(Some)
    }

    /// Steps over any value.
    fn skip(&mut self, depth: usize) -> Read<()> {
        if depth > MAX_DEPTH {
            return Err(self.error());
        }
        match self.next() {
            Some(b'"') => {
                // Only its end matters: an escaped character is stepped over with its
                // backslash.
                self.at += 1;
                loop {
                    self.at = plain_run(self.text.as_bytes(), self.at);
                    match self.byte() {
                        Some(b'"') => {
                            self.at += 1;
                            return Ok(());
                        }
                        Some(b'\\') => self.at += 2,
                        _ => return Err(self.error()),
                    }
                }
            }
            Some(b'{') => self.object(|reader, _| reader.skip(depth + 1)),
            Some(b'[') => self.array(|reader| reader.skip(depth + 1)),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => {
                while matches!(
                    self.byte(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.at += 1;
                }
                Ok(())
            }
            _ => Err(self.error()),
        }
    }

    fn chunk(&mut self) -> Read<ChunkView<'a>> {
        let mut view = ChunkView::default();
        self.object(|reader, key| {
            match key {
                b"id" => view.id = reader.nullable_string()?,
                b"created" => view.created = reader.nullable_integer()?,
                b"model" => view.model = reader.nullable_string()?,
                b"choices" => reader.array(|reader| {
                    view.choices.push(reader.choice()?);
                    Ok(())
                })?,
                b"usage" => view.usage = reader.usage()?,
                b"error" => {
                    view.error =
                        reader.nullable_object(|reader, error: &mut ErrorView<'a>, key| {
                            match key {
                                b"message" => error.message = reader.nullable_string()?,
                                _ => reader.skip(2)?,
                            }
                            Ok(())
                        })?;
                }
                _ => reader.skip(1)?,
            }
            Ok(())
        })?;
        Ok(view)
    }

    fn choice(&mut self) -> Read<ChoiceView<'a>> {
        let mut choice = ChoiceView::default();
        self.object(|reader, key| {
            match key {
                b"delta" => choice.delta = reader.delta()?,
                b"finish_reason" => choice.finish_reason = reader.nullable_string()?,
                _ => reader.skip(3)?,
            }
            Ok(())
        })?;
        Ok(choice)
    }

    fn delta(&mut self) -> Read<DeltaView<'a>> {
        let mut delta = DeltaView::default();
        self.object(|reader, key| {
            match key {
                b"content" => delta.content = reader.nullable_string()?,
                b"role" => delta.role = reader.nullable_string()?,
                b"reasoning_content" => delta.reasoning_content = reader.nullable_string()?,
                b"reasoning" => delta.reasoning = reader.nullable_string()?,
                b"tool_calls" => {
                    if !reader.null()? {
                        let mut calls = Vec::new();
                        reader.array(|reader| {
                            calls.push(reader.tool_call()?);
                            Ok(())
                        })?;
                        delta.tool_calls = Some(calls);
                    }
                }
                _ => reader.skip(4)?,
            }
            Ok(())
        })?;
        Ok(delta)
    }

    fn tool_call(&mut self) -> Read<ToolCallDelta<'a>> {
        let mut call = ToolCallDelta::default();
        self.object(|reader, key| {
            match key {
                b"index" => call.index = reader.integer()?,
                b"id" => call.id = reader.nullable_string()?,
                b"type" => call.kind = reader.nullable_string()?,
                b"function" => {
                    call.function = reader.nullable_object(
                        |reader, function: &mut FunctionDelta<'a>, key| {
                            match key {
                                b"name" => function.name = reader.nullable_string()?,
                                b"arguments" => function.arguments = reader.nullable_string()?,
                                _ => reader.skip(7)?,
                            }
                            Ok(())
                        },
                    )?;
                }
                _ => reader.skip(6)?,
            }
            Ok(())
        })?;
        Ok(call)
    }

    /// `usage`: `null`, or its two counts (both required) and the reasoning tokens.
    fn usage(&mut self) -> Read<Option<WireUsage>> {
        if self.null()? {
            return Ok(None);
        }
        let (mut prompt, mut completion, mut details) = (None, None, None);
        self.object(|reader, key| {
            match key {
                b"prompt_tokens" => prompt = Some(reader.integer()?),
                b"completion_tokens" => completion = Some(reader.integer()?),
                b"completion_tokens_details" => {
                    details = reader.nullable_object(|reader, details: &mut Details, key| {
                        match key {
                            b"reasoning_tokens" => {
                                details.reasoning_tokens = reader.nullable_integer()?;
                            }
                            _ => reader.skip(3)?,
                        }
                        Ok(())
                    })?;
                }
                _ => reader.skip(2)?,
            }
            Ok(())
        })?;
        match (prompt, completion) {
            (Some(prompt_tokens), Some(completion_tokens)) => Ok(Some(WireUsage {
                prompt_tokens,
                completion_tokens,
                completion_tokens_details: details.map(|d: Details| CompletionTokensDetails {
                    reasoning_tokens: d.reasoning_tokens,
                }),
            })),
            _ => Err(self.error()),
        }
    }
}

/// `completion_tokens_details` while it is read.
#[derive(Default)]
struct Details {
    reasoning_tokens: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(text: &str) -> Result<ChunkView<'_>, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn the_mock_models_chunks_read_as_serde_reads_them_with_their_strings_borrowed() {
        let head = r#"{"id":"chatcmpl-mock0","object":"chat.completion.chunk","created":1796095946,"model":"Hermes-4-70B","system_fingerprint":"fp_mock_upstream","choices":"#;
        for tail in [
            r#"[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"[{"index":0,"delta":{"content":"breathe "},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
            r#"[],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}"#,
        ] {
            let text = format!("{head}{tail}");
            let view = read(&text).unwrap();
            assert_eq!(view, serde(&text).unwrap(), "{text}");
            assert!(matches!(view.id, Some(Cow::Borrowed("chatcmpl-mock0"))));
            assert_eq!(view.created, Some(1_796_095_946));
        }
        let text = format!(r#"{head}[{{"delta":{{"content":"in "}}}}]}}"#);
        let content = read(&text).unwrap().choices[0].delta.content.clone();
        assert!(matches!(content, Some(Cow::Borrowed("in "))));
    }

    #[test]
    fn a_stream_of_alike_chunks_is_read_from_its_shape_and_anything_else_in_full() {
        let head = r#"{"id":"chatcmpl-mock0","object":"chat.completion.chunk","created":1796095946,"model":"Hermes-4-70B","system_fingerprint":"fp_mock_upstream","choices":[{"index":0,"delta":{"#;
        let tail = r#"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
        let chunk = |delta: &str| format!("{head}{delta}{tail}");
        let mut shape = Shape::default();
        // (delta, read from the shape)
        let stream = [
            (r#""role":"assistant","content":"""#, false),
            (r#""content":"breathe ""#, false),
            (r#""content":"in ""#, true),
            (r#""content":"""#, true),
            (
                r#""content":"é ☕ 😀 and a long piece of text, longer than the last one""#,
                true,
            ),
            // An escape: read in full (a copy), and no shape learned from it.
            (r#""content":"say \"hi\"""#, false),
            (r#""content":"again""#, false),
            (r#""content":"and again""#, true),
            // Another field: a new shape.
            (r#""reasoning_content":"hmm""#, false),
            (r#""reasoning_content":"hmm, yes""#, true),
            (r#""content":"so""#, false),
            // Damage after the text: not this shape, and not a chunk.
            (r#""content":"so"}}x"#, false),
            (r#""content":"a\u0001b""#, false),
        ];
        for (delta, shaped) in stream {
            let text = chunk(delta);
            let followed = shape.learned.as_ref().and_then(|l| l.follow(&text));
            assert_eq!(followed.is_some(), shaped, "{text}");
            assert_eq!(shape.read(&text), read(&text), "{text}");
        }
        // The last chunks, a finish reason and usage, are read in full.
        for text in [
            format!(r#"{head}}},"logprobs":null,"finish_reason":"stop"}}],"usage":null}}"#),
            format!(
                r#"{head}"content":"x"}},"logprobs":null,"finish_reason":"stop"}}],"usage":null}}"#
            ),
        ] {
            shape.read(&chunk(r#""content":"warm""#)).unwrap();
            let followed = shape.learned.as_ref().and_then(|l| l.follow(&text));
            assert!(followed.is_none(), "{text}");
            assert_eq!(shape.read(&text), read(&text), "{text}");
        }
    }

    #[test]
    fn escapes_are_decoded_surrogate_pairs_included() {
        let text = r#"{"choices":[{"delta":{"content":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20AC\ud83d\ude00 end"}}]}"#;
        let view = read(text).unwrap();
        assert_eq!(
            view.choices[0].delta.content.as_deref(),
            Some("a\"b\\c/d\u{8}\u{c}\n\r\té€😀 end")
        );
        assert_eq!(view, serde(text).unwrap());
        // A key with an escape is still the key.
        let text = r#"{"choices":[{"delta":{"cont\u0065nt":"x"}}]}"#;
        assert_eq!(
            read(text).unwrap().choices[0].delta.content.as_deref(),
            Some("x")
        );
    }

    #[test]
    fn white_space_and_nested_values_in_skipped_fields_are_stepped_over() {
        let text = " {\n \"x\" : { \"a\" : [ 1 , -2.5e3 , true , false , null , \"]}\\\"\" , { } , [ [ ] ] ] } ,\r\n\t\"choices\" : [ { \"logprobs\" : { \"content\" : [ ] } , \"delta\" : { \"content\" : \"hi\" } } ] , \"usage\" : null } \n";
        let view = read(text).unwrap();
        assert_eq!(view.choices[0].delta.content.as_deref(), Some("hi"));
        assert_eq!(view, serde(text).unwrap());
    }

    #[test]
    fn tool_calls_usage_details_and_errors_are_read() {
        let text = r#"{"choices":[{"delta":{"tool_calls":[{"index":2,"id":"call_9","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":20,"completion_tokens_details":{"reasoning_tokens":5}}}"#;
        let view = read(text).unwrap();
        assert_eq!(view, serde(text).unwrap());
        let call = &view.choices[0].delta.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.index, 2);
        assert_eq!(
            call.function.as_ref().unwrap().arguments.as_deref(),
            Some("{\"city\":\"Oslo\"}")
        );
        assert_eq!(view.usage.unwrap().into_usage().reasoning_tokens, Some(5));

        let error = r#"{"error":{"message":"The model is overloaded","code":503}}"#;
        assert_eq!(
            read(error).unwrap().error.unwrap().message.as_deref(),
            Some("The model is overloaded")
        );
        for text in [
            r#"{}"#,
            r#"{"choices":[],"usage":null,"error":null}"#,
            r#"{"choices":[{"delta":{"tool_calls":null}}]}"#,
        ] {
            assert_eq!(read(text).unwrap(), serde(text).unwrap(), "{text}");
        }
    }

    #[test]
    fn what_serde_refuses_in_the_fields_we_read_is_refused_here_too() {
        for text in [
            "",
            "[DONE]",
            "{",
            r#"{"choices":null}"#,
            r#"{"choices":[{"delta":null}]}"#,
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            r#"{"choices":[{"delta":{"content":"\ud83d"}}]}"#,
            r#"{"choices":[{"delta":{"content":"\ude00"}}]}"#,
            r#"{"choices":[{"delta":{"content":"\x"}}]}"#,
            "{\"choices\":[{\"delta\":{\"content\":\"a\u{1}b\"}}]}",
            r#"{"choices":[{"delta":{"content":"open}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":-1}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":null}]}}]}"#,
            r#"{"created":1.5}"#,
            r#"{"created":01}"#,
            r#"{"created":99999999999999999999}"#,
            r#"{"usage":{"prompt_tokens":1}}"#,
            r#"{"usage":{"prompt_tokens":1,"completion_tokens":-1}}"#,
            r#"{"usage":{"prompt_tokens":1,"completion_tokens":4294967296}}"#,
            r#"{"id":"a"} x"#,
            r#"{"id":"a",}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":tru}"#,
        ] {
            assert!(serde(text).is_err(), "serde reads {text}");
            assert!(read(text).is_err(), "read {text}");
        }
    }

    #[test]
    fn eight_bytes_at_a_time_find_the_first_stop_whatever_follows_it() {
        for stop in 0..=255u8 {
            for place in 0..8 {
                // Plain bytes around it, of both halves of the byte range.
                for filler in [b'a', 0xC3, 0x7F, 0xFF] {
                    let mut word = [filler; 8];
                    word[place] = stop;
                    let found = stop_bytes(u64::from_le_bytes(word));
                    let expected = STOPS[usize::from(stop)].then_some(place);
                    let first = (found != 0).then(|| found.trailing_zeros() as usize / 8);
                    assert_eq!(
                        first, expected,
                        "byte {stop:#04x} at {place} among {filler:#04x}"
                    );
                    // Whatever comes after the first stop, it stays the first.
                    for after in place + 1..8 {
                        let mut two = word;
                        two[after] = b'"';
                        let found = stop_bytes(u64::from_le_bytes(two));
                        let first = found.trailing_zeros() as usize / 8;
                        assert_eq!(
                            first,
                            if STOPS[usize::from(stop)] {
                                place
                            } else {
                                after
                            }
                        );
                    }
                }
            }
        }
        // A run ends at its stop in a word, in the tail after the words, or at the text's end.
        for text in [
            "0123456789abcdef\"x",
            "0123456789\"x",
            "01\u{1}",
            "plain to the end",
        ] {
            let expected = text
                .bytes()
                .position(|b| STOPS[usize::from(b)])
                .unwrap_or(text.len());
            assert_eq!(plain_run(text.as_bytes(), 0), expected, "{text:?}");
        }
    }

    #[test]
    fn nesting_deeper_than_serdes_limit_is_refused_without_overflowing_the_stack() {
        let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        assert!(read(&deep).is_err());
        let fine = format!(r#"{{"x":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(read(&fine).is_ok());
    }
}
