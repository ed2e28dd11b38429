//! Where a generation's events go: to its own client, framed as SSE with their ids, and into
//! the generation's memory of what the stream log lacks; a [`Recorder`] writes that memory
//! to the log only while a resumer waits for it.
//!
//! # Design
//! Events are encoded into a byte buffer and handed to the client as one frame per
//! [`Outlet::flush`], which the turn calls once per network read of the model's reply: the
//! chunks that arrived together leave together, in one write. The stream log costs nothing
//! while nobody resumes: the events wait in memory. A resumer's request starts a recorder,
//! which writes what piled up every [`FLUSH_WINDOW`] from then on, so the resumer trails the
//! live client by at most that; the turn's last write appends the rest. A turn nobody
//! resumed writes its events only if its own client went away before the end (it may come
//! back for them); otherwise its client has them all and the stored reply says the same.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::body::Bytes;
use bytes::BytesMut;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::{
    app::App,
    protocol::encoder::EventSink,
    store::{
        EventId, LogBatch, TurnIds,
        control::{self, Signals},
    },
};

/// While a resumer follows, events reach the log at most this long after they were sent, in
/// one round trip per window however fast they come.
const FLUSH_WINDOW: Duration = Duration::from_millis(20);

/// The events a generation sent that its stream log lacks: their data joined by newlines (the
/// form of a log entry) and the id of the last.
#[derive(Debug, Default)]
pub struct Unlogged {
    data: Vec<u8>,
    count: usize,
    last: Option<EventId>,
}

impl Unlogged {
    fn push(&mut self, id: EventId, data: &[u8]) {
        if self.data.capacity() == 0 {
            // A short reply's events in one allocation, not a doubling per event or two.
            self.data.reserve(UNLOGGED_START);
        }
        if self.count > 0 {
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(data);
        self.count += 1;
        self.last = Some(id);
    }

    /// The events as one log entry, leaving none; `None` when there are none.
    fn take(&mut self) -> Option<(EventId, Vec<u8>)> {
        let last = self.last.take()?;
        self.count = 0;
        Some((last, std::mem::take(&mut self.data)))
    }
}

/// What the unlogged events' buffer starts with: a 64-token reply's ~17 KB in two steps.
const UNLOGGED_START: usize = 16 * 1024;

type SharedLog = Arc<Mutex<Unlogged>>;

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, Unlogged> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Names a generation's events (`<turn start ms>-<n>`) and hands them out.
pub struct Outlet {
    client: Option<mpsc::Sender<Bytes>>,
    /// SSE bytes encoded since the last flush.
    wire: BytesMut,
    unlogged: SharedLog,
    start_ms: i64,
    seq: u64,
}

impl EventSink for Outlet {
    fn event(&mut self, data: &[u8]) {
        self.seq += 1;
        let id = EventId {
            ms: self.start_ms,
            seq: self.seq,
        };
        write_event(&mut self.wire, Some(id), data);
        lock(&self.unlogged).push(id, data);
    }

    fn typed_event(&mut self, kind: &str, data: &[u8]) {
        self.wire.extend_from_slice(b"event: ");
        self.wire.extend_from_slice(kind.as_bytes());
        self.wire.extend_from_slice(b"\n");
        self.event(data);
    }
}

impl Outlet {
    /// An outlet for the generation whose turn began at `start_ms`.
    pub fn new(client: mpsc::Sender<Bytes>, start_ms: i64) -> Self {
        Self {
            client: Some(client),
            wire: BytesMut::with_capacity(16 * 1024),
            unlogged: SharedLog::default(),
            start_ms,
            seq: 0,
        }
    }

    /// Hands what was encoded since the last flush to the client as one frame, waiting
    /// while its buffer is full. A client that went away is forgotten: the turn goes on
    /// without it.
    pub async fn flush(&mut self) {
        if self.wire.is_empty() {
            return;
        }
        let frame = self.wire.split().freeze();
        if let Some(tx) = &self.client
            && tx.send(frame).await.is_err()
        {
            tracing::debug!("the client went away; reading the reply to the end anyway");
            self.client = None;
        }
    }

    /// [`Outlet::flush`] before the response has left, when the channel has room: the head
    /// goes out with these first events.
    pub fn flush_now(&mut self) {
        if self.wire.is_empty() {
            return;
        }
        let frame = self.wire.split().freeze();
        if let Some(tx) = &self.client {
            let _ = tx.try_send(frame);
        }
    }

    /// Whether the client went away (its connection closed) before the stream's end.
    pub fn client_gone(&self) -> bool {
        self.client.as_ref().is_none_or(mpsc::Sender::is_closed)
    }

    /// Whether nothing has been encoded since the last flush.
    pub fn is_flushed(&self) -> bool {
        self.wire.is_empty()
    }

    /// A comment line that keeps proxies from closing a connection while the model is silent.
    pub fn keep_alive(&mut self) {
        self.wire.extend_from_slice(b": keep-alive\n\n");
    }

