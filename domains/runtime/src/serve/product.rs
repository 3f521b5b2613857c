//! One data product served from its table: describing it and streaming
//! query results in batches with resume tokens.

use std::sync::Arc;

use mesh_contracts::catalog::DataStatus;
use mesh_contracts::descriptor::{ProductShape, RESUME_TOKEN_FIELD, service_descriptor_set};
use mesh_contracts::product::{AccessMode, DescribeResponse, QueryRequest};
use prost_reflect::DescriptorPool;
use tonic::Status;
use tracing::Instrument;

use crate::error::{DomainError, Result};
use crate::ingest::{Destination, LoadMeters};
use crate::query::dialect::Dialect;
use crate::query::grant::{AccessPolicy, Grant};
use crate::query::part::{Part, Partitioning};
use crate::query::plan::{QueryPlan, plan};
use crate::query::resume::ResumeTokens;
use crate::scan::admission::Admission;
use crate::scan::stream::{self, Encoding, OnEnd, ScanJob, ScanStream, ScanTarget};
use crate::serve::audit::{Audit, ReadMeters};
use crate::serve::output::RowFormat;
use crate::store::{DomainStore, Storage, Table};
use crate::values::schema::RowSchema;

/// What a domain declares about a product it serves: its id, contract
/// service, table and the columns with a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSpec {
    /// Product id, e.g. `payment.card_spending`.
    pub id: String,
    /// Full name of the product service in the contracts.
    pub service: String,
    /// The table holding the rows (on PostgreSQL, the name each loaded
    /// generation of it starts with).
    pub table: String,
    /// Columns identifying a row; the natural order.
    pub key: Vec<String>,
    /// Columns with an index of their own, for common filters.
    pub indexes: Vec<String>,
    /// Columns holding amounts, which are never negative (field names,
    /// compared without case): a load refuses a negative one.
    pub amounts: Vec<String>,
    /// The contract's major version, raised to publish a breaking change.
    pub major_version: u32,
}

impl ProductSpec {
    /// A product `id` served by the contract `service` from `table`, with
    /// no key, indexes or amounts yet, in major version 1.
    pub fn new(id: &str, service: &str, table: &str) -> Self {
        Self {
            id: id.to_owned(),
            service: service.to_owned(),
            table: table.to_owned(),
            key: Vec::new(),
            indexes: Vec::new(),
            amounts: Vec::new(),
            major_version: 1,
        }
    }

    /// With `columns` as its key.
    pub fn key(mut self, columns: &[&str]) -> Self {
        self.key = owned(columns);
        self
    }

    /// With `columns` indexed.
    pub fn indexes(mut self, columns: &[&str]) -> Self {
        self.indexes = owned(columns);
        self
    }

    /// With `columns` holding amounts.
    pub fn amounts(mut self, columns: &[&str]) -> Self {
        self.amounts = owned(columns);
        self
    }

    /// The domain owning the product: its id up to the first dot.
    pub fn domain(&self) -> &str {
        self.id.split_once('.').map_or(&self.id, |(domain, _)| domain)
    }
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|&name| name.to_owned()).collect()
}

/// Who reads a product, from where, under which limits, and where the
/// read is recorded.
#[derive(Debug)]
pub struct Reader<'a> {
    /// The caller, for logs.
    pub caller: &'a str,
    /// The caller's connection, whose open streams are counted.
    pub peer: Option<std::net::SocketAddr>,
    /// The domain's admission control.
    pub admission: &'a Admission,
    /// The read's record, filled in as it goes.
    pub audit: Audit,
}

/// A query started: its rows, the columns left out because the grant does
/// not cover them, and the schema columns delivered, in order.
#[derive(Debug)]
pub struct Started {
    /// Batches of encoded `QueryResponse` messages, then the error if the
    /// scan did not finish.
    pub rows: ScanStream,
    /// Columns withheld from the caller.
    pub withheld: Vec<String>,
    /// Schema indexes of the columns each row holds, in order.
    pub columns: Vec<usize>,
}

/// A product ready to serve.
#[derive(Debug)]
pub struct Product {
    /// Its static description.
    pub spec: ProductSpec,
    /// Its row type as a table.
    pub schema: RowSchema,
    /// Its service, checked against the product convention.
    pub shape: ProductShape,
    /// Its domain's database.
    pub store: DomainStore,
    /// What its scans read, taken once.
    target: Arc<ScanTarget>,
    /// Who may read it, from the contract (read once, not per query).
    access_mode: AccessMode,
    descriptor_set: Vec<u8>,
    /// Where its loads are counted.
    pub load_meters: LoadMeters,
    /// Where its reads are counted.
    pub read_meters: ReadMeters,
}

