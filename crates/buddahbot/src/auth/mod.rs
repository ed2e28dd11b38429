//! Who is calling: the [`Authenticated`] extractor turns `Authorization: Bearer <jwt>` into a
//! verified [`UserId`].
//!
//! Only the token's `sub` becomes a user id, and only after [`UserId::parse`]; nothing else
//! in the request can name a user. This module does not know about Redis or routes.

pub mod jwt;

use axum::{
    extract::FromRequestParts,
    http::{header::AUTHORIZATION, request::Parts},
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

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub UserId);

impl FromRequestParts<App> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        Ok(Self(app.auth().verify(token)?))
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer_token(parts: &Parts) -> Result<&str, AuthError> {
    let value = parts
        .headers
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
