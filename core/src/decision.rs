//! What the engine answers: CONNECT outcomes with their wire codes, and the
//! reasons behind refusals (for logs and the event table, never the device).

use crate::credentials::CredentialError;

/// The logical CONNECT outcome (PROTOCOL.md §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectOutcome {
    /// Accepted.
    Ok,
    /// The client id is malformed or does not name the device.
    BadClientId,
    /// Malformed username, unknown device, bad signature, stale timestamp.
    BadCredentials,
    /// Disabled, locked, not enabled for the product, rate limited.
    NotAuthorized,
    /// The registry is not loaded yet (fail closed).
    Unavailable,
    /// The device is assigned to another broker (IDENTITIES.md §5).
    UseAnotherServer,
}

impl ConnectOutcome {
    /// The MQTT 3.1.1 CONNACK return code.
    pub fn mqtt3_code(self) -> u8 {
        match self {
            ConnectOutcome::Ok => 0,
            ConnectOutcome::BadClientId => 2,
            ConnectOutcome::Unavailable => 3,
            ConnectOutcome::BadCredentials => 4,
            ConnectOutcome::NotAuthorized | ConnectOutcome::UseAnotherServer => 5,
        }
    }

    /// The MQTT 5 CONNACK reason code.
    pub fn mqtt5_reason(self) -> u8 {
        match self {
            ConnectOutcome::Ok => 0x00,
            ConnectOutcome::BadClientId => 0x85,
            ConnectOutcome::BadCredentials => 0x86,
            ConnectOutcome::NotAuthorized => 0x87,
            ConnectOutcome::Unavailable => 0x88,
            ConnectOutcome::UseAnotherServer => 0x9C,
        }
    }
}

