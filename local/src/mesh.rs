//! Starting, waiting for and stopping the services of the in-process mesh.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog_registry::RegistryConfig;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{ListProductsRequest, ServingStatus};
use mesh_grpc::auth::issuer::LocalIssuer;
use mesh_grpc::auth::{ADMIN, service_role};
use mesh_grpc::certs::{self, ServiceCert};
use mesh_grpc::{AuthArgs, ClientTlsArgs, Credentials, TlsArgs};
use mesh_runtime::config::SERVICE_TOKEN_TTL;
use mesh_runtime::source::serve_product;
use mesh_runtime::{DomainArgs, DomainError, Product};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use woori_data::runtime::{SourceArgs, SourceDomain};

use crate::config::{MeshConfig, Ports};
use crate::error::{LocalError, Result};

/// How long the tokens [`LocalMesh::credentials`] signs live; renewed halfway.
pub const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// How often readiness is checked while waiting.
const READY_POLL: Duration = Duration::from_millis(50);

type Task = JoinHandle<Result<()>>;

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
    /// One-time sign-in links of the registry's web catalog.
    sign_in_links: catalog_registry::web::SignInLinks,
    products: HashMap<&'static str, Arc<Product>>,
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

/// A bound listener and its URL.
struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
    scheme: &'static str,
}

impl Bound {
    async fn new(port: u16, tls: bool) -> Result<Self> {
        let listener = mesh_grpc::server::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(LocalError::Bind)?;
        let addr = listener.local_addr().map_err(|e| LocalError::Bind(e.into()))?;
        Ok(Self { listener, addr, scheme: if tls { "https" } else { "http" } })
    }

    fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }
}

/// The services of a local mesh that get a certificate each.
const TLS_SERVICES: [&str; 4] = ["registry", "customer", "payment", "insight"];

/// A CA and, for each service, a certificate for 127.0.0.1, localhost and
/// the service's name (a domain's names its domain, which clients check)
/// in `dir`, made anew; the process's clients trust the CA from now on.
/// The TLS flags of each service by name, and the CA file.
fn local_tls(dir: &Path) -> Result<(HashMap<&'static str, TlsArgs>, PathBuf)> {
    let services: Vec<ServiceCert> = TLS_SERVICES
        .iter()
        .map(|name| ServiceCert {
            name: (*name).to_owned(),
            hosts: vec!["127.0.0.1".to_owned(), "localhost".to_owned(), (*name).to_owned()],
        })
        .collect();
    let made = certs::create(dir, &services)?;
    let ca = dir.join("ca.pem");
    mesh_grpc::set_client_tls(ClientTlsArgs { ca_file: Some(ca.clone()), ..ClientTlsArgs::default() });
    let args = TLS_SERVICES
        .iter()
        .zip(made)
        .map(|(name, files)| {
            (*name, TlsArgs { tls_cert: Some(files.cert), tls_key: Some(files.key), ..TlsArgs::default() })
        })
        .collect();
    Ok((args, ca))
}

/// Completes once `stopped` turns true (or its sender is gone).
async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

