//! A real payment domain served from its shipped product file by the
//! generic server, on `127.0.0.1:0` over a real SQLite file or a real
//! PostgreSQL database, with generated data, authenticating callers
//! against a local issuer made for the test, and helpers to read its rows
//! straight from the database (not through the domain).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::CardSpending;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_domain_server::ServeArgs;
use mesh_domain_server::published::Published;
use mesh_grpc::auth::issuer::LocalIssuer;
use mesh_grpc::auth::service_role;
use mesh_grpc::{AuthArgs, Credentials, MeshChannel};
use mesh_postgres::testing::TestDatabase;
use mesh_runtime::{DomainArgs, Product};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use woori_data::Generator;

#[allow(unused_imports)]
pub(crate) use mesh_postgres::testing::{Backend, backend};

/// A running payment domain, stopped when dropped.
pub(crate) struct TestDomain {
    pub addr: std::net::SocketAddr,
    pub client: CardSpendingServiceClient<MeshChannel>,
    pub product: Arc<Product>,
    /// The product with its file and rules.
    pub published: Arc<Published>,
    pub db: PathBuf,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, when the domain runs on one.
    pub database: Option<Arc<TestDatabase>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestDomain {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The local issuer of the test domain in `dir` (made on first use).
pub(crate) fn issuer(dir: &std::path::Path) -> Arc<LocalIssuer> {
    Arc::new(LocalIssuer::open_or_create(&dir.join("issuer")).unwrap())
}

/// Credentials of `subject` with `roles` for reading the payment domain,
/// signed by the issuer in `dir`.
pub(crate) fn credentials(dir: &std::path::Path, subject: &str, roles: &[&str]) -> Credentials {
    let audience = mesh_grpc::auth::exchange::domain_audience("payment");
    Credentials::issued_for(issuer(dir), subject, roles, Duration::from_secs(600), &audience).unwrap()
}

/// Credentials of `subject` with `roles` for calling the registry, signed
/// by the issuer in `dir`.
pub(crate) fn registry_credentials(dir: &std::path::Path, subject: &str, roles: &[&str]) -> Credentials {
    Credentials::issued(issuer(dir), subject, roles, Duration::from_secs(600)).unwrap()
}

/// Credentials of an owner of the payment domain (who reads everything),
/// signed by the issuer in `dir`.
pub(crate) fn reader(dir: &std::path::Path) -> Credentials {
    credentials(dir, "payment-owner", &["owner:payment"])
}

/// The mesh's pseudonym key for the test domain in `dir` (made on first use).
pub(crate) fn pseudonym_key(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("pseudonym.key");
    mesh_grpc::private_files::create_secret(&path).unwrap();
    path
}

/// Args for a domain serving the shipped payment product file with
/// `customers` x 2 quarters of generated data in `dir`, registering at
/// `registry`, trusting the issuer in `dir` and calling with the payment
/// domain's service identity.
pub(crate) fn args(dir: &std::path::Path, customers: u64, registry: &str) -> ServeArgs {
    let shipped =
        woori_data::shipped::write(&dir.join("files"), &Generator { customers, quarters: 2, seed: 7 })
            .unwrap();
    ServeArgs {
        products: vec![shipped.payment],
        domain: DomainArgs {
            data_dir: Some(dir.to_path_buf()),
            registry: registry.to_owned(),
            auth: AuthArgs::local(issuer(dir).jwks_file().to_owned()),
            credentials: registry_credentials(dir, "payment-domain", &[&service_role("payment")]),
            pseudonym_key: Some(pseudonym_key(dir)),
            ..DomainArgs::default()
        },
        reload: false,
        allow_shrink: false,
    }
}

/// The source file the product of `args` loads.
pub(crate) fn source_of(args: &ServeArgs) -> PathBuf {
    let files = args.products[0].parent().and_then(|p| p.parent()).and_then(|p| p.parent()).unwrap();
    files.join(woori_data::shipped::SOURCE_FILE)
}

/// `args` loading `file` (copied over the generated source) instead.
pub(crate) fn with_source(args: ServeArgs, file: &std::path::Path) -> ServeArgs {
    std::fs::copy(file, source_of(&args)).unwrap();
    args
}

/// A registry address where nothing listens.
pub(crate) fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// Starts the payment domain with `customers` x 2 quarters.
pub(crate) async fn start(customers: u64, registry: &str) -> TestDomain {
    start_on(Backend::Sqlite, customers, registry).await
}

/// Starts the payment domain on `backend` with `customers` x 2 quarters.
pub(crate) async fn start_on(backend: Backend, customers: u64, registry: &str) -> TestDomain {
    let dir = tempfile::tempdir().unwrap();
    let database = database_for(backend);
    let url = database.as_ref().map(|d| d.url().to_owned());
    let make = args_for(customers, registry);
    let mut domain = start_with(dir, move |dir| on_database(make(dir), url.as_deref())).await;
    domain.database = database;
    domain
}

/// Starts the payment domain on `backend` with `customers` x 2 quarters,
/// serving under `limits`.
pub(crate) async fn start_under(
    backend: Backend,
    customers: u64,
    limits: mesh_runtime::ServeLimits,
) -> TestDomain {
    let registry = nowhere();
    let database = database_for(backend);
    let url = database.as_ref().map(|d| d.url().to_owned());
    let mut domain = start_with(tempfile::tempdir().unwrap(), move |dir| {
        let mut args = on_database(args(dir, customers, &registry), url.as_deref());
        args.domain.limits = limits;
        args
    })
    .await;
    domain.database = database;
    domain
}

/// A fresh PostgreSQL database for `backend`, if it is PostgreSQL.
pub(crate) fn database_for(backend: Backend) -> Option<Arc<TestDatabase>> {
    (backend == Backend::Postgres).then(|| Arc::new(TestDatabase::create()))
}

/// `args` keeping the data in the database at `url`, if one is given.
pub(crate) fn on_database(mut args: ServeArgs, url: Option<&str>) -> ServeArgs {
    if let Some(url) = url {
        args.domain.database = mesh_postgres::DatabaseArgs::for_url(url);
    }
    args
}

fn args_for(customers: u64, registry: &str) -> impl FnOnce(&std::path::Path) -> ServeArgs {
    let registry = registry.to_owned();
    move |dir| args(dir, customers, &registry)
}

/// Starts the payment domain in `dir` with the args `make` gives.
pub(crate) async fn start_with(
    dir: tempfile::TempDir,
    make: impl FnOnce(&std::path::Path) -> ServeArgs,
) -> TestDomain {
    let args = make(dir.path());
    let prepared = mesh_domain_server::prepare(args).await.unwrap();
    let published = Arc::clone(&prepared.published()[0]);
    let product = Arc::clone(&published.product);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(prepared.serve(listener, async {
        let _ = stopped.await;
    }));
    let channel = connect(addr, reader(dir.path())).await;
    let db = dir.path().join("payment.sqlite");
    TestDomain {
        addr,
        client: CardSpendingServiceClient::new(channel),
        product,
        published,
        db,
        dir,
        database: None,
        stop: Some(stop),
    }
}

/// The columns the reference reads compare.
const COMPARED: &str = "bas_yh, seq, tot_use_am, crdsl_use_am, cnf_use_am, auto_am";

impl TestDomain {
    /// Loads `customers` x 2 quarters generated anew (another seed) in
    /// place of the domain's rows, as a reload would.
    pub(crate) async fn reload(&self, customers: u64) {
        let published = Arc::clone(&self.published);
        tokio::task::spawn_blocking(move || {
            let file = &published.declared.file;
            let source = file.source.file(file.folder()).unwrap().path;
            woori_data::shipped::write_source(&source, &Generator { customers, quarters: 2, seed: 8 })
                .unwrap();
            mesh_domain_server::load::load_source(&published, false, mesh_runtime::ingest::Shrink::Any)
                .unwrap();
        })
        .await
        .unwrap();
    }

    /// Every row of the product in key order, read straight from its
    /// database (not through the domain).
    pub(crate) async fn stored_rows(&self) -> Vec<CardSpending> {
        let Some(database) = &self.database else { return rows_in_file(&self.db) };
        let (client, connection) =
            tokio_postgres::connect(database.url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let table: String = client
            .query_one(
                "SELECT data_table FROM payment.mesh_tables WHERE product = 'payment.card_spending'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let rows = client
            .query(&format!("SELECT {COMPARED} FROM payment.{table} ORDER BY bas_yh, seq"), &[])
            .await
            .unwrap();
        rows.iter()
            .map(|r| CardSpending {
                bas_yh: r.get(0),
                seq: r.get(1),
                tot_use_am: r.get(2),
                crdsl_use_am: r.get(3),
                cnf_use_am: r.get(4),
                auto_am: r.get(5),
                ..Default::default()
            })
            .collect()
    }
}

/// A channel to `addr` carrying `credentials`, retried while the server comes up.
pub(crate) async fn connect(addr: std::net::SocketAddr, credentials: Credentials) -> MeshChannel {
    let url = format!("http://{addr}");
    for _ in 0..200 {
        if let Ok(channel) = Channel::from_shared(url.clone()).unwrap().connect().await {
            return MeshChannel::new(&url, channel, credentials).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("domain at {addr} did not come up");
}

/// Every row of the table, read straight from the SQLite file (not through the domain).
pub(crate) fn rows_in_file(db: &std::path::Path) -> Vec<CardSpending> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement =
        conn.prepare(&format!("SELECT {COMPARED} FROM card_spending ORDER BY bas_yh, seq")).unwrap();
    statement
        .query_map([], |r| {
            Ok(CardSpending {
                bas_yh: r.get(0)?,
                seq: r.get(1)?,
                tot_use_am: r.get(2)?,
                crdsl_use_am: r.get(3)?,
                cnf_use_am: r.get(4)?,
                auto_am: r.get(5)?,
                ..Default::default()
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Runs a query to the end, returning the rows and the number of batches.
pub(crate) async fn query_all(
    client: &mut CardSpendingServiceClient<MeshChannel>,
    request: QueryRequest,
) -> Result<(Vec<CardSpending>, usize), tonic::Status> {
    let mut stream = client.query(request).await?.into_inner();
    let mut rows = Vec::new();
    let mut batches = 0;
    while let Some(batch) = stream.message().await? {
        rows.extend(batch.rows);
        batches += 1;
    }
    Ok((rows, batches))
}

/// A query with just a filter.
pub(crate) fn filter(expr: &str) -> QueryRequest {
    QueryRequest { filter: expr.to_owned(), ..Default::default() }
}
