//! How a service authenticates its callers, by flag and environment: the
//! trusted issuer (a JWKS file or an OIDC issuer URL), the audience, the
//! role claim and group mapping, the longest token lifetime, and whether
//! health and reflection stay open. Authentication is on by default: a
//! service with no trusted issuer refuses to start unless told, loudly, to
//! run without it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::issuer::DEFAULT_AUDIENCE;
use crate::auth::layer::Authenticate;
use crate::auth::{KeySource, Verifier, VerifierConfig};
use crate::error::{GrpcError, Result};

/// Authentication flags shared by every service.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// JWKS file of the issuers whose tokens are accepted (re-read when it
    /// changes), e.g. the local issuer's `.mesh/issuer/jwks.json`.
    #[arg(long, env = "MESH_AUTH_JWKS", conflicts_with = "auth_oidc_issuer")]
    pub auth_jwks: Option<PathBuf>,

    /// OIDC issuer whose tokens are accepted, e.g.
    /// `https://sso.example.com/realms/cards`; its keys are found through
    /// discovery and refreshed, and tokens must name it as `iss`.
    #[arg(long, env = "MESH_AUTH_OIDC_ISSUER")]
    pub auth_oidc_issuer: Option<String>,

    /// The `iss` tokens must carry with --auth-jwks (the local issuer's is `mesh-local`).
    #[arg(long, env = "MESH_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,

    /// The `aud` tokens must carry [default: the registry's `woori-mesh`;
    /// a domain's own, `urn:woori-mesh:domain:<domain>`, so that a token
    /// good at one service is good nowhere else].
    #[arg(long, env = "MESH_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,

    /// The claim holding roles or groups; dots walk into objects, e.g.
    /// `realm_access.roles` (Keycloak) or `groups`.
    #[arg(long, env = "MESH_AUTH_ROLE_CLAIM", default_value = "roles")]
    pub auth_role_claim: String,

    /// Group-to-role mapping, e.g. `card-analysts=analyst,mesh-admins=admin`.
    /// With a mapping, only the groups it names give roles; without one,
    /// the claim's values are roles as they are.
    #[arg(long, env = "MESH_AUTH_ROLE_MAP", value_delimiter = ',', value_parser = parse_mapping)]
    pub auth_role_map: Vec<(String, String)>,

    /// With --auth-role-map, let groups it does not name count as roles
    /// too, as they are. Unsafe: whoever may name a group in the IdP (a
    /// group called `admin`, `owner:payment`) gets that role in the mesh.
    #[arg(long, env = "MESH_AUTH_INSECURE_UNMAPPED_GROUPS_AS_ROLES", requires = "auth_role_map")]
    pub auth_insecure_unmapped_groups_as_roles: bool,

    /// The longest lifetime (`exp - iat`) of a token accepted.
    #[arg(long, env = "MESH_AUTH_MAX_LIFETIME", default_value = "24h", value_parser = humantime::parse_duration)]
    pub auth_max_lifetime: Duration,

    /// Require a token for gRPC health checks too (open by default, for orchestrators).
    #[arg(long, env = "MESH_AUTH_HEALTH")]
    pub auth_health: bool,

    /// Require a token for server reflection too (open by default, for grpcurl).
    #[arg(long, env = "MESH_AUTH_REFLECTION")]
    pub auth_reflection: bool,

    /// Serve `/metrics` to anyone who reaches the port, without a token.
    /// Only where the port is reachable by the scraper alone: the metrics
    /// name the products served and how much each is read.
    #[arg(long, env = "MESH_INSECURE_OPEN_METRICS")]
    pub insecure_open_metrics: bool,

    /// Accept every call without a token, each as an admin. Only for a
    /// throwaway service on a machine of your own: anyone who reaches the
    /// port may then read and change everything.
    #[arg(long, env = "MESH_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

impl Default for AuthArgs {
    fn default() -> Self {
        Self {
            auth_jwks: None,
            auth_oidc_issuer: None,
            auth_issuer: None,
            auth_audience: None,
            auth_role_claim: "roles".to_owned(),
            auth_role_map: Vec::new(),
            auth_insecure_unmapped_groups_as_roles: false,
            auth_max_lifetime: Duration::from_secs(24 * 3600),
            auth_health: false,
            auth_reflection: false,
            insecure_open_metrics: false,
            insecure_no_auth: false,
        }
    }
}

fn parse_mapping(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((group, role)) if !group.trim().is_empty() && !role.trim().is_empty() => {
            Ok((group.trim().to_owned(), role.trim().to_owned()))
        }
        _ => Err(format!("`{text}` is not GROUP=ROLE")),
    }
}

impl AuthArgs {
    /// Accepting tokens of the local issuer whose JWKS is `jwks`.
    pub fn local(jwks: PathBuf) -> Self {
        Self {
            auth_jwks: Some(jwks),
            auth_issuer: Some(crate::auth::issuer::LOCAL_ISSUER.to_owned()),
            ..Self::default()
        }
    }

    /// The authentication layer the flags describe; an error when no
    /// issuer is trusted and --insecure-no-auth was not given.
    pub fn layer(&self) -> Result<Authenticate> {
        if self.insecure_open_metrics {
            tracing::warn!(
                "METRICS ARE OPEN (--insecure-open-metrics): anyone who reaches this service may read /metrics"
            );
        }
        let keys = match (&self.auth_jwks, &self.auth_oidc_issuer) {
            (Some(file), _) => KeySource::File(file.clone()),
            (None, Some(issuer)) => KeySource::Oidc(issuer.clone()),
            (None, None) if self.insecure_no_auth => {
                tracing::warn!(
                    "AUTHENTICATION IS OFF (--insecure-no-auth): anyone who reaches this service may read and change everything"
                );
                return Ok(Authenticate::default().open_metrics(self.insecure_open_metrics));
            }
            (None, None) => return Err(GrpcError::AuthNotConfigured),
        };
        let verifier = Verifier::new(VerifierConfig {
            keys,
            issuer: self.auth_issuer.clone(),
            audience: self.auth_audience.clone().unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned()),
            max_lifetime: self.auth_max_lifetime,
            role_claim: self.auth_role_claim.clone(),
            role_map: self.auth_role_map.iter().cloned().collect::<HashMap<_, _>>(),
            unmapped_groups_are_roles: self.auth_insecure_unmapped_groups_as_roles,
        })?;
        if self.auth_insecure_unmapped_groups_as_roles {
            tracing::warn!(
                "UNMAPPED GROUPS ARE ROLES (--auth-insecure-unmapped-groups-as-roles): any group name in a token \
                 becomes a mesh role as it is"
            );
        }
        Ok(Authenticate::new(Arc::new(verifier))
            .close_health(self.auth_health)
            .close_reflection(self.auth_reflection)
            .open_metrics(self.insecure_open_metrics))
    }
}
