//! The SQL engine: DataFusion planning a read-only `SELECT` over the
//! products one caller can see, each product a table whose scans are
//! Flight reads at its owning domain with that caller's token, so every
//! owner enforces that caller's agreement. The engine has no identity of
//! its own: what it reads and where comes from a [`Mesh`] acting for the
//! caller.

mod as_domain;
mod catalog;
pub mod cells;
mod pushdown;
mod scan;
mod statement;
mod table;
mod withheld;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
pub use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, displayable, execute_stream};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use tonic::{Code, Status};

use crate::flight::ReadSettings;
use crate::replicas::Replicas;

/// The catalog the engine's tables live in.
pub const CATALOG: &str = "mesh";
pub use as_domain::DomainMesh;
pub use catalog::PRODUCTS_SCHEMA;
pub use statement::{MAX_OPERATORS, MAX_SQL, check as check_statement};

/// The mesh as one caller sees it.
#[async_trait]
pub trait Mesh: Send + Sync {
    /// The ids of the products the caller can see in the catalog.
    async fn products(&self) -> Result<Vec<String>, Status>;
    /// Where `product` is read, with a token for its domain.
    async fn replicas(&self, product: &str) -> Result<Replicas, Status>;
}

/// Products one query may read at once (each a stream from a domain).
pub const MAX_SCANS: usize = 32;

/// Disk the engine's operators may spill to, across every query.
pub const MAX_SPILL_BYTES: u64 = 4 << 30;

/// How the engine runs queries.
#[derive(Clone)]
pub struct EngineSettings {
    /// How products are read.
    pub read: ReadSettings,
    /// The memory pool and spill space every query of this process shares.
    runtime: Arc<RuntimeEnv>,
}

impl EngineSettings {
    /// Reads as `read` says; joins, aggregates and sorts of every query
    /// share `memory_limit` bytes, then spill (at most [`MAX_SPILL_BYTES`]),
    /// else fail with RESOURCE_EXHAUSTED.
    pub fn new(read: ReadSettings, memory_limit: usize) -> Result<Self, Status> {
        let disk = DiskManagerBuilder::default().with_max_temp_directory_size(MAX_SPILL_BYTES);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
            .with_disk_manager_builder(disk)
            .build_arc()
            .map_err(|e| status_of(&e))?;
        Ok(Self { read, runtime })
    }
}

/// Plans and runs SQL for one caller.
pub struct Engine {
    context: SessionContext,
}

