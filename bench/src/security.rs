//! What TLS and tokens cost on the data path: the same data served by a
//! mesh in plaintext without tokens and by one with TLS and tokens, both in
//! this process; full streams alternate between the two, and the selective
//! query's latency is taken on each.

use crate::Run;
use crate::report::{Figure, ms, per_second};
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use woori_data::Generator;

use crate::latency::{percentiles, selective_query};
use crate::mesh::{Mesh, Security};
use crate::stream::{rate, typed_client};

/// Rounds of full streams on each mesh; the best of each counts.
const ROUNDS: usize = 3;

/// Rows/s of full streams and selective-query p50, open then secured.
pub(crate) struct SecurityCost {
    pub open_rate: f64,
    pub secure_rate: f64,
    pub open_p50: Duration,
    pub secure_p50: Duration,
}

/// Measures both meshes over `data`.
pub(crate) async fn measure(data: &Path, generator: Generator, calls: usize) -> Result<SecurityCost> {
    let open = Mesh::start(data, generator, Security::Open).await?;
    let secure = Mesh::start(data, generator, Security::TlsAndTokens).await?;
    // A domain accepts only tokens for itself.
    let (open_payment, secure_payment) = (open.at("payment")?, secure.at("payment")?);
    let (mut open_rate, mut secure_rate) = (0f64, 0f64);
    for _ in 0..ROUNDS {
        let (rows, seconds) = typed_client(&open.payment_url, &open_payment).await?;
        open_rate = open_rate.max(rate(rows, seconds));
        let (rows, seconds) = typed_client(&secure.payment_url, &secure_payment).await?;
        secure_rate = secure_rate.max(rate(rows, seconds));
    }
    let (seq, quarter) = ("0000012345", "2024Q3");
    let (open_query, _) = selective_query(&open.payment_url, &open_payment, seq, quarter, calls).await?;
    let (secure_query, _) =
        selective_query(&secure.payment_url, &secure_payment, seq, quarter, calls).await?;
    Ok(SecurityCost {
        open_rate,
        secure_rate,
        open_p50: percentiles(open_query).0,
        secure_p50: percentiles(secure_query).0,
    })
}

/// The figures of this group (`--only security`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let cost = measure(&run.data, run.generator, run.calls).await?;
    let throughput = cost.secure_rate / cost.open_rate;
    figures.push(Figure {
        name: "full stream with TLS + token (plaintext, no token)",
        measured: per_second(cost.secure_rate),
        baseline: per_second(cost.open_rate),
        ratio: Some(throughput),
        target: ">= 0.9",
        met: Some(throughput >= 0.9),
    });
    let latency = cost.secure_p50.as_secs_f64() / cost.open_p50.as_secs_f64();
    figures.push(Figure {
        name: "selective query p50 with TLS + token (plaintext, no token)",
        measured: ms(cost.secure_p50),
        baseline: ms(cost.open_p50),
        ratio: Some(latency),
        target: "<= 1.3",
        met: Some(latency <= 1.3),
    });
    Ok(figures)
}
