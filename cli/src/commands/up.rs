//! `mesh up`: the registry and the three domains in one process, each on its
//! own port with its own SQLite file, until Ctrl-C.

use std::time::Instant;

use anyhow::{Context, Result};
use mesh_grpc::auth::ADMIN;
use mesh_grpc::auth::issuer::DEFAULT_AUDIENCE;
use mesh_local::{ADMIN_TOKEN_TTL, LocalMesh, MeshConfig, Ports};
use woori_data::Generator;

use crate::cli::DEFAULT_REGISTRY;
use crate::profile::Profile;

/// Flags of `mesh up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Where every service keeps its files (SQLite database, audit log, keys), one folder each.
    #[arg(long, env = "MESH_DATA_DIR", default_value = ".mesh")]
    pub data_dir: std::path::PathBuf,
    /// Customers to generate on first start.
    #[arg(long, default_value_t = woori_data::generator::DEFAULT_CUSTOMERS)]
    pub customers: u64,
    /// Quarters to generate on first start (from 2024Q1).
    #[arg(long, default_value_t = woori_data::generator::DEFAULT_QUARTERS)]
    pub quarters: u32,
    /// Port of the registry; the customer, payment and insight domains take
    /// the next three, the Flight SQL service this plus 20.
    #[arg(long, default_value_t = 50050)]
    pub base_port: u16,
    /// How long a registration lasts without renewal (the domains renew at a third of it).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease_ttl: std::time::Duration,
    /// The limits every domain serves under.
    #[command(flatten)]
    pub limits: mesh_local::ServeLimits,
    /// Serve TLS, with a CA and a certificate for 127.0.0.1 made in
    /// `<data-dir>/tls` (the profile names the CA for other terminals).
    #[arg(long)]
    pub tls: bool,
    /// Keep the domains' data on this PostgreSQL server (a schema per
    /// domain) instead of SQLite files, e.g.
    /// `postgres://mesh:PASSWORD@127.0.0.1:5432/mesh`.
    #[arg(long, env = "MESH_POSTGRES_URL", hide_env_values = true, value_name = "URL")]
    pub postgres: Option<String>,
    /// INSECURE: lets webhooks go to loopback, link-local and private
    /// addresses and over plain http (a receiver on this machine).
    #[arg(long)]
    pub insecure_webhook_targets: bool,
}

/// Starts everything, waits until every product serves, runs until Ctrl-C.
pub(crate) async fn run(args: &UpArgs) -> Result<()> {
    let shutdown = mesh_grpc::shutdown_signal();
    tokio::pin!(shutdown);
    let config = MeshConfig {
        ports: Ports::Base(args.base_port),
        generator: Generator { customers: args.customers, quarters: args.quarters, ..Generator::default() },
        lease_ttl: args.lease_ttl,
        limits: args.limits.clone(),
        tls: args.tls,
        postgres: args.postgres.clone(),
        webhooks: mesh_local::WebhookArgs {
            insecure_webhook_targets: args.insecure_webhook_targets,
            ..Default::default()
        },
        ..MeshConfig::new(&args.data_dir)
    };
    match &args.postgres {
        Some(_) => eprintln!(
            "starting the mesh in {}, the domains' data on PostgreSQL (first start generates the data)...",
            args.data_dir.display()
        ),
        None => {
            eprintln!("starting the mesh in {} (first start generates the data)...", args.data_dir.display())
        }
    }
    let started = Instant::now();
    let mesh = tokio::select! {
        mesh = LocalMesh::start(config) => mesh.context("the mesh did not start")?,
        _ = &mut shutdown => {
            eprintln!("stopped before the mesh was ready");
            return Ok(());
        }
    };
    eprintln!("every product is serving ({:.1} s)", started.elapsed().as_secs_f64());
    let profile = keep_signed_in(&mesh)?;
    let sql = Sql::start(&mesh, args.base_port + SQL_PORT_OFFSET).await;
    print_next_steps(&mesh, args.base_port, &profile, sql.url.as_deref());
    tokio::select! {
        _ = &mut shutdown => {}
        failed = renew_profile(&mesh) => return failed,
    }
    Profile::remove(&mesh.registry_url);
    eprintln!("stopping...");
    sql.stop().await;
    mesh.stop().await.context("the mesh did not stop cleanly")?;
    eprintln!("stopped");
    Ok(())
}

/// The SQL service listens this far above the registry's port (50070 by
/// default, as in compose).
const SQL_PORT_OFFSET: u16 = 20;

