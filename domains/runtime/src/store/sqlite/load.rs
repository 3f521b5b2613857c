//! A load on SQLite: the rows replaced, the indexes rebuilt, the quality
//! counted and the load recorded, in the writer's one transaction.

use indicatif::ProgressBar;
use mesh_contracts::product::QualityResult;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::query::dialect::Dialect;
use crate::store::load::{Chunk, ChunkCell, Chunks, LoadPlan, LoadSummary, Phases};
use crate::store::now_ms;

/// Replaces the table's rows with the chunks, rebuilds the indexes, runs
/// the quality checks and records the load: one transaction.
pub(super) fn replace_rows(
    conn: &mut Connection,
    load: &LoadPlan<'_>,
    chunks: Chunks,
    progress: &ProgressBar,
) -> Result<LoadSummary> {
    let (schema, table) = (load.schema, &load.schema.table);
    let mut phases = Phases::start();
    conn.execute_batch(&Dialect::Sqlite.create_table(schema, &schema.table))?;
    let tx = conn.transaction()?;
    let before: i64 = tx
        .query_row("SELECT row_count FROM mesh_loads WHERE product = ?1", [load.product], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    // Indexes are built once after the rows are in (a sort), not kept
    // up to date row by row.
    for name in load.indexes.iter().map(String::as_str).chain(["key"]) {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {table}_by_{name}"))?;
    }
    tx.execute(&format!("DELETE FROM {table}"), [])?;
    let placeholders = vec!["?"; schema.columns.len()].join(", ");
    let mut insert = tx.prepare(&format!("INSERT INTO {table} VALUES ({placeholders})"))?;
    let mut rows = 0i64;
    for chunk in chunks {
        rows += insert_chunk(&mut insert, &chunk?, schema.columns.len())?;
        progress.set_position(rows as u64);
    }
    drop(insert);
    phases.end("insert");
    load.check_shrink(before, rows)?;
    tx.execute_batch(&Dialect::Sqlite.create_table(schema, &schema.table))?;
    tx.execute_batch(&schema.index_sql(load.indexes))?;
    phases.end("index");
    let quality = load.quality.results(&counts(&tx, &load.quality.statements(table))?);
    phases.end("quality");
    record_load(&tx, load.product, rows, load.source, &quality)?;
    record_fingerprint(&tx, load.product, load.fingerprint)?;
    tx.commit()?;
    phases.end("commit");
    tracing::debug!(product = load.product, rows, phases = %phases, "load phases");
    Ok(LoadSummary { rows, quality })
}
/// Records the fingerprint of the source a load read (inside its transaction).
fn record_fingerprint(conn: &Connection, product: &str, fingerprint: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO mesh_meta (key, value) VALUES ('source:' || ?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![product, fingerprint.as_bytes()],
    )?;
    Ok(())
}

/// Records a finished load and its quality results (inside the load's transaction).
fn record_load(
    conn: &Connection,
    product: &str,
    row_count: i64,
    source: &str,
    quality: &[QualityResult],
) -> Result<()> {
    conn.execute(
        "INSERT INTO mesh_loads (product, loaded_at, row_count, source) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (product) DO UPDATE SET loaded_at = ?2, row_count = ?3, source = ?4",
        params![product, now_ms(), row_count, source],
    )?;
    conn.execute(
        "INSERT INTO mesh_meta (key, value) VALUES ('load:' || ?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![product, &rand::random::<u64>().to_le_bytes()[..]],
    )?;
    conn.execute("DELETE FROM mesh_quality WHERE product = ?1", [product])?;
    for (position, result) in quality.iter().enumerate() {
        conn.execute(
            "INSERT INTO mesh_quality (product, rule, description, failed_rows, checked_rows, position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                product,
                result.rule,
                result.description,
                result.failed_rows,
                result.checked_rows,
                position as i64
            ],
        )?;
    }
    Ok(())
}

/// Inserts every row of `chunk` with `insert` (one placeholder per
/// column); the number of rows.
fn insert_chunk(insert: &mut rusqlite::Statement<'_>, chunk: &Chunk, width: usize) -> Result<i64> {
    for row in chunk.cells.chunks_exact(width) {
        for (param, cell) in row.iter().enumerate() {
            match *cell {
                ChunkCell::Integer(n) => insert.raw_bind_parameter(param + 1, n)?,
                ChunkCell::Real(x) => insert.raw_bind_parameter(param + 1, x)?,
                ChunkCell::Text(start, end) => {
                    insert.raw_bind_parameter(param + 1, &chunk.text[start as usize..end as usize])?
                }
            }
        }
        insert.raw_execute()?;
    }
    Ok(chunk.row_count(width) as i64)
}

/// Runs each statement of counts: its one row of integers.
pub(super) fn counts(conn: &Connection, statements: &[String]) -> Result<Vec<Vec<i64>>> {
    statements
        .iter()
        .map(|sql| {
            Ok(conn
                .query_row(sql, [], |row| (0..row.as_ref().column_count()).map(|i| row.get(i)).collect())?)
        })
        .collect()
}
