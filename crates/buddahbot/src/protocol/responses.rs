//! The OpenAI Responses API's shapes (as the Open Responses specification defines them): the
//! Response object, the items a thread's messages become, and the streamed events.
//!
//! # Design
//! A response is a turn of a thread: its input items are the messages the turn stored before
//! the reply, its output the reply (text, then tool calls). Nothing here is stored apart from
//! the thread: a Response is rebuilt from the reply message and the settings kept on it
//! ([`Settings`]). Ids are views of the store's: `resp_<reply id>_<thread id>` (so a response
//! is found without an index), `msg_<message id>`, `fc_<call id>`, `fco_<tool message id>`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{ChatMessage, MessageId, MessagePart, ReplyStatus, Role, ThreadId};

/// The request's settings a Response echoes, kept on its reply message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub instructions: Option<String>,
    pub previous_response_id: Option<String>,
    /// The conversation (thread) id, when the request named one.
    pub conversation: Option<String>,
    /// Function tools in the Responses shape (`{type, name, description, parameters,
    /// strict}`), every key present.
    pub tools: Vec<Value>,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    pub temperature: f64,
    pub top_p: f64,
    pub max_output_tokens: Option<u64>,
    pub truncation: String,
    pub metadata: Value,
    pub text: Value,
    pub store: bool,
    pub background: bool,
    pub user: Option<String>,
    /// The request's `reasoning` (`{effort, summary}`), echoed; `None` when not asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Value>,
}

/// A response's id: the reply message and its thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseId {
    pub reply: MessageId,
    pub thread: ThreadId,
}

/// Length of the message ids the server makes (UUIDs with hyphens).
const REPLY_ID_LEN: usize = 36;

impl ResponseId {
    /// Reads `resp_<reply id>_<thread id>`; `None` for anything else (no response of ours).
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix("resp_")?;
        let reply = rest.get(..REPLY_ID_LEN)?;
        let thread = rest.get(REPLY_ID_LEN..)?.strip_prefix('_')?;
        Some(Self {
            reply: MessageId::parse(reply).ok()?,
            thread: ThreadId::parse(thread).ok()?,
        })
    }
}

impl std::fmt::Display for ResponseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "resp_{}_{}", self.reply, self.thread)
    }
}

/// How a stored (or running) response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    InProgress,
    Completed,
    Incomplete,
    Cancelled,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// How a stored reply ended.
    pub fn of(reply: &ChatMessage) -> Self {
        match reply.status {
            Some(ReplyStatus::Stopped) => Self::Cancelled,
            Some(ReplyStatus::Error) => Self::Failed,
            None if reply.finish_reason.as_deref() == Some("length") => Self::Incomplete,
            None => Self::Completed,
        }
    }
}

/// The item id of a message item.
pub fn message_item_id(id: &MessageId) -> String {
    format!("msg_{id}")
}

/// The item id of a function call item.
pub fn call_item_id(call_id: &str) -> String {
    format!("fc_{call_id}")
}

/// The item id of a function call output item.
pub fn output_item_id(id: &MessageId) -> String {
    format!("fco_{id}")
}

/// The item id of a reply's reasoning item.
pub fn reasoning_item_id(id: &MessageId) -> String {
    format!("rs_{id}")
}

/// A reasoning text part.
pub fn reasoning_text(text: &str) -> Value {
    json!({ "type": "reasoning_text", "text": text })
}

/// A whole reasoning item: the text in `content` (Hermes writes no summary).
pub fn reasoning_item(item_id: &str, text: &str) -> Value {
    json!({
        "id": item_id, "type": "reasoning", "status": "completed",
        "summary": [], "content": [reasoning_text(text)],
    })
}

/// An output text part: every key the specification requires.
pub fn output_text(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}

/// A stored message as the items it is: a message item (its text and images), then one
/// `function_call` item per tool call; a tool message is a `function_call_output` item.
/// Each carries the `response_id` that produced it (an extension) when there is one.
pub fn items(message: &ChatMessage) -> Vec<Value> {
    let mut out = Vec::new();
    let response_id = message.response_id.as_deref();
    match message.role {
        Role::Tool => {
            out.push(json!({
                "type": "function_call_output",
                "id": output_item_id(&message.id),
                "call_id": message.tool_call_id.as_deref().unwrap_or_default(),
                "output": message.content,
                "status": "completed",
            }));
        }
        role => {
            let calls = message.tool_calls.as_deref().unwrap_or_default();
            if !message.content.is_empty() || calls.is_empty() {
                out.push(message_item(message, role));
            }
            for call in calls {
                out.push(json!({
                    "type": "function_call",
                    "id": call_item_id(&call.id),
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "status": "completed",
                }));
            }
        }
    }
    for item in &mut out {
        if let Some(id) = response_id {
            item["response_id"] = json!(id);
        }
        if let Some(created) = jiff_seconds(message) {
            item["created_at"] = json!(created);
        }
    }
    out
}

fn jiff_seconds(message: &ChatMessage) -> Option<i64> {
    Some(message.created_at.as_second())
}

