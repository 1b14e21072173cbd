//! `devicegate sign`: the CONNECT fields a device would send, so anyone can
//! try a login with mosquitto_pub. Needs no database.

use anyhow::Context as _;
use serde_json::json;

use crate::args::{DialectArg, SignArgs};
use crate::output::Output;
use devicegate::credentials::{Dialect, LoginSpec, sign_device_login};
use devicegate::sign::HashAlg;

/// The client id, username and password for `args`.
pub fn credentials(args: &SignArgs, now_ms: u64) -> anyhow::Result<(String, String, String)> {
    let alg = HashAlg::from_name(&args.method)
        .with_context(|| format!("unknown method `{}` (expected sha256, sha1 or md5)", args.method))?;
    let timestamp = args.timestamp.clone().unwrap_or_else(|| now_ms.to_string());
    let login = sign_device_login(&LoginSpec {
        dialect: match args.dialect {
            DialectArg::Enos => Dialect::Enos,
            DialectArg::Aliyun => Dialect::Aliyun,
        },
        product_key: &args.product_key,
        device_key: &args.device_key,
        secret: &args.secret,
        alg,
        timestamp: &timestamp,
        secure_mode: args.secure_mode,
    })
    .map_err(anyhow::Error::msg)?;
    Ok((login.client_id, login.username, login.password))
}

pub fn run(out: &Output, args: &SignArgs) -> anyhow::Result<()> {
    let (client_id, username, password) = credentials(args, devicegate::clock::now_ms())?;
    let topic = format!("/sys/{}/{}/thing/measurepoint/post", args.product_key, args.device_key);
    out.done(
        json!({"client_id": client_id, "username": username, "password": password}),
        &format!(
            "client id: {client_id}\nusername:  {username}\npassword:  {password}\n\n\
             mosquitto_pub -h '{}' -p {} -V mqttv311 -i '{client_id}' -u '{username}' -P '{password}' -t '{topic}' -m '{{}}'",
            args.host, args.port
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
            host: "127.0.0.1".into(),
            port: 1883,
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
