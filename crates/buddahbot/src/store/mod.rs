//! Threads and messages in Redis.
//!
//! [`Store`] has one method per use case; each is one round trip (an atomic pipeline, or a
//! script when a read decides a write), touches only keys from [`keys`], and restarts the
//! sliding TTL of every key it writes, the user's index included. Reads are bounded by the
//! page size: `ZRANGE … LIMIT` and `LRANGE` with computed bounds, never a whole collection.
//! Every use case touches one user's keys only, which share a hash tag, so it runs unchanged
//! on a Redis Cluster ([`StoreConn`]).
//!
//! The store knows nothing of HTTP; [`StoreError`] says whether Redis was unreachable (the
//! edge answers 503) or something else went wrong (500).
//!
//! The use cases by concern: `threads` (create, rename, delete, list, read a page), `turns`
//! (a chat turn's begin, lease renewal, finish), `undo` (taking back a write whose request
//! answered 503), [`stream`] (the resumable event log, stop),
//! `limits` (rate limits and the token budget), `search` (the full-text index and queries), [`control`] (signals pushed to the process
//! running a generation).

mod cache;
mod conn;
pub mod control;
mod conversations;
pub mod cursor;
mod error;
mod feedback;
mod import;
pub mod keys;
mod limits;
mod organize;
pub mod schema;
mod scripts;
mod search;
pub mod share;
pub mod stream;
mod summary;
mod threads;
mod turns;
mod undo;

use std::{sync::Arc, time::Duration};

use crate::{
    config::{RedisConfig, StoreConfig},
    domain::{ChatMessage, ThreadId, UserId},
};
pub use cache::CachedReply;
pub use conn::StoreConn;
pub use cursor::{CursorError, MessageCursor, SearchCursor, ThreadCursor};
pub use error::StoreError;
pub use feedback::{FeedbackEntry, FeedbackSet};
pub use import::ImportedThread;
pub use limits::{LimitSet, RateDecision, RateLimit, TokenBudget};
pub use organize::{Organize, Organized};
pub use search::{SearchHit, SearchPage, SearchRequest};
pub use stream::{EventId, LogBatch, StreamEvent};
pub use threads::{
    ArchivedFilter, BranchPage, BranchRead, LeafSet, MessagePage, ThreadFilter, ThreadPage,
};
pub use turns::{
    Calibration, ContextSummary, Finished, ModelTitle, NewTurn, Renewal, StreamEnd, ThreadContext,
    TurnIds, TurnStart,
};
pub use undo::Undo;

/// The thread store: a cheap handle over one multiplexed connection per process.
///
/// # Design
/// Whether Redis is one server or a Cluster is decided once, in [`Store::new`], from
/// [`RedisConfig::cluster`]; [`StoreConn`] hides the difference from every method here. All
/// requests of a process share one connection (a Cluster: one per primary), because
/// multiplexing costs nothing per request and a connection per request costs a handshake.
/// The exception is a blocking read, which would stall every command queued behind it on a
/// shared connection: it gets its own from [`Store::dedicated_connection`].
#[derive(Clone)]
pub struct Store {
    conn: StoreConn,
    /// This process's control channel: stop and resume signals for its generations.
    control: Arc<control::Control>,
    /// What `dedicated_connection` connects with.
    redis: Arc<RedisConfig>,
    ttl_ms: u64,
}

impl Store {
    /// A store over a lazily opened, self-reconnecting connection, to the single server or
    /// to the Cluster `redis` names: nothing is sent until the first command, so a process
    /// starts even while Redis is down, and requests answer 503 (after at most the connect or
    /// response timeout) until it is back.
    ///
    /// # Errors
    /// When the URL cannot be turned into a client (not expected: the config checked it).
    pub fn new(redis: &RedisConfig, store: &StoreConfig) -> Result<Self, StoreError> {
        let redis = Arc::new(redis.clone());
        Ok(Self {
            conn: StoreConn::shared(&redis)?,
            control: control::Control::new(Arc::clone(&redis)),
            redis,
            ttl_ms: u64::try_from(store.thread_ttl.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// This process's end of the control channel, where its generations register for stop
    /// and resume signals.
    pub fn control(&self) -> &Arc<control::Control> {
        &self.control
    }

    /// Opens a new connection that no other request shares, for one long blocking read
    /// (`XREAD BLOCK`, `BLPOP`): on the shared connection such a read would hold up every
    /// command queued behind it. Its replies may take up to `response_timeout` (`None`: no
    /// limit; give the blocking command its own timeout then). Drop it when the read is done.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached within the connect timeout.
    pub async fn dedicated_connection(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<StoreConn, StoreError> {
        Ok(StoreConn::dedicated(&self.redis, response_timeout).await?)
    }

    /// Answers `PING` (for readiness checks and warm-up). On a Cluster the client sends it to
    /// every primary it holds a connection to; one it has lost entirely is skipped rather than
    /// reported (a redis-rs limitation), so this can succeed while that primary's users get
    /// 503.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// A message as stored in the thread's list.
fn encode(user: &UserId, thread: &ThreadId, message: &ChatMessage) -> Result<String, StoreError> {
    // A message's place among the branches is the tree's to keep, never the message's.
    let stored;
    let message = if message.place.is_some() {
        stored = ChatMessage {
            place: None,
            ..message.clone()
        };
        &stored
    } else {
        message
    };
    serde_json::to_string(message).map_err(|e| StoreError::Corrupt {
        key: keys::thread_messages(user, thread),
        reason: e.to_string(),
    })
}
