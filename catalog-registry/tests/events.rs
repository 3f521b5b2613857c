//! The event log in a real registry, on both backends: every change that
//! commits has its event, in order, and a refused one has none; `Watch`
//! streams them live and resumes after a sequence number with no gap and no
//! duplicate; `ListEvents` and the HTTP feed page through the same log; an
//! analyst sees the catalog's events and its own agreements' only, the same
//! whatever other consumers do (two worlds that differ only in another
//! consumer's requests give it the same events).

use crate::common;

mesh_postgres::on_both_backends!(
    every_change_has_its_event_in_order_and_watch_resumes_exactly,
    an_analyst_sees_its_own_agreements_whatever_others_do,
    the_feed_is_a_cloudevents_batch_and_bad_input_is_named,
    loads_and_quality_show_only_to_the_products_readers,
    endpoints_coming_and_going_and_superseded_agreements_are_reported,
    stale_endpoints_and_ending_agreements_are_reported_once_to_their_audience,
);

use std::time::Duration;

use common::{Fixture, TestRegistry};
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use mesh_contracts::catalog::{
    ApproveAgreementRequest, DataStatus, DeleteProductRequest, DeprecateProductRequest,
    DeregisterEndpointRequest, Event, ListEventsRequest, RenewLeaseRequest, RequestAccessRequest,
    RevokeAgreementRequest, UndeprecateProductRequest, WatchRequest,
};
use mesh_grpc::{Credentials, MeshChannel};
use tonic::Code;

const ENDPOINT: &str = "http://127.0.0.1:6001";

async fn events_as(
    registry: &TestRegistry,
    subject: &str,
    roles: &[&str],
) -> EventServiceClient<MeshChannel> {
    let credentials = Credentials::token(&registry.token(subject, roles)).unwrap();
    EventServiceClient::new(common::channel(registry.addr, credentials).await)
}

async fn access_as(
    registry: &TestRegistry,
    subject: &str,
    roles: &[&str],
) -> AccessServiceClient<MeshChannel> {
    let credentials = Credentials::token(&registry.token(subject, roles)).unwrap();
    AccessServiceClient::new(common::channel(registry.addr, credentials).await)
}

fn ask(purpose: &str) -> RequestAccessRequest {
    RequestAccessRequest {
        product: "shop.orders".into(),
        purpose: purpose.into(),
        columns: vec!["amount".into()],
        ..Default::default()
    }
}

