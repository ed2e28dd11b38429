//! The process's application: configuration, store, model client and authenticator, built
//! once and shared by every request through a cheap clone.

use std::sync::Arc;

use crate::{
    auth::Authenticator,
    config::{Config, ConfigError},
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
}

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up the redis client")]
    Store(#[from] StoreError),
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
        let store = Store::new(&config.redis, &config.store)?;
        let upstream = Upstream::new(&config.upstream)?;
        let authenticator = Authenticator::new(&config.auth.secrets, config.auth.session_cookie);
        Ok(Self(Arc::new(Inner {
            config,
            store,
            upstream,
            authenticator,
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
