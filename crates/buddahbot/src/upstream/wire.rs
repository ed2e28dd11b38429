//! The OpenAI chat-completions wire format, as far as we send and read it. Request structs
//! borrow; response structs own and ignore unknown fields.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::domain::Role;

/// `POST {base}/chat/completions`.
#[derive(Debug, Serialize)]
pub struct ChatCompletionRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [PromptMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct StreamOptions {
    pub include_usage: bool,
}

/// One message of the prompt sent upstream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptMessage {
    pub role: Role,
    pub content: PromptContent,
}

/// A prompt message's content: a plain string, or OpenAI content parts when the message
/// carries images (the only case that needs them; plain strings suit every model).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PromptContent {
    Text(String),
    Parts(Vec<PromptPart>),
}

/// One OpenAI content part.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PromptPart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageUrl {
    pub url: String,
}

impl PromptContent {
    /// The text of the content; text parts are joined by line breaks, images left out.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Text(text) => text.as_str().into(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    PromptPart::Text { text } => Some(text.as_str()),
                    PromptPart::ImageUrl { .. } => None,
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into(),
        }
    }
}

impl From<String> for PromptContent {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

/// What the turn reads of one `chat.completion.chunk` event, borrowed from its bytes (a
/// string is copied only when it holds escapes). Everything else in the chunk is skipped
/// unread; the client gets the chunk's own bytes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChunkView<'a> {
    #[serde(default, borrow)]
    pub choices: Vec<ChoiceView<'a>>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// Set when the event is an error report rather than a chunk.
    #[serde(default, borrow)]
    pub error: Option<ErrorView<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChoiceView<'a> {
    #[serde(default, borrow)]
    pub delta: DeltaView<'a>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeltaView<'a> {
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
}

/// An error the API reports mid-stream, as far as we read it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorView<'a> {
    #[serde(default, borrow)]
    pub message: Option<Cow<'a, str>>,
}

impl ChunkView<'_> {
    /// A chunk with no choices that reports the usage (the last one, when asked for).
    pub fn is_usage_only(&self) -> bool {
        self.choices.is_empty() && self.usage.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct WireUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// The `stream: false` answer, `chat.completion`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub model: Option<String>,
    pub choices: Vec<CompletionChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompletionChoice {
    pub message: CompletionMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompletionMessage {
    #[serde(default)]
    pub content: Option<String>,
}
