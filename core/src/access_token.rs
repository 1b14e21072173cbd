//! Device access tokens (IDENTITIES.md §4): JWTs (RFC 7519) signed with
//! Ed25519 under a key id, obtained with an access key from `devicegate
//! serve` or printed by `devicegate token issue`, presented as the MQTT
//! password.
//!
//! This module is the format: issuing with a [`SigningKey`] and splitting a
//! presented token into header, claims and signature ([`ParsedToken`]).
//! Whether a parsed token logs a device in is decided in
//! [`crate::verify::verify_access_token`]. (The Aliyun `connwl` token of
//! PROTOCOL.md §6.3 is a different thing: [`crate::credentials::TokenLogin`].)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 2048;
/// The `aud` claim of every devicegate token.
pub const AUDIENCE: &str = "devicegate";
/// The longest key id accepted, in bytes.
pub const MAX_KID_LEN: usize = 64;
/// How far `iat` may lie ahead of the verifier's clock, and `exp` behind
/// it, in seconds (clock skew between the service and the brokers).
pub const CLOCK_SKEW_SECS: u64 = 30;

/// The claims of a device token, in the order they are serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `{productGUID}:{deviceGUID}`.
    pub sub: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// A UUID naming this token.
    pub jti: String,
    /// The product's GUID.
    pub pi: String,
    /// The device's GUID.
    pub di: String,
    /// Issued at, seconds since the UNIX epoch.
    pub iat: u64,
    /// Expires at, seconds since the UNIX epoch.
    pub exp: u64,
}

impl Claims {
    /// The claims of a token for the device `device_guid` of product
    /// `product_guid`, issued at `iat` and valid for `ttl_secs`.
    pub fn new(product_guid: &str, device_guid: &str, iat: u64, ttl_secs: u64) -> Self {
        Claims {
            sub: format!("{product_guid}:{device_guid}"),
            aud: AUDIENCE.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            pi: product_guid.to_owned(),
            di: device_guid.to_owned(),
            iat,
            exp: iat.saturating_add(ttl_secs),
        }
    }
}

/// The JOSE header as devicegate writes it (field order is the wire order).
#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// The JOSE header as read: only `alg` and `kid` matter.
#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    kid: Option<String>,
}

/// An Ed25519 key that signs tokens, with its key id. `Debug` shows the
/// key id and the public key only.
pub struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("public_key", &hex::encode(self.public_key()))
            .finish()
    }
}

impl SigningKey {
    /// The key with the 32-byte Ed25519 seed `seed` (RFC 8032), named `kid`.
    pub fn from_seed(kid: &str, seed: &[u8; 32]) -> Result<Self, TokenError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| TokenError::BadKey)?;
        SigningKey::named(kid, pair)
    }

    /// The key in the PKCS#8 document `der` (what `openssl genpkey
    /// -algorithm ed25519` and `devicegate token keygen` write), named `kid`.
    pub fn from_pkcs8(kid: &str, der: &[u8]) -> Result<Self, TokenError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| TokenError::BadKey)?;
        SigningKey::named(kid, pair)
    }

    /// A new random key named `kid`, with its PKCS#8 document (the private
    /// key to keep).
    pub fn generate(kid: &str) -> Result<(Self, Vec<u8>), TokenError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).map_err(|_| TokenError::BadKey)?;
        let key = SigningKey::from_pkcs8(kid, pkcs8.as_ref())?;
        Ok((key, pkcs8.as_ref().to_vec()))
    }

    /// The public key of the PKCS#8 document `der`, to find the key id it
    /// was registered under.
    pub fn pkcs8_public_key(der: &[u8]) -> Result<[u8; 32], TokenError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| TokenError::BadKey)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(pair.public_key().as_ref());
        Ok(out)
    }

    fn named(kid: &str, pair: Ed25519KeyPair) -> Result<Self, TokenError> {
        validate_kid(kid)?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            pair,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The 32-byte public key, which brokers verify with.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// The signed token for `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        let header = HeaderOut {
            alg: "EdDSA",
            typ: "JWT",
            kid: &self.kid,
        };
        // Serializing plain structs of strings and integers cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let claims = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let signature = self.pair.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        token
    }
}

/// The PEM text (`PRIVATE KEY`) of the PKCS#8 document `der`, as `token
/// keygen` writes it and `openssl pkey` reads it.
pub fn pkcs8_to_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// The PKCS#8 document in the PEM text `pem` (a `PRIVATE KEY` block).
pub fn pkcs8_from_pem(pem: &str) -> Result<Vec<u8>, TokenError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| TokenError::BadKey)?;
    if block.label != "PRIVATE KEY" {
        return Err(TokenError::BadKey);
    }
    Ok(block.contents)
}

