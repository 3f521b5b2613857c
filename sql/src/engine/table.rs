//! A data product as a table: its columns are the ones the caller's
//! agreement shows (asked of the owning domain), and a scan is a Flight
//! read there with the projection, the filters the domain can evaluate
//! and the limit pushed down.

use std::sync::Arc;

use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::pushdown::Pushdown;
use super::scan::ProductScan;
use crate::flight::{FlightQuery, ReadSettings};
use crate::replicas::Replicas;

/// One product, read with the caller's token.
#[derive(Debug)]
pub(crate) struct ProductTable {
    product: String,
    schema: SchemaRef,
    replicas: Replicas,
    settings: ReadSettings,
}

impl ProductTable {
    /// `product` with the columns `schema` (the caller's), read at `replicas`.
    pub(crate) fn new(
        product: String,
        schema: SchemaRef,
        replicas: Replicas,
        settings: ReadSettings,
    ) -> Self {
        Self { product, schema, replicas, settings }
    }
}

#[async_trait]
impl TableProvider for ProductTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let mut pushdown = Pushdown::new(&self.schema);
        Ok(filters
            .iter()
            .map(|filter| match pushdown.push(filter) {
                true => TableProviderFilterPushDown::Exact,
                false => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            // The product's metadata (withheld columns) goes along.
            Some(columns) => Arc::new(self.schema.project(columns)?),
            None => self.schema.clone(),
        };
        let mut pushdown = Pushdown::new(&self.schema);
        for filter in filters {
            // Only filters answered Exact reach here; together they may no
            // longer fit the mesh's limits, and none may be dropped.
            if !pushdown.push(filter) {
                return Err(DataFusionError::Plan(format!(
                    "the conditions on {} do not fit in one read (the mesh's filters take at most {} terms); \
                     split the query",
                    self.product,
                    mesh_filter::MAX_TERMS
                )));
            }
        }
        let mut select: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        if select.is_empty() {
            // A count needs rows, not values: the narrowest read is one column.
            select.extend(self.schema.fields().first().map(|f| f.name().clone()));
        }
        let query = FlightQuery {
            product: self.product.clone(),
            filter: pushdown.filter(),
            select,
            order_by: String::new(),
            // 0 would mean no limit to the domain; the engine cuts LIMIT 0 itself.
            limit: limit.map_or(0, |l| l.max(1) as u64),
        };
        let partitions = state.config().target_partitions();
        Ok(Arc::new(
            ProductScan::plan(query, self.replicas.clone(), self.settings.clone(), schema, partitions)
                .await?,
        ))
    }
}
