//! Keeping a domain's products registered in the catalog: register at
//! start, renew the lease, retry with backoff while the registry is down,
//! deregister on shutdown. Serving never waits for any of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{
    DataStatus, DeregisterEndpointRequest, RegisterProductRequest, RenewLeaseRequest,
};
use mesh_grpc::server::{HealthReporter, ServingStatus};
use mesh_grpc::{Credentials, MeshChannel};
use tokio::sync::watch;
use tonic::Code;

use crate::serve::audit::AuditLog;
use crate::serve::meters::RegistrationMeters;
use crate::serve::product::Product;
use crate::serve::registries::{RegistryClient, Timeouts};
use crate::serve::replicas::Replicas;

/// How often each product's data is probed.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long connecting to the registry, and each call, may take.
const REGISTRY_TIMEOUTS: Timeouts =
    Timeouts { connect: Duration::from_secs(2), call: Duration::from_secs(10) };
/// Shortest and longest wait between attempts while the registry is down.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// `product`'s data status with the consumers `audit` recorded in the last
/// 30 days, as the catalog is told (blocking).
pub(crate) fn reported_status(product: &Product, audit: Option<&AuditLog>) -> crate::Result<DataStatus> {
    let mut data = product.data_status()?;
    if let Some(audit) = audit {
        let since = std::time::SystemTime::now() - CONSUMERS_PERIOD;
        let since_ms = since.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        data.consumers = audit.consumers(&product.spec.id, since_ms, MAX_CONSUMERS)?;
    }
    Ok(data)
}

/// One product to keep registered.
#[derive(Clone)]
pub(crate) struct Registration {
    /// The product; its contract and data status are sent to the registry.
    pub product: Arc<Product>,
    /// Whether its data could be read at the last probe.
    pub readable: Arc<AtomicBool>,
    /// The domain's read log, whose recent consumers are reported.
    pub audit: Option<AuditLog>,
}

/// How far back the consumers reported go.
const CONSUMERS_PERIOD: Duration = Duration::from_secs(30 * 86_400);
/// The most consumers reported per product.
const MAX_CONSUMERS: usize = 1000;

impl Registration {
    fn id(&self) -> String {
        self.product.spec.id.to_owned()
    }

    /// The product's data status with its recent consumers, read on a
    /// blocking thread; `None` if it cannot be read now (registration goes
    /// on without it).
    async fn data(&self) -> Option<DataStatus> {
        let (product, audit) = (Arc::clone(&self.product), self.audit.clone());
        let read = move || reported_status(&product, audit.as_ref());
        match tokio::task::spawn_blocking(read).await {
            Ok(Ok(data)) => Some(data),
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read the data status to report");
                None
            }
            Err(_) => None,
        }
    }
}

/// Keeps `products` registered at each of `endpoints` (the URLs the domain
/// advertises, in order of preference) in the registry at the first of
/// `registries` that answers until `stop` turns true, then deregisters them. A load
/// announced by the products' store is reported at once. (The products of
/// one domain share its store.) After each registration or renewal,
/// `replicas` learns the products' other serving replicas.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn keep_registered(
    registries: Vec<String>,
    credentials: Credentials,
    endpoints: Vec<String>,
    products: Vec<Registration>,
    replicas: Replicas,
    meters: RegistrationMeters,
    mut stop: watch::Receiver<bool>,
) {
    let ids: Vec<String> = products.iter().map(Registration::id).collect();
    // Several registries are replicas of one catalog: while one cannot be
    // reached, the next is used.
    let mut registry =
        match RegistryClient::new(registries, credentials, REGISTRY_TIMEOUTS, CatalogServiceClient::new) {
            Ok(registry) => registry,
            Err(error) => {
                tracing::error!(%error, "cannot call the registry; not registering");
                return;
            }
        };
    let mut backoff = BACKOFF_MIN;
    let mut registered = false;
    let mut renew_every = Duration::from_secs(10);
    loop {
        // A product whose data cannot be read is left out: its lease expires.
        let healthy: Vec<Registration> =
            products.iter().filter(|p| p.readable.load(Ordering::SeqCst)).cloned().collect();
        let wait = if registered { renew_every } else { backoff };
        let outcome = if registered {
            renew(&mut registry.client, &endpoints, &healthy).await
        } else {
            register(&mut registry.client, &endpoints, &healthy).await.map(|ttl| {
                renew_every = (ttl / 3).max(Duration::from_millis(100));
                tracing::info!(registry = %registry.url(), ?endpoints, "products registered");
            })
        };
        meters.renewed(match &outcome {
            Ok(()) => "ok",
            Err(status) if status.code() == Code::NotFound => "lost",
            Err(status) if matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied) => {
                "refused"
            }
            Err(_) => "unreachable",
        });
        match outcome {
            Ok(()) => {
                registered = true;
                backoff = BACKOFF_MIN;
                // Heard again at each renewal: a list three renewals old is stale.
                replicas.refresh(&mut registry.client, &ids, &endpoints, renew_every * 3).await;
            }
            Err(status) if status.code() == Code::NotFound => {
                tracing::warn!(
                    reason = status.message(),
                    "registry lost the registration; registering again"
                );
                registered = false;
                continue;
            }
            Err(status) => {
                let refused = matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied);
                if refused && (registered || backoff == BACKOFF_MIN) {
                    tracing::error!(registry = %registry.url(), reason = status.message(), "registry refused the registration; will retry");
                } else if registered || backoff == BACKOFF_MIN {
                    tracing::warn!(registry = %registry.url(), reason = status.message(), "registry unreachable; will retry");
                }
                registered = false;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                registry.fail_over(&status);
                replicas.forget();
            }
        }
        let loaded = async {
            match products.first() {
                Some(first) => first.product.store.loaded().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // New data: report it now rather than at the next renewal.
            _ = loaded => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    if registered {
        for product in &products {
            for endpoint in &endpoints {
                let request = DeregisterEndpointRequest { name: product.id(), endpoint: endpoint.clone() };
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    registry.client.deregister_endpoint(request),
                )
                .await;
            }
        }
        tracing::info!("products deregistered");
    }
}

