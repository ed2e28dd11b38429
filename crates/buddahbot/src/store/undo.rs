//! Writes whose outcome is unknown, and how they are taken back.
//!
//! # Design
//! A round trip that timed out, or whose connection dropped once it was sent, may still run:
//! a frozen or slow Redis executes what it received when it answers again, in the order each
//! connection sent it. Its request has answered `503 store_unavailable` by then, which tells
//! the client that a retry is safe and will work; so whatever the write leaves must not block
//! that retry (a begun turn would hold its thread as generating until its lease ran out, a
//! created thread would answer its retry `thread_exists`).
//!
//! So the request, as it answers, hands its [`Undo`] to [`Store::settle`] (in the background,
//! which on Vercel keeps the invocation alive for it): a script that takes back what the
//! write did, when and only when it ran and nothing built on it since. The first attempt is
//! sent at once, on the same shared connection as the write, so Redis runs it right after the
//! write; it is sent again until Redis answers it (after a reconnect, a write that was lost
//! with its connection leaves nothing to take back) or its horizon passes (a turn's lease:
//! past it, what the begin left blocks nothing). Each undo is conditional and idempotent, so
//! a second run, or one after a retry took over, changes nothing.
//!
//! A write refused before it was sent (the connection was refused) needs no undo.

use std::time::Duration;

use tokio::time::Instant;

use super::{Store, StoreError, TurnIds, keys, scripts};
use crate::domain::{ThreadId, UserId};

/// How long a thread creation's undo keeps being sent (a creation has no lease to wait out).
const CREATE_UNDO_HORIZON: Duration = Duration::from_secs(60);
/// The wait between attempts while Redis does not answer.
const RETRY_DELAY: Duration = Duration::from_millis(100);

/// What to take back of a write whose request answered 503.
#[derive(Debug, Clone)]
pub enum Undo {
    /// A turn's begin: the attempt is named by its reply id.
    BeginTurn {
        ids: TurnIds,
        regenerate: bool,
        /// The number of messages the turn adds, when its request made the thread under an id
        /// of its own (no client knows it: the retry makes another thread, so this one goes).
        made_thread: Option<usize>,
        /// The begin's lease: once it ran out, the turn no longer blocks anything.
        lease: Duration,
    },
    /// A thread's creation, with the messages the same request appended to it.
    CreateThread {
        user: UserId,
        thread: ThreadId,
        /// The `createdAt` the creation wrote (ms): it tells this thread from a later one of
        /// the same id.
        created_at_ms: i64,
        messages: usize,
    },
}

impl Undo {
    /// How long it is worth sending.
    fn horizon(&self) -> Duration {
        match self {
            Self::BeginTurn { lease, .. } => *lease,
            Self::CreateThread { .. } => CREATE_UNDO_HORIZON,
        }
    }
}

impl StoreError {
    /// Whether the write that failed so may still run: it timed out, or its connection went
    /// away once it may have been sent (a refused connection sent nothing).
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Unavailable(err) => !err.is_connection_refusal(),
            Self::Command(_) | Self::Corrupt { .. } => false,
        }
    }
}

impl Store {
    /// Takes back `undo`'s write, if it ran: sends the undo at once, then again every 100 ms
    /// while Redis does not answer, for at most the undo's horizon. Never fails: what it
    /// could not take back, a lease ends.
    pub async fn settle(self, undo: Undo) {
        let deadline = Instant::now() + undo.horizon();
        loop {
            match self.undo(&undo).await {
                Ok(took_back) => {
                    if took_back {
                        tracing::info!(?undo, "took back a write whose request answered 503");
                    }
                    return;
                }
                Err(err @ StoreError::Unavailable(_))
                    if Instant::now() + RETRY_DELAY < deadline =>
                {
                    tracing::debug!(error = %err, "redis does not answer yet; sending the undo again");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                Err(err) => {
                    tracing::warn!(?undo, error = %err, "could not take back a write whose request answered 503");
                    return;
                }
            }
        }
    }

    /// One attempt at `undo`: whether it found the write and took it back.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn undo(&self, undo: &Undo) -> Result<bool, StoreError> {
        let mut invocation;
        match undo {
            Undo::BeginTurn {
                ids,
                regenerate,
                made_thread,
                ..
            } => {
                let (user, thread) = (&ids.user, &ids.thread);
                invocation = scripts::UNDO_BEGIN.prepare_invoke();
                invocation
                    .key(keys::thread_turns(user, thread))
                    .key(keys::thread_meta(user, thread))
                    .key(keys::thread_tree(user, thread))
                    .key(keys::thread_path(user, thread))
                    .key(keys::thread_index(user))
                    .key(keys::thread_messages(user, thread))
                    .key(keys::thread_stream(user, thread))
                    .arg(ids.user_message.as_str())
                    .arg(ids.reply.as_str())
                    .arg(if *regenerate { "1" } else { "0" })
                    .arg(if made_thread.is_some() { "1" } else { "0" })
                    .arg(made_thread.unwrap_or(0))
                    .arg(thread.as_str());
            }
            Undo::CreateThread {
                user,
                thread,
                created_at_ms,
                messages,
            } => {
                invocation = scripts::UNDO_CREATE.prepare_invoke();
                invocation.key(keys::thread_index(user));
                for key in keys::thread_keys(user, thread) {
                    invocation.key(key);
                }
                invocation
                    .arg(thread.as_str())
                    .arg(*created_at_ms)
                    .arg(*messages);
            }
        }
        let done: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(done > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(kind: std::io::ErrorKind) -> StoreError {
        StoreError::from(redis::RedisError::from(std::io::Error::from(kind)))
    }

    #[test]
    fn only_a_write_that_may_have_been_sent_has_an_unknown_outcome() {
        let cases = [
            ("timed out", unavailable(std::io::ErrorKind::TimedOut), true),
            (
                "connection reset",
                unavailable(std::io::ErrorKind::ConnectionReset),
                true,
            ),
            (
                "connection refused",
                unavailable(std::io::ErrorKind::ConnectionRefused),
                false,
            ),
            (
                "corrupt",
                StoreError::Corrupt {
                    key: "k".to_owned(),
                    reason: "r".to_owned(),
                },
                false,
            ),
        ];
        for (case, err, unknown) in cases {
            assert_eq!(err.outcome_unknown(), unknown, "{case}");
        }
    }
}
