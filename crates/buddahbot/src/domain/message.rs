//! Conversation values: threads, their titles, and the messages they hold.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::ids::{MessageId, ThreadId, UserId};

/// Longest accepted thread title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Length a title made from a message is cut to (on a word boundary).
pub const TITLE_FROM_MESSAGE_CHARS: usize = 60;

/// Title given to a thread created without one.
pub const DEFAULT_TITLE: &str = "New chat";

/// Why a string was refused as a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TitleError {
    #[error("title is empty")]
    Empty,
    #[error("title is longer than {MAX_TITLE_CHARS} characters")]
    TooLong,
    #[error("title contains a control character")]
    ControlCharacter,
}

/// A thread's title: trimmed, non-empty, at most [`MAX_TITLE_CHARS`] characters, one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    /// Trims surrounding whitespace and checks what is left.
    ///
    /// # Errors
    /// [`TitleError::Empty`] when nothing but whitespace was given, [`TitleError::TooLong`]
    /// above [`MAX_TITLE_CHARS`] characters, [`TitleError::ControlCharacter`] for line breaks,
    /// tabs and other control characters.
    pub fn parse(raw: &str) -> Result<Self, TitleError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TitleError::Empty);
        }
        if trimmed.chars().count() > MAX_TITLE_CHARS {
            return Err(TitleError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(TitleError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// A title made from the first user message: whitespace collapsed, cut on a word
    /// boundary near [`TITLE_FROM_MESSAGE_CHARS`] characters (with an ellipsis when cut).
    pub fn from_message(text: &str) -> Self {
        let mut title = String::new();
        // Characters in `title` so far.
        let mut chars = 0;
        let mut cut = false;
        for word in text.split_whitespace() {
            let word = word.chars().filter(|c| !c.is_control());
            let length = word.clone().count();
            let needed = chars + usize::from(!title.is_empty()) + length;
            if needed > TITLE_FROM_MESSAGE_CHARS {
                cut = true;
                if title.is_empty() {
                    // One very long word: cut inside it.
                    title.extend(word.take(TITLE_FROM_MESSAGE_CHARS));
                }
                break;
            }
            if !title.is_empty() {
                title.push(' ');
            }
            title.extend(word);
            chars = needed;
        }
        if title.is_empty() {
            return Self::untitled();
        }
        if cut {
            title.push('…');
        }
        Self(title)
    }

    /// Title of a thread nobody named.
    pub fn untitled() -> Self {
        Self(DEFAULT_TITLE.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result, answering one of the assistant's tool calls.
    Tool,
}

/// One function call the model asked for, as stored with its assistant message: the whole
/// call, its arguments as the JSON text the model wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// Token counts the upstream reported for one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// How many of the completion tokens were reasoning, when the upstream said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u32>,
}

/// One stored message, exactly as `GET /api/threads/:id` returns it.
///
/// The assistant-only fields are absent (not `null`) on other roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: MessageId,
    pub role: Role,
    /// The text; a reply's answer alone, without its reasoning.
    pub content: String,
    /// A reply's reasoning (the model's thinking before its answer), kept apart from
    /// `content`: never sent to the model again, never indexed for search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(with = "iso_millis")]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The message as AI SDK parts, kept for messages that came in (or were answered) in the
    /// UI message format, so images survive. `content` stays the text either way, for clients
    /// that only read text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<MessagePart>>,
    /// Set on a reply that did not complete: stopped on request, or broken off by an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReplyStatus>,
    /// Set on a reply that a regenerated one replaced (kept, not destroyed): the new reply's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<MessageId>,
    /// An assistant message's tool calls (its `content` may then be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// A tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A tool message: the called tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// A tool message from the AI SDK: the output as the client gave it (any JSON); `content`
    /// holds it as text for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_output: Option<serde_json::Value>,
    /// A tool message: the tool failed, and `content` is its error text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tool_error: bool,
    /// A reply: how many of the conversation's oldest messages were left out of its prompt
    /// (or replaced by the thread's summary) to fit the model's context window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_dropped_messages: Option<u32>,
    /// A reply answered from the response cache (the model was not called).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// The Responses API response this message belongs to (its input, or its output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// A reply made through the Responses API: the request's settings, as the Response
    /// object echoes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
    /// A user's rating of a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    /// Deleted through the Responses or Conversations API: kept in place (so the thread's
    /// turn index stays right) but shown by no view.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Where the message stands in its thread's branches. Views set it; it is never stored
    /// (the thread's tree is: `store/scripts/tree.lua`).
    #[serde(flatten, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub place: Option<BranchPlace>,
}

/// A message's place among its thread's branches, as views show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchPlace {
    /// The message it follows; `None` for a thread's first message.
    pub parent_id: Option<MessageId>,
    pub branch: Branch,
    /// Every version of the message (its parent's children, oldest first, itself included),
    /// when there is more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sibling_ids: Option<Vec<MessageId>>,
}

/// Which of its versions a message is: `index` (from 0) of `count`, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    pub index: u32,
    pub count: u32,
}

