//! Share links: a deliberate copy. A thread's current messages are snapshotted under an
//! unguessable token, in a key of its own outside the user's hash tag (the public reader
//! knows only the token); the thread's meta says it is shared. Revoking deletes the copy at
//! once; it also dies with its thread (the reader checks that it still exists) and with its
//! expiry.

use std::{collections::HashMap, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, keys, schema};
use crate::domain::{ThreadId, UserId};

/// Random bytes in a share token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A shared snapshot as stored: what the public sees, and (never shown) whose it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub title: String,
    pub messages: Vec<serde_json::Value>,
    pub shared_at: String,
    pub expires_at: Option<String>,
    pub owner: String,
    pub thread_id: String,
}

/// A fresh share token: 256 random bits, base64url.
///
/// # Errors
/// [`StoreError::Corrupt`] when the system has no randomness to give (it never should).
pub fn new_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt {
        key: "share token".to_owned(),
        reason: e.to_string(),
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `raw` has a share token's form (so a key is never built from anything else).
pub fn is_token(raw: &str) -> bool {
    raw.len() == 43
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Store {
    /// The thread's share token, if it is shared.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn share_token(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .clone()
            .hget(keys::thread_meta(user, thread), schema::SHARE_TOKEN)
            .await?)
    }

    /// Writes `snapshot` under `token` for `ttl` (or until revoked), and marks the thread
    /// shared, when it still exists. Returns whether it does.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn share(
        &self,
        user: &UserId,
        thread: &ThreadId,
        token: &str,
        snapshot: &Snapshot,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(snapshot).map_err(|e| StoreError::Corrupt {
            key: keys::shared(token),
            reason: e.to_string(),
        })?;
        let meta = keys::thread_meta(user, thread);
        let mut conn = self.conn.clone();
        let exists: bool = conn.exists(&meta).await?;
        if !exists {
            return Ok(false);
        }
        let mut set = redis::cmd("SET");
        set.arg(keys::shared(token)).arg(json);
        if let Some(ttl) = ttl {
            set.arg("PX")
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        }
        let () = set.query_async(&mut conn).await?;
        let () = redis::cmd("HSET")
            .arg(&meta)
            .arg(schema::SHARE_TOKEN)
            .arg(token)
            .arg(schema::SHARE_EXPIRES_AT)
            .arg(snapshot.expires_at.as_deref().unwrap_or(""))
            .query_async(&mut conn)
            .await?;
        Ok(true)
    }

    /// Revokes the thread's share link: the snapshot is gone at once. Returns whether there
    /// was one.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn unshare(&self, user: &UserId, thread: &ThreadId) -> Result<bool, StoreError> {
        let Some(token) = self.share_token(user, thread).await? else {
            return Ok(false);
        };
        let mut conn = self.conn.clone();
        let () = conn.del(keys::shared(&token)).await?;
        let () = conn
            .hdel(
                keys::thread_meta(user, thread),
                &[schema::SHARE_TOKEN, schema::SHARE_EXPIRES_AT],
            )
            .await?;
        Ok(true)
    }

    /// The snapshot shared under `token`, while its thread exists.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn shared(&self, token: &str) -> Result<Option<Snapshot>, StoreError> {
        if !is_token(token) {
            return Ok(None);
        }
        let mut conn = self.conn.clone();
        let raw: Option<String> = conn.get(keys::shared(token)).await?;
        let Some(snapshot) = raw.and_then(|j| serde_json::from_str::<Snapshot>(&j).ok()) else {
            return Ok(None);
        };
        let (Ok(owner), Ok(thread)) = (
            UserId::parse(&snapshot.owner),
            ThreadId::parse(&snapshot.thread_id),
        ) else {
            return Ok(None);
        };
        // A deleted (or expired) thread takes its share with it; so does a newer token.
        let meta: HashMap<String, String> =
            conn.hgetall(keys::thread_meta(&owner, &thread)).await?;
        if meta.get(schema::SHARE_TOKEN).map(String::as_str) != Some(token) {
            return Ok(None);
        }
        Ok(Some(snapshot))
    }
}
