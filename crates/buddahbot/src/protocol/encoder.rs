//! Every wire format's event sequence, for live replies and replays alike: the turn machinery
//! (the tee, the store writes, `[DONE]` after the store) is the same for every format; only
//! the events differ, and this is the one place that knows them.
//!
//! The encoder writes each event's `data:` payload into an [`EventSink`]: the live turn's
//! outlet (which names it and frames it for the client and the log), or a plain `Vec` for a
//! replay or a test.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::{
    domain::{ChatMessage, MessageId, ReplyFormat, ToolCall},
    protocol::{
        ai_sdk::{self, REASONING_PART_ID, TEXT_PART_ID, UiChunk},
        openai,
        responses::{self, ResponseId, Settings},
    },
    upstream::{
        Chunk,
        markup::{Piece, Splitter},
        tool_calls::{CallPiece, ToolCalls},
    },
};

/// Where encoded events go, one `data:` payload at a time.
pub trait EventSink {
    fn event(&mut self, data: &[u8]);

    /// An event with an SSE `event:` name (the Responses API names each by its type).
    fn typed_event(&mut self, _kind: &str, data: &[u8]) {
        self.event(data);
    }
}

impl EventSink for Vec<String> {
    fn event(&mut self, data: &[u8]) {
        self.push(String::from_utf8_lossy(data).into_owned());
    }
}

/// How the failure that ended a stream is described to the client: the code is the edge
/// error's (`ApiError::code`) for the same cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// Turns upstream chunks and the turn's outcome into events.
pub struct Encoder {
    kind: Kind,
    /// Reused for every event this encoder serializes.
    scratch: Vec<u8>,
}

enum Kind {
    /// Forwards the upstream's own `chat.completion.chunk`s, byte for byte, when they are
    /// plain answer text; rewrites those that carry reasoning or markup (one chunk per piece,
    /// reasoning as `delta.reasoning_content`).
    OpenAi(OpenAiStream),
    /// Re-encodes the reply as the AI SDK's UI message stream.
    Ui {
        /// Whether `reasoning-start` went out and no `reasoning-end` yet.
        reasoning_open: bool,
        /// Whether `text-start` went out (it waits for the first text).
        text_open: bool,
        /// The tool calls streamed so far (their ids name their events).
        calls: ToolCalls,
        /// The message the events extend when the turn continues one (after tool results);
        /// else the reply's own id is announced.
        continues: Option<MessageId>,
    },
    /// The Responses API's typed events, numbered by `sequence_number`.
    Responses(Box<ResponseStream>),
}

/// An OpenAI stream's state.
struct OpenAiStream {
    /// Whether the client asked for the usage-only chunk.
    include_usage: bool,
    /// The current chunk went out as it came: its pieces are not encoded again.
    forwarded: bool,
    /// The completion's id, time and model, for the chunks we write.
    head: Option<openai::ChunkHead>,
}

/// A streamed response's state: its identity and the output items open so far.
pub struct ResponseStream {
    id: ResponseId,
    settings: Arc<Settings>,
    model: String,
    created_at: i64,
    /// The next event's `sequence_number`.
    seq: u64,
    /// The text item being written: its output index and text so far.
    text: Option<(usize, String)>,
    /// The reasoning item being written: its output index and text so far.
    reasoning: Option<(usize, String)>,
    /// Output items started (text and calls), the next one's index.
    next_index: usize,
    calls: ToolCalls,
    /// Each call's output index, by position.
    call_indexes: Vec<usize>,
}

impl Encoder {
    pub fn new(format: ReplyFormat, include_usage: bool) -> Self {
        let kind = match format {
            ReplyFormat::OpenAi => Kind::OpenAi(OpenAiStream {
                include_usage,
                forwarded: false,
                head: None,
            }),
            ReplyFormat::Ui | ReplyFormat::Responses => Kind::Ui {
                reasoning_open: false,
                text_open: false,
                calls: ToolCalls::default(),
                continues: None,
            },
        };
        Self {
            kind,
            scratch: Vec::with_capacity(256),
        }
    }

    /// The reply continues the AI SDK message `id` (the tool results' message), whose id its
    /// `start` event repeats so the client extends that message.
    #[must_use]
    pub fn continuing(mut self, id: Option<&MessageId>) -> Self {
        if let Kind::Ui { continues, .. } = &mut self.kind {
            *continues = id.cloned();
        }
        self
    }

    /// The stream is the Responses API's events of response `id` (the turn is one).
    #[must_use]
    pub fn responding(
        mut self,
        id: ResponseId,
        settings: Arc<Settings>,
        model: &str,
        created_at: i64,
    ) -> Self {
        self.kind = Kind::Responses(Box::new(ResponseStream {
            calls: ToolCalls::new(id.reply.as_str()),
            id,
            settings,
            model: model.to_owned(),
            created_at,
            seq: 0,
            text: None,
            reasoning: None,
            next_index: 0,
            call_indexes: Vec::new(),
        }));
        self
    }

