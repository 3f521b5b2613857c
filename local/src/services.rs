//! The services of the in-process mesh and what they share: ports bound
//! up front, TLS and the issuer made in the data directory, and the
//! registry and each domain spawned on a task of its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use catalog_registry::RegistryConfig;
use mesh_domain_server::{Prepared, ServeArgs};
use mesh_grpc::auth::issuer::LocalIssuer;
use mesh_grpc::auth::service_role;
use mesh_grpc::certs::{self, ServiceCert};
use mesh_grpc::{AuthArgs, ClientTlsArgs, Credentials, TlsArgs};
use mesh_runtime::config::SERVICE_TOKEN_TTL;
use mesh_runtime::{DomainArgs, Product};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    pub domains: DomainSockets,
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
            domains: DomainSockets {
                customer: Bound::new(port(1), secure).await?,
                payment: Bound::new(port(2), secure).await?,
                insight: if config.insight { Some(Bound::new(port(3), secure).await?) } else { None },
            },
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
    pub products: HashMap<String, Arc<Product>>,
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

    /// The flags of the domain `name` serving the product file `file`.
    fn serve_args(&self, name: &str, file: PathBuf) -> Result<ServeArgs> {
        Ok(ServeArgs {
            products: vec![file],
            domain: self.domain_args(name)?,
            reload: false,
            allow_shrink: false,
        })
    }

    /// Writes the shipped product files and the generated data (when the
    /// generator changed), prepares customer and payment side by side, then
    /// insight, and serves each on its listener until `stopped`.
    pub(crate) async fn spawn_domains(
        &self,
        sockets: DomainSockets,
        stopped: &watch::Receiver<bool>,
    ) -> Result<Domains> {
        let (dir, generator) = (self.config.data_dir.clone(), self.config.generator);
        let shipped = tokio::task::spawn_blocking(move || woori_data::shipped::write(&dir, &generator))
            .await?
            .map_err(|source| LocalError::File { path: self.config.data_dir.join("products"), source })?;
        let (customer, payment) = tokio::try_join!(
            prepare("customer", self.serve_args("customer", shipped.customer.clone())?),
            prepare("payment", self.serve_args("payment", shipped.payment.clone())?)
        )?;
        let mut prepared =
            vec![("customer", customer, sockets.customer), ("payment", payment, sockets.payment)];
        if let Some(bound) = sockets.insight {
            prepared.push((
                "insight",
                prepare("insight", self.serve_args("insight", shipped.insight)?).await?,
                bound,
            ));
        }
        let mut domains = Domains { tasks: Vec::new(), products: HashMap::new() };
        for (name, domain, bound) in prepared {
            domains.products.extend(domain.products().into_iter().map(|p| (p.spec.id.clone(), p)));
            let stopped = stopped.clone();
            domains.tasks.push(tokio::spawn(async move {
                domain
                    .serve(bound.listener, until(stopped))
                    .await
                    .map_err(|source| LocalError::Domain { domain: name, source })
            }));
        }
        Ok(domains)
    }
}

/// The listeners of the domains.
pub(crate) struct DomainSockets {
    pub customer: Bound,
    pub payment: Bound,
    pub insight: Option<Bound>,
}

/// Declares, opens and loads (if needed) the domain `name`'s products.
async fn prepare(name: &'static str, args: ServeArgs) -> Result<Prepared> {
    mesh_domain_server::prepare(args).await.map_err(|source| LocalError::Domain { domain: name, source })
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
