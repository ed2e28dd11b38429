//! OpenAI chat-completions events we make ourselves: a stored reply replayed as
//! `chat.completion.chunk`s or a `chat.completion`, and the mid-stream error event both
//! official OpenAI SDKs raise on (`data: {"error": {"message", "type", "code"}}`).

use serde::Serialize;
use serde_json::json;

use crate::{
    domain::{ChatMessage, ToolCall},
    upstream::wire::{ChunkView, WireUsage},
};

/// `data: [DONE]`, the end of a successful stream.
pub const DONE: &str = "[DONE]";

#[derive(Serialize)]
struct Chunk<'a> {
    id: String,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: serde_json::Value,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

fn completion_id(reply: &ChatMessage) -> String {
    format!("chatcmpl-{}", reply.id)
}

fn usage_json(reply: &ChatMessage) -> Option<serde_json::Value> {
    reply
        .usage
        .map(|u| wire_usage_json(u.prompt_tokens, u.completion_tokens, u.reasoning_tokens))
}

/// A usage object: the reasoning tokens in `completion_tokens_details` when known.
fn wire_usage_json(prompt: u32, completion: u32, reasoning: Option<u32>) -> serde_json::Value {
    let mut usage = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": u64::from(prompt) + u64::from(completion),
    });
    if let Some(reasoning) = reasoning {
        usage["completion_tokens_details"] = json!({ "reasoning_tokens": reasoning });
    }
    usage
}

/// What the chunks we write in a live stream share with the upstream's own: its id, time
/// and model (a client sees one completion).
#[derive(Debug, Clone, Default)]
pub struct ChunkHead {
    id: String,
    created: i64,
    model: String,
}

impl ChunkHead {
    pub fn of(chunk: &ChunkView<'_>) -> Self {
        Self {
            id: chunk.id.as_deref().unwrap_or_default().to_owned(),
            created: chunk.created.unwrap_or_default(),
            model: chunk.model.as_deref().unwrap_or_default().to_owned(),
        }
    }

    fn chunk<'s>(&'s self, delta: serde_json::Value, finish_reason: Option<&'s str>) -> Chunk<'s> {
        Chunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: None,
        }
    }

    /// A chunk of one delta (`{"reasoning_content": …}`, `{"content": …}`, …).
    pub fn delta_chunk(&self, delta: &serde_json::Value) -> String {
        serde_json::to_string(&self.chunk(delta.clone(), None)).unwrap_or_default()
    }

    /// A chunk ending the choice with `finish_reason` and carrying `usage`.
    pub fn finish_chunk(&self, finish_reason: Option<&str>, usage: Option<WireUsage>) -> String {
        let mut chunk = self.chunk(json!({}), finish_reason);
        if finish_reason.is_none() {
            chunk.choices.clear();
        }
        chunk.usage = usage.map(|u| {
            wire_usage_json(
                u.prompt_tokens,
                u.completion_tokens,
                u.completion_tokens_details.and_then(|d| d.reasoning_tokens),
            )
        });
        serde_json::to_string(&chunk).unwrap_or_default()
    }
}

/// A stored reply as the chunks of a stream: the role, the reasoning, the text, the tool
/// calls (each whole), the finish reason, and the usage when asked for.
pub fn replay_chunks(reply: &ChatMessage, include_usage: bool) -> Vec<String> {
    let model = reply.model.as_deref().unwrap_or_default();
    let created = reply.created_at.as_second();
    let finish_reason = reply.finish_reason.as_deref().unwrap_or("stop");
    let calls = reply.tool_calls.as_deref().unwrap_or_default();
    let chunk = |delta: serde_json::Value, last: bool| Chunk {
        id: completion_id(reply),
        object: "chat.completion.chunk",
        created,
        model,
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: last.then_some(finish_reason),
        }],
        usage: None,
    };
    let mut chunks = vec![chunk(json!({ "role": "assistant", "content": "" }), false)];
    if let Some(reasoning) = reply.reasoning.as_deref().filter(|r| !r.is_empty()) {
        chunks.push(chunk(json!({ "reasoning_content": reasoning }), false));
    }
    if !reply.content.is_empty() || calls.is_empty() {
        chunks.push(chunk(json!({ "content": reply.content }), false));
    }
    if !calls.is_empty() {
        let deltas: Vec<serde_json::Value> = calls
            .iter()
            .enumerate()
            .map(|(index, call)| {
                let mut call = tool_call_json(call);
                call["index"] = json!(index);
                call
            })
            .collect();
        chunks.push(chunk(json!({ "tool_calls": deltas }), false));
    }
    chunks.push(chunk(json!({}), true));
    if include_usage && let Some(usage) = usage_json(reply) {
        chunks.push(Chunk {
            id: completion_id(reply),
            object: "chat.completion.chunk",
            created,
            model,
            choices: Vec::new(),
            usage: Some(usage),
        });
    }
    chunks
        .iter()
        .filter_map(|c| serde_json::to_string(c).ok())
        .collect()
}

