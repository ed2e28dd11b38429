//! The chat request as clients send it (our body, the OpenAI SDK's, or the AI SDK's
//! `DefaultChatTransport` body), and its validation into a [`TurnRequest`]. Every refusal
//! names the field.
//!
//! # Design
//! One body type takes all three shapes, so a malformed body gets the same field-naming
//! errors whatever the client. A body with a top-level `id` whose messages carry `parts` is
//! the AI SDK's: `id` is the chat (thread) id, created on first use, and the reply is
//! answered in the UI message stream protocol ([`ReplyFormat::Ui`]).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    attachments::{self, Attachment},
    context::Truncation,
};
use crate::{
    config::{ChatConfig, Config},
    domain::{
        ChatMessage, MaxTokens, MessageId, MessagePart, ModelName, Placement, Role, Temperature,
        ThreadId, ToolCall, Tools, parse_reasoning,
    },
    error::ApiError,
    upstream::wire::{ImageUrl, PromptContent, PromptMessage, PromptPart, PromptToolCall},
};

/// `POST /api/chat` and `/api/chat/completions`. Unknown fields (`user`, `seed`, …) are
/// tolerated, as the OpenAI SDKs send them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatBody {
    #[serde(default)]
    pub thread_id: Option<String>,
    /// The AI SDK's chat id.
    #[serde(default)]
    pub id: Option<String>,
    /// The AI SDK's `submit-message` or `regenerate-message`.
    #[serde(default)]
    pub trigger: Option<String>,
    /// The AI SDK's `messageId`: with `submit-message`, the stored message the new one is an
    /// edit of (with `regenerate-message`, the reply to replace: the turn says which).
    #[serde(default)]
    pub message_id: Option<String>,
    /// The message the new one goes under (a branch from there), instead of after the
    /// active branch's last message.
    #[serde(default, alias = "parent_id")]
    pub parent_id: Option<String>,
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
    /// Function tools, `tool_choice` and `parallel_tool_calls`, as the OpenAI API takes them;
    /// checked by [`Tools::parse`].
    #[serde(default)]
    pub tools: Option<Value>,
    #[serde(default, alias = "tool_choice")]
    pub tool_choice: Option<Value>,
    #[serde(default, alias = "parallel_tool_calls")]
    pub parallel_tool_calls: Option<Value>,
    /// `auto` (default): cut the oldest turns to fit the context window; `disabled`: refuse.
    #[serde(default)]
    pub truncation: Option<String>,
    /// Whether the model reasons first: `{enabled}`, `{effort}`, … ([`parse_reasoning`]).
    #[serde(default)]
    pub reasoning: Option<Value>,
    /// OpenAI's `reasoning_effort`.
    #[serde(default, alias = "reasoning_effort")]
    pub reasoning_effort: Option<Value>,
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
    /// Required in the OpenAI shape; absent from AI SDK messages, which carry `parts`.
    #[serde(default)]
    pub content: Option<WireContent>,
    #[serde(default)]
    pub parts: Option<Vec<UiPart>>,
    /// An assistant message's tool calls (OpenAI shape).
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
    /// A `tool` message: the call it answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Debug, Deserialize)]
pub struct WireToolCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub function: Option<WireFunction>,
}

#[derive(Debug, Deserialize)]
pub struct WireFunction {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// One part of an AI SDK `UIMessage`. `text`, `file`, `step-start` and tool parts
/// (`tool-<name>`, `dynamic-tool`) are read; the fields of other part types (reasoning, data,
/// sources, …) are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UiPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    /// A file's bytes, when the client says (an extension of the AI SDK's file part).
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// A `dynamic-tool` part's tool (a static tool's is in its type).
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default)]
    pub error_text: Option<String>,
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
    /// The whole conversation as the client sent it, ending with the turn's input: the new
    /// user message, or the results of the assistant's tool calls.
    pub prompt: Vec<PromptMessage>,
    /// What the turn adds to the thread before the reply.
    pub input: TurnInput,
    /// The function tools the model may call.
    pub tools: Tools,
    /// Whether the conversation may be cut to fit the context window.
    pub truncation: Truncation,
    pub model: ModelName,
    pub temperature: Option<Temperature>,
    pub max_tokens: Option<MaxTokens>,
    /// The model reasons before answering (asked for, or `DEFAULT_REASONING`).
    pub reasoning: bool,
    pub stream: bool,
    /// Whether the client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The wire format of the answer.
    pub format: ReplyFormat,
    /// The AI SDK's `regenerate-message`: answer the last user message again, keeping the
    /// reply it replaces as a superseded version.
    pub regenerate: bool,
    /// Nucleus sampling, passed on when given (the Responses API's `top_p`).
    pub top_p: Option<f64>,
    /// The model's `response_format` (the Responses API's `text.format`), passed on.
    pub response_format: Option<Value>,
    /// The id the reply gets, when the caller must know it beforehand (a response's id is
    /// made from it); a fresh one otherwise.
    pub reply_id: Option<MessageId>,
    /// A Responses API request's settings, echoed by its Response and kept on the reply.
    pub response: Option<std::sync::Arc<crate::protocol::responses::Settings>>,
    /// `thread_id` names a thread created on first use (an AI SDK chat, a new response).
    pub create: bool,
    /// Store nothing (the Responses API's `store: false`): the reply is answered, its tokens
    /// counted, and nothing else is written.
    pub ephemeral: bool,
    /// Where the new message goes among the thread's branches.
    pub placement: Placement,
    /// The names of the new message's attachments that are stored but not sent.
    pub attachments_skipped: Vec<String>,
}

