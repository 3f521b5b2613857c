//! Data-quality rules. Rules over a row's own integer columns (sums, no
//! negatives) are counted on each row while a load parses it; the others
//! run as SQL over the table after the load, in one scan plus one grouping
//! for uniqueness.

use mesh_contracts::product::QualityResult;

use crate::error::{DomainError, Result};
use crate::store::{QualityCheck, Storage, Table};
use crate::values::schema::RowSchema;

/// What a rule checks.
#[derive(Debug, Clone)]
enum Check {
    /// An SQL condition true for a *failing* row.
    Sql(String),
    /// Each key (e.g. quarter + customer) occurs once; rows beyond the first fail.
    UniqueKey,
    /// An integer column equals the sum of others; rows where it does not fail.
    SumEquals { total: String, parts: Vec<String> },
    /// Amount columns are never negative.
    NoNegativeAmounts,
}

impl Check {
    /// The SQL condition true for a failing row (none for uniqueness).
    fn violation_sql(&self, schema: &RowSchema) -> Option<String> {
        match self {
            Check::Sql(violation) => Some(violation.clone()),
            Check::UniqueKey => None,
            Check::SumEquals { total, parts } => Some(format!("{total} != {}", parts.join(" + "))),
            Check::NoNegativeAmounts => Some(
                amount_columns(schema)
                    .map(|i| format!("{} < 0", schema.columns[i].name))
                    .collect::<Vec<_>>()
                    .join(" OR "),
            ),
        }
    }
}

/// A rule a product's rows must keep.
#[derive(Debug, Clone)]
pub struct QualityRule {
    /// Stable name, e.g. `tot_equals_credit_plus_check`.
    pub name: String,
    /// What the rule checks, in words.
    pub description: String,
    check: Check,
}

impl QualityRule {
    /// A rule whose failing rows match the SQL condition `violation`.
    pub fn failing_when(name: &str, description: &str, violation: String) -> Self {
        Self { name: name.to_owned(), description: description.to_owned(), check: Check::Sql(violation) }
    }

    /// A rule that integer column `total` equals the sum of `parts`.
    pub fn sum_equals(name: &str, description: &str, total: &str, parts: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            check: Check::SumEquals {
                total: total.to_owned(),
                parts: parts.iter().map(|p| (*p).to_owned()).collect(),
            },
        }
    }

    /// Each key (e.g. quarter + customer) occurs once; rows beyond the first fail.
    pub fn unique_key(schema: &RowSchema) -> Self {
        let key: Vec<&str> = schema.key.iter().map(|&i| schema.columns[i].name.as_str()).collect();
        Self {
            name: "unique_key".to_owned(),
            description: format!("each ({}) occurs once", key.join(", ")),
            check: Check::UniqueKey,
        }
    }

    /// Amount columns are never negative.
    pub fn no_negative_amounts(schema: &RowSchema) -> Option<Self> {
        (amount_columns(schema).next().is_some()).then(|| Self {
            name: "no_negative_amounts".to_owned(),
            description: "amounts are never negative".to_owned(),
            check: Check::NoNegativeAmounts,
        })
    }
}

fn amount_columns(schema: &RowSchema) -> impl Iterator<Item = usize> + '_ {
    schema.columns.iter().enumerate().filter(|(_, c)| c.amount).map(|(i, _)| i)
}

/// A rule checked on each row as it is parsed, with its columns resolved.
#[derive(Debug)]
enum RowCheck {
    SumEquals { total: usize, parts: Vec<usize> },
    NoNegatives(Vec<usize>),
}

impl RowCheck {
    fn fails(&self, row: &[i64]) -> bool {
        match self {
            RowCheck::SumEquals { total, parts } => {
                i128::from(row[*total]) != parts.iter().map(|&p| i128::from(row[p])).sum::<i128>()
            }
            RowCheck::NoNegatives(columns) => columns.iter().any(|&c| row[c] < 0),
        }
    }
}

/// Failure counts of the rules that are checked row by row during a load.
#[derive(Debug)]
pub struct RowCounts {
    /// (position in the rule list, check, failing rows so far)
    checks: Vec<(usize, RowCheck, i64)>,
}

impl RowCounts {
    /// Nothing counted: every rule runs over the table.
    pub fn none() -> Self {
        Self { checks: Vec::new() }
    }

    /// The row-checkable rules of `rules`, resolved against `schema`.
    pub fn new(schema: &RowSchema, rules: &[QualityRule]) -> Result<Self> {
        let column = |name: &str| {
            schema.column(name).map(|(i, _)| i).ok_or_else(|| {
                DomainError::Schema(format!("quality rule names `{name}`, which is not a column"))
            })
        };
        let mut checks = Vec::new();
        for (position, rule) in rules.iter().enumerate() {
            let check = match &rule.check {
                Check::SumEquals { total, parts } => RowCheck::SumEquals {
                    total: column(total)?,
                    parts: parts.iter().map(|p| column(p)).collect::<Result<_>>()?,
                },
                Check::NoNegativeAmounts => RowCheck::NoNegatives(amount_columns(schema).collect()),
                Check::Sql(_) | Check::UniqueKey => continue,
            };
            checks.push((position, check, 0));
        }
        Ok(Self { checks })
    }

