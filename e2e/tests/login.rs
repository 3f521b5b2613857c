//! `mesh login` against a standards-compliant OAuth 2.0 / OIDC provider
//! built with Authlib (e2e/fixtures/oidc_provider.py): the device
//! authorization grant with the person's approval, tokens kept in a private
//! profile, the registry verifying them through OIDC discovery with the
//! IdP's groups mapped to roles, renewal with the refresh token, and a
//! denied sign-in.

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::tool;
use mesh_e2e::Running;

/// Starts the provider; returns it and its issuer URL.
fn provider() -> (Running, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/oidc_provider.py");
    let mut child = Command::new(tool("venv/bin/python"))
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("http://127.0.0.1:"), "the provider printed {line:?}");
    (Running(child), line.trim().to_owned())
}

/// Starts the registry trusting the provider (its web catalog signing in
/// with the provider's `mesh-catalog` client); returns it and its URL.
fn registry(dir: &Path, issuer: &str) -> (Running, String) {
    let mut command = Command::new(mesh_e2e::workspace_binary("catalog-registry"));
    command
        .args(["--addr", "127.0.0.1:0", "--auth-oidc-issuer", issuer, "--auth-role-claim", "groups"])
        .args(["--web-oidc-client-id", "mesh-catalog"])
        .args(["--auth-role-map", "card-analysts=analyst,card-owners=owner:payment"])
        .arg("--data-dir")
        .arg(dir.join("registry"));
    let (running, addr) = mesh_e2e::serve(command);
    (running, format!("http://{addr}"))
}

/// `mesh login` started; the user code it shows once it is waiting.
fn start_login(
    registry: &str,
    issuer: &str,
    config: &Path,
) -> (Child, String, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(mesh_e2e::workspace_binary("mesh"))
        .args(["--registry", registry, "login", "--issuer", issuer, "--client-id", "mesh-cli"])
        .env("MESH_CONFIG_DIR", config)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let code = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(line.starts_with(&format!("To sign in, open {issuer}/device and enter the code ")), "{line}");
    (child, code, stderr)
}

fn mesh(registry: &str, config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(mesh_e2e::workspace_binary("mesh"))
        .args(["--registry", registry])
        .args(args)
        .env("MESH_CONFIG_DIR", config)
        .env_remove("MESH_TOKEN")
        .output()
        .unwrap()
}

fn profile(config: &Path) -> (std::path::PathBuf, serde_json::Value) {
    let entry = std::fs::read_dir(config.join("profiles")).unwrap().next().unwrap().unwrap();
    let text = std::fs::read_to_string(entry.path()).unwrap();
    (entry.path(), serde_json::from_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_the_company_idp() {
    let dir = tempfile::tempdir().unwrap();
    let (_provider, issuer) = provider();
    let (_registry, registry_url) = registry(dir.path(), &issuer);
    let config = dir.path().join("config");

    // The person opens the page and approves as `kim`.
    let (mut login, code, mut stderr) = start_login(&registry_url, &issuer, &config);
    let approved = reqwest::get(format!("{issuer}/approve?user_code={code}&user=kim")).await.unwrap();
    assert!(approved.status().is_success());
    let status = tokio::task::spawn_blocking(move || login.wait().unwrap()).await.unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("signed in; the token is kept for"), "{rest}");

    let (path, first) = profile(&config);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(first["login"]["issuer"], issuer.as_str());
    assert!(first["login"]["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));

    // The registry sees kim with the IdP's group mapped to a mesh role. The
    // access token lives 30 s, less than the minute before expiry at which
    // the CLI renews it: this call renews it with the refresh token first.
    let whoami = mesh(&registry_url, &config, &["whoami"]);
    assert!(whoami.status.success(), "{}", String::from_utf8_lossy(&whoami.stderr));
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        format!("subject: kim\nissuer:  {issuer}\nroles:   analyst\n")
    );
    let (_, renewed) = profile(&config);
    assert_ne!(renewed["token"], first["token"], "the token was renewed");
    assert_ne!(renewed["login"]["refresh_token"], first["login"]["refresh_token"], "refresh tokens rotate");
    let printed = mesh(&registry_url, &config, &["token", "print"]);
    assert_eq!(String::from_utf8_lossy(&printed.stdout).trim().split('.').count(), 3);

    // A denied sign-in ends with that message and keeps nothing new.
    let other = dir.path().join("other");
    let (mut login, code, mut stderr) = start_login(&registry_url, &issuer, &other);
    reqwest::get(format!("{issuer}/deny?user_code={code}")).await.unwrap();
    let status = tokio::task::spawn_blocking(move || login.wait().unwrap()).await.unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(rest.contains("error: the sign-in was denied"), "{rest}");
    assert!(!other.join("profiles").exists());
}

#[test]
fn the_web_catalog_signs_people_in_through_the_idp_with_pkce() {
    let dir = tempfile::tempdir().unwrap();
    let (_provider, issuer) = provider();
    let (_registry, registry) = registry(dir.path(), &issuer);
    let shots = common::screenshots("catalog-idp");
    let report = common::run_browser(
        "catalog_idp.py",
        &serde_json::json!({ "catalog": registry, "screenshots": shots }),
    );
    assert!(report.contains("4 browser checks passed"), "{report}");
}
