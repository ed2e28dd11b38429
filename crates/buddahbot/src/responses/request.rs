//! `POST /api/responses`'s body, checked at the edge: the input items as the messages they
//! are stored as and the prompt they add, the tools in chat shape, and the settings the
//! Response echoes. Every refusal names its field.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    domain::{
        ChatMessage, MaxTokens, MessagePart, ModelName, Role, Temperature, ThreadId, ToolCall,
        Tools,
    },
    error::ApiError,
    protocol::responses::Settings,
    upstream::wire::{ImageUrl, PromptContent, PromptMessage, PromptPart, PromptToolCall},
};

/// Most metadata pairs, and their sizes (OpenAI's limits).
const MAX_METADATA_PAIRS: usize = 16;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;

/// The body of `POST /api/responses`. Unknown fields are tolerated, as the SDKs send some.
#[derive(Debug, Default, Deserialize)]
pub struct CreateBody {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default)]
    pub instructions: Option<Value>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub conversation: Option<Value>,
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(default)]
    pub tools: Option<Value>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<Value>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub truncation: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub text: Option<Value>,
    #[serde(default)]
    pub user: Option<String>,
    /// `{effort, summary}`: whether the model reasons first (`effort: "none"` says no).
    #[serde(default)]
    pub reasoning: Option<Value>,
}

fn invalid(field: impl std::fmt::Display, reason: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidBody(format!("`{field}` {reason}"))
}

/// Where the response's history comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// A new thread (no history).
    New,
    /// The thread of this response, up to it.
    Previous(String),
    /// This conversation (thread): all of it.
    Conversation(ThreadId),
}

/// A checked `POST /api/responses` body.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub model: ModelName,
    pub history: History,
    /// The input as stored (ids fresh, `response_id` still to stamp).
    pub input: Vec<ChatMessage>,
    /// The input as the model gets it.
    pub prompt: Vec<PromptMessage>,
    pub tools: Tools,
    pub temperature: Option<Temperature>,
    pub top_p: Option<f64>,
    pub max_output_tokens: Option<MaxTokens>,
    pub response_format: Option<Value>,
    pub truncation_disabled: bool,
    /// The model reasons before answering (asked for, or `DEFAULT_REASONING`).
    pub reasoning: bool,
    pub stream: bool,
    pub settings: Settings,
}

