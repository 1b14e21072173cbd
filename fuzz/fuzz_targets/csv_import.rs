//! `devicegate device import` files: arbitrary bytes as a CSV file through
//! `store::read_import`. Never panics; every row it accepts has a device key
//! that registration accepts, and every refused row names its line.
#![no_main]

use devicegate::credentials::{KeyKind, validate_key};
use devicegate::store::read_import;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = read_import(data) else { return };
    for row in &file.rows {
        assert!(row.line >= 2, "{row:?}");
        assert!(
            validate_key(KeyKind::Device, row.device_key.as_bytes()).is_ok(),
            "{row:?}"
        );
        if let Some((pk, dk)) = &row.gateway {
            assert!(!pk.is_empty() && !dk.is_empty() && !dk.contains('/'), "{row:?}");
        }
    }
    for refused in &file.refused {
        assert!(refused.line >= 1, "{refused:?}");
        assert!(!refused.reason.is_empty(), "{refused:?}");
    }
});
