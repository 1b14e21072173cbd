//! The EnOS dialect (PROTOCOL.md §3): `{identity}|securemode=2|3,signmethod=…,timestamp=…|`.

use super::{
    Binding, ClientId, CredentialError, Identity, Presented, SignedLogin, check_binding, is_joined, required,
    signature, timestamp,
};
use crate::sign::{Content, SignMethod};

pub(super) fn parse<'a>(
    binding: Binding,
    identity: Identity<'a>,
    client_id: &ClientId<'a>,
    password: Option<&'a [u8]>,
) -> Result<Presented<'a>, CredentialError> {
    let secure_mode = required(client_id, "securemode")?;
    let method_name = required(client_id, "signmethod")?;
    let timestamp = timestamp(client_id)?.ok_or(CredentialError::MissingParam("timestamp"))?;
    let identity_part = client_id.identity_part;
    let Identity {
        product_key: pk,
        device_key: dk,
    } = identity;
    let sdk_form =
        identity_part == dk || is_java_extra_info_form(identity_part, dk) || is_joined(identity_part, pk, b'.', dk);
    check_binding(binding, identity_part, sdk_form)?;
    let method = SignMethod::parse_enos(method_name).ok_or(CredentialError::UnknownSignMethod)?;
    let signed = SignedLogin {
        identity,
        identity_part,
        timestamp: Some(timestamp),
        method,
        signature: signature(method, password)?,
        content: Content::new(&[
            ("clientId", identity_part),
            ("deviceKey", dk),
            ("productKey", pk),
            ("timestamp", timestamp),
        ]),
    };
    match secure_mode {
        "2" => Ok(Presented::DeviceSecret(signed)),
        "3" => Ok(Presented::ProductSecret(signed)),
        _ => Err(CredentialError::BadSecureMode),
    }
}

/// `{dk}{…}`, as Java SDK 2.3 sends it.
fn is_java_extra_info_form(identity_part: &str, dk: &str) -> bool {
    identity_part.len() >= dk.len() + 2
        && identity_part.starts_with(dk)
        && identity_part.as_bytes().get(dk.len()) == Some(&b'{')
        && identity_part.ends_with('}')
}

#[cfg(test)]
mod tests {
    use crate::credentials::{
        Binding, CredentialError, Dialect, Identity, Presented, Username, parse_device_login, parse_username,
    };
    use crate::decision::{ConnectOutcome, Refusal};
    use crate::sign::{HashAlg, verify};

    const E3_ID: &str = "dev_0001|securemode=2,signmethod=hmacsha256,timestamp=1795320550912.803|";
    const E3_PW: &str = "ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec";

