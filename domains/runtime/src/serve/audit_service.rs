//! `mesh.product.v1.AuditService` on every domain: the record of reads of
//! its products, for their owners and admins only.

use std::sync::Arc;

use mesh_contracts::product::audit_service_server::AuditService;
use mesh_contracts::product::{ListReadsRequest, ListReadsResponse};
use mesh_grpc::auth::owner_role;
use tonic::{Request, Response, Status};

use crate::serve::governance::Governance;

/// The full name of the service.
pub(crate) const AUDIT_SERVICE: &str = "mesh.product.v1.AuditService";
/// Records one listing returns unless asked for another number.
const DEFAULT_PAGE: i64 = 100;

/// The reads of one domain's products.
#[derive(Debug, Clone)]
pub(crate) struct Reads {
    governance: Arc<Governance>,
    /// The products served: (id, domain).
    products: Vec<(String, String)>,
}

impl Reads {
    pub(crate) fn new(governance: Arc<Governance>, products: Vec<(String, String)>) -> Self {
        Self { governance, products }
    }
}

#[tonic::async_trait]
impl AuditService for Reads {
    async fn list_reads(
        &self,
        request: Request<ListReadsRequest>,
    ) -> Result<Response<ListReadsResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let request = request.into_inner();
        let Some((product, domain)) = self.products.iter().find(|(id, _)| *id == request.product) else {
            let served: Vec<&str> = self.products.iter().map(|(id, _)| id.as_str()).collect();
            return Err(Status::not_found(format!(
                "this domain serves no product `{}`; it serves {}",
                request.product,
                served.join(", ")
            )));
        };
        let needed = owner_role(domain);
        if !caller.has_role_or_admin(&needed) {
            return Err(Status::permission_denied(format!(
                "`{}` may not read who read {product}: only its owners may, which needs the role `{needed}` or \
                 `admin` (mesh whoami shows your roles)",
                caller.subject
            )));
        }
        let log = self
            .governance
            .audit_log()
            .cloned()
            .ok_or_else(|| Status::unavailable("this domain keeps no read log"))?;
        let since = request
            .since
            .map_or(0, |t| t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos) / 1_000_000));
        let limit = if request.page_size > 0 { i64::from(request.page_size) } else { DEFAULT_PAGE };
        let (principal, product) = (request.principal, product.clone());
        let reads = tokio::task::spawn_blocking(move || log.list(&product, since, &principal, limit))
            .await
            .map_err(|e| mesh_grpc::internal_status("audit", &e))?
            .map_err(Status::from)?;
        Ok(Response::new(ListReadsResponse { reads }))
    }
}
