//! `GET /api/threads` (list), `POST /api/threads` (create), `DELETE /api/threads` (delete all).

use axum::{Extension, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use crate::{
    app::App,
    background::Background,
    domain::{Thread, ThreadId, Title, now},
    error::ApiError,
    http::{AppJson, OptionalJson, QueryParams, guard::Authenticated, optional_param, page_limit},
    store::{ThreadCursor, Undo},
};

/// Threads per page when the client does not say.
pub const DEFAULT_THREADS_LIMIT: usize = 20;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadList {
    threads: Vec<Thread>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct CreateThread {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    /// `archived`, `pinned`, `tags`, `metadata`, `externalId` ([`super::organize`]).
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

pub async fn list(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if query.get("view") == Some("feedback") {
        return super::feedback::list(State(app), Authenticated(user), query).await;
    }
    if query.get("view") == Some("export") {
        return super::export::all(&app, &user, &query).await;
    }
    if query.get("view") == Some("search") {
        return super::search::search(&app, &user, &query).await;
    }
    let limit = page_limit(query.get("limit"), DEFAULT_THREADS_LIMIT)?;
    let cursor = optional_param(&query, "cursor", ThreadCursor::parse)?;
    let filter = super::organize::filter(&query)?;
    let page = app
        .store()
        .list_filtered(&user, &filter, limit, cursor)
        .await?;
    Ok(AppJson(ThreadList {
        threads: page.threads,
        next_cursor: page.next.map(|c| c.encode()),
    })
    .into_response())
}

pub async fn create(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    background: Option<Extension<Background>>,
    query: QueryParams,
    request: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    use axum::{extract::FromRequest, response::IntoResponse};
    match query.get("action") {
        Some("copy") => {
            let token = query.get_once("token").unwrap_or_default();
            return super::share::copy(&app, &user, token).await;
        }
        Some("import") => return super::import::import(&app, &user, request.into_body()).await,
        _ => {}
    }
    let OptionalJson(body) = OptionalJson::<CreateThread>::from_request(request, &app).await?;
    let body = body.unwrap_or_default();
    let id = body
        .id
        .as_deref()
        .map(ThreadId::parse)
        .transpose()
        .map_err(|e| ApiError::InvalidBody(format!("`id`: {e}; use 1-64 of A-Z a-z 0-9 _ -")))?
        .unwrap_or_default();
    let title = match body.title.as_deref() {
        None => None,
        Some(raw) => {
            Some(Title::parse(raw).map_err(|e| ApiError::InvalidBody(format!("`title`: {e}")))?)
        }
    };
    let organize = super::organize::parse(&body.rest)?;
    let created_at = now();
    // What takes the thread back if this request cannot answer for it.
    let undo = Undo::CreateThread {
        user: user.clone(),
        thread: id.clone(),
        created_at_ms: created_at.as_millisecond(),
        messages: 0,
    };
    let background = background.map(|Extension(b)| b).unwrap_or_default();
    let thread = app
        .store()
        .create_thread_at(&user, id, title, created_at)
        .await
        .inspect_err(|err| {
            if err.outcome_unknown() {
                // Created or not, the 503's retry must find the id free.
                background.spawn(app.store().clone().settle(undo.clone()));
            }
        })?
        .ok_or(ApiError::ThreadExists)?;
    if organize.is_empty() {
        return Ok((StatusCode::CREATED, AppJson(thread)).into_response());
    }
    let thread = super::thread::organized(&app, &user, &thread.id, &organize)
        .await
        .inspect_err(|_| {
            // A thread that cannot take its fields (an external id in use), or whose fields
            // may not have been written (503), is not kept.
            background.spawn(app.store().clone().settle(undo));
        })?;
    Ok((StatusCode::CREATED, AppJson(thread)).into_response())
}

pub async fn delete_all(
    State(app): State<App>,
    Authenticated(user): Authenticated,
) -> Result<StatusCode, ApiError> {
    app.store().delete_all_threads(&user).await?;
    app.store().purge_search(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}
