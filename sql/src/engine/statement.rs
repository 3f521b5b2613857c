//! Which SQL the engine accepts: one read-only query (`SELECT`, `WITH`,
//! `VALUES`, `EXPLAIN`) within the limits below, checked before anything
//! is planned.

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as Sql;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use tonic::Status;

use super::status_of;

/// Longest SQL text accepted.
pub const MAX_SQL: usize = 64 * 1024;

/// Operators one query may hold (`AND`, `OR`, `NOT`, comparisons,
/// arithmetic): planning recurses once per level of an expression, and a
/// chain of operators nests one level each; a long list of values is
/// written `IN (...)`, which does not nest.
pub const MAX_OPERATORS: usize = 1000;

/// Refuses anything but one query of at most [`MAX_SQL`] bytes and
/// [`MAX_OPERATORS`] operators: the engine reads, it never creates,
/// changes or sets anything.
pub fn check(sql: &str) -> Result<(), Status> {
    if sql.len() > MAX_SQL {
        return Err(Status::invalid_argument(format!(
            "the SQL is {} bytes, longer than {MAX_SQL}; split the query",
            sql.len()
        )));
    }
    let operators = operators(sql)?;
    if operators > MAX_OPERATORS {
        return Err(Status::invalid_argument(format!(
            "the query holds {operators} operators, more than {MAX_OPERATORS}; write long lists of values as \
             `column IN (...)`, or split the query"
        )));
    }
    let statements = DFParser::parse_sql(sql).map_err(|e| status_of(&e))?;
    let [statement] = Vec::from(statements).try_into().map_err(|statements: Vec<Statement>| {
        Status::invalid_argument(format!("give one query; this SQL holds {} statements", statements.len()))
    })?;
    let is_query = |statement: &Statement| match statement {
        Statement::Statement(sql) => match sql.as_ref() {
            Sql::Query(_) => true,
            Sql::Explain { statement, .. } => matches!(statement.as_ref(), Sql::Query(_)),
            _ => false,
        },
        _ => false,
    };
    let query = match &statement {
        Statement::Explain(explain) => is_query(&explain.statement),
        other => is_query(other),
    };
    if !query {
        let shown: String = statement.to_string().chars().take(60).collect();
        return Err(Status::invalid_argument(format!(
            "only queries (SELECT, WITH, VALUES, EXPLAIN) are run; `{shown}` is not one"
        )));
    }
    Ok(())
}

/// The operators of `sql`, counted on its tokens (no recursion, whatever
/// the text).
fn operators(sql: &str) -> Result<usize, Status> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| Status::invalid_argument(format!("the SQL does not parse: {e}")))?;
    Ok(tokens
        .iter()
        .filter(|token| match token {
            Token::Word(word) => matches!(word.keyword, Keyword::AND | Keyword::OR | Keyword::NOT),
            Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::DuckIntDiv
            | Token::Mod
            | Token::StringConcat
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret => true,
            _ => false,
        })
        .count())
}