impl BranchPlace {
    /// The place of a message among `siblings` (ids, oldest first; empty when it has no
    /// other version).
    pub fn among(id: &MessageId, parent_id: Option<MessageId>, siblings: Vec<MessageId>) -> Self {
        let count = u32::try_from(siblings.len().max(1)).unwrap_or(u32::MAX);
        let index = siblings
            .iter()
            .position(|s| s == id)
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(0);
        Self {
            parent_id,
            branch: Branch { index, count },
            sibling_ids: (siblings.len() > 1).then_some(siblings),
        }
    }
}

/// Where a chat turn's new messages go among the thread's branches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Placement {
    /// After the last message of the active branch: every turn of a linear conversation.
    #[default]
    AfterLeaf,
    /// Under this message, beside any replies it has (a request's `parentId`).
    Under(MessageId),
    /// Beside this message, as a new version of it (an AI SDK edit: `submit-message` with
    /// the `messageId` of a stored message).
    Beside(MessageId),
}

/// Longest feedback comment, in characters.
pub const MAX_FEEDBACK_COMMENT: usize = 2_000;

/// A user's rating of a reply, with an optional comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    pub rating: Rating,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(with = "iso_millis")]
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

/// How an incomplete reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyStatus {
    /// `POST /api/chat/:threadId/stop` ended it; what arrived until then is the reply.
    Stopped,
    /// The model's reply broke off; what arrived is kept.
    Error,
}

/// The wire format a turn is answered (and its stream logged) in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFormat {
    /// OpenAI `chat.completion.chunk` events (or a `chat.completion`).
    OpenAi,
    /// The AI SDK's UI message stream; the thread is created on first use.
    Ui,
    /// The OpenAI Responses API: a Response object, or its typed event stream.
    Responses,
}

impl ReplyFormat {
    /// The name stored with a generation's stream.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Ui => "ui",
            Self::Responses => "responses",
        }
    }

    /// The format a stored name stands for (OpenAI for anything else).
    pub fn from_stored(name: &str) -> Self {
        match name {
            "ui" => Self::Ui,
            "responses" => Self::Responses,
            _ => Self::OpenAi,
        }
    }
}

/// One stored part of a message, in the AI SDK's `UIMessage` part shape. Only the part types
/// the API understands are kept; the rest are dropped at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum MessagePart {
    Text {
        text: String,
    },
    /// A reply's reasoning, before its text (the AI SDK's reasoning part).
    Reasoning {
        text: String,
    },
    File {
        media_type: String,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
        /// Bytes, as the client said or as a data URL holds them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
}

impl MessagePart {
    /// An image file (the model sees it).
    pub fn is_image(&self) -> bool {
        matches!(self, Self::File { media_type, .. } if media_type.starts_with("image/"))
    }
}

