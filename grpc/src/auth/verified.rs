//! Tokens already verified, so a client that sends the same token on every
//! call (as they all do) pays for the signature check once, not per call.
//! An entry is found only by the SHA-256 of the whole token, and lasts
//! until the token expires or for five minutes, whichever is sooner; the
//! table is bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::Principal;

/// The longest an entry is trusted without verifying the token again.
const KEEP: Duration = Duration::from_secs(300);
/// The most entries kept.
const CAPACITY: usize = 10_000;

/// Verified tokens and whom they name.
#[derive(Debug, Default)]
pub(crate) struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedTokens {
    /// The principal `token` was verified as, if that is still current.
    pub(crate) fn get(&self, token: &str) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (principal, until) = entries.get(&key(token))?;
        (Instant::now() < *until).then(|| principal.clone())
    }

    /// Remembers that `token`, valid for `valid_for` more, names `principal`.
    pub(crate) fn insert(&self, token: &str, principal: &Principal, valid_for: Duration) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key(token), (principal.clone(), now + valid_for.min(KEEP)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str) -> Principal {
        Principal { subject: name.into(), issuer: String::new(), roles: Vec::new() }
    }

    #[test]
    fn an_entry_lasts_until_its_token_expires_and_only_answers_its_own_token() {
        let verified = VerifiedTokens::default();
        verified.insert("a.b.c", &principal("kim"), Duration::from_secs(60));
        assert_eq!(verified.get("a.b.c"), Some(principal("kim")));
        assert_eq!(verified.get("a.b.d"), None);
        verified.insert("x.y.z", &principal("lee"), Duration::ZERO);
        assert_eq!(verified.get("x.y.z"), None, "an expired token is verified again");
    }

    #[test]
    fn the_table_stays_bounded() {
        let verified = VerifiedTokens::default();
        for n in 0..CAPACITY + 10 {
            verified.insert(&n.to_string(), &principal("kim"), Duration::from_secs(60));
        }
        assert!(verified.entries.lock().unwrap().len() <= CAPACITY);
    }
}
