//! Parsing of CONNECT fields into a typed login (PROTOCOL.md §2, §3, §6).
//!
//! Parsing needs no database: it checks the envelope, the sign-method name,
//! the password length and the identity binding, and borrows everything
//! from the input. Every length is bounded and nothing here panics or
//! allocates. Errors name what was wrong without echoing secrets.

mod aliyun;
pub mod client_id;
mod device;
mod enos;
pub mod keys;
pub mod username;

use crate::sign::{Content, Digest, SignMethod, SignatureError};
pub use client_id::ClientId;
pub use device::{DeviceLogin, LoginSpec, sign_device_login};
pub use keys::{KeyKind, validate_key};
pub use username::{Username, parse_username};

/// The longest `connwl` token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;
/// The longest timestamp parameter accepted, in bytes.
pub const MAX_TIMESTAMP_LEN: usize = 32;

/// The device protocol a product speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Envision EnOS.
    #[default]
    Enos,
    /// Alibaba Cloud IoT Platform.
    Aliyun,
}

impl Dialect {
    /// The lower-case name used in the database and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Enos => "enos",
            Dialect::Aliyun => "aliyun",
        }
    }

    /// Parses `enos` or `aliyun`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Dialect::Enos, Dialect::Aliyun]
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(name))
    }
}

/// A device identity, always taken from the username (PROTOCOL.md I1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity<'a> {
    /// The product key.
    pub product_key: &'a str,
    /// The device key (EnOS) or device name (Aliyun).
    pub device_key: &'a str,
}

/// How strictly the client id's identity part must name the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Binding {
    /// The identity part must be one of the SDK forms for this device (§3.3, §6.1).
    #[default]
    Strict,
    /// Any identity part of 1–64 bytes (the product's `free_client_id`).
    Free,
}

/// A device login signed with a secret.
#[derive(Debug, Clone, Copy)]
pub struct SignedLogin<'a> {
    /// Who logs in.
    pub identity: Identity<'a>,
    /// The identity part of the client id (signed as `clientId`).
    pub identity_part: &'a str,
    /// The `timestamp` parameter exactly as sent, if any.
    pub timestamp: Option<&'a str>,
    /// The sign method named by the client.
    pub method: SignMethod,
    /// The decoded password.
    pub signature: Digest,
    /// What was signed.
    pub content: Content<'a>,
}

/// Which Aliyun dynamic registration a device asks for (PROTOCOL.md §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// `authType=register`: the device exists and receives its secret.
    Register,
    /// `authType=regnwl`: the device is created now and receives a token.
    Regnwl,
}

/// An Aliyun dynamic-registration login, signed with the product secret.
#[derive(Debug, Clone, Copy)]
pub struct RegisterLogin<'a> {
    /// Who registers.
    pub identity: Identity<'a>,
    /// Register or regnwl.
    pub kind: Registration,
    /// The sign method named by the client.
    pub method: SignMethod,
    /// The decoded password.
    pub signature: Digest,
    /// What was signed: `deviceName`, `productKey` and `random`.
    pub content: Content<'a>,
}

/// An Aliyun `authType=connwl` login with a device token. `Debug` never
/// shows the token.
#[derive(Clone, Copy)]
pub struct TokenLogin<'a> {
    /// Who logs in.
    pub identity: Identity<'a>,
    /// The token, compared by its SHA-256.
    pub token: &'a [u8],
}

impl std::fmt::Debug for TokenLogin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLogin")
            .field("identity", &self.identity)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What a client presented to log in as a device, parsed, before any
