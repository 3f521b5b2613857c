//! How fast the mesh's events arrive and what following them costs:
//! a change committed to its webhook at a receiver on loopback, against a
//! plain POST of the same size to that receiver; revocation to enforcement
//! in the domain over many revocations; and 1,000 concurrent `Watch`
//! streams on a registry process of its own (over a copy of the bench's
//! catalog): one event's fan-out to all of them against one stream, the
//! registry's resident memory, and its GetProduct rate beside them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use mesh_contracts::catalog::subscription_service_client::SubscriptionServiceClient;
use mesh_contracts::catalog::{
    CreateSubscriptionRequest, DeleteSubscriptionRequest, DeprecateProductRequest, RevokeAgreementRequest,
    UndeprecateProductRequest, WatchRequest,
};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_grpc::{Credentials, MeshChannel};
use tokio::sync::mpsc;

use crate::Run;
use crate::governance::{agreement, at_payment, credentials, until_served};
use crate::latency::{GetProductCall, percentiles, registry_load};
use crate::memory::status_kib;
use crate::mesh::{connect, served_url, sibling_binary};
use crate::report::{Figure, ms};

/// Changes timed to their webhook (even: the product ends undeprecated).
const WEBHOOK_ROUNDS: usize = 100;
/// Agreements revoked and timed to their refusal.
const REVOCATIONS: usize = 30;
/// Concurrent Watch streams, over this many connections.
const STREAMS: usize = 1000;
const CONNECTIONS: usize = 10;
/// Events timed to every stream.
const FAN_OUTS: usize = 5;

/// When each POST reached the receiver.
#[derive(Default)]
struct Arrivals(Mutex<Vec<Instant>>);

