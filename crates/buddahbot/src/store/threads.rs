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
use crate::domain::{
    BranchPlace, ChatMessage, MessageId, Thread, ThreadId, ThreadStatus, Title, UserId, now,
};

/// How many thread ids `delete_all_threads` removes per round trip, so no single command
/// holds the server for long however many threads a user has.
pub(super) const DELETE_BATCH: isize = 500;

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

/// Which branch of a thread a read follows.
#[derive(Debug, Clone, Copy)]
pub enum BranchRead<'a> {
    /// The one the thread shows (`activeLeafId`).
    Active,
    /// The one through this message, down to its newest leaf.
    Through(&'a MessageId),
    /// The one that ends at this message.
    EndingAt(&'a MessageId),
}

/// What a branch read found.
#[derive(Debug, Clone)]
pub enum BranchPage {
    Page(Box<MessagePage>),
    ThreadNotFound,
    /// The message the read named is not in the thread.
    MessageNotFound,
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
        self.create_thread_at(user, id.unwrap_or_default(), title, now())
            .await
    }

    /// [`Store::create_thread`] with the id and creation time chosen by the caller, who can
    /// then name the thread to an [`Undo`](super::Undo) should the creation's answer not come
    /// back.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn create_thread_at(
        &self,
        user: &UserId,
        id: ThreadId,
        title: Option<Title>,
        created_at: jiff::Timestamp,
    ) -> Result<Option<Thread>, StoreError> {
        // A thread created without a title is named by its first reply's model-written one.
        let provisional = title.is_none();
        let title = title.unwrap_or_else(Title::untitled);
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
            active_leaf_id: None,
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
            .key(keys::thread_tree(user, thread))
            .key(keys::thread_path(user, thread))
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

    /// A thread and the `limit` messages of its active branch before `before` (its latest
    /// when `None`), oldest first, in one round trip. `None` when the thread does not exist
    /// for this user.
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
        Ok(
            match self
                .branch_page(user, thread, limit, before, BranchRead::Active)
                .await?
            {
                BranchPage::Page(page) => Some(*page),
                BranchPage::ThreadNotFound | BranchPage::MessageNotFound => None,
            },
        )
    }

    /// A thread and the `limit` messages of one of its branches before `before` (the
    /// branch's end when `None`), oldest first, each with its place among the branches
    /// ([`ChatMessage::place`]), in one round trip. A page costs O(`limit`) however many
    /// messages and branches the thread has.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or a stored value is corrupt.
    pub async fn branch_page(
        &self,
        user: &UserId,
        thread: &ThreadId,
        limit: usize,
        before: Option<MessageCursor>,
        branch: BranchRead<'_>,
    ) -> Result<BranchPage, StoreError> {
        let messages_key = keys::thread_messages(user, thread);
        let (named, ends_there) = match branch {
            BranchRead::Active => ("", false),
            BranchRead::Through(id) => (id.as_str(), false),
            BranchRead::EndingAt(id) => (id.as_str(), true),
        };
        let reply: Vec<redis::Value> = scripts::READ_BRANCH
            .key(keys::thread_meta(user, thread))
            .key(&messages_key)
            .key(keys::thread_tree(user, thread))
            .key(keys::thread_path(user, thread))
            .arg(named)
            .arg(limit.max(1))
            .arg(before.map(|c| c.0.to_string()).unwrap_or_default())
            .arg(if ends_there { "1" } else { "" })
            .invoke_async(&mut self.conn.clone())
            .await?;
        let corrupt = |reason: String| StoreError::Corrupt {
            key: messages_key.clone(),
            reason,
        };
        let mut parts = reply.into_iter();
        let Some(meta) = parts.next() else {
            return Ok(BranchPage::ThreadNotFound);
        };
        let meta: HashMap<String, String> =
            redis::from_redis_value(meta).map_err(|e| corrupt(e.to_string()))?;
        let mut thread_value = parse_meta(user, thread, &meta)?;
        let mut next = |what: &str| -> Result<redis::Value, StoreError> {
            parts
                .next()
                .ok_or_else(|| corrupt(format!("read_branch.lua answered no {what}")))
        };
        let shape: String =
            redis::from_redis_value(next("shape")?).map_err(|e| corrupt(e.to_string()))?;
        let decode = |raw: &[String]| -> Result<Vec<ChatMessage>, StoreError> {
            raw.iter()
                .map(|json| serde_json::from_str(json).map_err(|e| corrupt(e.to_string())))
                .collect()
        };
        let (first, parent, messages, kids) = match shape.as_str() {
            "no_message" => return Ok(BranchPage::MessageNotFound),
            "linear" => {
                let start: i64 =
                    redis::from_redis_value(next("start")?).map_err(|e| corrupt(e.to_string()))?;
                let raw: Vec<String> = redis::from_redis_value(next("messages")?)
                    .map_err(|e| corrupt(e.to_string()))?;
                let mut messages = decode(&raw)?;
                // Past the first page, the message before the page comes first: the parent.
                let parent = if start > 0 && !messages.is_empty() {
                    Some(messages.remove(0).id)
                } else {
                    None
                };
                (start, parent, messages, None)
            }
            "tree" => {
                let first: i64 =
                    redis::from_redis_value(next("first")?).map_err(|e| corrupt(e.to_string()))?;
                let parent: String =
                    redis::from_redis_value(next("parent")?).map_err(|e| corrupt(e.to_string()))?;
                let raw: Vec<String> = redis::from_redis_value(next("messages")?)
                    .map_err(|e| corrupt(e.to_string()))?;
                let kids: Vec<String> = redis::from_redis_value(next("siblings")?)
                    .map_err(|e| corrupt(e.to_string()))?;
                (
                    first,
                    MessageId::parse(&parent).ok(),
                    decode(&raw)?,
                    Some(kids),
                )
            }
            other => return Err(corrupt(format!("read_branch.lua answered `{other}`"))),
        };
        let messages = placed(messages, parent, kids.as_deref());
        if thread_value.active_leaf_id.is_none() && before.is_none() && named.is_empty() {
            // Written before the field: the branch's end is the list's.
            thread_value.active_leaf_id = messages.last().map(|m| m.id.clone());
        }
        Ok(BranchPage::Page(Box::new(MessagePage {
            thread: thread_value,
            messages,
            next: u64::try_from(first)
                .ok()
                .filter(|&f| f > 0)
                .map(MessageCursor),
        })))
    }
}

