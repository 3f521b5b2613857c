//! Building a derived product: its SQL run by the mesh's SQL engine with
//! the domain's own service identity (each input read at its owner under
//! the agreement the domain holds, asked for first), the result's columns
//! checked against the contract, and its rows loaded through the same path
//! as a file's (one transaction, the product's quality rules, the load
//! recorded and announced).

use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use csv::ByteRecord;
use futures_util::StreamExt;
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, ProductView};
use mesh_contracts::descriptor::ProductShape;
use mesh_grpc::Credentials;
use mesh_product_file::{Derived, Mistakes};
use mesh_runtime::ingest::{self, LoadSummary, RecordSource, Shrink};
use mesh_runtime::store::Storage;
use mesh_runtime::{DomainError, Result};
use mesh_sql::engine::cells::BatchCells;
use mesh_sql::engine::{DomainMesh, Engine, EngineSettings, status_of};
use mesh_sql::flight::ReadSettings;
use tonic::Status;

use crate::agreements;
use crate::published::Published;

/// Bounds connecting to the registry and the inputs, and each call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A read of an input that sends nothing for this long fails.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Memory the joins, aggregates and sorts of a build share before spilling.
const MEMORY_LIMIT: usize = 2 << 30;
/// Result batches waiting for the loader.
const BATCHES_AHEAD: usize = 4;

/// Where a deriving domain finds its inputs and what it reads them with.
#[derive(Clone)]
pub struct Inputs {
    /// The registry the inputs are found in.
    pub registry: String,
    /// The domain's own credentials.
    pub credentials: Credentials,
    settings: EngineSettings,
}

impl Inputs {
    /// Inputs found through `registry`, read with `credentials`.
    pub fn new(registry: String, credentials: Credentials) -> Result<Self> {
        let read = ReadSettings {
            timeout: CALL_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            on_failover: Arc::new(|failover: &mesh_sql::flight::Failover<'_>| {
                tracing::warn!(
                    failed = failover.failed,
                    next = failover.next,
                    "an input's replica failed; going on"
                );
            }),
        };
        let settings = EngineSettings::new(read, MEMORY_LIMIT).map_err(DomainError::Upstream)?;
        Ok(Self { registry, credentials, settings })
    }
}

/// Rebuilds `published` from its SQL over its inputs, replacing its rows.
pub async fn build(published: &Arc<Published>, inputs: &Inputs) -> Result<LoadSummary> {
    let file = &published.declared.file;
    let Some(derived) = &file.source.sql else {
        return Err(DomainError::Config(format!("{} is not derived by SQL", published.id())));
    };
    ask_for_agreements(published, derived, inputs).await?;
    let mesh = DomainMesh {
        registry: inputs.registry.clone(),
        timeout: CALL_TIMEOUT,
        credentials: inputs.credentials.clone(),
        inputs: derived.inputs.clone(),
    };
    let engine = Engine::new(Arc::new(mesh), &inputs.settings).await.map_err(not_yet_granted)?;
    let mut stream = engine.run(&derived.query).await.map_err(|status| match status.code() {
        // The query itself is wrong: said of it, where it is in the file.
        // (An input not yet in the catalog is NOT_FOUND: tried again.)
        tonic::Code::InvalidArgument => {
            at_query(published, format!("source.sql.query: {}", status.message()))
        }
        _ => not_yet_granted(status),
    })?;
    let header = result_header(published, &stream.schema())?;
    let (sender, receiver) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
    let pump = tokio::spawn(async move {
        while let Some(batch) = stream.next().await {
            if sender.send(batch.map_err(|e| status_of(&e))).await.is_err() {
                break;
            }
        }
    });
    let mut records = BatchRecords {
        header,
        batches: receiver,
        current: None,
        row: 0,
        line: 1,
        name: format!("SQL over {}", derived.inputs.join(", ")),
    };
    let loading = Arc::clone(published);
    let loaded = tokio::task::spawn_blocking(move || {
        let product = &loading.product;
        product.store.exclusive_load(loading.id(), || {
            ingest::load(&product.destination(), &mut records, &loading.rules, Shrink::NotToEmpty)
        })
    })
    .await;
    pump.abort();
    loaded.map_err(|e| DomainError::Internal(format!("the load task failed: {e}")))?
}

