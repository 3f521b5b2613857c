//! The registry's own metrics beside its calls: products by serving
//! status, registrations by outcome and refusal reason, GetProduct cache
//! hits and misses, agreement decisions, and the catalog database's
//! connections in use and callers waiting for one (SQLite's one connection
//! or PostgreSQL's pool). Plain handles, made before the server and
//! registered with its metrics; every label value comes from a closed set.

use std::time::Duration;

use mesh_grpc::metrics::Metrics;
use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts};
use tokio::sync::watch;

use crate::store::Store;

/// How often the products are counted by status, at least.
const COUNT_EVERY: Duration = Duration::from_secs(15);
/// How long after a write they are counted (the writes of a burst once).
const AFTER_WRITES: Duration = Duration::from_millis(500);

/// The registry's meters.
#[derive(Debug, Clone)]
pub struct RegistryMeters {
    products: IntGaugeVec,
    registrations: IntCounterVec,
    cache: IntCounterVec,
    decisions: IntCounterVec,
    pool_in_use: IntGauge,
    pool_waiting: IntGauge,
}

impl Default for RegistryMeters {
    fn default() -> Self {
        let counters = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter family")
        };
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("a valid gauge");
        Self {
            products: IntGaugeVec::new(
                Opts::new(
                    "mesh_registry_products",
                    "Products in the catalog by serving status (serving, stale, offline), counted after writes and every 15 s",
                ),
                &["status"],
            )
            .expect("a valid gauge family"),
            registrations: counters(
                "mesh_registry_registrations_total",
                "RegisterProduct calls by outcome (registered, refused) and reason (the code of a refusal: INVALID_ARGUMENT, PERMISSION_DENIED, FAILED_PRECONDITION for a breaking change, ...)",
                &["outcome", "reason"],
            ),
            cache: counters(
                "mesh_registry_cache_requests_total",
                "GetProduct answers from the cache (hit) or read from the database (miss)",
                &["result"],
            ),
            decisions: counters(
                "mesh_registry_agreement_decisions_total",
                "Agreement requests and decisions, by decision (pending, approved_by_rule, approved, denied, revoked)",
                &["decision"],
            ),
            pool_in_use: gauge(
                "mesh_registry_db_connections_in_use",
                "Catalog database connections running a statement now",
            ),
            pool_waiting: gauge(
                "mesh_registry_db_connections_waiting",
                "Calls waiting for a catalog database connection now",
            ),
        }
    }
}

impl RegistryMeters {
    /// Registers every family with `metrics`, reads the pool of `store`
    /// before each scrape and counts its products by status until `stopped`.
    pub fn register(&self, metrics: &Metrics, store: Store, stopped: watch::Receiver<bool>) {
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(self.products.clone()),
            Box::new(self.registrations.clone()),
            Box::new(self.cache.clone()),
            Box::new(self.decisions.clone()),
            Box::new(self.pool_in_use.clone()),
            Box::new(self.pool_waiting.clone()),
        ];
        metrics.register_all(collectors);
        let (in_use, waiting, pooled) = (self.pool_in_use.clone(), self.pool_waiting.clone(), store.clone());
        metrics.before_scrape(move || {
            let (busy, queued) = pooled.connections();
            in_use.set(busy);
            waiting.set(queued);
        });
        tokio::spawn(count_products(self.products.clone(), store, stopped));
    }

    /// Counts a registration: `refused` with `code`, or registered.
    pub(crate) fn registration(&self, refused: Option<tonic::Code>) {
        let (outcome, reason) = match refused {
            None => ("registered", ""),
            Some(code) => ("refused", mesh_grpc::rest::status_name(code)),
        };
        self.registrations.with_label_values(&[outcome, reason]).inc();
    }

    /// Counts a GetProduct answered from the cache (`hit`) or not.
    pub(crate) fn cache(&self, hit: bool) {
        self.cache.with_label_values(&[if hit { "hit" } else { "miss" }]).inc();
    }

    /// Counts an agreement `decision`.
    pub(crate) fn decision(&self, decision: &str) {
        self.decisions.with_label_values(&[decision]).inc();
    }
}

async fn count_products(products: IntGaugeVec, store: Store, mut stopped: watch::Receiver<bool>) {
    let mut writes = store.writes();
    loop {
        match store.read(crate::store::endpoints::count_by_status).await {
            Ok(counts) => {
                for (status, count) in counts {
                    products.with_label_values(&[status]).set(count);
                }
            }
            // The registry stopping under a count is no fault of the count.
            Err(crate::error::RegistryError::ShuttingDown) => return,
            Err(error) => tracing::warn!(%error, "cannot count the products by status"),
        }
        // Counted again after writes (a burst of them counted once), or
        // every 15 s (leases run out without a write).
        tokio::select! {
            _ = tokio::time::sleep(COUNT_EVERY) => {}
            _ = writes.changed() => tokio::time::sleep(AFTER_WRITES).await,
            _ = stopped.changed() => return,
        }
    }
}
