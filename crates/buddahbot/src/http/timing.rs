//! `Server-Timing` on every response: where the server's own time went, so anyone can see
//! our overhead in a browser's dev tools or with `curl -v`.
//!
//! `auth` (verifying the caller), `store` (waiting for Redis), `upstream` (waiting for the
//! model's first chunk, or its whole answer when not streamed; chat only) and `total` (from
//! the request's arrival to the response's head), each in milliseconds.

use axum::{extract::Request, http::HeaderValue, middleware::Next, response::Response};
use tokio::time::Instant;

use super::headers::SERVER_TIMING;
use crate::timing::{self, Timings};

/// The middleware. An inner router's header (a function router mounted in the local one)
/// is left as it is: it measured the request where it ran.
pub async fn server_timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (mut response, timings) = timing::record(next.run(request)).await;
    if !response.headers().contains_key(SERVER_TIMING)
        && let Ok(value) = HeaderValue::from_str(&header_value(&timings, started.elapsed()))
    {
        response.headers_mut().insert(SERVER_TIMING, value);
    }
    response
}

fn header_value(timings: &Timings, total: std::time::Duration) -> String {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let mut value = format!(
        "auth;dur={:.3}, store;dur={:.3}",
        ms(timings.auth),
        ms(timings.store)
    );
    if let Some(upstream) = timings.upstream {
        value.push_str(&format!(", upstream;dur={:.3}", ms(upstream)));
    }
    value.push_str(&format!(", total;dur={:.3}", ms(total)));
    value
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_header_names_each_phase_in_milliseconds() {
        let timings = Timings {
            auth: Duration::from_micros(12),
            store: Duration::from_micros(1500),
            upstream: Some(Duration::from_millis(20)),
        };
        assert_eq!(
            header_value(&timings, Duration::from_millis(22)),
            "auth;dur=0.012, store;dur=1.500, upstream;dur=20.000, total;dur=22.000"
        );
        assert_eq!(
            header_value(&Timings::default(), Duration::ZERO),
            "auth;dur=0.000, store;dur=0.000, total;dur=0.000"
        );
    }
}