impl ChatMessage {
    /// A message of `role` with `content`, a fresh id and the current time.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            id: MessageId::new(),
            role,
            content: content.into(),
            reasoning: None,
            created_at: now(),
            model: None,
            finish_reason: None,
            usage: None,
            ttft_ms: None,
            duration_ms: None,
            parts: None,
            status: None,
            superseded_by: None,
            tool_calls: None,
            tool_call_id: None,
            tool_name: None,
            tool_output: None,
            tool_error: false,
            context_dropped_messages: None,
            cached: false,
            response_id: None,
            response: None,
            feedback: None,
            deleted: false,
            place: None,
        }
    }

    /// The message's parts: the stored ones, or its reasoning and text as parts.
    pub fn parts_or_text(&self) -> Vec<MessagePart> {
        self.parts.clone().unwrap_or_else(|| {
            let reasoning = self
                .reasoning
                .iter()
                .map(|text| MessagePart::Reasoning { text: text.clone() });
            reasoning
                .chain([MessagePart::Text {
                    text: self.content.clone(),
                }])
                .collect()
        })
    }
}

/// A conversation's metadata, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: ThreadId,
    pub user_id: UserId,
    pub title: Title,
    #[serde(serialize_with = "iso_millis::serialize")]
    pub created_at: Timestamp,
    #[serde(serialize_with = "iso_millis::serialize")]
    pub updated_at: Timestamp,
    pub message_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Whether a reply is being generated right now (a client may resume it), else how the
    /// last one ended. Serialized as `status` plus `activeMessageId` while streaming.
    #[serde(flatten)]
    pub status: ThreadStatus,
    /// A model-written summary of the thread's oldest messages, sent in their place once the
    /// conversation outgrew the model's context window (`CONTEXT_SUMMARY=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_summary: Option<String>,
    /// The last message the summary covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_summary_through: Option<MessageId>,
    /// Hidden from the default listing (archiving does not change `updatedAt`).
    pub archived: bool,
    pub pinned: bool,
    /// Up to 20 labels, case-insensitively unique.
    pub tags: Vec<String>,
    /// Up to 16 string pairs of the app's own.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The frontend's own id for the thread, unique per user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The last message of the branch the thread shows (`null` before its first message).
    pub active_leaf_id: Option<MessageId>,
    /// The thread's share link, when it has one (`null` when not shared).
    pub share: Option<ShareLink>,
    /// The thread this one was forked from, and the message the fork copied up to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkedFrom>,
}

/// A thread's share link, as the thread shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareLink {
    pub token: String,
    /// ISO 8601; `None` when the link does not expire.
    pub expires_at: Option<String>,
}

/// Where a forked thread came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkedFrom {
    pub thread_id: String,
    pub message_id: Option<String>,
}

/// A thread's generation state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ThreadStatus {
    /// No generation is running; the last one (if any) ended normally.
    Idle,
    /// A reply is being generated under this message id.
    Streaming {
        #[serde(rename = "activeMessageId")]
        active_message_id: MessageId,
    },
    /// No generation is running; the last one failed.
    Error,
}

/// Timestamps on the wire: ISO 8601 UTC with exactly three fractional digits
/// (`2026-11-22T05:19:19.990Z`), so they have one width and sort as strings.
pub mod iso_millis {
    use jiff::{Timestamp, fmt::temporal::DateTimePrinter};
    use serde::{Deserialize, Deserializer, Serializer};

