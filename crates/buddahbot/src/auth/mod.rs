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
mod recent;

use axum::http::{
    HeaderMap,
    header::{AUTHORIZATION, COOKIE},
};
use secrecy::SecretString;

use crate::domain::{IdError, UserId};
use authjs::AuthJs;
use jwt::{Hs256, LEEWAY_SECS};
use recent::{Key, Kind, Recent};

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

/// A credential that verified, and the Unix seconds in which its verifier would accept it
/// again: from its `nbf` and `exp` with the leeway, rounded inward, so never longer than the
/// verifier would.
#[derive(Debug, Clone)]
pub(crate) struct Valid {
    pub user: UserId,
    /// The first second it is accepted in (`i64::MIN` without `nbf`).
    pub from: i64,
    /// The last second it is accepted in.
    pub until: i64,
}

impl Valid {
    /// `nbf` and `exp` as the token has them (NumericDates, possibly fractional); without
    /// `exp` the window is empty.
    fn new(user: UserId, nbf: Option<f64>, exp: Option<f64>) -> Self {
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(0);
        // `as` saturates: a date beyond `i64` is the end of time, one before it the start.
        #[expect(clippy::cast_possible_truncation, reason = "saturating on purpose")]
        Self {
            user,
            // The verifiers accept from `nbf - leeway` (HS256 rounds `nbf` to a whole second).
            from: nbf.map_or(i64::MIN, |nbf| (nbf.ceil() as i64).saturating_sub(leeway)),
            // HS256 accepts up to `exp + leeway` (rounded), Auth.js while before it.
            until: exp.map_or(i64::MIN, |exp| {
                (exp.floor() as i64).saturating_add(leeway.saturating_sub(1))
            }),
        }
    }

    fn holds_at(&self, now: i64) -> bool {
        self.from <= now && now <= self.until
    }
}

/// Verifies credentials: the HS256 bearer verifier, the Auth.js decoder and the configured
/// session cookie name, built once per process (in `App::new`) from the auth config, and the
/// credentials verified lately ([`recent`]).
pub struct Authenticator {
    hs256: Hs256,
    authjs: AuthJs,
    /// The Auth.js cookie name (= key salt) a bearer JWE was issued for, when configured.
    session_cookie: Option<&'static str>,
    recent: Recent,
}

