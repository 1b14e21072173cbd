//! `devicegate serve` as a process on a free port, and an HTTP client for
//! it (both in `devicegate_test_support::service`, shared with the broker
//! tests). Every test drives the real binary against a real database.

use std::path::Path;

use serde_json::Value;

pub use devicegate_test_support::service::Service;

/// Runs the CLI and returns its JSON (a thin alias, for reading).
pub fn cli(url: &str, args: &[&str]) -> Value {
    devicegate_test_support::cli(url, args)
}

/// A string field of `v`, or a failed test.
#[track_caller]
pub fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
        .to_owned()
}

/// A path inside `dir` as a `&str`-friendly `String`.
pub fn path_in(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}
