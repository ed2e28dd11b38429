//! The OpenAI chat-completions wire format, as far as we send and read it. Request structs
//! borrow; response structs own and ignore unknown fields.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::domain::{FunctionTool, Role, ToolCall, ToolChoice};

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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<&'a ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
}

/// A function tool as the API takes it: `{"type": "function", "function": {…}}`.
#[derive(Debug, Serialize)]
pub struct WireTool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: &'a FunctionTool,
}

impl<'a> WireTool<'a> {
    pub fn function(function: &'a FunctionTool) -> Self {
        Self {
            kind: "function",
            function,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct StreamOptions {
    pub include_usage: bool,
}

/// One message of the prompt sent upstream. An assistant message that only calls tools has
/// `content: null`; a tool message names the call it answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptMessage {
    pub role: Role,
    pub content: PromptContent,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<PromptToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl PromptMessage {
    /// A message of text (or parts) alone.
    pub fn new(role: Role, content: impl Into<PromptContent>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// An assistant's tool call in a prompt: `{"id", "type": "function", "function": {"name",
/// "arguments"}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: PromptFunction,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptFunction {
    pub name: String,
    pub arguments: String,
}

impl From<&ToolCall> for PromptToolCall {
    fn from(call: &ToolCall) -> Self {
        Self {
            id: call.id.clone(),
            kind: "function",
            function: PromptFunction {
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            },
        }
    }
}

/// A prompt message's content: a plain string, or OpenAI content parts when the message
/// carries images (the only case that needs them; plain strings suit every model), or nothing
/// (`null`: an assistant message that only calls tools).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PromptContent {
    Text(String),
    Parts(Vec<PromptPart>),
    None,
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
            Self::None => "".into(),
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ChunkView<'a> {
    /// The completion's id, time and model: what a chunk we rewrite keeps of the original.
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub choices: Vec<ChoiceView<'a>>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// Set when the event is an error report rather than a chunk.
    #[serde(default, borrow)]
    pub error: Option<ErrorView<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ChoiceView<'a> {
    #[serde(default, borrow)]
    pub delta: DeltaView<'a>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DeltaView<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub role: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub content: Option<Cow<'a, str>>,
    /// Reasoning in a field of its own, as vLLM, SGLang and DeepSeek send it.
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// Reasoning in a field of its own, as OpenRouter and newer vLLM send it.
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub reasoning: Option<Cow<'a, str>>,
    /// Pieces of tool calls: the first piece of a call has its id and name, the rest add to
    /// its arguments; `index` says which call a piece belongs to.
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

/// A piece of a tool call; serialized again (as the OpenAI wire has it) when a chunk is
/// rewritten.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ToolCallDelta<'a> {
    #[serde(default)]
    pub index: usize,
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed",
        rename = "type",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDelta<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct FunctionDelta<'a> {
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed",
        skip_serializing_if = "Option::is_none"
    )]
    pub arguments: Option<Cow<'a, str>>,
}

/// An error the API reports mid-stream, as far as we read it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ErrorView<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub message: Option<Cow<'a, str>>,
}

/// A string field read without a copy when it has no escapes. serde's `Deserialize` for
/// `Cow<str>` always copies (only a bare `Cow` field marked `borrow` borrows, which an
/// `Option` of one is not): a chunk's id, model and text would cost an allocation each.
fn borrowed<'de, D>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'de>>::deserialize(deserializer)?.map(|text| text.0))
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
    /// How many of the completion tokens were reasoning, when the API says.
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u32>,
}

impl WireUsage {
    /// The usage as stored with a reply.
    pub fn into_usage(self) -> crate::domain::Usage {
        crate::domain::Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            reasoning_tokens: self
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens),
        }
    }
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
    /// Reasoning in a field of its own, under either name APIs use.
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<CompletionToolCall>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompletionToolCall {
    pub id: String,
    pub function: CompletionFunction,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompletionFunction {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_read_without_copying_its_strings_unless_they_hold_escapes() {
        let data = r#"{"id":"c-1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \"you\""},"finish_reason":null}],"system_fingerprint":"x"}"#;
        let view: ChunkView<'_> = serde_json::from_str(data).unwrap();
        assert!(matches!(view.id, Some(Cow::Borrowed("c-1"))));
        assert!(matches!(view.model, Some(Cow::Borrowed("m"))));
        let delta = &view.choices[0].delta;
        assert!(matches!(delta.role, Some(Cow::Borrowed("assistant"))));
        assert!(matches!(&delta.content, Some(Cow::Owned(text)) if text == "Hi \"you\""));
        assert_eq!(view.choices[0].finish_reason, None);
    }

    #[test]
    fn a_tool_call_piece_and_an_error_are_read_too() {
        let data = r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}]}"#;
        let view: ChunkView<'_> = serde_json::from_str(data).unwrap();
        let call = &view.choices[0].delta.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.index, 1);
        assert!(matches!(call.id, Some(Cow::Borrowed("call_1"))));
        assert_eq!(call.kind.as_deref(), Some("function"));
        let function = call.function.as_ref().unwrap();
        assert_eq!(function.name.as_deref(), Some("f"));
        assert_eq!(function.arguments.as_deref(), Some("{\"a\":1}"));
        assert_eq!(view.choices[0].finish_reason.as_deref(), Some("tool_calls"));

        let error: ChunkView<'_> =
            serde_json::from_str(r#"{"error":{"message":"overloaded"}}"#).unwrap();
        assert_eq!(error.error.unwrap().message.as_deref(), Some("overloaded"));
        let usage: ChunkView<'_> = serde_json::from_str(
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        )
        .unwrap();
        assert!(usage.is_usage_only());
    }
}