/// Every event after `after` `client` may see, page by page.
async fn listed(client: &mut EventServiceClient<MeshChannel>, after: i64) -> Vec<Event> {
    let (mut after, mut all) = (after, Vec::new());
    loop {
        let page = client
            .list_events(ListEventsRequest { after_sequence: after, page_size: 3, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        if page.events.is_empty() && page.next_after_sequence == after {
            return all;
        }
        after = page.next_after_sequence;
        all.extend(page.events);
    }
}

/// The next `count` events of a `Watch` stream (heartbeats skipped).
async fn next_events(
    stream: &mut tonic::Streaming<mesh_contracts::catalog::WatchResponse>,
    count: usize,
) -> Vec<Event> {
    let mut got = Vec::new();
    while got.len() < count {
        let response = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream goes on");
        if let Some(event) = response.event {
            assert_eq!(response.resume_after, event.sequence);
            got.push(event);
        }
    }
    got
}

fn types(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.r#type.as_str()).collect()
}

async fn every_change_has_its_event_in_order_and_watch_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let mut admin = events_as(&registry, "root", &["admin"]).await;
    let mut live = admin.watch(WatchRequest::default()).await.unwrap().into_inner();

    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    // The same contract again at the same endpoint: nothing changed, nothing reported.
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    // A refused change reports nothing either.
    let refused =
        registry.client.register_product(Fixture::default().register("shop.orders", "ftp://x")).await;
    assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument);
    let deprecate =
        DeprecateProductRequest { name: "shop.orders".into(), message: "use shop.orders_v2".into() };
    registry.client.deprecate_product(deprecate).await.unwrap();
    registry
        .client
        .undeprecate_product(UndeprecateProductRequest { name: "shop.orders".into() })
        .await
        .unwrap();
    let mut ana = access_as(&registry, "ana", &["analyst"]).await;
    let asked = ana.request_access(ask("monthly report")).await.unwrap().into_inner().agreement.unwrap();
    let mut owner = access_as(&registry, "lee", &["owner:shop"]).await;
    let approve = ApproveAgreementRequest { name: asked.name.clone(), note: String::new() };
    owner.approve_agreement(approve).await.unwrap();
    let revoke = RevokeAgreementRequest { name: asked.name.clone(), note: "report done".into() };
    ana.revoke_agreement(revoke).await.unwrap();
    let deregister = DeregisterEndpointRequest { name: "shop.orders".into(), endpoint: ENDPOINT.into() };
    registry.client.deregister_endpoint(deregister).await.unwrap();
    registry.client.delete_product(DeleteProductRequest { name: "shop.orders".into() }).await.unwrap();

    let expected = [
        "mesh.product.registered.v1",
        "mesh.product.version.published.v1",
        "mesh.endpoint.serving.v1",
        "mesh.product.deprecated.v1",
        "mesh.product.undeprecated.v1",
        "mesh.access.requested.v1",
        "mesh.access.approved.v1",
        "mesh.access.revoked.v1",
        "mesh.endpoint.removed.v1",
        "mesh.product.deleted.v1",
    ];
    let watched = next_events(&mut live, expected.len()).await;
    assert_eq!(types(&watched), expected);
    assert!(watched.windows(2).all(|w| w[0].sequence < w[1].sequence), "{watched:?}");
    assert!(watched.iter().all(|e| e.subject == "shop.orders" && e.source == "urn:mesh:catalog"));
    let published: serde_json::Value = serde_json::from_str(&watched[1].data).unwrap();
    assert_eq!(published["version"], 1);
    assert_eq!(published["breaking"], false);
    let approved: serde_json::Value = serde_json::from_str(&watched[6].data).unwrap();
    assert_eq!((approved["consumer"].as_str(), approved["by"].as_str()), (Some("ana"), Some("lee")));

    // The pull feed pages through the same events.
    assert_eq!(listed(&mut admin, 0).await, watched);
    // Newest first: the latest of a kind, as `mesh describe` shows them.
    let newest = ListEventsRequest {
        newest_first: true,
        page_size: 2,
        types: vec!["mesh.endpoint.*".into()],
        ..Default::default()
    };
    let newest = admin.list_events(newest).await.unwrap().into_inner();
    assert_eq!(newest.events, [watched[8].clone(), watched[2].clone()]);
    assert_eq!(newest.next_after_sequence, watched[9].sequence);
    // Resumed after the fourth: the rest, once each, then live ones.
    let resumed = WatchRequest { after_sequence: watched[3].sequence, ..Default::default() };
    let mut resumed = admin.watch(resumed).await.unwrap().into_inner();
    assert_eq!(next_events(&mut resumed, 6).await, watched[4..]);
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let again = next_events(&mut resumed, 3).await;
    assert_eq!(types(&again), expected[..3]);
    assert_eq!(next_events(&mut live, 3).await, again);
    // From now on: only what comes next; filtered by type prefix.
    let from_now =
        WatchRequest { from_now: true, types: vec!["mesh.product.*".into()], ..Default::default() };
    let mut from_now = admin.watch(from_now).await.unwrap().into_inner();
    registry.client.delete_product(DeleteProductRequest { name: "shop.orders".into() }).await.unwrap();
    assert_eq!(types(&next_events(&mut from_now, 1).await), ["mesh.product.deleted.v1"]);

    // Bad filters are named.
    for (request, message) in [
        (
            WatchRequest { types: vec!["mesh.nothing.v1".into()], ..Default::default() },
            "types: `mesh.nothing.v1` is no event type",
        ),
        (WatchRequest { product: "no such".into(), ..Default::default() }, "product:"),
        (WatchRequest { after_sequence: -1, ..Default::default() }, "after_sequence: is negative"),
    ] {
        let status = admin.watch(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(message), "{}", status.message());
    }
    registry.stop().await;
}

