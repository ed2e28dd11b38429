//! The gate in front of every route: who is calling, whether a cookie-carried request comes
//! from an origin allowed to act (CSRF), and whether the caller is within their rate limits.
//! Handlers then take the caller through the [`Authenticated`] extractor. The routes without
//! credentials ([`RouteClass::Public`]: health, shared links, the OpenAPI document) are
//! counted per client address instead.
//!
//! # Design
//! One middleware rather than three extractors, because the limit headers
//! (`x-ratelimit-limit/remaining/reset`) belong on every response, also successful ones, and
//! because the order matters: an unauthenticated request must not cost anyone's rate budget,
//! and a forged cross-site request must be refused before it is counted.
//!
//! A chat turn is the exception to counting here: the turn counts itself against
//! [`LimitSet::for_chat_turn`] in the same script that stores the user's message, which saves
//! a Redis round trip before the model is called (the time to first token). It leaves its
//! [`RateDecision`] in the response extensions, so this middleware is still the one writer of
//! the `x-ratelimit-*` headers of every admitted request. (A refusal's headers come with the
//! 429 itself, from `ApiError`.)

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    app::App,
    auth::{AuthError, Credential},
    domain::UserId,
    error::ApiError,
    http::headers::set_limit_headers,
    store::{LimitSet, RateDecision, StoreError},
    timing::{self, Phase},
};

/// The verified caller of a request, as the guard admitted it.
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

/// Which budget a route's requests count against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// `POST` here is a chat turn (chat limits and the token budget); anything else counts as
    /// an ordinary request.
    Chat,
    /// Ordinary API requests.
    Api,
    /// No credentials: every request counts against its client address's
    /// `RATE_LIMIT_PUBLIC_PER_MIN`.
    Public,
}

/// State of the [`guard`] middleware.
#[derive(Clone)]
pub struct Guard {
    pub app: App,
    pub class: RouteClass,
}

pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    if guard.class == RouteClass::Public {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let client = client_address(request.headers(), peer);
        return match count_public(&guard.app, &client).await {
            Ok(decision) => {
                let mut response = next.run(request).await;
                if let Some(decision) = decision {
                    set_limit_headers(response.headers_mut(), &decision);
                }
                response
            }
            Err(err) => err.into_response(),
        };
    }
    // Borrow only the parts: a `Request` is not `Sync`, so holding `&Request` across an await
    // would make this future unsendable.
    let admitted = admit(&guard, request.method(), request.headers()).await;
    match admitted {
        Ok((caller, decision)) => {
            request.extensions_mut().insert(caller);
            let mut response = next.run(request).await;
            // A chat turn counted itself and left its decision on the response.
            let decision = decision.or_else(|| response.extensions_mut().remove::<RateDecision>());
            if let Some(decision) = decision {
                set_limit_headers(response.headers_mut(), &decision);
            }
            response
        }
        Err(err) => err.into_response(),
    }
}

/// The caller, and the decision of the limits counted here.
type Admitted = (Authenticated, Option<RateDecision>);

async fn admit(guard: &Guard, method: &Method, headers: &HeaderMap) -> Result<Admitted, ApiError> {
    let app = &guard.app;
    // Two `Authorization` headers are ambiguous (a proxy may add one): refused, not guessed.
    if headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(ApiError::InvalidHeader {
            name: "authorization",
            reason: "must be sent once".to_owned(),
        });
    }
    let started = std::time::Instant::now();
    let caller = app.authenticator().authenticate(headers);
    timing::add(Phase::Auth, started.elapsed());
    let caller = caller?;
    if caller.via == Credential::Cookie
        && changes_state(method)
        && !same_or_allowed_origin(headers, &app.config().http.allowed_origins)
    {
        return Err(ApiError::CsrfRejected);
    }
    // A chat turn counts itself, when it begins.
    if guard.class == RouteClass::Chat && method == Method::POST {
        return Ok((Authenticated(caller.user), None));
    }
    let limits = LimitSet::for_request(&app.config().limits);
    if limits.is_empty() {
        return Ok((Authenticated(caller.user), None));
    }
    let decision = app.store().check_rate(&caller.user, &limits).await?;
    if !decision.allowed {
        return Err(ApiError::RateLimited(decision));
    }
    Ok((Authenticated(caller.user), Some(decision)))
}

