//! A real mesh for the CLI's end-to-end tests: the registry and the three
//! domains on ephemeral ports with small generated data, and the `mesh`
//! binary pointed at it with its own catalog cache.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use catalog_registry::RegistryConfig;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{ListProductsRequest, ServingStatus};
use mesh_domain_runtime::DomainArgs;
use tokio::net::TcpListener;
use tokio::sync::watch;
use woori_data::source_domain::{SourceArgs, SourceDomain};

/// A running mesh; every service stops when it is dropped.
pub struct Mesh {
    pub registry: String,
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    stop_registry: watch::Sender<bool>,
    stop_domains: watch::Sender<bool>,
    pub payment_url: String,
    pub customer_url: String,
    pub insight_url: Option<String>,
}

async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

impl Mesh {
    /// Starts the registry and the domains; `with_insight` adds insight.
    pub async fn start(customers: u64, with_insight: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (registry_listener, registry_addr) = listener().await;
        let registry = format!("http://{registry_addr}");
        let (stop_registry, registry_stopped) = watch::channel(false);
        let (stop_domains, domains_stopped) = watch::channel(false);
        let config = RegistryConfig {
            addr: registry_addr,
            data_dir: dir.path().join("registry"),
            db: None,
            lease_ttl: Duration::from_secs(30),
        };
        tokio::spawn(async move {
            catalog_registry::serve(&config, registry_listener, until(registry_stopped)).await
        });
        let args = |name: &str, addr: SocketAddr| DomainArgs {
            addr: Some(addr),
            data_dir: Some(dir.path().join(name)),
            registry: registry.clone(),
            advertise_url: None,
        };
        let (mut payment_url, mut customer_url) = (String::new(), String::new());
        for domain in [customer::DOMAIN, payment::DOMAIN] {
            let (listener, addr) = listener().await;
            match domain.name {
                "payment" => payment_url = format!("http://{addr}"),
                _ => customer_url = format!("http://{addr}"),
            }
            let source = SourceArgs {
                domain: args(domain.name, addr),
                source: None,
                customers,
                quarters: 2,
                seed: 3,
                reload: false,
            };
            let stopped = domains_stopped.clone();
            tokio::spawn(run_source(domain, source, listener, stopped));
        }
        let mut expected = vec!["customer.profiles", "payment.card_spending"];
        let mut insight_url = None;
        if with_insight {
            let (listener, addr) = listener().await;
            insight_url = Some(format!("http://{addr}"));
            let insight_args = insight::InsightArgs { domain: args("insight", addr), min_customers: 5 };
            let stopped = domains_stopped.clone();
            tokio::spawn(async move { insight::run(insight_args, listener, until(stopped)).await });
            expected.push("insight.segment_spending");
        }
        wait_until_serving(&registry, &expected).await;
        Mesh {
            registry,
            dir,
            cache: tempfile::tempdir().unwrap(),
            stop_registry,
            stop_domains,
            payment_url,
            customer_url,
            insight_url,
        }
    }

    /// The payment domain's SQLite file.
    pub fn payment_db(&self) -> PathBuf {
        self.dir.path().join("payment").join("payment.sqlite")
    }

    /// The customer domain's SQLite file.
    pub fn customer_db(&self) -> PathBuf {
        self.dir.path().join("customer").join("customer.sqlite")
    }

    /// Stops the registry (the domains keep serving).
    pub async fn stop_registry(&self) {
        let _ = self.stop_registry.send(true);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// Stops every domain.
    pub async fn stop_domains(&self) {
        let _ = self.stop_domains.send(true);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// The `mesh` binary with `--registry` and its own cache folder.
    pub fn mesh(&self) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::cargo_bin("mesh").unwrap();
        command
            .arg("--registry")
            .arg(&self.registry)
            .env("MESH_CACHE_DIR", self.cache.path())
            .env("NO_COLOR", "1");
        command.timeout(Duration::from_secs(60));
        command
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let _ = self.stop_domains.send(true);
        let _ = self.stop_registry.send(true);
    }
}

async fn run_source(
    domain: SourceDomain,
    args: SourceArgs,
    listener: TcpListener,
    stopped: watch::Receiver<bool>,
) {
    domain.run(args, listener, until(stopped)).await.unwrap();
}

async fn wait_until_serving(registry: &str, expected: &[&str]) {
    let started = Instant::now();
    loop {
        if let Ok(mut client) = CatalogServiceClient::connect(registry.to_owned()).await
            && let Ok(page) = client.list_products(ListProductsRequest::default()).await
        {
            let products = page.into_inner().products;
            let ready = expected.iter().all(|id| {
                products.iter().any(|p| {
                    p.product_id == *id
                        && p.status() == ServingStatus::Serving
                        && p.data.as_ref().is_some_and(|d| d.row_count > 0)
                })
            });
            if ready {
                return;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the mesh did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Standard output of a finished command, as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error of a finished command, as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A tool installed by `scripts/install-tools.sh` under `.tools/`.
pub fn tool(relative: &str) -> PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-tools.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Runs `command`, returning its standard output; panics with its output on failure.
pub fn run_ok(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?} did not start: {e}"));
    assert!(output.status.success(), "{command:?} failed:\n{}{}", stdout(&output), stderr(&output));
    stdout(&output)
}
