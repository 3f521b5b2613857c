//! Tokens for tests, signed by real keys: a JWKS file of ES256 keys made
//! here, good tokens, and each kind of bad one (expired, not yet valid,
//! another audience, an unknown key, `alg: none`, HMAC keyed with the
//! public key, too long a lifetime). Compiled only with the `test-support`
//! feature.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::auth::issuer::DEFAULT_AUDIENCE;

/// The `iss` of test tokens.
pub const TEST_ISSUER: &str = "https://issuer.test";

/// A signing key with its public JWK and PEM.
pub struct TestKey {
    kid: String,
    signing: EncodingKey,
    jwk: Jwk,
    public_pem: String,
}

impl TestKey {
    /// A new ES256 key named `kid`.
    pub fn new(kid: &str) -> Self {
        crate::auth::jwt_crypto::install();
        let pair = rcgen::KeyPair::generate().expect("a key");
        let signing = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("an EC key");
        let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::ES256).expect("a JWK");
        jwk.common.key_id = Some(kid.to_owned());
        Self { kid: kid.to_owned(), signing, jwk, public_pem: pair.public_key_pem() }
    }

    /// The public JWK.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// `claims` signed with this key (ES256, its kid).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).expect("signs")
    }

    /// `claims` signed with HS256 keyed by this key's public PEM: the
    /// algorithm-confusion attack.
    pub fn sign_hmac_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(self.public_pem.as_bytes()))
            .expect("signs")
    }

    /// `claims` under a header naming `alg` and this key, with `signature`
    /// (base64url) that nobody computed.
    pub fn forged(&self, alg: &str, claims: &Value, signature: &str) -> String {
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.{signature}", b64(&json!({"alg": alg, "kid": self.kid})), b64(claims))
    }
}

/// Writes a JWKS file of `keys` to `path`.
pub fn write_jwks(path: &Path, keys: &[&TestKey]) {
    let set = JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() };
    std::fs::write(path, serde_json::to_string(&set).expect("serializes")).expect("writes the JWKS");
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64
}

/// Claims of a good ten-minute token for `subject` with `roles` (in the
/// `roles` claim), changed by `overrides`.
pub fn claims(subject: &str, roles: &[&str], overrides: Value) -> Value {
    let mut claims = json!({
        "sub": subject, "iss": TEST_ISSUER, "aud": DEFAULT_AUDIENCE,
        "iat": now(), "exp": now() + 600, "roles": roles,
    });
    if let Some(map) = overrides.as_object() {
        for (k, v) in map {
            claims[k] = v.clone();
        }
    }
    claims
}

/// A JWKS file of one key in a folder, and the key.
pub struct TestIssuer {
    /// The key tokens are signed with.
    pub key: TestKey,
    /// The JWKS file services trust.
    pub jwks: PathBuf,
    /// The audience its tokens are for.
    pub audience: String,
}

impl TestIssuer {
    /// A key `k1` and its JWKS file in `dir`.
    pub fn new(dir: &Path) -> Self {
        let key = TestKey::new("k1");
        let jwks = dir.join("test-jwks.json");
        write_jwks(&jwks, &[&key]);
        Self { key, jwks, audience: DEFAULT_AUDIENCE.to_owned() }
    }

    /// Like [`TestIssuer::new`], its tokens for `audience` (e.g. a domain's).
    pub fn for_audience(dir: &Path, audience: &str) -> Self {
        Self { audience: audience.to_owned(), ..Self::new(dir) }
    }

    /// A good token for `subject` with `roles`.
    pub fn token(&self, subject: &str, roles: &[&str]) -> String {
        self.key.sign(&claims(subject, roles, json!({"aud": self.audience})))
    }

    /// Each kind of bad token, with the message a service answers it with
    /// (services built with [`crate::AuthArgs::default`] plus this JWKS and
    /// issuer).
    pub fn bad_tokens(&self) -> Vec<(&'static str, String, String)> {
        let good = |overrides: Value| {
            let mut claims = claims("mallory", &["admin"], json!({"aud": self.audience}));
            for (k, v) in overrides.as_object().into_iter().flatten() {
                claims[k] = v.clone();
            }
            claims
        };
        let stranger = TestKey::new("k9");
        let lifetime = 30 * 24 * 3600;
        vec![
            (
                "expired",
                self.key.sign(&good(json!({"iat": now() - 7200, "exp": now() - 3600}))),
                "the token has expired; get a new one (mesh login, or mesh token issue)".into(),
            ),
            (
                "not yet valid",
                self.key.sign(&good(json!({"nbf": now() + 3600}))),
                "the token is not valid yet (nbf is in the future); check the clocks".into(),
            ),
            (
                "another audience",
                self.key.sign(&good(json!({"aud": "another-service"}))),
                crate::auth::AuthError::WrongAudience(self.audience.clone()).to_string(),
            ),
            (
                "unknown key",
                stranger.sign(&good(json!({}))),
                "the token was signed by an unknown key (kid `k9`); get a token from an issuer this service trusts"
                    .into(),
            ),
            (
                "alg none",
                self.key.forged("none", &good(json!({})), ""),
                "the token's algorithm `none` is not accepted; tokens must be signed with EdDSA, ES256 or RS256"
                    .into(),
            ),
            (
                "HMAC keyed with the public key",
                self.key.sign_hmac_with_public_key(&good(json!({}))),
                "the token's algorithm `HS256` is not accepted; tokens must be signed with EdDSA, ES256 or RS256"
                    .into(),
            ),
            (
                "RS256 naming an EC key",
                self.key.forged("RS256", &good(json!({})), "c2lnbmF0dXJl"),
                "the token's algorithm does not match the key it names; get a new token from the issuer".into(),
            ),
            (
                "issued in the future",
                self.key.sign(&good(json!({"iat": now() + 10 * 365 * 86_400, "exp": now() + 10 * 365 * 86_400 + 600}))),
                "the token says it was issued in the future (iat); check the clocks".into(),
            ),
            (
                "lifetime beyond the maximum",
                self.key.sign(&good(json!({"exp": now() + lifetime}))),
                format!(
                    "the token lives {lifetime} s, longer than the 86400 s this service accepts; get a shorter-lived token"
                ),
            ),
        ]
    }

    /// The flags of a service trusting this issuer.
    pub fn auth_args(&self) -> crate::AuthArgs {
        crate::AuthArgs {
            auth_jwks: Some(self.jwks.clone()),
            auth_issuer: Some(TEST_ISSUER.to_owned()),
            ..crate::AuthArgs::default()
        }
    }
}
