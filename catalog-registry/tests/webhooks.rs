//! Webhooks from a real registry to real HTTP receivers on loopback, on
//! both backends: every delivery is signed and carries its event's id, in
//! log order; a receiver answering 500 gets the events later, in order; one
//! that hangs holds up no one else; one failing too long is disabled, and
//! its state says so; a subscription shows only what its creator may see;
//! bad subscriptions are refused with the field named.

use crate::common;

mesh_postgres::on_both_backends!(
    deliveries_are_signed_in_order_and_survive_a_failing_receiver,
    a_hanging_receiver_holds_up_no_one_and_a_dead_one_is_disabled,
    a_subscription_expires_unless_its_creator_renews_it_with_current_roles,
);

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use catalog_registry::webhooks::signature::sign;
use common::{Fixture, TestRegistry};
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::subscription_service_client::SubscriptionServiceClient;
use mesh_contracts::catalog::{
    CreateSubscriptionRequest, DeleteSubscriptionRequest, DeprecateProductRequest, ListSubscriptionsRequest,
    RenewSubscriptionRequest, RequestAccessRequest, Subscription, SubscriptionState,
    UndeprecateProductRequest,
};
use mesh_grpc::{Credentials, MeshChannel};
use tonic::Code;

const ENDPOINT: &str = "http://127.0.0.1:6001";

/// One delivery as a receiver got it.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: i64,
    signature: String,
    content_type: String,
    body: Bytes,
}

