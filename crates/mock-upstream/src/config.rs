//! The instance-wide knobs of a mock ([`MockConfig`]) and the per-request copy the handlers use.
//!
//! Per-request overrides (headers and message directives) are parsed in [`crate::overrides`];
//! this module only holds the values.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Reply length when nothing says otherwise.
pub const DEFAULT_TOKENS: usize = 16;

/// `retry-after` seconds sent with an injected 429 or 503 when nothing says otherwise.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// How a running mock answers by default; per-request overrides start from a copy of it.
///
/// Fields are public so tests can use struct-update syntax; the `with_*` methods read better in a
/// chain. It deserializes from JSON/TOML with the same names as the message directive (durations
/// as `ttft_ms` / `inter_token_ms` integers, `hang` as an alias of `hang_before_headers`), and
/// rejects unknown fields so a typo does not silently configure nothing.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use mock_upstream::MockConfig;
///
/// let config = MockConfig::default()
///     .with_tokens(4)
///     .with_inter_token(Duration::from_millis(20));
/// assert_eq!(config.tokens, 4);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    /// Content chunks in a reply (each one word and one token).
    pub tokens: usize,
    /// Delay before the response head, which then leaves together with the first chunk, as a
    /// real model's first byte is its first token.
    #[serde(rename = "ttft_ms", deserialize_with = "millis")]
    pub ttft: Duration,
    /// Delay between consecutive content chunks (and before an injected mid-stream failure).
    #[serde(rename = "inter_token_ms", deserialize_with = "millis")]
    pub inter_token: Duration,
    /// Answer every chat request with this status and an OpenAI error body instead of a reply.
    pub status: Option<u16>,
    /// `retry-after` seconds on an injected 429 or 503.
    pub retry_after_secs: u64,
    /// Accept chat requests and never answer, until the client gives up or the mock stops.
    #[serde(alias = "hang")]
    pub hang_before_headers: bool,
    /// Drop the connection abruptly after this many content chunks (no `[DONE]`, no clean end).
    pub cut_after: Option<usize>,
    /// Send an SSE error event after this many content chunks, then end without `[DONE]`.
    pub error_after: Option<usize>,
    /// Send one event that is not valid JSON after this many content chunks, then carry on.
    pub garbage_after: Option<usize>,
    /// The model's context window: a request whose estimated prompt tokens
    /// ([`crate::prompt_tokens`]) plus its `max_tokens` exceed it gets a 400
    /// `context_length_exceeded`, as from OpenAI. `None`: no limit.
    pub context_tokens: Option<usize>,
    /// When set, requests must carry `Authorization: Bearer <api_key>` or get a 401.
    pub api_key: Option<String>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            tokens: DEFAULT_TOKENS,
            ttft: Duration::ZERO,
            inter_token: Duration::ZERO,
            status: None,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            hang_before_headers: false,
            cut_after: None,
            error_after: None,
            garbage_after: None,
            context_tokens: None,
            api_key: None,
        }
    }
}

impl MockConfig {
    /// Sets the reply length in tokens.
    #[must_use]
    pub fn with_tokens(mut self, tokens: usize) -> Self {
        self.tokens = tokens;
        self
    }

    /// Sets the delay before the response head and first chunk.
    #[must_use]
    pub fn with_ttft(mut self, ttft: Duration) -> Self {
        self.ttft = ttft;
        self
    }

    /// Sets the delay between content chunks.
    #[must_use]
    pub fn with_inter_token(mut self, inter_token: Duration) -> Self {
        self.inter_token = inter_token;
        self
    }

    /// Makes every chat request fail with `status` (and an OpenAI error body).
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Makes every chat request hang before the response head.
    #[must_use]
    pub fn with_hang(mut self) -> Self {
        self.hang_before_headers = true;
        self
    }

    /// Answers requests whose estimated prompt plus `max_tokens` exceed `tokens` with a 400
    /// `context_length_exceeded` (see [`MockConfig::context_tokens`]).
    #[must_use]
    pub fn with_context_tokens(mut self, tokens: usize) -> Self {
        self.context_tokens = Some(tokens);
        self
    }

    /// Requires `Authorization: Bearer <key>` on every request.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The copy of the knobs a single request starts from (everything but the API key).
    pub(crate) fn knobs(&self) -> Knobs {
        Knobs {
            tokens: self.tokens,
            ttft: self.ttft,
            inter_token: self.inter_token,
            status: self.status,
            retry_after_secs: self.retry_after_secs,
            hang: self.hang_before_headers,
            cut_after: self.cut_after,
            error_after: self.error_after,
            garbage_after: self.garbage_after,
            context_tokens: self.context_tokens,
        }
    }
}

/// The knobs of one request: the instance's values with that request's overrides applied.
///
/// # Design
/// `Copy` and free of the API key, so taking it out of the shared config is a plain copy under
/// a read lock, with no allocation on the hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Knobs {
    pub tokens: usize,
    pub ttft: Duration,
    pub inter_token: Duration,
    pub status: Option<u16>,
    pub retry_after_secs: u64,
    pub hang: bool,
    pub cut_after: Option<usize>,
    pub error_after: Option<usize>,
    pub garbage_after: Option<usize>,
    pub context_tokens: Option<usize>,
}

impl Knobs {
    /// Answers cleanly: no injected status, hang, cut, error or garbage.
    pub(crate) fn without_faults(self) -> Self {
        Self {
            status: None,
            hang: false,
            cut_after: None,
            error_after: None,
            garbage_after: None,
            ..self
        }
    }
}

fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_deserializes_with_directive_names_and_defaults() {
        let config: MockConfig = serde_json::from_value(serde_json::json!({
            "tokens": 3, "ttft_ms": 250, "inter_token_ms": 5, "status": 429, "hang": true,
            "context_tokens": 100,
        }))
        .unwrap();

        assert_eq!(
            config,
            MockConfig {
                tokens: 3,
                ttft: Duration::from_millis(250),
                inter_token: Duration::from_millis(5),
                status: Some(429),
                hang_before_headers: true,
                context_tokens: Some(100),
                ..MockConfig::default()
            }
        );
    }

    #[test]
    fn config_rejects_unknown_fields() {
        let result = serde_json::from_value::<MockConfig>(serde_json::json!({"token": 3}));
        assert!(result.is_err());
    }
}