impl Product {
    /// Prepares `spec` over `store`, creating its table if needed.
    pub fn new(spec: ProductSpec, store: DomainStore) -> Result<Arc<Self>> {
        let pool = DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET)
            .map_err(|e| DomainError::Schema(e.to_string()))?;
        Self::from_pool(spec, &pool, store)
    }

    /// Like [`Product::new`], its contract found in `pool` (e.g. compiled
    /// from a team's `.proto` at start) rather than in the mesh's own.
    pub fn from_pool(spec: ProductSpec, pool: &DescriptorPool, store: DomainStore) -> Result<Arc<Self>> {
        let shape =
            ProductShape::find(pool, &spec.service).map_err(|e| DomainError::Schema(e.to_string()))?;
        let schema = RowSchema::new(&spec.table, shape.row_type.clone(), &spec.key, &spec.amounts)?;
        if let Some(unknown) = spec.indexes.iter().find(|&index| schema.column(index).is_none()) {
            return Err(DomainError::Schema(format!(
                "index column `{unknown}` is not a field of {}",
                shape.row_type.full_name()
            )));
        }
        store.prepare_table(&spec.id, &schema, &spec.indexes)?;
        let tokens = ResumeTokens::new(store.token_secret()?, &spec.id);
        let descriptor_set = service_descriptor_set(&shape.service);
        let token_field = shape
            .query
            .output()
            .get_field_by_name(RESUME_TOKEN_FIELD)
            .map(|f| f.number())
            .ok_or_else(|| DomainError::Schema(format!("{} has no resume_token", spec.service)))?;
        let access_mode = shape.options().access_mode();
        let target = Arc::new(ScanTarget {
            product: spec.id.clone(),
            schema: schema.clone(),
            store: store.clone(),
            tokens,
            rows_field: shape.rows_field.number(),
            token_field,
            active: Default::default(),
        });
        let load_meters = LoadMeters::new(&spec.id);
        if let Some(load) = store.load_info(&spec.id)? {
            load_meters.loaded_at(load.loaded_at_ms);
        }
        let read_meters = ReadMeters::new(&spec.id);
        Ok(Arc::new(Self {
            spec,
            schema,
            shape,
            store,
            target,
            access_mode,
            descriptor_set,
            load_meters,
            read_meters,
        }))
    }

    /// The product's description: contract options, row count, last load
    /// and quality results.
    pub fn describe(&self) -> Result<DescribeResponse> {
        let data = self.data_status()?;
        Ok(DescribeResponse {
            product: self.spec.id.clone(),
            service: self.spec.service.clone(),
            row_type: self.schema.message.full_name().to_owned(),
            row_count: data.row_count,
            last_loaded_time: data.last_loaded_time,
            quality_results: data.quality_results,
            options: Some(self.shape.options()),
            descriptor_set: self.descriptor_set.clone(),
        })
    }

    /// Size, last load and quality of the current data, as reported to the catalog.
    pub fn data_status(&self) -> Result<DataStatus> {
        let load = self.store.load_info(&self.spec.id)?;
        Ok(DataStatus {
            consumers: Vec::new(),
            consumer_count: 0,
            row_count: load.as_ref().map_or(0, |l| l.row_count),
            last_loaded_time: load.as_ref().map(|l| mesh_contracts::time::timestamp(l.loaded_at_ms)),
            quality_results: self.store.quality(&self.spec.id)?,
            // The id's 64 bits as they are: unique per load, though it may read negative.
            load_id: load.as_ref().map_or(0, |l| i64::from_le_bytes(l.load.to_le_bytes())),
        })
    }

    /// The product service's own files, encoded with options kept.
    pub fn descriptor_set(&self) -> &[u8] {
        &self.descriptor_set
    }

    /// Compiles `request` under `grant` and, once the reader's admission
    /// gives it a scan slot, starts streaming its result: batches of rows
    /// in `format` (encoded `QueryResponse` messages for gRPC); with it, the columns left out
    /// because the grant does not cover them. The scan runs on a blocking
    /// thread and stops as soon as the stream is dropped (the client went
    /// away). A refusal, and the stream's end, go to the reader's audit log.
    pub async fn query(
        self: &Arc<Self>,
        request: &QueryRequest,
        format: RowFormat,
        grant: &Grant,
        reader: Reader<'_>,
        part: Option<&Part>,
    ) -> Result<Started, Status> {
        let Reader { caller, peer, admission, mut audit } = reader;
        let planned = tracing::info_span!("plan")
            .in_scope(|| plan(request, &self.schema, &self.target.tokens, grant, self.store.dialect(), part));
        let plan = match planned {
            Ok(plan) => QueryPlan { page: format.page_size(), ..plan },
            Err(error) => {
                tracing::info!(product = %self.spec.id, %caller, %error, "query refused");
                return Err(audit.refuse(Status::from(error)));
            }
        };
        let (withheld, columns) = (plan.withheld.clone(), plan.projection.clone());
        audit.record.delivered_columns =
            plan.projection.iter().map(|&c| self.schema.columns[c].name.clone()).collect();
        audit.record.withheld_columns = withheld.clone();
        let stream = match admission.open_stream(peer) {
            Ok(stream) => stream,
            Err(status) => return Err(audit.refuse(status)),
        };
        let slot = match admission.admit().instrument(tracing::info_span!("admission")).await {
            Ok(slot) => slot,
            Err(status) => return Err(audit.refuse(status)),
        };
        let on_end: OnEnd = Box::new(move |ended, rows, bytes| audit.ended(ended, rows, bytes));
        let encoding = if format == RowFormat::Arrow { Encoding::Arrow } else { Encoding::Protobuf };
        let job = ScanJob { plan, encoding, caller: caller.to_owned() };
        let scan =
            stream::start(Arc::clone(&self.target), job, admission, Some(slot), Some(stream), Some(on_end));
        Ok(Started { rows: scan, withheld, columns })
    }

    /// The Arrow schema a read of `request` under `grant` delivers: the
    /// columns granted, with their contract options as metadata; the
    /// withheld ones named in its metadata.
    pub fn arrow_schema(&self, request: &QueryRequest, grant: &Grant) -> Result<arrow_schema::Schema> {
        let plan = plan(request, &self.schema, &self.target.tokens, grant, self.store.dialect(), None)?;
        let columns = plan.projection.iter().map(|&c| &self.schema.columns[c]);
        Ok(crate::scan::arrow::arrow_schema(&self.spec.id, columns, &plan.pseudonymized, &plan.withheld))
    }

    /// The parts a read of `request` under `grant` comes in: several (by
    /// rowid or by the caller's keyed order, part.rs) when the caller may
    /// have them, the product is on SQLite and `partitioning` finds rows
    /// enough; otherwise the whole read (`None`), in the query's order.
    pub fn parts(
        &self,
        request: &QueryRequest,
        grant: &Grant,
        partitioning: Partitioning,
    ) -> Result<Vec<Option<Part>>> {
        let whole = vec![None];
        // PostgreSQL keeps no index on rowid alone: a part there would be a
        // scan of the whole table and a sort.
        if self.store.dialect() != Dialect::Sqlite {
            return Ok(whole);
        }
        let planned = plan(request, &self.schema, &self.target.tokens, grant, self.store.dialect(), None)?;
        let Some(keyed) = planned.split else { return Ok(whole) };
        let Some(load) = self.store.load_info(&self.spec.id)? else { return Ok(whole) };
        let parts = partitioning.parts(load.row_count.max(0) as u64, load.load, keyed);
        Ok(if parts.len() > 1 { parts.into_iter().map(Some).collect() } else { whole })
    }

    /// How the database will run `request` under `grant` (SQLite's
    /// `EXPLAIN QUERY PLAN` details, PostgreSQL's `EXPLAIN`, one line
    /// each), to check that a query is served by an index.
    pub fn explain(&self, request: &QueryRequest, grant: &Grant) -> Result<String> {
        let plan = plan(request, &self.schema, &self.target.tokens, grant, self.store.dialect(), None)?;
        self.store.explain(self.table(), &plan)
    }

    /// What access to the product depends on: its id, domain, access mode
    /// and columns.
    pub fn access_policy(&self) -> AccessPolicy<'_> {
        AccessPolicy {
            product: &self.spec.id,
            domain: self.spec.domain(),
            mode: self.access_mode,
            schema: &self.schema,
        }
    }

    /// Scans running now (a cancelled stream's scan ends promptly).
    pub fn active_scans(&self) -> usize {
        self.target.active.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The field number of `resume_token` in the product's query response.
    pub fn token_field(&self) -> u32 {
        self.target.token_field
    }

    /// Where a load of the product's rows goes.
    pub fn destination(&self) -> Destination<'_> {
        Destination {
            store: &self.store,
            product: &self.spec.id,
            schema: &self.schema,
            indexes: &self.spec.indexes,
            meters: Some(&self.load_meters),
        }
    }

    /// The product's table in its store.
    pub fn table(&self) -> Table<'_> {
        Table { product: &self.spec.id, name: &self.schema.table }
    }

    /// Checks that the product's data can still be read (blocking): the
    /// SQLite file is the one opened and a fresh connection reads it, or
    /// PostgreSQL answers for the product's table.
    pub fn probe(&self) -> Result<()> {
        self.store.probe(self.table())
    }
}
