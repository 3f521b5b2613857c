//! A query naming a column the caller's agreement withholds: DataFusion
//! only knows the column is not there; the refusal says whose agreement
//! left it out and how to ask for it.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::common::{SchemaError, TableReference};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::planner::{IdentNormalizer, object_name_to_table_reference};
use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
use tonic::Status;

use super::{CATALOG, PRODUCTS_SCHEMA};

/// The schema of DataFusion's own tables (`information_schema.tables`).
const INFORMATION_SCHEMA: &str = "information_schema";

/// The refusal of `sql` when `error` is a column not found that a table
/// it reads withholds from the caller; `None` otherwise. A qualified column
/// (`p.tot_use_am`) is looked for in the table its qualifier names only.
pub(super) async fn refusal(context: &SessionContext, sql: &str, error: &DataFusionError) -> Option<Status> {
    let DataFusionError::SchemaError(problem, _) = error.find_root() else { return None };
    let SchemaError::FieldNotFound { field, .. } = problem.as_ref() else { return None };
    let state = context.state();
    let options = &state.config().options().sql_parser;
    let statement = state.sql_to_statement(sql, &options.dialect).ok()?;
    // The tables the qualifier may stand for: those it is an alias of (in
    // any scope), else the table it names, matched as DataFusion matches it.
    let qualifiers = field.relation.as_ref().map(|q| {
        let aliased = match q {
            TableReference::Bare { table } => {
                aliases(&statement, options.enable_ident_normalization).remove(table.as_ref())
            }
            _ => None,
        };
        aliased.unwrap_or_else(|| vec![q.clone()])
    });
    let mut seen = HashSet::new();
    for reference in state.resolve_table_references(&statement).ok()? {
        if qualifiers.as_ref().is_some_and(|wanted| !wanted.iter().any(|w| w.resolved_eq(&reference))) {
            continue;
        }
        let resolved = reference.resolve(CATALOG, PRODUCTS_SCHEMA);
        // DataFusion's own tables are no product; each product is asked once.
        if resolved.schema.as_ref() == INFORMATION_SCHEMA || !seen.insert(resolved.clone()) {
            continue;
        }
        let Some(tables) = context.catalog(&resolved.catalog).and_then(|c| c.schema(&resolved.schema)) else {
            continue;
        };
        let Ok(Some(table)) = tables.table(&resolved.table).await else { continue };
        let schema = table.schema();
        let withheld = crate::flight::withheld(&schema).unwrap_or_default();
        if withheld.split(',').any(|column| column == field.name) {
            // The id the table stands for, not what its domain says it is.
            let product = match resolved.schema.as_ref() {
                PRODUCTS_SCHEMA => resolved.table.to_string(),
                domain => format!("{domain}.{}", resolved.table),
            };
            return Some(Status::permission_denied(format!(
                "column `{}` of {product} is withheld by your agreement with its owners; leave it out, or ask \
                 for an agreement that grants it: mesh access request {product} --columns ...,{}",
                field.name, field.name
            )));
        }
    }
    None
}

/// The tables `statement` reads under an alias (`FROM "payment.card_spending" p`),
/// by alias (normalized as DataFusion does when `normalize`); an alias used
/// in several scopes stands for each of its tables.
fn aliases(statement: &DFStatement, normalize: bool) -> HashMap<String, Vec<TableReference>> {
    struct Aliases {
        normalizer: IdentNormalizer,
        normalize: bool,
        found: HashMap<String, Vec<TableReference>>,
    }
    impl Visitor for Aliases {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, alias: Some(alias), .. } = factor {
                let called = self.normalizer.normalize(alias.name.clone());
                if let Ok(table) = object_name_to_table_reference(name.clone(), self.normalize) {
                    self.found.entry(called).or_default().push(table);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor =
        Aliases { normalizer: IdentNormalizer::new(normalize), normalize, found: HashMap::new() };
    let mut statement = statement;
    while let DFStatement::Explain(explained) = statement {
        statement = &explained.statement;
    }
    if let DFStatement::Statement(statement) = statement {
        let _ = statement.visit(&mut visitor);
    }
    visitor.found
}

#[cfg(test)]
mod tests {
    use datafusion::sql::parser::DFParser;

    use super::*;

    fn aliases_of(sql: &str) -> HashMap<String, Vec<String>> {
        let statement = DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        let named = |tables: Vec<TableReference>| tables.iter().map(ToString::to_string).collect();
        aliases(&statement, true).into_iter().map(|(alias, tables)| (alias, named(tables))).collect()
    }

    #[test]
    fn an_alias_stands_for_each_table_it_names_in_any_scope() {
        let union = r#"SELECT P.seq FROM "customer.profiles" p UNION ALL
                       SELECT p.tot_use_am FROM payment.card_spending AS "Q", "payment.card_spending" p"#;
        let found = aliases_of(union);
        assert_eq!(found["p"], ["customer.profiles", "payment.card_spending"]);
        assert_eq!(found["Q"], ["payment.card_spending"], "a quoted alias keeps its case");
        assert_eq!(found.len(), 2);
        let explained = aliases_of(r#"EXPLAIN SELECT sum(p.tot_use_am) FROM "payment.card_spending" p"#);
        assert_eq!(explained["p"], ["payment.card_spending"], "EXPLAIN's statement is looked into");
        assert!(aliases_of(r#"SELECT 1 FROM "payment.card_spending""#).is_empty());
    }
}