    /// A mark to [`Outlet::retract`] to.
    pub fn mark(&self) -> Mark {
        Mark {
            wire: self.wire.len(),
        }
    }

    /// Takes back from the client what was encoded since `mark` (not flushed yet): the
    /// stream's last events, when the reply they announce could not be stored. Their ids
    /// stay used, and the log never gets them (the write that failed carried them).
    pub fn retract(&mut self, mark: Mark) {
        self.wire.truncate(mark.wire);
    }

    /// The events the log lacks, as one entry, leaving none.
    pub fn take_unlogged(&self) -> Option<(EventId, Vec<u8>)> {
        lock(&self.unlogged).take()
    }

    /// Starts writing the events to the stream log, a window at a time, for a resumer.
    pub fn record(&self, app: &App, ids: &Arc<TurnIds>, signals: &RecorderSignals) -> Recorder {
        Recorder::start(
            app.clone(),
            Arc::clone(ids),
            Arc::clone(&self.unlogged),
            Arc::clone(signals),
        )
    }
}

/// A position in the outlet's unflushed bytes.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    wire: usize,
}

/// One SSE event, `id:` first when it has one.
pub fn write_event(out: &mut BytesMut, id: Option<EventId>, data: &[u8]) {
    out.reserve(data.len() + 56);
    if let Some(EventId { ms, seq }) = id {
        // `id: <ms>-<seq>` (EventId's Display), without the formatting machinery: once per
        // token.
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(digits.format(ms).as_bytes());
        out.extend_from_slice(b"-");
        out.extend_from_slice(digits.format(seq).as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

/// The `event:` line of a Responses API event: its `type` (nothing when it has none).
pub fn write_typed_event(out: &mut BytesMut, data: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
    }
    if let Ok(Typed { kind }) = serde_json::from_slice::<Typed<'_>>(data) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\n");
    }
}

/// Where the recorder raises a stop it learns of (its log write reads the stop flag).
pub type RecorderSignals = Arc<watch::Sender<Signals>>;

/// Writes a generation's events to its stream log while a resumer follows.
pub struct Recorder {
    task: JoinHandle<()>,
    /// Held while a batch is written, so the turn's last write waits for it (ids must reach
    /// the log in order).
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl Recorder {
    fn start(app: App, ids: Arc<TurnIds>, unlogged: SharedLog, signals: RecorderSignals) -> Self {
        let writing = Arc::new(tokio::sync::Mutex::new(()));
        let task = tokio::spawn(record(app, ids, unlogged, signals, Arc::clone(&writing)));
        Self { task, writing }
    }

    /// Stops the recorder after the batch it may be writing; what it did not write stays for
    /// the turn's last write.
    pub async fn finish(self) {
        let _writing = self.writing.lock().await;
        self.task.abort();
    }
}

async fn record(
    app: App,
    ids: Arc<TurnIds>,
    unlogged: SharedLog,
    signals: RecorderSignals,
    writing: Arc<tokio::sync::Mutex<()>>,
) {
    loop {
        {
            let _writing = writing.lock().await;
            let batch = lock(&unlogged).take();
            if let Some((last, data)) = batch {
                let written = app
                    .store()
                    .log_batch(
                        &ids.user,
                        &ids.thread,
                        &ids.reply,
                        Some(LogBatch { last, data: &data }),
                    )
                    .await;
                match written {
                    Ok(true) => control::raise(&signals, |s| s.stop = true),
                    Ok(false) => {}
                    // The client has these events; only a resumer misses them.
                    Err(err) => {
                        tracing::warn!(thread = %ids.thread, error = %err, "could not log stream events");
                    }
                }
            }
        }
        tokio::time::sleep(FLUSH_WINDOW).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_go_to_the_client_framed_with_their_ids_and_wait_for_the_log_joined() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut outlet = Outlet::new(tx, 7);
        outlet.event(b"{\"a\":1}");
        outlet.event(b"[DONE]");
        outlet.flush_now();
        assert!(outlet.is_flushed());
        assert_eq!(
            rx.try_recv().unwrap(),
            "id: 7-1\ndata: {\"a\":1}\n\nid: 7-2\ndata: [DONE]\n\n"
        );
        let (last, data) = outlet.take_unlogged().unwrap();
        assert_eq!(last, EventId { ms: 7, seq: 2 });
        assert_eq!(data, b"{\"a\":1}\n[DONE]");
        assert!(outlet.take_unlogged().is_none());
    }

    #[test]
    fn retracted_events_never_reach_the_client() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut outlet = Outlet::new(tx, 1);
        outlet.event(b"kept");
        let mark = outlet.mark();
        outlet.event(b"[DONE]");
        outlet.retract(mark);
        outlet.event(b"failed");
        outlet.flush_now();
        assert_eq!(
            rx.try_recv().unwrap(),
            "id: 1-1\ndata: kept\n\nid: 1-3\ndata: failed\n\n"
        );
    }
}
