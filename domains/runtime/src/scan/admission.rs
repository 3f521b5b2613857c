//! Admission control for data streams: a bounded number of scans at once,
//! a short bounded queue in front of them, and a cap on the `Query` streams
//! one connection may hold open. Beyond the limits a call is refused at
//! once with `RESOURCE_EXHAUSTED`, never parked without bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tonic::Status;

use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};

/// What admission enforces (the domain's `ServeLimits` give them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Queries scanning at once.
    pub max_scans: usize,
    /// Queries that may wait for a scan slot.
    pub scan_queue: usize,
    /// How long a query may wait in the queue.
    pub scan_queue_timeout: Duration,
    /// `Query` streams one connection may hold open at once.
    pub streams_per_connection: usize,
    /// How long a stream may wait for its client to read.
    pub send_timeout: Duration,
    /// The most time one query may run, if bounded.
    pub query_budget: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_scans: default_max_scans(),
            scan_queue: 64,
            scan_queue_timeout: Duration::from_secs(120),
            streams_per_connection: 32,
            send_timeout: Duration::from_secs(30),
            query_budget: None,
        }
    }
}

/// Four scans per CPU (a scan waits on its client as often as it computes),
/// at least eight.
pub fn default_max_scans() -> usize {
    std::thread::available_parallelism().map_or(8, |n| (n.get() * 4).max(8))
}

/// The scan slots and stream counts of one domain, shared by its products.
#[derive(Debug, Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Limits,
    meters: AdmissionMeters,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    per_connection: Mutex<HashMap<SocketAddr, usize>>,
    cut: watch::Sender<bool>,
}

/// What admission counts: plain metric handles the serving floor
/// registers (unregistered ones count nowhere).
#[derive(Debug, Clone)]
pub struct AdmissionMeters {
    running: IntGauge,
    queued: IntGauge,
    refused: IntCounterVec,
    queue_wait: Histogram,
    cut: IntCounterVec,
}

impl Default for AdmissionMeters {
    fn default() -> Self {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("a valid gauge");
        let counters = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["reason"]).expect("a valid counter family")
        };
        let wait = HistogramOpts::new(
            "mesh_scan_queue_wait_seconds",
            "How long queries waited for a scan slot (0 when one was free)",
        )
        .buckets(vec![0.0, 0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0]);
        Self {
            running: gauge("mesh_scans_running", "Queries scanning now"),
            queued: gauge("mesh_scans_queued", "Queries waiting for a scan slot now"),
            refused: counters(
                "mesh_scans_refused_total",
                "Queries refused by admission, by reason (streams_per_connection, queue_full, queue_timeout, shutting_down)",
            ),
            queue_wait: Histogram::with_opts(wait).expect("a valid histogram"),
            cut: counters(
                "mesh_streams_cut_total",
                "Streams the domain cut before their end, by reason (stalled, budget, shutdown, failed)",
            ),
        }
    }
}

impl AdmissionMeters {
    /// The collectors to register.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.running.clone()),
            Box::new(self.queued.clone()),
            Box::new(self.refused.clone()),
            Box::new(self.queue_wait.clone()),
            Box::new(self.cut.clone()),
        ]
    }

    fn refused(&self, reason: &str) {
        self.refused.with_label_values(&[reason]).inc();
    }
}

/// A scan slot, held while the scan runs.
#[derive(Debug)]
pub struct ScanSlot {
    _permit: OwnedSemaphorePermit,
    running: IntGauge,
}

impl ScanSlot {
    fn new(permit: OwnedSemaphorePermit, meters: &AdmissionMeters) -> Self {
        meters.running.inc();
        Self { _permit: permit, running: meters.running.clone() }
    }
}

impl Drop for ScanSlot {
    fn drop(&mut self) {
        self.running.dec();
    }
}

