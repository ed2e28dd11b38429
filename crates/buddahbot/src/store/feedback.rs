//! Feedback on replies: kept on the message itself (so every view shows it) and in a
//! per-user index, newest first, for listing.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, keys, scripts};
use crate::domain::{ChatMessage, Feedback, MessageId, Role, ThreadId, UserId, now};

/// What setting feedback found.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackSet {
    Done(Box<ChatMessage>),
    ThreadNotFound,
    MessageNotFound,
    /// Feedback is for replies.
    NotAReply,
}

/// One listed feedback entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackEntry {
    pub thread_id: String,
    pub message_id: String,
    #[serde(flatten)]
    pub feedback: Feedback,
}

/// Messages a thread may hold that a feedback write reads through at most.
const WHOLE_THREAD: isize = 100_000;

impl Store {
    /// Sets (`Some`) or clears (`None`) the feedback on reply `message` of `thread`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or the message keeps changing under the write.
    pub async fn set_feedback(
        &self,
        user: &UserId,
        thread: &ThreadId,
        message: &MessageId,
        feedback: Option<Feedback>,
    ) -> Result<FeedbackSet, StoreError> {
        let key = keys::thread_messages(user, thread);
        let entry_key = format!("{thread}/{message}");
        // The message may move under a concurrent write only by being replaced: try again.
        for _ in 0..3 {
            let raw: Vec<String> = self.conn.clone().lrange(&key, 0, WHOLE_THREAD).await?;
            let found = raw.iter().enumerate().find_map(|(i, json)| {
                let parsed: ChatMessage = serde_json::from_str(json).ok()?;
                (parsed.id == *message && !parsed.deleted).then_some((i, json, parsed))
            });
            let Some((index, old, mut parsed)) = found else {
                let exists: bool = self
                    .conn
                    .clone()
                    .exists(keys::thread_meta(user, thread))
                    .await?;
                return Ok(if exists {
                    FeedbackSet::MessageNotFound
                } else {
                    FeedbackSet::ThreadNotFound
                });
            };
            if parsed.role != Role::Assistant {
                return Ok(FeedbackSet::NotAReply);
            }
            parsed.feedback.clone_from(&feedback);
            let new = serde_json::to_string(&parsed).map_err(|e| StoreError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            let entry = match &feedback {
                Some(feedback) => serde_json::to_string(&FeedbackEntry {
                    thread_id: thread.to_string(),
                    message_id: message.to_string(),
                    feedback: feedback.clone(),
                })
                .unwrap_or_default(),
                None => String::new(),
            };
            let written: i64 = scripts::SET_MESSAGE
                .key(keys::thread_meta(user, thread))
                .key(&key)
                .key(keys::feedback_index(user))
                .key(keys::feedback_data(user))
                .arg(index)
                .arg(old)
                .arg(&new)
                .arg(&entry_key)
                .arg(entry)
                .arg(now().as_millisecond())
                .arg(self.ttl_ms)
                .invoke_async(&mut self.conn.clone())
                .await?;
            match written {
                1 => return Ok(FeedbackSet::Done(Box::new(parsed))),
                0 => return Ok(FeedbackSet::ThreadNotFound),
                _ => {}
            }
        }
        Err(StoreError::Corrupt {
            key,
            reason: "the message kept changing while its feedback was written".to_owned(),
        })
    }

    /// A page of `user`'s feedback, newest first, before `before` (a score-and-key cursor);
    /// entries of threads deleted since are left out and pruned.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn list_feedback(
        &self,
        user: &UserId,
        limit: usize,
        before: Option<(i64, String)>,
    ) -> Result<(Vec<FeedbackEntry>, Option<(i64, String)>), StoreError> {
        let index = keys::feedback_index(user);
        let mut conn = self.conn.clone();
        let max = before
            .as_ref()
            .map_or_else(|| "+inf".to_owned(), |(score, _)| score.to_string());
        // Ties at the cursor's score are read again and skipped up to the cursor's key.
        let listed: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&index)
            .arg(&max)
            .arg("-inf")
            .arg("BYSCORE")
            .arg("REV")
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1 + usize::from(before.is_some()) * 64)
            .query_async(&mut conn)
            .await?;
        let mut candidates: Vec<(String, i64)> = listed
            .into_iter()
            .map(|(key, score)| (key, score as i64))
            .collect();
        if let Some((score, key)) = &before {
            // Members with the cursor's score come in reverse lexicographic order.
            candidates.retain(|(k, s)| *s < *score || (*s == *score && k < key));
        }
        let more = candidates.len() > limit;
        candidates.truncate(limit);
        if candidates.is_empty() {
            return Ok((Vec::new(), None));
        }
        let keys_: Vec<&str> = candidates.iter().map(|(k, _)| k.as_str()).collect();
        let data: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys::feedback_data(user))
            .arg(&keys_)
            .query_async(&mut conn)
            .await?;
        let mut entries = Vec::with_capacity(candidates.len());
        let mut stale = Vec::new();
        for ((key, _), json) in candidates.iter().zip(data) {
            let entry: Option<FeedbackEntry> = json.and_then(|j| serde_json::from_str(&j).ok());
            let alive = match &entry {
                Some(entry) => match ThreadId::parse(&entry.thread_id) {
                    Ok(thread) => conn.exists(keys::thread_meta(user, &thread)).await?,
                    Err(_) => false,
                },
                None => false,
            };
            match entry {
                Some(entry) if alive => entries.push(entry),
                _ => stale.push(key.clone()),
            }
        }
        if !stale.is_empty() {
            let () = redis::pipe()
                .zrem(&index, &stale)
                .ignore()
                .hdel(keys::feedback_data(user), &stale)
                .ignore()
                .query_async(&mut conn)
                .await?;
        }
        let next = if more {
            candidates.last().map(|(k, s)| (*s, k.clone()))
        } else {
            None
        };
        Ok((entries, next))
    }
}
