//! Running one query: the store's scan on a blocking thread, rows encoded
//! into batches with resume tokens, and every way a scan is stopped — the
//! client went away, stopped reading, ran out of its time budget, or the
//! domain is shutting down. The database is interrupted in each case, even
//! in a scan that produces no rows (a sort, or a filter that matches nothing).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesh_grpc::codec::Pieces;
use tokio::sync::mpsc;
use tonic::Status;

use crate::error::{DomainError, Result};
use crate::query::plan::QueryPlan;
use crate::query::resume::ResumeTokens;
use crate::scan::admission::{Admission, ScanSlot, StreamSlot};
use crate::scan::arrow::{ArrowBatch, arrow_schema};
use crate::scan::encode::{RowEncoder, put_len_field};
use crate::store::{DomainStore, RowSink, Stop, Storage, Table};
use crate::values::Value;
use crate::values::cell::{Cell, CellRow};
use crate::values::schema::RowSchema;

/// Target size of one streamed batch: large enough for throughput, far
/// below gRPC's 4 MiB default message limit.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Batches buffered ahead of a slow reader; bounds memory per stream.
const BATCHES_AHEAD: usize = 4;

/// The batches of one query, then its error if it did not finish: a stream
/// of encoded messages (`QueryResponse`, or Flight's `FlightData`), each in
/// [`Pieces`]. Dropping it stops the scan.
#[derive(Debug)]
pub struct ScanStream {
    receiver: mpsc::Receiver<Pieces>,
    shared: Arc<Shared>,
    _stream: Option<StreamSlot>,
    finished: bool,
}

/// What the scan thread and the stream share.
#[derive(Debug, Default)]
struct Shared {
    /// The client dropped the stream.
    gone: AtomicBool,
    /// Why the scan ended early, set before its sender is dropped.
    failure: Mutex<Option<Status>>,
}

impl tokio_stream::Stream for ScanStream {
    type Item = Result<Pieces, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(batch)) => Poll::Ready(Some(Ok(batch))),
            Poll::Ready(None) => {
                self.finished = true;
                let failure = self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()).take();
                Poll::Ready(failure.map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ScanStream {
    fn drop(&mut self) {
        self.shared.gone.store(true, Ordering::SeqCst);
    }
}

/// What a scan needs of its product, taken once when the product is
/// made: the scan never calls back into the product.
#[derive(Debug)]
pub(crate) struct ScanTarget {
    /// The product's id.
    pub product: String,
    /// Its row type as a table.
    pub schema: RowSchema,
    /// Its domain's database.
    pub store: DomainStore,
    /// The product's resume tokens.
    pub tokens: ResumeTokens,
    /// The field number of the rows in the product's query response.
    pub rows_field: u32,
    /// The field number of `resume_token` in it.
    pub token_field: u32,
    /// Scans running now.
    pub active: Arc<std::sync::atomic::AtomicUsize>,
}

impl ScanTarget {
    /// The table the scan reads.
    fn table(&self) -> Table<'_> {
        Table { product: &self.product, name: &self.schema.table }
    }
}

/// How a served read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Every row asked for went out.
    Served,
    /// The client went away.
    Cancelled,
    /// Cut, with the message the client got.
    Failed(String),
}

/// How a scan's batches are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `QueryResponse` messages: row messages, then the resume token after
    /// the last.
    Protobuf,
    /// Arrow Flight `FlightData` messages: the schema first, then record
    /// batches, each with the resume token after its last row as
    /// `app_metadata`.
    Arrow,
}

/// Told how a scan ended, with the rows and bytes it sent.
pub type OnEnd = Box<dyn FnOnce(Ended, u64, u64) + Send>;

