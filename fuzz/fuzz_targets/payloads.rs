//! Gateway `combine.*` requests and activation replies: never panic; a
//! refused request always carries a documented reply code.
#![no_main]

use devicegate::engine::{GatewayOp, GatewayRequest, parse_activation_reply, parse_gateway_request};
use libfuzzer_sys::fuzz_target;

const CODES: [u32; 5] = [460, 1008, 1220, 1251, 1260];

fuzz_target!(|data: &[u8]| {
    let _ = parse_activation_reply(data);
    for op in [GatewayOp::Login, GatewayOp::BatchLogin, GatewayOp::Logout] {
        match parse_gateway_request(op, data) {
            Ok((_, GatewayRequest::Login(logins))) => assert!(logins.len() <= 50),
            Ok((_, GatewayRequest::Logout { .. })) => assert_eq!(op, GatewayOp::Logout),
            Err((_, code)) => assert!(CODES.contains(&code.0), "{code:?}"),
        }
    }
});
