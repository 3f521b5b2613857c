//! RegisterProduct: reading the contract, versioning the schema, leasing the endpoint.

use mesh_contracts::catalog::{RegisterProductRequest, RegisterProductResponse};
use mesh_contracts::descriptor::ProductShape;
use prost_reflect::DescriptorPool;
use serde_json::json;

use super::Catalog;
use crate::contract::Contract;
use crate::error::{RegistryError, Result};
use crate::events::kinds;
use crate::store::products;
use crate::store::sql::Sql;
use crate::{quota, store, validate};
use mesh_contracts::compat::compare;

/// How a registration resolved against the stored versions.
struct Resolution {
    version: i64,
    major: u32,
    changes: Option<Vec<String>>,
    /// The product was not registered before.
    first: bool,
    /// The new version raises the major version (breaking changes allowed).
    breaking: bool,
}

impl Catalog {
    pub(super) async fn register(
        &self,
        request: RegisterProductRequest,
        registered_by: &str,
    ) -> Result<RegisterProductResponse> {
        let domain = validate::product_id("product_id", &request.product_id)?;
        validate::domain("domain", &request.domain)?;
        if domain != request.domain {
            return Err(RegistryError::invalid(
                "domain",
                format!(
                    "product `{}` belongs to domain `{domain}`, not `{}`: a product id starts with its domain",
                    request.product_id, request.domain
                ),
            ));
        }
        validate::service_name("service", &request.service)?;
        let endpoint = validate::endpoint("endpoint", &request.endpoint)?;
        if !self.plaintext_endpoints {
            validate::encrypted_off_loopback("endpoint", &endpoint)?;
        }
        if let Some(data) = &request.data {
            validate::data_status(data)?;
        }
        let contract = Contract::read(&request.descriptor_set, &request.service)?;
        let major = request.major_version.max(1);
        let domain_name = request.domain.clone();
        let lease_ms = self.lease_ttl.as_millis() as i64;

        let registered_by = registered_by.to_owned();
        let product = self
            .store
            .write(move |db| {
                let id = request.product_id.as_str();
                // Replicas registering one product take turns.
                db.lock(id)?;
                let now = db.now_ms()?;
                let expired = quota::remove_expired_endpoints(db, now)?;
                quota::check_new_product(db, id, &domain_name)?;
                quota::check_new_endpoint(db, id, &endpoint)?;
                let resolution = resolve(db, id, &contract, major)?;
                products::upsert(
                    db,
                    &products::ProductWrite {
                        product_id: id,
                        domain: &request.domain,
                        entry: &contract.entry,
                        search_text: &contract.search_text(id),
                        major_version: resolution.major,
                        latest_version: resolution.version,
                        now,
                    },
                )?;
                if let Some(changes) = &resolution.changes {
                    products::insert_version(
                        db,
                        &products::NewVersion {
                            product_id: id,
                            version: resolution.version,
                            major_version: resolution.major,
                            fingerprint: &contract.fingerprint,
                            descriptor_set: &contract.descriptor_set,
                            changes,
                            now,
                            registered_by: &registered_by,
                        },
                    )?;
                    quota::prune_versions(db, id, resolution.version)?;
                }
                if let Some(data) = &request.data {
                    products::set_data(db, id, data)?;
                }
                let lease = store::endpoints::Lease { now, expires: now + lease_ms, by: &registered_by };
                let serving = store::endpoints::upsert(db, id, &endpoint, lease)?;
                let product = products::load(db, id, now)?
                    .ok_or_else(|| RegistryError::Internal(format!("`{id}` vanished while registering")))?;
                db.changed("*")?;
                // Events last, in the order of their changes: the log's lock
                // is the transaction's last.
                let mut reported: Vec<_> =
                    expired.iter().map(|(product, uri)| expired_event(product, uri)).collect();
                reported.extend(registration_events(
                    id,
                    &domain_name,
                    &resolution,
                    serving.then_some(&endpoint),
                ));
                if let Some(data) = &request.data {
                    reported.extend(crate::events::data::reported(db, id, data)?);
                }
                for event in reported {
                    store::events::append(db, event)?;
                }
                Ok((product, resolution))
            })
            .await?;
        let (product, resolution) = product;
        tracing::info!(
            version = resolution.version,
            new_version = resolution.changes.is_some(),
            "product registered"
        );
        Ok(RegisterProductResponse {
            product: Some(product),
            schema_version: resolution.version,
            new_version: resolution.changes.is_some(),
            lease_ttl: prost_types::Duration::try_from(self.lease_ttl).ok(),
        })
    }
}

