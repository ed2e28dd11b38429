//! The chat request as clients send it (our body, or the OpenAI SDK's), and its validation
//! into a [`TurnRequest`]. Every refusal names the field.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    config::Config,
    domain::{MaxTokens, MessageId, ModelName, Role, Temperature, ThreadId},
    error::ApiError,
    upstream::wire::PromptMessage,
};

/// `POST /api/chat` and `/api/chat/completions`. Unknown fields (`user`, `seed`, …) are
/// tolerated, as the OpenAI SDKs send them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatBody {
    #[serde(default)]
    pub thread_id: Option<String>,
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default, alias = "max_tokens", alias = "max_completion_tokens")]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default, alias = "stream_options")]
    pub stream_options: Option<WireStreamOptions>,
}

#[derive(Debug, Default, Deserialize)]
pub struct WireStreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    #[serde(default)]
    pub id: Option<String>,
    pub role: String,
    pub content: WireContent,
}

/// A message's content: a string, or the OpenAI array of text parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Debug, Deserialize)]
pub struct WirePart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// A validated chat request.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub thread_id: Option<ThreadId>,
    /// The whole conversation as the client sent it, ending with the new user message.
    pub prompt: Vec<PromptMessage>,
    /// The new user message's id, when the client gave one.
    pub user_message_id: Option<MessageId>,
    pub model: ModelName,
    pub temperature: Option<Temperature>,
    pub max_tokens: Option<MaxTokens>,
    pub stream: bool,
    /// Whether the client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// How the caller reached us: our own `/api/chat` streams by default; the OpenAI-compatible
/// `/api/chat/completions` streams only when asked, as the OpenAI API does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Native,
    OpenAi,
}

fn invalid(field: impl std::fmt::Display, reason: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidBody(format!("`{field}` {reason}"))
}

impl TurnRequest {
    /// Validates a body against the configured limits.
    ///
    /// # Errors
    /// [`ApiError::InvalidBody`] naming the first field that is wrong.
    pub fn parse(
        body: ChatBody,
        header_thread_id: Option<&str>,
        dialect: Dialect,
        config: &Config,
    ) -> Result<Self, ApiError> {
        let limits = &config.chat;
        let thread_id = body
            .thread_id
            .as_deref()
            .or(header_thread_id)
            .map(|raw| {
                ThreadId::parse(raw)
                    .map_err(|e| invalid("threadId", format_args!("is invalid: {e}")))
            })
            .transpose()?;

        let count = body.messages.len();
        if count == 0 {
            return Err(invalid("messages", "must hold at least one message"));
        }
        if count > limits.max_messages {
            return Err(invalid(
                "messages",
                format_args!("may hold at most {} messages", limits.max_messages),
            ));
        }
        let mut user_message_id = None;
        let mut prompt = Vec::with_capacity(count + 1);
        for (i, message) in body.messages.into_iter().enumerate() {
            let role = match message.role.as_str() {
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                _ => {
                    return Err(invalid(
                        format_args!("messages[{i}].role"),
                        "must be one of system, developer, user, assistant",
                    ));
                }
            };
            let content = text_of(message.content)
                .map_err(|reason| invalid(format_args!("messages[{i}].content"), reason))?;
            if content.trim().is_empty() {
                return Err(invalid(
                    format_args!("messages[{i}].content"),
                    "must not be empty",
                ));
            }
            if content.chars().count() > limits.max_content_chars {
                return Err(invalid(
                    format_args!("messages[{i}].content"),
                    format_args!("is longer than {} characters", limits.max_content_chars),
                ));
            }
            if i + 1 == count {
                if role != Role::User {
                    return Err(invalid(
                        format_args!("messages[{i}].role"),
                        "must be `user`: the last message is the new turn",
                    ));
                }
                user_message_id = message
                    .id
                    .as_deref()
                    .map(|raw| {
                        MessageId::parse(raw).map_err(|e| {
                            invalid(
                                format_args!("messages[{i}].id"),
                                format_args!("is invalid: {e}"),
                            )
                        })
                    })
                    .transpose()?;
            }
            prompt.push(PromptMessage { role, content });
        }

        let upstream = &config.upstream;
        let model = match body.model.as_deref() {
            None => ModelName::configured(&upstream.default_model),
            Some(raw) => {
                ModelName::parse(raw, &upstream.allowed_models).map_err(|e| invalid("model", e))?
            }
        };
        let temperature = body
            .temperature
            .map(|t| Temperature::parse(t).map_err(|e| invalid("temperature", e)))
            .transpose()?;
        let max_tokens = body
            .max_tokens
            .map(|n| {
                MaxTokens::parse(n, limits.max_tokens_cap).map_err(|e| invalid("max_tokens", e))
            })
            .transpose()?;
        if body.n.is_some_and(|n| n != 1) {
            return Err(invalid("n", "must be 1: one reply per request"));
        }
        let stream = body.stream.unwrap_or(dialect == Dialect::Native);
        Ok(Self {
            thread_id,
            prompt,
            user_message_id,
            model,
            temperature,
            max_tokens,
            stream,
            include_usage: body.stream_options.is_some_and(|o| o.include_usage),
        })
    }

    /// The new user message's text.
    pub fn user_text(&self) -> &str {
        self.prompt.last().map_or("", |m| m.content.as_str())
    }

    /// The first user message's text (the thread's title comes from it).
    pub fn first_user_text(&self) -> &str {
        self.prompt
            .iter()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str())
    }

    /// The id the new user message is stored under: the client's, or one derived from the
    /// thread, the position in the conversation and the text, so that a client that sends no
    /// ids (the OpenAI SDKs) and retries the very same request is still recognised.
    pub fn user_message_id(&self, thread: &ThreadId) -> MessageId {
        if let Some(id) = &self.user_message_id {
            return id.clone();
        }
        let mut hash = Sha256::new();
        hash.update(thread.as_str().as_bytes());
        hash.update((self.prompt.len() as u64).to_be_bytes());
        hash.update(self.user_text().as_bytes());
        let digest = hash.finalize();
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        MessageId::parse(&format!("h{hex}")).unwrap_or_default()
    }
}

/// The text of a message's content; only text parts are understood.
fn text_of(content: WireContent) -> Result<String, &'static str> {
    match content {
        WireContent::Text(text) => Ok(text),
        WireContent::Parts(parts) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(t)) => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(&t);
                    }
                    _ => return Err("may only hold text parts"),
                }
            }
            Ok(text)
        }
    }
}