    const PRINTER: DateTimePrinter = DateTimePrinter::new().precision(Some(3));

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&PRINTER.timestamp_to_string(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// The current time at millisecond precision: the precision the store keeps, so a value
/// read back equals the value written.
pub fn now() -> Timestamp {
    let ms = Timestamp::now().as_millisecond();
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_counts_its_versions_and_lists_them_only_when_there_are_several() {
        let id = |raw: &str| MessageId::parse(raw).unwrap();
        let alone = BranchPlace::among(&id("a"), None, Vec::new());
        assert_eq!(alone.branch, Branch { index: 0, count: 1 });
        assert_eq!(alone.sibling_ids, None);
        let second = BranchPlace::among(&id("b"), Some(id("p")), vec![id("a"), id("b"), id("c")]);
        assert_eq!(second.branch, Branch { index: 1, count: 3 });
        assert_eq!(second.sibling_ids.as_ref().map(Vec::len), Some(3));
        let json = serde_json::to_value(ChatMessage {
            place: Some(second),
            ..ChatMessage::new(Role::User, "hi")
        })
        .unwrap();
        assert_eq!(json["parentId"], "p");
        assert_eq!(
            json["branch"],
            serde_json::json!({ "index": 1, "count": 3 })
        );
        // Never read back from storage: the tree holds it.
        let stored: ChatMessage = serde_json::from_value(json).unwrap();
        assert_eq!(stored.place, None);
        let root = serde_json::to_value(ChatMessage {
            place: Some(alone),
            ..ChatMessage::new(Role::User, "hi")
        })
        .unwrap();
        assert_eq!(
            root["parentId"],
            serde_json::Value::Null,
            "a first message says so"
        );
        assert!(root.get("siblingIds").is_none());
    }

    #[test]
    fn titles_are_trimmed() {
        assert_eq!(
            Title::parse("  Trip to Rome \t").unwrap().as_str(),
            "Trip to Rome"
        );
        let longest = "é".repeat(MAX_TITLE_CHARS);
        assert_eq!(Title::parse(&longest).unwrap().as_str(), longest);
    }

    #[test]
    fn titles_from_messages_are_cut_on_a_word_boundary() {
        assert_eq!(
            Title::from_message("  What is\n2+2? ").as_str(),
            "What is 2+2?"
        );
        let long = "Plan a four day trip to Rome with museums, food markets and a day at the sea";
        let title = Title::from_message(long);
        assert_eq!(
            title.as_str(),
            "Plan a four day trip to Rome with museums, food markets and…"
        );
        assert!(title.as_str().chars().count() <= TITLE_FROM_MESSAGE_CHARS + 1);
        assert_eq!(
            Title::from_message(&"x".repeat(100))
                .as_str()
                .chars()
                .count(),
            61
        );
        assert_eq!(Title::from_message(" \n ").as_str(), DEFAULT_TITLE);
        // Characters are counted, not bytes; control characters are dropped.
        let wide = format!("{} {} more", "é".repeat(30), "\u{7}ü".repeat(29));
        assert_eq!(
            Title::from_message(&wide).as_str(),
            format!("{} {}…", "é".repeat(30), "ü".repeat(29))
        );
    }

    #[test]
    fn bad_titles_are_refused() {
        let too_long = "a".repeat(MAX_TITLE_CHARS + 1);
        let cases = [
            ("", TitleError::Empty),
            ("   \n ", TitleError::Empty),
            (too_long.as_str(), TitleError::TooLong),
            ("two\nlines", TitleError::ControlCharacter),
            ("bell\u{7}", TitleError::ControlCharacter),
        ];
        for (raw, want) in cases {
            assert_eq!(Title::parse(raw), Err(want), "case {raw:?}");
        }
    }

    #[test]
    fn messages_serialize_in_camel_case_without_absent_fields() {
        let mut msg = ChatMessage::new(Role::Assistant, "hi");
        msg.created_at = Timestamp::from_millisecond(1_700_000_000_123).unwrap();
        msg.usage = Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 1,
            reasoning_tokens: None,
        });
        msg.ttft_ms = Some(12);
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["role"], "assistant");
        assert_eq!(json["createdAt"], "2023-11-14T22:13:20.123Z");
        msg.created_at = Timestamp::from_millisecond(1_700_000_000_100).unwrap();
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["createdAt"], "2023-11-14T22:13:20.100Z", "fixed width");
        assert_eq!(json["usage"]["promptTokens"], 3);
        assert_eq!(json["ttftMs"], 12);
        assert!(json.get("model").is_none());
        assert!(json.get("finishReason").is_none());
        assert!(json.get("parts").is_none());
        let back: ChatMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn parts_serialize_in_the_ai_sdk_shape() {
        let mut msg = ChatMessage::new(Role::User, "look");
        msg.parts = Some(vec![
            MessagePart::Text {
                text: "look".into(),
            },
            MessagePart::File {
                media_type: "image/png".into(),
                url: "https://example.com/a.png".into(),
                filename: None,
                size: None,
            },
        ]);
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(
            json["parts"],
            serde_json::json!([
                { "type": "text", "text": "look" },
                { "type": "file", "mediaType": "image/png", "url": "https://example.com/a.png" },
            ])
        );
        let back: ChatMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, msg);
        let plain = ChatMessage::new(Role::User, "hi");
        assert_eq!(
            plain.parts_or_text(),
            [MessagePart::Text { text: "hi".into() }]
        );
    }
}