/// Why a login was refused. Logged and stored as an event; the device only
/// sees the [`ConnectOutcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The CONNECT fields did not parse.
    #[error("{0}")]
    Credentials(#[from] CredentialError),
    /// The registry has not been loaded from the database yet.
    #[error("registry not loaded yet")]
    RegistryNotLoaded,
    /// No product with the username's product key.
    #[error("unknown product")]
    UnknownProduct,
    /// No device with the username's keys.
    #[error("unknown device")]
    UnknownDevice,
    /// The device has no secret for this kind of login.
    #[error("device has no secret for this login")]
    NoSecret,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The product does not allow the hash the device used.
    #[error("sign method not allowed for the product")]
    SignMethodNotAllowed,
    /// The timestamp is malformed or outside the product's window.
    #[error("timestamp outside the product's window")]
    StaleTimestamp,
    /// The device is disabled.
    #[error("device disabled")]
    Disabled,
    /// Dynamic activation or registration after activation.
    #[error("device already activated")]
    AlreadyActivated,
    /// The product does not allow dynamic activation or registration.
    #[error("dynamic activation not enabled for the product")]
    DynamicActivationOff,
    /// The device may only connect through its gateway.
    #[error("sub-device cannot connect directly")]
    SubDeviceOnly,
    /// Too many failed logins from this device or address.
    #[error("too many failed logins")]
    RateLimited,
    /// No principal of that name.
    #[error("unknown principal")]
    UnknownPrincipal,
    /// The principal's password does not verify.
    #[error("bad principal password")]
    BadPassword,
    /// No pending registration token for the device.
    #[error("bad or expired token")]
    BadToken,
    /// The client id is held by a live session of another device or
    /// principal; taking it over would throw that one off.
    #[error("client id in use by another device's session")]
    ClientIdInUse,
    /// The password could be checked only with a slow hash, and the
    /// broker thread's budget for those is spent this second: retry.
    #[error("busy: too many slow password checks this second, retry")]
    Busy,
    /// The TLS credential (PSK identity) is unknown or revoked.
    #[error("unknown or revoked TLS credential")]
    UnknownCredential,
    /// The username names another device than the TLS credential.
    #[error("username names another device than the TLS credential")]
    CredentialNamesAnotherDevice,
    /// The client certificate's validity has ended.
    #[error("certificate expired")]
    CertificateExpired,
    /// An unknown certificate that just-in-time registration does not
    /// take, and why.
    #[error("unknown certificate, not registered: {0}")]
    CertificateNotRegistrable(&'static str),
    /// An unknown certificate that registers its device: the registration
    /// is being written, the client should connect again.
    #[error("certificate registered just in time: connect again")]
    CertificateRegistering,
    /// A password shaped like a device token that does not parse as one.
    #[error("device token malformed: {0}")]
    MalformedAccessToken(crate::access_token::TokenError),
    /// A device token (IDENTITIES.md §4) that does not log in, and why.
    #[error("device token refused: {0}")]
    AccessToken(&'static str),
    /// The device is assigned to another broker (IDENTITIES.md §5); the
    /// log line names it.
    #[error("device assigned to another server")]
    AssignedElsewhere,
}

impl Refusal {
    /// The CONNECT outcome for this refusal (PROTOCOL.md §8.1, §9 C2).
    pub fn outcome(self) -> ConnectOutcome {
        match self {
            Refusal::Credentials(e) => credential_outcome(e),
            Refusal::ClientIdInUse => ConnectOutcome::BadClientId,
            Refusal::RegistryNotLoaded | Refusal::Busy | Refusal::CertificateRegistering => ConnectOutcome::Unavailable,
            Refusal::UnknownProduct
            | Refusal::UnknownDevice
            | Refusal::NoSecret
            | Refusal::BadSignature
            | Refusal::SignMethodNotAllowed
            | Refusal::StaleTimestamp
            | Refusal::UnknownPrincipal
            | Refusal::BadPassword
            | Refusal::BadToken
            | Refusal::UnknownCredential
            | Refusal::CredentialNamesAnotherDevice
            | Refusal::CertificateExpired
            | Refusal::CertificateNotRegistrable(_)
            | Refusal::MalformedAccessToken(_)
            | Refusal::AccessToken(_) => ConnectOutcome::BadCredentials,
            Refusal::AssignedElsewhere => ConnectOutcome::UseAnotherServer,
            Refusal::Disabled
            | Refusal::AlreadyActivated
            | Refusal::DynamicActivationOff
            | Refusal::SubDeviceOnly
            | Refusal::RateLimited => ConnectOutcome::NotAuthorized,
        }
    }

    /// A short stable name for the event table and `--json` output.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Credentials(e) if credential_outcome(e) == ConnectOutcome::BadClientId => "bad_client_id",
            Refusal::Credentials(_) => "bad_credentials",
            Refusal::RegistryNotLoaded => "unavailable",
            Refusal::UnknownProduct => "unknown_product",
            Refusal::UnknownDevice => "unknown_device",
            Refusal::NoSecret => "no_secret",
            Refusal::BadSignature => "bad_signature",
            Refusal::SignMethodNotAllowed => "sign_method_not_allowed",
            Refusal::StaleTimestamp => "stale_timestamp",
            Refusal::Disabled => "disabled",
            Refusal::AlreadyActivated => "already_activated",
            Refusal::DynamicActivationOff => "dynamic_activation_off",
            Refusal::SubDeviceOnly => "sub_device_only",
            Refusal::RateLimited => "rate_limited",
            Refusal::UnknownPrincipal => "unknown_principal",
            Refusal::BadPassword => "bad_password",
            Refusal::BadToken => "bad_token",
            Refusal::ClientIdInUse => "client_id_in_use",
            Refusal::Busy => "busy",
            Refusal::UnknownCredential => "unknown_credential",
            Refusal::CredentialNamesAnotherDevice => "credential_names_another_device",
            Refusal::CertificateExpired => "certificate_expired",
            Refusal::CertificateNotRegistrable(_) => "certificate_not_registrable",
            Refusal::CertificateRegistering => "certificate_registering",
            Refusal::MalformedAccessToken(_) | Refusal::AccessToken(_) => "bad_access_token",
            Refusal::AssignedElsewhere => "assigned_elsewhere",
        }
    }

    /// Whether this refusal counts towards the failed-login rate limit.
    pub fn counts_as_failure(self) -> bool {
        !matches!(
            self,
            Refusal::RateLimited
                | Refusal::RegistryNotLoaded
                | Refusal::ClientIdInUse
                | Refusal::Busy
                | Refusal::CertificateRegistering
                | Refusal::AssignedElsewhere
        )
    }
}

/// The CONNECT outcome of CONNECT fields that did not parse (PROTOCOL.md
/// §8.1): a malformed client id is `BadClientId`, the rest bad credentials.
fn credential_outcome(error: CredentialError) -> ConnectOutcome {
    use CredentialError::*;
    match error {
        ClientIdMissing | ClientIdTooLong | ClientIdNotUtf8 | ClientIdControlChar | ClientIdNoParams
        | ClientIdTrailing | IdentityPartEmpty | IdentityPartTooLong | ParamWithoutEquals | ParamKeyEmpty
        | ParamTooLong | ParamDuplicate | TooManyParams | MissingParam(_) | BadSecureMode | UnknownAuthType
        | IdentityMismatch | TimestampTooLong | BadRandom => ConnectOutcome::BadClientId,
        UsernameMissing | UsernameTooLong | UsernameNotUtf8 | UsernameAmpersands | KeyEmpty(_) | KeyTooLong(_)
        | KeyNotUtf8(_) | KeyForbiddenChar(_) | UnknownSignMethod | PasswordMissing | Signature(_) | TokenTooLong => {
            ConnectOutcome::BadCredentials
        }
    }
}

/// The answer to a publish, subscribe or delivery check.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDecision {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
    /// Not a client devicegate owns: let the next plugin decide.
    Defer,
}

impl AccessDecision {
    /// `Allow` if `allowed`, else `Deny`.
    pub fn from_bool(allowed: bool) -> Self {
        if allowed {
            AccessDecision::Allow
        } else {
            AccessDecision::Deny
        }
    }
}
