//! The bootstrap request's proof (IDENTITIES.md §5): a device asks the
//! provisioning service which broker it belongs on, signing like an EnOS
//! login (PROTOCOL.md §3) with a timestamp in milliseconds that must be
//! within ten minutes of the service's clock.

use crate::sign::{Content, Digest, HashAlg, Scheme, SignMethod, compute, verify_or_dummy};

/// How far a bootstrap timestamp may be from the service's clock.
pub const WINDOW_MS: u64 = 10 * 60 * 1000;

const METHOD: SignMethod = SignMethod {
    alg: HashAlg::Sha256,
    scheme: Scheme::AppendSecret,
};

fn content<'a>(pk: &'a str, dk: &'a str, timestamp: &'a str) -> Content<'a> {
    Content::new(&[
        ("clientId", dk),
        ("deviceKey", dk),
        ("productKey", pk),
        ("timestamp", timestamp),
    ])
}

/// The `sign` of a bootstrap request (lower-case hex), for devices and
/// tests.
pub fn bootstrap_sign(pk: &str, dk: &str, timestamp: &str, secret: &[u8]) -> String {
    compute(METHOD, &content(pk, dk, timestamp), secret).to_hex_lower()
}

/// Why a bootstrap request is refused. [`BootstrapRefusal::Malformed`] is
/// the client's fault in a way it can fix (400); the others are 401 alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapRefusal {
    /// A field does not have its form; names the field.
    #[error("{0}")]
    Malformed(&'static str),
    /// The timestamp is more than ten minutes from the service's clock.
    #[error("timestamp outside the 10-minute window (is the device's clock set?)")]
    Stale,
    /// Unknown device or wrong signature (the same answer for both).
    #[error("unknown device or bad sign")]
    BadSign,
}

/// Checks a bootstrap request of device `dk` of product `pk` at `now_ms`
/// against the device's `secret` (`None`: unknown device or no secret, for
/// which the same work is done and the answer is [`BootstrapRefusal::BadSign`]).
pub fn verify_bootstrap(
    pk: &str,
    dk: &str,
    timestamp: &str,
    sign_method: &str,
    sign: &str,
    secret: Option<&[u8]>,
    now_ms: u64,
) -> Result<(), BootstrapRefusal> {
    if !sign_method.eq_ignore_ascii_case("sha256") {
        return Err(BootstrapRefusal::Malformed("signMethod: only sha256 is accepted"));
    }
    let ts: u64 = match timestamp.parse() {
        Ok(ts) if timestamp.len() <= 16 => ts,
        _ => {
            return Err(BootstrapRefusal::Malformed(
                "timestamp: expected milliseconds since the UNIX epoch",
            ));
        }
    };
    let presented = Digest::from_hex(HashAlg::Sha256, sign.as_bytes())
        .map_err(|_| BootstrapRefusal::Malformed("sign: expected 64 hex digits"))?;
    let good = verify_or_dummy(METHOD, &content(pk, dk, timestamp), secret, &presented);
    if now_ms.abs_diff(ts) > WINDOW_MS {
        return Err(BootstrapRefusal::Stale);
    }
    if good { Ok(()) } else { Err(BootstrapRefusal::BadSign) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B1_SIGN: &str = "15dce39e486a56f6d70740e52d46e1b892f0ba841dfed164ac09e7eb18ab5bac";
    const NOW: u64 = 1_796_000_000_000;

    #[test]
    fn vector_b1() {
        assert_eq!(
            content("Ab3dEf9h", "dev_0001", "1796000000000").to_text(),
            "clientIddev_0001deviceKeydev_0001productKeyAb3dEf9htimestamp1796000000000"
        );
        assert_eq!(
            bootstrap_sign("Ab3dEf9h", "dev_0001", "1796000000000", b"S3cretDevice0001"),
            B1_SIGN
        );
        let check = |sign: &str, secret: Option<&[u8]>, now| {
            verify_bootstrap("Ab3dEf9h", "dev_0001", "1796000000000", "sha256", sign, secret, now)
        };
        assert_eq!(check(B1_SIGN, Some(b"S3cretDevice0001"), NOW), Ok(()));
        assert_eq!(
            check(&B1_SIGN.to_uppercase(), Some(b"S3cretDevice0001"), NOW + 599_000),
            Ok(())
        );
        assert_eq!(
            check(B1_SIGN, Some(b"S3cretDevice0002"), NOW),
            Err(BootstrapRefusal::BadSign)
        );
        assert_eq!(check(B1_SIGN, None, NOW), Err(BootstrapRefusal::BadSign));
        assert_eq!(
            check(B1_SIGN, Some(b"S3cretDevice0001"), NOW + 601_000),
            Err(BootstrapRefusal::Stale)
        );
        assert_eq!(
            check(B1_SIGN, Some(b"S3cretDevice0001"), NOW - 601_000),
            Err(BootstrapRefusal::Stale)
        );
    }

    #[test]
    fn malformed_fields_are_named() {
        let refuse = |ts: &str, method: &str, sign: &str| {
            verify_bootstrap("Ab3dEf9h", "dev_0001", ts, method, sign, Some(b"x"), NOW).unwrap_err()
        };
        assert!(
            matches!(refuse("1796000000000", "md5", B1_SIGN), BootstrapRefusal::Malformed(m) if m.starts_with("signMethod"))
        );
        assert!(
            matches!(refuse("soon", "sha256", B1_SIGN), BootstrapRefusal::Malformed(m) if m.starts_with("timestamp"))
        );
        assert!(
            matches!(refuse("1796000000000", "sha256", "zz"), BootstrapRefusal::Malformed(m) if m.starts_with("sign:"))
        );
    }
}