/// Asks for an agreement with each input covering the columns of it the
/// SQL names, unless one is in force.
async fn ask_for_agreements(published: &Published, derived: &Derived, inputs: &Inputs) -> Result<()> {
    let channel = mesh_grpc::client::channel(&inputs.registry, CALL_TIMEOUT, &inputs.credentials)?;
    let mut access = AccessServiceClient::new(channel.clone());
    let mut catalog = CatalogServiceClient::new(channel);
    let options = published.declared.shape.options();
    let purpose = format!("{}: {}", published.id(), options.purpose);
    let own_domain = mesh_contracts::access::domain_of(published.id());
    // The domain reads its own products as their owner.
    for input in derived.inputs.iter().filter(|i| mesh_contracts::access::domain_of(i) != own_domain) {
        let request =
            GetProductRequest { name: input.clone(), view: ProductView::Full.into(), ..Default::default() };
        let found = catalog.get_product(request).await?.into_inner();
        let service = found.product.unwrap_or_default().service;
        let pool = prost_reflect::DescriptorPool::decode(found.descriptor_set.as_slice())
            .map_err(|e| DomainError::Schema(format!("{input}'s contract in the registry: {e}")))?;
        let shape = ProductShape::find(&pool, &service)
            .map_err(|e| DomainError::Schema(format!("{input}'s contract in the registry: {e}")))?;
        let columns: Vec<String> = shape.row_type.fields().map(|f| f.name().to_owned()).collect();
        let named = agreements::columns_named(&derived.query, &columns)?;
        agreements::ensure(&mut access, input, &named, &purpose).await?;
    }
    Ok(())
}

/// The result's column names, once they are the contract's (in any
/// order, compared without case); otherwise the refusal names what differs.
fn result_header(published: &Published, schema: &arrow_schema::Schema) -> Result<ByteRecord> {
    let returned: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let columns: Vec<&str> = published.product.schema.columns.iter().map(|c| c.name.as_str()).collect();
    let absent = |names: &[&str], from: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| !from.iter().any(|f| f.eq_ignore_ascii_case(n)))
            .map(|n| format!("`{n}`"))
            .collect()
    };
    let (extra, missing) = (absent(&returned, &columns), absent(&columns, &returned));
    let mut problems = Vec::new();
    if !extra.is_empty() {
        problems.push(format!("it returns {} that the contract lacks", extra.join(", ")));
    }
    if !missing.is_empty() {
        problems.push(format!("it returns no {}", missing.join(", ")));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = returned.iter().find(|r| !seen.insert(r.to_ascii_lowercase())) {
        problems.push(format!("it returns `{twice}` twice"));
    }
    if !problems.is_empty() {
        return Err(at_query(
            published,
            format!(
                "source.sql.query: {}; return exactly the contract's columns ({}), naming each with AS",
                problems.join("; "),
                columns.join(", ")
            ),
        ));
    }
    Ok(ByteRecord::from(returned))
}

/// An input refusing right after its agreement was asked for has not
/// learnt of it yet (domains fetch agreements every few seconds), the
/// owner has still to approve it, or the input is not registered yet: try
/// again later.
fn not_yet_granted(status: Status) -> DomainError {
    if matches!(status.code(), tonic::Code::PermissionDenied | tonic::Code::NotFound) {
        DomainError::Unavailable(format!("an input cannot be read yet ({})", status.message()))
    } else {
        DomainError::Upstream(status)
    }
}

/// The result's batches as records for the loader, row by row.
struct BatchRecords {
    header: ByteRecord,
    batches: tokio::sync::mpsc::Receiver<std::result::Result<RecordBatch, Status>>,
    current: Option<BatchCells>,
    row: usize,
    line: u64,
    name: String,
}

impl RecordSource for BatchRecords {
    fn header(&self) -> &ByteRecord {
        &self.header
    }

    fn read(&mut self, record: &mut ByteRecord) -> Result<bool> {
        loop {
            if let Some(cells) = &self.current
                && self.row < cells.rows()
            {
                let mut row = Vec::with_capacity(self.header.len());
                cells.row(self.row, &mut row);
                record.clear();
                for cell in &row {
                    cell.with_text(|field| record.push_field(field));
                }
                self.row += 1;
                self.line += 1;
                return Ok(true);
            }
            match self.batches.blocking_recv() {
                Some(Ok(batch)) => (self.current, self.row) = (Some(BatchCells::new(&batch)), 0),
                Some(Err(status)) => return Err(DomainError::Upstream(status)),
                None => return Ok(false),
            }
        }
    }

    fn line(&self) -> u64 {
        self.line
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Checks, before any input is asked, that `published`'s SQL is one
/// read-only query the engine can parse, over inputs other than itself.
pub fn check_query(published: &Published) -> Result<()> {
    let Some(derived) = &published.declared.file.source.sql else { return Ok(()) };
    if let Some(at) = derived.inputs.iter().position(|input| input == published.id()) {
        let message = format!("source.sql.inputs: {} cannot be an input of itself", published.id());
        let mistake = published.declared.file.mistake(&format!("/source/sql/inputs/{at}"), message);
        return Err(DomainError::Config(Mistakes(vec![mistake]).to_string()));
    }
    mesh_sql::engine::check_statement(&derived.query)
        .map_err(|status| at_query(published, format!("source.sql.query: {}", status.message())))
}

/// Whether `error` is the product file's to fix: trying again will not help.
pub fn is_mistake(error: &DomainError) -> bool {
    matches!(error, DomainError::Config(_))
}

/// Says `message` of the product file's SQL query, where it is.
pub(crate) fn at_query(published: &Published, message: String) -> DomainError {
    DomainError::Config(
        Mistakes(vec![published.declared.file.mistake("/source/sql/query", message)]).to_string(),
    )
}
