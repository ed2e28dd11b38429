//! BuddahBot API: the core of a chat backend that runs as Vercel Rust functions over Redis.
//!
//! Every function file under `api/` is a few lines around [`function`]; all behaviour lives
//! here so the functions, the local dev server, the tests and the benchmarks share one set of
//! handlers.
//!
//! # Layout
//! - [`config`]: the environment, read once per process and validated as a whole.
//! - [`app`]: the per-process [`app::App`] (config, store, model client, authenticator), and
//!   why it could not be built ([`app::BootError`]).
//! - [`domain`]: ids, titles, messages and threads, and the function tools a request offers,
//!   valid by construction.
//! - [`auth`]: the caller's identity from a bearer token (an HS256 JWT or an Auth.js session
//!   JWE) or the Auth.js session cookie, with the credentials verified lately (by digest,
//!   within their life) not verified again; knows only [`domain`].
//! - [`store`]: threads, messages, turns, resumable streams and rate limits in Redis, one
//!   round trip per use case; [`store::keys`] is the only place keys are built and
//!   [`store::schema`] names what is inside them (fields, turn states, the lease rule);
//!   [`store::StoreConn`] is one server or a Cluster; [`store::control`] pushes stop and
//!   resume signals to the process running a generation; [`store::LimitSet`] says which
//!   limits a request counts against; the response cache and the context summary's claim
//!   live here too.
//! - [`upstream`]: the model API client (OpenAI chat completions, streamed), with
//!   [`upstream::sse`], the incremental event-stream reader, [`upstream::chunk`], which
//!   reads each streamed chunk's fields in place (most of them from the shape of the chunk
//!   before), [`upstream::tool_calls`],
//!   which puts streamed tool calls back together, and [`upstream::markup`], which tells a
//!   reply's reasoning (a field of its own, or inline `<think>` tags) from its answer and
//!   reads Hermes' inline `<tool_call>` blocks as calls.
//! - [`chat`]: the chat turn: store, fit the prompt to the context window, answer from the
//!   cache or call the model, tee the stream, store the reply; and resuming or stopping a
//!   generation. Its module doc lists its parts.
//! - [`responses`]: the OpenAI Responses and Conversations APIs as views of the thread store
//!   (a conversation is a thread, a response a turn, an item a message).
//! - [`protocol`]: what clients are sent: [`protocol::encoder`], every format's event
//!   sequence (live and replayed), and the OpenAI and AI SDK shapes it is made of.
//! - [`timing`]: where a request's time went (`Server-Timing`), recorded by the layers that
//!   spend it.
//! - [`background`]: work that outlives the response (`wait_until` on Vercel).
//! - [`vercel`]: the adapter between `vercel_runtime` and the routers.
//! - [`http`]: JSON extractors, query parsing, page limits; [`http::guard`], the middleware
//!   that authenticates, checks CSRF and counts rate limits, with the `Authenticated`
//!   extractor; [`http::headers`], the header names and rate-limit headers;
//!   [`http::timing`], the `Server-Timing` middleware; [`http::shared`], which keeps a
//!   router's layers from copying the stack beneath them for every request.
//! - [`error`]: [`error::ApiError`], the single JSON error shape, and the error log.
//! - [`search`]: words as search sees them (Unicode segmentation, case and accent folding),
//!   queries (phrases, the prefix) and snippets; the index itself is the store's.
//! - [`routes`]: one router per function, plus the local router mounting them all (the
//!   organisation fields and filters, feedback, share links, forks and the model list are
//!   handled here over the store and the configuration); [`routes::site`], the dev server's
//!   site around it: the web app of `public/` with its Content-Security-Policy, and the
//!   dev-only sign-in.
//! - [`local_redis`]: a private `redis-server` child for the dev server and tests, and a
//!   private Redis Cluster for tests.
//! - [`telemetry`]: tracing to stderr.
//! - `src/bin/dev.rs`: the local server with embedded defaults, serving the web app.
//! - `link/`: the hot functions' list (`hot.order`, by `scripts/link-order`) and the build
//!   script module that hands it to the release link (`order.rs`, from both `build.rs`).

/// Every process built on this crate (the functions, `dev`, tests and benches) allocates
/// with mimalloc: a turn makes many small, short-lived allocations, which glibc's allocator
/// served with ~7% of a server's CPU samples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
pub mod responses;
pub mod routes;
pub mod search;
pub mod store;
pub mod telemetry;
pub mod timing;
pub mod upstream;
pub mod vercel;

use axum::Router;

/// The router a Vercel function serves: builds the process's [`app::App`] from the
/// environment once (Fluid compute reuses the process for many requests) and hands it to
/// `build`. With an invalid configuration, or one the clients cannot be built from, it serves
/// the 500 `config_error` answer instead of exiting, so the misconfiguration is visible on
/// every request.
pub fn function(build: fn(app::App) -> Router) -> Router {
    telemetry::init();
    match app::App::from_env() {
        Ok(app) => build(app),
        Err(err) => {
            tracing::error!(error = %err, "refusing requests until the configuration is fixed");
            routes::config_error(err.into())
        }
    }
}
