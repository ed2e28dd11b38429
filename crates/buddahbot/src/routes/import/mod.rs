//! `POST /api/import`: threads from a file, its shape recognised by itself — our own NDJSON
//! export (`GET /api/export`), a ChatGPT data export's `conversations.json`, or an OpenAI
//! conversation items list. Ids come from the source's, so importing the same file again
//! creates nothing; one bad conversation is reported and the rest go on.
//!
//! The body is read as it arrives and split into conversations ([`split`]); each is parsed
//! and written before the next, so memory holds one conversation, never the file. A file cut
//! off part-way keeps the conversations before the cut (they are reported imported, and the
//! cut in `failed`).

mod split;

use std::collections::HashMap;

use axum::{body::Body, response::IntoResponse, response::Response};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    app::App,
    domain::{ChatMessage, MessageId, Role, ThreadId, Title, ToolCall, UserId, now},
    error::ApiError,
    http::AppJson,
    store::ImportedThread,
};

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    /// Threads written.
    imported: usize,
    /// Threads already there (imported before, or ids in use): left as they are.
    skipped: usize,
    /// Conversations that could not be read, by their position in the file (from 0).
    failed: Vec<Failure>,
}

#[derive(Debug, Serialize)]
struct Failure {
    index: usize,
    error: String,
}

/// `POST /api/import`.
///
/// # Errors
/// 413 above `MAX_IMPORT_BYTES` (the conversations before stay imported: importing the file
/// again is safe), 400 for a body that is none of the shapes; a conversation that cannot be
/// read is reported in `failed`.
pub async fn import(app: &App, user: &UserId, body: Body) -> Result<Response, ApiError> {
    use futures_util::StreamExt;
    let limit = app.config().http.max_import_bytes;
    let mut stream = body.into_data_stream();
    let mut reader = Reader::default();
    let mut report = ImportReport::default();
    let mut read = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("the body broke off: {e}")))?;
        read += chunk.len();
        if read > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        for conversation in reader.push(&chunk)? {
            report.add(app, user, conversation).await?;
        }
    }
    for conversation in reader.finish()? {
        report.add(app, user, conversation).await?;
    }
    Ok(AppJson(report).into_response())
}

impl ImportReport {
    async fn add(
        &mut self,
        app: &App,
        user: &UserId,
        conversation: Conversation,
    ) -> Result<(), ApiError> {
        match conversation {
            Conversation::Read(thread) => {
                if app.store().import_thread(user, &thread).await? {
                    self.imported += 1;
                } else {
                    self.skipped += 1;
                }
            }
            Conversation::Failed(index, error) => self.failed.push(Failure { index, error }),
        }
        Ok(())
    }
}

/// One conversation of the file, read or not.
#[derive(Debug)]
enum Conversation {
    Read(Box<ImportedThread>),
    Failed(usize, String),
}

/// What the file holds, told by its first element.
#[derive(Debug)]
enum Kind {
    /// Our own export: a thread per line.
    Export,
    /// A ChatGPT `conversations.json` (or one of its conversations).
    ChatGpt,
    /// An OpenAI conversation items list: one thread, written at the end.
    Items(Vec<Value>),
}

/// Turns a file's bytes, as they arrive, into its conversations.
#[derive(Debug, Default)]
struct Reader {
    splitter: split::Splitter,
    kind: Option<Kind>,
    /// The file's structure broke after some conversations: the rest is ignored.
    broken: bool,
}

fn unknown_shape() -> ApiError {
    ApiError::InvalidBody(
        "the body must be an export of this API (NDJSON), a ChatGPT `conversations.json` or an OpenAI conversation items list".to_owned(),
    )
}

impl Reader {
    /// The conversations `bytes` complete.
    ///
    /// # Errors
    /// 400 when the file is none of the shapes (told by its first element or byte).
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<Conversation>, ApiError> {
        if self.broken {
            return Ok(Vec::new());
        }
        let mut elements = Vec::new();
        let split = self.splitter.push(bytes, &mut elements);
        let first = self.splitter.count() - elements.len();
        let mut out = Vec::new();
        for (i, element) in elements.into_iter().enumerate() {
            out.extend(self.element(first + i, &element)?);
        }
        if let Err(err) = split {
            if self.kind.is_none() {
                return Err(ApiError::InvalidBody(err.to_string()));
            }
            self.broken = true;
            out.push(Conversation::Failed(self.splitter.count(), err.to_string()));
        }
        Ok(out)
    }

