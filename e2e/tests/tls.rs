//! The registry and the payment domain as processes serving TLS with
//! certificates made for the test and requiring tokens of a local issuer:
//! the domain registers over TLS with a service token it signs itself, and
//! `mesh query` reaches both with the CA and a token; without the CA, in
//! plaintext, or without a token, it is refused. pyarrow's Flight client and
//! ADBC (through `mesh sql serve`) read over TLS with the CA too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mesh_e2e::{Running, workspace_binary};
use mesh_grpc::auth::issuer::{DEFAULT_AUDIENCE, LocalIssuer};
use mesh_grpc::certs::{self, ServiceCert};

/// Starts `binary` with `args`; returns it and the address it serves on.
fn start(binary: &str, args: &[&str]) -> (Running, String) {
    let mut command = Command::new(workspace_binary(binary));
    command.args(args);
    mesh_e2e::serve(command)
}

/// A CA and, signed by it, certificates for 127.0.0.1 of the registry, of
/// the payment domain (which names `payment`) and of `mesh sql serve`, as
/// files in `dir`: the CA, then each certificate and key.
fn pki(dir: &Path) -> (PathBuf, [(PathBuf, PathBuf); 3]) {
    let hosts = |extra: &[&str]| {
        let mut hosts = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        hosts.extend(extra.iter().map(|h| (*h).to_owned()));
        hosts
    };
    let files = certs::create(
        dir,
        &[
            ServiceCert { name: "registry".into(), hosts: hosts(&[]) },
            ServiceCert { name: "payment".into(), hosts: hosts(&["payment"]) },
            ServiceCert { name: "sql".into(), hosts: hosts(&[]) },
        ],
    )
    .unwrap();
    let pair = |i: usize| (files[i].cert.clone(), files[i].key.clone());
    (dir.join("ca.pem"), [pair(0), pair(1), pair(2)])
}

