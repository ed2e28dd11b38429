//! Integration tests: a private redis-server per test, the real routers on a real socket,
//! real HTTP.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod attachments;
mod auth;
mod binaries;
mod branches;
mod cache;
mod chaos;
mod chat;
mod cluster;
mod connections;
mod context;
mod contract;
mod cors;
mod edges;
mod errors;
mod export;
mod feedback;
mod generation;
mod health;
mod helpers;
mod import;
mod isolation;
mod limits;
mod logs;
mod methods;
mod models;
mod organize;
mod properties;
mod reasoning;
mod redis_cost;
mod resilience;
mod responses;
mod resume;
mod schemathesis;
mod search;
mod server;
mod session;
mod share;
mod store;
mod thread;
mod threads;
mod timing;
mod titles;
mod tls;
mod tools;
mod ui;
mod web;
