//! compose.yaml matches the binaries: every service runs a binary the
//! workspace builds, every environment variable and flag it sets is one that
//! binary reads, ports and volumes line up, health checks use gRPC health,
//! and the init service's CA, certificates and issuer secure every service:
//! the signing key only in the registries, which write each domain's
//! short-lived service token into a volume that domain alone mounts.
//! The `postgres` profile's server takes TLS and the password init makes,
//! and its two registry replicas and two payment replicas share it. Every
//! domain is `mesh-domain` serving a product file the image holds, and the
//! source domains read the file the `source` service writes, read-only.
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
    let profiled = ["postgres", "pg-registry-1", "pg-registry-2", "pg-payment-1", "pg-payment-2"];
    let mut expected_names =
        HashSet::from(["init", "source", "registry", "customer", "payment", "insight", "sql"]);
    expected_names.extend(profiled);
    assert_eq!(names, expected_names);
    for name in &names {
        let profiles = strings(&compose["services"][*name]["profiles"]);
        let wanted: Vec<String> =
            if profiled.contains(name) { vec!["postgres".to_owned()] } else { Vec::new() };
        assert_eq!(profiles, wanted, "{name}: only the PostgreSQL services are in the `postgres` profile");
    }
    let expected_binary = [
        ("registry", "catalog-registry"),
        ("customer", "mesh-domain"),
        ("payment", "mesh-domain"),
        ("insight", "mesh-domain"),
        ("pg-registry-1", "catalog-registry"),
        ("pg-registry-2", "catalog-registry"),
        ("pg-payment-1", "mesh-domain"),
        ("pg-payment-2", "mesh-domain"),
    ];
    // The source file: written once by the generator into its own volume.
    let source = &compose["services"]["source"];
    let command = strings(&source["command"]);
    assert_eq!(command, ["mesh", "generate", "--output", "/mesh/source/EDU_DATA_F.csv", "--keep"]);
    let generate = help(&binary("mesh"), &["generate"]);
    assert!(generate.contains("--output") && generate.contains("--keep"), "{generate}");
    assert_eq!(strings(&source["volumes"]), ["source:/mesh/source"]);
    assert!(source["ports"].is_badvalue(), "source publishes nothing");
    let declared_volumes: HashSet<&str> =
        compose["volumes"].as_hash().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    let mut used_volumes = HashSet::from(["secrets".to_owned(), "source".to_owned()]);
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
    let certified: HashSet<&str> = command
        .windows(2)
        .filter(|w| w[0] == "--service")
        .map(|w| w[1].split_once('=').map_or(w[1].as_str(), |(name, _)| name))
        .collect();
    // A domain's certificate names its domain (clients check it under TLS).
    for (replica, hosts) in
        command.windows(2).filter(|w| w[0] == "--service").filter_map(|w| w[1].split_once('='))
    {
        assert!(replica.starts_with("pg-payment-"), "{replica}");
        assert!(hosts.split(',').any(|h| h == "payment"), "{replica}'s certificate names the payment domain");
    }
    let mut served: HashSet<&str> = expected_binary.iter().map(|(service, _)| *service).collect();
    served.insert("postgres");
    served.insert("sql");
    assert_eq!(certified, served, "init certifies every service");
    // The secrets, the issuer's key, and each service's TLS key in a volume
    // of its own.
    let mut init_volumes = vec!["secrets:/secrets".to_owned(), "issuer:/issuer".to_owned()];
    let mut certified_names: Vec<&str> = certified.iter().copied().collect();
    certified_names.sort_unstable();
    let mut keyed = strings(&init["volumes"])[2..].to_vec();
    keyed.sort();
    assert_eq!(
        keyed,
        certified_names.iter().map(|s| format!("{s}-key:/keys/{s}")).collect::<Vec<_>>(),
        "init writes each service's key into that service's key volume"
    );
    init_volumes.extend(keyed.iter().cloned());
    assert_eq!(
        strings(&init["volumes"])[..2],
        init_volumes[..2],
        "init writes the secrets and the issuer's key"
    );
    assert_eq!(command.windows(2).find(|w| w[0] == "--issuer-dir").map(|w| w[1].as_str()), Some("/issuer"));
    assert_eq!(command.windows(2).find(|w| w[0] == "--keys-dir").map(|w| w[1].as_str()), Some("/keys"));
    used_volumes.insert("issuer".to_owned());
    // Which registry writes which domain's token, into which volume.
    let mut token_writers: Vec<(String, String)> = Vec::new();
    assert!(init["ports"].is_badvalue(), "init publishes nothing");

    for (service, bin) in expected_binary {
        let spec = &compose["services"][service];
        let command = strings(&spec["command"]);
        assert_eq!(command[0], bin, "{service} runs {}", command[0]);
        let help = help(&binary(bin), &[]);
        for flag in command.iter().skip(1).filter(|a| a.starts_with("--")) {
            assert!(help.contains(flag.as_str()), "{service}: `{bin}` has no flag {flag}");
        }
        // A domain serves a product file the image holds (the repository's,
        // copied to /mesh by the Dockerfile), which declares and checks.
        let reads_source = ["customer", "payment", "pg-payment-1", "pg-payment-2"].contains(&service);
        if bin == "mesh-domain" {
            let file = command.windows(2).find(|w| w[0] == "--product").map(|w| w[1].clone()).unwrap();
            let in_repo =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file.trim_start_matches("/mesh/"));
            assert!(
                in_repo.is_file(),
                "{service}: {file} is not in the image ({} is missing)",
                in_repo.display()
            );
            if reads_source {
                assert_eq!(
                    spec["depends_on"]["source"]["condition"].as_str(),
                    Some("service_completed_successfully"),
                    "{service} starts once its source file is written"
                );
            }
        }
        let on_postgres = service.starts_with("pg-");
        let env = spec["environment"].as_hash().unwrap();
        let value_of =
            |key: &str| env.get(&Yaml::String(key.to_owned())).and_then(Yaml::as_str).map(str::to_owned);
        let mut addr_port = None;
        for (key, value) in env {
            let key = key.as_str().unwrap();
            if key == "RUST_LOG" {
                continue;
            }
            // A variable whose value help hides (a URL with a password) shows as `[env: KEY]`.
            let reads = help.contains(&format!("[env: {key}=")) || help.contains(&format!("[env: {key}]"));
            assert!(reads, "{service}: `{bin}` does not read {key}");
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
                let registries = if on_postgres {
                    "https://pg-registry-1:50060,https://pg-registry-2:50061"
                } else {
                    "https://registry:50050"
                };
                assert_eq!(value, registries, "{service} finds its registries by name, over TLS");
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
        assert_eq!(value_of("MESH_TLS_KEY").as_deref(), Some("/key/key.pem"), "{service}: its own key");
        assert_eq!(value_of("MESH_CA_FILE").as_deref(), Some("/secrets/ca.pem"), "{service}");
        assert_eq!(value_of("MESH_AUTH_JWKS").as_deref(), Some("/secrets/jwks.json"), "{service}");
        assert_eq!(value_of("MESH_INSECURE_PLAINTEXT"), None, "{service} must not serve plaintext");
        assert_eq!(value_of("MESH_INSECURE_NO_AUTH"), None, "{service} must authenticate");
        if bin != "catalog-registry" {
            // A domain reads a token written for it, and holds no signing key.
            assert_eq!(value_of("MESH_ISSUER_DIR"), None, "{service} must not hold the issuer's key");
            assert_eq!(value_of("MESH_TOKEN_FILE").as_deref(), Some("/token/token"), "{service}");
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
        // The PostgreSQL replicas: one server, reached with TLS by the
        // mesh's CA, the password from init's file, never in the URL.
        if on_postgres {
            assert_eq!(
                value_of("MESH_DATABASE_URL").as_deref(),
                Some("postgres://mesh@postgres:5432/mesh?sslmode=require"),
                "{service}"
            );
            assert_eq!(
                value_of("MESH_DATABASE_PASSWORD_FILE").as_deref(),
                Some("/secrets/database-password")
            );
            assert_eq!(value_of("MESH_DATABASE_CA").as_deref(), Some("/secrets/ca.pem"), "{service}");
            assert_eq!(value_of("MESH_DATABASE_INSECURE_PLAINTEXT"), None, "{service} must use TLS");
            assert_eq!(
                spec["depends_on"]["postgres"]["condition"].as_str(),
                Some("service_healthy"),
                "{service} starts once PostgreSQL answers"
            );
        } else {
            assert_eq!(value_of("MESH_DATABASE_URL"), None, "{service} keeps its SQLite file");
        }

        let port = addr_port.unwrap_or_else(|| panic!("{service} sets no listen address"));
        assert_eq!(
            strings(&spec["ports"]),
            [format!("127.0.0.1:{port}:{port}")],
            "{service} publishes its listen port on the host's loopback only"
        );

        let mut volumes = strings(&spec["volumes"]);
        assert_eq!(volumes[1], "secrets:/secrets:ro", "{service} reads the secrets, read-only");
        assert_eq!(volumes[2], format!("{service}-key:/key:ro"), "{service} reads its own TLS key alone");
        assert!(used_volumes.insert(format!("{service}-key")), "{service}'s key volume is shared");
        volumes.remove(2);
        let (volume, mount) = volumes[0].split_once(':').unwrap();
        assert_eq!(mount, "/data");
        assert!(declared_volumes.contains(volume), "{volume} is not declared");
        assert!(used_volumes.insert(volume.to_owned()), "{volume} is shared");
        if bin == "catalog-registry" {
            // The issuer's key (read-only), for token exchange, and the token
            // volumes of the domains it writes tokens for.
            assert_eq!(volumes[2], "issuer:/issuer:ro", "{service}");
            assert_eq!(value_of("MESH_TOKEN_EXCHANGE_ISSUER_DIR").as_deref(), Some("/issuer"), "{service}");
            let written = value_of("MESH_SERVICE_TOKENS").unwrap_or_default();
            let mounts = &volumes[3..];
            assert_eq!(mounts.len(), written.split(',').filter(|w| !w.is_empty()).count(), "{service}");
            for (entry, mount) in written.split(',').filter(|w| !w.is_empty()).zip(mounts) {
                let (domain, file) = entry.split_once('=').unwrap();
                assert_eq!(file, format!("/tokens/{domain}/token"), "{service}");
                let (volume, at) = mount.split_once(':').unwrap();
                assert_eq!(
                    at,
                    format!("/tokens/{domain}"),
                    "{service}: {mount} is writable, where {file} goes"
                );
                token_writers.push((volume.to_owned(), domain.to_owned()));
            }
        } else {
            if reads_source {
                assert_eq!(volumes.pop().as_deref(), Some("source:/mesh/source:ro"), "{service}");
            }
            assert_eq!(volumes.len(), 3, "{service}: its data, the secrets and its token");
            let (volume, at) = volumes[2].split_once(':').unwrap();
            assert_eq!(at, "/token:ro", "{service} reads its token, read-only");
            let domain = if on_postgres { "payment" } else { service };
            assert!(
                token_writers.iter().any(|(v, d)| v == volume && d == domain),
                "{service}: no registry writes {domain}'s token into {volume}"
            );
            used_volumes.insert(volume.to_owned());
        }

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
    // The SQL service: `mesh sql serve` with TLS, its own key, the issuer's
    // tokens, and nothing else: no data, no token, no signing key.
    let sql = &compose["services"]["sql"];
    assert_eq!(strings(&sql["command"]), ["mesh", "sql", "serve"]);
    let sql_help = help(&binary("mesh"), &["sql", "serve"]);
    let sql_env = sql["environment"].as_hash().unwrap();
    for key in sql_env.keys().map(|k| k.as_str().unwrap()).filter(|k| *k != "RUST_LOG") {
        assert!(sql_help.contains(&format!("[env: {key}")), "`mesh sql serve` does not read {key}");
    }
    let sql_value = |key: &str| sql_env.get(&Yaml::String(key.to_owned())).and_then(Yaml::as_str);
    assert_eq!(sql_value("MESH_SQL_ADDR"), Some("0.0.0.0:50070"));
    assert_eq!(sql_value("MESH_REGISTRY"), Some("https://registry:50050"));
    assert_eq!(sql_value("MESH_TLS_CERT"), Some("/secrets/sql.pem"));
    assert_eq!(sql_value("MESH_TLS_KEY"), Some("/key/key.pem"));
    assert_eq!(sql_value("MESH_CA_FILE"), Some("/secrets/ca.pem"));
    assert_eq!(sql_value("MESH_AUTH_JWKS"), Some("/secrets/jwks.json"));
    for unsafe_or_held in
        ["MESH_INSECURE_PLAINTEXT", "MESH_INSECURE_NO_AUTH", "MESH_TOKEN_FILE", "MESH_ISSUER_DIR"]
    {
        assert_eq!(sql_value(unsafe_or_held), None, "the SQL service must not set {unsafe_or_held}");
    }
    assert_eq!(strings(&sql["volumes"]), ["secrets:/secrets:ro", "sql-key:/key:ro"]);
    assert!(used_volumes.insert("sql-key".to_owned()));
    assert_eq!(strings(&sql["ports"]), ["127.0.0.1:50070:50070"], "published on the host's loopback only");
    let check = strings(&sql["healthcheck"]["test"]);
    assert!(check.windows(2).any(|w| w == ["--endpoint", "https://localhost:50070"]), "{check:?}");
    assert!(check.windows(2).any(|w| w == ["--service", "arrow.flight.protocol.FlightService"]), "{check:?}");
    assert_eq!(sql["depends_on"]["registry"]["condition"].as_str(), Some("service_healthy"));

    // The server itself: TLS with its certificate from init, the password
    // init made, data on a volume of its own, reachable only inside the
    // network, healthy when it answers.
    let postgres = &compose["services"]["postgres"];
    assert!(postgres["image"].as_str().unwrap().starts_with("postgres:"), "the official PostgreSQL image");
    let start = strings(&postgres["entrypoint"]).join(" ");
    for needed in ["/secrets/postgres.pem", "/key/key.pem", "-c ssl=on", "docker-entrypoint.sh postgres"] {
        assert!(start.contains(needed), "the server starts with `{needed}`: {start}");
    }
    let env = &postgres["environment"];
    assert_eq!(env["POSTGRES_PASSWORD_FILE"].as_str(), Some("/secrets/database-password"));
    assert_eq!(env["POSTGRES_USER"].as_str(), Some("mesh"));
    assert_eq!(env["POSTGRES_DB"].as_str(), Some("mesh"));
    assert!(env["POSTGRES_PASSWORD"].is_badvalue(), "no password in the file");
    assert!(env["POSTGRES_INITDB_ARGS"].as_str().unwrap().contains("--auth-host=scram-sha-256"));
    assert!(postgres["ports"].is_badvalue(), "PostgreSQL is not published on the host");
    let volumes = strings(&postgres["volumes"]);
    assert_eq!(
        volumes,
        ["postgres-data:/var/lib/postgresql/data", "secrets:/secrets:ro", "postgres-key:/key:ro"]
    );
    used_volumes.insert("postgres-data".to_owned());
    used_volumes.insert("postgres-key".to_owned());
    assert_eq!(strings(&postgres["healthcheck"]["test"])[..2], ["CMD", "pg_isready"]);
    // `mesh init` makes that password, readable by its owner only.
    let secrets = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let made = Command::new(binary("mesh"))
        .args(["init", "--dir"])
        .arg(secrets.path())
        .arg("--keys-dir")
        .arg(keys.path())
        .args(["--service", "postgres"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    // The key went to the service's own folder, 0600; the certificate stayed.
    let key = keys.path().join("postgres").join("key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&key).unwrap().contains("PRIVATE KEY"));
    assert!(!secrets.path().join("postgres-key.pem").exists(), "no key beside the certificates");
    assert!(secrets.path().join("postgres.pem").exists());
    let password = secrets.path().join("database-password");
    assert_eq!(std::fs::metadata(&password).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&password).unwrap().trim().len(), 64);

    assert_eq!(used_volumes.len(), declared_volumes.len(), "a declared volume is unused");
}