    /// Counts `row`'s failures; `row[i]` is column i's integer value (0 for
    /// columns that are not integers).
    pub fn check(&mut self, row: &[i64]) {
        for (_, check, failed) in &mut self.checks {
            if check.fails(row) {
                *failed += 1;
            }
        }
    }

    fn failed(&self, position: usize) -> Option<i64> {
        self.checks.iter().find(|(p, _, _)| *p == position).map(|(_, _, failed)| *failed)
    }
}

/// Runs `rules` over the rows of `schema`'s table for `product` in
/// `store`: one scan for the SQL rules, one grouping for uniqueness.
pub fn run(
    store: &impl Storage,
    product: &str,
    schema: &RowSchema,
    rules: &[QualityRule],
) -> Result<Vec<QualityResult>> {
    let check = CountedRules { schema, rules, counted: &std::sync::Mutex::new(RowCounts::none()) };
    store.check_quality(Table { product, name: &schema.table }, &check)
}

/// Checks that `rule` compiles over `schema`'s table for `product` in
/// `store`, reading no row: a rule written wrong is refused before a load
/// needs it.
pub fn compiles(store: &impl Storage, product: &str, schema: &RowSchema, rule: &QualityRule) -> Result<()> {
    let rules = std::slice::from_ref(rule);
    let counted = CountedRules { schema, rules, counted: &std::sync::Mutex::new(RowCounts::none()) };
    store.check_quality(Table { product, name: &schema.table }, &NoRows(counted)).map(|_| ())
}

/// Rules counted over none of the table's rows.
struct NoRows<'a>(CountedRules<'a>);

impl QualityCheck for NoRows<'_> {
    fn statements(&self, table: &str) -> Vec<String> {
        self.0.statements(&format!("(SELECT * FROM {table} LIMIT 0) AS {table}"))
    }

    fn results(&self, answers: &[Vec<i64>]) -> Vec<QualityResult> {
        self.0.results(answers)
    }
}

/// Rules to check over a table, those in `counted` already counted row by
/// row while the rows were parsed.
pub(crate) struct CountedRules<'a> {
    /// The table's row type.
    pub schema: &'a RowSchema,
    /// The rules, in order.
    pub rules: &'a [QualityRule],
    /// What the parser counted (final once the parse has ended).
    pub counted: &'a std::sync::Mutex<RowCounts>,
}

impl QualityCheck for CountedRules<'_> {
    fn statements(&self, table: &str) -> Vec<String> {
        let counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        count_statements(self.schema, table, self.rules, Some(&counted))
    }

    fn results(&self, answers: &[Vec<i64>]) -> Vec<QualityResult> {
        let counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        results(self.rules, Some(&counted), answers)
    }
}

/// The statements whose counts `rules` need beyond those in `counted`,
/// each answered by one row: the row count with one count per SQL rule,
/// then the duplicate keys if uniqueness is checked.
fn count_statements(
    schema: &RowSchema,
    table: &str,
    rules: &[QualityRule],
    counted: Option<&RowCounts>,
) -> Vec<String> {
    let already = |position: usize| counted.and_then(|c| c.failed(position));
    let mut select = vec!["count(*)".to_owned()];
    let mut unique = false;
    for (position, rule) in rules.iter().enumerate() {
        if already(position).is_some() {
            continue;
        }
        match rule.check.violation_sql(schema) {
            Some(violation) => {
                select.push(format!("coalesce(sum(CASE WHEN {violation} THEN 1 ELSE 0 END), 0)"))
            }
            None => unique = true,
        }
    }
    let mut statements = vec![format!("SELECT {} FROM {table}", select.join(", "))];
    if unique {
        statements.push(duplicates_sql(schema, table));
    }
    statements
}

/// The rules' results from the answers to [`count_statements`].
fn results(rules: &[QualityRule], counted: Option<&RowCounts>, answers: &[Vec<i64>]) -> Vec<QualityResult> {
    let already = |position: usize| counted.and_then(|c| c.failed(position));
    let first = answers.first().map(Vec::as_slice).unwrap_or_default();
    let total = first.first().copied().unwrap_or(0);
    let mut failed_by_sql = first.iter().skip(1);
    let duplicates = answers.get(1).and_then(|row| row.first()).copied().unwrap_or(0);
    rules
        .iter()
        .enumerate()
        .map(|(position, rule)| {
            let failed = match (already(position), &rule.check) {
                (Some(failed), _) => failed,
                (None, Check::UniqueKey) => duplicates,
                (None, _) => failed_by_sql.next().copied().unwrap_or(0),
            };
            QualityResult {
                rule: rule.name.clone(),
                description: rule.description.clone(),
                passed: failed == 0,
                failed_rows: failed,
                checked_rows: total,
            }
        })
        .collect()
}

