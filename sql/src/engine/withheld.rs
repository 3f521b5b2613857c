//! A query naming a column the caller's agreement withholds: DataFusion
//! only knows the column is not there; the refusal says whose agreement
//! left it out and how to ask for it.

use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use tonic::Status;

use super::{CATALOG, PRODUCTS_SCHEMA};

/// The refusal of `sql` when `error` is a column not found that a table
/// it reads withholds from the caller; `None` otherwise.
pub(super) async fn refusal(context: &SessionContext, sql: &str, error: &DataFusionError) -> Option<Status> {
    let DataFusionError::SchemaError(problem, _) = error.find_root() else { return None };
    let SchemaError::FieldNotFound { field, .. } = problem.as_ref() else { return None };
    let state = context.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect).ok()?;
    for reference in state.resolve_table_references(&statement).ok()? {
        let resolved = reference.resolve(CATALOG, PRODUCTS_SCHEMA);
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
