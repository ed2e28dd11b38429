//! The stream log of a thread's latest generation: every event its client was sent, in a
//! Redis Stream under the user's hash tag, so a request on any instance can replay it and
//! follow it live (`GET /api/chat/:threadId/stream`), and the stop signal that travels the
//! other way (`POST /api/chat/:threadId/stop`).
//!
//! # Event ids
//! The generator names its events itself, `<streamStart>-<n>` (the ms its turn began, then a
//! counter from 1), and sends each to its own client at once with that id; the log catches up
//! in batches ([`Store::log_events`]), off the client's path. A batch is one Stream entry: its
//! id is the batch's last event id, its `d` field the events joined by newlines (compact JSON
//! never holds a raw newline), so the consecutive ids before it are implied. Entry ids are
//! valid, increasing Stream ids, so a resumer's `Last-Event-ID` is an `XRANGE`/`XREAD`
//! position as is (the entry that holds it comes back, and its earlier events are skipped),
//! and an id whose ms part is not the generation's own belongs to another generation.

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

use redis::{
    Value,
    streams::{StreamRangeReply, StreamReadOptions, StreamReadReply},
};

use super::{Store, StoreError, keys, schema, scripts};
use crate::domain::{MessageId, ReplyFormat, ThreadId, UserId, now};

/// How long a running generation's log is kept after its last write (its generator may have
/// died); an ended one's lifetime is set when it ends ([`StreamEnd`](super::StreamEnd)).
pub const STREAM_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Entries a log keeps at most (`MAXLEN ~`): far more than a reply within the `max_tokens`
/// cap produces, so a replay always starts at the beginning.
pub const STREAM_CAP: u64 = 100_000;

/// Entries read per `XRANGE`/`XREAD`.
const READ_BATCH: usize = 512;

/// The id of one logged event: `<ms>-<seq>`, as Redis Streams write ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId {
    pub ms: i64,
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// An event id that is not `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be an event id of the form <milliseconds>-<sequence>")]
pub struct EventIdError;

impl FromStr for EventId {
    type Err = EventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = s.split_once('-').ok_or(EventIdError)?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(EventIdError);
        }
        Ok(Self {
            ms: ms.parse().map_err(|_| EventIdError)?,
            seq: seq.parse().map_err(|_| EventIdError)?,
        })
    }
}

/// One event of a generation: its id and its SSE `data:` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    pub id: EventId,
    pub data: String,
}

/// Consecutive events as one log entry: the last one's id (the ids before it are implied)
/// and their data joined by newlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBatch<'a> {
    pub last: EventId,
    pub data: &'a [u8],
}

/// [`StreamEvent`]s joined into the form of a [`LogBatch`]; `None` for no events.
fn joined(events: &[StreamEvent]) -> Option<(EventId, String)> {
    let last = events.last()?;
    let mut data = String::with_capacity(events.iter().map(|e| e.data.len() + 1).sum::<usize>());
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            data.push('\n');
        }
        data.push_str(&event.data);
    }
    Some((last.id, data))
}

/// An event read back from the log; `last` marks the one that ended the generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub event: StreamEvent,
    pub last: bool,
}

/// What a thread's meta says of its latest generation's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The assistant message the generation produces.
    pub reply_id: MessageId,
    /// The ms part of every event id of the generation.
    pub start_ms: i64,
    pub format: ReplyFormat,
    pub state: GenerationState,
}

/// The meta fields a [`StreamInfo`] is read from, in the order `attach_stream.lua` returns them.
const STREAM_FIELDS: [&str; 6] = [
    schema::STREAM_ID,
    schema::STREAM_START,
    schema::STREAM_FORMAT,
    schema::STREAM_ENDED_AT,
    schema::ACTIVE_MESSAGE_ID,
    schema::ACTIVE_UNTIL,
];

impl StreamInfo {
    /// Reads [`STREAM_FIELDS`]' values; `None` when no streamed generation is recorded.
    fn from_fields(values: &[Option<String>]) -> Option<Self> {
        let field = |i: usize| values.get(i).and_then(Option::as_deref);
        let number = |i: usize| field(i).and_then(|v| v.parse::<i64>().ok());
        let reply_id = MessageId::parse(field(0)?).ok()?;
        let start_ms = number(1)?;
        let running = field(4) == Some(reply_id.as_str())
            && schema::lease_live(number(5), now().as_millisecond());
        let state = match (running, number(3)) {
            (true, _) => GenerationState::Running,
            (false, Some(at_ms)) => GenerationState::Ended { at_ms },
            (false, None) => GenerationState::Abandoned,
        };
        Some(Self {
            reply_id,
            start_ms,
            format: ReplyFormat::from_stored(field(2).unwrap_or("")),
            state,
        })
    }
}

