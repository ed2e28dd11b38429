//! A chat turn's life in Redis: begun (rate-limited, user message stored, thread taken),
//! renewed while it generates, and finished (reply stored) or failed — one script each, one
//! round trip each. The fields and states they write are in [`schema`](super::schema).

use std::time::Duration;

use jiff::Timestamp;
use redis::{ErrorKind, RedisResult, ServerErrorKind, Value};

use super::{Store, StoreError, encode, keys, limits, scripts, stream};
use crate::domain::{
    ChatMessage, MessageId, Placement, ReplyFormat, ReplyStatus, ThreadId, Title, UserId, now,
};

/// Who a turn belongs to and under which ids it runs: built once when the turn begins and
/// passed whole, so no two ids of the same type can be swapped at a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnIds {
    pub user: UserId,
    pub thread: ThreadId,
    /// The first message the turn adds (the user's, or the first tool result): turns are
    /// keyed by it, so retries are recognised.
    pub user_message: MessageId,
    /// The assistant message the turn generates.
    pub reply: MessageId,
}

/// A chat turn about to call the model.
#[derive(Debug, Clone, Copy)]
pub struct NewTurn<'a> {
    pub ids: &'a TurnIds,
    /// `Some` to create the thread (with this title) when it does not exist.
    pub create_with_title: Option<&'a Title>,
    /// The messages the turn adds before its reply: the user's message, or tool results.
    pub inputs: &'a [ChatMessage],
    /// How long the turn counts as in progress if its generator never finishes (a crash).
    pub lease: Duration,
    /// The format its events are logged in, for resumers; `None` when the reply is not
    /// streamed (there is nothing to resume).
    pub format: Option<ReplyFormat>,
    /// Answer an answered turn again: the new reply becomes a sibling of the old one.
    pub regenerate: bool,
    /// Where the turn's messages go among the thread's branches.
    pub placement: &'a Placement,
}

/// What [`Store::begin_turn`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnStart {
    /// The caller is over a limit; nothing was stored.
    RateLimited,
    /// The user message is stored (now, or by an earlier failed attempt): call the model.
    /// Its events are logged with ids `<stream_start_ms>-<n>`.
    Proceed {
        stream_start_ms: i64,
        context: ThreadContext,
        /// The turn's key: the first message's id, or for a regenerate after an edit, the
        /// edited version's (the client still calls it by the original's id).
        turn_key: MessageId,
    },
    /// The thread does not exist for this user.
    ThreadNotFound,
    /// Another attempt at this same turn is generating its reply right now.
    InProgress { reply_id: MessageId },
    /// Another turn of the thread is generating (one at a time per thread).
    Busy { reply_id: MessageId },
    /// This turn was answered already: here is the stored reply.
    Answered(Box<ChatMessage>),
    /// The message the turn was to go under (or beside) is not in the thread.
    NoParent { id: MessageId },
}

/// What a model call needs of its thread: how its prompts measured, and its summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadContext {
    pub calibration: Option<Calibration>,
    pub summary: Option<ContextSummary>,
    /// The thread's first turn, under a provisional title: the model may write it one.
    pub wants_title: bool,
}

/// A prompt's size in characters against the tokens the model counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    pub chars: u64,
    pub tokens: u64,
}

/// A model-written summary of a thread's oldest messages, sent in their place when the
/// conversation no longer fits the context window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSummary {
    pub text: String,
    /// How many conversation messages (system messages not counted) it covers.
    pub count: usize,
    /// The fingerprint of those messages: it applies only to them.
    pub hash: String,
}

impl ThreadContext {
    fn from_fields(chars: &str, tokens: &str, text: String, count: &str, hash: String) -> Self {
        let calibration = match (chars.parse(), tokens.parse()) {
            (Ok(chars), Ok(tokens)) => Some(Calibration { chars, tokens }),
            _ => None,
        };
        let summary = match count.parse() {
            Ok(count) if !text.is_empty() => Some(ContextSummary { text, count, hash }),
            _ => None,
        };
        Self {
            calibration,
            summary,
            wants_title: false,
        }
    }
}

/// The events of a generation not in its stream log yet, as one log entry: they go with the
/// turn's last write, so a resumer sees the end exactly when the reply is readable.
#[derive(Debug, Clone, Copy)]
pub struct StreamEnd<'a> {
    pub batch: Option<stream::LogBatch<'a>>,
    /// How long the ended log stays readable (the resume grace period, and some).
    pub keep: Duration,
}

