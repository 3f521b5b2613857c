//! What a token for one domain costs a client: the first call to the
//! payment domain, which first exchanges the sign-in token at the registry
//! (RFC 8693), against a call with a domain token already held, each on a
//! fresh connection as a command-line client makes it; and later calls on
//! one connection with the exchanged token against the sign-in token's.

use crate::Run;
use crate::report::{Figure, ms};
use std::time::{Duration, Instant};

use anyhow::Result;
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_grpc::Credentials;
use mesh_grpc::auth::exchange::{TOKEN_PATH, domain_audience, exchange};

use crate::latency::percentiles;
use crate::mesh::{Mesh, connect};

/// The p50s of the exchange group.
pub(crate) struct ExchangeCost {
    /// Exchange while connecting, then a one-row query.
    pub first_call: Duration,
    /// Connect, one-row query, with a token already held.
    pub cached_call: Duration,
    /// A one-row query on an open connection with the exchanged token.
    pub later_call: Duration,
    /// The same with a token the issuer made for payment directly.
    pub direct_call: Duration,
}

async fn one_row(credentials: &Credentials, url: &str) -> Result<()> {
    one_row_on(&mut CardSpendingServiceClient::new(connect(url, credentials).await?)).await
}

async fn one_row_on(client: &mut CardSpendingServiceClient<mesh_grpc::MeshChannel>) -> Result<()> {
    let mut stream = client.query(QueryRequest { limit: 1, ..Default::default() }).await?.into_inner();
    while stream.message().await?.is_some() {}
    Ok(())
}

/// Measures `calls` rounds of each, alternating.
pub(crate) async fn measure(mesh: &Mesh, calls: usize) -> Result<ExchangeCost> {
    let url = format!("{}{TOKEN_PATH}", mesh.registry.trim_end_matches('/'));
    let audience = domain_audience("payment");
    let held =
        Credentials::token(&exchange(&url, &mesh.token, &audience).await.map_err(anyhow::Error::msg)?.token)?;
    let (mut first, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..calls {
        // As `mesh query` does: the exchange runs while the connection is made.
        let started = Instant::now();
        let endpoint = mesh_grpc::client::endpoint(&mesh.payment_url)?;
        let (token, channel) = tokio::join!(exchange(&url, &mesh.token, &audience), endpoint.connect());
        let credentials = Credentials::token(&token.map_err(anyhow::Error::msg)?.token)?;
        let channel = mesh_grpc::MeshChannel::new(&mesh.payment_url, channel?, credentials)?;
        one_row_on(&mut CardSpendingServiceClient::new(channel)).await?;
        first.push(started.elapsed());
        let started = Instant::now();
        one_row(&held, &mesh.payment_url).await?;
        cached.push(started.elapsed());
    }
    let mut exchanged = CardSpendingServiceClient::new(connect(&mesh.payment_url, &held).await?);
    // The baseline: a token made for payment by the issuer, no exchange ever.
    let mut direct = CardSpendingServiceClient::new(connect(&mesh.payment_url, &mesh.at("payment")?).await?);
    let (mut later, mut direct_calls) = (Vec::new(), Vec::new());
    for _ in 0..calls {
        let started = Instant::now();
        one_row_on(&mut exchanged).await?;
        later.push(started.elapsed());
        let started = Instant::now();
        one_row_on(&mut direct).await?;
        direct_calls.push(started.elapsed());
    }
    Ok(ExchangeCost {
        first_call: percentiles(first).0,
        cached_call: percentiles(cached).0,
        later_call: percentiles(later).0,
        direct_call: percentiles(direct_calls).0,
    })
}

/// The figures of this group (`--only exchange`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let cost = measure(&run.mesh, run.calls.min(200)).await?;
    let first = cost.first_call.as_secs_f64() / cost.cached_call.as_secs_f64();
    figures.push(Figure {
        name: "first call to a domain, token exchanged (p50, new connection)",
        measured: ms(cost.first_call),
        baseline: ms(cost.cached_call),
        ratio: Some(first),
        target: "<= 2",
        met: Some(first <= 2.0),
    });
    let later = cost.later_call.as_secs_f64() / cost.direct_call.as_secs_f64();
    figures.push(Figure {
        name: "  later calls with the exchanged token (p50, against one the issuer made for payment)",
        measured: ms(cost.later_call),
        baseline: ms(cost.direct_call),
        ratio: Some(later),
        target: "<= 1.05",
        met: Some(later <= 1.05),
    });
    Ok(figures)
}
