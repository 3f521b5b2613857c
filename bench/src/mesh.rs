//! The mesh under test: the registry and the three domains in this process,
//! on ephemeral ports, over data kept between runs in the bench's data folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use mesh_grpc::auth::issuer::{DEFAULT_AUDIENCE, LocalIssuer};
use mesh_grpc::{Credentials, MeshChannel};
use mesh_local::{LocalMesh, MeshConfig, Ports};
use mesh_runtime::Product;
use woori_data::Generator;

/// The running mesh.
pub(crate) struct Mesh {
    pub registry: String,
    pub payment_url: String,
    pub customer_url: String,
    /// Insight's URL, where insight runs.
    pub insight_url: Option<String>,
    pub payment: Arc<Product>,
    /// The insight product, where insight runs.
    pub insight: Option<Arc<Product>>,
    /// A token of the mesh's issuer for the bench's clients (an admin, so
    /// it may also rebuild insight).
    pub token: String,
    /// The same token as credentials.
    pub credentials: Credentials,
    /// The registry's SQLite file.
    pub registry_db: PathBuf,
    local: LocalMesh,
}

impl Mesh {
    /// The bench's credentials at domain `domain` alone (none when open).
    pub(crate) fn at(&self, domain: &str) -> Result<Credentials> {
        Ok(self.local.domain_credentials(domain, "bench", &["admin"])?)
    }

    /// The credentials domain `domain` itself calls the mesh with (its
    /// service identity, as the local mesh issues it).
    pub(crate) fn service_credentials(&self, domain: &str) -> Result<Credentials> {
        let role = mesh_grpc::auth::service_role(domain);
        Ok(self.local.credentials(&format!("{domain}-domain"), &[&role])?)
    }

    /// A one-time link signing a browser in to the web catalog as the bench.
    pub(crate) fn web_sign_in_link(&self) -> Result<String> {
        Ok(self.local.web_sign_in_link("bench", &["admin"])?)
    }
}

/// A token of the local issuer kept in `issuer_dir` for the bench's calls
/// to the registry.
pub(crate) fn bench_token(issuer_dir: &Path) -> Result<String> {
    bench_token_for(issuer_dir, DEFAULT_AUDIENCE)
}

/// Like [`bench_token`], for `audience` (a domain's).
pub(crate) fn bench_token_for(issuer_dir: &Path, audience: &str) -> Result<String> {
    let issuer = LocalIssuer::open(issuer_dir)?;
    Ok(issuer.issue("bench", &["admin".to_owned()], Duration::from_secs(12 * 3600), audience)?)
}

/// The bench's token for the payment domain alone.
pub(crate) fn payment_token(issuer_dir: &Path) -> Result<String> {
    bench_token_for(issuer_dir, &mesh_grpc::auth::exchange::domain_audience("payment"))
}

/// A connected channel to `url` carrying `credentials`.
pub(crate) async fn connect(url: &str, credentials: &Credentials) -> Result<MeshChannel> {
    let channel = mesh_grpc::client::endpoint(url)?.connect().await?;
    Ok(MeshChannel::new(url, channel, credentials.clone())?)
}

/// How a bench mesh is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// As `mesh up` runs: plaintext on loopback, tokens required.
    Tokens,
    /// Plaintext and no tokens (the baseline of the authentication figures).
    Open,
    /// TLS and tokens, as across hosts (insight left out: it would rebuild
    /// the same file as the main mesh's).
    TlsAndTokens,
}

impl Mesh {
    /// Starts everything over `data` (generating it on first use), secured
    /// as `security` says; returns once every product is serving.
    pub(crate) async fn start(data: &Path, generator: Generator, security: Security) -> Result<Self> {
        let registry_db =
            data.join("registry").join(format!("registry-{}-{security:?}.sqlite", std::process::id()));
        let config = MeshConfig {
            registry_db: Some(registry_db.clone()),
            ports: Ports::Ephemeral,
            generator,
            lease_ttl: Duration::from_secs(60),
            authentication: security != Security::Open,
            tls: security == Security::TlsAndTokens,
            insight: security == Security::Tokens,
            // The events group's webhook receiver listens on loopback.
            webhooks: mesh_local::WebhookArgs { insecure_webhook_targets: true, ..Default::default() },
            ..MeshConfig::new(data)
        };
        let began = std::time::SystemTime::now();
        let local = LocalMesh::start(config).await?;
        let product = |id: &str| local.product(id).with_context(|| format!("the mesh serves no {id}"));
        let token = bench_token(&data.join("issuer"))?;
        let credentials =
            if security == Security::Open { Credentials::none() } else { Credentials::token(&token)? };
        let insight = local.product("insight.segment_spending");
        if let Some(insight) = &insight {
            settled(insight, began).await;
        }
        Ok(Mesh {
            credentials,
            token,
            registry: local.registry_url.clone(),
            payment_url: local.payment_url.clone(),
            customer_url: local.customer_url.clone(),
            insight_url: local.insight_url.clone(),
            payment: product("payment.card_spending")?,
            insight,
            registry_db,
            local,
        })
    }
}

/// Waits (two minutes at most) for insight's rebuild at start, which reads
/// both its sources: measured alongside it, the first figures would share
/// the cores with it.
async fn settled(insight: &Product, began: std::time::SystemTime) {
    let began = began.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let started = std::time::Instant::now();
    let rebuilt = || {
        insight
            .data_status()
            .ok()
            .and_then(|status| status.last_loaded_time)
            .is_some_and(|t| t.seconds >= began)
    };
    while !rebuilt() {
        if started.elapsed() > Duration::from_secs(120) {
            eprintln!("insight has not rebuilt after two minutes; measuring anyway");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A release binary of the workspace next to this one.
pub(crate) fn sibling_binary(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(path.exists(), "{} is missing: run `cargo build --release --bins` first", path.display());
    Ok(path)
}

/// A `catalog-registry` process of its own keeping its data in `dir`,
/// trusting the bench's issuer in `data`, with `extra` flags; it and its URL
/// once it serves.
pub(crate) fn registry_process(
    data: &Path,
    dir: &Path,
    extra: &[&str],
) -> Result<(std::process::Child, String)> {
    let mut registry = std::process::Command::new(sibling_binary("catalog-registry")?)
        .args(["--addr", "127.0.0.1:0", "--auth-issuer", "mesh-local"])
        .arg("--auth-jwks")
        .arg(data.join("issuer/jwks.json"))
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let url = served_url(&mut registry, "catalog-registry")?;
    Ok((registry, url))
}

/// The URL the service `child` (named `name` in errors) prints when it
/// serves; its later log lines are read and dropped.
pub(crate) fn served_url(child: &mut std::process::Child, name: &str) -> Result<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = loop {
        let Some(line) = lines.next() else { anyhow::bail!("{name} exited before serving") };
        if let Some(rest) = line?.split("serving addr=").nth(1) {
            break rest.split_whitespace().next().unwrap_or_default().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Ok(format!("http://{addr}"))
}
