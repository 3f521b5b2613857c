//! The recursive-descent parser: tokens to a [`Filter`], every field
//! resolved against the columns and every value checked against its kind.

use crate::lex::{Token, TokenKind, lex};
use crate::tree::{Expr, Filter, Op, Value};
use crate::{Columns, FilterError, Kind};

/// Longest filter accepted, in bytes.
pub const MAX_FILTER: usize = 16 * 1024;
/// Deepest nesting of parentheses and NOTs accepted.
pub const MAX_DEPTH: usize = 64;
/// Most values in one IN list.
pub const MAX_IN: usize = 1000;
/// Most comparisons in one filter: each is a level of SQLite's expression
/// tree, which refuses trees deeper than 1000.
pub const MAX_TERMS: usize = 256;
/// Most values in one filter, far below SQLite's 32766 parameters (a
/// prefix match may bind two).
pub const MAX_VALUES: usize = 4000;

/// Parses `filter` and checks it against `columns`. An empty (or blank)
/// filter keeps every row.
pub fn parse(filter: &str, columns: &dyn Columns) -> Result<Filter, FilterError> {
    if filter.trim().is_empty() {
        return Ok(Filter::default());
    }
    if filter.len() > MAX_FILTER {
        return Err(FilterError::new(format!("is longer than {MAX_FILTER} bytes")));
    }
    let tokens = lex(filter)?;
    let mut parser = Parser { tokens, pos: 0, columns, fields: Vec::new(), depth: 0, terms: 0, values: 0 };
    let expr = parser.expr()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(FilterError::at(
            token.column,
            format!("unexpected {}; expected AND, OR or the end", token.kind.describe()),
        ));
    }
    Ok(Filter { expr: Some(expr), fields: parser.fields })
}

/// Like [`FilterError::at`], followed by the fields a filter may name.
fn at_listing_fields(column: usize, problem: String, columns: &dyn Columns) -> FilterError {
    let message = format!("{problem} at column {column}; valid fields: {}", columns.field_list());
    FilterError { message, column: Some(column) }
}

enum Literal {
    Str(String),
    Number(String),
    Bool(bool),
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    columns: &'a dyn Columns,
    fields: Vec<usize>,
    depth: usize,
    terms: usize,
    values: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn end_column(&self) -> usize {
        self.tokens.last().map(|t| t.column + 1).unwrap_or(1)
    }

