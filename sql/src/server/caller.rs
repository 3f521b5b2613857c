//! The mesh as one Flight SQL client sees it: the registry's catalog asked
//! with the client's own token, and that token exchanged (RFC 8693) at the
//! registry for one good at each domain read. The service holds no token
//! of its own; exchanged tokens are kept per client token until a minute
//! before they end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mesh_contracts::catalog::ListProductsRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_grpc::Credentials;
use mesh_grpc::auth::exchange;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::Replicas;
use crate::engine::Mesh;

/// Pages of one product listing read at most.
const MAX_PAGES: usize = 100;
/// Exchanged tokens kept at most; past this the oldest half is dropped.
const MAX_KEPT: usize = 10_000;
/// A kept token is used until this long before it ends.
const MARGIN: Duration = Duration::from_secs(60);

/// Exchanged tokens by (digest of the client's token, domain), with when
/// to stop using each.
type Kept = HashMap<([u8; 32], String), (String, Instant)>;

/// The registry the service asks, and the domain tokens it was given.
pub(crate) struct Registry {
    url: String,
    timeout: Duration,
    kept: Mutex<Kept>,
}

impl Registry {
    /// The registry at `url`.
    pub(crate) fn new(url: String, timeout: Duration) -> Arc<Self> {
        Arc::new(Self { url, timeout, kept: Mutex::new(HashMap::new()) })
    }

    /// The credentials to call `domain` with for the client whose token is
    /// `token`: a kept exchanged token, or a fresh exchange.
    async fn domain_credentials(&self, token: &str, domain: &str) -> Result<Credentials, Status> {
        let key = (Sha256::digest(token.as_bytes()).into(), domain.to_owned());
        let now = Instant::now();
        if let Some((kept, _)) = self.kept().get(&key).filter(|(_, until)| *until > now) {
            return credentials(kept);
        }
        let url = format!("{}{}", self.url.trim_end_matches('/'), exchange::TOKEN_PATH);
        let exchanged = exchange::exchange(&url, token, &exchange::domain_audience(domain))
            .await
            .map_err(|e| Status::permission_denied(format!("no token for domain `{domain}`: {e}")))?;
        let until = now + Duration::from_secs(exchanged.expires_in).saturating_sub(MARGIN);
        let mut kept = self.kept();
        if kept.len() >= MAX_KEPT {
            let mut ends: Vec<Instant> = kept.values().map(|(_, until)| *until).collect();
            ends.sort();
            let cut = ends[ends.len() / 2];
            kept.retain(|_, (_, until)| *until > cut);
        }
        kept.insert(key, (exchanged.token.clone(), until));
        credentials(&exchanged.token)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn credentials(token: &str) -> Result<Credentials, Status> {
    Credentials::token(token).map_err(|e| Status::unauthenticated(e.to_string()))
}

/// One client's view of the mesh.
pub(crate) struct Caller {
    registry: Arc<Registry>,
    /// The client's bearer token, as it sent it (none without auth).
    token: Option<String>,
}

impl Caller {
    /// The client calling with `token`.
    pub(crate) fn new(registry: Arc<Registry>, token: Option<String>) -> Self {
        Self { registry, token }
    }

    fn catalog(&self) -> Result<CatalogServiceClient<mesh_grpc::MeshChannel>, Status> {
        let credentials = match &self.token {
            Some(token) => credentials(token)?,
            None => Credentials::none(),
        };
        let channel = mesh_grpc::client::channel(&self.registry.url, self.registry.timeout, &credentials)
            .map_err(|e| Status::unavailable(format!("the registry at {}: {e}", self.registry.url)))?;
        Ok(CatalogServiceClient::new(channel))
    }
}

#[async_trait]
impl Mesh for Caller {
    async fn products(&self) -> Result<Vec<String>, Status> {
        let mut catalog = self.catalog()?;
        let mut ids = Vec::new();
        let mut page_token = String::new();
        for _ in 0..MAX_PAGES {
            let request = ListProductsRequest { page_size: 1000, page_token, ..Default::default() };
            let page = catalog.list_products(request).await?.into_inner();
            ids.extend(page.products.into_iter().map(|p| p.product_id));
            if page.next_page_token.is_empty() {
                return Ok(ids);
            }
            page_token = page.next_page_token;
        }
        Err(Status::resource_exhausted(format!("the registry sent more than {MAX_PAGES} pages of products")))
    }

    async fn replicas(&self, product: &str) -> Result<Replicas, Status> {
        let (found, domain) = crate::replicas::lookup(&mut self.catalog()?, product).await?;
        let credentials = match &self.token {
            Some(token) => self.registry.domain_credentials(token, &domain).await?,
            None => Credentials::none(),
        };
        Replicas::serving(&found, product, credentials)
    }
}
