//! Which SQL conditions the owning domain can evaluate, and their text in
//! the mesh's filter language. A condition is pushed only when the mesh
//! gives it exactly SQL's meaning: a bare column against a literal of the
//! column's own type (integers, doubles, strings compared by bytes,
//! booleans), `AND`, `OR`, `NOT`, `IN` lists, `BETWEEN` and a
//! case-sensitive `LIKE 'prefix%'`. Anything else — casts, functions,
//! strings ending in `*` (a prefix match to the mesh), pseudonymized
//! columns (the domain filters real values, the caller sees pseudonyms) —
//! is evaluated by the engine above the scan. The text is checked with the
//! mesh's own parser, so a pushed filter never breaks the domain's limits.

use arrow_schema::{DataType, Schema};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Like, Operator, expr::InList};
use datafusion::scalar::ScalarValue;
use mesh_filter::{ColumnList, Kind};

/// The filters of one scan: which conditions are pushed, and their text.
pub(crate) struct Pushdown<'s> {
    schema: &'s Schema,
    columns: ColumnList,
    pushed: Vec<String>,
}

impl<'s> Pushdown<'s> {
    /// No condition pushed yet, for a table of `schema`.
    pub(crate) fn new(schema: &'s Schema) -> Self {
        let columns = ColumnList(
            schema
                .fields()
                .iter()
                .filter(|f| !is_pseudonymized(f))
                .filter_map(|f| kind(f.data_type()).map(|k| (f.name().clone(), k)))
                .collect(),
        );
        Self { schema, columns, pushed: Vec::new() }
    }

    /// Pushes `condition` if the domain can evaluate it exactly and the
    /// filter stays within the mesh's limits; says whether it did.
    pub(crate) fn push(&mut self, condition: &Expr) -> bool {
        let Some(text) = self.translate(condition, 0) else { return false };
        self.pushed.push(text);
        if mesh_filter::parse(&self.filter(), &self.columns).is_ok() {
            return true;
        }
        self.pushed.pop();
        false
    }

    /// The filter text of every condition pushed (empty: none).
    pub(crate) fn filter(&self) -> String {
        match self.pushed.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            many => many.iter().map(|c| format!("({c})")).collect::<Vec<_>>().join(" AND "),
        }
    }

    /// The text of `expr`, `depth` levels down a condition; `None` past the
    /// mesh's nesting limit (a long `OR` chain nests one level per term), so
    /// no hostile condition recurses deeper than the mesh would parse.
    fn translate(&self, expr: &Expr, depth: usize) -> Option<String> {
        if depth >= mesh_filter::MAX_DEPTH {
            return None;
        }
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op: op @ (Operator::And | Operator::Or), right }) => {
                let word = if *op == Operator::And { "AND" } else { "OR" };
                let (left, right) = (self.translate(left, depth + 1)?, self.translate(right, depth + 1)?);
                Some(format!("({left}) {word} ({right})"))
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => self.comparison(left, *op, right),
            Expr::Not(inner) => Some(format!("NOT ({})", self.translate(inner, depth + 1)?)),
            Expr::InList(InList { expr, list, negated }) => {
                let (name, data_type) = self.column(expr)?;
                let values: Option<Vec<String>> = list.iter().map(|v| value(v, data_type)).collect();
                let list = format!("{name} IN ({})", values?.join(", "));
                Some(if *negated { format!("NOT ({list})") } else { list })
            }
            Expr::Between(Between { expr, negated, low, high }) => {
                let low = self.comparison(expr, Operator::GtEq, low)?;
                let high = self.comparison(expr, Operator::LtEq, high)?;
                let both = format!("({low}) AND ({high})");
                Some(if *negated { format!("NOT ({both})") } else { both })
            }
            Expr::Like(Like { negated, expr, pattern, escape_char: None, case_insensitive: false }) => {
                let (name, DataType::Utf8) = self.column(expr)? else { return None };
                let Expr::Literal(ScalarValue::Utf8(Some(pattern)), _) = pattern.as_ref() else {
                    return None;
                };
                let prefix = pattern.strip_suffix('%')?;
                if prefix.contains(['%', '_', '\\']) {
                    return None;
                }
                let op = if *negated { "!=" } else { "=" };
                Some(format!("{name} {op} {}", quoted(&format!("{prefix}*"))))
            }
            _ => None,
        }
    }

    /// `left op right` with one side a column and the other a literal of
    /// its type.
    fn comparison(&self, left: &Expr, op: Operator, right: &Expr) -> Option<String> {
        let (column, literal, op) = match (self.column(left), self.column(right)) {
            (Some(column), None) => (column, right, op),
            (None, Some(column)) => (column, left, op.swap()?),
            _ => return None,
        };
        let symbol = match op {
            Operator::Eq => "=",
            Operator::NotEq => "!=",
            Operator::Lt => "<",
            Operator::LtEq => "<=",
            Operator::Gt => ">",
            Operator::GtEq => ">=",
            _ => return None,
        };
        let (name, data_type) = column;
        Some(format!("{name} {symbol} {}", value(literal, data_type)?))
    }

    /// The name and type of the column `expr` is, if it is a bare column
    /// of this table that the domain can filter.
    fn column(&self, expr: &Expr) -> Option<(&'s str, &'s DataType)> {
        let Expr::Column(column) = expr else { return None };
        let field = self.schema.field_with_name(&column.name).ok()?;
        let plain_name = field.name().chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        (plain_name && !is_pseudonymized(field) && kind(field.data_type()).is_some())
            .then(|| (field.name().as_str(), field.data_type()))
    }
}

