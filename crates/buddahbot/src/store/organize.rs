//! A thread's organisation (archived, pinned, tags, metadata, external id) and the filtered
//! listings it puts the thread in.

use super::{Store, StoreError, keys, scripts};
use crate::domain::{ThreadId, UserId};

/// What to change; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Organize {
    pub archived: Option<bool>,
    pub pinned: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
}

impl Organize {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What [`Store::organize`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Organized {
    Done,
    ThreadNotFound,
    /// Another thread of the user has that external id.
    ExternalIdTaken,
}

fn switch(value: Option<bool>) -> &'static str {
    match value {
        None => "",
        Some(true) => "1",
        Some(false) => "0",
    }
}

impl Store {
    /// Applies `changes` to a thread in one round trip, moving it between its listings
    /// without changing `updatedAt`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn organize(
        &self,
        user: &UserId,
        thread: &ThreadId,
        changes: &Organize,
    ) -> Result<Organized, StoreError> {
        let tags = changes
            .tags
            .as_ref()
            .map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".to_owned()))
            .unwrap_or_default();
        let metadata = changes
            .metadata
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string())
            .unwrap_or_default();
        let external = match &changes.external_id {
            None => String::new(),
            Some(None) => "-".to_owned(),
            Some(Some(id)) => id.clone(),
        };
        let done: i64 = scripts::ORGANIZE
            .key(keys::thread_meta(user, thread))
            .key(keys::thread_index(user))
            .arg(thread.as_str())
            .arg(switch(changes.archived))
            .arg(switch(changes.pinned))
            .arg(tags)
            .arg(metadata)
            .arg(external)
            .arg(self.ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match done {
            1 => Organized::Done,
            -1 => Organized::ExternalIdTaken,
            _ => Organized::ThreadNotFound,
        })
    }
}
