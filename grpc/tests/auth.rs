//! Bearer tokens signed by real keys against the verifier and the server's
//! authentication layer: a good token gives its principal and roles; each
//! way a token can be wrong is refused with its own message; a key added to
//! the JWKS file, or published by an OIDC issuer, is picked up without a
//! restart; a client never sends a token in plaintext but to loopback.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mesh_grpc::auth::test_tokens::{TEST_ISSUER, TestIssuer, TestKey, claims, write_jwks};
use mesh_grpc::auth::{KeySource, Principal, Verifier, VerifierConfig};
use mesh_grpc::{Credentials, MeshServer};
use serde_json::json;

fn config(keys: KeySource) -> VerifierConfig {
    VerifierConfig {
        keys,
        issuer: Some(TEST_ISSUER.into()),
        audience: "woori-mesh".into(),
        max_lifetime: Duration::from_secs(24 * 3600),
        role_claim: "roles".into(),
        role_map: HashMap::from([("data-analysts".to_owned(), "analyst".to_owned())]),
        unmapped_groups_are_roles: false,
    }
}

async fn refused(verifier: &Verifier, token: &str) -> String {
    verifier.verify(Some(&format!("Bearer {token}"))).await.unwrap_err().to_string()
}

#[tokio::test]
async fn tokens_are_verified_against_the_trusted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::new(dir.path());
    let verifier = Verifier::new(config(KeySource::File(issuer.jwks.clone()))).unwrap();

    // With a role map, only the groups it names give roles: a group named
    // `admin` in the IdP is no admin of the mesh.
    let token = issuer.token("analyst-kim", &["data-analysts", "viewers", "admin"]);
    assert_eq!(
        verifier.verify(Some(&format!("Bearer {token}"))).await.unwrap(),
        Principal {
            subject: "analyst-kim".into(),
            issuer: TEST_ISSUER.into(),
            roles: vec!["analyst".into()]
        }
    );
    let unsafe_map =
        VerifierConfig { unmapped_groups_are_roles: true, ..config(KeySource::File(issuer.jwks.clone())) };
    let as_before =
        Verifier::new(unsafe_map).unwrap().verify(Some(&format!("Bearer {token}"))).await.unwrap();
    assert_eq!(as_before.roles, ["analyst", "viewers", "admin"], "the loudly named flag keeps the old way");
    let unmapped =
        VerifierConfig { role_map: HashMap::new(), ..config(KeySource::File(issuer.jwks.clone())) };
    let plain = Verifier::new(unmapped).unwrap().verify(Some(&format!("Bearer {token}"))).await.unwrap();
    assert_eq!(plain.roles, ["data-analysts", "viewers", "admin"], "without a map, values are roles");
    assert_eq!(
        verifier.verify(None).await.unwrap_err().to_string(),
        "the call carries no bearer token; send `authorization: Bearer <token>` (mesh token print)"
    );
    for (what, token, message) in issuer.bad_tokens() {
        assert_eq!(refused(&verifier, &token).await, message, "{what}");
    }
    // Within the minute of clock skew, an expired token still passes.
    let late = issuer.key.sign(&claims("kim", &[], json!({"exp": mesh_grpc::auth::test_tokens::now() - 30})));
    assert!(verifier.verify(Some(&format!("Bearer {late}"))).await.is_ok());
    let elsewhere = issuer.key.sign(&claims("kim", &[], json!({"iss": "https://elsewhere.test"})));
    assert_eq!(
        refused(&verifier, &elsewhere).await,
        "the token is from another issuer; this service accepts `https://issuer.test`"
    );
    let wrong_key = TestKey::new("k1").sign(&claims("kim", &[], json!({})));
    assert_eq!(
        refused(&verifier, &wrong_key).await,
        "the token's signature does not verify; get a new token from the issuer"
    );
    let basic = verifier.verify(Some("Basic dXNlcjpwYXNz")).await.unwrap_err().to_string();
    assert!(basic.starts_with("the bearer token is not a well-formed JWT"), "{basic}");
    assert!(refused(&verifier, "not-a-jwt").await.starts_with("the bearer token is not a well-formed JWT"));

    // Key rotation: a new key in the file is used without a restart.
    let next = TestKey::new("k2");
    write_jwks(&issuer.jwks, &[&issuer.key, &next]);
    let rotated = next.sign(&claims("analyst-kim", &[], json!({})));
    assert_eq!(verifier.verify(Some(&format!("Bearer {rotated}"))).await.unwrap().subject, "analyst-kim");
}

