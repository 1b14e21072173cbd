//! The background task's writer: the engine's state changes into the
//! database, through the spool file whenever the database will not take
//! them, with back-off and one clear log line per attempt.
//!
//! Healthy: each flush takes the engine's queue and applies it directly.
//! Once a condition of the database stops a write (see
//! `store/condition.rs`), everything pending goes to the spool, in order,
//! and later writes follow it there, so memory stays bounded however long
//! the outage. Attempts back off from 0.5 s to 1 s; each reopens the
//! database first (a read-only or replaced SQLite file, a Postgres standby
//! after failover: old connections would keep failing), replays the spool,
//! and then the direct path resumes. The change feed reads through the same
//! connection pool, so a database that is back is followed again within a
//! second (found by the soak: with attempts 8 s apart, devices disabled just
//! after a Postgres restart were kicked seconds late). What backs off to a
//! minute is the log line, so an hour-long outage logs about 60 lines.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::log_gate::LogGate;
use crate::clock::now_ms;
use crate::engine::{Engine, StoreWrite};
use crate::spool::Spool;
use crate::store::{ConditionKind, Store, StoreError, WriteOutcome, explain};

/// The first wait after a failed attempt; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between attempts (a connection refused costs little).
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// An outage in progress.
#[derive(Debug)]
struct Outage {
    since: Instant,
    kind: ConditionKind,
    attempts: u32,
    backoff: Duration,
    next_attempt: Instant,
    /// Which attempts are logged.
    log: LogGate,
}

impl Outage {
    fn new(now: Instant, kind: ConditionKind) -> Outage {
        Outage {
            since: now,
            kind,
            attempts: 0,
            backoff: FIRST_BACKOFF / 2,
            next_attempt: now,
            log: LogGate::default(),
        }
    }
}

/// The writer's state between flushes.
#[derive(Debug)]
pub(super) struct Writer {
    spool: Option<Spool>,
    outage: Option<Outage>,
    /// Reopen the database before the next attempt.
    reopen: bool,
    /// The database was reopened: the registry must be reconciled with it.
    reopened: bool,
    /// The SQLite file was replaced or deleted: its `-wal` and `-shm`
    /// (as `sqlite_files` names them) belong to the old file.
    stale: Option<Vec<PathBuf>>,
    events_dropped: u64,
}

/// What a flush leaves behind.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Everything pending is in the database.
    All,
    /// Writes wait (in the spool or in memory) for a later attempt.
    Waiting,
}

impl Writer {
    /// A writer with `spool` (none: pending writes stay in memory).
    pub(super) fn new(spool: Option<Spool>) -> Writer {
        if let Some(spool) = &spool
            && !spool.is_empty()
        {
            tracing::info!(
                "devicegate replays {} state changes an earlier run kept in {}",
                spool.len(),
                spool.path().display()
            );
        }
        Writer {
            spool,
            outage: None,
            reopen: false,
            reopened: false,
            stale: None,
            events_dropped: 0,
        }
    }

    /// Whether the database was reopened since the last call: the caller
    /// reconciles the registry with it.
    pub(super) fn take_reopened(&mut self) -> bool {
        std::mem::take(&mut self.reopened)
    }

    /// Asks for the database to be reopened before the next attempt: its
    /// SQLite file was deleted or replaced, and `companions` (its `-wal`
    /// and `-shm`) belong to the old file.
    pub(super) fn reopen_next(&mut self, companions: Vec<PathBuf>) {
        self.reopen = true;
        self.stale = Some(companions);
        let now = Instant::now();
        let outage = self
            .outage
            .get_or_insert_with(|| Outage::new(now, ConditionKind::FileGone));
        outage.next_attempt = now;
    }

