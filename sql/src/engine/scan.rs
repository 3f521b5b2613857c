//! The leaf of every plan: one product read over Flight from its owning
//! domain, with the columns, filter and limit pushed into the domain's
//! governed read, planned (`GetFlightInfo`) when the engine plans. Each part
//! the domain split the read into is a partition of the plan, read side by
//! side. Each batch is put in the plan's column order; a read of no column
//! (`count(*)`) asks for one and keeps only the row count.

use std::fmt;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};

use crate::flight::{FlightPlan, FlightQuery, FlightRead, ReadSettings};
use crate::replicas::Replicas;

/// The plan node's name, as `--explain` shows it.
pub(crate) const NAME: &str = "MeshScan";

/// Reading one product's rows from its domain.
#[derive(Clone)]
pub(crate) struct ProductScan {
    query: FlightQuery,
    /// The read as the domain planned it.
    planned: FlightPlan,
    /// The plan's partitions, each reading some of the read's parts.
    partitions: usize,
    /// The columns the plan expects, in its order.
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl ProductScan {
    /// A scan of `query` (whose `select` may be empty only when `schema`
    /// has no column) producing batches of `schema` in at most `partitions`
    /// partitions, planned at the first of `replicas` that answers.
    pub(crate) async fn plan(
        query: FlightQuery,
        replicas: Replicas,
        settings: ReadSettings,
        schema: SchemaRef,
        partitions: usize,
    ) -> Result<Self> {
        let planned = FlightPlan::new(replicas, &query, settings).await.map_err(external)?;
        let partitions = planned.part_count().min(partitions.max(1));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self { query, planned, partitions, schema, properties: Arc::new(properties) })
    }
}

impl fmt::Debug for ProductScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProductScan({:?})", self.query)
    }
}

impl DisplayAs for ProductScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = &self.query;
        write!(f, "{NAME}: product={} domain_endpoint={}", query.product, self.planned.endpoint())?;
        write!(f, " select=[{}]", query.select.join(", "))?;
        if !query.filter.is_empty() {
            write!(f, " filter={}", query.filter)?;
        }
        if query.limit > 0 {
            write!(f, " limit={}", query.limit)?;
        }
        if self.planned.part_count() > 1 {
            write!(f, " parts={}", self.planned.part_count())?;
        }
        Ok(())
    }
}

impl ExecutionPlan for ProductScan {
    fn name(&self) -> &str {
        NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition >= self.partitions {
            return Err(DataFusionError::Internal(format!(
                "{} has no partition {partition}",
                self.query.product
            )));
        }
        let scan = self.clone();
        let batches = futures_util::stream::try_unfold(None, move |read: Option<FlightRead>| {
            let scan = scan.clone();
            async move {
                let mut read = match read {
                    Some(read) => read,
                    None => scan
                        .planned
                        .clone()
                        .fresh()
                        .await
                        .map_err(external)?
                        .group(partition, scan.partitions),
                };
                match read.next().await.map_err(external)? {
                    Some(batch) => Ok(Some((scan.conform(batch)?, Some(read)))),
                    None => Ok(None),
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches)))
    }
}

impl ProductScan {
    /// `batch` with the plan's columns in the plan's order (the domain
    /// sends the contract's order), or only its row count.
    fn conform(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| {
                batch.column_by_name(field.name()).cloned().ok_or_else(|| {
                    DataFusionError::Execution(format!(
                        "{} sent no column `{}`; run the query again",
                        self.query.product,
                        field.name()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)?)
    }
}

/// A domain's refusal as an engine error; its status is found again when
/// the error reaches a client.
pub(crate) fn external(status: tonic::Status) -> DataFusionError {
    DataFusionError::External(Box::new(status))
}
