//! Principals: backend clients (dashboards, services) that log in with a
//! name and password and get their own topic rules.
//!
//! Passwords are stored as `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`.
//! PBKDF2 runs on the broker thread at a principal's first login, so the
//! iteration count is moderate; principals are few and their passwords
//! should be long random strings. A successful verification is remembered
//! as a salted SHA-256, so reconnects cost one hash.

use std::sync::Mutex;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::acl::TopicRules;

/// PBKDF2 iterations for new password hashes.
pub const DEFAULT_ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// A principal as the registry holds it.
#[derive(Debug)]
pub struct Principal {
    /// The login name (the MQTT username).
    pub name: Box<str>,
    /// The stored password hash.
    password_hash: Box<str>,
    /// What the principal may publish, subscribe and read.
    pub rules: TopicRules,
    verified: Mutex<Option<[u8; 32]>>,
}

impl Principal {
    /// A principal with a stored hash and rules.
    pub fn new(name: &str, password_hash: &str, rules: TopicRules) -> Self {
        Principal {
            name: name.into(),
            password_hash: password_hash.into(),
            rules,
            verified: Mutex::new(None),
        }
    }

    /// Whether `other` has the same name, password hash and rules.
    pub fn same_definition(&self, other: &Principal) -> bool {
        self.name == other.name && self.password_hash == other.password_hash && self.rules == other.rules
    }

    /// Whether `password` is the principal's password.
    pub fn verify(&self, password: &[u8]) -> bool {
        let Some(parsed) = ParsedHash::parse(&self.password_hash) else {
            return false;
        };
        let quick = quick_hash(&parsed.salt, password);
        let cached = self.verified.lock().map(|g| *g).unwrap_or(None);
        if let Some(cached) = cached
            && bool::from(cached.ct_eq(&quick))
        {
            return true;
        }
        let ok = parsed.verify(password);
        if ok && let Ok(mut guard) = self.verified.lock() {
            *guard = Some(quick);
        }
        ok
    }
}

fn quick_hash(salt: &[u8], password: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password);
    h.finalize().into()
}

struct ParsedHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: [u8; HASH_LEN],
}

impl ParsedHash {
    fn parse(stored: &str) -> Option<Self> {
        let mut parts = stored.split('$');
        if parts.next()? != "pbkdf2-sha256" {
            return None;
        }
        let iterations = parts.next()?.parse().ok().filter(|i| *i > 0)?;
        let salt = hex::decode(parts.next()?).ok()?;
        let mut hash = [0u8; HASH_LEN];
        hex::decode_to_slice(parts.next()?, &mut hash).ok()?;
        parts.next().is_none().then_some(ParsedHash { iterations, salt, hash })
    }

    fn verify(&self, password: &[u8]) -> bool {
        let mut out = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &self.salt, self.iterations, &mut out);
        out.ct_eq(&self.hash).into()
    }
}

/// Hashes a new password with a random salt.
pub fn hash_password(password: &[u8]) -> Result<String, getrandom::Error> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::getrandom(&mut salt)?;
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, DEFAULT_ITERATIONS, &mut out);
    Ok(format!(
        "pbkdf2-sha256${DEFAULT_ITERATIONS}${}${}",
        hex::encode(salt),
        hex::encode(out)
    ))
}

/// A stored hash for principals that do not exist, so an unknown name
/// costs the same PBKDF2 work as a wrong password.
pub fn dummy_principal() -> Principal {
    Principal::new(
        "",
        "pbkdf2-sha256$4096$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000",
        TopicRules::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let stored = hash_password(b"correct horse").unwrap();
        let p = Principal::new("backend", &stored, TopicRules::default());
        assert!(!p.verify(b"wrong"));
        assert!(p.verify(b"correct horse"));
        assert!(p.verify(b"correct horse"), "cached path");
        assert!(!p.verify(b"wrong"), "cache does not widen");
        assert!(!dummy_principal().verify(b""));
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for bad in [
            "",
            "md5$1$00$00",
            "pbkdf2-sha256$0$00$00",
            "pbkdf2-sha256$1$zz$00",
            "pbkdf2-sha256$1$00$00$x",
        ] {
            assert!(!Principal::new("p", bad, TopicRules::default()).verify(b""), "{bad}");
        }
    }
}