/// The messages a turn adds to its thread before the reply.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnInput {
    /// A new user message (the last of the prompt): its id when the client gave one, and
    /// its parts (AI SDK requests only).
    User {
        id: Option<MessageId>,
        parts: Option<Vec<MessagePart>>,
    },
    /// Messages of any kind, stored as given (the Responses API's input items).
    Messages(Vec<ChatMessage>),
    /// The results of the assistant's last tool calls (the last messages of the prompt): the
    /// model continues from them. `continues` is the AI SDK message they belong to, which
    /// the reply's events extend.
    ToolResults {
        results: Vec<ToolResult>,
        continues: Option<MessageId>,
    },
}

/// One tool call's result, as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    pub tool_name: String,
    /// The result as the model reads it.
    pub content: String,
    /// The AI SDK's structured output, kept as given.
    pub output: Option<Value>,
    pub is_error: bool,
}

pub use crate::domain::ReplyFormat;

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
        mut body: ChatBody,
        header_thread_id: Option<&str>,
        dialect: Dialect,
        config: &Config,
    ) -> Result<Self, ApiError> {
        if body.is_ui() {
            return Self::parse_ui(body, config);
        }
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

        let messages = std::mem::take(&mut body.messages);
        let count = check_count(messages.len(), config)?;
        let mut calls = OpenCalls::default();
        let mut last_id = None;
        let mut prompt = Vec::with_capacity(count + 1);
        for (i, message) in messages.into_iter().enumerate() {
            let role = role_of(&message.role, i)?;
            if role != Role::Tool {
                calls.check_answered(format_args!("messages[{i}]"))?;
                calls.clear();
            }
            let content = match message.content {
                Some(content) => Some(
                    text_of(content)
                        .map_err(|reason| invalid(format_args!("messages[{i}].content"), reason))?,
                ),
                None => None,
            };
            if let Some(text) = &content {
                check_length(text, format_args!("messages[{i}].content"), limits)?;
            }
            let entry = match role {
                Role::Tool => {
                    let call_id = message.tool_call_id.as_deref().ok_or_else(|| {
                        invalid(format_args!("messages[{i}].tool_call_id"), "is required")
                    })?;
                    calls.answer(call_id, i)?;
                    let mut entry = PromptMessage::new(role, content.unwrap_or_default());
                    entry.tool_call_id = Some(call_id.to_owned());
                    entry
                }
                Role::Assistant if message.tool_calls.as_ref().is_some_and(|c| !c.is_empty()) => {
                    let tool_calls = parse_tool_calls(message.tool_calls.unwrap_or_default(), i)?;
                    calls.open(&tool_calls);
                    let text = content.filter(|t| !t.trim().is_empty());
                    PromptMessage {
                        role,
                        content: text.map_or(PromptContent::None, PromptContent::Text),
                        tool_calls: tool_calls.iter().map(PromptToolCall::from).collect(),
                        tool_call_id: None,
                    }
                }
                _ => {
                    let text = content.ok_or_else(|| {
                        invalid(format_args!("messages[{i}].content"), "is required")
                    })?;
                    if text.trim().is_empty() {
                        return Err(invalid(
                            format_args!("messages[{i}].content"),
                            "must not be empty",
                        ));
                    }
                    PromptMessage::new(role, text)
                }
            };
            if i + 1 == count {
                last_id = message.id;
            }
            prompt.push(entry);
        }
        let input = match prompt.last().map(|m| m.role) {
            Some(Role::User) => TurnInput::User {
                id: message_id(last_id.as_deref(), count - 1)?,
                parts: None,
            },
            Some(Role::Tool) => {
                calls.check_answered(format_args!("messages"))?;
                TurnInput::ToolResults {
                    results: calls.results(&prompt),
                    continues: None,
                }
            }
            _ => return Err(not_a_turn(count - 1)),
        };

        let options = Options::parse(&body, config)?;
        let placement = placement(&body, &input, false)?;
        let stream = body.stream.unwrap_or(dialect == Dialect::Native);
        Ok(Self {
            thread_id,
            prompt,
            input,
            tools: options.tools,
            truncation: options.truncation,
            model: options.model,
            temperature: options.temperature,
            max_tokens: options.max_tokens,
            reasoning: options.reasoning,
            stream,
            include_usage: body.stream_options.is_some_and(|o| o.include_usage),
            format: ReplyFormat::OpenAi,
            regenerate: false,
            top_p: None,
            response_format: None,
            reply_id: None,
            response: None,
            create: false,
            ephemeral: false,
            placement,
            attachments_skipped: Vec::new(),
        })
    }

    /// Validates an AI SDK (`DefaultChatTransport`) body: `{id, messages: UIMessage[],
    /// trigger, …}`. Text parts become text, `image/*` file parts OpenAI `image_url` parts;
    /// an assistant message becomes one assistant message per step (its text and the tool
    /// calls that have a result) followed by the results as `tool` messages. Tool calls
    /// without a result (a stopped reply's) are left out, as are other parts. The last
    /// message is the new user message, or the assistant message whose last step's tool
    /// calls now all have results (the automatic follow-up `useChat` sends).
    fn parse_ui(body: ChatBody, config: &Config) -> Result<Self, ApiError> {
        let limits = &config.chat;
        let raw_id = body.id.as_deref().unwrap_or_default();
        let thread_id =
            ThreadId::parse(raw_id).map_err(|e| invalid("id", format_args!("is invalid: {e}")))?;
        let regenerate = match body.trigger.as_deref() {
            None | Some("submit-message") => false,
            Some("regenerate-message") => true,
            Some(_) => {
                return Err(invalid(
                    "trigger",
                    "must be `submit-message` or `regenerate-message`",
                ));
            }
        };
        let count = check_count(body.messages.len(), config)?;
        let mut input = None;
        let mut attachments_skipped = Vec::new();
        let mut prompt = Vec::with_capacity(count + 1);
        for (i, message) in body.messages.iter().enumerate() {
            let role = role_of(&message.role, i)?;
            let last = i + 1 == count;
            let parts = message.parts.as_deref().unwrap_or_default();
            if role == Role::Assistant {
                let steps = ui_steps(parts, i, limits)?;
                if last {
                    let results = steps
                        .last()
                        .map(|step| step.results.clone())
                        .unwrap_or_default();
                    if results.is_empty() {
                        return Err(not_a_turn(i));
                    }
                    let continues = message_id(message.id.as_deref(), i)?.ok_or_else(|| {
                        invalid(
                            format_args!("messages[{i}].id"),
                            "is required: it keys the turn",
                        )
                    })?;
                    input = Some(TurnInput::ToolResults {
                        results,
                        continues: Some(continues),
                    });
                }
                for step in steps {
                    step.push_to(&mut prompt);
                }
                continue;
            }
            if role == Role::Tool {
                return Err(invalid(
                    format_args!("messages[{i}].role"),
                    "must be system, user or assistant in a UI message",
                ));
            }
            let (content, kept, skipped) = ui_content(parts, role, i, limits)?;
            let Some(content) = content else {
                return Err(invalid(
                    format_args!("messages[{i}].parts"),
                    "must hold a non-empty text part or an image",
                ));
            };
            if last {
                if role != Role::User {
                    return Err(not_a_turn(i));
                }
                let id = message_id(message.id.as_deref(), i)?.ok_or_else(|| {
                    invalid(
                        format_args!("messages[{i}].id"),
                        "is required: it keys the turn",
                    )
                })?;
                input = Some(TurnInput::User {
                    id: Some(id),
                    parts: Some(kept),
                });
                attachments_skipped = skipped;
            }
            prompt.push(PromptMessage::new(role, content));
        }
        let input = input.ok_or_else(|| not_a_turn(count - 1))?;

        let options = Options::parse(&body, config)?;
        let placement = placement(&body, &input, !regenerate)?;
        Ok(Self {
            thread_id: Some(thread_id),
            prompt,
            input,
            tools: options.tools,
            truncation: options.truncation,
            model: options.model,
            temperature: options.temperature,
            max_tokens: options.max_tokens,
            reasoning: options.reasoning,
            stream: true,
            include_usage: false,
            format: ReplyFormat::Ui,
            regenerate,
            top_p: None,
            response_format: None,
            reply_id: None,
            response: None,
            create: true,
            ephemeral: false,
            placement,
            attachments_skipped,
        })
    }

    /// The new user message's text (empty for a turn that continues after tool results).
    pub fn user_text(&self) -> Cow<'_, str> {
        match (&self.input, self.prompt.last()) {
            // The text parts: what the user wrote, not the attachments given with it.
            (
                TurnInput::User {
                    parts: Some(parts), ..
                },
                _,
            ) => Cow::Owned(
                parts
                    .iter()
                    .filter_map(|p| match p {
                        MessagePart::Text { text } => Some(text.as_str()),
                        MessagePart::File { .. } | MessagePart::Reasoning { .. } => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            (TurnInput::User { .. }, Some(m)) => m.content.text(),
            _ => Cow::Borrowed(""),
        }
    }

    /// The first user message's text (the thread's title comes from it).
    pub fn first_user_text(&self) -> Cow<'_, str> {
        let first = self.prompt.iter().position(|m| m.role == Role::User);
        match first {
            Some(at) if at + 1 == self.prompt.len() => self.user_text(),
            Some(at) => self.prompt[at].content.text(),
            None => Cow::Borrowed(""),
        }
    }

    /// The messages the turn stores before its reply, in order; the turn is keyed by the
    /// first one's id.
    ///
    /// A user message keeps the client's id, or gets one derived from the thread, the
    /// position in the conversation and the text, so that a client that sends no ids (the
    /// OpenAI SDKs) and retries the very same request is still recognised. Tool results get
    /// ids derived from the thread, the position and the call they answer, for the same
    /// reason.
    pub fn input_messages(&self, thread: &ThreadId) -> Vec<ChatMessage> {
        let position = self.prompt.len() as u64;
        match &self.input {
            TurnInput::User { id, parts } => {
                let text = self.user_text();
                let mut message = ChatMessage::new(Role::User, text.as_ref());
                message.id = match (&self.placement, id) {
                    // `useChat` keeps the edited message's id for its new version: the
                    // version gets one of its own, the same for the same edit (a retry).
                    (Placement::Beside(original), Some(id)) if id == original => {
                        let edit = serde_json::to_string(parts).unwrap_or_default();
                        derived_id(
                            thread,
                            position,
                            "edit",
                            &format!("{original}\0{text}\0{edit}"),
                        )
                    }
                    (_, Some(id)) => id.clone(),
                    (_, None) => derived_id(thread, position, "user", &text),
                };
                message.parts.clone_from(parts);
                vec![message]
            }
            TurnInput::Messages(messages) => messages.clone(),
            TurnInput::ToolResults { results, .. } => results
                .iter()
                .map(|result| {
                    let mut message = ChatMessage::new(Role::Tool, result.content.as_str());
                    message.id = derived_id(thread, position, "tool", &result.call_id);
                    message.tool_call_id = Some(result.call_id.clone());
                    message.tool_name = Some(result.tool_name.clone());
                    message.tool_output.clone_from(&result.output);
                    message.tool_error = result.is_error;
                    message
                })
                .collect(),
        }
    }

    /// The request field that chose the turn's placement, for errors.
    pub fn placement_field(&self) -> &'static str {
        match self.placement {
            Placement::Beside(_) => "messageId",
            Placement::AfterLeaf | Placement::Under(_) => "parentId",
        }
    }

    /// The AI SDK message a continuation's reply extends (its events carry this id).
    pub fn continues(&self) -> Option<&MessageId> {
        match &self.input {
            TurnInput::ToolResults { continues, .. } => continues.as_ref(),
            TurnInput::User { .. } | TurnInput::Messages(_) => None,
        }
    }
}