impl Store {
    /// A thread and every message it holds, of every branch, in the order they were
    /// written, each with its place among the branches (for export). `None` when the thread
    /// does not exist for this user.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or a stored value is corrupt.
    pub async fn whole_thread(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<(Thread, Vec<ChatMessage>)>, StoreError> {
        let messages_key = keys::thread_messages(user, thread);
        let (meta, raw, tree): (
            HashMap<String, String>,
            Vec<String>,
            HashMap<String, String>,
        ) = redis::pipe()
            .atomic()
            .hgetall(keys::thread_meta(user, thread))
            .lrange(&messages_key, 0, -1)
            .hgetall(keys::thread_tree(user, thread))
            .query_async(&mut self.conn.clone())
            .await?;
        if meta.is_empty() {
            return Ok(None);
        }
        let mut thread_value = parse_meta(user, thread, &meta)?;
        let mut messages = raw
            .iter()
            .map(|json| {
                serde_json::from_str::<ChatMessage>(json).map_err(|e| StoreError::Corrupt {
                    key: messages_key.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Each message's parent's list index: the tree's, or in a linear thread the last
        // message before it that no regenerate replaced.
        let parents: Vec<Option<usize>> = if meta.get("tree").is_some_and(|t| t == "1") {
            (0..messages.len())
                .map(|i| {
                    tree.get(&format!("m{i}"))
                        .and_then(|m| m.split(' ').nth(1))
                        .and_then(|p| p.parse().ok())
                })
                .collect()
        } else {
            let mut line = None;
            messages
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let parent = line;
                    if m.superseded_by.is_none() {
                        line = Some(i);
                    }
                    parent
                })
                .collect()
        };
        let mut children: HashMap<Option<usize>, Vec<MessageId>> = HashMap::new();
        for (message, parent) in messages.iter().zip(&parents) {
            children
                .entry(*parent)
                .or_default()
                .push(message.id.clone());
        }
        let ids: Vec<MessageId> = messages.iter().map(|m| m.id.clone()).collect();
        for (message, parent) in messages.iter_mut().zip(&parents) {
            let siblings = children.get(parent).cloned().unwrap_or_default();
            let parent_id = parent.and_then(|p| ids.get(p).cloned());
            message.place = Some(BranchPlace::among(&message.id, parent_id, siblings));
        }
        if thread_value.active_leaf_id.is_none() {
            thread_value.active_leaf_id = messages
                .iter()
                .rev()
                .find(|m| m.superseded_by.is_none())
                .map(|m| m.id.clone());
        }
        Ok(Some((thread_value, messages)))
    }
}

/// What switching a thread's active branch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafSet {
    /// Switched: this is the active branch's last message now.
    Done(MessageId),
    ThreadNotFound,
    MessageNotFound,
    /// A generation holds the thread: its reply ends the branch it started on.
    Busy(MessageId),
}

impl Store {
    /// Makes the branch through `message`, down to its newest leaf, the one `thread` shows.
    /// `updatedAt` stays (nothing was written to the conversation).
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or its answer is corrupt.
    pub async fn set_active_leaf(
        &self,
        user: &UserId,
        thread: &ThreadId,
        message: &MessageId,
    ) -> Result<LeafSet, StoreError> {
        let (outcome, id): (String, String) = scripts::SET_LEAF
            .key(keys::thread_meta(user, thread))
            .key(keys::thread_messages(user, thread))
            .key(keys::thread_tree(user, thread))
            .key(keys::thread_path(user, thread))
            .arg(message.as_str())
            .arg(now().as_millisecond())
            .invoke_async(&mut self.conn.clone())
            .await?;
        let id = || {
            MessageId::parse(&id).map_err(|_| StoreError::Corrupt {
                key: keys::thread_tree(user, thread),
                reason: "set_leaf.lua answered a bad id".to_owned(),
            })
        };
        Ok(match outcome.as_str() {
            "ok" => LeafSet::Done(id()?),
            "busy" => LeafSet::Busy(id()?),
            "no_message" => LeafSet::MessageNotFound,
            _ => LeafSet::ThreadNotFound,
        })
    }
}

/// Gives each message of a branch page (oldest first) its place: its parent is the message
/// before it (`parent` for the first), its versions its parent's children (`kids`, tree.lua's
/// space-separated ids; none in a linear thread).
fn placed(
    mut messages: Vec<ChatMessage>,
    mut parent: Option<MessageId>,
    kids: Option<&[String]>,
) -> Vec<ChatMessage> {
    for (i, message) in messages.iter_mut().enumerate() {
        let siblings = kids
            .and_then(|kids| kids.get(i))
            .map(|ids| {
                ids.split(' ')
                    .filter_map(|id| MessageId::parse(id).ok())
                    .collect()
            })
            .unwrap_or_default();
        let next_parent = Some(message.id.clone());
        message.place = Some(BranchPlace::among(&message.id, parent, siblings));
        parent = next_parent;
    }
    messages
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
        active_leaf_id: meta
            .get(schema::ACTIVE_LEAF_ID)
            .and_then(|id| MessageId::parse(id).ok()),
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
