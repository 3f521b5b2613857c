//! `kill -9` of the registry process in the middle of 1,000 changes
//! (endpoint registrations, loads, deprecations, access requests and
//! decisions) while a webhook receiver (Python, first answering 500) and a
//! `Watch` client run: after a restart on the same database each receives
//! the event of every acknowledged change, at least once, in order per
//! product, a duplicate only with the same id and body; the Python
//! Standard Webhooks and CloudEvents SDKs accept every delivery; the
//! receiver's answers are stored nowhere.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::Fixture;
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use mesh_contracts::catalog::subscription_service_client::SubscriptionServiceClient;
use mesh_contracts::catalog::{
    ApproveAgreementRequest, CreateSubscriptionRequest, DataStatus, DeprecateProductRequest,
    DeregisterEndpointRequest, ListSubscriptionsRequest, RenewLeaseRequest, RequestAccessRequest,
    UndeprecateProductRequest, WatchRequest,
};
use mesh_grpc::auth::test_tokens::TestIssuer;
use mesh_grpc::{Credentials, MeshChannel};
use tonic::Code;

const PRODUCTS: [&str; 3] = ["shop.orders", "shop.items", "shop.returns"];
const ENDPOINT: &str = "http://127.0.0.1:6001";
const CHANGES: usize = 1000;
/// The change before which the registry is killed.
const KILL_AT: usize = 400;
/// What the receiver answers 500 to first.
const RECEIVER_FAILURES: usize = 6;

/// The registry as a process of its own, on a fixed port.
struct Registry {
    child: Child,
}

