//! A scan on SQLite: the plan's statement in one read transaction,
//! interrupted when told to stop; a keyed order sorted here as the rows are
//! read, in two halves side by side when a second connection is free.

use std::path::Path;

use rusqlite::Connection;

use super::kept::{KeptKey, KeptReads, KeptRows};
use super::pool::Reader;
use super::raw::RawStatement;
use super::sorter::Sorter;
use super::{SORT_MEMORY_BYTES, SPLIT_ROWS, STEPS_BETWEEN_CHECKS, load_id};
use crate::error::{DomainError, Result};
use crate::query::plan::QueryPlan;
use crate::store::{RowSink, Stop, StopCheck, Table};
use crate::values::Value;

/// Rows of a plan the store sorts, to be delivered once the connections are free.
pub(super) enum Sorted {
    /// Sorted by this scan, to be kept under the key (with its load) if
    /// delivered to the end.
    Fresh { sorter: Sorter, keep: Option<(KeptKey, u64)> },
    /// As an earlier read of the same delivered them.
    Kept(KeptRows),
}

/// Reads the rows of `plan` in one read transaction, giving `sink` the
/// load and then each row; the rows of a plan the store sorts are sorted
/// (or found in `kept`) and returned instead.
#[allow(clippy::too_many_arguments)]
pub(super) fn scan_rows(
    conn: &Reader<'_>,
    helper: Option<Reader<'_>>,
    check: &StopCheck,
    spill_dir: &Path,
    kept: &KeptReads,
    table: Table<'_>,
    plan: &QueryPlan,
    sink: &mut impl RowSink,
) -> Result<Option<Sorted>, Stop> {
    let (product, table) = (table.product, table.name);
    let tx = conn.unchecked_transaction()?;
    let load = load_id(&tx, product)?;
    sink.begin(load)?;
    if plan.row_limit() == Some(0) {
        return Ok(None);
    }
    if plan.sorts_in_scan {
        let key = KeptKey::of(table, plan, load);
        if let Some(rows) = key.and_then(|key| kept.find(&key, table, load)) {
            return Ok(Some(Sorted::Kept(rows)));
        }
        let sorter = sorted_rows(conn, helper, check, spill_dir, product, table, plan, load)?;
        return Ok(Some(Sorted::Fresh { sorter, keep: key.map(|key| (key, load)) }));
    }
    let mut statement = bound(conn, &plan.sql(table), plan, &[])?;
    while let Some(row) = statement.next()? {
        if !sink.row(&row)? {
            break;
        }
    }
    Ok(None)
}

/// Gives `sink` the rows of `sorted` (a read of `table`): those kept, or
/// those just sorted, recorded as delivered and kept in `kept` if
/// delivered to the end (temporary files in `spill_dir`).
pub(super) fn deliver_sorted(
    kept: &KeptReads,
    spill_dir: &Path,
    table: &str,
    sorted: Sorted,
    sink: &mut impl RowSink,
) -> Result<(), Stop> {
    match sorted {
        Sorted::Kept(rows) => {
            let key = rows.key();
            rows.deliver(|row| sink.row(row)).inspect_err(|stop| {
                // A kept file that does not read back is read no more.
                if matches!(stop, Stop::Failed(_)) {
                    kept.forget(&key);
                }
            })
        }
        Sorted::Fresh { sorter, keep } => {
            let mut recorder = keep.and_then(|_| kept.recorder(spill_dir, sorter.pushed_bytes()));
            let mut whole = true;
            sorter.deliver(|bytes, row| {
                if let Some(recorder) = recorder.as_mut() {
                    recorder.row(bytes);
                }
                let more = sink.row(row)?;
                whole &= more;
                Ok::<_, Stop>(more)
            })?;
            if let (Some((key, load)), Some(recorder), true) = (keep, recorder, whole) {
                kept.keep(key, table, load, recorder);
            }
            Ok(())
        }
    }
}

/// Has SQLite ask `check` every few milliseconds of work on `conn` whether
/// to stop (or no longer, without one).
pub(super) fn stoppable(conn: &Connection, check: Option<&StopCheck>) -> Result<()> {
    match check.cloned() {
        Some(check) => conn.progress_handler(STEPS_BETWEEN_CHECKS, Some(move || check()))?,
        None => conn.progress_handler(0, None::<fn() -> bool>)?,
    }
    Ok(())
}

