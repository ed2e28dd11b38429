//! A thread's context summary: claimed by one writer, then kept (both off the client's path).

use std::time::Duration;

use super::{Store, StoreError, keys, scripts};
use crate::domain::{MessageId, ThreadId, UserId, now};

/// How long a claim to write a summary holds (a writer that dies frees it after this).
const CLAIM: Duration = Duration::from_secs(60);

/// More messages than any branch holds.
const WHOLE_BRANCH: usize = 100_000;

impl Store {
    /// Claims the writing of a summary of the thread's first `count` messages: `true` when
    /// this caller should write it.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn claim_summary(
        &self,
        user: &UserId,
        thread: &ThreadId,
        count: usize,
    ) -> Result<bool, StoreError> {
        let now_ms = now().as_millisecond();
        let claimed: i64 = scripts::CLAIM_SUMMARY
            .key(keys::thread_meta(user, thread))
            .arg(now_ms)
            .arg(now_ms.saturating_add(i64::try_from(CLAIM.as_millis()).unwrap_or(i64::MAX)))
            .arg(count)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(claimed == 1)
    }

    /// Keeps a summary of the thread's first `count` conversation messages (fingerprint
    /// `hash`; `through` the last of them), unless the thread is gone or a summary of more
    /// messages was kept since. Returns whether it was kept.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn save_summary(
        &self,
        user: &UserId,
        thread: &ThreadId,
        text: &str,
        count: usize,
        hash: &str,
        through: Option<&MessageId>,
    ) -> Result<bool, StoreError> {
        let kept: i64 = scripts::SAVE_SUMMARY
            .key(keys::thread_meta(user, thread))
            .arg(text)
            .arg(count)
            .arg(hash)
            .arg(through.map_or("", MessageId::as_str))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(kept == 1)
    }

    /// The id of the `n`-th (1-based) message of the thread's active branch that is not a
    /// system message: the last message a summary of the first `n` covers.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn nth_message_id(
        &self,
        user: &UserId,
        thread: &ThreadId,
        n: usize,
    ) -> Result<Option<MessageId>, StoreError> {
        if n == 0 {
            return Ok(None);
        }
        // A summary is written in the background, rarely: the whole branch is read.
        let page = match self
            .branch_page(user, thread, WHOLE_BRANCH, None, super::BranchRead::Active)
            .await?
        {
            super::BranchPage::Page(page) => page,
            super::BranchPage::ThreadNotFound | super::BranchPage::MessageNotFound => {
                return Ok(None);
            }
        };
        Ok(page
            .messages
            .into_iter()
            .filter(|m| m.role != crate::domain::Role::System)
            .nth(n - 1)
            .map(|m| m.id))
    }
}
