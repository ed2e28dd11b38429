//! The edge error: every failure a request can meet, mapped once to a status, a stable code and
//! a public message, and rendered as the single JSON shape
//! `{"error": {"code": "<snake_case>", "message": "<human sentence>"}}`.
//!
//! Internal causes never reach the response body of a 5xx; they travel in the response
//! extensions to [`log_errors`], the only place errors are logged.

use std::sync::Arc;

use axum::{
    Json,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{
    auth::AuthError,
    config::ConfigError,
    domain::MessageId,
    http::headers::{MESSAGE_ID, ceil_secs, set_refusal_headers},
    store::{RateDecision, StoreError},
    upstream::{TimeoutKind, UpstreamError},
};

/// Seconds a client should wait before retrying after a 503 from the store.
pub const STORE_RETRY_AFTER_SECS: u32 = 1;

/// Everything that can end a request early.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is JSON but not the shape the endpoint takes.
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// The body is not JSON at all.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The conversation does not fit the model's context window, and may not be cut to fit
    /// (its newest message alone is too large, or the request asked for no truncation).
    #[error("context length exceeded: {0}")]
    ContextLengthExceeded(String),
    /// A query parameter is missing or malformed.
    #[error("invalid query parameter `{name}`: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    /// A request header that is present but unusable (named, lower case).
    #[error("invalid header `{name}`: {reason}")]
    InvalidHeader { name: &'static str, reason: String },
    #[error("authentication failed")]
    Unauthorized(#[from] AuthError),
    /// The thread does not exist for this user (it may exist for another: same answer).
    #[error("thread not found")]
    ThreadNotFound,
    /// A response, conversation or item that does not exist for this user.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("thread id already in use")]
    ThreadExists,
    /// Another thread of the user has this external id.
    #[error("external id already in use")]
    ExternalIdTaken,
    /// A cookie-authenticated request that changes state came from a foreign origin.
    #[error("cross-site request refused")]
    CsrfRejected,
    #[error("rate limit reached")]
    RateLimited(RateDecision),
    /// The same turn (same user message id) is being answered by another request.
    #[error("a reply to this message is being generated")]
    GenerationInProgress { reply_id: MessageId },
    /// A stop for a generation whose reply is not streamed.
    #[error("a reply that is not streamed cannot be stopped")]
    NotStoppable,
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("content type is not `application/json`")]
    UnsupportedMediaType,
    /// The request body stopped arriving (a server of our own: `REQUEST_BODY_TIMEOUT_MS`).
    #[error("the request body stalled")]
    RequestTimeout,
    #[error("store operation failed")]
    Store(#[from] StoreError),
    #[error("model api failed")]
    Upstream(#[from] UpstreamError),
    #[error("configuration is invalid")]
    Config(#[source] Arc<ConfigError>),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidBody(_)
            | Self::InvalidJson(_)
            | Self::InvalidParam { .. }
            | Self::InvalidHeader { .. }
            | Self::ContextLengthExceeded(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::CsrfRejected => StatusCode::FORBIDDEN,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ThreadNotFound | Self::NotFound(_) | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::ThreadExists
            | Self::ExternalIdTaken
            | Self::GenerationInProgress { .. }
            | Self::NotStoppable => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Upstream(e) if e.is_rate_limit() => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream(UpstreamError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidBody(_) => "invalid_body",
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidParam { .. } => "invalid_param",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::ContextLengthExceeded(_) => "context_length_exceeded",
            Self::Unauthorized(_) => "unauthorized",
            Self::CsrfRejected => "csrf_rejected",
            Self::RateLimited(_) => "rate_limited",
            Self::ThreadNotFound => "thread_not_found",
            Self::NotFound(_) => "not_found",
            Self::ThreadExists => "thread_exists",
            Self::ExternalIdTaken => "external_id_taken",
            Self::GenerationInProgress { .. } => "generation_in_progress",
            Self::NotStoppable => "not_stoppable",
            Self::RouteNotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RequestTimeout => "request_timeout",
            Self::Store(StoreError::Unavailable(_)) => "store_unavailable",
            Self::Store(_) => "internal_error",
            Self::Config(_) => "config_error",
            Self::Upstream(e) if e.is_rate_limit() => "upstream_rate_limited",
            Self::Upstream(UpstreamError::Timeout(_)) => "upstream_timeout",
            Self::Upstream(_) => "upstream_error",
        }
    }

    /// The sentence the client sees. For 5xx it never includes the cause (except the names of
    /// misconfigured variables, which an operator needs and which are not secret).
    pub fn public_message(&self) -> String {
        match self {
            Self::InvalidBody(detail) => format!("The request body is invalid: {detail}."),
            Self::InvalidJson(detail) => format!("The request body is not valid JSON: {detail}."),
            Self::ContextLengthExceeded(detail) => {
                format!("The conversation does not fit the model's context window: {detail}.")
            }
            Self::InvalidParam { name, reason } => {
                format!("The query parameter `{name}` is invalid: {reason}.")
            }
            Self::InvalidHeader { name, reason } => {
                format!("The header `{name}` is invalid: {reason}.")
            }
            Self::Unauthorized(AuthError::Missing) => {
                "Authentication is required: send `Authorization: Bearer <token>`.".to_owned()
            }
            Self::Unauthorized(AuthError::Expired) => "The token has expired.".to_owned(),
            Self::Unauthorized(_) => "The credentials are invalid.".to_owned(),
            Self::ThreadNotFound => "No such thread.".to_owned(),
            Self::NotFound(what) => format!("No such {what}."),
            Self::CsrfRejected => {
                "This request must come from the app's own site or an allowed origin.".to_owned()
            }
            Self::RateLimited(decision) => format!(
                "Too many requests; retry in {} s.",
                ceil_secs(decision.retry_after).max(1)
            ),
            Self::ThreadExists => "A thread with this id already exists.".to_owned(),
            Self::ExternalIdTaken => "Another of your threads has this `externalId`.".to_owned(),
            Self::GenerationInProgress { reply_id } => format!(
                "A reply to this message is being generated (message {reply_id}); wait for it."
            ),
            Self::NotStoppable => "This reply is not streamed, so it cannot be stopped; close its \
                 request instead."
                .to_owned(),
            Self::RouteNotFound => "No such route.".to_owned(),
            Self::MethodNotAllowed { allow } => {
                format!("This route does not allow that method; use one of: {allow}.")
            }
            Self::PayloadTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            Self::UnsupportedMediaType => {
                "The request body must be JSON, sent with `content-type: application/json`."
                    .to_owned()
            }
            Self::RequestTimeout => {
                "The request body stopped arriving; send it again, without pauses.".to_owned()
            }
            Self::Store(StoreError::Unavailable(_)) => {
                "The store is temporarily unavailable; retry shortly.".to_owned()
            }
            Self::Store(_) => "Something went wrong on our side.".to_owned(),
            Self::Upstream(e) if e.is_rate_limit() => {
                "The model is rate limited; retry after the time in `retry-after`.".to_owned()
            }
            Self::Upstream(UpstreamError::Timeout(TimeoutKind::FirstToken)) => {
                "The model did not start answering in time.".to_owned()
            }
            Self::Upstream(UpstreamError::Timeout(TimeoutKind::Reply)) => {
                "The model took too long to answer.".to_owned()
            }
            Self::Upstream(_) => "The model is unavailable right now; retry shortly.".to_owned(),
            Self::Config(err) => {
                let names: Vec<&str> = err.problems.iter().map(|p| p.var).collect();
                format!(
                    "The service is misconfigured; check these environment variables: {}.",
                    names.join(", ")
                )
            }
        }
    }

    /// Failures of ours are errors; an outage is a warning (it is retryable and shows in
    /// every request); a client's mistake is only worth a debug line.
    fn is_rate_limit(&self) -> bool {
        matches!(self, Self::Upstream(e) if e.is_rate_limit())
    }

    fn log_level(&self) -> tracing::Level {
        match self {
            Self::Store(StoreError::Unavailable(_)) => tracing::Level::WARN,
            Self::Store(_) | Self::Config(_) => tracing::Level::ERROR,
            // A request the model API refused as malformed is our bug.
            Self::Upstream(UpstreamError::Status { status, .. })
                if status.is_client_error() && *status != StatusCode::TOO_MANY_REQUESTS =>
            {
                tracing::Level::ERROR
            }
            Self::Upstream(_) => tracing::Level::WARN,
            _ => tracing::Level::DEBUG,
        }
    }
}

impl ApiError {
    /// The error in OpenAI's shape, which the OpenAI SDKs raise typed errors from (the
    /// Responses and Conversations routes answer with it):
    /// `{"error": {"message", "type", "param", "code"}}`. `param` is the field a 400 names.
    pub fn openai_body(&self) -> serde_json::Value {
        let status = self.status();
        let kind = match status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::CONFLICT => "conflict_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        let message = self.public_message();
        let param = match self {
            Self::InvalidBody(detail) => detail
                .split('`')
                .nth(1)
                .map(|field| serde_json::Value::from(field.to_owned())),
            Self::InvalidParam { name, .. } | Self::InvalidHeader { name, .. } => {
                Some(serde_json::Value::from(*name))
            }
            _ => None,
        };
        serde_json::json!({ "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": self.code(),
        } })
    }
}

/// Rewrites an error response's body into OpenAI's shape ([`ApiError::openai_body`]),
/// keeping its status and headers; other responses pass untouched. Layered inside
/// [`log_errors`], which then still finds the error to log.
pub async fn openai_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let Some(err) = response.extensions().get::<Arc<ApiError>>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    let body = err.openai_body().to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::RateLimited(decision) => {
                set_refusal_headers(headers, decision);
            }
            Self::Store(StoreError::Unavailable(_)) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(STORE_RETRY_AFTER_SECS),
                );
            }
            Self::Upstream(UpstreamError::Status { retry_after, .. }) if self.is_rate_limit() => {
                let value = retry_after
                    .clone()
                    .unwrap_or_else(|| HeaderValue::from(STORE_RETRY_AFTER_SECS));
                headers.insert(header::RETRY_AFTER, value);
            }
            Self::GenerationInProgress { reply_id } => {
                if let Ok(value) = HeaderValue::from_str(reply_id.as_str()) {
                    headers.insert(MESSAGE_ID, value);
                }
            }
            _ => {}
        }
        response.extensions_mut().insert(Arc::new(self));
        response
    }
}