/// A message id made from what identifies a message in a conversation, for clients that send
/// none: `h` and 24 hex digits.
fn derived_id(thread: &ThreadId, position: u64, kind: &str, key: &str) -> MessageId {
    let mut hash = Sha256::new();
    hash.update(thread.as_str().as_bytes());
    hash.update(position.to_be_bytes());
    if kind != "user" {
        // User ids predate kinds: they hash exactly as they always did.
        hash.update(kind.as_bytes());
        hash.update([0]);
    }
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [b'h'; 25];
    for (pair, byte) in id[1..].chunks_exact_mut(2).zip(&digest[..12]) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    // ASCII by construction.
    std::str::from_utf8(&id)
        .ok()
        .and_then(|id| MessageId::parse(id).ok())
        .unwrap_or_default()
}

/// Where a turn's new message goes: under the body's `parentId`, beside the message an AI SDK
/// edit names (`messageId` with `submit-message`, when `edits`), or after the active branch.
/// Only a new user message can be placed.
fn placement(body: &ChatBody, input: &TurnInput, edits: bool) -> Result<Placement, ApiError> {
    let parent = body
        .parent_id
        .as_deref()
        .map(|raw| {
            MessageId::parse(raw).map_err(|e| invalid("parentId", format_args!("is invalid: {e}")))
        })
        .transpose()?;
    // `useChat` names the last message in `messageId` on other sends too (a follow-up after
    // tool results): only a user message sent under that same id is an edit.
    let edited = match (body.message_id.as_deref(), input) {
        (Some(raw), TurnInput::User { id: Some(id), .. }) if edits && raw == id.as_str() => {
            Some(id.clone())
        }
        _ => None,
    };
    let placement = match (parent, edited) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "parentId",
                "cannot be given with `messageId`: an edit goes beside the message it edits",
            ));
        }
        (Some(parent), None) => Placement::Under(parent),
        (None, Some(edited)) => Placement::Beside(edited),
        (None, None) => Placement::AfterLeaf,
    };
    if matches!(placement, Placement::Under(_)) && !matches!(input, TurnInput::User { .. }) {
        return Err(invalid(
            "parentId",
            "places a new user message: the last message must be one",
        ));
    }
    Ok(placement)
}

