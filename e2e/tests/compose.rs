//! compose.yaml matches the binaries: every service runs a binary the
//! workspace builds, every environment variable and flag it sets is one that
//! binary reads, ports and volumes line up, and health checks use gRPC health.
//! (Docker is not needed: the file is parsed and checked against `--help`.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn compose() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// A workspace binary next to `mesh` (the workspace test run builds them all).
fn binary(name: &str) -> PathBuf {
    let path = mesh_e2e::workspace_binary(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests for the whole workspace (scripts/test.sh)",
        path.display()
    );
    path
}

fn help(binary: &Path, args: &[&str]) -> String {
    let output = Command::new(binary).args(args).arg("--help").output().unwrap();
    assert!(output.status.success(), "{} --help failed", binary.display());
    String::from_utf8(output.stdout).unwrap()
}

fn strings(yaml: &Yaml) -> Vec<String> {
    yaml.as_vec().map(|v| v.iter().map(|s| s.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

#[test]
fn compose_matches_the_binaries() {
    let compose = compose();
    let services = compose["services"].as_hash().unwrap();
    let names: HashSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, HashSet::from(["registry", "customer", "payment", "insight"]));
    let expected_binary = [
        ("registry", "catalog-registry"),
        ("customer", "customer"),
        ("payment", "payment"),
        ("insight", "insight"),
    ];
    let declared_volumes: HashSet<&str> =
        compose["volumes"].as_hash().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    let mut used_volumes = HashSet::new();
    let mesh_health = help(&binary("mesh"), &["health"]);

    for (service, bin) in expected_binary {
        let spec = &compose["services"][service];
        let command = strings(&spec["command"]);
        assert_eq!(command[0], bin, "{service} runs {}", command[0]);
        let help = help(&binary(bin), &[]);
        for flag in command.iter().skip(1).filter(|a| a.starts_with("--")) {
            assert!(help.contains(flag.as_str()), "{service}: `{bin}` has no flag {flag}");
        }
        let env = spec["environment"].as_hash().unwrap();
        let mut addr_port = None;
        for (key, value) in env {
            let key = key.as_str().unwrap();
            if key == "RUST_LOG" {
                continue;
            }
            assert!(help.contains(&format!("[env: {key}=")), "{service}: `{bin}` does not read {key}");
            let value = value.as_str().map(str::to_owned).unwrap_or_else(|| format!("{:?}", value));
            if key.ends_with("_ADDR") {
                addr_port = value.rsplit(':').next().map(str::to_owned);
                assert!(
                    value.starts_with("0.0.0.0:"),
                    "{service} must listen on all interfaces in its container"
                );
            }
            if key.ends_with("DATA_DIR") {
                assert_eq!(value, "/data", "{service} keeps its data on its volume");
            }
            if key == "MESH_REGISTRY" {
                assert_eq!(value, "http://registry:50050", "{service} finds the registry by service name");
            }
            if key == "MESH_ADVERTISE_URL" {
                assert_eq!(value, format!("http://{service}:{}", addr_port.clone().unwrap_or_default()));
            }
        }
        let port = addr_port.unwrap_or_else(|| panic!("{service} sets no listen address"));
        assert_eq!(
            strings(&spec["ports"]),
            [format!("{port}:{port}")],
            "{service} publishes its listen port"
        );

        let volumes = strings(&spec["volumes"]);
        assert_eq!(volumes.len(), 1, "{service} has one volume of its own");
        let (volume, mount) = volumes[0].split_once(':').unwrap();
        assert_eq!(mount, "/data");
        assert!(declared_volumes.contains(volume), "{volume} is not declared");
        assert!(used_volumes.insert(volume.to_owned()), "{volume} is shared");

        let check = strings(&spec["healthcheck"]["test"]);
        assert_eq!(&check[..2], ["CMD", "mesh"], "{service}: health check runs `mesh health`");
        assert!(check.contains(&"health".to_owned()));
        let endpoint = check.iter().position(|a| a == "--endpoint").map(|i| check[i + 1].clone()).unwrap();
        assert_eq!(
            endpoint,
            format!("http://127.0.0.1:{port}"),
            "{service}: health check calls its own port"
        );
        for flag in check.iter().filter(|a| a.starts_with("--") && *a != "--timeout") {
            assert!(mesh_health.contains(flag.as_str()), "`mesh health` has no flag {flag}");
        }
    }
    assert_eq!(used_volumes.len(), declared_volumes.len(), "a declared volume is unused");
    assert!(
        compose["services"]["registry"]["build"].as_str().is_some(),
        "the registry service builds the image"
    );
}
