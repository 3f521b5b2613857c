//! The `endpoints` table: where each product is served and its lease.

use mesh_contracts::catalog::{Endpoint, ServingStatus};

use super::sql::Sql;
use super::timestamp;
use crate::error::Result;
use crate::params;

/// A lease granted at `now` until `expires` (ms since the epoch) to the
/// caller named `by`, recorded as the endpoint's last writer.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    /// When it was granted.
    pub now: i64,
    /// When it runs out.
    pub expires: i64,
    /// Who registered or renewed it (the caller's subject).
    pub by: &'a str,
}

/// Registers `uri` for `product_id`, or renews it, with `lease`; whether
/// it begins serving (it was not registered, or its lease had run out).
pub fn upsert(db: &mut dyn Sql, product_id: &str, uri: &str, lease: Lease<'_>) -> Result<bool> {
    let held = db
        .query_opt(
            "SELECT lease_expire_time FROM endpoints WHERE product_id = $1 AND uri = $2",
            params![product_id, uri],
        )?
        .map(|row| row.int(0))
        .transpose()?
        .is_some_and(|expires| expires > lease.now);
    db.execute(
        "INSERT INTO endpoints (product_id, uri, register_time, renew_time, lease_expire_time, written_by)
         VALUES ($1, $2, $3, $3, $4, $5)
         ON CONFLICT (product_id, uri) DO UPDATE SET renew_time = $3, lease_expire_time = $4, written_by = $5",
        params![product_id, uri, lease.now, lease.expires, lease.by],
    )?;
    Ok(!held)
}

/// Renews the lease of a registered endpoint: `None` if it is not
/// registered, else whether it begins serving again (its lease had run out).
pub fn renew(db: &mut dyn Sql, product_id: &str, uri: &str, lease: Lease<'_>) -> Result<Option<bool>> {
    let expires = db
        .query_opt(
            "SELECT lease_expire_time FROM endpoints WHERE product_id = $1 AND uri = $2",
            params![product_id, uri],
        )?
        .map(|row| row.int(0))
        .transpose()?;
    let Some(expires) = expires else { return Ok(None) };
    db.execute(
        "UPDATE endpoints SET renew_time = $3, lease_expire_time = $4, written_by = $5
         WHERE product_id = $1 AND uri = $2",
        params![product_id, uri, lease.now, lease.expires, lease.by],
    )?;
    Ok(Some(expires <= lease.now))
}

/// Removes an endpoint; false if it was not registered.
pub fn remove(db: &mut dyn Sql, product_id: &str, uri: &str) -> Result<bool> {
    let changed =
        db.execute("DELETE FROM endpoints WHERE product_id = $1 AND uri = $2", params![product_id, uri])?;
    Ok(changed == 1)
}

/// The endpoints of a product, each with its status at `now`.
pub fn list(db: &mut dyn Sql, product_id: &str, now: i64) -> Result<Vec<Endpoint>> {
    let rows = db.query(
        "SELECT uri, register_time, renew_time, lease_expire_time
         FROM endpoints WHERE product_id = $1 ORDER BY uri",
        params![product_id],
    )?;
    rows.iter()
        .map(|row| {
            let expires = row.int(3)?;
            let status = if expires > now { ServingStatus::Serving } else { ServingStatus::Stale };
            Ok(Endpoint {
                uri: row.text(0)?,
                status: status as i32,
                register_time: Some(timestamp(row.int(1)?)),
                renew_time: Some(timestamp(row.int(2)?)),
                lease_expire_time: Some(timestamp(expires)),
            })
        })
        .collect()
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

/// How many products are serving, stale and offline now (see [`status_of`]).
pub fn count_by_status(db: &mut dyn Sql) -> Result<Vec<(&'static str, i64)>> {
    let now = db.now_ms()?;
    let row = db.query_one(
        "SELECT
           COALESCE(SUM(CASE WHEN live > 0 THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN live = 0 AND registered > 0 THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN registered = 0 THEN 1 ELSE 0 END), 0)
         FROM (SELECT p.product_id,
                 (SELECT count(*) FROM endpoints e WHERE e.product_id = p.product_id
                    AND e.lease_expire_time > $1) AS live,
                 (SELECT count(*) FROM endpoints e WHERE e.product_id = p.product_id) AS registered
               FROM products p) AS counted",
        params![now],
    )?;
    Ok(vec![("serving", row.int(0)?), ("stale", row.int(1)?), ("offline", row.int(2)?)])
}
