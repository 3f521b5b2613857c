//! One-time sign-in links: the program hosting the registry (`mesh up`)
//! makes one for a token it holds; the first visit within 15 minutes
//! exchanges it for a session of that token, and it is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a link may wait for its visit.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// Links waiting at once; the oldest is dropped beyond it.
const MAX_LINKS: usize = 1000;

/// Waiting links by the SHA-256 of their code: the token and when it was made.
type Waiting = HashMap<[u8; 32], (String, Instant)>;

/// The links waiting for their visit (shared between the registry and the
/// program hosting it).
#[derive(Clone, Default)]
pub struct SignInLinks(Arc<Mutex<Waiting>>);

impl std::fmt::Debug for SignInLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.0.lock().map(|links| links.len()).unwrap_or_default();
        f.debug_struct("SignInLinks").field("waiting", &waiting).finish()
    }
}

impl SignInLinks {
    /// A one-time code signing its visitor in with `token`; the link is
    /// `<registry>/catalog/signin/link?code=<code>`.
    pub fn create(&self, token: String) -> String {
        let code = super::session::random_token();
        let mut links = self.0.lock().unwrap_or_else(|p| p.into_inner());
        links.retain(|_, (_, made)| made.elapsed() < LINK_TTL);
        if links.len() >= MAX_LINKS
            && let Some(oldest) = links.iter().min_by_key(|(_, (_, made))| *made).map(|(k, _)| *k)
        {
            links.remove(&oldest);
        }
        links.insert(Sha256::digest(code.as_bytes()).into(), (token, Instant::now()));
        code
    }

    /// The token of `code`, once, if it has not expired.
    pub(crate) fn redeem(&self, code: &str) -> Option<String> {
        let key: [u8; 32] = Sha256::digest(code.as_bytes()).into();
        let (token, made) = self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&key)?;
        (made.elapsed() < LINK_TTL).then_some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once() {
        let links = SignInLinks::default();
        let code = links.create("admin-token".into());
        assert!(links.redeem("other").is_none());
        assert_eq!(links.redeem(&code).as_deref(), Some("admin-token"));
        assert!(links.redeem(&code).is_none(), "used up");
        assert!(!format!("{links:?}").contains("admin-token"));
    }
}
