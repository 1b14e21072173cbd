//! The Aliyun dialect (PROTOCOL.md §6): HMAC logins, dynamic registration
//! (`authType=register|regnwl`) and token logins (`authType=connwl`).

use super::{
    Binding, ClientId, CredentialError, Identity, MAX_TOKEN_LEN, Presented, RegisterLogin, Registration, SignedLogin,
    check_binding, is_joined, required, signature, timestamp,
};
use crate::sign::{Content, SignMethod};

/// The longest `random` accepted for dynamic registration.
const MAX_RANDOM_LEN: usize = 64;

pub(super) fn parse<'a>(
    binding: Binding,
    identity: Identity<'a>,
    client_id: &ClientId<'a>,
    password: Option<&'a [u8]>,
) -> Result<Presented<'a>, CredentialError> {
    let secure_mode = required(client_id, "securemode")?;
    let identity_part = client_id.identity_part;
    let Identity {
        product_key: pk,
        device_key: dn,
    } = identity;
    let Some(auth_type) = client_id.param("authType") else {
        if !matches!(secure_mode, "2" | "3") {
            return Err(CredentialError::BadSecureMode);
        }
        let sdk_form = is_joined(identity_part, pk, b'&', dn) || is_joined(identity_part, pk, b'.', dn);
        check_binding(binding, identity_part, sdk_form)?;
        let method = method(client_id)?;
        let timestamp = timestamp(client_id)?;
        let base = [("clientId", identity_part), ("deviceName", dn), ("productKey", pk)];
        let content = match timestamp {
            Some(ts) => Content::new(&[base[0], base[1], base[2], ("timestamp", ts)]),
            None => Content::new(&base),
        };
        return Ok(Presented::DeviceSecret(SignedLogin {
            identity,
            identity_part,
            timestamp,
            method,
            signature: signature(method, password)?,
            content,
        }));
    };
    if !matches!(secure_mode, "2" | "3" | "-2") {
        return Err(CredentialError::BadSecureMode);
    }
    let kind = match auth_type {
        "register" => Registration::Register,
        "regnwl" => Registration::Regnwl,
        "connwl" => {
            check_binding(Binding::Strict, identity_part, is_joined(identity_part, pk, b'.', dn))?;
            let token = password
                .filter(|p| !p.is_empty())
                .ok_or(CredentialError::PasswordMissing)?;
            if token.len() > MAX_TOKEN_LEN {
                return Err(CredentialError::TokenTooLong);
            }
            return Ok(Presented::Token(super::TokenLogin { identity, token }));
        }
        _ => return Err(CredentialError::UnknownAuthType),
    };
    check_binding(binding, identity_part, is_joined(identity_part, dn, b'.', pk))?;
    let random = required(client_id, "random")?;
    if random.is_empty() || random.len() > MAX_RANDOM_LEN || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CredentialError::BadRandom);
    }
    let method = method(client_id)?;
    Ok(Presented::Register(RegisterLogin {
        identity,
        kind,
        method,
        signature: signature(method, password)?,
        content: Content::new(&[("deviceName", dn), ("productKey", pk), ("random", random)]),
    }))
}

fn method(client_id: &ClientId<'_>) -> Result<SignMethod, CredentialError> {
    SignMethod::parse_aliyun(required(client_id, "signmethod")?).ok_or(CredentialError::UnknownSignMethod)
}

#[cfg(test)]
mod tests {
    use crate::credentials::{
        Binding, CredentialError, Dialect, Identity, Presented, Registration, parse_device_login,
    };
    use crate::sign::verify;