/// A fresh key id: `k-` and 12 random hex digits.
pub fn new_kid() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("k-{}", id.get(..12).unwrap_or(&id))
}

/// Refuses a key id that is empty, longer than [`MAX_KID_LEN`] or not
/// made of letters, digits, `-`, `_` and `.`.
pub fn validate_kid(kid: &str) -> Result<(), TokenError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(TokenError::BadKeyId) }
}

/// Whether `password` has the shape of a JWT (three base64url parts, the
/// first a JSON object), so that a login treats it as a token rather than
/// a signature: device signatures are hex and never contain `.`.
pub fn looks_like_token(password: &[u8]) -> bool {
    password.starts_with(b"eyJ") && password.iter().filter(|&&b| b == b'.').count() == 2
}

/// A token split and decoded; its signature is not checked yet.
#[derive(Debug)]
pub struct ParsedToken<'a> {
    /// The key id of the header.
    pub kid: String,
    /// The claims.
    pub claims: Claims,
    signing_input: &'a [u8],
    signature: [u8; 64],
}

impl<'a> ParsedToken<'a> {
    /// Splits and decodes `token`. Refuses anything but
    /// `"alg":"EdDSA"` with a key id: `none` and HMAC algorithms are never
    /// accepted, whatever the key (algorithm confusion).
    pub fn parse(token: &'a [u8]) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        let mut parts = token.split(|&b| b == b'.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotJwt);
        };
        let header: HeaderIn = decode_json(header).ok_or(TokenError::BadHeader)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::AlgorithmNotEdDsa);
        }
        let kid = header.kid.ok_or(TokenError::BadKeyId)?;
        validate_kid(&kid)?;
        let claims: Claims = decode_json(claims).ok_or(TokenError::BadClaims)?;
        let mut raw = [0u8; 64];
        match URL_SAFE_NO_PAD.decode_slice(signature, &mut raw) {
            Ok(64) => {}
            _ => return Err(TokenError::BadSignatureEncoding),
        }
        let signing_input = token
            .get(..token.len() - signature.len() - 1)
            .ok_or(TokenError::NotJwt)?;
        Ok(ParsedToken {
            kid,
            claims,
            signing_input,
            signature: raw,
        })
    }

    /// Whether the signature verifies under the Ed25519 `public_key`.
    pub fn signature_valid(&self, public_key: &[u8; 32]) -> bool {
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(self.signing_input, &self.signature)
            .is_ok()
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &[u8]) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Why a token was refused before any key was looked up, or a key could
/// not be used. Messages never echo the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token is longer than 2048 bytes")]
    TooLong,
    /// Not three `.`-separated parts.
    #[error("token is not a JWT (header.claims.signature)")]
    NotJwt,
    /// The header is not base64url JSON with an `alg`.
    #[error("token header is not base64url-encoded JSON with `alg`")]
    BadHeader,
    /// `alg` is not `EdDSA`.
    #[error("token algorithm is not EdDSA")]
    AlgorithmNotEdDsa,
    /// No key id, or one that breaks the key id rules.
    #[error("key id missing, or not 1-64 letters, digits, `-`, `_` or `.`")]
    BadKeyId,
    /// The claims are not base64url JSON with every claim devicegate needs.
    #[error("token claims are not base64url JSON with sub, aud, jti, pi, di, iat and exp")]
    BadClaims,
    /// The signature is not 64 bytes of base64url.
    #[error("token signature is not 64 bytes of base64url")]
    BadSignatureEncoding,
    /// The key material is not an Ed25519 key.
    #[error("not an Ed25519 private key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`)")]
    BadKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiI2ODFmMjQ0Zi0yNDNjLTRjMjktOWU3My1iNWJhNTVhMjg0ZDQ6ZWQwMzEzNjQtMDdlYy00ZWY4LWFhNzYtYjNjNTZiNDA2OWE3IiwiYXVkIjoiZGV2aWNlZ2F0ZSIsImp0aSI6Ijg1ZDZmNTUwLTg1ZmQtNDEzNS1iMTUzLTJiNjMxYjk2MWM0ZiIsInBpIjoiNjgxZjI0NGYtMjQzYy00YzI5LTllNzMtYjViYTU1YTI4NGQ0IiwiZGkiOiJlZDAzMTM2NC0wN2VjLTRlZjgtYWE3Ni1iM2M1NmI0MDY5YTciLCJpYXQiOjE3OTYwMDAwMDAsImV4cCI6MTc5NjAwMzYwMH0.PEYA5otT_HBtWVlgDfbe8T7y6ovRwOlYObZBmVKo4fxOTahgSsjKprDmFINBDHe4mimeJTwmxJQpz0vP917jBg";

    fn t1_key() -> SigningKey {
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        SigningKey::from_seed("k1", &seed).unwrap()
    }

    fn t1_claims() -> Claims {
        Claims {
            sub: "681f244f-243c-4c29-9e73-b5ba55a284d4:ed031364-07ec-4ef8-aa76-b3c56b4069a7".into(),
            aud: "devicegate".into(),
            jti: "85d6f550-85fd-4135-b153-2b631b961c4f".into(),
            pi: "681f244f-243c-4c29-9e73-b5ba55a284d4".into(),
            di: "ed031364-07ec-4ef8-aa76-b3c56b4069a7".into(),
            iat: 1_796_000_000,
            exp: 1_796_003_600,
        }
    }

    #[test]
    fn vector_t1_is_issued_byte_for_byte() {
        let key = t1_key();
        assert_eq!(
            hex::encode(key.public_key()),
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        );
        assert_eq!(key.issue(&t1_claims()), T1);
    }

    #[test]
    fn vector_t1_parses_and_its_signature_verifies() {
        let parsed = ParsedToken::parse(T1.as_bytes()).unwrap();
        assert_eq!(parsed.kid, "k1");
        assert_eq!(parsed.claims, t1_claims());
        assert!(parsed.signature_valid(&t1_key().public_key()));
        assert!(!parsed.signature_valid(&[7; 32]));
    }

    #[test]
    fn a_changed_signature_byte_does_not_verify() {
        let mut token = T1.as_bytes().to_vec();
        let last = token.len() - 3;
        token[last] = if token[last] == b'A' { b'B' } else { b'A' };
        let parsed = ParsedToken::parse(&token).unwrap();
        assert!(!parsed.signature_valid(&t1_key().public_key()));
    }

    #[test]
    fn algorithm_confusion_is_refused_before_any_key() {
        for alg in ["none", "HS256", "RS256", "ES256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k1"}}"#));
            let rest = T1.split_once('.').unwrap().1;
            let token = format!("{header}.{rest}");
            assert_eq!(
                ParsedToken::parse(token.as_bytes()).unwrap_err(),
                TokenError::AlgorithmNotEdDsa,
                "{alg}"
            );
        }
        let (header, claims) = T1.rsplit_once('.').unwrap().0.split_once('.').unwrap();
        assert_eq!(
            ParsedToken::parse(format!("{header}.{claims}.").as_bytes()).unwrap_err(),
            TokenError::BadSignatureEncoding
        );
    }

    #[test]
    fn malformed_tokens_get_a_reason() {
        assert_eq!(ParsedToken::parse(b"abc").unwrap_err(), TokenError::NotJwt);
        assert_eq!(ParsedToken::parse(b"a.b.c.d").unwrap_err(), TokenError::NotJwt);
        assert_eq!(ParsedToken::parse(b"!!.b.c").unwrap_err(), TokenError::BadHeader);
        assert_eq!(ParsedToken::parse(&[b'a'; 2049]).unwrap_err(), TokenError::TooLong);
        let no_kid = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#);
        let rest = T1.split_once('.').unwrap().1;
        assert_eq!(
            ParsedToken::parse(format!("{no_kid}.{rest}").as_bytes()).unwrap_err(),
            TokenError::BadKeyId
        );
        let header = T1.split_once('.').unwrap().0;
        let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#);
        assert_eq!(
            ParsedToken::parse(format!("{header}.{claims}.AA").as_bytes()).unwrap_err(),
            TokenError::BadClaims
        );
    }

    #[test]
    fn only_tokens_look_like_tokens() {
        assert!(looks_like_token(T1.as_bytes()));
        assert!(!looks_like_token(b"0123456789abcdef0123456789abcdef"));
        assert!(!looks_like_token(b"eyJ.only-one-dot"));
    }

    #[test]
    fn a_generated_key_round_trips_through_pkcs8() {
        let (key, pkcs8) = SigningKey::generate("k9").unwrap();
        let again = SigningKey::from_pkcs8("k9", &pkcs8).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let token = key.issue(&t1_claims());
        assert!(
            ParsedToken::parse(token.as_bytes())
                .unwrap()
                .signature_valid(&again.public_key())
        );
        assert_eq!(SigningKey::generate("bad kid").unwrap_err(), TokenError::BadKeyId);
        let pem = pkcs8_to_pem(&pkcs8);
        assert_eq!(pkcs8_from_pem(&pem).unwrap(), pkcs8);
        assert_eq!(SigningKey::pkcs8_public_key(&pkcs8).unwrap(), key.public_key());
        assert_eq!(
            pkcs8_from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap_err(),
            TokenError::BadKey
        );
    }
}
