//! `GET /api/openapi.json`: the API's OpenAPI 3.1 document (`docs/openapi.json`, built into
//! the binary), public like `/api/health`. The integration tests validate every response they
//! receive against it, so what it says is what the server does.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

/// The document, as written in `docs/openapi.json`.
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

/// How long clients and CDNs may keep the document: it changes only with a deployment.
const CACHE_CONTROL: &str = "public, max-age=300";

pub async fn get() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ],
        DOCUMENT,
    )
        .into_response()
}
