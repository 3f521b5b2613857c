//! Two replicas of the payment domain over one database (a SQLite file, or
//! PostgreSQL), both registered as endpoints of payment.card_spending:
//! `mesh query` picks one, and when that one is killed with `kill -9` in the
//! middle of an export it goes on on the other from its last resume token
//! (for `--format arrow`, the Flight ticket with the last batch's resume
//! token): every row exactly once. A load killed half-way leaves the
//! previous rows served.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightDescriptor, FlightInfo};
use futures_util::TryStreamExt;
use mesh_grpc::Credentials;

use mesh_e2e::{Running, workspace_binary};
use mesh_grpc::auth::issuer::{DEFAULT_AUDIENCE, LocalIssuer};
use mesh_postgres::testing::TestDatabase;

/// Customers of the SQLite replicas' data, each in two quarters.
const CUSTOMERS: u64 = 25_000;
const QUARTERS: u64 = 2;

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// The issuer's admin token and the pseudonym key in `dir`, for the
/// services and the CLI of a test.
fn secrets(dir: &Path) -> String {
    let issuer = LocalIssuer::open_or_create(&dir.join("issuer")).unwrap();
    mesh_grpc::private_files::create_secret(&dir.join("pseudonym.key")).unwrap();
    issuer.issue("ops", &["admin".into()], Duration::from_secs(600), DEFAULT_AUDIENCE).unwrap()
}

/// A registry keeping its catalog in `dir/name`, trusting the issuer in `dir`; its URL.
fn registry(dir: &Path, name: &str, args: &[&str]) -> (Running, String) {
    let mut command = Command::new(workspace_binary("catalog-registry"));
    command
        .args(["--addr", "127.0.0.1:0", "--auth-issuer", "mesh-local"])
        .args(args)
        .arg("--auth-jwks")
        .arg(dir.join("issuer/jwks.json"))
        .arg("--token-exchange-issuer-dir")
        .arg(dir.join("issuer"))
        .args(["--data-dir", &path(&dir.join(name))]);
    let (running, addr) = mesh_e2e::serve(command);
    (running, format!("http://{addr}"))
}

/// `mesh --registry registries` with `token`, its cache and config in `dir`.
fn mesh(dir: &Path, token: &str, registries: &str) -> Command {
    let mut command = Command::new(workspace_binary("mesh"));
    command
        .args(["--registry", registries, "--timeout", "3s"])
        .env("MESH_TOKEN", token)
        .env("MESH_CACHE_DIR", dir.join("cache"))
        .env("MESH_CONFIG_DIR", dir.join("config"))
        .env("NO_COLOR", "1");
    command
}

/// A payment replica over the data in `dir`, registering at `registry`.
fn replica(dir: &Path, registry: &str) -> (Running, String) {
    replica_with(dir, registry, &["--addr", "127.0.0.1:0"])
}

/// A payment replica with `args` besides the usual ones.
fn replica_with(dir: &Path, registry: &str, args: &[&str]) -> (Running, String) {
    mesh_e2e::serve(payment(dir, registry, CUSTOMERS, args))
}

/// The payment domain's command with `customers` generated, `args` besides the usual ones.
fn payment(dir: &Path, registry: &str, customers: u64, args: &[&str]) -> Command {
    let mut command = Command::new(workspace_binary("mesh-domain"));
    command
        .args(args)
        .args(["--registry", registry, "--auth-issuer", "mesh-local"])
        .args([
            "--product",
            &mesh_e2e::payment_product(&dir.join(format!("c{customers}")), customers, QUARTERS as u32),
        ])
        .arg("--data-dir")
        .arg(dir.join("payment"))
        .arg("--auth-jwks")
        .arg(dir.join("issuer/jwks.json"))
        .arg("--issuer-dir")
        .arg(dir.join("issuer"))
        .arg("--pseudonym-key")
        .arg(dir.join("pseudonym.key"));
    command
}