    /// The events that open the stream of reply `reply_id`, before any chunk.
    pub fn open(&mut self, reply_id: &MessageId, sink: &mut impl EventSink) {
        if let Kind::Responses(stream) = &mut self.kind {
            let object = stream.object(responses::Status::InProgress, None, None);
            stream.emit("response.created", json!({ "response": object }), sink);
            let object = stream.object(responses::Status::InProgress, None, None);
            stream.emit("response.in_progress", json!({ "response": object }), sink);
            return;
        }
        if let Kind::Ui {
            calls, continues, ..
        } = &mut self.kind
        {
            *calls = ToolCalls::new(reply_id.as_str());
            let announced = continues.as_ref().unwrap_or(reply_id);
            write_ui(
                &mut self.scratch,
                &UiChunk::Start {
                    message_id: announced.as_str(),
                },
                sink,
            );
            self.ui(&UiChunk::StartStep, sink);
        }
    }

    /// The events for one upstream chunk, before its pieces: an OpenAI client gets a `plain`
    /// chunk (see [`Splitter::is_plain`]) as it came, and the role of one that is rewritten.
    pub fn chunk(&mut self, chunk: &Chunk<'_>, plain: bool, sink: &mut impl EventSink) {
        if let Kind::OpenAi(stream) = &mut self.kind {
            stream.chunk(chunk, plain, &mut self.scratch, sink);
        }
    }

    /// The events for one piece of what the model says (of the current chunk, or held back
    /// until the end of the reply).
    pub fn piece(&mut self, piece: &Piece<'_>, sink: &mut impl EventSink) {
        match &mut self.kind {
            Kind::OpenAi(stream) => stream.piece(piece, sink),
            Kind::Responses(stream) => match piece {
                Piece::Reasoning(text) => stream.grow(Growing::Reasoning, text, sink),
                Piece::Text(text) => stream.grow(Growing::Text, text, sink),
                Piece::Call(call) => {
                    let mut pieces = Vec::new();
                    stream.calls.add(call, |_, piece| pieces.push(piece));
                    for piece in pieces {
                        stream.call_piece(piece, sink);
                    }
                }
            },
            Kind::Ui {
                reasoning_open,
                text_open,
                calls,
                ..
            } => {
                let scratch = &mut self.scratch;
                if !matches!(piece, Piece::Reasoning(_)) && *reasoning_open {
                    *reasoning_open = false;
                    write_ui(
                        scratch,
                        &UiChunk::ReasoningEnd {
                            id: REASONING_PART_ID,
                        },
                        sink,
                    );
                }
                match piece {
                    Piece::Reasoning(delta) => {
                        if *text_open {
                            *text_open = false;
                            write_ui(scratch, &UiChunk::TextEnd { id: TEXT_PART_ID }, sink);
                        }
                        if !*reasoning_open {
                            *reasoning_open = true;
                            write_ui(
                                scratch,
                                &UiChunk::ReasoningStart {
                                    id: REASONING_PART_ID,
                                },
                                sink,
                            );
                        }
                        write_ui(
                            scratch,
                            &UiChunk::ReasoningDelta {
                                id: REASONING_PART_ID,
                                delta,
                            },
                            sink,
                        );
                    }
                    Piece::Text(delta) => {
                        if !*text_open {
                            *text_open = true;
                            write_ui(scratch, &UiChunk::TextStart { id: TEXT_PART_ID }, sink);
                        }
                        write_ui(
                            scratch,
                            &UiChunk::TextDelta {
                                id: TEXT_PART_ID,
                                delta,
                            },
                            sink,
                        );
                    }
                    Piece::Call(call) => calls.add(call, |calls, piece| {
                        tool_piece_events(calls, piece, text_open, scratch, sink);
                    }),
                }
            }
        }
    }

    /// The events that end one upstream chunk, after its pieces: a rewritten OpenAI chunk's
    /// finish reason (as `splitter` gives it) and usage.
    pub fn end_chunk(&mut self, chunk: &Chunk<'_>, splitter: &Splitter, sink: &mut impl EventSink) {
        if let Kind::OpenAi(stream) = &mut self.kind {
            stream.end_chunk(chunk, splitter, sink);
        }
    }

    /// The thread's new title, for AI SDK clients: a transient `data-thread-title` part
    /// (`{threadId, title}`), which `useChat` hands to `onData` without keeping it.
    pub fn thread_title(
        &mut self,
        thread: &crate::domain::ThreadId,
        title: &crate::domain::Title,
        sink: &mut impl EventSink,
    ) {
        if let Kind::Ui { .. } = self.kind {
            let part = json!({
                "type": "data-thread-title",
                "data": { "threadId": thread, "title": title },
                "transient": true,
            });
            sink.event(part.to_string().as_bytes());
        }
    }

