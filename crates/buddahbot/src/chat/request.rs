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
use sha2::{Digest, Sha256};

use crate::{
    config::{ChatConfig, Config},
    domain::{MaxTokens, MessageId, MessagePart, ModelName, Role, Temperature, ThreadId},
    error::ApiError,
    upstream::wire::{ImageUrl, PromptContent, PromptMessage, PromptPart},
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
    /// Required in the OpenAI shape; absent from AI SDK messages, which carry `parts`.
    #[serde(default)]
    pub content: Option<WireContent>,
    #[serde(default)]
    pub parts: Option<Vec<UiPart>>,
}

/// One part of an AI SDK `UIMessage`. Only `text` and `file` parts are read; the fields of
/// other part types (tools, reasoning, data, …) are ignored.
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
    /// The wire format of the answer.
    pub format: ReplyFormat,
    /// The new user message as parts, stored with it (AI SDK requests only).
    pub user_parts: Option<Vec<MessagePart>>,
    /// The AI SDK's `regenerate-message`: answer the last user message again, keeping the
    /// reply it replaces as a superseded version.
    pub regenerate: bool,
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
        let mut user_message_id = None;
        let mut prompt = Vec::with_capacity(count + 1);
        for (i, message) in messages.into_iter().enumerate() {
            let role = role_of(&message.role, i)?;
            let content = message
                .content
                .ok_or_else(|| invalid(format_args!("messages[{i}].content"), "is required"))
                .and_then(|content| {
                    text_of(content)
                        .map_err(|reason| invalid(format_args!("messages[{i}].content"), reason))
                })?;
            if content.trim().is_empty() {
                return Err(invalid(
                    format_args!("messages[{i}].content"),
                    "must not be empty",
                ));
            }
            check_length(&content, format_args!("messages[{i}].content"), limits)?;
            if i + 1 == count {
                user_message_id = new_turn_id(role, message.id.as_deref(), i)?;
            }
            prompt.push(PromptMessage {
                role,
                content: content.into(),
            });
        }

        let options = Options::parse(&body, config)?;
        let stream = body.stream.unwrap_or(dialect == Dialect::Native);
        Ok(Self {
            thread_id,
            prompt,
            user_message_id,
            model: options.model,
            temperature: options.temperature,
            max_tokens: options.max_tokens,
            stream,
            include_usage: body.stream_options.is_some_and(|o| o.include_usage),
            format: ReplyFormat::OpenAi,
            user_parts: None,
            regenerate: false,
        })
    }

    /// Validates an AI SDK (`DefaultChatTransport`) body: `{id, messages: UIMessage[],
    /// trigger, …}`. Text parts become text, `image/*` file parts OpenAI `image_url` parts;
    /// other parts are ignored. Assistant messages left with nothing (tool calls only) are
    /// left out of the prompt.
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
        let mut user_message_id = None;
        let mut user_parts = None;
        let mut prompt = Vec::with_capacity(count + 1);
        for (i, message) in body.messages.iter().enumerate() {
            let role = role_of(&message.role, i)?;
            let last = i + 1 == count;
            let parts = message.parts.as_deref().unwrap_or_default();
            let (content, kept) = ui_content(parts, role, i, limits)?;
            if last {
                user_message_id = new_turn_id(role, message.id.as_deref(), i)?;
                if user_message_id.is_none() {
                    return Err(invalid(
                        format_args!("messages[{i}].id"),
                        "is required: it keys the turn",
                    ));
                }
            }
            match content {
                Some(content) => {
                    if last {
                        user_parts = Some(kept);
                    }
                    prompt.push(PromptMessage { role, content });
                }
                // An assistant turn with nothing we can pass on (tool calls only) is left
                // out; a user or system message must say something.
                None if role == Role::Assistant && !last => {}
                None => {
                    return Err(invalid(
                        format_args!("messages[{i}].parts"),
                        "must hold a non-empty text part or an image",
                    ));
                }
            }
        }

        let options = Options::parse(&body, config)?;
        Ok(Self {
            thread_id: Some(thread_id),
            prompt,
            user_message_id,
            model: options.model,
            temperature: options.temperature,
            max_tokens: options.max_tokens,
            stream: true,
            include_usage: false,
            format: ReplyFormat::Ui,
            user_parts,
            regenerate,
        })
    }

    /// The new user message's text.
    pub fn user_text(&self) -> Cow<'_, str> {
        self.prompt
            .last()
            .map_or(Cow::Borrowed(""), |m| m.content.text())
    }

    /// The first user message's text (the thread's title comes from it).
    pub fn first_user_text(&self) -> Cow<'_, str> {
        self.prompt
            .iter()
            .find(|m| m.role == Role::User)
            .map_or(Cow::Borrowed(""), |m| m.content.text())
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

