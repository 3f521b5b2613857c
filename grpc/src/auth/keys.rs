//! The public keys a verifier trusts, kept current: a JWKS file is
//! re-read when it changes, an OIDC issuer's keys are found through its
//! discovery document and fetched again every hour or when a token names a
//! key not seen yet (at most every five seconds, so made-up key ids cannot
//! turn into a flood of fetches). Rotation by `kid` needs no restart.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;

use crate::auth::oidc::{check_url, discover, get_json, http_client};
use crate::auth::{AuthError, KeySource};
use crate::error::{GrpcError, Result};

/// How often a JWKS file's modification time is looked at.
const FILE_CHECK: Duration = Duration::from_secs(5);
/// How long an OIDC issuer's keys are used before they are fetched again.
const OIDC_REFRESH: Duration = Duration::from_secs(3600);
/// The least time between two fetches from an OIDC issuer.
const OIDC_MIN_INTERVAL: Duration = Duration::from_secs(5);

struct Cached {
    set: JwkSet,
    /// The file's modification time when it was read.
    stamp: Option<SystemTime>,
    /// When the keys were last read or fetched (None: never).
    checked: Option<Instant>,
}

/// Trusted keys and where they come from.
pub(crate) struct TrustedKeys(Arc<KeyState>);

struct KeyState {
    source: KeySource,
    cached: RwLock<Cached>,
    refreshing: tokio::sync::Mutex<()>,
    http: Option<reqwest::Client>,
}

impl std::fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKeys").field("source", &self.0.source).finish_non_exhaustive()
    }
}

impl TrustedKeys {
    /// Keys from `source`: a file is read now (and must be readable); an
    /// OIDC issuer is asked on first use.
    pub(crate) fn new(source: KeySource) -> Result<Self> {
        let (cached, http) = match &source {
            KeySource::File(path) => {
                let (set, stamp) = read_file(path)?;
                (Cached { set, stamp, checked: Some(Instant::now()) }, None)
            }
            KeySource::Oidc(issuer) => {
                check_url(issuer)?;
                let empty = Cached { set: JwkSet { keys: Vec::new() }, stamp: None, checked: None };
                (empty, Some(http_client()?))
            }
        };
        let state =
            KeyState { source, cached: RwLock::new(cached), refreshing: tokio::sync::Mutex::new(()), http };
        Ok(Self(Arc::new(state)))
    }

    /// The key named `kid`, refreshing the keys first when they are due or
    /// the key is not known. An OIDC issuer's key already held is used at
    /// once while the due refresh runs in the background, so a slow or
    /// unreachable issuer never holds up calls with known keys.
    pub(crate) async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let state = &self.0;
        if let Some(found) = state.current(kid) {
            return found;
        }
        if matches!(state.source, KeySource::Oidc(_))
            && let Some(found) = state.lookup(kid)
        {
            let state = Arc::clone(&self.0);
            tokio::spawn(async move {
                if let Ok(_one_at_a_time) = state.refreshing.try_lock() {
                    let _ = state.refresh().await;
                }
            });
            return found;
        }
        let _one_at_a_time = state.refreshing.lock().await;
        if let Some(found) = state.current(kid) {
            return found;
        }
        state.refresh().await?;
        state.lookup(kid).unwrap_or_else(|| Err(AuthError::UnknownKey(kid.to_owned())))
    }
}

impl KeyState {
    /// The key if it is known and the keys are not due for a refresh.
    fn current(&self, kid: &str) -> Option<Result<DecodingKey, AuthError>> {
        let due = {
            let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
            let every = match self.source {
                KeySource::File(_) => FILE_CHECK,
                KeySource::Oidc(_) => OIDC_REFRESH,
            };
            cached.checked.is_none_or(|at| at.elapsed() >= every)
        };
        if due { None } else { self.lookup(kid) }
    }

    fn lookup(&self, kid: &str) -> Option<Result<DecodingKey, AuthError>> {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        let jwk = cached.set.find(kid)?;
        Some(DecodingKey::from_jwk(jwk).map_err(|_| AuthError::UnknownKey(kid.to_owned())))
    }

    /// Reads or fetches the keys again where that is allowed now. A failed
    /// fetch keeps the keys held so far (logged); with none held, it is an
    /// error for the caller.
    async fn refresh(&self) -> Result<(), AuthError> {
        match &self.source {
            KeySource::File(path) => {
                let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                let unchanged = self.cached.read().unwrap_or_else(|p| p.into_inner()).stamp == modified;
                if !unchanged {
                    let (set, stamp) = read_file(path).map_err(|error| {
                        tracing::error!(%error, "cannot re-read the trusted keys");
                        AuthError::Keys
                    })?;
                    let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
                    (cached.set, cached.stamp) = (set, stamp);
                }
                self.cached.write().unwrap_or_else(|p| p.into_inner()).checked = Some(Instant::now());
                Ok(())
            }
            KeySource::Oidc(issuer) => {
                let (recent, held) = {
                    let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
                    (
                        cached.checked.is_some_and(|at| at.elapsed() < OIDC_MIN_INTERVAL),
                        !cached.set.keys.is_empty(),
                    )
                };
                if recent {
                    return Ok(());
                }
                let http = self.http.as_ref().expect("an OIDC source has a client");
                let fetched = fetch_oidc_keys(http, issuer).await;
                let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
                cached.checked = Some(Instant::now());
                match fetched {
                    Ok(set) => {
                        cached.set = set;
                        Ok(())
                    }
                    Err(error) => {
                        tracing::error!(%issuer, %error, "cannot fetch the issuer's keys");
                        if held { Ok(()) } else { Err(AuthError::Keys) }
                    }
                }
            }
        }
    }
}

fn read_file(path: &Path) -> Result<(JwkSet, Option<SystemTime>)> {
    let unreadable =
        |e: String| GrpcError::Auth(format!("cannot read the JWKS file {}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Ok((set, modified))
}

async fn fetch_oidc_keys(http: &reqwest::Client, issuer: &str) -> Result<JwkSet, String> {
    let document = discover(http, issuer).await?;
    let jwks_uri = document["jwks_uri"].as_str().ok_or("the discovery document names no jwks_uri")?;
    let jwks = get_json(http, jwks_uri).await?;
    let listed = jwks["keys"].as_array().ok_or_else(|| format!("{jwks_uri} is not a JWKS"))?;
    // Keys of kinds this verifier does not use (encryption keys, say) are skipped.
    let keys = listed.iter().filter_map(|key| serde_json::from_value(key.clone()).ok()).collect();
    Ok(JwkSet { keys })
}
