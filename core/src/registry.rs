//! The in-memory view the hooks read: products, devices and principals.
//!
//! It is complete, not a cache: a device missing here is refused, never
//! looked up. That rules out an evicting cache (moka); a `DashMap` gives
//! sharded locks, so broker threads read concurrently while the background
//! task applies changes. Devices are keyed by their username form
//! `{dk}&{pk}`, which is unique because keys cannot contain `&`, and which
//! a login can look up straight from its username without allocating.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;
use uuid::Uuid;

use crate::acl::{TopicRule, TopicRules};
use crate::credentials::{Dialect, Identity};
use crate::principal::Principal;
use crate::secret::Secret;
use crate::sign::AlgSet;

/// A product's timestamp freshness policy (PROTOCOL.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampPolicy {
    /// The timestamp is sign input only.
    #[default]
    Off,
    /// The timestamp must be within this many seconds of now.
    Enforce {
        /// The window in seconds.
        window_secs: u32,
    },
}

/// A device token's lifetime when the product sets none (one hour).
pub const DEFAULT_TOKEN_TTL_SECS: u32 = 3600;

/// A product as the hooks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The product key.
    pub key: Box<str>,
    /// The product secret (dynamic activation, registration), if any.
    pub secret: Option<Secret>,
    /// EnOS or Aliyun.
    pub dialect: Dialect,
    /// Allowed hash algorithms.
    pub sign_methods: AlgSet,
    /// Timestamp freshness.
    pub timestamp_policy: TimestampPolicy,
    /// Whether devices may activate (EnOS securemode 3) or register (Aliyun).
    pub dynamic_activation: bool,
    /// Whether any identity part of 1–64 bytes is accepted.
    pub free_client_id: bool,
    /// Whether devices may use `$share/…` filters.
    pub shared_subscriptions: bool,
    /// Whether devices may publish retained messages.
    pub allow_retain: bool,
    /// Seconds without traffic after which a device counts as offline; 0 = never.
    pub offline_after_secs: u32,
    /// The most sub-devices one gateway may have logged in at once.
    pub max_sub_devices: u32,
    /// Product-specific topic templates on top of the dialect's defaults.
    pub extra_rules: Vec<TopicRule>,
    /// The defaults plus `extra_rules`, computed once.
    pub rules: TopicRules,
    /// Whether a certificate from a trusted CA whose CN names a new device
    /// of the product registers that device on first login.
    pub auto_register_certs: bool,
    /// The CAs (DER) whose certificates just-in-time registration accepts:
    /// the product's own and the devicegate CA.
    pub trusted_cas: Vec<Box<[u8]>>,
    /// The product's GUID (IDENTITIES.md §1), named by device tokens.
    pub guid: Option<Uuid>,
    /// How long a device token issued for the product lives, in seconds.
    pub token_ttl_secs: u32,
    /// The broker URL the product's devices are assigned to, if any
    /// (IDENTITIES.md §5); a device's own assignment overrides it.
    pub server_url: Option<Box<str>>,
}

impl Product {
    /// A product with the defaults of its dialect.
    pub fn new(key: &str, dialect: Dialect) -> Self {
        let mut p = Product {
            key: key.into(),
            secret: None,
            dialect,
            sign_methods: AlgSet::default(),
            timestamp_policy: TimestampPolicy::Off,
            dynamic_activation: false,
            free_client_id: false,
            shared_subscriptions: false,
            allow_retain: false,
            offline_after_secs: 0,
            max_sub_devices: match dialect {
                Dialect::Enos => 200,
                Dialect::Aliyun => 2000,
            },
            extra_rules: Vec::new(),
            rules: TopicRules::default(),
            auto_register_certs: false,
            trusted_cas: Vec::new(),
            guid: None,
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            server_url: None,
        };
        p.rebuild_rules();
        p
    }

    /// Recomputes `rules` after `dialect` or `extra_rules` changed.
    pub fn rebuild_rules(&mut self) {
        self.rules = TopicRules::device_defaults(self.dialect).with(&self.extra_rules);
    }
}

