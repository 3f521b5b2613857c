//! `mesh up` as a process: it generates data, serves every product, signs
//! the other terminals in (a private profile with an admin token), answers
//! queries with no flags, and stops everything on SIGINT with nothing left
//! behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn mesh_up_serves_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let base = crate::common::free_base_port();
    let mut up = Command::new(mesh_e2e::workspace_binary("mesh"))
        .args(["up", "--customers", "300", "--quarters", "1", "--base-port", &base.to_string(), "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .env("MESH_CONFIG_DIR", dir.path().join("config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let banner = lines.next().expect("mesh up printed nothing").unwrap();
    assert!(banner.starts_with("the mesh is up"), "{banner}");
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));

    let registry = format!("http://127.0.0.1:{base}");
    // Another terminal: no token, no flags but where the registry is.
    let mesh = |args: &[&str], config: &str| {
        Command::new(mesh_e2e::workspace_binary("mesh"))
            .arg("--registry")
            .arg(&registry)
            .args(args)
            .env("MESH_CACHE_DIR", dir.path().join("cache"))
            .env("MESH_CONFIG_DIR", dir.path().join(config))
            .env_remove("MESH_TOKEN")
            .output()
            .unwrap()
    };
    let query = ["query", "insight.segment_spending", "--select", "bas_yh,customer_count", "--format", "csv"];
    let output = mesh(&query, "config");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = String::from_utf8(output.stdout).unwrap();
    assert!(csv.starts_with("bas_yh,customer_count\n2024Q1,"), "{csv}");
    let whoami = String::from_utf8(mesh(&["whoami"], "config").stdout).unwrap();
    assert_eq!(whoami, "subject: local-admin\nissuer:  mesh-local\nroles:   admin\n");
    let profiles: Vec<_> = std::fs::read_dir(dir.path().join("config").join("profiles")).unwrap().collect();
    assert_eq!(profiles.len(), 1);
    let profile = profiles[0].as_ref().unwrap().path();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&profile).unwrap().permissions().mode() & 0o777, 0o600);
    let printed = String::from_utf8(mesh(&["token", "print"], "config").stdout).unwrap();
    assert_eq!(printed.split('.').count(), 3, "a JWT: {printed}");
    // Without the profile, the services refuse and say how to sign in.
    let refused = mesh(&query, "elsewhere");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the call carries no bearer token"), "{stderr}");
    assert!(stderr.contains("sign in: `mesh up` signs you in to the local mesh"), "{stderr}");

    assert!(Command::new("kill").args(["-INT", &up.id().to_string()]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = up.kill();
            panic!("mesh up ignored SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "mesh up exited with {status}");
    let next_steps = rest.join().unwrap();
    assert!(next_steps.contains("query payment.card_spending"), "{next_steps}");
    assert!(!profile.exists(), "the profile outlived the mesh");
    // Every port is free again: nothing was left running.
    for port in base..base + 4 {
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} still taken");
    }
    for service in ["registry", "customer", "payment", "insight"] {
        assert!(dir.path().join(service).is_dir(), "{service} has no data directory");
    }
}
