//! Arrow Flight on a domain's own port: the third face of the same read as
//! gRPC `Query` and REST `rows`, behind the same authentication, agreements,
//! pseudonyms, row scopes, admission, budgets and read log.
//!
//! - `GetFlightInfo` takes a descriptor naming a product and a query
//!   ([`command`]) and answers the Arrow schema the caller would receive
//!   and its endpoints, whose locations are the advertised URLs of every
//!   serving replica of the product (any redeems a ticket, see
//!   [`Replicas`]), each with a sealed ticket bound to the caller, the
//!   agreement and the query ([`ticket`]): one for the whole read, or one per part of a
//!   whole-product read by its owners (`query::part`), to be read side by
//!   side; `GetSchema` answers the schema alone.
//! - `DoGet` redeems a ticket: the schema, then record batches built
//!   column by column in the scan's thread, each with the resume token
//!   after its last row as `app_metadata`. A ticket with a resume token
//!   goes on from there, on any replica.
//!
//! Served with the pass-through codec: the batches the scan encodes go to
//! the wire as they are.

pub(crate) mod command;
pub(crate) mod ticket;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, SchemaAsIpc, SchemaResult, Ticket};
use arrow_ipc::writer::IpcWriteOptions;
use arrow_schema::Schema;
use bytes::Bytes;
use mesh_grpc::codec::{Pieces, PiecesCodec};
use mesh_grpc::unary::{BoxFuture, HttpRequest, HttpResponse, UnaryHandler, serve_unary};
use prost::Message;
use tonic::server::{Grpc, ServerStreamingService};
use tonic::{Request, Response, Status};

use crate::error::Result;
use crate::query::part::Partitioning;
use crate::scan::stream::ScanStream;
use crate::serve::output::RowFormat;
use crate::serve::product::Started;
use crate::serve::replicas::Replicas;
use crate::serve::service::{ProductService, Redeemed, read};
use crate::store::{Storage, now_ms};
use command::Asked;
use ticket::{Claim, Tickets};

/// The Flight service's full name.
pub const FLIGHT_SERVICE: &str = "arrow.flight.protocol.FlightService";

/// A domain's Flight service over its products.
#[derive(Clone)]
pub struct FlightFace {
    products: Arc<HashMap<String, ProductService>>,
    tickets: Tickets,
    /// Where this replica redeems tickets, as Flight locations.
    locations: Arc<Vec<String>>,
    /// The other serving replicas of each product.
    replicas: Replicas,
    partitioning: Partitioning,
    /// How long a ticket can be redeemed after it was issued.
    ticket_lifetime: std::time::Duration,
}

impl FlightFace {
    /// Flight over `services` (one domain's, sharing its database),
    /// redeemable at the `advertised` URLs and at the `replicas` for
    /// `ticket_lifetime`, splitting whole-product reads as `partitioning` says.
    pub fn new(
        services: &[ProductService],
        advertised: &[String],
        replicas: Replicas,
        partitioning: Partitioning,
        ticket_lifetime: std::time::Duration,
    ) -> Result<Self> {
        let secret = match services.first() {
            Some(service) => service.product().store.token_secret()?,
            None => Vec::new(),
        };
        Ok(Self {
            products: Arc::new(services.iter().map(|s| (s.product().spec.id.clone(), s.clone())).collect()),
            tickets: Tickets::new(&secret),
            locations: Arc::new(advertised.iter().map(|url| location(url)).collect()),
            replicas,
            partitioning,
            ticket_lifetime,
        })
    }

    /// The service of `product`, or NOT_FOUND naming what is served.
    fn service(&self, product: &str) -> Result<&ProductService, Status> {
        self.products.get(product).ok_or_else(|| {
            Status::not_found(format!(
                "descriptor: this domain serves no product `{product}`; `mesh products` lists every product and \
                 where it is served"
            ))
        })
    }

    /// What the descriptor in `request` asks, planned under the caller's
    /// grant: the descriptor, the schema delivered and what each ticket
    /// claims (one per part of the read when `split`, else one).
    fn planned(
        &self,
        request: Request<Bytes>,
        split: bool,
    ) -> Result<(FlightDescriptor, Schema, Vec<Claim>), Status> {
        let principal = mesh_grpc::auth::layer::caller(request.extensions())?;
        let descriptor = FlightDescriptor::decode(request.into_inner()).map_err(|e| {
            Status::invalid_argument(format!("request is not an arrow.flight.protocol.FlightDescriptor: {e}"))
        })?;
        let Asked { product, query } = command::asked(&descriptor)?;
        let (product, _, governance) = self.service(&product)?.read_path();
        let governance =
            governance.ok_or_else(|| Status::unavailable("this product's access rules are not loaded"))?;
        // A refusal is recorded as Query's would be; a granted plan reads
        // nothing, so only the DoGet that follows is a read.
        let mut audit = governance.audit(&principal, &product);
        audit.format = RowFormat::Arrow.label();
        audit.record.filter = query.filter.clone();
        let grant = match governance.grant(&principal, &product) {
            Ok(grant) => grant,
            Err(error) => return Err(audit.refuse(Status::from(error))),
        };
        audit.record.agreement = grant.agreement.clone().unwrap_or_default();
        audit.record.purpose = grant.purpose.clone();
        let schema = match product.arrow_schema(&query, &grant) {
            Ok(schema) => schema,
            Err(error) => return Err(audit.refuse(Status::from(error))),
        };
        let parts = match split.then(|| product.parts(&query, &grant, self.partitioning)) {
            None => vec![None],
            Some(Ok(parts)) => parts,
            Some(Err(error)) => return Err(audit.refuse(Status::from(error))),
        };
        let claim = Claim {
            product: product.spec.id.to_owned(),
            query: Some(query),
            issuer: principal.issuer.clone(),
            subject: principal.subject.clone(),
            binding: grant.binding.clone(),
            expires_ms: now_ms()
                .saturating_add(i64::try_from(self.ticket_lifetime.as_millis()).unwrap_or(i64::MAX)),
            part: None,
        };
        let claims = parts.into_iter().map(|part| Claim { part, ..claim.clone() }).collect();
        Ok((descriptor, schema, claims))
    }

