//! The other side of the parser: the CONNECT fields a device sends for a
//! signed login, as the EnOS and Aliyun device SDKs build them. For test
//! clients, examples and `devicegate sign`.

use super::Dialect;
use super::keys::{KeyKind, validate_key};
use crate::sign::{Content, HashAlg, Scheme, SignMethod, compute};

/// The client id, username and password of one login.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceLogin {
    /// The MQTT client id, with the sign parameters.
    pub client_id: String,
    /// `{deviceKey}&{productKey}`.
    pub username: String,
    /// The signature in hex (a secret-derived value: do not log it).
    pub password: String,
}

impl std::fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How to sign a login.
#[derive(Debug, Clone)]
pub struct LoginSpec<'a> {
    /// The CONNECT dialect.
    pub dialect: Dialect,
    /// The product key.
    pub product_key: &'a str,
    /// The device key (EnOS) or device name (Aliyun).
    pub device_key: &'a str,
    /// The device secret, or the product secret for EnOS securemode 3.
    pub secret: &'a str,
    /// The hash.
    pub alg: HashAlg,
    /// The timestamp text the device sends.
    pub timestamp: &'a str,
    /// EnOS `securemode`: 2 signs with the device secret, 3 with the
    /// product secret (dynamic activation). Aliyun signs with 2 only.
    pub secure_mode: u8,
}

/// Signs a login as a device SDK would; the error says which input is wrong.
pub fn sign_device_login(spec: &LoginSpec<'_>) -> Result<DeviceLogin, String> {
    let (pk, dk, ts) = (spec.product_key, spec.device_key, spec.timestamp);
    validate_key(KeyKind::Product, pk.as_bytes()).map_err(|e| format!("product key `{pk}`: {e}"))?;
    validate_key(KeyKind::Device, dk.as_bytes()).map_err(|e| format!("device key `{dk}`: {e}"))?;
    let alg = spec.alg;
    let username = format!("{dk}&{pk}");
    let (client_id, password) = match spec.dialect {
        Dialect::Enos => {
            if !matches!(spec.secure_mode, 2 | 3) {
                return Err(format!("securemode {} is not 2 or 3", spec.secure_mode));
            }
            let method = SignMethod {
                alg,
                scheme: Scheme::AppendSecret,
            };
            let content = Content::new(&[
                ("clientId", dk),
                ("deviceKey", dk),
                ("productKey", pk),
                ("timestamp", ts),
            ]);
            let client_id = format!(
                "{dk}|securemode={},signmethod={},timestamp={ts}|",
                spec.secure_mode,
                alg.name()
            );
            (
                client_id,
                compute(method, &content, spec.secret.as_bytes()).to_hex_upper(),
            )
        }
        Dialect::Aliyun => {
            if spec.secure_mode != 2 {
                return Err("securemode 3 is EnOS dynamic activation; Aliyun signs with 2".to_owned());
            }
            let method = SignMethod {
                alg,
                scheme: Scheme::Hmac,
            };
            let identity = format!("{pk}.{dk}");
            let content = Content::new(&[
                ("clientId", &identity),
                ("deviceName", dk),
                ("productKey", pk),
                ("timestamp", ts),
            ]);
            let client_id = format!("{identity}|securemode=2,signmethod=hmac{},timestamp={ts}|", alg.name());
            (
                client_id,
                compute(method, &content, spec.secret.as_bytes()).to_hex_lower(),
            )
        }
    };
    Ok(DeviceLogin {
        client_id,
        username,
        password,
    })
}
