//! `mesh query --format arrow|parquet`: the rows over the domain's Arrow
//! Flight service, written as they come, going on at another replica from
//! the last batch's resume token when one fails.

use std::sync::Arc;
use std::time::Duration;

use mesh_contracts::product::QueryRequest;
use mesh_sql::Replicas;
use mesh_sql::flight::{Failover, FlightQuery, FlightRead, ReadSettings};

use crate::batch_file::BatchFile;
use crate::cli::Cli;
use crate::commands::query::Format;
use crate::registry::Target;
use crate::style;

/// Runs `request` of `product` against `target` over Flight and writes
/// its rows to stdout as `format` (arrow or parquet).
pub(crate) async fn run(
    cli: &Cli,
    target: &Target,
    product: &str,
    request: &QueryRequest,
    format: Format,
    idle_timeout: Duration,
) -> Result<(), tonic::Status> {
    let query = FlightQuery {
        product: product.to_owned(),
        filter: request.filter.clone(),
        select: request.read_mask.as_ref().map(|m| m.paths.clone()).unwrap_or_default(),
        order_by: request.order_by.clone(),
        limit: u64::try_from(request.limit).unwrap_or(0),
    };
    let mut read = FlightRead::plan(replicas(target), &query, read_settings(cli, idle_timeout)).await?;
    note_withheld(read.withheld(), product);
    let mut file = BatchFile::create(format, read.schema()).map_err(local)?;
    while let Some(batch) = read.next().await? {
        file.write(&batch).map_err(local)?;
    }
    file.finish().map_err(local)
}

/// Where the target's product is read, and with what.
pub(crate) fn replicas(target: &Target) -> Replicas {
    Replicas {
        endpoint: target.endpoint.clone(),
        fallbacks: target.fallbacks.clone(),
        credentials: target.credentials.clone(),
    }
}

/// How the CLI reads over Flight: going on at another replica says so on
/// stderr.
pub(crate) fn read_settings(cli: &Cli, idle_timeout: Duration) -> ReadSettings {
    ReadSettings {
        timeout: cli.timeout,
        idle_timeout,
        on_failover: Arc::new(|failover: &Failover<'_>| {
            eprintln!(
                "note: {} failed after {} rows ({}); continuing on {}",
                style::safe(failover.failed),
                failover.rows,
                style::safe(failover.reason),
                style::safe(failover.next)
            );
        }),
    }
}

/// A failure on this side (writing the output) as a status the caller
/// reports like the domain's.
pub(crate) fn local(error: anyhow::Error) -> tonic::Status {
    tonic::Status::aborted(format!("writing the output: {error:#}"))
}

/// Says on stderr which columns the caller's agreement left out.
pub(crate) fn note_withheld(withheld: Option<&str>, product: &str) {
    if let Some(withheld) = withheld {
        eprintln!(
            "note: your agreement does not cover {} (left out); `mesh access request {product} --purpose \"...\" \
             --columns ...` asks for them",
            style::safe(withheld),
        );
    }
}