    /// `GetFlightInfo`: the schema and an endpoint with a ticket per part
    /// of the read. Parts by rowid, in order, hold the rows in the load's
    /// order; parts by keyed order are each in the caller's order, and
    /// the info says they are not ordered among themselves. A read in
    /// parts carries a tag of its load as `app_metadata`. Each endpoint's
    /// locations are every serving replica's, the parts' first locations
    /// going to each replica in turn (this one first), so that clients
    /// reading the parts side by side read from every replica.
    async fn flight_info(&self, request: Request<Bytes>) -> Result<FlightInfo, Status> {
        let (descriptor, schema, claims) = self.planned(request, true)?;
        let keyed = claims.iter().any(|claim| claim.part.as_ref().is_some_and(|part| part.keyed));
        let mut info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("encoding the schema: {e}")))?
            .with_descriptor(descriptor)
            .with_ordered(!keyed)
            .with_total_records(-1)
            .with_total_bytes(-1);
        if let Some(part) = claims.iter().find_map(|claim| claim.part.as_ref()) {
            info = info.with_app_metadata(self.tickets.load_tag(part.load));
        }
        let product = claims.first().map(|claim| claim.product.as_str()).unwrap_or_default();
        // This replica's URLs, then each other serving replica's.
        let mut replicas = vec![self.locations.to_vec()];
        replicas.extend(self.replicas.of(product).iter().map(|url| vec![location(url)]));
        for (i, claim) in claims.iter().enumerate() {
            let ticket = Ticket::new(self.tickets.issue(claim));
            // Parts go first to each replica in turn, then to the others.
            let first = i % replicas.len();
            let order = std::iter::once(first).chain((0..replicas.len()).filter(|&r| r != first));
            let endpoint = order
                .flat_map(|r| &replicas[r])
                .fold(FlightEndpoint::new().with_ticket(ticket), |e, l| e.with_location(l));
            info = info.with_endpoint(endpoint);
        }
        Ok(info)
    }

    /// `GetSchema`: the schema part of `GetFlightInfo`, no ticket sealed.
    async fn schema(&self, request: Request<Bytes>) -> Result<SchemaResult, Status> {
        let (_, schema, _) = self.planned(request, false)?;
        SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e| Status::internal(format!("encoding the schema: {e}")))
    }

    /// `DoGet`: the rows a ticket grants, if its caller redeems it.
    async fn do_get(&self, request: Request<Bytes>) -> Result<ScanStream, Status> {
        let peer = request.remote_addr();
        let principal = mesh_grpc::auth::layer::caller(request.extensions())?;
        let ticket = Ticket::decode(request.into_inner()).map_err(|e| {
            Status::invalid_argument(format!("request is not an arrow.flight.protocol.Ticket: {e}"))
        })?;
        let claim = self.tickets.open(&ticket.ticket).inspect_err(|_| {
            // No product to record it against: the log says who tried.
            tracing::warn!(caller = %principal.subject, peer = ?peer, "a Flight ticket this domain did not issue was refused");
        })?;
        let (product, admission, governance) = self.service(&claim.product)?.read_path();
        let query = claim
            .check(&principal, now_ms(), self.ticket_lifetime)
            .map(|()| claim.query.clone().unwrap_or_default());
        let caller = (&principal, peer);
        let ticket = Redeemed { binding: &claim.binding, part: claim.part.as_ref() };
        let Started { rows, .. } =
            read(&product, &admission, governance, caller, query, RowFormat::Arrow, Some(ticket)).await?;
        Ok(rows)
    }
}

/// The Flight location of an advertised URL: `grpc+tcp://` for `http://`,
/// `grpc+tls://` for `https://`.
fn location(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("grpc+tls://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("grpc+tcp://{rest}")
    } else {
        url.to_owned()
    }
}

/// A unary method answering a prost message.
fn unary<M, F>(face: &FlightFace, method: fn(FlightFace, Request<Bytes>) -> F) -> UnaryHandler
where
    M: Message + 'static,
    F: Future<Output = Result<M, Status>> + Send + 'static,
{
    let face = face.clone();
    Arc::new(move |request| {
        let answered = method(face.clone(), request);
        Box::pin(async move { Ok(Bytes::from(answered.await?.encode_to_vec())) })
    })
}

struct DoGet(FlightFace);

impl ServerStreamingService<Bytes> for DoGet {
    type Response = Pieces;
    type ResponseStream = ScanStream;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let face = self.0.clone();
        Box::pin(async move { Ok(Response::new(face.do_get(request).await?)) })
    }
}

impl tower::Service<HttpRequest> for FlightFace {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        let face = self.clone();
        Box::pin(async move {
            let response = match method.as_str() {
                "GetFlightInfo" => {
                    let handler =
                        unary(&face, |face, request| async move { face.flight_info(request).await });
                    serve_unary(handler, request).await
                }
                "GetSchema" => {
                    let handler = unary(&face, |face, request| async move { face.schema(request).await });
                    serve_unary(handler, request).await
                }
                "DoGet" => Grpc::new(PiecesCodec).server_streaming(DoGet(face), request).await,
                _ => Status::unimplemented(format!(
                    "{FLIGHT_SERVICE}/{method} is not served: a domain answers GetFlightInfo, GetSchema and \
                     DoGet (its products are read-only)"
                ))
                .into_http(),
            };
            Ok(response)
        })
    }
}
