//! Feedback on replies: `PUT` / `DELETE /api/threads/:id/messages/:messageId/feedback`
//! (the thread function, `?action=messages&item=<messageId>&sub=feedback`) and
//! `GET /api/feedback` (the threads function, `?view=feedback`).

use axum::{Json, extract::State, response::IntoResponse, response::Response};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    app::App,
    domain::{Feedback, MAX_FEEDBACK_COMMENT, MessageId, Rating, ThreadId, now},
    error::ApiError,
    http::{QueryParams, guard::Authenticated, page_limit},
    store::FeedbackSet,
};

#[derive(Debug, Deserialize)]
struct FeedbackBody {
    rating: Option<Value>,
    #[serde(default)]
    comment: Option<Value>,
}

/// The reply a feedback path names.
fn target(query: &QueryParams) -> Result<(ThreadId, MessageId), ApiError> {
    if query.get("action") != Some("messages") || query.get_once("sub") != Some("feedback") {
        return Err(ApiError::RouteNotFound);
    }
    let thread = super::thread_id(query)?;
    let message = query
        .get("item")
        .and_then(|raw| MessageId::parse(raw).ok())
        .ok_or(ApiError::NotFound("message"))?;
    Ok((thread, message))
}

/// Checks a feedback body: `rating` `up` or `down`, `comment` a string of at most 2,000
/// characters.
fn parse(body: &[u8]) -> Result<Feedback, ApiError> {
    let body: FeedbackBody =
        serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let rating = match body.rating.as_ref().and_then(Value::as_str) {
        Some("up") => Rating::Up,
        Some("down") => Rating::Down,
        _ => {
            return Err(ApiError::InvalidBody(
                "`rating` must be `up` or `down`".to_owned(),
            ));
        }
    };
    let comment = match body.comment {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() <= MAX_FEEDBACK_COMMENT => {
            Some(text).filter(|t| !t.trim().is_empty())
        }
        Some(_) => {
            return Err(ApiError::InvalidBody(format!(
                "`comment` must be a string of at most {MAX_FEEDBACK_COMMENT} characters"
            )));
        }
    };
    Ok(Feedback {
        rating,
        comment,
        updated_at: now(),
    })
}

/// `PUT` (set) and `DELETE` (clear) on a reply's feedback: the message, as stored.
pub async fn write(
    app: &App,
    user: &crate::domain::UserId,
    query: &QueryParams,
    body: Option<&[u8]>,
) -> Result<Response, ApiError> {
    let (thread, message) = target(query)?;
    let feedback = body.map(parse).transpose()?;
    match app
        .store()
        .set_feedback(user, &thread, &message, feedback)
        .await?
    {
        FeedbackSet::Done(message) => Ok(Json(message).into_response()),
        FeedbackSet::ThreadNotFound => Err(ApiError::ThreadNotFound),
        FeedbackSet::MessageNotFound => Err(ApiError::NotFound("message")),
        FeedbackSet::NotAReply => Err(ApiError::InvalidBody(
            "feedback is for the assistant's replies, not this message".to_owned(),
        )),
    }
}

/// `GET /api/feedback?limit&cursor`: the user's own feedback, newest first.
pub async fn list(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let limit = page_limit(query.get("limit"), 20)?;
    let cursor = match query.get("cursor") {
        None => None,
        Some(raw) => Some(decode_cursor(raw).ok_or_else(|| ApiError::InvalidParam {
            name: "cursor",
            reason: "is not a cursor this API gave".to_owned(),
        })?),
    };
    let (entries, next) = app.store().list_feedback(&user, limit, cursor).await?;
    Ok(Json(json!({
        "feedback": entries,
        "nextCursor": next.map(|(score, key)| URL_SAFE_NO_PAD.encode(format!("{score}\n{key}"))),
    }))
    .into_response())
}

fn decode_cursor(raw: &str) -> Option<(i64, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (score, key) = text.split_once('\n')?;
    Some((score.parse().ok()?, key.to_owned()))
}
