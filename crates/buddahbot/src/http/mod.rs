//! Request and response plumbing shared by every route: the JSON body extractors, query
//! parameter parsing and page limits; [`guard`], the middleware in front of every
//! authenticated route; [`headers`], the response headers this API defines; and [`server`],
//! serving a router on a socket of our own with request timeouts (the dev server). The layers
//! every function router gets (CORS, error logging) are assembled in `routes`.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{app::App, error::ApiError};

pub mod guard;
pub mod headers;
pub mod server;
pub mod shared;
pub mod timing;

/// A JSON request body (or response). Refuses a non-JSON content type (415), a body above
/// `MAX_BODY_BYTES` (413), text that is not JSON (400 `invalid_json`) and JSON of the wrong
/// shape (400 `invalid_body`, naming the field).
pub struct AppJson<T>(pub T);

/// Like [`AppJson`], but an empty body (`curl -X POST` with no data) is `None` instead of an
/// error, for endpoints whose every field is optional.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<App> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        let bytes = read_body(req, app).await?;
        if bytes.is_empty() {
            return Err(ApiError::InvalidJson("the body is empty".to_owned()));
        }
        decode(&bytes).map(Self)
    }
}

impl<T: DeserializeOwned> FromRequest<App> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        let headers_say_empty = content_length(req.headers()) == Some(0);
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        if headers_say_empty || !has_type {
            // No content type: only an empty body is acceptable.
            let limit = app.config().http.max_body_bytes;
            let bytes = axum::body::to_bytes(req.into_body(), limit)
                .await
                .map_err(|_| ApiError::PayloadTooLarge { limit })?;
            return if bytes.is_empty() {
                Ok(Self(None))
            } else {
                Err(ApiError::UnsupportedMediaType)
            };
        }
        let bytes = read_body(req, app).await?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        decode(&bytes).map(|v| Self(Some(v)))
    }
}

/// A request body as bytes, whatever its content type, read within `MAX_BODY_BYTES`: for
/// routes that parse it themselves. Past the limit, 413 `payload_too_large` in the project's
/// error shape (axum's own `Bytes` extractor would answer plain text at its 2 MB default).
pub struct RawBody(pub Bytes);

impl FromRequest<App> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        let limit = app.config().http.max_body_bytes;
        if content_length(req.headers()).is_some_and(|len| len > limit as u64) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        axum::body::to_bytes(req.into_body(), limit)
            .await
            .map(Self)
            .map_err(|_| ApiError::PayloadTooLarge { limit })
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Checks the content type and reads the body within the configured limit.
async fn read_body(req: Request, app: &App) -> Result<Bytes, ApiError> {
    let limit = app.config().http.max_body_bytes;
    if !is_json(req.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    if content_length(req.headers()).is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body this API takes is an object; serde would otherwise read a struct from an
    // array of its fields in order.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::InvalidBody("the body must be a JSON object".to_owned()),
                Err(e) => ApiError::InvalidJson(strip_position(&e.to_string())),
            },
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::InvalidJson(strip_position(&inner.to_string()))
        } else if path == "." {
            ApiError::InvalidBody(strip_position(&inner.to_string()))
        } else {
            ApiError::InvalidBody(format!("`{path}`: {}", strip_position(&inner.to_string())))
        }
    })
}

/// serde_json appends "at line L column C"; for one-line bodies it is noise.
fn strip_position(msg: &str) -> String {
    msg.split(" at line ").next().unwrap_or(msg).to_owned()
}

/// `application/json`, `application/json; charset=utf-8`, `application/merge-patch+json`, …
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Largest page any listing returns.
pub const MAX_PAGE_LIMIT: usize = 100;

/// Parses a `limit` query parameter: 1–[`MAX_PAGE_LIMIT`], `default` when absent.
///
/// # Errors
/// [`ApiError::InvalidParam`] naming `limit` when it is not a whole number in range.
pub fn page_limit(raw: Option<&str>, default: usize) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::InvalidParam {
            name: "limit",
            reason: format!("must be a whole number from 1 to {MAX_PAGE_LIMIT}"),
        }),
    }
}

/// Parses the optional query parameter `name` with `parse` (a cursor).
///
/// # Errors
/// [`ApiError::InvalidParam`] naming `name` when `parse` refuses it.
pub fn optional_param<T, E: std::fmt::Display>(
    query: &QueryParams,
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    query
        .get(name)
        .map(parse)
        .transpose()
        .map_err(|e| ApiError::InvalidParam {
            name,
            reason: e.to_string(),
        })
}

/// Query parameters, last value winning. Vercel appends a dynamic route segment (`?id=`) to
/// the query the client sent, so when a name repeats, the last one is the platform's.
#[derive(Debug, Default)]
pub struct QueryParams {
    /// The last value of each name.
    values: std::collections::HashMap<String, String>,
    /// Names given more than once.
    repeated: std::collections::HashSet<String>,
}

impl QueryParams {
    pub fn parse(query: Option<&str>) -> Self {
        let mut values = std::collections::HashMap::new();
        let mut repeated = std::collections::HashSet::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if values
                .insert(k.clone().into_owned(), v.into_owned())
                .is_some()
            {
                repeated.insert(k.into_owned());
            }
        }
        Self { values, repeated }
    }

    /// The value of `name` (the last, when it is given more than once).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `name` when it is given exactly once: for the ids the platform puts in
    /// the query from the path, which a client must not be able to add a second of.
    pub fn get_once(&self, name: &str) -> Option<&str> {
        if self.repeated.contains(name) {
            return None;
        }
        self.get(name)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryParams {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_recognised() {
        let cases = [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("application/jsonp", false),
        ];
        for (value, want) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), want, "case {value:?}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert_eq!(page_limit(None, 20).unwrap(), 20);
        assert_eq!(page_limit(Some("1"), 20).unwrap(), 1);
        assert_eq!(page_limit(Some("100"), 20).unwrap(), 100);
        for raw in ["0", "101", "-1", "ten", "", "1.5"] {
            assert!(page_limit(Some(raw), 20).is_err(), "case {raw:?}");
        }
    }

    #[test]
    fn repeated_query_parameters_keep_the_last_value() {
        let q = QueryParams::parse(Some("id=client&limit=5&id=route%2Dseg"));
        assert_eq!(q.get("id"), Some("route-seg"));
        assert_eq!(q.get("limit"), Some("5"));
        assert_eq!(q.get("cursor"), None);
    }

    #[test]
    fn decode_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[expect(dead_code, reason = "only deserialized")]
        struct Body {
            title: String,
        }
        match decode::<Body>(br#"{"title": 5}"#) {
            Err(ApiError::InvalidBody(msg)) => assert!(msg.contains("`title`"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode::<Body>(b"{"),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            decode::<Body>(b"[]"),
            Err(ApiError::InvalidBody(_))
        ));
    }
}
