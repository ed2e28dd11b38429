//! Resuming a generation from its stream log (`GET /api/chat/:threadId/stream`) and stopping
//! it (`POST /api/chat/:threadId/stop`), from any instance.
//!
//! A resumer replays the log from its start (or after the client's last event id) with
//! `XRANGE` on the shared connection, then follows new entries with `XREAD BLOCK` on a
//! connection of its own, until the event that ended the generation. Events carry their log
//! ids as SSE ids, so a client that drops again resumes exactly where it left off.

use std::time::Duration;

use axum::{body::Bytes, response::Response};
use bytes::BytesMut;
use tokio::sync::mpsc;

use super::{
    outlet::{write_event, write_typed_event},
    response::event_stream,
    turn::CHANNEL_CAPACITY,
};
use crate::{
    app::App,
    domain::{ReplyFormat, ThreadId, UserId, now},
    protocol::encoder::{Encoder, Failure},
    store::{
        EventId, StoreError,
        stream::{GenerationState, LoggedEvent, StreamInfo},
    },
};

pub use crate::store::stream::StopRequest;

/// Longest a follower waits for a new event before it checks that the generation is still
/// alive (a crashed generator leaves its log without an end).
const FOLLOW_BLOCK: Duration = Duration::from_secs(2);

/// Why a resumed stream ended early, as its client is told.
const INTERRUPTED: Failure<'static> = Failure {
    code: "generation_interrupted",
    message: "The reply stopped arriving; reload the thread for what was saved.",
};

/// The thread's generation as an event stream from `after` on (from its start when `None`),
/// or `None` (204) when no generation is running or ended within the grace period.
///
/// # Errors
/// [`StoreError`] when Redis fails before the stream starts.
pub async fn resume(
    app: &App,
    user: UserId,
    thread: ThreadId,
    after: Option<EventId>,
) -> Result<Option<Response>, StoreError> {
    resume_from(app, user, thread, ResumeFrom::Id(after), None).await
}

/// Where a resumed stream starts.
#[derive(Debug, Clone, Copy)]
pub enum ResumeFrom {
    /// After this event id (from the start when `None`).
    Id(Option<EventId>),
    /// After the event of this `sequence_number` (the Responses API's `starting_after`).
    Sequence(u64),
}

/// [`resume`] from `from`, of the generation of reply `reply` only when given (`None`
/// when that generation is not the thread's latest, or left no log).
///
/// # Errors
/// [`StoreError`] when Redis fails before the stream starts.
pub async fn resume_from(
    app: &App,
    user: UserId,
    thread: ThreadId,
    from: ResumeFrom,
    reply: Option<&crate::domain::MessageId>,
) -> Result<Option<Response>, StoreError> {
    // Asks a running generation to log its events from now on, in the same round trip.
    let Some(info) = app.store().attach_stream(&user, &thread).await? else {
        return Ok(None);
    };
    if reply.is_some_and(|reply| *reply != info.reply_id) {
        return Ok(None);
    }
    let after = match from {
        ResumeFrom::Id(after) => after,
        // Event `n` (0-based) went out as the generation's `n + 1`-th.
        ResumeFrom::Sequence(n) => Some(EventId {
            ms: info.start_ms,
            seq: n.saturating_add(1),
        }),
    };
    let grace = i64::try_from(app.config().chat.resume_grace.as_millis()).unwrap_or(i64::MAX);
    match info.state {
        GenerationState::Running => {}
        GenerationState::Ended { at_ms } if now().as_millisecond() - at_ms <= grace => {
            // An ended generation left a log only if someone could want it (a resumer
            // followed it, or its client went away before the end); without one, everything
            // is in the stored reply.
            if app
                .store()
                .read_events(&user, &thread, None)
                .await?
                .is_empty()
            {
                return Ok(None);
            }
        }
        GenerationState::Ended { .. } | GenerationState::Abandoned => return Ok(None),
    }
    // An id of another (older) generation means the client saw none of this one.
    let after = after.filter(|id| id.ms == info.start_ms);
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let response = event_stream(&thread, &info.reply_id, info.format, rx);
    let resumer = Resumer {
        app: app.clone(),
        user,
        thread,
        info,
        tx,
    };
    tokio::spawn(resumer.run(after));
    Ok(Some(response))
}

/// One resumed stream.
struct Resumer {
    app: App,
    user: UserId,
    thread: ThreadId,
    info: StreamInfo,
    tx: mpsc::Sender<Bytes>,
}

