//! The web catalog in a real browser: Debian's chromium driven by
//! Playwright (e2e/fixtures/catalog_browser.py) against a real mesh, as an
//! analyst and an owner: sign-in, search, the product page, the preview
//! fetched from the domain with the identifier pseudonymized, a request
//! approved in another browser context, the owner's usage charts, the
//! keyboard alone. Screenshots of each step go to target/playwright/catalog/.

use crate::common;

use common::Mesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_analyst_and_an_owner_use_the_catalog_in_a_browser() {
    let mesh = Mesh::start(300, true).await;
    let conn = rusqlite::Connection::open(mesh.payment_db()).unwrap();
    let real_seqs: Vec<String> = conn
        .prepare("SELECT DISTINCT seq FROM card_spending")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let shots = common::screenshots("catalog");
    let config = serde_json::json!({
        "catalog": mesh.registry,
        "analyst_token": mesh.token_as("ana", &["analyst"]),
        "owner_token": mesh.token_as("olivia", &["owner:payment"]),
        "screenshots": shots,
        "real_seqs": real_seqs,
    });
    let report = tokio::task::spawn_blocking(move || common::run_browser("catalog_browser.py", &config))
        .await
        .unwrap();
    assert!(report.contains("browser checks passed"), "{report}");
    for step in [
        "01-sign-in",
        "02-search",
        "03-product-preview-refused",
        "04-preview-pseudonymized",
        "06-owner-pending",
        "07-preview-granted",
        "08-keyboard",
        "09-usage",
    ] {
        assert!(shots.join(format!("{step}.png")).exists(), "no screenshot of {step}");
    }
}
