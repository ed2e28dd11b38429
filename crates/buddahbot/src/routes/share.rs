//! Share links and copies: `POST` / `DELETE /api/threads/:id/share`, `POST
//! /api/threads/:id/fork`, the public `GET /api/shared/:token` and `POST
//! /api/shared/:token/copy` ("continue as my copy").

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{
    app::App,
    domain::{ChatMessage, ForkedFrom, MessageId, Role, ThreadId, Title, UserId, now},
    error::ApiError,
    http::QueryParams,
    store::{
        BranchPage, BranchRead,
        share::{self, Snapshot},
    },
};

/// Longest a share link may last, in days.
const MAX_SHARE_DAYS: u64 = 365;
/// Reads a whole thread (far more messages than a request may carry).
const WHOLE_THREAD: usize = 100_000;

/// One branch of the thread as its reader sees it (no deleted messages), each message as
/// a copy keeps it: no place among the original's branches, no mark of a replaced reply.
async fn branch(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
    branch: BranchRead<'_>,
) -> Result<(crate::domain::Thread, Vec<ChatMessage>), ApiError> {
    let page = match app
        .store()
        .branch_page(user, thread, WHOLE_THREAD, None, branch)
        .await?
    {
        BranchPage::Page(page) => page,
        BranchPage::ThreadNotFound => return Err(ApiError::ThreadNotFound),
        BranchPage::MessageNotFound => {
            return Err(ApiError::InvalidBody(
                "`messageId` names no message of the thread".to_owned(),
            ));
        }
    };
    let messages = page
        .messages
        .into_iter()
        .filter(|m| !m.deleted)
        .map(|m| ChatMessage {
            place: None,
            superseded_by: None,
            ..m
        })
        .collect();
    Ok((page.thread, messages))
}

/// A message as a shared page shows it: role, text, parts, time; nothing private (no ids of
/// users, usage, model settings, feedback).
fn public_message(message: &ChatMessage) -> Value {
    let mut out = json!({
        "role": message.role,
        "content": message.content,
        "createdAt": serde_json::to_value(message).ok().and_then(|v| v.get("createdAt").cloned()),
    });
    if let Some(parts) = &message.parts {
        out["parts"] = json!(parts);
    }
    if let Some(calls) = &message.tool_calls {
        out["toolCalls"] = json!(calls);
    }
    out
}

/// `POST /api/threads/:id/share {expiresInDays?}`: snapshots the thread (again, under the
/// same token, when it is shared already).
pub async fn share(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
    body: &Value,
) -> Result<Response, ApiError> {
    let days = match body.get("expiresInDays") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|d| (1..=MAX_SHARE_DAYS).contains(d))
                .ok_or_else(|| {
                    ApiError::InvalidBody(format!(
                        "`expiresInDays` must be a whole number from 1 to {MAX_SHARE_DAYS}"
                    ))
                })?,
        ),
    };
    let (meta, messages) = branch(app, user, thread, BranchRead::Active).await?;
    let token = match app.store().share_token(user, thread).await? {
        Some(token) => token,
        None => share::new_token()?,
    };
    let shared_at = now();
    let ttl = days.map(|d| Duration::from_secs(d * 86_400));
    let expires_at = ttl.and_then(|ttl| {
        jiff::SignedDuration::try_from(ttl)
            .ok()
            .and_then(|d| shared_at.checked_add(d).ok())
    });
    let iso = |t: jiff::Timestamp| {
        jiff::fmt::temporal::DateTimePrinter::new()
            .precision(Some(3))
            .timestamp_to_string(&t)
    };
    let snapshot = Snapshot {
        title: meta.title.as_str().to_owned(),
        messages: messages.iter().map(public_message).collect(),
        shared_at: iso(shared_at),
        expires_at: expires_at.map(iso),
        owner: user.as_str().to_owned(),
        thread_id: thread.as_str().to_owned(),
    };
    if !app
        .store()
        .share(user, thread, &token, &snapshot, ttl)
        .await?
    {
        return Err(ApiError::ThreadNotFound);
    }
    Ok(Json(json!({
        "token": token,
        "url": format!("/api/shared/{token}"),
        "createdAt": snapshot.shared_at,
        "expiresAt": snapshot.expires_at,
    }))
    .into_response())
}

