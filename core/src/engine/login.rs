//! CONNECT handling (PROTOCOL.md §3.5, §4, §6; IDENTITIES.md §1): the
//! login is orchestration only — rate limit → parse → registry → verify
//! ([`crate::verify`], one function per scheme) → lifecycle → session.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use super::connection::{ActivationState, Connection, GatewayState, Session, Subject};
use super::timers::TimerKind;
use super::verified_tokens::VerifiedTokens;
use super::{ConnectDecision, ConnectRequest, ConnectionId, Effect, Engine, IssueKind, StoreWrite, TlsIdentity};
use uuid::Uuid;

use crate::access_token::{ParsedToken, looks_like_token};
use crate::acl::{BoundRules, TopicRules};
use crate::credentials::{Binding, Fingerprint, Presented, Registration, Username, parse_device_login, parse_username};
use crate::decision::Refusal;
use crate::lifecycle::{Activation, Communication, DeviceState, Operational, Verdict};
use crate::principal::{Verification, dummy_principal};
use crate::rate_limit::BlockScope;
use crate::registry::{CredentialKind, DeviceRecord, Product, identity_of};
use crate::verify::{self, Found, Grant, Named, SessionKind, Signature, Via};

/// Who a CONNECT claims to be, once parsed. Lives on the stack for one
/// login: boxing the large variant would allocate on the hot path.
#[expect(clippy::large_enum_variant, reason = "short-lived, never boxed on the login path")]
enum Claim<'a> {
    /// A backend principal, by name.
    Principal(&'a str),
    /// A device: the `{dk}&{pk}` its credential names (none: a TLS
    /// identity the registry does not know), its product, and what it
    /// presented.
    Device {
        key: Option<Box<str>>,
        product: Option<Arc<Product>>,
        presented: Presented<'a>,
    },
}

