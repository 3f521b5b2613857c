//! The catalog's events through the real `mesh` binary and the registry's
//! feed, parsed by the CloudEvents SDK: `mesh watch` prints CloudEvents
//! lines in a pipe (every event once, resumable after a sequence number),
//! the HTTP feed answers a CloudEvents batch; an analyst sees the catalog's
//! events but not another consumer's agreements.

use crate::common;

use common::{Mesh, run_ok, stderr, stdout, tool};

/// `sequence type subject` of each event, as the CloudEvents SDK read it.
fn parsed(mode: &str, text: &str) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(tool("venv/bin/python"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/parse_cloudevents.py"))
        .arg(mode)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the CloudEvents SDK refused:\n{}\n{text}", stderr(&output));
    stdout(&output).lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_and_the_feed_give_cloudevents_the_sdk_reads() {
    let mesh = Mesh::start(300, false).await;
    // Each domain's product: registered, its first version, its endpoint.
    let catalog = ["--type", "mesh.product.*", "--type", "mesh.endpoint.*"];
    let output = mesh.mesh().args(["watch", "--since", "0", "--count", "6"]).args(catalog).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = parsed("ndjson", &stdout(&output));
    assert_eq!(lines.len(), 6, "{lines:?}");
    let mut products: Vec<&str> = lines.iter().filter_map(|l| l.split(' ').nth(2)).collect();
    products.sort_unstable();
    products.dedup();
    assert_eq!(products, ["customer.profiles", "payment.card_spending"]);
    for kind in
        ["mesh.product.registered.v1", "mesh.product.version.published.v1", "mesh.endpoint.serving.v1"]
    {
        assert_eq!(lines.iter().filter(|l| l.contains(kind)).count(), 2, "{kind}: {lines:?}");
    }

    // Resumed after the third: the three after it, no more, no fewer.
    let third: String = lines[2].split(' ').next().unwrap().to_owned();
    let output =
        mesh.mesh().args(["watch", "--since", &third, "--count", "3"]).args(catalog).output().unwrap();
    assert_eq!(parsed("ndjson", &stdout(&output)), lines[3..]);
    // And each domain reported its load.
    let output = mesh
        .mesh()
        .args(["watch", "--since", "0", "--count", "2", "--type", "mesh.data.*"])
        .output()
        .unwrap();
    let loads = parsed("ndjson", &stdout(&output));
    assert!(loads.iter().all(|l| l.contains(" mesh.data.loaded.v1 ")), "{loads:?}");
    // `mesh describe` shows the latest load and version published.
    let output = mesh.mesh().args(["describe", "payment.card_spending"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let described = stdout(&output);
    let latest = described.split("latest events").nth(1).unwrap_or_default();
    for kind in ["mesh.data.loaded.v1", "mesh.product.version.published.v1"] {
        assert!(latest.contains(kind), "{kind}: {described}");
    }

    // An analyst asks for access; the owner's watch of access events sees it.
    let analyst = mesh.token_as("ana", &["analyst"]);
    let owner = mesh.token_as("lee", &["owner:payment"]);
    let watcher = {
        let mut command = std::process::Command::new(mesh_e2e::workspace_binary("mesh"));
        command
            .args(["--registry", &mesh.registry, "watch", "payment.card_spending", "--type", "mesh.access.*"])
            .args(["--count", "1", "--format", "ndjson"])
            .env("MESH_TOKEN", &owner)
            .env("MESH_CACHE_DIR", mesh.cache.path());
        command.stdout(std::process::Stdio::piped()).spawn().unwrap()
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let asked = mesh
        .mesh()
        .env("MESH_TOKEN", &analyst)
        .args([
            "access",
            "request",
            "payment.card_spending",
            "--purpose",
            "fraud study",
            "--columns",
            "bas_yh",
        ])
        .output()
        .unwrap();
    assert!(asked.status.success(), "{}", stderr(&asked));
    let seen = watcher.wait_with_output().unwrap();
    let seen = parsed("ndjson", &stdout(&seen));
    assert_eq!(seen.len(), 1);
    assert!(seen[0].ends_with("mesh.access.requested.v1 payment.card_spending"), "{seen:?}");

    // The feed, as another analyst: the catalog's events, not ana's request.
    let bob = mesh.token_as("bob", &["analyst"]);
    let batch = run_ok(
        std::process::Command::new("curl")
            .args(["-sf", "-H", &format!("authorization: Bearer {bob}")])
            .arg(format!("{}/v1/events?page_size=1000&type=mesh.product.*,mesh.endpoint.*", mesh.registry)),
    );
    assert_eq!(parsed("batch", &batch), lines);
    let everything = run_ok(
        std::process::Command::new("curl")
            .args(["-sf", "-H", &format!("authorization: Bearer {bob}")])
            .arg(format!("{}/v1/events?page_size=1000", mesh.registry)),
    );
    let everything = parsed("batch", &everything);
    assert!(
        everything.len() >= 6 && everything.iter().all(|l| !l.contains("mesh.access.")),
        "{everything:?}"
    );
    let mine = run_ok(
        std::process::Command::new("curl")
            .args(["-sf", "-H", &format!("authorization: Bearer {analyst}")])
            .arg(format!("{}/v1/events?type=mesh.access.*", mesh.registry)),
    );
    // Hers: the request, and its approval by the product's rule.
    let mine: Vec<String> =
        parsed("batch", &mine).iter().map(|l| l.split(' ').nth(1).unwrap().to_owned()).collect();
    assert_eq!(mine, ["mesh.access.requested.v1", "mesh.access.approved.v1"]);
}

/// `mesh subscribe` prints the secret once; `mesh subscriptions list` shows
/// the subscription and how it stands, never the secret; `delete` ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriptions_through_the_cli() {
    let mesh = Mesh::start(300, false).await;
    let ana = mesh.token_as("ana", &["analyst"]);
    let as_ana = || {
        let mut command = mesh.mesh();
        command.env("MESH_TOKEN", &ana);
        command
    };
    let url = "http://127.0.0.1:9/hook";
    let output = as_ana()
        .args(["subscribe", "payment.card_spending", "--url", url, "--type", "mesh.data.*"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    let id = printed.split(':').next().unwrap().trim().to_owned();
    let secret = printed.lines().find_map(|l| l.trim().strip_prefix("whsec_")).expect("the secret is shown");
    assert!(id.starts_with("sub_") && printed.contains(&format!("go to {url}")), "{printed}");
    assert!(stderr(&output).contains("webhook-signature"), "{}", stderr(&output));

    let output = as_ana().args(["subscriptions", "list"]).output().unwrap();
    let listed = stdout(&output);
    assert!(listed.contains(&id) && listed.contains("mesh.data.*") && listed.contains("active"), "{listed}");
    assert!(!listed.contains(secret), "{listed}");
    // Another analyst sees none of it and cannot delete it.
    let bob = mesh.token_as("bob", &["analyst"]);
    let output = mesh.mesh().env("MESH_TOKEN", &bob).args(["subscriptions", "list"]).output().unwrap();
    assert!(stdout(&output).contains("no subscriptions"), "{}", stdout(&output));
    let output = mesh.mesh().env("MESH_TOKEN", &bob).args(["subscriptions", "delete", &id]).output().unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("does not exist (or is not yours)"), "{}", stderr(&output));

    let output = as_ana().args(["subscriptions", "renew", &id]).output().unwrap();
    assert!(stdout(&output).contains(&format!("{id}: renewed until 20")), "{}", stderr(&output));
    let output = as_ana().args(["subscriptions", "delete", &id]).output().unwrap();
    assert!(output.status.success() && stdout(&output).contains("deleted"), "{}", stderr(&output));
    let output = as_ana().args(["subscriptions", "list"]).output().unwrap();
    assert!(stdout(&output).contains("no subscriptions"), "{}", stdout(&output));
}
