//! A real mesh for the CLI's end-to-end tests: the registry and the three
//! domains on ephemeral ports with small generated data, requiring tokens
//! of the mesh's local issuer, and the `mesh` binary pointed at it with its
//! own catalog cache and profiles folder, calling with an admin's token.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use mesh_local::{LocalMesh, MeshConfig, Ports};
use woori_data::Generator;

/// A running mesh; every service stops when it is dropped.
pub(crate) struct Mesh {
    pub registry: String,
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    pub payment_url: String,
    pub customer_url: String,
    pub insight_url: Option<String>,
    /// A token of an admin (`e2e-admin`, who reads everything), signed by
    /// the mesh's issuer.
    pub token: String,
    local: LocalMesh,
}

impl Mesh {
    /// Starts the registry and the domains; `with_insight` adds insight.
    pub(crate) async fn start(customers: u64, with_insight: bool) -> Self {
        Self::start_with(customers, with_insight, false).await
    }

    /// Like [`Mesh::start`], serving TLS when `tls` (see [`Mesh::ca_file`]).
    pub(crate) async fn start_with(customers: u64, with_insight: bool, tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = MeshConfig {
            ports: Ports::Ephemeral,
            generator: Generator { seed: 3, customers, quarters: 2 },
            insight: with_insight,
            ready_timeout: Duration::from_secs(60),
            tls,
            // Webhook receivers in tests listen on loopback.
            webhooks: mesh_local::WebhookArgs { insecure_webhook_targets: true, ..Default::default() },
            ..MeshConfig::new(dir.path())
        };
        let local = LocalMesh::start(config).await.expect("the mesh comes up");
        Mesh {
            token: token_of(&local, "e2e-admin", &["admin"], mesh_grpc::auth::issuer::DEFAULT_AUDIENCE),
            registry: local.registry_url.clone(),
            payment_url: local.payment_url.clone(),
            customer_url: local.customer_url.clone(),
            insight_url: local.insight_url.clone(),
            dir,
            cache: tempfile::tempdir().unwrap(),
            local,
        }
    }

    /// A token of `subject` with `roles`, signed by the mesh's issuer.
    pub(crate) fn token_as(&self, subject: &str, roles: &[&str]) -> String {
        token_of(&self.local, subject, roles, mesh_grpc::auth::issuer::DEFAULT_AUDIENCE)
    }

    /// A token of `subject` with `roles` good at domain `domain` alone.
    pub(crate) fn domain_token_as(&self, domain: &str, subject: &str, roles: &[&str]) -> String {
        token_of(&self.local, subject, roles, &mesh_grpc::auth::exchange::domain_audience(domain))
    }

    /// The admin's token good at domain `domain` alone.
    pub(crate) fn domain_token(&self, domain: &str) -> String {
        self.domain_token_as(domain, "e2e-admin", &["admin"])
    }

    /// The admin's token for `domain` as a grpcurl or curl user gets it:
    /// `mesh token print --for DOMAIN`.
    pub(crate) fn printed_token(&self, domain: &str) -> String {
        let output = self.mesh().args(["token", "print", "--for", domain]).output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output).trim().to_owned()
    }

    /// The domain served at `url`, if a domain's.
    pub(crate) fn domain_at(&self, url: &str) -> Option<&'static str> {
        if url == self.payment_url {
            Some("payment")
        } else if url == self.customer_url {
            Some("customer")
        } else if Some(url) == self.insight_url.as_deref() {
            Some("insight")
        } else {
            None
        }
    }

    /// A channel to `url` calling as `subject` with `roles`, with a token
    /// for the service there (a domain's own, or the registry's).
    pub(crate) fn channel_as(&self, url: &str, subject: &str, roles: &[&str]) -> mesh_grpc::MeshChannel {
        let credentials = match self.domain_at(url) {
            Some(domain) => self.local.domain_credentials(domain, subject, roles),
            None => self.local.credentials(subject, roles),
        }
        .expect("credentials");
        mesh_grpc::client::channel(url, Duration::from_secs(10), &credentials).expect("a channel")
    }

    /// The CA the services' certificates chain to, when they serve TLS.
    pub(crate) fn ca_file(&self) -> Option<&std::path::Path> {
        self.local.ca_file.as_deref()
    }

    /// The JWKS of the mesh's issuer, for a service started beside it.
    pub(crate) fn jwks_file(&self) -> PathBuf {
        self.local.issuer.as_ref().expect("the mesh runs with its issuer").jwks_file().to_owned()
    }

    /// The payment domain's SQLite file.
    pub(crate) fn payment_db(&self) -> PathBuf {
        self.dir.path().join("payment").join("payment.sqlite")
    }

    /// The customer domain's SQLite file.
    pub(crate) fn customer_db(&self) -> PathBuf {
        self.dir.path().join("customer").join("customer.sqlite")
    }

    /// Stops the registry (the domains keep serving).
    pub(crate) async fn stop_registry(&self) {
        self.local.stop_registry().await.expect("the registry stops cleanly");
    }

    /// Stops every domain.
    pub(crate) async fn stop_domains(&self) {
        self.local.stop_domains().await.expect("the domains stop cleanly");
    }

    /// The `mesh` binary with `--registry` and its own cache folder.
    pub(crate) fn mesh(&self) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::new(mesh_e2e::workspace_binary("mesh"));
        command
            .arg("--registry")
            .arg(&self.registry)
            .env("MESH_CACHE_DIR", self.cache.path())
            .env("MESH_CONFIG_DIR", self.cache.path().join("config"))
            .env("MESH_TOKEN", &self.token)
            .env("NO_COLOR", "1");
        command.timeout(Duration::from_secs(60));
        command
    }
}