impl Engine {
    /// The engine of the caller `mesh` acts for: the products it can see
    /// are listed once, their columns asked when a query names them.
    pub async fn new(mesh: Arc<dyn Mesh>, settings: &EngineSettings) -> Result<Self, Status> {
        let products = mesh.products().await?;
        let config = SessionConfig::new()
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG, PRODUCTS_SCHEMA)
            .with_information_schema(true);
        let context = SessionContext::new_with_config_rt(config, settings.runtime.clone());
        let catalog = catalog::MeshCatalog::new(products, mesh, settings.read.clone());
        context.register_catalog(CATALOG, Arc::new(catalog));
        Ok(Self { context })
    }

    /// Plans `sql`: one read-only query (no DDL, DML or `SET`).
    pub async fn plan(&self, sql: &str) -> Result<DataFrame, Status> {
        statement::check(sql)?;
        let options =
            SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        match self.context.sql_with_options(sql, options).await {
            Ok(frame) => Ok(frame),
            Err(error) => {
                Err(withheld::refusal(&self.context, sql, &error).await.unwrap_or_else(|| status_of(&error)))
            }
        }
    }

    /// The physical plan of `sql`, one operator per line: the `MeshScan`
    /// lines say what is read from which domain (columns, filter, limit).
    pub async fn explain(&self, sql: &str) -> Result<String, Status> {
        let plan = self.physical_plan(sql).await?;
        Ok(displayable(plan.as_ref()).indent(true).to_string())
    }

    /// Runs `sql`: its batches as they come.
    pub async fn run(&self, sql: &str) -> Result<SendableRecordBatchStream, Status> {
        let plan = self.physical_plan(sql).await?;
        execute_stream(plan, self.context.task_ctx()).map_err(|e| status_of(&e))
    }

    /// The physical plan of `sql`; refused when it reads more than
    /// [`MAX_SCANS`] products at once (counted before any domain is asked
    /// to plan a read).
    pub async fn physical_plan(&self, sql: &str) -> Result<Arc<dyn ExecutionPlan>, Status> {
        let frame = self.plan(sql).await?;
        let scans = table_scans(frame.logical_plan());
        if scans > MAX_SCANS {
            return Err(Status::invalid_argument(format!(
                "the query reads {scans} products at once, more than {MAX_SCANS}; split it"
            )));
        }
        frame.create_physical_plan().await.map_err(|e| status_of(&e))
    }

    /// The schemas of the catalog: the default one, then one per domain.
    pub fn schema_names(&self) -> Vec<String> {
        self.catalog().map(|c| c.schema_names()).unwrap_or_default()
    }

    /// Every table, as (schema, table).
    pub fn table_names(&self) -> Vec<(String, String)> {
        let Some(catalog) = self.catalog() else { return Vec::new() };
        let mut names = Vec::new();
        for schema in catalog.schema_names() {
            if let Some(tables) = catalog.schema(&schema) {
                names.extend(tables.table_names().into_iter().map(|t| (schema.clone(), t)));
            }
        }
        names
    }

    /// The columns `table` of `schema` has for the caller, asked of its domain.
    pub async fn table_schema(&self, schema: &str, table: &str) -> Result<arrow_schema::SchemaRef, Status> {
        let found = match self.catalog().and_then(|c| c.schema(schema)) {
            Some(tables) => tables.table(table).await.map_err(|e| status_of(&e))?,
            None => None,
        };
        found.map(|t| t.schema()).ok_or_else(|| Status::not_found(format!("no table {schema}.{table}")))
    }

    fn catalog(&self) -> Option<Arc<dyn datafusion::catalog::CatalogProvider>> {
        self.context.catalog(CATALOG)
    }

    /// The session, for running a plan.
    pub fn context(&self) -> &SessionContext {
        &self.context
    }
}

/// The product reads in `plan`.
fn table_scans(plan: &LogicalPlan) -> usize {
    let mut scans = 0;
    let _ = plan.apply_with_subqueries(|node| {
        scans += usize::from(matches!(node, LogicalPlan::TableScan(_)));
        Ok(TreeNodeRecursion::Continue)
    });
    scans
}

/// A size in bytes written as a number with an optional unit: `1GiB`,
/// `512MiB`, `64KiB` or `1048576`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}`: write a size like 512MiB or 2GiB")),
    };
    let number: usize =
        number.parse().map_err(|_| format!("`{text}` is no size: write one like 512MiB or 2GiB"))?;
    number.checked_mul(scale).filter(|n| *n > 0).ok_or_else(|| format!("`{text}` is not a usable size"))
}

/// The gRPC status of an engine error: a domain's own status when a read
/// was refused (its code and message), else one saying what in the query
/// is wrong.
pub fn status_of(error: &DataFusionError) -> Status {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(status) = e.downcast_ref::<Status>() {
            return Status::new(status.code(), status.message());
        }
        cause = e.source();
    }
    let root = error.find_root();
    if let DataFusionError::SQL(problem, _) = root {
        use datafusion::sql::sqlparser::parser::ParserError;
        let problem = match problem.as_ref() {
            ParserError::ParserError(text) | ParserError::TokenizerError(text) => text.clone(),
            ParserError::RecursionLimitExceeded => "it nests too deeply".to_owned(),
        };
        return Status::invalid_argument(format!("the SQL does not parse: {problem}"));
    }
    let code = match root {
        DataFusionError::Plan(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_) => Code::InvalidArgument,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => Code::Aborted,
        _ => Code::Internal,
    };
    Status::new(code, root.message().into_owned())
}