    fn next(&mut self, expected: &str) -> Result<Token, FilterError> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token.ok_or_else(|| {
            FilterError::at(self.end_column(), format!("the filter ends early; expected {expected}"))
        })
    }

    fn deeper(&mut self, column: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::at(column, format!("nesting deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        self.deeper(self.peek().map(|t| t.column).unwrap_or(1))?;
        let mut alternatives = vec![self.and_expr()?];
        while self.peek().is_some_and(|t| t.kind.keyword("OR")) {
            self.pos += 1;
            alternatives.push(self.and_expr()?);
        }
        self.depth -= 1;
        Ok(if alternatives.len() == 1 { alternatives.remove(0) } else { Expr::Or(alternatives) })
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let mut all = vec![self.unary()?];
        while self.peek().is_some_and(|t| t.kind.keyword("AND")) {
            self.pos += 1;
            all.push(self.unary()?);
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Expr::And(all) })
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let token = self.next("a comparison such as `field = \"value\"`")?;
        match &token.kind {
            TokenKind::Ident(word) if word.eq_ignore_ascii_case("NOT") => {
                self.deeper(token.column)?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            TokenKind::LParen => {
                let inner = self.expr()?;
                let close = self.next("`)`")?;
                if close.kind != TokenKind::RParen {
                    return Err(FilterError::at(
                        close.column,
                        format!("expected `)` but found {}", close.kind.describe()),
                    ));
                }
                Ok(inner)
            }
            TokenKind::Ident(field) => self.comparison(field.clone(), token.column),
            other => Err(at_listing_fields(
                token.column,
                format!("expected a field name but found {}", other.describe()),
                self.columns,
            )),
        }
    }

    fn comparison(&mut self, field: String, column: usize) -> Result<Expr, FilterError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(FilterError::at(
                column,
                format!(
                    "more than {MAX_TERMS} comparisons; compare one field with many values as \
                     `field IN (...)`, or split the query"
                ),
            ));
        }
        let expr = self.compare(field, column)?;
        self.values += match &expr {
            Expr::In { values, .. } => values.len(),
            Expr::Prefix { .. } => 2,
            _ => 1,
        };
        if self.values > MAX_VALUES {
            return Err(FilterError::at(
                column,
                format!("more than {MAX_VALUES} values in all; split the query"),
            ));
        }
        Ok(expr)
    }

    fn compare(&mut self, field: String, column: usize) -> Result<Expr, FilterError> {
        let Some((index, kind)) = self.columns.find(&field) else {
            return Err(at_listing_fields(column, format!("unknown field `{field}`"), self.columns));
        };
        if !self.fields.contains(&index) {
            self.fields.push(index);
        }
        let op_token = self.next("a comparison operator (=, !=, <, <=, >, >=) or IN")?;
        match &op_token.kind {
            TokenKind::Op(symbol) => {
                let op = operator(symbol);
                let value_token = self.next("a value")?;
                let literal = literal(&value_token)?;
                if let (Kind::String, Literal::Str(text)) = (kind, &literal)
                    && let Some(prefix) = text.strip_suffix('*')
                {
                    let negate = match op {
                        Op::Eq => false,
                        Op::Ne => true,
                        _ => {
                            return Err(FilterError::at(
                                value_token.column,
                                format!("a prefix match (trailing *) works only with = or !=, not {symbol}"),
                            ));
                        }
                    };
                    return Ok(Expr::Prefix { column: index, prefix: prefix.to_owned(), negate });
                }
                let value = bind(&field, kind, literal, value_token.column)?;
                Ok(Expr::Compare { column: index, op, value })
            }
            TokenKind::Ident(word) if word.eq_ignore_ascii_case("IN") => {
                let open = self.next("`(`")?;
                if open.kind != TokenKind::LParen {
                    return Err(FilterError::at(
                        open.column,
                        format!("expected `(` after IN but found {}", open.kind.describe()),
                    ));
                }
                let mut values = Vec::new();
                loop {
                    let value_token = self.next("a value")?;
                    let literal = literal(&value_token)?;
                    values.push(bind(&field, kind, literal, value_token.column)?);
                    if values.len() > MAX_IN {
                        return Err(FilterError::at(
                            value_token.column,
                            format!("an IN list may hold at most {MAX_IN} values"),
                        ));
                    }
                    let separator = self.next("`,` or `)`")?;
                    match separator.kind {
                        TokenKind::Comma => continue,
                        TokenKind::RParen => break,
                        other => {
                            return Err(FilterError::at(
                                separator.column,
                                format!("expected `,` or `)` but found {}", other.describe()),
                            ));
                        }
                    }
                }
                Ok(Expr::In { column: index, values })
            }
            other => Err(FilterError::at(
                op_token.column,
                format!(
                    "expected a comparison operator (=, !=, <, <=, >, >=) or IN after `{field}` but found {}",
                    other.describe()
                ),
            )),
        }
    }
}

fn operator(symbol: &str) -> Op {
    match symbol {
        "=" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        _ => Op::Ge,
    }
}

/// Checks a literal against the column's kind.
fn bind(name: &str, kind: Kind, literal: Literal, column: usize) -> Result<Value, FilterError> {
    let mismatch =
        |hint: String| FilterError::at(column, format!("field `{name}` is {}; {hint}", kind.describe()));
    match (kind, literal) {
        (Kind::String, Literal::Str(text)) => Ok(Value::Text(text)),
        (Kind::String, Literal::Number(number)) => {
            Err(mismatch(format!("quote the value: {name} = \"{number}\"")))
        }
        (Kind::String, Literal::Bool(b)) => Err(mismatch(format!("quote the value: {name} = \"{b}\""))),
        (Kind::Integer, Literal::Number(number)) => match number.parse::<i64>() {
            Ok(n) => Ok(Value::Integer(n)),
            Err(_) => number
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Real)
                .ok_or_else(|| mismatch(format!("`{number}` is not a number in range"))),
        },
        (Kind::Real, Literal::Number(number)) => number
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Real)
            .ok_or_else(|| mismatch(format!("`{number}` is not a number"))),
        (Kind::Integer | Kind::Real, Literal::Str(text)) => {
            Err(mismatch(format!("compare it with a number, not \"{text}\", e.g. {name} > 1000000")))
        }
        (Kind::Integer | Kind::Real, Literal::Bool(_)) => {
            Err(mismatch("compare it with a number".to_owned()))
        }
        (Kind::Bool, Literal::Bool(b)) => Ok(Value::Bool(b)),
        (Kind::Bool, _) => Err(mismatch("compare it with true or false".to_owned())),
    }
}