impl CreateRequest {
    /// Checks a body against the configured limits.
    ///
    /// # Errors
    /// [`ApiError::InvalidBody`] naming the first wrong field.
    pub fn parse(body: CreateBody, config: &crate::config::Config) -> Result<Self, ApiError> {
        let upstream = &config.upstream;
        let model = match body.model.as_deref() {
            None => ModelName::configured(&upstream.default_model),
            Some(raw) => {
                ModelName::parse(raw, &upstream.allowed_models).map_err(|e| invalid("model", e))?
            }
        };
        if body.previous_response_id.is_some() && body.conversation.is_some() {
            return Err(invalid(
                "conversation",
                "cannot be combined with `previous_response_id`: a response continues one or the other",
            ));
        }
        let history = match (&body.previous_response_id, &body.conversation) {
            (Some(id), _) => History::Previous(id.clone()),
            (None, Some(conversation)) => History::Conversation(conversation_id(conversation)?),
            (None, None) => History::New,
        };
        if body.store == Some(false) && body.background == Some(true) {
            return Err(invalid(
                "background",
                "needs `store: true`: a background response is fetched from the store",
            ));
        }
        let instructions = match &body.instructions {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(invalid("instructions", "must be a string")),
        };
        let (input, prompt) = parse_input(body.input.as_ref(), config)?;
        let (chat_tools, responses_tools) = tools_in_chat_shape(body.tools.as_ref())?;
        let chat_choice = body.tool_choice.as_ref().map(choice_in_chat_shape);
        let tools = Tools::parse(
            chat_tools.as_ref(),
            chat_choice.as_ref(),
            body.parallel_tool_calls.as_ref(),
        )
        .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
        let temperature = body
            .temperature
            .map(|t| Temperature::parse(t).map_err(|e| invalid("temperature", e)))
            .transpose()?;
        if body
            .top_p
            .is_some_and(|p| !(p.is_finite() && (0.0..=1.0).contains(&p)))
        {
            return Err(invalid("top_p", "must be a number from 0 to 1"));
        }
        let max_output_tokens = body
            .max_output_tokens
            .map(|n| {
                MaxTokens::parse(n, config.chat.max_tokens_cap)
                    .map_err(|e| invalid("max_output_tokens", e))
            })
            .transpose()?;
        let truncation_disabled = match body.truncation.as_deref() {
            None | Some("disabled") => true,
            Some("auto") => false,
            Some(_) => return Err(invalid("truncation", "must be `auto` or `disabled`")),
        };
        let (reasoning, reasoning_echo) = reasoning(body.reasoning.as_ref(), config)?;
        let metadata = check_metadata(body.metadata.as_ref())?;
        let (text, response_format) = text_format(body.text.as_ref())?;
        let settings = Settings {
            instructions,
            previous_response_id: body.previous_response_id.clone(),
            conversation: match &history {
                History::Conversation(id) => Some(id.as_str().to_owned()),
                _ => None,
            },
            tools: responses_tools,
            tool_choice: body.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            parallel_tool_calls: tools.parallel_calls.unwrap_or(true),
            temperature: temperature.map_or(1.0, Temperature::get),
            top_p: body.top_p.unwrap_or(1.0),
            max_output_tokens: max_output_tokens.map(|m| u64::from(m.get())),
            truncation: if truncation_disabled {
                "disabled"
            } else {
                "auto"
            }
            .to_owned(),
            metadata,
            text,
            store: body.store.unwrap_or(true),
            background: body.background.unwrap_or(false),
            user: body.user.clone(),
            reasoning: reasoning_echo,
        };
        Ok(Self {
            model,
            history,
            input,
            prompt,
            tools,
            temperature,
            top_p: body.top_p,
            max_output_tokens,
            response_format,
            truncation_disabled,
            reasoning,
            stream: body.stream.unwrap_or(false),
            settings,
        })
    }
}

/// Whether the model reasons, from `reasoning: {effort, summary}` (or `DEFAULT_REASONING`),
/// and the `reasoning` the Response echoes: `{effort, summary}` when it reasons, else `null`
/// (or the request's own `effort: "none"`).
fn reasoning(
    raw: Option<&Value>,
    config: &crate::config::Config,
) -> Result<(bool, Option<Value>), ApiError> {
    let given = raw.filter(|v| !v.is_null());
    if let Some(value) = given
        && !value.is_object()
    {
        return Err(invalid(
            "reasoning",
            "must be an object such as `{\"effort\": \"medium\"}`",
        ));
    }
    let summary = given
        .and_then(|r| r.get("summary"))
        .cloned()
        .unwrap_or(Value::Null);
    if !(summary.is_null()
        || summary
            .as_str()
            .is_some_and(|s| ["auto", "concise", "detailed"].contains(&s)))
    {
        return Err(invalid(
            "reasoning.summary",
            "must be `auto`, `concise` or `detailed`",
        ));
    }
    let on = crate::domain::parse_reasoning(given, None)
        .map_err(|e| ApiError::InvalidBody(e.to_string()))?
        .unwrap_or(config.chat.default_reasoning);
    let effort = given
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .unwrap_or(if on { "medium" } else { "none" });
    let echo = (on || given.is_some()).then(|| json!({ "effort": effort, "summary": summary }));
    Ok((on, echo))
}

/// A conversation given as `"id"` or `{"id": …}`: a thread id (`conv_…` or any thread's).
fn conversation_id(raw: &Value) -> Result<ThreadId, ApiError> {
    let id = match raw {
        Value::String(id) => id.as_str(),
        Value::Object(object) => object
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("conversation.id", "is required"))?,
        _ => return Err(invalid("conversation", "must be an id or {\"id\": …}")),
    };
    ThreadId::parse(id).map_err(|e| invalid("conversation", format_args!("is invalid: {e}")))
}

