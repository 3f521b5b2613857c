//! The bearer token a client sends: none, a fixed one (`MESH_TOKEN`, a
//! profile), one read from a file and re-read when the file changes (so an
//! external agent can rotate it), or one signed by the local issuer and
//! renewed before it expires (a domain under `mesh up` or compose).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;

use crate::auth::issuer::LocalIssuer;
use crate::error::{GrpcError, Result};

/// Where a client's token comes from; cheap to clone.
#[derive(Clone, Default)]
pub struct Credentials(Option<Arc<Source>>);

enum Source {
    Fixed {
        header: HeaderValue,
        /// The domain the token is for, by its `aud`.
        domain: Option<String>,
    },
    File {
        path: PathBuf,
        read: Mutex<Option<(SystemTime, HeaderValue)>>,
    },
    Issued {
        issuer: Arc<LocalIssuer>,
        subject: String,
        roles: Vec<String>,
        ttl: Duration,
        audience: String,
        current: Mutex<Option<(Instant, HeaderValue)>>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0.as_deref() {
            None => "none".to_owned(),
            Some(Source::Fixed { .. }) => "token (redacted)".to_owned(),
            Some(Source::File { path, .. }) => format!("token file {}", path.display()),
            Some(Source::Issued { subject, .. }) => format!("local issuer, subject {subject}"),
        };
        f.debug_tuple("Credentials").field(&kind).finish()
    }
}

