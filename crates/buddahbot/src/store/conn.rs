//! The connection the store talks through: one server or a Redis Cluster, behind one type.
//!
//! [`StoreConn`] implements [`redis::aio::ConnectionLike`], so commands, pipelines and
//! `redis::Script`s run on it unchanged whichever Redis is behind it. On a Cluster each command
//! goes to the primary holding its keys' slot; a pipeline goes to the slot of its first keyed
//! command (the client refuses a pipeline spanning slots, and so would the server), and a
//! script's `EVALSHA` to the slot of its keys (its `SCRIPT LOAD` fallback goes to every
//! primary). The store's keys all carry the user's hash tag, so every use case stays in one
//! slot.
//!
//! This module only connects; what is sent lives in the store.

use std::time::{Duration, Instant};

use redis::{
    Cmd, Pipeline, RedisError, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    cluster_async::ClusterConnection,
};

use crate::{
    config::RedisConfig,
    timing::{self, Phase},
};

/// A handle on Redis: cheap to clone, and every clone shares the same connection(s).
#[derive(Clone)]
pub enum StoreConn {
    /// The process's shared connection to a single server: multiplexed, opened on first use,
    /// reopened after the server went away.
    Single(ConnectionManager),
    /// A connection of its own to a single server, for one long blocking read (see
    /// [`Store::dedicated_connection`](super::Store::dedicated_connection)). Not reopened.
    Dedicated(MultiplexedConnection),
    /// Connections to every primary of a Redis Cluster, with its slot map. Nodes that drop are
    /// reconnected and the slot map refreshed on `MOVED` or a failed node, in the background.
    Cluster(ClusterConnection),
}

impl StoreConn {
    /// The shared connection of a process, opened lazily: nothing is sent until the first
    /// command, so a process starts while Redis is down. Each command then fails within the
    /// connect or response timeout while Redis stays unreachable.
    ///
    /// # Errors
    /// When the configuration cannot make a client (not expected: the config checked it).
    pub(super) fn shared(redis: &RedisConfig) -> Result<Self, RedisError> {
        if redis.cluster {
            // The pending connection connects to the seed nodes in the background, and again
            // from the seeds when every node was lost; a command meanwhile waits at most the
            // (overall) response timeout.
            let client = redis.cluster_client(Some(redis.response_timeout))?;
            // A connection config replaces the client's per-node timeouts, so it repeats them.
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(redis.connect_timeout)
                .set_response_timeout(redis.response_timeout);
            return Ok(Self::Cluster(
                client.get_pending_async_connection_with_config(config),
            ));
        }
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(redis.connect_timeout))
            .set_response_timeout(Some(redis.response_timeout))
            // Reconnect attempts are also bounded by the timeouts above; keep them quick so a
            // restarted server is picked up within a second or so.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        Ok(Self::Single(ConnectionManager::new_lazy_with_config(
            redis.client()?,
            manager_config,
        )?))
    }

    /// A new connection nobody else uses, connected before this returns: a multiplexed
    /// connection to the single server, or a cluster connection of its own. Its replies may
    /// take up to `response_timeout` (`None`: no limit, for a blocking read that carries its
    /// own `BLOCK` timeout).
    ///
    /// # Errors
    /// When Redis cannot be reached within the connect timeout (for a Cluster: the connect
    /// timeout plus the configured response timeout, which also covers reading the slot map).
    pub(super) async fn dedicated(
        redis: &RedisConfig,
        response_timeout: Option<Duration>,
    ) -> Result<Self, RedisError> {
        if redis.cluster {
            let client = redis.cluster_client(response_timeout)?;
            let connect = client.get_async_connection();
            let budget = redis.connect_timeout + redis.response_timeout;
            return match tokio::time::timeout(budget, connect).await {
                Ok(conn) => Ok(Self::Cluster(conn?)),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to the redis cluster timed out",
                )
                .into()),
            };
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(redis.connect_timeout))
            .set_response_timeout(response_timeout);
        let conn = redis
            .client()?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(Self::Dedicated(conn))
    }
}

/// Counts a round trip's time toward the store time of the request it runs in
/// (`Server-Timing`).
fn timed<'a, T: Send + 'a>(round_trip: RedisFuture<'a, T>) -> RedisFuture<'a, T> {
    Box::pin(async move {
        let started = Instant::now();
        let reply = round_trip.await;
        timing::add(Phase::Store, started.elapsed());
        reply
    })
}

impl ConnectionLike for StoreConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        timed(match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Dedicated(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        timed(match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        })
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Dedicated(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}
