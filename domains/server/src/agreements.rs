//! A deriving domain reads its inputs like any other consumer: under
//! agreements of its own service identity. Before a build it makes sure an
//! agreement is in force for each input covering the input's columns that
//! the product's SQL names, and asks for one if not (an input's contract
//! may carry a rule granting it at once). Identifiers come as the domain's
//! pseudonyms, which agree across products, so joins on them work.

use std::collections::HashSet;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::{AgreementState, ListAgreementsRequest, RequestAccessRequest};
use mesh_grpc::MeshChannel;
use mesh_runtime::{DomainError, Result};

/// An agreement ending sooner than this is renewed.
const RENEW_WITHIN_SECONDS: i64 = 7 * 86_400;

/// The columns of `input_columns` that `sql` names (all of them when it
/// selects `*`), in the input's order; its first column when the SQL names
/// none (`count(*)`): an agreement is never asked for no column, which
/// would mean every column.
pub fn columns_named(sql: &str, input_columns: &[String]) -> Result<Vec<String>> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| DomainError::Config(format!("source.sql.query: {e}")))?;
    let mut words = HashSet::new();
    let mut wildcard = false;
    let mut previous: Option<&Token> = None;
    for token in tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))) {
        match token {
            Token::Word(word) => {
                words.insert(word.value.to_ascii_lowercase());
            }
            // `SELECT *`, `a, *` and `t.*` select every column; `count(*)`
            // and `a * b` do not.
            Token::Mul => {
                wildcard |= matches!(previous, Some(Token::Comma | Token::Period))
                    || matches!(previous, Some(Token::Word(w)) if [Keyword::SELECT, Keyword::DISTINCT, Keyword::ALL].contains(&w.keyword));
            }
            _ => {}
        }
        previous = Some(token);
    }
    let named: Vec<String> = input_columns
        .iter()
        .filter(|c| wildcard || words.contains(&c.to_ascii_lowercase()))
        .cloned()
        .collect();
    Ok(if named.is_empty() { input_columns.iter().take(1).cloned().collect() } else { named })
}

/// Makes sure an agreement for `columns` of `product` is in force for the
/// calling domain, or asked for: asks for one with `purpose` when neither.
/// One in force is renewed once less than a week (or half its length, if
/// shorter) is left.
pub async fn ensure(
    access: &mut AccessServiceClient<MeshChannel>,
    product: &str,
    columns: &[String],
    purpose: &str,
) -> Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
        as i64;
    let request = ListAgreementsRequest { product: product.to_owned(), ..Default::default() };
    let mine = access.list_agreements(request).await?.into_inner().agreements;
    let covers = |a: &&mesh_contracts::catalog::Agreement| {
        columns.iter().all(|c| a.columns.contains(c)) && a.row_scope.is_empty()
    };
    let in_force = mine.iter().filter(covers).any(|a| {
        let (from, end) = (a.update_time.as_ref().map_or(now, |t| t.seconds), a.end_time.as_ref());
        let renew_within = end.map_or(0, |end| RENEW_WITHIN_SECONDS.min((end.seconds - from) / 2));
        a.state() == AgreementState::Approved && end.is_some_and(|end| end.seconds > now + renew_within)
    });
    // Asked already: its owners decide; asking again would only queue another.
    let asked = mine.iter().filter(covers).any(|a| a.state() == AgreementState::Pending);
    let covered = in_force || asked;
    if covered {
        return Ok(());
    }
    let request = RequestAccessRequest {
        product: product.to_owned(),
        purpose: purpose.to_owned(),
        columns: columns.to_vec(),
        ..Default::default()
    };
    let agreement = access.request_access(request).await?.into_inner().agreement.unwrap_or_default();
    tracing::info!(product, agreement = %agreement.name, state = ?agreement.state(), "asked for access to an input");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(sql: &str) -> Vec<String> {
        let columns: Vec<String> = ["seq", "bas_yh", "tot_use_am", "life_stage"].map(str::to_owned).to_vec();
        columns_named(sql, &columns).unwrap()
    }

    #[test]
    fn the_columns_asked_for_are_those_the_sql_names() {
        assert_eq!(named("SELECT bas_yh, count(*) FROM x GROUP BY 1"), ["bas_yh"]);
        assert_eq!(named("SELECT a.TOT_USE_AM * 2 FROM x a"), ["tot_use_am"]);
        assert_eq!(named("SELECT * FROM x"), ["seq", "bas_yh", "tot_use_am", "life_stage"]);
        assert_eq!(named("SELECT x.* FROM x").len(), 4);
        assert_eq!(named("SELECT seq, * FROM x").len(), 4);
        assert_eq!(named("SELECT DISTINCT * FROM x").len(), 4);
        assert_eq!(named("SELECT count(*) FROM x"), ["seq"], "never no column, which would mean all");
        assert_eq!(named("SELECT ALL * FROM x").len(), 4);
    }
}