impl<'a> StreamEnd<'a> {
    /// An end with no events to add (a reply that was not streamed).
    pub const NONE: StreamEnd<'static> = StreamEnd {
        batch: None,
        keep: Duration::ZERO,
    };

    /// All events but the last as one entry, and the end with the last alone.
    fn split_last(self) -> (Option<stream::LogBatch<'a>>, Self) {
        let Some(batch) = self.batch else {
            return (None, self);
        };
        let Some(cut) = batch.data.iter().rposition(|&b| b == b'\n') else {
            return (None, self);
        };
        let bulk = stream::LogBatch {
            last: stream::EventId {
                ms: batch.last.ms,
                seq: batch.last.seq.saturating_sub(1),
            },
            data: &batch.data[..cut],
        };
        let last = stream::LogBatch {
            last: batch.last,
            data: &batch.data[cut + 1..],
        };
        (
            Some(bulk),
            Self {
                batch: Some(last),
                ..self
            },
        )
    }

    /// `stream.lua`'s arguments.
    fn push_args(self, invocation: &mut redis::ScriptInvocation<'_>) {
        invocation
            .arg(stream::ttl_ms(self.keep.max(Duration::from_millis(1))))
            .arg(stream::STREAM_CAP);
        if let Some(batch) = self.batch {
            invocation.arg(batch.last.to_string()).arg(batch.data);
        }
    }
}

/// The title the model wrote for a thread's first turn, when it is ready before the reply
/// is stored: it goes with the reply, a round trip fewer.
#[derive(Debug, Clone)]
pub struct ModelTitle {
    /// `None` when the model answered nothing usable (its tokens still count).
    pub title: Option<crate::domain::Title>,
    /// The tokens the model spent on it, for the user's daily budget.
    pub tokens: u64,
}

/// What [`Store::finish_turn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The reply is stored and the turn answered.
    Stored,
    /// The thread was deleted meanwhile: the reply is dropped, not resurrected.
    ThreadGone,
    /// Nothing was written: the turn sent no events, but a resumer waits for them in the
    /// log. Send them.
    LogWanted,
}

impl Finished {
    fn from_script(index: i64) -> Self {
        match index {
            -2 => Self::LogWanted,
            -1 => Self::ThreadGone,
            _ => Self::Stored,
        }
    }
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Extended; with the signals the thread's meta holds for the generation.
    Renewed { stop: bool, follow: bool },
    /// The thread no longer counts this generation as its own (it ended, or its lease ran
    /// out and another took over).
    Lost,
    /// The thread was deleted.
    Gone,
}

