//! The generation lease: while a turn runs, its thread counts as generating (a second turn
//! gets 409) and a crashed process frees it within one lease. The renewal also carries the
//! signals the control channel may have missed.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::{
    app::App,
    domain::now,
    store::{
        Renewal, TurnIds,
        control::{self, Signals},
    },
};

/// Renews a generation's lease every third of its length until dropped.
pub(super) struct LeaseKeeper(JoinHandle<()>);

impl LeaseKeeper {
    /// Keeps the lease of `ids`' turn; a streamed turn passes where its signals go, and gets
    /// a stop when its thread was deleted or a stop or resume request is found in its meta.
    pub fn start(
        app: App,
        ids: Arc<TurnIds>,
        signals: Option<Arc<tokio::sync::watch::Sender<Signals>>>,
    ) -> Self {
        let lease = app.config().chat.generation_lease;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        Self(tokio::spawn(async move {
            // The lease was just taken: the first renewal is a period away (an interval's
            // usual immediate first tick would be a timer that fires at once, a trip through
            // the runtime's driver for nothing).
            let period = lease / 3;
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                let until = now().as_millisecond().saturating_add(lease_ms);
                let until = jiff::Timestamp::from_millisecond(until).unwrap_or_else(|_| now());
                let raise = |set: fn(&mut Signals)| {
                    if let Some(signals) = &signals {
                        control::raise(signals, set);
                    }
                };
                match app.store().renew_turn(&ids, until).await {
                    Ok(Renewal::Renewed { stop, follow }) => {
                        if stop {
                            raise(|s| s.stop = true);
                        }
                        if follow {
                            raise(|s| s.follow = true);
                        }
                    }
                    Ok(Renewal::Gone) => {
                        raise(|s| s.stop = true);
                        break;
                    }
                    Ok(Renewal::Lost) => break,
                    Err(err) => {
                        tracing::warn!(thread = %ids.thread, error = %err, "could not renew the generation lease");
                    }
                }
            }
        }))
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}