    /// The end of the file: what is left to report (an items list is written now).
    ///
    /// # Errors
    /// 400 for an empty body, or one cut off before its first conversation ended.
    fn finish(mut self) -> Result<Vec<Conversation>, ApiError> {
        if self.splitter.shape() == split::Shape::Unknown {
            return Err(unknown_shape());
        }
        let mut out = Vec::new();
        if !self.broken
            && let Err(err) = self.splitter.finish()
        {
            if self.kind.is_none() {
                return Err(ApiError::InvalidJson(err.to_string()));
            }
            out.push(Conversation::Failed(self.splitter.count(), err.to_string()));
        }
        if let Some(Kind::Items(items)) = self.kind.take() {
            out.push(match from_items(&items) {
                Ok(thread) => Conversation::Read(Box::new(thread)),
                Err(error) => Conversation::Failed(0, error),
            });
        }
        Ok(out)
    }

    /// Element `index` of the file, read by the file's kind (decided by the first).
    fn element(&mut self, index: usize, bytes: &[u8]) -> Result<Option<Conversation>, ApiError> {
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(value) => value,
            Err(e) if self.kind.is_none() || matches!(self.kind, Some(Kind::Items(_))) => {
                return Err(ApiError::InvalidJson(e.to_string()));
            }
            Err(e) => return Ok(Some(Conversation::Failed(index, e.to_string()))),
        };
        let kind = match self.kind.take() {
            Some(kind) => kind,
            None => self.kind_of(&value)?,
        };
        let read = match &kind {
            Kind::Export => Some(from_export(&value)),
            Kind::ChatGpt => Some(from_chatgpt(&value)),
            Kind::Items(_) => None,
        };
        self.kind = Some(match kind {
            Kind::Items(mut items) => {
                match value.get("data").and_then(Value::as_array) {
                    // `{object: "list", data: [...]}`: the whole list at once.
                    Some(data) if items.is_empty() && value.get("type").is_none() => {
                        items.extend(data.iter().cloned());
                    }
                    _ => items.push(value),
                }
                Kind::Items(items)
            }
            other => other,
        });
        Ok(read.map(|read| match read {
            Ok(thread) => Conversation::Read(Box::new(thread)),
            Err(error) => Conversation::Failed(index, error),
        }))
    }

    fn kind_of(&self, first: &Value) -> Result<Kind, ApiError> {
        let array = self.splitter.shape() == split::Shape::Array;
        if first.get("mapping").is_some() {
            Ok(Kind::ChatGpt)
        } else if !array && first.get("thread").is_some() {
            Ok(Kind::Export)
        } else if (array && first.get("type").is_some())
            || (!array && first.get("data").is_some_and(Value::is_array))
        {
            Ok(Kind::Items(Vec::new()))
        } else {
            Err(unknown_shape())
        }
    }
}

fn text<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}

/// An id of ours from the source's: as it is when it fits, else one made from it.
fn message_id(raw: Option<&str>, fallback: &str) -> MessageId {
    raw.and_then(|raw| MessageId::parse(raw).ok())
        .unwrap_or_else(|| {
            MessageId::parse(&digest("m", raw.unwrap_or(fallback))).unwrap_or_default()
        })
}