/// The status the client gets after `sent` rows when a scan stopped for
/// `stop`, if anyone is listening.
fn stop_status(stop: Stop, sent: u64) -> Option<Status> {
    let resume = "resume with the last resume_token received";
    match stop {
        Stop::ClientGone => None,
        Stop::Stalled(timeout) => Some(Status::cancelled(format!(
            "the client read nothing for {} (the domain's --send-timeout); the stream was cut after \
             {sent} rows; {resume}",
            humantime::format_duration(timeout)
        ))),
        Stop::OverBudget(budget) => Some(Status::deadline_exceeded(format!(
            "the query ran longer than its budget of {} (the domain's --query-budget) after {sent} \
             rows; {resume}, or narrow the filter",
            humantime::format_duration(budget)
        ))),
        Stop::Shutdown => Some(Status::unavailable(format!(
            "the domain is shutting down; the stream was cut after {sent} rows; {resume} once it is \
             back or on another replica"
        ))),
        Stop::Failed(error) => Some(error.into()),
    }
}

/// Why a running scan should stop now, checked between storage steps and
/// while waiting for the client.
#[derive(Clone)]
struct Watch {
    shared: Arc<Shared>,
    admission: Admission,
    deadline: Option<(Instant, Duration)>,
}

impl Watch {
    fn reason(&self) -> Option<Stop> {
        if self.shared.gone.load(Ordering::Relaxed) {
            Some(Stop::ClientGone)
        } else if self.admission.is_cut() {
            Some(Stop::Shutdown)
        } else {
            match self.deadline {
                Some((at, budget)) if Instant::now() >= at => Some(Stop::OverBudget(budget)),
                _ => None,
            }
        }
    }
}

/// What one scan runs: the plan, how its batches are encoded, and who
/// asked (for logs).
pub(crate) struct ScanJob {
    pub plan: QueryPlan,
    pub encoding: Encoding,
    pub caller: String,
}

/// Starts `job` over `target` on a blocking thread under `slot`,
/// returning its stream; `on_end` is told how it ended.
pub(crate) fn start(
    target: Arc<ScanTarget>,
    job: ScanJob,
    admission: &Admission,
    slot: Option<ScanSlot>,
    stream: Option<StreamSlot>,
    on_end: Option<OnEnd>,
) -> ScanStream {
    let ScanJob { plan, encoding, caller } = job;
    let (sender, receiver) = mpsc::channel(BATCHES_AHEAD);
    let shared = Arc::new(Shared::default());
    let limits = admission.limits();
    let watch = Watch {
        shared: Arc::clone(&shared),
        admission: admission.clone(),
        deadline: limits.query_budget.map(|budget| (Instant::now() + budget, budget)),
    };
    let send_timeout = limits.send_timeout;
    let runtime = tokio::runtime::Handle::current();
    let active = ScanGuard::start(&target.active);
    // The scan's span is a child of the call's, on the scan's own thread.
    let call = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let (_slot, _active) = (slot, active);
        let span = tracing::info_span!(parent: &call, "scan", product = target.product, caller = %caller);
        let _entered = span.enter();
        let mut scan = Scan::new(&target, &plan, encoding, sender, watch, send_timeout, runtime);
        let outcome = scan.run();
        let (sent, bytes) = (scan.sent, scan.bytes);
        let ended = match outcome {
            Ok(()) => {
                tracing::info!(rows = sent, "query finished");
                Ended::Served
            }
            Err(Stop::ClientGone) => {
                tracing::info!(rows = sent, "query stopped: the client went away");
                Ended::Cancelled
            }
            Err(stop) => {
                tracing::info!(rows = sent, reason = ?stop, "query stopped");
                scan.watch.admission.count_cut(stop.label());
                let status = stop_status(stop, sent);
                let detail = status.as_ref().map(|s| s.message().to_owned()).unwrap_or_default();
                if let Some(status) = status {
                    *scan.watch.shared.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
                }
                Ended::Failed(detail)
            }
        };
        if let Some(on_end) = on_end {
            on_end(ended, sent, bytes);
        }
    });
    ScanStream { receiver, shared, _stream: stream, finished: false }
}

/// One scan in progress.
struct Scan<'a> {
    target: &'a ScanTarget,
    plan: &'a QueryPlan,
    sender: mpsc::Sender<Pieces>,
    watch: Watch,
    send_timeout: Duration,
    runtime: tokio::runtime::Handle,
    sent: u64,
    bytes: u64,
    writer: BatchWriter,
    /// The load read (from `begin`).
    load: u64,
    /// A page holds at most page_size rows; one more tells whether another page follows.
    page_size: Option<u64>,
    last_key: Vec<Value>,
    in_batch: u64,
    more: bool,
    /// The span of the batch being read and encoded.
    encoding: Option<tracing::span::EnteredSpan>,
}

