//! Prometheus metrics of a mesh service, served at `/metrics` on its own
//! port (HTTP/1.1 and HTTP/2, behind its TLS): the calls it answered (by
//! service, method and code, with durations), the tokens it refused and
//! why, the calls it denied, its process (memory, open files, threads,
//! CPU), and whatever the service registers of its own.
//!
//! Conventions: every name starts with `mesh_`, carries its base unit
//! (`_seconds`, `_bytes`, `_total`), durations are histograms, and label
//! values come from bounded sets the service knows before any call
//! (products, methods, codes, reasons): never a principal, a filter or a
//! value, so no caller can grow the number of series.
//!
//! Reading them takes a token with the role `metrics` or `admin`
//! (Prometheus sends one from a `credentials_file`), unless the service was
//! started with `--insecure-open-metrics`.

mod calls;
mod endpoint;
#[cfg(feature = "test-support")]
pub mod promtool;

use std::sync::{Arc, Mutex};

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub use calls::{ALWAYS_SERVED, CallMeter, KnownMethods, MarkRoute, Route};
pub(crate) use endpoint::router as endpoint_router;
pub use endpoint::{METRICS_PATH, METRICS_ROLE};

/// Bucket bounds, in seconds, of the duration histograms: from half a
/// millisecond (a cached unary call) to five minutes (a whole export).
pub const DURATION_BUCKETS: [f64; 17] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// A service's metrics: the registry `/metrics` renders and the families
/// every service shares. Cheap to clone (handles to the same series).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    before_scrape: Arc<Mutex<Vec<Refresh>>>,
    calls: IntCounterVec,
    call_seconds: HistogramVec,
    auth_refusals: IntCounterVec,
    denials: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding the shared families and the process collector.
    pub fn new() -> Self {
        let registry = Registry::new();
        let calls = counter_vec(
            "mesh_calls_total",
            "Calls answered, by service (gRPC service, or `http`), method (or HTTP route) and code (gRPC code name, or HTTP status)",
            &["service", "method", "code"],
        );
        let call_seconds = histogram_vec(
            "mesh_call_duration_seconds",
            "How long calls took, from the request to the response's last byte (a stream's whole length)",
            &["service", "method"],
        );
        let auth_refusals = counter_vec(
            "mesh_auth_refusals_total",
            "Calls refused for their bearer token, by reason (missing, expired, audience, signature, ...)",
            &["reason"],
        );
        let denials = counter_vec(
            "mesh_authorization_denials_total",
            "Calls by an authenticated caller refused PERMISSION_DENIED (no agreement, role or scope for it), by service and method",
            &["service", "method"],
        );
        let metrics =
            Self { registry, before_scrape: Arc::default(), calls, call_seconds, auth_refusals, denials };
        for collector in [
            Box::new(metrics.calls.clone()) as Box<dyn Collector>,
            Box::new(metrics.call_seconds.clone()),
            Box::new(metrics.auth_refusals.clone()),
            Box::new(metrics.denials.clone()),
        ] {
            metrics.register(collector);
        }
        #[cfg(target_os = "linux")]
        metrics.register(Box::new(prometheus::process_collector::ProcessCollector::new(
            std::process::id() as i32,
            "mesh",
        )));
        metrics
    }

    /// Adds `collector` to what `/metrics` renders. A second collector of
    /// the same name is a mistake in the service's code: it is logged and
    /// left out rather than taking the service down.
    pub fn register(&self, collector: Box<dyn Collector>) {
        if let Err(error) = self.registry.register(collector) {
            tracing::error!(%error, "a metric could not be registered");
        }
    }

    /// Adds each of `collectors` (see [`Metrics::register`]).
    pub fn register_all(&self, collectors: Vec<Box<dyn Collector>>) {
        for collector in collectors {
            self.register(collector);
        }
    }

    /// Runs `refresh` before each scrape: for gauges read from state kept
    /// elsewhere (an age, a count). It must be quick and never block.
    pub fn before_scrape(&self, refresh: impl Fn() + Send + Sync + 'static) {
        self.before_scrape.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(refresh));
    }

    /// A counter family `name` with `labels`, registered.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let family = counter_vec(name, help, labels);
        self.register(Box::new(family.clone()));
        family
    }

    /// A gauge family `name` with `labels`, registered.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let family = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge family");
        self.register(Box::new(family.clone()));
        family
    }

    /// A gauge `name`, registered.
    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        let gauge = IntGauge::new(name, help).expect("a valid gauge");
        self.register(Box::new(gauge.clone()));
        gauge
    }

    /// Counts a token refused for `reason` (see `AuthError::reason`).
    pub fn auth_refused(&self, reason: &str) {
        self.auth_refusals.with_label_values(&[reason]).inc();
    }

    /// Everything registered, in Prometheus' text format.
    pub fn render(&self) -> String {
        for refresh in self.before_scrape.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            refresh();
        }
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_else(|error| {
            tracing::error!(%error, "the metrics could not be rendered");
            String::new()
        })
    }

    /// Records one call answered with `code` after `seconds`.
    fn call(&self, service: &str, method: &str, code: &str, seconds: f64) {
        self.calls.with_label_values(&[service, method, code]).inc();
        self.call_seconds.with_label_values(&[service, method]).observe(seconds);
        if code == "PERMISSION_DENIED" || code == "403" {
            self.denials.with_label_values(&[service, method]).inc();
        }
    }
}

/// A gauge refresher run before each scrape.
type Refresh = Box<dyn Fn() + Send + Sync>;

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter family")
}

fn histogram_vec(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec());
    HistogramVec::new(opts, labels).expect("a valid histogram family")
}