    /// The events that end a stream whose reply was stored: the last of them is `[DONE]`.
    /// AI SDK clients get each stored tool call's whole input (`tool-input-available`, on
    /// which `useChat` runs its `onToolCall`) only now, once the call is stored.
    pub fn finish(&mut self, reply: &ChatMessage, sink: &mut impl EventSink) {
        if let Kind::Responses(stream) = &mut self.kind {
            stream.close_items(Some(reply), sink);
            let status = responses::Status::of(reply);
            let kind = match status {
                responses::Status::Completed => "response.completed",
                _ => "response.incomplete",
            };
            let object = stream.object(status, Some(reply), None);
            stream.emit(kind, json!({ "response": object }), sink);
            return;
        }
        if let Kind::Ui { .. } = self.kind {
            self.close_parts(sink);
            for call in reply.tool_calls.iter().flatten() {
                self.tool_input(call, sink);
            }
            self.ui(&UiChunk::FinishStep, sink);
            sink.event(ai_sdk::finish(reply).as_bytes());
        }
        sink.event(openai::DONE.as_bytes());
    }

    /// The events that end a stream after a failure. OpenAI clients get one error event (the
    /// official SDKs raise on it) and no `[DONE]`; AI SDK clients get `error`, then `finish`
    /// with `finishReason: "error"` and `[DONE]`, as `ai`'s own servers send.
    pub fn fail(&mut self, failure: &Failure<'_>, sink: &mut impl EventSink) {
        if let Kind::Responses(stream) = &mut self.kind {
            stream.close_items(None, sink);
            let error = Some((failure.code, failure.message));
            let object = stream.object(responses::Status::Failed, None, error);
            stream.emit("response.failed", json!({ "response": object }), sink);
            return;
        }
        match self.kind {
            Kind::OpenAi(_) => sink.event(
                openai::error_event(failure.code, "server_error", failure.message).as_bytes(),
            ),
            Kind::Ui { .. } | Kind::Responses(_) => {
                self.close_parts(sink);
                self.ui(
                    &UiChunk::Error {
                        error_text: failure.message,
                    },
                    sink,
                );
                self.ui(
                    &UiChunk::Finish {
                        finish_reason: "error",
                        message_metadata: None,
                    },
                    sink,
                );
                sink.event(openai::DONE.as_bytes());
            }
        }
    }

    /// The events that end a stream stopped on request (its partial reply stored): OpenAI
    /// clients get a last chunk with `finish_reason: "stop"`, AI SDK clients `abort`; both
    /// then `[DONE]`.
    pub fn stop(&mut self, reply: &ChatMessage, sink: &mut impl EventSink) {
        if let Kind::Responses(stream) = &mut self.kind {
            stream.close_items(Some(reply), sink);
            let object = stream.object(responses::Status::Cancelled, Some(reply), None);
            stream.emit("response.incomplete", json!({ "response": object }), sink);
            return;
        }
        match self.kind {
            Kind::OpenAi(_) => sink.event(openai::stop_chunk(reply).as_bytes()),
            Kind::Ui { .. } | Kind::Responses(_) => {
                self.close_parts(sink);
                self.ui(&UiChunk::Abort { reason: "stopped" }, sink);
            }
        }
        sink.event(openai::DONE.as_bytes());
    }

    /// A stored reply as a whole stream, as a retried request gets it: the events a live
    /// stream carries, with the whole text (and each tool call) at once, ending in `[DONE]`.
    pub fn replay(&mut self, reply: &ChatMessage, sink: &mut impl EventSink) {
        if let Kind::Responses(_) = self.kind {
            // The live sequence, with the whole text and each call at once.
            self.open(&reply.id, sink);
            if let Kind::Responses(stream) = &mut self.kind {
                if let Some(reasoning) = reply.reasoning.as_deref().filter(|r| !r.is_empty()) {
                    stream.grow(Growing::Reasoning, reasoning, sink);
                }
                if !reply.content.is_empty() {
                    stream.grow(Growing::Text, &reply.content, sink);
                }
                for call in reply.tool_calls.iter().flatten() {
                    stream.whole_call(call, sink);
                }
            }
            self.finish(reply, sink);
            return;
        }
        match self.kind {
            Kind::OpenAi(OpenAiStream { include_usage, .. }) => {
                for chunk in openai::replay_chunks(reply, include_usage) {
                    sink.event(chunk.as_bytes());
                }
            }
            Kind::Ui { .. } | Kind::Responses(_) => {
                self.open(&reply.id, sink);
                if let Some(reasoning) = reply.reasoning.as_deref().filter(|r| !r.is_empty()) {
                    self.ui(
                        &UiChunk::ReasoningStart {
                            id: REASONING_PART_ID,
                        },
                        sink,
                    );
                    self.ui(
                        &UiChunk::ReasoningDelta {
                            id: REASONING_PART_ID,
                            delta: reasoning,
                        },
                        sink,
                    );
                    self.ui(
                        &UiChunk::ReasoningEnd {
                            id: REASONING_PART_ID,
                        },
                        sink,
                    );
                }
                let calls = reply.tool_calls.as_deref().unwrap_or_default();
                // The text part opens even for an empty reply, so the client shows one
                // (unless the reply is tool calls alone).
                if !reply.content.is_empty() || calls.is_empty() {
                    self.ui(&UiChunk::TextStart { id: TEXT_PART_ID }, sink);
                    if !reply.content.is_empty() {
                        self.ui(
                            &UiChunk::TextDelta {
                                id: TEXT_PART_ID,
                                delta: &reply.content,
                            },
                            sink,
                        );
                    }
                    self.ui(&UiChunk::TextEnd { id: TEXT_PART_ID }, sink);
                }
                for call in calls {
                    self.ui(
                        &UiChunk::ToolInputStart {
                            tool_call_id: &call.id,
                            tool_name: &call.name,
                        },
                        sink,
                    );
                    if !call.arguments.is_empty() {
                        self.ui(
                            &UiChunk::ToolInputDelta {
                                tool_call_id: &call.id,
                                input_text_delta: &call.arguments,
                            },
                            sink,
                        );
                    }
                    self.tool_input(call, sink);
                }
                self.ui(&UiChunk::FinishStep, sink);
                sink.event(ai_sdk::finish(reply).as_bytes());
            }
        }
        sink.event(openai::DONE.as_bytes());
    }

