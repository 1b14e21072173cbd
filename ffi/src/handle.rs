//! The opaque engine handle C holds, and how a call finds the engine
//! behind it. A freed handle's memory is never returned to the allocator
//! (a few hundred bytes per engine ever freed), so a call made with it
//! afterwards is recognised and refused instead of reading freed memory.

use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use devicegate::engine::{ConnectionId, Effect, Hooks};
use devicegate::sync::Authenticator;

use crate::guard::Failure;
use crate::sessions::{Sessions, Subscriber};

/// The engine behind a C handle. Created by `dg_engine_new`, destroyed by
/// `dg_engine_free`; safe to use from several threads at once.
#[allow(non_camel_case_types)]
pub struct dg_engine {
    state: AtomicU64,
    gate: ManuallyDrop<Gate>,
}

const LIVE: u64 = 0x6465_7669_6365_6761;
const FREED: u64 = 0x6672_6565_6421_2121;

/// Freed handles, kept reachable so leak checkers see no lost block.
static TOMBSTONES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// How long a session accepted by `auth_on_register` may wait for the
/// broker's `on_register` before the engine counts it as gone.
const CONFIRM_WITHIN_MS: u64 = 30_000;

/// How often polling advances the engine's timers.
const TICK_EVERY_MS: u64 = 100;

/// An effect addressed to a broker session.
#[derive(Debug)]
pub(crate) struct SessionEffect {
    pub subscriber: Subscriber,
    pub effect: Effect,
}

/// Everything one engine handle owns.
#[derive(Debug)]
pub(crate) struct Gate {
    pub auth: Authenticator,
    pub sessions: Sessions,
    ready: Mutex<VecDeque<SessionEffect>>,
    last_tick_ms: AtomicU64,
}

impl dg_engine {
    /// A new handle over `auth`, for C to own.
    pub(crate) fn create(auth: Authenticator) -> *mut dg_engine {
        Box::into_raw(Box::new(dg_engine {
            state: AtomicU64::new(LIVE),
            gate: ManuallyDrop::new(Gate {
                auth,
                sessions: Sessions::default(),
                ready: Mutex::new(VecDeque::new()),
                last_tick_ms: AtomicU64::new(0),
            }),
        }))
    }

    /// The engine behind `handle`, or why there is none.
    ///
    /// # Safety
    /// `handle` must be null or a pointer returned by `dg_engine_new`
    /// (freed or not), and not be freed while the returned reference lives.
    pub(crate) unsafe fn gate<'a>(handle: *const dg_engine) -> Result<&'a Gate, Failure> {
        if handle.is_null() {
            return Err(Failure::bad_argument("the engine handle is NULL"));
        }
        if !handle.is_aligned() {
            return Err(Failure::bad_argument("the engine handle is not a devicegate engine"));
        }
        // SAFETY: per the contract, `handle` came from `dg_engine_new`, and
        // its memory is never deallocated, so reading it is sound even after
        // `dg_engine_free`.
        let engine = unsafe { &*handle };
        match engine.state.load(Ordering::Acquire) {
            LIVE => Ok(&engine.gate),
            FREED => Err(Failure::bad_argument("the engine handle was freed")),
            _ => Err(Failure::bad_argument("the engine handle is not a devicegate engine")),
        }
    }

    /// Stops and drops the engine behind `handle`, keeping the handle's own
    /// memory as a tombstone.
    ///
    /// # Safety
    /// As for [`dg_engine::gate`]; no other call may be using the engine.
    pub(crate) unsafe fn destroy(handle: *mut dg_engine) -> Result<(), Failure> {
        // SAFETY: passed on from the caller.
        unsafe { Self::gate(handle) }?;
        // SAFETY: `gate` checked the pointer; the engine is exclusively ours
        // by the contract.
        let engine = unsafe { &mut *handle };
        if engine
            .state
            .compare_exchange(LIVE, FREED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Failure::bad_argument("the engine handle was freed"));
        }
        engine.gate.auth.shutdown();
        // SAFETY: the state is FREED, so `gate` is never handed out again.
        unsafe { ManuallyDrop::drop(&mut engine.gate) };
        if let Ok(mut tombstones) = TOMBSTONES.lock() {
            tombstones.push(handle as usize);
        }
        Ok(())
    }
}

impl Gate {
    /// Advances the engine's timers (at most every [`TICK_EVERY_MS`]), ends
    /// sessions the broker never confirmed, and moves the engine's effects
    /// to the ready queue, addressed to sessions. Effects for connections
    /// no longer bound are dropped: the broker already replaced or closed
    /// those sessions.
    pub fn advance(&self, now_ms: u64) {
        let last = self.last_tick_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= TICK_EVERY_MS
            && self
                .last_tick_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            for lost in self
                .sessions
                .unconfirmed_since(now_ms.saturating_sub(CONFIRM_WITHIN_MS))
            {
                tracing::warn!(
                    client_id = &*lost.client_id,
                    "devicegate: the broker never registered an accepted session; counting it as gone"
                );
                self.client_left(&lost.mountpoint, &lost.client_id, now_ms);
            }
            self.auth.handle_tick(now_ms);
        }
        while let Some(effect) = self.auth.poll_effect() {
            let connection = match &effect {
                Effect::Publish { connection, .. } | Effect::Kick { connection, .. } => *connection,
            };
            match self.sessions.subscriber(connection) {
                Some(subscriber) => {
                    if let Ok(mut ready) = self.ready.lock() {
                        ready.push_back(SessionEffect { subscriber, effect });
                    }
                }
                None => tracing::debug!(
                    connection = connection.0,
                    "devicegate: effect for a closed session dropped"
                ),
            }
        }
    }

    /// Runs `take` on the oldest ready effect; it leaves the queue only if
    /// `take` returns true.
    pub fn with_ready_effect<T>(&self, take: impl FnOnce(&SessionEffect) -> (bool, T)) -> Option<T> {
        let mut ready = self.ready.lock().ok()?;
        let (taken, answer) = take(ready.front()?);
        if taken {
            ready.pop_front();
        }
        Some(answer)
    }

    /// The session `{mountpoint, client_id}` ended: the engine takes its
    /// connection offline. False if the session is not one devicegate knows.
    pub fn client_left(&self, mountpoint: &str, client_id: &str, now_ms: u64) -> bool {
        match self.sessions.unbind(mountpoint, client_id) {
            Some(connection) => {
                self.auth.handle_disconnect(connection, now_ms);
                true
            }
            None => false,
        }
    }

    /// The connection bound to `{mountpoint, client_id}`.
    pub fn connection(&self, mountpoint: &str, client_id: &str) -> Option<ConnectionId> {
        self.sessions.find(mountpoint, client_id)
    }
}
