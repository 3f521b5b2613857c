//! Shared set-up of the registry's integration tests: a real registry on an
//! ephemeral port over a real SQLite file or a real PostgreSQL database,
//! trusting a key made for the test (its client calls as an admin), and
//! product contracts compiled from proto source with protox.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use catalog_registry::webhooks::WebhookArgs;
use catalog_registry::{Clock, RegistryConfig};
use mesh_contracts::catalog::RegisterProductRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_grpc::auth::test_tokens::TestIssuer;
use mesh_grpc::{Credentials, MeshChannel};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// How long webhook deliveries in tests may fail before their
/// subscription is disabled.
pub(crate) const WEBHOOKS_GIVE_UP: Duration = Duration::from_secs(4);

/// How registries in tests deliver webhooks: to receivers on loopback,
/// giving up after [`WEBHOOKS_GIVE_UP`].
fn test_webhooks() -> WebhookArgs {
    WebhookArgs {
        insecure_webhook_targets: true,
        webhook_disable_after: WEBHOOKS_GIVE_UP,
        ..Default::default()
    }
}

pub(crate) use mesh_postgres::testing::{Backend, backend};

/// Runs `test` with the registries it starts on PostgreSQL.
pub(crate) async fn on_postgres<F: std::future::Future>(test: F) -> F::Output {
    mesh_postgres::testing::with_backend(Backend::Postgres, test).await
}

