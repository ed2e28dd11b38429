//! Per-user rate limits and the daily token budget, kept in Redis under the user's hash tag
//! so every instance shares them. One round trip per check.
//!
//! The policy lives here too: [`LimitSet::for_chat_turn`] and [`LimitSet::for_request`] say
//! which configured limits a request counts against, so the HTTP layer and the chat turn only
//! pick one.

use std::{num::NonZeroU32, time::Duration};

use jiff::{Timestamp, tz::TimeZone};

use super::{Store, StoreError, keys, scripts};
use crate::{
    config::LimitsConfig,
    domain::{UserId, now},
};

/// The names of the limits. The limits a request counts against together are kept in one
/// Redis key named after them ([`keys::rate_limits`]), so renaming one, or configuring a
/// limit on or off, silently resets every user's counters for that set.
pub const CHAT_PER_MINUTE: &str = "chat-minute";
/// See [`CHAT_PER_MINUTE`].
pub const CHAT_PER_DAY: &str = "chat-day";
/// See [`CHAT_PER_MINUTE`].
pub const REQUESTS_PER_MINUTE: &str = "requests-minute";
/// See [`CHAT_PER_MINUTE`]; counted per client address (under the caller `ip:<address>`).
pub const PUBLIC_PER_MINUTE: &str = "public-minute";

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// One limit: at most `allowed` requests per `period`, refilled evenly (GCRA), so a burst of
/// `allowed` is possible after a quiet period and then one every `period / allowed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Names the key; stable across deploys.
    pub name: &'static str,
    pub period: Duration,
    pub allowed: u32,
}

impl RateLimit {
    /// The limit `name` when `allowed` is configured, none otherwise.
    fn configured(
        name: &'static str,
        period: Duration,
        allowed: Option<NonZeroU32>,
    ) -> Option<Self> {
        allowed.map(|n| Self {
            name,
            period,
            allowed: n.get(),
        })
    }
}

/// The outcome of a check, with what the `x-ratelimit-*` headers report (for the tightest
/// limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Until the tightest limit is fully replenished.
    pub reset: Duration,
    /// Zero when allowed.
    pub retry_after: Duration,
}

/// A daily token budget to enforce along with the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBudget {
    pub tokens_per_day: u64,
}

/// Everything one request is counted against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitSet {
    pub limits: Vec<RateLimit>,
    pub budget: Option<TokenBudget>,
}

impl LimitSet {
    /// What a chat turn counts against: the configured chat limits per minute and per day,
    /// and the daily token budget. Checked by the script that begins the turn.
    pub fn for_chat_turn(config: &LimitsConfig) -> Self {
        let limits = [
            RateLimit::configured(CHAT_PER_MINUTE, MINUTE, config.chat_per_minute),
            RateLimit::configured(CHAT_PER_DAY, DAY, config.chat_per_day),
        ];
        Self {
            limits: limits.into_iter().flatten().collect(),
            budget: config.daily_token_budget.map(|n| TokenBudget {
                tokens_per_day: n.get(),
            }),
        }
    }

    /// What any other authenticated request counts against: the configured requests per
    /// minute.
    pub fn for_request(config: &LimitsConfig) -> Self {
        Self {
            limits: RateLimit::configured(REQUESTS_PER_MINUTE, MINUTE, config.requests_per_minute)
                .into_iter()
                .collect(),
            budget: None,
        }
    }

