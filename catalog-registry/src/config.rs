//! Command-line and environment configuration of the registry.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Configuration of a catalog registry process.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryConfig {
    /// Address to serve gRPC on.
    #[arg(long, env = "MESH_REGISTRY_ADDR", default_value = "127.0.0.1:50050")]
    pub addr: SocketAddr,

    /// Directory for the registry's state; the database goes to
    /// `<data-dir>/registry.sqlite` unless `--db` says otherwise.
    #[arg(long, env = "MESH_REGISTRY_DATA_DIR", default_value = ".mesh/registry")]
    pub data_dir: PathBuf,

    /// SQLite file holding the catalog (created if missing).
    #[arg(long, env = "MESH_REGISTRY_DB", conflicts_with = "database_url")]
    pub db: Option<PathBuf>,

    /// PostgreSQL instead of the SQLite file: registry replicas on one
    /// database serve one catalog.
    #[command(flatten)]
    pub database: mesh_postgres::DatabaseArgs,

    /// How long an endpoint's lease lasts without renewal before the product
    /// shows as stale, e.g. `30s`, `2m`.
    #[arg(long, env = "MESH_REGISTRY_LEASE_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,

    /// How long and how many events the event log keeps.
    #[command(flatten)]
    pub events: crate::events::EventArgs,

    /// How webhooks are delivered.
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,

    /// TLS for the registry's clients.
    #[command(flatten)]
    pub tls: mesh_grpc::TlsArgs,

    /// Who may call.
    #[command(flatten)]
    pub auth: mesh_grpc::AuthArgs,

    /// What the registry trusts when it fetches an OIDC issuer's keys.
    #[command(flatten)]
    pub client_tls: mesh_grpc::ClientTlsArgs,

    /// How the web catalog signs people in.
    #[command(flatten)]
    pub web: crate::web::WebArgs,

    /// The local issuer (a folder with `issuer-key.pem`) whose key signs the
    /// short-lived domain tokens the registry hands out at `/v1/token`
    /// (RFC 8693 token exchange) for sign-in tokens of that issuer. Without
    /// it the registry exchanges nothing: clients exchange at the company
    /// IdP instead.
    #[arg(long, env = "MESH_TOKEN_EXCHANGE_ISSUER_DIR")]
    pub token_exchange_issuer_dir: Option<PathBuf>,

    /// Write a short-lived service token for a domain into a file, e.g.
    /// `payment=/tokens/payment/token`, and again every 5 minutes (each
    /// lives 15): the domain runs with `--token-file` on it and never holds
    /// the signing key. Repeat, or separate with commas. Needs
    /// --token-exchange-issuer-dir.
    #[arg(
        long = "service-token",
        env = "MESH_SERVICE_TOKENS",
        value_delimiter = ',',
        value_parser = crate::service_tokens::parse,
        requires = "token_exchange_issuer_dir"
    )]
    pub service_tokens: Vec<crate::service_tokens::ServiceTokenFile>,

    /// Accept `http://` endpoints on hosts other than loopback. Unsafe:
    /// clients, the web preview among them, send tokens to every endpoint
    /// they call, here in clear across the network.
    #[arg(long, env = "MESH_INSECURE_PLAINTEXT_ENDPOINTS")]
    pub insecure_plaintext_endpoints: bool,
}

impl RegistryConfig {
    /// The SQLite file to open: `--db`, or `registry.sqlite` in the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(|| self.data_dir.join("registry.sqlite"))
    }
}
