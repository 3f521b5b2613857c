//! Flags every domain binary shares, with `MESH_*` environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;

use crate::query::part::{Partitioning, default_max_parts};
use crate::scan::admission::{Limits, default_max_scans};

/// Where a domain listens, keeps its data and registers.
#[derive(Debug, Clone, clap::Args)]
pub struct DomainArgs {
    /// Address to serve gRPC on [default: the domain's own port on 127.0.0.1].
    #[arg(long, env = "MESH_DOMAIN_ADDR")]
    pub addr: Option<SocketAddr>,

    /// Directory for the domain's SQLite file and audit log [default: .mesh/<domain>].
    #[arg(long, env = "MESH_DOMAIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// PostgreSQL instead of the SQLite file, for the product data.
    #[command(flatten)]
    pub database: crate::store::DatabaseArgs,

    /// The catalog registry to register the domain's products in; several
    /// URLs separated by commas are replicas of one catalog, used in turn
    /// while one cannot be reached.
    #[arg(long, env = "MESH_REGISTRY", default_value = "http://127.0.0.1:50050")]
    pub registry: String,

    /// The URLs consumers should call, as registered in the catalog, in
    /// order of preference, comma-separated: e.g. the name inside a
    /// container network, then the address published on the host; clients
    /// use the first that answers [default: http://<addr>, with 127.0.0.1
    /// for an unspecified address].
    #[arg(long, env = "MESH_ADVERTISE_URL", value_delimiter = ',')]
    pub advertise_url: Vec<String>,

    /// How much load the domain accepts.
    #[command(flatten)]
    pub limits: ServeLimits,

    /// TLS for the domain's own clients.
    #[command(flatten)]
    pub tls: mesh_grpc::TlsArgs,

    /// What the domain trusts when it calls the registry and other domains.
    #[command(flatten)]
    pub client_tls: mesh_grpc::ClientTlsArgs,

    /// Who may call the domain.
    #[command(flatten)]
    pub auth: mesh_grpc::AuthArgs,

    /// File holding the token the domain calls the registry and other
    /// domains with; re-read when it changes, so an agent can rotate it.
    #[arg(long, env = "MESH_TOKEN_FILE", help_heading = "Authentication", conflicts_with = "issuer_dir")]
    pub token_file: Option<PathBuf>,

    /// The local issuer's folder: the domain signs its own short-lived
    /// service token (`service:<domain>`) with the key there and renews it.
    #[arg(long, env = "MESH_ISSUER_DIR", help_heading = "Authentication")]
    pub issuer_dir: Option<PathBuf>,

    /// The mesh's pseudonym key (64 hex digits, mode 0600): the same file for
    /// every domain, so a consumer's pseudonyms join across products.
    /// Required by products with identifier columns (`mesh init` makes one).
    #[arg(long, env = "MESH_PSEUDONYM_KEY", help_heading = "Authentication")]
    pub pseudonym_key: Option<PathBuf>,

    /// How long the record of each read is kept (`<data-dir>/audit.sqlite`).
    #[arg(long, env = "MESH_AUDIT_RETENTION", default_value = "365days", value_parser = humantime::parse_duration)]
    pub audit_retention: Duration,

    /// Web origins (`https://catalog.example.com`) whose pages may call the
    /// REST API from a browser (CORS), e.g. the registry's web catalog for
    /// its data preview. None by default: no cross-origin access.
    #[arg(long = "cors-origin", env = "MESH_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<http::HeaderValue>,

    /// Serve no `/metrics` and count no calls (to measure what metrics
    /// cost; operators want them on).
    #[arg(long, env = "MESH_NO_METRICS")]
    pub no_metrics: bool,

    /// Credentials given by the program that embeds the domain (`mesh up`);
    /// they take precedence over --token-file and --issuer-dir.
    #[arg(skip)]
    pub credentials: mesh_grpc::Credentials,
}

