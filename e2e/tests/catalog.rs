//! The web catalog in a real browser: Debian's chromium driven by
//! Playwright (e2e/fixtures/catalog_browser.py) against a real mesh, as an
//! analyst and an owner: sign-in, search, the product page, the preview
//! fetched from the domain with the identifier pseudonymized, a request
//! approved in another browser context, the keyboard alone. Screenshots of
//! each step go to target/playwright/catalog/.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Mesh;

/// Where the screenshots of `test` go.
fn screenshots(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/playwright").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a Playwright script of e2e/fixtures with `config`, failing with its output.
pub(crate) fn run_browser(script: &str, config: &serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let mut child = std::process::Command::new(common::tool("web-venv/bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(script))
        .arg(&config_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a browser that hangs is killed and the test fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    let report = format!("{}{}", common::stdout(&output), common::stderr(&output));
    assert!(output.status.success(), "{script} failed:\n{report}");
    report
}

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
    let shots = screenshots("catalog");
    let config = serde_json::json!({
        "catalog": mesh.registry,
        "analyst_token": mesh.token_as("ana", &["analyst"]),
        "owner_token": mesh.token_as("olivia", &["owner:payment"]),
        "screenshots": shots,
        "real_seqs": real_seqs,
    });
    let report = tokio::task::spawn_blocking(move || run_browser("catalog_browser.py", &config)).await.unwrap();
    assert!(report.contains("browser checks passed"), "{report}");
    for step in ["01-sign-in", "02-search", "03-product-preview-refused", "04-preview-pseudonymized", "06-owner-pending", "07-preview-granted", "08-keyboard"] {
        assert!(shots.join(format!("{step}.png")).exists(), "no screenshot of {step}");
    }
}
