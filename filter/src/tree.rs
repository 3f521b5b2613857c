//! The syntax tree of a parsed filter, every field resolved to a column
//! and every value checked against the column's kind.

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// The operator as written (and as SQL writes it).
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// A value compared with a column, of the column's kind (an integer
/// column may be compared with a fraction).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A finite number with a fraction or exponent.
    Real(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Any of the alternatives holds (two or more).
    Or(Vec<Expr>),
    /// Every one holds (two or more).
    And(Vec<Expr>),
    /// The expression does not hold.
    Not(Box<Expr>),
    /// `column op value`.
    Compare {
        /// The column's position.
        column: usize,
        /// The operator.
        op: Op,
        /// The value.
        value: Value,
    },
    /// `column IN (values)`.
    In {
        /// The column's position.
        column: usize,
        /// The values, at least one.
        values: Vec<Value>,
    },
    /// `column = "prefix*"` (or `!=` when `negate`).
    Prefix {
        /// The column's position (a string column).
        column: usize,
        /// The prefix, without the star.
        prefix: String,
        /// `!=`: the column does not start with it.
        negate: bool,
    },
}

/// A parsed filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// The expression; `None` for an empty filter (every row).
    pub expr: Option<Expr>,
    /// The columns the filter compares, each once, in order of appearance.
    pub fields: Vec<usize>,
}

impl Filter {
    /// Whether the filter keeps every row.
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }
}

impl Filter {
    /// Whether a row matches, `value` giving the value of each column the
    /// filter compares. Compares as the domains' SQL does: text by bytes,
    /// numbers as numbers (an integer with a fraction too), booleans as 0
    /// and 1; a value of another kind than its column's never matches.
    pub fn matches(&self, value: &dyn Fn(usize) -> Value) -> bool {
        self.expr.as_ref().is_none_or(|expr| expr.matches(value))
    }
}

impl Expr {
    fn matches(&self, value: &dyn Fn(usize) -> Value) -> bool {
        match self {
            Expr::Or(all) => all.iter().any(|e| e.matches(value)),
            Expr::And(all) => all.iter().all(|e| e.matches(value)),
            Expr::Not(inner) => !inner.matches(value),
            Expr::Compare { column, op, value: wanted } => {
                compare(&value(*column), wanted).is_some_and(|order| op.holds(order))
            }
            Expr::In { column, values } => {
                let actual = value(*column);
                values.iter().any(|v| compare(&actual, v) == Some(std::cmp::Ordering::Equal))
            }
            Expr::Prefix { column, prefix, negate } => match value(*column) {
                Value::Text(text) => text.starts_with(prefix.as_str()) != *negate,
                _ => false,
            },
        }
    }
}

impl Op {
    fn holds(self, order: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Self::Eq => order == Equal,
            Self::Ne => order != Equal,
            Self::Lt => order == Less,
            Self::Le => order != Greater,
            Self::Gt => order == Greater,
            Self::Ge => order != Less,
        }
    }
}

/// How `a` compares with `b`, if they are comparable.
fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let number = |v: &Value| match v {
        Value::Integer(n) => Some(*n as f64),
        Value::Real(x) => Some(*x),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Text(_) => None,
    };
    match (a, b) {
        (Value::Text(a), Value::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Integer(a), Value::Integer(b)) => Some(a.cmp(b)),
        _ => number(a)?.partial_cmp(&number(b)?),
    }
}