impl Default for DomainArgs {
    fn default() -> Self {
        Self {
            addr: None,
            data_dir: None,
            database: Default::default(),
            registry: "http://127.0.0.1:50050".to_owned(),
            advertise_url: Vec::new(),
            limits: ServeLimits::default(),
            tls: Default::default(),
            client_tls: Default::default(),
            auth: Default::default(),
            no_metrics: false,
            token_file: None,
            issuer_dir: None,
            pseudonym_key: None,
            audit_retention: Duration::from_secs(365 * 86_400),
            cors_origins: Vec::new(),
            credentials: Default::default(),
        }
    }
}

/// The limits a domain serves under: every one has a number and, when it
/// is reached, an error naming it.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Limits")]
pub struct ServeLimits {
    /// Queries scanning at once; more wait in the queue. Each holds a
    /// blocking thread and a read connection. The default is 4 per CPU, at least 8.
    #[arg(long, env = "MESH_MAX_SCANS", default_value_t = default_max_scans(), value_parser = clap::value_parser!(u32).range(1..=4096).map(|n| n as usize))]
    pub max_scans: usize,

    /// Queries that may wait for a scan slot; beyond it a query is refused
    /// at once with RESOURCE_EXHAUSTED.
    #[arg(long, env = "MESH_SCAN_QUEUE", default_value_t = 64)]
    pub scan_queue: usize,

    /// How long a query may wait in the queue before it is refused.
    #[arg(long, env = "MESH_SCAN_QUEUE_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub scan_queue_timeout: Duration,

    /// `Query` streams one connection may hold open at once.
    #[arg(long, env = "MESH_STREAMS_PER_CONNECTION", default_value_t = 32)]
    pub streams_per_connection: usize,

    /// How long a stream may wait for its client to read before it is cut
    /// (CANCELLED), freeing its thread and connection.
    #[arg(long, env = "MESH_SEND_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub send_timeout: Duration,

    /// The most time one query may run, from its start to its last row
    /// (DEADLINE_EXCEEDED after it; resume with the last token). None by default.
    #[arg(long, env = "MESH_QUERY_BUDGET", value_parser = humantime::parse_duration)]
    pub query_budget: Option<Duration>,

    /// How long shutdown waits for open calls before cutting them.
    #[arg(long, env = "MESH_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// The most parts an Arrow Flight read of a whole product is split
    /// into, for clients to read side by side (1: never split). Only the
    /// product's owners (parts of the load's order) and callers who get
    /// identifiers as pseudonyms (parts of their keyed order) get parts, on
    /// SQLite. The default is one per CPU, at most 8.
    #[arg(long, env = "MESH_FLIGHT_PARTS", default_value_t = default_max_parts(), value_parser = clap::value_parser!(u32).range(1..=64).map(|n| n as usize))]
    pub flight_parts: usize,

    /// The fewest rows each part of a split Arrow Flight read holds.
    #[arg(long, env = "MESH_FLIGHT_PART_ROWS", default_value_t = Partitioning::default().min_rows, value_parser = clap::value_parser!(u64).range(1..))]
    pub flight_part_rows: u64,

    /// How long an Arrow Flight ticket can be redeemed after
    /// GetFlightInfo issued it (the mesh's clients plan again when theirs
    /// expire).
    #[arg(long, env = "MESH_FLIGHT_TICKET_LIFETIME", default_value = "10m", value_parser = ticket_lifetime)]
    pub flight_ticket_lifetime: Duration,
}

/// A ticket lifetime: at least a second, at most a day.
fn ticket_lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(&lifetime) {
        return Err("a ticket lasts from 1s to 24h, e.g. 10m".to_owned());
    }
    Ok(lifetime)
}

impl Default for ServeLimits {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            max_scans: limits.max_scans,
            scan_queue: limits.scan_queue,
            scan_queue_timeout: limits.scan_queue_timeout,
            streams_per_connection: limits.streams_per_connection,
            send_timeout: limits.send_timeout,
            query_budget: limits.query_budget,
            shutdown_grace: Duration::from_secs(10),
            flight_parts: default_max_parts(),
            flight_part_rows: Partitioning::default().min_rows,
            flight_ticket_lifetime: Duration::from_secs(10 * 60),
        }
    }
}

