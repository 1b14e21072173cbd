//! The ACL checks of DESIGN.md §6 run without heap allocation. Counted
//! with an instrumented global allocator; no timing is asserted here
//! (speed is measured in benches/). The allocator counts every thread, so
//! this binary has no libtest harness (whose threads allocate at any
//! time): `main` runs the check alone and panics on failure.

use std::alloc::System;
use std::sync::Arc;

use devicegate::credentials::Dialect;
use devicegate::decision::AccessDecision;
use devicegate::engine::{ConnectDecision, ConnectRequest, ConnectionId, Engine, EngineConfig, Hooks};
use devicegate::registry::{DeviceRecord, Product, Registry};
use devicegate::secret::Secret;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let registry = Arc::new(Registry::new());
    registry.put_product(Product::new("Ab3dEf9h", Dialect::Enos));
    registry.put_device(
        "dev_0001&Ab3dEf9h",
        DeviceRecord::new(Some(Secret::new(*b"S3cretDevice0001"))),
    );
    registry.mark_loaded();
    let engine = Engine::new(registry, EngineConfig::default());
    let request = ConnectRequest::new(
        b"dev_0001|securemode=2,signmethod=hmacsha256,timestamp=1795320550912.803|",
        Some(b"dev_0001&Ab3dEf9h"),
        Some(b"ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec"),
        None,
    );
    assert_eq!(
        engine.handle_connect(ConnectionId(1), &request, 0),
        ConnectDecision::Accept
    );
    let conn = ConnectionId(1);
    // Warm up once: first-touch state is not the hot path, and an allowed
    // filter is remembered (one allocation) the first time it is subscribed.
    let _ = engine.authorize_publish(conn, "/sys/Ab3dEf9h/dev_0001/x", false, 0);
    let filters = [
        "/sys/Ab3dEf9h/dev_0001/thing/service/+",
        "/sys/+/+/#",
        "$share/g//sys/Ab3dEf9h/dev_0001/#",
    ];
    for filter in filters {
        let _ = engine.authorize_subscribe(conn, filter, 0);
    }
    let region = Region::new(GLOBAL);
    let mut allowed = 0;
    for _ in 0..1000 {
        for topic in [
            "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
            "/sys/Ab3dEf9h/dev_0002/thing/x",
        ] {
            allowed += usize::from(engine.authorize_publish(conn, topic, false, 0) == AccessDecision::Allow);
            allowed += usize::from(engine.authorize_delivery(conn, topic) == AccessDecision::Allow);
        }
        for filter in [
            "/sys/Ab3dEf9h/dev_0001/thing/service/+",
            "/sys/+/+/#",
            "$share/g//sys/Ab3dEf9h/dev_0001/#",
        ] {
            allowed += usize::from(engine.authorize_subscribe(conn, filter, 0) == AccessDecision::Allow);
        }
    }
    let stats = region.change();
    assert_eq!(allowed, 3000, "own topics allowed, others denied");
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
    println!("3000 ACL checks, {} allocations", stats.allocations);
    println!("no_alloc: 1 passed, 0 failed");
}