/// Input items: a string (one user message), or a list of `message`, `function_call` and
/// `function_call_output` items. Consecutive function calls become one assistant message.
pub fn parse_input(
    raw: Option<&Value>,
    config: &crate::config::Config,
) -> Result<(Vec<ChatMessage>, Vec<PromptMessage>), ApiError> {
    let items: Vec<Value> = match raw {
        None | Some(Value::Null) => return Err(invalid("input", "is required")),
        Some(Value::String(text)) => vec![json!({ "role": "user", "content": text })],
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(invalid("input", "must be a string or a list of items")),
    };
    if items.is_empty() {
        return Err(invalid("input", "must hold at least one item"));
    }
    if items.len() > config.chat.max_messages {
        return Err(invalid(
            "input",
            format_args!("may hold at most {} items", config.chat.max_messages),
        ));
    }
    let mut stored: Vec<ChatMessage> = Vec::new();
    let mut prompt: Vec<PromptMessage> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("input[{i}]{field}");
        let object = item
            .as_object()
            .ok_or_else(|| invalid(at(""), "must be an object"))?;
        let kind =
            object
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or(if object.contains_key("role") {
                    "message"
                } else {
                    ""
                });
        match kind {
            "message" => {
                let (message, entry) = message_item(object, i, config)?;
                stored.push(message);
                prompt.push(entry);
            }
            "function_call" => {
                let call = ToolCall {
                    id: string_field(object, "call_id", &at)?,
                    name: string_field(object, "name", &at)?,
                    arguments: object
                        .get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}")
                        .to_owned(),
                };
                // Calls made together are one assistant message.
                match (stored.last_mut(), prompt.last_mut()) {
                    (Some(last), Some(entry))
                        if last.role == Role::Assistant
                            && last.content.is_empty()
                            && last.tool_calls.is_some() =>
                    {
                        entry.tool_calls.push(PromptToolCall::from(&call));
                        last.tool_calls.get_or_insert_with(Vec::new).push(call);
                    }
                    _ => {
                        let mut entry = PromptMessage::new(Role::Assistant, PromptContent::None);
                        entry.tool_calls.push(PromptToolCall::from(&call));
                        let mut message = ChatMessage::new(Role::Assistant, "");
                        message.tool_calls = Some(vec![call]);
                        stored.push(message);
                        prompt.push(entry);
                    }
                }
            }
            "function_call_output" => {
                let call_id = string_field(object, "call_id", &at)?;
                let output = match object.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    Some(other) if !other.is_null() => other.to_string(),
                    _ => return Err(invalid(at(".output"), "is required")),
                };
                if output.chars().count() > config.chat.max_content_chars {
                    return Err(invalid(
                        at(".output"),
                        format_args!(
                            "is longer than {} characters",
                            config.chat.max_content_chars
                        ),
                    ));
                }
                let name = stored
                    .iter()
                    .rev()
                    .flat_map(|m| m.tool_calls.iter().flatten())
                    .find(|c| c.id == call_id)
                    .map(|c| c.name.clone());
                let mut message = ChatMessage::new(Role::Tool, output.as_str());
                message.tool_call_id = Some(call_id.clone());
                message.tool_name = name;
                let mut entry = PromptMessage::new(Role::Tool, output);
                entry.tool_call_id = Some(call_id);
                stored.push(message);
                prompt.push(entry);
            }
            // Reasoning the client passes back (earlier output): never sent to the model again.
            "reasoning" => {}
            "" => return Err(invalid(at(".type"), "is required")),
            other => {
                return Err(invalid(
                    at(".type"),
                    format_args!(
                        "`{other}` is not supported: use `message`, `function_call` or `function_call_output`"
                    ),
                ));
            }
        }
    }
    if stored.is_empty() {
        // Reasoning items alone: nothing for the model to answer.
        return Err(invalid(
            "input",
            "must hold a message, a function call or its output (reasoning items are ignored)",
        ));
    }
    Ok((stored, prompt))
}

