//! Full-text search over a user's thread titles and messages, in plain Redis (no module), so
//! it runs on Redis 7, Upstash / Vercel KV and a Cluster alike.
//!
//! # The index
//! An inverted index under the user's hash tag ([`keys::search_root`] and the keys beside
//! it): per word a ZSET of the documents holding it (`<thread number>:<list index>`, or
//! `<thread number>:t` for a title) scored by the document's time, and a dictionary ZSET of
//! the words for prefix lookups. Threads get small numbers so a posting costs a few bytes.
//!
//! The index is brought up to date by the search itself: every script that stores a message
//! or a title names its thread in the user's `search:changed` set (one `SADD`, in the round
//! trip that stores it) while the user has an index, and a search first indexes what that
//! set names (a new index starts from every thread). A chat turn so pays a command or two for
//! search, whatever its length, and a user who never searches one `EXISTS`; a message is
//! findable by the first search after its turn is stored.
//!
//! An index generation lives [`GENERATION_LIFETIME`]; the next search after it ends builds a
//! new one from the threads, and the old keys expire a day later. Deleted threads' words so
//! leave Redis for good within that time (searches skip their documents before that, and
//! remove the ones they meet), and a user who deletes everything has the index removed at
//! once ([`Store::purge_search`]).
//!
//! # A query
//! One round trip opens the index, one looks up the query's words (and the prefix word's
//! completions in the dictionary), then `search_page.lua` walks the rarest word's documents
//! newest first, keeps those holding every other word, and returns them with their text; the
//! caller checks each against the whole query (phrases, the prefix) and cuts its snippet. No
//! script does more than [`PAGE_BUDGET`] commands' worth of work.

use std::collections::BTreeMap;

use jiff::Timestamp;
use redis::{AsyncCommands, ErrorKind, RedisResult, ServerErrorKind, Value};

use super::{
    ArchivedFilter, Store, StoreError, cursor::SearchCursor, keys, scripts, threads::DELETE_BATCH,
};
use crate::{
    domain::{ChatMessage, MessageId, Role, ThreadId, UserId, now},
    search::{Query, Snippet, distinct_terms, snippet},
};

/// How long one index generation serves before the next search rebuilds it.
pub const GENERATION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// How long a generation's keys outlive its root.
const KEY_GRACE_MS: i64 = 24 * 3600 * 1000;
/// Work one `search_page.lua` run does, at most, in commands (16 postings read or looked up
/// counting as one more): about half a millisecond of Redis.
pub const PAGE_BUDGET: usize = 80;
/// `search_page.lua` runs per request, at most; a page may then end early with a cursor.
const MAX_PAGE_RUNS: usize = 12;
/// A prefix is looked up as up to this many completions; beyond, other words narrow the
/// search and every document is checked for the prefix itself.
pub const MAX_PREFIX_WORDS: usize = 32;
/// Threads read per indexing round trip.
const THREADS_PER_ROUND: usize = 64;
/// Messages read per thread per round trip.
const MESSAGES_PER_READ: usize = 400;
/// Messages written per `search_write.lua` run (well under a millisecond of Redis).
const MESSAGES_PER_WRITE: usize = 4;
/// Passes over the changed set per search: a thread still changing after that waits for the
/// next search.
const CATCH_UP_PASSES: usize = 3;

/// What to look for.
#[derive(Debug, Clone)]
pub struct SearchRequest<'q> {
    pub query: &'q Query,
    pub limit: usize,
    pub after: Option<SearchCursor>,
    pub archived: ArchivedFilter,
}

/// One match: a message, or a thread's title (`message` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub thread_id: ThreadId,
    pub thread_title: String,
    pub message: Option<(MessageId, Role)>,
    pub created_at: Timestamp,
    pub snippet: Snippet,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Where the next page starts; `None` when nothing older matches.
    pub next: Option<SearchCursor>,
}

/// The index generation a search works with.
struct Generation {
    id: String,
    /// When its keys expire (ms).
    keys_expire_at: i64,
}

