//! The `mesh.catalog.v1.CatalogService` implementation: a file per group of
//! RPCs, this file only routes.

mod authorize;
mod cache;
mod encoded;
mod lifecycle;
mod read;
mod register;
pub(crate) mod visibility;

use std::time::Duration;

use mesh_contracts::catalog::catalog_service_server::CatalogService;
use mesh_contracts::catalog::*;
use mesh_grpc::auth::Principal;
use prost::Message;
use tonic::{Request, Response, Status};

use self::authorize::{Write, authorize};

pub use encoded::{GET_PRODUCT_PATH, get_product_route};

use crate::clock::Clock;
use crate::page_token::PageTokens;
use crate::store::Store;

/// The catalog registry's gRPC service.
#[derive(Debug, Clone)]
pub struct Catalog {
    store: Store,
    tokens: PageTokens,
    lease_ttl: Duration,
    clock: Clock,
    products: std::sync::Arc<cache::ProductCache>,
    /// Endpoints may be `http://` on hosts other than loopback.
    plaintext_endpoints: bool,
    meters: crate::meters::RegistryMeters,
}

impl Catalog {
    /// A catalog over `store`, signing page tokens with `tokens`, granting
    /// leases of `lease_ttl` and telling time by `clock`.
    pub fn new(store: Store, tokens: PageTokens, lease_ttl: Duration, clock: Clock) -> Self {
        Self {
            store,
            tokens,
            lease_ttl,
            clock,
            products: Default::default(),
            plaintext_endpoints: false,
            meters: Default::default(),
        }
    }

    /// The same catalog counting into `meters`.
    pub fn metered(self, meters: crate::meters::RegistryMeters) -> Self {
        Self { meters, ..self }
    }

    /// The same catalog accepting `http://` endpoints on any host: clients
    /// (the web preview among them) would send tokens there in plaintext.
    pub fn allowing_plaintext_endpoints(self, allowed: bool) -> Self {
        Self { plaintext_endpoints: allowed, ..self }
    }
}

