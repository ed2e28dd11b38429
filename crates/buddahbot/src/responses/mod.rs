//! The OpenAI Responses and Conversations APIs as views of the thread store: a conversation
//! is a thread (its id is the thread's), a response is a turn of one (its input items the
//! messages the turn stored, its output the reply), an item is a stored message in item
//! shape. Nothing is kept twice; the ids say where to look ([`protocol::responses`]).
//!
//! [`protocol::responses`]: crate::protocol::responses

pub mod request;

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{
    app::App,
    background::Background,
    chat::{
        self,
        context::Truncation,
        request::{TurnInput, TurnRequest},
        resume::{self, ResumeFrom},
    },
    domain::{
        ChatMessage, MessageId, Placement, ReplyFormat, Role, ThreadId, ThreadStatus, UserId,
    },
    error::ApiError,
    protocol::encoder::Encoder,
    protocol::responses::{self, ResponseId, Settings, Status},
    store::{BranchPage, BranchRead, LimitSet},
    upstream::wire::{ImageUrl, PromptContent, PromptMessage, PromptPart, PromptToolCall},
};
use request::{CreateBody, CreateRequest, History};

/// Reads a whole thread: far more messages than a request may carry.
const WHOLE_THREAD: usize = 100_000;

/// `POST /api/responses`: a turn of a new thread, of the previous response's thread, or of
/// the conversation, answered as a Response object or its event stream.
///
/// # Errors
/// Those of the chat turn, and 404 for a previous response or conversation that does not
/// exist for this user.
pub async fn create(
    app: &App,
    user: UserId,
    body: CreateBody,
    limits: &LimitSet,
    background: Background,
) -> Result<Response, ApiError> {
    let request = CreateRequest::parse(body, app.config())?;
    let (thread, history, placement) = match &request.history {
        History::New => (ThreadId::new(), Vec::new(), Placement::AfterLeaf),
        History::Previous(raw) => {
            // As OpenAI answers: a 400 naming the field (another user's id is just as unknown).
            let unknown = || {
                ApiError::InvalidBody(format!(
                    "`previous_response_id` names no response of yours: `{raw}` was not found"
                ))
            };
            let id = ResponseId::parse(raw).ok_or_else(unknown)?;
            // The conversation up to that response: continuing from an earlier one than the
            // latest starts a branch there.
            let messages = branch_messages(app, &user, &id.thread, BranchRead::EndingAt(&id.reply))
                .await?
                .ok_or_else(unknown)?;
            if !messages
                .last()
                .is_some_and(|m| m.id == id.reply && m.role == Role::Assistant)
            {
                return Err(unknown());
            }
            (id.thread, messages, Placement::Under(id.reply))
        }
        History::Conversation(thread) => {
            let messages = current_messages(app, &user, thread)
                .await
                .map_err(|e| match e {
                    ApiError::ThreadNotFound => ApiError::NotFound("conversation"),
                    other => other,
                })?;
            (thread.clone(), messages, Placement::AfterLeaf)
        }
    };
    let reply = MessageId::new();
    let response_id = ResponseId {
        reply: reply.clone(),
        thread: thread.clone(),
    };
    let mut prompt = Vec::with_capacity(history.len() + request.prompt.len() + 1);
    if let Some(instructions) = &request.settings.instructions {
        prompt.push(PromptMessage::new(Role::System, instructions.clone()));
    }
    prompt.extend(history.iter().filter_map(prompt_message));
    prompt.extend(request.prompt.iter().cloned());
    let mut input = request.input.clone();
    for message in &mut input {
        message.response_id = Some(response_id.to_string());
    }
    // The settings ride on the first input message too, so a response still generating is
    // shown with them.
    if let Some(first) = input.first_mut() {
        first.response = serde_json::to_value(&request.settings).ok();
    }
    let background_only = request.settings.background && !request.stream;
    let ephemeral = !request.settings.store;
    let settings = Arc::new(request.settings);
    let model_name = request.model.as_str().to_owned();
    let turn = TurnRequest {
        thread_id: Some(thread),
        prompt,
        input: TurnInput::Messages(input),
        tools: request.tools,
        truncation: if request.truncation_disabled {
            Truncation::Disabled
        } else {
            Truncation::Auto
        },
        model: request.model,
        temperature: request.temperature,
        max_tokens: request.max_output_tokens,
        reasoning: request.reasoning,
        // A background response streams to nobody: its events wait in the log for a
        // resumer, as those of a client that went away do.
        stream: request.stream || background_only,
        include_usage: false,
        format: ReplyFormat::Responses,
        regenerate: false,
        top_p: request.top_p,
        response_format: request.response_format,
        reply_id: Some(reply),
        response: Some(Arc::clone(&settings)),
        create: matches!(request.history, History::New),
        ephemeral,
        placement,
        attachments_skipped: Vec::new(),
    };
    let response = chat::run(app, user, turn, limits, background).await?;
    if !background_only {
        return Ok(response);
    }
    // Answer at once; the generation goes on (its stream's receiver is dropped here).
    drop(response);
    let object = responses::object(
        &response_id,
        &settings,
        &model_name,
        jiff::Timestamp::now().as_second(),
        Status::InProgress,
        None,
        None,
    );
    Ok(axum::Json(object).into_response())
}

