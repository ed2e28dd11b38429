//! Integration tests: a private redis-server per test, the real routers on a real socket,
//! real HTTP.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod auth;
mod binaries;
mod chat;
mod errors;
mod helpers;
mod isolation;
mod resilience;
mod store;
mod thread;
mod threads;
