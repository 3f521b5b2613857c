//! Keeping a domain's products registered in the catalog: register at
//! start, renew the lease, retry with backoff while the registry is down,
//! deregister on shutdown. Serving never waits for any of it.

use std::time::Duration;

use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{DeregisterEndpointRequest, RegisterProductRequest, RenewLeaseRequest};
use tokio::sync::watch;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

/// Shortest and longest wait between attempts while the registry is down.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One product to keep registered.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Product id, e.g. `payment.card_spending`.
    pub product_id: String,
    /// Full name of the product service.
    pub service: String,
}

/// Keeps `products` registered at `endpoint` in the registry at
/// `registry_url` until `stop` turns true, then deregisters them.
pub async fn keep_registered(
    registry_url: String,
    endpoint: String,
    products: Vec<Registration>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(target) = Endpoint::from_shared(registry_url.clone()) else {
        tracing::error!(registry = %registry_url, "registry address is not a URL; not registering");
        return;
    };
    let channel =
        target.connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(10)).connect_lazy();
    let mut client = CatalogServiceClient::new(channel);
    let mut backoff = BACKOFF_MIN;
    let mut registered = false;
    let mut renew_every = Duration::from_secs(10);
    loop {
        let wait = if registered { renew_every } else { backoff };
        let outcome = if registered {
            renew(&mut client, &endpoint, &products).await
        } else {
            register(&mut client, &endpoint, &products).await.map(|ttl| {
                renew_every = (ttl / 3).max(Duration::from_millis(100));
                tracing::info!(registry = %registry_url, %endpoint, "products registered");
            })
        };
        match outcome {
            Ok(()) => {
                registered = true;
                backoff = BACKOFF_MIN;
            }
            Err(status) if status.code() == Code::NotFound => {
                tracing::warn!(
                    message = status.message(),
                    "registry lost the registration; registering again"
                );
                registered = false;
                continue;
            }
            Err(status) => {
                if registered || backoff == BACKOFF_MIN {
                    tracing::warn!(registry = %registry_url, message = status.message(), "registry unreachable; will retry");
                }
                registered = false;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    if registered {
        for product in &products {
            let request =
                DeregisterEndpointRequest { name: product.product_id.clone(), endpoint: endpoint.clone() };
            let _ = tokio::time::timeout(Duration::from_secs(2), client.deregister_endpoint(request)).await;
        }
        tracing::info!("products deregistered");
    }
}

async fn register(
    client: &mut CatalogServiceClient<Channel>,
    endpoint: &str,
    products: &[Registration],
) -> Result<Duration, tonic::Status> {
    let mut ttl = Duration::from_secs(30);
    for product in products {
        let domain = product.product_id.split('.').next().unwrap_or_default().to_owned();
        let response = client
            .register_product(RegisterProductRequest {
                product_id: product.product_id.clone(),
                domain,
                service: product.service.clone(),
                endpoint: endpoint.to_owned(),
                descriptor_set: mesh_contracts::FILE_DESCRIPTOR_SET.to_vec(),
                major_version: 1,
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
    client: &mut CatalogServiceClient<Channel>,
    endpoint: &str,
    products: &[Registration],
) -> Result<(), tonic::Status> {
    for product in products {
        client
            .renew_lease(RenewLeaseRequest {
                name: product.product_id.clone(),
                endpoint: endpoint.to_owned(),
            })
            .await?;
    }
    Ok(())
}
