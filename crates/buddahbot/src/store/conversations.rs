//! What the Conversations and Responses APIs keep beyond the thread's own (a conversation's
//! metadata, messages deleted through them), and model-written titles.

use std::collections::HashMap;

use serde_json::Value;

use super::{Store, StoreError, keys, schema, scripts, threads::parse_meta};
use crate::domain::{MessageId, Thread, ThreadId, UserId};

impl Store {
    /// Deletes messages of a thread in place (see `delete_messages.lua`). Returns how many.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn delete_messages(
        &self,
        user: &UserId,
        thread: &ThreadId,
        ids: &[MessageId],
    ) -> Result<u64, StoreError> {
        let mut invocation = scripts::DELETE_MESSAGES.prepare_invoke();
        invocation
            .key(keys::thread_meta(user, thread))
            .key(keys::thread_messages(user, thread));
        for id in ids {
            invocation.arg(id.as_str());
        }
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    /// Sets one meta field of an existing thread. `false` when it does not exist.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn set_thread_field(
        &self,
        user: &UserId,
        thread: &ThreadId,
        field: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let set: i64 = scripts::SET_FIELD
            .key(keys::thread_meta(user, thread))
            .arg(field)
            .arg(value)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(set == 1)
    }

    /// Keeps a conversation's metadata (a JSON object) on its thread. `false` when the thread
    /// does not exist.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn set_conversation_metadata(
        &self,
        user: &UserId,
        thread: &ThreadId,
        metadata: &str,
    ) -> Result<bool, StoreError> {
        self.set_thread_field(user, thread, schema::CONVERSATION_METADATA, metadata)
            .await
    }

    /// Sets a model-written title (`None` when the model gave none): over the provisional
    /// one, or over any when `force`d; and counts the `tokens` it cost toward the user's day,
    /// in the same round trip. Returns whether the title was set (`false`: none, the thread
    /// is gone, or the user named it).
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn set_model_title(
        &self,
        user: &UserId,
        thread: &ThreadId,
        title: Option<&crate::domain::Title>,
        force: bool,
        tokens: u64,
    ) -> Result<bool, StoreError> {
        let set: i64 = scripts::SET_TITLE
            .key(keys::thread_meta(user, thread))
            .key(super::limits::todays_tokens_key(user))
            .key(keys::search_changed(user))
            .key(keys::search_root(user))
            .arg(title.map_or("", crate::domain::Title::as_str))
            .arg(if force { "1" } else { "" })
            .arg(tokens)
            .arg(super::limits::TOKEN_COUNTER_TTL.as_secs())
            .arg(thread.as_str())
            .arg(self.ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(set == 1)
    }

    /// A thread with its conversation metadata (`{}` when it has none); `None` when it does
    /// not exist for this user.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or the meta is corrupt.
    pub async fn conversation(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<(Thread, Value)>, StoreError> {
        let meta: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(keys::thread_meta(user, thread))
            .query_async(&mut self.conn.clone())
            .await?;
        if meta.is_empty() {
            return Ok(None);
        }
        let metadata = meta
            .get(schema::CONVERSATION_METADATA)
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        Ok(Some((parse_meta(user, thread, &meta)?, metadata)))
    }
}
