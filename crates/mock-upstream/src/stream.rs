//! Response bodies: the SSE reply ([`SseReply`]) and a JSON body cut short ([`CutBody`]).
//!
//! Both implement `http_body::Body` by hand rather than wrapping a channel or a boxed stream:
//! a reply is a small state machine, and this way a zero-delay reply costs one allocation for
//! the template, one buffer and one socket write, whatever its length. Deciding *what* to send
//! (token count, tool calls, failures) is the handler's job; this module only sends it.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::body::{Bytes, HttpBody};
use http_body::Frame;
use tokio::time::{Instant, Sleep, sleep_until};

use crate::{
    reply,
    script::{Delta, Script},
    tools::{CHUNKS_PER_CALL, ToolCall},
    wire,
};

/// A zero-delay reply is written in frames of about this size, so a huge `tokens` value does
/// not build one huge buffer.
const FRAME_SOFT_LIMIT_BYTES: usize = 16 * 1024;

/// Bytes a choice chunk adds to its template head, rounded up (the longest is the role chunk
/// with `"usage":null`, plus the longest word).
const CHUNK_TAIL_MAX_BYTES: usize = 128;

/// Sent by `error_after`: the error event OpenAI-compatible servers emit mid-stream.
const ERROR_EVENT: &[u8] = b"data: {\"error\":{\"message\":\"The mock upstream failed mid-stream \
on purpose.\",\"type\":\"server_error\",\"param\":null,\"code\":\"mock_error\"}}\n\n";

/// Sent by `garbage_after`: well-framed SSE whose data is not JSON.
const GARBAGE_EVENT: &[u8] = b"data: {not json\n\n";

const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// Everything a reply will contain and how it will fail, fixed before the first byte.
///
/// A reply is `tokens` content chunks, then [`CHUNKS_PER_CALL`] chunks per tool call; the
/// failure knobs count in all of these ("chunks" below).
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Content chunks to send (the configured length, capped by `max_tokens`; 0 for a reply of
    /// tool calls only).
    pub tokens: usize,
    /// Calls sent after the text, in order; empty for a text reply.
    pub tool_calls: Vec<ToolCall>,
    /// `"stop"`, `"tool_calls"`, or `"length"` when `max_tokens` cut the reply short.
    pub finish_reason: &'static str,
    pub usage: wire::Usage,
    /// `stream_options.include_usage`: a usage chunk at the end and `"usage":null` before it.
    pub include_usage: bool,
    pub inter_token: Duration,
    pub cut_after: Option<usize>,
    pub error_after: Option<usize>,
    pub garbage_after: Option<usize>,
    /// `echo`: the text's tokens, sent in place of the word list's.
    pub echo: Option<Vec<String>>,
    /// A scripted reply's deltas (reasoning, inline calls, cuts), sent in place of the
    /// tokens; `tokens` is their number.
    pub script: Option<Script>,
}

impl Plan {
    /// Chunks between the role chunk and the finish chunk: content, then tool calls.
    pub(crate) fn chunks(&self) -> usize {
        self.tokens
            .saturating_add(self.tool_calls.len().saturating_mul(CHUNKS_PER_CALL))
    }

    /// Whether an injected failure or garbage event happens once `sent` chunks are out.
    fn acts_at(&self, sent: usize) -> bool {
        [self.cut_after, self.error_after, self.garbage_after].contains(&Some(sent))
    }
}

/// The error a body ends with to make hyper drop the connection mid-response.
#[derive(Debug, thiserror::Error)]
#[error("mock upstream cut the response on purpose")]
pub(crate) struct Cut;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing sent yet; the first frame starts with the role chunk.
    Start,
    Tokens,
    /// The cut point is reached: yield once so hyper flushes what was sent, then fail.
    Flushing,
    Cutting,
    Done,
}

/// What [`SseReply::fill`] stopped for.
enum Next {
    /// Send the frame, then wait `inter_token`.
    Wait,
    /// Send the frame and carry on at once (it reached the size limit).
    Flush,
    /// Send the frame; it is the last.
    End,
    /// Send the frame, then drop the connection.
    Cut,
}

