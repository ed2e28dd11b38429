//! The web app as the dev server serves it: the files of `public/` at `/` (the page with its
//! Content-Security-Policy), the API beside them, and the dev-only "sign in as a local user".
//!
//! On Vercel, `public/` is published as static files and `vercel.json` sets the same policy;
//! the sign-in route exists only here: no function under `api/` mounts [`dev_site`], so a
//! deployment can never hand out sessions for a typed user id.

use std::path::PathBuf;

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::json;
use tower_http::services::ServeDir;

use crate::{
    app::App,
    auth::{AuthError, authjs::AuthJs, authjs::SESSION_COOKIE},
    domain::UserId,
    error::ApiError,
    http::AppJson,
};

/// The page's Content-Security-Policy: its own scripts and styles only (no inline script, no
/// `eval`), images from itself and from `data:`/`blob:` URLs (attachments), requests to its
/// own origin. A model's Markdown image pointing elsewhere stays unloaded, so a reply cannot
/// send the conversation to another site through an image URL. `vercel.json` must set the same
/// value (a test compares them).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How long a dev session lasts.
pub const DEV_SESSION_TTL_SECS: u64 = 24 * 3600;

/// The dev server's router: [`super::local`] (every API route), `GET|POST|DELETE
/// /dev/session` (the local sign-in), and the files of `public_dir` for every other path.
pub fn dev_site(app: App, public_dir: PathBuf) -> Router {
    let api = super::local(app.clone()).into_service();
    let files = Router::new()
        .fallback_service(ServeDir::new(public_dir).append_index_html_on_directories(true))
        .layer(middleware::from_fn(page_headers));
    Router::new()
        .route_service("/api", api.clone())
        .route_service("/api/{*rest}", api)
        .route(
            "/dev/session",
            get(dev_available).post(sign_in).delete(sign_out),
        )
        .with_state(app)
        .fallback_service(files)
}

/// A session token (the value of the Auth.js cookie) for `user`, valid
/// [`DEV_SESSION_TTL_SECS`]: what `dev token <user> --authjs` prints and the dev sign-in sets.
///
/// # Errors
/// The errors of [`AuthJs::encode`] (no secret, or no random source).
pub fn dev_session(authjs: &AuthJs, user: &UserId) -> Result<String, AuthError> {
    let exp = jiff::Timestamp::now()
        .as_second()
        .saturating_add(DEV_SESSION_TTL_SECS as i64);
    authjs.encode(&json!({ "sub": user.as_str(), "exp": exp }), SESSION_COOKIE)
}

/// The app asks this to know whether to offer the local sign-in (elsewhere it is a 404).
async fn dev_available() -> Json<serde_json::Value> {
    Json(json!({ "devSignIn": true }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignIn {
    user_id: String,
}

/// `POST /dev/session {userId}`: sets the Auth.js session cookie for that user, as a Next.js
/// frontend on the same site would, so the app runs on the cookie path. A JSON body is
/// required, which another site's page cannot send without a CORS preflight (refused here).
async fn sign_in(State(app): State<App>, AppJson(body): AppJson<SignIn>) -> Response {
    let user = match UserId::parse(body.user_id.trim()) {
        Ok(user) => user,
        Err(err) => {
            return ApiError::InvalidBody(format!("`userId` is not a valid user id: {err}"))
                .into_response();
        }
    };
    let token = match dev_session(app.authenticator().authjs(), &user) {
        Ok(token) => token,
        Err(err) => return ApiError::Unauthorized(err).into_response(),
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={DEV_SESSION_TTL_SECS}"
    );
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "userId": user.as_str() })),
    )
        .into_response()
}

/// `DELETE /dev/session`: the cookie is cleared.
async fn sign_out() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

/// The headers of the app's files: the policy on the page, no sniffing, no referrer (a shared
/// link's token is in the fragment, which is never sent, but links from replies go elsewhere),
/// and revalidation on every load, so an edit shows on reload.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
