//! Device tokens whose signature the engine has already checked, so that a
//! device reconnecting with the same token (every reconnect until it
//! expires, a whole fleet after a broker restart) costs one SHA-256 on the
//! broker thread instead of an Ed25519 verification (about 65 µs).
//!
//! An entry is the SHA-256 of the public key and the token's bytes: it
//! says only "these bytes carry a good signature under this key". Every
//! other check (expiry, revocation, the device) runs at each login, and a
//! removed or replaced key is refused before this is consulted.

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;
use sha2::{Digest as _, Sha256};

/// Entries kept at most (about 4 MiB); past it, expired ones are dropped,
/// then all.
const CAPACITY: usize = 65_536;

/// The set of verified tokens, with their expiry (ms since the epoch).
#[derive(Debug, Default)]
pub(super) struct VerifiedTokens {
    entries: DashMap<[u8; 32], u64, FxBuildHasher>,
}

impl VerifiedTokens {
    /// The cache key of `token` under `public_key`.
    pub(super) fn digest(public_key: &[u8; 32], token: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(public_key);
        hasher.update(token);
        hasher.finalize().into()
    }

    /// Whether the token with this digest was verified before.
    pub(super) fn contains(&self, digest: &[u8; 32]) -> bool {
        self.entries.contains_key(digest)
    }

    /// Remembers a verified token until `expires_at_ms`.
    pub(super) fn insert(&self, digest: [u8; 32], expires_at_ms: u64, now_ms: u64) {
        if self.entries.len() >= CAPACITY {
            self.entries.retain(|_, expires| *expires > now_ms);
            if self.entries.len() >= CAPACITY {
                self.entries.clear();
            }
        }
        self.entries.insert(digest, expires_at_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keyed_by_key_and_token() {
        let cache = VerifiedTokens::default();
        let a = VerifiedTokens::digest(&[1; 32], b"token");
        assert_ne!(a, VerifiedTokens::digest(&[2; 32], b"token"));
        assert!(!cache.contains(&a));
        cache.insert(a, 10, 0);
        assert!(cache.contains(&a));
        for i in 0..CAPACITY as u64 + 10 {
            cache.insert(VerifiedTokens::digest(&[3; 32], &i.to_le_bytes()), 5, 6);
        }
        assert!(cache.entries.len() <= CAPACITY);
    }
}
