//! Work that must outlive the response: a chat reply still being read and stored after its
//! client left.
//!
//! On Vercel the adapter ([`crate::vercel`]) hands every request a [`Background`] that
//! registers tasks with the runtime's `wait_until`, which keeps the invocation alive until
//! they are done; everywhere else (the dev server, tests) the default is a plain Tokio task.

use std::{future::Future, pin::Pin, sync::Arc};

/// Runs work that must outlive the response. On Vercel it is `AppState::wait_until` (the
/// invocation stays alive until the work is done); elsewhere a plain Tokio task.
#[derive(Clone)]
pub struct Background(Arc<dyn Fn(BoxedTask) + Send + Sync>);

/// A task handed to [`Background`].
pub type BoxedTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

impl Background {
    pub fn new(spawn: impl Fn(BoxedTask) + Send + Sync + 'static) -> Self {
        Self(Arc::new(spawn))
    }

    /// Hands `task` to the runtime (or to Tokio).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        (self.0)(Box::pin(task));
    }
}

impl Default for Background {
    fn default() -> Self {
        Self::new(|task| {
            tokio::spawn(task);
        })
    }
}
