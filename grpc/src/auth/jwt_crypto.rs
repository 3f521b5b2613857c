//! The signatures of the mesh's tokens with ring (the same library that
//! secures its TLS): ES256, the local issuer's algorithm, is signed and
//! verified by ring, several times faster than the pure-Rust curve; every
//! other algorithm and the JWK utilities stay with jsonwebtoken's RustCrypto
//! provider. Installed once per process, before the first token is signed
//! or verified.

use std::sync::{Arc, LazyLock, Mutex, Once};

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: DEFAULT_PROVIDER.key_utils.clone(),
});

/// Makes ring sign and verify ES256 in this process (once; a provider
/// installed before stays). Called before anything of jsonwebtoken that
/// may fix the process's provider (a JWK made from a key, a verifier).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let provider: &'static CryptoProvider = &PROVIDER;
        let _ = provider.install_default();
    });
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::ES256 if key.family() == AlgorithmFamily::Ec => {
            Ok(Box::new(Es256Signer(key_pair(key.as_bytes())?)))
        }
        _ => (DEFAULT_PROVIDER.signer_factory)(algorithm, key),
    }
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::ES256 if key.family() == AlgorithmFamily::Ec => {
            let point = key.try_get_as_bytes().map_err(|_| ErrorKind::InvalidEcdsaKey)?;
            Ok(Box::new(Es256Verifier(point.to_vec())))
        }
        _ => (DEFAULT_PROVIDER.verifier_factory)(algorithm, key),
    }
}

/// The key pair of the PKCS#8 `der`, parsed once: the issuer signs with one
/// key, and parsing it costs as much as a signature.
fn key_pair(der: &[u8]) -> Result<Arc<EcdsaKeyPair>> {
    static LAST: Mutex<Option<(Vec<u8>, Arc<EcdsaKeyPair>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((kept, pair)) = last.as_ref()
        && kept.as_slice() == der
    {
        return Ok(Arc::clone(pair));
    }
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
        .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    let pair = Arc::new(pair);
    *last = Some((der.to_vec(), Arc::clone(&pair)));
    Ok(pair)
}

struct Es256Signer(Arc<EcdsaKeyPair>);

impl signature::Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let signed = self.0.sign(&SystemRandom::new(), message).map_err(|_| signature::Error::new())?;
        Ok(signed.as_ref().to_vec())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct Es256Verifier(Vec<u8>);

impl signature::Verifier<Vec<u8>> for Es256Verifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(message, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Es256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es256_tokens_signed_by_ring_verify_by_rustcrypto_and_back() {
        install();
        let dir = tempfile::tempdir().unwrap();
        let issuer = crate::auth::issuer::LocalIssuer::open_or_create(dir.path()).unwrap();
        let token = issuer.issue("kim", &[], std::time::Duration::from_secs(60), "aud").unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(&std::fs::read_to_string(issuer.jwks_file()).unwrap()).unwrap();
        let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let signature =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
        // The pure-Rust verifier accepts what ring signed.
        let rust_crypto = (DEFAULT_PROVIDER.verifier_factory)(&Algorithm::ES256, &key).unwrap();
        rust_crypto.verify(signed.as_bytes(), &signature).unwrap();
        // Ring accepts it too, and refuses it altered.
        let ring = verifier(&Algorithm::ES256, &key).unwrap();
        ring.verify(signed.as_bytes(), &signature).unwrap();
        let mut altered = signed.as_bytes().to_vec();
        altered[10] ^= 1;
        assert!(ring.verify(&altered, &signature).is_err());
        // Ring accepts what the pure-Rust signer signed.
        let pem = std::fs::read(dir.path().join("issuer-key.pem")).unwrap();
        let encoding = EncodingKey::from_ec_pem(&pem).unwrap();
        let by_rust_crypto = (DEFAULT_PROVIDER.signer_factory)(&Algorithm::ES256, &encoding).unwrap();
        let other = by_rust_crypto.try_sign(b"message").unwrap();
        ring.verify(b"message", &other).unwrap();
    }
}