/// Whether the resumed stream goes on after a batch.
enum Next {
    More,
    /// The generation's last event went out, or the client left.
    Done,
    /// The log holds another generation's events: this one will never end there.
    Superseded,
}

impl Resumer {
    async fn run(self, mut after: Option<EventId>) {
        match self.replay(&mut after).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => return self.interrupted(&err).await,
        }
        if let Err(err) = self.follow(after).await {
            self.interrupted(&err).await;
        }
    }

    /// Sends the logged events; `true` when that ended the stream.
    async fn replay(&self, after: &mut Option<EventId>) -> Result<bool, Broken> {
        loop {
            let batch = self
                .app
                .store()
                .read_events(&self.user, &self.thread, *after)
                .await?;
            if batch.is_empty() {
                return Ok(false);
            }
            match self.send(batch, after).await {
                Next::More => {}
                Next::Done => return Ok(true),
                Next::Superseded => return Err(Broken::Gone),
            }
        }
    }

    /// Waits for new events until the generation's last one, or until it is found dead.
    async fn follow(&self, mut after: Option<EventId>) -> Result<(), Broken> {
        let store = self.app.store();
        let mut follower = store
            .follower(&self.user, &self.thread, FOLLOW_BLOCK)
            .await?;
        loop {
            let from = after.unwrap_or(EventId {
                ms: self.info.start_ms,
                seq: 0,
            });
            let batch = tokio::select! {
                batch = follower.next(from) => batch?,
                () = self.tx.closed() => return Ok(()),
            };
            if batch.is_empty() {
                let alive = store
                    .stream_info(&self.user, &self.thread)
                    .await?
                    .is_some_and(|now| {
                        now.reply_id == self.info.reply_id && now.state == GenerationState::Running
                    });
                if alive {
                    continue;
                }
                // It ended or died while we waited: whatever it logged last is there now.
                let rest = store.read_events(&self.user, &self.thread, after).await?;
                return match self.send(rest, &mut after).await {
                    Next::Done => Ok(()),
                    Next::More | Next::Superseded => Err(Broken::Gone),
                };
            }
            match self.send(batch, &mut after).await {
                Next::More => {}
                Next::Done => return Ok(()),
                Next::Superseded => return Err(Broken::Gone),
            }
        }
    }

    /// Sends a batch of logged events as one frame.
    async fn send(&self, batch: Vec<LoggedEvent>, after: &mut Option<EventId>) -> Next {
        let mut frame = BytesMut::new();
        let mut next = Next::More;
        for logged in batch {
            if logged.event.id.ms != self.info.start_ms {
                next = Next::Superseded;
                break;
            }
            // A log entry holding the client's last event comes back whole.
            if after.is_some_and(|after| logged.event.id <= after) {
                continue;
            }
            if self.info.format == ReplyFormat::Responses {
                write_typed_event(&mut frame, logged.event.data.as_bytes());
            }
            write_event(
                &mut frame,
                Some(logged.event.id),
                logged.event.data.as_bytes(),
            );
            *after = Some(logged.event.id);
            if logged.last {
                next = Next::Done;
                break;
            }
        }
        if !frame.is_empty() && self.tx.send(frame.freeze()).await.is_err() {
            return Next::Done;
        }
        next
    }

    /// Ends a stream whose generation will not end it: the client's error events.
    async fn interrupted(&self, err: &Broken) {
        tracing::warn!(thread = %self.thread, error = %err, "a resumed stream ended early");
        let mut events: Vec<String> = Vec::new();
        if self.info.format == ReplyFormat::Responses {
            // The Responses API's stream-level `error` event.
            events.push(
                serde_json::json!({ "type": "error", "code": INTERRUPTED.code,
                    "message": INTERRUPTED.message, "param": null })
                .to_string(),
            );
        } else {
            Encoder::new(self.info.format, false).fail(&INTERRUPTED, &mut events);
        }
        let mut frame = BytesMut::new();
        for data in &events {
            if self.info.format == ReplyFormat::Responses {
                write_typed_event(&mut frame, data.as_bytes());
            }
            write_event(&mut frame, None, data.as_bytes());
        }
        let _ = self.tx.send(frame.freeze()).await;
    }
}

/// Why a resumed stream cannot reach the generation's end.
#[derive(Debug, thiserror::Error)]
enum Broken {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log ended without its last event: the generator died, or a newer generation
    /// replaced the log.
    #[error("the generation ended without its last event")]
    Gone,
}