/// The last message is neither a user message nor tool results.
fn not_a_turn(i: usize) -> ApiError {
    invalid(
        format_args!("messages[{i}]"),
        "must be the user's new message or the results of the assistant's tool calls: the last message is the new turn",
    )
}

/// The tool calls of the latest assistant message, and which of them have a result yet.
#[derive(Default)]
struct OpenCalls {
    /// (call id, tool name, answered by prompt index).
    calls: Vec<(String, String, Option<usize>)>,
}

impl OpenCalls {
    fn open(&mut self, calls: &[ToolCall]) {
        self.calls = calls
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), None))
            .collect();
    }

    fn answer(&mut self, call_id: &str, i: usize) -> Result<(), ApiError> {
        match self.calls.iter_mut().find(|(id, _, _)| id == call_id) {
            Some((_, _, answered @ None)) => {
                *answered = Some(i);
                Ok(())
            }
            Some(_) => Err(invalid(
                format_args!("messages[{i}].tool_call_id"),
                format_args!("answers `{call_id}` a second time"),
            )),
            None => Err(invalid(
                format_args!("messages[{i}].tool_call_id"),
                format_args!("`{call_id}` is not a tool call of the assistant message before it"),
            )),
        }
    }

    /// Before a message that is not a tool result, and at the end: every call of the
    /// assistant has its result.
    fn check_answered(&self, field: std::fmt::Arguments<'_>) -> Result<(), ApiError> {
        match self.calls.iter().find(|(_, _, a)| a.is_none()) {
            Some((id, _, _)) => Err(invalid(
                field,
                format_args!(
                    "follows the tool call `{id}` without its result: send a `tool` message for every call"
                ),
            )),
            None => Ok(()),
        }
    }

    fn clear(&mut self) {
        self.calls.clear();
    }

    /// The results of the last assistant message's calls, as the prompt holds them.
    fn results(&self, prompt: &[PromptMessage]) -> Vec<ToolResult> {
        let mut answered: Vec<&(String, String, Option<usize>)> = self.calls.iter().collect();
        answered.sort_by_key(|(_, _, at)| *at);
        answered
            .into_iter()
            .filter_map(|(id, name, at)| {
                let message = prompt.get((*at)?)?;
                Some(ToolResult {
                    call_id: id.clone(),
                    tool_name: name.clone(),
                    content: message.content.text().into_owned(),
                    output: None,
                    is_error: false,
                })
            })
            .collect()
    }
}

/// Longest tool call id accepted (ids are the model's or the client's own).
const MAX_CALL_ID_BYTES: usize = 256;

fn parse_tool_calls(raw: Vec<WireToolCall>, i: usize) -> Result<Vec<ToolCall>, ApiError> {
    raw.into_iter()
        .enumerate()
        .map(|(j, call)| {
            let at = |field: &str| format!("messages[{i}].tool_calls[{j}]{field}");
            let id = call
                .id
                .filter(|id| !id.is_empty() && id.len() <= MAX_CALL_ID_BYTES)
                .ok_or_else(|| {
                    invalid(
                        at(".id"),
                        format_args!("is required (1 to {MAX_CALL_ID_BYTES} bytes)"),
                    )
                })?;
            if call.kind.as_deref().is_some_and(|k| k != "function") {
                return Err(invalid(at(".type"), "must be `function`"));
            }
            let function = call
                .function
                .ok_or_else(|| invalid(at(".function"), "is required"))?;
            let name = function
                .name
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid(at(".function.name"), "is required"))?;
            Ok(ToolCall {
                id,
                name,
                arguments: function.arguments.unwrap_or_default(),
            })
        })
        .collect()
}

impl ChatBody {
    /// Whether this is the AI SDK's body: a chat `id`, and messages carrying `parts`.
    pub fn is_ui(&self) -> bool {
        self.id.is_some() && self.messages.iter().any(|m| m.parts.is_some())
    }
}