/// A device as the hooks need it. Online state is not here: it belongs to
/// connections, which the engine tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device secret; absent until a dynamic device activates.
    pub secret: Option<Secret>,
    /// A secret issued by dynamic activation or registration, not yet confirmed.
    pub pending_secret: Option<Secret>,
    /// SHA-256 of an Aliyun `regnwl` device token, if one was issued.
    pub token_hash: Option<Box<[u8; 32]>>,
    /// The gateway this device belongs to, as `{gdk}&{gpk}`.
    pub gateway: Option<Box<str>>,
    /// Enabled by the operator.
    pub enabled: bool,
    /// Activated at least once.
    pub activated: bool,
    /// Bumped by every operator change to the device's secret or
    /// activation (reset, register, new secret); a change throws it off.
    pub secret_version: u32,
    /// The device's live credentials besides its secret (PSKs, ...);
    /// revoked ones are not loaded.
    pub credentials: Vec<Credential>,
    /// Whether a login has used the device's secret (its credential's
    /// `first_used_at` is set).
    pub secret_used: bool,
    /// The device's GUID (IDENTITIES.md §1), named by device tokens.
    pub guid: Option<Uuid>,
    /// When the operator last revoked the device's tokens (`device
    /// revoke-tokens`), ms since the UNIX epoch; 0 = never. Tokens issued
    /// before are refused.
    pub tokens_revoked_at_ms: u64,
    /// The broker URL the device is assigned to, if any (IDENTITIES.md §5).
    pub server_url: Option<Box<str>>,
    /// When the operator last lifted the device's failed-login blocks
    /// (`device unblock`), ms since the UNIX epoch; 0 = never.
    pub unblocked_at_ms: u64,
}

impl DeviceRecord {
    /// The broker URL the device belongs on: its own assignment, else its
    /// product's.
    pub fn assigned_server<'a>(&'a self, product: &'a Product) -> Option<&'a str> {
        self.server_url.as_deref().or(product.server_url.as_deref())
    }

    /// Whether the device holds a live credential of `kind` with `identity`.
    pub fn holds(&self, kind: CredentialKind, identity: &str) -> bool {
        self.credential(kind, identity).is_some()
    }

    /// The live credential of `kind` with `identity`, if the device holds it.
    pub fn credential(&self, kind: CredentialKind, identity: &str) -> Option<&Credential> {
        self.credentials
            .iter()
            .find(|c| c.kind == kind && &*c.identity == identity)
    }
}

/// What kind of credential a row of the credentials table is
/// (IDENTITIES.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A TLS pre-shared key: identity and 32-byte key.
    Psk = 0,
    /// A client certificate, named by its SHA-256 fingerprint (hex).
    Certificate = 1,
}

impl CredentialKind {
    /// The name stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            CredentialKind::Psk => "psk",
            CredentialKind::Certificate => "certificate",
        }
    }

    /// The kind stored as `name`, if devicegate knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "psk" => Some(CredentialKind::Psk),
            "certificate" => Some(CredentialKind::Certificate),
            _ => None,
        }
    }
}

/// One live credential of a device. `Debug` never shows the material.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The kind.
    pub kind: CredentialKind,
    /// What the device presents: the PSK identity, the certificate's
    /// fingerprint.
    pub identity: Box<str>,
    /// What the broker needs to check it: the PSK key as hex; empty for a
    /// certificate (the fingerprint is the whole check).
    pub material: Secret,
    /// The end of a certificate's validity, ms since the UNIX epoch.
    pub not_after_ms: Option<u64>,
    /// Whether a login has used it (its `first_used_at` is set).
    pub used: bool,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("kind", &self.kind)
            .field("identity", &self.identity)
            .field("material", &"<redacted>")
            .field("not_after_ms", &self.not_after_ms)
            .field("used", &self.used)
            .finish()
    }
}

impl DeviceRecord {
    /// An enabled, inactive device with `secret`.
    pub fn new(secret: Option<Secret>) -> Self {
        DeviceRecord {
            secret,
            pending_secret: None,
            token_hash: None,
            gateway: None,
            enabled: true,
            activated: false,
            secret_version: 1,
            credentials: Vec::new(),
            secret_used: false,
            guid: None,
            tokens_revoked_at_ms: 0,
            server_url: None,
            unblocked_at_ms: 0,
        }
    }
}

/// The longest `{dk}&{pk}` key.
pub const MAX_DEVICE_KEY_LEN: usize = 129;

