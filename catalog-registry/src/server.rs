//! Hosting the registry: the catalog service with health and reflection.

use std::future::Future;

use mesh_contracts::catalog::access_service_server::AccessServiceServer;
use mesh_contracts::catalog::catalog_service_server::CatalogServiceServer;
use mesh_contracts::catalog::event_service_server::EventServiceServer;
use mesh_contracts::catalog::subscription_service_server::SubscriptionServiceServer;
use mesh_grpc::MeshServer;
use tokio::net::TcpListener;

use crate::access::Access;
use crate::clock::Clock;
use crate::config::RegistryConfig;
use crate::error::Result;
use crate::page_token::PageTokens;
use crate::service::{Catalog, GET_PRODUCT_PATH, get_product_route};
use crate::store::Store;

/// The full name of the registry's catalog service.
pub const CATALOG_SERVICE: &str = "mesh.catalog.v1.CatalogService";
/// The full name of the registry's access service.
pub const ACCESS_SERVICE: &str = "mesh.catalog.v1.AccessService";
/// The full name of the registry's event service.
pub const EVENT_SERVICE: &str = "mesh.catalog.v1.EventService";
/// The full name of the registry's webhook subscription service.
pub const SUBSCRIPTION_SERVICE: &str = "mesh.catalog.v1.SubscriptionService";

/// Opens the catalog database named by `config` and serves the registry on
/// `listener` until `shutdown` completes, then drains in-flight calls.
pub async fn serve(
    config: &RegistryConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    serve_with_clock(config, listener, shutdown, Clock::system()).await
}

/// Like [`serve`], telling time (lease expiry, timestamps) by `clock`.
pub async fn serve_with_clock(
    config: &RegistryConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    clock: Clock,
) -> Result<()> {
    let store = match &config.database.database_url {
        Some(_) => {
            let (args, clock) = (config.database.clone(), clock.clone());
            tokio::task::spawn_blocking(move || Store::connect(&args, clock))
                .await
                .map_err(|e| crate::error::RegistryError::Internal(format!("connecting failed: {e}")))??
        }
        None => Store::open(&config.db_path(), clock.clone())?,
    };
    let tokens = PageTokens::new(store.page_token_secret().await?);
    let meters = crate::meters::RegistryMeters::default();
    let access = Access::new(store.clone(), tokens.clone()).metered(meters.clone());
    // Watch streams never end on their own: they end as shutdown begins.
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let hub =
        crate::events::EventHub::start(store.clone(), config.events.retention(), stopped.clone()).await?;
    let events = crate::events::Events::new(store.clone(), hub);
    tokio::spawn(crate::events::sweep::run(store.clone(), stopped.clone()));
    let webhooks =
        crate::webhooks::Webhooks::start(store.clone(), events.clone(), &config.webhooks, stopped.clone())?;
    let subscriptions = crate::webhooks::Subscriptions::new(store.clone(), webhooks);
    let changes = store.changes();
    let location = store.location();
    let counted = store.clone();
    let catalog = Catalog::new(store, tokens, config.lease_ttl, clock)
        .allowing_plaintext_endpoints(config.insecure_plaintext_endpoints)
        .metered(meters.clone());
    if config.insecure_plaintext_endpoints {
        tracing::warn!(
            "PLAINTEXT ENDPOINTS ACCEPTED (--insecure-plaintext-endpoints): callers' tokens may cross the network \
             in clear"
        );
    }
    if let Some(changes) = changes {
        catalog.follow(changes);
    }
    let get_product = get_product_route(catalog.clone());
    let rest = crate::rest::router(catalog.clone(), events.clone())?;
    let authenticate = config.auth.layer()?;
    let exchange_issuer = match &config.token_exchange_issuer_dir {
        Some(dir) => Some(std::sync::Arc::new(mesh_grpc::auth::issuer::LocalIssuer::open(dir)?)),
        None => None,
    };
    if let Some(issuer) = &exchange_issuer
        && !config.service_tokens.is_empty()
    {
        crate::service_tokens::write_all(issuer, &config.service_tokens)?;
        tokio::spawn(crate::service_tokens::keep_written(
            std::sync::Arc::clone(issuer),
            config.service_tokens.clone(),
        ));
    }
    let exchange = match (&exchange_issuer, authenticate.verifier()) {
        (Some(issuer), Some(verifier)) => {
            Some(crate::exchange::router(catalog.clone(), verifier, std::sync::Arc::clone(issuer)))
        }
        _ => None,
    };
    let backends =
        crate::web::Backends { catalog: catalog.clone(), access: access.clone(), events: events.clone() };
    let web = crate::web::router(
        backends,
        authenticate.verifier(),
        &config.web,
        config.auth.auth_oidc_issuer.as_deref(),
        config.tls.tls_cert.is_some(),
        exchange_issuer.clone(),
    )?;

    tracing::info!(db = %location, lease_ttl = ?config.lease_ttl, "catalog registry starting");
    let mut server = MeshServer::new(
        &[mesh_contracts::FILE_DESCRIPTOR_SET],
        &[CATALOG_SERVICE, ACCESS_SERVICE, EVENT_SERVICE, SUBSCRIPTION_SERVICE],
    )
    .await?
    .tls(&config.tls)
    .authenticate(authenticate)
    .add_service(CatalogServiceServer::new(catalog))
    .add_service(AccessServiceServer::new(access))
    .add_service(EventServiceServer::new(events))
    .add_service(SubscriptionServiceServer::new(subscriptions))
    // GetProduct, the hot read, is answered from encoded bytes.
    .route(GET_PRODUCT_PATH, get_product)
    .rest(rest)
    .rest(web)
    .public(&["/", "/favicon.ico", crate::web::WEB_PATH])
    .documents(&[crate::rest::OPENAPI_PATH]);
    // The subject token in the form is what is verified.
    let exchange = exchange.unwrap_or_else(crate::exchange::unavailable_router);
    server = server.rest(exchange).public(&[mesh_grpc::auth::exchange::TOKEN_PATH]);
    meters.register(&server.metrics(), counted, stopped.clone());
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(true);
    };
    server.serve(listener, shutdown).await?;
    tracing::info!("catalog registry stopped");
    Ok(())
}
