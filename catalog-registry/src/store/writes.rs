//! The `catalog_writes` table: who changed what in the catalog, and when.
//! Lease renewals are not logged (they come every few seconds and change
//! only lease times and data status): each endpoint records who registered
//! or renewed it last (`endpoints.written_by`). The newest entries are kept.

use rusqlite::{Connection, params};

use crate::error::Result;

/// How many entries the log keeps.
pub const KEPT: i64 = 100_000;

/// Logs that `subject` made `action` to `product_id` at `at` (ms since the epoch).
pub fn record(conn: &Connection, at: i64, subject: &str, action: &str, product_id: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO catalog_writes (at, subject, action, product_id) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![at, subject, action, product_id])?;
    let id = conn.last_insert_rowid();
    if id % 1000 == 0 {
        conn.prepare_cached("DELETE FROM catalog_writes WHERE id <= ?1")?.execute([id - KEPT])?;
    }
    Ok(())
}