impl Store {
    /// One page of `user`'s documents matching `request`, newest first, after indexing
    /// whatever was written since the last search.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn search(
        &self,
        user: &UserId,
        request: &SearchRequest<'_>,
    ) -> Result<SearchPage, StoreError> {
        // A generation that ends between the two steps is caught by the page script, once.
        for _ in 0..2 {
            let generation = self.catch_up(user).await?;
            if let Some(page) = self.query(user, &generation, request).await? {
                return Ok(page);
            }
        }
        Ok(SearchPage {
            hits: Vec::new(),
            next: None,
        })
    }

    /// Removes `user`'s search index at once (after deleting every thread), word by word.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn purge_search(&self, user: &UserId) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let root = keys::search_root(user);
        let generation: Option<String> = conn.hget(&root, "gen").await?;
        if let Some(generation) = generation {
            let dict = keys::search_dict(user, &generation);
            loop {
                let words: Vec<String> = conn.zrange(&dict, 0, DELETE_BATCH - 1).await?;
                if words.is_empty() {
                    break;
                }
                let keys: Vec<String> = words
                    .iter()
                    .map(|w| keys::search_word(user, &generation, w))
                    .collect();
                let mut pipe = redis::pipe();
                pipe.cmd("UNLINK").arg(&keys).ignore();
                pipe.cmd("ZREM").arg(&dict).arg(&words).ignore();
                let () = pipe.query_async(&mut conn).await?;
            }
        }
        let () = redis::cmd("UNLINK")
            .arg(&root)
            .arg(keys::search_changed(user))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Opens the index and indexes every thread named in the changed set (all threads when
    /// a new generation starts).
    async fn catch_up(&self, user: &UserId) -> Result<Generation, StoreError> {
        let mut conn = self.conn.clone();
        let changed = keys::search_changed(user);
        let (id, ends, fresh, mut waiting): (String, i64, i64, u64) = scripts::SEARCH_PREPARE
            .key(keys::search_root(user))
            .key(&changed)
            .arg(now().as_millisecond())
            .arg(u64::try_from(GENERATION_LIFETIME.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut conn)
            .await?;
        let generation = Generation {
            id,
            keys_expire_at: ends.saturating_add(KEY_GRACE_MS),
        };
        if fresh == 1 {
            waiting = self.mark_all_changed(user).await?;
        }
        let mut passes = 0;
        while waiting > 0 && passes < CATCH_UP_PASSES {
            passes += 1;
            let mut cursor = 0u64;
            loop {
                let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
                    .arg(&changed)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(THREADS_PER_ROUND)
                    .query_async(&mut conn)
                    .await?;
                if !ids.is_empty() {
                    self.index_threads(user, &generation, &ids).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            waiting = conn.scard(&changed).await?;
        }
        Ok(generation)
    }

    /// Names every thread of `user` in the changed set; returns how many it holds.
    async fn mark_all_changed(&self, user: &UserId) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let index = keys::thread_index(user);
        let changed = keys::search_changed(user);
        for listing in [index.clone(), format!("{index}:archived")] {
            let mut start = 0;
            loop {
                let ids: Vec<String> = conn
                    .zrange(&listing, start, start + DELETE_BATCH - 1)
                    .await?;
                if ids.is_empty() {
                    break;
                }
                let mut pipe = redis::pipe();
                pipe.sadd(&changed, &ids)
                    .ignore()
                    .pexpire(&changed, i64::try_from(self.ttl_ms).unwrap_or(i64::MAX))
                    .ignore();
                let () = pipe.query_async(&mut conn).await?;
                start += DELETE_BATCH;
            }
        }
        Ok(conn.scard(&changed).await?)
    }

    /// Indexes what the index lacks of each of `ids` (a few round trips for all of them).
    async fn index_threads(
        &self,
        user: &UserId,
        generation: &Generation,
        ids: &[String],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let root = keys::search_root(user);
        let changed = keys::search_changed(user);
        let threads: Vec<ThreadId> = ids
            .iter()
            .filter_map(|raw| ThreadId::parse(raw).ok())
            .collect();
        let strays: Vec<&String> = ids
            .iter()
            .filter(|raw| ThreadId::parse(raw).is_err())
            .collect();
        if !strays.is_empty() {
            let () = conn.srem(&changed, &strays).await?;
        }
        let mut pipe = redis::pipe();
        for thread in &threads {
            pipe.cmd("HMGET")
                .arg(keys::thread_meta(user, thread))
                .arg(&["createdAt", "updatedAt", "title"])
                .llen(keys::thread_messages(user, thread))
                .hget(&root, format!("t:{thread}"));
        }
        let flat: Vec<Value> = pipe.query_async(&mut conn).await?;
        let mut flat = flat.into_iter();
        let mut read = Vec::with_capacity(threads.len());
        for _ in &threads {
            let meta: Vec<Option<String>> = parse(flat.next())?;
            let len: u64 = parse(flat.next())?;
            let state: Option<String> = parse(flat.next())?;
            read.push((meta, len, state));
        }
        let mut states = Vec::new();
        let mut gone = Vec::new();
        for (thread, (meta, len, state)) in threads.iter().zip(read) {
            let [Some(created), Some(updated), Some(title)] = [&meta[0], &meta[1], &meta[2]] else {
                gone.push(thread.as_str());
                continue;
            };
            let from = state
                .as_deref()
                .and_then(|s| {
                    let mut parts = s.split(' ');
                    let _num = parts.next()?;
                    let count: u64 = parts.next()?.parse().ok()?;
                    (parts.next()? == created).then_some(count)
                })
                .unwrap_or(0)
                .min(len);
            states.push(ThreadState {
                thread,
                created: created.clone(),
                updated: updated.clone(),
                title: title.clone(),
                from,
                len,
            });
        }
        if !gone.is_empty() {
            let () = conn.srem(&changed, &gone).await?;
        }
        let mut pipe = redis::pipe();
        for state in &states {
            let last = (state.from + MESSAGES_PER_READ as u64).min(state.len);
            pipe.lrange(
                keys::thread_messages(user, state.thread),
                isize::try_from(state.from).unwrap_or(isize::MAX),
                isize::try_from(last).unwrap_or(isize::MAX) - 1,
            );
        }
        let bodies: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        let mut writes = Vec::new();
        for (state, bodies) in states.iter().zip(bodies) {
            let mut from = state.from;
            let mut chunks = bodies.chunks(MESSAGES_PER_WRITE).peekable();
            let mut first = true;
            // A thread with nothing new still gets its title (re)indexed, and leaves the set.
            while first || chunks.peek().is_some() {
                let chunk = chunks.next().unwrap_or_default();
                let mut postings = Postings::default();
                if first {
                    postings.add(
                        &state.title,
                        state.updated.parse().unwrap_or(0),
                        "t".to_owned(),
                    );
                }
                for (i, body) in chunk.iter().enumerate() {
                    if let Some((text, at)) = searchable(body) {
                        postings.add(&text, at, (from + i as u64).to_string());
                    }
                }
                let to = from + chunk.len() as u64;
                writes.push(write_invocation(
                    user, generation, state, from, to, &postings,
                ));
                from = to;
                first = false;
            }
        }
        run_all(&mut conn, &writes).await
    }

    /// One page of matches from an up-to-date index; `None` when its generation ended.
    async fn query(
        &self,
        user: &UserId,
        generation: &Generation,
        request: &SearchRequest<'_>,
    ) -> Result<Option<SearchPage>, StoreError> {
        let Some(groups) = self.word_groups(user, generation, request.query).await? else {
            return Ok(Some(SearchPage {
                hits: Vec::new(),
                next: None,
            }));
        };
        let mut conn = self.conn.clone();
        let archived = match request.archived {
            ArchivedFilter::Exclude => "exclude",
            ArchivedFilter::Only => "only",
            ArchivedFilter::Include => "all",
        };
        let user_prefix = keys::thread_index(user)
            .trim_end_matches("threads")
            .to_owned();
        let mut hits = Vec::new();
        let mut position = request.after.clone();
        for _ in 0..MAX_PAGE_RUNS {
            let mut invocation = scripts::SEARCH_PAGE.prepare_invoke();
            invocation
                .key(keys::search_root(user))
                .arg(&user_prefix)
                .arg(&generation.id)
                .arg(
                    position
                        .as_ref()
                        .map_or("+inf".to_owned(), |p| p.score.to_string()),
                )
                .arg(position.as_ref().map_or("", |p| p.doc.as_str()))
                .arg(request.limit - hits.len())
                .arg(PAGE_BUDGET)
                .arg(archived);
            for group in &groups {
                invocation.arg(group.len()).arg(group);
            }
            let reply: Vec<String> = invocation.invoke_async(&mut conn).await?;
            let [score, doc, done, rows @ ..] = reply.as_slice() else {
                return Ok(None);
            };
            if !doc.is_empty() {
                position = Some(SearchCursor {
                    score: score.parse().unwrap_or(0),
                    doc: doc.clone(),
                });
            }
            hits.extend(
                rows.chunks_exact(6)
                    .filter_map(|row| hit(request.query, row)),
            );
            if done == "1" {
                return Ok(Some(SearchPage { hits, next: None }));
            }
            if hits.len() >= request.limit {
                break;
            }
        }
        Ok(Some(SearchPage {
            hits,
            next: position,
        }))
    }

    /// The query's words as groups for the page script, rarest first; `None` when some word
    /// is in no document (nothing can match).
    async fn word_groups(
        &self,
        user: &UserId,
        generation: &Generation,
        query: &Query,
    ) -> Result<Option<Vec<Vec<String>>>, StoreError> {
        let exact = query.exact_terms();
        let mut pipe = redis::pipe();
        for word in &exact {
            pipe.zcard(keys::search_word(user, &generation.id, word));
        }
        if let Some(prefix) = query.prefix_term() {
            let mut max = b"[".to_vec();
            max.extend_from_slice(prefix.as_bytes());
            max.push(0xff);
            pipe.cmd("ZRANGE")
                .arg(keys::search_dict(user, &generation.id))
                .arg(format!("[{prefix}"))
                .arg(max)
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(MAX_PREFIX_WORDS + 1);
        }
        let mut reply: Vec<Value> = pipe.query_async(&mut self.conn.clone()).await?;
        let mut completions: Vec<String> = if query.prefix_term().is_some() {
            parse(reply.pop())?
        } else {
            Vec::new()
        };
        let counts: Vec<u64> = parse(Some(Value::Array(reply)))?;
        if counts.contains(&0) || (query.prefix_term().is_some() && completions.is_empty()) {
            return Ok(None);
        }
        let mut groups: Vec<(u64, Vec<String>)> = exact
            .iter()
            .zip(counts)
            .map(|(word, count)| (count, vec![(*word).to_owned()]))
            .collect();
        // A prefix with more completions than are looked up only narrows when it is the whole
        // query; otherwise the other words do, and the check finds the prefix.
        let whole = completions.len() <= MAX_PREFIX_WORDS;
        completions.truncate(MAX_PREFIX_WORDS);
        if !completions.is_empty() && (groups.is_empty() || whole) {
            let mut pipe = redis::pipe();
            for word in &completions {
                pipe.zcard(keys::search_word(user, &generation.id, word));
            }
            let sizes: Vec<u64> = pipe.query_async(&mut self.conn.clone()).await?;
            groups.push((sizes.iter().sum(), completions));
        }
        // The smallest group is walked; the others are looked up.
        groups.sort_by_key(|(count, _)| *count);
        let groups = groups.into_iter().map(|(_, g)| g).collect();
        Ok(Some(groups))
    }
}

/// What the index knew of a thread and what the thread holds now.
struct ThreadState<'t> {
    thread: &'t ThreadId,
    created: String,
    updated: String,
    title: String,
    /// Messages already indexed.
    from: u64,
    len: u64,
}

/// Words → documents holding them, for one `search_write.lua` run.
#[derive(Default)]
struct Postings(BTreeMap<String, Vec<(i64, String)>>);

impl Postings {
    fn add(&mut self, text: &str, score: i64, doc: String) {
        for word in distinct_terms(text) {
            self.0.entry(word).or_default().push((score, doc.clone()));
        }
    }
}

fn write_invocation(
    user: &UserId,
    generation: &Generation,
    state: &ThreadState<'_>,
    from: u64,
    to: u64,
    postings: &Postings,
) -> redis::ScriptInvocation<'static> {
    let mut invocation = scripts::SEARCH_WRITE.prepare_invoke();
    invocation
        .key(keys::search_root(user))
        .key(keys::search_changed(user))
        .key(keys::thread_meta(user, state.thread))
        .key(keys::thread_messages(user, state.thread))
        .arg(&generation.id)
        .arg(state.thread.as_str())
        .arg(&state.created)
        .arg(&state.updated)
        .arg(from)
        .arg(to)
        .arg(&state.title)
        .arg(generation.keys_expire_at);
    for (word, docs) in &postings.0 {
        invocation.arg(word).arg(docs.len());
        for (score, doc) in docs {
            invocation.arg(score).arg(doc);
        }
    }
    invocation
}