impl Registry {
    fn start(dir: &Path, port: u16, issuer: &TestIssuer) -> Self {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(dir.join("registry.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_catalog-registry"))
            .args(["--addr", &format!("127.0.0.1:{port}"), "--insecure-webhook-targets"])
            .arg("--db")
            .arg(dir.join("catalog.sqlite"))
            .arg("--auth-jwks")
            .arg(&issuer.jwks)
            .args(["--auth-issuer", mesh_grpc::auth::test_tokens::TEST_ISSUER])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python")
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Calls `call` until the registry answers (it may be restarting): the
/// answer, or `None` when a retry is refused because the attempt cut off by
/// the kill had committed (that change was never acknowledged).
macro_rules! acknowledged {
    ($call:expr) => {{
        let started = Instant::now();
        let mut retried = false;
        loop {
            match $call.await {
                Ok(answer) => break Some(answer.into_inner()),
                Err(status)
                    if !matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled) =>
                {
                    assert!(retried, "refused: {status:?}");
                    break None;
                }
                Err(status) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "the registry did not come back: {status:?}"
                    );
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }};
}

/// An event as a receiver saw it: (product, type, what tells it apart).
type Key = (String, String, String);

fn key_of(event: &serde_json::Value) -> Key {
    let data = &event["data"];
    let what = ["message", "load_id", "agreement", "endpoint"]
        .iter()
        .find_map(|field| match &data[field] {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    (
        event["subject"].as_str().unwrap().to_owned(),
        event["type"].as_str().unwrap().to_owned(),
        what.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registry_killed_during_1000_changes_delivers_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::new(dir.path());
    let port = free_port();
    let mut registry = Registry::start(dir.path(), port, &issuer);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ops = Credentials::token(&issuer.token("ops", &["admin"])).unwrap();
    let channel: MeshChannel = common::channel(addr, ops).await;
    let mut catalog = CatalogServiceClient::new(channel.clone());
    let mut access = AccessServiceClient::new(channel.clone());
    for product in PRODUCTS {
        catalog.register_product(Fixture::default().register(product, ENDPOINT)).await.unwrap();
    }

    // The receiver, and a subscription per product (as an admin: every event).
    let records = dir.path().join("deliveries.jsonl");
    let mut receiver = Command::new(python())
        .arg(fixture("webhook_receiver.py"))
        .arg(&records)
        .arg(RECEIVER_FAILURES.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let receiver_port = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(receiver.stdout.take().unwrap()).read_line(&mut line).unwrap();
        line.trim().parse::<u16>().unwrap()
    };
    let mut subscriptions = SubscriptionServiceClient::new(channel.clone());
    let mut secrets = HashMap::new();
    for product in PRODUCTS {
        let path = format!("/hook/{product}");
        let request = CreateSubscriptionRequest {
            product: product.into(),
            url: format!("http://127.0.0.1:{receiver_port}{path}"),
            types: Vec::new(),
        };
        secrets.insert(path, subscriptions.create_subscription(request).await.unwrap().into_inner().secret);
    }

    // A Watch client that resumes after its last event whenever the stream is lost.
    let watched: Arc<Mutex<Vec<mesh_contracts::catalog::Event>>> = Arc::default();
    let start = EventServiceClient::new(channel.clone())
        .list_events(mesh_contracts::catalog::ListEventsRequest {
            after_sequence: 0,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .next_after_sequence;
    let watcher = {
        let (watched, mut events) = (Arc::clone(&watched), EventServiceClient::new(channel.clone()));
        tokio::spawn(async move {
            let mut after = start;
            loop {
                let request = WatchRequest { after_sequence: after, ..Default::default() };
                if let Ok(stream) = events.watch(request).await {
                    let mut stream = stream.into_inner();
                    while let Ok(Some(response)) = stream.message().await {
                        after = response.resume_after;
                        watched.lock().unwrap().extend(response.event);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // The changes; each acknowledged one's event is expected.
    let mut expected: Vec<Key> = Vec::new();
    let loaded_from = mesh_contracts::time::now_ms();
    for n in 0..CHANGES {
        if n == KILL_AT {
            registry.child.kill().unwrap(); // SIGKILL
            registry.child.wait().unwrap();
            registry = Registry::start(dir.path(), port, &issuer);
        }
        let product = PRODUCTS[n % PRODUCTS.len()];
        let key = |kind: &str, what: &str| (product.to_owned(), kind.to_owned(), what.to_owned());
        match (n / PRODUCTS.len()) % 5 {
            0 => {
                let message = format!("change {n}");
                let request = DeprecateProductRequest { name: product.into(), message: message.clone() };
                if acknowledged!(catalog.deprecate_product(request.clone())).is_some() {
                    expected.push(key("mesh.product.deprecated.v1", &message));
                }
            }
            1 => {
                let request = UndeprecateProductRequest { name: product.into() };
                if acknowledged!(catalog.undeprecate_product(request.clone())).is_some() {
                    expected.push(key("mesh.product.undeprecated.v1", ""));
                }
            }
            2 => {
                let load = (n + 1).to_string();
                let data = DataStatus {
                    row_count: n as i64,
                    load_id: n as i64 + 1,
                    last_loaded_time: Some(mesh_contracts::time::timestamp(loaded_from + n as i64)),
                    ..Default::default()
                };
                let renew =
                    RenewLeaseRequest { name: product.into(), endpoint: ENDPOINT.into(), data: Some(data) };
                if acknowledged!(catalog.renew_lease(renew.clone())).is_some() {
                    expected.push(key("mesh.data.loaded.v1", &load));
                }
            }
            3 => {
                let ask = RequestAccessRequest {
                    product: product.into(),
                    purpose: format!("change {n}"),
                    columns: vec!["amount".into()],
                    ..Default::default()
                };
                let Some(asked) = acknowledged!(access.request_access(ask.clone())) else { continue };
                let asked = asked.agreement.unwrap();
                expected.push(key("mesh.access.requested.v1", &asked.name));
                let approve = ApproveAgreementRequest { name: asked.name.clone(), note: String::new() };
                if acknowledged!(access.approve_agreement(approve.clone())).is_some() {
                    expected.push(key("mesh.access.approved.v1", &asked.name));
                }
            }
            _ => {
                let endpoint = format!("http://127.0.0.1:{}", 7000 + n);
                let register = Fixture::default().register(product, &endpoint);
                if acknowledged!(catalog.register_product(register.clone())).is_some() {
                    expected.push(key("mesh.endpoint.serving.v1", &endpoint));
                }
                let gone = DeregisterEndpointRequest { name: product.into(), endpoint: endpoint.clone() };
                if acknowledged!(catalog.deregister_endpoint(gone.clone())).is_some() {
                    expected.push(key("mesh.endpoint.removed.v1", &endpoint));
                }
            }
        }
    }

    // Every acknowledged change's event reaches both, however often.
    let wanted = counts(&expected);
    let delivered = |records: &Path| -> Vec<(String, serde_json::Value, Vec<u8>)> {
        let text = std::fs::read_to_string(records).unwrap_or_default();
        text.lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                let body = base64::engine::general_purpose::STANDARD
                    .decode(record["body"].as_str().unwrap())
                    .unwrap();
                (record["path"].as_str().unwrap().to_owned(), serde_json::from_slice(&body).unwrap(), body)
            })
            .collect()
    };
    let covers =
        |got: &HashMap<Key, usize>| wanted.iter().all(|(key, n)| got.get(key).copied().unwrap_or(0) >= *n);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let unique: HashMap<String, serde_json::Value> = delivered(&records)
            .into_iter()
            .map(|(_, event, _)| (event["id"].as_str().unwrap().to_owned(), event))
            .collect();
        let hooked = counts(&unique.values().map(key_of).collect::<Vec<_>>());
        let streamed = watched
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                let mut event = serde_json::json!({ "subject": e.subject, "type": e.r#type });
                event["data"] = serde_json::from_str(&e.data).unwrap();
                key_of(&event)
            })
            .collect::<Vec<_>>();
        if covers(&hooked) && covers(&counts(&streamed)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every acknowledged change arrived: see {}",
            dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    watcher.abort();

    // In order per product; a duplicate has the same id and the same body.
    let all = delivered(&records);
    let mut first: HashMap<String, Vec<u8>> = HashMap::new();
    let mut last_sequence: HashMap<String, i64> = HashMap::new();
    for (path, event, body) in &all {
        let id = event["id"].as_str().unwrap().to_owned();
        if let Some(before) = first.get(&id) {
            assert_eq!(before, body, "a redelivery of {id} differs");
            continue;
        }
        first.insert(id, body.clone());
        assert_eq!(path, &format!("/hook/{}", event["subject"].as_str().unwrap()));
        let sequence: i64 = event["sequence"].as_str().unwrap().parse().unwrap();
        let last = last_sequence.entry(path.clone()).or_default();
        assert!(sequence > *last, "{path}: event {sequence} after {last}");
        *last = sequence;
    }
    // The Watch client saw each event once, in order.
    let watched = watched.lock().unwrap().clone();
    assert!(watched.windows(2).all(|w| w[0].sequence < w[1].sequence), "Watch repeated or reordered events");
    assert_eq!(watched.iter().map(|e| &e.id).collect::<HashSet<_>>().len(), watched.len());

    // The SDKs accept every delivery, and refuse it tampered with or late.
    let output = Command::new(python())
        .arg(fixture("verify_webhooks.py"))
        .arg(&records)
        .arg(serde_json::to_string(&secrets).unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), all.len());

    // The receiver's answers to failed deliveries are stored nowhere.
    let listed =
        subscriptions.list_subscriptions(ListSubscriptionsRequest::default()).await.unwrap().into_inner();
    assert!(!format!("{listed:?}").contains("receiver-internal-detail"));
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("catalog.sqlite") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.windows(26).any(|w| w == b"receiver-internal-detail-7"), "{}", path.display());
        }
    }
    let _ = receiver.kill();
    let _ = receiver.wait();
}

fn counts(keys: &[Key]) -> HashMap<Key, usize> {
    let mut counted = HashMap::new();
    for key in keys {
        *counted.entry(key.clone()).or_default() += 1;
    }
    counted
}
