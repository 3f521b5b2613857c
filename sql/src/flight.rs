//! Reading a product over its domain's Arrow Flight service: planning the
//! query (`GetFlightInfo`: the schema this caller gets and a sealed ticket
//! per part of the read: [`FlightPlan`]), then redeeming the tickets
//! (`DoGet`) batch by batch, one after the other or each part on its own to
//! read them side by side. When a replica fails mid-stream the read goes
//! on at the next one from the last batch's resume token, so every row
//! arrives exactly once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::{FlightClient, FlightDescriptor, FlightInfo, Ticket};
use arrow_schema::{Schema, SchemaRef};
use futures_util::StreamExt;
use mesh_contracts::product::FlightTicket;
use mesh_grpc::MeshChannel;
use prost::Message;
use tonic::Status;

use crate::Replicas;

/// What to read of a product: the mesh's query, in its filter language.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlightQuery {
    /// The product id, e.g. `payment.card_spending`.
    pub product: String,
    /// A filter in the mesh's filter language (empty: every row).
    pub filter: String,
    /// The columns to read (empty: every column the caller may see).
    pub select: Vec<String>,
    /// The order, e.g. `tot_use_am desc` (empty: the key's).
    pub order_by: String,
    /// The most rows to read (0: no limit).
    pub limit: u64,
}

impl FlightQuery {
    /// The Flight descriptor of this query (a JSON command).
    pub fn descriptor(&self) -> FlightDescriptor {
        let command = serde_json::json!({
            "product": self.product,
            "filter": self.filter,
            "select": self.select,
            "order_by": self.order_by,
            "limit": self.limit,
        });
        FlightDescriptor::new_cmd(command.to_string())
    }
}

/// A replica failed and the read goes on at another.
pub struct Failover<'a> {
    /// The endpoint that failed.
    pub failed: &'a str,
    /// Why, in its words.
    pub reason: &'a str,
    /// Rows read before it failed.
    pub rows: u64,
    /// The endpoint the read goes on at.
    pub next: &'a str,
}

/// How reads call the domains.
#[derive(Clone)]
pub struct ReadSettings {
    /// Connecting, planning and the start of a stream give up after this long.
    pub timeout: Duration,
    /// A stream that sends nothing for this long once started fails.
    pub idle_timeout: Duration,
    /// Told each time a read goes on at another replica.
    pub on_failover: Arc<dyn Fn(&Failover<'_>) + Send + Sync>,
}

impl std::fmt::Debug for ReadSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadSettings({:?}, idle {:?})", self.timeout, self.idle_timeout)
    }
}

impl ReadSettings {
    /// Moves `replicas` on after `status` when another may serve, telling
    /// `on_failover`.
    fn fail_over(&self, replicas: &mut Replicas, status: &Status, rows: u64) -> bool {
        let failed = replicas.endpoint.clone();
        if !replicas.fail_over(status) {
            return false;
        }
        (self.on_failover)(&Failover {
            failed: &failed,
            reason: status.message(),
            rows,
            next: &replicas.endpoint,
        });
        true
    }
}

/// The schema `product` has for the caller (withheld columns left out,
/// named in the schema's metadata), asked of its domain.
pub async fn schema_of(
    replicas: &mut Replicas,
    product: &str,
    settings: &ReadSettings,
) -> Result<SchemaRef, Status> {
    let descriptor = FlightDescriptor::new_path(vec![product.to_owned()]);
    loop {
        let mut client = client(replicas, settings)?;
        match answer(client.get_schema(descriptor.clone()), replicas, settings).await {
            Ok(schema) => return Ok(Arc::new(schema)),
            Err(refused) if settings.fail_over(replicas, &refused, 0) => {}
            Err(refused) => return Err(refused),
        }
    }
}

/// The most parts a read may come in: a domain that planned more is not
/// read (a mesh domain splits in at most 64).
pub const MAX_PARTS: usize = 64;

/// A plan older than this is asked for again before a part starts: its
/// tickets expire 10 minutes after the domain sealed them, unless the
/// domain says otherwise (`--flight-ticket-lifetime`; a ticket refused as
/// expired has the read planned again too).
const FRESH_FOR: Duration = Duration::from_secs(8 * 60);