    /// A tool call's whole input: `tool-input-available`, or `tool-input-error` when the
    /// model's arguments are not JSON (the client shows the call as failed).
    fn tool_input(&mut self, call: &ToolCall, sink: &mut impl EventSink) {
        let raw = if call.arguments.trim().is_empty() {
            "{}"
        } else {
            call.arguments.as_str()
        };
        match serde_json::from_str::<Value>(raw) {
            Ok(input) => self.ui(
                &UiChunk::ToolInputAvailable {
                    tool_call_id: &call.id,
                    tool_name: &call.name,
                    input: &input,
                },
                sink,
            ),
            Err(err) => {
                let error_text = format!("The model's arguments are not JSON: {err}");
                self.ui(
                    &UiChunk::ToolInputError {
                        tool_call_id: &call.id,
                        tool_name: &call.name,
                        input: &Value::String(call.arguments.clone()),
                        error_text: &error_text,
                    },
                    sink,
                );
            }
        }
    }

    /// `reasoning-end` and `text-end` for open parts, so the client marks what arrived as
    /// complete.
    fn close_parts(&mut self, sink: &mut impl EventSink) {
        if let Kind::Ui {
            reasoning_open,
            text_open,
            ..
        } = &mut self.kind
        {
            if std::mem::take(reasoning_open) {
                write_ui(
                    &mut self.scratch,
                    &UiChunk::ReasoningEnd {
                        id: REASONING_PART_ID,
                    },
                    sink,
                );
            }
            if std::mem::take(text_open) {
                write_ui(
                    &mut self.scratch,
                    &UiChunk::TextEnd { id: TEXT_PART_ID },
                    sink,
                );
            }
        }
    }

    fn ui(&mut self, chunk: &UiChunk<'_>, sink: &mut impl EventSink) {
        write_ui(&mut self.scratch, chunk, sink);
    }
}

impl OpenAiStream {
    /// A `plain` chunk (see [`Splitter::is_plain`]) goes out as it came; a rewritten one's
    /// role goes out at once, its pieces as [`piece`](Self::piece) writes them.
    fn chunk(
        &mut self,
        chunk: &Chunk<'_>,
        plain: bool,
        scratch: &mut Vec<u8>,
        sink: &mut impl EventSink,
    ) {
        if self.head.is_none() && chunk.view.id.is_some() {
            self.head = Some(openai::ChunkHead::of(&chunk.view));
        }
        self.forwarded = plain;
        if !plain {
            if chunk.view.choices.iter().any(|c| c.delta.role.is_some()) {
                let role = json!({ "role": "assistant", "content": "" });
                sink.event(self.head().delta_chunk(&role).as_bytes());
            }
            return;
        }
        if !self.include_usage && chunk.view.is_usage_only() {
            return;
        }
        if chunk.raw.contains(&b'\n') {
            // Data sent over several `data:` lines arrives joined by newlines. A raw
            // newline can only sit between JSON tokens, where a space means the same
            // and keeps the event on one line of ours.
            scratch.clear();
            scratch.extend(chunk.raw.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
            sink.event(scratch);
        } else {
            sink.event(chunk.raw);
        }
    }

    /// A rewritten chunk's piece as a chunk of its own: reasoning as `reasoning_content`.
    fn piece(&mut self, piece: &Piece<'_>, sink: &mut impl EventSink) {
        if self.forwarded {
            return;
        }
        let delta = match piece {
            Piece::Reasoning(text) => json!({ "reasoning_content": text }),
            Piece::Text(text) => json!({ "content": text }),
            Piece::Call(call) => json!({ "tool_calls": [call] }),
        };
        sink.event(self.head().delta_chunk(&delta).as_bytes());
    }

    /// A rewritten chunk's finish reason (as `splitter` gives it) and usage.
    fn end_chunk(&mut self, chunk: &Chunk<'_>, splitter: &Splitter, sink: &mut impl EventSink) {
        if std::mem::take(&mut self.forwarded) {
            return;
        }
        let finish_reason = chunk
            .view
            .choices
            .iter()
            .find_map(|c| c.finish_reason.as_deref())
            .map(|reason| splitter.finish_reason(reason));
        let usage = chunk.view.usage.filter(|_| self.include_usage);
        if finish_reason.is_some() || usage.is_some() {
            sink.event(self.head().finish_chunk(finish_reason, usage).as_bytes());
        }
    }

    fn head(&mut self) -> &openai::ChunkHead {
        self.head.get_or_insert_with(openai::ChunkHead::default)
    }
}

/// An output item of one content part that grows as the model writes: the message's text,
/// or the reasoning. Both stream alike (added, part added, deltas, done, part done, done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Growing {
    Text,
    Reasoning,
}

