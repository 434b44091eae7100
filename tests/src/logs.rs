//! Capturing `tracing` output in a test, to check Docker's log texts
//! (`Unable to connect to plugin: …, retrying in 1s`).
//!
//! The capture is the current thread's default subscriber, so use it from
//! a current-thread runtime (`#[tokio::test]`'s default): every task the
//! test spawns then logs into it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// Captured log lines, formatted as `LEVEL target: message fields`.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

/// Keeps the capture installed; dropping it restores the previous
/// subscriber.
pub struct LogCapture {
    logs: Logs,
    _guard: tracing::subscriber::DefaultGuard,
}

/// Installs a capture of every event at `DEBUG` and above for this thread.
pub fn capture() -> LogCapture {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_writer(logs.clone())
        .finish();
    LogCapture {
        logs,
        _guard: tracing::subscriber::set_default(subscriber),
    }
}

impl LogCapture {
    /// Every line captured so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.logs.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines at `level` (`"WARN"`, `"DEBUG"`, …) containing `text`.
    pub fn find(&self, level: &str, text: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.trim_start().starts_with(level) && l.contains(text))
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}
