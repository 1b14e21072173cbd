//! `tracing` events to Mosquitto's log. Events from any thread are queued;
//! the queue is written with `mosquitto_log_printf` on the broker's thread
//! only, at the end of every callback (no `mosquitto_*` call may come from
//! another thread, BROKERS.md §1.10).

use std::collections::VecDeque;
use std::ffi::{CString, c_int};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::ffi;

/// Lines waiting for the broker's thread; bounded, oldest dropped first.
static QUEUE: Mutex<VecDeque<(c_int, String)>> = Mutex::new(VecDeque::new());
/// Set when lines wait, so flushing an empty queue costs no lock.
static WAITING: AtomicBool = AtomicBool::new(false);
const MAX_QUEUED: usize = 10_000;

fn broker_level(level: &Level) -> c_int {
    match *level {
        Level::ERROR => ffi::MOSQ_LOG_ERR,
        Level::WARN => ffi::MOSQ_LOG_WARNING,
        Level::INFO => ffi::MOSQ_LOG_NOTICE,
        _ => ffi::MOSQ_LOG_DEBUG,
    }
}

/// Queues one line at a broker log level.
pub fn queue(level: c_int, line: String) {
    if let Ok(mut q) = QUEUE.lock() {
        if q.len() >= MAX_QUEUED {
            q.pop_front();
        }
        q.push_back((level, line));
        WAITING.store(true, Ordering::Release);
    }
}

/// Writes queued lines to the broker's log. Broker thread only.
pub fn flush() {
    if !WAITING.load(Ordering::Acquire) {
        return;
    }
    let lines: Vec<(c_int, String)> = match QUEUE.lock() {
        Ok(mut q) => {
            WAITING.store(false, Ordering::Release);
            q.drain(..).collect()
        }
        Err(_) => return,
    };
    for (level, line) in lines {
        let text = CString::new(line.replace('\0', " ")).unwrap_or_default();
        // SAFETY: called on the broker's thread; the format is a literal
        // "%s" and `text` is a NUL-terminated string that outlives the call.
        unsafe { ffi::mosquitto_log_printf(level, c"%s".as_ptr(), text.as_ptr()) };
    }
}

/// One formatted event, queued when the formatter drops it.
struct Line {
    level: c_int,
    buf: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf).trim_end().to_owned();
        if !text.is_empty() {
            queue(self.level, format!("devicegate: {text}"));
        }
    }
}

struct Lines;

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line {
            level: ffi::MOSQ_LOG_NOTICE,
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line {
            level: broker_level(meta.level()),
            buf: Vec::new(),
        }
    }
}

/// Routes `tracing` events at `level` and above to the broker's log. The
/// subscriber is process-global: a second plugin instance keeps the first's.
pub fn install(level: Level) {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(Lines)
        .with_ansi(false)
        .without_time()
        .with_level(false)
        .with_target(false);
    // Debug means devicegate's own events; other crates (sqlx) stay at warn.
    // sqlx warns when it cannot open a `.pgpass` file it merely looks for
    // (the broker's user seldom can: HOME stays root's after the drop); that
    // line hid the real connection error, which devicegate logs itself.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("devicegate", level)
        .with_target("devicegate_mosquitto", level)
        .with_target("sqlx_postgres::options::pgpass", Level::ERROR)
        .with_default(Level::WARN.min(level));
    let subscriber = tracing_subscriber::registry().with(layer).with(filter);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        queue(
            ffi::MOSQ_LOG_INFO,
            "devicegate: logging was already set up by an earlier instance".to_owned(),
        );
    }
}
