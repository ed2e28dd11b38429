//! Who is calling: [`authenticate`] turns `Authorization: Bearer <token>` (an HS256 JWT, or an
//! Auth.js session JWE as Auth.js's own `getToken` accepts it) or the Auth.js session cookie
//! into a verified [`UserId`]. The guard middleware calls it; handlers take the result through
//! the [`Authenticated`] extractor.
//!
//! Only the token's `sub` becomes a user id, and only after [`UserId::parse`]; nothing else
//! in the request can name a user. This module does not know about Redis or routes.

pub mod authjs;
pub mod jwt;

use axum::{
    extract::FromRequestParts,
    http::{
        HeaderMap,
        header::{AUTHORIZATION, COOKIE},
        request::Parts,
    },
};

use crate::{app::App, domain::IdError, domain::UserId, error::ApiError};

/// Why a request's credentials were refused. Every variant is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("`authorization` is not a bearer token")]
    NotBearer,
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not allowed")]
    BadAlgorithm,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token lacks a required claim")]
    MissingClaim,
    #[error("token subject is not a valid user id")]
    BadSubject(#[source] IdError),
}

/// How the caller proved who they are. Cookies ride along with cross-site requests, bearer
/// tokens do not, so only cookie-authenticated requests need the CSRF check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Bearer,
    Cookie,
}

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub via: Credential,
}

/// Verifies the request's credentials: the `Authorization` header when present (and then
/// only it), else the Auth.js session cookie.
///
/// # Errors
/// [`AuthError::Missing`] without credentials; the verifier's error otherwise.
pub fn authenticate(headers: &HeaderMap, app: &App) -> Result<Caller, AuthError> {
    if headers.contains_key(AUTHORIZATION) {
        let token = bearer_token(headers)?;
        // A compact JWE has five parts, a JWS three.
        let user = if token.split('.').count() == 5 {
            match app.config().auth.session_cookie {
                Some(cookie_name) => app.authjs().decode(token, cookie_name)?,
                None => app.authjs().bearer(token)?,
            }
        } else {
            app.auth().verify(token)?
        };
        return Ok(Caller {
            user,
            via: Credential::Bearer,
        });
    }
    let cookies = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    match authjs::session_token(cookies) {
        None => Err(AuthError::Missing),
        Some(Err(err)) => Err(err),
        Some(Ok(session)) => Ok(Caller {
            user: app.authjs().decode(&session.token, session.cookie_name)?,
            via: Credential::Cookie,
        }),
    }
}

/// The verified caller of a request, as the guard middleware admitted it.
#[derive(Debug, Clone)]
pub struct Authenticated(pub UserId);

impl FromRequestParts<App> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &App) -> Result<Self, ApiError> {
        // Only a route without the guard gets here without a caller: a wiring mistake, so
        // refuse rather than guess.
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or(ApiError::Unauthorized(AuthError::Missing))
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token)
}