/// The server port of the established connection of process `pid` to one
/// of `ports`.
fn connected_port(pid: u32, ports: &[u16]) -> Option<u16> {
    let output = Command::new("ss").args(["-tnpH", "state", "established"]).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().filter(|line| line.contains(&format!("pid={pid},"))).find_map(|line| {
        let peer = line.split_whitespace().nth(3)?;
        let port: u16 = peer.rsplit(':').next()?.parse().ok()?;
        ports.contains(&port).then_some(port)
    })
}

#[test]
fn a_query_goes_on_on_another_replica_when_its_replica_is_killed() {
    killed_mid_export(CUSTOMERS, &[], "csv");
}

/// A whole-product Flight read comes in two parts, far larger than what
/// the connections buffer: each part goes on on the other replica on its own.
const IN_PARTS: [&str; 2] = ["--flight-parts", "2"];
const PARTED_CUSTOMERS: u64 = 100_000;

#[test]
fn an_arrow_export_goes_on_on_another_replica_from_its_ticket_when_its_replica_is_killed() {
    killed_mid_export(PARTED_CUSTOMERS, &IN_PARTS, "arrow");
}

#[test]
fn a_sql_query_goes_on_on_another_replica_from_its_ticket_when_its_replica_is_killed() {
    killed_mid_export(PARTED_CUSTOMERS, &IN_PARTS, "sql");
}

#[test]
fn on_postgres_a_400000_row_export_goes_on_on_another_replica_when_its_replica_is_killed() {
    let database = TestDatabase::create();
    killed_mid_export(200_000, &["--database-url", database.url()], "csv");
}

/// The (bas_yh, seq) keys of an export in `format`, header left out.
fn keys(format: &str, output: &[u8]) -> Vec<String> {
    if format == "arrow" {
        use arrow_array::cast::AsArray;
        let reader = arrow_ipc::reader::StreamReader::try_new(output, None).unwrap();
        let mut keys = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let (quarter, seq) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>());
            keys.extend((0..batch.num_rows()).map(|i| format!("{},{}", quarter.value(i), seq.value(i))));
        }
        return keys;
    }
    let text = String::from_utf8_lossy(output);
    let mut lines = text.lines();
    assert!(lines.next().unwrap_or_default().starts_with("bas_yh,seq,tot_use_am,"), "the CSV header");
    lines.map(|row| row.splitn(3, ',').take(2).collect::<Vec<_>>().join(",")).collect()
}

/// Two replicas with `customers` x 2 quarters and `args`; one is killed
/// with `kill -9` while an export in `format` reads from it (`sql`: the
/// CSV of `mesh sql`, whose engine reads over Flight).
fn killed_mid_export(customers: u64, args: &[&str], format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let token = secrets(dir.path());
    let (_registry, registry) = registry(dir.path(), "registry", &[]);
    let mesh = |args: &[&str]| {
        let mut command = mesh(dir.path(), &token, &registry);
        command.args(args);
        command
    };
    let replica = |dir: &Path, registry: &str| {
        mesh_e2e::serve(payment(dir, registry, customers, &[&["--addr", "127.0.0.1:0"], args].concat()))
    };

    // The first replica loads the data; the second finds it loaded.
    let (first, first_addr) = replica(dir.path(), &registry);
    let started = Instant::now();
    while !mesh(&["query", "payment.card_spending", "--limit", "1"]).output().unwrap().status.success() {
        assert!(started.elapsed() < Duration::from_secs(300), "the first replica never served");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (second, second_addr) = replica(dir.path(), &registry);
    let started = Instant::now();
    loop {
        let described = mesh(&["describe", "payment.card_spending", "--format", "json"]).output().unwrap();
        let product: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap_or_default();
        let serving = product["endpoints"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["status"] == "SERVING_STATUS_SERVING").count());
        if serving == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the second replica never registered: {product}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let port = |addr: &str| addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let ports = [port(&first_addr), port(&second_addr)];

    // An export starts on one replica; that replica is killed mid-stream.
    // Every column: far more than the connection's flow-control windows
    // hold, so the replica is still sending when it dies.
    let export = match format {
        "sql" => vec!["sql", "--format", "csv", r#"SELECT * FROM "payment.card_spending""#],
        _ => vec!["query", "payment.card_spending", "--format", format],
    };
    let mut export = mesh(&export).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = export.stdout.take().unwrap();
    let mut received = vec![0u8; 2 << 20];
    stdout.read_exact(&mut received).unwrap();
    // The export is paused on its full pipe: find its replica and kill it.
    let serving = connected_port(export.id(), &ports).expect("the export's connection to a replica");
    let mut replicas = [first, second];
    let victim = if serving == ports[0] { 0 } else { 1 };
    replicas[victim].0.kill().unwrap(); // SIGKILL
    replicas[victim].0.wait().unwrap();
    stdout.read_to_end(&mut received).unwrap();
    let output = export.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("continuing on"), "the export went on on the other replica: {stderr}");

    // Every row exactly once.
    let keys = keys(format, &received);
    assert_eq!(keys.len() as u64, customers * QUARTERS, "{stderr}");
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), keys.len(), "no row repeated");
}