/// Runs `f` with the `{dk}&{pk}` key of `identity`, built on the stack.
pub fn with_device_key<R>(identity: Identity<'_>, f: impl FnOnce(&str) -> R) -> Option<R> {
    let mut buf = [0u8; MAX_DEVICE_KEY_LEN];
    let dk = identity.device_key.as_bytes();
    let pk = identity.product_key.as_bytes();
    let len = dk.len() + 1 + pk.len();
    let out = buf.get_mut(..len)?;
    let (dk_part, rest) = out.split_at_mut(dk.len());
    dk_part.copy_from_slice(dk);
    let (amp, pk_part) = rest.split_first_mut()?;
    *amp = b'&';
    pk_part.copy_from_slice(pk);
    std::str::from_utf8(out).ok().map(f)
}

/// Splits a `{dk}&{pk}` key back into an identity.
pub fn identity_of(key: &str) -> Option<Identity<'_>> {
    let (device_key, product_key) = key.split_once('&')?;
    Some(Identity {
        product_key,
        device_key,
    })
}

/// The in-memory registry.
#[derive(Debug, Default)]
pub struct Registry {
    products: DashMap<Box<str>, Arc<Product>>,
    devices: DashMap<Box<str>, DeviceRecord>,
    principals: DashMap<Box<str>, Arc<Principal>>,
    /// Per credential kind, identity (PSK identity, certificate
    /// fingerprint) to the `{dk}&{pk}` of the device holding it, kept in
    /// step with `devices` by `put_device` and `remove_device`.
    credential_holders: [DashMap<Box<str>, Box<str>>; 2],
    /// Device GUID to `{dk}&{pk}`, kept in step with `devices` like
    /// `credential_holders`.
    by_guid: DashMap<Uuid, Box<str>>,
    /// Device-token verification keys: key id to Ed25519 public key.
    token_keys: DashMap<Box<str>, [u8; 32]>,
    loaded: AtomicBool,
}

impl Registry {
    /// An empty registry, not yet loaded (logins get `UNAVAILABLE`).
    pub fn new() -> Self {
        Registry::default()
    }

    /// Whether the first full load has completed.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Marks the first full load as complete.
    pub fn mark_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    /// The product with key `pk`.
    pub fn product(&self, pk: &str) -> Option<Arc<Product>> {
        self.products.get(pk).map(|p| Arc::clone(&p))
    }

    /// Inserts or replaces a product.
    pub fn put_product(&self, product: Product) {
        self.products.insert(product.key.clone(), Arc::new(product));
    }

    /// Removes a product and its devices.
    pub fn remove_product(&self, pk: &str) {
        self.products.remove(pk);
        self.devices
            .retain(|key, _| identity_of(key).is_none_or(|id| id.product_key != pk));
        for holders in &self.credential_holders {
            holders.retain(|_, key| identity_of(key).is_none_or(|id| id.product_key != pk));
        }
        self.by_guid
            .retain(|_, key| identity_of(key).is_none_or(|id| id.product_key != pk));
    }

    /// Reads the device `{dk}&{pk}` through `f`.
    pub fn with_device<R>(&self, key: &str, f: impl FnOnce(&DeviceRecord) -> R) -> Option<R> {
        self.devices.get(key).map(|d| f(&d))
    }

    /// A copy of the device `{dk}&{pk}`.
    pub fn device(&self, key: &str) -> Option<DeviceRecord> {
        self.with_device(key, DeviceRecord::clone)
    }

    /// Changes the device `{dk}&{pk}` through `f`; false if it does not exist.
    pub fn update_device(&self, key: &str, f: impl FnOnce(&mut DeviceRecord)) -> bool {
        self.devices.get_mut(key).map(|mut d| f(&mut d)).is_some()
    }

    /// Inserts or replaces a device; returns the previous record.
    pub fn put_device(&self, key: &str, record: DeviceRecord) -> Option<DeviceRecord> {
        for credential in &record.credentials {
            self.holders(credential.kind)
                .insert(credential.identity.clone(), key.into());
        }
        if let Some(guid) = record.guid {
            self.by_guid.insert(guid, key.into());
        }
        let old = self.devices.insert(key.into(), record);
        if let Some(old) = &old {
            self.unindex(key, old);
        }
        old
    }

    /// Removes a device; returns its record.
    pub fn remove_device(&self, key: &str) -> Option<DeviceRecord> {
        let old = self.devices.remove(key).map(|(_, d)| d);
        if let Some(old) = &old {
            self.unindex(key, old);
        }
        old
    }

