//! The filter language of product queries and agreement row scopes (a
//! subset of AIP-160), parsed into a syntax tree and checked against a
//! product's columns. No SQL and no storage here: the domains compile the
//! tree for their database, the registry checks row scopes with it, and the
//! CLI checks a filter before calling.
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

mod columns;
mod lex;
mod parse;
mod tree;

pub use columns::{ColumnList, Columns, Kind};
pub use parse::{MAX_DEPTH, MAX_FILTER, MAX_IN, MAX_TERMS, MAX_VALUES, parse};
pub use tree::{Expr, Filter, Op, Value};

/// Why a filter was refused: the problem and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// What is wrong, saying `at column N` where a position applies.
    pub message: String,
    /// The 1-based character of the filter where the problem is, if it has
    /// a place (the same N as in the message).
    pub column: Option<usize>,
}

impl FilterError {
    pub(crate) fn new(message: String) -> Self {
        Self { message, column: None }
    }

    /// A problem at the 1-based character `column` of the filter.
    pub(crate) fn at(column: usize, problem: String) -> Self {
        Self { message: format!("{problem} at column {column}"), column: Some(column) }
    }
}