/// Where the latest generation of a thread is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationState {
    /// Its generator holds the thread (its lease has not run out).
    Running,
    /// It ended (its last event is logged) at this time (ms).
    Ended { at_ms: i64 },
    /// It neither runs nor ended: its generator died, or it failed before sending anything.
    Abandoned,
}

/// What `POST /api/chat/:threadId/stop` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopRequest {
    ThreadNotFound,
    /// Nothing was generating.
    Idle,
    /// A reply that is not streamed is generating; it cannot be stopped.
    NotStreamed,
    /// The generation of this reply was asked to stop.
    Stopping(MessageId),
}

impl Store {
    /// Appends a batch of a running generation's events to its log and reports whether it
    /// should stop (it was asked to, or its thread was deleted), in one round trip. `None`
    /// only checks.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn log_batch(
        &self,
        user: &UserId,
        thread: &ThreadId,
        reply_id: &MessageId,
        batch: Option<LogBatch<'_>>,
    ) -> Result<bool, StoreError> {
        let mut invocation = scripts::LOG_EVENTS.prepare_invoke();
        invocation
            .key(keys::thread_meta(user, thread))
            .key(keys::thread_stream(user, thread))
            .arg(reply_id.as_str())
            .arg(ttl_ms(STREAM_TTL))
            .arg(STREAM_CAP);
        if let Some(batch) = batch {
            invocation.arg(batch.last.to_string()).arg(batch.data);
        }
        let stop: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(stop == 1)
    }

    /// [`Store::log_batch`] for events given one by one.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn log_events(
        &self,
        user: &UserId,
        thread: &ThreadId,
        reply_id: &MessageId,
        events: &[StreamEvent],
    ) -> Result<bool, StoreError> {
        let joined = joined(events);
        let batch = joined.as_ref().map(|(last, data)| LogBatch {
            last: *last,
            data: data.as_bytes(),
        });
        self.log_batch(user, thread, reply_id, batch).await
    }

    /// Asks the thread's running generation, wherever it runs, to stop.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or the stored id is corrupt.
    pub async fn request_stop(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<StopRequest, StoreError> {
        let meta = keys::thread_meta(user, thread);
        let active: Option<String> = scripts::REQUEST_STOP
            .key(&meta)
            .arg(now().as_millisecond())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match active.as_deref() {
            None => StopRequest::ThreadNotFound,
            Some("") => StopRequest::Idle,
            Some("!") => StopRequest::NotStreamed,
            Some(id) => {
                StopRequest::Stopping(MessageId::parse(id).map_err(|_| StoreError::Corrupt {
                    key: meta,
                    reason: "bad activeMessageId".to_owned(),
                })?)
            }
        })
    }

    /// The thread's latest generation, or `None` when the thread does not exist or never
    /// generated.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn stream_info(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<StreamInfo>, StoreError> {
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys::thread_meta(user, thread))
            .arg(&STREAM_FIELDS)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(StreamInfo::from_fields(&values))
    }

    /// [`Store::stream_info`] for a resumer: a generation still running is also asked, in the
    /// same round trip, to write its events to the log from now on (it keeps them in memory
    /// while nobody resumes).
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn attach_stream(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<StreamInfo>, StoreError> {
        let values: Vec<Option<String>> = scripts::ATTACH_STREAM
            .key(keys::thread_meta(user, thread))
            .arg(now().as_millisecond())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(StreamInfo::from_fields(&values))
    }

    /// Logged events after `after` (from the first when `None`), at most one batch.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn read_events(
        &self,
        user: &UserId,
        thread: &ThreadId,
        after: Option<EventId>,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(keys::thread_stream(user, thread))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(READ_BATCH)
            .query_async(&mut self.conn.clone())
            .await?;
        logged(user, thread, reply.ids.into_iter().map(|e| (e.id, e.map)))
    }

    /// A reader that waits for new events on a connection of its own, so its blocking reads
    /// never hold up the shared connection.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the connection cannot be opened.
    pub async fn follower(
        &self,
        user: &UserId,
        thread: &ThreadId,
        block: Duration,
    ) -> Result<Follower, StoreError> {
        // Redis answers a blocked read after `block` at the latest; allow it the usual
        // response time on top.
        let conn = self
            .dedicated_connection(Some(block + self.redis.response_timeout))
            .await?;
        Ok(Follower {
            conn,
            user: user.clone(),
            thread: thread.clone(),
            block,
        })
    }
}