    /// Drops the index entries of `old` credentials of `key` that its
    /// current record no longer holds.
    fn unindex(&self, key: &str, old: &DeviceRecord) {
        if let Some(guid) = old.guid {
            let still_held = self.devices.get(key).is_some_and(|d| d.guid == Some(guid));
            if !still_held {
                self.by_guid.remove_if(&guid, |_, holder| &**holder == key);
            }
        }
        for credential in &old.credentials {
            let still_held = self
                .devices
                .get(key)
                .is_some_and(|d| d.holds(credential.kind, &credential.identity));
            if !still_held {
                self.holders(credential.kind)
                    .remove_if(&credential.identity, |_, holder| &**holder == key);
            }
        }
    }

    fn holders(&self, kind: CredentialKind) -> &DashMap<Box<str>, Box<str>> {
        match kind {
            CredentialKind::Psk => &self.credential_holders[0],
            CredentialKind::Certificate => &self.credential_holders[1],
        }
    }

    /// The `{dk}&{pk}` of the device holding the live credential of `kind`
    /// with `identity`.
    pub fn credential_holder(&self, kind: CredentialKind, identity: &str) -> Option<Box<str>> {
        self.holders(kind).get(identity).map(|k| k.clone())
    }

    /// The `{dk}&{pk}` of the device with GUID `guid`.
    pub fn device_by_guid(&self, guid: &Uuid) -> Option<Box<str>> {
        self.by_guid.get(guid).map(|k| k.clone())
    }

    /// The Ed25519 public key with key id `kid`, if brokers accept tokens
    /// signed with it.
    pub fn token_key(&self, kid: &str) -> Option<[u8; 32]> {
        self.token_keys.get(kid).map(|k| *k)
    }

    /// Adds, replaces (`Some`) or removes (`None`) the token key `kid`.
    pub fn put_token_key(&self, kid: &str, public_key: Option<[u8; 32]>) {
        match public_key {
            Some(key) => {
                self.token_keys.insert(kid.into(), key);
            }
            None => {
                self.token_keys.remove(kid);
            }
        }
    }

    /// Every token key id, for reconciliation.
    pub fn token_key_ids(&self) -> Vec<Box<str>> {
        self.token_keys.iter().map(|e| e.key().clone()).collect()
    }

    /// The principal named `name`.
    pub fn principal(&self, name: &str) -> Option<Arc<Principal>> {
        self.principals.get(name).map(|p| Arc::clone(&p))
    }

    /// Inserts or replaces a principal.
    pub fn put_principal(&self, principal: Principal) {
        self.principals.insert(principal.name.clone(), Arc::new(principal));
    }

    /// Removes a principal.
    pub fn remove_principal(&self, name: &str) {
        self.principals.remove(name);
    }

    /// Every device key, for reconciliation.
    pub fn device_keys(&self) -> Vec<Box<str>> {
        self.devices.iter().map(|e| e.key().clone()).collect()
    }

    /// Every product key, for reconciliation.
    pub fn product_keys(&self) -> Vec<Box<str>> {
        self.products.iter().map(|e| e.key().clone()).collect()
    }

    /// Every principal name, for reconciliation.
    pub fn principal_names(&self) -> Vec<Box<str>> {
        self.principals.iter().map(|e| e.key().clone()).collect()
    }

    /// How many devices are loaded.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_key_round_trip() {
        let id = Identity {
            product_key: "pk",
            device_key: "dk",
        };
        assert_eq!(with_device_key(id, str::to_owned).as_deref(), Some("dk&pk"));
        assert_eq!(identity_of("dk&pk"), Some(id));
        let long = "a".repeat(64);
        let id = Identity {
            product_key: &long,
            device_key: &long,
        };
        assert_eq!(with_device_key(id, |k| k.len()), Some(129));
        let too_long = "a".repeat(65);
        assert_eq!(
            with_device_key(
                Identity {
                    product_key: &too_long,
                    device_key: &long
                },
                |k| k.len()
            ),
            None
        );
    }

    #[test]
    fn removing_a_product_removes_its_devices() {
        let r = Registry::new();
        r.put_product(Product::new("pk", Dialect::Enos));
        r.put_device("a&pk", DeviceRecord::new(None));
        r.put_device("a&other", DeviceRecord::new(None));
        r.remove_product("pk");
        assert!(r.product("pk").is_none());
        assert_eq!(r.device_keys(), vec![Box::from("a&other")]);
    }
}
