//! The Mosquitto plugin's options: `key \0 value \0 key \0 value …`, each
//! key without its `plugin_opt_` prefix, as the broker hands them over
//! (invalid UTF-8 replaced, as the plugin's `option_pairs` does). Parsing
//! never panics; a configuration it accepts has a database URL, and every
//! refusal names the option (`plugin_opt_…`) it refuses.
#![no_main]

use devicegate_mosquitto_options::Options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fields: Vec<String> = data
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let pairs = fields.chunks(2).map(|pair| match pair {
        [key, value] => (key.as_str(), value.as_str()),
        [key] => (key.as_str(), ""),
        _ => unreachable!("chunks(2) yields one or two fields"),
    });
    match Options::parse(pairs) {
        Ok(options) => assert!(!options.database_url.is_empty(), "{options:?}"),
        Err(message) => assert!(message.contains("plugin_opt_"), "{message}"),
    }
});
