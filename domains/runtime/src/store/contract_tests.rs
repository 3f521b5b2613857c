//! The storage contract: one suite run against the [`Storage`] trait on
//! each backend (SQLite in a temporary directory, PostgreSQL on the test
//! server), so both keep the same promises: a table created and loaded in
//! one transaction with its quality and load record, replaced whole,
//! scanned under every plan shape, resumed, stopped, probed, its quality
//! counted, and the read log appended, summed, listed and pruned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::ProgressBar;
use mesh_contracts::product::{QualityResult, QueryRequest};

use super::load::{Chunk, ChunkCell, LoadPlan, QualityCheck, Shrink};
use super::read_log::{DAY_MS, LoggedRead, UsageSum};
use super::{DomainStore, RowSink, Stop, Storage, Table};
use crate::error::Result;
use crate::query::grant::Grant;
use crate::query::plan::{QueryPlan, plan};
use crate::query::resume::ResumeTokens;
use crate::values::cell::{Cell, CellRow};
use crate::values::schema::RowSchema;
use crate::values::test_schema::schema;

const PRODUCT: &str = "test.rows";

/// A store on each backend, with the test table prepared; a scan on
/// PostgreSQL runs where a Tokio runtime is at hand, as scans do.
fn stores() -> Vec<(&'static str, DomainStore, Box<dyn std::any::Any>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = DomainStore::open(&dir.path().join("test.sqlite")).unwrap();
    let database = mesh_postgres::testing::TestDatabase::create();
    let postgres = DomainStore::connect(&super::DatabaseArgs::for_url(database.url()), "test").unwrap();
    let mut stores = vec![("sqlite", sqlite, Box::new(dir) as Box<dyn std::any::Any>)];
    stores.push(("postgres", postgres, Box::new(database)));
    for (_, store, _) in &stores {
        store.prepare_table(PRODUCT, &schema(), &["name".to_owned()]).unwrap();
    }
    stores
}

/// Counts the rows whose amount is negative.
struct NegativeAmounts;

impl QualityCheck for NegativeAmounts {
    fn statements(&self, table: &str) -> Vec<String> {
        vec![format!(
            "SELECT count(*), coalesce(sum(CASE WHEN amount < 0 THEN 1 ELSE 0 END), 0) FROM {table}"
        )]
    }

    fn results(&self, answers: &[Vec<i64>]) -> Vec<QualityResult> {
        let (checked, failed) = (answers[0][0], answers[0][1]);
        vec![QualityResult {
            rule: "no_negative".into(),
            description: "amounts are not negative".into(),
            passed: failed == 0,
            failed_rows: failed,
            checked_rows: checked,
        }]
    }
}

/// Row `i` of the test table: `n<i>`, amount `i - 2`, score `i / 2`, flag
/// `i` odd, seq `s<i>` (zero-padded, so it sorts as `i`).
fn chunk(rows: std::ops::Range<i64>) -> Chunk {
    let mut chunk = Chunk::with_capacity(rows.clone().count(), 5);
    for i in rows {
        let mut text = |value: String| {
            let start = chunk.text.len() as u32;
            chunk.text.push_str(&value);
            ChunkCell::Text(start, chunk.text.len() as u32)
        };
        let (name, seq) = (text(format!("n{i}")), text(format!("s{i:04}")));
        let cells = [
            name,
            ChunkCell::Integer(i - 2),
            ChunkCell::Real(i as f64 / 2.0),
            ChunkCell::Integer(i % 2),
            seq,
        ];
        chunk.cells.extend(cells);
    }
    chunk
}

/// Replaces the table's rows with rows `rows`, in chunks of 100.
fn load(store: &DomainStore, rows: std::ops::Range<i64>, shrink: Shrink) -> Result<super::LoadSummary> {
    let schema = schema();
    let plan = LoadPlan {
        product: PRODUCT,
        schema: &schema,
        indexes: &["name".to_owned()],
        quality: &NegativeAmounts,
        source: "test rows",
        fingerprint: "fingerprint",
        shrink,
    };
    let (sender, chunks) = std::sync::mpsc::sync_channel(4);
    let feeder = std::thread::spawn(move || {
        let mut start = rows.start;
        while start < rows.end {
            let end = (start + 100).min(rows.end);
            if sender.send(Ok(chunk(start..end))).is_err() {
                return;
            }
            start = end;
        }
    });
    let summary = store.replace(&plan, chunks, &ProgressBar::hidden());
    feeder.join().unwrap();
    summary
}

/// Keeps the load and each row's first cell (its name); with a plan, the
/// sort key of the last row (its cells after the projection); wants no
/// more rows after `until`; stops when told.
#[derive(Default)]
struct Collect<'p> {
    load: u64,
    names: Vec<String>,
    keyed: Option<&'p QueryPlan>,
    key: Vec<crate::values::Value>,
    until: Option<usize>,
    stop: Option<Arc<AtomicBool>>,
}

