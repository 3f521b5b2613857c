//! Leases, deregistration, deprecation and deletion.

use serde_json::json;

use super::Catalog;
use crate::error::{RegistryError, Result};
use crate::events::kinds;
use crate::store::sql::Sql;
use crate::store::{endpoints, events, products, timestamp};
use crate::{params, validate};
use mesh_contracts::catalog::{
    DeleteProductRequest, DeleteProductResponse, DeprecateProductRequest, DeprecateProductResponse,
    DeregisterEndpointRequest, DeregisterEndpointResponse, Product, RenewLeaseRequest, RenewLeaseResponse,
    UndeprecateProductRequest, UndeprecateProductResponse,
};

/// Longest deprecation message accepted.
const MAX_MESSAGE: usize = 2000;

/// The error for an endpoint that is not registered: the product is unknown,
/// or it is known without this endpoint.
fn missing_endpoint(db: &mut dyn Sql, id: &str, endpoint: &str) -> Result<RegistryError> {
    Ok(match products::find(db, id)? {
        None => RegistryError::ProductNotFound(id.to_owned()),
        Some(_) => RegistryError::EndpointNotFound { product: id.to_owned(), endpoint: endpoint.to_owned() },
    })
}

fn loaded(db: &mut dyn Sql, id: &str, now: i64) -> Result<Product> {
    products::load(db, id, now)?.ok_or_else(|| RegistryError::ProductNotFound(id.to_owned()))
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
        let expires = self
            .store
            .write(move |db| {
                let now = db.now_ms()?;
                let lease = endpoints::Lease { now, expires: now + lease_ms, by: &renewed_by };
                let Some(revived) = endpoints::renew(db, &id, &endpoint, lease)? else {
                    return Err(missing_endpoint(db, &id, &endpoint)?);
                };
                if let Some(data) = &request.data {
                    products::set_data(db, &id, data)?;
                }
                db.changed(&id)?;
                let mut reported = Vec::new();
                if revived {
                    let data =
                        json!({ "endpoint": endpoint, "reason": "its lease was renewed after it ran out" });
                    reported.push(kinds::about(kinds::ENDPOINT_SERVING, &id, data));
                }
                if let Some(data) = &request.data {
                    reported.extend(crate::events::data::reported(db, &id, data)?);
                }
                for event in reported {
                    events::append(db, event)?;
                }
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
        let product = self
            .store
            .write(move |db| {
                if !endpoints::remove(db, &id, &endpoint)? {
                    return Err(missing_endpoint(db, &id, &endpoint)?);
                }
                db.changed("*")?;
                let data = json!({ "endpoint": endpoint, "reason": "deregistered" });
                events::append(db, kinds::about(kinds::ENDPOINT_REMOVED, &id, data))?;
                let now = db.now_ms()?;
                loaded(db, &id, now)
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
        self.store
            .write(move |db| {
                let now = db.now_ms()?;
                let before = db
                    .query_opt(
                        "SELECT deprecation_message FROM products WHERE product_id = $1",
                        params![id.as_str()],
                    )?
                    .map(|row| row.opt_text(0))
                    .transpose()?
                    .flatten();
                if !products::set_deprecation(db, &id, message.as_deref(), now)? {
                    return Err(RegistryError::ProductNotFound(id));
                }
                db.changed("*")?;
                let event = match &message {
                    Some(text) if before.as_ref() != Some(text) => {
                        Some(kinds::about(kinds::DEPRECATED, &id, json!({ "message": text })))
                    }
                    None if before.is_some() => Some(kinds::about(kinds::UNDEPRECATED, &id, json!({}))),
                    _ => None,
                };
                if let Some(event) = event {
                    events::append(db, event)?;
                }
                loaded(db, &id, now)
            })
            .await
    }

    pub(super) async fn delete(&self, request: DeleteProductRequest) -> Result<DeleteProductResponse> {
        let id = validate::product_name("name", &request.name)?.to_owned();
        self.store
            .write(move |db| {
                if !products::delete(db, &id)? {
                    return Err(RegistryError::ProductNotFound(id));
                }
                db.changed("*")?;
                events::append(db, kinds::about(kinds::DELETED, &id, json!({}))).map(drop)
            })
            .await?;
        tracing::info!("product deleted");
        Ok(DeleteProductResponse {})
    }
}
