//! The largest filters the filter language accepts are ones SQLite runs.

use mesh_filter::{MAX_DEPTH, MAX_IN, MAX_TERMS, MAX_VALUES};

use crate::query::dialect::Dialect;
use crate::query::filter::compile;
use crate::values::test_schema::schema;

/// Runs `filter` compiled against an empty table of the test schema.
fn run_in_sqlite(filter: &str) -> rusqlite::Result<i64> {
    let compiled = compile(filter, &schema(), Dialect::Sqlite).unwrap();
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.execute_batch(&Dialect::Sqlite.create_table(&schema(), "t"))?;
    conn.query_row(
        &format!("SELECT count(*) FROM t WHERE {}", compiled.sql),
        rusqlite::params_from_iter(compiled.params.iter()),
        |r| r.get(0),
    )
}

#[test]
fn the_largest_filters_accepted_are_ones_sqlite_runs() {
    let or_chain = vec!["seq = \"a*\""; MAX_TERMS].join(" or ");
    assert_eq!(run_in_sqlite(&or_chain).unwrap(), 0);
    let nested = format!(
        "{}{}{}",
        "(NOT ".repeat(MAX_DEPTH / 2 - 1),
        vec!["amount != 1"; MAX_TERMS - 1].join(" and "),
        ")".repeat(MAX_DEPTH / 2 - 1)
    );
    assert_eq!(run_in_sqlite(&nested).unwrap(), 0);
    let in_lists =
        vec![format!("amount IN ({})", vec!["1"; MAX_IN].join(",")); MAX_VALUES / MAX_IN].join(" OR ");
    assert_eq!(run_in_sqlite(&in_lists).unwrap(), 0);
}