/// `<prefix>` and 24 hex digits of a SHA-256 of `source`.
fn digest(prefix: &str, source: &str) -> String {
    let hash = Sha256::digest(source.as_bytes());
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// A thread id from the source's: `<prefix>-<id>` when that fits, else one made from it.
fn thread_id(prefix: &str, source: &str) -> ThreadId {
    ThreadId::parse(&format!("{prefix}-{source}")).unwrap_or_else(|_| {
        ThreadId::parse(&digest(&format!("{prefix}-"), source)).unwrap_or_default()
    })
}

/// Seconds since the epoch (ChatGPT's times) as a timestamp.
fn from_seconds(value: Option<&Value>) -> Option<Timestamp> {
    let seconds = value?.as_f64()?;
    #[expect(clippy::cast_possible_truncation, reason = "ms since 1970 fit an i64")]
    Timestamp::from_millisecond((seconds * 1000.0).round() as i64).ok()
}

/// Places parents by id: each message's parent's position, when it came before.
fn parent_positions(
    messages: Vec<(ChatMessage, Option<&str>)>,
) -> Result<Vec<(ChatMessage, Option<usize>)>, String> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for (i, (message, parent)) in messages.into_iter().enumerate() {
        let parent = match parent {
            None => None,
            Some(parent) => Some(*at.get(parent).ok_or_else(|| {
                format!(
                    "message `{}` follows `{parent}`, which does not come before it",
                    message.id
                )
            })?),
        };
        if at.insert(message.id.to_string(), i).is_some() {
            return Err(format!("message id `{}` is used twice", message.id));
        }
        out.push((message, parent));
    }
    Ok(out)
}

/// One line of our own export: `{thread, messages}`, messages with their `parentId` (without
/// any, the messages follow each other).
fn from_export(line: &Value) -> Result<ImportedThread, String> {
    let thread = line.get("thread").ok_or("the line has no `thread`")?;
    let id = ThreadId::parse(text(thread, "id").ok_or("`thread.id` is missing")?)
        .map_err(|e| format!("`thread.id`: {e}"))?;
    let time = |field: &str| -> Result<Timestamp, String> {
        text(thread, field)
            .ok_or_else(|| format!("`thread.{field}` is missing"))?
            .parse()
            .map_err(|e| format!("`thread.{field}`: {e}"))
    };
    let messages = line
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("`messages` must be a list")?;
    let mut read = Vec::with_capacity(messages.len());
    for (i, raw) in messages.iter().enumerate() {
        let message: ChatMessage =
            serde_json::from_value(raw.clone()).map_err(|e| format!("`messages[{i}]`: {e}"))?;
        read.push((message, text(raw, "parentId")));
    }
    let mut messages = parent_positions(read)?;
    // A file written without `parentId`s (by hand, or by another tool) is one conversation,
    // each message following the one before.
    if line["messages"]
        .as_array()
        .is_some_and(|all| all.iter().all(|m| m.get("parentId").is_none()))
    {
        for (i, (_, parent)) in messages.iter_mut().enumerate() {
            *parent = i.checked_sub(1);
        }
    }
    let active_leaf = match text(thread, "activeLeafId") {
        Some(leaf) => Some(
            messages
                .iter()
                .position(|(m, _)| m.id.as_str() == leaf)
                .ok_or("`thread.activeLeafId` names no message of the thread")?,
        ),
        None => messages.len().checked_sub(1),
    };
    Ok(ImportedThread {
        title: text(thread, "title")
            .and_then(|t| Title::parse(t).ok())
            .unwrap_or_else(Title::untitled),
        created_at: time("createdAt")?,
        updated_at: time("updatedAt")?,
        archived: thread
            .get("archived")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        pinned: thread
            .get("pinned")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        tags: thread
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        metadata: thread
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        external_id: text(thread, "externalId").map(str::to_owned),
        model: text(thread, "model").map(str::to_owned),
        id,
        messages,
        active_leaf,
    })
}

