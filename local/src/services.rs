//! The services of the in-process mesh and what they share: ports bound
//! up front, TLS and the issuer made in the data directory, and the
//! registry and each domain spawned on a task of its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use catalog_registry::RegistryConfig;
use mesh_grpc::auth::issuer::LocalIssuer;
use mesh_grpc::auth::service_role;
use mesh_grpc::certs::{self, ServiceCert};
use mesh_grpc::{AuthArgs, ClientTlsArgs, Credentials, TlsArgs};
use mesh_runtime::config::SERVICE_TOKEN_TTL;
use mesh_runtime::source::serve_product;
use mesh_runtime::{DomainArgs, DomainError, Product};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use woori_data::runtime::{SourceArgs, SourceDomain};

use crate::config::{MeshConfig, Ports};
use crate::error::{LocalError, Result};

/// A service running on a task of its own.
pub(crate) type Task = JoinHandle<Result<()>>;

/// A bound listener and its URL.
pub(crate) struct Bound {
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

    /// The URL clients call it at.
    pub(crate) fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }
}

/// The services of a local mesh that get a certificate each.
const TLS_SERVICES: [&str; 5] = ["registry", "customer", "payment", "insight", "sql"];

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

/// The listeners of every service, bound before any starts.
pub(crate) struct Sockets {
    pub registry: Bound,
    pub customer: Bound,
    pub payment: Bound,
    pub insight: Option<Bound>,
}

impl Sockets {
    /// Binds the ports `config` asks for (ephemeral ones in tests).
    pub(crate) async fn bind(config: &MeshConfig) -> Result<Self> {
        let port = |offset: u16| match config.ports {
            Ports::Base(base) => base + offset,
            Ports::Ephemeral => 0,
        };
        let secure = config.tls;
        Ok(Self {
            registry: Bound::new(port(0), secure).await?,
            customer: Bound::new(port(1), secure).await?,
            payment: Bound::new(port(2), secure).await?,
            insight: if config.insight { Some(Bound::new(port(3), secure).await?) } else { None },
        })
    }
}

/// What the services of one mesh share.
pub(crate) struct Shared<'a> {
    config: &'a MeshConfig,
    /// The registry's URL, which every domain registers with.
    pub registry_url: String,
    /// Each service's TLS flags, by name (empty without TLS).
    tls: HashMap<&'static str, TlsArgs>,
    /// The CA the certificates chain to (None without TLS).
    pub ca_file: Option<PathBuf>,
    /// The local issuer (None without authentication).
    pub issuer: Option<Arc<LocalIssuer>>,
    /// How every service authenticates its callers.
    auth: AuthArgs,
    /// The file of the key pseudonyms are derived with.
    pseudonym_key: PathBuf,
}

/// The running domains: their tasks and the products they serve.
pub(crate) struct Domains {
    pub tasks: Vec<Task>,
    pub products: HashMap<&'static str, Arc<Product>>,
}

impl<'a> Shared<'a> {
    /// Makes (or opens) the TLS files, the issuer and the pseudonym key in
    /// `config`'s data directory.
    pub(crate) fn new(config: &'a MeshConfig, registry_url: String) -> Result<Self> {
        let (tls, ca_file) = match config.tls {
            true => {
                let (tls, ca) = local_tls(&config.data_dir.join("tls"))?;
                (tls, Some(ca))
            }
            false => (HashMap::new(), None),
        };
        let issuer = match config.authentication {
            true => Some(Arc::new(LocalIssuer::open_or_create(&config.data_dir.join("issuer"))?)),
            false => None,
        };
        let auth = match &issuer {
            Some(issuer) => AuthArgs::local(issuer.jwks_file().to_owned()),
            None => AuthArgs { insecure_no_auth: true, ..AuthArgs::default() },
        };
        let pseudonym_key = config.data_dir.join("pseudonym.key");
        mesh_grpc::private_files::create_secret(&pseudonym_key)
            .map_err(|source| LocalError::File { path: pseudonym_key.clone(), source })?;
        Ok(Self { config, registry_url, tls, ca_file, issuer, auth, pseudonym_key })
    }

    pub(crate) fn tls_of(&self, service: &str) -> TlsArgs {
        self.tls.get(service).cloned().unwrap_or_default()
    }

