//! The Flight SQL service: statements and prepared statements planned and
//! run by the engine for the calling client, and the catalog's metadata
//! (catalogs, schemas, tables, table types, SQL info). Every request builds
//! the client's own view of the mesh from its token; the service keeps no
//! data and no identity between requests.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use arrow_array::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery, CommandStatementQuery,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket,
};
use arrow_schema::{Schema, SchemaRef};
use futures_util::{Stream, StreamExt, TryStreamExt};
use mesh_grpc::auth::Principal;
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use super::caller::{Caller, Registry};
use super::handles::Handles;
use crate::engine::{CATALOG, Engine, EngineSettings, status_of};

/// Bytes of one Flight message at most: the domains' batches (about 2 MiB)
/// go on whole rather than split and encoded again, under the 4 MiB that
/// gRPC clients receive by default.
const MAX_FLIGHT_DATA: usize = (4 << 20) - (64 << 10);

/// The table type every product has.
const TABLE_TYPE: &str = "TABLE";

/// What the service says about itself (`GetSqlInfo`).
static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "mesh sql");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    info.append(SqlInfo::FlightSqlServerReadOnly, true);
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, false);
    info.append(SqlInfo::SqlDdlTable, false);
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.build().expect("the SQL info is well formed")
});

/// How much the service does at once, and for how long.
pub(crate) struct Limits {
    /// Requests planned or run at once at most; more are refused.
    pub queries: usize,
    /// How long one query may run.
    pub budget: std::time::Duration,
}

/// The Flight SQL service over the mesh.
pub(crate) struct MeshFlightSql {
    registry: Arc<Registry>,
    settings: EngineSettings,
    handles: Handles,
    limits: Limits,
    slots: Arc<Semaphore>,
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

impl MeshFlightSql {
    /// The service asking `registry`, within `limits`.
    pub(crate) fn new(registry: Arc<Registry>, settings: EngineSettings, limits: Limits) -> Self {
        let slots = Arc::new(Semaphore::new(limits.queries));
        Self { registry, settings, handles: Handles::new(), limits, slots }
    }

    /// A slot for one request's work (planning, listing or running): every
    /// request that asks domains or the registry holds one.
    fn slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{} requests are being planned or run, the most this service takes at once; retry shortly",
                self.limits.queries
            ))
        })
    }

    /// The engine of the client that sent `request`, and who it is.
    async fn engine<T>(&self, request: &Request<T>) -> Result<(Engine, Principal), Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let mesh = Caller::new(self.registry.clone(), token);
        Ok((Engine::new(Arc::new(mesh), &self.settings).await?, caller))
    }

    /// The info of a query the client may fetch with `ticket`, planned now
    /// so that a refusal (no agreement, a bad column) comes at once.
    async fn planned_info<T>(
        &self,
        request: &Request<T>,
        sql: &str,
        ticket: Vec<u8>,
    ) -> Result<FlightInfo, Status> {
        let _slot = self.slot()?;
        let (engine, _) = self.engine(request).await?;
        let schema = engine.plan(sql).await?.schema().inner().clone();
        info(&schema, ticket)
    }

    /// Runs `sql` for the client that sent `request`, batch by batch,
    /// holding a slot until the stream ends, the client goes, or the
    /// query's budget is spent.
    async fn run<T>(&self, request: &Request<T>, sql: &str) -> Result<Response<DoGetStream>, Status> {
        let slot = self.slot()?;
        let budget = self.limits.budget;
        let deadline = tokio::time::Instant::now() + budget;
        let spent = move || {
            Status::deadline_exceeded(format!(
                "the query ran longer than {budget:?}, this service's budget; narrow it"
            ))
        };
        let (engine, _) = self.engine(request).await?;
        // Planning asks every domain read for its tickets: within the budget too.
        let batches = tokio::time::timeout_at(deadline, engine.run(sql)).await.map_err(|_| spent())??;
        let schema = batches.schema();
        let batches = batches.map_err(|e| FlightError::Tonic(Box::new(status_of(&e))));
        let encoded = FlightDataEncoderBuilder::new()
            .with_max_flight_data_size(MAX_FLIGHT_DATA)
            .with_schema(schema)
            .build(batches)
            .map_err(flight_status);
        let state = Some((Box::pin(encoded), slot));
        let budgeted = futures_util::stream::unfold(state, move |state| async move {
            let (mut stream, slot) = state?;
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(data)) => Some((data, Some((stream, slot)))),
                Ok(None) => None,
                Err(_) => Some((Err(spent()), None)),
            }
        });
        Ok(Response::new(Box::pin(budgeted)))
    }
}

