//! The response headers this API defines, spelled once, and the helpers that write the
//! rate-limit ones.
//!
//! A leaf: it knows header names and [`RateDecision`], nothing of the guard, the edge error or
//! the chat turn, so all of them can import it without importing each other.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::store::RateDecision;

/// The thread a chat turn ran in (request and response).
pub const THREAD_ID: HeaderName = HeaderName::from_static("x-thread-id");
/// The id of the reply a chat turn streams (or of the generation in progress, on a 409).
pub const MESSAGE_ID: HeaderName = HeaderName::from_static("x-message-id");
/// `no`: tells buffering proxies (nginx and its kin) to pass an event stream through.
pub const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
/// The resume position a reconnecting `EventSource` sends.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// Where the server's own time went (`auth`, `store`, `upstream`, `total`; milliseconds).
pub const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
/// How many of the conversation's oldest messages a chat turn left out of the prompt (or
/// replaced by the thread's summary) to fit the model's context window; absent when none.
/// The names of a user message's attachments stored but not given to the model.
pub const ATTACHMENTS_SKIPPED: HeaderName = HeaderName::from_static("x-attachments-skipped");

pub const CONTEXT_DROPPED_MESSAGES: HeaderName =
    HeaderName::from_static("x-context-dropped-messages");
/// `hit` when a chat turn was answered from the response cache, `miss` when it could have
/// been but was not (only with the cache on and `temperature: 0`).
pub const CACHE: HeaderName = HeaderName::from_static("x-cache");
/// Requests allowed by the tightest limit in its period.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// Requests left under the tightest limit.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// Whole seconds until the tightest limit is fully replenished.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Adds `x-ratelimit-*` for the tightest limit (none when no limit applied).
pub fn set_limit_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    if decision.limit == 0 {
        return;
    }
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(decision.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(
        RATELIMIT_RESET,
        HeaderValue::from(ceil_secs(decision.reset)),
    );
}

/// Adds the rate-limit headers of a refused request (`retry-after` included).
pub fn set_refusal_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    set_limit_headers(headers, decision);
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from(ceil_secs(decision.retry_after).max(1)),
    );
}

/// Whole seconds, rounded up (a client told `0` would retry at once).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