#[test]
fn a_mesh_served_over_tls_is_queried_with_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, [registry_pki, payment_pki, sql_pki]) = pki(dir.path());
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let tls_of = |(cert, key): &(PathBuf, PathBuf)| {
        ["--tls-cert".to_owned(), path(cert), "--tls-key".to_owned(), path(key)]
    };
    let issuer_dir = dir.path().join("issuer");
    let issuer = LocalIssuer::open_or_create(&issuer_dir).unwrap();
    let jwks = path(issuer.jwks_file());
    let issuer_dir = path(&issuer_dir);
    let token =
        issuer.issue("lee", &["owner:payment".into()], Duration::from_secs(600), DEFAULT_AUDIENCE).unwrap();
    let registry_dir = path(&dir.path().join("registry"));
    let mut registry_args = vec!["--addr", "127.0.0.1:0", "--data-dir", &registry_dir, "--auth-jwks", &jwks];
    registry_args.extend(["--token-exchange-issuer-dir", &issuer_dir]);
    let registry_tls = tls_of(&registry_pki);
    registry_args.extend(registry_tls.iter().map(String::as_str));
    let (_registry, registry_addr) = start("catalog-registry", &registry_args);
    let registry = format!("https://{registry_addr}");

    let payment_dir = path(&dir.path().join("payment"));
    let ca_file = path(&ca);
    let mut payment_args = vec!["--addr", "127.0.0.1:0", "--data-dir", &payment_dir, "--registry", &registry];
    let product = mesh_e2e::payment_product(dir.path(), 50, 1);
    payment_args.extend(["--ca-file", &ca_file, "--product", &product]);
    let pseudonym_key = dir.path().join("pseudonym.key");
    mesh_grpc::private_files::create_secret(&pseudonym_key).unwrap();
    let pseudonym_key = path(&pseudonym_key);
    payment_args.extend([
        "--auth-jwks",
        &jwks,
        "--issuer-dir",
        &issuer_dir,
        "--pseudonym-key",
        &pseudonym_key,
    ]);
    let payment_tls = tls_of(&payment_pki);
    payment_args.extend(payment_tls.iter().map(String::as_str));
    let (_payment, payment_addr) = start("mesh-domain", &payment_args);

    let mesh_with = |args: &[&str], token: &str| {
        Command::new(workspace_binary("mesh"))
            .args(args)
            .env("MESH_CACHE_DIR", dir.path().join("cache"))
            .env("MESH_CONFIG_DIR", dir.path().join("config"))
            .env("MESH_TOKEN", token)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let mesh = |args: &[&str]| mesh_with(args, &token);
    let query = ["query", "payment.card_spending", "--select", "seq", "--limit", "3", "--format", "csv"];
    let started = Instant::now();
    let output = loop {
        let mut args = vec!["--ca-file", &ca_file, "--registry", &registry];
        args.extend(query);
        let output = mesh(&args);
        if output.status.success() || started.elapsed() > Duration::from_secs(30) {
            break output;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 4);

    // Without the CA the server's certificate is not trusted; plaintext to
    // a TLS server gets nowhere either.
    let mut untrusted = vec!["--registry", registry.as_str()];
    untrusted.extend(query);
    assert_eq!(mesh(&untrusted).status.code(), Some(1));
    let plaintext_url = format!("http://{registry_addr}");
    let mut plaintext = vec!["--registry", plaintext_url.as_str()];
    plaintext.extend(query);
    assert_eq!(mesh(&plaintext).status.code(), Some(1));
    // With the CA but a token the services do not trust: refused, and the
    // cache does not answer for it.
    let mut args = vec!["--ca-file", &ca_file, "--registry", &registry];
    args.extend(query);
    let refused = mesh_with(&args, "not-a-token");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the bearer token is not a well-formed JWT"), "{stderr}");

    // REST on the same TLS port, to an HTTP/1.1-only client as well (both
    // protocols are offered by ALPN), refused without the CA; a client that
    // connects and never says a word holds up no one else's handshake.
    let _silent = std::net::TcpStream::connect(&payment_addr).unwrap();
    let for_payment = issuer
        .issue("lee", &["owner:payment".into()], Duration::from_secs(600), "urn:woori-mesh:domain:payment")
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
        let http1 = reqwest::Client::builder().add_root_certificate(ca).http1_only().build().unwrap();
        let url = format!("https://{payment_addr}/v1/products/payment.card_spending/rows?select=seq&limit=2");
        let response =
            http1.get(&url).bearer_auth(&for_payment).header("accept", "text/csv").send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap().lines().count(), 3);
        assert!(
            reqwest::Client::new().get(&url).bearer_auth(&for_payment).send().await.is_err(),
            "untrusted"
        );
    });

    // Arrow clients over TLS with the mesh's CA (the examples analysts
    // start from): pyarrow's Flight client at the domain, and ADBC at `mesh
    // sql serve`, which reads the domain over TLS in turn. Without the CA,
    // neither gets anywhere.
    let python = crate::common::tool("arrow-venv/bin/python");
    let example_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python-arrow");
    // An example run with `args`, `token` and `ca` (the CA flag, or none),
    // never a CA file from the environment.
    let example = |name: &str, args: &[&str], token: &str, ca: &[&str]| {
        Command::new(&python)
            .arg(example_dir.join(name))
            .args(args)
            .args(ca)
            .env("MESH_TOKEN", token)
            .env_remove("MESH_CA_FILE")
            .output()
            .unwrap()
    };
    let domain = format!("https://{payment_addr}");
    let read_args =
        ["--domain", &domain, "--product", "payment.card_spending", "--select", "seq", "--limit", "2"];
    let flight = |ca: &[&str]| example("read.py", &read_args, &for_payment, ca);
    let read = flight(&["--ca-file", &ca_file]);
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    assert_eq!(read_lines(&read).len(), 3, "a header and 2 rows");
    assert!(!flight(&[]).status.success(), "the domain's certificate is not trusted without the CA");

    let sql_tls = tls_of(&sql_pki);
    let mut sql_args = vec!["--ca-file", &ca_file, "--registry", &registry, "sql", "serve"];
    sql_args.extend(["--addr", "127.0.0.1:0", "--auth-jwks", &jwks, "--auth-issuer", "mesh-local"]);
    sql_args.extend(sql_tls.iter().map(String::as_str));
    let (_sql, sql_addr) = start("mesh", &sql_args);
    let sql_url = format!("https://{sql_addr}");
    let sql_args = ["--sql", &sql_url, r#"SELECT seq FROM "payment.card_spending" LIMIT 2"#];
    let adbc = |ca: &[&str]| example("sql.py", &sql_args, &token, ca);
    let selected = adbc(&["--ca-file", &ca_file]);
    assert!(selected.status.success(), "{}", String::from_utf8_lossy(&selected.stderr));
    assert_eq!(read_lines(&selected), read_lines(&read), "the same rows through SQL");
    assert!(!adbc(&[]).status.success(), "mesh sql serve's certificate is not trusted without the CA");
}

/// The lines `output` printed.
fn read_lines(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}
