//! Log output captured in memory, as the api and the workers write it.

use serde_json::Value;
use std::sync::{Arc, Mutex};
use tracing::subscriber::DefaultGuard;

/// Log output captured in memory.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("logs are UTF-8")
    }

    /// The lines logged so far that are JSON objects.
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures what this thread logs under `filter` in the production JSON format, until the
/// guard drops. The test runtime has one thread, so a server's tasks log here too.
pub fn capture_json_logs(filter: &str) -> (LogBuffer, DefaultGuard) {
    let logs = LogBuffer::default();
    let subscriber = common::telemetry::json_subscriber(filter, logs.clone());
    (logs, tracing::subscriber::set_default(subscriber))
}

/// Captures what this thread logs under `filter` as plain text, until the guard drops.
pub fn capture_text_logs(filter: &str) -> (LogBuffer, DefaultGuard) {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_env_filter(filter)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}
