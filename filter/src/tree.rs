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
