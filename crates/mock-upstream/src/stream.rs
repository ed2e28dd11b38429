//! Response bodies: the SSE reply ([`SseReply`]) and a JSON body cut short ([`CutBody`]).
//!
//! Both implement `http_body::Body` by hand rather than wrapping a channel or a boxed stream:
//! a reply is a small state machine, and this way a zero-delay reply costs one allocation for
//! the template, one buffer and one socket write, whatever its length. Deciding *what* to send
//! (token count, failures) is the handler's job; this module only sends it.

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

use crate::{reply, wire};

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
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Content chunks to send (the configured length, capped by `max_tokens`).
    pub tokens: usize,
    /// `"stop"`, or `"length"` when `max_tokens` cut the reply short.
    pub finish_reason: &'static str,
    pub usage: wire::Usage,
    /// `stream_options.include_usage`: a usage chunk at the end and `"usage":null` before it.
    pub include_usage: bool,
    pub inter_token: Duration,
    pub cut_after: Option<usize>,
    pub error_after: Option<usize>,
    pub garbage_after: Option<usize>,
}

impl Plan {
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
/// [`crate::reply`]) and a fixed tail, copied into the frame buffer. Chunks not separated by a
/// delay share a frame, so with no delays the whole reply is one write, and the response head,
/// which hyper sends when it first polls the body, leaves in the same packet as the first chunk.
pub(crate) struct SseReply {
    /// `data: {"id":…,"object":"chat.completion.chunk",…,"choices":` of every chunk.
    head: String,
    plan: Plan,
    /// Content chunks written so far; failure knobs count in these.
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
        Self {
            head,
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

    fn push_finish(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.head.as_bytes());
        buf.extend_from_slice(b"[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"");
        buf.extend_from_slice(self.plan.finish_reason.as_bytes());
        buf.extend_from_slice(b"\"}]");
        self.push_chunk_end(buf);
        if self.plan.include_usage {
            let usage = self.plan.usage;
            buf.extend_from_slice(self.head.as_bytes());
            buf.extend_from_slice(
                format!(
                    "[],\"usage\":{{\"prompt_tokens\":{},\"completion_tokens\":{},\
                     \"total_tokens\":{}}}}}\n\n",
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
            if sent >= self.plan.tokens {
                self.push_finish(buf);
                return Next::End;
            }
            self.push_content(buf, reply::token(sent));
            self.sent = sent + 1;
            // The finish chunk follows the last token at once, as with a real model; an
            // injected failure waits like a token would.
            let more = self.sent < self.plan.tokens || self.plan.acts_at(self.sent);
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
            let remaining = self.plan.tokens.saturating_sub(self.sent);
            remaining.min(FRAME_SOFT_LIMIT_BYTES / chunk + 1)
        } else {
            1
        };
        // Role, finish and usage chunks may share the frame, plus the short fixed events.
        (chunks + 3) * chunk + ERROR_EVENT.len() + GARBAGE_EVENT.len() + DONE_EVENT.len()
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
            finish_reason: "stop",
            usage: wire::Usage::new(5, tokens),
            include_usage: true,
            inter_token: Duration::ZERO,
            cut_after: None,
            error_after: None,
            garbage_after: None,
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
