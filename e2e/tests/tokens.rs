//! `mesh token`: tokens signed by the local issuer verify against the JWKS
//! it publishes; `print` shows the token in use.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use mesh_e2e::workspace_binary;
use mesh_grpc::auth::{KeySource, Verifier, VerifierConfig};

fn mesh(args: &[&str], token: Option<&str>, config: &std::path::Path) -> std::process::Output {
    let mut command = Command::new(workspace_binary("mesh"));
    command.args(args).env_remove("MESH_TOKEN").env("MESH_CONFIG_DIR", config);
    if let Some(token) = token {
        command.env("MESH_TOKEN", token);
    }
    command.output().unwrap()
}

#[tokio::test]
async fn issued_tokens_verify_and_print_shows_the_one_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let issuer_dir = dir.path().join("issuer");
    let issuer = issuer_dir.to_str().unwrap();
    let issued = mesh(
        &[
            "token",
            "issue",
            "--sub",
            "kim",
            "--role",
            "analyst",
            "--role",
            "viewer",
            "--ttl",
            "1h",
            "--issuer-dir",
            issuer,
        ],
        None,
        &config,
    );
    assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    let token = String::from_utf8(issued.stdout).unwrap().trim().to_owned();
    let verifier = Verifier::new(VerifierConfig {
        keys: KeySource::File(issuer_dir.join("jwks.json")),
        issuer: Some("mesh-local".into()),
        audience: "woori-mesh".into(),
        max_lifetime: Duration::from_secs(86_400),
        role_claim: "roles".into(),
        role_map: HashMap::new(),
        unmapped_groups_are_roles: false,
    })
    .unwrap();
    let principal = verifier.verify(Some(&format!("Bearer {token}"))).await.unwrap();
    assert_eq!((principal.subject.as_str(), principal.roles.len()), ("kim", 2));

    let too_long =
        mesh(&["token", "issue", "--sub", "kim", "--ttl", "90days", "--issuer-dir", issuer], None, &config);
    assert_eq!(too_long.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&too_long.stderr).trim(),
        "error: authentication: a token's lifetime must be between 1 s and 30 days (--ttl)"
    );

    let printed = mesh(&["token", "print"], Some(&token), &config);
    assert_eq!(String::from_utf8_lossy(&printed.stdout).trim(), token);
    let none = mesh(&["token", "print"], None, &config);
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&none.stderr).trim(),
        "error: no token for the registry http://127.0.0.1:50050: start the mesh (mesh up), sign in (mesh login), \
         or set MESH_TOKEN"
    );
}