fn literal(token: &Token) -> Result<Literal, FilterError> {
    match &token.kind {
        TokenKind::Str(text) => Ok(Literal::Str(text.clone())),
        TokenKind::Number(number) => {
            if number.parse::<f64>().is_err() {
                return Err(FilterError::at(token.column, format!("`{number}` is not a number")));
            }
            Ok(Literal::Number(number.clone()))
        }
        TokenKind::Ident(word) if word.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
        TokenKind::Ident(word) if word.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
        TokenKind::Ident(word) => Err(FilterError::at(
            token.column,
            format!("expected a value but found `{word}`; quote strings: \"{word}\""),
        )),
        other => {
            Err(FilterError::at(token.column, format!("expected a value but found {}", other.describe())))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ColumnList;

    const FIELDS: &str = "name, amount, score, flag, seq";

    fn columns() -> ColumnList {
        ColumnList::from_proto([
            ("name", "string"),
            ("amount", "int64"),
            ("score", "double"),
            ("flag", "bool"),
            ("seq", "string"),
            ("nested", "woori.Nested"),
        ])
    }

    fn tree(filter: &str) -> Expr {
        parse(filter, &columns()).unwrap_or_else(|e| panic!("`{filter}` was refused: {e}")).expr.unwrap()
    }

    /// The message of the error `filter` gets, checking that its column
    /// is the one the message states.
    fn error(filter: &str) -> String {
        match parse(filter, &columns()) {
            Ok(parsed) => panic!("`{filter}` parsed to {parsed:?}"),
            Err(e) => {
                let stated = e.message.split("at column ").nth(1).map(|rest| {
                    rest.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse::<usize>()
                        .unwrap()
                });
                assert_eq!(e.column, stated, "{filter}: {}", e.message);
                e.to_string()
            }
        }
    }

    fn cmp(column: usize, op: Op, value: Value) -> Expr {
        Expr::Compare { column, op, value }
    }

    #[test]
    fn a_filter_names_the_fields_it_compares() {
        let parsed = parse("amount > 5 OR (NOT name = 'a' AND amount < 9)", &columns()).unwrap();
        assert_eq!(parsed.fields, [1, 0]);
        assert!(parse("", &columns()).unwrap().fields.is_empty());
        assert!(parse("   ", &columns()).unwrap().is_empty());
    }

    #[test]
    fn every_operator_and_kind_gives_its_node() {
        let cases = [
            ("amount = 5", cmp(1, Op::Eq, Value::Integer(5))),
            ("amount != 5", cmp(1, Op::Ne, Value::Integer(5))),
            ("amount < 5", cmp(1, Op::Lt, Value::Integer(5))),
            ("amount <= 5", cmp(1, Op::Le, Value::Integer(5))),
            ("amount > -3", cmp(1, Op::Gt, Value::Integer(-3))),
            ("amount >= 1.5", cmp(1, Op::Ge, Value::Real(1.5))),
            ("score <= 2", cmp(2, Op::Le, Value::Real(2.0))),
            ("flag = true", cmp(3, Op::Eq, Value::Bool(true))),
            ("flag != FALSE", cmp(3, Op::Ne, Value::Bool(false))),
            ("name = \"서울\"", cmp(0, Op::Eq, Value::Text("서울".into()))),
            ("name = \"a\\\"b\"", cmp(0, Op::Eq, Value::Text("a\"b".into()))),
            ("name = \"서울*\"", Expr::Prefix { column: 0, prefix: "서울".into(), negate: false }),
            ("name != 'ab*'", Expr::Prefix { column: 0, prefix: "ab".into(), negate: true }),
            ("amount in (1)", Expr::In { column: 1, values: vec![Value::Integer(1)] }),
        ];
        for (filter, expected) in cases {
            assert_eq!(tree(filter), expected, "{filter}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let (a1, a2, nx) = (
            cmp(1, Op::Eq, Value::Integer(1)),
            cmp(1, Op::Eq, Value::Integer(2)),
            cmp(0, Op::Eq, Value::Text("x".into())),
        );
        assert_eq!(
            tree("amount = 1 OR amount = 2 AND name = \"x\""),
            Expr::Or(vec![a1.clone(), Expr::And(vec![a2.clone(), nx.clone()])])
        );
        assert_eq!(
            tree("(amount = 1 OR amount = 2) AND name = \"x\""),
            Expr::And(vec![Expr::Or(vec![a1.clone(), a2.clone()]), nx.clone()])
        );
        assert_eq!(
            tree("NOT amount = 1 AND name = \"x\""),
            Expr::And(vec![Expr::Not(Box::new(a1.clone())), nx.clone()])
        );
        assert_eq!(tree("((amount = 1))"), a1);
        assert_eq!(
            tree("amount = 1 and name = \"x\" or flag = true"),
            Expr::Or(vec![Expr::And(vec![a1, nx]), cmp(3, Op::Eq, Value::Bool(true))])
        );
    }

    #[test]
    fn type_errors_say_what_to_write() {
        let cases = [
            ("name = 5", "field `name` is a string; quote the value: name = \"5\" at column 8"),
            ("name = true", "field `name` is a string; quote the value: name = \"true\" at column 8"),
            (
                "amount = \"x\"",
                "field `amount` is an integer; compare it with a number, not \"x\", e.g. amount > 1000000 at column 10",
            ),
            ("amount = true", "field `amount` is an integer; compare it with a number at column 10"),
            ("flag = 1", "field `flag` is a boolean; compare it with true or false at column 8"),
            ("amount = 1e999", "field `amount` is an integer; `1e999` is not a number in range at column 10"),
            ("amount = 12abc", "`12abc` is not a number at column 10"),
            ("name > \"ab*\"", "a prefix match (trailing *) works only with = or !=, not > at column 8"),
            (
                "amount IN (1, \"x\")",
                "field `amount` is an integer; compare it with a number, not \"x\", e.g. amount > 1000000 at column 15",
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(error(filter), expected, "{filter}");
        }
        // On a number column a star is no prefix: it is a type error.
        assert!(error("amount = \"1*\"").starts_with("field `amount` is an integer"));
    }

    #[test]
    fn syntax_errors_point_at_the_column() {
        let cases = [
            ("nope = 1", format!("unknown field `nope` at column 1; valid fields: {FIELDS}")),
            ("nested = 1", format!("unknown field `nested` at column 1; valid fields: {FIELDS}")),
            ("amount > 1 AND nope = 1", format!("unknown field `nope` at column 16; valid fields: {FIELDS}")),
            ("= 1", format!("expected a field name but found `=` at column 1; valid fields: {FIELDS}")),
            ("amount", "the filter ends early; expected a comparison operator (=, !=, <, <=, >, >=) or IN at column 2".into()),
            ("amount >", "the filter ends early; expected a value at column 9".into()),
            ("amount > 1 AND", "the filter ends early; expected a comparison such as `field = \"value\"` at column 13".into()),
            ("amount > 1 amount", "unexpected `amount`; expected AND, OR or the end at column 12".into()),
            ("amount ~ 1", "unexpected character `~` at column 8".into()),
            ("name = \"open", "unterminated string (missing closing \") at column 8".into()),
            ("name = \"a\\", "dangling backslash at column 10".into()),
            ("(amount = 1", "the filter ends early; expected `)` at column 12".into()),
            ("(amount = 1 name", "expected `)` but found `name` at column 13".into()),
            ("name = seoul", "expected a value but found `seoul`; quote strings: \"seoul\" at column 8".into()),
            ("name = (", "expected a value but found `(` at column 8".into()),
            ("name IN \"a\"", "expected `(` after IN but found string \"a\" at column 9".into()),
            ("name IN (\"a\" \"b\")", "expected `,` or `)` but found string \"b\" at column 14".into()),
            ("name = 'it''s'", "unexpected string \"s\"; expected AND, OR or the end at column 12".into()),
            ("amount 5", "expected a comparison operator (=, !=, <, <=, >, >=) or IN after `amount` but found number 5 at column 8".into()),
        ];
        for (filter, expected) in cases {
            assert_eq!(error(filter), expected, "{filter}");
        }
    }

    #[test]
    fn limits_on_size_nesting_terms_and_values_are_named() {
        let long = format!("name = \"{}\"", "x".repeat(MAX_FILTER));
        assert_eq!(error(&long), "is longer than 16384 bytes");
        let deep = format!("{}amount = 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(error(&deep).contains("nesting deeper than 64"), "{}", error(&deep));
        let nots = format!("{}amount = 1", "NOT ".repeat(MAX_DEPTH + 1));
        assert!(error(&nots).contains("nesting deeper than 64"));
        let fine = format!("{}amount = 1{}", "(".repeat(10), ")".repeat(10));
        assert_eq!(tree(&fine), cmp(1, Op::Eq, Value::Integer(1)));
        let terms = vec!["seq=\"\""; 1500].join(" or ");
        assert!(terms.len() < MAX_FILTER);
        assert_eq!(
            error(&terms),
            "more than 256 comparisons; compare one field with many values as `field IN (...)`, \
             or split the query at column 2561"
        );
        let many = vec![format!("amount IN ({})", vec!["1"; 1000].join(",")); 5].join(" OR ");
        assert_eq!(error(&many), "more than 4000 values in all; split the query at column 8061");
        let long_in = format!("amount IN ({})", vec!["1"; MAX_IN + 1].join(", "));
        assert!(error(&long_in).contains("an IN list may hold at most 1000 values"));
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
            Just(">="),
            Just("\"a*\""),
            Just("'서울'"),
            Just("1"),
            Just("-2.5"),
            Just("1e999"),
            Just("true"),
            Just("\""),
            Just("\\"),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.join(" "))
    }

    /// Every node's columns, for the property below.
    fn columns_of(expr: &Expr, out: &mut Vec<usize>) {
        match expr {
            Expr::Or(all) | Expr::And(all) => all.iter().for_each(|e| columns_of(e, out)),
            Expr::Not(inner) => columns_of(inner, out),
            Expr::Compare { column, .. } | Expr::In { column, .. } | Expr::Prefix { column, .. } => {
                if !out.contains(column) {
                    out.push(*column);
                }
            }
        }
    }

    #[test]
    fn a_filter_matches_rows_as_sql_compares() {
        let row = |name: &str, amount: i64| {
            let name = name.to_owned();
            move |column: usize| match column {
                0 | 4 => Value::Text(name.clone()),
                1 => Value::Integer(amount),
                2 => Value::Real(0.5),
                _ => Value::Bool(true),
            }
        };
        let cases = [
            ("", "x", 0, true),
            ("amount > 5", "x", 6, true),
            ("amount > 5.5", "x", 6, true),
            ("amount <= 5", "x", 6, false),
            ("name = \"서울*\"", "서울시", 0, true),
            ("name != \"서*\"", "서울", 0, false),
            ("name < \"b\" AND NOT amount IN (1, 2)", "a", 3, true),
            ("name < \"b\" AND NOT amount IN (1, 2)", "a", 2, false),
            ("flag = true OR amount = 0", "x", 9, true),
            ("score >= 0.5 AND flag != false", "x", 9, true),
        ];
        for (filter, name, amount, expected) in cases {
            let parsed = parse(filter, &columns()).unwrap();
            assert_eq!(parsed.matches(&row(name, amount)), expected, "{filter} on {name}, {amount}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(input in any::<String>()) {
            let _ = parse(&input, &columns());
        }

        #[test]
        fn the_fields_listed_are_the_fields_in_the_tree(input in filter_like()) {
            if let Ok(Filter { expr: Some(expr), fields }) = parse(&input, &columns()) {
                let mut found = Vec::new();
                columns_of(&expr, &mut found);
                prop_assert_eq!(found, fields);
            }
        }
    }
}