impl ServeLimits {
    /// The limits admission enforces, as plain values.
    pub fn admission(&self) -> Limits {
        Limits {
            max_scans: self.max_scans,
            scan_queue: self.scan_queue,
            scan_queue_timeout: self.scan_queue_timeout,
            streams_per_connection: self.streams_per_connection,
            send_timeout: self.send_timeout,
            query_budget: self.query_budget,
        }
    }

    /// How Arrow Flight reads of whole products are split.
    pub fn partitioning(&self) -> Partitioning {
        Partitioning { max_parts: self.flight_parts, min_rows: self.flight_part_rows }
    }
}

/// How long a domain's self-signed service token lives; it is renewed
/// halfway.
pub const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(3600);

impl DomainArgs {
    /// The listen address, or `default_port` on 127.0.0.1.
    pub fn addr_or(&self, default_port: u16) -> SocketAddr {
        self.addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], default_port)))
    }

    /// The data directory, or `.mesh/<domain>`.
    pub fn data_dir_or(&self, domain: &str) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from(".mesh").join(domain))
    }

    /// The domain's database: its schema `domain` on the PostgreSQL server
    /// of --database-url, or else `<data dir>/<domain>.sqlite`, with a scan
    /// connection per concurrent scan (blocking).
    pub fn open_store(&self, domain: &str) -> crate::Result<crate::DomainStore> {
        let store = match &self.database.database_url {
            Some(_) => crate::DomainStore::connect(&self.database, domain)?,
            None => crate::DomainStore::open(&self.data_dir_or(domain).join(format!("{domain}.sqlite")))?,
        };
        Ok(store.with_readers(self.limits.max_scans))
    }

    /// The credentials the domain `domain` calls other services with: those
    /// given by an embedding program, else the token file, else a service
    /// token signed with the local issuer's key, else none.
    pub fn client_credentials(&self, domain: &str) -> mesh_grpc::Result<mesh_grpc::Credentials> {
        if self.credentials.is_some() {
            return Ok(self.credentials.clone());
        }
        if let Some(file) = &self.token_file {
            return mesh_grpc::Credentials::file(file);
        }
        if let Some(dir) = &self.issuer_dir {
            let issuer = std::sync::Arc::new(mesh_grpc::auth::issuer::LocalIssuer::open(dir)?);
            return mesh_grpc::Credentials::issued(
                issuer,
                &format!("{domain}-domain"),
                &[&mesh_grpc::auth::service_role(domain)],
                SERVICE_TOKEN_TTL,
            );
        }
        Ok(mesh_grpc::Credentials::none())
    }

    /// The registry URLs, in order.
    pub fn registries(&self) -> Vec<String> {
        let urls: Vec<String> =
            self.registry.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
        if urls.is_empty() { vec!["http://127.0.0.1:50050".to_owned()] } else { urls }
    }

    /// The URLs to register for a server bound to `bound`, in order of
    /// preference (`https://` when it serves TLS).
    pub fn advertise(&self, bound: SocketAddr) -> Vec<String> {
        let given: Vec<String> = self
            .advertise_url
            .iter()
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        if !given.is_empty() {
            return given;
        }
        let ip =
            if bound.ip().is_unspecified() { "127.0.0.1".parse().expect("valid ip") } else { bound.ip() };
        let scheme = if self.tls.tls_cert.is_some() { "https" } else { "http" };
        vec![format!("{scheme}://{}", SocketAddr::new(ip, bound.port()))]
    }
}

