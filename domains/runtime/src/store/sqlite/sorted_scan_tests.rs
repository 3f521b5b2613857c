//! A keyed order is sorted by the SQLite store itself: the rows a scan
//! delivers come in the order SQLite's own `ORDER BY` gives them, whether
//! the table is read in two halves side by side or by one connection.
//! (Tests of the store through the plans the query floor compiles.)

use std::path::Path;
use std::sync::Arc;

use mesh_contracts::product::QueryRequest;

use crate::error::Result;
use crate::query::dialect::Dialect;
use crate::query::grant::Grant;
use crate::query::plan::{QueryPlan, plan};
use crate::query::pseudonym::PseudonymKey;
use crate::query::resume::ResumeTokens;
use crate::store::{DomainStore, RowSink, Stop, Storage, Table, test_reader};
use crate::values::cell::{Cell, CellRow};
use crate::values::test_schema::schema;

/// Keeps the first cell (a text) of each row.
#[derive(Default)]
struct Collect(Vec<String>);

impl RowSink for Collect {
    fn begin(&mut self, _load: u64) -> Result<(), Stop> {
        Ok(())
    }

    fn row(&mut self, row: &impl CellRow) -> Result<bool, Stop> {
        let Cell::Text(text) = row.cell(0)? else { panic!("the first cell is text") };
        self.0.push(String::from_utf8_lossy(text).into_owned());
        Ok(true)
    }

    fn interrupted(&self) -> Option<Stop> {
        None
    }
}

/// A store at `path` with `rows` rows of the test schema, `seq` made of
/// `seq_sql` (an SQL expression of the row number `i`).
pub(super) fn store_with(path: &Path, rows: i64, seq_sql: &str) -> DomainStore {
    let store = DomainStore::open(path).unwrap();
    store.prepare_table("test.rows", &schema(), &[]).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute(
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO t SELECT 'n' || i, i % 7, i / 3.0, i % 2, {seq_sql} FROM n"
        ),
        [rows],
    )
    .unwrap();
    store
}

/// A grant of every column with column `pseudonymized` as a pseudonym.
pub(super) fn grant_with_pseudonym(dir: &Path, pseudonymized: usize) -> Grant {
    let key = dir.join("pseudonym.key");
    mesh_grpc::private_files::create_secret(&key).unwrap();
    let mut grant = Grant::full(&schema());
    grant.pseudonymized[pseudonymized] = true;
    grant.pseudonyms = Some(PseudonymKey::read(&key).unwrap());
    grant
}

/// The first column of `plan`'s rows as SQLite sorts them, at most `limit`.
fn sorted_by_sqlite(path: &Path, plan: &QueryPlan, limit: i64) -> Vec<String> {
    let conn = test_reader(path).unwrap();
    let limited = if limit > 0 { format!(" LIMIT {limit}") } else { String::new() };
    let sql = format!("SELECT {} FROM t{}{}{limited}", plan.columns, plan.conditions, plan.order);
    let mut statement = conn.prepare(&sql).unwrap();
    statement
        .query_map(rusqlite::params_from_iter(&plan.params), |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub(super) fn scanned(store: &DomainStore, plan: &QueryPlan) -> Vec<String> {
    let mut sink = Collect::default();
    store.scan(Table { product: "test.rows", name: "t" }, plan, &mut sink, Arc::new(|| false)).unwrap();
    sink.0
}

#[test]
fn a_keyed_order_read_in_two_halves_is_sqlites_own_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    // More than twice the rows from which a sorting scan reads in halves.
    let rows = 100_017;
    let store = store_with(&path, rows, "printf('%010d', i)");
    let grant = grant_with_pseudonym(dir.path(), 4);
    let tokens = ResumeTokens::new(b"secret".to_vec(), "t");
    let request = QueryRequest {
        read_mask: Some(prost_types::FieldMask { paths: vec!["seq".into()] }),
        order_by: "amount desc".into(),
        ..Default::default()
    };
    let plan = plan(&request, &schema(), &tokens, &grant, Dialect::Sqlite, None).unwrap();
    assert!(plan.sorts_in_scan);
    let reference = sorted_by_sqlite(&path, &plan, 0);
    assert_eq!(reference.len() as i64, rows);
    assert_eq!(scanned(&store, &plan), reference, "read in two halves side by side");
    // With every other connection busy, one connection reads it all.
    let single = DomainStore::open(&path).unwrap().with_readers(1);
    assert_eq!(scanned(&single, &plan), reference, "read by one connection");
}

#[test]
fn a_scan_told_to_stop_before_it_starts_reads_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let store = store_with(&path, 1_000, "printf('%010d', i)");
    let tokens = ResumeTokens::new(b"secret".to_vec(), "t");
    let plan =
        plan(&QueryRequest::default(), &schema(), &tokens, &Grant::full(&schema()), Dialect::Sqlite, None)
            .unwrap();
    let mut sink = Collect::default();
    let told = store.scan(Table { product: "test.rows", name: "t" }, &plan, &mut sink, Arc::new(|| true));
    assert!(matches!(told, Err(Stop::ClientGone)), "{told:?}");
    assert!(sink.0.is_empty(), "{} rows read", sink.0.len());
    assert_eq!(scanned(&store, &plan).len(), 1_000, "and a scan not told to stop reads them all");
}
