//! One router per Vercel function, and the local router that mounts them all on one port.
//!
//! A function router answers whatever path it is given (Vercel already picked the function
//! from the path), dispatching on the method alone. [`local`] does the platform's routing for
//! the dev server and tests, including passing `/api/threads/:id`'s segment as `?id=`;
//! [`site::dev_site`] adds the web app's files and the dev-only sign-in around it.

mod chat;
mod export;
mod feedback;
mod health;
mod import;
pub mod methods;
mod models;
mod openapi;
mod organize;
mod responses;
mod search;
mod share;
pub mod site;
mod thread;
mod threads;

use std::sync::Arc;

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, Method, Uri, header},
    middleware,
    routing::{MethodRouter, get, post},
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    trace::TraceLayer,
};

use crate::{
    app::App,
    config::ConfigError,
    error::{ApiError, log_errors, openai_errors},
    http::{
        guard::{Guard, RouteClass, guard},
        headers,
        shared::SharedLayer,
        timing::server_timing,
    },
};

/// How long browsers may cache a preflight answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// `api/threads.rs`: `GET/POST/DELETE /api/threads`.
pub fn threads(app: App) -> Router {
    build(
        app,
        Some(RouteClass::Api),
        get(threads::list)
            .post(threads::create)
            .delete(threads::delete_all),
        "GET, HEAD, POST, DELETE",
        ErrorShape::Ours,
        Some(methods::threads),
    )
}

/// `api/threads/[id].rs`: `GET/PATCH/DELETE /api/threads/:id`, the id in `?id=`, and
/// `POST /api/threads/:id/title` (`?action=title`, by `vercel.json`'s rewrite).
pub fn thread(app: App) -> Router {
    build(
        app,
        Some(RouteClass::Api),
        get(thread::get)
            .patch(thread::rename)
            .post(thread::post_action)
            .put(thread::put_action)
            .delete(thread::delete),
        "GET, HEAD, POST, PUT, PATCH, DELETE",
        ErrorShape::Ours,
        Some(methods::thread),
    )
}

/// `GET /api/feedback`: served by `api/threads.rs` (`vercel.json` rewrites it there with
/// `?view=feedback`); locally a router of its own.
pub fn feedback_list(app: App) -> Router {
    function(app, Some(RouteClass::Api), get(feedback::list), "GET, HEAD")
}

/// `api/chat.rs`: `POST /api/chat` (and `/api/chat/completions`).
pub fn chat(app: App) -> Router {
    function(app, Some(RouteClass::Chat), post(chat::post), "POST")
}

/// `api/chat/[id]/stream.rs`: `GET /api/chat/:threadId/stream`, the id in `?id=`.
pub fn chat_stream(app: App) -> Router {
    function(app, Some(RouteClass::Api), get(chat::resume), "GET, HEAD")
}

/// `api/chat/[id]/stop.rs`: `POST /api/chat/:threadId/stop`, the id in `?id=`.
pub fn chat_stop(app: App) -> Router {
    function(app, Some(RouteClass::Api), post(chat::stop), "POST")
}

/// `api/responses.rs`: the Responses API (`/api/responses`, `/api/responses/{id}`,
/// `…/{id}/input_items`, `…/{id}/cancel`), the segments in `?id=` and `?action=`. Creating
/// a response is a chat turn.
pub fn responses(app: App) -> Router {
    build(
        app,
        Some(RouteClass::Chat),
        get(responses::get)
            .post(responses::post)
            .delete(responses::delete),
        "GET, HEAD, POST, DELETE",
        ErrorShape::OpenAi,
        Some(methods::responses),
    )
}

/// `api/conversations.rs`: the Conversations API (`/api/conversations`, `…/{id}`,
/// `…/{id}/items`), the segments in `?id=`, `?action=` and `?item=`.
pub fn conversations(app: App) -> Router {
    build(
        app,
        Some(RouteClass::Api),
        get(responses::get_conversation)
            .post(responses::post_conversation)
            .delete(responses::delete_conversation),
        "GET, HEAD, POST, DELETE",
        ErrorShape::OpenAi,
        Some(methods::conversations),
    )
}

/// `api/shared.rs`: `GET /api/shared/:token`, public (counted per client address), the
/// token in `?token=`.
pub fn shared(app: App) -> Router {
    function(app, Some(RouteClass::Public), get(share::read), "GET, HEAD")
}

