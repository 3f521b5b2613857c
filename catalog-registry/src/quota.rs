//! The registry's quotas: what one registrant can make the catalog hold.
//! Each has a number, and reaching it is RESOURCE_EXHAUSTED naming it.

use crate::error::{RegistryError, Result};
use crate::params;
use crate::store::sql::Sql;

/// Schema versions per product whose descriptor sets are kept; older
/// versions keep their fingerprint and history, not their schema.
pub const VERSIONS_KEPT: i64 = 20;
/// Products one domain may register.
pub const PRODUCTS_PER_DOMAIN: i64 = 200;
/// Endpoints one product may have registered at once.
pub const ENDPOINTS_PER_PRODUCT: i64 = 16;
/// How long an endpoint whose lease expired stays listed (as stale)
/// before it is removed.
pub const EXPIRED_ENDPOINT_GRACE_MS: i64 = 60 * 60 * 1000;
/// The most bytes of products one ListProducts page holds, far below the
/// 4 MiB a gRPC client accepts by default.
pub const PAGE_BYTES: usize = 1024 * 1024;

/// Refuses a new product when its domain already has the most allowed.
pub fn check_new_product(db: &mut dyn Sql, product_id: &str, domain: &str) -> Result<()> {
    if db.query_opt("SELECT 1 FROM products WHERE product_id = $1", params![product_id])?.is_some() {
        return Ok(());
    }
    let count = db.query_one("SELECT count(*) FROM products WHERE domain = $1", params![domain])?.int(0)?;
    if count >= PRODUCTS_PER_DOMAIN {
        return Err(RegistryError::Quota(format!(
            "domain `{domain}` already has {count} products, the most a domain may register \
             ({PRODUCTS_PER_DOMAIN}); delete products it no longer serves"
        )));
    }
    Ok(())
}

/// Refuses a new endpoint when the product already has the most allowed.
pub fn check_new_endpoint(db: &mut dyn Sql, product_id: &str, uri: &str) -> Result<()> {
    let exists = "SELECT 1 FROM endpoints WHERE product_id = $1 AND uri = $2";
    if db.query_opt(exists, params![product_id, uri])?.is_some() {
        return Ok(());
    }
    let count =
        db.query_one("SELECT count(*) FROM endpoints WHERE product_id = $1", params![product_id])?.int(0)?;
    if count >= ENDPOINTS_PER_PRODUCT {
        return Err(RegistryError::Quota(format!(
            "product `{product_id}` already has {count} endpoints, the most a product may have \
             ({ENDPOINTS_PER_PRODUCT}); deregister endpoints that are gone"
        )));
    }
    Ok(())
}

/// Removes the endpoints whose lease ran out more than the grace period
/// ago; which they were (product, endpoint).
pub fn remove_expired_endpoints(db: &mut dyn Sql, now: i64) -> Result<Vec<(String, String)>> {
    db.query(
        "DELETE FROM endpoints WHERE lease_expire_time < $1 RETURNING product_id, uri",
        params![now - EXPIRED_ENDPOINT_GRACE_MS],
    )?
    .iter()
    .map(|row| Ok((row.text(0)?, row.text(1)?)))
    .collect()
}

/// Drops the descriptor sets of versions older than the last
/// [`VERSIONS_KEPT`] of a product whose latest version is `latest`.
pub fn prune_versions(db: &mut dyn Sql, product_id: &str, latest: i64) -> Result<()> {
    db.execute(
        "UPDATE schema_versions SET descriptor_set = $3 WHERE product_id = $1 AND version <= $2
         AND length(descriptor_set) > 0",
        params![product_id, latest - VERSIONS_KEPT, Vec::<u8>::new()],
    )?;
    Ok(())
}

/// Checks the major version a registration asks for against the product's
/// current one (`None` for a new product): it may stay or rise by one.
pub fn check_major(product_id: &str, requested: u32, current: Option<u32>) -> Result<()> {
    match current {
        None if requested > 1 => Err(RegistryError::PermissionDenied(format!(
            "major_version: {requested} for the new product `{product_id}`; a product starts at major version 1"
        ))),
        Some(current) if requested > current.saturating_add(1) => {
            Err(RegistryError::PermissionDenied(format!(
                "major_version: {requested} jumps past {} for `{product_id}` (now at {current}); raise it one at a time",
                current + 1
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_major_version_starts_at_one_and_rises_by_one() {
        assert!(check_major("p.x", 1, None).is_ok());
        assert_eq!(
            check_major("p.x", u32::MAX, None).unwrap_err().to_string(),
            "major_version: 4294967295 for the new product `p.x`; a product starts at major version 1"
        );
        assert!(check_major("p.x", 3, Some(2)).is_ok());
        assert!(check_major("p.x", 2, Some(2)).is_ok());
        assert_eq!(
            check_major("p.x", 4, Some(2)).unwrap_err().to_string(),
            "major_version: 4 jumps past 3 for `p.x` (now at 2); raise it one at a time"
        );
        assert!(check_major("p.x", u32::MAX, Some(u32::MAX)).is_ok());
    }
}
