//! The one task that follows the event log: woken by every committed write
//! (and, on PostgreSQL, by other replicas' announcements, or once a second
//! in case one was lost), it reads the new events in order and hands each
//! to every live reader through a broadcast channel. A reader that falls
//! behind by more than the channel holds reads the log itself again, so
//! 1,000 watchers cost one query per change, not 1,000. The same task
//! trims the log to its retention every minute, and ends once the hub is
//! dropped (the registry stopped).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::store::Store;
use crate::store::events::{self, EventFilter, Retention, StoredEvent};

/// Events held for readers that are a little behind.
const BACKLOG: usize = 4096;
/// Events read from the log at a time.
const PAGE: usize = 1000;
/// How often the log is read when no write was announced (on PostgreSQL,
/// another replica's notification may be lost), and whether the registry
/// stopped is checked.
const FALLBACK: Duration = Duration::from_secs(1);
/// How often the log is trimmed to its retention.
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// Events deleted per transaction when trimming.
const TRIM_BATCH: i64 = 10_000;

/// New events, fanned out.
#[derive(Debug, Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Arc<StoredEvent>>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl EventHub {
    /// Starts following `store`'s log after its newest event (read before
    /// this returns, so nothing written once the registry serves is
    /// missed), keeping it to `retention`; readers end when `stopping`
    /// turns true.
    pub async fn start(
        store: Store,
        retention: Retention,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> crate::error::Result<Self> {
        let newest = store.read(events::latest).await?;
        let (sender, _) = broadcast::channel(BACKLOG);
        tokio::spawn(follow(store, sender.downgrade(), retention, newest));
        Ok(Self { sender, stopping })
    }

    /// Turns true when the registry begins to shut down.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.clone()
    }

    /// The events written from now on (a receiver lags rather than block
    /// the others when it falls [`BACKLOG`] behind).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.sender.subscribe()
    }
}

async fn follow(
    store: Store,
    hub: broadcast::WeakSender<Arc<StoredEvent>>,
    retention: Retention,
    mut last: i64,
) {
    let mut writes = store.writes();
    let shared = store.changes().is_some();
    let mut trimmed: Option<Instant> = None;
    while let Some(sender) = hub.upgrade() {
        last = fan_out(&store, &sender, last).await;
        drop(sender);
        if trimmed.is_none_or(|at| at.elapsed() >= TRIM_EVERY) {
            // Only events already handed to this replica's readers go.
            trim(&store, retention, last).await;
            trimmed = Some(Instant::now());
        }
        tokio::select! {
            changed = writes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(FALLBACK) => if !shared { continue },
        }
    }
}

/// Sends every event after `after` to the hub's receivers; the last sent.
async fn fan_out(store: &Store, sender: &broadcast::Sender<Arc<StoredEvent>>, mut after: i64) -> i64 {
    loop {
        let from = after;
        match store.read(move |db| events::after(db, (from, i64::MAX), &EventFilter::default(), PAGE)).await {
            Ok(page) => {
                let full = page.len() == PAGE;
                for event in page {
                    after = event.sequence;
                    // No receiver is no error: nobody watches now.
                    let _ = sender.send(Arc::new(event));
                }
                if !full {
                    return after;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading the event log failed; trying again");
                return after;
            }
        }
    }
}

/// Deletes the events retention no longer keeps, up to `through`.
async fn trim(store: &Store, retention: Retention, through: i64) {
    loop {
        match store.write(move |db| events::trim(db, retention, TRIM_BATCH, through)).await {
            Ok(deleted) if deleted >= TRIM_BATCH as u64 => {}
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, "trimming the event log failed; trying again later");
                return;
            }
        }
    }
}