#[tonic::async_trait]
impl FlightSqlService for MeshFlightSql {
    type FlightService = MeshFlightSql;

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let handle = self.handles.issue(&query.query, &caller);
        let ticket = TicketStatementQuery { statement_handle: handle.into() }.as_any().encode_to_vec();
        Ok(Response::new(self.planned_info(&request, &query.query, ticket).await?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let sql = self.handles.open(&ticket.statement_handle, &caller)?;
        self.run(&request, &sql).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let _slot = self.slot()?;
        let (engine, caller) = self.engine(&request).await?;
        let schema = engine.plan(&query.query).await?.schema().inner().clone();
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&schema, &Default::default())
            .try_into()
            .map_err(|e: arrow_schema::ArrowError| Status::internal(e.to_string()))?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: self.handles.issue(&query.query, &caller).into(),
            dataset_schema,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        // A handle holds everything; there is nothing to free.
        Ok(())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let sql = self.handles.open(&query.prepared_statement_handle, &caller)?;
        let ticket = query.as_any().encode_to_vec();
        Ok(Response::new(self.planned_info(&request, &sql, ticket).await?))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let sql = self.handles.open(&query.prepared_statement_handle, &caller)?;
        self.run(&request, &sql).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        _query: CommandPreparedStatementQuery,
        _request: Request<arrow_flight::sql::server::PeekableFlightDataStream>,
    ) -> Result<arrow_flight::sql::DoPutPreparedStatementResult, Status> {
        Err(Status::unimplemented("query parameters are not supported; write the values into the SQL"))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        Ok(Response::new(info(&schema, query.as_any().encode_to_vec())?))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        batch_stream(query.into_builder(&SQL_INFO).build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Ok(Response::new(info(&schema, query.as_any().encode_to_vec())?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut catalogs = query.into_builder();
        catalogs.append(CATALOG);
        batch_stream(catalogs.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(info(&schema, query.as_any().encode_to_vec())?))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let _slot = self.slot()?;
        let (engine, _) = self.engine(&request).await?;
        let mut schemas = query.into_builder();
        for name in engine.schema_names() {
            schemas.append(CATALOG, name);
        }
        batch_stream(schemas.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(info(&schema, query.as_any().encode_to_vec())?))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let _slot = self.slot()?;
        let (engine, _) = self.engine(&request).await?;
        let include_schema = query.include_schema;
        let mut tables = query.into_builder();
        for (schema, table) in engine.table_names() {
            // A product whose columns the client may not see is listed
            // with none (its owner refused to describe it to this client).
            let columns = match include_schema {
                true => {
                    engine.table_schema(&schema, &table).await.unwrap_or_else(|_| Arc::new(Schema::empty()))
                }
                false => Arc::new(Schema::empty()),
            };
            tables.append(CATALOG, &schema, &table, TABLE_TYPE, &columns).map_err(flight_status)?;
        }
        batch_stream(tables.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Ok(Response::new(info(&schema, query.as_any().encode_to_vec())?))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut types = query.into_builder();
        types.append(TABLE_TYPE);
        batch_stream(types.build())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// A flight info of `schema` with one endpoint: this service, `ticket`.
fn info(schema: &SchemaRef, ticket: Vec<u8>) -> Result<FlightInfo, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket));
    FlightInfo::new()
        .try_with_schema(schema)
        .map(|info| info.with_endpoint(endpoint))
        .map_err(|e| Status::internal(format!("encoding the schema: {e}")))
}

/// One metadata batch as a DoGet stream.
fn batch_stream(batch: Result<RecordBatch, FlightError>) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(|e| Status::internal(format!("building the answer: {e}")))?;
    let schema = batch.schema();
    let batches = futures_util::stream::iter([Ok(batch)]);
    let encoded = FlightDataEncoderBuilder::new().with_schema(schema).build(batches).map_err(flight_status);
    Ok(Response::new(Box::pin(encoded)))
}

/// The gRPC status of a Flight error.
fn flight_status(error: impl Into<FlightError>) -> Status {
    match error.into() {
        FlightError::Tonic(status) => *status,
        other => Status::internal(other.to_string()),
    }
}