impl<'a> Scan<'a> {
    fn new(
        target: &'a ScanTarget,
        plan: &'a QueryPlan,
        encoding: Encoding,
        sender: mpsc::Sender<Pieces>,
        watch: Watch,
        send_timeout: Duration,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let schema = &target.schema;
        let columns = plan.projection.iter().map(|&c| &schema.columns[c]);
        let writer = match encoding {
            Encoding::Protobuf => BatchWriter::Protobuf {
                encoder: RowEncoder::new(columns, &plan.pseudonymized, plan.pseudonyms.clone()),
                batch: Vec::with_capacity(BATCH_BYTES + 64 * 1024),
                row: Vec::with_capacity(4096),
                rows_field: target.rows_field,
                token_field: target.token_field,
            },
            Encoding::Arrow => {
                let schema = arrow_schema(&target.product, columns, &plan.pseudonymized, &plan.withheld);
                BatchWriter::Arrow(Box::new(ArrowBatch::new(
                    schema,
                    &plan.pseudonymized,
                    plan.pseudonyms.clone(),
                )))
            }
        };
        Self {
            target,
            plan,
            sender,
            watch,
            send_timeout,
            runtime,
            sent: 0,
            bytes: 0,
            writer,
            load: 0,
            page_size: plan.page,
            last_key: Vec::with_capacity(plan.sort.len()),
            in_batch: 0,
            more: false,
            encoding: None,
        }
    }

    /// Runs the plan through the store, then sends what is left.
    fn run(&mut self) -> Result<(), Stop> {
        if let BatchWriter::Arrow(batch) = &mut self.writer {
            let schema = batch.schema_message();
            self.send(schema)?;
        }
        let watch = self.watch.clone();
        let check = Arc::new(move || watch.reason().is_some());
        let target = self.target;
        target.store.scan(target.table(), self.plan, self, check)?;
        // A stream sends no empty batch; a page is sent even empty, with a
        // token only when another page follows.
        if self.in_batch > 0 || self.page_size.is_some() {
            self.flush(self.page_size.is_none() || self.more)?;
        }
        Ok(())
    }
}

impl RowSink for Scan<'_> {
    fn begin(&mut self, load: u64) -> Result<(), Stop> {
        if self.plan.resumed_load.is_some_and(|resumed| resumed != load) {
            return Err(Stop::Failed(DomainError::Aborted(format!(
                "resume_token: the data of {} changed since this token was issued (it was reloaded or \
                 rebuilt); run the query again from the start, without a resume_token",
                self.target.product
            ))));
        }
        if self.plan.part_load.is_some_and(|planned| planned != load) {
            return Err(Stop::Failed(DomainError::Aborted(format!(
                "ticket: the data of {} changed since GetFlightInfo split this read into parts (it was \
                 reloaded or rebuilt); ask GetFlightInfo for new tickets",
                self.target.product
            ))));
        }
        self.load = load;
        Ok(())
    }

    fn row(&mut self, row: &impl CellRow) -> Result<bool, Stop> {
        if self.page_size.is_some_and(|size| self.in_batch == size) {
            self.more = true;
            return Ok(false);
        }
        if self.encoding.is_none() {
            self.encoding = Some(tracing::info_span!("encode").entered());
        }
        self.writer.row(row)?;
        read_key(row, self.plan.projection.len(), self.plan.sort.len(), &mut self.last_key)?;
        self.in_batch += 1;
        if self.page_size.is_none() && self.writer.is_full() {
            self.flush(true)?;
        }
        Ok(true)
    }

    fn interrupted(&self) -> Option<Stop> {
        self.watch.reason()
    }
}

