//! Where a generation's events go: to its own client at once (while it listens), and to the
//! thread's stream log in batches, off the client's path, by a [`Recorder`] task that also
//! brings back a stop request.

use std::time::Duration;

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

/// Names a generation's events and hands them out.
pub struct Outlet {
    client: Option<mpsc::Sender<Event>>,
    log: mpsc::UnboundedSender<StreamEvent>,
    start_ms: i64,
    seq: u64,
}

impl Outlet {
    /// An outlet for the generation whose turn began at `start_ms`, and the receiving end of
    /// its log (for [`Recorder::start`]).
    pub fn new(
        client: mpsc::Sender<Event>,
        start_ms: i64,
    ) -> (Self, mpsc::UnboundedReceiver<StreamEvent>) {
        let (log, logged) = mpsc::unbounded_channel();
        let outlet = Self {
            client: Some(client),
            log,
            start_ms,
            seq: 0,
        };
        (outlet, logged)
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
        let _ = self.log.send(event);
    }

    /// Sends an event to the client while it listens, and logs it.
    pub async fn emit(&mut self, data: String) {
        let event = self.stamp(data);
        self.send(&event).await;
        let _ = self.log.send(event);
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

    /// Stops logging: the recorder writes what it holds no more and hands it back.
    pub fn close_log(&mut self) {
        let (closed, _) = mpsc::unbounded_channel();
        self.log = closed;
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
    task: JoinHandle<Vec<StreamEvent>>,
}

/// Whom the recorder writes for.
pub struct Generation {
    pub app: App,
    pub user: UserId,
    pub thread: ThreadId,
    pub reply_id: MessageId,
}

impl Recorder {
    /// Starts recording `events`; `stop` fires when the generation is asked to stop.
    pub fn start(
        generation: Generation,
        events: mpsc::UnboundedReceiver<StreamEvent>,
        stop: oneshot::Sender<()>,
    ) -> Self {
        Self {
            task: tokio::spawn(record(generation, events, stop)),
        }
    }

    /// Waits for the recorder, once its outlet's log is closed, and returns the events it
    /// had not written yet: they go with the turn's last write.
    pub async fn finish(self) -> Vec<StreamEvent> {
        self.task.await.unwrap_or_default()
    }
}

async fn record(
    generation: Generation,
    mut events: mpsc::UnboundedReceiver<StreamEvent>,
    stop: oneshot::Sender<()>,
) -> Vec<StreamEvent> {
    let Generation {
        app,
        user,
        thread,
        reply_id,
    } = generation;
    let mut stop = Some(stop);
    let mut pending = Vec::new();
    loop {
        // Wait for the first event of a batch, checking for a stop while none comes.
        match tokio::time::timeout(STOP_POLL, events.recv()).await {
            Ok(Some(event)) => pending.push(event),
            Ok(None) => return pending,
            Err(_) => {}
        }
        if !pending.is_empty() {
            let window = Instant::now() + FLUSH_WINDOW;
            loop {
                match tokio::time::timeout_at(window, events.recv()).await {
                    Ok(Some(event)) => pending.push(event),
                    Ok(None) => return pending,
                    Err(_) => break,
                }
            }
        }
        match app
            .store()
            .log_events(&user, &thread, &reply_id, &pending)
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
        pending.clear();
    }
}
