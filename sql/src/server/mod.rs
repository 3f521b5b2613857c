//! `mesh sql serve`: the engine as a Flight SQL service that ADBC, JDBC
//! and pyarrow clients connect to. It authenticates each client like every
//! mesh service, then reads with that client's own token (exchanged per
//! domain at the registry): it has no identity of its own, so it can read
//! nothing a client could not.

mod caller;
mod handles;
mod service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use arrow_flight::flight_service_server::FlightServiceServer;
use mesh_grpc::MeshServer;
use mesh_grpc::server::ServingStatus;

use crate::engine::{EngineSettings, parse_bytes};
use crate::flight::ReadSettings;

/// The Flight service's full name, as health reports it.
pub const FLIGHT_SERVICE: &str = "arrow.flight.protocol.FlightService";

/// Flags of `mesh sql serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Where to listen. Loopback by default; another address needs TLS
    /// (--tls-cert) or --insecure-plaintext.
    #[arg(long, env = "MESH_SQL_ADDR", default_value = "127.0.0.1:50070")]
    pub addr: SocketAddr,
    /// Queries running at once at most; more are refused with
    /// RESOURCE_EXHAUSTED until one ends.
    #[arg(long, env = "MESH_SQL_MAX_QUERIES", default_value_t = 16)]
    pub max_queries: usize,
    /// Memory the joins, aggregates and sorts of all running queries share,
    /// e.g. `512MiB`; beyond it they spill to disk where they can, else fail.
    #[arg(long, env = "MESH_SQL_MEMORY_LIMIT", default_value = "1GiB", value_parser = parse_bytes)]
    pub memory_limit: usize,
    /// A query running longer than this is ended with DEADLINE_EXCEEDED.
    #[arg(long, env = "MESH_SQL_QUERY_BUDGET", default_value = "30m", value_parser = humantime::parse_duration)]
    pub query_budget: Duration,
    /// A domain stream that sends nothing for this long fails the query.
    #[arg(long, env = "MESH_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// TLS for the service.
    #[command(flatten)]
    pub tls: mesh_grpc::TlsArgs,
    /// Which tokens are accepted (the registry's audience by default: the
    /// token clients sign in with).
    #[command(flatten)]
    pub auth: mesh_grpc::AuthArgs,
}

impl ServeArgs {
    /// The flags' defaults, listening on `addr` with `tls` and accepting
    /// tokens as `auth` says (a service started beside a local mesh).
    pub fn on(addr: SocketAddr, tls: mesh_grpc::TlsArgs, auth: mesh_grpc::AuthArgs) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            args: ServeArgs,
        }
        let defaults = Defaults::try_parse_from(["mesh-sql"]).expect("every flag has a default").args;
        Self { addr, tls, auth, ..defaults }
    }
}

/// Serves Flight SQL on `args.addr` until the process is told to stop,
/// asking the registry at `registry` (catalog and token exchange).
pub async fn serve(args: &ServeArgs, registry: &str, timeout: Duration) -> Result<()> {
    args.tls.check_plaintext(args.addr)?;
    let listener = mesh_grpc::server::bind(args.addr).await?;
    serve_on(args, registry, timeout, listener, mesh_grpc::shutdown_signal()).await
}

/// Serves Flight SQL on `listener` until `shutdown` completes.
pub async fn serve_on(
    args: &ServeArgs,
    registry: &str,
    timeout: Duration,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let read = ReadSettings {
        timeout,
        idle_timeout: args.idle_timeout,
        on_failover: Arc::new(|failover: &crate::flight::Failover<'_>| {
            tracing::warn!(
                failed = failover.failed,
                reason = ?failover.reason,
                rows = failover.rows,
                next = failover.next,
                "a replica failed mid-read; going on at the next"
            );
        }),
    };
    let settings = EngineSettings::new(read, args.memory_limit)?;
    let registry = caller::Registry::new(registry.to_owned(), timeout);
    let limits = service::Limits { queries: args.max_queries.max(1), budget: args.query_budget };
    let service = service::MeshFlightSql::new(registry, settings, limits);
    let server = MeshServer::new(&[], &[])
        .await?
        .tls(&args.tls)
        .authenticate(args.auth.layer()?)
        .add_service(FlightServiceServer::new(service).max_decoding_message_size(16 << 20));
    server.health().set_service_status(FLIGHT_SERVICE, ServingStatus::Serving).await;
    tracing::info!(addr = %listener.local_addr()?, "Flight SQL serving");
    server.serve(listener, shutdown).await?;
    Ok(())
}