/// A thread's messages as a conversation holds them: its active branch, without deleted
/// ones. 404 (`ThreadNotFound`) when the thread does not exist.
pub async fn current_messages(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
) -> Result<Vec<ChatMessage>, ApiError> {
    branch_messages(app, user, thread, BranchRead::Active)
        .await?
        .ok_or(ApiError::ThreadNotFound)
}

/// Every message of a thread, of every branch (responses are found by id wherever they
/// are), without deleted ones. 404 (`ThreadNotFound`) when the thread does not exist.
async fn all_messages(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
) -> Result<Vec<ChatMessage>, ApiError> {
    let (_, messages) = app
        .store()
        .whole_thread(user, thread)
        .await?
        .ok_or(ApiError::ThreadNotFound)?;
    Ok(messages.into_iter().filter(|m| !m.deleted).collect())
}

/// The whole of one branch of a thread, without deleted messages; `None` when the thread or
/// the message the branch is named by does not exist.
async fn branch_messages(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
    branch: BranchRead<'_>,
) -> Result<Option<Vec<ChatMessage>>, ApiError> {
    Ok(
        match app
            .store()
            .branch_page(user, thread, WHOLE_THREAD, None, branch)
            .await?
        {
            BranchPage::Page(page) => {
                Some(page.messages.into_iter().filter(|m| !m.deleted).collect())
            }
            BranchPage::ThreadNotFound | BranchPage::MessageNotFound => None,
        },
    )
}

/// A stored message as the model gets it.
pub fn prompt_message(message: &ChatMessage) -> Option<PromptMessage> {
    let content = match (&message.parts, message.role) {
        (Some(parts), Role::User) if parts.iter().any(crate::domain::MessagePart::is_image) => {
            // Images go to the model again; other attachments were given (or not) once.
            PromptContent::Parts(
                parts
                    .iter()
                    .filter_map(|part| match part {
                        crate::domain::MessagePart::Text { text } => {
                            Some(PromptPart::Text { text: text.clone() })
                        }
                        crate::domain::MessagePart::File { url, .. } if part.is_image() => {
                            Some(PromptPart::ImageUrl {
                                image_url: ImageUrl { url: url.clone() },
                            })
                        }
                        crate::domain::MessagePart::File { .. }
                        | crate::domain::MessagePart::Reasoning { .. } => None,
                    })
                    .collect(),
            )
        }
        _ if message.role == Role::Assistant
            && message.content.is_empty()
            && message.tool_calls.is_some() =>
        {
            PromptContent::None
        }
        _ => PromptContent::Text(message.content.clone()),
    };
    if message.role == Role::Assistant && message.content.is_empty() && message.tool_calls.is_none()
    {
        // An empty reply (a stopped one that said nothing) tells the model nothing.
        return None;
    }
    let mut entry = PromptMessage::new(message.role, content);
    entry.tool_calls = message
        .tool_calls
        .iter()
        .flatten()
        .map(PromptToolCall::from)
        .collect();
    entry.tool_call_id.clone_from(&message.tool_call_id);
    Some(entry)
}