    fn database(&self) -> mesh_postgres::DatabaseArgs {
        self.config.postgres.as_deref().map(mesh_postgres::DatabaseArgs::for_url).unwrap_or_default()
    }

    /// Serves the registry on `bound` until `stopped`.
    pub(crate) fn spawn_registry(
        &self,
        bound: Bound,
        sign_in_links: catalog_registry::web::SignInLinks,
        stopped: watch::Receiver<bool>,
    ) -> Task {
        let config = RegistryConfig {
            addr: bound.addr,
            data_dir: self.config.data_dir.join("registry"),
            db: self.config.registry_db.clone(),
            database: self.database(),
            lease_ttl: self.config.lease_ttl,
            events: Default::default(),
            webhooks: self.config.webhooks,
            tls: self.tls_of("registry"),
            auth: self.auth.clone(),
            client_tls: Default::default(),
            web: catalog_registry::web::WebArgs { sign_in_links, ..Default::default() },
            token_exchange_issuer_dir: self.issuer.as_ref().map(|_| self.config.data_dir.join("issuer")),
            service_tokens: Vec::new(),
            insecure_plaintext_endpoints: false,
        };
        tokio::spawn(async move {
            catalog_registry::serve(&config, bound.listener, until(stopped)).await?;
            Ok(())
        })
    }

    /// The flags of domain `name`: its folder, the registry, the limits,
    /// TLS, authentication and a token of its own service identity.
    fn domain_args(&self, name: &str) -> Result<DomainArgs> {
        let credentials = match &self.issuer {
            Some(issuer) => Credentials::issued(
                Arc::clone(issuer),
                &format!("{name}-domain"),
                &[&service_role(name)],
                SERVICE_TOKEN_TTL,
            )?,
            None => Credentials::none(),
        };
        Ok(DomainArgs {
            data_dir: Some(self.config.data_dir.join(name)),
            database: self.database(),
            registry: self.registry_url.clone(),
            limits: self.config.limits.clone(),
            tls: self.tls_of(name),
            auth: self.auth.clone(),
            pseudonym_key: Some(self.pseudonym_key.clone()),
            cors_origins: web_origins(&self.registry_url),
            credentials,
            ..DomainArgs::default()
        })
    }

    /// The flags of source domain `name`, generating its data on first start.
    fn source_args(&self, name: &str) -> Result<SourceArgs> {
        Ok(SourceArgs {
            domain: self.domain_args(name)?,
            source: None,
            generate: self.config.generator,
            reload: false,
            allow_shrink: false,
        })
    }

    /// Loads customer and payment side by side (if needed), then serves
    /// each on its listener until `stopped`.
    pub(crate) async fn spawn_sources(
        &self,
        customer: Bound,
        payment: Bound,
        stopped: &watch::Receiver<bool>,
    ) -> Result<Domains> {
        let (customer_args, payment_args) = (self.source_args("customer")?, self.source_args("payment")?);
        let (profiles, spending) = tokio::try_join!(
            prepare(customer::domain(), &customer_args),
            prepare(payment::domain(), &payment_args)
        )?;
        let products = HashMap::from([
            (customer::PROFILES, Arc::clone(&profiles)),
            (payment::CARD_SPENDING, Arc::clone(&spending)),
        ]);
        let tasks = vec![
            spawn_source("customer", profiles, customer_args.domain, customer.listener, stopped),
            spawn_source("payment", spending, payment_args.domain, payment.listener, stopped),
        ];
        Ok(Domains { tasks, products })
    }

    /// Opens insight and serves it on `bound` until `stopped`.
    pub(crate) fn spawn_insight(
        &self,
        bound: Bound,
        stopped: &watch::Receiver<bool>,
        domains: &mut Domains,
    ) -> Result<()> {
        let args = insight::InsightArgs {
            domain: self.domain_args("insight")?,
            min_customers: self.config.min_customers,
        };
        let product =
            insight::open(&args).map_err(|source| LocalError::Domain { domain: "insight", source })?;
        domains.products.insert(insight::SEGMENT_SPENDING, Arc::clone(&product));
        let stopped = stopped.clone();
        domains.tasks.push(tokio::spawn(async move {
            insight::serve(product, &args, bound.listener, until(stopped))
                .await
                .map_err(|source| LocalError::Domain { domain: "insight", source })
        }));
        Ok(())
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