/// One conversation of a ChatGPT data export: its `mapping` tree (node id → `{message,
/// parent, children}`), walked from its root; user and assistant messages with text are kept
/// (others pass their place to their children), `current_node` is the active branch.
fn from_chatgpt(conversation: &Value) -> Result<ImportedThread, String> {
    let mapping = conversation
        .get("mapping")
        .and_then(Value::as_object)
        .ok_or("`mapping` must be an object")?;
    let source = text(conversation, "conversation_id")
        .or_else(|| text(conversation, "id"))
        .ok_or("the conversation has no `id`")?;
    let created = from_seconds(conversation.get("create_time")).unwrap_or_else(now);
    let updated = from_seconds(conversation.get("update_time")).unwrap_or(created);
    let roots: Vec<&String> = mapping
        .iter()
        .filter(|(_, node)| text(node, "parent").is_none_or(|parent| !mapping.contains_key(parent)))
        .map(|(id, _)| id)
        .collect();
    if roots.is_empty() {
        return Err("`mapping` has no root".to_owned());
    }
    // Depth first, children in order: a parent comes before its children.
    let mut stack: Vec<(&str, Option<usize>)> =
        roots.iter().rev().map(|id| (id.as_str(), None)).collect();
    let mut kept: Vec<(ChatMessage, Option<usize>)> = Vec::new();
    let mut place: HashMap<&str, Option<usize>> = HashMap::new();
    let mut model = None;
    while let Some((node_id, parent)) = stack.pop() {
        if place.contains_key(node_id) {
            return Err(format!("`mapping` loops at `{node_id}`"));
        }
        let node = &mapping[node_id];
        let here = match chatgpt_message(node, node_id, created) {
            Some(message) => {
                if message.model.is_some() {
                    model.clone_from(&message.model);
                }
                kept.push((message, parent));
                Some(kept.len() - 1)
            }
            None => parent,
        };
        place.insert(node_id, here);
        if let Some(children) = node.get("children").and_then(Value::as_array) {
            for child in children.iter().rev().filter_map(Value::as_str) {
                if mapping.contains_key(child) {
                    stack.push((child, here));
                }
            }
        }
    }
    let active_leaf = text(conversation, "current_node")
        .and_then(|node| place.get(node).copied().flatten())
        .or_else(|| kept.len().checked_sub(1));
    Ok(ImportedThread {
        id: thread_id("chatgpt", source),
        title: text(conversation, "title")
            .and_then(|t| Title::parse(t).ok())
            .unwrap_or_else(Title::untitled),
        created_at: created,
        updated_at: updated,
        archived: conversation
            .get("is_archived")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        pinned: false,
        tags: Vec::new(),
        metadata: Map::new(),
        external_id: None,
        model,
        messages: kept,
        active_leaf,
    })
}

/// A ChatGPT node's message, when it is one a reader sees: a user's or the assistant's, with
/// text (its string parts).
fn chatgpt_message(node: &Value, node_id: &str, created: Timestamp) -> Option<ChatMessage> {
    let message = node.get("message").filter(|m| m.is_object())?;
    let role = match message.get("author").and_then(|a| text(a, "role")) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        _ => return None,
    };
    let parts = message.get("content")?.get("parts")?.as_array()?;
    let content = parts
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    if content.trim().is_empty() {
        return None;
    }
    let mut out = ChatMessage::new(role, content);
    out.id = message_id(text(message, "id"), node_id);
    out.created_at = from_seconds(message.get("create_time")).unwrap_or(created);
    if role == Role::Assistant {
        out.model = message
            .get("metadata")
            .and_then(|m| text(m, "model_slug"))
            .map(str::to_owned);
    }
    Some(out)
}