/// Runs `invocations` in one pipeline; any the server did not know yet (its script cache
/// was flushed) run again one by one, which loads them.
async fn run_all(
    conn: &mut super::StoreConn,
    invocations: &[redis::ScriptInvocation<'static>],
) -> Result<(), StoreError> {
    if invocations.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for invocation in invocations {
        pipe.invoke_script(invocation);
    }
    let results: Vec<RedisResult<Value>> = pipe.query_async(conn).await?;
    for (invocation, result) in invocations.iter().zip(results) {
        match result {
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let _: Value = invocation.invoke_async(conn).await?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// A reply of Redis as `T` (a missing one as nil).
fn parse<T: redis::FromRedisValue>(value: Option<Value>) -> Result<T, StoreError> {
    redis::from_redis_value(value.unwrap_or(Value::Nil)).map_err(|e| StoreError::Corrupt {
        key: "search".to_owned(),
        reason: e.to_string(),
    })
}

/// A stored message's searchable text and time: what a user or the assistant wrote.
fn searchable(body: &str) -> Option<(String, i64)> {
    let message = readable(body)?;
    Some((message.content, message.created_at.as_millisecond()))
}

/// A stored message search shows: not deleted, by the user or the assistant.
fn readable(body: &str) -> Option<ChatMessage> {
    let message: ChatMessage = serde_json::from_str(body).ok()?;
    (!message.deleted && matches!(message.role, Role::User | Role::Assistant)).then_some(message)
}

/// A row of `search_page.lua` as a hit, when it matches the whole query.
fn hit(query: &Query, row: &[String]) -> Option<SearchHit> {
    let [_doc, score, thread, title, _archived, body] = row else {
        return None;
    };
    let thread_id = ThreadId::parse(thread).ok()?;
    let (text, message, created_at) = if body.is_empty() {
        // The score is the time in ms × 1000 plus a tie-breaker (`search_write.lua`).
        let at = Timestamp::from_millisecond(score.parse::<i64>().ok()? / 1000).ok()?;
        (title.clone(), None, at)
    } else {
        let message = readable(body)?;
        (
            message.content,
            Some((message.id, message.role)),
            message.created_at,
        )
    };
    let spans = query.matches(&text)?;
    Some(SearchHit {
        thread_id,
        thread_title: title.clone(),
        message,
        created_at,
        snippet: snippet(&text, &spans),
    })
}
