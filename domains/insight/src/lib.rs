//! The insight domain: serves `insight.segment_spending`, card spending per
//! quarter × life stage × province × grade, built by calling the customer and
//! payment domains over gRPC. Segments with too few customers are suppressed.

mod agreements;
pub mod build;
mod follow;

use build::Sources;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mesh_contracts::woori::insight::v1::RefreshResponse;
use mesh_grpc::auth::owner_role;
use mesh_runtime::hosting::run_domain;
use mesh_runtime::service::UnaryHandler;
use mesh_runtime::{DomainArgs, Product, ProductService, ProductSpec, Result};
use prost::Message;
use tokio::net::TcpListener;
use tonic::Status;
use woori_data::layout::BROAD_COLUMNS;

/// The id of the product the domain serves.
pub const SEGMENT_SPENDING: &str = "insight.segment_spending";

/// The `insight.segment_spending` product.
pub fn segment_spending() -> ProductSpec {
    ProductSpec::new(SEGMENT_SPENDING, "woori.insight.v1.SegmentSpendingService", "segment_spending")
        .key(&["bas_yh", "life_stage", "hous_sido_nm", "mbr_rk"])
        .indexes(&["hous_sido_nm", "life_stage", "mbr_rk"])
        .amounts(&AMOUNTS)
}

/// The segment amounts: total, average and the broad categories.
const AMOUNTS: [&str; 12] = woori_data::layout::concat(["tot_use_am", "avg_use_am"], BROAD_COLUMNS);

/// The insight domain's default port.
pub const PORT: u16 = 50053;

/// Flags of the insight domain.
#[derive(Debug, Clone, clap::Args)]
pub struct InsightArgs {
    /// Where the domain listens, keeps its data and registers.
    #[command(flatten)]
    pub domain: DomainArgs,

    /// Segments with fewer customers than this are left out, so no one can be singled out.
    #[arg(long, env = "MESH_INSIGHT_MIN_CUSTOMERS", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    pub min_customers: i64,
}

/// Opens the insight database and prepares the product.
pub fn open(args: &InsightArgs) -> Result<Arc<Product>> {
    Product::new(segment_spending(), args.domain.open_store("insight")?)
}

/// The product with what rebuilding it needs; one rebuild runs at a time.
#[derive(Debug, Clone)]
struct Builder {
    product: Arc<Product>,
    sources: Sources,
    min_customers: i64,
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Builder {
    /// Rebuilds now, or refuses when a rebuild is running.
    async fn rebuild_now(&self) -> std::result::Result<RefreshResponse, Status> {
        let _one_at_a_time = self.running.try_lock().map_err(|_| {
            Status::aborted(
                "a rebuild of insight.segment_spending is already running; call Refresh again when it ends",
            )
        })?;
        build::rebuild(&self.product, &self.sources, self.min_customers).await.map_err(Status::from)
    }

    /// Rebuilds once the one running (if any) has ended.
    async fn rebuild_when_free(&self) -> Result<RefreshResponse> {
        let _one_at_a_time = self.running.lock().await;
        build::rebuild(&self.product, &self.sources, self.min_customers).await
    }
}

/// The product service with its `Refresh` method, for the domain's owners
/// (`owner:insight`) and admins.
fn service(builder: Builder) -> ProductService {
    let product = Arc::clone(&builder.product);
    let refresh: UnaryHandler = Arc::new(move |request: tonic::Request<Bytes>| {
        let builder = builder.clone();
        Box::pin(async move {
            let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
            let needed = owner_role("insight");
            if !caller.has_role_or_admin(&needed) {
                return Err(Status::permission_denied(format!(
                    "`{}` may not rebuild {}: that needs the role `{needed}` or `admin` (mesh whoami shows your roles)",
                    caller.subject, SEGMENT_SPENDING
                )));
            }
            Ok(Bytes::from(builder.rebuild_now().await?.encode_to_vec()))
        })
    });
    ProductService::new(product, HashMap::from([("Refresh".to_owned(), refresh)]))
}

/// Opens the product, then serves and registers it until `shutdown` (see [`serve`]).
pub async fn run(
    args: InsightArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    serve(open(&args)?, &args, listener, shutdown).await
}

/// Serves and registers `product`, rebuilding it at start (retrying while
/// the sources are not yet serving) and whenever its inputs load, until
/// `shutdown`.
pub async fn serve(
    product: Arc<Product>,
    args: &InsightArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let sources = Sources {
        // The sources are found through the first registry.
        registry_url: args.domain.registries().remove(0),
        credentials: args.domain.client_credentials("insight")?,
    };
    let builder =
        Builder { product, sources, min_customers: args.min_customers, running: Default::default() };
    let initial_builder = builder.clone();
    let initial = tokio::spawn(async move {
        let mut wait = Duration::from_millis(500);
        loop {
            match initial_builder.rebuild_when_free().await {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "sources not ready; retrying the build");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
    let following = tokio::spawn(follow::rebuild_on_input_loads(builder.clone()));
    let service = service(builder);
    let served = run_domain(listener, vec![service], &args.domain, shutdown).await;
    initial.abort();
    following.abort();
    served
}
