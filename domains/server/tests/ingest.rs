//! Loading a file, on each storage backend: a generated file loads; broken
//! files are refused with the line number and reason, and the data loaded
//! before stays; quality rules count the same on both.

use crate::common;

mesh_postgres::on_both_backends!(
    a_file_loads_and_broken_files_change_nothing,
    quality_rules_catch_broken_invariants
);

use mesh_domain_server::published::Published;
use mesh_runtime::ingest::{CsvSource, LoadSummary, Shrink};
use woori_data::Generator;

/// Loads `source` into `published`'s product, checked by its rules.
fn load(published: &Published, source: &mut CsvSource<std::fs::File>) -> mesh_runtime::Result<LoadSummary> {
    mesh_runtime::ingest::load(&published.product.destination(), source, &published.rules, Shrink::Any)
}

/// Writes a generated file, with `edit` applied to its text.
fn file(dir: &std::path::Path, name: &str, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let mut bytes = Vec::new();
    Generator { seed: 5, customers: 40, quarters: 1 }.write_csv(&mut bytes).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, edit(String::from_utf8(bytes).unwrap())).unwrap();
    path
}

async fn a_file_loads_and_broken_files_change_nothing() {
    let backend = common::backend();
    let mut domain = common::start_on(backend, 30, &common::nowhere()).await;
    let before = domain.stored_rows().await;
    // Served before the loads below: a reader of the old table must find the new one after.
    let (served, _) = common::query_all(&mut domain.client, Default::default()).await.unwrap();
    assert_eq!(served.len(), 60);
    assert_eq!(before.len(), 60);

    let dir = tempfile::tempdir().unwrap();
    // Line 4 is the third data row: break one of its fields at a time.
    let break_line = |text: String, f: &dyn Fn(&mut Vec<String>)| {
        let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
        let mut fields: Vec<String> = lines[3].split(',').map(str::to_owned).collect();
        f(&mut fields);
        lines[3] = fields.join(",");
        lines.join("\r\n")
    };
    let cases = [
        (
            file(dir.path(), "short.csv", |t| {
                break_line(t, &|f| {
                    f.pop();
                })
            }),
            "line 4: expected 55 columns, found 54",
        ),
        (
            file(dir.path(), "text.csv", |t| break_line(t, &|f| f[10] = "12x".into())),
            "line 4: column TOT_USE_AM: `12x` is not a whole number",
        ),
        (
            file(dir.path(), "negative.csv", |t| break_line(t, &|f| f[20] = "-5".into())),
            "line 4: column PLSANIT_AM: negative amount -5",
        ),
        (
            file(dir.path(), "header.csv", |t| t.replacen("TOT_USE_AM", "TOTAL", 1)),
            "the source has no column TOT_USE_AM",
        ),
    ];
    for (path, needle) in cases {
        let mut source = mesh_runtime::ingest::CsvSource::open(&path).unwrap();
        let published = domain.published.clone();
        let error = tokio::task::spawn_blocking(move || load(&published, &mut source).map(|_| ()))
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(error.contains(needle), "`{needle}` missing from: {error}");
        assert_eq!(domain.stored_rows().await, before, "{} changed the data", path.display());
    }

    // A good file replaces the data and records its quality.
    let good = file(dir.path(), "good.csv", |t| t);
    let mut source = mesh_runtime::ingest::CsvSource::open(&good).unwrap();
    let published = domain.published.clone();
    let summary = tokio::task::spawn_blocking(move || load(&published, &mut source)).await.unwrap().unwrap();
    assert_eq!(summary.rows, 40);
    assert!(summary.quality.iter().all(|q| q.passed), "{:?}", summary.quality);
    let stored = domain.stored_rows().await;
    assert_eq!(stored.len(), 40);
    let (served, _) = common::query_all(&mut domain.client, Default::default()).await.unwrap();
    let key = |r: &mesh_contracts::woori::payment::v1::CardSpending| {
        (r.bas_yh.clone(), r.seq.clone(), r.tot_use_am)
    };
    assert_eq!(served.iter().map(key).collect::<Vec<_>>(), stored.iter().map(key).collect::<Vec<_>>());
    let described = domain.product.describe().unwrap();
    assert_eq!(described.row_count, 40);
    assert_eq!(described.quality_results.len(), 14);
}

async fn quality_rules_catch_broken_invariants() {
    let backend = common::backend();
    let dir = tempfile::tempdir().unwrap();
    // TOT no longer equals CRDSL + CNF on one row; AUTO_AM off on another;
    // a third row appears twice.
    let path = file(dir.path(), "bent.csv", |t| {
        let mut lines: Vec<String> = t.split("\r\n").map(str::to_owned).collect();
        let mut fields: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
        fields[11] = (fields[11].parse::<i64>().unwrap() + 1).to_string();
        lines[1] = fields.join(",");
        let mut fields: Vec<String> = lines[2].split(',').map(str::to_owned).collect();
        fields[22] = (fields[22].parse::<i64>().unwrap() + 7).to_string();
        lines[2] = fields.join(",");
        let twice = lines[3].clone();
        lines.insert(4, twice);
        lines.join("\r\n")
    });
    let database = common::database_for(backend);
    let url = database.as_ref().map(|d| d.url().to_owned());
    let domain = common::start_with(dir, |d| {
        common::with_source(
            common::on_database(common::args(d, 10, &common::nowhere()), url.as_deref()),
            &path,
        )
    })
    .await;
    let quality = domain.product.describe().unwrap().quality_results;
    let failed: Vec<(&str, i64)> =
        quality.iter().filter(|q| !q.passed).map(|q| (q.rule.as_str(), q.failed_rows)).collect();
    assert_eq!(
        failed,
        [
            ("unique_key", 1),
            ("tot_equals_credit_plus_check", 1),
            ("tot_equals_sum_of_broad", 1),
            ("auto_am_equals_sum_of_detailed", 1)
        ]
    );

    assert!(quality.iter().all(|q| q.checked_rows == 41), "{quality:?}");
    // The rules counted row by row during the load agree with the same
    // rules run as SQL over the stored table.
    let rules = domain.published.rules.clone();
    let product = &domain.product;
    let over_table =
        mesh_runtime::quality::run(&product.store, &product.spec.id, &product.schema, &rules).unwrap();
    assert_eq!(over_table, quality);
    assert!(quality.iter().all(|q| q.checked_rows == 41), "{quality:?}");
}