/// A query as the domain planned it: the schema and a ticket per part of
/// the read, none redeemed yet. Tickets can be redeemed again until they
/// expire, so one plan gives as many reads as asked.
#[derive(Clone)]
pub struct FlightPlan {
    replicas: Replicas,
    settings: ReadSettings,
    query: FlightQuery,
    schema: SchemaRef,
    tickets: Vec<FlightTicket>,
    /// The domain's tag of the load a read in parts was planned on
    /// (`app_metadata`; empty for a read in one part).
    load: prost::bytes::Bytes,
    planned_at: Instant,
}

impl FlightPlan {
    /// Plans `query` at the first replica that answers.
    pub async fn new(
        mut replicas: Replicas,
        query: &FlightQuery,
        settings: ReadSettings,
    ) -> Result<Self, Status> {
        let descriptor = query.descriptor();
        let info = loop {
            let mut client = client(&replicas, &settings)?;
            match answer(client.get_flight_info(descriptor.clone()), &replicas, &settings).await {
                Ok(info) => break info,
                Err(refused) if settings.fail_over(&mut replicas, &refused, 0) => {}
                Err(refused) => return Err(refused),
            }
        };
        let schema = info.clone().try_decode_schema().map_err(|e| {
            Status::internal(format!("{} sent a schema that cannot be read: {e}", replicas.endpoint))
        })?;
        let tickets = tickets(&info).map_err(|problem| {
            Status::internal(format!(
                "{} planned the read of {} {problem}; its domain is not serving as a mesh domain does",
                replicas.endpoint, query.product
            ))
        })?;
        let (query, load, planned_at) = (query.clone(), info.app_metadata, Instant::now());
        Ok(Self { replicas, settings, query, schema: Arc::new(schema), tickets, load, planned_at })
    }

    /// This plan, or the same read planned again if its tickets are about
    /// to expire (refused if the domain now plans other columns or parts).
    pub async fn fresh(self) -> Result<Self, Status> {
        if self.planned_at.elapsed() < FRESH_FOR {
            return Ok(self);
        }
        self.planned_again().await
    }

    /// The same read planned again, with new tickets for the same parts
    /// (refused if the domain now plans other columns, parts or a load).
    async fn planned_again(&self) -> Result<Self, Status> {
        let again = Self::new(self.replicas.clone(), &self.query, self.settings.clone()).await?;
        if again.schema.fields() != self.schema.fields()
            || again.part_count() != self.part_count()
            || again.load != self.load
        {
            return Err(Status::aborted(format!(
                "{} changed while the query ran (its columns or its data); run the query again",
                self.query.product
            )));
        }
        Ok(again)
    }

    /// How many parts the domain split the read into.
    pub fn part_count(&self) -> usize {
        self.tickets.len()
    }

    /// The replica that planned the read, where it starts.
    pub fn endpoint(&self) -> &str {
        &self.replicas.endpoint
    }

    /// A read of every part, one after the other.
    pub fn read(&self) -> FlightRead {
        self.reading((0..self.part_count()).collect())
    }

    /// A read of the parts `i`, `i + of`, `i + 2 * of`, ... one after the
    /// other: the `of` reads side by side give the rows [`FlightPlan::read`]
    /// would.
    pub fn group(&self, i: usize, of: usize) -> FlightRead {
        self.reading((0..self.part_count()).skip(i).step_by(of.max(1)).collect())
    }

    fn reading(&self, mut parts: VecDeque<usize>) -> FlightRead {
        FlightRead {
            plan: self.clone(),
            part: parts.pop_front(),
            later: parts,
            resume_token: String::new(),
            stream: None,
            rows: 0,
        }
    }
}

/// One query being read over Flight: parts of its plan one after the
/// other, the plan made again when its tickets expire (a slow reader, a
/// replica's death late in a long read).
pub struct FlightRead {
    /// The plan, its replicas moved on past those that failed.
    plan: FlightPlan,
    /// The part being read (none: the read is of no part).
    part: Option<usize>,
    /// The parts read after this one.
    later: VecDeque<usize>,
    /// Where the current part goes on: the last batch's `app_metadata`.
    resume_token: String,
    stream: Option<FlightDataDecoder>,
    rows: u64,
}