/// `api/models.rs`: `GET /api/models` (and `/api/models/:id`, the id in `?id=`), in OpenAI's
/// shape, errors included: OpenAI SDKs list models with it.
pub fn models(app: App) -> Router {
    openai_function(app, Some(RouteClass::Api), get(models::get), "GET, HEAD")
}

/// `api/health.rs`: `GET /api/health`, unauthenticated (counted per client address).
pub fn health(app: App) -> Router {
    function(app, Some(RouteClass::Public), get(health::get), "GET, HEAD")
}

/// `api/openapi.json.rs`: `GET /api/openapi.json`, the API's OpenAPI document, public.
pub fn openapi(app: App) -> Router {
    function(
        app,
        Some(RouteClass::Public),
        get(openapi::get),
        "GET, HEAD",
    )
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
        .layer(middleware::from_fn(server_timing))
}

/// The thread id of a `…/:id…` route, which arrives as `?id=` (as Vercel passes an `[id]`
/// segment). A malformed id cannot name any thread: 404, like a missing one.
fn thread_id(query: &crate::http::QueryParams) -> Result<crate::domain::ThreadId, ApiError> {
    query
        .get_once("id")
        .and_then(|raw| crate::domain::ThreadId::parse(raw).ok())
        .ok_or(ApiError::ThreadNotFound)
}

/// One route of [`local`]: its path as axum spells it, and the function router serving it,
/// with the platform's rewrite of the path's segments into the query.
struct Mount {
    path: &'static str,
    router: fn(App) -> Router,
}

/// Every route of [`local`], in one table, so the routes a test checks against the OpenAPI
/// document ([`local_paths`]) are the ones served.
const MOUNTS: &[Mount] = &[
    Mount {
        path: "/api/threads",
        router: threads,
    },
    Mount {
        path: "/api/threads/{id}",
        router: |app| thread(app).layer(middleware::map_request(segment_as_id_param)),
    },
    Mount {
        path: "/api/threads/{id}/messages/{item}/feedback",
        router: |app| thread(app).layer(middleware::map_request(segments_as_params)),
    },
    Mount {
        path: "/api/feedback",
        router: feedback_list,
    },
    Mount {
        path: "/api/import",
        router: |app| threads(app).layer(middleware::map_request(import_params)),
    },
    Mount {
        path: "/api/search",
        router: |app| threads(app).layer(middleware::map_request(search_params)),
    },
    Mount {
        path: "/api/export",
        router: |app| threads(app).layer(middleware::map_request(export_params)),
    },
    Mount {
        path: "/api/shared/{token}",
        router: |app| shared(app).layer(middleware::map_request(segment_as_token_param)),
    },
    Mount {
        path: "/api/shared/{token}/copy",
        router: |app| threads(app).layer(middleware::map_request(shared_copy_params)),
    },
    Mount {
        path: "/api/threads/{id}/{action}",
        router: |app| thread(app).layer(middleware::map_request(segments_as_params)),
    },
    Mount {
        path: "/api/health",
        router: health,
    },
    Mount {
        path: "/api/openapi.json",
        router: openapi,
    },
    Mount {
        path: "/api/models",
        router: models,
    },
    Mount {
        path: "/api/models/{id}",
        router: |app| models(app).layer(middleware::map_request(segment_as_id_param)),
    },
    Mount {
        path: "/api/responses",
        router: responses,
    },
    Mount {
        path: "/api/responses/{*rest}",
        router: |app| responses(app).layer(middleware::map_request(segments_as_params)),
    },
    Mount {
        path: "/api/conversations",
        router: conversations,
    },
    Mount {
        path: "/api/conversations/{*rest}",
        router: |app| conversations(app).layer(middleware::map_request(segments_as_params)),
    },
    Mount {
        path: "/api/chat",
        router: chat,
    },
    Mount {
        path: "/api/chat/completions",
        router: chat,
    },
    Mount {
        path: "/api/chat/{id}/stream",
        router: |app| chat_stream(app).layer(middleware::map_request(parent_segment_as_id_param)),
    },
    Mount {
        path: "/api/chat/{id}/stop",
        router: |app| chat_stop(app).layer(middleware::map_request(parent_segment_as_id_param)),
    },
];

