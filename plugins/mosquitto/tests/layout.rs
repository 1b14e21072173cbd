//! The hand-written `#[repr(C)]` mirrors in `src/ffi.rs` match the real
//! `mosquitto_broker.h` / `mosquitto_plugin.h` (Debian package
//! `mosquitto-dev`): a C file compiled against them prints every struct's
//! size and field offsets, and each is compared with Rust's.

use std::mem::{offset_of, size_of};
use std::process::Command;

use devicegate_mosquitto::ffi::*;

/// `(C expression, Rust value)` for every size and offset devicegate relies on.
fn rust_layout() -> Vec<(&'static str, usize)> {
    macro_rules! layout {
        ($ty:ident { $($field:ident),* }) => {{
            let mut v = vec![(concat!("sizeof(struct ", stringify!($ty), ")"), size_of::<$ty>())];
            $(v.push((concat!("offsetof(struct ", stringify!($ty), ", ", stringify!($field), ")"), offset_of!($ty, $field)));)*
            v
        }};
    }
    [
        layout!(mosquitto_opt { key, value }),
        layout!(mosquitto_evt_basic_auth {
            future,
            client,
            username,
            password,
            future2
        }),
        layout!(mosquitto_evt_psk_key {
            future,
            client,
            hint,
            identity,
            key,
            max_key_len,
            future2
        }),
        layout!(mosquitto_evt_acl_check {
            future,
            client,
            topic,
            payload,
            properties,
            access,
            payloadlen,
            qos,
            retain,
            future2
        }),
        layout!(mosquitto_evt_message {
            future,
            client,
            topic,
            payload,
            properties,
            reason_string,
            payloadlen,
            qos,
            reason_code,
            retain,
            future2
        }),
        layout!(mosquitto_evt_disconnect {
            future,
            client,
            reason,
            future2
        }),
        layout!(mosquitto_evt_tick {
            future,
            now_ns,
            next_ns,
            now_s,
            next_s,
            future2
        }),
        layout!(mosquitto_evt_reload {
            future,
            options,
            option_count,
            future2
        }),
    ]
    .concat()
}

#[test]
fn struct_layouts_match_the_broker_headers() {
    let header = "/usr/include/mosquitto_broker.h";
    assert!(
        std::path::Path::new(header).exists(),
        "{header} is missing: install the headers with `apt-get install mosquitto-dev libmosquitto-dev` \
         (scripts/test.sh does this)"
    );
    let layout = rust_layout();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("layout.c");
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <mosquitto_broker.h>\n#include <mosquitto_plugin.h>\nint main(void) {\n",
    );
    for (expr, _) in &layout {
        c.push_str(&format!("    printf(\"%zu\\n\", (size_t)({expr}));\n"));
    }
    c.push_str("    return 0;\n}\n");
    std::fs::write(&source, c).unwrap();
    let exe = dir.path().join("layout");
    let cc = Command::new("cc")
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .output()
        .expect("a C compiler (cc); install build-essential");
    assert!(
        cc.status.success(),
        "compiling against the headers failed:\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    let c_values: Vec<usize> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(c_values.len(), layout.len());
    let mismatches: Vec<String> = layout
        .iter()
        .zip(&c_values)
        .filter(|((_, rust), c)| rust != *c)
        .map(|((expr, rust), c)| format!("{expr}: C {c}, Rust {rust}"))
        .collect();
    assert!(mismatches.is_empty(), "layout mismatches:\n{}", mismatches.join("\n"));
    // The sizes BROKERS.md §1.4 documents, as a cross-check of the header itself.
    let size = |name: &str| layout.iter().find(|(e, _)| *e == name).map(|(_, v)| *v).unwrap();
    assert_eq!(size("sizeof(struct mosquitto_evt_basic_auth)"), 64);
    assert_eq!(size("sizeof(struct mosquitto_evt_acl_check)"), 88);
    assert_eq!(size("sizeof(struct mosquitto_evt_message)"), 88);
    assert_eq!(size("sizeof(struct mosquitto_evt_tick)"), 72);
    assert_eq!(size("sizeof(struct mosquitto_evt_psk_key)"), 80);
}
