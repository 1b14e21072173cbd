//! Secrets: device and product secrets held in memory, generated with the
//! operating system's RNG, never printed by `Debug`.

/// A device or product secret. `Debug` prints `Secret(..)`, so a secret
/// cannot reach a log line through a derived `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Box<[u8]>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret bytes, for signing only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text (secrets are stored and printed as text).
    pub fn expose_str(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// A fresh secret of 128 random bits as 32 lower-case hex digits
    /// (PROTOCOL.md §4: at least 128 random bits).
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(Secret::new(random_hex(16)?.into_bytes()))
    }
}

/// `bytes` random bytes from the operating system, as lower-case hex.
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf)?;
    Ok(hex::encode(buf))
}

/// A dummy secret of typical length, used for unknown devices so that they
/// cost the same work as a bad signature (PROTOCOL.md §9 C2).
pub const DUMMY_SECRET: &[u8] = b"0000000000000000dummy-secret-000";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_distinct_hex() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().iter().all(u8::is_ascii_hexdigit));
        assert_eq!(format!("{a:?}"), "Secret(..)");
    }
}