/// A registry serving on `127.0.0.1:0`, stopped when dropped.
pub(crate) struct TestRegistry {
    pub addr: std::net::SocketAddr,
    /// A client calling as an admin.
    pub client: CatalogServiceClient<MeshChannel>,
    /// The issuer the registry trusts.
    pub issuer: TestIssuer,
    /// The web catalog's one-time sign-in links.
    pub links: catalog_registry::web::SignInLinks,
    /// The PostgreSQL database, when the test runs on one.
    pub database: Option<std::sync::Arc<mesh_postgres::testing::TestDatabase>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestRegistry {
    /// Starts a registry on `db` with leases of `lease_ttl`.
    pub(crate) async fn start(db: &Path, lease_ttl: Duration) -> Self {
        Self::start_with_clock(db, lease_ttl, Clock::system()).await
    }

    /// Starts a registry that tells time by `clock`.
    pub(crate) async fn start_with_clock(db: &Path, lease_ttl: Duration, clock: Clock) -> Self {
        let database = (backend() == Backend::Postgres)
            .then(|| std::sync::Arc::new(mesh_postgres::testing::TestDatabase::create()));
        let url = database.as_ref().map(|d| d.url().to_owned());
        Self::launch(db, lease_ttl, clock, database, url).await
    }

    /// Starts a registry on SQLite that refuses webhooks to private
    /// addresses, as registries do by default.
    pub(crate) async fn start_refusing_private_webhooks(db: &Path) -> Self {
        let strict = WebhookArgs { insecure_webhook_targets: false, ..test_webhooks() };
        Self::launch_with(db, Duration::from_secs(30), Clock::system(), (None, None), strict).await
    }

    /// A registry keeping its catalog on the PostgreSQL server at `url`.
    pub(crate) async fn on_url(dir: &Path, url: &str) -> Self {
        Self::launch(
            &dir.join("unused.sqlite"),
            Duration::from_secs(30),
            Clock::system(),
            None,
            Some(url.into()),
        )
        .await
    }

    /// Another registry over the same PostgreSQL database as `self` (a
    /// replica), with its files (and its issuer) in `dir`.
    pub(crate) async fn replica(&self, dir: &Path, lease_ttl: Duration) -> Self {
        let database = self.database.clone().expect("replicas share a PostgreSQL database");
        let url = Some(database.url().to_owned());
        Self::launch(&dir.join("unused.sqlite"), lease_ttl, Clock::system(), Some(database), url).await
    }

    async fn launch(
        db: &Path,
        lease_ttl: Duration,
        clock: Clock,
        database: Option<std::sync::Arc<mesh_postgres::testing::TestDatabase>>,
        url: Option<String>,
    ) -> Self {
        Self::launch_with(db, lease_ttl, clock, (database, url), test_webhooks()).await
    }

    async fn launch_with(
        db: &Path,
        lease_ttl: Duration,
        clock: Clock,
        (database, url): (Option<std::sync::Arc<mesh_postgres::testing::TestDatabase>>, Option<String>),
        webhooks: WebhookArgs,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = TestIssuer::new(db.parent().unwrap());
        let links = catalog_registry::web::SignInLinks::default();
        let config = RegistryConfig {
            addr,
            data_dir: db.parent().unwrap().to_path_buf(),
            db: url.is_none().then(|| db.to_path_buf()),
            database: url.as_deref().map(mesh_postgres::DatabaseArgs::for_url).unwrap_or_default(),
            lease_ttl,
            events: Default::default(),
            webhooks,
            tls: Default::default(),
            client_tls: Default::default(),
            web: catalog_registry::web::WebArgs { sign_in_links: links.clone(), ..Default::default() },
            token_exchange_issuer_dir: None,
            service_tokens: Vec::new(),
            insecure_plaintext_endpoints: false,
            auth: issuer.auth_args(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            catalog_registry::serve_with_clock(
                &config,
                listener,
                async {
                    let _ = stopped.await;
                },
                clock,
            )
            .await
            .expect("registry serves");
        });
        let admin = Credentials::token(&issuer.token("test-admin", &["admin"])).unwrap();
        let client = CatalogServiceClient::new(channel(addr, admin).await);
        Self { addr, client, issuer, links, database, stop: Some(stop), task: Some(task) }
    }

    /// The rows of `sql`, as text, read straight from the catalog's
    /// database (the SQLite file `db`, or the PostgreSQL database).
    pub(crate) async fn stored(&self, db: &Path, sql: &str) -> Vec<Vec<String>> {
        let Some(database) = &self.database else {
            let conn = rusqlite::Connection::open(db).unwrap();
            let mut statement = conn.prepare(sql).unwrap();
            let width = statement.column_count();
            return statement
                .query_map([], |row| {
                    (0..width)
                        .map(|i| {
                            Ok(match row.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                                other => format!("{other:?}"),
                            })
                        })
                        .collect()
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
        };
        let (client, connection) =
            tokio_postgres::connect(database.url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute("SET search_path = registry").await.unwrap();
        client
            .simple_query(sql)
            .await
            .unwrap()
            .iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).unwrap_or_default().to_owned()).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// A token of `subject` with `roles`, signed by the trusted issuer.
    pub(crate) fn token(&self, subject: &str, roles: &[&str]) -> String {
        self.issuer.token(subject, roles)
    }

    /// A client calling as `subject` with `roles`.
    pub(crate) async fn client_as(&self, subject: &str, roles: &[&str]) -> CatalogServiceClient<MeshChannel> {
        let credentials = Credentials::token(&self.token(subject, roles)).unwrap();
        CatalogServiceClient::new(channel(self.addr, credentials).await)
    }

    /// Stops the registry and waits until it has shut down.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A channel to `addr` carrying `credentials`, retried briefly while the server comes up.
pub(crate) async fn channel(addr: std::net::SocketAddr, credentials: Credentials) -> MeshChannel {
    let uri = format!("http://{addr}");
    for _ in 0..100 {
        if let Ok(channel) = Channel::from_shared(uri.clone()).unwrap().connect().await {
            return MeshChannel::new(&uri, channel, credentials).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("registry at {addr} did not come up");
}

/// The workspace's `proto/` folder.
pub(crate) fn proto_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto")
}

/// Compiles `source` as `fixture/<file>` (importing the mesh protos) into an
/// encoded FileDescriptorSet with custom options kept.
pub(crate) fn compile(file: &str, source: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixture").join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, source).unwrap();
    let mut compiler = protox::Compiler::new([dir.path().to_path_buf(), proto_root()]).unwrap();
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file(format!("fixture/{file}")).unwrap();
    compiler.encode_file_descriptor_set()
}

/// The parts of a fixture product's contract that tests vary.
#[derive(Clone)]
pub(crate) struct Fixture {
    /// Proto package, e.g. `shop.orders.v1`.
    pub package: String,
    /// Service name within the package.
    pub service: String,
    /// Fields of the row message `Order`, as proto source.
    pub fields: String,
    /// Extra RPCs of the service, as proto source.
    pub extra_methods: String,
    /// Body of the `(mesh.product.v1.product)` option.
    pub options: String,
}

impl Default for Fixture {
    fn default() -> Self {
        Self {
            package: "shop.orders.v1".into(),
            service: "OrdersService".into(),
            fields: ORDER_FIELDS.into(),
            extra_methods: String::new(),
            options: ORDER_OPTIONS.into(),
        }
    }
}

/// The row fields of the default fixture: three annotated columns.
pub(crate) const ORDER_FIELDS: &str = r#"
  // The customer number.
  string customer_id = 1 [(mesh.product.v1.column) = {
    description: "Customer number", classification: CLASSIFICATION_PII_IDENTIFIER, source_column: "CUST_NO"
  }];
  // The order amount.
  int64 amount = 2 [(mesh.product.v1.column) = {
    description: "Order amount", classification: CLASSIFICATION_PUBLIC, source_column: "ORD_AM", unit: "KRW"
  }];
  // Province of delivery.
  string province = 3 [(mesh.product.v1.column) = {
    classification: CLASSIFICATION_QUASI_IDENTIFIER, source_column: "SIDO"
  }];
"#;

/// The product options of the default fixture.
pub(crate) const ORDER_OPTIONS: &str = r#"
    title: "Orders per customer"
    owner_team: "Shop Data Team"
    owner_contact: "shop-data@example.com"
    purpose: "Answers how much each customer orders, by province"
    source: "Order system nightly extract"
    policy: "Internal use; customer_id is personal data"
    freshness: "daily by 06:00 KST"
    tags: ["orders", "spending"]
"#;

impl Fixture {
    /// The full name of the fixture's product service.
    pub(crate) fn service_name(&self) -> String {
        format!("{}.{}", self.package, self.service)
    }

    /// The proto source of the fixture.
    pub(crate) fn source(&self) -> String {
        let Fixture { package, service, fields, extra_methods, options } = self;
        format!(
            r#"syntax = "proto3";
package {package};
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";

// One order of a customer.
message Order {{
{fields}
}}

// A batch of orders.
message QueryResponse {{
  repeated Order rows = 1;
  string resume_token = 2;
}}

// Request of the extra export method.
message ExportRequest {{}}

// Response of the extra export method.
message ExportResponse {{}}

// Orders placed by customers.
service {service} {{
  option (mesh.product.v1.product) = {{
{options}
  }};
  // Streams orders.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
{extra_methods}
}}
"#
        )
    }

    /// The encoded descriptor set of the fixture.
    pub(crate) fn descriptor_set(&self) -> Vec<u8> {
        let file = format!("{}.proto", self.package.replace('.', "_"));
        compile(&file, &self.source())
    }

    /// A registration of the fixture as `product_id` served at `endpoint`.
    pub(crate) fn register(&self, product_id: &str, endpoint: &str) -> RegisterProductRequest {
        RegisterProductRequest {
            product_id: product_id.into(),
            domain: product_id.split('.').next().unwrap().into(),
            service: self.service_name(),
            endpoint: endpoint.into(),
            descriptor_set: self.descriptor_set(),
            major_version: 0,
            data: None,
        }
    }
}