impl LocalMesh {
    /// Starts the registry and the domains as `config` says and returns once
    /// every product is serving with data (first start generates the data).
    pub async fn start(config: MeshConfig) -> Result<Self> {
        let port = |offset: u16| match config.ports {
            Ports::Base(base) => base + offset,
            Ports::Ephemeral => 0,
        };
        let tls = if config.tls { Some(local_tls(&config.data_dir.join("tls"))?) } else { None };
        let ca_file = tls.as_ref().map(|(_, ca)| ca.clone());
        let tls = tls.map(|(args, _)| args).unwrap_or_default();
        let tls_of = |service: &str| tls.get(service).cloned().unwrap_or_default();
        let secure = config.tls;
        let registry = Bound::new(port(0), secure).await?;
        let customer = Bound::new(port(1), secure).await?;
        let payment = Bound::new(port(2), secure).await?;
        let insight = if config.insight { Some(Bound::new(port(3), secure).await?) } else { None };
        let registry_url = registry.url();
        let (stop_registry, registry_stopped) = watch::channel(false);
        let (stop_domains, domains_stopped) = watch::channel(false);

        let issuer = if config.authentication {
            Some(Arc::new(LocalIssuer::open_or_create(&config.data_dir.join("issuer"))?))
        } else {
            None
        };
        let auth = match &issuer {
            Some(issuer) => AuthArgs::local(issuer.jwks_file().to_owned()),
            None => AuthArgs { insecure_no_auth: true, ..AuthArgs::default() },
        };
        let sign_in_links = catalog_registry::web::SignInLinks::default();
        let registry_config = RegistryConfig {
            addr: registry.addr,
            data_dir: config.data_dir.join("registry"),
            db: config.registry_db.clone(),
            database: config
                .postgres
                .as_deref()
                .map(mesh_postgres::DatabaseArgs::for_url)
                .unwrap_or_default(),
            lease_ttl: config.lease_ttl,
            tls: tls_of("registry"),
            auth: auth.clone(),
            client_tls: Default::default(),
            web: catalog_registry::web::WebArgs {
                sign_in_links: sign_in_links.clone(),
                ..Default::default()
            },
            token_exchange_issuer_dir: issuer.as_ref().map(|_| config.data_dir.join("issuer")),
            service_tokens: Vec::new(),
            insecure_plaintext_endpoints: false,
        };
        let registry_task: Task = tokio::spawn(async move {
            catalog_registry::serve(&registry_config, registry.listener, until(registry_stopped)).await?;
            Ok(())
        });

        let pseudonym_key = config.data_dir.join("pseudonym.key");
        mesh_grpc::private_files::create_secret(&pseudonym_key)
            .map_err(|source| LocalError::File { path: pseudonym_key.clone(), source })?;
        let domain_args = |name: &str| -> Result<DomainArgs> {
            let credentials = match &issuer {
                Some(issuer) => Credentials::issued(
                    Arc::clone(issuer),
                    &format!("{name}-domain"),
                    &[&service_role(name)],
                    SERVICE_TOKEN_TTL,
                )?,
                None => Credentials::none(),
            };
            Ok(DomainArgs {
                data_dir: Some(config.data_dir.join(name)),
                database: config
                    .postgres
                    .as_deref()
                    .map(mesh_postgres::DatabaseArgs::for_url)
                    .unwrap_or_default(),
                registry: registry_url.clone(),
                limits: config.limits.clone(),
                tls: tls_of(name),
                auth: auth.clone(),
                pseudonym_key: Some(pseudonym_key.clone()),
                cors_origins: web_origins(&registry_url),
                credentials,
                ..DomainArgs::default()
            })
        };
        let source_args = |name: &str| -> Result<SourceArgs> {
            Ok(SourceArgs {
                domain: domain_args(name)?,
                source: None,
                generate: config.generator,
                reload: false,
                allow_shrink: false,
            })
        };
        let (customer_args, payment_args) = (source_args("customer")?, source_args("payment")?);
        let (profiles, spending) = tokio::try_join!(
            prepare(customer::DOMAIN, &customer_args),
            prepare(payment::DOMAIN, &payment_args)
        )?;
        let mut products = HashMap::from([(customer::PROFILES.id, Arc::clone(&profiles))]);
        products.insert(payment::CARD_SPENDING.id, Arc::clone(&spending));
        let (customer_url, payment_url) = (customer.url(), payment.url());
        let mut domain_tasks = vec![
            spawn_source("customer", profiles, customer_args.domain, customer.listener, &domains_stopped),
            spawn_source("payment", spending, payment_args.domain, payment.listener, &domains_stopped),
        ];

        let mut insight_url = None;
        if let Some(bound) = insight {
            insight_url = Some(bound.url());
            let args =
                insight::InsightArgs { domain: domain_args("insight")?, min_customers: config.min_customers };
            let product =
                insight::open(&args).map_err(|source| LocalError::Domain { domain: "insight", source })?;
            products.insert(insight::SEGMENT_SPENDING.id, Arc::clone(&product));
            let stopped = domains_stopped.clone();
            domain_tasks.push(tokio::spawn(async move {
                insight::serve(product, &args, bound.listener, until(stopped))
                    .await
                    .map_err(|source| LocalError::Domain { domain: "insight", source })
            }));
        }

        let mesh = Self {
            registry_url,
            customer_url,
            payment_url,
            insight_url,
            issuer,
            ca_file,
            sign_in_links,
            products,
            stop_registry,
            stop_domains,
            registry_task: Mutex::new(Some(registry_task)),
            domain_tasks: Mutex::new(domain_tasks),
        };
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
    pub fn product_ids(&self) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = self.products.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Waits until the registry reports every product serving with rows. A
    /// service that fails meanwhile ends the wait with its error.
    async fn wait_until_serving(&self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let mut registry = CatalogServiceClient::new(mesh_grpc::client::channel(
            &self.registry_url,
            Duration::from_secs(5),
            &self.credentials("mesh-up", &[ADMIN])?,
        )?);
        let expected = self.product_ids();
        loop {
            self.fail_if_a_service_ended().await?;
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
            tokio::time::sleep(READY_POLL).await;
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

/// Opens a source domain's product and loads it if needed.
async fn prepare(domain: SourceDomain, args: &SourceArgs) -> Result<Arc<Product>> {
    domain.prepare(args).await.map_err(|source| LocalError::Domain { domain: domain.name, source })
}

/// Serves a source domain's prepared product until the domains stop.
fn spawn_source(
    name: &'static str,
    product: Arc<Product>,
    args: DomainArgs,
    listener: TcpListener,
    stopped: &watch::Receiver<bool>,
) -> Task {
    let stopped = stopped.clone();
    tokio::spawn(async move {
        serve_product(product, &args, listener, until(stopped))
            .await
            .map_err(|source: DomainError| LocalError::Domain { domain: name, source })
    })
}

/// The origins of the web catalog at `registry_url`, by address and as
/// `localhost`: the domains let its pages fetch previews.
fn web_origins(registry_url: &str) -> Vec<http::HeaderValue> {
    let mut origins = vec![registry_url.to_owned()];
    if let Some(port) = registry_url.strip_prefix("http://127.0.0.1:") {
        origins.push(format!("http://localhost:{port}"));
    } else if let Some(port) = registry_url.strip_prefix("https://127.0.0.1:") {
        origins.push(format!("https://localhost:{port}"));
    }
    origins.iter().filter_map(|o| http::HeaderValue::from_str(o).ok()).collect()
}
