//! Opaque, tamper-evident tokens: a payload and a truncated HMAC-SHA256,
//! base64url without padding. Page tokens of the registry and resume tokens
//! of the domains are both built on this one type; each decides what its
//! payload holds.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the signature kept in a token (128 bits).
const MAC_LEN: usize = 16;

/// Bytes of a secret made by [`SignedTokens::new_secret`].
pub const SECRET_LEN: usize = 32;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too short, or the signature does not match: the token
    /// was altered, truncated, or signed with another secret.
    #[error("the token was altered, truncated or issued elsewhere")]
    Tampered,
}

/// Signs payloads into tokens and checks them, with one secret.
#[derive(Clone)]
pub struct SignedTokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for SignedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("SignedTokens(..)")
    }
}

impl SignedTokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    /// A fresh random secret, to be kept by the service that signs.
    pub fn new_secret() -> [u8; SECRET_LEN] {
        rand::random()
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("hmac takes any key length");
        mac.update(payload);
        mac
    }

    /// The token carrying `payload`.
    pub fn sign(&self, payload: &[u8]) -> String {
        let mac = self.mac(payload).finalize().into_bytes();
        let mut token = Vec::with_capacity(payload.len() + MAC_LEN);
        token.extend_from_slice(payload);
        token.extend_from_slice(&mac[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The payload of `token`, if this secret signed it. Surrounding
    /// whitespace is ignored.
    pub fn verify(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        let mut raw = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| TokenError::Tampered)?;
        if raw.len() < MAC_LEN {
            return Err(TokenError::Tampered);
        }
        let mac = raw.split_off(raw.len() - MAC_LEN);
        self.mac(&raw).verify_truncated_left(&mac).map_err(|_| TokenError::Tampered)?;
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_payload_comes_back() {
        let tokens = SignedTokens::new(b"secret".to_vec());
        for payload in [&b""[..], b"x", b"a longer payload with \x00 bytes"] {
            assert_eq!(tokens.verify(&tokens.sign(payload)).unwrap(), payload);
        }
    }

    #[test]
    fn altered_truncated_and_foreign_tokens_are_refused() {
        let tokens = SignedTokens::new(b"secret".to_vec());
        let token = tokens.sign(b"payment.card_spending");
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(tokens.verify(&altered), Err(TokenError::Tampered), "changed byte {i}");
        }
        for len in 0..token.len() {
            assert_eq!(tokens.verify(&token[..len]), Err(TokenError::Tampered), "cut to {len}");
        }
        assert_eq!(tokens.verify("!!not base64!!"), Err(TokenError::Tampered));
        let other = SignedTokens::new(b"other".to_vec());
        assert_eq!(other.verify(&token), Err(TokenError::Tampered));
    }

    #[test]
    fn whitespace_around_a_token_is_ignored_and_secrets_are_not_printed() {
        let tokens = SignedTokens::new(SignedTokens::new_secret().to_vec());
        let token = tokens.sign(b"p");
        assert_eq!(tokens.verify(&format!(" {token}\n")).unwrap(), b"p");
        assert_eq!(format!("{tokens:?}"), "SignedTokens(..)");
    }
}
