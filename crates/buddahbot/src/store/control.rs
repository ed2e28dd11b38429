//! Signals to a running generation from any instance — stop, and "a resumer wants your
//! events" — pushed through Redis pub/sub instead of polled.
//!
//! # Design
//! Each process subscribes once, on its first streamed turn, to a channel of its own
//! ([`Control::channel`]); every turn it begins records that channel in the thread's meta
//! (`streamOwner`). The stop and resume scripts publish `stop <replyId>` / `follow <replyId>`
//! to it in the same round trip that sets the meta flag, so a turn pays nothing for being
//! stoppable and resumable, whatever the reply's length, and a signal arrives within a round
//! trip. The meta flags stay the source of truth: the lease renewal reads them too, so a
//! signal published while the subscription was down (Redis restarting) is still seen, one
//! renewal later. On a Cluster, `PUBLISH` reaches every node, so subscribing on one node is
//! enough; the subscriber moves to the next seed node when its node goes away.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures_util::StreamExt;
use tokio::sync::{OnceCell, watch};

use crate::{config::RedisConfig, domain::MessageId};

/// Wait between reconnection attempts of the subscriber.
const RECONNECT_DELAY: Duration = Duration::from_millis(250);

/// What a generation has been asked, as it accumulates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// Stop generating (asked by a user, or the thread was deleted).
    pub stop: bool,
    /// A resumer is waiting: write the events to the stream log from now on.
    pub follow: bool,
}

/// The signal words, as published.
pub(super) const STOP: &str = "stop";
pub(super) const FOLLOW: &str = "follow";

/// The process's end of the control channel: its name, the generations running here, and
/// the subscriber task that feeds them.
pub struct Control {
    channel: String,
    redis: Arc<RedisConfig>,
    running: Mutex<HashMap<String, Arc<watch::Sender<Signals>>>>,
    /// Set once the subscriber is listening for the first time.
    listening: OnceCell<()>,
}

/// A generation's registration: signals arrive on `signals` until it is dropped.
pub struct Registration {
    control: Arc<Control>,
    reply_id: MessageId,
    sender: Arc<watch::Sender<Signals>>,
    pub signals: watch::Receiver<Signals>,
}

impl Registration {
    /// A handle to raise signals from this process (the lease renewal, the log writer).
    pub fn sender(&self) -> Arc<watch::Sender<Signals>> {
        Arc::clone(&self.sender)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.control
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(self.reply_id.as_str());
    }
}

impl Control {
    pub(super) fn new(redis: Arc<RedisConfig>) -> Arc<Self> {
        Arc::new(Self {
            channel: format!("buddahbot:control:{}", uuid::Uuid::new_v4().simple()),
            redis,
            running: Mutex::default(),
            listening: OnceCell::new(),
        })
    }

    /// The channel this process listens on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Registers a generation about to start here. The first call of a process starts the
    /// subscriber and waits (at most the connect timeout) until it listens, so a signal sent
    /// right after the turn began is not missed; when Redis cannot be reached the turn goes
    /// on and its lease renewal carries the signals instead.
    pub async fn register(self: &Arc<Self>, reply_id: &MessageId) -> Registration {
        let (sender, signals) = watch::channel(Signals::default());
        let sender = Arc::new(sender);
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(reply_id.as_str().to_owned(), Arc::clone(&sender));
        if !self.listening.initialized() {
            let this = Arc::clone(self);
            let wait = self.listening.get_or_init(|| async move {
                let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
                tokio::spawn(subscribe(Arc::clone(&this), ready_tx));
                let _ = tokio::time::timeout(this.redis.connect_timeout * 2, ready_rx).await;
            });
            wait.await;
        }
        Registration {
            control: Arc::clone(self),
            reply_id: reply_id.clone(),
            sender,
            signals,
        }
    }

    /// Applies a published signal (`<word> <replyId>`) to the generation it names, if it runs
    /// here.
    fn deliver(&self, payload: &[u8]) {
        let Ok(payload) = std::str::from_utf8(payload) else {
            return;
        };
        let Some((word, reply_id)) = payload.split_once(' ') else {
            return;
        };
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = running.get(reply_id) else {
            return;
        };
        match word {
            STOP => raise(sender, |s| s.stop = true),
            FOLLOW => raise(sender, |s| s.follow = true),
            _ => {}
        }
    }
}

/// Sets a signal, waking the generation only when it changed.
pub fn raise(sender: &watch::Sender<Signals>, set: impl FnOnce(&mut Signals)) {
    sender.send_if_modified(|signals| {
        let before = *signals;
        set(signals);
        *signals != before
    });
}

/// The subscriber: listens on the process's channel for as long as the process lives,
/// reconnecting (to the next seed node, on a Cluster) whenever the connection drops.
async fn subscribe(control: Arc<Control>, ready: tokio::sync::oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut node = 0usize;
    loop {
        match listen(&control, node).await {
            Ok(mut messages) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                while let Some(message) = messages.next().await {
                    control.deliver(message.get_payload_bytes());
                }
                tracing::warn!("the control subscription was closed; reconnecting");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot subscribe to the control channel; retrying");
            }
        }
        node = node.wrapping_add(1);
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

async fn listen(control: &Control, node: usize) -> redis::RedisResult<redis::aio::PubSubStream> {
    let client = control.redis.node_client(node)?;
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&control.channel).await?;
        Ok(pubsub.into_on_message())
    };
    match tokio::time::timeout(control.redis.connect_timeout * 2, connect).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "subscribing to the control channel timed out",
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_reaches_only_the_generation_it_names_and_wakes_it_once() {
        let sender = watch::Sender::new(Signals::default());
        let mut rx = sender.subscribe();
        raise(&sender, |s| s.follow = true);
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            *rx.borrow_and_update(),
            Signals {
                stop: false,
                follow: true
            }
        );
        raise(&sender, |s| s.follow = true);
        assert!(
            !rx.has_changed().unwrap(),
            "an unchanged signal does not wake"
        );
        raise(&sender, |s| s.stop = true);
        assert!(rx.borrow_and_update().stop);
    }
}
