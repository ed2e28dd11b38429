//! `GET /api/search?q=…&limit=&cursor=&archived=`: the user's thread titles and messages
//! matching a query, newest first (served by `api/threads.rs` as `?view=search`).

use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::{
    app::App,
    domain::{MessageId, Role, ThreadId, UserId, iso_millis},
    error::ApiError,
    http::{AppJson, QueryParams, optional_param, page_limit},
    search::Query,
    store::{SearchCursor, SearchHit, SearchRequest},
};

/// Results per page when the client does not say.
pub const DEFAULT_SEARCH_LIMIT: usize = 20;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Results<'a> {
    results: Vec<Found<'a>>,
    next_cursor: Option<String>,
}

/// One match; `messageId` and `role` are `null` when the thread's title matched.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Found<'a> {
    thread_id: &'a ThreadId,
    thread_title: &'a str,
    message_id: Option<&'a MessageId>,
    role: Option<Role>,
    #[serde(serialize_with = "iso_millis::serialize")]
    created_at: jiff::Timestamp,
    snippet: &'a str,
    highlights: &'a [[usize; 2]],
}

impl<'a> From<&'a SearchHit> for Found<'a> {
    fn from(hit: &'a SearchHit) -> Self {
        Self {
            thread_id: &hit.thread_id,
            thread_title: &hit.thread_title,
            message_id: hit.message.as_ref().map(|(id, _)| id),
            role: hit.message.as_ref().map(|(_, role)| *role),
            created_at: hit.created_at,
            snippet: &hit.snippet.snippet,
            highlights: &hit.snippet.highlights,
        }
    }
}

pub async fn search(app: &App, user: &UserId, query: &QueryParams) -> Result<Response, ApiError> {
    let q = query.get("q").ok_or_else(|| ApiError::InvalidParam {
        name: "q",
        reason: "is required".to_owned(),
    })?;
    let parsed = Query::parse(q).map_err(|e| ApiError::InvalidParam {
        name: "q",
        reason: e.to_string(),
    })?;
    let request = SearchRequest {
        query: &parsed,
        limit: page_limit(query.get("limit"), DEFAULT_SEARCH_LIMIT)?,
        after: optional_param(query, "cursor", SearchCursor::parse)?,
        archived: super::organize::archived(query)?,
    };
    let page = app.store().search(user, &request).await?;
    Ok(AppJson(Results {
        results: page.hits.iter().map(Found::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    })
    .into_response())
}
