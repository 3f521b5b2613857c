//! A query naming a column the caller's agreement withholds: DataFusion
//! only knows the column is not there; the refusal says whose agreement
//! left it out and how to ask for it.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::common::{SchemaError, TableReference};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
use tonic::Status;

use super::{CATALOG, PRODUCTS_SCHEMA};

/// The refusal of `sql` when `error` is a column not found that a table
/// it reads withholds from the caller; `None` otherwise. A qualified column
/// (`p.tot_use_am`) is looked for in the table its qualifier names only.
pub(super) async fn refusal(context: &SessionContext, sql: &str, error: &DataFusionError) -> Option<Status> {
    let DataFusionError::SchemaError(problem, _) = error.find_root() else { return None };
    let SchemaError::FieldNotFound { field, .. } = problem.as_ref() else { return None };
    let state = context.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect).ok()?;
    let qualifier = field.relation.as_ref().map(|q| {
        let table = aliases(&statement).remove(q.table()).filter(|_| q.schema().is_none());
        table.unwrap_or_else(|| q.clone()).resolve(CATALOG, PRODUCTS_SCHEMA)
    });
    for reference in state.resolve_table_references(&statement).ok()? {
        let resolved = reference.resolve(CATALOG, PRODUCTS_SCHEMA);
        if qualifier.as_ref().is_some_and(|wanted| *wanted != resolved) {
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
/// by alias, normalized as DataFusion normalizes identifiers.
fn aliases(statement: &DFStatement) -> HashMap<String, TableReference> {
    struct Aliases(HashMap<String, TableReference>);
    impl Visitor for Aliases {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, alias: Some(alias), .. } = factor {
                let called = match alias.name.quote_style {
                    Some(_) => alias.name.value.clone(),
                    None => alias.name.value.to_lowercase(),
                };
                if let Ok(table) = object_name_to_table_reference(name.clone(), true) {
                    self.0.entry(called).or_insert(table);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut found = Aliases(HashMap::new());
    if let DFStatement::Statement(statement) = statement {
        let _ = statement.visit(&mut found);
    }
    found.0
}