/// The rows of each endpoint of `info`, each read at the first of its
/// locations that answers, with the location that gave them.
async fn read_endpoints(info: &FlightInfo, credentials: &Credentials) -> Vec<(String, usize)> {
    let mut read = Vec::new();
    for endpoint in &info.endpoint {
        let ticket = endpoint.ticket.clone().expect("a ticket");
        let mut rows = None;
        for location in &endpoint.location {
            let url = location.uri.replacen("grpc+tcp://", "http://", 1);
            let mut client = FlightServiceClient::new(
                mesh_grpc::client::channel(&url, Duration::from_secs(5), credentials).unwrap(),
            );
            let Ok(stream) = client.do_get(ticket.clone()).await else { continue };
            let flight = stream.into_inner().map_err(FlightError::from);
            let batches: Vec<_> =
                FlightRecordBatchStream::new_from_flight_data(flight).try_collect().await.unwrap();
            rows = Some((url, batches.iter().map(|b| b.num_rows()).sum()));
            break;
        }
        read.push(rows.unwrap_or_else(|| panic!("no location of {:?} answered", endpoint.location)));
    }
    read
}

/// A Flight endpoint names every serving replica of the product, the
/// parts going first to each in turn: a Flight client whose replica dies
/// redeems the same tickets at another, every row once.
#[test]
fn flight_endpoints_name_every_serving_replica_and_another_redeems_their_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let token = secrets(dir.path());
    let (_registry, registry) = registry(dir.path(), "registry", &[]);
    let in_parts = [&["--addr", "127.0.0.1:0"][..], &IN_PARTS].concat();
    let replica = || mesh_e2e::serve(payment(dir.path(), &registry, PARTED_CUSTOMERS, &in_parts));
    let (_first, first_addr) = replica();
    let started = Instant::now();
    while !mesh(dir.path(), &token, &registry)
        .args(["query", "payment.card_spending", "--limit", "1"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(started.elapsed() < Duration::from_secs(300), "the first replica never served");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The second learns of the first when it registers.
    let (mut second_replica, second_addr) = replica();
    let issuer = Arc::new(LocalIssuer::open(&dir.path().join("issuer")).unwrap());
    let audience = mesh_grpc::auth::exchange::domain_audience("payment");
    let credentials = Credentials::issued_for(
        issuer,
        "owner-reader",
        &["owner:payment"],
        Duration::from_secs(600),
        &audience,
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (first, second_url) = (format!("grpc+tcp://{first_addr}"), format!("http://{second_addr}"));
    let started = Instant::now();
    let info = loop {
        let info = runtime.block_on(async {
            let channel =
                mesh_grpc::client::channel(&second_url, Duration::from_secs(5), &credentials).unwrap();
            let descriptor = FlightDescriptor::new_path(vec!["payment.card_spending".into()]);
            FlightServiceClient::new(channel).get_flight_info(descriptor).await.map(|r| r.into_inner())
        });
        if let Ok(info) = info
            && info.endpoint.iter().all(|e| e.location.iter().any(|l| l.uri == first))
        {
            break info;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the first replica is never named");
        std::thread::sleep(Duration::from_millis(200));
    };
    // A part for each replica first, the other after it.
    let locations: Vec<Vec<&str>> =
        info.endpoint.iter().map(|e| e.location.iter().map(|l| l.uri.as_str()).collect()).collect();
    let second = format!("grpc+tcp://{second_addr}");
    assert_eq!(locations, [[second.as_str(), first.as_str()], [first.as_str(), second.as_str()]]);
    // The replica that issued the tickets dies; the other redeems them.
    second_replica.0.kill().unwrap();
    second_replica.0.wait().unwrap();
    let read = runtime.block_on(read_endpoints(&info, &credentials));
    let first_url = format!("http://{first_addr}");
    assert!(read.iter().all(|(url, _)| *url == first_url), "{read:?}");
    let rows: usize = read.iter().map(|(_, rows)| rows).sum();
    assert_eq!(rows as u64, PARTED_CUSTOMERS * QUARTERS, "every row once: {read:?}");
}

#[test]
fn a_domain_advertises_several_urls_and_clients_use_one_that_answers() {
    let dir = tempfile::tempdir().unwrap();
    let token = secrets(dir.path());
    let (_registry, registry) = registry(dir.path(), "registry", &[]);
    // A port of its own, and an address nothing answers on (as a name only
    // a container network resolves would be, seen from the host).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let advertised = format!("http://127.0.0.1:{nowhere},http://127.0.0.1:{port}");
    let addr = format!("127.0.0.1:{port}");
    let (_payment, _) =
        replica_with(dir.path(), &registry, &["--addr", &addr, "--advertise-url", &advertised]);
    let mesh = |args: &[&str]| mesh(dir.path(), &token, &registry).args(args).output().unwrap();
    let started = Instant::now();
    let described = loop {
        let output = mesh(&["describe", "payment.card_spending", "--format", "json"]);
        let product: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if product["endpoints"].as_array().is_some_and(|e| e.len() == 2) {
            break product;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "never registered: {product}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let uris: Vec<&str> =
        described["endpoints"].as_array().unwrap().iter().map(|e| e["uri"].as_str().unwrap()).collect();
    assert_eq!(uris.len(), 2);
    assert!(
        uris.contains(&format!("http://127.0.0.1:{nowhere}").as_str())
            && uris.contains(&format!("http://127.0.0.1:{port}").as_str())
    );
    // Every query succeeds; the unreachable URL, when tried first, is left for the other.
    let mut went_on = false;
    for _ in 0..20 {
        let output =
            mesh(&["query", "payment.card_spending", "--limit", "3", "--format", "csv", "--select", "seq"]);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 4);
        went_on |= stderr.contains(&format!("note: http://127.0.0.1:{nowhere} failed after 0 rows"));
        if went_on {
            break;
        }
    }
    assert!(went_on, "the unreachable URL was never tried first in 20 queries");
}

#[test]
fn domains_and_the_cli_fail_over_to_the_next_registry() {
    let dir = tempfile::tempdir().unwrap();
    let token = secrets(dir.path());
    let (mut first, first_url) = registry(dir.path(), "first", &["--lease-ttl", "3s"]);
    let (_second, second_url) = registry(dir.path(), "second", &["--lease-ttl", "3s"]);
    let both = format!("{first_url},{second_url}");
    let (_payment, _) = replica(dir.path(), &both);
    let mesh =
        |registries: &str, args: &[&str]| mesh(dir.path(), &token, registries).args(args).output().unwrap();
    let query = ["query", "payment.card_spending", "--limit", "2", "--format", "csv", "--select", "seq"];
    let until = |registries: &str, what: &str| {
        let started = Instant::now();
        loop {
            let output = mesh(registries, &query);
            if output.status.success() {
                return output;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{what}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    until(&first_url, "the domain registers with the first registry");
    assert!(!mesh(&second_url, &query).status.success(), "the second has not heard of it yet");

    // The first registry dies: the domain registers with the second, and the
    // CLI, given both, uses the second.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    until(&second_url, "the domain fails over to the second registry");
    let output = mesh(&both, &query);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 3);
    assert!(stderr.contains(&format!("note: the registry at {first_url} cannot be reached")), "{stderr}");
    assert!(stderr.contains(&format!("using {second_url}")), "{stderr}");
}

#[test]
fn on_postgres_a_load_killed_half_way_leaves_the_previous_rows_served() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let token = secrets(dir.path());
    let (_registry, registry) = registry(dir.path(), "registry", &[]);
    let on_database = ["--addr", "127.0.0.1:0", "--database-url", database.url()];
    let (_serving, _) = mesh_e2e::serve(payment(dir.path(), &registry, 2_000, &on_database));
    let export = || {
        let output = mesh(dir.path(), &token, &registry)
            .args(["query", "payment.card_spending", "--format", "csv"])
            .output()
            .unwrap();
        output.status.success().then(|| String::from_utf8(output.stdout).unwrap())
    };
    let started = Instant::now();
    let before = loop {
        if let Some(rows) = export() {
            break rows;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the domain never served");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(before.lines().count(), 4_001);

    // Another process of the domain reloads with far more rows and is
    // killed with `kill -9` while its COPY runs.
    let mut loader = payment(dir.path(), &registry, 300_000, &[&on_database[..], &["--reload"]].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !sql(database.url(), "SELECT query FROM pg_stat_activity WHERE query LIKE 'COPY %'")
        .iter()
        .any(|q| q.contains("card_spending_"))
    {
        assert!(started.elapsed() < Duration::from_secs(120), "the load never started its COPY");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    loader.kill().unwrap(); // SIGKILL
    loader.wait().unwrap();

    // The rows served are those before, and nothing of the load is left.
    assert_eq!(export().expect("the domain still serves"), before);
    let started = Instant::now();
    while sql(database.url(), "SELECT tablename FROM pg_tables WHERE tablename LIKE 'card_spending_%'").len()
        != 1
    {
        assert!(started.elapsed() < Duration::from_secs(30), "the half-loaded table stayed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first column of each row `query` returns, as text.
fn sql(url: &str, query: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let rows = client.simple_query(query).await.unwrap();
        rows.iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    })
}

#[test]
fn on_postgres_registry_replicas_serve_one_catalog_through_a_fail_over() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let token = secrets(dir.path());
    let on_database = ["--database-url", database.url()];
    let (mut first, first_url) = registry(dir.path(), "first", &on_database);
    let (_second, second_url) = registry(dir.path(), "second", &on_database);
    let both = format!("{first_url},{second_url}");
    let (_payment, _) = replica(dir.path(), &first_url);
    let mesh =
        |registries: &str, args: &[&str]| mesh(dir.path(), &token, registries).args(args).output().unwrap();
    let query = ["query", "payment.card_spending", "--limit", "2", "--format", "csv", "--select", "seq"];
    let started = Instant::now();
    while !mesh(&first_url, &query).status.success() {
        assert!(started.elapsed() < Duration::from_secs(120), "the domain never registered");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The domain registered with the first only; the second serves the same catalog.
    let output = mesh(&second_url, &query);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // The first dies: the CLI, given both, goes on with the second at once.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let output = mesh(&both, &query);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 3);
    assert!(stderr.contains(&format!("using {second_url}")), "{stderr}");
}
