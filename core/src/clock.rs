//! The clock and the ticker: the only places devicegate reads the time.
//! The engine never does (it takes `now_ms` as input); adapters call
//! [`now_ms`] and keep timers moving with [`spawn_ticker`], with or
//! without the `store` feature.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Milliseconds since the UNIX epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts a thread that calls `tick` on `target` every `every` while
/// anything else still holds `target`, then ends: how broker adapters
/// advance the engine's timers and deliver effects when no traffic does.
pub fn spawn_ticker<T: Send + Sync + 'static>(
    target: &Arc<T>,
    every: Duration,
    tick: impl Fn(&T) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let target = Arc::downgrade(target);
    std::thread::Builder::new()
        .name("devicegate-tick".to_owned())
        .spawn(move || {
            while let Some(target) = target.upgrade() {
                tick(&target);
                drop(target);
                std::thread::sleep(every);
            }
        })
}