impl Store {
    /// Starts a chat turn in one round trip: creates the thread if asked, stores the user's
    /// message unless an earlier attempt did, and marks the reply as being generated. A turn
    /// is identified by its user message id, so a retried request is recognised. A streamed
    /// turn also records this process's control channel, where stop and resume signals for
    /// it are published.
    ///
    /// The turn is first counted against `limits` (in the same script): over a limit, nothing
    /// is stored. The decision comes back with the outcome, for the `x-ratelimit-*` headers.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or a stored reply is corrupt.
    pub async fn begin_turn(
        &self,
        turn: NewTurn<'_>,
        limits: &limits::LimitSet,
    ) -> Result<(TurnStart, limits::RateDecision), StoreError> {
        let TurnIds {
            user,
            thread,
            user_message,
            reply,
        } = turn.ids;
        let now_ms = now().as_millisecond();
        let lease_ms = i64::try_from(turn.lease.as_millis()).unwrap_or(i64::MAX);
        // One JSON document per line (serialized JSON holds no raw line breaks).
        let mut inputs_json = String::new();
        for message in turn.inputs {
            if !inputs_json.is_empty() {
                inputs_json.push('\n');
            }
            inputs_json.push_str(&encode(user, thread, message)?);
        }
        let mut invocation = scripts::BEGIN_TURN.prepare_invoke();
        turn_keys(&mut invocation, user, thread);
        invocation
            .key(keys::thread_tree(user, thread))
            .key(keys::thread_path(user, thread));
        invocation
            .arg(thread.as_str())
            .arg(now_ms)
            .arg(self.ttl_ms)
            .arg(user_message.as_str())
            .arg(inputs_json)
            .arg(reply.as_str())
            .arg(now_ms.saturating_add(lease_ms))
            .arg(flag(turn.create_with_title.is_some()))
            .arg(user.as_str())
            .arg(turn.create_with_title.map_or("", Title::as_str))
            .arg(turn.format.map_or("", ReplyFormat::as_str))
            .arg(flag(turn.regenerate))
            .arg(self.control.channel())
            .arg(match turn.placement {
                Placement::AfterLeaf => String::new(),
                Placement::Under(id) => format!("c:{id}"),
                Placement::Beside(id) => format!("s:{id}"),
            });
        limits.push_args(&mut invocation, user);
        type Reply = (
            String,
            i64,
            i64,
            i64,
            i64,
            String,
            (String, String, String, String, String, String, String),
        );
        let (outcome, limit, remaining, reset, retry, detail, context): Reply =
            invocation.invoke_async(&mut self.conn.clone()).await?;
        let decision = limits::RateDecision::from_script(
            outcome != "rate_limited",
            limit,
            remaining,
            reset,
            retry,
        );
        let corrupt = |reason: &str| StoreError::Corrupt {
            key: keys::thread_turns(user, thread),
            reason: reason.to_owned(),
        };
        let start = match outcome.as_str() {
            "started" | "retry" => TurnStart::Proceed {
                stream_start_ms: now_ms,
                context: ThreadContext {
                    wants_title: context.5 == "1",
                    ..ThreadContext::from_fields(
                        &context.0, &context.1, context.2, &context.3, context.4,
                    )
                },
                turn_key: MessageId::parse(&context.6).map_err(|_| corrupt("bad turn key"))?,
            },
            "rate_limited" => TurnStart::RateLimited,
            "not_found" => TurnStart::ThreadNotFound,
            "in_progress" => TurnStart::InProgress {
                reply_id: MessageId::parse(&detail).map_err(|_| corrupt("bad reply id"))?,
            },
            "busy" => TurnStart::Busy {
                reply_id: MessageId::parse(&detail).map_err(|_| corrupt("bad active id"))?,
            },
            "no_parent" => TurnStart::NoParent {
                id: MessageId::parse(&detail).map_err(|_| corrupt("bad parent id"))?,
            },
            "done" => TurnStart::Answered(Box::new(
                serde_json::from_str(&detail).map_err(|e| corrupt(&e.to_string()))?,
            )),
            _ => return Err(corrupt("unexpected begin_turn reply")),
        };
        Ok((start, decision))
    }

