//! `mesh.product.v1.AuditService` on every domain: the record of reads of
//! its products, for their owners and admins only.

use std::sync::Arc;

use mesh_contracts::product::audit_service_server::AuditService;
use mesh_contracts::product::{GetUsageRequest, GetUsageResponse, ListReadsRequest, ListReadsResponse};
use mesh_grpc::auth::{Principal, owner_role};
use tonic::{Request, Response, Status};

use crate::serve::audit::{AuditLog, usage};
use crate::serve::governance::Governance;
use crate::store::read_log::DAY_MS;

/// The full name of the service.
pub(crate) const AUDIT_SERVICE: &str = "mesh.product.v1.AuditService";
/// Records one listing returns unless asked for another number.
const DEFAULT_PAGE: i64 = 100;
/// The days of usage summed unless asked for others.
const DEFAULT_USAGE_DAYS: i64 = 30;
/// The most days of usage summed at once.
const MAX_USAGE_DAYS: i64 = 400;

/// The reads of one domain's products.
#[derive(Debug, Clone)]
pub(crate) struct Reads {
    governance: Arc<Governance>,
    /// The products served: (id, domain).
    products: Vec<(String, String)>,
    /// Held while a usage summary is computed.
    summing: Arc<tokio::sync::Semaphore>,
}

impl Reads {
    pub(crate) fn new(governance: Arc<Governance>, products: Vec<(String, String)>) -> Self {
        Self { governance, products, summing: Arc::new(tokio::sync::Semaphore::new(1)) }
    }
}

impl Reads {
    /// The read log of `product`, if `caller` may read it: its owners and
    /// admins only; `what` says what was asked for.
    fn log_for(&self, caller: &Principal, product: &str, what: &str) -> Result<(AuditLog, String), Status> {
        let Some((product, domain)) = self.products.iter().find(|(id, _)| id == product) else {
            let served: Vec<&str> = self.products.iter().map(|(id, _)| id.as_str()).collect();
            return Err(Status::not_found(format!(
                "this domain serves no product `{}`; it serves {}",
                mesh_grpc::rest::escape_path(product),
                served.join(", ")
            )));
        };
        let needed = owner_role(domain);
        if !caller.has_role_or_admin(&needed) {
            return Err(Status::permission_denied(format!(
                "`{}` may not read {what} {product}: only its owners may, which needs the role `{needed}` or \
                 `admin` (mesh whoami shows your roles)",
                caller.subject
            )));
        }
        let log = self
            .governance
            .audit_log()
            .cloned()
            .ok_or_else(|| Status::unavailable("this domain keeps no read log"))?;
        Ok((log, product.clone()))
    }

    /// The usage of `product` since `since` (ms since the epoch; 30 days
    /// ago when `None`) with the `slowest` slowest reads (0: the default),
    /// if `caller` owns it: what `GetUsage` and the REST usage path answer.
    pub(crate) async fn usage(
        &self,
        caller: &Principal,
        product: &str,
        since: Option<i64>,
        slowest: i32,
    ) -> Result<GetUsageResponse, Status> {
        let (log, product) = self.log_for(caller, product, "the usage of")?;
        let now = ms(Some(prost_types::Timestamp::from(std::time::SystemTime::now()))).unwrap_or(0);
        let since = since.unwrap_or(now - DEFAULT_USAGE_DAYS * DAY_MS);
        if since > now || since < now.saturating_sub(MAX_USAGE_DAYS * DAY_MS) {
            return Err(Status::invalid_argument(format!(
                "since: give a time in the last {MAX_USAGE_DAYS} days (usage is summed per day)"
            )));
        }
        let slowest = match usize::try_from(slowest) {
            Ok(0) => usage::DEFAULT_SLOWEST,
            Ok(n) if n <= usage::MAX_SLOWEST => n,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "slowest: give 1 to {} (or 0 for {})",
                    usage::MAX_SLOWEST,
                    usage::DEFAULT_SLOWEST
                )));
            }
        };
        // One summary at a time per domain: each reads up to 100,000
        // records. The permit goes with the work, which a caller going
        // away does not stop.
        let one = self.summing.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(
                "another usage summary of this domain is being computed; retry in a few seconds",
            )
        })?;
        tokio::task::spawn_blocking(move || {
            let usage = log.usage(&product, since, slowest);
            drop(one);
            usage
        })
        .await
        .map_err(|e| mesh_grpc::internal_status("usage", &e))?
        .map_err(Status::from)
    }
}

fn ms(timestamp: Option<prost_types::Timestamp>) -> Option<i64> {
    timestamp.map(|t| t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos) / 1_000_000))
}

#[tonic::async_trait]
impl AuditService for Reads {
    async fn list_reads(
        &self,
        request: Request<ListReadsRequest>,
    ) -> Result<Response<ListReadsResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let request = request.into_inner();
        let (log, product) = self.log_for(&caller, &request.product, "who read")?;
        let since = ms(request.since).unwrap_or(0);
        let limit = if request.page_size > 0 { i64::from(request.page_size) } else { DEFAULT_PAGE };
        let principal = request.principal;
        let reads = tokio::task::spawn_blocking(move || log.list(&product, since, &principal, limit))
            .await
            .map_err(|e| mesh_grpc::internal_status("audit", &e))?
            .map_err(Status::from)?;
        Ok(Response::new(ListReadsResponse { reads }))
    }

    async fn get_usage(
        &self,
        request: Request<GetUsageRequest>,
    ) -> Result<Response<GetUsageResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let request = request.into_inner();
        let usage = self.usage(&caller, &request.product, ms(request.since), request.slowest).await?;
        Ok(Response::new(usage))
    }
}
