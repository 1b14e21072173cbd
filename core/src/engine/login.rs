//! CONNECT verification (PROTOCOL.md §3.5, §4, §6): parse, look up, verify
//! in constant time with equal work for unknown devices, apply the
//! timestamp policy, then the state checks of the lifecycle table.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::connection::{ActivationState, Connection, GatewayState, Session, Subject};
use super::timers::TimerKind;
use super::{ConnectDecision, ConnectRequest, ConnectionId, Effect, Engine, IssueKind, StoreWrite};
use crate::acl::{BoundRules, TopicRules};
use crate::credentials::{
    Binding, Login, RegisterLogin, Registration, SignedLogin, TokenLogin, Username, parse_device_login, parse_username,
};
use crate::decision::Refusal;
use crate::lifecycle::{Activation, Communication, DeviceState, Event, Operational, Verdict};
use crate::principal::{Verification, dummy_principal};
use crate::registry::{DeviceRecord, Product, TimestampPolicy, identity_of};
use crate::secret::Secret;
use crate::sign::{Content, Digest, SignMethod, verify, verify_or_dummy};

/// What a verified login establishes.
struct Established {
    key: Box<str>,
    product: Arc<Product>,
    session: Session,
    restricted: Option<TopicRules>,
    /// What the login does to the device's activation once accepted.
    activation: OnAccept,
}

/// The activation change a verified login makes, carried out only once the
/// login is accepted (a login refused after verification changes nothing).
enum OnAccept {
    /// Nothing to change.
    Nothing,
    /// First login of a static device: it becomes activated.
    Activate,
    /// The device proved its pending secret: that becomes its secret.
    ConfirmPending,
}

impl Engine {
    pub(super) fn connect(
        &self,
        connection: ConnectionId,
        request: &ConnectRequest<'_>,
        now_ms: u64,
    ) -> ConnectDecision {
        let username = request.username.map(|u| std::str::from_utf8(u).ok());
        let outcome = match username {
            None if self.client_id_held(request.client_id, None) => Err(Refusal::ClientIdInUse),
            None => return ConnectDecision::Defer,
            Some(_) if !self.registry.is_loaded() => Err(Refusal::RegistryNotLoaded),
            Some(_) => self.verify(connection, request, now_ms),
        };
        let Err(refusal) = outcome else {
            return ConnectDecision::Accept;
        };
        let username = username.flatten();
        if refusal.counts_as_failure() {
            for block in self.limits.record_failure(username, request.address, now_ms) {
                tracing::warn!(
                    username = username
                        .map_or(Cow::Borrowed("-"), |u| shorten(u, LOG_FIELD_MAX))
                        .as_ref(),
                    address = request.address.unwrap_or("-"),
                    "too many failed logins: blocking {} for {} s",
                    block.scope,
                    block.until_ms.saturating_sub(now_ms).div_ceil(1000)
                );
            }
        }
        tracing::warn!(
            username = match request.username {
                None => Cow::Borrowed("-"),
                Some(_) => username.map_or(Cow::Borrowed("<not utf-8>"), |u| shorten(u, LOG_FIELD_MAX)),
            }
            .as_ref(),
            address = request.address.unwrap_or("-"),
            client_id = shorten(&String::from_utf8_lossy(request.client_id), LOG_FIELD_MAX).as_ref(),
            reason = %refusal,
            "login refused"
        );
        self.event(now_ms, "login_refused", username, request.address, Some(refusal.code()));
        ConnectDecision::Refuse(refusal)
    }

