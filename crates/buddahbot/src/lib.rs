//! BuddahBot API: the core of a chat backend that runs as Vercel Rust functions over Redis.
//!
//! Every function file under `api/` is a few lines around [`function`]; all behaviour lives
//! here so the functions, the local dev server, the tests and the benchmarks share one set of
//! handlers.
//!
//! # Layout
//! - [`config`]: the environment, read once per process and validated as a whole.
//! - [`app`]: the per-process [`app::App`] (config, store, token verifier).
//! - [`domain`]: ids, titles, messages and threads, valid by construction.
//! - [`auth`]: the caller's identity from a bearer JWT.
//! - [`store`]: threads and messages in Redis, one round trip per use case; [`store::keys`]
//!   is the only place keys are built; [`store::StoreConn`] is one server or a Cluster.
//! - [`upstream`]: the model API client (OpenAI chat completions, streamed).
//! - [`chat`]: the chat turn: store, call the model, tee the stream, store the reply.
//! - [`protocol`]: events we make for clients (replays, error events).
//! - [`vercel`]: the adapter between `vercel_runtime` and the routers.
//! - [`http`]: JSON extractors, query parsing, page limits.
//! - [`error`]: [`error::ApiError`], the single JSON error shape, and the error log.
//! - [`routes`]: one router per function, plus the local router mounting them all.
//! - [`local_redis`]: a private `redis-server` child for the dev server and tests, and a
//!   private Redis Cluster for tests.
//! - `src/bin/dev.rs`: the local server with embedded defaults.

pub mod app;
pub mod auth;
pub mod background;
pub mod chat;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod local_redis;
pub mod protocol;
pub mod routes;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod vercel;

use axum::Router;

/// The router a Vercel function serves: builds the process's [`app::App`] from the
/// environment once (Fluid compute reuses the process for many requests) and hands it to
/// `build`. With an invalid configuration it serves the 500 `config_error` answer instead of
/// exiting, so the misconfiguration is visible on every request.
pub fn function(build: fn(app::App) -> Router) -> Router {
    telemetry::init();
    match app::App::from_env() {
        Ok(app) => build(app),
        Err(app::BootError::Config(err)) => {
            tracing::error!(error = %err, "refusing requests until the configuration is fixed");
            routes::config_error(err)
        }
        Err(err) => {
            tracing::error!(error = %err, "refusing requests until the configuration is fixed");
            let var = match err {
                app::BootError::Upstream(_) => "NOUS_API_KEY",
                _ => "REDIS_URL",
            };
            routes::config_error(config::ConfigError {
                problems: vec![config::ConfigProblem {
                    var,
                    reason: "cannot be used to create a client",
                }],
            })
        }
    }
}
