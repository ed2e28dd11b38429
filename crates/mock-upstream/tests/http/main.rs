//! Integration tests: a real mock on a loopback port, driven over HTTP with reqwest.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

mod api;
mod binary;
mod context;
mod helpers;
mod knobs;
mod stream;
mod tools;
