//! Starting, waiting for and stopping the services of the in-process mesh.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use mesh_contracts::catalog::{ListProductsRequest, ServingStatus, WatchRequest, WatchResponse};
use mesh_grpc::Credentials;
use mesh_grpc::auth::ADMIN;
use mesh_grpc::auth::issuer::LocalIssuer;
use mesh_runtime::Product;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::config::MeshConfig;
use crate::error::{LocalError, Result};
use crate::services::{Bound, Shared, Sockets, Task};

/// How long the tokens [`LocalMesh::credentials`] signs live; renewed halfway.
pub const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// How often readiness is checked while the registry is not yet up.
const READY_POLL: Duration = Duration::from_millis(50);
/// How long the wait for readiness listens for an event before looking
/// again anyway (a service that ended writes none).
const QUIET: Duration = Duration::from_secs(1);

/// A running mesh. Dropping it stops every service (without waiting);
/// [`LocalMesh::stop`] stops them and waits.
pub struct LocalMesh {
    /// The registry's URL.
    pub registry_url: String,
    /// The customer domain's URL.
    pub customer_url: String,
    /// The payment domain's URL.
    pub payment_url: String,
    /// The insight domain's URL, when it runs.
    pub insight_url: Option<String>,
    /// The local issuer the services trust (None without authentication).
    pub issuer: Option<Arc<LocalIssuer>>,
    /// The CA the services' certificates chain to (None without TLS).
    pub ca_file: Option<PathBuf>,
    /// The TLS flags of a SQL service beside the mesh (`mesh sql serve`; a
    /// certificate for 127.0.0.1 when the mesh serves TLS).
    pub sql_tls: mesh_grpc::TlsArgs,
    /// One-time sign-in links of the registry's web catalog.
    sign_in_links: catalog_registry::web::SignInLinks,
    products: HashMap<String, Arc<Product>>,
    stop_registry: watch::Sender<bool>,
    stop_domains: watch::Sender<bool>,
    registry_task: Mutex<Option<Task>>,
    domain_tasks: Mutex<Vec<Task>>,
}

impl std::fmt::Debug for LocalMesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalMesh").field("registry_url", &self.registry_url).finish_non_exhaustive()
    }
}

impl LocalMesh {
    /// Starts the registry and the domains as `config` says and returns once
    /// every product is serving with data (first start generates the data).
    pub async fn start(config: MeshConfig) -> Result<Self> {
        // 1. Bind every port first, so each service knows the others' URLs.
        let sockets = Sockets::bind(&config).await?;
        // 2. What the services share: TLS, the issuer, authentication, the pseudonym key.
        let shared = Shared::new(&config, sockets.registry.url())?;
        let (stop_registry, registry_stopped) = watch::channel(false);
        let (stop_domains, domains_stopped) = watch::channel(false);
        // 3. The registry.
        let sign_in_links = catalog_registry::web::SignInLinks::default();
        let registry_task = shared.spawn_registry(sockets.registry, sign_in_links.clone(), registry_stopped);
        // 4. The domains from their product files: the source domains
        // loaded side by side, then insight, derived from them.
        let (customer_url, payment_url) = (sockets.domains.customer.url(), sockets.domains.payment.url());
        let insight_url = sockets.domains.insight.as_ref().map(Bound::url);
        let domains = shared.spawn_domains(sockets.domains, &domains_stopped).await?;
        let mesh = Self {
            registry_url: shared.registry_url.clone(),
            customer_url,
            payment_url,
            insight_url,
            issuer: shared.issuer.clone(),
            ca_file: shared.ca_file.clone(),
            sql_tls: shared.tls_of("sql"),
            sign_in_links,
            products: domains.products,
            stop_registry,
            stop_domains,
            registry_task: Mutex::new(Some(registry_task)),
            domain_tasks: Mutex::new(domains.tasks),
        };
        // 5. Ready when the registry lists every product serving with rows.
        mesh.wait_until_serving(config.ready_timeout).await?;
        Ok(mesh)
    }

    /// Credentials for `subject` with `roles`, signed by the mesh's issuer
    /// (none when the mesh runs without authentication).
    pub fn credentials(&self, subject: &str, roles: &[&str]) -> Result<Credentials> {
        match &self.issuer {
            Some(issuer) => Ok(Credentials::issued(Arc::clone(issuer), subject, roles, ADMIN_TOKEN_TTL)?),
            None => Ok(Credentials::none()),
        }
    }

    /// Credentials for `subject` with `roles` good at domain `domain` alone,
    /// signed by the mesh's issuer (none without authentication).
    pub fn domain_credentials(&self, domain: &str, subject: &str, roles: &[&str]) -> Result<Credentials> {
        let audience = mesh_grpc::auth::exchange::domain_audience(domain);
        match &self.issuer {
            Some(issuer) => {
                Ok(Credentials::issued_for(Arc::clone(issuer), subject, roles, ADMIN_TOKEN_TTL, &audience)?)
            }
            None => Ok(Credentials::none()),
        }
    }