fn message_item(message: &ChatMessage, role: Role) -> Value {
    let (role, status) = match role {
        Role::User => ("user", "completed"),
        Role::System => ("system", "completed"),
        Role::Assistant | Role::Tool => (
            "assistant",
            if message.status.is_some() {
                "incomplete"
            } else {
                "completed"
            },
        ),
    };
    let content: Vec<Value> = if role == "assistant" {
        vec![output_text(&message.content)]
    } else {
        match &message.parts {
            Some(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    MessagePart::Text { text } => {
                        Some(json!({ "type": "input_text", "text": text }))
                    }
                    MessagePart::File { url, .. } if part.is_image() => {
                        Some(json!({ "type": "input_image", "image_url": url, "detail": "auto" }))
                    }
                    MessagePart::File { url, filename, .. } => {
                        Some(json!({ "type": "input_file", "file_url": url, "filename": filename }))
                    }
                    MessagePart::Reasoning { .. } => None,
                })
                .collect(),
            None => vec![json!({ "type": "input_text", "text": message.content })],
        }
    };
    json!({
        "type": "message",
        "id": message_item_id(&message.id),
        "status": status,
        "role": role,
        "content": content,
    })
}

/// The output items of a reply: its reasoning (when it has some), its text as one message
/// item (unless it is tool calls alone), then its tool calls.
pub fn output(reply: &ChatMessage) -> Vec<Value> {
    let mut items = items(reply);
    if let Some(reasoning) = &reply.reasoning {
        items.insert(0, reasoning_item(&reasoning_item_id(&reply.id), reasoning));
    }
    for item in &mut items {
        if let Some(object) = item.as_object_mut() {
            object.remove("response_id");
            object.remove("created_at");
        }
    }
    items
}

/// The Response object of a reply, as stored (or of one still generating, with no output
/// yet when `reply` is `None`).
pub fn object(
    id: &ResponseId,
    settings: &Settings,
    model: &str,
    created_at: i64,
    status: Status,
    reply: Option<&ChatMessage>,
    error: Option<(&str, &str)>,
) -> Value {
    let usage = reply.and_then(|r| r.usage).map(|u| {
        json!({
            "input_tokens": u.prompt_tokens,
            "input_tokens_details": { "cached_tokens": 0 },
            "output_tokens": u.completion_tokens,
            "output_tokens_details": { "reasoning_tokens": u.reasoning_tokens.unwrap_or(0) },
            "total_tokens": u.prompt_tokens + u.completion_tokens,
        })
    });
    let completed_at = match status {
        Status::Completed => reply.map(|r| r.created_at.as_second()),
        _ => None,
    };
    let incomplete_details = match status {
        Status::Incomplete => json!({ "reason": "max_output_tokens" }),
        _ => Value::Null,
    };
    let error = error.map_or(
        Value::Null,
        |(code, message)| json!({ "code": code, "message": message }),
    );
    json!({
        "id": id.to_string(),
        "object": "response",
        "created_at": created_at,
        "completed_at": completed_at,
        "status": status.as_str(),
        "incomplete_details": incomplete_details,
        "model": model,
        "previous_response_id": settings.previous_response_id,
        "instructions": settings.instructions,
        "output": reply.map_or_else(Vec::new, output),
        "error": error,
        "tools": settings.tools,
        "tool_choice": settings.tool_choice,
        "truncation": settings.truncation,
        "parallel_tool_calls": settings.parallel_tool_calls,
        "text": settings.text,
        "top_p": settings.top_p,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_logprobs": 0,
        "temperature": settings.temperature,
        "reasoning": settings.reasoning.clone().unwrap_or(Value::Null),
        "user": settings.user,
        "usage": usage,
        "max_output_tokens": settings.max_output_tokens,
        "max_tool_calls": Value::Null,
        "store": settings.store,
        "background": settings.background,
        "service_tier": "default",
        "metadata": settings.metadata,
        "safety_identifier": Value::Null,
        "prompt_cache_key": Value::Null,
        "conversation": settings.conversation.as_ref().map(|id| json!({ "id": id })),
    })
}

/// When a reply's response began: its creation less its duration.
pub fn started_at(reply: &ChatMessage) -> i64 {
    let ms = reply.created_at.as_millisecond()
        - i64::try_from(reply.duration_ms.unwrap_or(0)).unwrap_or(0);
    ms.div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ToolCall, Usage};

    #[test]
    fn response_ids_carry_the_reply_and_its_thread() {
        let id = ResponseId {
            reply: MessageId::new(),
            thread: ThreadId::parse("conv_a-b_c").unwrap(),
        };
        let raw = id.to_string();
        assert!(raw.starts_with("resp_"));
        assert_eq!(ResponseId::parse(&raw), Some(id));
        for bad in [
            "resp_",
            "msg_x",
            "resp_short_t",
            &format!("resp_{}x", "0".repeat(36)),
        ] {
            assert_eq!(ResponseId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_reply_with_text_and_a_call_is_two_output_items() {
        let mut reply = ChatMessage::new(Role::Assistant, "Let me see.");
        reply.tool_calls = Some(vec![ToolCall {
            id: "c1".into(),
            name: "w".into(),
            arguments: "{}".into(),
        }]);
        reply.usage = Some(Usage {
            prompt_tokens: 5,
            completion_tokens: 3,
            reasoning_tokens: None,
        });
        let out = output(&reply);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["content"][0], output_text("Let me see."));
        assert_eq!(out[1]["type"], "function_call");
        assert_eq!(out[1]["id"], "fc_c1");
        let id = ResponseId {
            reply: reply.id.clone(),
            thread: ThreadId::parse("t").unwrap(),
        };
        let object = object(
            &id,
            &Settings::default(),
            "Hermes-4-70B",
            1,
            Status::Completed,
            Some(&reply),
            None,
        );
        assert_eq!(object["usage"]["total_tokens"], 8);
        assert_eq!(object["status"], "completed");
        for key in [
            "incomplete_details",
            "error",
            "instructions",
            "previous_response_id",
        ] {
            assert!(
                object.get(key).is_some_and(Value::is_null),
                "{key} present and null"
            );
        }
    }
}
