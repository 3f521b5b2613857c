//! The other serving replicas of each product, as the registry lists them.
//!
//! Replicas of a domain serve one database, so a Flight ticket or resume
//! token one issues is redeemed by any: each Flight endpoint names them
//! beside this replica's own URLs, and a Flight client whose replica dies
//! goes on at another. Only endpoints the registry holds a live lease for
//! are named, as last heard (a list not heard again for three renewals,
//! or when the registry could not be reached, names none); the registry
//! takes a product's endpoints only from its own domain's identity (or a
//! registry admin), and a token for this domain is good only at its
//! replicas. No URL weaker than this replica's own is named: none in plain
//! `http` when this replica serves `https`, and no loopback URL unless
//! this replica's are all loopback (a client on another host would send
//! its token to whatever listens on its own loopback).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, ProductView, ServingStatus};
use mesh_grpc::MeshChannel;

/// Per product, the URLs its other serving replicas registered, when
/// heard and for how long they hold.
#[derive(Debug, Clone, Default)]
pub struct Replicas(Arc<RwLock<HashMap<String, Heard>>>);

#[derive(Debug)]
struct Heard {
    urls: Vec<String>,
    at: Instant,
    holds: Duration,
}

impl Replicas {
    /// The URLs the other serving replicas of `product` registered, as
    /// last heard while that holds (else none).
    pub fn of(&self, product: &str) -> Vec<String> {
        let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
        known
            .get(product)
            .filter(|heard| heard.at.elapsed() <= heard.holds)
            .map_or_else(Vec::new, |h| h.urls.clone())
    }

    /// Forgets every list (the registry could not be asked).
    pub(crate) fn forget(&self) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Asks the registry for the serving endpoints of each of `products`,
    /// keeping for `holds` those not among `own` (this replica's URLs) and
    /// no weaker than them. A product the registry does not answer for
    /// names none.
    pub(crate) async fn refresh(
        &self,
        client: &mut CatalogServiceClient<MeshChannel>,
        products: &[String],
        own: &[String],
        holds: Duration,
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
                    self.0.write().unwrap_or_else(PoisonError::into_inner).remove(product);
                    continue;
                }
            };
            let urls: Vec<String> = answer
                .product
                .map(|p| p.endpoints)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.status == ServingStatus::Serving as i32 && !own.contains(&e.uri))
                .map(|e| e.uri)
                .filter(|url| as_strong(url, own))
                .collect();
            let heard = Heard { urls, at: Instant::now(), holds };
            self.0.write().unwrap_or_else(PoisonError::into_inner).insert(product.clone(), heard);
        }
    }
}

/// Whether `url` is no weaker than every one of `own`: `https` if any of
/// them is, loopback only if all of them are.
fn as_strong(url: &str, own: &[String]) -> bool {
    let tls = |url: &str| url.starts_with("https://");
    let loopback = |url: &str| {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let host = rest.rsplit_once(':').map_or(rest, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    };
    (tls(url) || !own.iter().any(|o| tls(o))) && (!loopback(url) || own.iter().all(|o| loopback(o)))
}

#[cfg(test)]
mod tests {
    use super::as_strong;

    #[test]
    fn no_url_weaker_than_this_replicas_is_named() {
        let own = |urls: &[&str]| urls.iter().map(|u| u.to_string()).collect::<Vec<_>>();
        let tls = own(&["https://payment-1.mesh.example:50052"]);
        assert!(as_strong("https://payment-2.mesh.example:50052", &tls));
        assert!(!as_strong("http://payment-2.mesh.example:50052", &tls), "plain http beside https");
        assert!(!as_strong("https://127.0.0.1:50052", &tls), "loopback beside a network URL");
        assert!(!as_strong("https://localhost:50052", &tls));
        assert!(!as_strong("https://[::1]:50052", &tls));
        let local = own(&["http://127.0.0.1:50052"]);
        assert!(as_strong("http://127.0.0.1:50053", &local), "replicas on one host");
        assert!(as_strong("http://[::1]:50053", &local));
        let mixed = own(&["http://127.0.0.1:50052", "http://payment:50052"]);
        assert!(!as_strong("http://127.0.0.1:50053", &mixed), "not all of this replica's are loopback");
        assert!(as_strong("http://payment-2:50052", &mixed));
    }
}
