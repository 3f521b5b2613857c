//! When a product is loaded again, as its file's `refresh` says: when its
//! source file changes (polled; a load of content already loaded is
//! skipped), on a schedule, and for a derived product when one of its
//! inputs publishes a load (the registry's `mesh.data.loaded.v1` events on
//! `Watch`; a burst of loads is waited out). A derived product is also
//! built at start, retried while its inputs are not yet serving. One load
//! of a product runs at a time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mesh_contracts::catalog::WatchRequest;
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use mesh_runtime::ingest::{LoadSummary, Shrink};
use mesh_runtime::{DomainError, Result};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::derived::{self, Inputs};
use crate::load::load_source_async;
use crate::published::Published;

/// How often a source file is looked at for a change.
const SOURCE_POLL: Duration = Duration::from_secs(2);
/// How long the inputs' loads must be quiet before a rebuild.
const SETTLE: Duration = Duration::from_secs(2);
/// The longest a rebuild waits for the inputs to settle.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long to wait before watching again after the stream was lost.
const RETRY: Duration = Duration::from_secs(2);
/// The longest wait between two tries of a first build.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The event a new load writes.
const DATA_LOADED: &str = "mesh.data.loaded.v1";

/// Where a product's rows come from when it is loaded again.
#[derive(Clone)]
pub enum Origin {
    /// Its file (loaded when its content changed) or PostgreSQL relation.
    Source(Shrink),
    /// Its SQL over inputs.
    Derived(Inputs),
}

/// Loads one product again, one load at a time.
pub struct Refresher {
    published: Arc<Published>,
    origin: Origin,
    running: tokio::sync::Mutex<()>,
}

impl Refresher {
    /// Loads `published` again from `origin` when asked.
    pub fn new(published: Arc<Published>, origin: Origin) -> Arc<Self> {
        Arc::new(Self { published, origin, running: tokio::sync::Mutex::new(()) })
    }

    /// The product it loads.
    pub fn published(&self) -> &Arc<Published> {
        &self.published
    }

    /// Loads now (after the load running, if any), saying why in the log;
    /// `None` when a file's content was already loaded.
    pub async fn refresh(&self, why: &str) -> Result<Option<LoadSummary>> {
        let _one_at_a_time = self.running.lock().await;
        let id = self.published.id();
        let loaded = match &self.origin {
            Origin::Source(shrink) => load_source_async(Arc::clone(&self.published), false, *shrink).await,
            Origin::Derived(inputs) => derived::build(&self.published, inputs).await.map(Some),
        };
        match &loaded {
            Ok(Some(summary)) => tracing::info!(product = %id, why, rows = summary.rows, "loaded again"),
            Ok(None) => tracing::debug!(product = %id, why, "source unchanged"),
            Err(error) => tracing::warn!(product = %id, why, %error, "loading again failed"),
        }
        loaded
    }

    /// Starts what the product file's `refresh` asks for, with `registry`
    /// for the events of a derived product's inputs.
    pub fn start(self: &Arc<Self>) -> Result<Vec<JoinHandle<()>>> {
        let file = &self.published.declared.file;
        let mut tasks = Vec::new();
        if let Origin::Derived(inputs) = &self.origin {
            tasks.push(tokio::spawn(Arc::clone(self).first_build()));
            if file.refresh.when_inputs_load {
                let inputs = inputs.clone();
                let names = file.source.sql.as_ref().map(|sql| sql.inputs.clone()).unwrap_or_default();
                tasks.push(tokio::spawn(Arc::clone(self).on_input_loads(inputs, names)));
            }
        }
        if file.refresh.when_source_changes
            && let Some(source) = file.source.file(file.folder())
        {
            tasks.push(tokio::spawn(Arc::clone(self).on_file_change(source.path)));
        }
        if let Some(every) = &file.refresh.every {
            let period = humantime::parse_duration(every).ok().filter(|p| !p.is_zero()).ok_or_else(|| {
                DomainError::Config(format!("refresh.every: `{every}` is no period; write e.g. 15m or 6h"))
            })?;
            tasks.push(tokio::spawn(Arc::clone(self).every(period)));
        }
        Ok(tasks)
    }

    /// Builds, trying again while the inputs cannot be read; a mistake in
    /// the product file ends the tries (it is logged as an error).
    async fn first_build(self: Arc<Self>) {
        let mut wait = Duration::from_millis(500);
        loop {
            match self.refresh("start").await {
                Ok(_) => return,
                Err(error) if derived::is_mistake(&error) => {
                    return tracing::error!(product = %self.published.id(), %error, "cannot be built; fix the product file");
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn every(self: Arc<Self>, period: Duration) {
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let _ = self.refresh("schedule").await;
        }
    }

    /// Loads once the file's size or modification time changed and then
    /// held still for one poll (a file being written is not read half-way).
    async fn on_file_change(self: Arc<Self>, path: PathBuf) {
        let stamp = |path: &PathBuf| -> Option<(u64, SystemTime)> {
            std::fs::metadata(path).ok().and_then(|m| Some((m.len(), m.modified().ok()?)))
        };
        let mut loaded = stamp(&path);
        let mut seen = loaded;
        loop {
            tokio::time::sleep(SOURCE_POLL).await;
            let now = stamp(&path);
            if now.is_some() && now == seen && now != loaded {
                loaded = now;
                let _ = self.refresh("the source file changed").await;
            }
            seen = now;
        }
    }

    /// Rebuilds on every settled burst of the inputs' loads, for ever.
    async fn on_input_loads(self: Arc<Self>, inputs: Inputs, names: Vec<String>) {
        let channel = match mesh_grpc::client::stream_channel(
            &inputs.registry,
            Duration::from_secs(10),
            &inputs.credentials,
        ) {
            Ok(channel) => channel,
            Err(error) => return tracing::error!(%error, "cannot follow the inputs' loads"),
        };
        let mut events = EventServiceClient::new(channel);
        let mut after: Option<i64> = None;
        // When a rebuild is due, and when the first load it waits on came.
        let mut due: Option<(Instant, Instant)> = None;
        loop {
            let request = WatchRequest {
                after_sequence: after.unwrap_or(0),
                from_now: after.is_none(),
                types: vec![DATA_LOADED.to_owned()],
                ..Default::default()
            };
            let mut stream = match events.watch(request).await {
                Ok(stream) => stream.into_inner(),
                Err(status) => {
                    tracing::debug!(
                        reason = status.message(),
                        "cannot watch the inputs' loads; trying again"
                    );
                    if matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::InvalidArgument) {
                        // Loads in the gap are not known: rebuild once to be sure.
                        after = None;
                        due = Some((Instant::now(), Instant::now()));
                    }
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    message = stream.message() => match message {
                        Ok(Some(response)) => {
                            after = Some(response.resume_after);
                            if response.event.is_some_and(|e| names.contains(&e.subject)) {
                                let first = due.map_or_else(Instant::now, |(_, first)| first);
                                due = Some(((Instant::now() + SETTLE).min(first + MAX_WAIT), first));
                            }
                        }
                        _ => break,
                    },
                    () = tokio::time::sleep_until(due.map_or_else(Instant::now, |(at, _)| at)), if due.is_some() => {
                        due = None;
                        let _ = self.refresh("an input loaded").await;
                    }
                }
            }
            // A rebuild still due happens once the next stream is up.
            tokio::time::sleep(RETRY).await;
        }
    }
}