impl Scan<'_> {
    /// Sends the batch, ended with the resume token after its last row
    /// when `resumable`, waiting for the client at most the send timeout
    /// (and never past the query's budget).
    fn flush(&mut self, resumable: bool) -> Result<(), Stop> {
        let sent = self.sent + self.in_batch;
        let token = (resumable && self.in_batch > 0)
            .then(|| self.target.tokens.issue(&self.plan.point(self.last_key.clone(), sent, self.load)));
        let batch = self.writer.finish(token.as_deref().unwrap_or_default().as_bytes())?;
        self.encoding = None;
        self.send(batch)?;
        self.sent = sent;
        self.in_batch = 0;
        Ok(())
    }

    /// Sends one message, waiting for the client at most the send timeout
    /// (and never past the query's budget).
    fn send(&mut self, message: Pieces) -> Result<(), Stop> {
        let size = message.len() as u64;
        let mut wait = self.send_timeout;
        if let Some((at, _)) = self.watch.deadline {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        let mut cut = self.watch.admission.cut_signal();
        let sending = async {
            tokio::select! {
                sent = tokio::time::timeout(wait, self.sender.send(message)) => Some(sent),
                _ = cut.wait_for(|cut| *cut) => None,
            }
        };
        match self.runtime.block_on(sending) {
            Some(Ok(Ok(()))) => {
                self.bytes += size;
                Ok(())
            }
            Some(Ok(Err(_))) => Err(Stop::ClientGone),
            Some(Err(_)) => Err(self.watch.reason().unwrap_or(Stop::Stalled(self.send_timeout))),
            None => Err(Stop::Shutdown),
        }
    }
}

/// Where a scan's rows are written, batch by batch.
enum BatchWriter {
    /// Row messages gathered into a `QueryResponse`.
    Protobuf {
        encoder: RowEncoder,
        /// The `QueryResponse` being written.
        batch: Vec<u8>,
        /// The row message being written.
        row: Vec<u8>,
        rows_field: u32,
        token_field: u32,
    },
    /// Columns of an Arrow record batch.
    Arrow(Box<ArrowBatch>),
}

impl BatchWriter {
    #[inline]
    fn row(&mut self, cells: &impl CellRow) -> Result<()> {
        match self {
            BatchWriter::Protobuf { encoder, batch, row, rows_field, .. } => {
                row.clear();
                encoder.encode(cells, row)?;
                put_len_field(batch, *rows_field, row);
                Ok(())
            }
            BatchWriter::Arrow(arrow) => arrow.row(cells),
        }
    }

    fn is_full(&self) -> bool {
        match self {
            BatchWriter::Protobuf { batch, .. } => batch.len() >= BATCH_BYTES,
            BatchWriter::Arrow(arrow) => arrow.is_full(),
        }
    }

    /// The message of the rows written since the last, ended with `token`
    /// (empty: none).
    fn finish(&mut self, token: &[u8]) -> Result<Pieces> {
        match self {
            BatchWriter::Protobuf { batch, token_field, .. } => {
                if !token.is_empty() {
                    put_len_field(batch, *token_field, token);
                }
                let bytes = Bytes::copy_from_slice(batch);
                batch.clear();
                Ok(bytes.into())
            }
            BatchWriter::Arrow(arrow) => arrow.finish(token),
        }
    }
}

/// Copies the sort key of `row` (its columns from `start`) into `key`,
/// reusing string buffers.
fn read_key(row: &impl CellRow, start: usize, len: usize, key: &mut Vec<Value>) -> Result<()> {
    key.resize(len, Value::Null);
    for (i, slot) in key.iter_mut().enumerate() {
        match row.cell(start + i)? {
            Cell::Text(text) => {
                let text = String::from_utf8_lossy(text);
                match slot {
                    Value::Text(existing) => {
                        existing.clear();
                        existing.push_str(&text);
                    }
                    other => *other = Value::Text(text.into_owned()),
                }
            }
            Cell::Integer(n) => *slot = Value::Integer(n),
            Cell::Real(x) => *slot = Value::Real(x),
            // Storage gives none of the wire's other kinds.
            Cell::Unsigned(n) => *slot = Value::Integer(n as i64),
            Cell::Bool(b) => *slot = Value::Integer(i64::from(b)),
            Cell::Float(x) => *slot = Value::Real(f64::from(x)),
            Cell::Null => *slot = Value::Null,
        }
    }
    Ok(())
}

/// Counts a scan as running while it lives.
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
