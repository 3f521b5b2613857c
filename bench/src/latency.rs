//! Latency and request rate: a selective query against an empty unary call
//! on the same domain, and registry GetProduct under 64 in-flight calls
//! against a trivial unary call on the same kind of server.

use crate::Run;
use crate::report::{Figure, ms};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, ProductView};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_grpc::codec::RawCodec;
use mesh_grpc::{Credentials, MeshChannel};
use prost::Message;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// p50 and p99 of `samples`.
pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// Sequential latencies of the one-customer-one-quarter query and of an
/// empty unary call (health check), `n` each, on one connection.
pub(crate) async fn selective_query(
    url: &str,
    credentials: &Credentials,
    seq: &str,
    quarter: &str,
    n: usize,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let channel = crate::mesh::connect(url, credentials).await?;
    let mut client = CardSpendingServiceClient::new(channel.clone());
    let mut health = HealthClient::new(channel);
    let request =
        QueryRequest { filter: format!("seq = \"{seq}\" AND bas_yh = \"{quarter}\""), ..Default::default() };
    let (mut query, mut empty) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + n / 10 {
        let started = Instant::now();
        let mut stream = client.query(request.clone()).await?.into_inner();
        let mut rows = 0;
        while let Some(batch) = stream.message().await? {
            rows += batch.rows.len();
        }
        anyhow::ensure!(rows == 1, "the selective query returned {rows} rows");
        let query_time = started.elapsed();
        let started = Instant::now();
        health.check(HealthCheckRequest { service: String::new() }).await?;
        let empty_time = started.elapsed();
        if i >= n / 10 {
            // the first tenth warms up caches and connections
            query.push(query_time);
            empty.push(empty_time);
        }
    }
    Ok((query, empty))
}

/// Requests/s and latencies of `call` with `in_flight` concurrent callers
/// spread over `connections` connections, for `duration`.
async fn load<F, Fut>(
    url: &str,
    credentials: &Credentials,
    connections: usize,
    in_flight: usize,
    duration: Duration,
    call: F,
) -> Result<(f64, Vec<Duration>)>
where
    F: Fn(MeshChannel) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(crate::mesh::connect(url, credentials).await?);
    }
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for i in 0..in_flight {
        let channel = channels[i % connections].clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                call(channel.clone()).await?;
                samples.push(started.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((all.len() as f64 / started.elapsed().as_secs_f64(), all))
}

/// How the load's client calls GetProduct.
#[derive(Debug, Clone)]
pub(crate) struct GetProductCall {
    /// The fingerprint of the descriptor set the caller holds (empty: none).
    pub known_fingerprint: String,
    /// The view asked for.
    pub view: ProductView,
    /// Whether the answer is decoded into the generated types (a consumer
    /// does) or kept as bytes (to see the registry's side alone).
    pub decode: bool,
}

impl GetProductCall {
    async fn call(&self, channel: MeshChannel) -> Result<()> {
        let request = GetProductRequest {
            name: "payment.card_spending".into(),
            version: 0,
            known_fingerprint: self.known_fingerprint.clone(),
            view: self.view.into(),
        };
        if self.decode {
            CatalogServiceClient::new(channel).get_product(request).await?;
        } else {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await?;
            let path = http::uri::PathAndQuery::from_static("/mesh.catalog.v1.CatalogService/GetProduct");
            let request = tonic::Request::new(Bytes::from(request.encode_to_vec()));
            std::hint::black_box(grpc.unary(request, path, RawCodec).await?);
        }
        Ok(())
    }
}

/// GetProduct called as `call` says under load, and a trivial unary call
/// (health) under the same load. The two alternate for `rounds` rounds of
/// `duration` each, so drift in the machine's speed touches both alike.
pub(crate) async fn registry_load(
    url: &str,
    credentials: &Credentials,
    duration: Duration,
    rounds: usize,
    call: &GetProductCall,
) -> Result<((f64, Vec<Duration>), (f64, Vec<Duration>))> {
    let (mut get, mut trivial) = (Rounds::default(), Rounds::default());
    for _ in 0..rounds {
        let call = call.clone();
        get.add(
            load(url, credentials, 4, 64, duration, move |channel| {
                let call = call.clone();
                async move { call.call(channel).await }
            })
            .await?,
        );
        trivial.add(
            load(url, credentials, 4, 64, duration, |channel| async move {
                HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await?;
                Ok(())
            })
            .await?,
        );
    }
    Ok((get.finish(), trivial.finish()))
}

/// Calls and latencies gathered over several rounds of [`load`].
#[derive(Default)]
struct Rounds {
    seconds: f64,
    samples: Vec<Duration>,
}

impl Rounds {
    fn add(&mut self, (rate, samples): (f64, Vec<Duration>)) {
        self.seconds += samples.len() as f64 / rate;
        self.samples.extend(samples);
    }

    fn finish(self) -> (f64, Vec<Duration>) {
        (self.samples.len() as f64 / self.seconds, self.samples)
    }
}

/// The fingerprint of `payment.card_spending`'s current descriptor set.
pub(crate) async fn fingerprint(registry: &str, credentials: &Credentials) -> Result<String> {
    let mut client = CatalogServiceClient::new(crate::mesh::connect(registry, credentials).await?);
    let request = GetProductRequest { name: "payment.card_spending".into(), ..Default::default() };
    Ok(client.get_product(request).await?.into_inner().fingerprint)
}

/// The figures of this group (`--only latency`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let name = "selective query (one customer, one quarter) p50 / p99";
    Ok(vec![selective_figure(name, &run.mesh.payment_url, run).await?])
}