impl Growing {
    fn other(self) -> Self {
        match self {
            Self::Text => Self::Reasoning,
            Self::Reasoning => Self::Text,
        }
    }

    fn item_id(self, reply: &MessageId) -> String {
        match self {
            Self::Text => responses::message_item_id(reply),
            Self::Reasoning => responses::reasoning_item_id(reply),
        }
    }

    fn part(self, text: &str) -> Value {
        match self {
            Self::Text => responses::output_text(text),
            Self::Reasoning => responses::reasoning_text(text),
        }
    }

    /// The item: in progress and empty, or completed with its `text`.
    fn item(self, id: &str, text: Option<&str>) -> Value {
        match (self, text) {
            (Self::Text, None) => json!({
                "id": id, "type": "message", "status": "in_progress", "role": "assistant",
                "content": [],
            }),
            (Self::Text, Some(text)) => json!({
                "id": id, "type": "message", "status": "completed", "role": "assistant",
                "content": [responses::output_text(text)],
            }),
            (Self::Reasoning, None) => json!({
                "id": id, "type": "reasoning", "status": "in_progress", "summary": [],
                "content": [],
            }),
            (Self::Reasoning, Some(text)) => responses::reasoning_item(id, text),
        }
    }

    fn delta_event(self) -> &'static str {
        match self {
            Self::Text => "response.output_text.delta",
            Self::Reasoning => "response.reasoning_text.delta",
        }
    }

    fn done_event(self) -> &'static str {
        match self {
            Self::Text => "response.output_text.done",
            Self::Reasoning => "response.reasoning_text.done",
        }
    }

    /// An event's body, with the `logprobs` output text events carry.
    fn with_logprobs(self, mut body: Value) -> Value {
        if self == Self::Text {
            body["logprobs"] = json!([]);
        }
        body
    }
}

impl ResponseStream {
    /// Writes one event: its `type` and `sequence_number` first, then `body`'s fields.
    fn emit(&mut self, kind: &str, body: Value, sink: &mut impl EventSink) {
        let mut event = serde_json::Map::new();
        event.insert("type".to_owned(), Value::from(kind));
        event.insert("sequence_number".to_owned(), Value::from(self.seq));
        if let Value::Object(fields) = body {
            event.extend(fields);
        }
        self.seq += 1;
        let data = serde_json::to_vec(&Value::Object(event)).unwrap_or_default();
        sink.typed_event(kind, &data);
    }

    fn object(
        &self,
        status: responses::Status,
        reply: Option<&ChatMessage>,
        error: Option<(&str, &str)>,
    ) -> Value {
        responses::object(
            &self.id,
            &self.settings,
            &self.model,
            self.created_at,
            status,
            reply,
            error,
        )
    }

