//! A sorted whole read is kept for its caller's next read of the same load
//! and found by nothing else: another caller, another order, a filter, a
//! cut delivery or a new load all read the table again. (Each test changes
//! the table behind the store's back, without a load, to see where rows
//! come from.)

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mesh_contracts::product::QueryRequest;

use super::kept::{KeptKey, KeptReads};
use super::sorted_scan_tests::{grant_with_pseudonym, scanned, store_with};
use crate::error::Result;
use crate::query::dialect::Dialect;
use crate::query::grant::Grant;
use crate::query::plan::{QueryPlan, plan};
use crate::query::resume::ResumeTokens;
use crate::store::{DomainStore, RowSink, Stop, Storage, Table};
use crate::values::cell::CellRow;
use crate::values::test_schema::schema;

const ROWS: i64 = 3_000;

fn planned(request: &QueryRequest, grant: &Grant) -> QueryPlan {
    let tokens = ResumeTokens::new(b"secret".to_vec(), "t");
    plan(request, &schema(), &tokens, grant, Dialect::Sqlite, None).unwrap()
}

/// Changes every row's first column without a load.
fn change_behind_the_store(path: &Path, mark: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute("UPDATE t SET name = ?1 || name", [mark]).unwrap();
}

/// Records a new load of the table, as a load does.
fn new_load(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute(
        "INSERT INTO mesh_meta (key, value) VALUES ('load:test.rows', randomblob(8))
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [],
    )
    .unwrap();
}

fn marked(rows: &[String], mark: &str) -> usize {
    rows.iter().filter(|name| name.starts_with(mark)).count()
}

#[test]
fn a_whole_read_is_read_again_as_delivered_until_a_new_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let store = store_with(&path, ROWS, "printf('%010d', i)");
    let plan = planned(&QueryRequest::default(), &grant_with_pseudonym(dir.path(), 4));
    let first = scanned(&store, &plan);
    assert_eq!(first.len() as i64, ROWS);
    change_behind_the_store(&path, "x");
    assert_eq!(scanned(&store, &plan), first, "the same read of the same load is the rows kept");
    new_load(&path);
    let after = scanned(&store, &plan);
    assert_eq!(marked(&after, "x") as i64, ROWS, "a new load is read from the table");
    assert_eq!(after.iter().map(|name| &name[1..]).collect::<Vec<_>>(), first, "in the same order");
}

#[test]
fn another_caller_or_order_reads_the_table_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let store = store_with(&path, ROWS, "printf('%010d', i)");
    let mine = grant_with_pseudonym(dir.path(), 4);
    let other = tempfile::tempdir().unwrap();
    let theirs = grant_with_pseudonym(other.path(), 4);
    let whole = QueryRequest::default();
    let by_amount =
        |direction: &str| QueryRequest { order_by: format!("amount {direction}"), ..whole.clone() };
    for request in [&whole, &by_amount("asc"), &by_amount("desc")] {
        scanned(&store, &planned(request, &mine));
    }
    change_behind_the_store(&path, "y");
    assert_eq!(marked(&scanned(&store, &planned(&whole, &theirs)), "y") as i64, ROWS, "another caller");
    // Each order of this caller's is kept as its own.
    let ascending = scanned(&store, &planned(&by_amount("asc"), &mine));
    let descending = scanned(&store, &planned(&by_amount("desc"), &mine));
    assert_eq!((marked(&ascending, "y"), marked(&descending, "y")), (0, 0), "kept as read");
    assert_ne!(ascending, descending, "in its own order");
}

/// Takes rows until it has `wanted`.
struct Until {
    rows: usize,
    wanted: usize,
}

impl RowSink for Until {
    fn begin(&mut self, _load: u64) -> Result<(), Stop> {
        Ok(())
    }

    fn row(&mut self, _row: &impl CellRow) -> Result<bool, Stop> {
        self.rows += 1;
        Ok(self.rows < self.wanted)
    }

    fn interrupted(&self) -> Option<Stop> {
        None
    }
}