/// The selective query's p50 / p99 at the payment domain at `url`, against
/// a query that finds nothing.
pub(crate) async fn selective_figure(name: &'static str, url: &str, run: &Run) -> Result<Figure> {
    let (query, empty) =
        selective_query(url, &run.mesh.at("payment")?, "0000012345", "2024Q3", run.calls).await?;
    let ((q50, q99), (e50, e99)) = (percentiles(query), percentiles(empty));
    let ratio = q50.as_secs_f64() / e50.as_secs_f64();
    Ok(Figure {
        name,
        measured: format!("{} / {}", ms(q50), ms(q99)),
        baseline: format!("{} / {}", ms(e50), ms(e99)),
        ratio: Some(ratio),
        target: "p50 <= 3x",
        met: Some(ratio <= 3.0),
    })
}

/// The registry group's figures (`--only registry`).
pub(crate) async fn registry_figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let fingerprint = fingerprint(&run.mesh.registry, &run.mesh.credentials).await?;
    let held = fingerprint.as_str();
    let calls = [
        ("registry GetProduct, 64 in flight over 4 connections", "", ProductView::Full, true, ">= 0.6"),
        ("  the same, descriptor already held (as `mesh describe`)", held, ProductView::Full, true, ">= 0.6"),
        (
            "  basic view, descriptor held (as `mesh query` resolves)",
            held,
            ProductView::Basic,
            true,
            ">= 0.6",
        ),
        (
            "  full, descriptor held, kept as bytes (registry's side)",
            held,
            ProductView::Full,
            false,
            "report",
        ),
    ];
    for (name, known, view, decode, target) in calls {
        let call = GetProductCall { known_fingerprint: known.to_owned(), view, decode };
        let ((get_rate, get), (trivial_rate, trivial)) =
            registry_load(&run.mesh.registry, &run.mesh.credentials, Duration::from_secs(2), 3, &call)
                .await?;
        let ((_, get99), (_, trivial99)) = (percentiles(get), percentiles(trivial));
        let ratio = get_rate / trivial_rate;
        figures.push(Figure {
            name,
            measured: format!("{get_rate:.0}/s p99 {}", ms(get99)),
            baseline: format!("{trivial_rate:.0}/s p99 {}", ms(trivial99)),
            ratio: Some(ratio),
            target,
            met: decode.then_some(ratio >= 0.6),
        });
    }
    Ok(figures)
}
