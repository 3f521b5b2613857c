//! Hosting the registry: the catalog service with health and reflection.

use std::future::Future;

use mesh_contracts::catalog::catalog_service_server::CatalogServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::config::RegistryConfig;
use crate::error::{RegistryError, Result};
use crate::page_token::PageTokens;
use crate::service::{Catalog, GET_PRODUCT_PATH, get_product_route};
use crate::store::Store;

/// The full name of the registry's service.
pub const CATALOG_SERVICE: &str = "mesh.catalog.v1.CatalogService";

/// Opens the catalog database named by `config` and serves the registry on
/// `listener` until `shutdown` completes, then drains in-flight calls.
pub async fn serve(
    config: &RegistryConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let db_path = config.db_path();
    let store = Store::open(&db_path)?;
    let tokens = PageTokens::new(store.page_token_secret().await?);
    let catalog = Catalog::new(store, tokens, config.lease_ttl);
    let get_product = get_product_route(catalog.clone());

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<CatalogServiceServer<Catalog>>().await;
    let reflection = mesh_domain_runtime::hosting::reflection_routes(&[CATALOG_SERVICE])
        .map_err(|e| RegistryError::Internal(e.to_string()))?;

    let addr = listener.local_addr().map_err(|e| RegistryError::Internal(format!("listener: {e}")))?;
    tracing::info!(%addr, db = %db_path.display(), lease_ttl = ?config.lease_ttl, "catalog registry serving");
    let mut routes = reflection.add_service(health_service).add_service(CatalogServiceServer::new(catalog));
    // GetProduct, the hot read, is answered from encoded bytes (an exact
    // route wins over the generated service's wildcard one).
    let router = std::mem::take(routes.axum_router_mut());
    *routes.axum_router_mut() = router.route_service(GET_PRODUCT_PATH, get_product);
    Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(mesh_domain_runtime::hosting::incoming(listener), shutdown)
        .await
        .map_err(|e| RegistryError::Internal(format!("serving failed: {e}")))?;
    tracing::info!("catalog registry stopped");
    Ok(())
}