impl RowSink for Collect<'_> {
    fn begin(&mut self, load: u64) -> Result<(), Stop> {
        self.load = load;
        Ok(())
    }

    fn row(&mut self, row: &impl CellRow) -> Result<bool, Stop> {
        use crate::values::Value;
        let Cell::Text(name) = row.cell(0)? else { panic!("the first cell is the name") };
        self.names.push(String::from_utf8_lossy(name).into_owned());
        if let Some(plan) = self.keyed {
            let start = plan.projection.len();
            self.key = (start..start + plan.sort.len())
                .map(|i| match row.cell(i) {
                    Ok(Cell::Integer(n)) => Value::Integer(n),
                    Ok(Cell::Real(x)) => Value::Real(x),
                    Ok(Cell::Text(t)) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    _ => Value::Null,
                })
                .collect();
        }
        Ok(self.until.is_none_or(|until| self.names.len() < until))
    }

    fn interrupted(&self) -> Option<Stop> {
        self.stop.as_ref().filter(|s| s.load(Ordering::SeqCst)).map(|_| Stop::Shutdown)
    }
}

fn table(schema: &RowSchema) -> Table<'_> {
    Table { product: PRODUCT, name: &schema.table }
}

fn compiled(store: &DomainStore, tokens: &ResumeTokens, request: QueryRequest) -> QueryPlan {
    plan(&request, &schema(), tokens, &Grant::full(&schema()), store.dialect(), None).unwrap()
}

fn scan(store: &DomainStore, plan: &QueryPlan) -> Collect<'static> {
    let mut sink = Collect::default();
    store.scan(table(&schema()), plan, &mut sink, Arc::new(|| false)).unwrap();
    sink
}

#[test]
fn a_load_replaces_the_rows_whole_with_its_quality_and_record() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    for (backend, store, _keep) in stores() {
        assert_eq!(store.load_info(PRODUCT).unwrap(), None, "{backend}");
        let summary = load(&store, 0..250, Shrink::AtMostHalf).unwrap();
        assert_eq!(summary.rows, 250, "{backend}");
        assert_eq!((summary.quality[0].failed_rows, summary.quality[0].checked_rows), (2, 250), "{backend}");
        let info = store.load_info(PRODUCT).unwrap().unwrap();
        assert_eq!((info.row_count, info.source.as_str()), (250, "test rows"), "{backend}");
        assert_eq!(store.fingerprint(PRODUCT).unwrap().as_deref(), Some("fingerprint"), "{backend}");
        assert_eq!(store.quality(PRODUCT).unwrap(), summary.quality, "{backend}");
        let first = scan(&store, &compiled(&store, &tokens(&store), QueryRequest::default())).load;

        // A load shrinking the rows by more than half is refused whole.
        let refused = load(&store, 0..100, Shrink::AtMostHalf).unwrap_err().to_string();
        assert!(refused.contains("shrinking test.rows by more than half"), "{backend}: {refused}");
        assert_eq!(store.load_info(PRODUCT).unwrap().unwrap().row_count, 250, "{backend}");

        load(&store, 10..160, Shrink::Any).unwrap();
        let read = scan(&store, &compiled(&store, &tokens(&store), QueryRequest::default()));
        assert_eq!(read.names.len(), 150, "{backend}");
        assert_ne!(read.load, first, "{backend}: each load has an identity of its own");
        let counted = store.check_quality(table(&schema()), &NegativeAmounts).unwrap();
        assert_eq!((counted[0].failed_rows, counted[0].checked_rows), (0, 150), "{backend}");
        store.probe(table(&schema())).unwrap();
        assert!(
            !store
                .explain(table(&schema()), &compiled(&store, &tokens(&store), QueryRequest::default()))
                .unwrap()
                .is_empty()
        );
    }
}

fn tokens(store: &DomainStore) -> ResumeTokens {
    ResumeTokens::new(store.token_secret().unwrap(), PRODUCT)
}

#[test]
fn every_plan_shape_reads_the_same_rows_on_both_backends() {
    let requests = [
        QueryRequest::default(),
        QueryRequest { filter: "amount >= 100 AND flag = true".into(), ..Default::default() },
        QueryRequest { filter: "name = \"n1*\"".into(), order_by: "seq desc".into(), ..Default::default() },
        QueryRequest { order_by: "score desc, name".into(), limit: 7, ..Default::default() },
        QueryRequest {
            read_mask: Some(prost_types::FieldMask { paths: vec!["name".into(), "amount".into()] }),
            filter: "amount IN (3, 5, 8)".into(),
            ..Default::default()
        },
        QueryRequest { filter: "amount < -100".into(), ..Default::default() },
    ];
    let mut answers: Vec<Vec<Vec<String>>> = Vec::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    for (backend, store, _keep) in stores() {
        load(&store, 0..300, Shrink::Any).unwrap();
        let tokens = tokens(&store);
        answers.push(
            requests.iter().map(|r| scan(&store, &compiled(&store, &tokens, r.clone())).names).collect(),
        );
        assert_eq!(answers.last().unwrap()[3].len(), 7, "{backend}: the limit holds");
        assert_eq!(answers.last().unwrap()[0].len(), 300, "{backend}");
        assert!(answers.last().unwrap()[5].is_empty(), "{backend}");
    }
    assert_eq!(answers[0], answers[1], "SQLite and PostgreSQL give the same rows in the same order");
}