impl FlightRead {
    /// Plans `query` at the first replica that answers, to read every part
    /// one after the other.
    pub async fn plan(
        replicas: Replicas,
        query: &FlightQuery,
        settings: ReadSettings,
    ) -> Result<Self, Status> {
        Ok(FlightPlan::new(replicas, query, settings).await?.read())
    }

    /// The schema the rows come in.
    pub fn schema(&self) -> &SchemaRef {
        &self.plan.schema
    }

    /// The columns the caller's agreement left out, if any.
    pub fn withheld(&self) -> Option<&str> {
        withheld(&self.plan.schema)
    }

    /// The next batch, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<RecordBatch>, Status> {
        loop {
            let Some(part) = self.part else { return Ok(None) };
            if self.stream.is_none() {
                self.stream = Some(self.do_get(part).await?);
            }
            let Some(stream) = self.stream.as_mut() else { continue };
            let (replicas, settings) = (&mut self.plan.replicas, &self.plan.settings);
            let next = match tokio::time::timeout(settings.idle_timeout, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "{} sent nothing for {:?} after {} rows; retry later",
                        replicas.endpoint, settings.idle_timeout, self.rows
                    )));
                }
            };
            let data = match next.map(|d| d.map_err(status)) {
                None => {
                    (self.part, self.stream) = (self.later.pop_front(), None);
                    self.resume_token.clear();
                    continue;
                }
                Some(Ok(data)) => data,
                Some(Err(failed)) if settings.fail_over(replicas, &failed, self.rows) => {
                    self.stream = None;
                    continue;
                }
                Some(Err(failed)) => return Err(failed),
            };
            match data.payload {
                // A replica gone on to may serve another contract version, or
                // the grant may have changed: one read must not mix schemas.
                DecodedPayload::Schema(sent) if sent.fields() != self.plan.schema.fields() => {
                    return Err(Status::aborted(format!(
                        "{} sent other columns than the query was planned with, after {} rows; run the query again",
                        replicas.endpoint, self.rows
                    )));
                }
                DecodedPayload::RecordBatch(batch) => {
                    self.rows += batch.num_rows() as u64;
                    self.resume_token = String::from_utf8_lossy(&data.inner.app_metadata).into_owned();
                    return Ok(Some(batch));
                }
                _ => {}
            }
        }
    }

    /// Redeems the ticket of `part` (with the resume token) at the current
    /// replica, or the next that answers; with new tickets when the plan's
    /// are about to expire or a replica says they have.
    async fn do_get(&mut self, part: usize) -> Result<FlightDataDecoder, Status> {
        let mut planned_again = false;
        loop {
            if !planned_again && self.plan.planned_at.elapsed() >= FRESH_FOR {
                self.plan = self.plan.planned_again().await?;
                planned_again = true;
            }
            let ticket = FlightTicket {
                resume_token: self.resume_token.clone(),
                ..self.plan.tickets.get(part).cloned().unwrap_or_default()
            };
            let (replicas, settings) = (&mut self.plan.replicas, &self.plan.settings);
            let mut client = client(replicas, settings)?;
            match answer(client.do_get(Ticket::new(ticket.encode_to_vec())), replicas, settings).await {
                Ok(stream) => return Ok(stream.into_inner()),
                Err(refused) if !planned_again && expired(&refused) => {
                    self.plan = self.plan.planned_again().await?;
                    planned_again = true;
                }
                Err(refused) if settings.fail_over(replicas, &refused, self.rows) => {}
                Err(refused) => return Err(refused),
            }
        }
    }
}

/// Whether `status` is a domain's refusal of a ticket past its lifetime
/// (`FAILED_PRECONDITION`, "ticket: it expired ...").
fn expired(status: &Status) -> bool {
    status.code() == tonic::Code::FailedPrecondition && status.message().starts_with("ticket: it expired")
}