/// A streamed chat completion: `chat.completion.chunk` events, then `[DONE]`.
///
/// # Design
/// The JSON of every chunk shares one prefix (id, created, model, …), built once per reply in
/// `head`. A content chunk is `head`, a fixed middle, the word (known not to need escaping, see
/// [`crate::reply`]) and a fixed tail, copied into the frame buffer. The `choices` of tool-call
/// chunks, which carry request-dependent text, are rendered once in [`SseReply::new`]. Chunks
/// not separated by a delay share a frame, so with no delays the whole reply is one write, and
/// the response head, which hyper sends when it first polls the body, leaves in the same packet
/// as the first chunk.
pub(crate) struct SseReply {
    /// `data: {"id":…,"object":"chat.completion.chunk",…,"choices":` of every chunk.
    head: String,
    plan: Plan,
    /// The `choices` of each tool-call chunk, [`CHUNKS_PER_CALL`] per call, in sending order.
    tool_choices: Vec<String>,
    /// Bytes of all `tool_choices`, for sizing frames.
    tool_bytes: usize,
    /// Content and tool-call chunks written so far; failure knobs count in these.
    sent: usize,
    phase: Phase,
    /// Allocated on the first delay and reset afterwards, so a reply boxes at most one timer.
    delay: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    /// Counts replies dropped before their end: the client closed the connection.
    abandoned: Arc<AtomicUsize>,
}

impl Drop for SseReply {
    fn drop(&mut self) {
        if self.phase != Phase::Done {
            self.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl SseReply {
    pub(crate) fn new(
        id: &str,
        created: u64,
        model: &str,
        plan: Plan,
        abandoned: Arc<AtomicUsize>,
    ) -> Self {
        let mut head = String::with_capacity(128 + id.len() + model.len());
        head.push_str("data: {\"id\":\"");
        head.push_str(id);
        head.push_str("\",\"object\":\"chat.completion.chunk\",\"created\":");
        head.push_str(&created.to_string());
        head.push_str(",\"model\":");
        wire::push_json_string(&mut head, model);
        head.push_str(",\"system_fingerprint\":\"");
        head.push_str(wire::SYSTEM_FINGERPRINT);
        head.push_str("\",\"choices\":");
        let tool_choices: Vec<String> = plan
            .tool_calls
            .iter()
            .enumerate()
            .flat_map(|(index, call)| tool_call_choices(index, call))
            .collect();
        Self {
            head,
            tool_bytes: tool_choices.iter().map(String::len).sum(),
            tool_choices,
            plan,
            sent: 0,
            phase: Phase::Start,
            delay: None,
            waiting: false,
            abandoned,
        }
    }

    /// Ends a chunk that has a choice: the `usage` field OpenAI adds when usage was asked for.
    fn push_chunk_end(&self, buf: &mut Vec<u8>) {
        if self.plan.include_usage {
            buf.extend_from_slice(b",\"usage\":null");
        }
        buf.extend_from_slice(b"}\n\n");
    }

    fn push_role(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.head.as_bytes());
        buf.extend_from_slice(
            b"[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\
              \"logprobs\":null,\"finish_reason\":null}]",
        );
        self.push_chunk_end(buf);
    }

    fn push_content(&self, buf: &mut Vec<u8>, token: &str) {
        buf.extend_from_slice(self.head.as_bytes());
        buf.extend_from_slice(b"[{\"index\":0,\"delta\":{\"content\":\"");
        buf.extend_from_slice(token.as_bytes());
        buf.extend_from_slice(b"\"},\"logprobs\":null,\"finish_reason\":null}]");
        self.push_chunk_end(buf);
    }

    /// A scripted delta: one field and its text.
    fn push_delta(&self, buf: &mut Vec<u8>, delta: &Delta) {
        buf.extend_from_slice(self.head.as_bytes());
        buf.extend_from_slice(b"[{\"index\":0,\"delta\":{\"");
        buf.extend_from_slice(delta.field.name().as_bytes());
        buf.extend_from_slice(b"\":");
        let mut text = String::with_capacity(delta.text.len() + 2);
        wire::push_json_string(&mut text, &delta.text);
        buf.extend_from_slice(text.as_bytes());
        buf.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}]");
        self.push_chunk_end(buf);
    }