/// What an analyst's view of the log says, sequence numbers, ids and
/// times aside.
fn contents(events: &[Event]) -> Vec<(String, String, serde_json::Value)> {
    events
        .iter()
        .map(|e| {
            let mut data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            // Agreement names are numbered by the catalog as a whole.
            if let Some(object) = data.as_object_mut() {
                object.remove("agreement");
            }
            (e.r#type.clone(), e.subject.clone(), data)
        })
        .collect()
}

/// The events `ana` sees after the same steps, with `bob` asking for access
/// too or not.
async fn world(bob_asks: bool) -> (Vec<Event>, Vec<Event>) {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let mut ana = access_as(&registry, "ana", &["analyst"]).await;
    let mut bob = access_as(&registry, "bob", &["analyst"]).await;
    let mut owner = access_as(&registry, "lee", &["owner:shop"]).await;
    if bob_asks {
        let asked = bob.request_access(ask("fraud study")).await.unwrap().into_inner().agreement.unwrap();
        let approve = ApproveAgreementRequest { name: asked.name, note: "fine".into() };
        owner.approve_agreement(approve).await.unwrap();
    }
    let asked = ana.request_access(ask("monthly report")).await.unwrap().into_inner().agreement.unwrap();
    owner.approve_agreement(ApproveAgreementRequest { name: asked.name, note: String::new() }).await.unwrap();
    let seen_by_ana = listed(&mut events_as(&registry, "ana", &["analyst"]).await, 0).await;
    let seen_by_owner = listed(&mut events_as(&registry, "lee", &["owner:shop"]).await, 0).await;
    registry.stop().await;
    (seen_by_ana, seen_by_owner)
}

async fn an_analyst_sees_its_own_agreements_whatever_others_do() {
    let (alone, owner_alone) = world(false).await;
    let (beside_bob, owner_beside_bob) = world(true).await;
    assert_eq!(contents(&alone), contents(&beside_bob));
    assert!(alone.iter().all(|e| !e.data.contains("bob")), "{alone:?}");
    assert_eq!(
        types(&alone),
        [
            "mesh.product.registered.v1",
            "mesh.product.version.published.v1",
            "mesh.endpoint.serving.v1",
            "mesh.access.requested.v1",
            "mesh.access.approved.v1",
        ]
    );
    // The owners see every consumer's.
    assert_eq!(owner_alone.len() + 2, owner_beside_bob.len());
    assert!(owner_beside_bob.iter().any(|e| e.data.contains("\"bob\"")));
}

async fn the_feed_is_a_cloudevents_batch_and_bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let token = registry.token("ana", &["analyst"]);
    let http = reqwest::Client::new();
    let url = format!("http://{}/v1/events", registry.addr);
    let get = |query: &'static str| http.get(format!("{url}{query}")).bearer_auth(&token).send();

    let response = get("?type=mesh.product.*&page_size=1").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/cloudevents-batch+json");
    let next: i64 = response.headers()["mesh-next-after"].to_str().unwrap().parse().unwrap();
    let batch: Vec<serde_json::Value> = response.json().await.unwrap();
    assert_eq!(batch.len(), 1);
    let event = &batch[0];
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "mesh.product.registered.v1");
    assert_eq!(event["subject"], "shop.orders");
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(event["sequence"], next.to_string());
    assert_eq!(event["data"]["domain"], "shop");
    assert!(event["time"].as_str().unwrap().ends_with('Z'));

    let rest: Vec<serde_json::Value> = http
        .get(format!("{url}?after={next}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);

    for (query, message) in [
        ("?after=x", "after: `x` is not a sequence number"),
        ("?after=-4", "after: is negative"),
        ("?type=mesh.nope.v1", "types: `mesh.nope.v1` is no event type"),
        ("?since=3", "unknown query parameter `since`"),
    ] {
        let response = get(query).await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        let text = body["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(text.starts_with(message), "{query}: {body}");
    }
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    registry.stop().await;
}

/// The domain reports load `load` at `time_ms`, rules `a` and `b` checked,
/// those in `failing` failing.
async fn report(registry: &mut TestRegistry, load: i64, time_ms: i64, failing: &[&str]) {
    let quality_results = ["a", "b"]
        .iter()
        .map(|rule| mesh_contracts::product::QualityResult {
            rule: (*rule).into(),
            description: format!("rule {rule}"),
            passed: !failing.contains(rule),
            failed_rows: i64::from(failing.contains(rule)),
            checked_rows: 10,
        })
        .collect();
    let data = DataStatus {
        row_count: 10 * load,
        last_loaded_time: Some(mesh_contracts::time::timestamp(time_ms)),
        quality_results,
        load_id: load,
        ..Default::default()
    };
    let renew = RenewLeaseRequest { name: "shop.orders".into(), endpoint: ENDPOINT.into(), data: Some(data) };
    registry.client.renew_lease(renew).await.unwrap();
}

/// `type rule-or-rows` of each data event in `events`.
fn data_events(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.r#type.starts_with("mesh.data.") || e.r#type.starts_with("mesh.quality."))
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            let what = data.get("rule").cloned().unwrap_or_else(|| data["rows"].clone());
            format!("{} {what}", e.r#type)
        })
        .collect()
}

async fn loads_and_quality_show_only_to_the_products_readers() {
    // Two worlds alike but for the loads of a product read by agreement:
    // an analyst without one sees the same events in both.
    let mut views = Vec::new();
    for loads in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
        registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
        if loads {
            report(&mut registry, 1, 1_000_000, &["b"]).await;
            // The same report with the next renewal, and an older load a
            // replica still serves: nothing new.
            report(&mut registry, 1, 1_000_000, &["b"]).await;
            report(&mut registry, 7, 900_000, &[]).await;
            report(&mut registry, 2, 2_000_000, &["a"]).await;
            let mut owner = events_as(&registry, "lee", &["owner:shop"]).await;
            assert_eq!(
                data_events(&listed(&mut owner, 0).await),
                [
                    "mesh.data.loaded.v1 10",
                    "mesh.quality.rule.failed.v1 \"b\"",
                    "mesh.data.loaded.v1 20",
                    "mesh.quality.rule.failed.v1 \"a\"",
                    "mesh.quality.rule.recovered.v1 \"b\"",
                ]
            );
        }
        let mut ana = events_as(&registry, "ana", &["analyst"]).await;
        views.push(contents(&listed(&mut ana, 0).await));
        if loads {
            // With an agreement in force she sees them; revoked, no more.
            let mut asker = access_as(&registry, "ana", &["analyst"]).await;
            let asked =
                asker.request_access(ask("monthly report")).await.unwrap().into_inner().agreement.unwrap();
            let mut lee = access_as(&registry, "lee", &["owner:shop"]).await;
            let approve = ApproveAgreementRequest { name: asked.name.clone(), note: String::new() };
            lee.approve_agreement(approve).await.unwrap();
            assert_eq!(data_events(&listed(&mut ana, 0).await).len(), 5);
            let mut watch =
                ana.watch(WatchRequest { from_now: true, ..Default::default() }).await.unwrap().into_inner();
            report(&mut registry, 3, 3_000_000, &[]).await;
            let seen = next_events(&mut watch, 2).await;
            assert_eq!(types(&seen), ["mesh.data.loaded.v1", "mesh.quality.rule.recovered.v1"]);
            let revoke = RevokeAgreementRequest { name: asked.name, note: "done".into() };
            asker.revoke_agreement(revoke).await.unwrap();
            assert_eq!(types(&next_events(&mut watch, 1).await), ["mesh.access.revoked.v1"]);
            report(&mut registry, 4, 4_000_000, &["b"]).await;
            let after = seen[1].sequence;
            assert!(data_events(&listed(&mut ana, after).await).is_empty());
        }
        registry.stop().await;
    }
    assert_eq!(views[0], views[1]);
}