/// One open `Query` stream on a connection, counted while it lives.
#[derive(Debug)]
pub struct StreamSlot {
    admission: Admission,
    peer: Option<SocketAddr>,
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: Limits) -> Self {
        Self::metered(limits, AdmissionMeters::default())
    }

    /// Admission under `limits`, counted in `meters`.
    pub fn metered(limits: Limits, meters: AdmissionMeters) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_scans.max(1)));
        Self {
            inner: Arc::new(Inner {
                limits,
                meters,
                slots,
                waiting: AtomicUsize::new(0),
                per_connection: Mutex::new(HashMap::new()),
                cut: watch::Sender::new(false),
            }),
        }
    }

    /// The limits admission enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Counts a new stream on the connection from `peer`, or refuses it when
    /// that connection already holds the most streams allowed.
    pub fn open_stream(&self, peer: Option<SocketAddr>) -> Result<StreamSlot, Status> {
        let limit = self.inner.limits.streams_per_connection;
        if let Some(peer) = peer {
            let mut counts = self.inner.per_connection.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(peer).or_default();
            if *count >= limit {
                self.inner.meters.refused("streams_per_connection");
                return Err(Status::resource_exhausted(format!(
                    "this connection already has {limit} Query streams open, the most a domain allows \
                     (--streams-per-connection); read or cancel one before starting another"
                )));
            }
            *count += 1;
        }
        Ok(StreamSlot { admission: self.clone(), peer })
    }

    /// Waits for a scan slot: at once if one is free, in the queue if it has
    /// room, for at most the queue timeout.
    pub async fn admit(&self) -> Result<ScanSlot, Status> {
        let (limits, meters) = (&self.inner.limits, &self.inner.meters);
        if let Ok(permit) = Arc::clone(&self.inner.slots).try_acquire_owned() {
            meters.queue_wait.observe(0.0);
            return Ok(ScanSlot::new(permit, meters));
        }
        let waiting = self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _queued = Queued::new(&self.inner.waiting, &meters.queued);
        if waiting >= limits.scan_queue {
            meters.refused("queue_full");
            return Err(Status::resource_exhausted(format!(
                "{} queries are running and {} are waiting, the most this domain accepts \
                 (--max-scans, --scan-queue); retry later with backoff",
                limits.max_scans, limits.scan_queue
            )));
        }
        let (acquire, started) = (Arc::clone(&self.inner.slots).acquire_owned(), Instant::now());
        let waited = tokio::time::timeout(limits.scan_queue_timeout, acquire).await;
        meters.queue_wait.observe(started.elapsed().as_secs_f64());
        match waited {
            Ok(Ok(permit)) => Ok(ScanSlot::new(permit, meters)),
            Ok(Err(_)) => {
                meters.refused("shutting_down");
                Err(Status::unavailable("the domain is shutting down; retry on another replica"))
            }
            Err(_) => {
                meters.refused("queue_timeout");
                Err(Status::resource_exhausted(format!(
                    "no scan slot came free within {} ({} queries running; --scan-queue-timeout, \
                 --max-scans); retry later with backoff",
                    humantime::format_duration(limits.scan_queue_timeout),
                    limits.max_scans
                )))
            }
        }
    }

    /// Counts a stream cut before its end for `reason`.
    pub(crate) fn count_cut(&self, reason: &str) {
        self.inner.meters.cut.with_label_values(&[reason]).inc();
    }

    /// Scans running now.
    pub fn running(&self) -> usize {
        self.inner.limits.max_scans.max(1) - self.inner.slots.available_permits()
    }

    /// Queries waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// Cuts every running scan and closes the queue (the shutdown grace
    /// period is over).
    pub fn cut(&self) {
        self.inner.cut.send_replace(true);
        self.inner.slots.close();
    }

    /// Whether [`Admission::cut`] was called.
    pub fn is_cut(&self) -> bool {
        *self.inner.cut.borrow()
    }

    /// Turns true when [`Admission::cut`] is called.
    pub(crate) fn cut_signal(&self) -> watch::Receiver<bool> {
        self.inner.cut.subscribe()
    }
}

impl Default for Admission {
    /// Admission under the default limits.
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// Counts a query in the queue while it waits.
struct Queued<'a>(&'a AtomicUsize, &'a IntGauge);

impl<'a> Queued<'a> {
    /// `waiting` was already counted up; the gauge follows it.
    fn new(waiting: &'a AtomicUsize, gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Self(waiting, gauge)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.dec();
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let Some(peer) = self.peer else { return };
        let mut counts = self.admission.inner.per_connection.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(max_scans: usize, scan_queue: usize, wait_ms: u64) -> Limits {
        Limits {
            max_scans,
            scan_queue,
            scan_queue_timeout: Duration::from_millis(wait_ms),
            streams_per_connection: 2,
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_slot_freed_admits_the_next() {
        let admission = Admission::new(limits(1, 1, 60_000));
        let first = admission.admit().await.unwrap();
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.map(|_| ()) }
        });
        while admission.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let refused = admission.admit().await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            refused.message(),
            "1 queries are running and 1 are waiting, the most this domain accepts (--max-scans, \
             --scan-queue); retry later with backoff"
        );
        drop(first);
        queued.await.unwrap().unwrap();
        assert_eq!((admission.running(), admission.waiting()), (0, 0));
    }

    #[tokio::test]
    async fn waiting_longer_than_the_queue_timeout_is_refused() {
        let admission = Admission::new(limits(1, 4, 20));
        let _first = admission.admit().await.unwrap();
        let refused = admission.admit().await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().starts_with("no scan slot came free within 20ms"), "{}", refused.message());
        assert_eq!(admission.waiting(), 0);
    }

    #[tokio::test]
    async fn streams_are_counted_per_connection() {
        let admission = Admission::new(limits(1, 1, 10));
        let (a, b): (SocketAddr, SocketAddr) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.1:2".parse().unwrap());
        let held = [admission.open_stream(Some(a)).unwrap(), admission.open_stream(Some(a)).unwrap()];
        let refused = admission.open_stream(Some(a)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("already has 2 Query streams open"), "{}", refused.message());
        admission.open_stream(Some(b)).unwrap();
        drop(held);
        admission.open_stream(Some(a)).unwrap();
    }
}
