//! OpenAI chat-completions wire types: the request the mock reads and the JSON bodies it writes.
//!
//! Streamed `chat.completion.chunk` events are not here: [`crate::stream`] writes them as bytes
//! straight from per-request templates, because serializing a struct per token would dominate
//! the mock's cost in a benchmark.

use std::borrow::Cow;

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{MapAccess, Visitor},
};

/// Shown in `system_fingerprint` so a captured reply is recognizably the mock's.
pub(crate) const SYSTEM_FINGERPRINT: &str = "fp_mock_upstream";

/// The part of a chat completion request the mock acts on; other fields are accepted and ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub messages: Vec<Message<'a>>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<u64>,
    /// The newer OpenAI name for `max_tokens`; either one caps the reply.
    pub max_completion_tokens: Option<u64>,
    /// The functions the model may call; read only to build the calls of `tool_calls`.
    #[serde(borrow, default)]
    pub tools: Option<Vec<Tool<'a>>>,
}

impl ChatRequest<'_> {
    /// The reply cap the request asks for, if any.
    pub(crate) fn max_tokens(&self) -> Option<u64> {
        match (self.max_tokens, self.max_completion_tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the request wants the final usage chunk of a stream.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            .unwrap_or(false)
    }

    /// Characters of every message's text and of its tool calls' arguments, the input of the
    /// prompt-token estimate.
    pub(crate) fn prompt_chars(&self) -> usize {
        self.messages
            .iter()
            .flat_map(|message| message.texts().chain(message.tool_call_arguments()))
            .map(|text| text.chars().count())
            .sum()
    }

    /// Whether the last message has role `user`: only then does the mock make tool calls, so
    /// the follow-up request carrying the tool results gets a text answer.
    pub(crate) fn ends_with_user(&self) -> bool {
        self.messages
            .last()
            .is_some_and(|message| message.role == "user")
    }

    /// The function called `name` among the request's `tools`.
    pub(crate) fn function(&self, name: &str) -> Option<&FunctionDef<'_>> {
        self.functions().find(|function| function.name == name)
    }

    /// Every function the request's `tools` declares, in order.
    pub(crate) fn functions(&self) -> impl Iterator<Item = &FunctionDef<'_>> {
        self.tools
            .iter()
            .flatten()
            .filter_map(|tool| tool.function.as_ref())
    }

    /// The last message with role `user`: where a message directive is read from.
    pub(crate) fn last_user_message(&self) -> Option<&Message<'_>> {
        self.messages
            .iter()
            .rev()
            .find(|message| message.role == "user")
    }
}

/// `stream_options` of a request.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// One chat message; `content` may be absent or null (an assistant turn with tool calls).
///
/// Other fields (`name`, a tool message's `tool_call_id`, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow, default)]
    pub content: Option<Content<'a>>,
    /// The calls of an assistant turn; only their arguments are read (they count as prompt).
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<ToolCallIn<'a>>>,
}

impl Message<'_> {
    /// The message's text: the string content, or the `text` of each text part.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> {
        let (whole, parts): (Option<&str>, &[ContentPart<'_>]) = match &self.content {
            None => (None, &[]),
            Some(Content::Text(text)) => (Some(text), &[]),
            Some(Content::Parts(parts)) => (None, parts),
        };
        whole
            .into_iter()
            .chain(parts.iter().filter_map(ContentPart::text))
    }

    /// The `function.arguments` strings of the message's tool calls.
    pub(crate) fn tool_call_arguments(&self) -> impl Iterator<Item = &str> {
        self.tool_calls
            .iter()
            .flatten()
            .filter_map(|call| call.function.as_ref()?.arguments.as_deref())
    }
}

/// One entry of an assistant message's `tool_calls` (`id`, `type` and `name` are ignored).
#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallIn<'a> {
    #[serde(borrow, default)]
    pub function: Option<FunctionCallIn<'a>>,
}

/// The `function` of a [`ToolCallIn`].
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionCallIn<'a> {
    #[serde(borrow, default)]
    pub arguments: Option<Cow<'a, str>>,
}

/// One entry of a request's `tools`; entries without a `function` (other tool types) are
/// tolerated and never called.
#[derive(Debug, Deserialize)]
pub(crate) struct Tool<'a> {
    #[serde(borrow, default)]
    pub function: Option<FunctionDef<'a>>,
}