impl Catalog {
    /// Drops cached answers as other replicas announce their writes
    /// (`*`: any product may have changed).
    pub fn follow(&self, mut changes: tokio::sync::broadcast::Receiver<String>) {
        let products = std::sync::Arc::clone(&self.products);
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(product) if product == "*" => products.invalidate(),
                    Ok(product) => products.invalidate_product(&product),
                    // Missed some: forget everything.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => products.invalidate(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Runs a handler that writes to the catalog; cached reads are dropped
    /// whatever its outcome.
    async fn writing<T>(
        &self,
        work: impl Future<Output = crate::error::Result<T>>,
    ) -> crate::error::Result<T> {
        let outcome = work.await;
        self.products.invalidate();
        outcome
    }

    /// Runs a handler that writes to `product` alone; only its cached
    /// reads are dropped.
    async fn writing_to<T>(
        &self,
        product: &str,
        work: impl Future<Output = crate::error::Result<T>>,
    ) -> crate::error::Result<T> {
        let outcome = work.await;
        self.products.invalidate_product(product);
        outcome
    }
}

impl Catalog {
    /// Records who made a write that succeeded, in the write log.
    async fn logged<T>(
        &self,
        outcome: crate::error::Result<T>,
        caller: &Principal,
        write: Write,
        product: &str,
    ) -> crate::error::Result<T> {
        if outcome.is_ok() {
            let (subject, product) =
                (caller.subject.clone(), product.trim_start_matches("products/").to_owned());
            self.store
                .write(move |db| {
                    let at = db.now_ms()?;
                    crate::store::writes::record(db, at, &subject, write.verb(), &product)
                })
                .await?;
            tracing::info!(caller = %caller.subject, action = write.verb(), "catalog changed");
        }
        outcome
    }
}

/// The caller of `request`, allowed to make `write` to the product named
/// `name` in `field`; validates the name first so messages name the field.
fn authorized<T>(
    request: &Request<T>,
    write: Write,
    field: &'static str,
    name: &str,
) -> Result<Principal, Status> {
    let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
    let id = crate::validate::product_name(field, name)?;
    authorize(&caller, write, id)?;
    Ok(caller)
}

/// Runs a handler and turns its error into a gRPC status.
async fn respond<T>(work: impl Future<Output = crate::error::Result<T>>) -> Result<Response<T>, Status> {
    work.await.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl CatalogService for Catalog {
    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product_id, endpoint = %request.get_ref().endpoint))]
    async fn register_product(
        &self,
        request: Request<RegisterProductRequest>,
    ) -> Result<Response<RegisterProductResponse>, Status> {
        let registered = async {
            let caller = authorized(&request, Write::Register, "product_id", &request.get_ref().product_id)?;
            let product = request.get_ref().product_id.clone();
            let done = self.writing(self.register(request.into_inner(), &caller.subject)).await;
            respond(self.logged(done, &caller, Write::Register, &product)).await
        }
        .await;
        self.meters.registration(registered.as_ref().err().map(Status::code));
        registered
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().name, endpoint = %request.get_ref().endpoint))]
    async fn renew_lease(
        &self,
        request: Request<RenewLeaseRequest>,
    ) -> Result<Response<RenewLeaseResponse>, Status> {
        let caller = authorized(&request, Write::Renew, "name", &request.get_ref().name)?;
        let product = crate::validate::product_name("name", &request.get_ref().name)?.to_owned();
        respond(self.writing_to(&product, self.renew_lease(request.into_inner(), &caller.subject))).await
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().name, endpoint = %request.get_ref().endpoint))]
    async fn deregister_endpoint(
        &self,
        request: Request<DeregisterEndpointRequest>,
    ) -> Result<Response<DeregisterEndpointResponse>, Status> {
        let caller = authorized(&request, Write::Deregister, "name", &request.get_ref().name)?;
        let product = request.get_ref().name.clone();
        let done = self.writing(self.deregister_endpoint(request.into_inner())).await;
        respond(self.logged(done, &caller, Write::Deregister, &product)).await
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().name))]
    async fn deprecate_product(
        &self,
        request: Request<DeprecateProductRequest>,
    ) -> Result<Response<DeprecateProductResponse>, Status> {
        let caller = authorized(&request, Write::Deprecate, "name", &request.get_ref().name)?;
        let product = request.get_ref().name.clone();
        let done = self.writing(self.deprecate(request.into_inner())).await;
        respond(self.logged(done, &caller, Write::Deprecate, &product)).await
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().name))]
    async fn undeprecate_product(
        &self,
        request: Request<UndeprecateProductRequest>,
    ) -> Result<Response<UndeprecateProductResponse>, Status> {
        let caller = authorized(&request, Write::Undeprecate, "name", &request.get_ref().name)?;
        let product = request.get_ref().name.clone();
        let done = self.writing(self.undeprecate(request.into_inner())).await;
        respond(self.logged(done, &caller, Write::Undeprecate, &product)).await
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().name))]
    async fn delete_product(
        &self,
        request: Request<DeleteProductRequest>,
    ) -> Result<Response<DeleteProductResponse>, Status> {
        let caller = authorized(&request, Write::Delete, "name", &request.get_ref().name)?;
        let product = request.get_ref().name.clone();
        let done = self.writing(self.delete(request.into_inner())).await;
        respond(self.logged(done, &caller, Write::Delete, &product)).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_domains(
        &self,
        request: Request<ListDomainsRequest>,
    ) -> Result<Response<ListDomainsResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        respond(self.list_domains(request.into_inner(), &caller)).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        respond(self.list_products(request.into_inner(), &caller)).await
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().name))]
    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<GetProductResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let encoded = self.get_product_encoded(request.into_inner(), &caller).await.map_err(Status::from)?;
        GetProductResponse::decode(encoded)
            .map(Response::new)
            .map_err(|e| Status::internal(format!("cached answer does not decode: {e}")))
    }

    #[tracing::instrument(skip_all)]
    async fn who_am_i(&self, request: Request<WhoAmIRequest>) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        Ok(Response::new(WhoAmIResponse {
            subject: caller.subject,
            issuer: caller.issuer,
            roles: caller.roles,
        }))
    }
}
