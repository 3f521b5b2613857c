//! The web figures: the whole of payment.card_spending over REST as NDJSON
//! and CSV against `mesh query --format csv` over gRPC; the product page
//! rendered by the registry against the registry's JSON of the same
//! product; the preview's 50 rows in chromium against the page's own
//! DOMContentLoaded.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::latency::percentiles;
use crate::mesh::Mesh;

/// Every row of payment.card_spending as `accept` over REST; the rows
/// (lines, less CSV's header) and the seconds it took.
pub(crate) async fn rest_export(mesh: &Mesh, token: &str, accept: &str) -> Result<(u64, f64)> {
    let url = format!("{}/v1/products/payment.card_spending/rows", mesh.payment_url);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut response =
        http.get(&url).bearer_auth(token).header("accept", accept).send().await?.error_for_status()?;
    let mut lines = 0u64;
    while let Some(chunk) = response.chunk().await? {
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rows = if accept == "text/csv" { lines.saturating_sub(1) } else { lines };
    Ok((rows, seconds))
}

/// A session cookie of the web catalog, from a one-time link.
async fn session(mesh: &Mesh, http: &reqwest::Client) -> Result<String> {
    let response = http.get(mesh.web_sign_in_link()?).send().await?;
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| line.strip_prefix("mesh_session=")?.split(';').next().map(str::to_owned))
        .context("the sign-in link set no session cookie")
}

/// Sequential latencies of `calls` product pages and of as many GETs of the
/// registry's JSON for the same product.
pub(crate) async fn product_page(mesh: &Mesh, calls: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let cookie = format!("mesh_session={}", session(mesh, &http).await?);
    let page_url = format!("{}/catalog/products/payment.card_spending", mesh.registry);
    let json_url = format!("{}/v1/products/payment.card_spending", mesh.registry);
    let (mut pages, mut jsons) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for _ in 0..calls {
        let started = Instant::now();
        let page = http.get(&page_url).header("cookie", &cookie).send().await?;
        ensure!(page.status() == 200, "the product page answered {}", page.status());
        let html = page.text().await?;
        pages.push(started.elapsed());
        ensure!(html.contains("payment.card_spending"), "the page lacks the product");
        let started = Instant::now();
        let json = http.get(&json_url).bearer_auth(&mesh.token).send().await?.error_for_status()?;
        json.bytes().await?;
        jsons.push(started.elapsed());
    }
    Ok((pages, jsons))
}

/// The preview in chromium: the median time until its 50 rows were shown,
/// and the median DOMContentLoaded, over `rounds` page loads.
pub(crate) fn browser_preview(mesh: &Mesh, rounds: usize) -> Result<(Duration, Duration)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/web-venv/bin/python");
    ensure!(python.exists(), "{} is missing: run scripts/install-tools.sh", python.display());
    let output = std::process::Command::new(python)
        .arg(root.join("bench/preview_timing.py"))
        .arg(mesh.web_sign_in_link()?)
        .arg(format!("{}/catalog/products/payment.card_spending", mesh.registry))
        .arg(rounds.to_string())
        .output()?;
    ensure!(output.status.success(), "the browser run failed: {}", String::from_utf8_lossy(&output.stderr));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut shown = Vec::new();
    let mut loaded = Vec::new();
    for round in results.as_array().context("no rounds")? {
        ensure!(round["state"] == "rows" && round["rows"] == 50, "the preview showed {round}");
        shown.push(Duration::from_secs_f64(round["shown_ms"].as_f64().unwrap_or_default() / 1000.0));
        loaded.push(Duration::from_secs_f64(round["dom_ms"].as_f64().unwrap_or_default() / 1000.0));
    }
    Ok((percentiles(shown).0, percentiles(loaded).0))
}