#[test]
fn a_scan_resumes_after_its_last_row_and_stops_when_told() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    for (backend, store, _keep) in stores() {
        load(&store, 0..500, Shrink::Any).unwrap();
        let tokens = tokens(&store);
        let request = QueryRequest { order_by: "amount desc".into(), limit: 0, ..Default::default() };
        let whole = scan(&store, &compiled(&store, &tokens, request.clone()));
        // Resumed after row 123 (its sort key, then rowid), the rest follows.
        let first = compiled(&store, &tokens, request.clone());
        let mut sink = Collect { keyed: Some(&first), until: Some(123), ..Default::default() };
        store.scan(table(&schema()), &first, &mut sink, Arc::new(|| false)).unwrap();
        let token = tokens.issue(&first.point(sink.key.clone(), 123, sink.load));
        let rest = scan(&store, &compiled(&store, &tokens, QueryRequest { resume_token: token, ..request }));
        let mut resumed = sink.names.clone();
        resumed.extend(rest.names);
        assert_eq!(resumed, whole.names, "{backend}");

        // Told to stop before it starts, a scan reads no row.
        let stop = Arc::new(AtomicBool::new(true));
        let mut stopped = Collect { stop: Some(Arc::clone(&stop)), ..Default::default() };
        let told =
            store.scan(table(&schema()), &first, &mut stopped, Arc::new(move || stop.load(Ordering::SeqCst)));
        assert!(matches!(told, Err(Stop::Shutdown)), "{backend}: {told:?}");
        assert!(stopped.names.len() < 123, "{backend}");
    }
}

#[test]
fn the_read_log_appends_sums_lists_and_prunes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    for (backend, store, _keep) in stores() {
        let dir = tempfile::tempdir().unwrap();
        let log = store.read_log(dir.path()).unwrap();
        let mut writer = log.writer().unwrap();
        let now = super::now_ms();
        let read = |principal: &str, start_ms: i64, rows: i64, delivered: bool| LoggedRead {
            product: PRODUCT.into(),
            principal: principal.into(),
            issuer: "issuer".into(),
            start_ms,
            outcome: if delivered { 1 } else { 2 },
            rows,
            delivered,
            usage: Some(UsageSum {
                day: 0,
                reason: if delivered { String::new() } else { "PERMISSION_DENIED".into() },
                reads: if delivered { 1 } else { 3 },
                rows,
                bytes: rows * 100,
            }),
            record: principal.as_bytes().to_vec(),
        };
        let batch = [
            read("ana", now, 5, true),
            read("ana", now + 1, 6, true),
            read("eve", now + 2, 0, false),
            read("old", now - 40 * DAY_MS, 9, true),
        ];
        writer.append(&batch, None).unwrap();
        let readers = log.readers(PRODUCT, 0, 10).unwrap();
        let sums: Vec<(&str, i64, i64)> =
            readers.iter().map(|r| (r.principal.as_str(), r.reads, r.rows)).collect();
        assert_eq!(sums, [("ana", 2, 11), ("old", 1, 9)], "{backend}: refusals are no reads");
        assert_eq!(
            log.records(PRODUCT, 0, "", 2).unwrap(),
            [b"old".to_vec(), b"eve".to_vec()],
            "{backend}: last recorded first"
        );
        assert_eq!(log.records(PRODUCT, 0, "old", 10).unwrap().len(), 1, "{backend}");
        let today = now.div_euclid(DAY_MS);
        let usage = |since_day| -> Vec<(i64, String, i64, i64, i64)> {
            let sums = log.usage(PRODUCT, since_day).unwrap();
            sums.into_iter().map(|u| (u.day - today, u.reason, u.reads, u.rows, u.bytes)).collect()
        };
        assert_eq!(
            usage(0),
            [
                (-40, String::new(), 1, 9, 900),
                (0, String::new(), 2, 11, 1100),
                (0, "PERMISSION_DENIED".into(), 3, 0, 0)
            ],
            "{backend}: summed per day and reason, oldest first"
        );
        assert_eq!(usage(today).len(), 2, "{backend}: from a day on");
        writer.append(&[], Some(now - DAY_MS)).unwrap();
        assert_eq!(usage(0).len(), 2, "{backend}: pruned with the reads");
        assert!(log.records(PRODUCT, 0, "old", 10).unwrap().is_empty(), "{backend}: pruned");
        let since = (now - DAY_MS).div_euclid(DAY_MS);
        assert_eq!(log.readers(PRODUCT, 0, 10).unwrap().len(), 1, "{backend}");
        assert_eq!(log.readers(PRODUCT, since, 10).unwrap()[0].principal, "ana", "{backend}");
    }
}
