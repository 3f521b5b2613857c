//! What enforcing agreements costs: the same full stream read by the
//! product's owner (ungoverned: every column raw, no agreement) and by an
//! analyst under an agreement for every column (governed: agreement lookup,
//! pseudonyms for identifiers, the audit record), alternating after the
//! analyst's first read, which is reported beside them (later reads of the
//! same load are the sorted read the domain kept); the selective query likewise (an agreement granting the identifier raw, so
//! it can be filtered on). How long a revocation takes to be enforced is
//! the events group's.

use crate::Run;
use crate::report::{Figure, ms, per_second};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::{ApproveAgreementRequest, RequestAccessRequest};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_grpc::Credentials;
use mesh_grpc::auth::issuer::{DEFAULT_AUDIENCE, LocalIssuer};

use crate::latency::{percentiles, selective_query};
use crate::mesh::{Mesh, connect};
use crate::stream::{rate, typed_client};

/// Rounds of full streams for each reader; the best of each counts (the
/// mesh's own work at start, such as insight's first rebuild, may overlap
/// the first rounds).
const ROUNDS: usize = 5;
/// The customer and quarter of the selective query.
const SEQ: &str = "0000012345";
const QUARTER: &str = "2024Q3";

/// The figures of the governance group.
pub(crate) struct GovernanceCost {
    pub ungoverned_rate: f64,
    /// The analyst's best after the first read (the sorted read kept).
    pub governed_rate: f64,
    /// The analyst's first read of the load (sorted from the table).
    pub governed_first_rate: f64,
    pub ungoverned_p50: Duration,
    pub governed_p50: Duration,
}

/// A token of the mesh's issuer for `subject` with `roles`, for the registry.
pub(crate) fn credentials(issuer: &LocalIssuer, subject: &str, roles: &[&str]) -> Result<Credentials> {
    credentials_for(issuer, subject, roles, DEFAULT_AUDIENCE)
}

/// Like [`credentials`], for the payment domain.
pub(crate) fn at_payment(issuer: &LocalIssuer, subject: &str, roles: &[&str]) -> Result<Credentials> {
    credentials_for(issuer, subject, roles, &mesh_grpc::auth::exchange::domain_audience("payment"))
}

fn credentials_for(
    issuer: &LocalIssuer,
    subject: &str,
    roles: &[&str],
    audience: &str,
) -> Result<Credentials> {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let token = issuer.issue(subject, &roles, Duration::from_secs(3600), audience)?;
    Ok(Credentials::token(&token)?)
}

/// Asks for every column of payment.card_spending as `subject` (`raw`
/// identifiers or not, the rows of `row_scope`, empty for all) and approves
/// it as an admin; the agreement's name.
pub(crate) async fn agreement(
    mesh: &Mesh,
    issuer: &LocalIssuer,
    subject: &str,
    raw: bool,
    row_scope: &str,
) -> Result<String> {
    let mut asker = AccessServiceClient::new(
        connect(&mesh.registry, &credentials(issuer, subject, &["analyst"])?).await?,
    );
    let request = RequestAccessRequest {
        product: "payment.card_spending".into(),
        purpose: "benchmark of governed reads".into(),
        raw_columns: if raw { vec!["seq".into()] } else { Vec::new() },
        row_scope: row_scope.into(),
        ..Default::default()
    };
    let asked = asker.request_access(request).await?.into_inner().agreement.context("no agreement")?;
    let mut admin = AccessServiceClient::new(connect(&mesh.registry, &mesh.credentials).await?);
    admin
        .approve_agreement(ApproveAgreementRequest { name: asked.name.clone(), note: String::new() })
        .await?;
    Ok(asked.name)
}

/// Waits until `credentials` may read the product; how long that took.
pub(crate) async fn until_served(url: &str, credentials: &Credentials) -> Result<Duration> {
    let started = Instant::now();
    let mut client = CardSpendingServiceClient::new(connect(url, credentials).await?);
    loop {
        let request = QueryRequest { limit: 1, ..Default::default() };
        if client.query(request).await.is_ok() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the agreement was not enforced within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Measures the group on the bench's mesh.
pub(crate) async fn measure(mesh: &Mesh, issuer: &LocalIssuer, calls: usize) -> Result<GovernanceCost> {
    let owner = at_payment(issuer, "bench-owner", &["owner:payment"])?;
    let analyst = at_payment(issuer, "bench-analyst", &["analyst"])?;
    let selective = at_payment(issuer, "bench-selective", &["analyst"])?;
    agreement(mesh, issuer, "bench-analyst", false, "").await?;
    agreement(mesh, issuer, "bench-selective", true, "").await?;
    until_served(&mesh.payment_url, &analyst).await?;
    until_served(&mesh.payment_url, &selective).await?;

    let (rows, seconds) = typed_client(&mesh.payment_url, &analyst).await?;
    let governed_first_rate = rate(rows, seconds);
    let (mut ungoverned_rate, mut governed_rate) = (0f64, 0f64);
    for _ in 0..ROUNDS {
        let (rows, seconds) = typed_client(&mesh.payment_url, &owner).await?;
        ungoverned_rate = ungoverned_rate.max(rate(rows, seconds));
        let (rows, seconds) = typed_client(&mesh.payment_url, &analyst).await?;
        governed_rate = governed_rate.max(rate(rows, seconds));
    }
    let (ungoverned, _) = selective_query(&mesh.payment_url, &owner, SEQ, QUARTER, calls).await?;
    let (governed, _) = selective_query(&mesh.payment_url, &selective, SEQ, QUARTER, calls).await?;

    Ok(GovernanceCost {
        ungoverned_rate,
        governed_rate,
        governed_first_rate,
        ungoverned_p50: percentiles(ungoverned).0,
        governed_p50: percentiles(governed).0,
    })
}

/// The figures of this group (`--only governance`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let issuer = mesh_grpc::auth::issuer::LocalIssuer::open(&run.data.join("issuer"))?;
    let cost = measure(&run.mesh, &issuer, run.calls).await?;
    let throughput = cost.governed_rate / cost.ungoverned_rate;
    figures.push(Figure {
        name: "governed full stream in pseudonym order: agreement, audit (owner)",
        measured: per_second(cost.governed_rate),
        baseline: per_second(cost.ungoverned_rate),
        ratio: Some(throughput),
        target: ">= 0.85",
        met: Some(throughput >= 0.85),
    });
    figures.push(Figure {
        name: "  the analyst's first read of the load (sorted from the table)",
        measured: per_second(cost.governed_first_rate),
        baseline: per_second(cost.ungoverned_rate),
        ratio: Some(cost.governed_first_rate / cost.ungoverned_rate),
        target: "report",
        met: None,
    });
    let latency = cost.governed_p50.as_secs_f64() / cost.ungoverned_p50.as_secs_f64();
    figures.push(Figure {
        name: "governed selective query p50 (owner)",
        measured: ms(cost.governed_p50),
        baseline: ms(cost.ungoverned_p50),
        ratio: Some(latency),
        target: "<= 1.3",
        met: Some(latency <= 1.3),
    });
    Ok(figures)
}
