//! `GET /api/threads/:id` (a page of one branch's messages, as stored or with `?format=ui` as
//! AI SDK `UIMessage`s), `PATCH` (rename, organise, switch branch), `DELETE`, and `POST /api/threads/:id/title` (a title
//! written by the model, on demand). The id arrives as the `id` query parameter, as Vercel
//! passes a `[id].rs` segment; the action as `action`.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use crate::{
    app::App,
    domain::{ChatMessage, MessageId, Thread, Title},
    error::ApiError,
    http::{AppJson, QueryParams, RawBody, guard::Authenticated, optional_param, page_limit},
    protocol::ai_sdk,
    store::{BranchPage, BranchRead, LeafSet, MessageCursor},
};

/// Messages per page when the client does not say.
pub const DEFAULT_MESSAGES_LIMIT: usize = 50;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadWithMessages {
    thread: Thread,
    messages: Messages,
    next_cursor: Option<String>,
}

/// A page's messages: as stored, or (`?format=ui`) as the AI SDK's `UIMessage`s, so a
/// `useChat` client can seed its history directly.
#[derive(Serialize)]
#[serde(untagged)]
enum Messages {
    Stored(Vec<ChatMessage>),
    Ui(Vec<serde_json::Value>),
}

/// Whether `?format=ui` asked for `UIMessage`s.
fn wants_ui(query: &QueryParams) -> Result<bool, ApiError> {
    match query.get("format") {
        None => Ok(false),
        Some("ui") => Ok(true),
        Some(_) => Err(ApiError::InvalidParam {
            name: "format",
            reason: "must be `ui` when given".to_owned(),
        }),
    }
}

/// `PATCH /api/threads/:id`: any of `title`, `archived`, `pinned`, `tags`, `metadata`,
/// `externalId`, `activeLeafId` (a partial update).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchThread {
    #[serde(default)]
    title: Option<String>,
    /// Switch to the branch through this message (down to its newest leaf).
    #[serde(default)]
    active_leaf_id: Option<serde_json::Value>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

pub async fn get(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    match query.get("action") {
        None => {}
        Some("export") => return super::export::thread(&app, &user, &query).await,
        Some("attachments") => return attachments(&app, &user, &query).await,
        Some(_) => return Err(ApiError::RouteNotFound),
    }
    let id = super::thread_id(&query)?;
    let limit = page_limit(query.get("limit"), DEFAULT_MESSAGES_LIMIT)?;
    let ui = wants_ui(&query)?;
    let before = optional_param(&query, "before", MessageCursor::parse)?;
    let leaf = optional_param(&query, "leaf", MessageId::parse)?;
    let branch = leaf
        .as_ref()
        .map_or(BranchRead::Active, BranchRead::Through);
    let page = match app
        .store()
        .branch_page(&user, &id, limit, before, branch)
        .await?
    {
        BranchPage::Page(page) => page,
        BranchPage::ThreadNotFound => return Err(ApiError::ThreadNotFound),
        BranchPage::MessageNotFound => return Err(ApiError::NotFound("message")),
    };
    let current = page.messages.into_iter().filter(|m| !m.deleted);
    Ok(AppJson(ThreadWithMessages {
        thread: page.thread,
        messages: if ui {
            Messages::Ui(ai_sdk::ui_messages(&current.collect::<Vec<_>>()))
        } else {
            Messages::Stored(current.collect())
        },
        next_cursor: page.next.map(MessageCursor::encode),
    })
    .into_response())
}

pub async fn rename(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
    AppJson(body): AppJson<PatchThread>,
) -> Result<AppJson<Thread>, ApiError> {
    let id = super::thread_id(&query)?;
    let title = body
        .title
        .as_deref()
        .map(|raw| Title::parse(raw).map_err(|e| ApiError::InvalidBody(format!("`title`: {e}"))))
        .transpose()?;
    let organize = super::organize::parse(&body.rest)?;
    let leaf = body
        .active_leaf_id
        .map(|raw| {
            raw.as_str()
                .and_then(|raw| MessageId::parse(raw).ok())
                .ok_or_else(|| {
                    ApiError::InvalidBody("`activeLeafId` must be a message id".to_owned())
                })
        })
        .transpose()?;
    if title.is_none() && organize.is_empty() && leaf.is_none() {
        return Err(ApiError::InvalidBody(
            "`title`, `archived`, `pinned`, `tags`, `metadata`, `externalId` or `activeLeafId` is required: there is nothing to change".to_owned(),
        ));
    }
    if let Some(leaf) = &leaf {
        // First, so a refused switch changes nothing else.
        match app.store().set_active_leaf(&user, &id, leaf).await? {
            LeafSet::Done(_) => {}
            LeafSet::ThreadNotFound => return Err(ApiError::ThreadNotFound),
            LeafSet::MessageNotFound => {
                return Err(ApiError::InvalidBody(format!(
                    "`activeLeafId` names message `{leaf}`, which is not in this thread"
                )));
            }
            LeafSet::Busy(reply_id) => return Err(ApiError::GenerationInProgress { reply_id }),
        }
    }
    let mut thread = None;
    if let Some(title) = &title {
        thread = Some(
            app.store()
                .rename_thread(&user, &id, title)
                .await?
                .ok_or(ApiError::ThreadNotFound)?,
        );
    }
    if !organize.is_empty() {
        thread = Some(organized(&app, &user, &id, &organize).await?);
    }
    if thread.is_none() {
        thread = Some(
            app.store()
                .thread_page(&user, &id, 1, None)
                .await?
                .ok_or(ApiError::ThreadNotFound)?
                .thread,
        );
    }
    thread.map(AppJson).ok_or(ApiError::ThreadNotFound)
}