/// An OpenAI conversation items list (`message`, `function_call`, `function_call_output`),
/// in order: one linear thread, its id made from the items' ids.
fn from_items(items: &[Value]) -> Result<ImportedThread, String> {
    let ids: Vec<&str> = items.iter().filter_map(|i| text(i, "id")).collect();
    if ids.is_empty() {
        return Err("the items have no ids".to_owned());
    }
    let stamp = now();
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let fallback = format!("{}#{i}", ids.join(","));
        let id = message_id(text(item, "id"), &fallback);
        let mut message = match text(item, "type") {
            Some("message") => {
                let role = match text(item, "role") {
                    Some("user") => Role::User,
                    Some("assistant") => Role::Assistant,
                    Some("system" | "developer") => Role::System,
                    other => return Err(format!("items[{i}]: role {other:?} is not one of ours")),
                };
                let content = match item.get("content") {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| text(p, "text"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    _ => return Err(format!("items[{i}]: `content` is missing")),
                };
                ChatMessage::new(role, content)
            }
            Some("function_call") => {
                let mut call = ChatMessage::new(Role::Assistant, "");
                call.tool_calls = Some(vec![ToolCall {
                    id: text(item, "call_id").unwrap_or_default().to_owned(),
                    name: text(item, "name").unwrap_or_default().to_owned(),
                    arguments: text(item, "arguments").unwrap_or("{}").to_owned(),
                }]);
                call
            }
            Some("function_call_output") => {
                let output = match item.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let mut result = ChatMessage::new(Role::Tool, output);
                result.tool_call_id = text(item, "call_id").map(str::to_owned);
                result
            }
            other => return Err(format!("items[{i}]: type {other:?} is not importable")),
        };
        message.id = id;
        message.created_at = stamp;
        messages.push(message);
    }
    let title = messages
        .iter()
        .find(|m| m.role == Role::User)
        .map_or_else(Title::untitled, |m| Title::from_message(&m.content));
    let count = messages.len();
    let positioned: Vec<(ChatMessage, Option<usize>)> = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m, i.checked_sub(1)))
        .collect();
    Ok(ImportedThread {
        id: thread_id("items", &digest("", &ids.join(","))),
        title,
        created_at: stamp,
        updated_at: stamp,
        archived: false,
        pinned: false,
        tags: Vec::new(),
        metadata: Map::new(),
        external_id: None,
        model: None,
        messages: positioned,
        active_leaf: count.checked_sub(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole file's conversations, fed in pieces of 7 bytes.
    fn conversations(bytes: &[u8]) -> Result<Vec<Result<ImportedThread, String>>, ApiError> {
        let mut reader = Reader::default();
        let mut out = Vec::new();
        for piece in bytes.chunks(7) {
            out.extend(reader.push(piece)?);
        }
        out.extend(reader.finish()?);
        Ok(out
            .into_iter()
            .map(|c| match c {
                Conversation::Read(thread) => Ok(*thread),
                Conversation::Failed(_, error) => Err(error),
            })
            .collect())
    }

    #[test]
    fn shapes_are_told_apart_and_bad_conversations_fail_alone() {
        let chatgpt = br#"[{"id":"c1","title":"T","create_time":1700000000.5,"mapping":{
            "r":{"id":"r","message":null,"parent":null,"children":["a"]},
            "a":{"id":"a","message":{"id":"a","author":{"role":"user"},"content":{"content_type":"text","parts":["hi"]},"create_time":1700000001},"parent":"r","children":["b"]},
            "b":{"id":"b","message":{"id":"b","author":{"role":"assistant"},"content":{"content_type":"text","parts":["hello"]}},"parent":"a","children":[]}}},
            {"id":"c2","mapping":7}]"#;
        let read = conversations(chatgpt).unwrap();
        assert_eq!(read.len(), 2);
        let first = read[0].as_ref().unwrap();
        assert_eq!(first.id.as_str(), "chatgpt-c1");
        assert_eq!(first.messages.len(), 2);
        assert_eq!(first.messages[1].1, Some(0));
        assert_eq!(first.created_at.as_millisecond(), 1_700_000_000_500);
        assert!(read[1].as_ref().unwrap_err().contains("mapping"));

        let items = br#"{"object":"list","data":[{"type":"message","id":"msg_1","role":"user","content":[{"type":"input_text","text":"q"}]}]}"#;
        let read = conversations(items).unwrap();
        assert_eq!(read[0].as_ref().unwrap().messages[0].0.content, "q");

        assert!(matches!(
            conversations(b"  42"),
            Err(ApiError::InvalidBody(_))
        ));
        assert!(matches!(conversations(b""), Err(ApiError::InvalidBody(_))));
        assert!(matches!(
            conversations(b"[{\"x\": 1}]"),
            Err(ApiError::InvalidBody(_))
        ));
        assert!(matches!(
            conversations(b"[{\"x\": "),
            Err(ApiError::InvalidJson(_))
        ));
    }

    #[test]
    fn a_file_cut_off_keeps_the_conversations_before_the_cut() {
        let line = |id: &str| {
            format!(
                r#"{{"thread":{{"id":"{id}","title":"T","createdAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:00:00.000Z"}},"messages":[]}}"#
            )
        };
        let file = format!("{}\n{}\n{}", line("a"), line("b"), &line("c")[..40]);
        let read = conversations(file.as_bytes()).unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[1].as_ref().unwrap().id.as_str(), "b");
        assert!(
            read[2]
                .as_ref()
                .unwrap_err()
                .contains("ends inside conversation 2")
        );
    }
}
