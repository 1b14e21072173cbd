//! CONNECT fields: `[selector] client_id \0 username \0 password`. The
//! selector picks dialect and binding. Parsing must never panic, and every
//! refusal must map to a refusal outcome. The password also goes through
//! the device-token (JWT) parser, which must refuse every algorithm but
//! EdDSA.
#![no_main]

use devicegate::credentials::{Binding, Dialect, Presented, Username, parse_device_login, parse_username};
use devicegate::decision::{ConnectOutcome, Refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let dialect = if selector & 1 == 0 { Dialect::Enos } else { Dialect::Aliyun };
    let binding = if selector & 2 == 0 { Binding::Strict } else { Binding::Free };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let client_id = parts.next().unwrap_or_default();
    let username = parts.next();
    let password = parts.next();
    if let Some(token) = password
        && let Ok(parsed) = devicegate::access_token::ParsedToken::parse(token)
    {
        assert!(token.len() <= devicegate::access_token::MAX_TOKEN_LEN);
        assert!(!parsed.kid.is_empty());
        assert!(!parsed.signature_valid(&[0; 32]) || token.is_empty());
    }
    match parse_username(username) {
        Ok(Username::Device(identity)) => match parse_device_login(dialect, binding, identity, client_id, password) {
            Ok(login) => {
                let parsed = match login {
                    Presented::DeviceSecret(l) | Presented::ProductSecret(l) => l.identity,
                    Presented::Register(l) => l.identity,
                    Presented::Token(l) => l.identity,
                    other => panic!("a CONNECT's fields parsed as a TLS identity: {other:?}"),
                };
                assert_eq!(parsed, identity);
            }
            Err(e) => assert_ne!(Refusal::from(e).outcome(), ConnectOutcome::Ok),
        },
        Ok(Username::Principal(name)) => assert!(!name.contains('&')),
        Err(e) => assert_eq!(Refusal::from(e).outcome(), ConnectOutcome::BadCredentials),
    }
});
