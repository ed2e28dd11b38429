//! Where a generation's events go: to its own client at once (while it listens), and to the
//! thread's stream log in batches, off the client's path, by a [`Recorder`] task that also
//! brings back a stop request.
//!
//! # Design
//! The outlet only appends each event to a shared buffer (a lock and a push); the recorder
//! wakes on a timer, every [`FLUSH_WINDOW`], and writes what piled up in one round trip. A
//! reply shorter than the window never wakes it: its events all go with the turn's last write.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::response::sse::Event;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    app::App,
    domain::{MessageId, ThreadId, UserId},
    store::{EventId, StreamEvent},
};

/// Events are logged at most this long after they were sent, in one round trip per window
/// however fast they come. It bounds how far a resumer trails the live client.
const FLUSH_WINDOW: Duration = Duration::from_millis(20);

/// While no events come (the model thinking, or a stall), the recorder still checks for a
/// stop request this often.
const STOP_POLL: Duration = Duration::from_millis(250);

/// Events sent but not logged yet, shared by the outlet and the recorder.
#[derive(Default)]
struct Pending {
    events: Mutex<Vec<StreamEvent>>,
    /// Held while a batch is being written, so the turn's last write waits for it (ids must
    /// reach the log in order).
    writing: tokio::sync::Mutex<()>,
}

impl Pending {
    fn push(&self, event: StreamEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    fn take(&self) -> Vec<StreamEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Names a generation's events and hands them out.
pub struct Outlet {
    client: Option<mpsc::Sender<Event>>,
    pending: Arc<Pending>,
    start_ms: i64,
    seq: u64,
}

impl Outlet {
    /// An outlet for the generation whose turn began at `start_ms`.
    pub fn new(client: mpsc::Sender<Event>, start_ms: i64) -> Self {
        Self {
            client: Some(client),
            pending: Arc::default(),
            start_ms,
            seq: 0,
        }
    }

    /// The event with the next id.
    pub fn stamp(&mut self, data: String) -> StreamEvent {
        self.seq += 1;
        StreamEvent {
            id: EventId {
                ms: self.start_ms,
                seq: self.seq,
            },
            data,
        }
    }

    /// Queues an event before the response has left (the channel has room for the first
    /// few), and logs it.
    pub fn queue(&mut self, data: String) {
        let event = self.stamp(data);
        if let Some(tx) = &self.client {
            let _ = tx.try_send(sse(&event));
        }
        self.pending.push(event);
    }

    /// Sends an event to the client while it listens, and logs it.
    pub async fn emit(&mut self, data: String) {
        let event = self.stamp(data);
        self.send(&event).await;
        self.pending.push(event);
    }

    /// Sends already logged events (the stream's last ones) to the client.
    pub async fn send_logged(&mut self, events: &[StreamEvent]) {
        for event in events {
            self.send(event).await;
        }
    }

    async fn send(&mut self, event: &StreamEvent) {
        if let Some(tx) = &self.client
            && tx.send(sse(event)).await.is_err()
        {
            tracing::debug!("the client went away; reading the reply to the end anyway");
            self.client = None;
        }
    }
}

/// A logged event as an SSE event, its log id as the SSE `id:`.
pub fn sse(event: &StreamEvent) -> Event {
    Event::default()
        .id(event.id.to_string())
        .data(event.data.as_str())
}

/// Writes a generation's events to its stream log and watches for a stop request.
pub struct Recorder {
    task: JoinHandle<()>,
    pending: Arc<Pending>,
}

/// Whom the recorder writes for.
pub struct Generation {
    pub app: App,
    pub user: UserId,
    pub thread: ThreadId,
    pub reply_id: MessageId,
}

impl Recorder {
    /// Starts recording what `outlet` sends; `stop` fires when the generation is asked to
    /// stop.
    pub fn start(generation: Generation, outlet: &Outlet, stop: oneshot::Sender<()>) -> Self {
        let pending = Arc::clone(&outlet.pending);
        Self {
            task: tokio::spawn(record(generation, Arc::clone(&pending), stop)),
            pending,
        }
    }

    /// Stops the recorder (after the batch it may be writing) and returns the events it has
    /// not written: they go with the turn's last write.
    pub async fn finish(self) -> Vec<StreamEvent> {
        let _writing = self.pending.writing.lock().await;
        self.task.abort();
        self.pending.take()
    }
}

async fn record(generation: Generation, pending: Arc<Pending>, stop: oneshot::Sender<()>) {
    let Generation {
        app,
        user,
        thread,
        reply_id,
    } = generation;
    let mut stop = Some(stop);
    let mut last_check = Instant::now();
    loop {
        tokio::time::sleep(FLUSH_WINDOW).await;
        let writing = pending.writing.lock().await;
        let batch = pending.take();
        if batch.is_empty() && last_check.elapsed() < STOP_POLL {
            continue;
        }
        last_check = Instant::now();
        // An empty batch only checks for a stop request.
        match app
            .store()
            .log_events(&user, &thread, &reply_id, &batch)
            .await
        {
            Ok(stop_requested) => {
                if stop_requested && let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
            // The client has these events; only a resumer would miss them.
            Err(err) => {
                tracing::warn!(thread = %thread, error = %err, "could not log stream events");
            }
        }
        drop(writing);
    }
}