/// The generation options every body shape shares.
struct Options {
    tools: Tools,
    truncation: Truncation,
    model: ModelName,
    temperature: Option<Temperature>,
    max_tokens: Option<MaxTokens>,
    reasoning: bool,
}

impl Options {
    fn parse(body: &ChatBody, config: &Config) -> Result<Self, ApiError> {
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
                MaxTokens::parse(n, config.chat.max_tokens_cap)
                    .map_err(|e| invalid("max_tokens", e))
            })
            .transpose()?;
        if body.n.is_some_and(|n| n != 1) {
            return Err(invalid("n", "must be 1: one reply per request"));
        }
        let tools = Tools::parse(
            body.tools.as_ref(),
            body.tool_choice.as_ref(),
            body.parallel_tool_calls.as_ref(),
        )
        .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
        let truncation = match body.truncation.as_deref() {
            None | Some("auto") => Truncation::Auto,
            Some("disabled") => Truncation::Disabled,
            Some(_) => return Err(invalid("truncation", "must be `auto` or `disabled`")),
        };
        let reasoning = parse_reasoning(body.reasoning.as_ref(), body.reasoning_effort.as_ref())
            .map_err(|e| ApiError::InvalidBody(e.to_string()))?
            .unwrap_or(config.chat.default_reasoning);
        Ok(Self {
            tools,
            truncation,
            model,
            temperature,
            max_tokens,
            reasoning,
        })
    }
}

/// The number of messages, when it is within bounds.
fn check_count(count: usize, config: &Config) -> Result<usize, ApiError> {
    if count == 0 {
        return Err(invalid("messages", "must hold at least one message"));
    }
    if count > config.chat.max_messages {
        return Err(invalid(
            "messages",
            format_args!("may hold at most {} messages", config.chat.max_messages),
        ));
    }
    Ok(count)
}

fn role_of(raw: &str, i: usize) -> Result<Role, ApiError> {
    match raw {
        "system" | "developer" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        "tool" => Ok(Role::Tool),
        _ => Err(invalid(
            format_args!("messages[{i}].role"),
            "must be one of system, developer, user, assistant, tool",
        )),
    }
}

fn check_length(
    text: &str,
    field: std::fmt::Arguments<'_>,
    limits: &ChatConfig,
) -> Result<(), ApiError> {
    if text.chars().count() > limits.max_content_chars {
        return Err(invalid(
            field,
            format_args!("is longer than {} characters", limits.max_content_chars),
        ));
    }
    Ok(())
}

/// A message's id as the client gave it, when it did.
fn message_id(id: Option<&str>, i: usize) -> Result<Option<MessageId>, ApiError> {
    id.map(|raw| {
        MessageId::parse(raw).map_err(|e| {
            invalid(
                format_args!("messages[{i}].id"),
                format_args!("is invalid: {e}"),
            )
        })
    })
    .transpose()
}

/// One step of an AI SDK assistant message: what the model said, the calls it made that
/// have a result, and those results.
struct UiStep {
    text: String,
    calls: Vec<ToolCall>,
    results: Vec<ToolResult>,
}

impl UiStep {
    fn push_to(self, prompt: &mut Vec<PromptMessage>) {
        if self.text.trim().is_empty() && self.calls.is_empty() {
            return;
        }
        let content = if self.text.trim().is_empty() {
            PromptContent::None
        } else {
            PromptContent::Text(self.text)
        };
        prompt.push(PromptMessage {
            role: Role::Assistant,
            content,
            tool_calls: self.calls.iter().map(PromptToolCall::from).collect(),
            tool_call_id: None,
        });
        for result in self.results {
            let mut message = PromptMessage::new(Role::Tool, result.content);
            message.tool_call_id = Some(result.call_id);
            prompt.push(message);
        }
    }
}

/// An AI SDK assistant message's parts, cut into steps at `step-start`.
fn ui_steps(parts: &[UiPart], i: usize, limits: &ChatConfig) -> Result<Vec<UiStep>, ApiError> {
    let mut steps: Vec<UiStep> = Vec::new();
    let new_step = || UiStep {
        text: String::new(),
        calls: Vec::new(),
        results: Vec::new(),
    };
    for (j, part) in parts.iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].parts[{j}]{field}");
        if part.kind == "step-start" || steps.is_empty() {
            steps.push(new_step());
        }
        let Some(step) = steps.last_mut() else {
            continue;
        };
        let tool_name = match part.kind.as_str() {
            "text" => {
                let text = part
                    .text
                    .as_deref()
                    .ok_or_else(|| invalid(at(".text"), "is required"))?;
                check_length(text, format_args!("{}", at(".text")), limits)?;
                if !step.text.is_empty() {
                    step.text.push('\n');
                }
                step.text.push_str(text);
                continue;
            }
            "dynamic-tool" => part.tool_name.as_deref().unwrap_or_default(),
            kind => match kind.strip_prefix("tool-") {
                Some(name) => name,
                None => continue,
            },
        };
        let call_id = part
            .tool_call_id
            .as_deref()
            .filter(|id| !id.is_empty() && id.len() <= MAX_CALL_ID_BYTES)
            .ok_or_else(|| {
                invalid(
                    at(".toolCallId"),
                    format_args!("is required (1 to {MAX_CALL_ID_BYTES} bytes)"),
                )
            })?;
        if tool_name.is_empty() {
            return Err(invalid(at(".toolName"), "is required"));
        }
        let (content, output, is_error) = match part.state.as_deref() {
            Some("output-available") => {
                let output = part.output.clone().unwrap_or(Value::Null);
                let content = match &output {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (content, Some(output), false)
            }
            Some("output-error") => (part.error_text.clone().unwrap_or_default(), None, true),
            // No result (yet): the call is left out of the prompt.
            _ => continue,
        };
        check_length(&content, format_args!("{}", at(".output")), limits)?;
        let arguments = part
            .input
            .as_ref()
            .map_or_else(|| "{}".to_owned(), Value::to_string);
        step.calls.push(ToolCall {
            id: call_id.to_owned(),
            name: tool_name.to_owned(),
            arguments,
        });
        step.results.push(ToolResult {
            call_id: call_id.to_owned(),
            tool_name: tool_name.to_owned(),
            content,
            output,
            is_error,
        });
    }
    Ok(steps)
}