/// `GET /api/responses/{id}`: the stored Response, or the one still generating.
///
/// # Errors
/// 404 for an id that is not a response of this user's.
pub async fn retrieve(app: &App, user: &UserId, raw: &str) -> Result<Value, ApiError> {
    let id = ResponseId::parse(raw).ok_or(ApiError::NotFound("response"))?;
    let (thread, messages) = app
        .store()
        .whole_thread(user, &id.thread)
        .await?
        .ok_or(ApiError::NotFound("response"))?;
    if let Some(reply) = messages
        .iter()
        .find(|m| m.id == id.reply && m.role == Role::Assistant && !m.deleted)
    {
        let settings: Settings = reply
            .response
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or(ApiError::NotFound("response"))?;
        let error = (reply.status == Some(crate::domain::ReplyStatus::Error))
            .then_some(("upstream_error", "The model's reply broke off."));
        return Ok(responses::object(
            &id,
            &settings,
            reply.model.as_deref().unwrap_or_default(),
            responses::started_at(reply),
            Status::of(reply),
            Some(reply),
            error,
        ));
    }
    // Not stored yet: generating, or its generator died.
    let wanted = id.to_string();
    let first_input = messages
        .iter()
        .find(|m| m.response_id.as_deref() == Some(&wanted) && !m.deleted)
        .ok_or(ApiError::NotFound("response"))?;
    let settings: Settings = first_input
        .response
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let generating = matches!(&thread.status,
        ThreadStatus::Streaming { active_message_id } if *active_message_id == id.reply);
    let (status, error) = if generating {
        (Status::InProgress, None)
    } else {
        (
            Status::Failed,
            Some((
                "generation_interrupted",
                "The response stopped being generated before it was stored.",
            )),
        )
    };
    Ok(responses::object(
        &id,
        &settings,
        thread.model.as_deref().unwrap_or_default(),
        first_input.created_at.as_second(),
        status,
        None,
        error,
    ))
}

/// `GET /api/responses/{id}?stream=true&starting_after=N`: the response's events after
/// sequence number `N` (from the first when absent): the generation's own, followed live to
/// the end while it runs or its log lasts, else the stored response's, replayed.
///
/// # Errors
/// 404 for an id that is not a response of this user's.
pub async fn stream(
    app: &App,
    user: UserId,
    raw: &str,
    starting_after: Option<u64>,
) -> Result<Response, ApiError> {
    let id = ResponseId::parse(raw).ok_or(ApiError::NotFound("response"))?;
    let from = match starting_after {
        Some(n) => ResumeFrom::Sequence(n),
        None => ResumeFrom::Id(None),
    };
    if let Some(live) =
        resume::resume_from(app, user.clone(), id.thread.clone(), from, Some(&id.reply)).await?
    {
        return Ok(live);
    }
    let messages = all_messages(app, &user, &id.thread)
        .await
        .map_err(|_| ApiError::NotFound("response"))?;
    let reply = messages
        .iter()
        .find(|m| m.id == id.reply && m.role == Role::Assistant)
        .ok_or(ApiError::NotFound("response"))?;
    let settings: Settings = reply
        .response
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or(ApiError::NotFound("response"))?;
    let mut events: Vec<String> = Vec::new();
    Encoder::new(ReplyFormat::Responses, false)
        .responding(
            id.clone(),
            Arc::new(settings),
            reply.model.as_deref().unwrap_or_default(),
            responses::started_at(reply),
        )
        .replay(reply, &mut events);
    let skip = starting_after.map_or(0, |n| {
        usize::try_from(n).unwrap_or(usize::MAX).saturating_add(1)
    });
    Ok(chat::responses_stream(
        &id.thread,
        &id.reply,
        events.iter().skip(skip),
    ))
}