/// The paths [`local`] routes, as axum spells them (`/api/threads/{id}`,
/// `/api/responses/{*rest}`): every route of the API.
pub fn local_paths() -> impl Iterator<Item = &'static str> {
    MOUNTS.iter().map(|mount| mount.path)
}

/// Every function on one port, routed the way `vercel.json` and the platform route them.
///
/// Each function router is mounted whole (as a service, so it sees the full original URI, as
/// on Vercel) rather than nested, which would strip the path.
pub fn local(app: App) -> Router {
    MOUNTS
        .iter()
        .fold(Router::new(), |router, mount| {
            router.route_service(mount.path, (mount.router)(app.clone()).into_service())
        })
        .fallback(|| async { ApiError::RouteNotFound })
        .layer((middleware::from_fn(log_errors), SharedLayer))
        .layer((middleware::from_fn(server_timing), SharedLayer))
}

/// A function's router: its methods, behind the guard (authentication, CSRF, rate limits; for
/// a public route, the limit of its client address) when `class` is set, with errors logged once and CORS answered outermost, so that error
/// responses carry CORS headers too (a browser could not read them otherwise).
fn function(
    app: App,
    class: Option<RouteClass>,
    methods: MethodRouter<App>,
    allow: &'static str,
) -> Router {
    build(app, class, methods, allow, ErrorShape::Ours, None)
}

/// [`function`] with the error shape `shape` and, for a function of several routes, the
/// methods each of them takes (checked behind the guard, before the handlers).
fn build(
    app: App,
    class: Option<RouteClass>,
    methods: MethodRouter<App>,
    allow: &'static str,
    shape: ErrorShape,
    sub_routes: Option<methods::SubRoutes>,
) -> Router {
    let mut methods = methods.fallback(move || async move { ApiError::MethodNotAllowed { allow } });
    if let Some(sub_routes) = sub_routes {
        methods = methods.layer((
            middleware::from_fn_with_state(sub_routes, methods::check),
            SharedLayer,
        ));
    }
    let cors = cors(&app.config().http.allowed_origins);
    // Each layer over `SharedLayer`: a request then copies no stack beneath a layer
    // (`http::shared`).
    let mut router = Router::new().fallback_service(methods.with_state(app.clone()));
    if let Some(class) = class {
        router = router.layer((
            middleware::from_fn_with_state(Guard { app, class }, guard),
            SharedLayer,
        ));
    }
    if shape == ErrorShape::OpenAi {
        router = router.layer((middleware::from_fn(openai_errors), SharedLayer));
    }
    router
        .layer((middleware::from_fn(log_errors), SharedLayer))
        // Failures are logged once, by `log_errors`, with their cause.
        .layer((TraceLayer::new_for_http().on_failure(()), SharedLayer))
        .layer((cors, SharedLayer))
        .layer((middleware::from_fn(server_timing), SharedLayer))
}

/// [`function`] for the OpenAI-compatible APIs: errors in OpenAI's shape.
fn openai_function(
    app: App,
    class: Option<RouteClass>,
    methods: MethodRouter<App>,
    allow: &'static str,
) -> Router {
    build(app, class, methods, allow, ErrorShape::OpenAi, None)
}

/// How a function's errors are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ErrorShape {
    /// `{"error": {"code", "message"}}`.
    Ours,
    /// OpenAI's `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
}

/// CORS for the configured origins: credentials allowed (the Auth.js cookie), the headers
/// the API reads, and the ones clients need to see. Other origins get no CORS headers.
fn cors(origins: &[HeaderValue]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            headers::THREAD_ID,
            headers::LAST_EVENT_ID,
        ])
        .expose_headers([
            headers::THREAD_ID,
            headers::MESSAGE_ID,
            header::RETRY_AFTER,
            headers::RATELIMIT_LIMIT,
            headers::RATELIMIT_REMAINING,
            headers::RATELIMIT_RESET,
            headers::SERVER_TIMING,
            headers::CONTEXT_DROPPED_MESSAGES,
            headers::ATTACHMENTS_SKIPPED,
            headers::CACHE,
        ])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// Does what Vercel does for `api/threads/[id].rs`: the last path segment is appended to the
