//! The AI SDK's UI message stream (package `ai` 7.x, header `x-vercel-ai-ui-message-stream:
//! v1`): the chunks we send `useChat` / `DefaultChatTransport`, and the stored messages as
//! `UIMessage`s.
//!
//! Only chunk types and fields that `ai`'s `uiMessageChunkSchema` accepts are made: the client
//! validates every chunk and fails the whole stream on one it does not know. A text reply is
//! `start` → `start-step` → `text-start` → `text-delta`… → `text-end` → `finish-step` →
//! `finish`, then `data: [DONE]` (which `ai`'s own servers send after every stream, failed or
//! not). A failure after the start is `error` followed by `finish` with `finishReason:
//! "error"`.
//!
//! Not here: the order of the chunks (the [`encoder`](super::encoder) owns every sequence).

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::domain::{ChatMessage, MessagePart, Role};

/// The response header announcing the protocol, and its value.
pub const STREAM_HEADER: (&str, &str) = ("x-vercel-ai-ui-message-stream", "v1");

/// Id of the one text part of a reply. Part ids only need to be unique within a message.
pub const TEXT_PART_ID: &str = "text-0";

/// One chunk of the stream.
#[derive(Debug, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum UiChunk<'a> {
    Start {
        message_id: &'a str,
    },
    StartStep,
    TextStart {
        id: &'a str,
    },
    TextDelta {
        id: &'a str,
        delta: &'a str,
    },
    TextEnd {
        id: &'a str,
    },
    FinishStep,
    Finish {
        finish_reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_metadata: Option<Value>,
    },
    Error {
        error_text: &'a str,
    },
    /// The generation was stopped on request; what arrived is kept.
    Abort {
        reason: &'a str,
    },
}

impl UiChunk<'_> {
    /// The chunk as an SSE `data:` payload.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8(out).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The chunk as an SSE `data:` payload, appended to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Serializing these plain structs cannot fail; an empty object would be refused by
        // the client rather than misread.
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.extend_from_slice(b"{}");
        }
    }
}

/// An OpenAI finish reason (or ours, `error`) as the AI SDK's `finishReason` enum spells it.
pub fn finish_reason(openai: Option<&str>) -> &'static str {
    match openai {
        None | Some("stop") => "stop",
        Some("length") => "length",
        Some("content_filter") => "content-filter",
        Some("tool_calls" | "function_call") => "tool-calls",
        Some("error") => "error",
        Some(_) => "other",
    }
}

/// What a message's `metadata` holds: when it was written and, for replies, the model, the
/// finish reason, the token usage and the timings (the same fields `GET /api/threads/:id`
/// returns for stored messages).
pub fn message_metadata(message: &ChatMessage) -> Value {
    let mut meta = Map::new();
    if let Ok(Value::Object(stored)) = serde_json::to_value(message) {
        for key in [
            "createdAt",
            "model",
            "finishReason",
            "usage",
            "ttftMs",
            "durationMs",
        ] {
            if let Some(value) = stored.get(key) {
                meta.insert(key.to_owned(), value.clone());
            }
        }
    }
    Value::Object(meta)
}

/// The `finish` chunk of a stored reply: its finish reason and metadata.
pub fn finish(reply: &ChatMessage) -> String {
    UiChunk::Finish {
        finish_reason: finish_reason(reply.finish_reason.as_deref()),
        message_metadata: Some(message_metadata(reply)),
    }
    .encode()
}

/// A stored message as a `UIMessage`: `{id, role, parts, metadata}`. Messages stored without
/// parts get their text as one text part.
pub fn ui_message(message: &ChatMessage) -> Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let parts: Vec<MessagePart> = message.parts_or_text();
    json!({
        "id": message.id,
        "role": role,
        "parts": parts,
        "metadata": message_metadata(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Usage;

    fn reply() -> ChatMessage {
        let mut m = ChatMessage::new(Role::Assistant, "Four.");
        m.model = Some("Hermes-4-70B".into());
        m.finish_reason = Some("length".into());
        m.usage = Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 2,
        });
        m
    }

    #[test]
    fn chunks_have_the_field_names_the_ai_sdk_schema_expects() {
        let cases = [
            (
                UiChunk::Start { message_id: "m1" },
                json!({ "type": "start", "messageId": "m1" }),
            ),
            (UiChunk::StartStep, json!({ "type": "start-step" })),
            (
                UiChunk::TextDelta {
                    id: "t",
                    delta: "hi",
                },
                json!({ "type": "text-delta", "id": "t", "delta": "hi" }),
            ),
            (
                UiChunk::Finish {
                    finish_reason: "stop",
                    message_metadata: None,
                },
                json!({ "type": "finish", "finishReason": "stop" }),
            ),
            (
                UiChunk::Error { error_text: "no" },
                json!({ "type": "error", "errorText": "no" }),
            ),
        ];
        for (chunk, want) in cases {
            let got: Value = serde_json::from_str(&chunk.encode()).unwrap();
            assert_eq!(got, want, "case {chunk:?}");
        }
    }

    #[test]
    fn finish_reasons_map_onto_the_ai_sdk_enum() {
        let cases = [
            (None, "stop"),
            (Some("stop"), "stop"),
            (Some("length"), "length"),
            (Some("content_filter"), "content-filter"),
            (Some("tool_calls"), "tool-calls"),
            (Some("error"), "error"),
            (Some("eos"), "other"),
        ];
        for (openai, want) in cases {
            assert_eq!(finish_reason(openai), want, "case {openai:?}");
        }
    }

    #[test]
    fn the_finish_chunk_carries_the_reason_and_metadata() {
        let finish: Value = serde_json::from_str(&finish(&reply())).unwrap();
        assert_eq!(finish["finishReason"], "length");
        assert_eq!(finish["messageMetadata"]["usage"]["completionTokens"], 2);
        assert_eq!(finish["messageMetadata"]["model"], "Hermes-4-70B");
    }

    #[test]
    fn a_message_without_parts_becomes_one_text_part() {
        let ui = ui_message(&reply());
        assert_eq!(ui["role"], "assistant");
        assert_eq!(ui["parts"], json!([{ "type": "text", "text": "Four." }]));
        assert_eq!(ui["metadata"]["finishReason"], "length");
    }
}
