//! The gRPC side of a product service: `Query`, `Describe` and any extra
//! unary methods, routed by path and served with the pass-through codec.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use mesh_contracts::product::QueryRequest;
use mesh_grpc::codec::{Pieces, PiecesCodec};
pub use mesh_grpc::unary::UnaryHandler;
use mesh_grpc::unary::{BoxFuture, HttpRequest, HttpResponse, serve_unary};
use prost::Message;
use tonic::server::{Grpc, ServerStreamingService};
use tonic::{Request, Response, Status};

use std::net::SocketAddr;

use mesh_grpc::auth::Principal;

use crate::query::part::Part;
use crate::scan::admission::Admission;
use crate::scan::stream::ScanStream;
use crate::serve::governance::Governance;
use crate::serve::output::RowFormat;
use crate::serve::product::{Product, Reader, Started};

/// Serves one product's service.
#[derive(Clone)]
pub struct ProductService {
    product: Arc<Product>,
    extra: Arc<HashMap<String, UnaryHandler>>,
    admission: Admission,
    governance: Option<Arc<Governance>>,
}

impl ProductService {
    /// Serves `product` with `Query` and `Describe`, plus `extra` methods by
    /// name, under the default limits.
    pub fn new(product: Arc<Product>, extra: HashMap<String, UnaryHandler>) -> Self {
        Self { product, extra: Arc::new(extra), admission: Admission::default(), governance: None }
    }

    /// The same service enforcing the agreements and pseudonyms of
    /// `governance` (without it, queries are refused).
    pub fn with_governance(self, governance: Arc<Governance>) -> Self {
        Self { governance: Some(governance), ..self }
    }

    /// The same service admitting queries through `admission` (shared by
    /// the products of one domain).
    pub fn with_admission(self, admission: Admission) -> Self {
        Self { admission, ..self }
    }

    /// The full name of the service, e.g. `woori.payment.v1.CardSpendingService`.
    pub fn name(&self) -> &str {
        &self.product.spec.service
    }

    /// The product served.
    pub fn product(&self) -> Arc<Product> {
        Arc::clone(&self.product)
    }

    /// What a read of the product goes through: the product, the domain's
    /// admission, the agreements.
    pub(crate) fn read_path(&self) -> (Arc<Product>, Admission, Option<&Arc<Governance>>) {
        (Arc::clone(&self.product), self.admission.clone(), self.governance.as_ref())
    }
}

/// One read of the product, whichever face it came through (gRPC `Query`,
/// REST `rows`, Flight `DoGet`): the caller's grant from the agreements,
/// the read recorded in the audit log (a refusal, and a request that did
/// not even decode, too), then the plan and the scan in `format`. With a
/// redeemed Flight `ticket`, the grant must still bind the same caller and
/// agreement, and only the ticket's part is read.
pub(crate) async fn read(
    product: &Arc<Product>,
    admission: &Admission,
    governance: Option<&Arc<Governance>>,
    caller: (&Principal, Option<SocketAddr>),
    query: Result<QueryRequest, Status>,
    format: RowFormat,
    ticket: Option<Redeemed<'_>>,
) -> Result<Started, Status> {
    let (principal, peer) = caller;
    let governance =
        governance.ok_or_else(|| Status::unavailable("this product's access rules are not loaded"))?;
    let mut audit = governance.audit(principal, product);
    audit.format = format.label();
    let query = match query {
        Ok(query) => query,
        Err(status) => return Err(audit.refuse(status)),
    };
    audit.record.filter = query.filter.clone();
    let grant = match governance.grant(principal, product) {
        Ok(grant) => grant,
        Err(error) => {
            tracing::info!(product = product.spec.id, caller = %principal.subject, %error, "query refused");
            return Err(audit.refuse(Status::from(error)));
        }
    };
    if ticket.as_ref().is_some_and(|ticket| ticket.binding != grant.binding) {
        return Err(audit.refuse(Status::failed_precondition(
            "ticket: the agreement it was issued under is no longer the one in force; ask GetFlightInfo for \
             a new ticket",
        )));
    }
    audit.record.agreement = grant.agreement.clone().unwrap_or_default();
    audit.record.purpose = grant.purpose.clone();
    let caller = format!("{} ({})", principal.subject, peer.map(|a| a.to_string()).unwrap_or_default());
    tracing::debug!(product = product.spec.id, %caller, filter = %query.filter, limit = query.limit, "query");
    let reader = Reader { caller: &caller, peer, admission, audit };
    product.query(&query, format, &grant, reader, ticket.and_then(|t| t.part)).await
}

/// What a redeemed Flight ticket holds beside the query: the grant it was
/// issued under and the part of the read it is.
pub(crate) struct Redeemed<'a> {
    pub binding: &'a [u8],
    pub part: Option<&'a Part>,
}

struct QueryMethod(Arc<Product>, Admission, Option<Arc<Governance>>);

impl ServerStreamingService<Bytes> for QueryMethod {
    type Response = Pieces;
    type ResponseStream = ScanStream;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let (product, admission, governance) = (Arc::clone(&self.0), self.1.clone(), self.2.clone());
        Box::pin(async move {
            let peer = request.remote_addr();
            let principal = mesh_grpc::auth::layer::caller(request.extensions())?;
            let query = QueryRequest::decode(request.into_inner()).map_err(|e| {
                Status::invalid_argument(format!("request is not a mesh.product.v1.QueryRequest: {e}"))
            });
            let caller = (&principal, peer);
            let Started { rows, withheld, .. } =
                read(&product, &admission, governance.as_ref(), caller, query, RowFormat::Protobuf, None)
                    .await?;
            let mut response = Response::new(rows);
            if let Ok(value) = withheld.join(",").parse()
                && !withheld.is_empty()
            {
                response.metadata_mut().insert(mesh_contracts::descriptor::WITHHELD_COLUMNS_HEADER, value);
            }
            Ok(response)
        })
    }
}

impl tower::Service<HttpRequest> for ProductService {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        let product = Arc::clone(&self.product);
        let extra = self.extra.get(&method).cloned();
        let (admission, governance) = (self.admission.clone(), self.governance.clone());
        Box::pin(async move {
            let response = match method.as_str() {
                "Query" => {
                    let method = QueryMethod(product, admission, governance);
                    Grpc::new(PiecesCodec).server_streaming(method, request).await
                }
                "Describe" => serve_unary(describe_handler(product), request).await,
                _ => match extra {
                    Some(handler) => serve_unary(handler, request).await,
                    None => Status::unimplemented(format!("method `{method}` is not served")).into_http(),
                },
            };
            Ok(response)
        })
    }
}

/// `Describe`: reads the data status on a blocking thread.
fn describe_handler(product: Arc<Product>) -> UnaryHandler {
    Arc::new(move |_request| {
        let product = Arc::clone(&product);
        Box::pin(async move {
            let described = tokio::task::spawn_blocking(move || product.describe())
                .await
                .map_err(|e| Status::internal(format!("describe task failed: {e}")))?
                .map_err(Status::from)?;
            Ok(Bytes::from(described.encode_to_vec()))
        })
    })
}
