//! A load on PostgreSQL: a new table by binary COPY, its indexes, quality
//! and the bookkeeping that makes it current, in one transaction.

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, pin_mut};
use indicatif::ProgressBar;
use mesh_contracts::product::QualityResult;
use mesh_postgres::deadpool_postgres::GenericClient;
use mesh_postgres::{Database, DbError};

use super::{DROP_WAIT, checked, data_table};
use crate::error::Result;
use crate::query::dialect::Dialect;
use crate::store::load::{Field, LoadPlan, LoadSummary, Phases};
use crate::store::{Chunks, now_ms};
use crate::values::schema::ColumnKind;

/// The load's transaction: a new table by binary COPY, its indexes and
/// statistics, quality, and the bookkeeping that makes it current. Returns
/// the table it replaced.
pub(super) async fn replace_rows(
    db: &Database,
    load: &LoadPlan<'_>,
    chunks: Chunks,
    progress: &ProgressBar,
) -> Result<(LoadSummary, Option<String>)> {
    let schema = load.schema;
    let mut phases = Phases::start();
    let mut client = db.pool().get().await.map_err(DbError::from)?;
    let transaction = client.transaction().await.map_err(DbError::from)?;
    // No statement timeout for a load; memory enough to sort its indexes.
    transaction
        .batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL maintenance_work_mem = '256MB'")
        .await
        .map_err(DbError::from)?;
    // One load of a product at a time, whichever replica runs it.
    transaction
        .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&load.product])
        .await
        .map_err(DbError::from)?;
    let before: i64 = transaction
        .query_opt("SELECT row_count FROM mesh_loads WHERE product = $1", &[&load.product])
        .await
        .map_err(DbError::from)?
        .map_or(0, |r| r.get(0));
    let previous: Option<String> = transaction
        .query_opt("SELECT data_table FROM mesh_tables WHERE product = $1", &[&load.product])
        .await
        .map_err(DbError::from)?
        .map(|r| r.get(0));
    let load_id = rand::random::<u64>() >> 1;
    let table = data_table(&schema.table, load_id);
    let create = Dialect::Postgres.create_table(schema, &table);
    let (create_table, key_index) = create.split_once('\n').unwrap_or((&create, ""));
    transaction.batch_execute(create_table).await.map_err(DbError::from)?;

    let mut columns: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    columns.push("rowid");
    let sink = transaction
        .copy_in(&format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", columns.join(", ")))
        .await
        .map_err(DbError::from)?;
    pin_mut!(sink);
    let kinds: Vec<ColumnKind> = schema.columns.iter().map(|c| c.kind).collect();
    let mut copy = BytesMut::with_capacity(1 << 20);
    copy.extend_from_slice(COPY_HEADER);
    let mut rows = 0i64;
    for chunk in chunks {
        let chunk = chunk?;
        for row in chunk.rows(kinds.len()) {
            rows += 1;
            copy_row(&mut copy, &kinds, row, rows);
        }
        // One CopyData message per chunk of parsed rows.
        sink.send(copy.split().freeze()).await.map_err(DbError::from)?;
        progress.set_position(rows as u64);
    }
    copy.extend_from_slice(&(-1i16).to_be_bytes());
    sink.send(copy.split().freeze()).await.map_err(DbError::from)?;
    sink.finish().await.map_err(DbError::from)?;
    phases.end("copy");
    load.check_shrink(before, rows)?;
    transaction
        .batch_execute(&format!(
            "{key_index}\n{}\nANALYZE {table};",
            schema.indexes_sql(&table, load.indexes)
        ))
        .await
        .map_err(DbError::from)?;
    phases.end("index");
    let answers = counts(&transaction, &load.quality.statements(&table)).await.map_err(DbError::from)?;
    let quality = load.quality.results(&answers);
    phases.end("quality");
    record_load(&transaction, load, rows, &quality, &table, load_id).await.map_err(DbError::from)?;
    transaction.commit().await.map_err(DbError::from)?;
    phases.end("commit");
    tracing::debug!(product = load.product, rows, phases = %phases, "load phases");
    Ok((LoadSummary { rows, quality }, previous.filter(|old| *old != table)))
}

