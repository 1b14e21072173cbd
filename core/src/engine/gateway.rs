//! EnOS sub-devices through a gateway (PROTOCOL.md §5): `combine/login`,
//! `combine/login/batch` and `combine/logout` requests, answered on the
//! `_reply` topic to the gateway's connection only.

use serde_json::{Map, Value, json};

use super::connection::Subject;
use super::login::lifecycle_check;
use super::{ConnectionId, Effect, Engine, MessageDecision};
use crate::credentials::{Dialect, Identity, KeyKind, SignedLogin, validate_key};
use crate::decision::Refusal;
use crate::registry::with_device_key;
use crate::sign::{Content, Digest, SignMethod};
use crate::verify::{self, Found};

/// The largest request accepted (PROTOCOL.md L1).
pub const MAX_REQUEST_LEN: usize = 64 * 1024;
/// The most entries in one batch login.
pub const MAX_BATCH: usize = 50;

/// Which request a topic names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayOp {
    /// `combine/login`.
    Login,
    /// `combine/login/batch`.
    BatchLogin,
    /// `combine/logout`.
    Logout,
}

impl GatewayOp {
    /// The op for a topic suffix after `/ext/session/{pk}/{dk}/`.
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        match suffix {
            "combine/login" => Some(GatewayOp::Login),
            "combine/login/batch" => Some(GatewayOp::BatchLogin),
            "combine/logout" => Some(GatewayOp::Logout),
            _ => None,
        }
    }

    fn method(self) -> &'static str {
        match self {
            GatewayOp::Login => "combine.login",
            GatewayOp::BatchLogin => "combine.login.batch",
            GatewayOp::Logout => "combine.logout",
        }
    }
}

/// A reply code with its message (PROTOCOL.md §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyCode(pub u32, pub &'static str);

const TOO_LARGE: ReplyCode = ReplyCode(1008, "message too large");
const FORMAT: ReplyCode = ReplyCode(1220, "payload format error");
const EMPTY: ReplyCode = ReplyCode(1251, "payload is empty");
const METHOD: ReplyCode = ReplyCode(1260, "method does not match the topic");
const PARAMETER: ReplyCode = ReplyCode(460, "parameter error");
const NOT_IN_TOPOLOGY: ReplyCode = ReplyCode(740, "sub-device does not belong to the gateway");
const SIGN: ReplyCode = ReplyCode(742, "Sign check failed");
const DISABLED: ReplyCode = ReplyCode(723, "Device is disabled");
const NO_DYNAMIC: ReplyCode = ReplyCode(770, "dynamic activation of sub-devices is not supported");
const TOO_MANY: ReplyCode = ReplyCode(429, "too many requests or sub-devices online");

/// One sub-device to log in, with what it signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubDeviceLogin {
    /// The sub-device's product key.
    pub product_key: String,
    /// The sub-device's device key.
    pub device_key: String,
    /// The signed `clientId` (opaque).
    pub client_id: String,
    /// The signed timestamp, as its literal text.
    pub timestamp: String,
    /// The sign method.
    pub method: SignMethod,
    /// The presented sign, if it decoded for the method.
    pub sign: Option<Digest>,
    /// 2 (device secret) or 3 (product secret).
    pub secure_mode: u8,
}

/// A parsed gateway request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRequest {
    /// One or more sub-devices to log in.
    Login(Vec<SubDeviceLogin>),
    /// A sub-device to log out.
    Logout {
        /// Its product key.
        product_key: String,
        /// Its device key.
        device_key: String,
    },
}

/// Parses a request payload: `Ok((id, request))`, or the id (if one could
/// be read) and the reply code for a malformed request.
pub fn parse_request(
    op: GatewayOp,
    payload: &[u8],
) -> Result<(Option<String>, GatewayRequest), (Option<String>, ReplyCode)> {
    if payload.len() > MAX_REQUEST_LEN {
        return Err((None, TOO_LARGE));
    }
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err((None, EMPTY));
    }
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(payload) else {
        return Err((None, FORMAT));
    };
    let id = match root.get("id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err((None, FORMAT)),
    };
    let fail = |code| Err((id.clone(), code));
    match root.get("method") {
        None => {}
        Some(Value::String(m)) if m == op.method() => {}
        Some(_) => return fail(METHOD),
    }
    let Some(Value::Object(params)) = root.get("params") else {
        return fail(FORMAT);
    };
    let parsed = match op {
        GatewayOp::Login => parse_single(params).map(|l| GatewayRequest::Login(vec![l])),
        GatewayOp::BatchLogin => parse_batch(params).map(GatewayRequest::Login),
        GatewayOp::Logout => (|| {
            Ok(GatewayRequest::Logout {
                product_key: string(params, "productKey")?,
                device_key: string(params, "deviceKey")?,
            })
        })(),
    };
    match parsed {
        Ok(request) => Ok((id, request)),
        Err(code) => fail(code),
    }
}

