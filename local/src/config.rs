//! What the in-process mesh starts, and on which ports.

use std::path::PathBuf;
use std::time::Duration;

use mesh_runtime::ServeLimits;
use woori_data::Generator;

/// Where the services listen, all on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// The registry on this port, the customer, payment and insight domains
    /// on the next three.
    Base(u16),
    /// Any free ports (tests and benchmarks).
    Ephemeral,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Each service keeps its data in a folder of its own under here.
    pub data_dir: PathBuf,
    /// The registry's database, when not `<data_dir>/registry/registry.sqlite`.
    pub registry_db: Option<PathBuf>,
    /// The ports.
    pub ports: Ports,
    /// The synthetic data the source domains generate on first start.
    pub generator: Generator,
    /// How long a registration lasts without renewal.
    pub lease_ttl: Duration,
    /// Whether the insight domain runs.
    pub insight: bool,
    /// How long to wait for every product to serve.
    pub ready_timeout: Duration,
    /// The limits every domain serves under.
    pub limits: ServeLimits,
    /// Whether the services require tokens of the mesh's local issuer
    /// (kept in `<data_dir>/issuer`); without, every caller is an admin.
    pub authentication: bool,
    /// Whether the services serve TLS, with a CA and a certificate for
    /// 127.0.0.1 made in `<data_dir>/tls` at each start. The process's
    /// clients then trust that CA (see [`mesh_grpc::set_client_tls`]).
    pub tls: bool,
    /// The PostgreSQL server the domains keep their data on (a schema
    /// each), instead of their SQLite files.
    pub postgres: Option<String>,
    /// How the registry delivers webhooks (and whether they may reach
    /// private addresses).
    pub webhooks: catalog_registry::webhooks::WebhookArgs,
}

impl MeshConfig {
    /// The default mesh over `data_dir`: every domain, the default data,
    /// the usual ports from 50050.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            registry_db: None,
            ports: Ports::Base(50050),
            generator: Generator::default(),
            lease_ttl: Duration::from_secs(30),
            insight: true,
            ready_timeout: Duration::from_secs(600),
            limits: ServeLimits::default(),
            authentication: true,
            tls: false,
            postgres: None,
            webhooks: Default::default(),
        }
    }
}
