//! The web figures: the whole of payment.card_spending over REST as NDJSON
//! and CSV against `mesh query --format csv` over gRPC; the product page
//! rendered by the registry against the registry's JSON of the same
//! product; the preview's 50 rows in chromium against the page's own
//! DOMContentLoaded.

use crate::Run;
use crate::report::{Figure, ms, per_second};
use crate::stream::rate;
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

/// The figures of this group (`--only web`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let rows = run.mesh.payment.data_status()?.row_count as u64;
    let (_, cli_s) = crate::stream::cli_csv(&run.mesh.registry, &run.mesh.token, rows)?;
    let cli = rate(rows, cli_s);
    // REST calls a domain with a token for it alone.
    let payment_token = crate::mesh::payment_token(&run.data.join("issuer"))?;
    for (name, accept) in [
        ("REST export as NDJSON (whole payment.card_spending)", "application/x-ndjson"),
        ("REST export as CSV (whole payment.card_spending)", "text/csv"),
    ] {
        let (got, seconds) = rest_export(&run.mesh, &payment_token, accept).await?;
        anyhow::ensure!(got == rows, "{accept}: {got} of {rows} rows");
        let rest = rate(rows, seconds);
        figures.push(Figure {
            name,
            measured: per_second(rest),
            baseline: format!("{} csv", per_second(cli)),
            ratio: Some(rest / cli),
            target: ">= 0.8",
            met: Some(rest / cli >= 0.8),
        });
    }
    let (pages, jsons) = product_page(&run.mesh, run.calls.min(300)).await?;
    let ((page50, page99), (json50, _)) =
        (crate::latency::percentiles(pages), crate::latency::percentiles(jsons));
    figures.push(Figure {
        name: "product page rendered server-side p50 / p99",
        measured: format!("{} / {}", ms(page50), ms(page99)),
        baseline: format!("{} json", ms(json50)),
        ratio: Some(page50.as_secs_f64() / json50.as_secs_f64()),
        target: "p50 <= 20 ms",
        met: Some(page50 <= Duration::from_millis(20)),
    });
    let (shown, loaded) = browser_preview(&run.mesh, 7)?;
    figures.push(Figure {
        name: "browser preview of 50 rows after opening the page (median)",
        measured: ms(shown),
        baseline: format!("{} DOM ready", ms(loaded)),
        ratio: Some(shown.as_secs_f64() / loaded.as_secs_f64()),
        target: "<= 1 s",
        met: Some(shown <= Duration::from_secs(1)),
    });
    Ok(figures)
}
