//! Hosting a domain's product services: the mesh server with health and
//! reflection, admission shared by the domain's products, the products'
//! health kept truthful, and keeping them registered while serving.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mesh_grpc::MeshServer;
use tokio::net::TcpListener;

use crate::admission::Admission;
use crate::config::DomainArgs;
use crate::error::Result;
use crate::registration::{Registration, keep_registered, watch_health};
use crate::service::ProductService;

/// Serves `services` on `listener` under the limits and TLS `args` give,
/// and keeps them registered in the registry `args` name, at the URL they
/// advertise, until `shutdown` completes; then deregisters, drains in-flight
/// calls for the shutdown grace period and cuts the rest. Serving does not
/// wait for the registry. A product whose data cannot be read is reported
/// NOT_SERVING and its lease is left to expire until it can be read again.
pub async fn run_domain(
    listener: TcpListener,
    services: Vec<ProductService>,
    args: &DomainArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let advertise = args.advertise(listener.local_addr()?);
    let names: Vec<&str> = services.iter().map(ProductService::name).collect();
    let mut server = MeshServer::new(mesh_contracts::FILE_DESCRIPTOR_SET, &names)
        .await?
        .shutdown_grace(args.limits.shutdown_grace)
        .tls(&args.tls)
        .authenticate(args.auth.layer()?);
    let domain = services.first().map_or("", |s| s.product().spec.domain());
    let credentials = args.client_credentials(domain)?;
    let admission = Admission::new(args.limits.clone());
    let mut products = Vec::new();
    for service in services {
        products.push(Registration { product: service.product(), readable: Arc::new(AtomicBool::new(true)) });
        let service = service.with_admission(admission.clone());
        server = server.route(&format!("/{}/{{*method}}", service.name()), service);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let health = tokio::spawn(watch_health(products.clone(), server.health(), stopped.clone()));
    let registration =
        tokio::spawn(keep_registered(args.registry.clone(), credentials, advertise, products, stopped));
    let served = server
        .serve(listener, async {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
    admission.cut();
    let _ = tokio::join!(health, registration);
    Ok(served?)
}
