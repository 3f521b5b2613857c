//! Signed-in browsers: a session per sign-in, kept in memory (a registry
//! restart signs everyone out), found by an HttpOnly, SameSite=Strict cookie
//! (Secure under TLS), with a CSRF token for its forms. Only a hash of the
//! cookie's value is kept, and sessions end after their time to live, when
//! their token stops verifying, or on sign-out.

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

/// One signed-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    /// The bearer token the user signed in with (sent to the domains for previews).
    pub token: String,
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

    /// Starts a session for `token`; the cookie value to set.
    pub(crate) fn start(&self, token: String) -> String {
        let id = random_token();
        let mut sessions = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.started.elapsed() < self.ttl);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.started).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            hash(&id),
            Session { token, csrf: random_token(), started: Instant::now(), notice: None },
        );
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

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value: `name=value` for `/catalog`, HttpOnly, with
/// `same_site`, Secure when `secure`, lasting `max_age` (0 deletes it).
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    same_site: &str,
    secure: bool,
    max_age: Duration,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/catalog; HttpOnly; SameSite={same_site}; Max-Age={}{secure}",
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

    #[test]
    fn sessions_are_found_by_cookie_and_end() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let id = sessions.start("token-a".into());
        let session = sessions.get(&id).unwrap();
        assert_eq!(session.token, "token-a");
        assert_eq!(session.csrf.len(), 43);
        assert!(sessions.get("forged").is_none());
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
        let expired = Sessions::new(Duration::ZERO);
        let id = expired.start("t".into());
        assert!(expired.get(&id).is_none(), "past its time to live");
        assert!(!format!("{session:?}").contains("token-a"), "never printed");
    }

    #[test]
    fn cookies_are_read_and_set_safely() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, "a=1; mesh_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
        let set = set_cookie(COOKIE, "v", "Strict", true, Duration::from_secs(60));
        assert_eq!(set, "mesh_session=v; Path=/catalog; HttpOnly; SameSite=Strict; Max-Age=60; Secure");
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd"));
    }
}