async fn register(
    client: &mut CatalogServiceClient<MeshChannel>,
    endpoints: &[String],
    products: &[Registration],
) -> Result<Duration, tonic::Status> {
    let mut ttl = Duration::from_secs(30);
    let pairs: Vec<(&Registration, &String)> =
        products.iter().flat_map(|p| endpoints.iter().map(move |e| (p, e))).collect();
    for (product, endpoint) in pairs {
        let spec = &product.product.spec;
        let domain = spec.domain().to_owned();
        let response = client
            .register_product(RegisterProductRequest {
                product_id: product.id(),
                domain,
                service: spec.service.clone(),
                endpoint: endpoint.to_owned(),
                descriptor_set: product.product.descriptor_set().to_vec(),
                major_version: spec.major_version,
                data: product.data().await,
            })
            .await?
            .into_inner();
        if let Some(lease) = response.lease_ttl.and_then(|d| Duration::try_from(d).ok()) {
            ttl = ttl.min(lease);
        }
    }
    Ok(ttl)
}

async fn renew(
    client: &mut CatalogServiceClient<MeshChannel>,
    endpoints: &[String],
    products: &[Registration],
) -> Result<(), tonic::Status> {
    let pairs: Vec<(&Registration, &String)> =
        products.iter().flat_map(|p| endpoints.iter().map(move |e| (p, e))).collect();
    for (product, endpoint) in pairs {
        client
            .renew_lease(RenewLeaseRequest {
                name: product.id(),
                endpoint: endpoint.to_owned(),
                data: product.data().await,
            })
            .await?;
    }
    Ok(())
}

/// Probes each product's data every [`PROBE_EVERY`] until `stop` turns
/// true, reporting it in `health` (NOT_SERVING while it cannot be read)
/// and in the product's `readable` flag. Each change is logged once.
pub(crate) async fn watch_health(
    products: Vec<Registration>,
    health: HealthReporter,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for registration in &products {
            let product = Arc::clone(&registration.product);
            let probed = tokio::task::spawn_blocking(move || product.probe())
                .await
                .unwrap_or_else(|e| Err(crate::DomainError::Internal(format!("the probe task failed: {e}"))));
            let (id, service) = (&registration.product.spec.id, &registration.product.spec.service);
            let was = registration.readable.swap(probed.is_ok(), Ordering::SeqCst);
            match probed {
                Ok(()) if !was => {
                    tracing::info!(product = id, "data readable again; serving");
                    health.set_service_status(service, ServingStatus::Serving).await;
                }
                Err(error) if was => {
                    tracing::error!(product = id, %error,
                        "data cannot be read; reporting NOT_SERVING and letting the lease expire");
                    health.set_service_status(service, ServingStatus::NotServing).await;
                }
                _ => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
