//! The turn's events in the client's wire format. The turn machinery (the tee, the store
//! writes, `[DONE]` after the store) is the same for every format; only the events differ.

use crate::{
    domain::{ChatMessage, MessageId},
    protocol::{
        ai_sdk::{self, TEXT_PART_ID, UiChunk},
        openai,
    },
    upstream::Chunk,
};

use super::request::ReplyFormat;

/// How the failure that ended a stream is described to the client.
pub struct Failure<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// Turns upstream chunks and the turn's outcome into SSE `data:` payloads.
pub enum Encoder {
    /// Forwards the upstream's own `chat.completion.chunk`s.
    OpenAi {
        /// Whether the client asked for the usage-only chunk.
        include_usage: bool,
    },
    /// Re-encodes the reply as the AI SDK's UI message stream.
    Ui {
        /// Whether `text-start` went out (it waits for the first text).
        text_open: bool,
    },
}

impl Encoder {
    pub fn new(format: ReplyFormat, include_usage: bool) -> Self {
        match format {
            ReplyFormat::OpenAi => Self::OpenAi { include_usage },
            ReplyFormat::Ui => Self::Ui { text_open: false },
        }
    }

    /// The events that open the stream, before any chunk.
    pub fn open(&mut self, reply_id: &MessageId) -> Vec<String> {
        match self {
            Self::OpenAi { .. } => Vec::new(),
            Self::Ui { .. } => vec![
                UiChunk::Start {
                    message_id: reply_id.as_str(),
                }
                .encode(),
                UiChunk::StartStep.encode(),
            ],
        }
    }

    /// The events for one upstream chunk.
    pub fn chunk(&mut self, chunk: Chunk) -> Vec<String> {
        match self {
            Self::OpenAi { include_usage } => {
                let usage_only = chunk.parsed.choices.is_empty() && chunk.parsed.usage.is_some();
                if *include_usage || !usage_only {
                    vec![chunk.raw]
                } else {
                    Vec::new()
                }
            }
            Self::Ui { text_open } => {
                let mut events = Vec::new();
                for choice in &chunk.parsed.choices {
                    let Some(delta) = choice.delta.content.as_deref() else {
                        continue;
                    };
                    if delta.is_empty() {
                        continue;
                    }
                    if !*text_open {
                        *text_open = true;
                        events.push(UiChunk::TextStart { id: TEXT_PART_ID }.encode());
                    }
                    events.push(
                        UiChunk::TextDelta {
                            id: TEXT_PART_ID,
                            delta,
                        }
                        .encode(),
                    );
                }
                events
            }
        }
    }

    /// The events that end a stream whose reply was stored: the last of them is `[DONE]`.
    pub fn finish(&mut self, reply: &ChatMessage) -> Vec<String> {
        match self {
            Self::OpenAi { .. } => vec![openai::DONE.to_owned()],
            Self::Ui { .. } => {
                let mut events = self.close_text();
                events.push(UiChunk::FinishStep.encode());
                events.push(ai_sdk::finish(reply));
                events.push(openai::DONE.to_owned());
                events
            }
        }
    }

    /// The events that end a stream after a failure. OpenAI clients get one error event (the
    /// official SDKs raise on it) and no `[DONE]`; AI SDK clients get `error`, then `finish`
    /// with `finishReason: "error"` and `[DONE]`, as `ai`'s own servers send.
    pub fn fail(&mut self, failure: &Failure<'_>) -> Vec<String> {
        match self {
            Self::OpenAi { .. } => vec![openai::error_event(
                failure.code,
                "server_error",
                failure.message,
            )],
            Self::Ui { .. } => {
                let mut events = self.close_text();
                events.push(
                    UiChunk::Error {
                        error_text: failure.message,
                    }
                    .encode(),
                );
                events.push(
                    UiChunk::Finish {
                        finish_reason: "error",
                        message_metadata: None,
                    }
                    .encode(),
                );
                events.push(openai::DONE.to_owned());
                events
            }
        }
    }

    /// The events that end a stream stopped on request (its partial reply stored): OpenAI
    /// clients get a last chunk with `finish_reason: "stop"`, AI SDK clients `abort`; both
    /// then `[DONE]`.
    pub fn stop(&mut self, reply: &ChatMessage) -> Vec<String> {
        let mut events = match self {
            Self::OpenAi { .. } => vec![openai::stop_chunk(reply)],
            Self::Ui { .. } => {
                let mut events = self.close_text();
                events.push(UiChunk::Abort { reason: "stopped" }.encode());
                events
            }
        };
        events.push(openai::DONE.to_owned());
        events
    }

    /// `text-end` for an open text part, so the client marks what arrived as complete.
    fn close_text(&mut self) -> Vec<String> {
        match self {
            Self::Ui { text_open } if *text_open => {
                *text_open = false;
                vec![UiChunk::TextEnd { id: TEXT_PART_ID }.encode()]
            }
            _ => Vec::new(),
        }
    }
}