impl Delivery {
    fn event(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on loopback: records what it takes, answers 500 to
/// the next `failures` attempts, or never answers while `hanging`.
#[derive(Debug, Default)]
struct Receiver {
    got: Mutex<Vec<Delivery>>,
    attempts: AtomicUsize,
    failures: AtomicUsize,
    hanging: AtomicBool,
}

impl Receiver {
    async fn start() -> (Arc<Self>, String) {
        let receiver = Arc::new(Self::default());
        let app =
            axum::Router::new().route("/hook", axum::routing::post(take)).with_state(Arc::clone(&receiver));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn got(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until it holds `count` deliveries (at most 30 s).
    async fn wait_for(&self, count: usize) -> Vec<Delivery> {
        for _ in 0..300 {
            let got = self.got();
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{count} deliveries expected, got {:?}", self.got());
    }
}

async fn take(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.attempts.fetch_add(1, Ordering::SeqCst);
    if receiver.hanging.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if receiver.failures.load(Ordering::SeqCst) > 0 {
        receiver.failures.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    receiver.got.lock().unwrap().push(Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap(),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body,
    });
    StatusCode::NO_CONTENT
}

async fn subscriptions_as(
    registry: &TestRegistry,
    subject: &str,
    roles: &[&str],
) -> SubscriptionServiceClient<MeshChannel> {
    let credentials = Credentials::token(&registry.token(subject, roles)).unwrap();
    SubscriptionServiceClient::new(common::channel(registry.addr, credentials).await)
}

fn subscribe(url: &str, types: &[&str]) -> CreateSubscriptionRequest {
    CreateSubscriptionRequest {
        product: "shop.orders".into(),
        url: url.into(),
        types: types.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// Deprecates and undeprecates `shop.orders` `times` times (two events each).
async fn churn(registry: &mut TestRegistry, times: usize) {
    for i in 0..times {
        let deprecate = DeprecateProductRequest { name: "shop.orders".into(), message: format!("round {i}") };
        registry.client.deprecate_product(deprecate).await.unwrap();
        let undeprecate = UndeprecateProductRequest { name: "shop.orders".into() };
        registry.client.undeprecate_product(undeprecate).await.unwrap();
    }
}

/// The caller's subscriptions, until `ready` holds of the one with `id` (at most 30 s).
async fn state_of(
    client: &mut SubscriptionServiceClient<MeshChannel>,
    id: &str,
    ready: impl Fn(&Subscription) -> bool,
) -> Subscription {
    for _ in 0..300 {
        let listed =
            client.list_subscriptions(ListSubscriptionsRequest::default()).await.unwrap().into_inner();
        let found = listed.subscriptions.into_iter().find(|s| s.subscription_id == id).expect("listed");
        if ready(&found) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("subscription {id} never reached the state expected");
}

async fn deliveries_are_signed_in_order_and_survive_a_failing_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let (receiver, url) = Receiver::start().await;
    let mut ana = subscriptions_as(&registry, "ana", &["analyst"]).await;
    let created = ana.create_subscription(subscribe(&url, &[])).await.unwrap().into_inner();
    let subscription = created.subscription.unwrap();
    assert!(created.secret.starts_with("whsec_"), "{}", created.secret);
    assert_eq!(
        (subscription.state(), subscription.owner.as_str()),
        (SubscriptionState::Active, "ana (https://issuer.test)")
    );

    // From now on, in order, each signed with the secret and named by its event's id.
    churn(&mut registry, 3).await;
    let got = receiver.wait_for(6).await;
    let types: Vec<_> = got.iter().map(|d| d.event()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["mesh.product.deprecated.v1", "mesh.product.undeprecated.v1"].repeat(3));
    let sequences: Vec<i64> =
        got.iter().map(|d| d.event()["sequence"].as_str().unwrap().parse().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    for delivery in &got {
        assert_eq!(delivery.id, delivery.event()["id"].as_str().unwrap());
        assert_eq!(delivery.content_type, "application/cloudevents+json");
        assert_eq!(
            Some(delivery.signature.clone()),
            sign(&created.secret, &delivery.id, delivery.timestamp, &delivery.body)
        );
        assert!((delivery.timestamp - mesh_contracts::time::now_ms() / 1000).abs() < 60);
    }

    // A receiver answering 500 for a while gets the events later, still in order.
    receiver.failures.store(2, Ordering::SeqCst);
    churn(&mut registry, 2).await;
    let failing =
        state_of(&mut ana, &subscription.subscription_id, |s| s.state() == SubscriptionState::Failing).await;
    assert!(failing.last_outcome.ends_with(": HTTP 500"), "{}", failing.last_outcome);
    assert!(failing.failing_since.is_some());
    let got = receiver.wait_for(10).await;
    let later: Vec<i64> =
        got.iter().map(|d| d.event()["sequence"].as_str().unwrap().parse().unwrap()).collect();
    assert!(later.windows(2).all(|w| w[0] < w[1]), "{later:?}");
    // The receiver may have the last event before the subscription records it.
    let recovered = state_of(&mut ana, &subscription.subscription_id, |s| {
        s.state() == SubscriptionState::Active && s.delivered_sequence == later[9]
    })
    .await;
    assert!(recovered.last_outcome.starts_with(&format!("delivered event {}: HTTP 204", later[9])));

    // Only what ana may see: her own request, not bob's.
    let ask = |purpose: &str| RequestAccessRequest {
        product: "shop.orders".into(),
        purpose: purpose.into(),
        columns: vec!["amount".into()],
        ..Default::default()
    };
    for who in ["bob", "ana"] {
        let credentials = Credentials::token(&registry.token(who, &["analyst"])).unwrap();
        let mut access = AccessServiceClient::new(common::channel(registry.addr, credentials).await);
        access.request_access(ask(&format!("{who}'s report"))).await.unwrap();
    }
    churn(&mut registry, 1).await;
    let got = receiver.wait_for(13).await;
    let requested: Vec<_> = got[10..].iter().map(|d| d.event()).collect();
    assert_eq!(requested[0]["type"], "mesh.access.requested.v1");
    assert_eq!(requested[0]["data"]["consumer"], "ana");
    assert_eq!(requested[1]["type"], "mesh.product.deprecated.v1");

    // The secret is never listed; the list is the caller's own.
    let listed = ana.list_subscriptions(ListSubscriptionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.subscriptions.len(), 1);
    assert!(!format!("{listed:?}").contains(&created.secret));
    let mut bob = subscriptions_as(&registry, "bob", &["analyst"]).await;
    let theirs = bob.list_subscriptions(ListSubscriptionsRequest::default()).await.unwrap().into_inner();
    assert!(theirs.subscriptions.is_empty());
    // Another caller cannot delete it, nor learn that it exists.
    let delete = DeleteSubscriptionRequest { subscription_id: subscription.subscription_id.clone() };
    let status = bob.delete_subscription(delete.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let missing = DeleteSubscriptionRequest { subscription_id: "sub_none".into() };
    let unknown = bob.delete_subscription(missing).await.unwrap_err();
    assert_eq!(
        status.message().replace(&subscription.subscription_id, "sub_none"),
        unknown.message(),
        "a subscription of another reads as one that does not exist"
    );
    // Deleted: nothing more arrives.
    ana.delete_subscription(delete).await.unwrap();
    churn(&mut registry, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.got().len(), 13);
    registry.stop().await;
}

async fn a_hanging_receiver_holds_up_no_one_and_a_dead_one_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let (hanging, hanging_url) = Receiver::start().await;
    hanging.hanging.store(true, Ordering::SeqCst);
    let (dead, dead_url) = Receiver::start().await;
    dead.failures.store(usize::MAX, Ordering::SeqCst);
    let (working, working_url) = Receiver::start().await;
    let mut ana = subscriptions_as(&registry, "ana", &["analyst"]).await;
    for url in [&hanging_url, &dead_url] {
        ana.create_subscription(subscribe(url, &[])).await.unwrap();
    }
    let only_deprecations = subscribe(&working_url, &["mesh.product.deprecated.v1"]);
    ana.create_subscription(only_deprecations).await.unwrap();

    churn(&mut registry, 2).await;
    let got = working.wait_for(2).await;
    assert!(got.iter().all(|d| d.event()["type"] == "mesh.product.deprecated.v1"));
    for _ in 0..100 {
        if hanging.attempts.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hanging.attempts.load(Ordering::SeqCst), 1, "the hanging receiver holds its first delivery");
    assert!(hanging.got().is_empty());

    // Failing longer than the registry allows: disabled, and no more attempts.
    let listed = ana.list_subscriptions(ListSubscriptionsRequest::default()).await.unwrap().into_inner();
    let dead_id = listed.subscriptions.iter().find(|s| s.url == dead_url).unwrap().subscription_id.clone();
    let disabled = state_of(&mut ana, &dead_id, |s| s.state() == SubscriptionState::Disabled).await;
    // Whichever came first: failing for that long, or an event waiting that long.
    let outcome = &disabled.last_outcome;
    assert!(
        outcome.ends_with(": HTTP 500") || outcome.ends_with("the receiver fell too far behind"),
        "{outcome}"
    );
    let attempts = dead.attempts.load(Ordering::SeqCst);
    assert!(attempts >= 3, "retried before giving up: {attempts}");
    churn(&mut registry, 1).await;
    working.wait_for(3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(dead.attempts.load(Ordering::SeqCst), attempts);
    // The receiver works again and the subscription is renewed: what it
    // missed arrives, in order, however far behind it had fallen.
    dead.failures.store(0, Ordering::SeqCst);
    let renew = RenewSubscriptionRequest { subscription_id: dead_id.clone() };
    ana.renew_subscription(renew).await.unwrap();
    let caught_up = dead.wait_for(6).await;
    let sequences: Vec<i64> =
        caught_up.iter().map(|d| d.event()["sequence"].as_str().unwrap().parse().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    registry.stop().await;
}

async fn a_subscription_expires_unless_its_creator_renews_it_with_current_roles() {
    use catalog_registry::Clock;
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual();
    let mut registry =
        TestRegistry::start_with_clock(&dir.path().join("r.sqlite"), Duration::from_secs(30), clock.clone())
            .await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let (receiver, url) = Receiver::start().await;
    let mut lee = subscriptions_as(&registry, "lee", &["owner:shop"]).await;
    let request = subscribe(&url, &["mesh.access.*", "mesh.product.*"]);
    let subscription = lee.create_subscription(request).await.unwrap().into_inner().subscription.unwrap();
    let id = subscription.subscription_id.clone();
    let expires = mesh_contracts::time::ms(subscription.expire_time.as_ref().unwrap());
    assert_eq!(expires - clock.now_ms(), 90 * 24 * 3600 * 1000, "a lifetime of 90 days");
    let ask = |who: &str| {
        let credentials = Credentials::token(&registry.token(who, &["analyst"])).unwrap();
        let addr = registry.addr;
        let request = RequestAccessRequest {
            product: "shop.orders".into(),
            purpose: format!("{who}'s report"),
            columns: vec!["amount".into()],
            ..Default::default()
        };
        async move {
            let mut access = AccessServiceClient::new(common::channel(addr, credentials).await);
            access.request_access(request).await.unwrap();
        }
    };
    // As an owner: another consumer's request.
    ask("ana").await;
    assert_eq!(receiver.wait_for(1).await[0].event()["data"]["consumer"], "ana");

    // Past its lifetime: expired, nothing delivered.
    clock.advance(Duration::from_secs(91 * 24 * 3600));
    state_of(&mut lee, &id, |s| s.state() == SubscriptionState::Expired).await;
    ask("bob").await;
    churn(&mut registry, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.got().len(), 1);

    // Only its creator renews it, not as a service; renewed with a token
    // that no longer carries the owner's role, it shows what that token may see.
    let mut admin = subscriptions_as(&registry, "root", &["admin"]).await;
    let renew = RenewSubscriptionRequest { subscription_id: id.clone() };
    assert_eq!(admin.renew_subscription(renew.clone()).await.unwrap_err().code(), Code::NotFound);
    let mut lee_as_service = subscriptions_as(&registry, "lee", &["service:shop"]).await;
    let refused = lee_as_service.renew_subscription(renew.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut lee_now = subscriptions_as(&registry, "lee", &["analyst"]).await;
    let renewed = lee_now.renew_subscription(renew).await.unwrap().into_inner().subscription.unwrap();
    assert_eq!(renewed.state(), SubscriptionState::Active);
    let got = receiver.wait_for(3).await;
    let types: Vec<String> =
        got[1..].iter().map(|d| d.event()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["mesh.product.deprecated.v1", "mesh.product.undeprecated.v1"], "not bob's request");
    registry.stop().await;
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start_refusing_private_webhooks(&dir.path().join("r.sqlite")).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let mut ana = subscriptions_as(&registry, "ana", &["analyst"]).await;
    for (request, code, message) in [
        (
            subscribe("https://127.0.0.1:8443/hook", &[]),
            Code::InvalidArgument,
            "url: points at a loopback, link-local or private address, which webhooks may not reach; use a \
             public host (a registry run with --insecure-webhook-targets accepts them for tests)",
        ),
        (
            subscribe("https://169.254.169.254/latest/meta-data", &[]),
            Code::InvalidArgument,
            "url: points at a loopback, link-local or private address",
        ),
        (
            subscribe("http://hooks.example.com/mesh", &[]),
            Code::InvalidArgument,
            "url: is plain http: deliveries would cross the network unencrypted; use https",
        ),
        (
            subscribe("https://hooks.example.com/mesh", &["mesh.nothing.v1"]),
            Code::InvalidArgument,
            "types: `mesh.nothing.v1` is no event type",
        ),
        (
            CreateSubscriptionRequest {
                product: "shop.none".into(),
                ..subscribe("https://93.184.216.34/x", &[])
            },
            Code::NotFound,
            "",
        ),
        (
            CreateSubscriptionRequest {
                product: "no such".into(),
                ..subscribe("https://93.184.216.34/x", &[])
            },
            Code::InvalidArgument,
            "product:",
        ),
    ] {
        let status = ana.create_subscription(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().starts_with(message), "{}", status.message());
    }
    // A service's short-lived identity may not become a lasting webhook.
    let mut domain = subscriptions_as(&registry, "svc-shop", &["service:shop"]).await;
    let status = domain.create_subscription(subscribe("https://93.184.216.34/x", &[])).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().starts_with("a service identity's token is short-lived"),
        "{}",
        status.message()
    );
    // A name that does not resolve reads as one that resolves inward.
    let status = ana.create_subscription(subscribe("https://no-such-host.invalid/x", &[])).await.unwrap_err();
    assert_eq!(
        status.message(),
        "url: its host `no-such-host.invalid` does not resolve, from the registry, to public addresses only; use a \
         public host (a registry run with --insecure-webhook-targets accepts private ones for tests)"
    );
    // At most 100 each.
    for _ in 0..100 {
        ana.create_subscription(subscribe("https://93.184.216.34/x", &[])).await.unwrap();
    }
    let status = ana.create_subscription(subscribe("https://93.184.216.34/x", &[])).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().starts_with("you hold 100 subscriptions, the most one caller may; delete some"),
        "{}",
        status.message()
    );
    let status = ana
        .delete_subscription(DeleteSubscriptionRequest { subscription_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.message(), "subscription_id: is empty; mesh subscriptions list shows yours");
    registry.stop().await;
}
