//! compose.yaml matches the binaries: every service runs a binary the
//! workspace builds, every environment variable and flag it sets is one that
//! binary reads, ports and volumes line up, health checks use gRPC health,
//! and the init service's CA, certificates and issuer secure every service.
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
    assert_eq!(names, HashSet::from(["init", "registry", "customer", "payment", "insight"]));
    let expected_binary = [
        ("registry", "catalog-registry"),
        ("customer", "customer"),
        ("payment", "payment"),
        ("insight", "insight"),
    ];
    let declared_volumes: HashSet<&str> =
        compose["volumes"].as_hash().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    let mut used_volumes = HashSet::from(["secrets".to_owned()]);
    let mesh_health = help(&binary("mesh"), &["health"]);

    // The init service makes the CA, a certificate per service and the
    // issuer in the secrets volume, once, before anything else starts.
    let init = &compose["services"]["init"];
    assert!(init["build"].as_str().is_some(), "the init service builds the image");
    let command = strings(&init["command"]);
    assert_eq!(&command[..2], ["mesh", "init"]);
    let init_help = help(&binary("mesh"), &["init"]);
    for flag in command.iter().filter(|a| a.starts_with("--")) {
        assert!(init_help.contains(flag.as_str()), "`mesh init` has no flag {flag}");
    }
    let certified: HashSet<&str> =
        command.windows(2).filter(|w| w[0] == "--service").map(|w| w[1].as_str()).collect();
    assert_eq!(certified, HashSet::from(["registry", "customer", "payment", "insight"]));
    assert_eq!(strings(&init["volumes"]), ["secrets:/secrets"], "init writes the secrets volume");
    assert!(init["ports"].is_badvalue(), "init publishes nothing");

    for (service, bin) in expected_binary {
        let spec = &compose["services"][service];
        let command = strings(&spec["command"]);
        assert_eq!(command[0], bin, "{service} runs {}", command[0]);
        let help = help(&binary(bin), &[]);
        for flag in command.iter().skip(1).filter(|a| a.starts_with("--")) {
            assert!(help.contains(flag.as_str()), "{service}: `{bin}` has no flag {flag}");
        }
        let env = spec["environment"].as_hash().unwrap();
        let value_of =
            |key: &str| env.get(&Yaml::String(key.to_owned())).and_then(Yaml::as_str).map(str::to_owned);
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
                assert_eq!(value, "https://registry:50050", "{service} finds the registry by name, over TLS");
            }
            if key == "MESH_ADVERTISE_URL" {
                // Inside the network, then as published on the host.
                let port = addr_port.clone().unwrap_or_default();
                assert_eq!(value, format!("https://{service}:{port},https://localhost:{port}"), "{service}");
            }
        }
        // TLS with its own certificate, tokens of the init service's issuer,
        // never plaintext and never without authentication.
        assert_eq!(value_of("MESH_TLS_CERT"), Some(format!("/secrets/{service}.pem")), "{service}");
        assert_eq!(value_of("MESH_TLS_KEY"), Some(format!("/secrets/{service}-key.pem")), "{service}");
        assert_eq!(value_of("MESH_CA_FILE").as_deref(), Some("/secrets/ca.pem"), "{service}");
        assert_eq!(value_of("MESH_AUTH_JWKS").as_deref(), Some("/secrets/issuer/jwks.json"), "{service}");
        assert_eq!(value_of("MESH_INSECURE_PLAINTEXT"), None, "{service} must not serve plaintext");
        assert_eq!(value_of("MESH_INSECURE_NO_AUTH"), None, "{service} must authenticate");
        if service != "registry" {
            assert_eq!(value_of("MESH_ISSUER_DIR").as_deref(), Some("/secrets/issuer"), "{service}");
            assert_eq!(
                value_of("MESH_PSEUDONYM_KEY").as_deref(),
                Some("/secrets/pseudonym.key"),
                "{service}"
            );
        }
        assert_eq!(
            spec["depends_on"]["init"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{service} starts after init"
        );

        let port = addr_port.unwrap_or_else(|| panic!("{service} sets no listen address"));
        assert_eq!(
            strings(&spec["ports"]),
            [format!("127.0.0.1:{port}:{port}")],
            "{service} publishes its listen port on the host's loopback only"
        );

        let volumes = strings(&spec["volumes"]);
        assert_eq!(volumes.len(), 2, "{service} has a volume of its own and the secrets");
        assert_eq!(volumes[1], "secrets:/secrets:ro", "{service} reads the secrets, read-only");
        let (volume, mount) = volumes[0].split_once(':').unwrap();
        assert_eq!(mount, "/data");
        assert!(declared_volumes.contains(volume), "{volume} is not declared");
        assert!(used_volumes.insert(volume.to_owned()), "{volume} is shared");

        let check = strings(&spec["healthcheck"]["test"]);
        assert_eq!(&check[..2], ["CMD", "mesh"], "{service}: health check runs `mesh health`");
        assert!(check.contains(&"health".to_owned()));
        let after = |flag: &str| check.iter().position(|a| a == flag).map(|i| check[i + 1].clone());
        assert_eq!(
            after("--endpoint"),
            Some(format!("https://localhost:{port}")),
            "{service}: health check calls its own port over TLS"
        );
        assert_eq!(after("--ca-file").as_deref(), Some("/secrets/ca.pem"), "{service}: trusts the CA");
        for flag in check.iter().filter(|a| a.starts_with("--") && *a != "--timeout" && *a != "--ca-file") {
            assert!(mesh_health.contains(flag.as_str()), "`mesh health` has no flag {flag}");
        }
    }
    assert_eq!(used_volumes.len(), declared_volumes.len(), "a declared volume is unused");
}
