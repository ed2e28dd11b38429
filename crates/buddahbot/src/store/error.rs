//! Why a store operation failed: unreachable (the edge answers 503) or anything else (500).

use redis::{ErrorKind, RedisError};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached in time (refused, dropped, timed out). Retryable.
    #[error("redis is unavailable")]
    Unavailable(#[source] RedisError),
    /// Redis answered with an error we did not expect (a bug or a misconfigured server).
    #[error("redis command failed")]
    Command(#[source] RedisError),
    /// A stored value does not have the shape this code writes.
    #[error("stored value at `{key}` is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

impl From<RedisError> for StoreError {
    fn from(e: RedisError) -> Self {
        if e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_io_error()
            // A Cluster that is failing over or resharding (CLUSTERDOWN, TRYAGAIN, a redirect
            // the client gave up on), or whose nodes the client cannot reach.
            || e.is_cluster_error()
            || e.kind() == ErrorKind::ClusterConnectionNotFound
        {
            Self::Unavailable(e)
        } else {
            Self::Command(e)
        }
    }
}
