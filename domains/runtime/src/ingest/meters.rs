//! What a product's loads count: plain metric handles, labelled with the
//! product, that the serving floor registers with the service's metrics
//! (loads before serving count too). Load duration, rows, outcome, the
//! quality rules failing at the last load, and when the data was loaded
//! (from which the data's age is read at each scrape).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

use crate::error::Result;
use crate::store::LoadSummary;

/// Bucket bounds of the load duration, in seconds (a small file to a
/// multi-million-row load).
const LOAD_BUCKETS: [f64; 12] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// One product's load meters.
#[derive(Debug, Clone)]
pub struct LoadMeters {
    seconds: Histogram,
    rows: IntCounter,
    outcomes: IntCounterVec,
    failing_rules: IntGauge,
    age: Gauge,
    loaded_at_ms: Arc<AtomicI64>,
}

fn opts(name: &str, help: &str, product: &str) -> Opts {
    Opts::new(name, help).const_label("product", product)
}

impl LoadMeters {
    /// Meters of `product`'s loads, registered nowhere yet.
    pub fn new(product: &str) -> Self {
        let seconds = Histogram::with_opts(
            HistogramOpts::new("mesh_load_duration_seconds", "How long loads took, by product")
                .const_label("product", product)
                .buckets(LOAD_BUCKETS.to_vec()),
        );
        Self {
            seconds: seconds.expect("a valid histogram"),
            rows: IntCounter::with_opts(opts("mesh_load_rows_total", "Rows loaded, by product", product))
                .expect("a valid counter"),
            outcomes: IntCounterVec::new(
                opts("mesh_loads_total", "Loads, by product and outcome (ok, failed)", product),
                &["outcome"],
            )
            .expect("a valid counter family"),
            failing_rules: IntGauge::with_opts(opts(
                "mesh_quality_rules_failing",
                "Quality rules that some rows failed at the product's last load",
                product,
            ))
            .expect("a valid gauge"),
            age: Gauge::with_opts(opts(
                "mesh_data_age_seconds",
                "Seconds since the product's data was last loaded (absent before its first load)",
                product,
            ))
            .expect("a valid gauge"),
            loaded_at_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The collectors to register.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.seconds.clone()),
            Box::new(self.rows.clone()),
            Box::new(self.outcomes.clone()),
            Box::new(self.failing_rules.clone()),
            Box::new(self.age.clone()),
        ]
    }

    /// Sets the data's age from when it was last loaded (before each scrape).
    pub fn refresh_age(&self) {
        let at = self.loaded_at_ms.load(Ordering::Relaxed);
        if at > 0 {
            self.age.set((now_ms() - at).max(0) as f64 / 1000.0);
        }
    }

    /// Remembers that the data in force was loaded at `at_ms` (read from the
    /// store at start).
    pub fn loaded_at(&self, at_ms: i64) {
        self.loaded_at_ms.store(at_ms, Ordering::Relaxed);
    }

    /// Counts a load that began at `started` and ended with `outcome`.
    pub(crate) fn record(&self, started: Instant, outcome: &Result<LoadSummary>) {
        self.seconds.observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(summary) => {
                self.outcomes.with_label_values(&["ok"]).inc();
                self.rows.inc_by(summary.rows.max(0) as u64);
                self.failing_rules.set(summary.quality.iter().filter(|q| !q.passed).count() as i64);
                self.loaded_at(now_ms());
            }
            Err(_) => self.outcomes.with_label_values(&["failed"]).inc(),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
