//! Who is calling: [`Authenticator::authenticate`] turns `Authorization: Bearer <token>` (an
//! HS256 JWT, or an Auth.js session JWE as Auth.js's own `getToken` accepts it) or the Auth.js
//! session cookie into a verified [`UserId`]. The guard middleware (`http::guard`) calls it;
//! handlers take the result through its `Authenticated` extractor.
//!
//! Only the token's `sub` becomes a user id, and only after [`UserId::parse`]; nothing else
//! in the request can name a user. This module knows only the domain types: not the
//! application, Redis, routes or the edge error.

pub mod authjs;
pub mod jwt;

use axum::http::{
    HeaderMap,
    header::{AUTHORIZATION, COOKIE},
};
use secrecy::SecretString;

use crate::domain::{IdError, UserId};
use authjs::AuthJs;
use jwt::Hs256;

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

/// Verifies credentials: the HS256 bearer verifier, the Auth.js decoder and the configured
/// session cookie name, built once per process (in `App::new`) from the auth config.
pub struct Authenticator {
    hs256: Hs256,
    authjs: AuthJs,
    /// The Auth.js cookie name (= key salt) a bearer JWE was issued for, when configured.
    session_cookie: Option<&'static str>,
}

impl Authenticator {
    /// Derives every key the verifiers need from `secrets`.
    pub fn new(secrets: &[SecretString], session_cookie: Option<&'static str>) -> Self {
        Self {
            hs256: Hs256::new(secrets),
            authjs: AuthJs::new(secrets),
            session_cookie,
        }
    }

    /// The HS256 bearer-token verifier.
    pub fn hs256(&self) -> &Hs256 {
        &self.hs256
    }

    /// The Auth.js session-token decoder.
    pub fn authjs(&self) -> &AuthJs {
        &self.authjs
    }

    /// Verifies the request's credentials: the `Authorization` header when present (and
    /// then only it), else the Auth.js session cookie.
    ///
    /// # Errors
    /// [`AuthError::Missing`] without credentials; the verifier's error otherwise.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        if headers.contains_key(AUTHORIZATION) {
            let token = bearer_token(headers)?;
            // A compact JWE has five parts, a JWS three.
            let user = if token.split('.').count() == 5 {
                match self.session_cookie {
                    Some(cookie_name) => self.authjs.decode(token, cookie_name)?,
                    None => self.authjs.bearer(token)?,
                }
            } else {
                self.hs256.verify(token)?
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
                user: self.authjs.decode(&session.token, session.cookie_name)?,
                via: Credential::Cookie,
            }),
        }
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
