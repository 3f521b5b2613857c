//! Leases, deregistration, deprecation and deletion.

use mesh_contracts::catalog::{
    DeleteProductRequest, DeleteProductResponse, DeprecateProductRequest, DeprecateProductResponse,
    DeregisterEndpointRequest, DeregisterEndpointResponse, Product, RenewLeaseRequest, RenewLeaseResponse,
    UndeprecateProductRequest, UndeprecateProductResponse,
};
use rusqlite::Connection;

use super::Catalog;
use crate::error::{RegistryError, Result};
use crate::store::{endpoints, products, timestamp};
use crate::validate;

/// Longest deprecation message accepted.
const MAX_MESSAGE: usize = 2000;

/// The error for an endpoint that is not registered: the product is unknown,
/// or it is known without this endpoint.
fn missing_endpoint(conn: &Connection, id: &str, endpoint: &str) -> Result<RegistryError> {
    Ok(match products::find(conn, id)? {
        None => RegistryError::ProductNotFound(id.to_owned()),
        Some(_) => RegistryError::EndpointNotFound { product: id.to_owned(), endpoint: endpoint.to_owned() },
    })
}

fn loaded(conn: &Connection, id: &str, now: i64) -> Result<Product> {
    products::load(conn, id, now)?.ok_or_else(|| RegistryError::ProductNotFound(id.to_owned()))
}

impl Catalog {
    pub(super) async fn renew_lease(
        &self,
        request: RenewLeaseRequest,
        renewed_by: &str,
    ) -> Result<RenewLeaseResponse> {
        let renewed_by = renewed_by.to_owned();
        let id = validate::product_name("name", &request.name)?.to_owned();
        let endpoint = validate::endpoint("endpoint", &request.endpoint)?;
        if let Some(data) = &request.data {
            validate::data_status(data)?;
        }
        let lease_ms = self.lease_ttl.as_millis() as i64;
        let now = self.clock.now_ms();
        let expires = self
            .store
            .run(move |conn| {
                let tx = conn.transaction()?;
                let lease = endpoints::Lease { now, expires: now + lease_ms, by: &renewed_by };
                if !endpoints::renew(&tx, &id, &endpoint, lease)? {
                    return Err(missing_endpoint(&tx, &id, &endpoint)?);
                }
                if let Some(data) = &request.data {
                    products::set_data(&tx, &id, data)?;
                }
                tx.commit()?;
                Ok(now + lease_ms)
            })
            .await?;
        Ok(RenewLeaseResponse {
            lease_expire_time: Some(timestamp(expires)),
            lease_ttl: prost_types::Duration::try_from(self.lease_ttl).ok(),
        })
    }

    pub(super) async fn deregister_endpoint(
        &self,
        request: DeregisterEndpointRequest,
    ) -> Result<DeregisterEndpointResponse> {
        let id = validate::product_name("name", &request.name)?.to_owned();
        let endpoint = validate::endpoint("endpoint", &request.endpoint)?;
        let now = self.clock.now_ms();
        let product = self
            .store
            .run(move |conn| {
                if !endpoints::remove(conn, &id, &endpoint)? {
                    return Err(missing_endpoint(conn, &id, &endpoint)?);
                }
                loaded(conn, &id, now)
            })
            .await?;
        tracing::info!("endpoint deregistered");
        Ok(DeregisterEndpointResponse { product: Some(product) })
    }

    pub(super) async fn deprecate(
        &self,
        request: DeprecateProductRequest,
    ) -> Result<DeprecateProductResponse> {
        let id = validate::product_name("name", &request.name)?.to_owned();
        let message = request.message.trim().to_owned();
        if message.is_empty() {
            return Err(RegistryError::invalid(
                "message",
                "a deprecation needs a message telling consumers what to use instead",
            ));
        }
        if message.chars().count() > MAX_MESSAGE {
            return Err(RegistryError::invalid(
                "message",
                format!("is longer than {MAX_MESSAGE} characters"),
            ));
        }
        let product = self.set_deprecation(id, Some(message)).await?;
        Ok(DeprecateProductResponse { product: Some(product) })
    }

    pub(super) async fn undeprecate(
        &self,
        request: UndeprecateProductRequest,
    ) -> Result<UndeprecateProductResponse> {
        let id = validate::product_name("name", &request.name)?.to_owned();
        let product = self.set_deprecation(id, None).await?;
        Ok(UndeprecateProductResponse { product: Some(product) })
    }

    async fn set_deprecation(&self, id: String, message: Option<String>) -> Result<Product> {
        let now = self.clock.now_ms();
        self.store
            .run(move |conn| {
                if !products::set_deprecation(conn, &id, message.as_deref(), now)? {
                    return Err(RegistryError::ProductNotFound(id));
                }
                loaded(conn, &id, now)
            })
            .await
    }

    pub(super) async fn delete(&self, request: DeleteProductRequest) -> Result<DeleteProductResponse> {
        let id = validate::product_name("name", &request.name)?.to_owned();
        self.store
            .run(
                move |conn| {
                    if products::delete(conn, &id)? {
                        Ok(())
                    } else {
                        Err(RegistryError::ProductNotFound(id))
                    }
                },
            )
            .await?;
        tracing::info!("product deleted");
        Ok(DeleteProductResponse {})
    }
}