/// A UI message's content for the model (none when it holds nothing the model reads), the
/// parts kept, and the names of the attachments not sent.
type UiContent = (Option<PromptContent>, Vec<MessagePart>, Vec<String>);

/// A `UIMessage`'s parts as prompt content (`None` when nothing usable is left), the parts
/// kept for storage, and the attachments stored but not sent (see [`attachments`]).
fn ui_content(
    parts: &[UiPart],
    role: Role,
    i: usize,
    limits: &ChatConfig,
) -> Result<UiContent, ApiError> {
    let mut prompt_parts = Vec::new();
    let mut kept = Vec::new();
    let mut has_image = false;
    // Text attachments follow the message's own text; skipped ones are named.
    let mut attached = Vec::new();
    let mut skipped = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        match (part.kind.as_str(), &part.text) {
            ("text", Some(text)) => {
                check_length(text, format_args!("messages[{i}].parts[{j}].text"), limits)?;
                if text.trim().is_empty() {
                    continue;
                }
                prompt_parts.push(PromptPart::Text { text: text.clone() });
                kept.push(MessagePart::Text { text: text.clone() });
            }
            ("text", None) => {
                return Err(invalid(
                    format_args!("messages[{i}].parts[{j}].text"),
                    "is required",
                ));
            }
            ("file", _) => {
                // A model reply's files are not ours to send back.
                if role != Role::User {
                    continue;
                }
                let at = format_args!("messages[{i}].parts[{j}]").to_string();
                let media_type = part
                    .media_type
                    .as_deref()
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| invalid(format_args!("{at}.mediaType"), "is required"))?;
                let url = part.url.as_deref().unwrap_or_default();
                if !(url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with("data:"))
                {
                    return Err(invalid(
                        format_args!("{at}.url"),
                        "must be an http(s) URL or a data URL",
                    ));
                }
                let name = part
                    .filename
                    .clone()
                    .unwrap_or_else(|| media_type.to_owned());
                match attachments::classify(
                    media_type,
                    url,
                    &name,
                    limits.max_attachment_text_chars,
                )
                .map_err(|reason| invalid(format_args!("{at}.url"), reason))?
                {
                    Attachment::Image => {
                        if !(url.starts_with("http") || url.starts_with("data:image/")) {
                            return Err(invalid(
                                format_args!("{at}.url"),
                                "must be an http(s) URL or an image data URL",
                            ));
                        }
                        has_image = true;
                        prompt_parts.push(PromptPart::ImageUrl {
                            image_url: ImageUrl {
                                url: url.to_owned(),
                            },
                        });
                    }
                    Attachment::Text(text) => attached.push(text),
                    Attachment::Skipped => skipped.push(name),
                }
                kept.push(MessagePart::File {
                    media_type: media_type.to_owned(),
                    url: url.to_owned(),
                    filename: part.filename.clone(),
                    size: part.size.or_else(|| attachments::data_url_size(url)),
                });
            }
            _ => {}
        }
    }
    prompt_parts.extend(attached.into_iter().map(|text| PromptPart::Text { text }));
    if prompt_parts.is_empty() {
        return Ok((None, kept, skipped));
    }
    let content = if has_image {
        PromptContent::Parts(prompt_parts)
    } else {
        let texts: Vec<String> = prompt_parts
            .into_iter()
            .filter_map(|p| match p {
                PromptPart::Text { text } => Some(text),
                PromptPart::ImageUrl { .. } => None,
            })
            .collect();
        PromptContent::Text(texts.join("\n"))
    };
    Ok((Some(content), kept, skipped))
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn derived_ids_stay_what_they_were() {
        // A retry sent to a newer deployment must name the same message: these are the ids
        // every earlier version made (SHA-256 of thread, position, kind and key; 12 bytes).
        let thread = ThreadId::parse("thread-1").unwrap();
        assert_eq!(
            derived_id(&thread, 0, "user", "Hello there").as_str(),
            "h0a8f9974002c60925c5a3475"
        );
        assert_eq!(
            derived_id(&thread, 3, "tool", "call_abc").as_str(),
            "hce304ad5d203a5b3ec6d1484"
        );
    }

    fn config() -> Config {
        Config::from_vars(
            [
                ("AUTH_SECRET", "a-test-secret-of-at-least-32-bytes!!"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("NOUS_API_KEY", "k"),
                ("MAX_MESSAGES_PER_REQUEST", "5"),
                ("MAX_CONTENT_CHARS", "10"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap()
    }

    fn parse(body: Value, dialect: Dialect) -> Result<TurnRequest, ApiError> {
        let body: ChatBody = serde_json::from_value(body).unwrap();
        TurnRequest::parse(body, None, dialect, &config())
    }

    /// The refusal's message, which must name `field`.
    fn refusal(body: Value) -> String {
        match parse(body, Dialect::Native) {
            Err(ApiError::InvalidBody(message)) => message,
            other => panic!("not refused: {other:?}"),
        }
    }

    fn user(text: &str) -> Value {
        json!({ "role": "user", "content": text })
    }

    #[test]
    fn every_refusal_names_its_field() {
        let cases = [
            (json!({ "messages": [] }), "`messages`"),
            (
                json!({ "messages": [user("a"), user("b"), user("c"), user("d"), user("e"), user("f")] }),
                "`messages`",
            ),
            (
                json!({ "messages": [{ "role": "robot", "content": "a" }] }),
                "`messages[0].role`",
            ),
            (
                json!({ "messages": [{ "role": "user" }] }),
                "`messages[0].content`",
            ),
            (
                json!({ "messages": [user("   ")] }),
                "`messages[0].content`",
            ),
            (
                json!({ "messages": [user("far too long here")] }),
                "`messages[0].content`",
            ),
            (
                json!({ "messages": [{ "role": "user", "content": [{ "type": "image_url" }] }] }),
                "`messages[0].content`",
            ),
            (
                json!({ "messages": [user("a"), { "role": "assistant", "content": "b" }] }),
                "`messages[1]`",
            ),
            (
                json!({ "messages": [{ "role": "user", "content": "a", "id": "bad id!" }] }),
                "`messages[0].id`",
            ),
            (
                json!({ "threadId": "no/slash", "messages": [user("a")] }),
                "`threadId`",
            ),
            (
                json!({ "model": "gpt-5", "messages": [user("a")] }),
                "`model`",
            ),
            (
                json!({ "temperature": 9, "messages": [user("a")] }),
                "`temperature`",
            ),
            (
                json!({ "max_tokens": 100000, "messages": [user("a")] }),
                "`max_tokens`",
            ),
            (json!({ "n": 2, "messages": [user("a")] }), "`n`"),
        ];
        for (body, field) in cases {
            let message = refusal(body.clone());
            assert!(
                message.contains(field),
                "{body}: {message:?} does not name {field}"
            );
        }
    }

    #[test]
    fn the_openai_shapes_parse_into_the_prompt_and_options() {
        let request = parse(
            json!({
                "threadId": "t1",
                "model": "Hermes-4-405B",
                "temperature": 0.5,
                "max_completion_tokens": 64,
                "stream_options": { "include_usage": true },
                "messages": [
                    { "role": "developer", "content": "Be brief." },
                    { "role": "user", "content": [{ "type": "text", "text": "Hi" }, { "type": "text", "text": "there" }] },
                ],
            }),
            Dialect::OpenAi,
        )
        .unwrap();
        assert_eq!(request.thread_id.as_ref().map(ThreadId::as_str), Some("t1"));
        assert_eq!(request.prompt[0].role, Role::System);
        assert_eq!(request.user_text(), "Hi\nthere");
        assert_eq!(request.model.as_str(), "Hermes-4-405B");
        assert_eq!(request.max_tokens.map(MaxTokens::get), Some(64));
        assert!(request.include_usage);
        assert!(!request.stream, "the OpenAI route streams only when asked");
        assert_eq!(request.format, ReplyFormat::OpenAi);
        assert!(
            parse(json!({ "messages": [user("a")] }), Dialect::Native)
                .unwrap()
                .stream
        );
    }

    #[test]
    fn a_retried_request_without_ids_keys_the_same_turn() {
        let thread = ThreadId::parse("t1").unwrap();
        let body =
            json!({ "messages": [user("a"), { "role": "assistant", "content": "b" }, user("c")] });
        let key = |body: Value| {
            parse(body, Dialect::Native)
                .unwrap()
                .input_messages(&thread)[0]
                .id
                .clone()
        };
        let first = key(body.clone());
        let again = key(body);
        assert_eq!(first, again);
        let other = key(json!({ "messages": [user("c")] }));
        assert_ne!(first, other, "the position in the conversation counts");
    }

    fn call(id: &str, name: &str) -> Value {
        json!({ "id": id, "type": "function", "function": { "name": name, "arguments": "{}" } })
    }

    fn tool(id: &str, content: &str) -> Value {
        json!({ "role": "tool", "tool_call_id": id, "content": content })
    }

    fn asked(calls: &[Value]) -> Value {
        json!({ "role": "assistant", "content": null, "tool_calls": calls })
    }

    #[test]
    fn tool_histories_are_refused_with_the_field_named() {
        let weather = json!([{ "type": "function", "function": { "name": "w" } }]);
        let cases = [
            (
                json!({ "messages": [user("a"), asked(&[call("c1", "w")]), tool("c9", "x")] }),
                "`messages[2].tool_call_id`",
            ),
            (
                json!({ "messages": [user("a"), asked(&[call("c1", "w")]), { "role": "tool", "content": "x" }] }),
                "`messages[2].tool_call_id`",
            ),
            (
                json!({ "messages": [user("a"), asked(&[call("c1", "w")]), tool("c1", "x"), tool("c1", "y")] }),
                "`messages[3].tool_call_id`",
            ),
            (
                json!({ "messages": [user("a"), asked(&[call("c1", "w"), call("c2", "w")]), tool("c1", "x")] }),
                "`messages`",
            ),
            (
                json!({ "messages": [user("a"), asked(&[call("c1", "w")]), user("b")] }),
                "`messages[2]`",
            ),
            (
                json!({ "messages": [user("a"), tool("c1", "x")] }),
                "`messages[1].tool_call_id`",
            ),
            (
                json!({ "messages": [user("a"), asked(&[json!({ "type": "function", "function": { "name": "w" } })]), tool("c1", "x")] }),
                "`messages[1].tool_calls[0].id`",
            ),
            (
                json!({ "messages": [user("a"), asked(&[json!({ "id": "c1", "type": "function", "function": {} })]), tool("c1", "x")] }),
                "`messages[1].tool_calls[0].function.name`",
            ),
            (
                json!({ "messages": [user("a"), asked(&[json!({ "id": "c1", "type": "custom", "function": { "name": "w" } })]), tool("c1", "x")] }),
                "`messages[1].tool_calls[0].type`",
            ),
            (
                json!({ "messages": [user("a"), tool("c1", "far too long here")] }),
                "`messages[1].content`",
            ),
            (
                json!({ "tools": weather, "tool_choice": { "type": "function", "function": { "name": "v" } }, "messages": [user("a")] }),
                "`tool_choice.function.name`",
            ),
            (
                json!({ "tools": [{ "type": "function", "function": { "name": "w", "parameters": { "type": "object", "properties": 3 } } }], "messages": [user("a")] }),
                "`tools[0].function.parameters`",
            ),
        ];
        for (body, field) in cases {
            let message = refusal(body.clone());
            assert!(
                message.contains(field),
                "{body}: {message:?} does not name {field}"
            );
        }
    }

    #[test]
    fn tool_results_are_the_turn_of_a_continued_conversation() {
        let thread = ThreadId::parse("t1").unwrap();
        let body = json!({
            "tools": [{ "type": "function", "function": { "name": "w" } }],
            "parallel_tool_calls": true,
            "messages": [user("a"), asked(&[call("c1", "w"), call("c2", "w")]), tool("c2", "B"), tool("c1", "A")],
        });
        let request = parse(body.clone(), Dialect::OpenAi).unwrap();
        assert_eq!(request.tools.functions.len(), 1);
        assert_eq!(request.prompt[1].content, PromptContent::None);
        assert_eq!(request.prompt[1].tool_calls.len(), 2);
        assert_eq!(request.prompt[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(request.user_text(), "", "no new user message");
        let inputs = request.input_messages(&thread);
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[0].role, Role::Tool);
        assert_eq!(
            inputs[0].tool_call_id.as_deref(),
            Some("c2"),
            "in the order sent"
        );
        assert_eq!(inputs[0].content, "B");
        assert_eq!(inputs[1].tool_name.as_deref(), Some("w"));
        let again = parse(body, Dialect::OpenAi)
            .unwrap()
            .input_messages(&thread);
        assert_eq!(
            inputs[0].id, again[0].id,
            "a retried continuation keys the same turn"
        );
        assert_ne!(inputs[0].id, inputs[1].id);
    }

    #[test]
    fn an_ai_sdk_message_with_tool_results_continues_it() {
        let request = parse(
            json!({
                "id": "chat1",
                "messages": [
                    { "id": "u1", "role": "user", "parts": [{ "type": "text", "text": "Hi" }] },
                    { "id": "a1", "role": "assistant", "parts": [
                        { "type": "step-start" },
                        { "type": "text", "text": "Looking", "state": "done" },
                        { "type": "tool-w", "toolCallId": "c1", "state": "output-available", "input": { "city": "Oslo" }, "output": { "temp": 3 } },
                        { "type": "step-start" },
                        { "type": "dynamic-tool", "toolName": "v", "toolCallId": "c2", "state": "output-error", "input": {}, "errorText": "down" },
                        { "type": "tool-w", "toolCallId": "c3", "state": "input-streaming" },
                    ] },
                ],
            }),
            Dialect::Native,
        )
        .unwrap();
        let roles: Vec<Role> = request.prompt.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::Assistant,
                Role::Tool
            ]
        );
        assert_eq!(
            request.prompt[1].tool_calls[0].function.arguments,
            r#"{"city":"Oslo"}"#
        );
        assert_eq!(request.prompt[2].content.text(), r#"{"temp":3}"#);
        assert_eq!(
            request.prompt[3].tool_calls.len(),
            1,
            "a call without a result is left out"
        );
        assert_eq!(request.continues().map(MessageId::as_str), Some("a1"));
        let inputs = request.input_messages(request.thread_id.as_ref().unwrap());
        assert_eq!(inputs.len(), 1, "only the last step's results are new");
        assert!(inputs[0].tool_error);
        assert_eq!(inputs[0].content, "down");

        let refused = parse(
            json!({ "id": "c", "messages": [
                { "id": "u1", "role": "user", "parts": [{ "type": "text", "text": "Hi" }] },
                { "id": "a1", "role": "assistant", "parts": [{ "type": "text", "text": "Hello" }] },
            ] }),
            Dialect::Native,
        );
        assert!(matches!(refused, Err(ApiError::InvalidBody(m)) if m.contains("`messages[1]`")));
    }

    #[test]
    fn an_ai_sdk_body_is_answered_as_a_ui_stream_with_its_parts_kept() {
        let request = parse(
            json!({
                "id": "chat1",
                "trigger": "regenerate-message",
                "messages": [
                    { "id": "u1", "role": "user", "parts": [
                        { "type": "text", "text": "Look" },
                        { "type": "file", "mediaType": "image/png", "url": "data:image/png;base64,AA" },
                    ] },
                ],
            }),
            Dialect::Native,
        )
        .unwrap();
        assert_eq!(request.format, ReplyFormat::Ui);
        assert!(request.regenerate && request.stream);
        assert_eq!(
            request.thread_id.as_ref().map(ThreadId::as_str),
            Some("chat1")
        );
        let inputs = request.input_messages(request.thread_id.as_ref().unwrap());
        assert_eq!(inputs[0].id.as_str(), "u1");
        assert!(matches!(request.prompt[0].content, PromptContent::Parts(ref p) if p.len() == 2));
        assert_eq!(inputs[0].parts.as_ref().map(Vec::len), Some(2));

        let refused = |body: Value| match parse(body, Dialect::Native) {
            Err(ApiError::InvalidBody(message)) => message,
            other => panic!("not refused: {other:?}"),
        };
        let part = json!([{ "type": "text", "text": "a" }]);
        assert!(refused(json!({ "id": "c", "trigger": "other", "messages": [{ "id": "u", "role": "user", "parts": part }] })).contains("`trigger`"));
        assert!(
            refused(json!({ "id": "c", "messages": [{ "role": "user", "parts": part }] }))
                .contains("`messages[0].id`")
        );
        assert!(refused(json!({ "id": "c", "messages": [{ "id": "u", "role": "user", "parts": [{ "type": "file", "mediaType": "image/png", "url": "ftp://x" }] }] })).contains("`messages[0].parts[0].url`"));
    }
}
