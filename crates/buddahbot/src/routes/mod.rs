//! One router per Vercel function, and the local router that mounts them all on one port.
//!
//! A function router answers whatever path it is given (Vercel already picked the function
//! from the path), dispatching on the method alone. [`local`] does the platform's routing for
//! the dev server and tests, including passing `/api/threads/:id`'s segment as `?id=`.

mod chat;
mod thread;
mod threads;

use std::sync::Arc;

use axum::{
    Router,
    extract::Request,
    http::Uri,
    middleware,
    routing::{MethodRouter, get, post},
};
use tower_http::trace::TraceLayer;

use crate::{app::App, config::ConfigError, error::ApiError, error::log_errors};

/// `api/threads.rs`: `GET/POST/DELETE /api/threads`.
pub fn threads(app: App) -> Router {
    function(
        app,
        get(threads::list)
            .post(threads::create)
            .delete(threads::delete_all),
        "GET, HEAD, POST, DELETE",
    )
}

/// `api/threads/[id].rs`: `GET/PATCH/DELETE /api/threads/:id`, the id in `?id=`.
pub fn thread(app: App) -> Router {
    function(
        app,
        get(thread::get)
            .patch(thread::rename)
            .delete(thread::delete),
        "GET, HEAD, PATCH, DELETE",
    )
}

/// `api/chat.rs`: `POST /api/chat` (and `/api/chat/completions`).
pub fn chat(app: App) -> Router {
    function(app, post(chat::post), "POST")
}

/// What a function serves when its configuration is invalid: every request gets the 500
/// `config_error` JSON naming the offending variables, so the problem shows in the browser
/// and in the logs instead of as a crash loop.
pub fn config_error(err: ConfigError) -> Router {
    let err = Arc::new(err);
    Router::new()
        .fallback(move || {
            let err = Arc::clone(&err);
            async move { ApiError::Config(err) }
        })
        .layer(middleware::from_fn(log_errors))
}

/// Every function on one port, routed the way `vercel.json` and the platform route them.
///
/// Each function router is mounted whole (as a service, so it sees the full original URI, as
/// on Vercel) rather than nested, which would strip the path.
pub fn local(app: App) -> Router {
    Router::new()
        .route_service("/api/threads", threads(app.clone()).into_service())
        .route_service(
            "/api/threads/{id}",
            thread(app.clone())
                .layer(middleware::map_request(segment_as_id_param))
                .into_service(),
        )
        .route_service("/api/chat", chat(app.clone()).into_service())
        .route_service("/api/chat/completions", chat(app).into_service())
        .fallback(|| async { ApiError::RouteNotFound })
        .layer(middleware::from_fn(log_errors))
}

fn function(app: App, methods: MethodRouter<App>, allow: &'static str) -> Router {
    let methods = methods.fallback(move || async move { ApiError::MethodNotAllowed { allow } });
    Router::new()
        .fallback_service(methods.with_state(app))
        .layer(middleware::from_fn(log_errors))
        // Failures are logged once, by `log_errors`, with their cause.
        .layer(TraceLayer::new_for_http().on_failure(()))
}

/// Does what Vercel does for `api/threads/[id].rs`: the last path segment is appended to the
/// query as `id`, and the function sees the original path plus `?id=`.
async fn segment_as_id_param(mut request: Request) -> Request {
    let uri = request.uri();
    let segment = uri.path().rsplit('/').next().unwrap_or_default();
    let query = match uri.query() {
        Some(q) if !q.is_empty() => format!("{q}&id={segment}"),
        _ => format!("id={segment}"),
    };
    let path_and_query = format!("{}?{query}", uri.path());
    if let Ok(new_uri) = Uri::builder().path_and_query(path_and_query).build() {
        *request.uri_mut() = new_uri;
    }
    request
}