    fn login<'a>(
        binding: Binding,
        client_id: &'a str,
        username: &'a str,
        password: &'a str,
    ) -> Result<Presented<'a>, CredentialError> {
        let Username::Device(identity) = parse_username(Some(username.as_bytes()))? else {
            panic!("principal")
        };
        parse_device_login(
            Dialect::Enos,
            binding,
            identity,
            client_id.as_bytes(),
            Some(password.as_bytes()),
        )
    }

    fn verifies(l: &Presented<'_>, secret: &str) -> bool {
        match l {
            Presented::DeviceSecret(s) | Presented::ProductSecret(s) => {
                verify(s.method, &s.content, secret.as_bytes(), &s.signature)
            }
            _ => false,
        }
    }

    #[test]
    fn e3_e8_parse_and_verify_under_strict_binding() {
        let rows = [
            (E3_ID, E3_PW),
            (E3_ID, &E3_PW.to_ascii_uppercase()[..]),
            (
                "dev_0001|securemode=2,signmethod=hmacsha1,timestamp=1795320550912.803|",
                "A7EFB031613B9C77F55B63C3330BAB1543FCD839",
            ),
            (
                "dev_0001|securemode=2,signmethod=hmacsha1,timestamp=1700000000000|",
                "B66E3AFFEFAA70A6EC6B262A041DC91E05F0FE5F",
            ),
            (
                "dev_0001|securemode=2,signmethod=hmacmd5,timestamp=1700000000000|",
                "dd34e79f4477f8743fdf29b488f382ca",
            ),
            (
                "Ab3dEf9h.dev_0001|securemode=2,signmethod=sha256,timestamp=2524608000000|",
                "0E75DE5465D6FD737C1AC7471F7E384F4F0ED45A7F4AD8B1F8B057C89B3BEF57",
            ),
            (
                "dev_0001{ip=192.168.1.20,version=enos-mqtt-sdk-2.3.0,compress=DEFAULT}|securemode=2,signmethod=sha256,timestamp=1600000000000|",
                "b8e37e43f49d5e3228a5c83233e889392bd2b60085bb4f01bc6540a018edc2f3",
            ),
        ];
        for (id, pw) in rows {
            let l = login(Binding::Strict, id, "dev_0001&Ab3dEf9h", pw).unwrap();
            assert!(matches!(l, Presented::DeviceSecret(_)), "{id}");
            assert!(verifies(&l, "S3cretDevice0001"), "{id}");
            assert!(!verifies(&l, "S3cretDevice0002"), "{id}");
        }
    }

    #[test]
    fn e9_is_a_product_secret_login() {
        let l = login(
            Binding::Strict,
            "dev_0002|securemode=3,signmethod=hmacsha256,timestamp=1795320550912.803|",
            "dev_0002&Ab3dEf9h",
            "4f4edbc363554b3d3f96bc4466c7356e6ee142bda4d65d1b10e6e139228acde8",
        )
        .unwrap();
        assert!(matches!(l, Presented::ProductSecret(_)));
        assert!(verifies(&l, "ProdSecretXYZ123"));
    }

    #[test]
    fn e1_needs_free_binding_and_tolerates_spaces() {
        let pw = "B99032D49C706F7B27B22AB5CD2DD3C56A31E1BCBBC83BA0A2A6BB3272FBB166";
        let id = "123456|securemode=2,signmethod=sha256,timestamp=1548753362502|";
        assert_eq!(
            login(Binding::Strict, id, "test&654321", pw).unwrap_err(),
            CredentialError::IdentityMismatch
        );
        assert!(verifies(
            &login(Binding::Free, id, "test&654321", pw).unwrap(),
            "abcdefg"
        ));
        let spaced = "123456|securemode=2, signmethod=sha256 , timestamp=1548753362502|";
        assert!(verifies(
            &login(Binding::Free, spaced, "test&654321", pw).unwrap(),
            "abcdefg"
        ));
    }

    #[test]
    fn refusals_of_section_10_1() {
        let user = "dev_0001&Ab3dEf9h";
        let outcome = |id: &str, u: &str, pw: &str| {
            let Username::Device(identity) =
                parse_username(Some(u.as_bytes())).map_err(|e| Refusal::from(e).outcome())?
            else {
                return Err(ConnectOutcome::BadCredentials);
            };
            parse_device_login(
                Dialect::Enos,
                Binding::Strict,
                identity,
                id.as_bytes(),
                Some(pw.as_bytes()),
            )
            .map(|_| ())
            .map_err(|e| Refusal::from(e).outcome())
        };
        assert_eq!(outcome(E3_ID, user, &E3_PW[..63]), Err(ConnectOutcome::BadCredentials));
        assert_eq!(
            outcome(E3_ID, "dev_0001&Ab3dEf9h&x", E3_PW),
            Err(ConnectOutcome::BadCredentials)
        );
        assert_eq!(
            outcome(&format!("{E3_ID}x"), user, E3_PW),
            Err(ConnectOutcome::BadClientId)
        );
        assert_eq!(
            outcome(
                "dev_0001|securemode=2,signmethod=hmacsha256,timestamp=1,timestamp=2|",
                user,
                E3_PW
            ),
            Err(ConnectOutcome::BadClientId)
        );
        assert_eq!(
            outcome(&E3_ID.replace("dev_0001|", "dev_0009|"), user, E3_PW),
            Err(ConnectOutcome::BadClientId)
        );
        assert_eq!(
            outcome(&E3_ID.replace("hmacsha256", "sha512"), user, E3_PW),
            Err(ConnectOutcome::BadCredentials)
        );
        assert_eq!(
            outcome(&E3_ID.replace("securemode=2", "securemode=4"), user, E3_PW),
            Err(ConnectOutcome::BadClientId)
        );
        assert_eq!(
            outcome("dev_0001|securemode=2,signmethod=sha256|", user, E3_PW),
            Err(ConnectOutcome::BadClientId)
        );
        assert_eq!(
            outcome(E3_ID, "%channel%&Ab3dEf9h", E3_PW),
            Err(ConnectOutcome::BadCredentials)
        );
        assert_eq!(
            outcome(E3_ID, user, &"g".repeat(64)),
            Err(ConnectOutcome::BadCredentials)
        );
        assert_eq!(outcome(E3_ID, user, ""), Err(ConnectOutcome::BadCredentials));
    }

    #[test]
    fn sha1_password_length_follows_method() {
        let l = login(Binding::Strict, E3_ID, "dev_0001&Ab3dEf9h", E3_PW).unwrap();
        let Presented::DeviceSecret(s) = l else { panic!() };
        assert_eq!(s.method.alg, HashAlg::Sha256);
        assert_eq!(
            s.identity,
            Identity {
                product_key: "Ab3dEf9h",
                device_key: "dev_0001"
            }
        );
        assert_eq!(s.timestamp, Some("1795320550912.803"));
    }
}