fn string_field(
    object: &Map<String, Value>,
    name: &str,
    at: &dyn Fn(&str) -> String,
) -> Result<String, ApiError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| invalid(at(&format!(".{name}")), "is required"))
}

/// A `message` item: role, and content as a string or `input_text` / `input_image` /
/// `output_text` parts.
fn message_item(
    object: &Map<String, Value>,
    i: usize,
    config: &crate::config::Config,
) -> Result<(ChatMessage, PromptMessage), ApiError> {
    let role = match object.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("system" | "developer") => Role::System,
        Some("assistant") => Role::Assistant,
        _ => {
            return Err(invalid(
                format_args!("input[{i}].role"),
                "must be user, system, developer or assistant",
            ));
        }
    };
    let mut text = String::new();
    let mut parts: Vec<MessagePart> = Vec::new();
    let mut prompt_parts: Vec<PromptPart> = Vec::new();
    match object.get("content") {
        Some(Value::String(content)) => {
            text.push_str(content);
            parts.push(MessagePart::Text {
                text: content.clone(),
            });
            prompt_parts.push(PromptPart::Text {
                text: content.clone(),
            });
        }
        Some(Value::Array(list)) => {
            for (j, part) in list.iter().enumerate() {
                let at = format!("input[{i}].content[{j}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text") => {
                        let t = part
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid(format_args!("{at}.text"), "is required"))?;
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(t);
                        parts.push(MessagePart::Text { text: t.to_owned() });
                        prompt_parts.push(PromptPart::Text { text: t.to_owned() });
                    }
                    Some("input_image") if role == Role::User => {
                        let url = part
                            .get("image_url")
                            .and_then(Value::as_str)
                            .filter(|u| {
                                u.starts_with("https://")
                                    || u.starts_with("http://")
                                    || u.starts_with("data:image/")
                            })
                            .ok_or_else(|| {
                                invalid(
                                    format_args!("{at}.image_url"),
                                    "must be an http(s) URL or an image data URL",
                                )
                            })?;
                        let media_type = url
                            .strip_prefix("data:")
                            .and_then(|rest| rest.split(';').next())
                            .unwrap_or("image/*");
                        parts.push(MessagePart::File {
                            media_type: media_type.to_owned(),
                            url: url.to_owned(),
                            filename: None,
                            size: crate::chat::attachments::data_url_size(url),
                        });
                        prompt_parts.push(PromptPart::ImageUrl {
                            image_url: ImageUrl {
                                url: url.to_owned(),
                            },
                        });
                    }
                    _ => {
                        return Err(invalid(
                            format_args!("{at}.type"),
                            "must be input_text, input_image (user messages) or output_text",
                        ));
                    }
                }
            }
        }
        _ => {
            return Err(invalid(
                format_args!("input[{i}].content"),
                "must be a string or a list of content parts",
            ));
        }
    }
    if text.chars().count() > config.chat.max_content_chars {
        return Err(invalid(
            format_args!("input[{i}].content"),
            format_args!(
                "is longer than {} characters",
                config.chat.max_content_chars
            ),
        ));
    }
    if text.trim().is_empty()
        && !prompt_parts
            .iter()
            .any(|p| matches!(p, PromptPart::ImageUrl { .. }))
    {
        return Err(invalid(
            format_args!("input[{i}].content"),
            "must not be empty",
        ));
    }
    let has_image = prompt_parts
        .iter()
        .any(|p| matches!(p, PromptPart::ImageUrl { .. }));
    let mut message = ChatMessage::new(role, text.as_str());
    if has_image {
        message.parts = Some(parts);
    }
    let content = if has_image {
        PromptContent::Parts(prompt_parts)
    } else {
        PromptContent::Text(text)
    };
    Ok((message, PromptMessage::new(role, content)))
}