#[test]
fn a_read_cut_short_filtered_or_limited_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let store = store_with(&path, ROWS, "printf('%010d', i)");
    let grant = grant_with_pseudonym(dir.path(), 4);
    let whole = planned(&QueryRequest::default(), &grant);
    let mut cut = Until { rows: 0, wanted: 10 };
    store.scan(Table { product: "test.rows", name: "t" }, &whole, &mut cut, Arc::new(|| false)).unwrap();
    assert_eq!(cut.rows, 10);
    let filtered = planned(&QueryRequest { filter: "amount >= 0".into(), ..Default::default() }, &grant);
    let limited = planned(&QueryRequest { limit: 5_000, ..Default::default() }, &grant);
    for plan in [&filtered, &limited] {
        assert!(KeptKey::of("t", plan, 0).is_none(), "{}", plan.conditions);
        scanned(&store, plan);
    }
    change_behind_the_store(&path, "z");
    for plan in [&whole, &filtered, &limited] {
        assert_eq!(marked(&scanned(&store, plan), "z") as i64, ROWS, "{}", plan.conditions);
    }
}

#[test]
fn every_connection_of_the_store_shares_what_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    store_with(&path, ROWS, "printf('%010d', i)");
    let store = DomainStore::open(&path).unwrap().with_readers(1);
    let plan = planned(&QueryRequest::default(), &grant_with_pseudonym(dir.path(), 4));
    let first = scanned(&store, &plan);
    change_behind_the_store(&path, "w");
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (store, plan) = (store.clone(), plan.clone());
            std::thread::spawn(move || scanned(&store, &plan))
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), first);
    }
}

/// Keeps `rows` rows of `size` bytes as the read of table `t{name}`.
fn keep(kept: &KeptReads, dir: &Path, name: u8, rows: usize, size: usize) -> KeptKey {
    let plan = planned(&QueryRequest::default(), &grant_with_pseudonym(dir, 4));
    let key = KeptKey::of(&format!("t{name}"), &plan, 1).unwrap();
    let mut recorder = kept.recorder(dir, 0).unwrap();
    let row = vec![0u8; size];
    for _ in 0..rows {
        recorder.row(&row);
    }
    kept.keep(key, &format!("t{name}"), 1, recorder);
    key
}

#[test]
fn kept_reads_stay_within_their_bytes_and_lifetime_the_least_recently_read_going_first() {
    let dir = tempfile::tempdir().unwrap();
    let kept = KeptReads::new(10_000, Duration::from_secs(3600));
    let (a, b) = (keep(&kept, dir.path(), 1, 40, 99), keep(&kept, dir.path(), 2, 40, 99));
    assert!(kept.find(&a, "t1", 1).is_some() && kept.find(&b, "t2", 1).is_some(), "both fit");
    kept.find(&a, "t1", 1);
    let c = keep(&kept, dir.path(), 3, 40, 99);
    assert!(kept.find(&b, "t2", 1).is_none(), "the least recently read went");
    assert!(kept.find(&a, "t1", 1).is_some() && kept.find(&c, "t3", 1).is_some());
    assert!(kept.recorder(dir.path(), 10_001).is_none(), "rows over the bytes are not recorded");
    let big = keep(&kept, dir.path(), 4, 200, 99);
    assert!(kept.find(&big, "t4", 1).is_none(), "a read over the bytes is not kept");
    assert!(kept.find(&a, "t1", 1).is_some(), "and takes nothing's place");
    assert!(kept.find(&a, "t1", 2).is_none(), "a newer load of its table puts it away");
    // Recorders writing side by side share the bytes.
    let plan = planned(&QueryRequest::default(), &grant_with_pseudonym(dir.path(), 4));
    let (mut one, mut two) = (kept.recorder(dir.path(), 0).unwrap(), kept.recorder(dir.path(), 0).unwrap());
    for _ in 0..60 {
        one.row(&[0; 99]);
        two.row(&[0; 99]);
    }
    let (e, f) = (KeptKey::of("t6", &plan, 1).unwrap(), KeptKey::of("t7", &plan, 1).unwrap());
    kept.keep(e, "t6", 1, one);
    kept.keep(f, "t7", 1, two);
    assert!(kept.find(&e, "t6", 1).is_none() && kept.find(&f, "t7", 1).is_none(), "past the bytes together");
    assert!(kept.find(&c, "t3", 1).is_some(), "and they took nothing's place");
    kept.forget_table("t3");
    assert!(kept.find(&c, "t3", 1).is_none(), "a table loaded again puts its reads away");
    let brief = KeptReads::new(10_000, Duration::ZERO);
    let d = keep(&brief, dir.path(), 5, 1, 1);
    std::thread::sleep(Duration::from_millis(2));
    assert!(brief.find(&d, "t5", 1).is_none(), "a read goes after its lifetime, read or not");
}