    fn verify(&self, connection: ConnectionId, request: &ConnectRequest<'_>, now_ms: u64) -> Result<(), Refusal> {
        let username = parse_username(request.username)?;
        self.check_limits(None, request.address, now_ms)?;
        let identity = match username {
            Username::Principal(name) => {
                return self.verify_principal(connection, request, name, now_ms);
            }
            Username::Device(identity) => identity,
        };
        let key: Box<str> = request
            .username
            .and_then(|u| std::str::from_utf8(u).ok())
            .unwrap_or_default()
            .into();
        self.check_limits(Some(&key), request.address, now_ms)?;
        let product = self.registry.product(identity.product_key);
        let (dialect, binding) = product.as_ref().map_or((Default::default(), Binding::Strict), |p| {
            (
                p.dialect,
                if p.free_client_id {
                    Binding::Free
                } else {
                    Binding::Strict
                },
            )
        });
        let login = parse_device_login(dialect, binding, identity, request.client_id, request.password)?;
        let record = self.registry.device(&key);
        let established = match login {
            Login::DeviceSecret(s) => self.verify_device_secret(key, product, record, &s, now_ms)?,
            Login::ProductSecret(s) => self.verify_activation(key, product, record, &s, now_ms)?,
            Login::Register(r) => self.verify_registration(key, product, record, &r)?,
            Login::Token(t) => self.verify_token(key, product, record, &t)?,
        };
        if self.client_id_held(request.client_id, Some(Holder::Device(&established.key))) {
            return Err(Refusal::ClientIdInUse);
        }
        self.limits.record_success(&established.key, request.address);
        self.establish(connection, request, established, now_ms);
        Ok(())
    }

    /// Refuses a login that a failed-login block covers.
    fn check_limits(&self, subject: Option<&str>, address: Option<&str>, now_ms: u64) -> Result<(), Refusal> {
        let block = match subject {
            None => self.limits.address_block(address, now_ms),
            Some(subject) => self.limits.subject_block(subject, address, now_ms),
        };
        match block {
            None => Ok(()),
            Some(block) => {
                tracing::debug!(
                    "login blocked: {} for another {} s",
                    block.scope,
                    block.until_ms.saturating_sub(now_ms).div_ceil(1000)
                );
                Err(Refusal::RateLimited)
            }
        }
    }

    /// Whether `client_id` is held by a live connection of another subject
    /// than `login` (`None`: a client devicegate does not own). The same
    /// subject reconnecting takes its own session over (PROTOCOL.md §9 S4).
    fn client_id_held(&self, client_id: &[u8], login: Option<Holder<'_>>) -> bool {
        let client_id = String::from_utf8_lossy(client_id);
        let Some(holder) = self.client_ids.get(&*client_id).map(|c| *c) else {
            return false;
        };
        let Some(conn) = self.connections.get(&holder) else {
            return false;
        };
        let same = match login {
            Some(Holder::Device(key)) => conn.device_key() == Some(key),
            Some(Holder::Principal(name)) => conn.principal_name() == Some(name),
            None => false,
        };
        !same
    }

    /// The accepted connection holding `client_id`, if any: brokers that
    /// report closed connections late (Mosquitto batches them per TICK)
    /// settle that one before a new login with the same client id.
    pub fn client_id_holder(&self, client_id: &[u8]) -> Option<ConnectionId> {
        self.client_ids.get(&*String::from_utf8_lossy(client_id)).map(|c| *c)
    }

    fn verify_device_secret(
        &self,
        key: Box<str>,
        product: Option<Arc<Product>>,
        record: Option<DeviceRecord>,
        login: &SignedLogin<'_>,
        now_ms: u64,
    ) -> Result<Established, Refusal> {
        let secret = record.as_ref().and_then(|r| r.secret.as_ref());
        let with_secret = verify_or_dummy(
            login.method,
            &login.content,
            secret.map(Secret::expose),
            &login.signature,
        );
        let pending = record.as_ref().and_then(|r| r.pending_secret.as_ref());
        let with_pending = pending.is_some_and(|p| verify(login.method, &login.content, p.expose(), &login.signature));
        let (has_secret, has_pending) = (secret.is_some(), pending.is_some());
        let product = product.ok_or(Refusal::UnknownProduct)?;
        let record = record.ok_or(Refusal::UnknownDevice)?;
        if !product.sign_methods.contains(login.method.alg) {
            return Err(Refusal::SignMethodNotAllowed);
        }
        if !(with_pending || with_secret) {
            return Err(if !has_secret && !has_pending {
                Refusal::NoSecret
            } else {
                Refusal::BadSignature
            });
        }
        if !timestamp_fresh(product.timestamp_policy, login.timestamp, now_ms) {
            return Err(Refusal::StaleTimestamp);
        }
        self.state_check(&record, Event::SecretLoginVerified)?;
        let activation = if with_pending && !with_secret {
            OnAccept::ConfirmPending
        } else if !record.activated {
            OnAccept::Activate
        } else {
            OnAccept::Nothing
        };
        Ok(Established {
            key,
            product,
            session: Session::Normal,
            restricted: None,
            activation,
        })
    }

