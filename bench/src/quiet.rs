//! Waiting for a quiet machine before a measurement.
//!
//! On a small machine a compiler running beside the benchmark halves its numbers. With
//! `--wait-quiet SECONDS`, before each measurement (raw signing and every server run) the
//! benchmark looks for build processes ([`BUILD_TOOLS`]) and, while any runs, waits in steps of
//! [`POLL`] until none does or the total waiting budget of the whole run is spent (then it measures
//! anyway and says so). Its own ancestors are not counted: `cargo run -p tessera-bench` is a
//! `cargo` process too.

use crate::machine::{command_name, parent_of, process_ids};
use std::collections::BTreeSet;
use std::time::Duration;

/// Command names of build processes (as in `/proc/<pid>/comm`).
pub const BUILD_TOOLS: &[&str] = &[
    "rustc",
    "cargo",
    "cc1",
    "cc1plus",
    "clippy-driver",
    "rustdoc",
];
/// How long to sleep between two looks.
pub const POLL: Duration = Duration::from_secs(30);

/// This process and its ancestors up to init.
fn own_lineage() -> BTreeSet<u32> {
    let mut lineage = BTreeSet::new();
    let mut pid = std::process::id();
    while pid > 1 && lineage.insert(pid) {
        match parent_of(pid) {
            Some(parent) => pid = parent,
            None => break,
        }
    }
    lineage
}

/// Build processes running now that are not this benchmark's ancestors: `(pid, name)`.
pub fn build_processes() -> Vec<(u32, String)> {
    let lineage = own_lineage();
    process_ids()
        .into_iter()
        .filter(|pid| !lineage.contains(pid))
        .filter_map(|pid| {
            let name = command_name(pid)?;
            BUILD_TOOLS.contains(&name.as_str()).then_some((pid, name))
        })
        .collect()
}

/// The waiting budget of one benchmark run, spent across all its measurements.
#[derive(Debug)]
pub struct QuietGate {
    budget: Duration,
    waited: Duration,
}

impl QuietGate {
    /// `budget` zero: never wait.
    pub fn new(budget: Duration) -> QuietGate {
        QuietGate {
            budget,
            waited: Duration::ZERO,
        }
    }

    /// Waits until no build process runs. Returns whether the machine was quiet in the end (always
    /// true without a budget, which also means: not looked at).
    pub fn wait(&mut self, progress: impl Fn(&str)) -> bool {
        if self.budget.is_zero() {
            return true;
        }
        loop {
            let busy = build_processes();
            if busy.is_empty() {
                return true;
            }
            let left = self.budget.saturating_sub(self.waited);
            let names: BTreeSet<&str> = busy.iter().map(|(_, name)| name.as_str()).collect();
            let names: Vec<&str> = names.into_iter().collect();
            if left.is_zero() {
                progress(&format!(
                    "build processes still running ({}); the waiting budget of {} s is spent, \
                     measuring anyway",
                    names.join(", "),
                    self.budget.as_secs()
                ));
                return false;
            }
            let nap = POLL.min(left);
            progress(&format!(
                "waiting for {} build process(es) to finish ({}); {} s of {} s waited",
                busy.len(),
                names.join(", "),
                self.waited.as_secs(),
                self.budget.as_secs()
            ));
            std::thread::sleep(nap);
            self.waited += nap;
        }
    }

    /// Seconds spent waiting so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ancestors_are_never_build_processes() {
        if cfg!(target_os = "linux") {
            let lineage = own_lineage();
            assert!(lineage.contains(&std::process::id()));
            // The test runner is started by cargo: it is in the lineage, so it is not reported.
            let busy = build_processes();
            assert!(busy.iter().all(|(pid, _)| !lineage.contains(pid)));
        }
    }

    #[test]
    fn without_a_budget_nothing_is_waited_for() {
        let mut gate = QuietGate::new(Duration::ZERO);
        assert!(gate.wait(|_| {}));
        assert_eq!(gate.waited(), Duration::ZERO);
    }
}