/// `DELETE /api/threads/:id/share`: the link stops working at once.
pub async fn unshare(app: &App, user: &UserId, thread: &ThreadId) -> Result<Response, ApiError> {
    if !app.store().unshare(user, thread).await? {
        // Not shared: nothing to revoke (or no such thread).
        branch(app, user, thread, BranchRead::Active).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Copies `messages` into a new thread of `user`'s titled `title`, marked as `forked_from`.
async fn copy_into_new(
    app: &App,
    user: &UserId,
    title: &str,
    messages: &[ChatMessage],
    forked_from: Option<ForkedFrom>,
) -> Result<Response, ApiError> {
    let title = Title::parse(title)
        .or_else(|_| {
            Title::parse(
                &title
                    .chars()
                    .take(crate::domain::MAX_TITLE_CHARS)
                    .collect::<String>(),
            )
        })
        .unwrap_or_else(|_| Title::untitled());
    let store = app.store();
    let mut thread = store
        .create_thread(user, None, Some(title))
        .await?
        .ok_or(ApiError::ThreadExists)?;
    if let Some(from) = &forked_from {
        store
            .set_thread_field(
                user,
                &thread.id,
                crate::store::schema::FORKED_FROM,
                &json!(from).to_string(),
            )
            .await?;
    }
    if !messages.is_empty() {
        thread = store
            .append_messages(user, &thread.id, messages)
            .await?
            .ok_or(ApiError::ThreadNotFound)?;
    }
    thread.forked_from = forked_from;
    Ok((StatusCode::CREATED, Json(thread)).into_response())
}

/// `POST /api/threads/:id/fork {messageId?}`: the thread up to `messageId` (its latest
/// message by default) as a new thread of the same user.
pub async fn fork(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
    body: &Value,
) -> Result<Response, ApiError> {
    let upto = match body.get("messageId") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(
            MessageId::parse(raw)
                .map_err(|e| ApiError::InvalidBody(format!("`messageId` is invalid: {e}")))?,
        ),
        Some(_) => {
            return Err(ApiError::InvalidBody(
                "`messageId` must be a string".to_owned(),
            ));
        }
    };
    // The branch up to that message (any branch), or the active one.
    let read = upto
        .as_ref()
        .map_or(BranchRead::Active, BranchRead::EndingAt);
    let (meta, mut messages) = branch(app, user, thread, read).await?;
    for message in &mut messages {
        // The copy is the user's own: no feedback or response bookkeeping travels with it.
        message.feedback = None;
        message.response_id = None;
        message.response = None;
    }
    let from = ForkedFrom {
        thread_id: thread.as_str().to_owned(),
        message_id: messages.last().map(|m| m.id.as_str().to_owned()),
    };
    let title = format!("{} (fork)", meta.title.as_str());
    copy_into_new(app, user, &title, &messages, Some(from)).await
}

/// `GET /api/shared/:token`, public: the snapshot, or 404 once revoked, expired or its
/// thread deleted. Counted per client address by the guard (`RATE_LIMIT_PUBLIC_PER_MIN`).
pub async fn read(State(app): State<App>, query: QueryParams) -> Result<Response, ApiError> {
    let token = query.get_once("token").unwrap_or_default();
    let snapshot = app
        .store()
        .shared(token)
        .await?
        .ok_or(ApiError::NotFound("shared thread"))?;
    let mut response = Json(json!({
        "title": snapshot.title,
        "messages": snapshot.messages,
        "sharedAt": snapshot.shared_at,
        "expiresAt": snapshot.expires_at,
    }))
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

/// `POST /api/shared/:token/copy` (authenticated): the snapshot as a new thread of the
/// caller's.
pub async fn copy(app: &App, user: &UserId, token: &str) -> Result<Response, ApiError> {
    let snapshot = app
        .store()
        .shared(token)
        .await?
        .ok_or(ApiError::NotFound("shared thread"))?;
    let messages: Vec<ChatMessage> = snapshot
        .messages
        .iter()
        .filter_map(|m| {
            let role: Role = serde_json::from_value(m.get("role")?.clone()).ok()?;
            let mut message = ChatMessage::new(role, m.get("content")?.as_str()?);
            message.parts = m
                .get("parts")
                .and_then(|p| serde_json::from_value(p.clone()).ok());
            message.tool_calls = m
                .get("toolCalls")
                .and_then(|p| serde_json::from_value(p.clone()).ok());
            Some(message)
        })
        .collect();
    copy_into_new(app, user, &snapshot.title, &messages, None).await
}