    /// Whether the spool holds writes.
    fn spooled(&self) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// Writes what is pending, as far as the database lets it.
    pub(super) async fn flush(
        &mut self,
        store: &mut Store,
        engine: &Engine,
        batch_size: usize,
        own_changes: &mut std::collections::HashSet<i64>,
    ) -> Flushed {
        self.note_dropped_events(engine);
        if self.outage.is_some() || self.spooled() {
            self.spill(engine);
            if self.outage.as_ref().is_some_and(|o| Instant::now() < o.next_attempt) {
                return Flushed::Waiting;
            }
            if self.reopen {
                if let Err(error) = reopen(store, self.stale.as_deref()).await {
                    self.failed(store, engine, &error);
                    return Flushed::Waiting;
                }
                self.stale = None;
                self.reopened = true;
            }
            self.reopen = false;
            if let Err(error) = self.replay(store, engine, batch_size, own_changes).await {
                self.failed(store, engine, &error);
                return Flushed::Waiting;
            }
        }
        loop {
            let batch = engine.take_store_writes(batch_size);
            let taken = batch.len();
            if batch.is_empty() {
                self.recovered(engine);
                return Flushed::All;
            }
            match store.apply_writes(batch).await {
                Ok(done) => {
                    engine.store_writes_committed(taken);
                    report(engine, done, own_changes);
                }
                Err(failure) => {
                    let unwritten = failure.unwritten.len();
                    engine.store_writes_committed(taken - unwritten);
                    report(engine, failure.done, own_changes);
                    engine.requeue_store_writes(failure.unwritten);
                    self.failed(store, engine, &failure.error);
                    self.spill(engine);
                    return Flushed::Waiting;
                }
            }
        }
    }

    /// Moves the engine's queue to the end of the spool (kept in memory if
    /// there is no spool or it cannot be written).
    pub(super) fn spill(&mut self, engine: &Engine) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        let writes: Vec<StoreWrite> = engine.take_store_writes(usize::MAX);
        if writes.is_empty() {
            return;
        }
        match spool.append(&writes) {
            Ok(()) => engine.store_writes_committed(writes.len()),
            Err(e) => {
                tracing::error!(
                    "devicegate cannot write its spool {}: {e}; {} state changes stay in memory",
                    spool.path().display(),
                    writes.len()
                );
                engine.requeue_store_writes(writes);
            }
        }
        engine.set_spooled_store_writes(spool.len());
    }

    /// Applies the spool in order until it is empty.
    async fn replay(
        &mut self,
        store: &Store,
        engine: &Engine,
        batch_size: usize,
        own_changes: &mut std::collections::HashSet<i64>,
    ) -> Result<(), StoreError> {
        let Some(spool) = self.spool.as_mut() else {
            return Ok(());
        };
        while !spool.is_empty() {
            let batch = spool.read(batch_size).map_err(spool_error(spool.path()))?;
            let Some(last) = batch.last() else {
                continue;
            };
            match store.apply_spooled(&batch).await {
                Ok(done) => {
                    spool.advance(last).map_err(spool_error(spool.path()))?;
                    report(engine, done, own_changes);
                }
                Err((error, done, index)) => {
                    if let Some(applied) = index.checked_sub(1).and_then(|i| batch.get(i)) {
                        spool.advance(applied).map_err(spool_error(spool.path()))?;
                    }
                    report(engine, done, own_changes);
                    engine.set_spooled_store_writes(spool.len());
                    return Err(error);
                }
            }
            engine.set_spooled_store_writes(spool.len());
        }
        Ok(())
    }

    /// A condition of the database stopped writing: back off, reopen the
    /// database next time, and say what is wrong and how to fix it.
    fn failed(&mut self, store: &Store, engine: &Engine, error: &StoreError) {
        let now = Instant::now();
        let kind = error.condition();
        let outage = self.outage.get_or_insert_with(|| Outage::new(now, kind));
        let kind_changed = outage.kind != kind;
        outage.kind = kind;
        outage.attempts += 1;
        outage.backoff = (outage.backoff * 2).min(MAX_BACKOFF);
        outage.next_attempt = now + outage.backoff;
        self.reopen = kind != ConditionKind::Busy;
        if !(outage.log.due(now) || kind_changed) {
            return;
        }
        let spool = self.spool.as_ref().map_or_else(
            || "in memory: no spool file".to_owned(),
            |s| format!("spool {}", s.path().display()),
        );
        tracing::warn!(
            waiting = engine.pending_store_writes(),
            attempt = outage.attempts,
            "devicegate cannot write state changes: {}; they wait ({spool}) and are retried in {:?}: {error}",
            explain(store.backend(), store.url(), kind),
            outage.backoff,
        );
    }

    /// Writing works again after an outage: say so once.
    fn recovered(&mut self, engine: &Engine) {
        if let Some(outage) = self.outage.take() {
            tracing::info!(
                waiting = engine.pending_store_writes(),
                "devicegate writes state changes again, after {:?} of {:?} and {} attempts",
                outage.since.elapsed(),
                outage.kind,
                outage.attempts
            );
        }
    }

    /// Logs audit events the engine had to drop since the last flush.
    fn note_dropped_events(&mut self, engine: &Engine) {
        let dropped = engine.dropped_events();
        if dropped > self.events_dropped {
            tracing::error!(
                "devicegate dropped {} audit events: its write queue was full ({} dropped since start)",
                dropped - self.events_dropped,
                dropped
            );
            self.events_dropped = dropped;
        }
    }

    /// At shutdown, after the last flush: whatever could not be written
    /// goes to the spool, for the next start.
    pub(super) fn keep_for_next_start(&mut self, engine: &Engine) {
        self.spill(engine);
        let left = engine.pending_store_writes();
        match &self.spool {
            Some(spool) if left > 0 && left == spool.len() => tracing::warn!(
                "devicegate stopped with {left} state changes not written; they are kept in {} and written at \
                 the next start",
                spool.path().display()
            ),
            _ if left > 0 => {
                tracing::error!("devicegate stopped with {left} state changes not written: the database did not answer")
            }
            _ => {}
        }
    }

    /// Deletes the spool ids the store no longer needs (a day after use).
    pub(super) async fn prune(&self, store: &Store) {
        let cutoff = now_ms().saturating_sub(24 * 3600 * 1000);
        if let Err(e) = store.prune_applied_writes(cutoff).await {
            tracing::warn!("devicegate cannot prune old spool ids: {e}");
        }
    }
}