/// The Responses API's flat function tools (`{type, name, description, parameters,
/// strict}`) in the chat shape [`Tools::parse`] checks, and as the Response echoes them
/// (every key present).
fn tools_in_chat_shape(raw: Option<&Value>) -> Result<(Option<Value>, Vec<Value>), ApiError> {
    let list = match raw {
        None | Some(Value::Null) => return Ok((None, Vec::new())),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("tools", "must be a list of function tools")),
    };
    let mut chat = Vec::with_capacity(list.len());
    let mut echo = Vec::with_capacity(list.len());
    for tool in list {
        let mut function = tool.as_object().cloned().unwrap_or_default();
        let kind = function.remove("type");
        chat.push(json!({ "type": kind, "function": function }));
        echo.push(json!({
            "type": "function",
            "name": tool.get("name"),
            "description": tool.get("description").cloned().unwrap_or(Value::Null),
            "parameters": tool.get("parameters").cloned().unwrap_or(Value::Null),
            "strict": tool.get("strict").cloned().unwrap_or(Value::Bool(true)),
        }));
    }
    Ok((Some(Value::Array(chat)), echo))
}

/// `{type: "function", name}` (the Responses shape) as the chat API's
/// `{type: "function", function: {name}}`; strings as they are.
fn choice_in_chat_shape(raw: &Value) -> Value {
    match raw.get("name") {
        Some(name) if raw.get("function").is_none() => {
            json!({ "type": raw.get("type"), "function": { "name": name } })
        }
        _ => raw.clone(),
    }
}

/// At most 16 string pairs, keys ≤ 64 characters, values ≤ 512.
pub fn check_metadata(raw: Option<&Value>) -> Result<Value, ApiError> {
    let object = match raw {
        None | Some(Value::Null) => return Ok(json!({})),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(invalid("metadata", "must be an object of strings")),
    };
    if object.len() > MAX_METADATA_PAIRS {
        return Err(invalid(
            "metadata",
            format_args!("may hold at most {MAX_METADATA_PAIRS} pairs"),
        ));
    }
    for (key, value) in object {
        if key.chars().count() > MAX_METADATA_KEY {
            return Err(invalid(
                format_args!("metadata.{key}"),
                format_args!("has a key longer than {MAX_METADATA_KEY} characters"),
            ));
        }
        match value {
            Value::String(v) if v.chars().count() <= MAX_METADATA_VALUE => {}
            _ => {
                return Err(invalid(
                    format_args!("metadata.{key}"),
                    format_args!("must be a string of at most {MAX_METADATA_VALUE} characters"),
                ));
            }
        }
    }
    Ok(Value::Object(object.clone()))
}

/// `text.format`: `text` (the default), `json_object`, or `json_schema` (a valid schema),
/// echoed, and as the chat API's `response_format`.
fn text_format(raw: Option<&Value>) -> Result<(Value, Option<Value>), ApiError> {
    let default = json!({ "format": { "type": "text" } });
    let Some(text) = raw.filter(|v| !v.is_null()) else {
        return Ok((default, None));
    };
    let Some(format) = text.get("format").filter(|v| !v.is_null()) else {
        return Ok((default, None));
    };
    let response_format = match format.get("type").and_then(Value::as_str) {
        Some("text") => None,
        Some("json_object") => Some(json!({ "type": "json_object" })),
        Some("json_schema") => {
            let schema = format
                .get("schema")
                .ok_or_else(|| invalid("text.format.schema", "is required"))?;
            jsonschema::meta::validate(schema).map_err(|e| {
                invalid(
                    "text.format.schema",
                    format_args!("is not a valid JSON Schema: {e}"),
                )
            })?;
            let name = format
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("text.format.name", "is required"))?;
            Some(json!({ "type": "json_schema", "json_schema": {
                "name": name,
                "schema": schema,
                "strict": format.get("strict").cloned().unwrap_or(Value::Bool(false)),
            } }))
        }
        _ => {
            return Err(invalid(
                "text.format.type",
                "must be text, json_object or json_schema",
            ));
        }
    };
    Ok((json!({ "format": format }), response_format))
}
