//! Verifying the bearer JWT a call carries: against the keys of a JWKS
//! file or an OIDC issuer (kept current by [`crate::auth::keys`], so a rotated
//! key is picked up without a restart), asymmetric algorithms only (EdDSA,
//! ES256, RS256; `none` and HMAC refused), one audience, an optional
//! issuer, expiry and not-before with a minute of clock skew, and a maximum
//! lifetime. Roles come from a configurable claim, with groups mapped to
//! roles, so a company IdP's tokens work as they are.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;
use tonic::Status;

use crate::auth::keys::TrustedKeys;
use crate::auth::verified::VerifiedTokens;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 60;

/// Where a verifier finds the issuers' public keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS file, re-read when it changes.
    File(PathBuf),
    /// An OIDC issuer: its discovery document names the JWKS URL; tokens
    /// must carry this issuer as `iss`.
    Oidc(String),
}

/// How to get a token for a domain's audience, after a refusal.
fn audience_hint(audience: &str) -> String {
    match crate::auth::exchange::domain_of(audience) {
        Some(domain) => format!(
            " (a domain's own: exchange the sign-in token at the registry's {}, e.g. `mesh token print --for {domain}`)",
            crate::auth::exchange::TOKEN_PATH
        ),
        None => String::new(),
    }
}

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Where the trusted keys are.
    pub keys: KeySource,
    /// The `iss` tokens must carry, if any (an OIDC source always checks
    /// its issuer).
    pub issuer: Option<String>,
    /// The `aud` tokens must carry.
    pub audience: String,
    /// The longest a token may live (`exp - iat`).
    pub max_lifetime: Duration,
    /// The claim holding roles or groups; dots walk into objects
    /// (`realm_access.roles` for Keycloak).
    pub role_claim: String,
    /// Group names mapped to mesh roles. When it is empty, the claim's
    /// values are roles as they are; otherwise only mapped groups give
    /// roles (a group the map does not name gives none), unless
    /// `unmapped_groups_are_roles`.
    pub role_map: HashMap<String, String>,
    /// With a role map, values it does not name still count as roles as
    /// they are (the old, unsafe behaviour: a group named `admin` is admin).
    pub unmapped_groups_are_roles: bool,
}

/// Who is calling, as a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    /// The token's `iss` (empty when it has none).
    pub issuer: String,
    /// The caller's roles, after the group mapping.
    pub roles: Vec<String>,
}

/// The role that may do anything.
pub const ADMIN: &str = "admin";

/// The role of `domain`'s service identity: it may register, renew and
/// deregister the domain's products.
pub fn service_role(domain: &str) -> String {
    format!("service:{domain}")
}

/// The role of `domain`'s owners: they may deprecate its products and
/// rebuild them.
pub fn owner_role(domain: &str) -> String {
    format!("owner:{domain}")
}

impl Principal {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the caller holds `role` or is an admin.
    pub fn has_role_or_admin(&self, role: &str) -> bool {
        self.has_role(ADMIN) || self.has_role(role)
    }

    /// The principal of calls to a service that does not authenticate.
    pub fn anonymous_admin() -> Self {
        Self { subject: "anonymous".into(), issuer: String::new(), roles: vec![ADMIN.into()] }
    }
}

/// Why a token was not accepted; each becomes UNAUTHENTICATED with advice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` header.
    #[error("the call carries no bearer token; send `authorization: Bearer <token>` (mesh token print)")]
    Missing,
    /// The header or token is not a JWT.
    #[error("the bearer token is not a well-formed JWT ({0}); send `authorization: Bearer <token>`")]
    Malformed(String),
    /// An algorithm other than EdDSA, ES256 or RS256.
    #[error("the token's algorithm `{0}` is not accepted; tokens must be signed with EdDSA, ES256 or RS256")]
    UnsupportedAlgorithm(String),
    /// The token's algorithm is not the one of the key it names.
    #[error("the token's algorithm does not match the key it names; get a new token from the issuer")]
    KeyMismatch,
    /// No key with the token's `kid`.
    #[error(
        "the token was signed by an unknown key (kid `{0}`); get a token from an issuer this service trusts"
    )]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the token's signature does not verify; get a new token from the issuer")]
    BadSignature,
    /// Past `exp`.
    #[error("the token has expired; get a new one (mesh login, or mesh token issue)")]
    Expired,
    /// Before `nbf`.
    #[error("the token is not valid yet (nbf is in the future); check the clocks")]
    NotYetValid,
    /// `iat` in the future.
    #[error("the token says it was issued in the future (iat); check the clocks")]
    IssuedInFuture,
    /// Another `aud`.
    #[error("the token is for another audience; this service accepts `{0}`{hint}", hint = audience_hint(.0))]
    WrongAudience(String),
    /// Another `iss`.
    #[error("the token is from another issuer; this service accepts `{0}`")]
    WrongIssuer(String),
    /// A required claim is missing.
    #[error("the token has no `{0}` claim")]
    MissingClaim(String),
    /// `exp - iat` beyond the maximum.
    #[error(
        "the token lives {lifetime} s, longer than the {max} s this service accepts; get a shorter-lived token"
    )]
    TooLong {
        /// The token's lifetime in seconds.
        lifetime: i64,
        /// The maximum in seconds.
        max: u64,
    },
    /// The JWKS file cannot be read.
    #[error("the service cannot read its trusted keys; its log says why")]
    Keys,
}

