//! The response cache: answers to temperature-0 model inputs, kept for a while so an
//! identical input is answered without calling the model. Only the answer is kept (its text,
//! tool calls, finish reason, usage and model): nothing of who asked or where.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::domain::{ToolCall, Usage};

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedReply {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    pub finish_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    pub model: String,
}

impl Store {
    /// The answer cached under `key`, if any (a corrupt one counts as none).
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn cached_reply(&self, key: &str) -> Result<Option<CachedReply>, StoreError> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Keeps `reply` under `key` for `ttl`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn cache_reply(
        &self,
        key: &str,
        reply: &CachedReply,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(reply).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        let () = redis::cmd("SET")
            .arg(key)
            .arg(json)
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