/// Counts a request without credentials against its client address's public limit. When
/// Redis cannot be reached the request goes on uncounted: the route answers for itself (health
/// reports the outage, a shared link answers 503).
async fn count_public(app: &App, client: &str) -> Result<Option<RateDecision>, ApiError> {
    let limits = LimitSet::for_public(&app.config().limits);
    if limits.is_empty() {
        return Ok(None);
    }
    let Ok(caller) = UserId::parse(&format!("ip:{client}")) else {
        return Ok(None);
    };
    match app.store().check_rate(&caller, &limits).await {
        Ok(decision) if !decision.allowed => Err(ApiError::RateLimited(decision)),
        Ok(decision) => Ok(Some(decision)),
        Err(StoreError::Unavailable(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The client's address: as the platform reports it (Vercel's `x-real-ip`, or the first hop
/// of `x-forwarded-for`), else the connection's peer (a server of our own), else `unknown`.
/// Only characters of an IP address are kept, so it can name a key.
pub fn client_address(headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> String {
    headers
        .get("x-real-ip")
        .or_else(|| headers.get("x-forwarded-for"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| {
            v.trim()
                .chars()
                .filter(|c| c.is_ascii_hexdigit() || *c == '.' || *c == ':')
                .collect()
        })
        .filter(|v: &String| !v.is_empty())
        .or_else(|| peer.map(|ip| ip.to_string()))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a state-changing request sent with a cookie comes from a page allowed to act for
/// the user: an allowed origin, or this site itself. Browsers send `Origin` on every
/// cross-origin request (and on same-origin ones that change state); without it,
/// `Sec-Fetch-Site` tells; with neither, the client is not a browser and cannot be tricked
/// into sending the user's cookie.
fn same_or_allowed_origin(headers: &HeaderMap, allowed: &[HeaderValue]) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        if allowed.iter().any(|a| a == origin) {
            return true;
        }
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, host)| host);
        let own_host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(header::HOST))
            .and_then(|h| h.to_str().ok());
        return origin_host.is_some() && origin_host == own_host;
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    /// A case name, the request's headers, the peer, and the address counted.
    type AddressCase = (
        &'static str,
        &'static [(&'static str, &'static str)],
        Option<std::net::IpAddr>,
        &'static str,
    );

    #[test]
    fn the_client_address_is_the_platforms_then_the_peer() {
        let peer = Some(std::net::IpAddr::from([192, 0, 2, 1]));
        let cases: [AddressCase; 5] = [
            (
                "x-real-ip first",
                &[("x-real-ip", "203.0.113.7"), ("x-forwarded-for", "1.1.1.1")],
                peer,
                "203.0.113.7",
            ),
            (
                "the first hop",
                &[("x-forwarded-for", "203.0.113.7, 10.0.0.1")],
                peer,
                "203.0.113.7",
            ),
            (
                "only address characters",
                &[("x-forwarded-for", "{2001:db8::1}")],
                None,
                "2001:db8::1",
            ),
            ("the peer", &[], peer, "192.0.2.1"),
            ("nothing", &[], None, "unknown"),
        ];
        for (case, pairs, peer, want) in cases {
            assert_eq!(client_address(&headers(pairs), peer), want, "{case}");
        }
    }

    /// A case name, the request's headers, and whether it may act with the cookie.
    type Case = (&'static str, &'static [(&'static str, &'static str)], bool);

    #[test]
    fn cookie_requests_must_come_from_this_site_or_an_allowed_origin() {
        let allowed = [HeaderValue::from_static("https://app.example.com")];
        let cases: [Case; 9] = [
            (
                "allowed origin",
                &[
                    ("origin", "https://app.example.com"),
                    ("host", "api.example.com"),
                ],
                true,
            ),
            (
                "same origin",
                &[
                    ("origin", "https://api.example.com"),
                    ("host", "api.example.com"),
                ],
                true,
            ),
            (
                "same origin behind the proxy",
                &[
                    ("origin", "https://api.example.com"),
                    ("host", "internal"),
                    ("x-forwarded-host", "api.example.com"),
                ],
                true,
            ),
            (
                "foreign origin",
                &[
                    ("origin", "https://evil.example"),
                    ("host", "api.example.com"),
                ],
                false,
            ),
            (
                "opaque origin",
                &[("origin", "null"), ("host", "api.example.com")],
                false,
            ),
            (
                "same-origin fetch metadata",
                &[("sec-fetch-site", "same-origin")],
                true,
            ),
            (
                "cross-site fetch metadata",
                &[("sec-fetch-site", "cross-site")],
                false,
            ),
            (
                "same-site is not same-origin",
                &[("sec-fetch-site", "same-site")],
                false,
            ),
            ("not a browser", &[("host", "api.example.com")], true),
        ];
        for (case, pairs, want) in cases {
            assert_eq!(
                same_or_allowed_origin(&headers(pairs), &allowed),
                want,
                "{case}"
            );
        }
    }
}