/// A web origin: `http(s)://host[:port]`, nothing after.
pub fn parse_origin(text: &str) -> std::result::Result<http::HeaderValue, String> {
    let text = text.trim();
    let uri: http::Uri = text.parse().map_err(|e| format!("`{text}` is not an origin: {e}"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !text.ends_with('/');
    if !scheme_ok || uri.host().is_none() || !bare {
        return Err(format!(
            "`{text}` is not an origin: give scheme, host and port only, e.g. https://catalog.example.com:8443"
        ));
    }
    http::HeaderValue::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(addr: Option<&str>, advertise: Option<&str>) -> DomainArgs {
        DomainArgs {
            addr: addr.map(|a| a.parse().unwrap()),
            data_dir: None,
            registry: "http://127.0.0.1:50050".into(),
            advertise_url: advertise.map(|a| a.split(',').map(str::to_owned).collect()).unwrap_or_default(),
            ..DomainArgs::default()
        }
    }

    #[test]
    fn a_ticket_lifetime_is_from_a_second_to_a_day() {
        assert_eq!(ticket_lifetime("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(ticket_lifetime("24h"), Ok(Duration::from_secs(24 * 3600)));
        for refused in ["0s", "500ms", "25h", "1000years"] {
            assert_eq!(
                ticket_lifetime(refused),
                Err("a ticket lasts from 1s to 24h, e.g. 10m".to_owned()),
                "{refused}"
            );
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(parse_origin("http://127.0.0.1:50050").unwrap(), "http://127.0.0.1:50050");
        assert_eq!(parse_origin("https://catalog.example.com").unwrap(), "https://catalog.example.com");
        for bad in ["catalog.example.com", "ftp://x", "https://x/catalog", "https://x/", "*"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_give_a_port_on_loopback_and_a_folder_per_domain() {
        assert_eq!(args(None, None).addr_or(50052).to_string(), "127.0.0.1:50052");
        assert_eq!(args(Some("0.0.0.0:9000"), None).addr_or(50052).to_string(), "0.0.0.0:9000");
        assert_eq!(args(None, None).data_dir_or("payment"), PathBuf::from(".mesh/payment"));
    }

    #[test]
    fn the_advertised_url_is_the_flag_or_the_bound_address() {
        let bound: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        assert_eq!(args(None, None).advertise(bound), ["http://127.0.0.1:7000"]);
        assert_eq!(args(None, None).advertise("10.1.2.3:7000".parse().unwrap()), ["http://10.1.2.3:7000"]);
        assert_eq!(args(None, Some("http://payment:50052/")).advertise(bound), ["http://payment:50052"]);
        assert_eq!(
            args(None, Some("https://payment:50052,https://localhost:50052")).advertise(bound),
            ["https://payment:50052", "https://localhost:50052"]
        );
        let mut tls = args(None, None);
        tls.tls.tls_cert = Some("cert.pem".into());
        assert_eq!(tls.advertise(bound), ["https://127.0.0.1:7000"]);
    }

    #[test]
    fn limits_parse_from_flags_and_default_like_the_struct() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            limits: ServeLimits,
        }
        let parsed = Cli::parse_from(["x"]).limits;
        let default = ServeLimits::default();
        assert_eq!(
            (parsed.max_scans, parsed.scan_queue, parsed.scan_queue_timeout, parsed.send_timeout),
            (default.max_scans, default.scan_queue, default.scan_queue_timeout, default.send_timeout)
        );
        let parsed = Cli::parse_from(["x", "--max-scans", "2", "--query-budget", "1m 30s"]).limits;
        assert_eq!((parsed.max_scans, parsed.query_budget), (2, Some(Duration::from_secs(90))));
        assert!(Cli::try_parse_from(["x", "--max-scans", "0"]).is_err());
    }

    #[test]
    fn a_domain_calls_with_its_token_file_or_a_token_it_signs_itself() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!args(None, None).client_credentials("payment").unwrap().is_some());

        let file = dir.path().join("token");
        std::fs::write(&file, "from-the-agent\n").unwrap();
        let from_file = DomainArgs { token_file: Some(file), ..args(None, None) };
        let header = from_file.client_credentials("payment").unwrap().header().unwrap().unwrap();
        assert_eq!(header, "Bearer from-the-agent");

        let issuer_dir = dir.path().join("issuer");
        let missing = DomainArgs { issuer_dir: Some(issuer_dir.clone()), ..args(None, None) };
        assert!(missing.client_credentials("payment").is_err(), "no issuer key there yet");
        mesh_grpc::auth::issuer::LocalIssuer::open_or_create(&issuer_dir).unwrap();
        let signed = missing.client_credentials("payment").unwrap().header().unwrap().unwrap();
        assert!(signed.to_str().unwrap().starts_with("Bearer ey"), "a JWT");
    }
}