/// Waits for a generation's next events (`XREAD BLOCK`) on its own connection.
pub struct Follower {
    conn: super::StoreConn,
    user: UserId,
    thread: ThreadId,
    block: Duration,
}

impl Follower {
    /// The events after `after`, waiting up to the block time for some; empty when none came.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn next(&mut self, after: EventId) -> Result<Vec<LoggedEvent>, StoreError> {
        let key = keys::thread_stream(&self.user, &self.thread);
        let options = StreamReadOptions::default()
            .block(usize::try_from(self.block.as_millis()).unwrap_or(usize::MAX))
            .count(READ_BATCH);
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg(&options)
            .arg("STREAMS")
            .arg(&key)
            .arg(after.to_string())
            .query_async(&mut self.conn)
            .await?;
        let entries = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|e| (e.id, e.map));
        logged(&self.user, &self.thread, entries)
    }
}

/// Entries (batches) as the [`LoggedEvent`]s they hold.
fn logged(
    user: &UserId,
    thread: &ThreadId,
    entries: impl Iterator<Item = (String, HashMap<String, Value>)>,
) -> Result<Vec<LoggedEvent>, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: keys::thread_stream(user, thread),
        reason: reason.to_owned(),
    };
    let mut out = Vec::new();
    for (id, map) in entries {
        let last_id: EventId = id.parse().map_err(|_| corrupt("bad entry id"))?;
        let data = match map.get("d") {
            Some(value) => redis::from_redis_value_ref::<String>(value)
                .map_err(|_| corrupt("bad event data"))?,
            None => return Err(corrupt("entry without data")),
        };
        let events: Vec<&str> = data.split('\n').collect();
        let first_seq = (last_id.seq + 1)
            .checked_sub(events.len() as u64)
            .ok_or_else(|| corrupt("more events than ids"))?;
        let ends = map.contains_key("e");
        let count = events.len();
        for (i, data) in events.into_iter().enumerate() {
            out.push(LoggedEvent {
                event: StreamEvent {
                    id: EventId {
                        ms: last_id.ms,
                        seq: first_seq + i as u64,
                    },
                    data: data.to_owned(),
                },
                last: ends && i + 1 == count,
            });
        }
    }
    Ok(out)
}

pub(super) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_its_last_id_and_its_events_by_line_and_reads_back_as_they_were() {
        let events: Vec<StreamEvent> = (3..=5)
            .map(|seq| StreamEvent {
                id: EventId { ms: 7, seq },
                data: format!("{{\"n\":{seq}}}"),
            })
            .collect();
        let (last, data) = joined(&events).unwrap();
        assert_eq!(last.to_string(), "7-5");
        assert_eq!(data, "{\"n\":3}\n{\"n\":4}\n{\"n\":5}");
        assert!(joined(&[]).is_none());

        let user = UserId::parse("u").unwrap();
        let thread = ThreadId::parse("t").unwrap();
        let entry = HashMap::from([
            ("d".to_owned(), Value::BulkString(data.into_bytes())),
            ("e".to_owned(), Value::BulkString(b"1".to_vec())),
        ]);
        let read = logged(&user, &thread, [(last.to_string(), entry)].into_iter()).unwrap();
        let back: Vec<StreamEvent> = read.iter().map(|l| l.event.clone()).collect();
        assert_eq!(back, events);
        assert_eq!(
            read.iter().map(|l| l.last).collect::<Vec<_>>(),
            [false, false, true]
        );
    }

    #[test]
    fn event_ids_round_trip_and_order_like_stream_ids() {
        let id: EventId = "1763797200000-12".parse().unwrap();
        assert_eq!(
            id,
            EventId {
                ms: 1_763_797_200_000,
                seq: 12
            }
        );
        assert_eq!(id.to_string(), "1763797200000-12");
        let next: EventId = "1763797200000-13".parse().unwrap();
        assert!(id < next);
        for bad in ["", "12", "-1", "1-", "a-1", "1-b", "1-2-3", " 1-2", "1--2"] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }
}
