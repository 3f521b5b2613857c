//! Bearer tokens signed by real keys (ES256, made by rcgen) against the
//! verifier: a good token gives its principal and roles; each way a token
//! can be wrong is refused with its own message; a key added to the JWKS
//! file is picked up without a restart.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mesh_grpc::auth::{Principal, Verifier, VerifierConfig};
use serde_json::{Value, json};

/// A signing key and its public JWK under `kid`.
fn key(kid: &str) -> (EncodingKey, Jwk, String) {
    let pair = rcgen::KeyPair::generate().unwrap();
    let signing = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    (signing, jwk, pair.public_key_pem())
}

fn write_jwks(path: &Path, keys: &[&Jwk]) {
    let set = JwkSet { keys: keys.iter().map(|k| (*k).clone()).collect() };
    std::fs::write(path, serde_json::to_string(&set).unwrap()).unwrap();
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims(overrides: Value) -> Value {
    let mut claims = json!({
        "sub": "analyst-kim", "iss": "https://issuer.test", "aud": "woori-mesh",
        "iat": now(), "exp": now() + 600, "groups": ["data-analysts", "viewers"],
    });
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    format!("Bearer {}", jsonwebtoken::encode(&header, claims, key).unwrap())
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn tokens_are_verified_against_the_trusted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let (signing, jwk, public_pem) = key("k1");
    write_jwks(&jwks, &[&jwk]);
    let verifier = Verifier::new(VerifierConfig {
        jwks_file: jwks.clone(),
        issuer: Some("https://issuer.test".into()),
        audience: "woori-mesh".into(),
        max_lifetime: Duration::from_secs(24 * 3600),
        role_claim: "groups".into(),
        role_map: HashMap::from([("data-analysts".to_owned(), "analyst".to_owned())]),
    })
    .unwrap();
    let verify = |header: &str| verifier.verify(Some(header));

    assert_eq!(
        verify(&sign(&signing, "k1", &claims(json!({})))).unwrap(),
        Principal {
            subject: "analyst-kim".into(),
            issuer: "https://issuer.test".into(),
            roles: vec!["analyst".into(), "viewers".into()],
        }
    );

    let refused = |header: &str| verify(header).unwrap_err().to_string();
    assert_eq!(
        verifier.verify(None).unwrap_err().to_string(),
        "the call carries no bearer token; send `authorization: Bearer <token>` (mesh token print)"
    );
    assert_eq!(
        refused(&sign(&signing, "k1", &claims(json!({"iat": now() - 7200, "exp": now() - 3600})))),
        "the token has expired; get a new one (mesh login, or mesh token issue)"
    );
    // Within the minute of clock skew, an expired token still passes.
    assert!(verify(&sign(&signing, "k1", &claims(json!({"exp": now() - 30})))).is_ok());
    assert_eq!(
        refused(&sign(&signing, "k1", &claims(json!({"nbf": now() + 3600})))),
        "the token is not valid yet (nbf is in the future); check the clocks"
    );
    assert_eq!(
        refused(&sign(&signing, "k1", &claims(json!({"aud": "another-service"})))),
        "the token is for another audience; this service accepts `woori-mesh`"
    );
    assert_eq!(
        refused(&sign(&signing, "k1", &claims(json!({"iss": "https://elsewhere.test"})))),
        "the token is from another issuer; this service accepts `https://issuer.test`"
    );
    assert_eq!(
        refused(&sign(&signing, "k1", &claims(json!({"exp": now() + 30 * 24 * 3600})))),
        format!(
            "the token lives {} s, longer than the 86400 s this service accepts; get a shorter-lived token",
            30 * 24 * 3600
        )
    );
    let (stranger, _, _) = key("k1");
    assert_eq!(
        refused(&sign(&stranger, "k1", &claims(json!({})))),
        "the token's signature does not verify; get a new token from the issuer"
    );
    assert_eq!(
        refused(&sign(&signing, "k9", &claims(json!({})))),
        "the token was signed by an unknown key (kid `k9`); get a token from an issuer this service trusts"
    );

    // `none`, and HMAC with the public key as its secret (the classic
    // algorithm-confusion attack), are refused by algorithm.
    let none = format!("Bearer {}.{}.", b64(&json!({"alg": "none", "kid": "k1"})), b64(&claims(json!({}))));
    assert_eq!(
        refused(&none),
        "the token's algorithm `none` is not accepted; tokens must be signed with EdDSA, ES256 or RS256"
    );
    let mut hmac_header = Header::new(Algorithm::HS256);
    hmac_header.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &hmac_header,
        &claims(json!({})),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        refused(&format!("Bearer {confused}")),
        "the token's algorithm `HS256` is not accepted; tokens must be signed with EdDSA, ES256 or RS256"
    );
    assert!(refused("Basic dXNlcjpwYXNz").starts_with("the bearer token is not a well-formed JWT"));
    assert!(refused("Bearer not-a-jwt").starts_with("the bearer token is not a well-formed JWT"));

    // Key rotation: a new key in the file is used without a restart.
    let (next, next_jwk, _) = key("k2");
    write_jwks(&jwks, &[&jwk, &next_jwk]);
    assert_eq!(verify(&sign(&next, "k2", &claims(json!({})))).unwrap().subject, "analyst-kim");
}