/// The activation change a verified login makes, carried out only once the
/// login is accepted (a login refused after verification changes nothing).
pub(super) enum OnAccept {
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
        let token_only = username.is_none() && request.password.is_some_and(looks_like_token);
        let outcome = match (username, request.tls) {
            (None, None) if token_only && !self.registry.is_loaded() => Err(Refusal::RegistryNotLoaded),
            (None, None) if token_only => self.login(connection, request, now_ms),
            (None, None) if self.client_id_held(request.client_id, None) => Err(Refusal::ClientIdInUse),
            (None, None) => return ConnectDecision::Defer,
            _ if !self.registry.is_loaded() => Err(Refusal::RegistryNotLoaded),
            _ => self.login(connection, request, now_ms),
        };
        let Err(refusal) = outcome else {
            self.metrics().login_accepted();
            return ConnectDecision::Accept;
        };
        self.metrics().login_refused(refusal.code());
        let username = username.flatten();
        if refusal.counts_as_failure() {
            for block in self.limits.record_failure(username, request.address, now_ms) {
                // In the event table for `device show`: scope and end.
                self.push_write(StoreWrite::Event {
                    at_ms: now_ms,
                    kind: Cow::Borrowed("login_blocked"),
                    subject: username.filter(|_| block.scope != BlockScope::Address).map(Into::into),
                    address: request.address.map(Into::into),
                    reason: Some(Cow::Owned(format!("{} until={}", block.scope.code(), block.until_ms))),
                });
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
            tls = match request.tls {
                None => Cow::Borrowed("-"),
                Some(TlsIdentity::Psk(identity)) => Cow::Owned(format!(
                    "psk {}",
                    shorten(&String::from_utf8_lossy(identity), LOG_FIELD_MAX)
                )),
                Some(TlsIdentity::Certificate(der)) => Cow::Owned(format!("certificate {:?}", Fingerprint::of(der))),
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

    /// Rate limit → parse → registry → verify → lifecycle → session.
    fn login(&self, connection: ConnectionId, request: &ConnectRequest<'_>, now_ms: u64) -> Result<(), Refusal> {
        self.check_limits(None, request.address, now_ms)?;
        let (key, product, presented) = match self.parse(request)? {
            Claim::Principal(name) => return self.login_principal(connection, request, name, now_ms),
            Claim::Device {
                key,
                product,
                presented,
            } => (key, product, presented),
        };
        if let Some(key) = &key {
            self.check_limits(Some(key), request.address, now_ms)?;
        }
        let record = key.as_deref().and_then(|k| self.registry.device(k));
        let found = Found {
            product: product.as_ref(),
            record: record.as_ref(),
        };
        let key_text = key.as_deref().unwrap_or_default();
        let grant = match &presented {
            Presented::DeviceSecret(login) => verify::verify_triple(login, key_text, found, now_ms)?,
            Presented::ProductSecret(login) => verify::verify_activation(login, key_text, found, now_ms)?,
            Presented::Register(login) => verify::verify_registration(login, key_text, found)?,
            Presented::Token(login) => verify::verify_device_token(login, key_text, found)?,
            Presented::Psk { identity, claimed } => verify::verify_psk(identity, *claimed, key.as_deref(), found)?,
            Presented::AccessToken { token, named } => {
                let raw = request.password.unwrap_or_default();
                let mut digest = None;
                let grant = verify::verify_access_token(
                    token,
                    *named,
                    key.as_deref(),
                    found,
                    self.registry.token_key(&token.kid),
                    |public_key| {
                        let d = VerifiedTokens::digest(public_key, raw);
                        digest = Some(d);
                        if self.verified_tokens.contains(&d) {
                            Signature::Verified
                        } else {
                            Signature::Check {
                                allowed: self.token_checks.take(now_ms),
                            }
                        }
                    },
                    now_ms,
                )?;
                if let (Some(d), Some(expires)) = (digest, grant.expires_at_ms) {
                    self.verified_tokens.insert(d, expires, now_ms);
                }
                grant
            }
            Presented::Certificate { fingerprint, claimed } => {
                match verify::verify_certificate(fingerprint, *claimed, key.as_deref(), found, now_ms) {
                    Err(Refusal::UnknownCredential) if key.is_none() => {
                        return Err(self.register_just_in_time(request, now_ms));
                    }
                    other => other?,
                }
            }
        };
        let activation = match &record {
            Some(record) if record.gateway.is_some() => return Err(Refusal::SubDeviceOnly),
            Some(record) => lifecycle_check(record, &grant)?,
            None => OnAccept::Nothing,
        };
        if let Some(assigned) = self.assigned_elsewhere(record.as_ref(), &grant.product) {
            tracing::warn!(
                device = &*grant.key,
                assigned,
                "device assigned to another server: {assigned}"
            );
            return Err(Refusal::AssignedElsewhere);
        }
        if self.client_id_held(request.client_id, Some(Holder::Device(&grant.key))) {
            return Err(Refusal::ClientIdInUse);
        }
        self.limits.record_success(&grant.key, request.address);
        self.establish(connection, request, grant, activation, now_ms);
        Ok(())
    }

    /// The server a device is assigned to when this broker knows its own
    /// URL and it is another one (IDENTITIES.md §5).
    fn assigned_elsewhere<'r>(&self, record: Option<&'r DeviceRecord>, product: &'r Product) -> Option<&'r str> {
        let own = self.config.server_url.as_deref()?;
        let assigned = record?.assigned_server(product)?;
        (assigned.trim_end_matches('/') != own.trim_end_matches('/')).then_some(assigned)
    }

    /// The server the device a CONNECT names is assigned to, for a broker
    /// that can tell the client (MQTT 5 Server Reference) after the engine
    /// refused it with [`Refusal::AssignedElsewhere`]: only a verified
    /// login gets that refusal, so only a proven device learns where it
    /// belongs.
    pub fn server_reference(&self, request: &ConnectRequest<'_>) -> Option<Box<str>> {
        let Ok(Claim::Device {
            key: Some(key),
            product: Some(product),
            ..
        }) = self.parse(request)
        else {
            return None;
        };
        let record = self.registry.device(&key)?;
        self.assigned_elsewhere(Some(&record), &product).map(Into::into)
    }

    /// What the CONNECT claims: a TLS identity first (a username must then
    /// name the same device), then a device token as the password, else
    /// the username's device or principal.
    fn parse<'a>(&self, request: &ConnectRequest<'a>) -> Result<Claim<'a>, Refusal> {
        if let Some(tls) = request.tls {
            let claimed = match request.username.filter(|u| !u.is_empty()) {
                None => None,
                Some(username) => match parse_username(Some(username))? {
                    Username::Device(identity) => Some(identity),
                    Username::Principal(_) => return Err(Refusal::CredentialNamesAnotherDevice),
                },
            };
            let (key, presented) = match tls {
                TlsIdentity::Psk(identity) => {
                    let identity = std::str::from_utf8(identity).map_err(|_| Refusal::UnknownCredential)?;
                    (
                        self.registry.credential_holder(CredentialKind::Psk, identity),
                        Presented::Psk { identity, claimed },
                    )
                }
                TlsIdentity::Certificate(der) => {
                    let fingerprint = Fingerprint::of(der);
                    (
                        self.registry
                            .credential_holder(CredentialKind::Certificate, fingerprint.as_str()),
                        Presented::Certificate { fingerprint, claimed },
                    )
                }
            };
            let product = key
                .as_deref()
                .and_then(identity_of)
                .and_then(|id| self.registry.product(id.product_key));
            return Ok(Claim::Device {
                key,
                product,
                presented,
            });
        }
        if let Some(token) = request.password.filter(|p| looks_like_token(p)) {
            return self.parse_access_token(request.username, token);
        }
        let identity = match parse_username(request.username)? {
            Username::Principal(name) => return Ok(Claim::Principal(name)),
            Username::Device(identity) => identity,
        };
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
        let presented = parse_device_login(dialect, binding, identity, request.client_id, request.password)?;
        let key = request
            .username
            .and_then(|u| std::str::from_utf8(u).ok())
            .map(Into::into);
        Ok(Claim::Device {
            key,
            product,
            presented,
        })
    }

    /// A device token as the password: the device its `di` claim names,
    /// and whom the username names beside it (nobody, `dk&pk` or a GUID).
    fn parse_access_token<'a>(&self, username: Option<&'a [u8]>, token: &'a [u8]) -> Result<Claim<'a>, Refusal> {
        let token = ParsedToken::parse(token).map_err(Refusal::MalformedAccessToken)?;
        let named = match username.filter(|u| !u.is_empty()) {
            None => Named::Nobody,
            Some(u) => match std::str::from_utf8(u).ok().and_then(|u| Uuid::try_parse(u).ok()) {
                Some(guid) => Named::Guid(guid),
                None => match parse_username(Some(u))? {
                    Username::Device(identity) => Named::Device(identity),
                    Username::Principal(_) => return Err(Refusal::CredentialNamesAnotherDevice),
                },
            },
        };
        let key = Uuid::try_parse(&token.claims.di)
            .ok()
            .and_then(|guid| self.registry.device_by_guid(&guid));
        let product = key
            .as_deref()
            .and_then(identity_of)
            .and_then(|id| self.registry.product(id.product_key));
        Ok(Claim::Device {
            key,
            product,
            presented: Presented::AccessToken {
                token: Box::new(token),
                named,
            },
        })
    }

    /// An unknown certificate: registers its device just in time if its
    /// product allows it (IDENTITIES.md §3). Always a refusal: the client
    /// connects again once the registration is written.
    fn register_just_in_time(&self, request: &ConnectRequest<'_>, now_ms: u64) -> Refusal {
        let Some(TlsIdentity::Certificate(der)) = request.tls else {
            return Refusal::UnknownCredential;
        };
        let decided = verify::just_in_time(
            der,
            |pk| self.registry.product(pk),
            |key| self.registry.with_device(key, |_| ()).is_some(),
            || self.slow_hashes.take(now_ms),
            now_ms,
        );
        match decided {
            Ok(new) => {
                let device = format!("{}&{}", new.device_key, new.product_key);
                tracing::info!(
                    device = device.as_str(),
                    fingerprint = new.fingerprint.as_str(),
                    "registering a certificate just in time; the device connects again"
                );
                self.event(now_ms, "certificate_registered", Some(&device), request.address, None);
                self.push_write(StoreWrite::RegisterCertificate {
                    product_key: new.product_key,
                    device_key: new.device_key,
                    fingerprint: new.fingerprint.as_str().into(),
                    der: new.der,
                    not_after_ms: new.not_after_ms,
                });
                Refusal::CertificateRegistering
            }
            Err(refusal) => refusal,
        }
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

    fn login_principal(
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
                denials: Default::default(),
            },
        );
        self.event(now_ms, "principal_login", Some(name), request.address, None);
        Ok(())
    }

