//! Opaque, tamper-evident and confidential tokens: the payload sealed with
//! XChaCha20-Poly1305 under a key derived from the service's secret, with a
//! random nonce, base64url without padding. Page tokens of the registry and
//! resume tokens of the domains are both built on this one type; each
//! decides what its payload holds. Sealing (not only signing) matters: a
//! resume token holds the last row's sort key, which may be an identifier
//! the caller receives only as a pseudonym.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// Bytes of the nonce at the start of a token.
const NONCE_LEN: usize = 24;

/// Bytes of a secret made by [`SealedTokens::new_secret`].
pub const SECRET_LEN: usize = 32;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too short, or it does not open: the token was
    /// altered, truncated, or sealed with another secret.
    #[error("the token was altered, truncated or issued elsewhere")]
    Tampered,
}

/// Seals payloads into tokens and opens them, with one secret.
#[derive(Clone)]
pub struct SealedTokens {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SealedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.write_str("SealedTokens(..)")
    }
}

impl SealedTokens {
    /// Tokens sealed under a key derived from `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        let key = Sha256::digest(&secret);
        Self { cipher: XChaCha20Poly1305::new(&key) }
    }

    /// A fresh random secret, to be kept by the service that seals.
    pub fn new_secret() -> [u8; SECRET_LEN] {
        rand::random()
    }

    /// The token carrying `payload`, unreadable and unalterable without the secret.
    pub fn seal(&self, payload: &[u8]) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed =
            self.cipher.encrypt(XNonce::from_slice(&nonce), payload).expect("sealing a payload cannot fail");
        let mut token = Vec::with_capacity(NONCE_LEN + sealed.len());
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The payload of `token`, if this secret sealed it. Surrounding
    /// whitespace is ignored.
    pub fn open(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| TokenError::Tampered)?;
        if raw.len() < NONCE_LEN {
            return Err(TokenError::Tampered);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        self.cipher.decrypt(XNonce::from_slice(nonce), sealed).map_err(|_| TokenError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_payload_comes_back() {
        let tokens = SealedTokens::new(b"secret".to_vec());
        for payload in [&b""[..], b"x", b"a longer payload with \x00 bytes"] {
            assert_eq!(tokens.open(&tokens.seal(payload)).unwrap(), payload);
        }
    }

    #[test]
    fn altered_truncated_and_foreign_tokens_are_refused() {
        let tokens = SealedTokens::new(b"secret".to_vec());
        let token = tokens.seal(b"payment.card_spending");
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(tokens.open(&altered), Err(TokenError::Tampered), "changed byte {i}");
        }
        for len in 0..token.len() {
            assert_eq!(tokens.open(&token[..len]), Err(TokenError::Tampered), "cut to {len}");
        }
        assert_eq!(tokens.open("!!not base64!!"), Err(TokenError::Tampered));
        let other = SealedTokens::new(b"other".to_vec());
        assert_eq!(other.open(&token), Err(TokenError::Tampered));
    }

    #[test]
    fn the_payload_cannot_be_read_from_the_token() {
        use base64::Engine;
        let tokens = SealedTokens::new(b"secret".to_vec());
        let token = tokens.seal(b"0000012345");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert!(!raw.windows(10).any(|w| w == b"0000012345"), "the identifier is not in the clear");
        assert_ne!(tokens.seal(b"0000012345"), token, "each token has its own nonce");
    }

    #[test]
    fn whitespace_around_a_token_is_ignored_and_secrets_are_not_printed() {
        let tokens = SealedTokens::new(SealedTokens::new_secret().to_vec());
        let token = tokens.seal(b"p");
        assert_eq!(tokens.open(&format!(" {token}\n")).unwrap(), b"p");
        assert_eq!(format!("{tokens:?}"), "SealedTokens(..)");
    }
}