/// The columns `schema`'s metadata says were left out, if any.
pub fn withheld(schema: &Schema) -> Option<&str> {
    schema
        .metadata()
        .get(mesh_contracts::arrow_metadata::WITHHELD_COLUMNS)
        .map(String::as_str)
        .filter(|w| !w.is_empty())
}

/// A Flight client of the replicas' current endpoint.
fn client(replicas: &Replicas, settings: &ReadSettings) -> Result<FlightClient<MeshChannel>, Status> {
    let channel =
        mesh_grpc::client::stream_channel(&replicas.endpoint, settings.timeout, &replicas.credentials)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(FlightClient::new(channel))
}

/// The answer of one call to a replica, within the settings' timeout.
async fn answer<T>(
    call: impl Future<Output = Result<T, FlightError>>,
    replicas: &Replicas,
    settings: &ReadSettings,
) -> Result<T, Status> {
    match tokio::time::timeout(settings.timeout, call).await {
        Ok(answered) => answered.map_err(status),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "{} did not answer within {:?}; retry later",
            replicas.endpoint, settings.timeout
        ))),
    }
}

/// The mesh tickets of the info's endpoints, in order: 1 to [`MAX_PARTS`].
fn tickets(info: &FlightInfo) -> Result<Vec<FlightTicket>, String> {
    let parts = info.endpoint.len();
    if !(1..=MAX_PARTS).contains(&parts) {
        return Err(format!("in {parts} parts, where a read has 1 to {MAX_PARTS}"));
    }
    info.endpoint
        .iter()
        .map(|endpoint| {
            endpoint
                .ticket
                .as_ref()
                .and_then(|t| FlightTicket::decode(t.ticket.clone()).ok())
                .ok_or_else(|| "with an endpoint that holds no mesh ticket".to_owned())
        })
        .collect()
}

/// The gRPC status of a Flight error.
fn status(error: FlightError) -> Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => Status::internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use arrow_flight::FlightEndpoint;

    use super::*;

    fn info(parts: usize) -> FlightInfo {
        (0..parts).fold(FlightInfo::new(), |info, i| {
            let ticket = FlightTicket { sealed: format!("part {i}"), resume_token: String::new() };
            info.with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.encode_to_vec())))
        })
    }

    fn plan(parts: usize) -> FlightPlan {
        FlightPlan {
            replicas: Replicas {
                endpoint: "http://127.0.0.1:1".into(),
                fallbacks: Vec::new(),
                credentials: Default::default(),
            },
            settings: ReadSettings {
                timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(1),
                on_failover: Arc::new(|_| {}),
            },
            query: FlightQuery::default(),
            schema: Arc::new(Schema::empty()),
            tickets: tickets(&info(parts)).unwrap(),
            load: prost::bytes::Bytes::new(),
            planned_at: Instant::now(),
        }
    }

    fn sealed(read: &FlightRead) -> Vec<String> {
        read.part.iter().chain(&read.later).map(|&i| read.plan.tickets[i].sealed.clone()).collect()
    }

    #[test]
    fn a_domain_planning_no_part_or_too_many_is_not_read() {
        assert_eq!(tickets(&info(0)).unwrap_err(), "in 0 parts, where a read has 1 to 64");
        assert_eq!(tickets(&info(MAX_PARTS + 1)).unwrap_err(), "in 65 parts, where a read has 1 to 64");
        assert_eq!(tickets(&info(MAX_PARTS)).unwrap().len(), MAX_PARTS);
        let garbled =
            FlightInfo::new().with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(vec![0xff])));
        assert_eq!(tickets(&garbled).unwrap_err(), "with an endpoint that holds no mesh ticket");
    }

    #[test]
    fn groups_of_parts_read_every_part_once() {
        let plan = plan(5);
        assert_eq!(sealed(&plan.read()), ["part 0", "part 1", "part 2", "part 3", "part 4"]);
        assert_eq!(sealed(&plan.group(0, 2)), ["part 0", "part 2", "part 4"]);
        assert_eq!(sealed(&plan.group(1, 2)), ["part 1", "part 3"]);
        assert_eq!(sealed(&plan.group(0, 1)), sealed(&plan.read()));
    }
}
