//! Latency and request rate: a selective query against an empty unary call
//! on the same domain, and registry GetProduct under 64 in-flight calls
//! against a trivial unary call on the same kind of server.

use std::time::{Duration, Instant};

use anyhow::Result;
use mesh_contracts::catalog::GetProductRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// p50 and p99 of `samples`.
pub fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// Sequential latencies of the one-customer-one-quarter query and of an
/// empty unary call (health check), `n` each, on one connection.
pub async fn selective_query(
    url: &str,
    seq: &str,
    quarter: &str,
    n: usize,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let channel = Channel::from_shared(url.to_owned())?.connect().await?;
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
    connections: usize,
    in_flight: usize,
    duration: Duration,
    call: F,
) -> Result<(f64, Vec<Duration>)>
where
    F: Fn(Channel) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(Channel::from_shared(url.to_owned())?.connect().await?);
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

/// GetProduct under load (sending `known_fingerprint`, as a caller holding
/// the descriptor does, when not empty), and a trivial unary call (health)
/// under the same load.
pub async fn registry_load(
    url: &str,
    duration: Duration,
    known_fingerprint: &str,
) -> Result<((f64, Vec<Duration>), (f64, Vec<Duration>))> {
    let known = known_fingerprint.to_owned();
    let get = load(url, 4, 64, duration, move |channel| {
        let known_fingerprint = known.clone();
        async move {
            let request =
                GetProductRequest { name: "payment.card_spending".into(), version: 0, known_fingerprint };
            CatalogServiceClient::new(channel).get_product(request).await?;
            Ok(())
        }
    })
    .await?;
    let trivial = load(url, 4, 64, duration, |channel| async move {
        HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await?;
        Ok(())
    })
    .await?;
    Ok((get, trivial))
}

/// The fingerprint of `payment.card_spending`'s current descriptor set.
pub async fn fingerprint(registry: &str) -> Result<String> {
    let mut client = CatalogServiceClient::connect(registry.to_owned()).await?;
    let request = GetProductRequest {
        name: "payment.card_spending".into(),
        version: 0,
        known_fingerprint: String::new(),
    };
    Ok(client.get_product(request).await?.into_inner().fingerprint)
}