impl ChatBody {
    /// Whether this is the AI SDK's body: a chat `id`, and messages carrying `parts`.
    pub fn is_ui(&self) -> bool {
        self.id.is_some() && self.messages.iter().any(|m| m.parts.is_some())
    }
}

/// The generation options every body shape shares.
struct Options {
    model: ModelName,
    temperature: Option<Temperature>,
    max_tokens: Option<MaxTokens>,
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
        Ok(Self {
            model,
            temperature,
            max_tokens,
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
        _ => Err(invalid(
            format_args!("messages[{i}].role"),
            "must be one of system, developer, user, assistant",
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

/// The last message's id, after checking that the last message is the user's new turn.
fn new_turn_id(role: Role, id: Option<&str>, i: usize) -> Result<Option<MessageId>, ApiError> {
    if role != Role::User {
        return Err(invalid(
            format_args!("messages[{i}].role"),
            "must be `user`: the last message is the new turn",
        ));
    }
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

/// A `UIMessage`'s parts as prompt content (`None` when nothing usable is left), and the
/// parts kept for storage.
fn ui_content(
    parts: &[UiPart],
    role: Role,
    i: usize,
    limits: &ChatConfig,
) -> Result<(Option<PromptContent>, Vec<MessagePart>), ApiError> {
    let mut prompt_parts = Vec::new();
    let mut kept = Vec::new();
    let mut has_image = false;
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
                let media_type = part.media_type.as_deref().unwrap_or_default();
                let url = part.url.as_deref().unwrap_or_default();
                if !media_type.starts_with("image/") {
                    continue;
                }
                // Only the user's own images go upstream; a model reply is text.
                if role != Role::User {
                    continue;
                }
                if !(url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with("data:image/"))
                {
                    return Err(invalid(
                        format_args!("messages[{i}].parts[{j}].url"),
                        "must be an http(s) URL or an image data URL",
                    ));
                }
                has_image = true;
                prompt_parts.push(PromptPart::ImageUrl {
                    image_url: ImageUrl {
                        url: url.to_owned(),
                    },
                });
                kept.push(MessagePart::File {
                    media_type: media_type.to_owned(),
                    url: url.to_owned(),
                    filename: part.filename.clone(),
                });
            }
            _ => {}
        }
    }
    if prompt_parts.is_empty() {
        return Ok((None, kept));
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
    Ok((Some(content), kept))
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

    fn config() -> Config {
        Config::from_vars(
            [
                ("AUTH_SECRET", "a-test-secret-of-at-least-32-bytes!!"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("NOUS_API_KEY", "k"),
                ("MAX_MESSAGES_PER_REQUEST", "3"),
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
                json!({ "messages": [user("a"), user("b"), user("c"), user("d")] }),
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
                "`messages[1].role`",
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
        let first = parse(body.clone(), Dialect::Native)
            .unwrap()
            .user_message_id(&thread);
        let again = parse(body, Dialect::Native)
            .unwrap()
            .user_message_id(&thread);
        assert_eq!(first, again);
        let other = parse(json!({ "messages": [user("c")] }), Dialect::Native)
            .unwrap()
            .user_message_id(&thread);
        assert_ne!(first, other, "the position in the conversation counts");
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
        assert_eq!(
            request.user_message_id.as_ref().map(MessageId::as_str),
            Some("u1")
        );
        assert!(matches!(request.prompt[0].content, PromptContent::Parts(ref p) if p.len() == 2));
        assert_eq!(request.user_parts.as_ref().map(Vec::len), Some(2));

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