/// query as `id`, and the function sees the original path plus `?id=`.
async fn segment_as_id_param(request: Request) -> Request {
    with_id_param(request, 0)
}

/// `/api/<api>/<id>[/<action>[/<item>[/<sub>]]]` → `?id=&action=&item=&sub=`, as `vercel.json`'s
/// rewrites pass them to the API's one function.
async fn segments_as_params(mut request: Request) -> Request {
    let uri = request.uri();
    let mut segments = uri.path().trim_start_matches('/').split('/').skip(2);
    let mut params = Vec::new();
    for name in ["id", "action", "item", "sub"] {
        if let Some(segment) = segments.next().filter(|s| !s.is_empty()) {
            params.push(format!("{name}={}", as_query_value(segment)));
        }
    }
    let mut query = params.join("&");
    if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
        query = format!("{q}&{query}");
    }
    let path_and_query = format!("{}?{query}", uri.path());
    if let Ok(new_uri) = Uri::builder().path_and_query(path_and_query).build() {
        *request.uri_mut() = new_uri;
    }
    request
}

/// `/api/export` → `/api/threads`'s `?view=export`, as `vercel.json`'s rewrite passes it.
async fn export_params(request: Request) -> Request {
    with_query(request, "view=export")
}

/// `/api/search` → `/api/threads`'s `?view=search`, as `vercel.json`'s rewrite passes it.
async fn search_params(request: Request) -> Request {
    with_query(request, "view=search")
}

/// `/api/import` → `/api/threads`'s `?action=import`, as `vercel.json`'s rewrite passes it.
async fn import_params(request: Request) -> Request {
    with_query(request, "action=import")
}

/// Adds the fixed parameters `fixed` to the request's query, after the client's own (the
/// last of a repeated name wins, so the client cannot override them).
fn with_query(mut request: Request, fixed: &str) -> Request {
    let query = match request.uri().query().filter(|q| !q.is_empty()) {
        Some(q) => format!("{q}&{fixed}"),
        None => fixed.to_owned(),
    };
    if let Ok(uri) = Uri::builder()
        .path_and_query(format!("{}?{query}", request.uri().path()))
        .build()
    {
        *request.uri_mut() = uri;
    }
    request
}

/// `/api/shared/:token` → `?token=`, as `vercel.json`'s rewrite passes it.
async fn segment_as_token_param(request: Request) -> Request {
    with_param(request, "token", 0, "")
}

/// `/api/shared/:token/copy` → `/api/threads`'s `?action=copy&token=`.
async fn shared_copy_params(request: Request) -> Request {
    with_param(request, "token", 1, "action=copy")
}

/// Adds the path segment `from_end` places before the last as the `name` query parameter,
/// with `extra` parameters.
fn with_param(mut request: Request, name: &str, from_end: usize, extra: &str) -> Request {
    let uri = request.uri();
    let segment = uri.path().rsplit('/').nth(from_end).unwrap_or_default();
    let mut query = format!("{name}={}", as_query_value(segment));
    if !extra.is_empty() {
        query = format!("{query}&{extra}");
    }
    if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
        query = format!("{q}&{query}");
    }
    let path_and_query = format!("{}?{query}", uri.path());
    if let Ok(new_uri) = Uri::builder().path_and_query(path_and_query).build() {
        *request.uri_mut() = new_uri;
    }
    request
}

/// `/api/chat/:id/stream` → `?id=`, as Vercel passes an `[id]` directory's segment.
async fn parent_segment_as_id_param(request: Request) -> Request {
    with_id_param(request, 1)
}

/// A path segment (percent-encoded as it came) as a query value that decodes to the same
/// text: what separates or changes query values (`&`, `=`, `+`, `#`) is escaped, so a
/// segment is one value however it is spelled (`bogus&id=t1` is an id of its own, and
/// invalid), and it is percent-decoded once, when the query is read.
fn as_query_value(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for c in segment.chars() {
        match c {
            '&' => out.push_str("%26"),
            '=' => out.push_str("%3D"),
            '+' => out.push_str("%2B"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Adds the path segment `from_end` places before the last as the `id` query parameter.
fn with_id_param(mut request: Request, from_end: usize) -> Request {
    let uri = request.uri();
    let segment = as_query_value(uri.path().rsplit('/').nth(from_end).unwrap_or_default());
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
