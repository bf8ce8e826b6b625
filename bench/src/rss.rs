//! Resident memory of the api and worker processes, from `/proc/<pid>/status`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A value in KiB from a `/proc/<pid>/status` line such as `VmHWM:    12345 kB`.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Samples `VmRSS` of some processes until dropped, keeping each one's peak.
pub struct Sampler {
    peaks: Arc<Mutex<BTreeMap<String, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(processes: Vec<(String, u32)>) -> Self {
        let peaks = Arc::new(Mutex::new(BTreeMap::new()));
        let shared = Arc::clone(&peaks);
        let task = tokio::spawn(async move {
            loop {
                for (name, pid) in &processes {
                    if let Some(kib) = status_kib(*pid, "VmRSS")
                        && let Ok(mut peaks) = shared.lock()
                    {
                        let peak = peaks.entry(name.clone()).or_insert(0);
                        *peak = (*peak).max(kib);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler { peaks, task }
    }

    /// Peak sampled `VmRSS` per process, in KiB.
    pub fn peaks(&self) -> BTreeMap<String, u64> {
        self.peaks.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
