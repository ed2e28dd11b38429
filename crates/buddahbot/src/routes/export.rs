//! Export: `GET /api/export?format=ndjson|markdown` (every thread of the user, streamed a
//! thread at a time, so memory stays flat however many there are) and `GET
//! /api/threads/:id/export?format=json|markdown` (one thread). Served by the threads and
//! thread functions (`vercel.json` rewrites them there with `?view=export` and
//! `?action=export`).

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    app::App,
    domain::{ChatMessage, MessageId, Role, Thread, ThreadId, UserId, now},
    error::ApiError,
    http::QueryParams,
    store::{ArchivedFilter, ThreadFilter},
};

/// Threads read per index page while exporting.
const PAGE: usize = 50;
/// Frames buffered ahead of a slow client.
const BUFFERED: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Markdown,
}

fn format(
    query: &QueryParams,
    default: Format,
    json_name: &'static str,
) -> Result<Format, ApiError> {
    match query.get("format") {
        None => Ok(default),
        Some(name) if name == json_name => Ok(Format::Json),
        Some("markdown") => Ok(Format::Markdown),
        Some(_) => Err(ApiError::InvalidParam {
            name: "format",
            reason: format!("must be `{json_name}` or `markdown`"),
        }),
    }
}

/// A thread's messages as exported: every one of every branch, in the order they were
/// written, each with its `parentId` and `branch`; deleted ones left out.
async fn messages(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
) -> Result<Option<(Thread, Vec<ChatMessage>)>, ApiError> {
    Ok(app
        .store()
        .whole_thread(user, thread)
        .await?
        .map(|(thread, messages)| {
            let messages = messages.into_iter().filter(|m| !m.deleted).collect();
            (thread, messages)
        }))
}

/// The messages of the active branch (from its leaf up by `parentId`), oldest first.
fn active_branch<'a>(thread: &Thread, messages: &'a [ChatMessage]) -> Vec<&'a ChatMessage> {
    let by_id: std::collections::HashMap<&MessageId, &ChatMessage> =
        messages.iter().map(|m| (&m.id, m)).collect();
    let mut branch = Vec::new();
    let mut at = thread.active_leaf_id.as_ref();
    while let Some(message) = at.and_then(|id| by_id.get(id)) {
        branch.push(*message);
        at = message.place.as_ref().and_then(|p| p.parent_id.as_ref());
        if branch.len() > messages.len() {
            break;
        }
    }
    branch.reverse();
    branch
}

/// The thread as a readable document: its active branch, each message marked with its
/// version when it has others.
fn markdown(thread: &Thread, messages: &[ChatMessage]) -> String {
    let stamp = |m: &ChatMessage| {
        serde_json::to_value(m)
            .ok()
            .and_then(|v| {
                v.get("createdAt")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    let mut out = format!(
        "# {}\n\n_Thread `{}` · created {} · updated {}_\n\n",
        thread.title.as_str(),
        thread.id,
        thread.created_at,
        thread.updated_at
    );
    for message in active_branch(thread, messages) {
        let who = match message.role {
            Role::System => "System",
            Role::User => "User",
            Role::Assistant => "Assistant",
            Role::Tool => "Tool result",
        };
        let note = match message.place.as_ref().map(|p| p.branch) {
            Some(branch) if branch.count > 1 => {
                format!(" (version {} of {})", branch.index + 1, branch.count)
            }
            _ => String::new(),
        };
        out.push_str(&format!("**{who}** · {}{note}\n\n", stamp(message)));
        if !message.content.is_empty() {
            out.push_str(&message.content);
            out.push_str("\n\n");
        }
        for call in message.tool_calls.iter().flatten() {
            out.push_str(&format!(
                "> calls `{}` with `{}`\n\n",
                call.name, call.arguments
            ));
        }
    }
    out
}

fn attachment(response: &mut Response, content_type: &'static str, name: &str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
}

/// Today's date for file names (`yyyy-mm-dd`).
fn today() -> String {
    now().to_string().chars().take(10).collect()
}

/// `GET /api/threads/:id/export?format=json|markdown`.
///
/// # Errors
/// 404 when the thread does not exist for this user.
pub async fn thread(app: &App, user: &UserId, query: &QueryParams) -> Result<Response, ApiError> {
    let id = super::thread_id(query)?;
    let format = format(query, Format::Json, "json")?;
    let (thread, messages) = messages(app, user, &id)
        .await?
        .ok_or(ApiError::ThreadNotFound)?;
    let mut response = match format {
        Format::Json => json!({ "thread": thread, "messages": messages })
            .to_string()
            .into_response(),
        Format::Markdown => markdown(&thread, &messages).into_response(),
    };
    let (kind, ext) = match format {
        Format::Json => ("application/json", "json"),
        Format::Markdown => ("text/markdown; charset=utf-8", "md"),
    };
    attachment(
        &mut response,
        kind,
        &format!("thread-{id}-{}.{ext}", today()),
    );
    Ok(response)
}

/// `GET /api/export?format=ndjson|markdown`: every thread of the user (archived ones too),
/// newest first, one NDJSON line (`{thread, messages}`) or one Markdown section each,
/// written as they are read.
///
/// # Errors
/// 400 for an unknown format.
pub async fn all(app: &App, user: &UserId, query: &QueryParams) -> Result<Response, ApiError> {
    let format = format(query, Format::Json, "ndjson")?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(BUFFERED);
    let app = app.clone();
    let user = user.clone();
    tokio::spawn(async move {
        let filter = ThreadFilter {
            archived: ArchivedFilter::Include,
            ..ThreadFilter::default()
        };
        let mut cursor = None;
        loop {
            let page = match app
                .store()
                .list_filtered(&user, &filter, PAGE, cursor)
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
                    return;
                }
            };
            for listed in &page.threads {
                let read = match messages(&app, &user, &listed.id).await {
                    Ok(Some(read)) => read,
                    // Deleted since it was listed.
                    Ok(None) => continue,
                    Err(err) => {
                        let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
                        return;
                    }
                };
                let chunk = match format {
                    Format::Json => {
                        let mut line = json!({ "thread": read.0, "messages": read.1 }).to_string();
                        line.push('\n');
                        line
                    }
                    Format::Markdown => format!("{}\n---\n\n", markdown(&read.0, &read.1)),
                };
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    });
    let body = Body::from_stream(ReceiverStream::new(rx));
    let mut response = Response::new(body);
    let (kind, ext) = match format {
        Format::Json => ("application/x-ndjson", "ndjson"),
        Format::Markdown => ("text/markdown; charset=utf-8", "md"),
    };
    attachment(
        &mut response,
        kind,
        &format!("buddahbot-export-{}.{ext}", today()),
    );
    Ok(response)
}
