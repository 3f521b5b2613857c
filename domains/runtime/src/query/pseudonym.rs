//! Keyed pseudonyms for identifier columns. One secret key is shared by
//! every domain of the mesh (a file, mode 0600); from it each consumer gets
//! a key of its own, so a consumer's pseudonym for a customer is the same
//! in every product (it can still join them) and differs from another
//! consumer's (two extracts cannot be linked). BLAKE3 in keyed mode: a
//! pseudo-random function, fast enough for the row encoder.

use std::path::Path;

use crate::error::{DomainError, Result};

/// Hex digits of a text pseudonym (128 bits).
pub(crate) const PSEUDONYM_DIGITS: usize = 32;
const TEXT_DIGITS: usize = PSEUDONYM_DIGITS;

/// A pseudonym key: the mesh's, or one consumer's.
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey([u8; 32]);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(redacted)")
    }
}

fn unusable(path: &Path, why: impl std::fmt::Display) -> DomainError {
    DomainError::Config(format!("the pseudonym key {} cannot be used: {why}", path.display()))
}

impl PseudonymKey {
    /// The key in the file at `path` (64 hex digits), which only its owner
    /// may read.
    pub fn read(path: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(|e| unusable(path, e))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(unusable(path, "other users may read it; `chmod 600` it"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| unusable(path, e))?;
        let bytes = decode_hex(text.trim()).ok_or_else(|| unusable(path, "it is not 64 hex digits"))?;
        Ok(Self(bytes))
    }

    /// A fixed key, for tests of what is delivered under one.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self([7; 32])
    }

    /// The key of the consumer `subject` of `issuer`.
    pub(crate) fn for_consumer(&self, issuer: &str, subject: &str) -> Self {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        for part in [issuer, subject] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        Self(*hasher.finalize().as_bytes())
    }

    /// The key a consumer's rows are ordered by (see `Dialect::keyed_order`):
    /// derived from its pseudonym key, so it differs between consumers.
    pub(crate) fn order_key(&self) -> Vec<u8> {
        blake3::keyed_hash(&self.0, b"mesh row order").as_bytes().to_vec()
    }

    /// The pseudonym of a text value: 32 hex digits.
    pub(crate) fn text(&self, value: &[u8], out: &mut [u8; TEXT_DIGITS]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let hash = blake3::keyed_hash(&self.0, value);
        for (i, byte) in hash.as_bytes()[..TEXT_DIGITS / 2].iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
    }

    /// The pseudonym of an integer value: a non-negative 63-bit integer.
    pub(crate) fn integer(&self, value: i64) -> i64 {
        let hash = blake3::keyed_hash(&self.0, &value.to_le_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hash.as_bytes()[..8]);
        (u64::from_le_bytes(bytes) >> 1) as i64
    }
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn text(key: &PseudonymKey, value: &str) -> String {
        let mut out = [0u8; TEXT_DIGITS];
        key.text(value.as_bytes(), &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn pseudonyms_are_stable_per_consumer_and_differ_between_consumers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pseudonym.key");
        mesh_grpc::private_files::create_secret(&path).unwrap();
        let mesh = PseudonymKey::read(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        mesh_grpc::private_files::create_secret(&path).unwrap();
        assert_eq!(PseudonymKey::read(&path).unwrap(), mesh, "an existing key is kept");
        let (ana, bob) = (mesh.for_consumer("mesh-local", "ana"), mesh.for_consumer("mesh-local", "bob"));
        assert_eq!(text(&ana, "0000012345"), text(&ana, "0000012345"));
        assert_ne!(text(&ana, "0000012345"), text(&bob, "0000012345"));
        assert_ne!(text(&ana, "0000012345"), text(&ana, "0000012346"));
        assert_eq!(text(&ana, "x").len(), 32);
        assert!(ana.integer(42) >= 0);
        assert_ne!(ana.integer(42), bob.integer(42));
        assert!(!format!("{mesh:?}").contains(&text(&mesh, "")));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = PseudonymKey::read(&path).unwrap_err().to_string();
        assert!(err.contains("other users may read it"), "{err}");
        std::fs::write(dir.path().join("short"), "abcd").unwrap();
        std::fs::set_permissions(dir.path().join("short"), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(PseudonymKey::read(&dir.path().join("short")).is_err());
    }
}
