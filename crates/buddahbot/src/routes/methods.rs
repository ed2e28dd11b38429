//! The methods each route of a many-route function answers.
//!
//! `api/threads.rs`, `api/threads/[id].rs`, `api/responses.rs` and `api/conversations.rs`
//! each serve several routes, told apart by the query `vercel.json`'s rewrites (and the dev
//! server) add: `/api/search` is `/api/threads?view=search`, `/api/threads/:id/share` is
//! `/api/threads/:id?action=share`. A function's method router dispatches on the method
//! alone, so without this check a method that only the function's main route takes would
//! reach it from any of its routes: `DELETE /api/search` deleted every thread, `POST
//! /api/export` made one, `PATCH /api/threads/:id/share` renamed the thread. [`check`] answers
//! `405` (with the route's own `allow`) for a method the route does not take and `404` for a
//! route the function does not have, before any handler runs.

use axum::{
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{error::ApiError, http::QueryParams};

/// The methods the route a request's query names takes (`"GET, HEAD, POST"`), or `None` when
/// it names no route of the function.
pub type SubRoutes = fn(&QueryParams) -> Option<&'static str>;

/// `api/threads.rs`: `/api/threads`, and the routes rewritten to it.
pub fn threads(query: &QueryParams) -> Option<&'static str> {
    if let Some(view) = query.get("view") {
        // `/api/feedback`, `/api/export`, `/api/search`.
        return matches!(view, "feedback" | "export" | "search").then_some("GET, HEAD");
    }
    match query.get("action") {
        None => Some("GET, HEAD, POST, DELETE"),
        // `/api/import`, `/api/shared/:token/copy`.
        Some("import" | "copy") => Some("POST"),
        Some(_) => None,
    }
}

/// `api/threads/[id].rs`: `/api/threads/:id` and its actions.
pub fn thread(query: &QueryParams) -> Option<&'static str> {
    match query.get("action") {
        None => Some("GET, HEAD, PATCH, DELETE"),
        Some("title" | "fork") => Some("POST"),
        Some("share") => Some("POST, DELETE"),
        Some("export" | "attachments") => Some("GET, HEAD"),
        Some("messages") if query.get("sub") == Some("feedback") => Some("PUT, DELETE"),
        Some(_) => None,
    }
}

/// `api/responses.rs`: `/api/responses`, `…/:id`, `…/:id/input_items`, `…/:id/cancel`.
pub fn responses(query: &QueryParams) -> Option<&'static str> {
    if query.get("item").is_some() {
        return None;
    }
    match (query.get("id"), query.get("action")) {
        (None, None) => Some("POST"),
        (Some(_), None) => Some("GET, HEAD, DELETE"),
        (Some(_), Some("input_items")) => Some("GET, HEAD"),
        (Some(_), Some("cancel")) => Some("POST"),
        _ => None,
    }
}

/// `api/conversations.rs`: `/api/conversations`, `…/:id`, `…/:id/items`, `…/:id/items/:item`.
pub fn conversations(query: &QueryParams) -> Option<&'static str> {
    if query.get("sub").is_some() {
        return None;
    }
    match (query.get("id"), query.get("action"), query.get("item")) {
        (None, None, None) => Some("GET, HEAD, POST"),
        (Some(_), None, None) => Some("GET, HEAD, POST, DELETE"),
        (Some(_), Some("items"), None) => Some("GET, HEAD, POST"),
        (Some(_), Some("items"), Some(_)) => Some("GET, HEAD, DELETE"),
        _ => None,
    }
}

/// Refuses a request whose route (`routes` of its query) does not take its method.
pub async fn check(State(routes): State<SubRoutes>, request: Request, next: Next) -> Response {
    let query = QueryParams::parse(request.uri().query());
    let Some(allow) = routes(&query) else {
        return ApiError::RouteNotFound.into_response();
    };
    let method = request.method();
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    if !allow.split(", ").any(|m| m == method) {
        return ApiError::MethodNotAllowed { allow }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(routes: SubRoutes, query: &str) -> Option<&'static str> {
        routes(&QueryParams::parse(Some(query)))
    }

    #[test]
    fn each_route_of_a_function_takes_its_own_methods() {
        assert_eq!(allow(threads, ""), Some("GET, HEAD, POST, DELETE"));
        assert_eq!(allow(threads, "view=search"), Some("GET, HEAD"));
        assert_eq!(allow(threads, "action=import"), Some("POST"));
        assert_eq!(allow(threads, "view=nothing"), None);
        assert_eq!(allow(thread, "id=t"), Some("GET, HEAD, PATCH, DELETE"));
        assert_eq!(allow(thread, "id=t&action=share"), Some("POST, DELETE"));
        assert_eq!(
            allow(thread, "id=t&action=messages&item=m&sub=feedback"),
            Some("PUT, DELETE")
        );
        assert_eq!(allow(thread, "id=t&action=messages&item=m"), None);
        assert_eq!(allow(responses, ""), Some("POST"));
        assert_eq!(allow(responses, "id=r&action=cancel"), Some("POST"));
        assert_eq!(allow(responses, "id=r&action=other"), None);
        assert_eq!(
            allow(conversations, "id=c&action=items&item=i"),
            Some("GET, HEAD, DELETE")
        );
        assert_eq!(allow(conversations, "action=items"), None);
    }
}
