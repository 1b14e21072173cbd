//! The broker's functions resolve when Mosquitto loads the plugin. The
//! cdylib leaves them undefined by default; this crate's test binaries,
//! which never call them, must link without them too.
fn main() {
    println!("cargo:rustc-link-arg=-Wl,--unresolved-symbols=ignore-all");
}