fn token_of(local: &LocalMesh, subject: &str, roles: &[&str], audience: &str) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let issuer = local.issuer.as_ref().expect("the mesh runs with its issuer");
    issuer.issue(subject, &roles, Duration::from_secs(3600), audience).expect("a token")
}

/// Standard output of a finished command, as text.
pub(crate) fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error of a finished command, as text.
pub(crate) fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A tool installed by `scripts/install-tools.sh` under `.tools/`.
pub(crate) fn tool(relative: &str) -> PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-tools.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Runs `command`, returning its standard output; panics with its output on failure.
pub(crate) fn run_ok(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?} did not start: {e}"));
    assert!(output.status.success(), "{command:?} failed:\n{}{}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// A fresh folder for the screenshots of browser test `test`, under
/// target/playwright/ (kept as test artifacts).
pub(crate) fn screenshots(test: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/playwright").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the Playwright script `script` of e2e/fixtures with `config` (as a
/// JSON file), killing it after 4 minutes; its output, or a panic with it.
pub(crate) fn run_browser(script: &str, config: &serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let mut child = std::process::Command::new(tool("web-venv/bin/python"))
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(script))
        .arg(&config_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    let report = format!("{}{}", stdout(&output), stderr(&output));
    assert!(output.status.success(), "{script} failed:\n{report}");
    report
}

/// Runs schemathesis against the OpenAPI document at `document` with
/// `token`: every check but "schema-valid requests are accepted" (a filter
/// or a column list is any string by the schema and may still name
/// nothing); panics with its report unless it finds no issue.
pub(crate) fn schemathesis(document: &str, token: &str) {
    let output = std::process::Command::new(tool("web-venv/bin/schemathesis"))
        .args(["run", document])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", "60", "--seed", "20261126", "--no-color"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .unwrap();
    let report = format!("{}{}", stdout(&output), stderr(&output));
    assert!(output.status.success(), "schemathesis found problems:\n{report}");
    assert!(report.contains("No issues found"), "{report}");
}

/// CSV text as rows of fields, header included (quoted fields unquoted).
pub(crate) fn records(csv_text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// Rows of `sql` over the SQLite file `db`, each value as text.
pub(crate) fn sqlite_rows(db: &std::path::Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement = conn.prepare(sql).unwrap();
    let width = statement.column_count();
    statement
        .query_map([], |r| (0..width).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect())
        .unwrap()
        .map(|row: rusqlite::Result<Vec<rusqlite::types::Value>>| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}

/// A base port with four free ports after it (for `mesh up --base-port`).
pub(crate) fn free_base_port() -> u16 {
    for _ in 0..50 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base < 60000 && (0..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no four free ports in a row");
}

/// The rows of `request` at `url` as pandas, Polars and DuckDB each hold
/// them (`fixtures/frames.py`), by library: `source` is `sql` (a query
/// through ADBC at `mesh sql serve`) or `flight` (a Flight command to a
/// domain, every endpoint read).
pub(crate) fn frames(
    source: &str,
    url: &str,
    token: &str,
    request: &str,
) -> std::collections::BTreeMap<String, Vec<Vec<String>>> {
    let output = std::process::Command::new(tool("arrow-venv/bin/python"))
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/frames.py"))
        .args([source, url, request])
        .env("MESH_TOKEN", token)
        .output()
        .unwrap();
    assert!(output.status.success(), "{request}: {}", stderr(&output));
    let mut frames: std::collections::BTreeMap<String, Vec<Vec<String>>> = Default::default();
    let mut library = String::new();
    for line in stdout(&output).lines() {
        match line.strip_prefix("== ") {
            Some(name) => {
                library = name.to_owned();
                frames.entry(library.clone()).or_default();
            }
            None => {
                frames.entry(library.clone()).or_default().push(line.split(',').map(str::to_owned).collect())
            }
        }
    }
    assert_eq!(frames.keys().collect::<Vec<_>>(), ["duckdb", "pandas", "polars"], "{}", stdout(&output));
    frames
}
