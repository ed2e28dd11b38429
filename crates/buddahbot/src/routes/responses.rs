//! The Responses and Conversations APIs (`/api/responses…`, `/api/conversations…`): thin
//! handlers over [`crate::responses`]. Each API is one function; its path's segments arrive
//! as `?id=`, `?action=` and `?item=` (as `vercel.json`'s rewrites pass them).

use axum::{
    Extension, Json,
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use serde_json::Value;

use crate::{
    app::App,
    background::Background,
    domain::ThreadId,
    error::ApiError,
    http::{QueryParams, RawBody, guard::Authenticated, optional_param},
    responses::{self, ItemPage, request::CreateBody},
    store::LimitSet,
};

/// `POST /api/responses` (create) and `POST /api/responses/{id}/cancel`.
pub async fn post(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    background: Option<Extension<Background>>,
    query: QueryParams,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    match (query.get_once("id"), query.get("action")) {
        (None, None) => {
            let body: CreateBody = serde_json::from_value(json_body(&body)?)
                .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
            let background = background.map(|Extension(b)| b).unwrap_or_default();
            let limits = LimitSet::for_chat_turn(&app.config().limits);
            responses::create(&app, user, body, &limits, background).await
        }
        (Some(id), Some("cancel")) => {
            Ok(Json(responses::cancel(&app, &user, id).await?).into_response())
        }
        _ => Err(ApiError::RouteNotFound),
    }
}

/// `GET /api/responses/{id}` and `GET /api/responses/{id}/input_items`.
pub async fn get(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let id = query.get_once("id").ok_or(ApiError::RouteNotFound)?;
    match query.get("action") {
        None => {
            if query.get("stream").is_some_and(|s| s == "true") {
                let after = optional_param(&query, "starting_after", str::parse::<u64>)?;
                return responses::stream(&app, user, id, after).await;
            }
            Ok(Json(responses::retrieve(&app, &user, id).await?).into_response())
        }
        Some("input_items") => {
            let page = ItemPage::parse(&query, true)?;
            Ok(Json(responses::input_items(&app, &user, id, &page).await?).into_response())
        }
        Some(_) => Err(ApiError::RouteNotFound),
    }
}

/// `DELETE /api/responses/{id}`.
pub async fn delete(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<Response, ApiError> {
    match (query.get_once("id"), query.get("action")) {
        (Some(id), None) => Ok(Json(responses::delete(&app, &user, id).await?).into_response()),
        _ => Err(ApiError::RouteNotFound),
    }
}

/// A JSON body, or `{}` when there is none (a cancel, an empty create).
fn json_body(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// The conversation a path names (any thread id is one); a malformed id names none.
fn conversation(query: &QueryParams) -> Result<ThreadId, ApiError> {
    query
        .get("id")
        .and_then(|raw| ThreadId::parse(raw).ok())
        .ok_or(ApiError::NotFound("conversation"))
}

/// `POST /api/conversations` (create), `…/{id}` (update its metadata) and `…/{id}/items`
/// (add items).
pub async fn post_conversation(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    if query.get_once("id").is_none() {
        return Ok(Json(responses::create_conversation(&app, &user, body).await?).into_response());
    }
    let id = conversation(&query)?;
    let answer = match (query.get("action"), query.get_once("item")) {
        (None, None) => responses::update_conversation(&app, &user, &id, &body).await?,
        (Some("items"), None) => responses::add_items(&app, &user, &id, &body).await?,
        _ => return Err(ApiError::RouteNotFound),
    };
    Ok(Json(answer).into_response())
}

/// `GET /api/conversations` (the user's, newest first), `…/{id}`, `…/{id}/items` and
/// `…/{id}/items/{item}`.
pub async fn get_conversation(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<Response, ApiError> {
    if query.get_once("id").is_none() {
        let page = ItemPage::parse(&query, false)?;
        return Ok(Json(responses::list_conversations(&app, &user, &page).await?).into_response());
    }
    let id = conversation(&query)?;
    let answer = match (query.get("action"), query.get_once("item")) {
        (None, None) => responses::retrieve_conversation(&app, &user, &id).await?,
        (Some("items"), None) => {
            let page = ItemPage::parse(&query, true)?;
            responses::conversation_items(&app, &user, &id, &page).await?
        }
        (Some("items"), Some(item)) => responses::get_item(&app, &user, &id, item).await?,
        _ => return Err(ApiError::RouteNotFound),
    };
    Ok(Json(answer).into_response())
}

/// `DELETE /api/conversations/{id}` (the thread and everything in it) and
/// `…/{id}/items/{item}`.
pub async fn delete_conversation(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let id = conversation(&query)?;
    match (query.get("action"), query.get_once("item")) {
        (None, None) => {}
        (Some("items"), Some(item)) => {
            return Ok(Json(responses::delete_item(&app, &user, &id, item).await?).into_response());
        }
        _ => return Err(ApiError::RouteNotFound),
    }
    if !app.store().delete_thread(&user, &id).await? {
        return Err(ApiError::NotFound("conversation"));
    }
    Ok(
        Json(serde_json::json!({ "id": id, "object": "conversation.deleted", "deleted": true }))
            .into_response(),
    )
}
