//! Hosting a domain's product services: the mesh server with health and
//! reflection, admission shared by the domain's products, the products'
//! health kept truthful, and keeping them registered while serving.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mesh_contracts::product::Classification;
use mesh_grpc::MeshServer;
use tokio::net::TcpListener;

use crate::error::Result;
use crate::query::pseudonym::PseudonymKey;
use crate::scan::admission::Admission;
use crate::serve::audit::AuditLog;
use crate::serve::audit_service::{AUDIT_SERVICE, Reads};
use crate::serve::config::DomainArgs;
use crate::serve::flight::{FLIGHT_SERVICE, FlightFace};
use crate::serve::governance::{Governance, keep_agreements};
use crate::serve::meters::DomainMeters;
use crate::serve::registration::{Registration, keep_registered, watch_health};
use crate::serve::replicas::Replicas;
use crate::serve::service::ProductService;
use mesh_contracts::product::audit_service_server::AuditServiceServer;

/// Serves `services` on `listener` under the limits and TLS `args` give,
/// and keeps them registered in the registry `args` name, at each URL they
/// advertise, until `shutdown` completes; then deregisters, drains in-flight
/// calls for the shutdown grace period and cuts the rest. Serving does not
/// wait for the registry. A product whose data cannot be read is reported
/// NOT_SERVING and its lease is left to expire until it can be read again.
/// The process's allocator is set first ([`crate::heap::tune_allocator`]).
pub async fn run_domain(
    listener: TcpListener,
    services: Vec<ProductService>,
    args: &DomainArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    crate::heap::tune_allocator();
    let advertise = args.advertise(listener.local_addr()?);
    let mut names: Vec<&str> = services.iter().map(ProductService::name).collect();
    names.push(AUDIT_SERVICE);
    let domain = services.first().map_or(String::new(), |s| s.product().spec.domain().to_owned());
    let domain = domain.as_str();
    // Only tokens for this domain are accepted: one captured here is good nowhere else.
    let mut auth = args.auth.clone();
    auth.auth_audience.get_or_insert_with(|| mesh_grpc::auth::exchange::domain_audience(domain));
    // The mesh's own contracts (the audit service's), and each product's,
    // which may have been compiled at start.
    let contracts: Vec<_> = services.iter().map(ProductService::product).collect();
    let mut descriptor_sets = vec![mesh_contracts::FILE_DESCRIPTOR_SET];
    descriptor_sets.extend(contracts.iter().map(|product| product.descriptor_set()));
    let mut server = MeshServer::new(&descriptor_sets, &names)
        .await?
        .shutdown_grace(args.limits.shutdown_grace)
        .tls(&args.tls)
        .authenticate(auth.layer()?)
        .metered(!args.no_metrics);
    let credentials = args.client_credentials(domain)?;
    let governance = governance(&services, args, domain)?;
    let served: Vec<_> = services.iter().map(ProductService::product).collect();
    let meters = DomainMeters::register(&server.metrics(), &served);
    let admission = Admission::metered(args.limits.admission(), meters.admission.clone());
    let mut products = Vec::new();
    let mut served_services = Vec::new();
    for service in services {
        let audit = governance.audit_log().cloned();
        products.push(Registration {
            product: service.product(),
            readable: Arc::new(AtomicBool::new(true)),
            audit,
        });
        let service = service.with_admission(admission.clone()).with_governance(Arc::clone(&governance));
        server = server.route(&format!("/{}/{{*method}}", service.name()), service.clone());
        served_services.push(service);
    }
    let served =
        products.iter().map(|p| (p.product.spec.id.clone(), p.product.spec.domain().to_owned())).collect();
    let reads = Reads::new(Arc::clone(&governance), served);
    let replicas = Replicas::default();
    let flight = FlightFace::new(
        &served_services,
        &advertise,
        replicas.clone(),
        args.limits.partitioning(),
        args.limits.flight_ticket_lifetime,
    )?;
    let rest = crate::serve::rest::router(&served_services, &advertise, reads.clone(), &args.cors_origins)?;
    server = server
        .route(&format!("/{FLIGHT_SERVICE}/{{*method}}"), flight)
        .rest(rest)
        .documents(&[crate::serve::rest::OPENAPI_PATH])
        .add_service(AuditServiceServer::new(reads));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let health = tokio::spawn(watch_health(products.clone(), server.health(), stopped.clone()));
    let ids = products.iter().map(|p| p.product.spec.id.clone()).collect();
    let agreements = tokio::spawn(keep_agreements(
        governance,
        meters.agreements,
        args.registries(),
        credentials.clone(),
        ids,
        stopped.clone(),
    ));
    let registration = tokio::spawn(keep_registered(
        args.registries(),
        credentials,
        advertise,
        products,
        replicas,
        meters.registration,
        stopped,
    ));
    let served = server
        .serve(listener, async {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
    admission.cut();
    let _ = tokio::join!(health, registration, agreements);
    Ok(served?)
}

/// The agreements and pseudonym key the domain enforces: agreements kept in
/// `<data-dir>/agreements.pb` between runs; the key from --pseudonym-key,
/// which a product with identifier columns cannot do without.
fn governance(services: &[ProductService], args: &DomainArgs, domain: &str) -> Result<Arc<Governance>> {
    let pseudonyms = args.pseudonym_key.as_deref().map(PseudonymKey::read).transpose()?;
    if pseudonyms.is_none()
        && let Some(product) = services
            .iter()
            .map(ProductService::product)
            .find(|p| p.schema.columns.iter().any(|c| c.classification == Classification::PiiIdentifier))
    {
        return Err(crate::DomainError::Config(format!(
            "{} has identifier columns, which consumers receive as pseudonyms: give --pseudonym-key FILE \
             (MESH_PSEUDONYM_KEY), the same file for every domain of the mesh (`mesh init` makes one)",
            product.spec.id
        )));
    }
    let data_dir = args.data_dir_or(domain);
    let audit = match services.first() {
        Some(service) => AuditLog::for_store(&service.product().store, &data_dir, args.audit_retention)?,
        None => AuditLog::on(
            crate::store::sqlite_read_log(&data_dir.join("audit.sqlite"))?,
            args.audit_retention,
        )?,
    };
    Governance::open(Some(data_dir.join("agreements.pb")), pseudonyms, Some(audit))
}