/// Hands what a batch committed to the engine.
fn report(engine: &Engine, done: WriteOutcome, own_changes: &mut std::collections::HashSet<i64>) {
    own_changes.extend(done.own_changes);
    for (connection, device, kind, secret) in done.committed_issues {
        engine.handle_issue_committed(connection, &device, kind, secret, now_ms());
    }
}

/// Closes the pool and opens the database again (never creating an SQLite
/// file that has gone). The old pool closes first: an SQLite file replaced
/// under it shares its `-wal` name with the new one, and SQLite, closing a
/// file that was moved or deleted, leaves (or writes anew) a `-wal` of the
/// old pages there. A file moved into place brings none along, so after a
/// replacement whatever `-wal` and `-shm` is found once the old pool is
/// closed is the old file's: it is moved aside, never deleted, before the
/// new file is opened (read as the new file's own, the old pages would
/// overwrite the restored ones).
async fn reopen(store: &mut Store, stale: Option<&[PathBuf]>) -> Result<(), StoreError> {
    store.close().await;
    for path in stale.unwrap_or_default() {
        if path.exists() {
            let mut aside = path.as_os_str().to_owned();
            aside.push(format!(".stale-{}", now_ms()));
            match std::fs::rename(path, &aside) {
                Ok(()) => tracing::warn!(
                    "moved {} of the replaced database aside to {}",
                    path.display(),
                    std::path::Path::new(&aside).display()
                ),
                Err(e) => tracing::error!("cannot move {} of the replaced database aside: {e}", path.display()),
            }
        }
    }
    *store = Store::reopen(store.url())
        .await?
        .with_secret_keys(store.secret_keys().cloned())
        .with_node(store.node().cloned());
    Ok(())
}

fn spool_error(path: &std::path::Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Invalid(format!("cannot read the spool {}: {e}", path.display()))
}
