//! The TLS side of a login (IDENTITIES.md §2): the key a PSK handshake
//! needs, answered from the registry before the CONNECT arrives.

use std::borrow::Cow;

use super::Engine;
use super::login::{LOG_FIELD_MAX, shorten};
use crate::registry::CredentialKind;
use crate::secret::Secret;

impl Engine {
    /// The key for the PSK `identity` as 64 upper-case hex digits (what
    /// Mosquitto's `MOSQ_EVT_PSK_KEY` wants), if an enabled device holds a
    /// live PSK with that identity; `None` fails the handshake, with the
    /// reason logged. Reads memory only: call it from the handshake.
    pub fn psk_key(&self, identity: &[u8], address: Option<&str>) -> Option<Secret> {
        let refuse = |why: &str| {
            tracing::warn!(
                identity = shorten(&String::from_utf8_lossy(identity), LOG_FIELD_MAX).as_ref(),
                address = address.unwrap_or("-"),
                "TLS-PSK handshake refused: {why}"
            );
            None
        };
        let Ok(identity) = std::str::from_utf8(identity) else {
            return refuse("the identity is not UTF-8");
        };
        if !self.registry.is_loaded() {
            return refuse("the registry is not loaded yet");
        }
        let Some(device) = self.registry.credential_holder(CredentialKind::Psk, identity) else {
            return refuse("unknown or revoked PSK identity");
        };
        let found = self.registry.with_device(&device, |record| {
            if !record.enabled {
                return Err(Cow::Borrowed("the device is disabled"));
            }
            record
                .credential(CredentialKind::Psk, identity)
                .map(|c| c.material.clone())
                .ok_or(Cow::Borrowed("unknown or revoked PSK identity"))
        });
        match found {
            Some(Ok(key)) => Some(key),
            Some(Err(why)) => refuse(&why),
            None => refuse("unknown or revoked PSK identity"),
        }
    }
}