    /// Streams `delta` into the item of `kind`, opening it (and closing the other one) first.
    fn grow(&mut self, kind: Growing, delta: &str, sink: &mut impl EventSink) {
        self.close(kind.other(), sink);
        let item_id = kind.item_id(&self.id.reply);
        if self.growing(kind).is_none() {
            let index = self.next_index;
            self.next_index += 1;
            *self.growing(kind) = Some((index, String::new()));
            self.emit(
                "response.output_item.added",
                json!({ "output_index": index, "item": kind.item(&item_id, None) }),
                sink,
            );
            self.emit(
                "response.content_part.added",
                json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                    "part": kind.part("") }),
                sink,
            );
        }
        let Some((index, text)) = self.growing(kind) else {
            return;
        };
        text.push_str(delta);
        let index = *index;
        let body = json!({ "item_id": item_id, "output_index": index, "content_index": 0,
            "delta": delta });
        self.emit(kind.delta_event(), kind.with_logprobs(body), sink);
    }

    /// Ends the item of `kind`, if one is open.
    fn close(&mut self, kind: Growing, sink: &mut impl EventSink) {
        let Some((index, text)) = self.growing(kind).take() else {
            return;
        };
        let item_id = kind.item_id(&self.id.reply);
        let body = json!({ "item_id": item_id, "output_index": index, "content_index": 0,
            "text": text });
        self.emit(kind.done_event(), kind.with_logprobs(body), sink);
        self.emit(
            "response.content_part.done",
            json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                "part": kind.part(&text) }),
            sink,
        );
        self.emit(
            "response.output_item.done",
            json!({ "output_index": index, "item": kind.item(&item_id, Some(&text)) }),
            sink,
        );
    }

    /// The open item of `kind`: its output index and text so far.
    fn growing(&mut self, kind: Growing) -> &mut Option<(usize, String)> {
        match kind {
            Growing::Text => &mut self.text,
            Growing::Reasoning => &mut self.reasoning,
        }
    }

    fn call_piece(&mut self, piece: CallPiece<'_>, sink: &mut impl EventSink) {
        match piece {
            CallPiece::Started { position } => {
                self.close(Growing::Reasoning, sink);
                self.close(Growing::Text, sink);
                let index = self.next_index;
                self.next_index += 1;
                self.call_indexes.push(index);
                let Some(call) = self.calls.get(position).cloned() else {
                    return;
                };
                self.emit(
                    "response.output_item.added",
                    json!({ "output_index": index, "item": {
                        "type": "function_call", "id": responses::call_item_id(&call.id),
                        "call_id": call.id, "name": call.name, "arguments": "",
                        "status": "in_progress",
                    } }),
                    sink,
                );
            }
            CallPiece::Arguments { position, text } => {
                let (Some(call), Some(&index)) =
                    (self.calls.get(position), self.call_indexes.get(position))
                else {
                    return;
                };
                let item_id = responses::call_item_id(&call.id);
                self.emit(
                    "response.function_call_arguments.delta",
                    json!({ "item_id": item_id, "output_index": index, "delta": text }),
                    sink,
                );
            }
        }
    }

    /// A stored call as a replay sends it: added, its arguments at once.
    fn whole_call(&mut self, call: &ToolCall, sink: &mut impl EventSink) {
        let position = self.call_indexes.len();
        self.calls.push(call.clone());
        self.call_piece(CallPiece::Started { position }, sink);
        if !call.arguments.is_empty() {
            self.call_piece(
                CallPiece::Arguments {
                    position,
                    text: &call.arguments,
                },
                sink,
            );
        }
    }

    /// Ends every open item: the text, and each call (whole when the reply kept it).
    fn close_items(&mut self, reply: Option<&ChatMessage>, sink: &mut impl EventSink) {
        self.close(Growing::Reasoning, sink);
        self.close(Growing::Text, sink);
        let kept = reply
            .and_then(|r| r.tool_calls.as_deref())
            .unwrap_or_default();
        let calls = self.calls.as_slice().to_vec();
        for (position, call) in calls.iter().enumerate() {
            let Some(&index) = self.call_indexes.get(position) else {
                continue;
            };
            let whole = kept.iter().any(|k| k.id == call.id);
            let item_id = responses::call_item_id(&call.id);
            if whole {
                self.emit(
                    "response.function_call_arguments.done",
                    json!({ "item_id": item_id, "output_index": index,
                        "arguments": call.arguments }),
                    sink,
                );
            }
            self.emit(
                "response.output_item.done",
                json!({ "output_index": index, "item": {
                    "type": "function_call", "id": item_id, "call_id": call.id,
                    "name": call.name, "arguments": call.arguments,
                    "status": if whole { "completed" } else { "incomplete" },
                } }),
                sink,
            );
        }
    }
}

/// The events of one piece of a streamed tool call: a call's start closes the text part
/// before it (the client shows the parts in order).
fn tool_piece_events(
    calls: &ToolCalls,
    piece: CallPiece<'_>,
    text_open: &mut bool,
    scratch: &mut Vec<u8>,
    sink: &mut impl EventSink,
) {
    match piece {
        CallPiece::Started { position } => {
            let Some(call) = calls.get(position) else {
                return;
            };
            if *text_open {
                *text_open = false;
                write_ui(scratch, &UiChunk::TextEnd { id: TEXT_PART_ID }, sink);
            }
            write_ui(
                scratch,
                &UiChunk::ToolInputStart {
                    tool_call_id: &call.id,
                    tool_name: &call.name,
                },
                sink,
            );
        }
        CallPiece::Arguments { position, text } => {
            let Some(call) = calls.get(position) else {
                return;
            };
            write_ui(
                scratch,
                &UiChunk::ToolInputDelta {
                    tool_call_id: &call.id,
                    input_text_delta: text,
                },
                sink,
            );
        }
    }
}