/// Records the load, its quality and its source, and makes `table` current.
async fn record_load(
    transaction: &mesh_postgres::tokio_postgres::Transaction<'_>,
    load: &LoadPlan<'_>,
    rows: i64,
    quality: &[QualityResult],
    table: &str,
    load_id: u64,
) -> Result<(), mesh_postgres::tokio_postgres::Error> {
    let product = load.product;
    transaction
        .execute(
            "INSERT INTO mesh_loads (product, loaded_at, row_count, source) VALUES ($1, $2, $3, $4)
             ON CONFLICT (product) DO UPDATE SET loaded_at = $2, row_count = $3, source = $4",
            &[&product, &now_ms(), &rows, &load.source],
        )
        .await?;
    transaction.execute("DELETE FROM mesh_quality WHERE product = $1", &[&product]).await?;
    for (position, result) in quality.iter().enumerate() {
        transaction
            .execute(
                "INSERT INTO mesh_quality (product, rule, description, failed_rows, checked_rows, position)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &product,
                    &result.rule,
                    &result.description,
                    &result.failed_rows,
                    &result.checked_rows,
                    &(position as i32),
                ],
            )
            .await?;
    }
    transaction
        .execute(
            "INSERT INTO mesh_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
            &[&format!("source:{product}"), &load.fingerprint.as_bytes()],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO mesh_tables (product, data_table, load_id) VALUES ($1, $2, $3)
             ON CONFLICT (product) DO UPDATE SET data_table = $2, load_id = $3",
            &[&product, &table, &(load_id as i64)],
        )
        .await?;
    Ok(())
}

/// Drops a table a load replaced, waiting a little for scans still reading
/// it; a table still in use stays, and the next load drops it.
pub(super) async fn drop_table(db: &Database, table: String) {
    let dropped = async {
        let mut client = db.pool().get().await?;
        let transaction = client.transaction().await?;
        transaction.batch_execute(&format!("SET LOCAL lock_timeout = '{DROP_WAIT}'")).await?;
        // Every table of the product but the current one.
        let base = table.rsplit_once('_').map_or(table.as_str(), |(base, _)| base).to_owned();
        let leftovers = transaction
            .query(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
                 AND tablename LIKE $1 ESCAPE '\\' AND tablename NOT IN (SELECT data_table FROM mesh_tables)",
                &[&format!("{}\\_%", base.replace('_', "\\_"))],
            )
            .await?;
        for row in leftovers {
            let name: String = row.get(0);
            transaction.batch_execute(&format!("DROP TABLE IF EXISTS {}", checked(&name)?)).await?;
        }
        transaction.commit().await?;
        Ok::<_, DbError>(())
    };
    if let Err(error) = dropped.await {
        tracing::info!(%error, table, "a replaced table stays until the next load (scans still read it)");
    }
}

/// The header of PostgreSQL's binary COPY format: signature, flags, no extension.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Appends one tuple in binary COPY format: the field count, then each
/// field as its length and big-endian bytes, then the load's row number.
fn copy_row<'a>(out: &mut BytesMut, kinds: &[ColumnKind], row: impl Iterator<Item = Field<'a>>, rowid: i64) {
    out.put_i16(kinds.len() as i16 + 1);
    for (kind, field) in kinds.iter().zip(row) {
        match (kind, field) {
            (ColumnKind::Real, Field::Integer(n)) => put_f64(out, n as f64),
            (_, Field::Real(x)) => put_f64(out, x),
            (_, Field::Integer(n)) => put_i64(out, n),
            (_, Field::Text(text)) => {
                out.put_i32(text.len() as i32);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    put_i64(out, rowid);
}

fn put_i64(out: &mut BytesMut, n: i64) {
    out.put_i32(8);
    out.put_i64(n);
}

fn put_f64(out: &mut BytesMut, x: f64) {
    out.put_i32(8);
    out.put_f64(x);
}

/// Runs each statement of counts: its one row of integers.
pub(super) async fn counts(
    client: &impl GenericClient,
    statements: &[String],
) -> Result<Vec<Vec<i64>>, mesh_postgres::tokio_postgres::Error> {
    let mut answers = Vec::with_capacity(statements.len());
    for sql in statements {
        let row = client.query_one(sql, &[]).await?;
        answers.push((0..row.len()).map(|i| row.get::<_, i64>(i)).collect());
    }
    Ok(answers)
}
