//! What the benchmark ran on: CPU model, cores and memory, read from `/proc` (Linux) with
//! fallbacks elsewhere, so that numbers from different machines are never compared blindly.

use serde_json::{json, Value};
use std::collections::BTreeMap;

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

/// The ids of all processes, from the numeric entries of `/proc` (empty where there is none).
pub fn process_ids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The parent process id of `pid`, from `/proc/<pid>/stat`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 4 (ppid) is the second field after the command name in parentheses.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and all its descendants alive now (children, their children, ...), `pid` first: the
/// processes whose CPU a multi-process server (a primary and its workers) uses.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = process_ids()
        .into_iter()
        .filter_map(|child| Some((child, parent_of(child)?)))
        .collect();
    let mut tree = vec![pid];
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        next += 1;
        for &(child, of) in &parents {
            if of == parent && !tree.contains(&child) {
                tree.push(child);
            }
        }
    }
    tree
}

/// A process's command name (`/proc/<pid>/comm`, at most 15 bytes), if it still exists.
pub fn command_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim_end().to_owned())
}

/// The CPU seconds used so far by every process called `name` (e.g. `postgres`: the server,
/// its connection backends and background workers), by process id.
pub fn cpu_seconds_by_name(name: &str) -> BTreeMap<u32, f64> {
    process_ids()
        .into_iter()
        .filter(|&pid| command_name(pid).is_some_and(|comm| comm == name))
        .filter_map(|pid| Some((pid, cpu_seconds(&pid.to_string())?)))
        .collect()
}

/// CPU seconds used between two [`cpu_seconds_by_name`] readings. A process that started in
/// between counts with all its time; one that ended in between is missed (its last moments).
pub fn cpu_seconds_between(before: &BTreeMap<u32, f64>, after: &BTreeMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, &late)| (late - before.get(pid).copied().unwrap_or(0.0)).max(0.0))
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds("self").is_some_and(|secs| secs >= 0.0));
            assert!(system_busy_seconds().is_some_and(|secs| secs > 0.0));
            let me = std::process::id();
            assert!(process_ids().contains(&me));
            let name = command_name(me).unwrap_or_default();
            assert!(cpu_seconds_by_name(&name).contains_key(&me), "{name}");
            // A child of this process is in its tree, and this process in its parent's.
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let tree = process_tree(me);
            let _ = child.kill();
            let _ = child.wait();
            assert_eq!(tree.first(), Some(&me));
            assert!(tree.contains(&child.id()), "{tree:?}");
            let parent = parent_of(me).unwrap();
            assert!(process_tree(parent).contains(&me));
        }
    }

    #[test]
    fn cpu_between_counts_new_processes_whole() {
        let before = BTreeMap::from([(1, 2.0), (2, 5.0), (3, 1.0)]);
        let after = BTreeMap::from([(1, 2.5), (2, 5.0), (4, 0.25)]);
        assert!((cpu_seconds_between(&before, &after) - 0.75).abs() < 1e-9);
    }
}