impl Arrivals {
    /// Waits until `count` have arrived; when the last of them did.
    async fn wait_for(&self, count: usize) -> Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(at) = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(count - 1)
            {
                return Ok(*at);
            }
            if Instant::now() > deadline {
                bail!("delivery {count} did not arrive within 30 s");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

/// A receiver on loopback answering 204 to every POST; its URL.
async fn receiver(arrivals: Arc<Arrivals>) -> Result<String> {
    let take = move |_: Bytes| {
        let arrivals = Arc::clone(&arrivals);
        async move {
            arrivals.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Instant::now());
            http::StatusCode::NO_CONTENT
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(take));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Deprecates (even `round`) or undeprecates (odd) payment.card_spending.
async fn change(catalog: &mut CatalogServiceClient<MeshChannel>, round: usize) -> Result<()> {
    let name = "payment.card_spending".to_owned();
    if round.is_multiple_of(2) {
        let message = format!("benchmark round {round}");
        catalog.deprecate_product(DeprecateProductRequest { name, message }).await?;
    } else {
        catalog.undeprecate_product(UndeprecateProductRequest { name }).await?;
    }
    Ok(())
}

/// Change committed → webhook received, and a plain POST of the same size
/// to the same receiver.
async fn webhooks(run: &Run) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let mesh = &run.mesh;
    let arrivals = Arc::new(Arrivals::default());
    let url = receiver(Arc::clone(&arrivals)).await?;
    let channel = connect(&mesh.registry, &mesh.credentials).await?;
    let mut subscriptions = SubscriptionServiceClient::new(channel.clone());
    let request = CreateSubscriptionRequest {
        product: "payment.card_spending".into(),
        url: url.clone(),
        types: vec!["mesh.product.deprecated.v1".into(), "mesh.product.undeprecated.v1".into()],
    };
    let created = subscriptions.create_subscription(request).await?.into_inner();
    let id = created.subscription.context("no subscription")?.subscription_id;
    let mut catalog = CatalogServiceClient::new(channel);
    let mut delivered = Vec::new();
    for round in 0..WEBHOOK_ROUNDS {
        let started = Instant::now();
        change(&mut catalog, round).await?;
        delivered.push(arrivals.wait_for(round + 1).await?.saturating_duration_since(started));
    }
    subscriptions.delete_subscription(DeleteSubscriptionRequest { subscription_id: id }).await?;
    // The same size as a delivery: a CloudEvent of this kind is about 450 bytes.
    let body = vec![b'x'; 450];
    let client = reqwest::Client::new();
    let mut posted = Vec::new();
    for round in 0..WEBHOOK_ROUNDS {
        let started = Instant::now();
        client.post(&url).body(body.clone()).send().await?;
        posted.push(arrivals.wait_for(WEBHOOK_ROUNDS + round + 1).await?.saturating_duration_since(started));
    }
    Ok((delivered, posted))
}

/// Revocation → the domain refusing, over [`REVOCATIONS`] agreements.
async fn revocations(run: &Run) -> Result<Vec<Duration>> {
    let mesh = &run.mesh;
    let issuer = mesh_grpc::auth::issuer::LocalIssuer::open(&run.data.join("issuer"))?;
    let mut admin = AccessServiceClient::new(connect(&mesh.registry, &mesh.credentials).await?);
    let mut took = Vec::new();
    for round in 0..REVOCATIONS {
        let subject = format!("bench-revoked-{round}");
        let name = agreement(mesh, &issuer, &subject, false, "").await?;
        let reader = at_payment(&issuer, &subject, &["analyst"])?;
        until_served(&mesh.payment_url, &reader).await?;
        let mut client = CardSpendingServiceClient::new(connect(&mesh.payment_url, &reader).await?);
        admin.revoke_agreement(RevokeAgreementRequest { name, note: String::new() }).await?;
        let revoked = Instant::now();
        while client.query(QueryRequest { limit: 1, ..Default::default() }).await.is_ok() {
            if revoked.elapsed() > Duration::from_secs(30) {
                bail!("the revocation was not enforced within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(revoked.elapsed());
    }
    Ok(took)
}

/// What 1,000 Watch streams cost a registry of its own.
struct Fanout {
    one: Vec<Duration>,
    all: Vec<Duration>,
    rss_before: f64,
    rss_with: f64,
    rate_before: f64,
    rate_with: f64,
}

/// A registry process over a copy of the bench's catalog.
struct RegistryProcess(std::process::Child);

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opens `count` Watch streams from now on over `channels`; each event's
/// arrival is sent on the returned channel.
async fn watch(channels: &[MeshChannel], count: usize) -> Result<mpsc::UnboundedReceiver<Instant>> {
    let (sender, receiver) = mpsc::unbounded_channel();
    for i in 0..count {
        let mut events = EventServiceClient::new(channels[i % channels.len()].clone());
        let request = WatchRequest { from_now: true, ..Default::default() };
        let mut stream = events.watch(request).await?.into_inner();
        let sender = sender.clone();
        tokio::spawn(async move {
            while let Ok(Some(response)) = stream.message().await {
                if response.event.is_some() && sender.send(Instant::now()).is_err() {
                    return;
                }
            }
        });
    }
    Ok(receiver)
}

/// Times `rounds` changes to their arrival on `streams` streams.
async fn fan_out(
    catalog: &mut CatalogServiceClient<MeshChannel>,
    arrivals: &mut mpsc::UnboundedReceiver<Instant>,
    streams: usize,
    rounds: usize,
) -> Result<Vec<Duration>> {
    let mut took = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        change(catalog, round).await?;
        for _ in 0..streams {
            let arrived = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
                .await
                .context("an event did not reach every stream within 30 s")?
                .context("a stream ended")?;
            took.push(arrived.saturating_duration_since(started));
        }
    }
    Ok(took)
}

async fn fanout(run: &Run) -> Result<Fanout> {
    let dir = tempfile::tempdir_in(&run.data)?;
    let copy = dir.path().join("catalog.sqlite");
    rusqlite::Connection::open(&run.mesh.registry_db)?
        .execute("VACUUM INTO ?1", [copy.display().to_string()])?;
    let mut child = std::process::Command::new(sibling_binary("catalog-registry")?)
        .args(["--addr", "127.0.0.1:0", "--lease-ttl", "1h", "--auth-issuer", "mesh-local"])
        .arg("--db")
        .arg(&copy)
        .arg("--auth-jwks")
        .arg(run.data.join("issuer").join("jwks.json"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let url = served_url(&mut child, "catalog-registry")?;
    let registry = RegistryProcess(child);
    let pid = registry.0.id();
    let admin = &run.mesh.credentials;
    let call = GetProductCall { known_fingerprint: String::new(), view: Default::default(), decode: false };
    let rate = |credentials: Credentials| {
        let (url, call) = (url.clone(), call.clone());
        async move { registry_load(&url, &credentials, Duration::from_secs(2), 2, &call).await.map(|r| r.0.0) }
    };
    let mut catalog = CatalogServiceClient::new(connect(&url, admin).await?);

    let rate_before = rate(admin.clone()).await?;
    let one_channel = [connect(&url, admin).await?];
    let mut one_stream = watch(&one_channel, 1).await?;
    let one = fan_out(&mut catalog, &mut one_stream, 1, FAN_OUTS * 4).await?;
    drop(one_stream);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = status_kib(pid, "VmRSS")? as f64 / 1024.0;

    // Two watchers of 500 streams each (a caller holds at most 1,000).
    let issuer = mesh_grpc::auth::issuer::LocalIssuer::open(&run.data.join("issuer"))?;
    let mut channels = Vec::new();
    for i in 0..CONNECTIONS {
        let watcher = credentials(&issuer, &format!("bench-watcher-{}", i % 2), &["analyst"])?;
        channels.push(connect(&url, &watcher).await?);
    }
    let mut arrivals = watch(&channels, STREAMS).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_with = status_kib(pid, "VmRSS")? as f64 / 1024.0;
    let all = fan_out(&mut catalog, &mut arrivals, STREAMS, FAN_OUTS).await?;
    let rate_with = rate(admin.clone()).await?;
    Ok(Fanout { one, all, rss_before, rss_with, rate_before, rate_with })
}

/// The figures of this group (`--only events`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let (delivered, posted) = webhooks(run).await?;
    let ((d50, d99), (p50, p99)) = (percentiles(delivered), percentiles(posted));
    figures.push(Figure {
        name: "change committed to webhook received p50 / p99",
        measured: format!("{} / {}", ms(d50), ms(d99)),
        baseline: format!("{} / {}", ms(p50), ms(p99)),
        ratio: Some(d99.as_secs_f64() / p99.as_secs_f64()),
        target: "p99 <= 1 s",
        met: Some(d99 <= Duration::from_secs(1)),
    });
    let (r50, r99) = percentiles(revocations(run).await?);
    figures.push(Figure {
        name: "revocation to enforcement in the domain p50 / p99",
        measured: format!("{} / {}", ms(r50), ms(r99)),
        baseline: String::new(),
        ratio: None,
        target: "p99 <= 250 ms",
        met: Some(r99 <= Duration::from_millis(250)),
    });
    let fanout = fanout(run).await?;
    let ((o50, o99), (a50, a99)) = (percentiles(fanout.one), percentiles(fanout.all));
    figures.push(Figure {
        name: "one event to 1,000 Watch streams p50 / p99 (to one)",
        measured: format!("{} / {}", ms(a50), ms(a99)),
        baseline: format!("{} / {}", ms(o50), ms(o99)),
        ratio: Some(a99.as_secs_f64() / o99.as_secs_f64()),
        target: "p99 <= 100 ms",
        met: Some(a99 <= Duration::from_millis(100)),
    });
    let grown = fanout.rss_with - fanout.rss_before;
    figures.push(Figure {
        name: "registry RSS with 1,000 Watch streams (without)",
        measured: format!("{:.1} MiB", fanout.rss_with),
        baseline: format!("{:.1} MiB", fanout.rss_before),
        ratio: Some(fanout.rss_with / fanout.rss_before),
        target: "<= +64 MiB",
        met: Some(grown <= 64.0),
    });
    let ratio = fanout.rate_with / fanout.rate_before;
    figures.push(Figure {
        name: "registry GetProduct with 1,000 Watch streams (without)",
        measured: format!("{:.0} calls/s", fanout.rate_with),
        baseline: format!("{:.0} calls/s", fanout.rate_before),
        ratio: Some(ratio),
        target: ">= 0.8",
        met: Some(ratio >= 0.8),
    });
    Ok(figures)
}