/// `mesh sql serve` beside the mesh, in this process.
struct Sql {
    url: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sql {
    /// Serves Flight SQL on `port` of loopback, trusting the mesh's tokens;
    /// a port that cannot be had is said and skipped (the mesh runs on).
    async fn start(mesh: &LocalMesh, port: u16) -> Self {
        let none = Self { url: None, stop: None, task: None };
        let Some(issuer) = &mesh.issuer else { return none };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let listener = match mesh_grpc::server::bind(addr).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("note: no SQL service on {addr} ({error}); `mesh sql` works without it");
                return none;
            }
        };
        let auth = mesh_grpc::AuthArgs::local(issuer.jwks_file().to_owned());
        let args = mesh_sql::server::ServeArgs::on(addr, mesh.sql_tls.clone(), auth);
        let registry = mesh.registry_url.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let until = async {
                let _ = stopped.await;
            };
            if let Err(error) =
                mesh_sql::server::serve_on(&args, &registry, SQL_TIMEOUT, listener, until).await
            {
                tracing::error!("the SQL service stopped: {error:#}");
            }
        });
        let scheme = if mesh.ca_file.is_some() { "grpc+tls" } else { "grpc" };
        Self { url: Some(format!("{scheme}://{addr}")), stop: Some(stop), task: Some(task) }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// How long the SQL service waits for a connection or an answer.
const SQL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The subject of the admin token `mesh up` keeps in the profile.
const ADMIN_SUBJECT: &str = "local-admin";

/// Writes the profile of the mesh's registry with a fresh admin token, so
/// commands in other terminals call with it; returns where it is.
fn keep_signed_in(mesh: &LocalMesh) -> Result<std::path::PathBuf> {
    let issuer = mesh.issuer.as_ref().context("the local mesh runs with its issuer")?;
    let token = issuer.issue(ADMIN_SUBJECT, &[ADMIN.to_owned()], ADMIN_TOKEN_TTL, DEFAULT_AUDIENCE)?;
    let profile = Profile {
        registry: mesh.registry_url.clone(),
        ca_file: mesh.ca_file.as_ref().map(|ca| std::path::absolute(ca).unwrap_or_else(|_| ca.clone())),
        token: Some(token),
        expires_at: Some(crate::profile::now() + ADMIN_TOKEN_TTL.as_secs()),
        ..Profile::default()
    };
    profile.save()
}

/// Renews the profile's token halfway through its life, for as long as
/// the mesh runs; returns only if writing the profile fails.
async fn renew_profile(mesh: &LocalMesh) -> Result<()> {
    loop {
        tokio::time::sleep(ADMIN_TOKEN_TTL / 2).await;
        keep_signed_in(mesh)?;
    }
}

fn print_next_steps(mesh: &LocalMesh, base_port: u16, profile: &std::path::Path, sql: Option<&str>) {
    let registry_url = &mesh.registry_url;
    let catalog = match mesh.web_sign_in_link(ADMIN_SUBJECT, &[ADMIN]) {
        Ok(link) => format!(
            "web catalog: {link}\n  (signs this browser in as `{ADMIN_SUBJECT}` once, within {} minutes; later, sign in \
             at {registry_url}/catalog with `mesh{} token print`)\n",
            mesh_local::SIGN_IN_LINK_TTL.as_secs() / 60,
            if registry_url == DEFAULT_REGISTRY {
                String::new()
            } else {
                format!(" --registry {registry_url}")
            }
        ),
        Err(error) => format!("web catalog: {registry_url}/catalog (no sign-in link: {error})\n"),
    };
    let flag =
        if registry_url == DEFAULT_REGISTRY { String::new() } else { format!(" --registry {registry_url}") };
    let sql = sql.map(|url| format!("SQL for ADBC/JDBC tools (Flight SQL): {url}\n")).unwrap_or_default();
    println!(
        "the mesh is up: registry {registry_url}, customer :{}, payment :{}, insight :{}\n\
         {catalog}{sql}\
         try:\n  mesh{flag} products\n  mesh{flag} describe payment.card_spending\n  \
         mesh{flag} query payment.card_spending --filter 'tot_use_am > 50000000' --order-by 'tot_use_am desc' --limit 10\n  \
         mesh{flag} query insight.segment_spending --filter 'hous_sido_nm = \"서울\"' --select bas_yh,life_stage,mbr_rk,customer_count,avg_use_am\n  \
         mesh{flag} sql 'SELECT c.life_stage, sum(p.tot_use_am) AS spent FROM \"customer.profiles\" c \
         JOIN \"payment.card_spending\" p USING (bas_yh, seq) GROUP BY 1 ORDER BY 2 DESC'\n  \
         mesh{flag} health\n  \
         mesh{flag} whoami\n\
         commands in other terminals sign in as `{ADMIN_SUBJECT}` (admin) with the token in {}\n\
         (for grpcurl: -H \"authorization: Bearer $(mesh{flag} token print)\")\n\
         Ctrl-C stops everything.",
        base_port + 1,
        base_port + 2,
        base_port + 3,
        profile.display()
    );
}
