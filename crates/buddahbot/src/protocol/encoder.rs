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
        ai_sdk::{self, TEXT_PART_ID, UiChunk},
        openai,
        responses::{self, ResponseId, Settings},
    },
    upstream::{
        Chunk,
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
    /// Forwards the upstream's own `chat.completion.chunk`s, byte for byte.
    OpenAi {
        /// Whether the client asked for the usage-only chunk.
        include_usage: bool,
    },
    /// Re-encodes the reply as the AI SDK's UI message stream.
    Ui {
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
    /// Output items started (text and calls), the next one's index.
    next_index: usize,
    calls: ToolCalls,
    /// Each call's output index, by position.
    call_indexes: Vec<usize>,
}

impl Encoder {
    pub fn new(format: ReplyFormat, include_usage: bool) -> Self {
        let kind = match format {
            ReplyFormat::OpenAi => Kind::OpenAi { include_usage },
            ReplyFormat::Ui | ReplyFormat::Responses => Kind::Ui {
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

    /// The events for one upstream chunk.
    pub fn chunk(&mut self, chunk: &Chunk<'_>, sink: &mut impl EventSink) {
        match &mut self.kind {
            Kind::OpenAi { include_usage } => {
                if !*include_usage && chunk.view.is_usage_only() {
                    return;
                }
                if chunk.raw.contains(&b'\n') {
                    // Data sent over several `data:` lines arrives joined by newlines. A raw
                    // newline can only sit between JSON tokens, where a space means the same
                    // and keeps the event on one line of ours.
                    self.scratch.clear();
                    self.scratch
                        .extend(chunk.raw.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
                    sink.event(&self.scratch);
                } else {
                    sink.event(chunk.raw);
                }
            }
            Kind::Responses(stream) => {
                for choice in &chunk.view.choices {
                    if let Some(delta) = choice.delta.content.as_deref().filter(|d| !d.is_empty()) {
                        stream.text_delta(delta, sink);
                    }
                    for piece in choice.delta.tool_calls.iter().flatten() {
                        let mut pieces = Vec::new();
                        stream.calls.add(piece, |_, piece| pieces.push(piece));
                        for piece in pieces {
                            stream.call_piece(piece, sink);
                        }
                    }
                }
            }
            Kind::Ui {
                text_open, calls, ..
            } => {
                let scratch = &mut self.scratch;
                for choice in &chunk.view.choices {
                    if let Some(delta) = choice.delta.content.as_deref().filter(|d| !d.is_empty()) {
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
                    for piece in choice.delta.tool_calls.iter().flatten() {
                        calls.add(piece, |calls, piece| {
                            tool_piece_events(calls, piece, text_open, scratch, sink);
                        });
                    }
                }
            }
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
            self.close_text(sink);
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
            Kind::OpenAi { .. } => sink.event(
                openai::error_event(failure.code, "server_error", failure.message).as_bytes(),
            ),
            Kind::Ui { .. } | Kind::Responses(_) => {
                self.close_text(sink);
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
            Kind::OpenAi { .. } => sink.event(openai::stop_chunk(reply).as_bytes()),
            Kind::Ui { .. } | Kind::Responses(_) => {
                self.close_text(sink);
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
                if !reply.content.is_empty() {
                    stream.text_delta(&reply.content, sink);
                }
                for call in reply.tool_calls.iter().flatten() {
                    stream.whole_call(call, sink);
                }
            }
            self.finish(reply, sink);
            return;
        }
        match self.kind {
            Kind::OpenAi { include_usage } => {
                for chunk in openai::replay_chunks(reply, include_usage) {
                    sink.event(chunk.as_bytes());
                }
            }
            Kind::Ui { .. } | Kind::Responses(_) => {
                self.open(&reply.id, sink);
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

    /// `text-end` for an open text part, so the client marks what arrived as complete.
    fn close_text(&mut self, sink: &mut impl EventSink) {
        if let Kind::Ui { text_open, .. } = &mut self.kind
            && *text_open
        {
            *text_open = false;
            write_ui(
                &mut self.scratch,
                &UiChunk::TextEnd { id: TEXT_PART_ID },
                sink,
            );
        }
    }

    fn ui(&mut self, chunk: &UiChunk<'_>, sink: &mut impl EventSink) {
        write_ui(&mut self.scratch, chunk, sink);
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

    fn text_item_id(&self) -> String {
        responses::message_item_id(&self.id.reply)
    }

    fn text_delta(&mut self, delta: &str, sink: &mut impl EventSink) {
        if self.text.is_none() {
            let index = self.next_index;
            self.next_index += 1;
            self.text = Some((index, String::new()));
            let item_id = self.text_item_id();
            self.emit(
                "response.output_item.added",
                json!({ "output_index": index, "item": {
                    "id": item_id, "type": "message", "status": "in_progress",
                    "role": "assistant", "content": [],
                } }),
                sink,
            );
            self.emit(
                "response.content_part.added",
                json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                    "part": responses::output_text("") }),
                sink,
            );
        }
        let item_id = self.text_item_id();
        let Some((index, text)) = &mut self.text else {
            return;
        };
        text.push_str(delta);
        let index = *index;
        self.emit(
            "response.output_text.delta",
            json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                "delta": delta, "logprobs": [] }),
            sink,
        );
    }

    /// Ends the text item, if one is open.
    fn close_text(&mut self, sink: &mut impl EventSink) {
        let Some((index, text)) = self.text.take() else {
            return;
        };
        let item_id = self.text_item_id();
        self.emit(
            "response.output_text.done",
            json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                "text": text, "logprobs": [] }),
            sink,
        );
        self.emit(
            "response.content_part.done",
            json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                "part": responses::output_text(&text) }),
            sink,
        );
        self.emit(
            "response.output_item.done",
            json!({ "output_index": index, "item": {
                "id": item_id, "type": "message", "status": "completed", "role": "assistant",
                "content": [responses::output_text(&text)],
            } }),
            sink,
        );
    }

    fn call_piece(&mut self, piece: CallPiece<'_>, sink: &mut impl EventSink) {
        match piece {
            CallPiece::Started { position } => {
                self.close_text(sink);
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
        self.close_text(sink);
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
        });
        m
    }

    fn chunk_events(encoder: &mut Encoder, raws: &[&str], out: &mut Vec<String>) {
        for raw in raws {
            let view: ChunkView<'_> = serde_json::from_str(raw).unwrap();
            encoder.chunk(
                &Chunk {
                    raw: raw.as_bytes(),
                    view,
                },
                out,
            );
        }
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
