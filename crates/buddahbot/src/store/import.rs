//! Imported threads, written whole in one round trip each (`import_thread.lua`).

use jiff::Timestamp;

use super::{Store, StoreError, encode, keys, scripts};
use crate::domain::{ChatMessage, ThreadId, Title, UserId};

/// A thread as an import brings it: everything but its user.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedThread {
    pub id: ThreadId,
    pub title: Title,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub archived: bool,
    pub pinned: bool,
    pub tags: Vec<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub external_id: Option<String>,
    /// The model of its latest reply.
    pub model: Option<String>,
    /// The messages in the order they were written, each with its parent's position in this
    /// list (`None` for a first message); a parent comes before its children.
    pub messages: Vec<(ChatMessage, Option<usize>)>,
    /// The position of the active branch's last message.
    pub active_leaf: Option<usize>,
}

impl ImportedThread {
    /// Whether every message follows the one before it (no tree needed).
    fn is_linear(&self) -> bool {
        self.messages
            .iter()
            .enumerate()
            .all(|(i, (_, parent))| *parent == i.checked_sub(1))
            && self
                .active_leaf
                .is_none_or(|leaf| leaf + 1 == self.messages.len())
    }
}

impl Store {
    /// Writes an imported thread for `user`. `false` (nothing written) when a thread of that
    /// id exists: importing the same thing twice creates nothing the second time.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or a message cannot be encoded.
    pub async fn import_thread(
        &self,
        user: &UserId,
        thread: &ImportedThread,
    ) -> Result<bool, StoreError> {
        let id = &thread.id;
        let index = |i: Option<usize>| i.and_then(|i| i64::try_from(i).ok()).unwrap_or(-1);
        let mut invocation = scripts::IMPORT_THREAD.prepare_invoke();
        invocation
            .key(keys::thread_meta(user, id))
            .key(keys::thread_messages(user, id))
            .key(keys::thread_index(user))
            .key(keys::thread_turns(user, id))
            .key(keys::thread_tree(user, id))
            .key(keys::thread_path(user, id))
            .arg(id.as_str())
            .arg(user.as_str())
            .arg(thread.title.as_str())
            .arg(thread.created_at.as_millisecond())
            .arg(thread.updated_at.as_millisecond())
            .arg(self.ttl_ms)
            .arg(if thread.archived { "1" } else { "" })
            .arg(if thread.pinned { "1" } else { "" })
            .arg(if thread.tags.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&thread.tags).unwrap_or_default()
            })
            .arg(if thread.metadata.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&thread.metadata).unwrap_or_default()
            })
            .arg(thread.external_id.as_deref().unwrap_or_default())
            .arg(index(thread.active_leaf))
            .arg(if thread.is_linear() { "" } else { "1" })
            .arg(thread.model.as_deref().unwrap_or_default());
        for (message, parent) in &thread.messages {
            invocation
                .arg(index(*parent))
                .arg(encode(user, id, message)?);
        }
        let written: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(written == 1)
    }
}