    /// Tool-call chunk `index` (counted from the first chunk after the text).
    fn push_tool_chunk(&self, buf: &mut Vec<u8>, index: usize) {
        let Some(choices) = self.tool_choices.get(index) else {
            return;
        };
        buf.extend_from_slice(self.head.as_bytes());
        buf.extend_from_slice(choices.as_bytes());
        self.push_chunk_end(buf);
    }

    fn push_finish(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.head.as_bytes());
        buf.extend_from_slice(b"[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"");
        buf.extend_from_slice(self.plan.finish_reason.as_bytes());
        buf.extend_from_slice(b"\"}]");
        self.push_chunk_end(buf);
        if self.plan.include_usage {
            let usage = self.plan.usage;
            buf.extend_from_slice(self.head.as_bytes());
            let details = usage
                .completion_tokens_details
                .map(|d| {
                    format!(
                        ",\"completion_tokens_details\":{{\"reasoning_tokens\":{}}}",
                        d.reasoning_tokens
                    )
                })
                .unwrap_or_default();
            buf.extend_from_slice(
                format!(
                    "[],\"usage\":{{\"prompt_tokens\":{},\"completion_tokens\":{},\
                     \"total_tokens\":{}{details}}}}}\n\n",
                    usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
                )
                .as_bytes(),
            );
        }
        buf.extend_from_slice(DONE_EVENT);
    }

    /// Appends events up to the next delay, failure or size limit.
    fn fill(&mut self, buf: &mut Vec<u8>) -> Next {
        if self.phase == Phase::Start {
            self.push_role(buf);
            self.phase = Phase::Tokens;
        }
        loop {
            let sent = self.sent;
            if self.plan.garbage_after == Some(sent) {
                buf.extend_from_slice(GARBAGE_EVENT);
            }
            if self.plan.error_after == Some(sent) {
                buf.extend_from_slice(ERROR_EVENT);
                return Next::End;
            }
            if self.plan.cut_after == Some(sent) {
                return Next::Cut;
            }
            let chunks = self.plan.chunks();
            if sent >= chunks {
                self.push_finish(buf);
                return Next::End;
            }
            match sent.checked_sub(self.plan.tokens) {
                None => match (&self.plan.script, &self.plan.echo) {
                    (Some(script), _) => {
                        if let Some(delta) = script.deltas.get(sent) {
                            self.push_delta(buf, delta);
                        }
                    }
                    (None, Some(words)) => match words.get(sent) {
                        Some(word) => self.push_content(buf, &json_escaped(word)),
                        None => self.push_content(buf, reply::token(sent)),
                    },
                    (None, None) => self.push_content(buf, reply::token(sent)),
                },
                Some(tool_chunk) => self.push_tool_chunk(buf, tool_chunk),
            }
            self.sent = sent + 1;
            // The finish chunk follows the last chunk at once, as with a real model; an
            // injected failure waits like a chunk would.
            let more = self.sent < chunks || self.plan.acts_at(self.sent);
            if more && !self.plan.inter_token.is_zero() {
                return Next::Wait;
            }
            if buf.len() >= FRAME_SOFT_LIMIT_BYTES {
                return Next::Flush;
            }
        }
    }

    fn frame_capacity(&self) -> usize {
        let chunk = self.head.len() + CHUNK_TAIL_MAX_BYTES;
        let chunks = if self.plan.inter_token.is_zero() {
            let remaining = self.plan.chunks().saturating_sub(self.sent);
            remaining.min(FRAME_SOFT_LIMIT_BYTES / chunk + 1)
        } else {
            1
        };
        // Tool-call chunks are longer than the template tail allows for; their `choices` are
        // counted in full (a bound, not an estimate: they are few).
        let tools = if self.sent < self.plan.chunks() {
            self.tool_bytes
        } else {
            0
        };
        // Role, finish and usage chunks may share the frame, plus the short fixed events.
        (chunks + 3) * chunk + tools + ERROR_EVENT.len() + GARBAGE_EVENT.len() + DONE_EVENT.len()
    }

