//! Resolving what `mesh query` calls: the product's endpoint, service and
//! contract, from the registry, from the local cache when the registry is
//! down, or from the domain itself when `--endpoint` is given.

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use mesh_contracts::access::domain_of;
use mesh_contracts::catalog::{Product, ProductView};
use mesh_contracts::descriptor::ProductShape;
use mesh_contracts::product::{DescribeRequest, DescribeResponse};
use mesh_grpc::codec::RawCodec;
use prost::Message;
use prost_reflect::DescriptorPool;

use super::{Registry, Source};
use crate::cli::Cli;
use crate::style;

/// What is needed to call and decode a product.
pub(crate) struct Target {
    /// The domain endpoint being called.
    pub(crate) endpoint: String,
    /// The endpoints still to try after it, in order.
    pub(crate) fallbacks: Vec<String>,
    /// The product service's full name.
    pub(crate) service: String,
    /// The contract: the service's files, options kept.
    pub(crate) descriptor_set: Vec<u8>,
    /// The catalog entry, when there is one (for error advice).
    pub(crate) entry: Option<Product>,
    /// What the domain is called with: a token exchanged for it.
    pub(crate) credentials: mesh_grpc::Credentials,
}

impl Target {
    /// Finds `product` through the registry at `registry` (or its cache);
    /// `endpoint` overrides where it is called, and is asked for the
    /// contract when the registry cannot be reached.
    #[tracing::instrument(name = "resolve", skip_all, fields(product))]
    pub(crate) async fn resolve(cli: &Cli, product: &str, endpoint: Option<&str>) -> Result<Self> {
        let mut client = Registry::of(cli)?;
        // Finding the endpoint needs no columns: the basic view is the light
        // lookup. The token for the product's domain is got meanwhile.
        let (found, credentials) = tokio::join!(
            client.product(product, ProductView::Basic),
            crate::domain_token::credentials(cli, domain_of(product))
        );
        let (entry, source) = match (found, endpoint) {
            (Ok(found), _) => found,
            (Err(_), Some(endpoint)) => return Self::described_by(cli, endpoint, product).await,
            (Err(error), None) => return Err(error),
        };
        if let Source::Cache(fetched) = source {
            eprintln!(
                "note: the registry is unreachable; using the local catalog cache from {}",
                humantime::format_rfc3339_seconds(fetched)
            );
        }
        let product = entry.product.clone().unwrap_or_default();
        if let Some(deprecation) = &product.deprecation {
            eprintln!(
                "warning: {} is deprecated: {}",
                crate::style::safe(&product.product_id),
                crate::style::safe(&deprecation.message)
            );
        }
        let mut endpoints = match endpoint {
            Some(endpoint) => vec![endpoint.to_owned()],
            None => endpoints(&product)?,
        };
        let endpoint = endpoints.remove(0);
        let domain = if product.domain.is_empty() { domain_of(&product.product_id) } else { &product.domain };
        let credentials = match credentials {
            Ok(credentials) if domain == domain_of(&product.product_id) => credentials,
            _ => crate::domain_token::credentials(cli, domain).await?,
        };
        Ok(Self {
            endpoint,
            fallbacks: endpoints,
            service: product.service.clone(),
            descriptor_set: entry.descriptor_set,
            entry: Some(product),
            credentials,
        })
    }

    /// Asks the server at `endpoint` for `product`'s contract through its
    /// product services' `Describe`, found with server reflection.
    async fn described_by(cli: &Cli, endpoint: &str, product: &str) -> Result<Self> {
        let credentials = crate::domain_token::credentials(cli, domain_of(product)).await?;
        let channel = mesh_grpc::client::channel(endpoint, cli.timeout, &credentials)?;
        let services = mesh_grpc::reflection::reflected_services(channel.clone())
            .await
            .with_context(|| format!("cannot list the services at {endpoint}"))?;
        for service in services.iter().filter(|s| !s.starts_with("grpc.")) {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await?;
            let path = http::uri::PathAndQuery::try_from(format!("/{service}/Describe"))?;
            let request = tonic::Request::new(Bytes::from(DescribeRequest {}.encode_to_vec()));
            let Ok(response) = grpc.unary(request, path, RawCodec).await else {
                continue;
            };
            let described = DescribeResponse::decode(response.into_inner())?;
            if described.product == product {
                eprintln!(
                    "note: the registry is unreachable; using the contract {} describes",
                    crate::style::safe(endpoint)
                );
                return Ok(Self {
                    endpoint: endpoint.to_owned(),
                    fallbacks: Vec::new(),
                    service: described.service,
                    descriptor_set: described.descriptor_set,
                    entry: None,
                    credentials,
                });
            }
        }
        bail!("{endpoint} does not serve `{product}`")
    }

    /// Moves on to the next endpoint, if any is left.
    pub(crate) fn next_endpoint(&mut self) -> bool {
        if self.fallbacks.is_empty() {
            return false;
        }
        self.endpoint = self.fallbacks.remove(0);
        true
    }

    /// The product service and its row type, from the contract.
    pub(crate) fn shape(&self) -> Result<ProductShape> {
        let pool = DescriptorPool::decode(self.descriptor_set.as_slice())
            .context("the product's descriptor set is unreadable")?;
        ProductShape::find(&pool, &self.service).map_err(|e| anyhow!("{e}"))
    }

    /// Advice for a domain that cannot be reached: its catalog status.
    pub(crate) fn unreachable(&self, detail: &str) -> anyhow::Error {
        let known = self
            .entry
            .as_ref()
            .and_then(|p| p.endpoints.iter().find(|e| e.uri == self.endpoint))
            .map(|e| {
                let renewed = style::time(e.renew_time.as_ref()).unwrap_or_default();
                format!(" (catalog status: {}, last renewed {renewed})", style::status_word(e.status()))
            })
            .unwrap_or_default();
        anyhow!("cannot reach the domain at {}{known}: {detail}", self.endpoint)
    }
}

/// The endpoints of `product` to call, in order: the serving ones starting
/// at a random one (so callers spread over replicas), then the others.
fn endpoints(product: &Product) -> Result<Vec<String>> {
    let ordered = mesh_sql::replicas::ordered_endpoints(product);
    if ordered.is_empty() {
        bail!(
            "{} has no endpoint in the catalog (status: {}); pass --endpoint if you know where it is served",
            product.product_id,
            style::status_word(product.status())
        );
    }
    Ok(ordered)
}