fn string(params: &Map<String, Value>, key: &str) -> Result<String, ReplyCode> {
    match params.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(FORMAT),
    }
}

/// A string, or a JSON number as its text (Node sends numeric timestamps).
fn string_or_number(params: &Map<String, Value>, key: &str) -> Result<String, ReplyCode> {
    match params.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(FORMAT),
    }
}

fn secure_mode(params: &Map<String, Value>) -> Result<u8, ReplyCode> {
    match params.get("secureMode") {
        None => Ok(2),
        Some(Value::String(s)) if s == "2" => Ok(2),
        Some(Value::String(s)) if s == "3" => Ok(3),
        Some(Value::Number(n)) if n.as_u64() == Some(2) => Ok(2),
        Some(Value::Number(n)) if n.as_u64() == Some(3) => Ok(3),
        Some(Value::String(_) | Value::Number(_)) => Err(PARAMETER),
        Some(_) => Err(FORMAT),
    }
}

fn clean_session(params: &Map<String, Value>) -> Result<bool, ReplyCode> {
    match params.get("cleanSession") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(FORMAT),
    }
}

fn method(params: &Map<String, Value>) -> Result<SignMethod, ReplyCode> {
    SignMethod::parse_enos(&string(params, "signMethod")?).ok_or(PARAMETER)
}

fn parse_single(params: &Map<String, Value>) -> Result<SubDeviceLogin, ReplyCode> {
    let method = method(params)?;
    clean_session(params)?;
    Ok(SubDeviceLogin {
        product_key: string(params, "productKey")?,
        device_key: string(params, "deviceKey")?,
        client_id: string(params, "clientId")?,
        timestamp: string_or_number(params, "timestamp")?,
        sign: Digest::from_hex(method.alg, string(params, "sign")?.as_bytes()).ok(),
        secure_mode: secure_mode(params)?,
        method,
    })
}

fn parse_batch(params: &Map<String, Value>) -> Result<Vec<SubDeviceLogin>, ReplyCode> {
    let method = method(params)?;
    let client_id = string(params, "clientId")?;
    let timestamp = string_or_number(params, "timestamp")?;
    let Some(Value::Array(entries)) = params.get("subDevices") else {
        return Err(FORMAT);
    };
    if entries.len() > MAX_BATCH {
        return Err(PARAMETER);
    }
    let mut out: Vec<SubDeviceLogin> = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Object(e) = entry else {
            return Err(FORMAT);
        };
        let login = SubDeviceLogin {
            product_key: string(e, "productKey")?,
            device_key: string(e, "deviceKey")?,
            client_id: client_id.clone(),
            timestamp: timestamp.clone(),
            sign: Digest::from_hex(method.alg, string(e, "sign")?.as_bytes()).ok(),
            secure_mode: secure_mode(e)?,
            method,
        };
        if !out
            .iter()
            .any(|o| o.product_key == login.product_key && o.device_key == login.device_key)
        {
            out.push(login);
        }
    }
    Ok(out)
}

impl Engine {
    /// A gateway request on `/ext/session/{gpk}/{gdk}/{suffix}`.
    pub(super) fn gateway_request(
        &self,
        connection: ConnectionId,
        op: GatewayOp,
        topic: &str,
        payload: &[u8],
        now_ms: u64,
    ) -> MessageDecision {
        let (id, body) = match parse_request(op, payload) {
            Ok((id, request)) => (id, self.serve(connection, op, request, now_ms)),
            Err((id, code)) => {
                let data = if op == GatewayOp::BatchLogin {
                    json!({"loginedSubDevices": [], "failedSubDevices": []})
                } else {
                    json!({})
                };
                (id, (code.0, code.1.to_owned(), data))
            }
        };
        let (code, message, data) = body;
        let mut reply = Map::new();
        if let Some(id) = id {
            reply.insert("id".into(), Value::String(id));
        }
        reply.insert("code".into(), json!(code));
        reply.insert("message".into(), Value::String(message));
        reply.insert("data".into(), data);
        if let Some(client_id) = self.connections.get(&connection).map(|c| c.client_id.to_string()) {
            self.push_effect(Effect::Publish {
                connection,
                client_id,
                topic: format!("{topic}_reply"),
                payload: Value::Object(reply).to_string().into_bytes(),
                qos: 1,
            });
        }
        MessageDecision::Consume
    }