    /// What a request without credentials counts against, per client address: the
    /// configured public requests per minute.
    pub fn for_public(config: &LimitsConfig) -> Self {
        Self {
            limits: RateLimit::configured(PUBLIC_PER_MINUTE, MINUTE, config.public_per_minute)
                .into_iter()
                .collect(),
            budget: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.budget.is_none()
    }

    /// Adds the keys and arguments `limits.lua` reads, in its order.
    pub(super) fn push_args(&self, invocation: &mut redis::ScriptInvocation<'_>, user: &UserId) {
        let now = now();
        invocation.arg(self.limits.len());
        if !self.limits.is_empty() {
            invocation.key(keys::rate_limits(
                user,
                self.limits.iter().map(|limit| limit.name),
            ));
        }
        for limit in &self.limits {
            invocation
                .arg(duration_ms(limit.period))
                .arg(limit.allowed.max(1));
        }
        let (today, until_midnight) = utc_day(now);
        invocation.key(keys::daily_tokens(user, &today));
        invocation
            .arg(self.budget.map_or(0, |b| b.tokens_per_day))
            .arg(duration_ms(until_midnight));
    }
}

impl RateDecision {
    /// Reads `limits.lua`'s answer: allowed, limit, remaining, reset and retry-after (ms).
    pub(super) fn from_script(
        allowed: bool,
        limit: i64,
        remaining: i64,
        reset: i64,
        retry: i64,
    ) -> Self {
        let ms = |v: i64| Duration::from_millis(v.max(0).unsigned_abs());
        Self {
            allowed,
            limit: limit.max(0).unsigned_abs(),
            remaining: remaining.max(0).unsigned_abs(),
            reset: ms(reset),
            retry_after: ms(retry),
        }
    }
}

/// How long daily token counters are kept (past the day they count, for support questions).
pub(super) const TOKEN_COUNTER_TTL: Duration = Duration::from_secs(2 * 86_400);

impl Store {
    /// Counts one request against `limits` (all or none), after checking `budget`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn check_rate(
        &self,
        user: &UserId,
        limits: &LimitSet,
    ) -> Result<RateDecision, StoreError> {
        let mut invocation = scripts::RATE_LIMIT.prepare_invoke();
        invocation.arg(now().as_millisecond());
        limits.push_args(&mut invocation, user);
        let (allowed, limit, remaining, reset, retry): (u8, i64, i64, i64, i64) =
            invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(RateDecision::from_script(
            allowed == 1,
            limit,
            remaining,
            reset,
            retry,
        ))
    }
}

impl Store {
    /// Adds `tokens` to `user`'s count for today (the daily budget), for a reply that is
    /// not stored (`finish_turn` counts the stored ones itself).
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn add_tokens(&self, user: &UserId, tokens: u64) -> Result<(), StoreError> {
        if tokens == 0 {
            return Ok(());
        }
        let key = todays_tokens_key(user);
        let () = redis::pipe()
            .incr(&key, tokens)
            .ignore()
            .expire(
                &key,
                i64::try_from(TOKEN_COUNTER_TTL.as_secs()).unwrap_or(i64::MAX),
            )
            .ignore()
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

/// The key counting `user`'s tokens today (UTC); `finish_turn` adds each reply's usage to it.
pub(super) fn todays_tokens_key(user: &UserId) -> String {
    keys::daily_tokens(user, &utc_day(now()).0)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Today's UTC date (`yyyy-mm-dd`) and the time left until it ends.
fn utc_day(now: Timestamp) -> (String, Duration) {
    let zoned = now.to_zoned(TimeZone::UTC);
    let date = zoned.date();
    let left = date
        .tomorrow()
        .ok()
        .and_then(|t| t.to_zoned(TimeZone::UTC).ok())
        .and_then(|midnight| (midnight.timestamp() - now).try_into().ok())
        .unwrap_or(Duration::from_secs(86_400));
    (date.to_string(), left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_turn_counts_against_the_chat_limits_and_the_token_budget() {
        let config = LimitsConfig {
            chat_per_minute: NonZeroU32::new(5),
            chat_per_day: NonZeroU32::new(100),
            requests_per_minute: NonZeroU32::new(60),
            public_per_minute: NonZeroU32::new(120),
            daily_token_budget: std::num::NonZeroU64::new(1_000),
        };
        assert_eq!(
            LimitSet::for_chat_turn(&config),
            LimitSet {
                limits: vec![
                    RateLimit {
                        name: "chat-minute",
                        period: MINUTE,
                        allowed: 5
                    },
                    RateLimit {
                        name: "chat-day",
                        period: DAY,
                        allowed: 100
                    },
                ],
                budget: Some(TokenBudget {
                    tokens_per_day: 1_000
                }),
            }
        );
        assert_eq!(
            LimitSet::for_request(&config),
            LimitSet {
                limits: vec![RateLimit {
                    name: "requests-minute",
                    period: MINUTE,
                    allowed: 60
                }],
                budget: None,
            }
        );
    }

    #[test]
    fn unconfigured_limits_are_left_out() {
        let config = LimitsConfig {
            chat_per_minute: None,
            chat_per_day: NonZeroU32::new(100),
            requests_per_minute: None,
            public_per_minute: None,
            daily_token_budget: None,
        };
        let chat = LimitSet::for_chat_turn(&config);
        assert_eq!(chat.limits.len(), 1);
        assert_eq!(chat.limits[0].name, "chat-day");
        assert_eq!(chat.budget, None);
        assert!(LimitSet::for_request(&config).is_empty());
    }

    #[test]
    fn the_utc_day_ends_at_midnight() {
        let ts: Timestamp = "2026-11-22T23:59:30Z".parse().unwrap();
        let (day, left) = utc_day(ts);
        assert_eq!(day, "2026-11-22");
        assert_eq!(left, Duration::from_secs(30));
    }
}
