//! One trace per query across processes: `mesh up` and `mesh query` export
//! spans over OTLP/gRPC to a receiver built on OpenTelemetry's own protos
//! (`fixtures/otlp_receiver.py`); the spans of one `mesh query` share one
//! trace id across the CLI, the registry and the domain, every parent link
//! points at a span received, and the domain's spans name planning,
//! admission, the scan and encoding. A REST caller's `traceparent` is the
//! parent of the domain's spans, and its trace id is in the domain's log
//! lines of that call.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

/// Kills the process when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The OTLP receiver writing spans to `spans`; its endpoint.
fn receiver(spans: &Path) -> (Running, String) {
    let mut child = Command::new(common::tool("venv/bin/python"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/otlp_receiver.py"))
        .arg(spans)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
    (Running(child), format!("http://127.0.0.1:{}", port.trim()))
}

/// The spans received so far.
fn received(spans: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(spans).unwrap_or_default();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// Waits until `done` holds of the spans received (exporters send in batches).
fn until(spans: &Path, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let all = received(spans);
        if done(&all) {
            return all;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{what}; received: {all:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn of_trace<'a>(spans: &'a [Value], trace: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["trace_id"] == trace).collect()
}

fn path_of(span: &Value) -> &str {
    span["attributes"]["path"].as_str().unwrap_or_default()
}

#[test]
fn one_mesh_query_is_one_trace_across_the_cli_the_registry_and_the_domain() {
    let dir = tempfile::tempdir().unwrap();
    let spans = dir.path().join("spans.jsonl");
    let (_receiver, endpoint) = receiver(&spans);
    let base = common::free_base_port();
    let log = dir.path().join("up.log");
    let mut up = Command::new(mesh_e2e::workspace_binary("mesh"))
        .args(["up", "--customers", "200", "--quarters", "1", "--base-port", &base.to_string()])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--otlp-endpoint", &endpoint])
        .env("RUST_LOG", "info")
        .env("MESH_CONFIG_DIR", dir.path().join("config"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let _up = Running(up);
    assert!(banner.starts_with("the mesh is up"), "{banner}");
    // What it prints next is read, or it would write into a closed pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let registry = format!("http://127.0.0.1:{base}");
    let mesh = |args: &[&str]| {
        let output = Command::new(mesh_e2e::workspace_binary("mesh"))
            .args(["--registry", &registry, "--otlp-endpoint", &endpoint])
            .args(args)
            .env("MESH_CACHE_DIR", dir.path().join("cache"))
            .env("MESH_CONFIG_DIR", dir.path().join("config"))
            .env_remove("MESH_TOKEN")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let csv = mesh(&["query", "payment.card_spending", "--limit", "3", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 4, "{csv}");

    // The CLI's root span, exported as it exits.
    let all = until(&spans, "the CLI's root span", |all| {
        all.iter().any(|s| s["service"] == "mesh-cli" && s["name"] == "mesh")
    });
    let root = all.iter().find(|s| s["service"] == "mesh-cli" && s["name"] == "mesh").unwrap();
    let trace = root["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(root["parent_span_id"], "", "the command's span is the root");
    let all = until(&spans, "the registry's and the domain's spans of the query", |all| {
        let names: BTreeSet<&str> = of_trace(all, &trace).iter().filter_map(|s| s["name"].as_str()).collect();
        ["resolve", "call", "plan", "admission", "scan", "encode"].iter().all(|n| names.contains(n))
            && of_trace(all, &trace)
                .iter()
                .any(|s| path_of(s).starts_with("/mesh.catalog.v1.CatalogService/"))
            && of_trace(all, &trace)
                .iter()
                .any(|s| path_of(s) == "/woori.payment.v1.CardSpendingService/Query")
    });
    let trace_spans = of_trace(&all, &trace);
    let ids: HashMap<&str, &Value> =
        trace_spans.iter().map(|s| (s["span_id"].as_str().unwrap(), *s)).collect();
    for span in &trace_spans {
        let parent = span["parent_span_id"].as_str().unwrap();
        assert!(parent.is_empty() || ids.contains_key(parent), "a broken parent link: {span:#}");
        assert!(!parent.is_empty() || span["name"] == "mesh", "a second root: {span:#}");
    }
    // The domain's call is a child of the CLI's call into it; the scan is
    // under the domain's call, encoding under the scan.
    let query_call =
        trace_spans.iter().find(|s| path_of(s) == "/woori.payment.v1.CardSpendingService/Query").unwrap();
    let parent = ids[query_call["parent_span_id"].as_str().unwrap()];
    assert_eq!(parent["service"], "mesh-cli", "the domain's call hangs under the CLI: {parent:#}");
    let scan = trace_spans.iter().find(|s| s["name"] == "scan").unwrap();
    assert_eq!(scan["parent_span_id"], query_call["span_id"]);
    let encode = trace_spans.iter().find(|s| s["name"] == "encode").unwrap();
    assert_eq!(encode["parent_span_id"], scan["span_id"]);
    let services: BTreeSet<&str> = trace_spans.iter().filter_map(|s| s["service"].as_str()).collect();
    assert_eq!(services, BTreeSet::from(["mesh-cli", "mesh-services"]));

    // A REST caller's traceparent: its trace, under its span, in the log.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let token = mesh(&["token", "print", "--for", "payment"]);
    let payment = format!("http://127.0.0.1:{}", base + 2);
    let response = reqwest::blocking::Client::new()
        .get(format!("{payment}/v1/products/payment.card_spending/rows?limit=2"))
        .bearer_auth(token.trim())
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let all = until(&spans, "the REST call's spans", |all| {
        of_trace(all, caller_trace).iter().any(|s| s["name"] == "scan")
    });
    let rest_call = of_trace(&all, caller_trace)
        .into_iter()
        .find(|s| s["name"] == "call")
        .unwrap_or_else(|| panic!("no call span in {all:#?}"));
    assert_eq!(rest_call["parent_span_id"], caller_span);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged
            .lines()
            .any(|line| line.contains(&format!("trace_id={caller_trace}")) && line.contains("query")),
        "the call's log lines carry its trace id:\n{logged}"
    );
}