/// check (IDENTITIES.md §1). Each variant has its verify function in
/// [`crate::verify`].
#[derive(Debug)]
pub enum Presented<'a> {
    /// A login signed with the device secret (EnOS securemode 2, Aliyun 2
    /// or 3).
    DeviceSecret(SignedLogin<'a>),
    /// EnOS securemode 3: signed with the product secret; asks for a
    /// device secret (dynamic activation).
    ProductSecret(SignedLogin<'a>),
    /// Aliyun dynamic registration.
    Register(RegisterLogin<'a>),
    /// Aliyun `connwl` token login.
    Token(TokenLogin<'a>),
    /// The TLS pre-shared key identity the handshake used (the TLS layer
    /// proved the key).
    Psk {
        /// The PSK identity.
        identity: &'a str,
        /// The device the CONNECT's username names, if it has one.
        claimed: Option<Identity<'a>>,
    },
    /// A client certificate whose chain the broker's TLS layer verified.
    Certificate {
        /// Its SHA-256 fingerprint.
        fingerprint: Fingerprint,
        /// The device the CONNECT's username names, if it has one.
        claimed: Option<Identity<'a>>,
    },
    /// A device token (IDENTITIES.md §4) as the password, decoded but not
    /// yet verified.
    AccessToken {
        /// The token.
        token: Box<crate::access_token::ParsedToken<'a>>,
        /// Whom the username names beside it.
        named: crate::verify::Named<'a>,
    },
}

/// A certificate's SHA-256 fingerprint as 64 lower-case hex digits, kept
/// on the stack (how certificate credentials are named).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 64]);

impl Fingerprint {
    /// The fingerprint of the certificate `der`.
    pub fn of(der: &[u8]) -> Self {
        use sha2::{Digest as _, Sha256};
        let mut out = [0u8; 64];
        // A 32-byte digest always fits 64 hex digits.
        let _ = hex::encode_to_slice(Sha256::digest(der), &mut out);
        Fingerprint(out)
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the client id and password of a device whose username named
/// `identity`, for a product of `dialect`.
pub fn parse_device_login<'a>(
    dialect: Dialect,
    binding: Binding,
    identity: Identity<'a>,
    client_id: &'a [u8],
    password: Option<&'a [u8]>,
) -> Result<Presented<'a>, CredentialError> {
    let client_id = ClientId::parse(client_id)?;
    match dialect {
        Dialect::Enos => enos::parse(binding, identity, &client_id, password),
        Dialect::Aliyun => aliyun::parse(binding, identity, &client_id, password),
    }
}

/// Whether `identity_part` is one of `forms` or, with free binding, any
/// identity part of 1–64 bytes.
fn check_binding(binding: Binding, identity_part: &str, matches_form: bool) -> Result<(), CredentialError> {
    match binding {
        Binding::Strict if matches_form => Ok(()),
        Binding::Free if identity_part.len() <= keys::MAX_KEY_LEN => Ok(()),
        _ => Err(CredentialError::IdentityMismatch),
    }
}

/// Whether `identity_part` is exactly `{first}{separator}{second}`.
fn is_joined(identity_part: &str, first: &str, separator: u8, second: &str) -> bool {
    identity_part.len() == first.len() + 1 + second.len()
        && identity_part.starts_with(first)
        && identity_part.ends_with(second)
        && identity_part.as_bytes().get(first.len()) == Some(&separator)
}

fn required<'a>(client_id: &ClientId<'a>, key: &'static str) -> Result<&'a str, CredentialError> {
    client_id.param(key).ok_or(CredentialError::MissingParam(key))
}

fn timestamp<'a>(client_id: &ClientId<'a>) -> Result<Option<&'a str>, CredentialError> {
    match client_id.param("timestamp") {
        Some(ts) if ts.len() > MAX_TIMESTAMP_LEN => Err(CredentialError::TimestampTooLong),
        other => Ok(other),
    }
}

fn signature(method: SignMethod, password: Option<&[u8]>) -> Result<Digest, CredentialError> {
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or(CredentialError::PasswordMissing)?;
    Digest::from_hex(method.alg, password).map_err(CredentialError::Signature)
}

/// Why CONNECT fields were refused before any lookup. Messages name the
/// field and the problem, never a secret or a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The client id is empty.
    #[error("client id is empty")]
    ClientIdMissing,
    /// The client id exceeds 256 bytes.
    #[error("client id is longer than 256 bytes")]
    ClientIdTooLong,
    /// The client id is not UTF-8.
    #[error("client id is not valid UTF-8")]
    ClientIdNotUtf8,
    /// The client id contains a control character.
    #[error("client id contains a control character")]
    ClientIdControlChar,
    /// The client id has fewer than two `|`.
    #[error("client id has no `|params|` section")]
    ClientIdNoParams,
    /// Bytes follow the last `|`.
    #[error("client id has bytes after its last `|`")]
    ClientIdTrailing,
    /// Nothing before the first `|`.
    #[error("client id identity part is empty")]
    IdentityPartEmpty,
    /// The identity part exceeds 160 bytes.
    #[error("client id identity part is longer than 160 bytes")]
    IdentityPartTooLong,
    /// A parameter has no `=`.
    #[error("client id parameter without `=`")]
    ParamWithoutEquals,
    /// A parameter has an empty key.
    #[error("client id parameter with an empty key")]
    ParamKeyEmpty,
    /// A parameter key exceeds 32 bytes or a value 64 bytes.
    #[error("client id parameter key or value too long")]
    ParamTooLong,
    /// A parameter key appears twice.
    #[error("client id parameter given twice")]
    ParamDuplicate,
    /// More than 16 parameters.
    #[error("client id has more than 16 parameters")]
    TooManyParams,
    /// A required parameter is absent.
    #[error("client id lacks the `{0}` parameter")]
    MissingParam(&'static str),
    /// `securemode` has a value this dialect does not accept.
    #[error("unsupported securemode")]
    BadSecureMode,
    /// `authType` has an unknown value.
    #[error("unsupported authType")]
    UnknownAuthType,
    /// The identity part does not name the username's device.
    #[error("client id identity part does not name the device of the username")]
    IdentityMismatch,
    /// The timestamp exceeds 32 bytes.
    #[error("timestamp is longer than 32 bytes")]
    TimestampTooLong,
    /// `random` is not 1–64 alphanumeric bytes.
    #[error("`random` must be 1 to 64 letters or digits")]
    BadRandom,
    /// No username.
    #[error("username is missing")]
    UsernameMissing,
    /// The username exceeds 129 bytes.
    #[error("username is longer than 129 bytes")]
    UsernameTooLong,
    /// The username is not UTF-8 or has control characters.
    #[error("username is not valid UTF-8 text")]
    UsernameNotUtf8,
    /// The username has more than one `&`.
    #[error("username has more than one `&`")]
    UsernameAmpersands,
    /// A key is empty.
    #[error("{} is empty", .0.name())]
    KeyEmpty(KeyKind),
    /// A key exceeds 64 bytes.
    #[error("{} is longer than 64 bytes", .0.name())]
    KeyTooLong(KeyKind),
    /// A key is not UTF-8.
    #[error("{} is not valid UTF-8", .0.name())]
    KeyNotUtf8(KeyKind),
    /// A key contains `& | / + #`, a control character or whitespace.
    #[error("{} contains one of `& | / + #`, a control character or whitespace", .0.name())]
    KeyForbiddenChar(KeyKind),
    /// The sign method is unknown to the dialect.
    #[error("unknown sign method")]
    UnknownSignMethod,
    /// No password.
    #[error("password is missing")]
    PasswordMissing,
    /// The password is not a signature of the right shape.
    #[error("password: {0}")]
    Signature(SignatureError),
    /// A `connwl` token exceeds 128 bytes.
    #[error("token is longer than 128 bytes")]
    TokenTooLong,
}
