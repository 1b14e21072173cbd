//! Presented certificates (IDENTITIES.md §3): arbitrary DER through the
//! fingerprint and just-in-time registration, against a product that
//! registers certificates and trusts a CA. Nothing may panic, and a
//! registration is only ever decided for a CN that names keys.
#![no_main]

use std::sync::{Arc, LazyLock};

use devicegate::credentials::{Dialect, Fingerprint, KeyKind, validate_key};
use devicegate::registry::Product;
use devicegate::verify::just_in_time;
use libfuzzer_sys::fuzz_target;

static PRODUCT: LazyLock<Arc<Product>> = LazyLock::new(|| {
    let mut product = Product::new("Ab3dEf9h", Dialect::Enos);
    product.auto_register_certs = true;
    // A CA certificate's bytes as the fuzzer found them: any DER at all.
    product.trusted_cas = vec![include_bytes!("../corpus/certificates/seed-ca.der").to_vec().into()];
    Arc::new(product)
});

fuzz_target!(|der: &[u8]| {
    let fingerprint = Fingerprint::of(der);
    assert_eq!(fingerprint.as_str().len(), 64);
    if let Ok(new) = just_in_time(der, |_| Some(Arc::clone(&PRODUCT)), |_| false, || true, 1_797_000_000_000) {
        assert!(validate_key(KeyKind::Product, new.product_key.as_bytes()).is_ok());
        assert!(validate_key(KeyKind::Device, new.device_key.as_bytes()).is_ok());
        assert_eq!(new.fingerprint, fingerprint);
    }
});
