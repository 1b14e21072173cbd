//! `devicegate sign`: the CONNECT fields a device would send, so anyone can
//! try a login with mosquitto_pub. Needs no database.

use anyhow::Context as _;
use serde_json::json;

use crate::args::{DialectArg, SignArgs};
use crate::output::Output;
use devicegate::credentials::{KeyKind, validate_key};
use devicegate::sign::{Content, HashAlg, Scheme, SignMethod, compute};

/// The client id, username and password for `args`.
pub fn credentials(args: &SignArgs, now_ms: u64) -> anyhow::Result<(String, String, String)> {
    let (pk, dk) = (&args.product_key, &args.device_key);
    validate_key(KeyKind::Product, pk.as_bytes()).with_context(|| format!("product key `{pk}`"))?;
    validate_key(KeyKind::Device, dk.as_bytes()).with_context(|| format!("device key `{dk}`"))?;
    let alg = HashAlg::from_name(&args.method)
        .with_context(|| format!("unknown method `{}` (expected sha256, sha1 or md5)", args.method))?;
    let timestamp = args.timestamp.clone().unwrap_or_else(|| now_ms.to_string());
    let username = format!("{dk}&{pk}");
    let (client_id, password) = match args.dialect {
        DialectArg::Enos => {
            let method = SignMethod {
                alg,
                scheme: Scheme::AppendSecret,
            };
            let content = Content::new(&[
                ("clientId", dk),
                ("deviceKey", dk),
                ("productKey", pk),
                ("timestamp", &timestamp),
            ]);
            let client_id = format!(
                "{dk}|securemode={},signmethod={},timestamp={timestamp}|",
                args.secure_mode,
                alg.name()
            );
            (
                client_id,
                compute(method, &content, args.secret.as_bytes()).to_hex_upper(),
            )
        }
        DialectArg::Aliyun => {
            anyhow::ensure!(
                args.secure_mode == 2,
                "--secure-mode 3 is EnOS dynamic activation; Aliyun signs with 2"
            );
            let method = SignMethod {
                alg,
                scheme: Scheme::Hmac,
            };
            let identity = format!("{pk}.{dk}");
            let content = Content::new(&[
                ("clientId", &identity),
                ("deviceName", dk),
                ("productKey", pk),
                ("timestamp", &timestamp),
            ]);
            let client_id = format!(
                "{identity}|securemode=2,signmethod=hmac{},timestamp={timestamp}|",
                alg.name()
            );
            (
                client_id,
                compute(method, &content, args.secret.as_bytes()).to_hex_lower(),
            )
        }
    };
    Ok((client_id, username, password))
}

pub fn run(out: &Output, args: &SignArgs) -> anyhow::Result<()> {
    let (client_id, username, password) = credentials(args, devicegate::store::now_ms())?;
    let topic = format!("/sys/{}/{}/thing/measurepoint/post", args.product_key, args.device_key);
    out.done(
        json!({"client_id": client_id, "username": username, "password": password}),
        &format!(
            "client id: {client_id}\nusername:  {username}\npassword:  {password}\n\n\
             mosquitto_pub -V mqttv311 -i '{client_id}' -u '{username}' -P '{password}' -t '{topic}' -m '{{}}'"
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dialect: DialectArg, method: &str, ts: &str, secure_mode: u8) -> SignArgs {
        SignArgs {
            product_key: "Ab3dEf9h".into(),
            device_key: "dev_0001".into(),
            secret: "S3cretDevice0001".into(),
            dialect,
            method: method.into(),
            timestamp: Some(ts.into()),
            secure_mode,
        }
    }

    #[test]
    fn enos_matches_protocol_vectors() {
        let (id, user, pw) = credentials(&args(DialectArg::Enos, "sha1", "1700000000000", 2), 0).unwrap();
        assert_eq!(id, "dev_0001|securemode=2,signmethod=sha1,timestamp=1700000000000|");
        assert_eq!(user, "dev_0001&Ab3dEf9h");
        assert_eq!(pw, "B66E3AFFEFAA70A6EC6B262A041DC91E05F0FE5F");
        let (_, _, pw) = credentials(&args(DialectArg::Enos, "md5", "1700000000000", 2), 0).unwrap();
        assert_eq!(pw, "DD34E79F4477F8743FDF29B488F382CA");
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(credentials(&args(DialectArg::Enos, "sha512", "1", 2), 0).is_err());
        let mut a = args(DialectArg::Enos, "sha256", "1", 2);
        a.device_key = "a/b".into();
        assert!(credentials(&a, 0).unwrap_err().to_string().contains("device key"));
        assert!(credentials(&args(DialectArg::Aliyun, "sha256", "1", 3), 0).is_err());
    }
}