    fn serve(
        &self,
        connection: ConnectionId,
        op: GatewayOp,
        request: GatewayRequest,
        now_ms: u64,
    ) -> (u32, String, Value) {
        match request {
            GatewayRequest::Logout {
                product_key,
                device_key,
            } => {
                let code = self.logout_sub_device(connection, &product_key, &device_key, now_ms);
                let message = if code.0 == 200 {
                    String::new()
                } else {
                    code.1.to_owned()
                };
                (
                    code.0,
                    message,
                    json!({"productKey": product_key, "deviceKey": device_key}),
                )
            }
            GatewayRequest::Login(logins) if op == GatewayOp::Login => {
                let Some(login) = logins.first() else {
                    return (FORMAT.0, FORMAT.1.to_owned(), json!({}));
                };
                let data = json!({"productKey": login.product_key, "deviceKey": login.device_key});
                match self.login_sub_device(connection, login, now_ms) {
                    Ok(()) => {
                        let data = json!({"assetId": format!("{}&{}", login.device_key, login.product_key),
                                          "productKey": login.product_key, "deviceKey": login.device_key});
                        (200, "success".to_owned(), data)
                    }
                    Err(code) => (code.0, code.1.to_owned(), data),
                }
            }
            GatewayRequest::Login(logins) => {
                let (mut logged, mut failed, mut first, mut message) = (Vec::new(), Vec::new(), None, String::new());
                for login in &logins {
                    match self.login_sub_device(connection, login, now_ms) {
                        Ok(()) => logged.push(json!({"assetId": format!("{}&{}", login.device_key, login.product_key),
                                                     "productKey": login.product_key, "deviceKey": login.device_key})),
                        Err(code) => {
                            first.get_or_insert(code.0);
                            message.push_str(&format!(
                                "{}&{} has error: {};",
                                login.product_key, login.device_key, code.1
                            ));
                            failed.push(json!({"productKey": login.product_key, "deviceKey": login.device_key}));
                        }
                    }
                }
                let data = json!({"loginedSubDevices": logged, "failedSubDevices": failed});
                (first.unwrap_or(200), message, data)
            }
        }
    }

    fn gateway_of(&self, connection: ConnectionId) -> Option<(String, u32)> {
        let conn = self.connections.get(&connection)?;
        match &conn.subject {
            Subject::Device { key, product, .. } => Some((key.to_string(), product.max_sub_devices)),
            Subject::Principal(_) => None,
        }
    }