/// The filter-language text of literal `expr` when it has type `data_type`
/// exactly (no coercion: the mesh and SQL must mean the same).
fn value(expr: &Expr, data_type: &DataType) -> Option<String> {
    let Expr::Literal(literal, _) = expr else { return None };
    match (literal, data_type) {
        (ScalarValue::Int64(Some(n)), DataType::Int64) => Some(n.to_string()),
        // Arrow orders -0.0 below 0.0 where the databases call them equal.
        (ScalarValue::Float64(Some(x)), DataType::Float64) if x.is_finite() && *x != 0.0 => {
            Some(format!("{x:?}"))
        }
        (ScalarValue::Boolean(Some(b)), DataType::Boolean) => Some(b.to_string()),
        // A trailing `*` makes a prefix match of the mesh's `=`.
        (ScalarValue::Utf8(Some(text)), DataType::Utf8) if !text.ends_with('*') => Some(quoted(text)),
        _ => None,
    }
}

/// `text` as a double-quoted string of the filter language.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The filter-language kind of an Arrow column type the mesh serves.
fn kind(data_type: &DataType) -> Option<Kind> {
    match data_type {
        DataType::Int64 => Some(Kind::Integer),
        DataType::Float64 => Some(Kind::Real),
        DataType::Utf8 => Some(Kind::String),
        DataType::Boolean => Some(Kind::Bool),
        _ => None,
    }
}

fn is_pseudonymized(field: &arrow_schema::Field) -> bool {
    field.metadata().get(mesh_contracts::arrow_metadata::PSEUDONYMIZED).is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow_schema::Field;
    use datafusion::prelude::{col, lit};

    use super::*;

    fn schema() -> Schema {
        let pseudonym = HashMap::from([("mesh.pseudonymized".to_owned(), "true".to_owned())]);
        Schema::new(vec![
            Field::new("seq", DataType::Utf8, false).with_metadata(pseudonym),
            Field::new("sido", DataType::Utf8, false),
            Field::new("amount", DataType::Int64, false),
            Field::new("ratio", DataType::Float64, false),
            Field::new("score", DataType::Float32, false),
            Field::new("vip", DataType::Boolean, false),
        ])
    }

    fn pushed(condition: Expr) -> Option<String> {
        let schema = schema();
        let mut pushdown = Pushdown::new(&schema);
        pushdown.push(&condition).then(|| pushdown.filter())
    }

    #[test]
    fn conditions_the_mesh_means_the_same_by_are_pushed() {
        let cases = [
            (col("amount").gt(lit(1_000_000i64)), "amount > 1000000"),
            (lit(5i64).lt(col("amount")), "amount > 5"),
            (col("sido").eq(lit("서울 \"중구\"")), r#"sido = "서울 \"중구\"""#),
            (col("ratio").lt_eq(lit(0.5)), "ratio <= 0.5"),
            (col("vip").eq(lit(true)), "vip = true"),
            (col("sido").in_list(vec![lit("a"), lit("b")], true), r#"NOT (sido IN ("a", "b"))"#),
            (col("sido").like(lit("서울%")), r#"sido = "서울*""#),
            (col("amount").between(lit(1i64), lit(9i64)), "(amount >= 1) AND (amount <= 9)"),
            (
                col("amount").gt(lit(1i64)).or(col("sido").not_eq(lit("x"))),
                r#"(amount > 1) OR (sido != "x")"#,
            ),
        ];
        for (condition, text) in cases {
            assert_eq!(pushed(condition.clone()).as_deref(), Some(text), "{condition}");
        }
    }

    #[test]
    fn conditions_with_another_meaning_stay_in_the_engine() {
        let cases = [
            col("seq").eq(lit("p-123")),
            col("sido").eq(lit("서울*")),
            col("sido").like(lit("서_울%")),
            col("sido").ilike(lit("a%")),
            col("score").gt(lit(0.5f32)),
            col("amount").gt(lit(0.5)),
            col("amount").eq(col("amount")),
            col("amount").is_null(),
            col("amount").gt(lit(1i64)).or(col("seq").eq(lit("p"))),
            col("ratio").gt_eq(lit(0.0)),
            col("ratio").eq(lit(-0.0)),
        ];
        for condition in cases {
            assert_eq!(pushed(condition.clone()), None, "{condition}");
        }
    }

    #[test]
    fn a_condition_nested_deeper_than_the_mesh_parses_stays_in_the_engine() {
        // 5,000 terms in one OR chain: no recursion that deep, nothing pushed.
        let chain = (0..5000i64).map(|n| col("amount").eq(lit(n))).reduce(Expr::or).unwrap();
        assert_eq!(pushed(chain), None);
        let shallow = (0..20i64).map(|n| col("amount").eq(lit(n))).reduce(Expr::or).unwrap();
        assert!(pushed(shallow).is_some());
    }

    #[test]
    fn a_filter_stays_within_the_mesh_limits() {
        let schema = schema();
        let mut pushdown = Pushdown::new(&schema);
        let mut pushed = 0;
        for n in 0..400i64 {
            pushed += usize::from(pushdown.push(&col("amount").not_eq(lit(n))));
        }
        assert!(pushed > 0 && pushed < 400, "{pushed}");
        assert!(mesh_filter::parse(&pushdown.filter(), &pushdown.columns).is_ok());
    }
}