    const ID: Identity<'static> = Identity {
        product_key: "a1B2c3D4e5F",
        device_key: "dev01",
    };

    fn parse(client_id: &'static str, password: &'static str) -> Result<Presented<'static>, CredentialError> {
        parse_device_login(
            Dialect::Aliyun,
            Binding::Strict,
            ID,
            client_id.as_bytes(),
            Some(password.as_bytes()),
        )
    }

    fn signed_ok(l: Presented<'_>, secret: &str) -> bool {
        match l {
            Presented::DeviceSecret(s) => verify(s.method, &s.content, secret.as_bytes(), &s.signature),
            Presented::Register(r) => verify(r.method, &r.content, secret.as_bytes(), &r.signature),
            _ => false,
        }
    }

    #[test]
    fn a1_to_a3() {
        let a1 = parse(
            "a1B2c3D4e5F&dev01|securemode=3,signmethod=hmacsha1,ext=1,_ss=1,lan=Python,_v=1.2.13,timestamp=1700000000|",
            "6050c72c4903195add9f0a6103a0af069b171707",
        );
        assert!(signed_ok(a1.unwrap(), "secret123"));
        let a2 = parse(
            "a1B2c3D4e5F.dev01|securemode=2,signmethod=hmacsha256,timestamp=1700000000000|",
            "97480593f09d3319e87f67de94f87a811c7d2033fb3640bae69db782d79ae346",
        );
        assert!(signed_ok(a2.unwrap(), "secret123"));
        let a3 = parse(
            "a1B2c3D4e5F.dev01|securemode=3,signmethod=hmacmd5|",
            "9a244b29204cc22fbb73504375e4b4ea",
        );
        assert!(signed_ok(a3.unwrap(), "secret123"));
    }

    #[test]
    fn a4_register() {
        let l = parse_device_login(
            Dialect::Aliyun,
            Binding::Strict,
            Identity {
                product_key: "a1B2c3D4e5F",
                device_key: "dev02",
            },
            b"dev02.a1B2c3D4e5F|random=Xq3Lm9Zt2Wv8Rk1,authType=register,securemode=2,signmethod=hmacsha256|",
            Some(b"78b27b9a02a66f3f106af5d7d586dab53fc69c439c27daa2c66eca916f34173c"),
        )
        .unwrap();
        assert!(matches!(l, Presented::Register(r) if r.kind == Registration::Register));
        assert!(signed_ok(l, "ProdSecretAli01"));
    }

    #[test]
    fn connwl_token() {
        let l = parse("a1B2c3D4e5F.dev01|authType=connwl,securemode=-2,_ss=1,ext=3|", "tok").unwrap();
        assert!(matches!(l, Presented::Token(t) if t.token == b"tok"));
        assert_eq!(
            parse("dev01.a1B2c3D4e5F|authType=connwl,securemode=-2|", "tok").unwrap_err(),
            CredentialError::IdentityMismatch
        );
    }

    #[test]
    fn aliyun_refusals() {
        let pw = "97480593f09d3319e87f67de94f87a811c7d2033fb3640bae69db782d79ae346";
        let bad = [
            (
                "a1B2c3D4e5F.dev01|securemode=-2,signmethod=hmacsha256|",
                CredentialError::BadSecureMode,
            ),
            (
                "a1B2c3D4e5F.dev01|securemode=8,signmethod=hmacsha256|",
                CredentialError::BadSecureMode,
            ),
            (
                "a1B2c3D4e5F.dev01|securemode=2,signmethod=sha256|",
                CredentialError::UnknownSignMethod,
            ),
            (
                "dev01|securemode=2,signmethod=hmacsha256|",
                CredentialError::IdentityMismatch,
            ),
            (
                "a1B2c3D4e5F.dev01|authType=what,securemode=2,signmethod=hmacsha256|",
                CredentialError::UnknownAuthType,
            ),
            (
                "dev01.a1B2c3D4e5F|authType=register,securemode=2,signmethod=hmacsha256|",
                CredentialError::MissingParam("random"),
            ),
            (
                "dev01.a1B2c3D4e5F|random=a-b,authType=register,securemode=2,signmethod=hmacsha256|",
                CredentialError::BadRandom,
            ),
            (
                "a1B2c3D4e5F.dev01|signmethod=hmacsha256|",
                CredentialError::MissingParam("securemode"),
            ),
        ];
        for (id, err) in bad {
            assert_eq!(parse(id, pw).unwrap_err(), err, "{id}");
        }
    }
}
