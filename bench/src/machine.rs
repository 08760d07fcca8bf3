//! What the benchmark ran on: CPU model, cores and memory, read from `/proc` (Linux) with
//! fallbacks elsewhere, so that numbers from different machines are never compared blindly.

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu_model: String,
    /// Cores this process may use (`std::thread::available_parallelism`).
    pub cores: usize,
    pub memory_mib: Option<u64>,
    pub os: &'static str,
    pub arch: &'static str,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                matches!(key.trim(), "model name" | "Model" | "cpu model")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib / 1024);
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            memory_mib,
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }

    pub fn summary(&self) -> String {
        let memory = match self.memory_mib {
            Some(mib) => format!("{:.1} GiB", mib as f64 / 1024.0),
            None => "unknown memory".to_owned(),
        };
        format!(
            "{}, {} cores, {memory}, {}/{}",
            self.cpu_model, self.cores, self.os, self.arch
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "cpu_model": self.cpu_model,
            "cores": self.cores,
            "memory_mib": self.memory_mib,
            "os": self.os,
            "arch": self.arch,
        })
    }
}

/// CPU time (user + system) a process has used so far, in seconds, from `/proc/<pid>/stat`
/// (`"self"` for this process). `None` where there is no procfs.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5), i.e. 11 and 12 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture that matters here.
    Some((utime + stime) as f64 / 100.0)
}

/// CPU time all processes on the machine have used so far (busy, not idle or waiting on I/O),
/// in seconds, from the first line of `/proc/stat`. `None` where there is no procfs.
pub fn system_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user and nice]
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total - idle) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds("self").is_some_and(|secs| secs >= 0.0));
            assert!(system_busy_seconds().is_some_and(|secs| secs > 0.0));
        }
    }
}
