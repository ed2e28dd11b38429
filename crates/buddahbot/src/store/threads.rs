//! Threads and their messages: create, rename, delete, list a user's threads newest first,
//! and read a thread a page of messages at a time. Every read is bounded by the page size.

use std::collections::HashMap;

use jiff::Timestamp;
use redis::AsyncCommands;

use super::{
    Store, StoreConn, StoreError,
    cursor::{MessageCursor, ThreadCursor},
    encode, keys, schema, scripts,
};
use crate::domain::{ChatMessage, MessageId, Thread, ThreadId, ThreadStatus, Title, UserId, now};

/// How many thread ids `delete_all_threads` removes per round trip, so no single command
/// holds the server for long however many threads a user has.
const DELETE_BATCH: isize = 500;

/// How often `list_threads` refills a page that lost threads to expiry before it gives up
/// and returns a short page (with a cursor, so nothing is skipped).
const MAX_REFILLS: usize = 4;

/// `ZRANGE … WITHSCORES` as `(member, score)` pairs.
type Scored = Vec<(String, f64)>;

/// Which of a user's threads a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadFilter {
    pub archived: ArchivedFilter,
    /// Pinned ones only.
    pub pinned: bool,
    /// Those with this tag (any case).
    pub tag: Option<String>,
    /// The one with this external id.
    pub external_id: Option<String>,
}

/// `archived=false | true | all`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ArchivedFilter {
    #[default]
    Exclude,
    Only,
    Include,
}

impl ThreadFilter {
    /// The listings (sorted sets) holding what the filter admits.
    fn listings(&self, index: &str) -> Vec<String> {
        if let Some(tag) = &self.tag {
            return vec![format!("{index}:tag:{}", tag.to_lowercase())];
        }
        if self.pinned {
            return vec![format!("{index}:pinned")];
        }
        match self.archived {
            ArchivedFilter::Exclude => vec![index.to_owned()],
            ArchivedFilter::Only => vec![format!("{index}:archived")],
            ArchivedFilter::Include => vec![index.to_owned(), format!("{index}:archived")],
        }
    }

    /// Whether `thread` passes (checked on the meta too, whatever listing it came from).
    fn admits(&self, thread: &Thread) -> bool {
        let archived = match self.archived {
            ArchivedFilter::Exclude => !thread.archived,
            ArchivedFilter::Only => thread.archived,
            ArchivedFilter::Include => true,
        };
        let tagged = self.tag.as_ref().is_none_or(|tag| {
            thread
                .tags
                .iter()
                .any(|t| t.to_lowercase() == tag.to_lowercase())
        });
        archived && (!self.pinned || thread.pinned) && tagged
    }
}

/// One page of a user's threads, newest first.
#[derive(Debug, Clone)]
pub struct ThreadPage {
    pub threads: Vec<Thread>,
    pub next: Option<ThreadCursor>,
}

/// A thread with one page of its messages, oldest first.
#[derive(Debug, Clone)]
pub struct MessagePage {
    pub thread: Thread,
    pub messages: Vec<ChatMessage>,
    pub next: Option<MessageCursor>,
}