/// A tool call in the OpenAI shape.
fn tool_call_json(call: &ToolCall) -> serde_json::Value {
    json!({
        "id": call.id,
        "type": "function",
        "function": { "name": call.name, "arguments": call.arguments },
    })
}

/// The chunk that ends a stopped reply: no content, `finish_reason: "stop"`.
pub fn stop_chunk(reply: &ChatMessage) -> String {
    let chunk = Chunk {
        id: completion_id(reply),
        object: "chat.completion.chunk",
        created: reply.created_at.as_second(),
        model: reply.model.as_deref().unwrap_or_default(),
        choices: vec![ChunkChoice {
            index: 0,
            delta: json!({}),
            logprobs: None,
            finish_reason: Some("stop"),
        }],
        usage: None,
    };
    serde_json::to_string(&chunk).unwrap_or_default()
}

/// A stored reply as a `chat.completion` object.
pub fn completion(reply: &ChatMessage) -> serde_json::Value {
    json!({
        "id": completion_id(reply),
        "object": "chat.completion",
        "created": reply.created_at.as_second(),
        "model": reply.model.as_deref().unwrap_or_default(),
        "choices": [{
            "index": 0,
            "message": message_json(reply),
            "logprobs": null,
            "finish_reason": reply.finish_reason.as_deref().unwrap_or("stop"),
        }],
        "usage": usage_json(reply),
    })
}

/// A reply's `message` object: `content` is `null` when the reply is tool calls alone; the
/// reasoning, when there is some, is `reasoning_content`.
fn message_json(reply: &ChatMessage) -> serde_json::Value {
    let mut message = match reply.tool_calls.as_deref() {
        Some(calls) if !calls.is_empty() => json!({
            "role": "assistant",
            "content": if reply.content.is_empty() { serde_json::Value::Null } else { json!(reply.content) },
            "tool_calls": calls.iter().map(tool_call_json).collect::<Vec<_>>(),
        }),
        _ => json!({ "role": "assistant", "content": reply.content }),
    };
    if let Some(reasoning) = &reply.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    message
}

/// The error event ending a stream that failed after it started.
pub fn error_event(code: &str, kind: &str, message: &str) -> String {
    json!({ "error": { "message": message, "type": kind, "code": code } }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Role, Usage};

    fn reply() -> ChatMessage {
        let mut m = ChatMessage::new(Role::Assistant, "Four.");
        m.model = Some("Hermes-4-70B".into());
        m.finish_reason = Some("stop".into());
        m.usage = Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 2,
            reasoning_tokens: None,
        });
        m
    }

    #[test]
    fn a_replayed_reply_reads_like_a_live_stream() {
        let chunks: Vec<serde_json::Value> = replay_chunks(&reply(), true)
            .iter()
            .map(|c| serde_json::from_str(c).unwrap())
            .collect();
        assert_eq!(chunks.len(), 4);
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Four.");
        assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[3]["choices"], json!([]));
        assert_eq!(chunks[3]["usage"]["total_tokens"], 11);
        assert_eq!(replay_chunks(&reply(), false).len(), 3);
    }

    #[test]
    fn a_replayed_completion_has_the_openai_shape() {
        let c = completion(&reply());
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["choices"][0]["message"]["content"], "Four.");
        assert_eq!(c["usage"]["prompt_tokens"], 9);
    }

    #[test]
    fn error_events_carry_message_type_and_code() {
        let e: serde_json::Value =
            serde_json::from_str(&error_event("upstream_error", "server_error", "It broke."))
                .unwrap();
        assert_eq!(e["error"]["code"], "upstream_error");
        assert_eq!(e["error"]["type"], "server_error");
        assert_eq!(e["error"]["message"], "It broke.");
    }
}
