//! A domain's metrics, made at the serving floor: the families of its own
//! (registration, the agreements copy) and the handles the floors below
//! count into (admission; each product's loads and reads), all registered
//! with the server's [`Metrics`] so that `/metrics` renders them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_grpc::metrics::Metrics;
use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec};

use crate::scan::admission::AdmissionMeters;
use crate::serve::product::Product;

/// What a domain counts beside its calls.
#[derive(Debug, Clone)]
pub(crate) struct DomainMeters {
    pub(crate) admission: AdmissionMeters,
    pub(crate) registration: RegistrationMeters,
    pub(crate) agreements: AgreementMeters,
}

impl DomainMeters {
    /// Registers the domain's families, and `products`' load and read
    /// meters, with `metrics`.
    pub(crate) fn register(metrics: &Metrics, products: &[Arc<Product>]) -> Self {
        let admission = AdmissionMeters::default();
        metrics.register_all(admission.collectors());
        for product in products {
            metrics.register_all(product.load_meters.collectors());
            metrics.register_all(product.read_meters.collectors());
            let load_meters = product.load_meters.clone();
            metrics.before_scrape(move || load_meters.refresh_age());
        }
        let registration = RegistrationMeters {
            renewals: metrics.counter_vec(
                "mesh_lease_renewals_total",
                "Registrations and lease renewals at the registry, by outcome (ok, lost, refused, unreachable)",
                &["outcome"],
            ),
            reachable: metrics.gauge(
                "mesh_registry_reachable",
                "1 when the registry answered the last registration or renewal, else 0",
            ),
        };
        let agreements = AgreementMeters {
            count: metrics.gauge_vec(
                "mesh_agreements_kept",
                "Agreements in the domain's copy, by product",
                &["product"],
            ),
            age: Gauge::new(
                "mesh_agreements_copy_age_seconds",
                "Seconds since the domain's copy of the agreements was last brought up to date by the registry",
            )
            .expect("a valid gauge"),
            synced_at_ms: Arc::new(AtomicI64::new(0)),
        };
        metrics.register(Box::new(agreements.age.clone()));
        let kept = agreements.clone();
        metrics.before_scrape(move || kept.refresh_age());
        Self { admission, registration, agreements }
    }
}

/// Registration at the registry.
#[derive(Debug, Clone)]
pub(crate) struct RegistrationMeters {
    renewals: IntCounterVec,
    reachable: IntGauge,
}

impl RegistrationMeters {
    /// Counts a registration or renewal that ended as `outcome` (`ok`,
    /// `lost`, `refused`, `unreachable`).
    pub(crate) fn renewed(&self, outcome: &str) {
        self.renewals.with_label_values(&[outcome]).inc();
        self.reachable.set(i64::from(outcome != "unreachable"));
    }
}

/// The domain's copy of the agreements.
#[derive(Debug, Clone)]
pub(crate) struct AgreementMeters {
    count: IntGaugeVec,
    age: Gauge,
    synced_at_ms: Arc<AtomicI64>,
}

impl AgreementMeters {
    /// `product`'s `count` agreements were just fetched from the registry.
    pub(crate) fn synced(&self, product: &str, count: usize) {
        self.count.with_label_values(&[product]).set(count as i64);
        self.synced_at_ms.store(now_ms(), Ordering::Relaxed);
    }

    fn refresh_age(&self) {
        let at = self.synced_at_ms.load(Ordering::Relaxed);
        if at > 0 {
            self.age.set((now_ms() - at).max(0) as f64 / 1000.0);
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