/// `POST /api/responses/{id}/cancel`: stops a background response (its partial output is
/// kept) and answers the final Response; a response that already ended is answered as it
/// is.
///
/// # Errors
/// 404 for an id that is not a response of this user's; 400 for one that was not run in
/// the background.
pub async fn cancel(app: &App, user: &UserId, raw: &str) -> Result<Value, ApiError> {
    let current = retrieve(app, user, raw).await?;
    if current["background"] != Value::Bool(true) {
        return Err(ApiError::InvalidBody(
            "only a background response can be cancelled".to_owned(),
        ));
    }
    if current["status"] != "in_progress" {
        return Ok(current);
    }
    let id = ResponseId::parse(raw).ok_or(ApiError::NotFound("response"))?;
    app.store().request_stop(user, &id.thread).await?;
    // The generator stores the partial reply within a round trip of the push.
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = retrieve(app, user, raw).await?;
        if now["status"] != "in_progress" {
            return Ok(now);
        }
    }
    retrieve(app, user, raw).await
}

/// A stored response's messages (its input, then its reply), found by its id.
async fn response_messages(
    app: &App,
    user: &UserId,
    raw: &str,
) -> Result<(ResponseId, Vec<ChatMessage>), ApiError> {
    let id = ResponseId::parse(raw).ok_or(ApiError::NotFound("response"))?;
    let messages = all_messages(app, user, &id.thread)
        .await
        .map_err(|_| ApiError::NotFound("response"))?;
    if !messages.iter().any(|m| m.id == id.reply) {
        return Err(ApiError::NotFound("response"));
    }
    let wanted = id.to_string();
    let own = messages
        .into_iter()
        .filter(|m| m.id == id.reply || m.response_id.as_deref() == Some(&wanted))
        .collect();
    Ok((id, own))
}

/// `GET /api/responses/{id}/input_items`: the messages the response's turn stored, as items.
///
/// # Errors
/// 404 for an id that is not a response of this user's.
pub async fn input_items(
    app: &App,
    user: &UserId,
    raw: &str,
    page: &ItemPage,
) -> Result<Value, ApiError> {
    let (id, messages) = response_messages(app, user, raw).await?;
    let items: Vec<Value> = messages
        .iter()
        .filter(|m| m.id != id.reply)
        .flat_map(responses::items)
        .collect();
    Ok(page.list(items))
}

/// `DELETE /api/responses/{id}`: the response's messages (input and output) are deleted.
///
/// # Errors
/// 404 for an id that is not a response of this user's.
pub async fn delete(app: &App, user: &UserId, raw: &str) -> Result<Value, ApiError> {
    let (id, messages) = response_messages(app, user, raw).await?;
    let ids: Vec<MessageId> = messages.into_iter().map(|m| m.id).collect();
    app.store().delete_messages(user, &id.thread, &ids).await?;
    Ok(json!({ "id": raw, "object": "response", "deleted": true }))
}

/// A page of items: `after` an item id, `limit` 1–100 (default 20), `order` `asc` | `desc`.
#[derive(Debug, Clone)]
pub struct ItemPage {
    pub after: Option<String>,
    pub limit: usize,
    pub descending: bool,
}

