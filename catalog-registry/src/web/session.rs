//! Signed-in browsers: a session per sign-in, kept in memory (a registry
//! restart signs everyone out), found by an HttpOnly, SameSite=Strict cookie
//! (under TLS `__Host-` prefixed and Secure, so no other host or path may
//! set it), with a CSRF token for its forms. Only a hash of the cookie's
//! value is kept; sessions end after their time to live, when their token
//! stops verifying, or on sign-out; one principal holds a bounded number,
//! so no one can push everyone else's out by signing in again and again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The session cookie.
pub(crate) const COOKIE: &str = "mesh_session";
/// Sessions kept at once; the oldest is dropped beyond it.
const MAX_SESSIONS: usize = 10_000;
/// Sessions one principal holds at once; its oldest is dropped beyond it.
pub(crate) const MAX_SESSIONS_PER_PRINCIPAL: usize = 8;

/// One signed-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    /// The bearer token the user signed in with (sent to the domains for previews).
    pub token: String,
    /// Who signed in (issuer and subject), for the per-principal bound.
    owner: (String, String),
    /// The value forms must carry.
    pub csrf: String,
    started: Instant,
    /// A message for the next page shown (kind and text).
    notice: Option<(&'static str, String)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("started", &self.started).finish_non_exhaustive()
    }
}

/// The sessions of the web catalog.
#[derive(Debug)]
pub(crate) struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    ttl: Duration,
}

/// A fresh random value for cookies and CSRF tokens: 256 bits, base64url.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl Sessions {
    /// Sessions lasting at most `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { by_hash: Mutex::new(HashMap::new()), ttl }
    }

    /// Starts a session for `token`, signed in as `owner` (issuer,
    /// subject); the cookie value to set. The owner's oldest session ends
    /// when it holds [`MAX_SESSIONS_PER_PRINCIPAL`].
    pub(crate) fn start(&self, token: String, owner: (String, String)) -> String {
        let id = random_token();
        let mut sessions = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.started.elapsed() < self.ttl);
        let oldest = |sessions: &HashMap<[u8; 32], Session>, of: Option<&(String, String)>| {
            sessions
                .iter()
                .filter(|(_, s)| of.is_none_or(|owner| &s.owner == owner))
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| *k)
        };
        if sessions.values().filter(|s| s.owner == owner).count() >= MAX_SESSIONS_PER_PRINCIPAL
            && let Some(key) = oldest(&sessions, Some(&owner))
        {
            sessions.remove(&key);
        }
        if sessions.len() >= MAX_SESSIONS
            && let Some(key) = oldest(&sessions, None)
        {
            sessions.remove(&key);
        }
        let session = Session { token, owner, csrf: random_token(), started: Instant::now(), notice: None };
        sessions.insert(hash(&id), session);
        id
    }

    /// The live session of cookie value `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut sessions = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        let key = hash(id);
        match sessions.get(&key) {
            Some(session) if session.started.elapsed() < self.ttl => Some(session.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of cookie value `id`.
    pub(crate) fn end(&self, id: &str) {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner()).remove(&hash(id));
    }

    /// Leaves `text` (of `kind`: info or error) for the next page of the
    /// session of cookie value `id`.
    pub(crate) fn notice(&self, id: &str, kind: &'static str, text: String) {
        if let Some(session) = self.by_hash.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&hash(id)) {
            session.notice = Some((kind, text));
        }
    }

    /// The notice left for this page, once.
    pub(crate) fn take_notice(&self, id: &str) -> Option<(&'static str, String)> {
        self.by_hash
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&hash(id))
            .and_then(|s| s.notice.take())
    }

    /// How long a session lasts at most.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// The name cookie `name` goes by: under TLS (`secure`) `__Host-`
/// prefixed, which browsers accept only when Secure, for path `/`, with no
/// Domain, and from this very host.
fn prefixed(name: &str, secure: bool) -> String {
    if secure { format!("__Host-{name}") } else { name.to_owned() }
}

/// The value of cookie `name` (prefixed when `secure`) in `headers`.
pub(crate) fn cookie(headers: &http::HeaderMap, name: &str, secure: bool) -> Option<String> {
    let name = prefixed(name, secure);
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value: `name=value`, HttpOnly, with `same_site`, lasting
/// `max_age` (0 deletes it); for `/catalog`, or under TLS (`secure`)
/// `__Host-` prefixed, Secure and for `/` as the prefix requires.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    same_site: &str,
    secure: bool,
    max_age: Duration,
) -> String {
    let (name, path, secure) =
        if secure { (prefixed(name, true), "/", "; Secure") } else { (name.to_owned(), "/catalog", "") };
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    hash(a) == hash(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ana() -> (String, String) {
        ("mesh-local".into(), "ana".into())
    }

    #[test]
    fn one_principal_cannot_push_the_others_out() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let bob = sessions.start("token-b".into(), ("mesh-local".into(), "bob".into()));
        let first = sessions.start("token-a".into(), ana());
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.start("token-a".into(), ana());
        }
        assert!(sessions.get(&bob).is_some(), "bob is still signed in");
        assert!(sessions.get(&first).is_none(), "ana's oldest session ended");
        let held = sessions.by_hash.lock().unwrap().values().filter(|s| s.owner == ana()).count();
        assert_eq!(held, MAX_SESSIONS_PER_PRINCIPAL);
    }

    #[test]
    fn sessions_are_found_by_cookie_and_end() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let id = sessions.start("token-a".into(), ana());
        let session = sessions.get(&id).unwrap();
        assert_eq!(session.token, "token-a");
        assert_eq!(session.csrf.len(), 43);
        assert!(sessions.get("forged").is_none());
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
        let expired = Sessions::new(Duration::ZERO);
        let id = expired.start("t".into(), ana());
        assert!(expired.get(&id).is_none(), "past its time to live");
        assert!(!format!("{session:?}").contains("token-a"), "never printed");
    }

    #[test]
    fn cookies_are_read_and_set_safely() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, "a=1; mesh_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE, false).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, COOKIE, true), None, "under TLS only the prefixed cookie counts");
        assert_eq!(cookie(&headers, "c", false), None);
        headers.insert(http::header::COOKIE, "__Host-mesh_session=abc".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE, true).as_deref(), Some("abc"));
        let set = set_cookie(COOKIE, "v", "Strict", true, Duration::from_secs(60));
        assert_eq!(set, "__Host-mesh_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure");
        let plain = set_cookie(COOKIE, "v", "Strict", false, Duration::from_secs(60));
        assert_eq!(plain, "mesh_session=v; Path=/catalog; HttpOnly; SameSite=Strict; Max-Age=60");
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd"));
    }
}