    /// Schedules the next chunk one `inter_token` after the previous deadline rather than after
    /// now, so wake-up latency under load does not add up over a long reply.
    fn arm_delay(&mut self) {
        let step = self.plan.inter_token;
        match self.delay.as_mut() {
            Some(delay) => {
                let deadline = delay.deadline() + step;
                delay.as_mut().reset(deadline);
            }
            None => self.delay = Some(Box::pin(sleep_until(Instant::now() + step))),
        }
        self.waiting = true;
    }
}

impl HttpBody for SseReply {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        let this = self.get_mut();
        loop {
            match this.phase {
                Phase::Done => return Poll::Ready(None),
                Phase::Cutting => {
                    this.phase = Phase::Done;
                    return Poll::Ready(Some(Err(Cut)));
                }
                Phase::Flushing => {
                    // hyper flushes its write buffer when the body is pending; failing right
                    // away would discard the chunks that were due before the cut.
                    this.phase = Phase::Cutting;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Phase::Start | Phase::Tokens => {}
            }
            if this.waiting {
                if let Some(delay) = this.delay.as_mut() {
                    ready!(delay.as_mut().poll(cx));
                }
                this.waiting = false;
            }
            let mut buf = Vec::with_capacity(this.frame_capacity());
            match this.fill(&mut buf) {
                Next::Wait => this.arm_delay(),
                Next::Flush => {}
                Next::End => this.phase = Phase::Done,
                Next::Cut => this.phase = Phase::Flushing,
            }
            if !buf.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.phase == Phase::Done
    }
}

/// `text` as the inside of a JSON string (what [`SseReply::push_content`] copies).
fn json_escaped(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    wire::push_json_string(&mut quoted, text);
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

/// The `choices` of the [`CHUNKS_PER_CALL`] chunks of call `index`: its id and name with empty
/// arguments, then the arguments in three pieces.
fn tool_call_choices(index: usize, call: &ToolCall) -> Vec<String> {
    const TAIL: &str = "]},\"logprobs\":null,\"finish_reason\":null}]";
    let open = format!("[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":{index},");

    let mut header = open.clone();
    header.push_str("\"id\":");
    wire::push_json_string(&mut header, &call.id);
    header.push_str(",\"type\":\"function\",\"function\":{\"name\":");
    wire::push_json_string(&mut header, &call.name);
    header.push_str(",\"arguments\":\"\"}}");
    header.push_str(TAIL);

    let mut choices = Vec::with_capacity(CHUNKS_PER_CALL);
    choices.push(header);
    for piece in call.argument_pieces() {
        let mut chunk = open.clone();
        chunk.push_str("\"function\":{\"arguments\":");
        wire::push_json_string(&mut chunk, piece);
        chunk.push_str("}}");
        chunk.push_str(TAIL);
        choices.push(chunk);
    }
    choices
}

/// A body that sends `data`, then drops the connection: a reply that stops mid-JSON.
pub(crate) struct CutBody {
    data: Option<Bytes>,
    phase: Phase,
}

impl CutBody {
    pub(crate) fn new(data: Bytes) -> Self {
        Self {
            data: Some(data),
            phase: Phase::Start,
        }
    }
}

impl HttpBody for CutBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        let this = self.get_mut();
        match this.phase {
            Phase::Start | Phase::Tokens => {
                this.phase = Phase::Flushing;
                match this.data.take() {
                    Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                    None => Poll::Ready(None),
                }
            }
            Phase::Flushing => {
                this.phase = Phase::Cutting;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Phase::Cutting => {
                this.phase = Phase::Done;
                Poll::Ready(Some(Err(Cut)))
            }
            Phase::Done => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    fn plan(tokens: usize) -> Plan {
        Plan {
            tokens,
            tool_calls: Vec::new(),
            finish_reason: "stop",
            usage: wire::Usage::new(5, tokens),
            include_usage: true,
            inter_token: Duration::ZERO,
            cut_after: None,
            error_after: None,
            garbage_after: None,
            echo: None,
            script: None,
        }
    }

    /// Polls a zero-delay body to its end with a no-op waker, collecting frames and the error.
    fn drain(body: SseReply) -> (Vec<Bytes>, bool) {
        let mut body = pin!(body);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut frames = Vec::new();
        loop {
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Ready(None) => return (frames, false),
                Poll::Ready(Some(Err(Cut))) => return (frames, true),
                Poll::Ready(Some(Ok(frame))) => frames.push(frame.into_data().unwrap()),
                Poll::Pending => {}
            }
        }
    }

    fn events(frames: &[Bytes]) -> Vec<serde_json::Value> {
        let text: String = frames
            .iter()
            .map(|frame| std::str::from_utf8(frame).unwrap())
            .collect();
        text.split_terminator("\n\n")
            .map(|event| event.strip_prefix("data: ").unwrap())
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    fn counter() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(0))
    }

    #[test]
    fn a_reply_dropped_before_its_end_counts_as_abandoned() {
        let finished = counter();
        drain(SseReply::new("c", 7, "m", plan(3), Arc::clone(&finished)));
        assert_eq!(finished.load(Ordering::Relaxed), 0);
        let abandoned = counter();
        drop(SseReply::new("c", 7, "m", plan(3), Arc::clone(&abandoned)));
        assert_eq!(abandoned.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_zero_delay_reply_is_one_frame_of_valid_chunks() {
        let body = SseReply::new("chatcmpl-1", 7, "Hermes \"4\"", plan(3), counter());

        let (frames, cut) = drain(body);

        assert!(!cut);
        assert_eq!(frames.len(), 1);
        let events = events(&frames);
        assert_eq!(events.len(), 1 + 3 + 1 + 1);
        assert_eq!(events[0]["model"], "Hermes \"4\"");
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(events[4]["choices"][0]["finish_reason"], "stop");
        assert_eq!(events[5]["usage"]["total_tokens"], 8);
        assert!(frames[0].ends_with(DONE_EVENT));
    }

    #[test]
    fn a_long_reply_is_split_into_bounded_frames() {
        let body = SseReply::new("chatcmpl-1", 7, "m", plan(2_000), counter());

        let (frames, _) = drain(body);

        assert!(frames.len() > 1);
        assert!(
            frames
                .iter()
                .all(|frame| frame.len() < 2 * FRAME_SOFT_LIMIT_BYTES)
        );
        assert_eq!(events(&frames).len(), 2_000 + 3);
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        }
    }

    fn tool_plan(tokens: usize) -> Plan {
        Plan {
            tool_calls: vec![
                call(
                    "call_0000000a",
                    "get_weather",
                    r#"{"city":"city-0","days":1}"#,
                ),
                call("call_0000000b", "now", "{}"),
            ],
            finish_reason: "tool_calls",
            ..plan(tokens)
        }
    }

    /// The `(id, name, arguments)` of each call index, reassembled from the chunks' deltas.
    fn reassemble(events: &[serde_json::Value]) -> Vec<(String, String, String)> {
        let mut calls: Vec<(String, String, String)> = Vec::new();
        for event in events {
            let Some(deltas) = event["choices"][0]["delta"]["tool_calls"].as_array() else {
                continue;
            };
            assert_eq!(deltas.len(), 1, "one call per chunk: {event}");
            let delta = &deltas[0];
            let index = usize::try_from(delta["index"].as_u64().unwrap()).unwrap();
            if let Some(id) = delta["id"].as_str() {
                assert_eq!(index, calls.len(), "a call starts after the previous one");
                assert_eq!(delta["type"], "function");
                let name = delta["function"]["name"].as_str().unwrap();
                calls.push((id.to_owned(), name.to_owned(), String::new()));
            }
            let arguments = delta["function"]["arguments"].as_str().unwrap();
            calls[index].2.push_str(arguments);
        }
        calls
    }

    #[test]
    fn a_tool_call_reply_streams_each_call_as_a_head_and_three_argument_pieces() {
        let body = SseReply::new("chatcmpl-1", 7, "m", tool_plan(0), counter());

        let (frames, cut) = drain(body);

        assert!(!cut);
        let events = events(&frames);
        // Role, 2 × (head + 3 pieces), finish, usage.
        assert_eq!(events.len(), 1 + 2 * 4 + 1 + 1);
        assert_eq!(
            events[0]["choices"][0]["delta"],
            serde_json::json!({"role": "assistant", "content": ""})
        );
        assert_eq!(
            events[1]["choices"][0]["delta"],
            serde_json::json!({"tool_calls": [{"index": 0, "id": "call_0000000a",
                "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
        );
        // 26 characters of arguments: pieces of 8, 9 and 9.
        assert_eq!(
            events[2]["choices"][0]["delta"],
            serde_json::json!({"tool_calls": [{"index": 0,
                "function": {"arguments": "{\"city\":"}}]})
        );
        for chunk in &events[1..9] {
            assert!(chunk["choices"][0]["delta"].get("content").is_none());
            assert!(chunk["choices"][0]["finish_reason"].is_null());
            assert!(chunk["usage"].is_null());
        }
        assert_eq!(
            reassemble(&events),
            [
                (
                    "call_0000000a".to_owned(),
                    "get_weather".to_owned(),
                    r#"{"city":"city-0","days":1}"#.to_owned()
                ),
                (
                    "call_0000000b".to_owned(),
                    "now".to_owned(),
                    "{}".to_owned()
                ),
            ]
        );
        let finish = &events[9]["choices"][0];
        assert_eq!(finish["delta"], serde_json::json!({}));
        assert_eq!(finish["finish_reason"], "tool_calls");
        assert_eq!(events[10]["choices"], serde_json::json!([]));
        assert!(frames.last().unwrap().ends_with(DONE_EVENT));
    }

    #[test]
    fn with_text_the_content_chunks_come_before_the_calls() {
        let body = SseReply::new("chatcmpl-1", 7, "m", tool_plan(3), counter());

        let events = events(&drain(body).0);

        assert_eq!(events.len(), 1 + 3 + 2 * 4 + 1 + 1);
        let text: String = events
            .iter()
            .filter_map(|event| event["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, reply::reply_text(3));
        assert_eq!(events[3]["choices"][0]["delta"]["content"], "and ");
        assert_eq!(
            events[4]["choices"][0]["delta"]["tool_calls"][0]["id"],
            "call_0000000a"
        );
        assert_eq!(reassemble(&events).len(), 2);
        assert_eq!(events[12]["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn failure_knobs_count_tool_call_chunks_too() {
        let cut = Plan {
            cut_after: Some(2),
            ..tool_plan(0)
        };
        let error = Plan {
            error_after: Some(5),
            ..tool_plan(0)
        };

        let (cut_frames, was_cut) = drain(SseReply::new("c", 7, "m", cut, counter()));
        let (error_frames, _) = drain(SseReply::new("c", 7, "m", error, counter()));

        assert!(was_cut);
        // Role, the first call's head and its first piece.
        assert_eq!(events(&cut_frames).len(), 1 + 2);
        let error_events = events(&error_frames);
        assert_eq!(error_events.len(), 1 + 5 + 1);
        assert_eq!(error_events[6]["error"]["code"], "mock_error");
        let second_call_head = &error_events[5]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(second_call_head["function"]["name"], "now");
    }

    #[test]
    fn an_echo_reply_sends_its_words_escaped() {
        let words = ["Say ", "\"<b>\"\n", "ok"].map(String::from).to_vec();
        let body = SseReply::new(
            "chatcmpl-1",
            7,
            "m",
            Plan {
                echo: Some(words),
                ..plan(3)
            },
            counter(),
        );

        let (frames, cut) = drain(body);

        assert!(!cut);
        let text: String = events(&frames)
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Say \"<b>\"\nok");
    }

    #[test]
    fn a_cut_reply_ends_with_an_error_after_its_chunks() {
        let body = SseReply::new(
            "chatcmpl-1",
            7,
            "m",
            Plan {
                cut_after: Some(2),
                ..plan(5)
            },
            counter(),
        );

        let (frames, cut) = drain(body);

        assert!(cut);
        assert_eq!(events(&frames).len(), 1 + 2);
    }
}