impl Authenticator {
    /// Derives every key the verifiers need from `secrets`.
    pub fn new(secrets: &[SecretString], session_cookie: Option<&'static str>) -> Self {
        Self {
            hs256: Hs256::new(secrets),
            authjs: AuthJs::new(secrets),
            session_cookie,
            recent: Recent::default(),
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
    /// then only it), else the Auth.js session cookie. A credential that verified lately and
    /// would verify now is not verified again.
    ///
    /// # Errors
    /// [`AuthError::Missing`] without credentials; the verifier's error otherwise.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        if headers.contains_key(AUTHORIZATION) {
            let token = bearer_token(headers)?;
            let cookie_name = self.session_cookie.unwrap_or("");
            let user = self.verified(Kind::Bearer, cookie_name, token, || {
                // A compact JWE has five parts, a JWS three.
                if token.split('.').count() == 5 {
                    match self.session_cookie {
                        Some(cookie_name) => self.authjs.decode_valid(token, cookie_name),
                        None => self.authjs.bearer_valid(token),
                    }
                } else {
                    self.hs256.check(token)
                }
            })?;
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
                user: self.verified(Kind::Cookie, session.cookie_name, &session.token, || {
                    self.authjs
                        .decode_valid(&session.token, session.cookie_name)
                })?,
                via: Credential::Cookie,
            }),
        }
    }

    /// The user `token` names: recalled when it verified lately and would verify now, else
    /// verified by `verify` (and then kept).
    fn verified(
        &self,
        kind: Kind,
        cookie_name: &str,
        token: &str,
        verify: impl FnOnce() -> Result<Valid, AuthError>,
    ) -> Result<UserId, AuthError> {
        let now = jiff::Timestamp::now().as_second();
        let key = Key::of(kind, cookie_name, token);
        if let Some(user) = self.recent.get(&key, now) {
            return Ok(user);
        }
        let valid = verify()?;
        let user = valid.user.clone();
        self.recent.put(key, valid);
        Ok(user)
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

    fn user(raw: &str) -> UserId {
        UserId::parse(raw).unwrap()
    }

    fn authenticator() -> Authenticator {
        Authenticator::new(&[SecretString::from(SECRET)], None)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_window_is_the_verifiers_rounded_inward() {
        // exp 1000: HS256 accepts through 1015, Auth.js before 1015 (through 1014).
        let valid = Valid::new(user("ada"), None, Some(1000.0));
        assert_eq!((valid.from, valid.until), (i64::MIN, 1014));
        // exp 1000.5: HS256 rounds to 1001 (through 1016), Auth.js before 1015.5.
        assert_eq!(Valid::new(user("ada"), None, Some(1000.5)).until, 1014);
        // nbf 1000.5: HS256 rounds to 1001 (from 986), Auth.js from 985.5.
        assert_eq!(
            Valid::new(user("ada"), Some(1000.5), Some(2000.0)).from,
            986
        );
        assert_eq!(
            Valid::new(user("ada"), Some(1000.0), Some(2000.0)).from,
            985
        );
        // Beyond i64 either way, and none at all.
        let far = Valid::new(user("ada"), Some(-1e300), Some(1e300));
        assert_eq!((far.from, far.until), (i64::MIN, i64::MAX));
        assert!(!Valid::new(user("ada"), None, None).holds_at(0));
    }

    #[test]
    fn a_token_seen_again_is_the_same_caller_and_a_forged_one_stays_refused() {
        let auth = authenticator();
        let token = auth.hs256().mint(&user("ada"), 600).unwrap();
        for _ in 0..3 {
            let caller = auth.authenticate(&bearer(&token)).unwrap();
            assert_eq!(caller.user, user("ada"));
            assert_eq!(caller.via, Credential::Bearer);
        }
        // The same claims under another signature, after the good one was kept.
        let (unsigned, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{unsigned}.{flipped}{}", &signature[1..]);
        assert_eq!(
            auth.authenticate(&bearer(&forged)).unwrap_err(),
            AuthError::BadSignature
        );
        // Another secret's token for the same user.
        let other = Authenticator::new(
            &[SecretString::from("another-secret-of-32-bytes-or-more")],
            None,
        );
        let theirs = other.hs256().mint(&user("ada"), 600).unwrap();
        assert_eq!(
            auth.authenticate(&bearer(&theirs)).unwrap_err(),
            AuthError::BadSignature
        );
    }

    #[test]
    fn a_kept_token_that_has_expired_is_refused() {
        let auth = authenticator();
        let token = auth.hs256().mint(&user("ada"), 600).unwrap();
        let now = jiff::Timestamp::now().as_second();
        // Kept as the verifier would have it, with a window that closed a minute ago.
        auth.recent.put(
            Key::of(Kind::Bearer, "", &token),
            Valid {
                user: user("mallory"),
                from: i64::MIN,
                until: now - 60,
            },
        );
        // Not recalled: verified again (the real claims win) and kept anew.
        assert_eq!(
            auth.authenticate(&bearer(&token)).unwrap().user,
            user("ada")
        );
        assert_eq!(
            auth.recent.get(&Key::of(Kind::Bearer, "", &token), now),
            Some(user("ada"))
        );
    }

    #[test]
    fn a_session_cookie_and_the_same_token_as_bearer_are_told_apart() {
        let auth = authenticator();
        let exp = jiff::Timestamp::now().as_second() + 600;
        let token = auth
            .authjs()
            .encode(
                &serde_json::json!({ "sub": "ada", "exp": exp }),
                authjs::SESSION_COOKIE,
            )
            .unwrap();
        let mut cookie = HeaderMap::new();
        cookie.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{}={token}", authjs::SESSION_COOKIE)).unwrap(),
        );
        for _ in 0..2 {
            let caller = auth.authenticate(&cookie).unwrap();
            assert_eq!((caller.user, caller.via), (user("ada"), Credential::Cookie));
            let caller = auth.authenticate(&bearer(&token)).unwrap();
            assert_eq!((caller.user, caller.via), (user("ada"), Credential::Bearer));
        }
    }
}
