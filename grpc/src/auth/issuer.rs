//! The local token issuer, for a mesh without a company IdP: an ES256 key
//! created once in the mesh's data directory (mode 0600), its public half
//! published as a JWKS file that services verify against, and tokens signed
//! for a subject, its roles and a lifetime.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::Digest;

use crate::error::{GrpcError, Result};

/// The `iss` of tokens the local issuer signs.
pub const LOCAL_ISSUER: &str = "mesh-local";
/// The audience the mesh's services accept by default.
pub const DEFAULT_AUDIENCE: &str = "woori-mesh";
/// The longest lifetime the local issuer signs.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The issuer's key and where its JWKS is published.
pub struct LocalIssuer {
    key: EncodingKey,
    kid: String,
    jwks: PathBuf,
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("kid", &self.kid)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, path: &Path, error: impl std::fmt::Display) -> GrpcError {
    GrpcError::Auth(format!("cannot {what} {}: {error}", path.display()))
}

impl LocalIssuer {
    /// The issuer kept in `dir` (`issuer-key.pem`, `jwks.json`), created
    /// on first use.
    pub fn open_or_create(dir: &Path) -> Result<Self> {
        let key_path = dir.join("issuer-key.pem");
        if !key_path.exists() {
            crate::private_files::create_private_dir(dir).map_err(|e| failed("create", dir, e))?;
            let pair = rcgen::KeyPair::generate().map_err(|e| failed("make a key for", &key_path, e))?;
            crate::private_files::create_private_file(&key_path)
                .map_err(|e| failed("create", &key_path, e))?;
            std::fs::write(&key_path, pair.serialize_pem()).map_err(|e| failed("write", &key_path, e))?;
        }
        Self::load(dir)
    }

    fn load(dir: &Path) -> Result<Self> {
        crate::auth::jwt_crypto::install();
        let key_path = dir.join("issuer-key.pem");
        let pem = std::fs::read(&key_path).map_err(|e| failed("read", &key_path, e))?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| failed("use the key in", &key_path, e))?;
        let mut jwk =
            Jwk::from_encoding_key(&key, Algorithm::ES256).map_err(|e| failed("publish", &key_path, e))?;
        let public = serde_json::to_vec(&jwk.algorithm).unwrap_or_default();
        let kid = hex(&sha2::Sha256::digest(public)[..8]);
        jwk.common.key_id = Some(kid.clone());
        let jwks = dir.join("jwks.json");
        let set = serde_json::to_string_pretty(&JwkSet { keys: vec![jwk] }).expect("a JWKS serializes");
        // Written only when it changed: a service may hold the folder read-only.
        if std::fs::read_to_string(&jwks).ok().as_deref() != Some(set.as_str()) {
            std::fs::write(&jwks, set).map_err(|e| failed("write", &jwks, e))?;
        }
        Ok(Self { key, kid, jwks })
    }

    /// The issuer kept in `dir`, which must exist (a service that signs its
    /// own tokens with a key made by someone else).
    pub fn open(dir: &Path) -> Result<Self> {
        let key_path = dir.join("issuer-key.pem");
        if !key_path.exists() {
            return Err(failed(
                "find the issuer key",
                &key_path,
                "no such file; create it with `mesh token issue` or `mesh up`",
            ));
        }
        Self::load(dir)
    }

    /// The JWKS file services verify the issuer's tokens with.
    pub fn jwks_file(&self) -> &Path {
        &self.jwks
    }

    /// A token for `subject` with `roles`, valid for `ttl` (at most
    /// [`MAX_TTL`]) for `audience`.
    pub fn issue(&self, subject: &str, roles: &[String], ttl: Duration, audience: &str) -> Result<String> {
        if subject.trim().is_empty() {
            return Err(GrpcError::Auth("a token needs a subject (--sub)".into()));
        }
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(GrpcError::Auth(format!(
                "a token's lifetime must be between 1 s and {} (--ttl)",
                humantime_days(MAX_TTL)
            )));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = serde_json::json!({
            "iss": LOCAL_ISSUER, "sub": subject, "aud": audience, "roles": roles,
            "iat": now, "nbf": now, "exp": now + ttl.as_secs(),
        });
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| GrpcError::Auth(format!("cannot sign: {e}")))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn humantime_days(d: Duration) -> String {
    format!("{} days", d.as_secs() / 86_400)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::auth::{KeySource, Verifier, VerifierConfig};

    #[tokio::test]
    async fn the_issuer_keeps_its_key_private_and_its_tokens_verify() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("issuer");
        let issuer = LocalIssuer::open_or_create(&keys).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys.join("issuer-key.pem")), 0o600);
        assert_eq!(mode(&keys), 0o700);
        let token =
            issuer.issue("kim", &["analyst".into()], Duration::from_secs(3600), DEFAULT_AUDIENCE).unwrap();
        let verifier = Verifier::new(VerifierConfig {
            keys: KeySource::File(issuer.jwks_file().to_owned()),
            issuer: Some(LOCAL_ISSUER.into()),
            audience: DEFAULT_AUDIENCE.into(),
            max_lifetime: MAX_TTL,
            role_claim: "roles".into(),
            role_map: HashMap::new(),
            unmapped_groups_are_roles: false,
        })
        .unwrap();
        let principal = verifier.verify(Some(&format!("Bearer {token}"))).await.unwrap();
        assert_eq!((principal.subject.as_str(), principal.roles), ("kim", vec!["analyst".to_owned()]));

        // Opened again, the same key signs: earlier tokens still verify.
        let again = LocalIssuer::open_or_create(&keys).unwrap();
        let later = again.issue("lee", &[], Duration::from_secs(60), DEFAULT_AUDIENCE).unwrap();
        assert!(verifier.verify(Some(&format!("Bearer {later}"))).await.is_ok());
        assert!(verifier.verify(Some(&format!("Bearer {token}"))).await.is_ok());

        let err = issuer.issue("kim", &[], Duration::from_secs(365 * 86_400), DEFAULT_AUDIENCE).unwrap_err();
        assert_eq!(
            err.to_string(),
            "authentication: a token's lifetime must be between 1 s and 30 days (--ttl)"
        );
        let err = issuer.issue(" ", &[], Duration::from_secs(60), DEFAULT_AUDIENCE).unwrap_err();
        assert_eq!(err.to_string(), "authentication: a token needs a subject (--sub)");
    }
}