    /// Stores a turn's reply and marks the turn answered, in one round trip, with the last
    /// events of its stream. `prompt_chars`, the size of the prompt the reply answers, is
    /// kept with the prompt tokens the model reported, to size the thread's next prompt.
    /// The model's `title` for a first turn is set with it (over a provisional title only)
    /// and its tokens counted.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn finish_turn(
        &self,
        ids: &TurnIds,
        reply: &ChatMessage,
        prompt_chars: Option<u64>,
        title: Option<&ModelTitle>,
        end: StreamEnd<'_>,
    ) -> Result<Finished, StoreError> {
        let TurnIds {
            user,
            thread,
            user_message,
            ..
        } = ids;
        let json = encode(user, thread, reply)?;
        // A cached answer cost no model call: it is not charged to the budget.
        let tokens = match reply.usage {
            Some(u) if !reply.cached => u64::from(u.prompt_tokens) + u64::from(u.completion_tokens),
            _ => 0,
        } + title.map_or(0, |t| t.tokens);
        let last_status = match reply.status {
            None => "idle",
            Some(ReplyStatus::Error) => "error",
            Some(ReplyStatus::Stopped) => "stopped",
        };
        let mut invocation = scripts::FINISH_TURN.prepare_invoke();
        turn_keys(&mut invocation, user, thread);
        invocation
            .key(limits::todays_tokens_key(user))
            .key(keys::thread_tree(user, thread))
            .key(keys::thread_path(user, thread));
        invocation
            .arg(thread.as_str())
            .arg(now().as_millisecond())
            .arg(self.ttl_ms)
            .arg(user_message.as_str())
            .arg(json)
            .arg(reply.id.as_str())
            .arg(reply.model.as_deref().unwrap_or(""))
            .arg(tokens)
            .arg(limits::TOKEN_COUNTER_TTL.as_secs())
            .arg(last_status)
            .arg(match (prompt_chars, reply.usage) {
                (Some(chars), Some(usage)) if usage.prompt_tokens > 0 => {
                    format!("{chars} {}", usage.prompt_tokens)
                }
                _ => String::new(),
            });
        // All events but the last go in a plain XADD first; the script appends the last one,
        // marked final, atomically with the reply.
        let (bulk, end) = end.split_last();
        invocation
            .arg(bulk.map_or_else(String::new, |bulk| bulk.last.to_string()))
            .arg(
                title
                    .and_then(|t| t.title.as_ref())
                    .map_or("", crate::domain::Title::as_str),
            );
        end.push_args(&mut invocation);
        let Some(bulk) = bulk else {
            let index: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
            return Ok(Finished::from_script(index));
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors()
            .cmd("XADD")
            .arg(keys::thread_stream(user, thread))
            .arg("MAXLEN")
            .arg("~")
            .arg(stream::STREAM_CAP)
            .arg(bulk.last.to_string())
            .arg("d")
            .arg(bulk.data)
            .invoke_script(&invocation);
        let (added, index): (RedisResult<Value>, RedisResult<i64>) =
            pipe.query_async(&mut self.conn.clone()).await?;
        if let Err(err) = added {
            // Only a resumer misses these events; the script still ends the stream.
            tracing::warn!(thread = %thread, error = %err, "could not log the stream's events");
        }
        let index = match index {
            Ok(index) => index,
            // The script cache was flushed (a restarted server): load it and run it again.
            Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                invocation.invoke_async(&mut self.conn.clone()).await?
            }
            Err(err) => return Err(err.into()),
        };
        Ok(Finished::from_script(index))
    }

    /// Marks a turn failed before any reply was stored, so a retry may call the model again.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn fail_turn(&self, ids: &TurnIds, end: StreamEnd<'_>) -> Result<(), StoreError> {
        let mut invocation = scripts::FAIL_TURN.prepare_invoke();
        invocation
            .key(keys::thread_turns(&ids.user, &ids.thread))
            .key(keys::thread_meta(&ids.user, &ids.thread))
            .key(keys::thread_stream(&ids.user, &ids.thread))
            .key(keys::thread_tree(&ids.user, &ids.thread))
            .key(keys::thread_path(&ids.user, &ids.thread))
            .arg(ids.user_message.as_str())
            .arg(ids.reply.as_str())
            .arg(now().as_millisecond());
        end.push_args(&mut invocation);
        let _: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Extends a running generation's lease to `until`, and reads the signals its thread's
    /// meta holds for it (a stop request, a waiting resumer) in the same round trip.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn renew_turn(&self, ids: &TurnIds, until: Timestamp) -> Result<Renewal, StoreError> {
        let found: i64 = scripts::RENEW_TURN
            .key(keys::thread_meta(&ids.user, &ids.thread))
            .key(keys::thread_turns(&ids.user, &ids.thread))
            .arg(ids.reply.as_str())
            .arg(ids.user_message.as_str())
            .arg(until.as_millisecond())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match found {
            -1 => Renewal::Gone,
            0 => Renewal::Lost,
            signals => Renewal::Renewed {
                stop: signals & 2 != 0,
                follow: signals & 4 != 0,
            },
        })
    }
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

/// The five keys a turn script touches, in its `KEYS` order.
fn turn_keys(invocation: &mut redis::ScriptInvocation<'_>, user: &UserId, thread: &ThreadId) {
    invocation
        .key(keys::thread_meta(user, thread))
        .key(keys::thread_messages(user, thread))
        .key(keys::thread_index(user))
        .key(keys::thread_turns(user, thread))
        .key(keys::thread_stream(user, thread));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventId, LogBatch};

    #[test]
    fn the_last_event_is_split_off_with_its_id_and_the_rest_keep_theirs() {
        let end = StreamEnd {
            batch: Some(LogBatch {
                last: EventId { ms: 5, seq: 9 },
                data: b"{\"a\":1}\n{\"b\":2}\n[DONE]",
            }),
            keep: Duration::from_secs(1),
        };
        let (bulk, last) = end.split_last();
        assert_eq!(
            bulk,
            Some(LogBatch {
                last: EventId { ms: 5, seq: 8 },
                data: b"{\"a\":1}\n{\"b\":2}",
            })
        );
        assert_eq!(
            last.batch,
            Some(LogBatch {
                last: EventId { ms: 5, seq: 9 },
                data: b"[DONE]",
            })
        );
        let one = StreamEnd {
            batch: last.batch,
            keep: last.keep,
        };
        let (bulk, alone) = one.split_last();
        assert_eq!(bulk, None);
        assert_eq!(alone.batch, last.batch);
        assert_eq!(StreamEnd::NONE.split_last().0, None);
    }
}