/// Serves an OIDC discovery document and the JWKS `keys` holds, on loopback.
async fn oidc_issuer(keys: Arc<RwLock<serde_json::Value>>) -> String {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
        .route("/jwks", get(move || async move { axum::Json(keys.read().unwrap().clone()) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn an_oidc_issuers_keys_are_discovered_and_a_new_kid_is_fetched() {
    let first = TestKey::new("k1");
    let published = Arc::new(RwLock::new(json!({"keys": [first.jwk()]})));
    let url = oidc_issuer(Arc::clone(&published)).await;
    let mut config = config(KeySource::Oidc(url.clone()));
    config.issuer = None;
    let verifier = Verifier::new(config).unwrap();
    let token = first.sign(&claims("kim", &["analyst"], json!({"iss": url})));
    assert_eq!(verifier.verify(Some(&format!("Bearer {token}"))).await.unwrap().issuer, url);
    // Tokens must name the discovered issuer.
    let other = first.sign(&claims("kim", &[], json!({"iss": "https://elsewhere.test"})));
    assert_eq!(
        refused(&verifier, &other).await,
        format!("the token is from another issuer; this service accepts `{url}`")
    );

    // The issuer rotates: a token with the new kid is verified once the
    // keys may be fetched again (at most every few seconds).
    let second = TestKey::new("k2");
    *published.write().unwrap() = json!({"keys": [first.jwk(), second.jwk()]});
    let rotated = second.sign(&claims("lee", &[], json!({"iss": url})));
    let started = std::time::Instant::now();
    loop {
        match verifier.verify(Some(&format!("Bearer {rotated}"))).await {
            Ok(principal) => break assert_eq!(principal.subject, "lee"),
            Err(error) => {
                assert!(started.elapsed() < Duration::from_secs(15), "never picked up: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    // A plaintext issuer elsewhere than loopback is refused at once.
    let err = Verifier::new(self::config(KeySource::Oidc("http://sso.example.com".into()))).unwrap_err();
    assert!(err.to_string().contains("must be an https:// URL"), "{err}");
}

#[test]
fn a_token_is_never_sent_in_plaintext_but_to_loopback() {
    let credentials = Credentials::token("a.b.c").unwrap();
    let timeout = Duration::from_secs(1);
    // Channels connect lazily: nothing is sent by these checks.
    let err = tokio::runtime::Runtime::new().unwrap().block_on(async {
        assert!(mesh_grpc::client::channel("http://127.0.0.1:1", timeout, &credentials).is_ok());
        assert!(mesh_grpc::client::channel("http://localhost:1", timeout, &credentials).is_ok());
        assert!(mesh_grpc::client::channel("https://192.0.2.7:1", timeout, &credentials).is_ok());
        assert!(mesh_grpc::client::channel("http://192.0.2.7:1", timeout, &Credentials::none()).is_ok());
        mesh_grpc::client::channel("http://192.0.2.7:1", timeout, &credentials).unwrap_err()
    });
    assert_eq!(
        err.to_string(),
        "refusing to send a token in plaintext to http://192.0.2.7:1: use an https:// URL (with --ca-file if \
         the service's certificate is from a private CA); plaintext is allowed to loopback only"
    );
}

/// Calls `path` (a raw unary method) on `channel`.
async fn call(channel: mesh_grpc::MeshChannel, path: &'static str) -> Result<bytes::Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = tonic::Request::new(bytes::Bytes::from_static(b"ping"));
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(request, path, mesh_grpc::codec::RawCodec).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_server_requires_a_token_except_for_health_and_reflection() {
    use mesh_grpc::unary::RawUnaryRoute;

    let dir = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::new(dir.path());
    let echo = RawUnaryRoute::new(Arc::new(|request| Box::pin(async move { Ok(request.into_inner()) })));
    let serve = |auth: mesh_grpc::AuthArgs| {
        let echo = echo.clone();
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let server = MeshServer::new(&[], &[])
                .await
                .unwrap()
                .route("/test.Echo/Ping", echo)
                .authenticate(auth.layer().unwrap());
            tokio::spawn(server.serve(listener, std::future::pending()));
            url
        }
    };
    let url = serve(issuer.auth_args()).await;
    let channel = |credentials: Credentials| {
        mesh_grpc::client::channel(&url, Duration::from_secs(5), &credentials).unwrap()
    };

    let refused = call(channel(Credentials::none()), "/test.Echo/Ping").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        refused.message(),
        "the call carries no bearer token; send `authorization: Bearer <token>` (mesh token print)"
    );
    let good = Credentials::token(&issuer.token("kim", &[])).unwrap();
    assert_eq!(call(channel(good), "/test.Echo/Ping").await.unwrap(), "ping");
    for (what, token, message) in issuer.bad_tokens() {
        let status = call(channel(Credentials::token(&token).unwrap()), "/test.Echo/Ping").await.unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::Unauthenticated, message.as_str()),
            "{what}"
        );
    }

    // Health and reflection stay open.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(Credentials::none()));
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    let listed = mesh_grpc::reflection::reflected_services(channel(Credentials::none())).await.unwrap();
    assert!(listed.iter().any(|s| s == "grpc.health.v1.Health"), "{listed:?}");

    // ... unless closed by flag.
    let closed =
        serve(mesh_grpc::AuthArgs { auth_health: true, auth_reflection: true, ..issuer.auth_args() }).await;
    let anonymous =
        mesh_grpc::client::channel(&closed, Duration::from_secs(5), &Credentials::none()).unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(anonymous.clone());
    let status =
        health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(mesh_grpc::reflection::reflected_services(anonymous).await.is_err());
}
