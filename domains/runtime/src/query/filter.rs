//! A filter (parsed by `mesh-filter` against the row schema) compiled into
//! a SQL condition of the domain's dialect, every value bound.

use crate::values::Value;
use mesh_filter::{Columns, Expr, Filter, Kind};

use crate::error::{DomainError, Result};
use crate::query::dialect::Dialect;
use crate::values::schema::RowSchema;

/// A filter compiled to a SQL condition and its bound values.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SqlFilter {
    /// The condition, with `?` placeholders; empty when the filter is empty.
    pub sql: String,
    /// The values of the placeholders, in order.
    pub params: Vec<Value>,
    /// The schema columns the filter compares, each once.
    pub fields: Vec<usize>,
}

impl Columns for RowSchema {
    fn find(&self, name: &str) -> Option<(usize, Kind)> {
        self.column(name).map(|(index, def)| (index, def.kind))
    }

    fn name(&self, index: usize) -> &str {
        &self.columns[index].name
    }

    fn field_list(&self) -> String {
        RowSchema::field_list(self)
    }
}

/// Parses `filter` against `schema` (INVALID_ARGUMENT naming the problem).
pub(crate) fn parse(filter: &str, schema: &RowSchema) -> Result<Filter> {
    mesh_filter::parse(filter, schema).map_err(DomainError::invalid_filter)
}

/// Parses `filter` against `schema` and compiles it to SQL of `dialect`.
pub(crate) fn compile(filter: &str, schema: &RowSchema, dialect: Dialect) -> Result<SqlFilter> {
    Ok(to_sql(&parse(filter, schema)?, schema, dialect))
}

/// The SQL condition of a parsed filter.
pub(crate) fn to_sql(filter: &Filter, schema: &RowSchema, dialect: Dialect) -> SqlFilter {
    let mut out = SqlFilter { fields: filter.fields.clone(), ..Default::default() };
    if let Some(expr) = &filter.expr {
        out.sql = write(expr, schema, dialect, &mut out.params);
    }
    out
}

fn write(expr: &Expr, schema: &RowSchema, dialect: Dialect, params: &mut Vec<Value>) -> String {
    let name = |column: &usize| schema.columns[*column].name.as_str();
    match expr {
        Expr::Or(all) => {
            let parts: Vec<String> = all.iter().map(|e| write(e, schema, dialect, params)).collect();
            format!("({})", parts.join(" OR "))
        }
        // Every OR is parenthesized, so AND's parts need none.
        Expr::And(all) => {
            let parts: Vec<String> = all.iter().map(|e| write(e, schema, dialect, params)).collect();
            parts.join(" AND ")
        }
        Expr::Not(inner) => format!("NOT ({})", write(inner, schema, dialect, params)),
        Expr::Compare { column, op, value } => {
            params.push(sql_value(value));
            format!("{} {} ?", name(column), op.symbol())
        }
        Expr::In { column, values } => {
            params.extend(values.iter().map(sql_value));
            format!("{} IN ({})", name(column), vec!["?"; values.len()].join(", "))
        }
        Expr::Prefix { column, prefix, negate } => {
            dialect.prefix_match(name(column), prefix, *negate, params)
        }
    }
}

/// The SQL value of a filter value (booleans are stored as 0 and 1).
fn sql_value(value: &mesh_filter::Value) -> Value {
    match value {
        mesh_filter::Value::Text(text) => Value::Text(text.clone()),
        mesh_filter::Value::Integer(n) => Value::Integer(*n),
        mesh_filter::Value::Real(x) => Value::Real(*x),
        mesh_filter::Value::Bool(b) => Value::Integer(i64::from(*b)),
    }
}

#[cfg(test)]
mod tests {
    use crate::values::Value::{Integer, Real, Text};

    use super::*;
    use crate::values::test_schema::schema;

    fn sql(filter: &str) -> SqlFilter {
        let compiled = compile(filter, &schema(), Dialect::Sqlite)
            .unwrap_or_else(|e| panic!("`{filter}` was refused: {e}"));
        SqlFilter { fields: Vec::new(), ..compiled }
    }

    fn text(s: &str) -> Value {
        Text(s.to_owned())
    }

    #[test]
    fn refusals_name_the_filter() {
        let err = compile("nope = 1", &schema(), Dialect::Sqlite).unwrap_err().to_string();
        assert_eq!(
            err,
            "filter: unknown field `nope` at column 1; valid fields: name, amount, score, flag, seq"
        );
    }

    #[test]
    fn every_node_compiles_to_bound_sql() {
        let cases: [(&str, &str, Vec<Value>); 9] = [
            ("amount >= 5", "amount >= ?", vec![Integer(5)]),
            ("amount > 1.5", "amount > ?", vec![Real(1.5)]),
            ("name = \"서울\"", "name = ?", vec![text("서울")]),
            ("flag = true", "flag = ?", vec![Integer(1)]),
            ("flag != FALSE", "flag != ?", vec![Integer(0)]),
            ("name IN (\"a\", \"b\")", "name IN (?, ?)", vec![text("a"), text("b")]),
            ("name = \"서울*\"", "substr(name, 1, ?) = ?", vec![Integer(2), text("서울")]),
            ("name != \"ab*\"", "NOT substr(name, 1, ?) = ?", vec![Integer(2), text("ab")]),
            (
                "NOT (amount = 1 OR name = \"x\")",
                "NOT ((amount = ? OR name = ?))",
                vec![Integer(1), text("x")],
            ),
        ];
        for (filter, expected, params) in cases {
            assert_eq!(
                sql(filter),
                SqlFilter { sql: expected.into(), params, fields: Vec::new() },
                "{filter}"
            );
        }
    }

    #[test]
    fn or_is_parenthesized_so_the_grouping_survives() {
        let cases = [
            ("amount = 1 OR amount = 2 AND name = \"x\"", "(amount = ? OR amount = ? AND name = ?)"),
            ("(amount = 1 OR amount = 2) AND name = \"x\"", "(amount = ? OR amount = ?) AND name = ?"),
            ("NOT amount = 1 AND name = \"x\"", "NOT (amount = ?) AND name = ?"),
            ("((amount = 1))", "amount = ?"),
        ];
        for (filter, expected) in cases {
            assert_eq!(sql(filter).sql, expected, "{filter}");
        }
        assert_eq!(sql(""), SqlFilter::default());
    }

    #[test]
    fn nothing_from_the_filter_reaches_the_sql_text() {
        let hostile = "name = \"x'; DROP TABLE t; --\" OR amount IN (1, 2)";
        let compiled = sql(hostile);
        assert!(!compiled.sql.contains("DROP"));
        assert_eq!(compiled.params[0], text("x'; DROP TABLE t; --"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_compiles_to_balanced_sql_with_one_value_per_placeholder(input in "[a-z =<>!()\"*,0-9.]{0,60}") {
            if let Ok(compiled) = compile(&input, &schema(), Dialect::Sqlite) {
                proptest::prop_assert_eq!(compiled.sql.matches('?').count(), compiled.params.len());
                proptest::prop_assert_eq!(compiled.sql.matches('(').count(), compiled.sql.matches(')').count());
            }
        }
    }
}