/// Counts the rows beyond the first of each key (both dialects).
fn duplicates_sql(schema: &RowSchema, table: &str) -> String {
    let key: Vec<&str> = schema.key.iter().map(|&i| schema.columns[i].name.as_str()).collect();
    format!(
        "SELECT CAST(coalesce(sum(n - 1), 0) AS BIGINT) FROM \
         (SELECT count(*) AS n FROM {table} GROUP BY {key} HAVING count(*) > 1) AS duplicated",
        key = key.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::test_schema::schema;

    use crate::ingest::{Destination, MemorySource, Shrink, load};
    use crate::store::DomainStore;

    /// A store whose test table holds `rows` of (name, amount, score, flag,
    /// seq), loaded without rules (and so with negative amounts kept).
    fn table(dir: &tempfile::TempDir, rows: &[(&str, i64, f64, bool, &str)]) -> DomainStore {
        let store = DomainStore::open(&dir.path().join("test.sqlite")).unwrap();
        let unchecked = RowSchema::new("t", schema().message, &["seq"], &[] as &[&str]).unwrap();
        let records = rows
            .iter()
            .map(|r| {
                let fields =
                    [r.0.to_owned(), r.1.to_string(), r.2.to_string(), r.3.to_string(), r.4.to_owned()];
                csv::ByteRecord::from(fields.to_vec())
            })
            .collect();
        let mut source =
            MemorySource::new(&["name", "amount", "score", "flag", "seq"], records, "rows".into());
        let destination =
            Destination { store: &store, product: "test.t", schema: &unchecked, indexes: &[], meters: None };
        store.prepare_table("test.t", &unchecked, &[]).unwrap();
        load(&destination, &mut source, &[], Shrink::Any).unwrap();
        store
    }

    fn outcome(results: &[QualityResult]) -> Vec<(&str, i64, i64)> {
        results.iter().map(|r| (r.rule.as_str(), r.failed_rows, r.checked_rows)).collect()
    }

    #[test]
    fn each_kind_of_rule_counts_its_failing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            table(&dir, &[("a", 5, 5.0, true, "1"), ("b", -1, 0.0, false, "2"), ("c", 3, 0.0, false, "2")]);
        let schema = schema();
        let rules = [
            QualityRule::unique_key(&schema),
            QualityRule::no_negative_amounts(&schema).unwrap(),
            QualityRule::sum_equals("amount_is_score", "amount = score", "amount", &["score"]),
            QualityRule::failing_when("flag_set", "flag is set", "flag = 0".into()),
        ];
        let results = run(&store, "test.t", &schema, &rules).unwrap();
        assert_eq!(
            outcome(&results),
            [
                ("unique_key", 1, 3),
                ("no_negative_amounts", 1, 3),
                ("amount_is_score", 2, 3),
                ("flag_set", 2, 3)
            ]
        );
        assert!(!results[0].passed);
        assert_eq!(results[0].description, "each (seq) occurs once");
    }

    #[test]
    fn counts_taken_while_parsing_agree_with_the_table_scan() {
        let schema = schema();
        let rules = [
            QualityRule::no_negative_amounts(&schema).unwrap(),
            QualityRule::sum_equals("amount_is_flag", "amount = flag", "amount", &["flag"]),
        ];
        let rows = [("a", 1, 0.0, true, "1"), ("b", -2, 0.0, false, "2"), ("c", 0, 0.0, false, "3")];
        let dir = tempfile::tempdir().unwrap();
        let store = table(&dir, &rows);
        let mut counts = RowCounts::new(&schema, &rules).unwrap();
        for row in rows {
            counts.check(&[0, row.1, 0, i64::from(row.3), 0]);
        }
        let scanned = run(&store, "test.t", &schema, &rules).unwrap();
        let check = CountedRules { schema: &schema, rules: &rules, counted: &std::sync::Mutex::new(counts) };
        let counted = store.check_quality(Table { product: "test.t", name: "t" }, &check).unwrap();
        assert_eq!(outcome(&scanned), outcome(&counted));
        assert_eq!(outcome(&counted), [("no_negative_amounts", 1, 3), ("amount_is_flag", 1, 3)]);
    }

    #[test]
    fn a_rule_over_a_missing_column_is_a_schema_error() {
        let rules = [QualityRule::sum_equals("x", "x", "total", &["amount"])];
        let err = RowCounts::new(&schema(), &rules).unwrap_err().to_string();
        assert_eq!(err, "product schema: quality rule names `total`, which is not a column");
    }

    #[test]
    fn a_table_without_amounts_has_no_amount_rule() {
        let message = schema().message;
        let plain = RowSchema::new("t", message, &["seq"], &[] as &[&str]).unwrap();
        assert!(QualityRule::no_negative_amounts(&plain).is_none());
    }
}