fn bearer(token: &str) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .map_err(|_| GrpcError::Auth("the token holds characters a header cannot carry".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

impl Credentials {
    /// No token: for health checks and services without authentication.
    pub fn none() -> Self {
        Self(None)
    }

    /// Always `token`.
    pub fn token(token: &str) -> Result<Self> {
        if token.trim().is_empty() {
            return Err(GrpcError::Auth("the token is empty".into()));
        }
        let domain = crate::auth::exchange::token_domain(token);
        Ok(Self(Some(Arc::new(Source::Fixed { header: bearer(token)?, domain }))))
    }

    /// The token in the file at `path`, re-read whenever the file changes.
    pub fn file(path: impl Into<PathBuf>) -> Result<Self> {
        let credentials = Self(Some(Arc::new(Source::File { path: path.into(), read: Mutex::new(None) })));
        credentials.header()?;
        Ok(credentials)
    }

    /// Tokens for `subject` with `roles`, signed by `issuer` for `ttl` and
    /// renewed when half of that has passed, for the registry.
    pub fn issued(issuer: Arc<LocalIssuer>, subject: &str, roles: &[&str], ttl: Duration) -> Result<Self> {
        Self::issued_for(issuer, subject, roles, ttl, crate::auth::issuer::DEFAULT_AUDIENCE)
    }

    /// Like [`Credentials::issued`], for `audience` (e.g. a domain's,
    /// [`crate::auth::exchange::domain_audience`]).
    pub fn issued_for(
        issuer: Arc<LocalIssuer>,
        subject: &str,
        roles: &[&str],
        ttl: Duration,
        audience: &str,
    ) -> Result<Self> {
        let roles = roles.iter().map(|r| (*r).to_owned()).collect();
        let audience = audience.to_owned();
        let source = Source::Issued {
            issuer,
            subject: subject.to_owned(),
            roles,
            ttl,
            audience,
            current: Mutex::new(None),
        };
        let credentials = Self(Some(Arc::new(source)));
        credentials.header()?;
        Ok(credentials)
    }

    /// Credentials for calling domain `domain` alone: tokens the local
    /// issuer signs for its audience, or the current token exchanged
    /// (RFC 8693) at the registry `registry` for one (a token already for
    /// that domain is used as it is). An error when no exchange answers:
    /// a token for the registry is never sent to a domain.
    pub async fn for_domain(&self, registry: &str, domain: &str) -> Result<Self> {
        let audience = crate::auth::exchange::domain_audience(domain);
        match self.0.as_deref() {
            None => Ok(Self::none()),
            Some(Source::Fixed { domain: Some(own), .. }) if own == domain => Ok(self.clone()),
            Some(Source::Issued { issuer, subject, roles, ttl, .. }) => {
                Ok(Self(Some(Arc::new(Source::Issued {
                    issuer: Arc::clone(issuer),
                    subject: subject.clone(),
                    roles: roles.clone(),
                    ttl: (*ttl).min(Duration::from_secs(300)),
                    audience,
                    current: Mutex::new(None),
                }))))
            }
            Some(_) => {
                let Some(header) = self.header()? else { return Ok(Self::none()) };
                let token = header.to_str().unwrap_or_default().trim_start_matches("Bearer ").to_owned();
                let url = format!("{}{}", registry.trim_end_matches('/'), crate::auth::exchange::TOKEN_PATH);
                let exchanged = crate::auth::exchange::exchange(&url, &token, &audience)
                    .await
                    .map_err(|e| GrpcError::Auth(format!("cannot get a token for domain `{domain}`: {e}")))?;
                Self::token(&exchanged.token)
            }
        }
    }

    /// The domain these credentials' tokens are for, if they are one
    /// domain's: a channel carrying them under TLS checks that the server's
    /// certificate names it.
    pub fn domain(&self) -> Option<String> {
        match self.0.as_deref()? {
            Source::Fixed { domain, .. } => domain.clone(),
            Source::Issued { audience, .. } => crate::auth::exchange::domain_of(audience).map(str::to_owned),
            Source::File { .. } => None,
        }
    }

    /// Whether calls carry a token.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// The `authorization` header value calls carry now, if any.
    pub fn header(&self) -> Result<Option<HeaderValue>> {
        let Some(source) = self.0.as_deref() else { return Ok(None) };
        match source {
            Source::Fixed { header, .. } => Ok(Some(header.clone())),
            Source::File { path, read } => {
                let unreadable = |e: std::io::Error| {
                    GrpcError::Auth(format!("cannot read the token file {}: {e}", path.display()))
                };
                let modified = std::fs::metadata(path).and_then(|m| m.modified()).map_err(unreadable)?;
                let mut read = read.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((stamp, value)) = read.as_ref()
                    && *stamp == modified
                {
                    return Ok(Some(value.clone()));
                }
                let text = std::fs::read_to_string(path).map_err(unreadable)?;
                if text.trim().is_empty() {
                    return Err(GrpcError::Auth(format!("the token file {} is empty", path.display())));
                }
                let value = bearer(&text)?;
                *read = Some((modified, value.clone()));
                Ok(Some(value))
            }
            Source::Issued { issuer, subject, roles, ttl, audience, current } => {
                let mut current = current.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((renew_at, value)) = current.as_ref()
                    && Instant::now() < *renew_at
                {
                    return Ok(Some(value.clone()));
                }
                let token = issuer.issue(subject, roles, *ttl, audience)?;
                let value = bearer(&token)?;
                *current = Some((Instant::now() + *ttl / 2, value.clone()));
                Ok(Some(value))
            }
        }
    }
}

/// Whether `host` (a URL's host) is a loopback address or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_is_re_read_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let credentials = Credentials::file(&path).unwrap();
        assert_eq!(credentials.header().unwrap().unwrap(), "Bearer first");
        std::fs::write(&path, "second").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        assert_eq!(credentials.header().unwrap().unwrap(), "Bearer second");
        std::fs::remove_file(&path).unwrap();
        let err = credentials.header().unwrap_err().to_string();
        assert!(err.starts_with("authentication: cannot read the token file"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let credentials = Credentials::token("secret-token").unwrap();
        assert!(!format!("{credentials:?}").contains("secret"));
        assert!(Credentials::token("  ").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for host in ["127.0.0.1", "127.8.9.1", "[::1]", "localhost", "LOCALHOST"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["10.0.0.1", "example.com", "localhost.example.com", "[::2]", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