    /// A one-time link signing a browser in to the web catalog as `subject`
    /// with `roles` (valid for 15 minutes, once); the catalog's front page
    /// when the mesh runs without authentication.
    pub fn web_sign_in_link(&self, subject: &str, roles: &[&str]) -> Result<String> {
        let catalog = format!("{}{}", self.registry_url, catalog_registry::web::WEB_PATH);
        let Some(issuer) = &self.issuer else { return Ok(catalog) };
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let token =
            issuer.issue(subject, &roles, ADMIN_TOKEN_TTL, mesh_grpc::auth::issuer::DEFAULT_AUDIENCE)?;
        let code = self.sign_in_links.create(token);
        Ok(format!("{catalog}/signin/link?code={code}"))
    }

    /// The product `id` (e.g. `payment.card_spending`) served by this mesh.
    pub fn product(&self, id: &str) -> Option<Arc<Product>> {
        self.products.get(id).cloned()
    }

    /// The ids of the products this mesh serves.
    pub fn product_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.products.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// Waits until the registry reports every product serving with rows. A
    /// service that fails meanwhile ends the wait with its error.
    async fn wait_until_serving(&self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let credentials = self.credentials("mesh-up", &[ADMIN])?;
        let call = Duration::from_secs(5);
        let mut registry =
            CatalogServiceClient::new(mesh_grpc::client::channel(&self.registry_url, call, &credentials)?);
        let stream = mesh_grpc::client::stream_channel(&self.registry_url, call, &credentials)?;
        let mut events = EventServiceClient::new(stream);
        let mut changes: Option<tonic::Streaming<WatchResponse>> = None;
        let expected = self.product_ids();
        loop {
            self.fail_if_a_service_ended().await?;
            // Watching before looking: a change made meanwhile wakes us.
            if changes.is_none() {
                let from_now = WatchRequest { from_now: true, ..Default::default() };
                changes = events.watch(from_now).await.ok().map(tonic::Response::into_inner);
            }
            let listed =
                registry.list_products(ListProductsRequest { page_size: 1000, ..Default::default() }).await;
            let waiting: Vec<&str> = match &listed {
                Ok(page) => {
                    let products = &page.get_ref().products;
                    expected
                        .iter()
                        .copied()
                        .filter(|id| {
                            !products.iter().any(|p| {
                                p.product_id == *id
                                    && p.status() == ServingStatus::Serving
                                    && p.data.as_ref().is_some_and(|d| d.row_count > 0)
                            })
                        })
                        .collect()
                }
                Err(_) => vec!["the registry"],
            };
            if waiting.is_empty() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(LocalError::NotReady { seconds: timeout.as_secs(), waiting: waiting.join(", ") });
            }
            match &mut changes {
                // The next event (or a quiet second, to notice a service that ended).
                Some(stream) => {
                    if let Ok(Err(_) | Ok(None)) = tokio::time::timeout(QUIET, stream.message()).await {
                        changes = None;
                    }
                }
                // The registry is not up yet.
                None => tokio::time::sleep(READY_POLL).await,
            }
        }
    }

    /// The error of a service that has stopped on its own.
    async fn fail_if_a_service_ended(&self) -> Result<()> {
        let mut registry = self.registry_task.lock().await;
        if registry.as_ref().is_some_and(JoinHandle::is_finished)
            && let Some(task) = registry.take()
        {
            task.await??;
        }
        let mut domains = self.domain_tasks.lock().await;
        if let Some(finished) = domains.iter().position(JoinHandle::is_finished) {
            domains.remove(finished).await??;
        }
        Ok(())
    }

    /// Stops the registry and waits until it has shut down; the domains go
    /// on serving.
    pub async fn stop_registry(&self) -> Result<()> {
        let _ = self.stop_registry.send(true);
        match self.registry_task.lock().await.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }

    /// Stops every domain and waits until each has deregistered and shut down.
    pub async fn stop_domains(&self) -> Result<()> {
        let _ = self.stop_domains.send(true);
        let tasks = std::mem::take(&mut *self.domain_tasks.lock().await);
        let mut outcome = Ok(());
        for task in tasks {
            let result = task.await.map_err(LocalError::from).and_then(|r| r);
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }

    /// Stops the domains, then the registry, waiting for each.
    pub async fn stop(self) -> Result<()> {
        let domains = self.stop_domains().await;
        let registry = self.stop_registry().await;
        domains.and(registry)
    }
}

impl Drop for LocalMesh {
    fn drop(&mut self) {
        let _ = self.stop_domains.send(true);
        let _ = self.stop_registry.send(true);
    }
}