    fn establish(
        &self,
        connection: ConnectionId,
        request: &ConnectRequest<'_>,
        e: Grant,
        activation: OnAccept,
        now_ms: u64,
    ) {
        self.replace_stale(connection, now_ms);
        let client_id: Box<str> = String::from_utf8_lossy(request.client_id).into();
        self.supersede(&e.key, now_ms);
        self.carry_out(activation, &e.key, now_ms);
        self.note_first_use(&e.key, &e.via, now_ms);
        self.client_ids.insert(client_id.clone(), connection);
        let serial = self.next_serial();
        let (session, restricted, issue) = match e.session {
            SessionKind::Normal => (Session::Normal, None, None),
            SessionKind::Activation => (
                Session::Activation(ActivationState::default()),
                Some(TopicRules::activation_session()),
                Some(IssueKind::Activation),
            ),
            SessionKind::Registration(kind) => (
                Session::Registration(kind),
                Some(TopicRules::registration_session(kind)),
                Some(match kind {
                    Registration::Register => IssueKind::Register,
                    Registration::Regnwl => IssueKind::Regnwl,
                }),
            ),
        };
        let offline_after_ms = u64::from(e.product.offline_after_secs) * 1000;
        let rules = match identity_of(&e.key) {
            Some(identity) => BoundRules::bind(restricted.as_ref().unwrap_or(&e.product.rules), identity),
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
                    session,
                    via: e.via,
                    gateway: GatewayState::default(),
                },
                rules,
                restricted: restricted.is_some(),
                last_activity_ms: AtomicU64::new(now_ms),
                idle: AtomicBool::new(false),
                subscriptions: Vec::new(),
                denials: Default::default(),
            },
        );
        self.online.insert(e.key.clone(), connection);
        self.presence(&e.key, true, now_ms, request.address);
        self.event(now_ms, "login", Some(&e.key), request.address, None);
        if offline_after_ms > 0 {
            self.timers
                .schedule(now_ms + offline_after_ms, connection, serial, TimerKind::Idle);
        }
        if let Some(end) = e.expires_at_ms {
            self.timers.schedule(end, connection, serial, TimerKind::Close);
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

    /// Makes the activation change of an accepted login.
    pub(super) fn carry_out(&self, activation: OnAccept, key: &str, now_ms: u64) {
        match activation {
            OnAccept::Nothing => {}
            OnAccept::Activate => self.mark_activated(key, now_ms),
            OnAccept::ConfirmPending => self.confirm_pending_secret(key, now_ms),
        }
    }

    /// Records the first login with a credential (`first_used_at`), once:
    /// the registry remembers it, so later logins write nothing.
    fn note_first_use(&self, key: &str, via: &Via, now_ms: u64) {
        // A read first: after the first login this is all there is, with
        // no write lock on the registry's shard.
        let unused = |record: &DeviceRecord| match via {
            Via::Secret => !record.secret_used && record.secret.is_some(),
            Via::Credential(kind, identity) => record
                .credentials
                .iter()
                .any(|c| c.kind == *kind && c.identity == *identity && !c.used),
            // A device token's access key was used when it was exchanged.
            Via::ProductSecret | Via::DeviceToken | Via::AccessToken(_) => false,
        };
        if !self.registry.with_device(key, unused).unwrap_or(false) {
            return;
        }
        let mut first = None;
        self.registry.update_device(key, |record| match via {
            Via::Secret if !record.secret_used => {
                record.secret_used = true;
                first = Some(("secret", key.into()));
            }
            Via::Credential(kind, identity) => {
                if let Some(credential) = record
                    .credentials
                    .iter_mut()
                    .find(|c| c.kind == *kind && c.identity == *identity && !c.used)
                {
                    credential.used = true;
                    first = Some((kind.name(), identity.clone()));
                }
            }
            _ => {}
        });
        if let Some((kind, identity)) = first {
            self.push_write(StoreWrite::CredentialUsed {
                device: key.into(),
                kind,
                identity,
                at_ms: now_ms,
            });
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
                self.metrics().kicked("superseded");
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
pub(super) const LOG_FIELD_MAX: usize = 128;

/// `text` cut to at most `max` characters, with the length it had, so a
/// padded field cannot push the rest of a log line out of sight.
pub(super) fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…({} bytes)", &text[..cut], text.len())),
    }
}

/// The lifecycle check of a verified login (DESIGN.md §4): its event
/// applied to the device's state decides whether it may proceed and what
/// it does to activation once accepted.
pub(super) fn lifecycle_check(record: &DeviceRecord, grant: &Grant) -> Result<OnAccept, Refusal> {
    let before = device_state(record);
    let transition = before.apply(grant.event);
    match transition.verdict {
        Verdict::RefuseDisabled => Err(Refusal::Disabled),
        Verdict::RefuseActivated => Err(Refusal::AlreadyActivated),
        _ if grant.confirms_pending => Ok(OnAccept::ConfirmPending),
        _ if transition.next.activation == Activation::Activated && before.activation == Activation::Inactive => {
            Ok(OnAccept::Activate)
        }
        _ => Ok(OnAccept::Nothing),
    }
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
