//! The `endpoints` table: where each product is served and its lease.

use mesh_contracts::catalog::{Endpoint, ServingStatus};
use rusqlite::{Connection, params};

use super::timestamp;
use crate::error::Result;

/// Registers `uri` for `product_id`, or renews it, with a lease until `expires`.
pub fn upsert(conn: &Connection, product_id: &str, uri: &str, now: i64, expires: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO endpoints (product_id, uri, register_time, renew_time, lease_expire_time)
         VALUES (?1, ?2, ?3, ?3, ?4)
         ON CONFLICT (product_id, uri) DO UPDATE SET renew_time = ?3, lease_expire_time = ?4",
    )?
    .execute(params![product_id, uri, now, expires])?;
    Ok(())
}

/// Renews the lease of a registered endpoint; false if it is not registered.
pub fn renew(conn: &Connection, product_id: &str, uri: &str, now: i64, expires: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE endpoints SET renew_time = ?3, lease_expire_time = ?4
             WHERE product_id = ?1 AND uri = ?2",
        )?
        .execute(params![product_id, uri, now, expires])?;
    Ok(changed == 1)
}

/// Removes an endpoint; false if it was not registered.
pub fn remove(conn: &Connection, product_id: &str, uri: &str) -> Result<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM endpoints WHERE product_id = ?1 AND uri = ?2")?
        .execute(params![product_id, uri])?;
    Ok(changed == 1)
}

/// The endpoints of a product, each with its status at `now`.
pub fn list(conn: &Connection, product_id: &str, now: i64) -> Result<Vec<Endpoint>> {
    let mut statement = conn.prepare_cached(
        "SELECT uri, register_time, renew_time, lease_expire_time
         FROM endpoints WHERE product_id = ?1 ORDER BY uri",
    )?;
    let rows = statement.query_map([product_id], |row| {
        let expires: i64 = row.get(3)?;
        let status = if expires > now { ServingStatus::Serving } else { ServingStatus::Stale };
        Ok(Endpoint {
            uri: row.get(0)?,
            status: status as i32,
            register_time: Some(timestamp(row.get(1)?)),
            renew_time: Some(timestamp(row.get(2)?)),
            lease_expire_time: Some(timestamp(expires)),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A product's status from its endpoints: serving if any lease holds, stale
/// if all have expired, offline if it has none.
pub fn status_of(endpoints: &[Endpoint]) -> ServingStatus {
    if endpoints.is_empty() {
        ServingStatus::Offline
    } else if endpoints.iter().any(|e| e.status == ServingStatus::Serving as i32) {
        ServingStatus::Serving
    } else {
        ServingStatus::Stale
    }
}
