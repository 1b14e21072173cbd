//! Principals: backend clients (dashboards, services) that log in with a
//! name and password and get their own topic rules.
//!
//! Two stored forms:
//!
//! - `sha256$<salt hex>$<hash hex>`: a salted SHA-256 of a secret that
//!   `devicegate principal create` generated (128 random bits), which needs
//!   no slow hash: one SHA-256 per login, right or wrong.
//! - `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`: a password an
//!   operator chose. PBKDF2 (about half a millisecond) runs on the broker
//!   thread only when the engine's budget of slow hashes allows it; a
//!   successful verification is remembered as a salted SHA-256 (dropped
//!   with the principal when it changes), so reconnects cost one hash.
//!
//! Unknown names are checked against a dummy of the fast form: the same
//! work as a wrong generated secret, and never slow work.

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

    /// Checks `password`. `may_hash_slowly` is asked before a PBKDF2
    /// runs (not for a remembered or generated secret) and may refuse it.
    pub fn verify(&self, password: &[u8], may_hash_slowly: impl FnOnce() -> bool) -> Verification {
        let Some(parsed) = ParsedHash::parse(&self.password_hash) else {
            return Verification::Wrong;
        };
        let quick = quick_hash(parsed.salt(), password);
        if let ParsedHash::Fast { hash, .. } = &parsed {
            return Verification::of(quick.ct_eq(hash).into());
        }
        let cached = self.verified.lock().map(|g| *g).unwrap_or(None);
        if let Some(cached) = cached
            && bool::from(cached.ct_eq(&quick))
        {
            return Verification::Correct;
        }
        if !may_hash_slowly() {
            return Verification::Postponed;
        }
        let ok = parsed.verify_slowly(password);
        if ok && let Ok(mut guard) = self.verified.lock() {
            *guard = Some(quick);
        }
        Verification::of(ok)
    }
}

/// What a password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password is right.
    Correct,
    /// The password is wrong (or the stored hash unreadable).
    Wrong,
    /// Only a slow hash could tell, and the budget for those is spent.
    Postponed,
}

impl Verification {
    fn of(ok: bool) -> Self {
        if ok { Verification::Correct } else { Verification::Wrong }
    }
}

fn quick_hash(salt: &[u8], password: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password);
    h.finalize().into()
}

enum ParsedHash {
    Fast {
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
}

impl ParsedHash {
    fn parse(stored: &str) -> Option<Self> {
        let mut parts = stored.split('$');
        let scheme = parts.next()?;
        let iterations = match scheme {
            "sha256" => None,
            "pbkdf2-sha256" => Some(parts.next()?.parse().ok().filter(|i| *i > 0)?),
            _ => return None,
        };
        let salt = hex::decode(parts.next()?).ok()?;
        let mut hash = [0u8; HASH_LEN];
        hex::decode_to_slice(parts.next()?, &mut hash).ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(match iterations {
            None => ParsedHash::Fast { salt, hash },
            Some(iterations) => ParsedHash::Pbkdf2 { iterations, salt, hash },
        })
    }

    fn salt(&self) -> &[u8] {
        match self {
            ParsedHash::Fast { salt, .. } | ParsedHash::Pbkdf2 { salt, .. } => salt,
        }
    }

    fn verify_slowly(&self, password: &[u8]) -> bool {
        let ParsedHash::Pbkdf2 { iterations, salt, hash } = self else {
            return false;
        };
        let mut out = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, *iterations, &mut out);
        out.ct_eq(hash).into()
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

/// A generated principal secret (128 random bits as 32 hex digits) and
/// its stored form, which needs no slow hash.
pub fn generate_secret() -> Result<(crate::secret::Secret, String), getrandom::Error> {
    let secret = crate::secret::Secret::generate()?;
    let mut salt = [0u8; SALT_LEN];
    getrandom::getrandom(&mut salt)?;
    let hash = quick_hash(&salt, secret.expose());
    Ok((secret, format!("sha256${}${}", hex::encode(salt), hex::encode(hash))))
}

/// A stored hash for principals that do not exist, so an unknown name
/// costs the same work as a wrong generated secret: one SHA-256.
pub fn dummy_principal() -> Principal {
    Principal::new(
        "",
        "sha256$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000",
        TopicRules::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use Verification::*;

    #[test]
    fn hash_then_verify() {
        let stored = hash_password(b"correct horse").unwrap();
        let p = Principal::new("backend", &stored, TopicRules::default());
        assert_eq!(p.verify(b"wrong", || true), Wrong);
        assert_eq!(
            p.verify(b"correct horse", || false),
            Postponed,
            "a slow hash needs the budget"
        );
        assert_eq!(p.verify(b"correct horse", || true), Correct);
        assert_eq!(
            p.verify(b"correct horse", || panic!("no slow hash")),
            Correct,
            "remembered"
        );
        assert_eq!(p.verify(b"wrong", || false), Postponed, "the memo does not widen");
        assert_eq!(dummy_principal().verify(b"", || panic!("no slow hash")), Wrong);
    }

    #[test]
    fn generated_secrets_need_no_slow_hash() {
        let (secret, stored) = generate_secret().unwrap();
        assert!(stored.starts_with("sha256$"));
        assert_eq!(secret.expose().len(), 32);
        let p = Principal::new("backend", &stored, TopicRules::default());
        assert_eq!(p.verify(secret.expose(), || panic!("no slow hash")), Correct);
        assert_eq!(p.verify(b"wrong", || panic!("no slow hash")), Wrong);
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
            assert_eq!(
                Principal::new("p", bad, TopicRules::default()).verify(b"", || true),
                Wrong,
                "{bad}"
            );
        }
    }
}
