//! Profiles: for each registry, the token calls carry, the CA its services'
//! certificates chain to, and for a person signed in with `mesh login` what
//! renews the token. `mesh up` and `mesh login` write them (mode 0600, in a
//! 0700 folder); every other command reads the one of its `--registry`, so
//! `mesh query` works with no flags. `MESH_TOKEN` overrides the token.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What the CLI knows about one registry.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Profile {
    /// The registry's URL.
    pub registry: String,
    /// The PEM CA its services' certificates chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The bearer token calls carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When the token expires, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// How the token is renewed, for a person signed in with `mesh login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
    /// Tokens exchanged for domains, by audience, kept until near their end.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub domain_tokens: crate::domain_token::DomainTokens,
}

/// A sign-in through an OAuth 2.0 / OIDC provider.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Login {
    /// The provider's issuer URL.
    pub issuer: String,
    /// The CLI's client id at the provider.
    pub client_id: String,
    /// Where tokens are renewed.
    pub token_endpoint: String,
    /// The refresh token, if the provider gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("registry", &self.registry)
            .field("ca_file", &self.ca_file)
            .field("token", &self.token.as_ref().map(|_| "(redacted)"))
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The profiles folder: `$MESH_CONFIG_DIR`, else `$XDG_CONFIG_HOME/mesh`,
/// else `~/.config/mesh`.
fn root() -> Option<PathBuf> {
    crate::cache::user_dir("MESH_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")
}

/// Where the profile of `registry` is kept.
pub(crate) fn path(registry: &str) -> Option<PathBuf> {
    root().map(|root| root.join("profiles").join(format!("{}.json", crate::cache::registry_key(registry))))
}

impl Profile {
    /// The profile of `registry`, if there is one. A profile others may
    /// read is refused: its token would not be secret.
    pub(crate) fn load(registry: &str) -> Result<Option<Self>> {
        let Some(path) = path(registry) else { return Ok(None) };
        let Ok(metadata) = std::fs::metadata(&path) else { return Ok(None) };
        if metadata.permissions().mode() & 0o077 != 0 {
            bail!(
                "the profile {} may be read by other users, so its token cannot be trusted to be secret: \
                 `chmod 600` it, and sign in again if others could have read it",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the profile {}", path.display()))?;
        let profile: Self = serde_json::from_str(&text).with_context(|| {
            format!("the profile {} is damaged; remove it and sign in again", path.display())
        })?;
        Ok((profile.registry.trim_end_matches('/') == registry.trim_end_matches('/')).then_some(profile))
    }

    /// Writes the profile, readable by its owner only.
    pub(crate) fn save(&self) -> Result<PathBuf> {
        let path = path(&self.registry).context("no folder for profiles: set HOME or MESH_CONFIG_DIR")?;
        let text = serde_json::to_vec_pretty(self).context("a profile serializes")?;
        mesh_grpc::private_files::write_private(&path, &text)
            .with_context(|| format!("cannot write the profile {}", path.display()))?;
        Ok(path)
    }

    /// Removes the profile of `registry`, if any (`mesh up` as it stops).
    #[cfg(any(feature = "local", test))]
    pub(crate) fn remove(registry: &str) {
        if let Some(path) = path(registry) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_private_per_registry_and_refused_when_others_may_read_it() {
        let root = tempfile::tempdir().unwrap();
        // SAFETY: no other test of this binary reads or writes MESH_CONFIG_DIR.
        unsafe { std::env::set_var("MESH_CONFIG_DIR", root.path()) };
        let registry = "http://127.0.0.1:59999";
        assert!(Profile::load(registry).unwrap().is_none());
        let profile =
            Profile { registry: registry.into(), token: Some("secret".into()), ..Default::default() };
        let path = profile.save().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(Profile::load(registry).unwrap().unwrap().token.as_deref(), Some("secret"));
        assert!(Profile::load("http://127.0.0.1:59998").unwrap().is_none());
        assert!(!format!("{profile:?}").contains("secret"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Profile::load(registry).unwrap_err().to_string();
        assert!(err.contains("may be read by other users"), "{err}");
        Profile::remove(registry);
        assert!(Profile::load(registry).unwrap().is_none());
    }
}