/// A function a request offers: its name and, of its JSON schema, the top-level properties.
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDef<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default)]
    pub parameters: Option<Parameters>,
}

impl FunctionDef<'_> {
    /// The top-level properties of the function's parameters, in the order of the request.
    pub(crate) fn properties(&self) -> &[Property] {
        self.parameters
            .as_ref()
            .and_then(|parameters| parameters.properties.as_ref())
            .map_or(&[], |properties| properties.0.as_slice())
    }
}

/// The `parameters` schema of a [`FunctionDef`]; other keywords are ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct Parameters {
    #[serde(default)]
    pub properties: Option<Properties>,
}

/// The `properties` object of a schema, as a list in the order the request wrote them.
///
/// # Design
/// Read with a map visitor rather than into a `serde_json::Map`, which sorts its keys unless
/// serde_json's `preserve_order` feature is on (a feature another crate in the build can switch
/// on for everyone). A list keeps the request's order whatever the features.
#[derive(Debug, Default)]
pub(crate) struct Properties(pub Vec<Property>);

/// One property of a function's parameters: its name and the JSON type its schema names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Property {
    pub name: String,
    pub kind: PropertyKind,
}

/// The `type` of a property schema, as far as the mock's arguments care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PropertyKind {
    String,
    /// `integer` or `number`.
    Number,
    Boolean,
    /// Any other or no `type` (`object`, `array`, `null`, a list of types, …).
    Other,
}

impl PropertyKind {
    fn of(schema: &serde_json::Value) -> Self {
        match schema.get("type").and_then(serde_json::Value::as_str) {
            Some("string") => Self::String,
            Some("integer" | "number") => Self::Number,
            Some("boolean") => Self::Boolean,
            _ => Self::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;

        impl<'de> Visitor<'de> for InOrder {
            type Value = Properties;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an object of property schemas")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
                let mut properties = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, schema)) = map.next_entry::<String, serde_json::Value>()? {
                    properties.push(Property {
                        name,
                        kind: PropertyKind::of(&schema),
                    });
                }
                Ok(Properties(properties))
            }
        }

        deserializer.deserialize_map(InOrder)
    }
}

/// Message content: a plain string or an array of typed parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<ContentPart<'a>>),
}

/// One content part; only `text` parts carry text, the rest (`image_url`, …) are tolerated.
#[derive(Debug, Deserialize)]
pub(crate) struct ContentPart<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
}

impl ContentPart<'_> {
    fn text(&self) -> Option<&str> {
        if self.kind == "text" {
            self.text.as_deref()
        } else {
            None
        }
    }
}

/// Token accounting of one reply, as OpenAI reports it.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    /// The reasoning tokens of a `think` reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct CompletionTokensDetails {
    pub reasoning_tokens: usize,
}

impl Usage {
    pub(crate) fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            completion_tokens_details: None,
        }
    }
}

/// A non-streamed reply (`object: "chat.completion"`).
#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletion<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub system_fingerprint: &'static str,
    pub choices: [Choice<'a>; 1],
    pub usage: Usage,
}

/// The single choice of a non-streamed reply.
#[derive(Debug, Serialize)]
pub(crate) struct Choice<'a> {
    pub index: u32,
    pub message: AssistantMessage<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

/// The assistant message of a non-streamed reply.
#[derive(Debug, Serialize)]
pub(crate) struct AssistantMessage<'a> {
    pub role: &'static str,
    /// `None` (JSON `null`) for a reply of tool calls only.
    pub content: Option<&'a str>,
    /// A `think` reply's reasoning with `think_as=reasoning_content`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    /// A `think` reply's reasoning with `think_as=reasoning`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<&'a str>,
    pub refusal: Option<()>,
    /// Left out of a text reply, as OpenAI does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut<'a>>,
}

/// One entry of a non-streamed reply's `tool_calls`.
#[derive(Debug, Serialize)]
pub(crate) struct ToolCallOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCallOut<'a>,
}

/// The `function` of a [`ToolCallOut`].
#[derive(Debug, Serialize)]
pub(crate) struct FunctionCallOut<'a> {
    pub name: &'a str,
    /// A JSON object as a string.
    pub arguments: &'a str,
}

