//! What a reply's chunks hold, in order: reasoning, answer text and tool-call pieces, whether
//! the API sends them in fields of their own or Hermes writes them inline in the text.
//!
//! Hermes-4 deliberates between `<think>` and `</think>` at the start of its reply, and, when it
//! is served without a tool parser, writes each tool call as `<tool_call>{"name": …,
//! "arguments": {…}}</tool_call>`. APIs that parse the reasoning send it as a `reasoning_content`
//! (vLLM, SGLang) or `reasoning` (OpenRouter) delta instead. [`Splitter`] reads both while the
//! reply streams: a tag may be cut across chunks at any byte, so text that could be the start
//! of one is held back until the next chunk decides (and given as what it is at the end).
//!
//! # Design
//! Most chunks of most replies are plain answer text. [`Splitter::is_plain`] tells them apart
//! without allocating (a scan for `<`), so the caller can forward such a chunk's own bytes;
//! only a chunk that holds markup, reasoning or a held-back tag start costs a rewrite.
//!
//! Whitespace the model puts around its markup is not part of either text: the reasoning
//! starts at its first non-blank character and ends at its last one, and the answer starts at
//! its first non-blank character (after the reasoning, a call, or at the start of the reply).
//! A `<tool_call>` block is read only when the request offered tools; one whose JSON is not a
//! call (`{"name": string, "arguments": object or string}`) stays answer text, as written.
//! Tags are matched exactly (lowercase, no attributes); `<think>` opens reasoning only in the
//! answer, not inside a call or other reasoning.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::wire::{ChunkView, FunctionDelta, ToolCallDelta};

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";
const CALL_OPEN: &str = "<tool_call>";
const CALL_CLOSE: &str = "</tool_call>";

/// One thing a chunk says.
#[derive(Debug, Clone)]
pub enum Piece<'a> {
    /// Reasoning text.
    Reasoning(&'a str),
    /// Answer text.
    Text(&'a str),
    /// A piece of a tool call: the API's own, or a whole call read from a `<tool_call>` block
    /// (with its id, name and all its arguments).
    Call(&'a ToolCallDelta<'a>),
}

/// Where the text read so far stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    Reasoning,
    Call,
}

/// Reads a reply's chunks into [`Piece`]s. One per reply.
#[derive(Debug)]
pub struct Splitter {
    /// Read `<tool_call>` blocks (the request offered tools).
    tools: bool,
    /// Makes the ids of calls read from the text: `call_<reply id>_<index>`.
    reply_id: String,
    mode: Mode,
    /// The end of the text so far when it may be the start of a tag.
    held: String,
    /// Blank text at the end of the reasoning so far: given when more reasoning follows,
    /// dropped at its end.
    blank: String,
    /// Leading blanks of the answer are dropped (at the start of the reply, after the
    /// reasoning, after a call).
    trim_answer: bool,
    /// Leading blanks of the reasoning are dropped (at its start).
    trim_reasoning: bool,
    /// The body of an open `<tool_call>` block.
    call: String,
    /// The index the next call read from the text gets (after every call the API sent).
    next_index: usize,
    /// Calls read from the text: the reply ends in `tool_calls` rather than `stop`.
    inline_calls: usize,
}

impl Splitter {
    /// A splitter for reply `reply_id`; `tools`: the request offered tools, so `<tool_call>`
    /// blocks are calls.
    pub fn new(reply_id: &str, tools: bool) -> Self {
        Self {
            tools,
            reply_id: reply_id.to_owned(),
            mode: Mode::Answer,
            held: String::new(),
            blank: String::new(),
            trim_answer: true,
            trim_reasoning: true,
            call: String::new(),
            next_index: 0,
            inline_calls: 0,
        }
    }

    /// Whether `chunk` is plain: its content is answer text exactly as it came (no markup,
    /// nothing held back or trimmed), it has no reasoning field, and its finish reason stands.
    /// A plain chunk's [`split`](Self::split) gives its content whole, so its own bytes may be
    /// forwarded. Allocates nothing.
    pub fn is_plain(&self, chunk: &ChunkView<'_>) -> bool {
        chunk.choices.iter().all(|choice| {
            let delta = &choice.delta;
            let content = delta.content.as_deref().unwrap_or_default();
            self.mode == Mode::Answer
                && self.held.is_empty()
                && is_blank_or_none(delta.reasoning_content.as_deref())
                && is_blank_or_none(delta.reasoning.as_deref())
                && (content.is_empty()
                    || ((!self.trim_answer || !content.starts_with(char::is_whitespace))
                        && !has_markup(content, self.openers())))
                && (choice.finish_reason.is_none() || self.inline_calls == 0)
        })
    }

