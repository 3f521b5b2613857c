//! The replicas of one product a reader calls: the serving endpoints
//! first (from a random one, so readers spread), the others after, and
//! moving on to the next when one fails in a way another may not.

use mesh_contracts::access::domain_of;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, Product, ProductView, ServingStatus};
use mesh_grpc::{Credentials, MeshChannel};
use tonic::{Code, Status};

/// The catalog's entry of `product` as `catalog`'s caller sees it, with
/// the domain that owns it.
pub async fn lookup(
    catalog: &mut CatalogServiceClient<MeshChannel>,
    product: &str,
) -> Result<(Product, String), Status> {
    let request =
        GetProductRequest { name: product.to_owned(), view: ProductView::Basic.into(), ..Default::default() };
    let found = catalog.get_product(request).await?.into_inner().product.unwrap_or_default();
    let domain =
        if found.domain.is_empty() { domain_of(&found.product_id).to_owned() } else { found.domain.clone() };
    Ok((found, domain))
}

/// Where a product is read and what it is read with.
#[derive(Clone)]
pub struct Replicas {
    /// The endpoint being called.
    pub endpoint: String,
    /// The endpoints still to try after it, in order.
    pub fallbacks: Vec<String>,
    /// A token good at the product's domain.
    pub credentials: Credentials,
}

impl Replicas {
    /// [`Replicas::of`], or UNAVAILABLE naming `product` when the catalog
    /// lists no endpoint of it.
    pub fn serving(found: &Product, product: &str, credentials: Credentials) -> Result<Self, Status> {
        Self::of(found, credentials).ok_or_else(|| {
            Status::unavailable(format!("{product} has no endpoint in the catalog; try again later"))
        })
    }

    /// The replicas of `product` in the order to call them; `None` when
    /// the catalog lists no endpoint.
    pub fn of(product: &Product, credentials: Credentials) -> Option<Self> {
        let mut endpoints = ordered_endpoints(product);
        if endpoints.is_empty() {
            return None;
        }
        let endpoint = endpoints.remove(0);
        Some(Self { endpoint, fallbacks: endpoints, credentials })
    }

    /// Moves on to the next endpoint when `status` is a failure another
    /// replica may not have and one is left; says whether it did.
    pub fn fail_over(&mut self, status: &tonic::Status) -> bool {
        if !worth_another_replica(status) || self.fallbacks.is_empty() {
            return false;
        }
        self.endpoint = self.fallbacks.remove(0);
        true
    }
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (+{} more)", self.endpoint, self.fallbacks.len())
    }
}

/// The endpoints of `product` to call, in order: the serving ones starting
/// at a random one (so callers spread over replicas), then the others.
pub fn ordered_endpoints(product: &Product) -> Vec<String> {
    let (serving, others): (Vec<_>, Vec<_>) =
        product.endpoints.iter().partition(|e| e.status() == ServingStatus::Serving);
    let mut ordered: Vec<String> = serving.iter().map(|e| e.uri.clone()).collect();
    if !ordered.is_empty() {
        let start = rand::random_range(0..ordered.len());
        ordered.rotate_left(start);
    }
    ordered.extend(others.iter().map(|e| e.uri.clone()));
    ordered
}

/// Whether a call that failed with `status` may succeed at another replica:
/// the replica is gone, broke, or is too busy; a refusal (permission, a bad
/// query) would be the same everywhere.
pub fn worth_another_replica(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Internal | Code::ResourceExhausted | Code::Cancelled
    )
}