fn write_ui(scratch: &mut Vec<u8>, chunk: &UiChunk<'_>, sink: &mut impl EventSink) {
    scratch.clear();
    chunk.write_to(scratch);
    sink.event(scratch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{Role, Usage},
        upstream::wire::ChunkView,
    };
    use serde_json::Value;

    fn reply(text: &str) -> ChatMessage {
        let mut m = ChatMessage::new(Role::Assistant, text);
        m.model = Some("Hermes-4-70B".into());
        m.finish_reason = Some("stop".into());
        m.usage = Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 2,
            reasoning_tokens: None,
        });
        m
    }

    /// The events of `raws`, each chunk split and encoded as the turn does.
    fn chunk_events(encoder: &mut Encoder, raws: &[&str], out: &mut Vec<String>) {
        let mut splitter = Splitter::new("r1", true);
        for raw in raws {
            let view: ChunkView<'_> = serde_json::from_str(raw).unwrap();
            let chunk = Chunk {
                raw: raw.as_bytes(),
                view,
            };
            let plain = splitter.is_plain(&chunk.view);
            encoder.chunk(&chunk, plain, out);
            splitter.split(&chunk.view, |piece| encoder.piece(&piece, out));
            encoder.end_chunk(&chunk, &splitter, out);
        }
        splitter.finish(|piece| encoder.piece(&piece, out));
    }

    fn kinds(events: &[String]) -> Vec<String> {
        events
            .iter()
            .map(|e| match serde_json::from_str::<Value>(e) {
                Ok(v) => v["type"].as_str().unwrap_or("chunk").to_owned(),
                Err(_) => e.clone(),
            })
            .collect()
    }

    const TEXT: &[&str] = &[
        r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
        r#"{"choices":[{"delta":{"content":"Fo"}}]}"#,
        r#"{"choices":[{"delta":{"content":"ur."},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}"#,
    ];

    #[test]
    fn openai_chunks_pass_through_as_they_came_and_usage_only_when_asked() {
        for (include_usage, want) in [(true, 4), (false, 3)] {
            let mut encoder = Encoder::new(ReplyFormat::OpenAi, include_usage);
            let mut out = Vec::new();
            encoder.open(&MessageId::new(), &mut out);
            chunk_events(&mut encoder, TEXT, &mut out);
            assert_eq!(out.len(), want);
            assert_eq!(out[..], TEXT[..want]);
            encoder.finish(&reply("Four."), &mut out);
            assert_eq!(out.last().unwrap(), "[DONE]");
        }
    }

    /// A reply that thinks inline, its tags cut across chunks.
    const THINKING: &[&str] = &[
        r#"{"id":"c1","created":7,"model":"m","choices":[{"delta":{"role":"assistant","content":""}}]}"#,
        r#"{"id":"c1","created":7,"model":"m","choices":[{"delta":{"content":"<thi"}}]}"#,
        r#"{"id":"c1","created":7,"model":"m","choices":[{"delta":{"content":"nk>Hm, 4.</th"}}]}"#,
        r#"{"id":"c1","created":7,"model":"m","choices":[{"delta":{"content":"ink>\n\nFo"}}]}"#,
        r#"{"id":"c1","created":7,"model":"m","choices":[{"delta":{"content":"ur."},"finish_reason":"stop"}]}"#,
    ];

    fn thinking_reply() -> ChatMessage {
        let mut reply = reply("Four.");
        reply.reasoning = Some("Hm, 4.".into());
        reply
    }

    #[test]
    fn openai_clients_get_reasoning_as_reasoning_content_and_plain_chunks_as_they_came() {
        let mut encoder = Encoder::new(ReplyFormat::OpenAi, false);
        let mut out = Vec::new();
        chunk_events(&mut encoder, THINKING, &mut out);
        assert_eq!(out[0], THINKING[0], "a plain chunk goes out as it came");
        let deltas: Vec<Value> = out[1..]
            .iter()
            .map(|e| serde_json::from_str::<Value>(e).unwrap())
            .inspect(|chunk| {
                assert_eq!((&chunk["id"], &chunk["created"]), (&json!("c1"), &json!(7)))
            })
            .map(|chunk| chunk["choices"][0]["delta"].clone())
            .collect();
        let text =
            |key: &str| -> String { deltas.iter().filter_map(|d| d[key].as_str()).collect() };
        assert_eq!(text("reasoning_content"), "Hm, 4.");
        assert_eq!(text("content"), "Four.");
        assert_eq!(
            out.last().unwrap(),
            THINKING[4],
            "plain again after the tags"
        );

        // A replay says the same.
        let mut out = Vec::new();
        Encoder::new(ReplyFormat::OpenAi, false).replay(&thinking_reply(), &mut out);
        let chunks: Vec<Value> = out[..out.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert_eq!(
            chunks[1]["choices"][0]["delta"]["reasoning_content"],
            "Hm, 4."
        );
        assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "Four.");
    }

    #[test]
    fn ui_and_responses_streams_send_a_reasoning_part_before_the_text_live_and_replayed() {
        let ui_kinds = [
            "start",
            "start-step",
            "reasoning-start",
            "reasoning-delta",
            "reasoning-end",
            "text-start",
            "text-delta",
            "text-end",
            "finish-step",
            "finish",
            "[DONE]",
        ];
        let mut encoder = Encoder::new(ReplyFormat::Ui, false);
        let mut out = Vec::new();
        encoder.open(&MessageId::new(), &mut out);
        chunk_events(&mut encoder, THINKING, &mut out);
        encoder.finish(&thinking_reply(), &mut out);
        let mut merged = kinds(&out);
        merged.dedup();
        assert_eq!(merged, ui_kinds);
        let mut replayed = Vec::new();
        Encoder::new(ReplyFormat::Ui, false).replay(&thinking_reply(), &mut replayed);
        assert_eq!(kinds(&replayed), ui_kinds);
        let delta: Value = serde_json::from_str(&replayed[3]).unwrap();
        assert_eq!(delta["delta"], "Hm, 4.");

        let responding = || {
            Encoder::new(ReplyFormat::Responses, false).responding(
                ResponseId {
                    reply: MessageId::new(),
                    thread: crate::domain::ThreadId::parse("t").unwrap(),
                },
                Arc::new(Settings::default()),
                "m",
                1,
            )
        };
        let mut live = Vec::new();
        let mut encoder = responding();
        encoder.open(&MessageId::new(), &mut live);
        chunk_events(&mut encoder, THINKING, &mut live);
        encoder.finish(&thinking_reply(), &mut live);
        let mut replayed = Vec::new();
        responding().replay(&thinking_reply(), &mut replayed);
        for events in [&live, &replayed] {
            let mut merged = kinds(events);
            merged.dedup();
            assert_eq!(
                merged,
                [
                    "response.created",
                    "response.in_progress",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.reasoning_text.delta",
                    "response.reasoning_text.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.output_text.delta",
                    "response.output_text.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.completed",
                ]
            );
            let done = events
                .iter()
                .map(|e| serde_json::from_str::<Value>(e).unwrap())
                .find(|e| e["type"] == "response.reasoning_text.done")
                .unwrap();
            assert_eq!(done["text"], "Hm, 4.");
            assert_eq!(done["output_index"], 0);
        }
    }

    #[test]
    fn a_chunk_sent_over_several_lines_goes_out_on_one() {
        let mut encoder = Encoder::new(ReplyFormat::OpenAi, false);
        let mut out = Vec::new();
        chunk_events(&mut encoder, &["{\"choices\":\n[]}"], &mut out);
        assert_eq!(out, ["{\"choices\": []}"]);
    }

    #[test]
    fn a_ui_stream_opens_the_text_at_the_first_text_and_closes_it_before_finish() {
        let mut encoder = Encoder::new(ReplyFormat::Ui, false);
        let mut out = Vec::new();
        let id = MessageId::new();
        encoder.open(&id, &mut out);
        chunk_events(&mut encoder, TEXT, &mut out);
        encoder.finish(&reply("Four."), &mut out);
        assert_eq!(
            kinds(&out),
            [
                "start",
                "start-step",
                "text-start",
                "text-delta",
                "text-delta",
                "text-end",
                "finish-step",
                "finish",
                "[DONE]"
            ]
        );
        let start: Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(start["messageId"], id.as_str());
        let delta: Value = serde_json::from_str(&out[4]).unwrap();
        assert_eq!(delta["delta"], "ur.");
        let finish: Value = serde_json::from_str(&out[7]).unwrap();
        assert_eq!(finish["finishReason"], "stop");
        assert_eq!(finish["messageMetadata"]["usage"]["completionTokens"], 2);
    }

    #[test]
    fn failures_and_stops_end_each_format_as_its_clients_expect() {
        let failure = Failure {
            code: "upstream_error",
            message: "It broke.",
        };
        let mut out = Vec::new();
        Encoder::new(ReplyFormat::OpenAi, false).fail(&failure, &mut out);
        assert_eq!(out.len(), 1, "no [DONE] after an OpenAI error event");
        let error: Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(error["error"]["code"], "upstream_error");

        let mut encoder = Encoder::new(ReplyFormat::Ui, false);
        let mut out = Vec::new();
        chunk_events(&mut encoder, &TEXT[1..2], &mut out);
        encoder.fail(&failure, &mut out);
        assert_eq!(
            kinds(&out),
            [
                "text-start",
                "text-delta",
                "text-end",
                "error",
                "finish",
                "[DONE]"
            ]
        );

        let mut out = Vec::new();
        Encoder::new(ReplyFormat::OpenAi, false).stop(&reply("Fo"), &mut out);
        let stop: Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(stop["choices"][0]["finish_reason"], "stop");
        assert_eq!(out[1], "[DONE]");

        let mut encoder = Encoder::new(ReplyFormat::Ui, false);
        let mut out = Vec::new();
        chunk_events(&mut encoder, &TEXT[1..2], &mut out);
        encoder.stop(&reply("Fo"), &mut out);
        assert_eq!(
            kinds(&out),
            ["text-start", "text-delta", "text-end", "abort", "[DONE]"]
        );
    }

    #[test]
    fn a_replay_is_the_live_sequence_with_the_whole_text_at_once() {
        let mut out = Vec::new();
        Encoder::new(ReplyFormat::Ui, false).replay(&reply("Four."), &mut out);
        assert_eq!(
            kinds(&out),
            [
                "start",
                "start-step",
                "text-start",
                "text-delta",
                "text-end",
                "finish-step",
                "finish",
                "[DONE]"
            ]
        );
        let mut out = Vec::new();
        Encoder::new(ReplyFormat::OpenAi, true).replay(&reply("Four."), &mut out);
        assert_eq!(out.len(), 5);
        assert_eq!(out.last().unwrap(), "[DONE]");
    }
}