async fn endpoints_coming_and_going_and_superseded_agreements_are_reported() {
    use catalog_registry::Clock;
    use catalog_registry::quota::EXPIRED_ENDPOINT_GRACE_MS;
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual();
    let mut registry =
        TestRegistry::start_with_clock(&dir.path().join("r.sqlite"), Duration::from_secs(30), clock.clone())
            .await;
    let (first, second, third) = ("http://127.0.0.1:7001", "http://127.0.0.1:7002", "http://127.0.0.1:7003");
    registry.client.register_product(Fixture::default().register("shop.orders", first)).await.unwrap();
    // Renewed in time: nothing to report; after its lease ran out: serving again.
    let renew = || RenewLeaseRequest { name: "shop.orders".into(), endpoint: first.into(), data: None };
    registry.client.renew_lease(renew()).await.unwrap();
    clock.advance(Duration::from_secs(31));
    registry.client.renew_lease(renew()).await.unwrap();
    registry.client.register_product(Fixture::default().register("shop.orders", second)).await.unwrap();
    // Long after both ran out, a registration removes them.
    clock.advance(Duration::from_millis((EXPIRED_ENDPOINT_GRACE_MS + 31_000) as u64));
    registry.client.register_product(Fixture::default().register("shop.orders", third)).await.unwrap();

    // A second approval for ana supersedes her first.
    let mut ana = access_as(&registry, "ana", &["analyst"]).await;
    let mut lee = access_as(&registry, "lee", &["owner:shop"]).await;
    let mut names = Vec::new();
    for purpose in ["monthly report", "quarterly report"] {
        let asked = ana.request_access(ask(purpose)).await.unwrap().into_inner().agreement.unwrap();
        let approve = ApproveAgreementRequest { name: asked.name.clone(), note: String::new() };
        lee.approve_agreement(approve).await.unwrap();
        names.push(asked.name);
    }

    let seen = listed(&mut events_as(&registry, "lee", &["owner:shop"]).await, 0).await;
    let described: Vec<String> = seen
        .iter()
        .skip(2)
        // The sweep's reports come when it looks: its own test checks them.
        .filter(|e| e.r#type != "mesh.endpoint.stale.v1")
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            let about = data.get("endpoint").or_else(|| data.get("agreement")).cloned().unwrap_or_default();
            format!("{} {}", e.r#type, about.as_str().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        described,
        [
            format!("mesh.endpoint.serving.v1 {first}"),
            format!("mesh.endpoint.serving.v1 {first}"),
            format!("mesh.endpoint.serving.v1 {second}"),
            format!("mesh.endpoint.removed.v1 {first}"),
            format!("mesh.endpoint.removed.v1 {second}"),
            format!("mesh.endpoint.serving.v1 {third}"),
            format!("mesh.access.requested.v1 {}", names[0]),
            format!("mesh.access.approved.v1 {}", names[0]),
            format!("mesh.access.requested.v1 {}", names[1]),
            format!("mesh.access.approved.v1 {}", names[1]),
            format!("mesh.access.superseded.v1 {}", names[0]),
        ]
    );
    let superseded: serde_json::Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
    assert_eq!(
        (superseded["state"].as_str(), superseded["by"].as_str()),
        (Some("SUPERSEDED"), Some(names[1].as_str()))
    );
    registry.stop().await;
}

async fn stale_endpoints_and_ending_agreements_are_reported_once_to_their_audience() {
    use catalog_registry::Clock;
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual();
    let mut registry =
        TestRegistry::start_with_clock(&dir.path().join("r.sqlite"), Duration::from_secs(30), clock.clone())
            .await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let mut lee = access_as(&registry, "lee", &["owner:shop"]).await;
    let day = 24 * 3600 * 1000;
    for who in ["ana", "bob"] {
        let mut consumer = access_as(&registry, who, &["analyst"]).await;
        let until = Some(mesh_contracts::time::timestamp(clock.now_ms() + 30 * day));
        let request = RequestAccessRequest { end_time: until, ..ask(&format!("{who}'s report")) };
        let asked = consumer.request_access(request).await.unwrap().into_inner().agreement.unwrap();
        lee.approve_agreement(ApproveAgreementRequest { name: asked.name, note: String::new() })
            .await
            .unwrap();
    }
    let from = listed(&mut events_as(&registry, "root", &["admin"]).await, 0).await.last().unwrap().sequence;
    let sweeps = vec!["mesh.endpoint.stale.v1".to_owned(), "mesh.access.expiring.v1".to_owned()];
    let watch = WatchRequest { from_now: true, types: sweeps, ..Default::default() };
    let mut owner =
        events_as(&registry, "lee", &["owner:shop"]).await.watch(watch).await.unwrap().into_inner();

    // A lease that runs out is reported once; renewed and run out again, again.
    clock.advance(Duration::from_secs(31));
    let stale = next_events(&mut owner, 1).await;
    assert_eq!(types(&stale), ["mesh.endpoint.stale.v1"]);
    let data: serde_json::Value = serde_json::from_str(&stale[0].data).unwrap();
    assert_eq!(data["endpoint"], ENDPOINT);
    let renew = RenewLeaseRequest { name: "shop.orders".into(), endpoint: ENDPOINT.into(), data: None };
    registry.client.renew_lease(renew).await.unwrap();
    // Agreements ending within seven days: the owners hear of each.
    clock.advance(Duration::from_millis(23 * day as u64 + 31_000));
    let mut got = next_events(&mut owner, 3).await;
    got.sort_by_key(|e| e.r#type.clone());
    assert_eq!(types(&got), ["mesh.access.expiring.v1", "mesh.access.expiring.v1", "mesh.endpoint.stale.v1"]);
    let consumer = |event: &Event| {
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        format!("{} {}", data["consumer"].as_str().unwrap_or_default(), data["end_time_ms"].is_i64())
    };
    let mut consumers: Vec<String> = got[..2].iter().map(consumer).collect();
    consumers.sort();
    assert_eq!(consumers, ["ana true", "bob true"]);
    // Each consumer of its own only; once each, however often the sweep looks.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let hers = listed(&mut events_as(&registry, "ana", &["analyst"]).await, from).await;
    let hers: Vec<String> = hers
        .iter()
        .filter(|e| e.r#type != "mesh.endpoint.serving.v1")
        .map(|e| format!("{} {}", e.r#type, consumer(e)))
        .collect();
    // One sweep found the lease and the agreement: in that order.
    assert_eq!(
        hers,
        [
            "mesh.endpoint.stale.v1  false",
            "mesh.endpoint.stale.v1  false",
            "mesh.access.expiring.v1 ana true"
        ]
    );
    registry.stop().await;
}

/// A `Watch` stream ends when the token it began with expires, saying how
/// to resume; what the stream sent until then stays sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_when_its_token_expires() {
    use mesh_grpc::auth::test_tokens::{claims, now};
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let short =
        registry.issuer.key.sign(&claims("ana", &["analyst"], serde_json::json!({ "exp": now() + 2 })));
    let channel = common::channel(registry.addr, Credentials::token(&short).unwrap()).await;
    let mut stream =
        EventServiceClient::new(channel).watch(WatchRequest::default()).await.unwrap().into_inner();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the stream ended without saying why"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends once the token expired");
    assert_eq!(ended.code(), Code::Unauthenticated);
    assert!(
        ended
            .message()
            .starts_with("your token expired; watch again with a current token and after_sequence "),
        "{}",
        ended.message()
    );
}

/// Positions retention deleted, positions past the newest event and filters
/// too long are refused with their reasons (SQLite: the test trims the log
/// by hand, as retention would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_that_would_skip_events_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let mut registry = TestRegistry::start(&db, Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let mut admin = events_as(&registry, "root", &["admin"]).await;
    let past = admin.watch(WatchRequest { after_sequence: 99, ..Default::default() }).await.unwrap_err();
    assert_eq!(past.code(), Code::InvalidArgument);
    assert_eq!(
        past.message(),
        "after_sequence: 99 is past the newest event of this catalog's log (was it restored or replaced?); start \
         again from 0 or from now"
    );
    let long = format!("mesh.{}*", "x".repeat(200));
    let status = admin.watch(WatchRequest { types: vec![long], ..Default::default() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with(&format!("types: `mesh.{}` is no event type", "x".repeat(95))));

    // Retention deleted the first two events.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DELETE FROM events WHERE sequence <= 2;
         INSERT INTO meta (key, value) VALUES ('events_trimmed_through', CAST('2' AS BLOB))",
    )
    .unwrap();
    let expected = "after_sequence: events after 1 are no longer kept (retention deleted them up to 2); start again \
                    after 2 for every event still kept, or from now";
    let trimmed = admin.watch(WatchRequest { after_sequence: 1, ..Default::default() }).await.unwrap_err();
    assert_eq!((trimmed.code(), trimmed.message()), (Code::OutOfRange, expected));
    let listed = ListEventsRequest { after_sequence: 1, ..Default::default() };
    let trimmed = admin.list_events(listed).await.unwrap_err();
    assert_eq!((trimmed.code(), trimmed.message()), (Code::OutOfRange, expected));
    // 0 still means every event kept.
    let kept = admin.list_events(ListEventsRequest::default()).await.unwrap().into_inner();
    assert_eq!((kept.events[0].sequence, kept.oldest_sequence), (3, 3));
    registry.stop().await;
}