/// Applies organisation `changes` to a thread and answers it as it now is.
///
/// # Errors
/// 404 when the thread does not exist, 409 when the external id is another thread's.
pub async fn organized(
    app: &App,
    user: &crate::domain::UserId,
    id: &crate::domain::ThreadId,
    changes: &crate::store::Organize,
) -> Result<Thread, ApiError> {
    match app.store().organize(user, id, changes).await? {
        crate::store::Organized::Done => {}
        crate::store::Organized::ThreadNotFound => return Err(ApiError::ThreadNotFound),
        crate::store::Organized::ExternalIdTaken => return Err(ApiError::ExternalIdTaken),
    }
    Ok(app
        .store()
        .thread_page(user, id, 1, None)
        .await?
        .ok_or(ApiError::ThreadNotFound)?
        .thread)
}

pub async fn delete(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    match query.get("action") {
        None => {}
        Some("share") => {
            let id = super::thread_id(&query)?;
            return super::share::unshare(&app, &user, &id).await;
        }
        Some(_) => return super::feedback::write(&app, &user, &query, None).await,
    }
    let id = super::thread_id(&query)?;
    if app.store().delete_thread(&user, &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::ThreadNotFound)
    }
}

/// `POST /api/threads/:id/title`: the model writes the thread a new title from its first
/// message, whatever it was called; answers the Thread.
pub async fn post_action(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
    RawBody(body): RawBody,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let id = super::thread_id(&query)?;
    match query.get("action") {
        Some("title") => {}
        Some("share") => return super::share::share(&app, &user, &id, &json_body(&body)?).await,
        Some("fork") => return super::share::fork(&app, &user, &id, &json_body(&body)?).await,
        // The thread itself takes no POST.
        None => {
            return Err(ApiError::MethodNotAllowed {
                allow: "GET, HEAD, PATCH, DELETE",
            });
        }
        Some(_) => return Err(ApiError::RouteNotFound),
    }
    let first = app
        .store()
        .thread_page(&user, &id, WHOLE_THREAD, None)
        .await?
        .ok_or(ApiError::ThreadNotFound)?
        .messages
        .into_iter()
        .find(|m| m.role == crate::domain::Role::User && !m.deleted)
        .ok_or_else(|| {
            ApiError::InvalidBody("the thread has no message to name it by yet".to_owned())
        })?;
    let (title, tokens) = crate::chat::title::ask(&app, &first.content).await?;
    let kept = app
        .store()
        .set_model_title(&user, &id, title.as_ref(), true, tokens)
        .await?;
    if title.is_none() {
        return Err(ApiError::Upstream(
            crate::upstream::UpstreamError::Protocol("the model answered no title".to_owned()),
        ));
    }
    if !kept {
        return Err(ApiError::ThreadNotFound);
    }
    let page = app
        .store()
        .thread_page(&user, &id, 1, None)
        .await?
        .ok_or(ApiError::ThreadNotFound)?;
    Ok(AppJson(page.thread).into_response())
}

/// A JSON body, or `{}` when there is none.
fn json_body(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// `PUT /api/threads/:id/messages/:messageId/feedback`.
pub async fn put_action(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
    RawBody(body): RawBody,
) -> Result<axum::response::Response, ApiError> {
    if query.get("action").is_none() {
        return Err(ApiError::MethodNotAllowed {
            allow: "GET, HEAD, PATCH, DELETE",
        });
    }
    super::feedback::write(&app, &user, &query, Some(&body)).await
}

/// `GET /api/threads/:id/attachments`: every file of the thread's messages (of every branch),
/// in the order they were written.
async fn attachments(
    app: &App,
    user: &crate::domain::UserId,
    query: &QueryParams,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let id = super::thread_id(query)?;
    let (_, messages) = app
        .store()
        .whole_thread(user, &id)
        .await?
        .ok_or(ApiError::ThreadNotFound)?;
    let files: Vec<serde_json::Value> = messages
        .iter()
        .filter(|m| !m.deleted)
        .flat_map(|m| {
            m.parts.iter().flatten().filter_map(move |part| match part {
                crate::domain::MessagePart::File {
                    media_type,
                    url,
                    filename,
                    size,
                } => Some(serde_json::json!({
                    "messageId": m.id,
                    "role": m.role,
                    "createdAt": serde_json::to_value(m).ok().and_then(|v| v.get("createdAt").cloned()),
                    "mediaType": media_type,
                    "url": url,
                    "filename": filename,
                    "size": size,
                })),
                crate::domain::MessagePart::Text { .. }
                | crate::domain::MessagePart::Reasoning { .. } => None,
            })
        })
        .collect();
    Ok(AppJson(serde_json::json!({ "attachments": files })).into_response())
}

/// Reads a whole thread (far more messages than a request may carry).
const WHOLE_THREAD: usize = 100_000;
