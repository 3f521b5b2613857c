//! Hosting a domain's product services: the mesh server with health and
//! reflection, and keeping the products registered while serving.

use std::future::Future;

use mesh_grpc::MeshServer;
use tokio::net::TcpListener;

use crate::config::DomainArgs;
use crate::error::Result;
use crate::service::ProductService;

/// Serves `services` with health and reflection on `listener` until
/// `shutdown` completes; in-flight calls are drained first.
pub async fn serve_products(
    listener: TcpListener,
    services: Vec<ProductService>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let names: Vec<&str> = services.iter().map(ProductService::name).collect();
    let mut server = MeshServer::new(mesh_contracts::FILE_DESCRIPTOR_SET, &names).await?;
    for service in services {
        server = server.route(&format!("/{}/{{*method}}", service.name()), service);
    }
    Ok(server.serve(listener, shutdown).await?)
}

/// Serves `services` on `listener` and keeps them registered in the registry
/// `args` name, at the URL they advertise, until `shutdown` completes; then
/// deregisters and drains. Serving does not wait for the registry.
pub async fn run_domain(
    listener: TcpListener,
    services: Vec<ProductService>,
    args: &DomainArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let (registry, advertise) = (args.registry.clone(), args.advertise(listener.local_addr()?));
    let registrations =
        services.iter().map(|s| crate::registration::Registration { product: s.product() }).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let registration =
        tokio::spawn(crate::registration::keep_registered(registry, advertise, registrations, stopped));
    let served = serve_products(listener, services, async {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    let _ = registration.await;
    served
}