impl AuthError {
    /// The refusal's reason as a metric label: one word per kind.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed(_) => "malformed",
            Self::UnsupportedAlgorithm(_) => "algorithm",
            Self::KeyMismatch => "key_mismatch",
            Self::UnknownKey(_) => "unknown_key",
            Self::BadSignature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::WrongAudience(_) => "audience",
            Self::WrongIssuer(_) => "issuer",
            Self::MissingClaim(_) => "missing_claim",
            Self::TooLong { .. } => "lifetime",
            Self::Keys => "keys",
        }
    }
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        Status::unauthenticated(error.to_string())
    }
}

/// Verifies bearer tokens as its configuration says.
#[derive(Debug)]
pub struct Verifier {
    config: VerifierConfig,
    keys: TrustedKeys,
    verified: VerifiedTokens,
}

impl Verifier {
    /// A verifier trusting the configured keys (a JWKS file is read now).
    pub fn new(config: VerifierConfig) -> crate::Result<Self> {
        crate::auth::jwt_crypto::install();
        let keys = TrustedKeys::new(config.keys.clone())?;
        Ok(Self { config, keys, verified: VerifiedTokens::default() })
    }

    /// The principal an `authorization` header value proves.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| AuthError::Malformed("the header does not start with `Bearer `".into()))?
            .trim();
        if let Some(principal) = self.verified.get(token) {
            return Ok(principal);
        }
        let (alg, kid) = header_fields(token)?;
        let algorithm = match alg.as_str() {
            "EdDSA" => Algorithm::EdDSA,
            "ES256" => Algorithm::ES256,
            "RS256" => Algorithm::RS256,
            _ => return Err(AuthError::UnsupportedAlgorithm(alg)),
        };
        let kid = kid.ok_or_else(|| AuthError::Malformed("the header names no key (kid)".into()))?;
        let key = self.keys.key(&kid).await?;
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_audience(&[self.config.audience.as_str()]);
        if let Some(issuer) = self.expected_issuer() {
            validation.set_issuer(&[issuer]);
        }
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| self.explain(e.into_kind()))?
            .claims;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let now = now.as_secs() as i64;
        let (exp, iat) = (claims["exp"].as_i64().unwrap_or(0), claims["iat"].as_i64().unwrap_or(i64::MAX));
        if iat > now + LEEWAY_SECONDS as i64 {
            return Err(AuthError::IssuedInFuture);
        }
        // Measured from its issue and from now, so a future `iat` cannot stretch it.
        let lifetime = (exp - iat).max(exp - now);
        let max = self.config.max_lifetime.as_secs();
        if lifetime > max as i64 {
            return Err(AuthError::TooLong { lifetime, max });
        }
        let principal = Principal {
            subject: claims["sub"].as_str().unwrap_or_default().to_owned(),
            issuer: claims["iss"].as_str().unwrap_or_default().to_owned(),
            roles: self.roles(&claims),
        };
        let left = (exp - now).max(0) as u64;
        self.verified.insert(token, &principal, Duration::from_secs(left));
        Ok(principal)
    }

    /// The `iss` tokens must carry: the OIDC issuer, or the configured one.
    fn expected_issuer(&self) -> Option<&str> {
        match &self.config.keys {
            KeySource::Oidc(issuer) => Some(issuer),
            KeySource::File(_) => self.config.issuer.as_deref(),
        }
    }

    fn explain(&self, kind: jsonwebtoken::errors::ErrorKind) -> AuthError {
        use jsonwebtoken::errors::ErrorKind;
        match kind {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience(self.config.audience.clone()),
            ErrorKind::InvalidIssuer => {
                AuthError::WrongIssuer(self.expected_issuer().unwrap_or("").to_owned())
            }
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::InvalidKeyFormat => {
                AuthError::KeyMismatch
            }
            other => AuthError::Malformed(format!("{other:?}")),
        }
    }

    /// The roles in the configured claim, groups mapped.
    fn roles(&self, claims: &Value) -> Vec<String> {
        let mut value = claims;
        for part in self.config.role_claim.split('.') {
            value = &value[part];
        }
        let names: Vec<&str> = match value {
            Value::String(one) => one.split_whitespace().collect(),
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let map = &self.config.role_map;
        let as_is = map.is_empty() || self.config.unmapped_groups_are_roles;
        names
            .into_iter()
            .filter_map(|n| map.get(n).cloned().or_else(|| as_is.then(|| n.to_owned())))
            .collect()
    }
}

/// `alg` and `kid` from the token's header, read without trusting it.
fn header_fields(token: &str) -> Result<(String, Option<String>), AuthError> {
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed("the header is not base64url".into()))?;
    let header: Value =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed("the header is not JSON".into()))?;
    let alg = header["alg"].as_str().ok_or_else(|| AuthError::Malformed("the header names no alg".into()))?;
    Ok((alg.to_owned(), header["kid"].as_str().map(str::to_owned)))
}