/// The event of an endpoint removed an hour after its lease ran out.
fn expired_event(product: &str, endpoint: &str) -> store::events::NewEvent {
    let data = json!({ "endpoint": endpoint, "reason": "its lease ran out over an hour ago" });
    kinds::about(kinds::ENDPOINT_REMOVED, product, data)
}

/// The events a registration reports: the product's first registration,
/// a new version in force, an endpoint beginning to serve.
fn registration_events(
    id: &str,
    domain: &str,
    resolution: &Resolution,
    serving: Option<&String>,
) -> Vec<store::events::NewEvent> {
    let mut events = Vec::new();
    if resolution.first {
        events.push(kinds::about(kinds::PRODUCT_REGISTERED, id, json!({ "domain": domain })));
    }
    if let Some(changes) = &resolution.changes {
        let version = (resolution.version, resolution.major);
        events.push(kinds::version_published(id, version, changes, resolution.breaking));
    }
    if let Some(endpoint) = serving {
        events.push(kinds::about(kinds::ENDPOINT_SERVING, id, json!({ "endpoint": endpoint })));
    }
    events
}

/// Decides which schema version a registration resolves to; `changes` is set
/// when a new version is to be written.
fn resolve(db: &mut dyn Sql, id: &str, contract: &Contract, major: u32) -> Result<Resolution> {
    let current = products::find(db, id)?;
    quota::check_major(id, major, current.as_ref().map(|c| c.major_version))?;
    let Some(current) = current else {
        let changes = Some(vec!["first version".to_owned()]);
        return Ok(Resolution { version: 1, major, changes, first: true, breaking: false });
    };
    if major < current.major_version {
        return Err(RegistryError::MajorVersionBehind {
            product: id.to_owned(),
            requested: major,
            current: current.major_version,
        });
    }
    let latest = products::schema(db, id, current.latest_version)?.ok_or_else(|| {
        RegistryError::Internal(format!("`{id}` has no stored schema version {}", current.latest_version))
    })?;
    let bumped = major > current.major_version;
    if latest.fingerprint == contract.fingerprint && !bumped {
        return Ok(Resolution {
            version: current.latest_version,
            major,
            changes: None,
            first: false,
            breaking: false,
        });
    }
    let old = DescriptorPool::decode(latest.descriptor_set.as_slice())
        .ok()
        .and_then(|pool| ProductShape::find(&pool, &current.service).ok())
        .ok_or_else(|| RegistryError::Internal(format!("stored schema of `{id}` is unreadable")))?;
    let diff = compare(&old, &contract.shape);
    if !diff.breaking.is_empty() && !bumped {
        return Err(RegistryError::BreakingChange {
            product: id.to_owned(),
            major: current.major_version,
            changes: diff.breaking,
        });
    }
    let mut changes = Vec::new();
    if bumped {
        changes.push(format!("major version raised from {} to {major}", current.major_version));
    }
    changes.extend(diff.breaking);
    changes.extend(diff.compatible);
    if changes.is_empty() {
        changes.push("documentation changed".to_owned());
    }
    Ok(Resolution {
        version: current.latest_version + 1,
        major,
        changes: Some(changes),
        first: false,
        breaking: bumped,
    })
}