    /// Calls `on` with what `chunk` holds, in order: reasoning, then what its content says,
    /// then its tool-call pieces. At a finish reason, text held back is given for what it is
    /// ([`finish`](Self::finish)).
    pub fn split(&mut self, chunk: &ChunkView<'_>, mut on: impl FnMut(Piece<'_>)) {
        for choice in &chunk.choices {
            let delta = &choice.delta;
            // Some APIs send both names with the same text.
            let field = delta
                .reasoning_content
                .as_deref()
                .or(delta.reasoning.as_deref())
                .unwrap_or_default();
            if !field.is_empty() {
                self.reason(field, &mut on);
            }
            if let Some(content) = delta.content.as_deref().filter(|c| !c.is_empty()) {
                self.read(content, &mut on);
            }
            for call in delta.tool_calls.iter().flatten() {
                self.next_index = self.next_index.max(call.index + 1);
                on(Piece::Call(call));
            }
            if choice.finish_reason.is_some() {
                self.finish(&mut on);
            }
        }
    }

    /// Gives what is held back at the end of the reply: a partial tag is text (of the answer,
    /// or of the reasoning it was in), an unclosed call is a call when its JSON is whole, and
    /// blanks at the end of the reasoning are dropped. An unclosed `<think>` leaves the reply
    /// all reasoning.
    pub fn finish(&mut self, mut on: impl FnMut(Piece<'_>)) {
        let held = std::mem::take(&mut self.held);
        match self.mode {
            Mode::Answer => self.answer(&held, &mut on),
            Mode::Reasoning => {
                self.reason(&held, &mut on);
                self.blank.clear();
            }
            Mode::Call => {
                self.call.push_str(&held);
                self.end_call(false, &mut on);
            }
        }
    }

    /// The finish reason as the client gets it: `stop` is `tool_calls` once a call was read
    /// from the text.
    pub fn finish_reason<'r>(&self, raw: &'r str) -> &'r str {
        if self.inline_calls > 0 && raw == "stop" {
            "tool_calls"
        } else {
            raw
        }
    }

    fn openers(&self) -> &'static [&'static str] {
        if self.tools {
            &[THINK_OPEN, CALL_OPEN]
        } else {
            &[THINK_OPEN]
        }
    }

    /// Reads content text, prefixed by what was held back.
    fn read(&mut self, content: &str, on: &mut impl FnMut(Piece<'_>)) {
        if self.held.is_empty() {
            self.scan(content, on);
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.push_str(content);
            self.scan(&joined, on);
        }
    }

    fn scan(&mut self, mut rest: &str, on: &mut impl FnMut(Piece<'_>)) {
        loop {
            let tags: &[&str] = match self.mode {
                Mode::Answer => self.openers(),
                Mode::Reasoning => &[THINK_CLOSE],
                Mode::Call => &[CALL_CLOSE],
            };
            let (before, found) = match find_tag(rest, tags) {
                Found::Tag(at, tag) => (&rest[..at], Some((tag, &rest[at + tag.len()..]))),
                Found::Partial(at) => {
                    self.held.push_str(&rest[at..]);
                    (&rest[..at], None)
                }
                Found::None => (rest, None),
            };
            match self.mode {
                Mode::Answer => self.answer(before, on),
                Mode::Reasoning => self.reason(before, on),
                Mode::Call => self.call.push_str(before),
            }
            let Some((tag, after)) = found else {
                return;
            };
            match tag {
                THINK_OPEN => {
                    self.mode = Mode::Reasoning;
                    self.trim_reasoning = true;
                }
                CALL_OPEN => self.mode = Mode::Call,
                THINK_CLOSE => {
                    self.blank.clear();
                    self.mode = Mode::Answer;
                    self.trim_answer = true;
                }
                _ => self.end_call(true, on),
            }
            rest = after;
        }
    }

    fn answer(&mut self, text: &str, on: &mut impl FnMut(Piece<'_>)) {
        let text = skip_blanks(&mut self.trim_answer, text);
        if !text.is_empty() {
            on(Piece::Text(text));
        }
    }

    fn reason(&mut self, text: &str, on: &mut impl FnMut(Piece<'_>)) {
        let text = skip_blanks(&mut self.trim_reasoning, text);
        let body = text.trim_end();
        if !body.is_empty() {
            if !self.blank.is_empty() {
                on(Piece::Reasoning(&self.blank));
                self.blank.clear();
            }
            on(Piece::Reasoning(body));
        }
        self.blank.push_str(&text[body.len()..]);
    }

    /// Ends a `<tool_call>` block: a call when its body is one, else its text as written.
    /// Ends the open call: at its `</tool_call>` (`closed`) or at the end of the reply.
    fn end_call(&mut self, closed: bool, on: &mut impl FnMut(Piece<'_>)) {
        let body = std::mem::take(&mut self.call);
        self.mode = Mode::Answer;
        match parse_call(&body) {
            Some((name, arguments)) => {
                let index = self.next_index;
                self.next_index += 1;
                self.inline_calls += 1;
                let call = ToolCallDelta {
                    index,
                    id: Some(Cow::Owned(format!("call_{}_{index}", self.reply_id))),
                    kind: Some(Cow::Borrowed("function")),
                    function: Some(FunctionDelta {
                        name: Some(Cow::Owned(name)),
                        arguments: Some(Cow::Owned(arguments)),
                    }),
                };
                on(Piece::Call(&call));
                // The answer may go on after the call, from its first non-blank character.
                self.trim_answer = true;
            }
            None => {
                // Not a call: the text as the model wrote it, with no closing tag it did not
                // write.
                let close = if closed { CALL_CLOSE } else { "" };
                let text = format!("{CALL_OPEN}{body}{close}");
                self.answer(&text, on);
            }
        }
    }
}

/// `text` without its leading blanks while `trimming`, which ends at the first non-blank.
fn skip_blanks<'t>(trimming: &mut bool, text: &'t str) -> &'t str {
    if !*trimming {
        return text;
    }
    let text = text.trim_start();
    *trimming = text.is_empty();
    text
}

fn is_blank_or_none(text: Option<&str>) -> bool {
    text.is_none_or(str::is_empty)
}

/// What [`find_tag`] found.
enum Found {
    /// A whole tag at this byte.
    Tag(usize, &'static str),
    /// The text from this byte to its end may be the start of a tag.
    Partial(usize),
    None,
}

/// The first of `tags` in `text`, or the start of one cut off by the end of `text`.
fn find_tag(text: &str, tags: &[&'static str]) -> Found {
    for at in memchr::memchr_iter(b'<', text.as_bytes()) {
        let rest = text.get(at..).unwrap_or_default();
        for &tag in tags {
            if rest.starts_with(tag) {
                return Found::Tag(at, tag);
            }
            if tag.starts_with(rest) {
                return Found::Partial(at);
            }
        }
    }
    Found::None
}

/// Whether `text` holds one of `tags`, or the start of one at its end.
fn has_markup(text: &str, tags: &[&'static str]) -> bool {
    !matches!(find_tag(text, tags), Found::None)
}

/// A `<tool_call>` body: `{"name": "…", "arguments": {…}}` (arguments as an object, or as the
/// JSON text of one) → the name and the arguments' JSON text.
fn parse_call(body: &str) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct InlineCall {
        name: String,
        #[serde(default)]
        arguments: Option<Value>,
    }
    let call: InlineCall = serde_json::from_str(body.trim()).ok()?;
    if call.name.is_empty() {
        return None;
    }
    let arguments = match call.arguments {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(text)) => text,
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(_) => return None,
    };
    Some((call.name, arguments))
}

/// `text` without its reasoning: every `<think>…</think>` block (and an unclosed one to the
/// end) taken out, and the blanks after it. For text that may come back from a client or a
/// model (history, titles).
pub fn without_reasoning(text: &str) -> Cow<'_, str> {
    if !text.contains(THINK_OPEN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(THINK_OPEN) {
        out.push_str(&rest[..at]);
        let inside = &rest[at + THINK_OPEN.len()..];
        rest = match inside.find(THINK_CLOSE) {
            Some(end) => inside[end + THINK_CLOSE.len()..].trim_start(),
            None => "",
        };
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a reply of these content pieces comes to: (reasoning, answer, calls as
    /// `name(arguments)`), plus whether each chunk was plain.
    #[derive(Debug, Default, PartialEq)]
    struct Said {
        reasoning: String,
        answer: String,
        calls: Vec<String>,
        /// Kinds in order, consecutive pieces of one kind merged: `r`, `t`, `c`.
        order: String,
    }

    fn chunk(content: &str) -> String {
        serde_json::json!({ "choices": [{ "delta": { "content": content } }] }).to_string()
    }

    fn read(splitter: &mut Splitter, raw: &str, said: &mut Said) -> bool {
        let view: ChunkView<'_> = serde_json::from_str(raw).unwrap();
        let plain = splitter.is_plain(&view);
        let mut pieces = Vec::new();
        splitter.split(&view, |piece| pieces.push(owned(&piece)));
        if plain {
            let content = view.choices[0].delta.content.as_deref().unwrap_or_default();
            let want: Vec<Owned> = if content.is_empty() {
                Vec::new()
            } else {
                vec![Owned::Text(content.to_owned())]
            };
            let said: Vec<&Owned> = pieces
                .iter()
                .filter(|p| !matches!(p, Owned::Call(_)))
                .collect();
            assert_eq!(
                said,
                want.iter().collect::<Vec<_>>(),
                "a plain chunk gives its content whole: {raw}"
            );
        }
        for piece in pieces {
            record(said, piece);
        }
        plain
    }

    #[derive(Debug, PartialEq)]
    enum Owned {
        Reasoning(String),
        Text(String),
        Call(String),
    }

    fn owned(piece: &Piece<'_>) -> Owned {
        match piece {
            Piece::Reasoning(t) => Owned::Reasoning((*t).to_owned()),
            Piece::Text(t) => Owned::Text((*t).to_owned()),
            Piece::Call(call) => {
                let f = call.function.as_ref().unwrap();
                Owned::Call(format!(
                    "{}:{}({})",
                    call.id.as_deref().unwrap_or_default(),
                    f.name.as_deref().unwrap_or_default(),
                    f.arguments.as_deref().unwrap_or_default()
                ))
            }
        }
    }

    fn record(said: &mut Said, piece: Owned) {
        let kind = match piece {
            Owned::Reasoning(t) => {
                said.reasoning.push_str(&t);
                'r'
            }
            Owned::Text(t) => {
                said.answer.push_str(&t);
                't'
            }
            Owned::Call(c) => {
                said.calls.push(c);
                'c'
            }
        };
        if !said.order.ends_with(kind) {
            said.order.push(kind);
        }
    }

    fn split_pieces(pieces: &[&str], tools: bool) -> Said {
        let mut splitter = Splitter::new("r1", tools);
        let mut said = Said::default();
        for piece in pieces {
            read(&mut splitter, &chunk(piece), &mut said);
        }
        let mut rest = Vec::new();
        splitter.finish(|p| rest.push(owned(&p)));
        for piece in rest {
            record(&mut said, piece);
        }
        said
    }

    /// `text` cut at every byte, and at every pair of bytes, gives what it gives whole.
    fn assert_any_split(text: &str, tools: bool, want: &Said) {
        assert_eq!(&split_pieces(&[text], tools), want, "whole: {text:?}");
        let cuts: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &a in &cuts {
            assert_eq!(
                &split_pieces(&[&text[..a], &text[a..]], tools),
                want,
                "cut at {a}: {text:?}"
            );
            for &b in cuts.iter().filter(|&&b| b >= a) {
                assert_eq!(
                    &split_pieces(&[&text[..a], &text[a..b], &text[b..]], tools),
                    want,
                    "cut at {a} and {b}: {text:?}"
                );
            }
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(&split_pieces(&chars, tools), want, "char by char: {text:?}");
    }

    fn said(reasoning: &str, answer: &str, calls: &[&str], order: &str) -> Said {
        Said {
            reasoning: reasoning.into(),
            answer: answer.into(),
            calls: calls.iter().map(|c| (*c).to_owned()).collect(),
            order: order.into(),
        }
    }

    #[test]
    fn inline_reasoning_is_apart_from_the_answer_however_the_chunks_cut_the_tags() {
        assert_any_split(
            "<think>\nA < b, so é.\n\n</think>\n\nThe answer: <b>é</b>.",
            false,
            &said("A < b, so é.", "The answer: <b>é</b>.", &[], "rt"),
        );
    }

    #[test]
    fn text_before_the_opening_tag_is_answer_and_blanks_before_it_are_dropped() {
        assert_any_split(
            "\n <think>Hm.</think>Yes.",
            false,
            &said("Hm.", "Yes.", &[], "rt"),
        );
        assert_any_split(
            "Sure. <think>Hm.</think> Yes.",
            false,
            &said("Hm.", "Sure. Yes.", &[], "trt"),
        );
    }

    #[test]
    fn an_unclosed_think_leaves_the_reply_all_reasoning() {
        assert_any_split(
            "<think>Still thinking </thi",
            false,
            &said("Still thinking </thi", "", &[], "r"),
        );
    }

    #[test]
    fn a_partial_tag_at_the_end_is_text_and_other_tags_are_text_too() {
        assert_any_split("x <thin", false, &said("", "x <thin", &[], "t"));
        assert_any_split(
            "<b>Bold</b> and <thinking> and a <tool_call>{}</tool_call>",
            false,
            &said(
                "",
                "<b>Bold</b> and <thinking> and a <tool_call>{}</tool_call>",
                &[],
                "t",
            ),
        );
    }

    #[test]
    fn inline_tool_calls_become_calls_when_the_request_offered_tools() {
        let text = "<think>Weather.</think>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 2}}\n</tool_call>\n<tool_call>{\"name\":\"get_time\",\"arguments\":\"{}\"}</tool_call>";
        assert_any_split(
            text,
            true,
            &said(
                "Weather.",
                "",
                &[
                    r#"call_r1_0:get_weather({"city":"Oslo","days":2})"#,
                    "call_r1_1:get_time({})",
                ],
                "rc",
            ),
        );
        // Not a call: kept as written.
        assert_any_split(
            "<tool_call>not json</tool_call> ok",
            true,
            &said("", "<tool_call>not json</tool_call> ok", &[], "t"),
        );
    }

    #[test]
    fn an_unclosed_call_is_a_call_when_its_json_is_whole() {
        assert_eq!(
            split_pieces(&["<tool_call>{\"name\":\"f\"}"], true),
            said("", "", &["call_r1_0:f({})"], "c")
        );
        assert_eq!(
            split_pieces(&["<tool_call>{\"name\":"], true),
            said("", "<tool_call>{\"name\":", &[], "t"),
            "an unclosed block that is not a call is given as written, with no closing tag"
        );
    }

    #[test]
    fn reasoning_fields_come_before_the_content_of_their_chunk() {
        let mut splitter = Splitter::new("r1", false);
        let mut said = Said::default();
        let chunks = [
            r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"Let me "}}]}"#,
            r#"{"choices":[{"delta":{"reasoning":"see.","reasoning_content":"see."}}]}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"","content":"Four."}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        ];
        let plain: Vec<bool> = chunks
            .iter()
            .map(|raw| read(&mut splitter, raw, &mut said))
            .collect();
        assert_eq!(plain, [true, false, false, true, true]);
        assert_eq!(said, self::said("Let me see.", "Four.", &[], "rt"));
        assert_eq!(splitter.finish_reason("stop"), "stop");
    }

    #[test]
    fn plain_text_stays_plain_and_markup_or_a_call_is_not() {
        let mut splitter = Splitter::new("r1", true);
        let mut said = Said::default();
        assert!(read(&mut splitter, &chunk("a < b"), &mut said));
        assert!(read(&mut splitter, &chunk(" and "), &mut said));
        assert!(!read(&mut splitter, &chunk("<tool"), &mut said));
        assert!(!read(
            &mut splitter,
            &chunk("_call>{\"name\":\"f\"}</tool_call>"),
            &mut said
        ));
        let finish = r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#;
        assert!(
            !read(&mut splitter, finish, &mut said),
            "stop becomes tool_calls"
        );
        assert_eq!(splitter.finish_reason("stop"), "tool_calls");
        assert_eq!(splitter.finish_reason("length"), "length");
        assert_eq!(
            said,
            self::said("", "a < b and ", &["call_r1_0:f({})"], "tc")
        );
    }

    #[test]
    fn the_api_s_own_calls_keep_their_indexes_and_inline_ones_follow() {
        let mut splitter = Splitter::new("r1", true);
        let mut said = Said::default();
        let native = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_x","function":{"name":"a","arguments":"{}"}}]}}]}"#;
        assert!(read(&mut splitter, native, &mut said));
        read(
            &mut splitter,
            &chunk("<tool_call>{\"name\":\"b\"}</tool_call>"),
            &mut said,
        );
        assert_eq!(said.calls, ["call_x:a({})", "call_r1_1:b({})"]);
    }

    #[test]
    fn history_loses_its_reasoning() {
        assert_eq!(without_reasoning("plain"), "plain");
        assert_eq!(
            without_reasoning("<think>a</think>\n\nB <think>c</think> d"),
            "B d"
        );
        assert_eq!(without_reasoning("A<think>never closed"), "A");
    }
}
