//! One data product served from its table: describing it and streaming
//! query results in batches with resume tokens.

use std::sync::Arc;

use bytes::Bytes;
use mesh_contracts::catalog::DataStatus;
use mesh_contracts::descriptor::{ProductShape, RESUME_TOKEN_FIELD, service_descriptor_set};
use mesh_contracts::product::{DescribeResponse, QueryRequest};
use prost_reflect::DescriptorPool;
use rusqlite::types::{Value, ValueRef};
use tokio::sync::mpsc;
use tonic::Status;

use crate::encode::{RowEncoder, put_len_field};
use crate::error::{DomainError, Result};
use crate::plan::{QueryPlan, plan};
use crate::resume::ResumeTokens;
use crate::schema::RowSchema;
use crate::store::DomainStore;

/// Target size of one streamed batch: large enough for throughput, far
/// below gRPC's 4 MiB default message limit.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Batches buffered ahead of a slow reader; bounds memory per stream.
const BATCHES_AHEAD: usize = 4;

/// The static description of a product a domain serves.
#[derive(Debug, Clone, Copy)]
pub struct ProductSpec {
    /// Product id, e.g. `payment.card_spending`.
    pub id: &'static str,
    /// Full name of the product service in the contracts.
    pub service: &'static str,
    /// The SQLite table holding the rows.
    pub table: &'static str,
    /// Columns identifying a row; the natural order.
    pub key: &'static [&'static str],
    /// Columns with an index of their own, for common filters.
    pub indexes: &'static [&'static str],
    /// Columns holding amounts, which are never negative (field names,
    /// compared without case): a load refuses a negative one.
    pub amounts: &'static [&'static str],
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
    tokens: ResumeTokens,
    descriptor_set: Vec<u8>,
    token_field: u32,
    active_scans: Arc<std::sync::atomic::AtomicUsize>,
}