/// Logs the error a response carries, once, with its cause chain, at a level set by its
/// status.
///
/// The error is taken out of the response as it is logged, so nested routers (the local
/// server mounts the function routers) log it once.
pub async fn log_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = loggable_path(request.uri().path());
    let mut response = next.run(request).await;
    if let Some(err) = response.extensions_mut().remove::<Arc<ApiError>>() {
        let chain = cause_chain(err.as_ref());
        let code = err.code();
        match err.log_level() {
            tracing::Level::ERROR => {
                tracing::error!(%method, %path, code, error = %chain, "request failed");
            }
            tracing::Level::WARN => {
                tracing::warn!(%method, %path, code, error = %chain, "request failed");
            }
            _ => tracing::debug!(%method, %path, code, error = %chain, "request refused"),
        }
    }
    response
}

/// The path as logs may show it: a share link's token is a credential (whoever holds it reads
/// the thread), so it is left out.
fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/api/shared/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, tail)) => format!("/api/shared/:token/{tail}"),
            None => "/api/shared/:token".to_owned(),
        },
        None => path.to_owned(),
    }
}

/// `error: cause: cause…`, for logs only.
fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigProblem;

    #[test]
    fn a_share_token_is_left_out_of_a_logged_path() {
        let cases = [
            ("/api/shared/abc123", "/api/shared/:token"),
            ("/api/shared/abc123/copy", "/api/shared/:token/copy"),
            ("/api/threads/t1", "/api/threads/t1"),
        ];
        for (path, logged) in cases {
            assert_eq!(loggable_path(path), logged, "{path}");
        }
    }

    fn redis_error(kind: std::io::ErrorKind) -> redis::RedisError {
        std::io::Error::from(kind).into()
    }

    #[test]
    fn every_error_maps_to_its_status_and_code() {
        let config = Arc::new(ConfigError {
            problems: vec![ConfigProblem {
                var: "AUTH_SECRET",
                reason: "is required",
            }],
        });
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::InvalidBody("x".into()), 400, "invalid_body"),
            (
                ApiError::ContextLengthExceeded("x".into()),
                400,
                "context_length_exceeded",
            ),
            (ApiError::InvalidJson("x".into()), 400, "invalid_json"),
            (
                ApiError::InvalidParam {
                    name: "limit",
                    reason: "x".into(),
                },
                400,
                "invalid_param",
            ),
            (AuthError::Expired.into(), 401, "unauthorized"),
            (ApiError::ThreadNotFound, 404, "thread_not_found"),
            (ApiError::RouteNotFound, 404, "not_found"),
            (
                ApiError::MethodNotAllowed { allow: "GET" },
                405,
                "method_not_allowed",
            ),
            (ApiError::ThreadExists, 409, "thread_exists"),
            (ApiError::NotStoppable, 409, "not_stoppable"),
            (
                ApiError::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (ApiError::RequestTimeout, 408, "request_timeout"),
            (
                StoreError::from(redis_error(std::io::ErrorKind::ConnectionRefused)).into(),
                503,
                "store_unavailable",
            ),
            (
                StoreError::Corrupt {
                    key: "k".into(),
                    reason: "r".into(),
                }
                .into(),
                500,
                "internal_error",
            ),
            (ApiError::Config(config), 500, "config_error"),
        ];
        for (err, status, code) in cases {
            let label = format!("{err:?}");
            assert_eq!(err.status().as_u16(), status, "{label}");
            assert_eq!(err.code(), code, "{label}");
        }
    }

    #[test]
    fn server_errors_do_not_leak_their_cause() {
        let err = ApiError::Store(StoreError::Corrupt {
            key: "user:{secret-user}:thread:t:meta".into(),
            reason: "bad".into(),
        });
        assert!(!err.public_message().contains("secret-user"));
        let err = ApiError::Store(redis_error(std::io::ErrorKind::TimedOut).into());
        assert!(!err.public_message().to_lowercase().contains("timed out"));
    }
}
