//! The filter language of product queries (a subset of AIP-160), parsed,
//! checked against the row schema and compiled into SQL with bound values.
//!
//! ```text
//! expr       := and_expr ("OR" and_expr)*
//! and_expr   := unary ("AND" unary)*
//! unary      := "NOT" unary | "(" expr ")" | comparison
//! comparison := FIELD op value | FIELD "IN" "(" value ("," value)* ")"
//! op         := "=" | "!=" | "<" | "<=" | ">" | ">="
//! value      := "string" | 'string' | number | true | false
//! ```
//! A string ending in `*` compared with `=` (or `!=`) is a prefix match:
//! `hous_sido_nm = "경*"`. Keywords are case-insensitive.

use rusqlite::types::Value;

use crate::error::{DomainError, Result};
use crate::schema::{ColumnKind, RowSchema};
use crate::store::Dialect;

/// Longest filter accepted, in bytes.
const MAX_FILTER: usize = 16 * 1024;
/// Deepest nesting of parentheses and NOTs accepted.
const MAX_DEPTH: usize = 64;
/// Most values in one IN list.
const MAX_IN: usize = 1000;
/// Most comparisons in one filter: each is a level of SQLite's expression
/// tree, which refuses trees deeper than 1000.
const MAX_TERMS: usize = 256;
/// Most values bound in one filter, far below SQLite's 32766 parameters.
const MAX_VALUES: usize = 4000;

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

/// Parses `filter` against `schema` and compiles it to SQL of `dialect`.
pub(crate) fn compile(filter: &str, schema: &RowSchema, dialect: Dialect) -> Result<SqlFilter> {
    if filter.trim().is_empty() {
        return Ok(SqlFilter::default());
    }
    if filter.len() > MAX_FILTER {
        return Err(DomainError::invalid("filter", format!("is longer than {MAX_FILTER} bytes")));
    }
    let tokens = lex(filter)?;
    let mut parser =
        Parser { tokens, pos: 0, schema, dialect, out: SqlFilter::default(), depth: 0, terms: 0 };
    parser.expr()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(at(
            token.column,
            format!("unexpected {}; expected AND, OR or the end", token.kind.describe()),
        ));
    }
    Ok(parser.out)
}

fn at(column: usize, problem: String) -> DomainError {
    DomainError::invalid("filter", format!("{problem} at column {column}"))
}

/// Like [`at`], followed by the fields a filter may name.
fn at_listing_fields(column: usize, problem: String, schema: &RowSchema) -> DomainError {
    DomainError::invalid(
        "filter",
        format!("{problem} at column {column}; valid fields: {}", schema.field_list()),
    )
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Ident(String),
    Str(String),
    Number(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

impl TokenKind {
    fn describe(&self) -> String {
        match self {
            TokenKind::Ident(word) => format!("`{word}`"),
            TokenKind::Str(text) => format!("string \"{text}\""),
            TokenKind::Number(number) => format!("number {number}"),
            TokenKind::Op(op) => format!("`{op}`"),
            TokenKind::LParen => "`(`".into(),
            TokenKind::RParen => "`)`".into(),
            TokenKind::Comma => "`,`".into(),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self, TokenKind::Ident(w) if w.eq_ignore_ascii_case(word))
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    /// 1-based character column where the token starts.
    column: usize,
}

fn lex(input: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let mut push = |kind, len: usize| {
            tokens.push(Token { kind, column });
            len
        };
        i += match c {
            c if c.is_whitespace() => 1,
            '(' => push(TokenKind::LParen, 1),
            ')' => push(TokenKind::RParen, 1),
            ',' => push(TokenKind::Comma, 1),
            '=' => push(TokenKind::Op("="), 1),
            '!' if chars.get(i + 1) == Some(&'=') => push(TokenKind::Op("!="), 2),
            '<' if chars.get(i + 1) == Some(&'=') => push(TokenKind::Op("<="), 2),
            '>' if chars.get(i + 1) == Some(&'=') => push(TokenKind::Op(">="), 2),
            '<' => push(TokenKind::Op("<"), 1),
            '>' => push(TokenKind::Op(">"), 1),
            '"' | '\'' => {
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(at(column, format!("unterminated string (missing closing {c})"))),
                        Some('\\') => {
                            let Some(&escaped) = chars.get(j + 1) else {
                                return Err(at(j + 1, "dangling backslash".into()));
                            };
                            text.push(escaped);
                            j += 2;
                        }
                        Some(&q) if q == c => break,
                        Some(&other) => {
                            text.push(other);
                            j += 1;
                        }
                    }
                }
                push(TokenKind::Str(text), j + 1 - i)
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '.') {
                    j += 1;
                }
                push(TokenKind::Number(chars[i..j].iter().collect()), j - i)
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '.') {
                    j += 1;
                }
                push(TokenKind::Ident(chars[i..j].iter().collect()), j - i)
            }
            other => return Err(at(column, format!("unexpected character `{other}`"))),
        };
    }
    Ok(tokens)
}