impl Product {
    /// Prepares `spec` over `store`, creating its table if needed.
    pub fn new(spec: ProductSpec, store: DomainStore) -> Result<Arc<Self>> {
        let pool = DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET)
            .map_err(|e| DomainError::Schema(e.to_string()))?;
        let shape =
            ProductShape::find(&pool, spec.service).map_err(|e| DomainError::Schema(e.to_string()))?;
        let schema = RowSchema::new(spec.table, shape.row_type.clone(), spec.key, spec.amounts)?;
        store.write(|conn| {
            Ok(conn.execute_batch(&format!("{}\n{}", schema.create_sql(), schema.index_sql(spec.indexes)))?)
        })?;
        let tokens = ResumeTokens::new(store.token_secret()?);
        let descriptor_set = service_descriptor_set(&shape.service);
        let token_field = shape
            .query
            .output()
            .get_field_by_name(RESUME_TOKEN_FIELD)
            .map(|f| f.number())
            .ok_or_else(|| DomainError::Schema(format!("{} has no resume_token", spec.service)))?;
        Ok(Arc::new(Self {
            spec,
            schema,
            shape,
            store,
            tokens,
            descriptor_set,
            token_field,
            active_scans: Default::default(),
        }))
    }

    /// The product's description: contract options, row count, last load
    /// and quality results.
    pub fn describe(&self) -> Result<DescribeResponse> {
        let data = self.data_status()?;
        Ok(DescribeResponse {
            product: self.spec.id.to_owned(),
            service: self.spec.service.to_owned(),
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
        let load = self.store.load_info(self.spec.id)?;
        Ok(DataStatus {
            row_count: load.as_ref().map_or(0, |l| l.row_count),
            last_loaded_time: load.as_ref().map(|l| mesh_contracts::time::timestamp(l.loaded_at_ms)),
            quality_results: self.store.quality(self.spec.id)?,
        })
    }

    /// The product service's own files, encoded with options kept.
    pub fn descriptor_set(&self) -> &[u8] {
        &self.descriptor_set
    }

    /// Compiles `request` and starts streaming its result: batches of
    /// encoded `QueryResponse` messages. The scan runs on a blocking thread
    /// and stops as soon as the receiver is dropped (the client went away).
    pub fn query(
        self: &Arc<Self>,
        request: &QueryRequest,
        caller: &str,
    ) -> Result<mpsc::Receiver<Result<Bytes, Status>>> {
        let plan = plan(request, &self.schema, &self.tokens)?;
        let (sender, receiver) = mpsc::channel(BATCHES_AHEAD);
        let product = Arc::clone(self);
        let caller = caller.to_owned();
        let active = ScanGuard::start(&self.active_scans);
        tokio::task::spawn_blocking(move || {
            let _active = active;
            let span = tracing::info_span!("query", product = product.spec.id, caller = %caller);
            let _entered = span.enter();
            match product.store.read(|conn| product.scan(conn, &plan, &sender)) {
                Ok(rows) => tracing::info!(rows, "query finished"),
                Err(error) => {
                    let _ = sender.blocking_send(Err(Status::from(error)));
                }
            }
        });
        Ok(receiver)
    }

    /// How SQLite will run `request` (its `EXPLAIN QUERY PLAN` details, one
    /// line each), to check that a query is served by an index.
    pub fn explain(&self, request: &QueryRequest) -> Result<String> {
        let plan = plan(request, &self.schema, &self.tokens)?;
        self.store.read(|conn| {
            let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", plan.sql))?;
            let details = statement
                .query_map(rusqlite::params_from_iter(plan.params.iter()), |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(details.join("\n"))
        })
    }

    /// Scans running now (a cancelled stream's scan ends promptly).
    pub fn active_scans(&self) -> usize {
        self.active_scans.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Runs `plan`, sending batches; returns the rows sent.
    fn scan(
        &self,
        conn: &rusqlite::Connection,
        plan: &QueryPlan,
        sender: &mpsc::Sender<Result<Bytes, Status>>,
    ) -> Result<u64> {
        let mut statement = conn.prepare_cached(&plan.sql)?;
        for (i, value) in plan.params.iter().enumerate() {
            statement.raw_bind_parameter(i + 1, value)?;
        }
        let encoder = RowEncoder::new(plan.projection.iter().map(|&c| &self.schema.columns[c]));
        let rows_field = self.shape.rows_field.number();
        let key_start = plan.projection.len();
        let key_len = plan.sort.len();
        let mut rows = statement.raw_query();
        let mut batch: Vec<u8> = Vec::with_capacity(BATCH_BYTES + 64 * 1024);
        let mut row_bytes: Vec<u8> = Vec::with_capacity(4096);
        let mut last_key: Vec<Value> = Vec::with_capacity(key_len);
        let mut sent = 0u64;
        let mut in_batch = 0u64;
        while let Some(row) = rows.next()? {
            row_bytes.clear();
            encoder.encode(row, &mut row_bytes)?;
            put_len_field(&mut batch, rows_field, &row_bytes);
            read_key(row, key_start, key_len, &mut last_key)?;
            in_batch += 1;
            if batch.len() >= BATCH_BYTES {
                sent += in_batch;
                in_batch = 0;
                if !self.flush(&mut batch, plan, &last_key, sent, sender) {
                    tracing::debug!(sent, "client went away; scan stopped");
                    return Ok(sent);
                }
            }
        }
        if in_batch > 0 {
            sent += in_batch;
            self.flush(&mut batch, plan, &last_key, sent, sender);
        }
        Ok(sent)
    }

    /// Sends the batch with its resume token; false if the client is gone.
    fn flush(
        &self,
        batch: &mut Vec<u8>,
        plan: &QueryPlan,
        last_key: &[Value],
        sent: u64,
        sender: &mpsc::Sender<Result<Bytes, Status>>,
    ) -> bool {
        let token = self.tokens.issue(&plan.point(last_key.to_vec(), sent));
        put_len_field(batch, self.token_field, token.as_bytes());
        let bytes = Bytes::copy_from_slice(batch);
        batch.clear();
        sender.blocking_send(Ok(bytes)).is_ok()
    }
}

/// Copies the sort key of `row` (its columns from `start`) into `key`,
/// reusing string buffers.
fn read_key(row: &rusqlite::Row<'_>, start: usize, len: usize, key: &mut Vec<Value>) -> rusqlite::Result<()> {
    key.resize(len, Value::Null);
    for (i, slot) in key.iter_mut().enumerate() {
        match row.get_ref(start + i)? {
            ValueRef::Text(text) => {
                let text = String::from_utf8_lossy(text);
                match slot {
                    Value::Text(existing) => {
                        existing.clear();
                        existing.push_str(&text);
                    }
                    other => *other = Value::Text(text.into_owned()),
                }
            }
            ValueRef::Integer(n) => *slot = Value::Integer(n),
            ValueRef::Real(x) => *slot = Value::Real(x),
            ValueRef::Null | ValueRef::Blob(_) => *slot = Value::Null,
        }
    }
    Ok(())
}

/// Counts a scan as active while it lives.
struct ScanGuard(Arc<std::sync::atomic::AtomicUsize>);

impl ScanGuard {
    fn start(counter: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(Arc::clone(counter))
    }
}

impl Drop for ScanGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
