//! The `catalog_writes` table: who changed what in the catalog, and when.
//! Lease renewals are not logged (they come every few seconds and change
//! only lease times and data status): each endpoint records who registered
//! or renewed it last (`endpoints.written_by`). The newest entries are kept.

use super::sql::Sql;
use crate::error::Result;
use crate::params;

/// How many entries the log keeps.
pub const KEPT: i64 = 100_000;

/// Logs that `subject` made `action` to `product_id` at `at` (ms since the epoch).
pub fn record(db: &mut dyn Sql, at: i64, subject: &str, action: &str, product_id: &str) -> Result<()> {
    let id = db
        .query_one(
            "INSERT INTO catalog_writes (at, subject, action, product_id) VALUES ($1, $2, $3, $4) RETURNING id",
            params![at, subject, action, product_id],
        )?
        .int(0)?;
    if id % 1000 == 0 {
        db.execute("DELETE FROM catalog_writes WHERE id <= $1", params![id - KEPT])?;
    }
    Ok(())
}
