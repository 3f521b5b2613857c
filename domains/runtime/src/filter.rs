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

/// Longest filter accepted, in bytes.
const MAX_FILTER: usize = 16 * 1024;
/// Deepest nesting of parentheses and NOTs accepted.
const MAX_DEPTH: usize = 64;
/// Most values in one IN list.
const MAX_IN: usize = 1000;

/// A filter compiled to a SQL condition and its bound values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlFilter {
    /// The condition, with `?` placeholders; empty when the filter is empty.
    pub sql: String,
    /// The values of the placeholders, in order.
    pub params: Vec<Value>,
}

/// Parses `filter` against `schema` and compiles it to SQL.
pub fn compile(filter: &str, schema: &RowSchema) -> Result<SqlFilter> {
    if filter.trim().is_empty() {
        return Ok(SqlFilter::default());
    }
    if filter.len() > MAX_FILTER {
        return Err(DomainError::invalid("filter", format!("is longer than {MAX_FILTER} bytes")));
    }
    let tokens = lex(filter)?;
    let mut parser = Parser { tokens, pos: 0, schema, out: SqlFilter::default(), depth: 0 };
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
    out: SqlFilter,
    depth: usize,
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
        let Some((_, def)) = self.schema.column(&field) else {
            return Err(at_listing_fields(column, format!("unknown field `{field}`"), self.schema));
        };
        let (name, kind) = (def.name.clone(), def.kind);
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
                        "=" => "",
                        "!=" => "NOT ",
                        _ => {
                            return Err(at(
                                value_token.column,
                                format!("a prefix match (trailing *) works only with = or !=, not {op}"),
                            ));
                        }
                    };
                    self.out.sql.push_str(&format!("{negate}substr({name}, 1, ?) = ?"));
                    self.out.params.push(Value::Integer(prefix.chars().count() as i64));
                    self.out.params.push(Value::Text(prefix.to_owned()));
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