    fn verify_activation(
        &self,
        key: Box<str>,
        product: Option<Arc<Product>>,
        record: Option<DeviceRecord>,
        login: &SignedLogin<'_>,
        now_ms: u64,
    ) -> Result<Established, Refusal> {
        let product = verify_product_secret(product, login.method, &login.content, &login.signature)?;
        let record = record.ok_or(Refusal::UnknownDevice)?;
        if !timestamp_fresh(product.timestamp_policy, login.timestamp, now_ms) {
            return Err(Refusal::StaleTimestamp);
        }
        if !product.dynamic_activation {
            return Err(Refusal::DynamicActivationOff);
        }
        self.state_check(&record, Event::ProductSecretLoginVerified)?;
        Ok(Established {
            key,
            product,
            session: Session::Activation(ActivationState::default()),
            restricted: Some(TopicRules::activation_session()),
            activation: OnAccept::Nothing,
        })
    }

    fn verify_registration(
        &self,
        key: Box<str>,
        product: Option<Arc<Product>>,
        record: Option<DeviceRecord>,
        login: &RegisterLogin<'_>,
    ) -> Result<Established, Refusal> {
        let product = verify_product_secret(product, login.method, &login.content, &login.signature)?;
        if !product.dynamic_activation {
            return Err(Refusal::DynamicActivationOff);
        }
        match (record, login.kind) {
            (None, Registration::Register) => return Err(Refusal::UnknownDevice),
            (None, Registration::Regnwl) => {}
            (Some(record), _) => self.state_check(&record, Event::ProductSecretLoginVerified)?,
        }
        Ok(Established {
            key,
            product,
            session: Session::Registration(login.kind),
            restricted: Some(TopicRules::registration_session(login.kind)),
            activation: OnAccept::Nothing,
        })
    }

    fn verify_token(
        &self,
        key: Box<str>,
        product: Option<Arc<Product>>,
        record: Option<DeviceRecord>,
        login: &TokenLogin<'_>,
    ) -> Result<Established, Refusal> {
        let presented: [u8; 32] = Sha256::digest(login.token).into();
        let stored = record
            .as_ref()
            .and_then(|r| r.token_hash.as_deref())
            .copied()
            .unwrap_or([0xff; 32]);
        let ok: bool = presented.ct_eq(&stored).into();
        let product = product.ok_or(Refusal::UnknownProduct)?;
        let record = record.ok_or(Refusal::UnknownDevice)?;
        if record.token_hash.is_none() || !ok {
            return Err(Refusal::BadToken);
        }
        self.state_check(&record, Event::SecretLoginVerified)?;
        Ok(Established {
            key,
            product,
            session: Session::Normal,
            restricted: None,
            activation: if record.activated {
                OnAccept::Nothing
            } else {
                OnAccept::Activate
            },
        })
    }

    fn state_check(&self, record: &DeviceRecord, event: Event) -> Result<(), Refusal> {
        if record.gateway.is_some() {
            return Err(Refusal::SubDeviceOnly);
        }
        match device_state(record).apply(event).verdict {
            Verdict::RefuseDisabled => Err(Refusal::Disabled),
            Verdict::RefuseActivated => Err(Refusal::AlreadyActivated),
            _ => Ok(()),
        }
    }

    fn verify_principal(
        &self,
        connection: ConnectionId,
        request: &ConnectRequest<'_>,
        name: &str,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        self.check_limits(Some(name), request.address, now_ms)?;
        let principal = self.registry.principal(name);
        let password = request.password.unwrap_or_default();
        let verdict = match &principal {
            Some(p) => p.verify(password, || self.slow_hashes.take(now_ms)),
            None => dummy_principal().verify(password, || false),
        };
        let principal = principal.ok_or(Refusal::UnknownPrincipal)?;
        match verdict {
            Verification::Correct => {}
            Verification::Wrong => return Err(Refusal::BadPassword),
            Verification::Postponed => return Err(Refusal::Busy),
        }
        if self.client_id_held(request.client_id, Some(Holder::Principal(name))) {
            return Err(Refusal::ClientIdInUse);
        }
        self.limits.record_success(name, request.address);
        self.replace_stale(connection, now_ms);
        let serial = self.next_serial();
        let client_id: Box<str> = String::from_utf8_lossy(request.client_id).into();
        self.client_ids.insert(client_id.clone(), connection);
        self.connections.insert(
            connection,
            Connection {
                serial,
                client_id,
                address: request.address.map(Into::into),
                subject: Subject::Principal(principal),
                rules: BoundRules::default(),
                restricted: false,
                last_activity_ms: AtomicU64::new(now_ms),
                idle: AtomicBool::new(false),
                subscriptions: Vec::new(),
            },
        );
        self.event(now_ms, "principal_login", Some(name), request.address, None);
        Ok(())
    }

