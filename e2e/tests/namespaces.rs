//! The registry and the payment domain on hosts of their own: each in a
//! network namespace with its own address (as containers on separate hosts
//! would be), joined by a bridge in a namespace of its own, with TLS
//! certificates for those addresses and tokens of a local issuer. `mesh
//! query` from a third namespace reads the product across them; plaintext
//! and a client trusting another CA are refused, and a service will not
//! listen in plaintext on such an address.
//!
//! `ip netns` needs root (CI has it); elsewhere the test says why it
//! skipped. Nothing leaves the namespaces the test makes.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mesh_e2e::{Running, workspace_binary};
use mesh_grpc::auth::issuer::{DEFAULT_AUDIENCE, LocalIssuer};
use mesh_grpc::certs::{self, ServiceCert};

const REGISTRY_IP: &str = "10.250.7.1";
const PAYMENT_IP: &str = "10.250.7.2";
const CLIENT_IP: &str = "10.250.7.3";

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("ip {args:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Three host namespaces and a switch, removed when dropped.
struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    /// `registry`, `payment` and `client` hosts on one bridge.
    fn new() -> Result<Self, String> {
        let tag = std::process::id() % 100_000;
        let name = |role: &str| format!("mesh{tag}-{role}");
        let mut hosts = Hosts { names: Vec::new() };
        let switch = name("sw");
        ip(&["netns", "add", &switch])?;
        hosts.names.push(switch.clone());
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        for (role, address) in [("reg", REGISTRY_IP), ("pay", PAYMENT_IP), ("cli", CLIENT_IP)] {
            let host = name(role);
            ip(&["netns", "add", &host])?;
            hosts.names.push(host.clone());
            let (inside, outside) = (format!("m{tag}{role}a"), format!("m{tag}{role}b"));
            ip(&["link", "add", &inside, "type", "veth", "peer", "name", &outside])?;
            ip(&["link", "set", &inside, "netns", &host])?;
            ip(&["link", "set", &outside, "netns", &switch])?;
            ip(&["-n", &switch, "link", "set", &outside, "master", "br0"])?;
            ip(&["-n", &switch, "link", "set", &outside, "up"])?;
            ip(&["-n", &host, "addr", "add", &format!("{address}/24"), "dev", &inside])?;
            ip(&["-n", &host, "link", "set", &inside, "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    fn host(&self, role: &str) -> &str {
        self.names.iter().find(|n| n.ends_with(&format!("-{role}"))).expect("a host")
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// `binary args` run in namespace `host`, started and serving.
fn start_in(host: &str, binary: &str, args: &[&str]) -> Running {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", host]).arg(workspace_binary(binary)).args(args);
    mesh_e2e::serve(command).0
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn a_mesh_on_separate_hosts_is_queried_over_tls_with_tokens() {
    if !nix_root() {
        eprintln!("skipped: network namespaces need root (ip netns); CI runs this test as root");
        return;
    }
    let hosts = match Hosts::new() {
        Ok(hosts) => hosts,
        Err(error) => {
            eprintln!("skipped: cannot make network namespaces here ({error})");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let made = certs::create(
        &secrets,
        &[
            ServiceCert { name: "registry".into(), hosts: vec![REGISTRY_IP.into()] },
            // A domain's certificate names the domain: clients check it.
            ServiceCert { name: "payment".into(), hosts: vec![PAYMENT_IP.into(), "payment".into()] },
        ],
    )
    .unwrap();
    let other_ca = dir.path().join("other");
    certs::create(&other_ca, &[]).unwrap();
    let issuer_dir = secrets.join("issuer");
    let issuer = LocalIssuer::open_or_create(&issuer_dir).unwrap();
    let token =
        issuer.issue("lee", &["owner:payment".into()], Duration::from_secs(600), DEFAULT_AUDIENCE).unwrap();
    let (ca, jwks, issuer_dir) = (path(&secrets.join("ca.pem")), path(issuer.jwks_file()), path(&issuer_dir));
    let pseudonym_key = secrets.join("pseudonym.key");
    mesh_grpc::private_files::create_secret(&pseudonym_key).unwrap();
    let pseudonym_key = path(&pseudonym_key);

    // A service will not listen in plaintext on an address other than loopback.
    let plaintext = Command::new("ip")
        .args(["netns", "exec", hosts.host("reg")])
        .arg(workspace_binary("catalog-registry"))
        .args(["--addr", &format!("{REGISTRY_IP}:50050"), "--auth-jwks", &jwks])
        .arg("--data-dir")
        .arg(dir.path().join("refused"))
        .output()
        .unwrap();
    assert!(!plaintext.status.success());
    let stderr = String::from_utf8_lossy(&plaintext.stderr);
    assert!(stderr.contains("refusing to serve plaintext on 10.250.7.1:50050"), "{stderr}");

    let registry_addr = format!("{REGISTRY_IP}:50050");
    let registry_url = format!("https://{registry_addr}");
    let (registry_data, payment_data) =
        (path(&dir.path().join("registry")), path(&dir.path().join("payment")));
    let (registry_cert, registry_key) = (path(&made[0].cert), path(&made[0].key));
    // The registry alone holds the signing key; it writes payment's token.
    let payment_token = path(&dir.path().join("tokens").join("payment"));
    let _registry = start_in(
        hosts.host("reg"),
        "catalog-registry",
        &[
            "--addr",
            &registry_addr,
            "--data-dir",
            &registry_data,
            "--tls-cert",
            &registry_cert,
            "--tls-key",
            &registry_key,
            "--auth-jwks",
            &jwks,
            "--auth-issuer",
            "mesh-local",
            "--token-exchange-issuer-dir",
            &issuer_dir,
            "--service-token",
            &format!("payment={payment_token}"),
        ],
    );
    let (payment_cert, payment_key) = (path(&made[1].cert), path(&made[1].key));
    let payment_addr = format!("{PAYMENT_IP}:50052");
    let product = mesh_e2e::payment_product(dir.path(), 50, 1);
    let _payment = start_in(
        hosts.host("pay"),
        "mesh-domain",
        &[
            "--addr",
            &payment_addr,
            "--data-dir",
            &payment_data,
            "--registry",
            &registry_url,
            "--ca-file",
            &ca,
            "--tls-cert",
            &payment_cert,
            "--tls-key",
            &payment_key,
            "--auth-jwks",
            &jwks,
            "--auth-issuer",
            "mesh-local",
            "--token-file",
            &payment_token,
            "--pseudonym-key",
            &pseudonym_key,
            "--product",
            &product,
        ],
    );

    let mesh = |registry: &str, ca_file: &str| -> Output {
        Command::new("ip")
            .args(["netns", "exec", hosts.host("cli")])
            .arg(workspace_binary("mesh"))
            .args(["--registry", registry, "--ca-file", ca_file, "--timeout", "3s"])
            .args(["query", "payment.card_spending", "--select", "seq", "--limit", "3", "--format", "csv"])
            .env("MESH_TOKEN", &token)
            .env("MESH_CACHE_DIR", dir.path().join("cache"))
            .env("MESH_CONFIG_DIR", dir.path().join("config"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let output = loop {
        let output = mesh(&registry_url, &ca);
        if output.status.success() || started.elapsed() > Duration::from_secs(30) {
            break output;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert_eq!(csv.lines().next(), Some("seq"));

    // The token is never sent in plaintext to another host.
    let refused = mesh(&format!("http://{registry_addr}"), &ca);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refusing to send a token in plaintext to http://10.250.7.1:50050"), "{stderr}");
    // A client trusting another CA does not accept the registry's certificate.
    let untrusted = mesh(&registry_url, &path(&other_ca.join("ca.pem")));
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&untrusted.stdout).contains("seq"));
}

/// Whether this process runs as root.
fn nix_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
