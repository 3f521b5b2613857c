//! Data-quality rules, run in one scan after each load.

use mesh_contracts::product::QualityResult;
use rusqlite::Connection;

use crate::error::Result;
use crate::schema::RowSchema;

/// A rule a product's rows must keep.
#[derive(Debug, Clone)]
pub struct QualityRule {
    /// Stable name, e.g. `tot_equals_credit_plus_check`.
    pub name: String,
    /// What the rule checks, in words.
    pub description: String,
    /// What the rule checks, as SQL: a condition true for a *failing* row,
    /// or `None` for the built-in uniqueness check of the key.
    check: Option<String>,
}

impl QualityRule {
    /// A rule whose failing rows match the SQL condition `violation`.
    pub fn failing_when(name: &str, description: &str, violation: String) -> Self {
        Self { name: name.to_owned(), description: description.to_owned(), check: Some(violation) }
    }

    /// Each key (e.g. quarter + customer) occurs once; rows beyond the first fail.
    pub fn unique_key(schema: &RowSchema) -> Self {
        let key: Vec<&str> = schema.key.iter().map(|&i| schema.columns[i].name.as_str()).collect();
        Self {
            name: "unique_key".to_owned(),
            description: format!("each ({}) occurs once", key.join(", ")),
            check: None,
        }
    }

    /// Amount columns (unit KRW) are never negative.
    pub fn no_negative_amounts(schema: &RowSchema) -> Option<Self> {
        let amounts: Vec<String> =
            schema.columns.iter().filter(|c| c.is_amount()).map(|c| format!("{} < 0", c.name)).collect();
        (!amounts.is_empty()).then(|| {
            Self::failing_when(
                "no_negative_amounts",
                "amounts (KRW) are never negative",
                amounts.join(" OR "),
            )
        })
    }
}

/// Runs `rules` over `schema`'s table: one scan for the SQL rules, one
/// grouping for uniqueness.
pub fn run(conn: &Connection, schema: &RowSchema, rules: &[QualityRule]) -> Result<Vec<QualityResult>> {
    let sums: Vec<String> = rules
        .iter()
        .filter_map(|r| r.check.as_ref())
        .map(|violation| format!("coalesce(sum(CASE WHEN {violation} THEN 1 ELSE 0 END), 0)"))
        .collect();
    let mut select = vec!["count(*)".to_owned()];
    select.extend(sums);
    let counts: Vec<i64> =
        conn.query_row(&format!("SELECT {} FROM {}", select.join(", "), schema.table), [], |row| {
            (0..select.len()).map(|i| row.get(i)).collect()
        })?;
    let total = counts[0];
    let mut failed_by_sql = counts[1..].iter();
    rules
        .iter()
        .map(|rule| {
            let failed = match rule.check {
                Some(_) => *failed_by_sql.next().expect("one count per SQL rule"),
                None => duplicates(conn, schema)?,
            };
            Ok(QualityResult {
                rule: rule.name.clone(),
                description: rule.description.clone(),
                passed: failed == 0,
                failed_rows: failed,
                checked_rows: total,
            })
        })
        .collect()
}

fn duplicates(conn: &Connection, schema: &RowSchema) -> Result<i64> {
    let key: Vec<&str> = schema.key.iter().map(|&i| schema.columns[i].name.as_str()).collect();
    let key = key.join(", ");
    Ok(conn.query_row(
        &format!(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {} GROUP BY {key} HAVING n > 1)",
            schema.table
        ),
        [],
        |row| row.get(0),
    )?)
}
