//! The process's application: configuration, store, model client and authenticator, built
//! once and shared by every request through a cheap clone.

use std::{sync::Arc, time::Duration};

use crate::{
    auth::Authenticator,
    config::{Config, ConfigError, ConfigProblem},
    store::{Store, StoreError},
    upstream::{Upstream, UpstreamError},
};

/// Everything a handler needs. Cloning is one reference-count increment.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    config: Config,
    store: Store,
    upstream: Upstream,
    authenticator: Authenticator,
    _timer_anchor: Option<TimerAnchor>,
}

/// A timer that is always armed, so that the timers a turn arms go in without waking the
/// runtime's driver.
///
/// Tokio wakes its I/O driver (a write to an eventfd, then an `epoll_wait` that returns at
/// once) whenever a timer is armed to fire before the driver's next planned wake-up, and with
/// no timer armed when it last slept, that is every timer. A turn arms several: each Redis
/// command's response timeout and its lease keeper's interval. With this tick armed, the
/// driver always plans to wake within one period, so timers that fire later than that (the
/// response timeout, 2 s by default; the lease renewal, a third of the lease) go in
/// silently: three system calls and a wake-up fewer per turn. Costs one wake-up per period.
struct TimerAnchor(tokio::task::JoinHandle<()>);

impl TimerAnchor {
    /// Half the shorter of the two timeouts every turn arms, at least 50 ms; none outside a
    /// runtime (nothing to wake there).
    fn start(config: &Config) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let period = config
            .redis
            .response_timeout
            .min(config.chat.generation_lease / 3)
            / 2;
        let period = period.max(Duration::from_millis(50));
        Some(Self(runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
            }
        })))
    }
}

impl Drop for TimerAnchor {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `var` is the variable the Redis URL came from (`REDIS_URL` or `KV_URL`).
    #[error("cannot set up the redis client")]
    Store {
        var: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("cannot set up the model api client")]
    Upstream(#[from] UpstreamError),
}

impl App {
    /// Reads the environment once and builds the application.
    ///
    /// # Errors
    /// [`BootError::Config`] naming every missing or invalid variable.
    pub fn from_env() -> Result<Self, BootError> {
        Self::new(Config::from_env()?)
    }

    /// Builds the application from a configuration. Must run inside a Tokio runtime; does no
    /// I/O (the Redis connection opens on first use).
    ///
    /// # Errors
    /// [`BootError`] when the Redis or HTTP client cannot be created from the configuration.
    pub fn new(config: Config) -> Result<Self, BootError> {
        let store =
            Store::new(&config.redis, &config.store).map_err(|source| BootError::Store {
                var: config.redis.url_var,
                source,
            })?;
        let upstream = Upstream::new(&config.upstream)?;
        let authenticator = Authenticator::new(&config.auth.secrets, config.auth.session_cookie);
        let _timer_anchor = TimerAnchor::start(&config);
        Ok(Self(Arc::new(Inner {
            config,
            store,
            upstream,
            authenticator,
            _timer_anchor,
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn upstream(&self) -> &Upstream {
        &self.0.upstream
    }

    /// Verifies each request's credentials (bearer JWT, Auth.js JWE or session cookie).
    pub fn authenticator(&self) -> &Authenticator {
        &self.0.authenticator
    }
}

/// A function that cannot build its clients serves the 500 `config_error` like one whose
/// variables are invalid: the problem names the variable whose value could not be used.
impl From<BootError> for ConfigError {
    fn from(err: BootError) -> Self {
        let var = match err {
            BootError::Config(err) => return err,
            BootError::Store { var, .. } => var,
            // The key is the only value of the model API's settings that a valid
            // configuration can still fail to turn into a client (as a header value).
            BootError::Upstream(_) => "NOUS_API_KEY",
        };
        ConfigError {
            problems: vec![ConfigProblem {
                var,
                reason: "cannot be used to create a client",
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(redis_var: &str) -> Vec<(String, String)> {
        [
            ("AUTH_SECRET", "0123456789abcdef0123456789abcdef"),
            ("NOUS_API_KEY", "sk-test"),
            (redis_var, "redis://127.0.0.1:6390"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn a_redis_client_failure_names_the_variable_the_url_came_from() {
        for var in ["REDIS_URL", "KV_URL"] {
            let config = Config::from_vars(vars(var)).unwrap();
            let err = BootError::Store {
                var: config.redis.url_var,
                source: StoreError::Corrupt {
                    key: "k".to_owned(),
                    reason: "test".to_owned(),
                },
            };
            assert_eq!(
                ConfigError::from(err).problems,
                [ConfigProblem {
                    var,
                    reason: "cannot be used to create a client"
                }],
                "{var}"
            );
        }
    }

    #[test]
    fn a_config_error_stays_as_it_is() {
        let problems = vec![ConfigProblem {
            var: "AUTH_SECRET",
            reason: "is required",
        }];
        let err = BootError::Config(ConfigError {
            problems: problems.clone(),
        });
        assert_eq!(ConfigError::from(err).problems, problems);
    }
}
