//! Registry memory per device: inserts N devices with 32-character secrets
//! and typical keys, and reports the heap bytes in use per device, counted
//! by an instrumented allocator. Run:
//! `cargo bench -p devicegate-benches --bench registry_memory`.

use std::alloc::System;

use devicegate::credentials::Dialect;
use devicegate::registry::{DeviceRecord, Product, Registry};
use devicegate::secret::Secret;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    for n in [10_000usize, 100_000, 1_000_000] {
        let region = Region::new(GLOBAL);
        let registry = Registry::new();
        registry.put_product(Product::new("Ab3dEf9hXy", Dialect::Enos));
        for i in 0..n {
            let key = format!("device_{i:08}&Ab3dEf9hXy");
            registry.put_device(
                &key,
                DeviceRecord::new(Some(Secret::new(format!("{i:032x}").into_bytes()))),
            );
        }
        let stats = region.change();
        let live = stats.bytes_allocated as i64 - stats.bytes_deallocated as i64;
        println!(
            "registry_memory/{n}: {} bytes per device ({} devices, {:.1} MiB live)",
            live / n as i64,
            registry.device_count(),
            live as f64 / 1_048_576.0
        );
    }
}