impl ItemPage {
    /// Reads `after`, `limit` and `order`; `descending` is the default order's.
    ///
    /// # Errors
    /// [`ApiError::InvalidParam`] for a bad `limit` or `order`.
    pub fn parse(query: &crate::http::QueryParams, descending: bool) -> Result<Self, ApiError> {
        let limit = match query.get("limit") {
            None => 20,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| ApiError::InvalidParam {
                    name: "limit",
                    reason: "must be a whole number from 1 to 100".to_owned(),
                })?,
        };
        let descending = match query.get("order") {
            None => descending,
            Some("asc") => false,
            Some("desc") => true,
            Some(_) => {
                return Err(ApiError::InvalidParam {
                    name: "order",
                    reason: "must be `asc` or `desc`".to_owned(),
                });
            }
        };
        Ok(Self {
            after: query.get("after").map(str::to_owned),
            limit,
            descending,
        })
    }

    /// One page of `items` (oldest first) as `{object: "list", data, first_id, last_id,
    /// has_more}`.
    pub fn list(&self, mut items: Vec<Value>) -> Value {
        if self.descending {
            items.reverse();
        }
        let start = match &self.after {
            Some(after) => items
                .iter()
                .position(|item| item["id"].as_str() == Some(after))
                .map_or(items.len(), |i| i + 1),
            None => 0,
        };
        let rest = items.len().saturating_sub(start);
        let data: Vec<Value> = items.into_iter().skip(start).take(self.limit).collect();
        json!({
            "object": "list",
            "first_id": data.first().map(|i| i["id"].clone()),
            "last_id": data.last().map(|i| i["id"].clone()),
            "has_more": rest > data.len(),
            "data": data,
        })
    }
}

/// `POST /api/conversations`: a new thread (`conv_…`) seeded with up to 20 items.
///
/// # Errors
/// 400 for bad items or metadata.
pub async fn create_conversation(app: &App, user: &UserId, body: Value) -> Result<Value, ApiError> {
    let metadata = request::check_metadata(body.get("metadata"))?;
    let items = match body.get("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_ADDED_ITEMS => {
            request::parse_input(Some(&Value::Array(items.clone())), app.config())?.0
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::InvalidBody(format!(
                "`items` may hold at most {MAX_ADDED_ITEMS} items"
            )));
        }
        Some(_) => return Err(ApiError::InvalidBody("`items` must be a list".to_owned())),
    };
    let id =
        ThreadId::parse(&format!("conv_{}", uuid::Uuid::new_v4().simple())).unwrap_or_default();
    let thread = app
        .store()
        .create_thread(user, Some(id.clone()), None)
        .await?
        .ok_or(ApiError::ThreadExists)?;
    app.store()
        .set_conversation_metadata(user, &id, &metadata.to_string())
        .await?;
    if !items.is_empty() {
        app.store().append_messages(user, &id, &items).await?;
    }
    Ok(conversation_object(
        &id,
        thread.created_at.as_second(),
        metadata,
    ))
}

/// Items one request may add to a conversation.
const MAX_ADDED_ITEMS: usize = 20;

fn conversation_object(id: &ThreadId, created_at: i64, metadata: Value) -> Value {
    json!({ "id": id, "object": "conversation", "created_at": created_at, "metadata": metadata })
}

/// `GET /api/conversations/{id}`.
///
/// # Errors
/// 404 when the thread does not exist for this user.
pub async fn retrieve_conversation(
    app: &App,
    user: &UserId,
    id: &ThreadId,
) -> Result<Value, ApiError> {
    let (thread, metadata) = app
        .store()
        .conversation(user, id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    Ok(conversation_object(
        id,
        thread.created_at.as_second(),
        metadata,
    ))
}

/// `POST /api/conversations/{id}`: replaces the conversation's metadata.
///
/// # Errors
/// 400 for bad metadata, 404 when the thread does not exist for this user.
pub async fn update_conversation(
    app: &App,
    user: &UserId,
    id: &ThreadId,
    body: &Value,
) -> Result<Value, ApiError> {
    let metadata = request::check_metadata(body.get("metadata"))?;
    if !app
        .store()
        .set_conversation_metadata(user, id, &metadata.to_string())
        .await?
    {
        return Err(ApiError::NotFound("conversation"));
    }
    retrieve_conversation(app, user, id).await
}

/// `POST /api/conversations/{id}/items`: appends up to 20 items.
///
/// # Errors
/// 400 for bad items, 404 when the thread does not exist for this user.
pub async fn add_items(
    app: &App,
    user: &UserId,
    id: &ThreadId,
    body: &Value,
) -> Result<Value, ApiError> {
    let items = match body.get("items") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_ADDED_ITEMS => {
            request::parse_input(Some(&Value::Array(items.clone())), app.config())?.0
        }
        _ => {
            return Err(ApiError::InvalidBody(format!(
                "`items` must hold 1 to {MAX_ADDED_ITEMS} items"
            )));
        }
    };
    app.store()
        .append_messages(user, id, &items)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let data: Vec<Value> = items.iter().flat_map(responses::items).collect();
    Ok(json!({
        "object": "list",
        "first_id": data.first().map(|i| i["id"].clone()),
        "last_id": data.last().map(|i| i["id"].clone()),
        "has_more": false,
        "data": data,
    }))
}

