//! Where a request's time went, for the `Server-Timing` header: the layers add what they
//! spent ([`add`]) to the request they run in, with no handle passed down; the HTTP layer
//! opens the record around each request ([`record`]) and writes the header.
//!
//! # Design
//! A Tokio task-local holds the record, so the store can time every Redis round trip at the
//! one place they all pass (its connection) without knowing about HTTP. Work a request
//! spawns (the rest of a streamed reply) runs outside the record, which is right: the header
//! leaves before it.

use std::{cell::Cell, future::Future, time::Duration};

/// What a request spends time on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Verifying the caller's credentials.
    Auth,
    /// Waiting for Redis.
    Store,
    /// Waiting for the model API: until its first chunk when streaming, its whole answer
    /// otherwise.
    Upstream,
}

/// Time spent per phase by one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub auth: Duration,
    pub store: Duration,
    pub upstream: Option<Duration>,
}

#[derive(Default)]
struct Record {
    auth: Cell<Duration>,
    store: Cell<Duration>,
    upstream: Cell<Option<Duration>>,
}

tokio::task_local! {
    static RECORD: Record;
}

/// Adds `spent` to `phase` of the request this runs in (nothing outside a request).
pub fn add(phase: Phase, spent: Duration) {
    let _ = RECORD.try_with(|record| match phase {
        Phase::Auth => record.auth.set(record.auth.get() + spent),
        Phase::Store => record.store.set(record.store.get() + spent),
        Phase::Upstream => record
            .upstream
            .set(Some(record.upstream.get().unwrap_or_default() + spent)),
    });
}

/// Runs `work` as a request whose time is recorded, and returns the record with its output.
pub async fn record<F: Future>(work: F) -> (F::Output, Timings) {
    RECORD
        .scope(Record::default(), async {
            let output = work.await;
            let timings = RECORD
                .try_with(|record| Timings {
                    auth: record.auth.get(),
                    store: record.store.get(),
                    upstream: record.upstream.get(),
                })
                .unwrap_or_default();
            (output, timings)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn time_adds_up_per_phase_within_its_request_only() {
        add(Phase::Store, Duration::from_millis(5));
        let ((), timings) = record(async {
            add(Phase::Store, Duration::from_millis(2));
            add(Phase::Store, Duration::from_millis(3));
            add(Phase::Auth, Duration::from_micros(7));
            // Spawned work is outside the request.
            tokio::spawn(async { add(Phase::Upstream, Duration::from_secs(1)) })
                .await
                .unwrap();
        })
        .await;
        assert_eq!(
            timings,
            Timings {
                auth: Duration::from_micros(7),
                store: Duration::from_millis(5),
                upstream: None,
            }
        );
    }
}