/// `{"error": {...}}`, the one error shape of every non-2xx answer.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize)]
pub(crate) struct ErrorDetail<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: &'a str,
}

/// The answer of `GET /v1/models`.
#[derive(Debug, Serialize)]
pub(crate) struct ModelList {
    pub object: &'static str,
    pub data: Vec<Model>,
}

/// One entry of [`ModelList`].
#[derive(Debug, Serialize)]
pub(crate) struct Model {
    pub id: &'static str,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

/// Appends `text` to `out` as a JSON string literal, quotes included.
///
/// Infallible, unlike `serde_json::to_writer`, so building a chunk template has no error path.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                use std::fmt::Write as _;
                // Writing to a `String` cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_json_string_matches_serde_json() {
        for text in [
            "Hermes-4-405B",
            "a\"b\\c",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}",
            "é✓",
        ] {
            let mut ours = String::new();
            push_json_string(&mut ours, text);
            let parsed: String = serde_json::from_str(&ours).unwrap();
            assert_eq!(parsed, text, "case {text:?}");
        }
    }

    #[test]
    fn request_text_comes_from_strings_and_text_parts() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"abcd"},
            {"role":"assistant","content":null},
            {"role":"user","content":[{"type":"text","text":"ef"},
                {"type":"image_url","image_url":{"url":"data:x"}},{"type":"text","text":"g\"h"}]}
        ],"temperature":0.2,"unknown":{"x":1}}"#;

        let request: ChatRequest<'_> = serde_json::from_slice(body).unwrap();

        assert_eq!(request.prompt_chars(), 4 + 2 + 3);
        let last: Vec<&str> = request.last_user_message().unwrap().texts().collect();
        assert_eq!(last, ["ef", "g\"h"]);
        assert!(!request.include_usage());
    }

    #[test]
    fn a_tool_loop_request_parses_and_its_calls_and_results_count_as_prompt() {
        let body = br#"{"model":"m","messages":[
            {"role":"user","content":"abcd"},
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
                {"id":"call_2","type":"function","function":{"name":"g","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"sunny"},
            {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"ok"}]}
        ],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object",
            "properties":{"z":{"type":"string"},"a":{"type":"integer"},"m":{"type":["string","null"]},
            "b":{"type":"boolean"},"n":{"type":"number"},"o":true}}}},
            {"type":"function","function":{"name":"g"}},{"type":"custom","custom":{"name":"h"}}]}"#;

        let request: ChatRequest<'_> = serde_json::from_slice(body).unwrap();

        // "abcd", `{"a":1}`, "{}", "sunny", "ok".
        assert_eq!(request.prompt_chars(), 4 + 7 + 2 + 5 + 2);
        assert!(!request.ends_with_user());
        assert_eq!(request.last_user_message().unwrap().role, "user");
        let kinds: Vec<(&str, PropertyKind)> = request
            .function("f")
            .unwrap()
            .properties()
            .iter()
            .map(|property| (property.name.as_str(), property.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("z", PropertyKind::String),
                ("a", PropertyKind::Number),
                ("m", PropertyKind::Other),
                ("b", PropertyKind::Boolean),
                ("n", PropertyKind::Number),
                ("o", PropertyKind::Other),
            ]
        );
        assert!(request.function("g").unwrap().properties().is_empty());
        assert!(request.function("h").is_none());
        let names: Vec<&str> = request.functions().map(|f| f.name.as_ref()).collect();
        assert_eq!(names, ["f", "g"]);
    }

    #[test]
    fn properties_that_are_not_an_object_are_rejected() {
        let body = br#"{"model":"m","messages":[],"tools":[{"type":"function",
            "function":{"name":"f","parameters":{"properties":[1]}}}]}"#;
        assert!(serde_json::from_slice::<ChatRequest<'_>>(body).is_err());
    }

    #[test]
    fn the_smaller_of_both_token_caps_wins() {
        let body = br#"{"model":"m","messages":[],"max_tokens":9,"max_completion_tokens":4}"#;
        let request: ChatRequest<'_> = serde_json::from_slice(body).unwrap();
        assert_eq!(request.max_tokens(), Some(4));
    }
}