/// The rows of a plan the store sorts, kept in a [`Sorter`]. With a
/// `helper` connection, no filter of the caller's, no part and enough rows, the
/// table is read in two halves side by side, the helper's checked to be of
/// the same load as `conn`'s (and read again on `conn` if a load came
/// between them).
#[allow(clippy::too_many_arguments)]
fn sorted_rows(
    conn: &Reader<'_>,
    helper: Option<Reader<'_>>,
    check: &StopCheck,
    spill_dir: &Path,
    product: &str,
    table: &str,
    plan: &QueryPlan,
    load: u64,
) -> Result<Sorter, Stop> {
    let (low, high): (Option<i64>, Option<i64>) =
        conn.query_row(&format!("SELECT min(rowid), max(rowid) FROM {table}"), [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(low), Some(high)) = (low, high) else {
        return Ok(sorter_for(plan, spill_dir, SORT_MEMORY_BYTES));
    };
    let everything = (i64::MIN, i64::MAX);
    // A filtered read expects few rows: a second thread would only delay
    // it; a part of a read has its other parts beside it.
    let alone = !plan.filtered && plan.part_load.is_none();
    let Some(helper) = helper.filter(|_| alone && high.saturating_sub(low) >= SPLIT_ROWS) else {
        return sorted_range(conn, spill_dir, table, plan, everything, SORT_MEMORY_BYTES);
    };
    let middle = low + (high - low) / 2;
    let (first, second) = ((i64::MIN, middle), (middle, i64::MAX));
    let budget = SORT_MEMORY_BYTES / 2;
    let (mine, theirs) = std::thread::scope(|scope| {
        let theirs = scope.spawn(move || -> Result<Option<Sorter>, Stop> {
            stoppable(&helper, Some(check))?;
            let read = (|| {
                let tx = helper.unchecked_transaction()?;
                if load_id(&tx, product)? != load {
                    return Ok(None);
                }
                sorted_range(&helper, spill_dir, table, plan, second, budget).map(Some)
            })();
            stoppable(&helper, None)?;
            read
        });
        let mine = sorted_range(conn, spill_dir, table, plan, first, budget);
        (mine, theirs.join())
    });
    let theirs = theirs.map_err(|_| DomainError::Internal("a scan's helper thread failed".into()))?;
    let mut mine = mine?;
    let theirs = match theirs? {
        Some(sorter) => sorter,
        None => sorted_range(conn, spill_dir, table, plan, second, budget)?,
    };
    mine.absorb(theirs);
    Ok(mine)
}

/// The rows of `plan` whose rowid is in `(after, up_to]`, sorted.
fn sorted_range(
    conn: &Reader<'_>,
    spill_dir: &Path,
    table: &str,
    plan: &QueryPlan,
    (after, up_to): (i64, i64),
    budget: usize,
) -> Result<Sorter, Stop> {
    let mut sorter = sorter_for(plan, spill_dir, budget);
    let mut statement = bound(conn, &plan.sql_in_rowid_range(table), plan, &[after, up_to])?;
    while let Some(row) = statement.next()? {
        sorter.push(&row)?;
    }
    sorter.sort();
    Ok(sorter)
}

/// `sql` prepared (or kept by the connection) with `plan`'s values bound,
/// then `more`.
fn bound<'c>(
    conn: &'c Reader<'_>,
    sql: &str,
    plan: &QueryPlan,
    more: &[i64],
) -> rusqlite::Result<RawStatement<'c>> {
    let mut statement = conn.statement(sql)?;
    for (i, value) in plan.params.iter().enumerate() {
        statement.bind(i + 1, value)?;
    }
    for (i, &value) in more.iter().enumerate() {
        statement.bind(plan.params.len() + i + 1, &Value::Integer(value))?;
    }
    Ok(statement)
}

/// A sorter of `plan`'s rows spilling to `spill_dir` (the database's own,
/// private directory: the rows hold what the database holds).
fn sorter_for(plan: &QueryPlan, spill_dir: &Path, budget: usize) -> Sorter {
    let descending = plan.sort.iter().map(|s| s.descending).collect();
    let columns = plan.projection.len() + plan.sort.len();
    Sorter::new(columns, descending, plan.row_limit(), budget, spill_dir.to_owned())
}
