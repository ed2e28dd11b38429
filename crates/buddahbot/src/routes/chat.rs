//! `POST /api/chat` and its OpenAI-SDK alias `/api/chat/completions`; resuming and stopping
//! a thread's generation (`GET /api/chat/:threadId/stream`, `POST /api/chat/:threadId/stop`,
//! the id in `?id=`).

use axum::{
    Extension, Json,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    app::App,
    background::Background,
    chat::{
        self, ChatBody, Dialect, TurnRequest,
        resume::{self, StopRequest},
    },
    error::ApiError,
    http::{AppJson, QueryParams, guard::Authenticated, headers as http_headers, optional_param},
    store::{EventId, LimitSet},
};

pub async fn post(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    background: Option<Extension<Background>>,
    uri: Uri,
    headers: HeaderMap,
    AppJson(body): AppJson<ChatBody>,
) -> Result<Response, ApiError> {
    let dialect = if uri.path().ends_with("/completions") {
        Dialect::OpenAi
    } else {
        Dialect::Native
    };
    // Checked here, whatever the body holds, so a bad header is never silently ignored.
    let header_thread = match headers.get(http_headers::THREAD_ID) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|raw| crate::domain::ThreadId::parse(raw).is_ok())
                .ok_or_else(|| ApiError::InvalidHeader {
                    name: "x-thread-id",
                    reason: "must be a thread id: 1 to 64 of A-Z, a-z, 0-9, `_` and `-`".to_owned(),
                })?,
        ),
    };
    let request = TurnRequest::parse(body, header_thread, dialect, app.config())?;
    let background = background.map(|Extension(b)| b).unwrap_or_default();
    let limits = LimitSet::for_chat_turn(&app.config().limits);
    chat::run(&app, user, request, &limits, background).await
}

/// `GET /api/chat/:threadId/stream`: the running (or just ended) generation from its first
/// event, or from after `Last-Event-ID` / `?after=`; 204 when there is none.
pub async fn resume(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // An unknown thread is "nothing to resume": `useChat({resume: true})` asks on mount,
    // also for a chat that has not started yet.
    let Ok(thread) = super::thread_id(&query) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut after = optional_param(&query, "after", str::parse::<EventId>)?;
    if after.is_none()
        && let Some(raw) = headers.get(http_headers::LAST_EVENT_ID)
    {
        after = Some(
            raw.to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ApiError::InvalidBody(
                        "the `Last-Event-ID` header must be an event id this API sent".to_owned(),
                    )
                })?,
        );
    }
    Ok(resume::resume(&app, user, thread, after)
        .await?
        .unwrap_or_else(|| StatusCode::NO_CONTENT.into_response()))
}

/// `POST /api/chat/:threadId/stop`: asks the thread's generation to stop, wherever it runs.
/// 202 while it stops (its partial reply is stored, its stream ends); 200 when nothing was
/// generating.
pub async fn stop(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let thread = super::thread_id(&query)?;
    Ok(match app.store().request_stop(&user, &thread).await? {
        StopRequest::ThreadNotFound => return Err(ApiError::ThreadNotFound),
        StopRequest::NotStreamed => return Err(ApiError::NotStoppable),
        StopRequest::Idle => (
            StatusCode::OK,
            Json(json!({ "threadId": thread.as_str(), "status": "idle" })),
        )
            .into_response(),
        StopRequest::Stopping(reply) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "threadId": thread.as_str(),
                "messageId": reply.as_str(),
                "status": "stopping",
            })),
        )
            .into_response(),
    })
}