    fn establish(&self, connection: ConnectionId, request: &ConnectRequest<'_>, e: Established, now_ms: u64) {
        self.replace_stale(connection, now_ms);
        let client_id: Box<str> = String::from_utf8_lossy(request.client_id).into();
        self.supersede(&e.key, now_ms);
        match e.activation {
            OnAccept::Nothing => {}
            OnAccept::Activate => self.mark_activated(&e.key, now_ms),
            OnAccept::ConfirmPending => self.confirm_pending_secret(&e.key, now_ms),
        }
        self.client_ids.insert(client_id.clone(), connection);
        let serial = self.next_serial();
        let issue = match &e.session {
            Session::Normal => None,
            Session::Activation(_) => Some(IssueKind::Activation),
            Session::Registration(Registration::Register) => Some(IssueKind::Register),
            Session::Registration(Registration::Regnwl) => Some(IssueKind::Regnwl),
        };
        let offline_after_ms = u64::from(e.product.offline_after_secs) * 1000;
        let rules = match identity_of(&e.key) {
            Some(identity) => BoundRules::bind(e.restricted.as_ref().unwrap_or(&e.product.rules), identity),
            None => BoundRules::default(),
        };
        self.connections.insert(
            connection,
            Connection {
                serial,
                client_id,
                address: request.address.map(Into::into),
                subject: Subject::Device {
                    key: e.key.clone(),
                    product: e.product,
                    session: e.session,
                    gateway: GatewayState::default(),
                },
                rules,
                restricted: e.restricted.is_some(),
                last_activity_ms: AtomicU64::new(now_ms),
                idle: AtomicBool::new(false),
                subscriptions: Vec::new(),
            },
        );
        self.online.insert(e.key.clone(), connection);
        self.presence(&e.key, true, now_ms, request.address);
        self.event(now_ms, "login", Some(&e.key), request.address, None);
        if offline_after_ms > 0 {
            self.timers
                .schedule(now_ms + offline_after_ms, connection, serial, TimerKind::Idle);
        }
        if let Some(kind) = issue {
            match crate::secret::Secret::generate() {
                Ok(secret) => self.push_write(StoreWrite::Issue {
                    device: e.key,
                    kind,
                    secret,
                    connection,
                }),
                Err(err) => {
                    tracing::error!(%err, "cannot generate a secret: the operating system RNG failed")
                }
            }
            self.timers.schedule(
                now_ms + self.config.activation_session_ms,
                connection,
                serial,
                TimerKind::Close,
            );
        }
    }

    /// A connection id reused without a disconnect: end the old one first.
    fn replace_stale(&self, connection: ConnectionId, now_ms: u64) {
        if self.connections.contains_key(&connection) {
            self.disconnect(connection, now_ms);
        }
    }

    /// Single session (PROTOCOL.md §9 S4): an older connection of the same
    /// device is thrown off, whatever its client id. Brokers that take a
    /// session over by client id themselves (Mosquitto) skip a kick whose
    /// client id the new connection now holds.
    fn supersede(&self, key: &str, now_ms: u64) {
        let Some((_, old)) = self.online.remove(key) else {
            return;
        };
        let old_info = self
            .connections
            .get(&old)
            .map(|c| (c.client_id.to_string(), c.device_key() == Some(key)));
        match old_info {
            Some((client_id, true)) => {
                self.event(now_ms, "superseded", Some(key), None, None);
                self.push_effect(Effect::Kick {
                    connection: old,
                    client_id,
                });
            }
            Some((_, false)) => {
                if let Some(mut gw) = self.connections.get_mut(&old)
                    && let Subject::Device { gateway, .. } = &mut gw.subject
                {
                    gateway.remove(key);
                }
            }
            None => {}
        }
    }

