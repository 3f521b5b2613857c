//! The CLI when parts of the mesh are down: the registry (cache, --endpoint)
//! and a domain (advice naming the endpoint and its last known status).

use crate::common;

use common::{Mesh, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn query_works_without_the_registry() {
    let mesh = Mesh::start(100, false).await;
    let query = ["query", "payment.card_spending", "--select", "seq", "--limit", "4", "--format", "csv"];

    // Described, then queried (a lookup without the columns): the entry is
    // cached, the columns too.
    let described = mesh.mesh().args(["describe", "payment.card_spending"]).output().unwrap();
    assert!(described.status.success(), "{}", stderr(&described));
    let fresh = mesh.mesh().args(query).output().unwrap();
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    mesh.stop_registry().await;

    let offline = mesh.mesh().args(["describe", "payment.card_spending"]).output().unwrap();
    assert!(offline.status.success(), "{}", stderr(&offline));
    let amount_columns = |out: &str| out.lines().filter(|l| l.contains("_am") && l.contains("KRW")).count();
    assert_eq!(amount_columns(&stdout(&described)), 45, "{}", stdout(&described));
    assert_eq!(amount_columns(&stdout(&offline)), 45, "{}", stdout(&offline));

    let cached = mesh.mesh().args(query).output().unwrap();
    assert!(cached.status.success(), "{}", stderr(&cached));
    assert_eq!(stdout(&cached), stdout(&fresh));
    assert!(
        stderr(&cached).contains("the registry is unreachable; using the local catalog cache"),
        "{}",
        stderr(&cached)
    );

    // Never seen and not cached: refused with advice, unless --endpoint is given.
    let unseen = mesh.mesh().args(["query", "customer.profiles", "--limit", "1"]).output().unwrap();
    assert_eq!(unseen.status.code(), Some(1));
    let text = stderr(&unseen);
    assert!(text.contains("cannot reach the catalog registry") && text.contains("pass --endpoint"), "{text}");

    let empty_cache = tempfile::tempdir().unwrap();
    let direct = mesh
        .mesh()
        .env("MESH_CACHE_DIR", empty_cache.path())
        .args(query)
        .args(["--endpoint", &mesh.payment_url])
        .output()
        .unwrap();
    assert!(direct.status.success(), "{}", stderr(&direct));
    assert_eq!(stdout(&direct), stdout(&fresh));
    assert!(stderr(&direct).contains("using the contract"), "{}", stderr(&direct));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_domain_that_is_down_is_named_with_its_status() {
    use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
    use mesh_contracts::catalog::{GetProductRequest, RegisterProductRequest};
    let mesh = Mesh::start(100, false).await;
    // A payment domain that crashed: registered, lease still valid, nothing listening.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let crashed = format!("http://{nowhere}");
    let mut catalog =
        CatalogServiceClient::new(mesh.channel_as(&mesh.registry, "payment-domain", &["service:payment"]));
    let entry = catalog
        .get_product(GetProductRequest {
            name: "payment.card_spending".into(),
            version: 0,
            known_fingerprint: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let product = entry.product.unwrap();
    catalog
        .register_product(RegisterProductRequest {
            product_id: product.product_id.clone(),
            domain: product.domain.clone(),
            service: product.service.clone(),
            endpoint: crashed.clone(),
            descriptor_set: entry.descriptor_set,
            major_version: 1,
            data: None,
        })
        .await
        .unwrap();
    mesh.stop_domains().await; // the live endpoint deregisters; the crashed one stays

    let output = mesh.mesh().args(["query", "payment.card_spending", "--limit", "1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains(&format!(
            "cannot reach the domain at {crashed} (catalog status: serving, last renewed"
        )),
        "{text}"
    );

    let health = mesh.mesh().arg("health").output().unwrap();
    assert_eq!(health.status.code(), Some(1), "health fails while an endpoint is down");
    assert!(stdout(&health).contains("unreachable"), "{}", stdout(&health));
    assert!(stderr(&health).contains("not serving"), "{}", stderr(&health));
}
