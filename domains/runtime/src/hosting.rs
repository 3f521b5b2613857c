//! Hosting a domain's product services: the mesh server with health and
//! reflection, admission shared by the domain's products, the products'
//! health kept truthful, and keeping them registered while serving.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mesh_grpc::MeshServer;
use tokio::net::TcpListener;

use crate::admission::Admission;
use crate::config::{DomainArgs, ServeLimits};
use crate::error::Result;
use crate::registration::{Registration, keep_registered, watch_health};
use crate::service::ProductService;

/// Serves `services` with health and reflection on `listener` under
/// `limits` until `shutdown` completes; in-flight calls are drained for
/// the shutdown grace period, then cut.
pub async fn serve_products(
    listener: TcpListener,
    services: Vec<ProductService>,
    limits: &ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    host(listener, services, limits, &mesh_grpc::TlsArgs::default(), None, shutdown).await
}

/// Serves `services` on `listener` and keeps them registered in the registry
/// `args` name, at the URL they advertise, until `shutdown` completes; then
/// deregisters and drains. Serving does not wait for the registry. A
/// product whose data cannot be read is reported NOT_SERVING and its lease
/// is left to expire until it can be read again.
pub async fn run_domain(
    listener: TcpListener,
    services: Vec<ProductService>,
    args: &DomainArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let registry = Some((args.registry.clone(), args.advertise(listener.local_addr()?)));
    host(listener, services, &args.limits, &args.tls, registry, shutdown).await
}

/// Serves, watches health and, given `(registry URL, advertised URL)`,
/// keeps the products registered.
async fn host(
    listener: TcpListener,
    services: Vec<ProductService>,
    limits: &ServeLimits,
    tls: &mesh_grpc::TlsArgs,
    registry: Option<(String, String)>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let names: Vec<&str> = services.iter().map(ProductService::name).collect();
    let mut server = MeshServer::new(mesh_contracts::FILE_DESCRIPTOR_SET, &names)
        .await?
        .shutdown_grace(limits.shutdown_grace)
        .tls(tls);
    let admission = Admission::new(limits.clone());
    let mut products = Vec::new();
    for service in services {
        products.push(Registration { product: service.product(), readable: Arc::new(AtomicBool::new(true)) });
        let service = service.with_admission(admission.clone());
        server = server.route(&format!("/{}/{{*method}}", service.name()), service);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let health = tokio::spawn(watch_health(products.clone(), server.health(), stopped.clone()));
    let registration = registry
        .map(|(registry, advertise)| tokio::spawn(keep_registered(registry, advertise, products, stopped)));
    let served = server
        .serve(listener, async {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
    admission.cut();
    let _ = health.await;
    if let Some(registration) = registration {
        let _ = registration.await;
    }
    Ok(served?)
}
