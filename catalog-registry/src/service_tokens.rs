//! Service tokens written for domains: the registry, the one service that
//! holds the local issuer's signing key, writes each domain a short-lived
//! token for the registry (subject `<domain>-domain`, role
//! `service:<domain>`) into the file the domain reads with `--token-file`,
//! and writes it again well before it ends. A compromised domain holds a
//! token for itself alone, for minutes, and no key to sign another.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mesh_grpc::auth::issuer::{DEFAULT_AUDIENCE, LocalIssuer};

/// How long a written service token lives.
pub const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// How often the tokens are written again (a third of their lifetime, so a
/// missed round or two leaves the domain a good token).
const REWRITE_EVERY: Duration = Duration::from_secs(5 * 60);

/// A domain and the file its token goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTokenFile {
    /// The domain, e.g. `payment`.
    pub domain: String,
    /// The token file.
    pub path: PathBuf,
}

/// Parses `DOMAIN=FILE`.
pub fn parse(text: &str) -> Result<ServiceTokenFile, String> {
    match text.split_once('=') {
        Some((domain, path)) if !domain.trim().is_empty() && !path.trim().is_empty() => {
            let domain = domain.trim();
            if !domain.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
                return Err(format!("`{domain}` is not a domain name (lowercase letters, digits, - and _)"));
            }
            Ok(ServiceTokenFile { domain: domain.to_owned(), path: PathBuf::from(path.trim()) })
        }
        _ => Err(format!("`{text}` is not DOMAIN=FILE, e.g. payment=/tokens/payment/token")),
    }
}

/// Writes every domain's token once; an error names the file.
pub fn write_all(issuer: &LocalIssuer, files: &[ServiceTokenFile]) -> crate::error::Result<()> {
    for file in files {
        let role = mesh_grpc::auth::service_role(&file.domain);
        let subject = format!("{}-domain", file.domain);
        let token = issuer
            .issue(&subject, &[role], SERVICE_TOKEN_TTL, DEFAULT_AUDIENCE)
            .map_err(|e| crate::error::RegistryError::Config(e.to_string()))?;
        mesh_grpc::private_files::write_private(&file.path, format!("{token}\n").as_bytes()).map_err(
            |e| {
                crate::error::RegistryError::Config(format!(
                    "cannot write the service token file {}: {e}",
                    file.path.display()
                ))
            },
        )?;
    }
    Ok(())
}

/// Writes the tokens again every few minutes, forever; a failed round is
/// logged and tried again at the next.
pub async fn keep_written(issuer: Arc<LocalIssuer>, files: Vec<ServiceTokenFile>) {
    let mut every = tokio::time::interval(REWRITE_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(error) = write_all(&issuer, &files) {
            tracing::warn!(%error, "service tokens not written; trying again in {} s", REWRITE_EVERY.as_secs());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_are_domain_equals_file() {
        assert_eq!(
            parse("payment=/tokens/payment/token"),
            Ok(ServiceTokenFile { domain: "payment".into(), path: "/tokens/payment/token".into() })
        );
        assert!(parse("payment").unwrap_err().contains("DOMAIN=FILE"));
        assert!(parse("=x").is_err());
        assert!(parse("Pay ment=x").unwrap_err().contains("is not a domain name"));
    }

    #[test]
    fn a_written_token_is_private_and_names_the_domain() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::open_or_create(&dir.path().join("issuer")).unwrap();
        let path = dir.path().join("tokens").join("payment");
        write_all(&issuer, &[ServiceTokenFile { domain: "payment".into(), path: path.clone() }]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let token = std::fs::read_to_string(&path).unwrap();
        use base64::Engine;
        let payload = token.trim().split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
        )
        .unwrap();
        assert_eq!(claims["sub"], "payment-domain");
        assert_eq!(claims["roles"], serde_json::json!(["service:payment"]));
        assert_eq!(claims["aud"], DEFAULT_AUDIENCE);
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    }
}
