//! `mesh up`: the registry and the three domains in one process, each on its
//! own port with its own SQLite file, until Ctrl-C.

use std::time::Instant;

use anyhow::{Context, Result};
use mesh_local::{LocalMesh, MeshConfig, Ports};
use woori_data::Generator;

use crate::cli::UpArgs;

/// Starts everything, waits until every product serves, runs until Ctrl-C.
pub(crate) async fn run(args: &UpArgs) -> Result<()> {
    let shutdown = mesh_grpc::shutdown_signal();
    tokio::pin!(shutdown);
    let config = MeshConfig {
        ports: Ports::Base(args.base_port),
        generator: Generator { customers: args.customers, quarters: args.quarters, ..Generator::default() },
        lease_ttl: args.lease_ttl,
        limits: args.limits.clone(),
        ..MeshConfig::new(&args.data_dir)
    };
    eprintln!("starting the mesh in {} (first start generates the data)...", args.data_dir.display());
    let started = Instant::now();
    let mesh = tokio::select! {
        mesh = LocalMesh::start(config) => mesh.context("the mesh did not start")?,
        _ = &mut shutdown => {
            eprintln!("stopped before the mesh was ready");
            return Ok(());
        }
    };
    eprintln!("every product is serving ({:.1} s)", started.elapsed().as_secs_f64());
    print_next_steps(&mesh, args.base_port);
    (&mut shutdown).await;
    eprintln!("stopping...");
    mesh.stop().await.context("the mesh did not stop cleanly")?;
    eprintln!("stopped");
    Ok(())
}

fn print_next_steps(mesh: &LocalMesh, base_port: u16) {
    let registry_url = &mesh.registry_url;
    let flag = if base_port == 50050 { String::new() } else { format!(" --registry {registry_url}") };
    println!(
        "the mesh is up: registry {registry_url}, customer :{}, payment :{}, insight :{}\n\
         try:\n  mesh{flag} products\n  mesh{flag} describe payment.card_spending\n  \
         mesh{flag} query payment.card_spending --filter 'tot_use_am > 50000000' --order-by 'tot_use_am desc' --limit 10\n  \
         mesh{flag} query insight.segment_spending --filter 'hous_sido_nm = \"서울\"' --select bas_yh,life_stage,mbr_rk,customer_count,avg_use_am\n  \
         mesh{flag} health\n\
         Ctrl-C stops everything.",
        base_port + 1,
        base_port + 2,
        base_port + 3
    );
}
