//! The other serving replicas of each product, as the registry lists them.
//!
//! Replicas of a domain serve one database, so a Flight ticket or resume
//! token one issues is redeemed by any: each Flight endpoint names them
//! beside this replica's own URLs, and a Flight client whose replica dies
//! goes on at another. Only endpoints the registry holds a live lease for
//! are named; the registry takes a product's endpoints only from its own
//! domain's identity, and a token for this domain is good only at its
//! replicas.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, ProductView, ServingStatus};
use mesh_grpc::MeshChannel;

/// Per product, the URLs its other serving replicas registered.
#[derive(Debug, Clone, Default)]
pub struct Replicas(Arc<RwLock<HashMap<String, Vec<String>>>>);

impl Replicas {
    /// The URLs the other serving replicas of `product` registered (none
    /// known yet: none).
    pub fn of(&self, product: &str) -> Vec<String> {
        let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
        known.get(product).cloned().unwrap_or_default()
    }

    /// Asks the registry for the serving endpoints of each of `products`,
    /// keeping those not among `own` (this replica's URLs). A product the
    /// registry does not answer for keeps what was known.
    pub(crate) async fn refresh(
        &self,
        client: &mut CatalogServiceClient<MeshChannel>,
        products: &[String],
        own: &[String],
    ) {
        for product in products {
            let request = GetProductRequest {
                name: product.clone(),
                view: ProductView::Basic as i32,
                ..Default::default()
            };
            let answer = match client.get_product(request).await {
                Ok(answer) => answer.into_inner(),
                Err(status) => {
                    tracing::debug!(product, reason = status.message(), "cannot list the other replicas");
                    continue;
                }
            };
            let others: Vec<String> = answer
                .product
                .map(|p| p.endpoints)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.status == ServingStatus::Serving as i32 && !own.contains(&e.uri))
                .map(|e| e.uri)
                .collect();
            self.0.write().unwrap_or_else(PoisonError::into_inner).insert(product.clone(), others);
        }
    }
}
