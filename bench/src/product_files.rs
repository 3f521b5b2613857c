//! The `product-files` group: `payment.card_spending` served by the
//! generic domain server from its product file (the bench's mesh) against
//! the same product declared in Rust and served by the runtime directly
//! (the way a compiled domain served it), over the same SQLite file in the
//! same run: full export and the selective query; and the time from
//! starting `mesh-domain` on a 47-column product file whose data is loaded
//! to its endpoint serving in a registry.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, ServingStatus};
use mesh_runtime::{DomainArgs, DomainStore, Product, ProductService, ProductSpec};
use tokio::net::TcpListener;

use crate::Run;
use crate::latency::{percentiles, selective_query};
use crate::memory::PaymentProcess;
use crate::mesh::registry_process;
use crate::postgres::cli_export;
use crate::report::{Figure, ms, per_second};
use crate::stream::rate;

/// `payment.card_spending` as the compiled payment domain declared it.
fn compiled_spec() -> ProductSpec {
    ProductSpec::new("payment.card_spending", "woori.payment.v1.CardSpendingService", "card_spending")
        .key(&["bas_yh", "seq"])
        .indexes(&["seq"])
        .amounts(&woori_data::layout::AMOUNT_COLUMNS)
}

/// Serves the compiled declaration over the mesh's payment database on a
/// port of its own (not registered) until the returned sender is dropped;
/// its URL.
async fn serve_compiled(data: &Path, scratch: &Path) -> Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let store = DomainStore::open(&data.join("payment").join("payment.sqlite"))?
        .with_readers(mesh_runtime::ServeLimits::default().max_scans);
    let product = Product::new(compiled_spec(), store)?;
    let args = DomainArgs {
        data_dir: Some(scratch.to_path_buf()),
        registry: "http://127.0.0.1:9".to_owned(),
        auth: mesh_grpc::AuthArgs::local(data.join("issuer").join("jwks.json")),
        pseudonym_key: Some(data.join("pseudonym.key")),
        ..DomainArgs::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let services = vec![ProductService::new(product, Default::default())];
        mesh_runtime::hosting::run_domain(listener, services, &args, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok((url, stop))
}

/// Seconds from spawning `mesh-domain` on the mesh's payment product file
/// (data loaded) to its endpoint serving in a registry of its own.
fn start_to_serving(data: &Path, token: &str) -> Result<f64> {
    let registry_dir = tempfile::tempdir_in(data)?;
    let (mut registry, registry_url) = registry_process(data, registry_dir.path(), &[])?;
    let product = data.join("products/payment/card_spending.product.yaml").display().to_string();
    let payment = data.join("payment").display().to_string();
    let started = Instant::now();
    let domain = PaymentProcess::start(
        data,
        &registry_url,
        &["--product".into(), product, "--data-dir".into(), payment],
    )?;
    let serving = tokio::runtime::Handle::current().block_on(async {
        let credentials = mesh_grpc::Credentials::token(token)?;
        let mut catalog = CatalogServiceClient::new(crate::mesh::connect(&registry_url, &credentials).await?);
        loop {
            let request = GetProductRequest { name: "payment.card_spending".into(), ..Default::default() };
            if let Ok(found) = catalog.get_product(request).await {
                let endpoints = found.into_inner().product.unwrap_or_default().endpoints;
                if endpoints.iter().any(|e| e.status() == ServingStatus::Serving) {
                    return Ok::<_, anyhow::Error>(started.elapsed().as_secs_f64());
                }
            }
            ensure!(started.elapsed() < Duration::from_secs(60), "mesh-domain never served");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    drop(domain);
    let _ = registry.kill();
    let _ = registry.wait();
    serving
}

/// The figures of this group (`--only product-files`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let scratch = tempfile::tempdir_in(&run.data)?;
    let (compiled_url, _stop) = serve_compiled(&run.data, scratch.path()).await?;
    let generic_url = run.mesh.payment_url.clone();
    let rows = run.mesh.payment.describe()?.row_count as u64;
    let export = |url: &str| cli_export(&run.mesh.registry, &run.mesh.token, url);
    // Alternated, best of two each: the machine's noise falls on both.
    let (mut generic_s, mut compiled_s) = (f64::MAX, f64::MAX);
    for _ in 0..2 {
        compiled_s = compiled_s.min(export(&compiled_url)?);
        generic_s = generic_s.min(export(&generic_url)?);
    }
    let (generic, compiled) = (rate(rows, generic_s), rate(rows, compiled_s));
    figures.push(Figure {
        name: "product file: full export, generic server vs compiled",
        measured: per_second(generic),
        baseline: per_second(compiled),
        ratio: Some(generic / compiled),
        target: ">= 0.95",
        met: Some(generic / compiled >= 0.95),
    });
    let at_payment = run.mesh.at("payment")?;
    let p50 = |samples| percentiles(samples).0;
    let (mut generic_p50, mut compiled_p50) = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        let (query, _) =
            selective_query(&compiled_url, &at_payment, "0000012345", "2024Q3", run.calls).await?;
        compiled_p50 = compiled_p50.min(p50(query));
        let (query, _) =
            selective_query(&generic_url, &at_payment, "0000012345", "2024Q3", run.calls).await?;
        generic_p50 = generic_p50.min(p50(query));
    }
    let ratio = generic_p50.as_secs_f64() / compiled_p50.as_secs_f64();
    figures.push(Figure {
        name: "product file: selective query p50, generic vs compiled",
        measured: ms(generic_p50),
        baseline: ms(compiled_p50),
        ratio: Some(ratio),
        target: "<= 1.1",
        met: Some(ratio <= 1.1),
    });
    let (data, token) = (run.data.clone(), run.mesh.token.clone());
    let start_s = tokio::task::spawn_blocking(move || start_to_serving(&data, &token))
        .await
        .context("the start task")??;
    figures.push(Figure {
        name: "product file (47 columns, data loaded): start to serving",
        measured: format!("{:.0} ms", start_s * 1000.0),
        baseline: "1 s".to_owned(),
        ratio: Some(start_s),
        target: "< 1 s",
        met: Some(start_s < 1.0),
    });
    Ok(figures)
}
