//! Opaque, tamper-evident page tokens (AIP-158).
//!
//! A token carries the last key of the page it ends and a digest of the
//! request's filters, signed with a secret kept in the registry's database, so
//! a token that was edited or reused with other filters is refused.

use mesh_grpc::SealedTokens;
use sha2::{Digest, Sha256};

use crate::error::{RegistryError, Result};

/// Length of the filter digest kept in a token.
const FILTER_LEN: usize = 8;

/// Signs and checks page tokens with one secret.
#[derive(Debug, Clone)]
pub struct PageTokens(SealedTokens);

impl PageTokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        Self(SealedTokens::new(secret))
    }

    /// A token for the page after `last_key`, bound to `filters`.
    pub fn issue(&self, filters: &[impl AsRef<str>], last_key: &str) -> String {
        let mut payload = filter_digest(filters).to_vec();
        payload.extend_from_slice(last_key.as_bytes());
        self.0.seal(&payload)
    }

    /// The last key a token points after; `None` for an empty token (first page).
    pub fn check(&self, token: &str, filters: &[impl AsRef<str>]) -> Result<Option<String>> {
        if token.is_empty() {
            return Ok(None);
        }
        let tampered = || {
            RegistryError::invalid(
                "page_token",
                "the token is not one this registry issued (it was altered or truncated); \
                 start again with an empty page_token",
            )
        };
        let payload = self.0.open(token).map_err(|_| tampered())?;
        if payload.len() < FILTER_LEN {
            return Err(tampered());
        }
        let (digest, key) = payload.split_at(FILTER_LEN);
        if digest != filter_digest(filters) {
            return Err(RegistryError::invalid(
                "page_token",
                "the token was issued for a request with other filters, or to another caller; \
                 keep the filters unchanged while paging, or start again with an empty page_token",
            ));
        }
        String::from_utf8(key.to_vec()).map(Some).map_err(|_| tampered())
    }
}

fn filter_digest(filters: &[impl AsRef<str>]) -> [u8; FILTER_LEN] {
    let mut hasher = Sha256::new();
    for filter in filters.iter().map(AsRef::as_ref) {
        hasher.update((filter.len() as u64).to_le_bytes());
        hasher.update(filter.as_bytes());
    }
    let full = hasher.finalize();
    let mut out = [0u8; FILTER_LEN];
    out.copy_from_slice(&full[..FILTER_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let tokens = PageTokens::new(b"secret".to_vec());
        let token = tokens.issue(&["payment", ""], "payment.card_spending");
        assert_eq!(tokens.check(&token, &["payment", ""]).unwrap().as_deref(), Some("payment.card_spending"));
        assert!(tokens.check(&token, &["customer", ""]).is_err());
        let mut bytes = token.into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        assert!(tokens.check(std::str::from_utf8(&bytes).unwrap(), &["payment", ""]).is_err());
        assert!(tokens.check("!!", &[""]).is_err());
        assert_eq!(tokens.check("", &[""]).unwrap(), None);
        let other = PageTokens::new(b"other".to_vec());
        assert!(other.check(&tokens.issue(&[""], "x.y"), &[""]).is_err());
    }
}
