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

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The parent of a process, from `/proc/<pid>/stat`.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds used so far by every process named `comm` (e.g. all `postgres` backends). For
/// `postgres`, with `BENCH_POSTGRES_PID` (the postmaster of the deployment's own cluster, set
/// by scripts/bench), only that cluster's processes: other clusters on the machine are not
/// the deployment's.
pub fn cpu_secs_by_name(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let root: Option<u32> = (comm == "postgres")
        .then(|| {
            std::env::var("BENCH_POSTGRES_PID")
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .flatten();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == comm)
                .unwrap_or(false)
        })
        .filter(|pid| root.is_none_or(|root| *pid == root || parent(*pid) == Some(root)))
        .filter_map(cpu_secs)
        .sum()
}

/// CPU seconds of the whole machine (all cores) since boot, from `/proc/stat`.
#[derive(Debug, Clone, Copy)]
pub struct MachineCpu {
    /// Spent running something here (neither idle, waiting for I/O, nor stolen).
    pub busy: f64,
    /// Taken by the hypervisor for other guests while this machine had work to run.
    pub stolen: f64,
    pub total: f64,
}

pub fn machine_cpu() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal (guest time is counted in user and nice)
    let v: Vec<f64> = line
        .split_whitespace()
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0.0);
    let stolen = *v.get(7).unwrap_or(&0.0);
    Some(MachineCpu {
        busy: (total - idle - stolen) / 100.0,
        stolen: stolen / 100.0,
        total: total / 100.0,
    })
}

/// CPU used by each process of the system over a phase.
pub struct CpuMeter {
    processes: Vec<(String, u32)>,
    start: Vec<f64>,
    named: Vec<(&'static str, f64)>,
    machine: Option<MachineCpu>,
    me: f64,
}

impl CpuMeter {
    pub fn start(processes: &[(String, u32)]) -> Self {
        CpuMeter {
            processes: processes.to_vec(),
            start: processes
                .iter()
                .map(|(_, p)| cpu_secs(*p).unwrap_or(0.0))
                .collect(),
            named: ["postgres", "nats-server"]
                .into_iter()
                .map(|n| (n, cpu_secs_by_name(n)))
                .collect(),
            machine: machine_cpu(),
            me: cpu_secs(std::process::id()).unwrap_or(0.0),
        }
    }

    /// CPU milliseconds the processes named `name` (`postgres`, `nats-server`) used per item
    /// since the start, for `per` items.
    pub fn ms_per(&self, name: &str, per: u64) -> f64 {
        let start = self
            .named
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, s)| *s);
        1000.0 * (cpu_secs_by_name(name) - start) / per.max(1) as f64
    }

    /// CPU milliseconds per item of each process (the measured ones, `postgres`, `nats-server`
    /// and the load generator), for `per` items.
    pub fn ms_per_process(&self, per: u64) -> Vec<(String, f64)> {
        let per = per.max(1) as f64;
        let mut out: Vec<(String, f64)> = self
            .processes
            .iter()
            .zip(&self.start)
            .map(|((name, pid), start)| {
                (
                    name.clone(),
                    1000.0 * (cpu_secs(*pid).unwrap_or(*start) - start) / per,
                )
            })
            .collect();
        for (name, start) in &self.named {
            out.push((
                (*name).to_owned(),
                1000.0 * (cpu_secs_by_name(name) - start) / per,
            ));
        }
        let me = cpu_secs(std::process::id()).unwrap_or(self.me) - self.me;
        out.push(("bench (load)".to_owned(), 1000.0 * me / per));
        out
    }

    /// `name: seconds (share of one core)` for each process, over `elapsed`, and the machine's
    /// busy share of all its cores.
    pub fn report(&self, elapsed: Duration, per: u64) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut parts = Vec::new();
        let mut line = |name: &str, used: f64| {
            parts.push(format!(
                "{name} {:.0}% ({:.2} ms each)",
                100.0 * used / secs,
                1000.0 * used / per.max(1) as f64
            ));
        };
        for ((name, pid), start) in self.processes.iter().zip(&self.start) {
            line(name, cpu_secs(*pid).unwrap_or(*start) - start);
        }
        for (name, start) in &self.named {
            line(name, cpu_secs_by_name(name) - start);
        }
        line(
            "bench",
            cpu_secs(std::process::id()).unwrap_or(self.me) - self.me,
        );
        let machine = match (self.machine, machine_cpu()) {
            (Some(m0), Some(m1)) if m1.total > m0.total => {
                let share = |a: f64, b: f64| 100.0 * (b - a) / (m1.total - m0.total);
                format!(
                    "; machine busy {:.0}%, stolen by the hypervisor {:.0}%",
                    share(m0.busy, m1.busy),
                    share(m0.stolen, m1.stolen)
                )
            }
            _ => String::new(),
        };
        format!("{}{machine}", parts.join(", "))
    }
}