    fn login_sub_device(&self, connection: ConnectionId, login: &SubDeviceLogin, now_ms: u64) -> Result<(), ReplyCode> {
        let (gateway_key, limit) = self.gateway_of(connection).ok_or(NOT_IN_TOPOLOGY)?;
        let keys_ok = validate_key(KeyKind::Product, login.product_key.as_bytes()).is_ok()
            && validate_key(KeyKind::Device, login.device_key.as_bytes()).is_ok();
        let identity = Identity {
            product_key: &login.product_key,
            device_key: &login.device_key,
        };
        let key = with_device_key(identity, str::to_owned)
            .filter(|_| keys_ok)
            .unwrap_or_default();
        let product = self.registry.product(&login.product_key);
        let record = self.registry.device(&key);
        let signed = SignedLogin {
            identity,
            identity_part: &login.client_id,
            timestamp: Some(&login.timestamp),
            method: login.method,
            signature: login.sign.unwrap_or(Digest::zeroed(login.method.alg)),
            content: Content::new(&[
                ("clientId", &login.client_id),
                ("deviceKey", &login.device_key),
                ("productKey", &login.product_key),
                ("timestamp", &login.timestamp),
            ]),
        };
        let found = Found {
            product: product.as_ref(),
            record: record.as_ref(),
        };
        let verified = match login.secure_mode {
            2 => verify::verify_triple(&signed, &key, found, now_ms),
            _ => verify::verify_activation(&signed, &key, found, now_ms),
        };
        let address = self.connections.get(&connection).and_then(|c| c.address.clone());
        if self.limits.subject_block(&key, address.as_deref(), now_ms).is_some() {
            return Err(TOO_MANY);
        }
        let (Some(product), Some(record)) = (product, record) else {
            return self.sub_failure(&key, address.as_deref(), now_ms, NOT_IN_TOPOLOGY);
        };
        if product.dialect != Dialect::Enos || record.gateway.as_deref() != Some(gateway_key.as_str()) {
            return self.sub_failure(&key, address.as_deref(), now_ms, NOT_IN_TOPOLOGY);
        }
        let grant = match verified {
            Ok(grant) if login.sign.is_some() => grant,
            // Dynamic activation through a gateway is refused below, once
            // the signature and the device's state are known to be good.
            Err(Refusal::DynamicActivationOff) if login.sign.is_some() => {
                if !record.enabled {
                    return Err(DISABLED);
                }
                return Err(NO_DYNAMIC);
            }
            _ => return self.sub_failure(&key, address.as_deref(), now_ms, SIGN),
        };
        let activation = match lifecycle_check(&record, &grant) {
            Ok(activation) => activation,
            Err(Refusal::Disabled) => return Err(DISABLED),
            Err(_) => return Err(NO_DYNAMIC),
        };
        if login.secure_mode == 3 {
            return Err(NO_DYNAMIC);
        }
        let already = self.online.get(key.as_str()).is_some_and(|c| *c == connection);
        if !already {
            let count = self.connections.get(&connection).map_or(0, |c| match &c.subject {
                Subject::Device { gateway, .. } => gateway.sub_devices.len(),
                Subject::Principal(_) => 0,
            });
            if count >= limit as usize {
                return Err(TOO_MANY);
            }
            self.throw_off(&key, now_ms, "logged_in_elsewhere");
        }
        if let Some(mut conn) = self.connections.get_mut(&connection)
            && let Subject::Device { gateway, .. } = &mut conn.subject
        {
            gateway.add(&key, product);
        }
        self.limits.record_success(&key, address.as_deref());
        self.online.insert(key.as_str().into(), connection);
        if !already {
            self.presence(&key, true, now_ms, None);
        }
        self.carry_out(activation, &key, now_ms);
        Ok(())
    }

    fn sub_failure(&self, key: &str, address: Option<&str>, now_ms: u64, code: ReplyCode) -> Result<(), ReplyCode> {
        let subject = Some(key).filter(|k| !k.is_empty());
        for block in self.limits.record_failure(subject, address, now_ms) {
            tracing::warn!(
                sub_device = key,
                address = address.unwrap_or("-"),
                "too many failed sub-device logins: blocking {} for {} s",
                block.scope,
                block.until_ms.saturating_sub(now_ms).div_ceil(1000)
            );
        }
        self.event(now_ms, "sub_login_refused", Some(key), address, Some(code.1));
        Err(code)
    }

    fn logout_sub_device(&self, connection: ConnectionId, pk: &str, dk: &str, now_ms: u64) -> ReplyCode {
        let Some((gateway_key, _)) = self.gateway_of(connection) else {
            return NOT_IN_TOPOLOGY;
        };
        let Some(key) = with_device_key(
            Identity {
                product_key: pk,
                device_key: dk,
            },
            str::to_owned,
        ) else {
            return NOT_IN_TOPOLOGY;
        };
        let in_topology = self
            .registry
            .with_device(&key, |d| d.gateway.as_deref() == Some(gateway_key.as_str()))
            .unwrap_or(false);
        let removed = self
            .connections
            .get_mut(&connection)
            .map(|mut c| match &mut c.subject {
                Subject::Device { gateway, .. } => gateway.remove(&key),
                Subject::Principal(_) => false,
            })
            .unwrap_or(false);
        if removed && self.online.remove_if(key.as_str(), |_, c| *c == connection).is_some() {
            self.presence(&key, false, now_ms, None);
        }
        if removed || in_topology {
            ReplyCode(200, "")
        } else {
            NOT_IN_TOPOLOGY
        }
    }
}
