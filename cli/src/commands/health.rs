//! `mesh health`: every registered endpoint checked with gRPC health.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use mesh_contracts::catalog::ListProductsRequest;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use mesh_grpc::Credentials;

use crate::cli::Cli;
use crate::{registry, style};

/// Flags of `mesh health`.
#[derive(Debug, clap::Args)]
pub(crate) struct HealthArgs {
    /// Check only this endpoint (exit 1 unless it is serving), e.g. in a
    /// container health check.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// With `--endpoint`: the service to check; empty means the whole server.
    #[arg(long, default_value = "", requires = "endpoint")]
    pub service: String,
}

/// What a health check found.
/// A product's endpoint is checked with a token for its domain, when one can
/// be had; any other endpoint with the sign-in token only if it is a
/// registry's, else with none (health is open unless a service says not).
async fn check(
    cli: &Cli,
    endpoint: &str,
    service: &str,
    credentials: &Credentials,
) -> (Result<ServingStatus, String>, Duration) {
    let started = Instant::now();
    let outcome = async {
        let channel =
            mesh_grpc::client::channel(endpoint, cli.timeout, credentials).map_err(|e| e.to_string())?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest { service: service.to_owned() })
            .await
            .map_err(|s| s.message().to_owned())?;
        Ok(response.into_inner().status())
    }
    .await;
    (outcome, started.elapsed())
}

/// Prints a table of every endpoint's health, or checks one endpoint.
pub(crate) async fn run(cli: &Cli, args: &HealthArgs) -> Result<()> {
    if let Some(endpoint) = &args.endpoint {
        let is_registry =
            cli.registry.split(',').any(|r| r.trim().trim_end_matches('/') == endpoint.trim_end_matches('/'));
        let credentials = if is_registry { cli.credentials.clone() } else { Credentials::none() };
        let (outcome, _) = check(cli, endpoint, &args.service, &credentials).await;
        return match outcome {
            Ok(ServingStatus::Serving) => {
                println!("{}: serving", style::safe(endpoint));
                Ok(())
            }
            Ok(other) => bail!("{}: {}", style::safe(endpoint), other.as_str_name().to_lowercase()),
            Err(error) => bail!("{endpoint}: unreachable: {error}"),
        };
    }
    let mut registry = registry::Registry::of(cli)?;
    let products = registry.products(ListProductsRequest::default()).await?;
    let mut table = style::table(&["product", "endpoint", "catalog", "health", "latency"]);
    let mut unhealthy = 0;
    for product in &products {
        if product.endpoints.is_empty() {
            table.add_row(vec![
                style::cell(&product.product_id),
                style::cell("-"),
                style::product_status(product),
                style::coloured("no endpoint", Some(false)),
                style::cell(""),
            ]);
            unhealthy += 1;
        }
        let credentials = crate::domain_token::credentials(cli, &product.domain).await.unwrap_or_default();
        for endpoint in &product.endpoints {
            let (outcome, latency) = check(cli, &endpoint.uri, &product.service, &credentials).await;
            let health = match &outcome {
                Ok(ServingStatus::Serving) => style::coloured("serving", Some(true)),
                Ok(other) => style::coloured(other.as_str_name().to_lowercase(), Some(false)),
                Err(error) => style::coloured(format!("unreachable: {error}"), Some(false)),
            };
            if !matches!(outcome, Ok(ServingStatus::Serving)) {
                unhealthy += 1;
            }
            table.add_row(vec![
                style::cell(&product.product_id),
                style::cell(&endpoint.uri),
                style::coloured(
                    style::status_word(endpoint.status()),
                    Some(endpoint.status() == mesh_contracts::catalog::ServingStatus::Serving),
                ),
                health,
                style::cell(format!("{:.1} ms", latency.as_secs_f64() * 1000.0)),
            ]);
        }
    }
    println!("{table}");
    if unhealthy > 0 {
        bail!("{unhealthy} endpoint(s) not serving");
    }
    Ok(())
}
