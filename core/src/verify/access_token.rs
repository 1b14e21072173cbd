//! Device tokens (IDENTITIES.md §4): an Ed25519-signed JWT as the MQTT
//! password. The signature is checked first, under the key id's public key
//! from the registry, then the claims against the clock, the device and
//! its product.

use std::sync::Arc;

use uuid::Uuid;

use super::{Found, Grant, Via};
use crate::access_token::{AUDIENCE, CLOCK_SKEW_SECS, ParsedToken};
use crate::credentials::Identity;
use crate::decision::Refusal;
use crate::registry::identity_of;

/// Whom the CONNECT's username names beside the token: nobody, a device by
/// `dk&pk`, or a device by GUID. It must be the token's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named<'a> {
    /// An empty or absent username.
    Nobody,
    /// `{dk}&{pk}`.
    Device(Identity<'a>),
    /// The device's GUID.
    Guid(Uuid),
}

/// How the token's signature is known to be good, or is to be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// These bytes verified under this key before (the engine's cache).
    Verified,
    /// Check it, if the broker thread's budget allows one more (else busy).
    Check {
        /// Whether the budget allows a check now.
        allowed: bool,
    },
}

/// Verifies a login with the device token `token` at `now_ms`. `device` is
/// the `{dk}&{pk}` the registry maps the token's `di` to; `public_key` the
/// registry's key for the token's key id.
pub fn verify(
    token: &ParsedToken<'_>,
    named: Named<'_>,
    device: Option<&str>,
    found: Found<'_>,
    public_key: Option<[u8; 32]>,
    signature: impl FnOnce(&[u8; 32]) -> Signature,
    now_ms: u64,
) -> Result<Grant, Refusal> {
    let refuse = Refusal::AccessToken;
    let public_key = public_key.ok_or(refuse("unknown key id (token keygen adds keys)"))?;
    match signature(&public_key) {
        Signature::Verified => {}
        Signature::Check { allowed: false } => return Err(Refusal::Busy),
        Signature::Check { allowed: true } if token.signature_valid(&public_key) => {}
        Signature::Check { allowed: true } => return Err(refuse("the signature does not verify")),
    }
    let claims = &token.claims;
    let now_s = now_ms / 1000;
    if claims.aud != AUDIENCE {
        return Err(refuse("the audience is not devicegate"));
    }
    if claims.iat > now_s + CLOCK_SKEW_SECS {
        return Err(refuse("issued in the future"));
    }
    if claims.exp.saturating_add(CLOCK_SKEW_SECS) <= now_s {
        return Err(refuse("expired"));
    }
    let device = device.ok_or(Refusal::UnknownDevice)?;
    let (product, record) = found.require()?;
    let named_other = match named {
        Named::Nobody => false,
        Named::Device(identity) => Some(identity) != identity_of(device),
        Named::Guid(guid) => Some(guid) != record.guid,
    };
    if named_other {
        return Err(Refusal::CredentialNamesAnotherDevice);
    }
    let same_guid = |claim: &str, guid: Option<Uuid>| Uuid::parse_str(claim).ok().is_some_and(|c| Some(c) == guid);
    let sub_matches = claims
        .sub
        .split_once(':')
        .is_some_and(|(pi, di)| pi == claims.pi && di == claims.di);
    if !same_guid(&claims.pi, product.guid) || !sub_matches {
        return Err(refuse("its product or subject does not match the device"));
    }
    if claims.iat.saturating_mul(1000) <= record.tokens_revoked_at_ms {
        return Err(refuse("issued before the device's tokens were revoked"));
    }
    let mut grant = Grant::normal(
        device.into(),
        Arc::clone(product),
        Via::AccessToken(token.kid.as_str().into()),
    );
    grant.expires_at_ms = Some(claims.exp.saturating_mul(1000));
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_token::{Claims, SigningKey};
    use crate::credentials::Dialect;
    use crate::registry::{DeviceRecord, Product};

    const PI: &str = "681f244f-243c-4c29-9e73-b5ba55a284d4";
    const DI: &str = "ed031364-07ec-4ef8-aa76-b3c56b4069a7";
    const T1_NOW_MS: u64 = 1_796_001_000_000;

    struct Fixture {
        key: SigningKey,
        product: Arc<Product>,
        record: DeviceRecord,
    }

    fn fixture() -> Fixture {
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mut product = Product::new("Ab3dEf9h", Dialect::Enos);
        product.guid = Uuid::parse_str(PI).ok();
        let mut record = DeviceRecord::new(None);
        record.guid = Uuid::parse_str(DI).ok();
        Fixture {
            key: SigningKey::from_seed("k1", &seed).unwrap(),
            product: Arc::new(product),
            record,
        }
    }

    fn t1_claims() -> Claims {
        Claims {
            sub: format!("{PI}:{DI}"),
            aud: "devicegate".into(),
            jti: "85d6f550-85fd-4135-b153-2b631b961c4f".into(),
            pi: PI.into(),
            di: DI.into(),
            iat: 1_796_000_000,
            exp: 1_796_003_600,
        }
    }

    fn check(f: &Fixture, token: &str, named: Named<'_>, kid_known: bool, now_ms: u64) -> Result<Grant, Refusal> {
        let parsed = ParsedToken::parse(token.as_bytes()).map_err(|_| Refusal::BadToken)?;
        let found = Found {
            product: Some(&f.product),
            record: Some(&f.record),
        };
        let public_key = (kid_known && parsed.kid == "k1").then(|| f.key.public_key());
        verify(
            &parsed,
            named,
            Some("dev_0001&Ab3dEf9h"),
            found,
            public_key,
            |_| Signature::Check { allowed: true },
            now_ms,
        )
    }

    #[test]
    fn vector_t1_logs_in_until_it_expires() {
        let f = fixture();
        let token = f.key.issue(&t1_claims());
        let grant = check(&f, &token, Named::Nobody, true, T1_NOW_MS).unwrap();
        assert_eq!(&*grant.key, "dev_0001&Ab3dEf9h");
        assert_eq!(grant.expires_at_ms, Some(1_796_003_600_000));
        assert_eq!(grant.via, Via::AccessToken("k1".into()));
        assert_eq!(
            check(&f, &token, Named::Nobody, true, 1_796_003_700_000).unwrap_err(),
            Refusal::AccessToken("expired")
        );
    }

    #[test]
    fn vector_t1_refusals() {
        let f = fixture();
        let token = f.key.issue(&t1_claims());
        // One byte of the signature changed.
        let mut bytes = token.clone().into_bytes();
        let at = bytes.len() - 5;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        assert_eq!(
            check(&f, &changed, Named::Nobody, true, T1_NOW_MS).unwrap_err(),
            Refusal::AccessToken("the signature does not verify")
        );
        // kid k2: no such key.
        let k2 = SigningKey::from_seed("k2", &std::array::from_fn(|i| i as u8)).unwrap();
        assert_eq!(
            check(&f, &k2.issue(&t1_claims()), Named::Nobody, true, T1_NOW_MS).unwrap_err(),
            Refusal::AccessToken("unknown key id (token keygen adds keys)")
        );
        // alg none and HS256 do not even parse (see access_token's tests);
        // here they are refused end to end.
        for alg in ["none", "HS256"] {
            use base64::Engine as _;
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k1"}}"#));
            let forged = format!("{header}.{}", token.split_once('.').unwrap().1);
            assert_eq!(
                check(&f, &forged, Named::Nobody, true, T1_NOW_MS).unwrap_err(),
                Refusal::BadToken
            );
        }
    }

    #[test]
    fn the_username_must_name_the_tokens_device() {
        let f = fixture();
        let token = f.key.issue(&t1_claims());
        let own = Identity {
            product_key: "Ab3dEf9h",
            device_key: "dev_0001",
        };
        let other = Identity {
            product_key: "Ab3dEf9h",
            device_key: "dev_0002",
        };
        assert!(check(&f, &token, Named::Device(own), true, T1_NOW_MS).is_ok());
        assert!(check(&f, &token, Named::Guid(Uuid::parse_str(DI).unwrap()), true, T1_NOW_MS).is_ok());
        assert_eq!(
            check(&f, &token, Named::Device(other), true, T1_NOW_MS).unwrap_err(),
            Refusal::CredentialNamesAnotherDevice
        );
        assert_eq!(
            check(&f, &token, Named::Guid(Uuid::nil()), true, T1_NOW_MS).unwrap_err(),
            Refusal::CredentialNamesAnotherDevice
        );
    }

    #[test]
    fn claims_that_do_not_fit_are_refused() {
        let f = fixture();
        let mut claims = t1_claims();
        claims.aud = "elsewhere".into();
        assert!(check(&f, &f.key.issue(&claims), Named::Nobody, true, T1_NOW_MS).is_err());
        let mut claims = t1_claims();
        claims.iat = 1_796_001_100;
        assert_eq!(
            check(&f, &f.key.issue(&claims), Named::Nobody, true, T1_NOW_MS).unwrap_err(),
            Refusal::AccessToken("issued in the future")
        );
        let mut claims = t1_claims();
        claims.pi = Uuid::nil().to_string();
        assert!(check(&f, &f.key.issue(&claims), Named::Nobody, true, T1_NOW_MS).is_err());
        let mut revoked = fixture();
        revoked.record.tokens_revoked_at_ms = 1_796_000_500_000;
        assert_eq!(
            check(
                &revoked,
                &revoked.key.issue(&t1_claims()),
                Named::Nobody,
                true,
                T1_NOW_MS
            )
            .unwrap_err(),
            Refusal::AccessToken("issued before the device's tokens were revoked")
        );
    }
}
