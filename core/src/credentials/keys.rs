//! Rule K1 and L1 of PROTOCOL.md §9 for product keys, device keys and device names.
//!
//! K1 lists `& | / + #`, NUL, control characters and whitespace; we also
//! refuse `%`, which PROTOCOL.md §3.2 relies on to refuse the EnOS
//! `%channel%` and `%VIRT_GATEWAY%` identities, and which Mosquitto's ACL
//! patterns treat as a substitution marker.

use super::CredentialError;

/// The longest product key, device key or device name, in bytes (PROTOCOL.md L1).
pub const MAX_KEY_LEN: usize = 64;

/// Which key a check concerns, so errors can say which one was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A product key.
    Product,
    /// A device key (EnOS) or device name (Aliyun).
    Device,
}

impl KeyKind {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Product => "product key",
            KeyKind::Device => "device key",
        }
    }
}

/// Checks a key against K1 (no `& | / + # %`, NUL, control characters or
/// whitespace) and L1 (1–64 bytes), and returns it as `&str`.
///
/// Used at registration (CLI, import) and at login, so a key that could
/// escape a topic level or the username split can never exist.
pub fn validate_key(kind: KeyKind, key: &[u8]) -> Result<&str, CredentialError> {
    if key.is_empty() {
        return Err(CredentialError::KeyEmpty(kind));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(CredentialError::KeyTooLong(kind));
    }
    let text = std::str::from_utf8(key).map_err(|_| CredentialError::KeyNotUtf8(kind))?;
    let forbidden = if text.is_ascii() {
        text.bytes()
            .any(|b| matches!(b, b'&' | b'|' | b'/' | b'+' | b'#' | b'%' | b' ' | 0x7f) || b < 0x21)
    } else {
        text.chars().any(is_forbidden_key_char)
    };
    if forbidden {
        return Err(CredentialError::KeyForbiddenChar(kind));
    }
    Ok(text)
}

fn is_forbidden_key_char(c: char) -> bool {
    matches!(c, '&' | '|' | '/' | '+' | '#' | '%' | '\u{7f}') || c.is_control() || c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_recommended_charsets() {
        for key in ["Ab3dEf9h", "dev_0001", "a.b:c@d-e", "x"] {
            assert_eq!(validate_key(KeyKind::Device, key.as_bytes()), Ok(key));
        }
        assert!(validate_key(KeyKind::Device, "é".repeat(32).as_bytes()).is_ok());
    }

    #[test]
    fn refuses_k1_characters_and_bad_lengths() {
        for bad in [
            "a%b", "a&b", "a|b", "a/b", "a+b", "a#b", "a\0b", "a\tb", "a b", "a\u{7f}", "a\u{a0}b",
        ] {
            assert_eq!(
                validate_key(KeyKind::Device, bad.as_bytes()),
                Err(CredentialError::KeyForbiddenChar(KeyKind::Device)),
                "{bad:?}"
            );
        }
        assert_eq!(
            validate_key(KeyKind::Product, b""),
            Err(CredentialError::KeyEmpty(KeyKind::Product))
        );
        assert_eq!(
            validate_key(KeyKind::Product, &[b'a'; 65]),
            Err(CredentialError::KeyTooLong(KeyKind::Product))
        );
        assert_eq!(
            validate_key(KeyKind::Product, &[0xff]),
            Err(CredentialError::KeyNotUtf8(KeyKind::Product))
        );
    }
}