/// The message a conversation's item id names, and the item.
async fn find_item(
    app: &App,
    user: &UserId,
    id: &ThreadId,
    item: &str,
) -> Result<(MessageId, Value), ApiError> {
    let messages = current_messages(app, user, id)
        .await
        .map_err(|_| ApiError::NotFound("conversation"))?;
    messages
        .iter()
        .find_map(|message| {
            responses::items(message)
                .into_iter()
                .find(|i| i["id"].as_str() == Some(item))
                .map(|i| (message.id.clone(), i))
        })
        .ok_or(ApiError::NotFound("item"))
}

/// `GET /api/conversations/{id}/items/{item}`.
///
/// # Errors
/// 404 when the conversation or the item does not exist for this user.
pub async fn get_item(
    app: &App,
    user: &UserId,
    id: &ThreadId,
    item: &str,
) -> Result<Value, ApiError> {
    Ok(find_item(app, user, id, item).await?.1)
}

/// `DELETE /api/conversations/{id}/items/{item}`: deletes the message the item is (a
/// function call item deletes the assistant message that made it, with its other calls).
/// Answers the conversation.
///
/// # Errors
/// 404 when the conversation or the item does not exist for this user.
pub async fn delete_item(
    app: &App,
    user: &UserId,
    id: &ThreadId,
    item: &str,
) -> Result<Value, ApiError> {
    let (message, _) = find_item(app, user, id, item).await?;
    app.store().delete_messages(user, id, &[message]).await?;
    retrieve_conversation(app, user, id).await
}

/// `GET /api/conversations` (an extension): the user's conversations (every thread is
/// one), newest first, a page at a time by `after` (a conversation id) and `limit`.
///
/// # Errors
/// [`ApiError::Store`] when Redis fails.
pub async fn list_conversations(
    app: &App,
    user: &UserId,
    page: &ItemPage,
) -> Result<Value, ApiError> {
    let mut threads = Vec::new();
    let mut cursor = None;
    // Walk the index a page at a time until the page after `after` is full.
    loop {
        let listed = app.store().list_threads(user, 100, cursor).await?;
        threads.extend(listed.threads);
        match listed.next {
            Some(next) if threads.len() < 10_000 => cursor = Some(next),
            _ => break,
        }
        if let Some(after) = &page.after
            && let Some(at) = threads.iter().position(|t| t.id.as_str() == after)
            && threads.len() > at + page.limit
        {
            break;
        }
        if page.after.is_none() && threads.len() > page.limit {
            break;
        }
    }
    let items: Vec<Value> = threads
        .iter()
        .map(|t| {
            json!({ "id": t.id, "object": "conversation", "created_at": t.created_at.as_second(),
                "title": t.title })
        })
        .collect();
    // The index is newest first already: list it as given.
    Ok(ItemPage {
        descending: false,
        ..page.clone()
    }
    .list(items))
}

/// `GET /api/conversations/{id}/items`: the thread's messages as items, newest first by
/// default.
///
/// # Errors
/// 404 when the thread does not exist for this user.
pub async fn conversation_items(
    app: &App,
    user: &UserId,
    id: &ThreadId,
    page: &ItemPage,
) -> Result<Value, ApiError> {
    let messages = current_messages(app, user, id)
        .await
        .map_err(|_| ApiError::NotFound("conversation"))?;
    let items: Vec<Value> = messages.iter().flat_map(responses::items).collect();
    Ok(page.list(items))
}
