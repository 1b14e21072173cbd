//! The CONNECT username (PROTOCOL.md §2.1): `{dk}&{pk}` for devices, or a
//! principal name without `&` for backend clients.

use super::keys::{KeyKind, validate_key};
use super::{CredentialError, Identity};

/// The longest username accepted, in bytes (PROTOCOL.md L1).
pub const MAX_USERNAME_LEN: usize = 129;

/// Who a username names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Username<'a> {
    /// A device, `{dk}&{pk}`.
    Device(Identity<'a>),
    /// A principal (backend client): a name without `&`.
    Principal(&'a str),
}

/// Parses a CONNECT username. A missing username is an error: every client
/// devicegate owns has one.
pub fn parse_username(username: Option<&[u8]>) -> Result<Username<'_>, CredentialError> {
    let raw = username.ok_or(CredentialError::UsernameMissing)?;
    if raw.is_empty() {
        return Err(CredentialError::UsernameMissing);
    }
    if raw.len() > MAX_USERNAME_LEN {
        return Err(CredentialError::UsernameTooLong);
    }
    let mut parts = raw.splitn(3, |&b| b == b'&');
    let first = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (None, _) => {
            let name = std::str::from_utf8(raw).map_err(|_| CredentialError::UsernameNotUtf8)?;
            if name.chars().any(|c| c.is_control()) {
                return Err(CredentialError::UsernameNotUtf8);
            }
            Ok(Username::Principal(name))
        }
        (Some(pk), None) => Ok(Username::Device(Identity {
            device_key: validate_key(KeyKind::Device, first)?,
            product_key: validate_key(KeyKind::Product, pk)?,
        })),
        (Some(_), Some(_)) => Err(CredentialError::UsernameAmpersands),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_username_is_dk_then_pk() {
        let u = parse_username(Some(b"dev_0001&Ab3dEf9h")).unwrap();
        assert_eq!(
            u,
            Username::Device(Identity {
                product_key: "Ab3dEf9h",
                device_key: "dev_0001"
            })
        );
    }

    #[test]
    fn principal_username_has_no_ampersand() {
        assert_eq!(
            parse_username(Some(b"backend")).unwrap(),
            Username::Principal("backend")
        );
    }

    #[test]
    fn malformed_usernames_are_refused() {
        assert_eq!(parse_username(None), Err(CredentialError::UsernameMissing));
        assert_eq!(parse_username(Some(b"")), Err(CredentialError::UsernameMissing));
        assert_eq!(parse_username(Some(b"a&b&x")), Err(CredentialError::UsernameAmpersands));
        assert_eq!(
            parse_username(Some(b"&pk")),
            Err(CredentialError::KeyEmpty(KeyKind::Device))
        );
        assert_eq!(
            parse_username(Some(b"dk&")),
            Err(CredentialError::KeyEmpty(KeyKind::Product))
        );
        assert_eq!(
            parse_username(Some(b"d/k&pk")),
            Err(CredentialError::KeyForbiddenChar(KeyKind::Device))
        );
        assert_eq!(
            parse_username(Some(&[b'a'; 130])),
            Err(CredentialError::UsernameTooLong)
        );
        assert_eq!(
            parse_username(Some(&[0xc3, 0x28])),
            Err(CredentialError::UsernameNotUtf8)
        );
    }
}