impl Store {
    /// Creates a thread. `id` is the client's when it gave one, else a fresh UUID.
    /// Returns `None` when a thread with that id already exists for this user.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn create_thread(
        &self,
        user: &UserId,
        id: Option<ThreadId>,
        title: Option<Title>,
    ) -> Result<Option<Thread>, StoreError> {
        // A thread created without a title is named by its first reply's model-written one.
        let provisional = title.is_none();
        let title = title.unwrap_or_else(Title::untitled);
        let id = id.unwrap_or_default();
        let created_at = now();
        let created: i64 = scripts::CREATE_THREAD
            .key(keys::thread_meta(user, &id))
            .key(keys::thread_index(user))
            .arg(id.as_str())
            .arg(user.as_str())
            .arg(title.as_str())
            .arg(created_at.as_millisecond())
            .arg(self.ttl_ms)
            .arg(if provisional { "1" } else { "" })
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((created == 1).then(|| Thread {
            id,
            user_id: user.clone(),
            title,
            created_at,
            updated_at: created_at,
            message_count: 0,
            model: None,
            status: ThreadStatus::Idle,
            context_summary: None,
            context_summary_through: None,
            archived: false,
            pinned: false,
            tags: Vec::new(),
            metadata: serde_json::Map::new(),
            external_id: None,
            share: None,
            forked_from: None,
        }))
    }

    /// Appends `messages` (oldest first) to an existing thread, bumps its `updatedAt` and
    /// records the model of the last message that names one. Returns the updated thread, or
    /// `None` when it does not exist (expired, deleted, or another user's).
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or a message cannot be encoded.
    pub async fn append_messages(
        &self,
        user: &UserId,
        thread: &ThreadId,
        messages: &[ChatMessage],
    ) -> Result<Option<Thread>, StoreError> {
        let model = messages
            .iter()
            .rev()
            .find_map(|m| m.model.as_deref())
            .unwrap_or("");
        let mut invocation = scripts::TOUCH_THREAD.prepare_invoke();
        self.touch(&mut invocation, user, thread, "", model);
        for message in messages {
            invocation.arg(encode(user, thread, message)?);
        }
        self.run_touch(invocation, user, thread).await
    }

    /// Renames a thread. `None` when it does not exist.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn rename_thread(
        &self,
        user: &UserId,
        thread: &ThreadId,
        title: &Title,
    ) -> Result<Option<Thread>, StoreError> {
        let mut invocation = scripts::TOUCH_THREAD.prepare_invoke();
        self.touch(&mut invocation, user, thread, title.as_str(), "");
        self.run_touch(invocation, user, thread).await
    }

    fn touch(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        user: &UserId,
        thread: &ThreadId,
        title: &str,
        model: &str,
    ) {
        invocation
            .key(keys::thread_meta(user, thread))
            .key(keys::thread_messages(user, thread))
            .key(keys::thread_index(user))
            .arg(thread.as_str())
            .arg(now().as_millisecond())
            .arg(self.ttl_ms)
            .arg(title)
            .arg(model);
    }

    async fn run_touch(
        &self,
        invocation: redis::ScriptInvocation<'_>,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<Thread>, StoreError> {
        let meta: Option<HashMap<String, String>> =
            invocation.invoke_async(&mut self.conn.clone()).await?;
        meta.map(|m| parse_meta(user, thread, &m)).transpose()
    }

    /// Deletes a thread and its messages. Returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn delete_thread(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<bool, StoreError> {
        // A shared snapshot is a copy outside the thread's keys: it goes with the thread.
        let shared: Option<String> = self
            .conn
            .clone()
            .hget(keys::thread_meta(user, thread), schema::SHARE_TOKEN)
            .await?;
        if let Some(token) = shared.filter(|t| super::share::is_token(t)) {
            let () = self.conn.clone().del(keys::shared(&token)).await?;
        }
        let mut invocation = scripts::DELETE_THREAD.prepare_invoke();
        invocation.key(keys::thread_index(user));
        for key in keys::thread_keys(user, thread) {
            invocation.key(key);
        }
        let deleted: u64 = invocation
            .arg(thread.as_str())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(deleted > 0)
    }

    /// Deletes every thread of `user`, in batches. Returns how many threads were removed.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails; threads deleted before the failure stay deleted.
    pub async fn delete_all_threads(&self, user: &UserId) -> Result<u64, StoreError> {
        let index = keys::thread_index(user);
        let mut conn = self.conn.clone();
        let mut removed = 0;
        // Archived threads are listed apart: both listings hold every thread between them.
        for listing in [index.clone(), format!("{index}:archived")] {
            loop {
                let ids: Vec<String> = conn.zrange(&listing, 0, DELETE_BATCH - 1).await?;
                if ids.is_empty() {
                    break;
                }
                for raw in &ids {
                    match ThreadId::parse(raw) {
                        Ok(id) => {
                            self.delete_thread(user, &id).await?;
                        }
                        // An id that fails validation cannot have keys of ours; unlink it.
                        Err(_) => {
                            let () = conn.zrem(&listing, raw).await?;
                        }
                    }
                }
                removed += ids.len() as u64;
            }
        }
        let () = conn
            .del(&[format!("{index}:pinned"), format!("{index}:external")])
            .await?;
        Ok(removed)
    }

    /// One page of `user`'s threads that are not archived, newest first, starting after
    /// `after`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or a stored thread is corrupt.
    pub async fn list_threads(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<ThreadCursor>,
    ) -> Result<ThreadPage, StoreError> {
        self.list_filtered(user, &ThreadFilter::default(), limit, after)
            .await
    }

    /// One page of `user`'s threads that pass `filter`, newest first, starting after
    /// `after`. Each filter reads a listing of its own (`index.lua`), so a page costs
    /// O(page) whatever the filter.
    ///
    /// Ids whose meta has expired are pruned from the listing on the way, and the page is
    /// refilled from further down.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or a stored thread is corrupt.
    pub async fn list_filtered(
        &self,
        user: &UserId,
        filter: &ThreadFilter,
        limit: usize,
        after: Option<ThreadCursor>,
    ) -> Result<ThreadPage, StoreError> {
        let index = keys::thread_index(user);
        let mut conn = self.conn.clone();
        if let Some(external) = &filter.external_id {
            let id: Option<String> = conn.hget(format!("{index}:external"), external).await?;
            let mut threads = Vec::new();
            if let Some(id) = id.and_then(|raw| ThreadId::parse(&raw).ok())
                && after.is_none()
            {
                let meta: HashMap<String, String> =
                    conn.hgetall(keys::thread_meta(user, &id)).await?;
                if !meta.is_empty() {
                    let thread = parse_meta(user, &id, &meta)?;
                    if thread.external_id.as_deref() == Some(external) && filter.admits(&thread) {
                        threads.push(thread);
                    }
                }
            }
            return Ok(ThreadPage {
                threads,
                next: None,
            });
        }
        let sets = filter.listings(&index);
        let mut threads = Vec::with_capacity(limit);
        let mut cursor = after;
        for _ in 0..=MAX_REFILLS {
            let want = limit - threads.len();
            let mut candidates: Vec<(ThreadId, i64)> = Vec::new();
            let mut more = false;
            for set in &sets {
                let (page, set_more) = self
                    .index_page(&mut conn, set, want, cursor.as_ref())
                    .await?;
                candidates.extend(page);
                more |= set_more;
            }
            // Several listings merge into one order: newest first, then id descending.
            candidates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.as_str().cmp(a.0.as_str())));
            candidates.dedup_by(|a, b| a.0 == b.0);
            if candidates.len() > want {
                more = true;
                candidates.truncate(want);
            }
            let Some((last_id, last_score)) = candidates.last().cloned() else {
                return Ok(ThreadPage {
                    threads,
                    next: None,
                });
            };
            cursor = Some(ThreadCursor {
                updated_at_ms: last_score,
                id: last_id,
            });
            let mut pipe = redis::pipe();
            for (id, _) in &candidates {
                pipe.hgetall(keys::thread_meta(user, id));
            }
            let metas: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
            let mut expired = Vec::new();
            let mut skipped = false;
            for ((id, _), meta) in candidates.into_iter().zip(metas) {
                if meta.is_empty() {
                    expired.push(id);
                    continue;
                }
                let thread = parse_meta(user, &id, &meta)?;
                if filter.admits(&thread) {
                    threads.push(thread);
                } else {
                    skipped = true;
                }
            }
            if !expired.is_empty() {
                for set in &sets {
                    self.prune_index(&mut conn, set, user, &expired).await?;
                }
            }
            if (expired.is_empty() && !skipped) || !more || threads.len() == limit {
                return Ok(ThreadPage {
                    threads,
                    next: if more { cursor } else { None },
                });
            }
        }
        Ok(ThreadPage {
            threads,
            next: cursor,
        })
    }

    /// Up to `want` `(id, updatedAt)` pairs after `cursor` in index order, and whether more
    /// follow. One round trip: with a cursor, the ids that share its score come in full (ties
    /// are rare and small) and are cut at the cursor's id, then the lower scores follow.
    async fn index_page(
        &self,
        conn: &mut StoreConn,
        index: &str,
        want: usize,
        cursor: Option<&ThreadCursor>,
    ) -> Result<(Vec<(ThreadId, i64)>, bool), StoreError> {
        let fetch = want + 1;
        let raw: Scored = match cursor {
            None => {
                newest_first(index, "+inf", "-inf", Some(fetch))
                    .query_async(conn)
                    .await?
            }
            Some(c) => {
                let score = c.updated_at_ms.to_string();
                let (tied, lower): (Scored, Scored) = redis::pipe()
                    .add_command(newest_first(index, &score, &score, None))
                    .add_command(newest_first(
                        index,
                        &format!("({score}"),
                        "-inf",
                        Some(fetch),
                    ))
                    .query_async(conn)
                    .await?;
                tied.into_iter()
                    .filter(|(id, _)| id.as_str() < c.id.as_str())
                    .chain(lower)
                    .take(fetch)
                    .collect()
            }
        };
        let more = raw.len() > want;
        let page = raw
            .into_iter()
            .take(want)
            .filter_map(|(id, score)| Some((ThreadId::parse(&id).ok()?, score as i64)))
            .collect();
        Ok((page, more))
    }

    async fn prune_index(
        &self,
        conn: &mut StoreConn,
        set: &str,
        user: &UserId,
        expired: &[ThreadId],
    ) -> Result<(), StoreError> {
        let mut invocation = scripts::PRUNE_INDEX.key(set);
        for id in expired {
            invocation.key(keys::thread_meta(user, id)).arg(id.as_str());
        }
        let _: u64 = invocation.invoke_async(conn).await?;
        Ok(())
    }

    /// A thread and the `limit` messages before `before` (the latest when `None`), oldest
    /// first, in one round trip. `None` when the thread does not exist for this user.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or a stored value is corrupt.
    pub async fn thread_page(
        &self,
        user: &UserId,
        thread: &ThreadId,
        limit: usize,
        before: Option<MessageCursor>,
    ) -> Result<Option<MessagePage>, StoreError> {
        let messages_key = keys::thread_messages(user, thread);
        let limit_i = isize::try_from(limit).unwrap_or(isize::MAX);
        let (start, stop) = match before {
            // Negative indices count from the end: the latest `limit` messages.
            None => (-limit_i, -1),
            Some(MessageCursor(end)) => {
                let end = isize::try_from(end).unwrap_or(isize::MAX);
                ((end - limit_i).max(0), end - 1)
            }
        };
        let (meta, len, raw): (HashMap<String, String>, u64, Vec<String>) =
            if stop < start && start >= 0 {
                // `before` is the very first message: nothing older. Still read meta and length.
                let (meta, len): (HashMap<String, String>, u64) = redis::pipe()
                    .atomic()
                    .hgetall(keys::thread_meta(user, thread))
                    .llen(&messages_key)
                    .query_async(&mut self.conn.clone())
                    .await?;
                (meta, len, Vec::new())
            } else {
                redis::pipe()
                    .atomic()
                    .hgetall(keys::thread_meta(user, thread))
                    .llen(&messages_key)
                    .lrange(&messages_key, start, stop)
                    .query_async(&mut self.conn.clone())
                    .await?
            };
        if meta.is_empty() {
            return Ok(None);
        }
        let thread_value = parse_meta(user, thread, &meta)?;
        let messages = raw
            .iter()
            .map(|json| {
                serde_json::from_str::<ChatMessage>(json).map_err(|e| StoreError::Corrupt {
                    key: messages_key.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Index of the oldest message returned.
        let first = match before {
            None => len.saturating_sub(messages.len() as u64),
            Some(MessageCursor(end)) => end.min(len).saturating_sub(messages.len() as u64),
        };
        Ok(Some(MessagePage {
            thread: thread_value,
            messages,
            next: (first > 0).then_some(MessageCursor(first)),
        }))
    }
}

/// `ZRANGE index max min BYSCORE REV WITHSCORES [LIMIT 0 limit]`: index entries from score
/// `max` down to `min`, newest first.
fn newest_first(index: &str, max: &str, min: &str, limit: Option<usize>) -> redis::Cmd {
    let mut cmd = redis::cmd("ZRANGE");
    cmd.arg(index)
        .arg(max)
        .arg(min)
        .arg("BYSCORE")
        .arg("REV")
        .arg("WITHSCORES");
    if let Some(limit) = limit {
        cmd.arg("LIMIT").arg(0).arg(limit);
    }
    cmd
}

/// Reads a meta hash back into a [`Thread`].
pub(super) fn parse_meta(
    user: &UserId,
    thread: &ThreadId,
    meta: &HashMap<String, String>,
) -> Result<Thread, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: keys::thread_meta(user, thread),
        reason: reason.to_owned(),
    };
    let field = |name: &str| meta.get(name).ok_or_else(|| corrupt(name));
    let millis = |name: &str| -> Result<Timestamp, StoreError> {
        field(name)?
            .parse::<i64>()
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .ok_or_else(|| corrupt(name))
    };
    Ok(Thread {
        id: thread.clone(),
        user_id: user.clone(),
        title: Title::parse(field("title")?).unwrap_or_else(|_| Title::untitled()),
        created_at: millis("createdAt")?,
        updated_at: millis("updatedAt")?,
        message_count: field("messageCount")?
            .parse::<u64>()
            .map_err(|_| corrupt("messageCount"))?
            .saturating_sub(
                meta.get(schema::DELETED_COUNT)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            ),
        model: meta.get("model").cloned(),
        status: generation_status(meta),
        context_summary: meta.get(schema::CONTEXT_SUMMARY).cloned(),
        context_summary_through: meta
            .get(schema::CONTEXT_SUMMARY_THROUGH)
            .and_then(|id| MessageId::parse(id).ok()),
        archived: meta.get(schema::ARCHIVED).is_some_and(|v| v == "1"),
        pinned: meta.get(schema::PINNED).is_some_and(|v| v == "1"),
        tags: meta
            .get(schema::TAGS)
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_default(),
        metadata: meta
            .get(schema::METADATA)
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_default(),
        external_id: meta.get(schema::EXTERNAL_ID).cloned(),
        share: meta
            .get(schema::SHARE_TOKEN)
            .map(|token| crate::domain::ShareLink {
                token: token.clone(),
                expires_at: meta
                    .get(schema::SHARE_EXPIRES_AT)
                    .filter(|at| !at.is_empty())
                    .cloned(),
            }),
        forked_from: meta
            .get(schema::FORKED_FROM)
            .and_then(|raw| serde_json::from_str(raw).ok()),
    })
}

/// Whether a generation holds the thread (its lease has not run out), else how the last one
/// ended.
fn generation_status(meta: &HashMap<String, String>) -> ThreadStatus {
    let active = meta
        .get(schema::ACTIVE_MESSAGE_ID)
        .and_then(|id| MessageId::parse(id).ok());
    let until = meta
        .get(schema::ACTIVE_UNTIL)
        .and_then(|ms| ms.parse::<i64>().ok());
    match active {
        Some(id) if schema::lease_live(until, now().as_millisecond()) => ThreadStatus::Streaming {
            active_message_id: id,
        },
        _ if meta.get(schema::LAST_STATUS).map(String::as_str) == Some("error") => {
            ThreadStatus::Error
        }
        _ => ThreadStatus::Idle,
    }
}