/// Calls `path` (a raw unary method) on `channel` with `token`, if any.
async fn call(
    channel: tonic::transport::Channel,
    path: &'static str,
    token: Option<&str>,
) -> Result<bytes::Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(bytes::Bytes::from_static(b"ping"));
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", token.parse().unwrap());
    }
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(request, path, mesh_grpc::codec::RawCodec).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_server_requires_a_token_except_for_health_and_reflection() {
    use std::sync::Arc;

    use mesh_grpc::MeshServer;
    use mesh_grpc::authenticate::Authenticate;
    use mesh_grpc::unary::RawUnaryRoute;

    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let (signing, jwk, _) = key("k1");
    write_jwks(&jwks, &[&jwk]);
    let verifier = Arc::new(
        Verifier::new(VerifierConfig {
            jwks_file: jwks,
            issuer: None,
            audience: "woori-mesh".into(),
            max_lifetime: Duration::from_secs(3600),
            role_claim: "groups".into(),
            role_map: HashMap::new(),
        })
        .unwrap(),
    );
    let echo = RawUnaryRoute::new(Arc::new(|request| Box::pin(async move { Ok(request) })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = MeshServer::new(&[], &[])
        .await
        .unwrap()
        .route("/test.Echo/Ping", echo)
        .authenticate(Authenticate::new(verifier));
    tokio::spawn(server.serve(listener, std::future::pending()));
    let channel = mesh_grpc::client::channel(&format!("http://{addr}"), Duration::from_secs(5)).unwrap();

    let refused = call(channel.clone(), "/test.Echo/Ping", None).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        refused.message(),
        "the call carries no bearer token; send `authorization: Bearer <token>` (mesh token print)"
    );
    let token = sign(&signing, "k1", &claims(json!({"exp": now() + 600})));
    assert_eq!(call(channel.clone(), "/test.Echo/Ping", Some(&token)).await.unwrap(), "ping");
    let expired = sign(&signing, "k1", &claims(json!({"iat": now() - 7200, "exp": now() - 3600})));
    let refused = call(channel.clone(), "/test.Echo/Ping", Some(&expired)).await.unwrap_err();
    assert_eq!(refused.message(), "the token has expired; get a new one (mesh login, or mesh token issue)");

    // Health and reflection stay open.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    let listed = mesh_grpc::reflection::reflected_services(channel).await.unwrap();
    assert!(listed.iter().any(|s| s == "grpc.health.v1.Health"), "{listed:?}");
}