enum Literal {
    Str(String),
    Number(String),
    Bool(bool),
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    schema: &'a RowSchema,
    dialect: Dialect,
    out: SqlFilter,
    depth: usize,
    terms: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn end_column(&self) -> usize {
        self.tokens.last().map(|t| t.column + 1).unwrap_or(1)
    }

    fn next(&mut self, expected: &str) -> Result<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token.ok_or_else(|| at(self.end_column(), format!("the filter ends early; expected {expected}")))
    }

    fn expr(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let column = self.peek().map(|t| t.column).unwrap_or(1);
            return Err(at(column, format!("nesting deeper than {MAX_DEPTH}")));
        }
        let start = self.out.sql.len();
        self.and_expr()?;
        let mut alternatives = false;
        while self.peek().is_some_and(|t| t.kind.keyword("OR")) {
            self.pos += 1;
            self.out.sql.push_str(" OR ");
            self.and_expr()?;
            alternatives = true;
        }
        if alternatives {
            self.out.sql.insert(start, '(');
            self.out.sql.push(')');
        }
        self.depth -= 1;
        Ok(())
    }

    fn and_expr(&mut self) -> Result<()> {
        self.unary()?;
        while self.peek().is_some_and(|t| t.kind.keyword("AND")) {
            self.pos += 1;
            self.out.sql.push_str(" AND ");
            self.unary()?;
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<()> {
        let token = self.next("a comparison such as `field = \"value\"`")?;
        match &token.kind {
            TokenKind::Ident(word) if word.eq_ignore_ascii_case("NOT") => {
                self.out.sql.push_str("NOT ");
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(at(token.column, format!("nesting deeper than {MAX_DEPTH}")));
                }
                self.unary()?;
                self.depth -= 1;
                Ok(())
            }
            TokenKind::LParen => {
                self.out.sql.push('(');
                self.expr()?;
                let close = self.next("`)`")?;
                if close.kind != TokenKind::RParen {
                    return Err(at(
                        close.column,
                        format!("expected `)` but found {}", close.kind.describe()),
                    ));
                }
                self.out.sql.push(')');
                Ok(())
            }
            TokenKind::Ident(field) => self.comparison(field.clone(), token.column),
            other => Err(at_listing_fields(
                token.column,
                format!("expected a field name but found {}", other.describe()),
                self.schema,
            )),
        }
    }

    fn comparison(&mut self, field: String, column: usize) -> Result<()> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(at(
                column,
                format!(
                    "more than {MAX_TERMS} comparisons; compare one field with many values as \
                     `field IN (...)`, or split the query"
                ),
            ));
        }
        self.compare(field, column)?;
        if self.out.params.len() > MAX_VALUES {
            return Err(at(column, format!("more than {MAX_VALUES} values in all; split the query")));
        }
        Ok(())
    }

    fn compare(&mut self, field: String, column: usize) -> Result<()> {
        let Some((index, def)) = self.schema.column(&field) else {
            return Err(at_listing_fields(column, format!("unknown field `{field}`"), self.schema));
        };
        let (name, kind) = (def.name.clone(), def.kind);
        if !self.out.fields.contains(&index) {
            self.out.fields.push(index);
        }
        let op_token = self.next("a comparison operator (=, !=, <, <=, >, >=) or IN")?;
        match &op_token.kind {
            TokenKind::Op(op) => {
                let op = *op;
                let value_token = self.next("a value")?;
                let literal = literal(&value_token)?;
                if let (ColumnKind::String, Literal::Str(text)) = (kind, &literal)
                    && let Some(prefix) = text.strip_suffix('*')
                {
                    let negate = match op {
                        "=" => false,
                        "!=" => true,
                        _ => {
                            return Err(at(
                                value_token.column,
                                format!("a prefix match (trailing *) works only with = or !=, not {op}"),
                            ));
                        }
                    };
                    let condition = self.dialect.prefix_match(&name, prefix, negate, &mut self.out.params);
                    self.out.sql.push_str(&condition);
                    return Ok(());
                }
                let value = self.bind(&name, kind, literal, value_token.column)?;
                self.out.sql.push_str(&format!("{name} {op} ?"));
                self.out.params.push(value);
                Ok(())
            }
            TokenKind::Ident(word) if word.eq_ignore_ascii_case("IN") => {
                let open = self.next("`(`")?;
                if open.kind != TokenKind::LParen {
                    return Err(at(
                        open.column,
                        format!("expected `(` after IN but found {}", open.kind.describe()),
                    ));
                }
                let mut values = Vec::new();
                loop {
                    let value_token = self.next("a value")?;
                    let literal = literal(&value_token)?;
                    values.push(self.bind(&name, kind, literal, value_token.column)?);
                    if values.len() > MAX_IN {
                        return Err(at(
                            value_token.column,
                            format!("an IN list may hold at most {MAX_IN} values"),
                        ));
                    }
                    let separator = self.next("`,` or `)`")?;
                    match separator.kind {
                        TokenKind::Comma => continue,
                        TokenKind::RParen => break,
                        other => {
                            return Err(at(
                                separator.column,
                                format!("expected `,` or `)` but found {}", other.describe()),
                            ));
                        }
                    }
                }
                let placeholders = vec!["?"; values.len()].join(", ");
                self.out.sql.push_str(&format!("{name} IN ({placeholders})"));
                self.out.params.extend(values);
                Ok(())
            }
            other => Err(at(
                op_token.column,
                format!(
                    "expected a comparison operator (=, !=, <, <=, >, >=) or IN after `{name}` but found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// Checks a literal against the column's kind and converts it to a SQL value.
    fn bind(&self, name: &str, kind: ColumnKind, literal: Literal, column: usize) -> Result<Value> {
        let mismatch = |hint: String| at(column, format!("field `{name}` is {}; {hint}", kind.describe()));
        match (kind, literal) {
            (ColumnKind::String, Literal::Str(text)) => Ok(Value::Text(text)),
            (ColumnKind::String, Literal::Number(number)) => {
                Err(mismatch(format!("quote the value: {name} = \"{number}\"")))
            }
            (ColumnKind::String, Literal::Bool(b)) => {
                Err(mismatch(format!("quote the value: {name} = \"{b}\"")))
            }
            (ColumnKind::Integer, Literal::Number(number)) => match number.parse::<i64>() {
                Ok(n) => Ok(Value::Integer(n)),
                Err(_) => number
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Value::Real)
                    .ok_or_else(|| mismatch(format!("`{number}` is not a number in range"))),
            },
            (ColumnKind::Real, Literal::Number(number)) => number
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Real)
                .ok_or_else(|| mismatch(format!("`{number}` is not a number"))),
            (ColumnKind::Integer | ColumnKind::Real, Literal::Str(text)) => {
                Err(mismatch(format!("compare it with a number, not \"{text}\", e.g. {name} > 1000000")))
            }
            (ColumnKind::Integer | ColumnKind::Real, Literal::Bool(_)) => {
                Err(mismatch("compare it with a number".to_owned()))
            }
            (ColumnKind::Bool, Literal::Bool(b)) => Ok(Value::Integer(i64::from(b))),
            (ColumnKind::Bool, _) => Err(mismatch("compare it with true or false".to_owned())),
        }
    }
}

fn literal(token: &Token) -> Result<Literal> {
    match &token.kind {
        TokenKind::Str(text) => Ok(Literal::Str(text.clone())),
        TokenKind::Number(number) => {
            if number.parse::<f64>().is_err() {
                return Err(at(token.column, format!("`{number}` is not a number")));
            }
            Ok(Literal::Number(number.clone()))
        }
        TokenKind::Ident(word) if word.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
        TokenKind::Ident(word) if word.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
        TokenKind::Ident(word) => {
            Err(at(token.column, format!("expected a value but found `{word}`; quote strings: \"{word}\"")))
        }
        other => Err(at(token.column, format!("expected a value but found {}", other.describe()))),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rusqlite::types::Value::{Integer, Real, Text};

    use super::*;
    use crate::test_schema::schema;

    const FIELDS: &str = "name, amount, score, flag, seq";

    fn sql(filter: &str) -> SqlFilter {
        let compiled = compile_for_test(filter);
        SqlFilter { fields: Vec::new(), ..compiled }
    }

    fn compile_for_test(filter: &str) -> SqlFilter {
        compile(filter, &schema(), Dialect::Sqlite).unwrap_or_else(|e| panic!("`{filter}` was refused: {e}"))
    }

    #[test]
    fn a_filter_names_the_fields_it_compares() {
        assert_eq!(compile_for_test("amount > 5 OR (NOT name = 'a' AND amount < 9)").fields, [1, 0]);
        assert!(compile_for_test("").fields.is_empty());
    }

    fn error(filter: &str) -> String {
        match compile(filter, &schema(), Dialect::Sqlite) {
            Ok(compiled) => panic!("`{filter}` compiled to {compiled:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn text(s: &str) -> Value {
        Text(s.to_owned())
    }

    #[test]
    fn every_operator_compiles_to_a_bound_comparison() {
        let cases = [
            ("amount = 5", "amount = ?"),
            ("amount != 5", "amount != ?"),
            ("amount < 5", "amount < ?"),
            ("amount <= 5", "amount <= ?"),
            ("amount > 5", "amount > ?"),
            ("amount >= 5", "amount >= ?"),
        ];
        for (filter, expected) in cases {
            assert_eq!(
                sql(filter),
                SqlFilter { sql: expected.into(), params: vec![Integer(5)], fields: Vec::new() },
                "{filter}"
            );
        }
    }

    #[test]
    fn values_are_bound_by_the_column_kind() {
        let cases: [(&str, &str, Vec<Value>); 8] = [
            ("name = \"서울\"", "name = ?", vec![text("서울")]),
            ("name = 'it''s'", "name = ? AND name = ?", vec![]),
            ("name = \"a\\\"b\"", "name = ?", vec![text("a\"b")]),
            ("amount > -3", "amount > ?", vec![Integer(-3)]),
            ("amount > 1.5", "amount > ?", vec![Real(1.5)]),
            ("score <= 2", "score <= ?", vec![Real(2.0)]),
            ("flag = true", "flag = ?", vec![Integer(1)]),
            ("flag != FALSE", "flag != ?", vec![Integer(0)]),
        ];
        for (filter, expected, params) in cases {
            if filter.contains("''") {
                // Two adjacent quoted strings are two values, not an escape.
                assert!(error(filter).contains("unexpected string"), "{filter}");
                continue;
            }
            assert_eq!(
                sql(filter),
                SqlFilter { sql: expected.into(), params, fields: Vec::new() },
                "{filter}"
            );
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let cases = [
            ("amount = 1 OR amount = 2 AND name = \"x\"", "(amount = ? OR amount = ? AND name = ?)"),
            ("(amount = 1 OR amount = 2) AND name = \"x\"", "((amount = ? OR amount = ?)) AND name = ?"),
            ("NOT amount = 1 AND name = \"x\"", "NOT amount = ? AND name = ?"),
            ("NOT (amount = 1 OR name = \"x\")", "NOT ((amount = ? OR name = ?))"),
            ("amount = 1 and name = \"x\" or flag = true", "(amount = ? AND name = ? OR flag = ?)"),
            ("((amount = 1))", "((amount = ?))"),
        ];
        for (filter, expected) in cases {
            assert_eq!(sql(filter).sql, expected, "{filter}");
        }
    }

    #[test]
    fn in_lists_bind_each_value() {
        assert_eq!(
            sql("name IN (\"a\", \"b\", \"c\")"),
            SqlFilter {
                sql: "name IN (?, ?, ?)".into(),
                params: vec![text("a"), text("b"), text("c")],
                fields: Vec::new()
            }
        );
        assert_eq!(sql("amount in (1)").params, vec![Integer(1)]);
        assert_eq!(
            error("amount IN (1, \"x\")"),
            "filter: field `amount` is an integer; compare it with a number, not \"x\", e.g. amount > 1000000 at column 15"
        );
        assert_eq!(
            error("name IN \"a\""),
            "filter: expected `(` after IN but found string \"a\" at column 9"
        );
        assert_eq!(
            error("name IN (\"a\" \"b\")"),
            "filter: expected `,` or `)` but found string \"b\" at column 14"
        );
        let long = format!("amount IN ({})", vec!["1"; MAX_IN + 1].join(", "));
        assert!(error(&long).contains("an IN list may hold at most 1000 values"));
    }

    #[test]
    fn a_trailing_star_is_a_prefix_match_counted_in_characters() {
        assert_eq!(
            sql("name = \"서울*\""),
            SqlFilter {
                sql: "substr(name, 1, ?) = ?".into(),
                params: vec![Integer(2), text("서울")],
                fields: Vec::new()
            }
        );
        assert_eq!(sql("name != \"ab*\"").sql, "NOT substr(name, 1, ?) = ?");
        assert_eq!(
            error("name > \"ab*\""),
            "filter: a prefix match (trailing *) works only with = or !=, not > at column 8"
        );
        // On a number column a star is no prefix: it is a type error.
        assert!(error("amount = \"1*\"").starts_with("filter: field `amount` is an integer"));
    }

    #[test]
    fn type_errors_say_what_to_write() {
        let cases = [
            ("name = 5", "filter: field `name` is a string; quote the value: name = \"5\" at column 8"),
            ("name = true", "filter: field `name` is a string; quote the value: name = \"true\" at column 8"),
            (
                "amount = \"x\"",
                "filter: field `amount` is an integer; compare it with a number, not \"x\", e.g. amount > 1000000 at column 10",
            ),
            ("amount = true", "filter: field `amount` is an integer; compare it with a number at column 10"),
            (
                "score = \"x\"",
                "filter: field `score` is a number; compare it with a number, not \"x\", e.g. score > 1000000 at column 9",
            ),
            ("flag = 1", "filter: field `flag` is a boolean; compare it with true or false at column 8"),
            (
                "amount = 1e999",
                "filter: field `amount` is an integer; `1e999` is not a number in range at column 10",
            ),
            ("amount = 12abc", "filter: `12abc` is not a number at column 10"),
        ];
        for (filter, expected) in cases {
            assert_eq!(error(filter), expected, "{filter}");
        }
    }

    #[test]
    fn syntax_errors_point_at_the_column() {
        let cases = [
            ("nope = 1", format!("filter: unknown field `nope` at column 1; valid fields: {FIELDS}")),
            ("amount > 1 AND nope = 1", format!("filter: unknown field `nope` at column 16; valid fields: {FIELDS}")),
            ("= 1", format!("filter: expected a field name but found `=` at column 1; valid fields: {FIELDS}")),
            ("amount", "filter: the filter ends early; expected a comparison operator (=, !=, <, <=, >, >=) or IN at column 2".into()),
            ("amount >", "filter: the filter ends early; expected a value at column 9".into()),
            ("amount > 1 AND", "filter: the filter ends early; expected a comparison such as `field = \"value\"` at column 13".into()),
            ("amount > 1 amount", "filter: unexpected `amount`; expected AND, OR or the end at column 12".into()),
            ("amount ~ 1", "filter: unexpected character `~` at column 8".into()),
            ("name = \"open", "filter: unterminated string (missing closing \") at column 8".into()),
            ("name = \"a\\", "filter: dangling backslash at column 10".into()),
            ("(amount = 1", "filter: the filter ends early; expected `)` at column 12".into()),
            ("(amount = 1 name", "filter: expected `)` but found `name` at column 13".into()),
            ("name = seoul", "filter: expected a value but found `seoul`; quote strings: \"seoul\" at column 8".into()),
            ("name = (", "filter: expected a value but found `(` at column 8".into()),
            ("amount 5", "filter: expected a comparison operator (=, !=, <, <=, >, >=) or IN after `amount` but found number 5 at column 8".into()),
        ];
        for (filter, expected) in cases {
            assert_eq!(error(filter), expected, "{filter}");
        }
    }

    #[test]
    fn limits_on_size_and_nesting_are_named() {
        assert_eq!(sql(""), SqlFilter::default());
        assert_eq!(sql("   "), SqlFilter::default());
        let long = format!("name = \"{}\"", "x".repeat(MAX_FILTER));
        assert_eq!(error(&long), "filter: is longer than 16384 bytes");
        let deep = format!("{}amount = 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(error(&deep).contains("nesting deeper than 64"), "{}", error(&deep));
        let nots = format!("{}amount = 1", "NOT ".repeat(MAX_DEPTH + 1));
        assert!(error(&nots).contains("nesting deeper than 64"));
        let fine = format!("{}amount = 1{}", "(".repeat(10), ")".repeat(10));
        assert_eq!(sql(&fine).params, vec![Integer(1)]);
    }

    #[test]
    fn a_flat_filter_of_too_many_terms_is_refused_by_count() {
        let terms = |n: usize| vec!["seq=\"\""; n].join(" or ");
        assert!(terms(1500).len() < MAX_FILTER);
        assert_eq!(
            error(&terms(1500)),
            "filter: more than 256 comparisons; compare one field with many values as `field IN (...)`, \
             or split the query at column 2561"
        );
        let values = |n: usize| format!("amount IN ({})", vec!["1"; n].join(","));
        let many = vec![values(1000); 5].join(" OR ");
        assert_eq!(error(&many), "filter: more than 4000 values in all; split the query at column 8061");
    }

    /// Runs `filter` compiled against an empty table of the test schema.
    fn run_in_sqlite(filter: &str) -> rusqlite::Result<i64> {
        let compiled = sql(filter);
        let conn = rusqlite::Connection::open_in_memory()?;
        conn.execute_batch(&schema().create_sql())?;
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

    #[test]
    fn nothing_from_the_filter_reaches_the_sql_text() {
        let hostile = "name = \"x'; DROP TABLE t; --\" OR amount IN (1, 2)";
        let compiled = sql(hostile);
        assert!(!compiled.sql.contains("DROP"));
        assert_eq!(compiled.params[0], text("x'; DROP TABLE t; --"));
    }

    /// Strings of the filter language's own pieces, so that most inputs get
    /// past the lexer and exercise the parser.
    fn filter_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("name"),
            Just("amount"),
            Just("score"),
            Just("flag"),
            Just("nope"),
            Just("AND"),
            Just("OR"),
            Just("NOT"),
            Just("IN"),
            Just("("),
            Just(")"),
            Just(","),
            Just("="),
            Just("!="),
            Just("<"),
            Just("<="),
            Just(">"),
            Just(">="),
            Just("\"a*\""),
            Just("'서울'"),
            Just("1"),
            Just("-2.5"),
            Just("1e999"),
            Just("true"),
            Just("\""),
            Just("\\"),
            Just("*"),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.join(" "))
    }

    proptest! {
        #[test]
        fn any_text_compiles_or_is_refused_without_panicking(input in any::<String>()) {
            let _ = compile(&input, &schema(), Dialect::Sqlite);
        }

        #[test]
        fn filter_like_text_compiles_to_balanced_sql_with_one_value_per_placeholder(input in filter_like()) {
            if let Ok(compiled) = compile(&input, &schema(), Dialect::Sqlite) {
                prop_assert_eq!(compiled.sql.matches('?').count(), compiled.params.len());
                prop_assert_eq!(compiled.sql.matches('(').count(), compiled.sql.matches(')').count());
            }
        }
    }
}