    fn next_serial(&self) -> u64 {
        self.next_serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Who a login is for, to compare with the holder of its client id.
#[derive(Clone, Copy)]
enum Holder<'a> {
    /// A device, `{dk}&{pk}`.
    Device(&'a str),
    /// A principal, by name.
    Principal(&'a str),
}

/// The most characters of a username or client id a log line shows:
/// enough for every SDK's client id, too few for padding to hide the rest.
const LOG_FIELD_MAX: usize = 128;

/// `text` cut to at most `max` characters, with the length it had, so a
/// padded field cannot push the rest of a log line out of sight.
fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…({} bytes)", &text[..cut], text.len())),
    }
}

/// Checks a login signed with the product secret (EnOS activation, Aliyun
/// registration): the same work whether or not the product or its secret
/// exists, then the product's allowed hashes and the signature.
fn verify_product_secret(
    product: Option<Arc<Product>>,
    method: SignMethod,
    content: &Content<'_>,
    signature: &Digest,
) -> Result<Arc<Product>, Refusal> {
    let secret = product.as_ref().and_then(|p| p.secret.as_ref());
    let ok = verify_or_dummy(method, content, secret.map(Secret::expose), signature);
    let has_secret = secret.is_some();
    let product = product.ok_or(Refusal::UnknownProduct)?;
    if !product.sign_methods.contains(method.alg) {
        return Err(Refusal::SignMethodNotAllowed);
    }
    if !has_secret {
        return Err(Refusal::NoSecret);
    }
    if !ok {
        return Err(Refusal::BadSignature);
    }
    Ok(product)
}

/// The lifecycle state of a registry record (communication is not tracked
/// there; a login is the same event whether or not another session exists).
pub(super) fn device_state(record: &DeviceRecord) -> DeviceState {
    DeviceState {
        operational: if record.enabled {
            Operational::Enabled
        } else {
            Operational::Disabled
        },
        activation: if record.activated {
            Activation::Activated
        } else {
            Activation::Inactive
        },
        communication: Communication::Offline,
    }
}

/// Whether `timestamp` passes `policy` at `now_ms` (PROTOCOL.md §3.4).
pub(super) fn timestamp_fresh(policy: TimestampPolicy, timestamp: Option<&str>, now_ms: u64) -> bool {
    let TimestampPolicy::Enforce { window_secs } = policy else {
        return true;
    };
    let Some(ts_ms) = timestamp.and_then(parse_timestamp_ms) else {
        return false;
    };
    now_ms.abs_diff(ts_ms) <= u64::from(window_secs) * 1000
}

/// `^[0-9]{1,16}(\.[0-9]{1,9})?$`; 12 or more integer digits mean ms.
fn parse_timestamp_ms(ts: &str) -> Option<u64> {
    let (int, frac) = match ts.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (ts, None),
    };
    let digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int, 16) || !frac.is_none_or(|f| digits(f, 9)) {
        return None;
    }
    let value: u64 = int.parse().ok()?;
    if int.len() >= 12 {
        return Some(value);
    }
    let millis = frac.map_or(0, |f| {
        f.bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |acc, b| acc * 10 + u64::from(b - b'0'))
    });
    value.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp_ms("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp_ms("1795320666.3600545"), Some(1_795_320_666_360));
        assert_eq!(parse_timestamp_ms("1795320550912.803"), Some(1_795_320_550_912));
        for bad in ["", "abc", "1.", ".5", "1e9", "12345678901234567", "1.1234567890"] {
            assert_eq!(parse_timestamp_ms(bad), None, "{bad}");
        }
        let enforce = TimestampPolicy::Enforce { window_secs: 900 };
        assert!(timestamp_fresh(enforce, Some("1700000000"), 1_700_000_899_000));
        assert!(!timestamp_fresh(enforce, Some("1700000000"), 1_700_000_901_000));
        assert!(!timestamp_fresh(enforce, None, 0));
        assert!(timestamp_fresh(TimestampPolicy::Off, Some("2524608000000"), 0));
    }
}
