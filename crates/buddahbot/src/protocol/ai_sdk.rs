//! The AI SDK's UI message stream (package `ai` 7.x, header `x-vercel-ai-ui-message-stream:
//! v1`): the chunks we send `useChat` / `DefaultChatTransport`, and the stored messages as
//! `UIMessage`s.
//!
//! Only chunk types and fields that `ai`'s `uiMessageChunkSchema` accepts are made: the client
//! validates every chunk and fails the whole stream on one it does not know. A text reply is
//! `start` → `start-step` → (`reasoning-start` → `reasoning-delta`… → `reasoning-end`, when
//! the model reasoned) → `text-start` → `text-delta`… → `text-end` → `finish-step` →
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

/// Id of the reasoning part of a reply, which comes before its text.
pub const REASONING_PART_ID: &str = "reasoning-0";

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
    ReasoningStart {
        id: &'a str,
    },
    ReasoningDelta {
        id: &'a str,
        delta: &'a str,
    },
    ReasoningEnd {
        id: &'a str,
    },
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
    ToolInputStart {
        tool_call_id: &'a str,
        tool_name: &'a str,
    },
    ToolInputDelta {
        tool_call_id: &'a str,
        input_text_delta: &'a str,
    },
    ToolInputAvailable {
        tool_call_id: &'a str,
        tool_name: &'a str,
        input: &'a Value,
    },
    ToolInputError {
        tool_call_id: &'a str,
        tool_name: &'a str,
        input: &'a Value,
        error_text: &'a str,
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
            "feedback",
            "parentId",
            "branch",
            "siblingIds",
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

/// Stored messages as the AI SDK's `UIMessage`s, as `useChat` holds them after streaming:
/// an assistant message that called tools, the tools' results and the replies that
/// continued after them are one `UIMessage` (under the first one's id), one step each
/// (`step-start`), each call a `tool-<name>` part in the state its result left it in.
pub fn ui_messages(messages: &[ChatMessage]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    // The message being built while its tool calls wait for results and continuations.
    let mut open: Option<(Value, bool)> = None;
    for message in messages {
        match message.role {
            Role::Tool => {
                if let Some((ui, _)) = &mut open {
                    record_result(ui, message);
                }
            }
            Role::Assistant => {
                let calls = message.tool_calls.as_deref().unwrap_or_default();
                match &mut open {
                    // A reply that continues after the results: the message's next step.
                    Some((ui, continues)) if *continues => {
                        push_step(ui, message);
                        // The latest step's metadata, but the first step's place among the
                        // branches: its versions are the message's.
                        let mut meta = message_metadata(message);
                        for key in ["parentId", "branch", "siblingIds"] {
                            match ui["metadata"].get(key).cloned() {
                                Some(place) => meta[key] = place,
                                None => {
                                    if let Some(meta) = meta.as_object_mut() {
                                        meta.remove(key);
                                    }
                                }
                            }
                        }
                        ui["metadata"] = meta;
                        *continues = !calls.is_empty();
                    }
                    _ => {
                        out.extend(open.take().map(|(ui, _)| ui));
                        if calls.is_empty() {
                            out.push(ui_message(message));
                        } else {
                            let mut ui = ui_message(message);
                            ui["parts"] = Value::Array(Vec::new());
                            push_step(&mut ui, message);
                            open = Some((ui, true));
                        }
                    }
                }
            }
            Role::System | Role::User => {
                out.extend(open.take().map(|(ui, _)| ui));
                out.push(ui_message(message));
            }
        }
    }
    out.extend(open.map(|(ui, _)| ui));
    out
}

/// One message as a `UIMessage` of its own.
fn ui_message(message: &ChatMessage) -> Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant | Role::Tool => "assistant",
    };
    let parts: Vec<MessagePart> = message.parts_or_text();
    json!({
        "id": message.id,
        "role": role,
        "parts": parts,
        "metadata": message_metadata(message),
    })
}

/// An assistant message as one step of a `UIMessage`: `step-start`, its text, its calls
/// (waiting for their results: `input-available`).
fn push_step(ui: &mut Value, message: &ChatMessage) {
    let Some(parts) = ui["parts"].as_array_mut() else {
        return;
    };
    parts.push(json!({ "type": "step-start" }));
    if let Some(reasoning) = &message.reasoning {
        parts.push(json!({ "type": "reasoning", "text": reasoning }));
    }
    if !message.content.is_empty() {
        parts.push(json!({ "type": "text", "text": message.content }));
    }
    for call in message.tool_calls.iter().flatten() {
        let input = serde_json::from_str::<Value>(if call.arguments.trim().is_empty() {
            "{}"
        } else {
            &call.arguments
        })
        .unwrap_or_else(|_| Value::String(call.arguments.clone()));
        parts.push(json!({
            "type": format!("tool-{}", call.name),
            "toolCallId": call.id,
            "state": "input-available",
            "input": input,
        }));
    }
}

/// A tool message's result, on the part of the call it answers.
fn record_result(ui: &mut Value, result: &ChatMessage) {
    let Some(parts) = ui["parts"].as_array_mut() else {
        return;
    };
    let Some(part) = parts
        .iter_mut()
        .rev()
        .find(|p| p["toolCallId"].as_str() == result.tool_call_id.as_deref())
    else {
        return;
    };
    if result.tool_error {
        part["state"] = json!("output-error");
        part["errorText"] = json!(result.content);
    } else {
        part["state"] = json!("output-available");
        part["output"] = result
            .tool_output
            .clone()
            .unwrap_or_else(|| json!(result.content));
    }
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
            reasoning_tokens: None,
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
        let ui = ui_messages(&[reply()]).remove(0);
        assert_eq!(ui["role"], "assistant");
        assert_eq!(ui["parts"], json!([{ "type": "text", "text": "Four." }]));
        assert_eq!(ui["metadata"]["finishReason"], "length");
    }
}
