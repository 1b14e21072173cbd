//! Topics and filters against a device's default rights: no panic, and an
//! allowed topic or filter never leaves the device's own families.
#![no_main]

use devicegate::acl::{Rights, TopicRules, is_valid_filter, strip_shared};
use devicegate::credentials::{Dialect, Identity};
use libfuzzer_sys::fuzz_target;

const DEV: Identity<'static> = Identity { product_key: "pk", device_key: "dk" };

/// Whether `topic` is at or below one of the device's own family roots
/// (a `#` family also matches its parent level), compared level by level.
fn own(topic: &str) -> bool {
    ["/sys/pk/dk", "/ext/session/pk/dk", "/pk/dk", "/shadow/update/pk/dk", "/shadow/get/pk/dk",
     "/ota/device/inform/pk/dk", "/ota/device/upgrade/pk/dk", "/ext/rrpc", "/broadcast/pk"]
        .iter()
        .any(|root| topic == *root || topic.strip_prefix(root).is_some_and(|rest| rest.starts_with('/')))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for dialect in [Dialect::Enos, Dialect::Aliyun] {
        let rules = TopicRules::device_defaults(dialect);
        for right in [Rights::PUBLISH, Rights::READ] {
            if rules.allows_topic(right, DEV, text) {
                assert!(own(text) && !text.contains(['+', '#']), "{text:?}");
            }
            let _ = rules.sub_device_in(right, text);
        }
        let inner = match strip_shared(text) {
            Some(Ok(inner)) => inner,
            Some(Err(())) => continue,
            None => text,
        };
        if rules.allows_filter(DEV, inner) {
            assert!(is_valid_filter(inner) && own(inner), "{inner:?}");
        }
        let _ = rules.sub_device_in(Rights::SUBSCRIBE, inner);
        let _ = rules.principal_allows_filter(inner);
    }
});
