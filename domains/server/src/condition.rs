//! A quality rule's condition checked to be what it claims: one SQL
//! expression over the product's own columns, written with operators,
//! literals, a few well-known functions and `CASE`/`CAST`, and nothing that
//! reads elsewhere (no subquery, no table, no other function) or closes the
//! statement it is placed in (parentheses balanced, no `;`, no comment).
//! The storage then compiles it against the table without reading a row.

use std::collections::HashSet;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// The words a condition may use besides the product's columns.
const KEYWORDS: [&str; 25] = [
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "between",
    "like",
    "true",
    "false",
    "case",
    "when",
    "then",
    "else",
    "end",
    "cast",
    "as",
    "integer",
    "bigint",
    "text",
    "real",
    "double",
    "precision",
    "varchar",
    "boolean",
];

/// The functions a condition may call (the same in SQLite and PostgreSQL).
const FUNCTIONS: [&str; 10] =
    ["abs", "lower", "upper", "length", "coalesce", "nullif", "trim", "substr", "round", "replace"];

/// Checks `condition` against `columns`; the reason it is refused, else `None`.
pub fn refusal(condition: &str, columns: &[String]) -> Option<String> {
    let tokens = match Tokenizer::new(&GenericDialect {}, condition).tokenize() {
        Ok(tokens) => tokens,
        Err(error) => return Some(format!("it is no SQL: {error}")),
    };
    let columns: HashSet<String> = columns.iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => return Some("a `)` closes more than it opened".into()),
            Token::RParen => depth -= 1,
            Token::SemiColon => return Some("write one condition, with no `;`".into()),
            Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => {
                return Some("write it without comments".into());
            }
            Token::Word(word) if word.quote_style.is_none() => {
                let name = word.value.to_ascii_lowercase();
                let called = matches!(
                    tokens[i + 1..].iter().find(|t| !matches!(t, Token::Whitespace(_))),
                    Some(Token::LParen)
                );
                let known = columns.contains(&name)
                    || KEYWORDS.contains(&name.as_str())
                    || (called && FUNCTIONS.contains(&name.as_str()));
                if !known {
                    return Some(if called {
                        format!(
                            "`{}` is not a function a condition may call ({})",
                            word.value,
                            FUNCTIONS.join(", ")
                        )
                    } else {
                        format!("`{}` is no column of the product", word.value)
                    });
                }
            }
            Token::Word(word) => return Some(format!("write `{}` without quotes", word.value)),
            _ => {}
        }
    }
    if depth != 0 {
        return Some("a `(` is never closed".into());
    }
    let parsed = Parser::new(&GenericDialect {}).try_with_sql(condition).and_then(|mut parser| {
        parser.parse_expr()?;
        parser.expect_token(&Token::EOF)
    });
    parsed.err().map(|error| format!("it is not one SQL condition: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(condition: &str) -> Option<String> {
        refusal(condition, &["sales".to_owned(), "region".to_owned(), "a_yn".to_owned(), "b_yn".to_owned()])
    }

    #[test]
    fn a_condition_over_the_columns_passes() {
        for good in [
            "sales >= 0",
            "region IN ('1', '2')",
            "NOT (a_yn = 'Y' AND b_yn != 'Y')",
            "sales = abs(sales) OR sales IS NULL",
            "length(region) BETWEEN 1 AND 20",
            "CASE WHEN a_yn = 'Y' THEN sales > 0 ELSE true END",
        ] {
            assert_eq!(refused(good), None, "{good}");
        }
    }

    #[test]
    fn anything_that_reads_elsewhere_or_escapes_is_refused() {
        let said = |c: &str| refused(c).unwrap_or_else(|| panic!("`{c}` passed"));
        assert!(
            said("true) THEN 1 ELSE 0 END), 0), 'x', coalesce(sum(CASE WHEN (true").contains("`)` closes")
        );
        assert!(said("sales > (SELECT max(sales) FROM mesh_meta)").contains("`SELECT`"));
        assert!(said("pg_read_file('/etc/passwd') != ''").contains("`pg_read_file` is not a function"));
        assert!(said("sales > 0; DROP TABLE x").contains("no `;`"));
        assert!(said("sales > 0 -- note").contains("without comments"));
        assert!(said("cost > 0").contains("`cost` is no column"));
        assert!(said("\"sales\" > 0").contains("without quotes"));
        assert!(said("sales > 0 sales").contains("not one SQL condition"));
        assert!(said("(sales > 0").contains("never closed"));
    }
}
