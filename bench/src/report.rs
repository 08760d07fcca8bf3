//! The results: one row per grant and algorithm, printed as a table or as JSON.
//!
//! The ratio column is tokens/s divided by the raw signatures/s of the same algorithm measured in
//! the same run on all cores; the performance budget is stated in those terms (RS256 ≥ 85 %).

use crate::load::{cores_text, Phases, RunStats};
use crate::machine::Machine;
use crate::signing::SignRate;
use crate::Grant;
use comfy_table::Table;
use serde_json::{json, Value};
use tessera_core::model::Algorithm;

/// The budget's latency bound at half the peak rate.
const HALF_RATE_P99_BUDGET_MS: f64 = 5.0;
/// Cores busy with other processes above which a run is flagged as disturbed.
const OTHER_LOAD_WARNING: f64 = 0.2;

/// What one server run measured.
#[derive(Debug)]
pub struct Measured {
    pub phases: Phases,
    pub idle_rss_kib: Option<u64>,
    pub loaded_rss_kib: Option<u64>,
}

#[derive(Debug)]
pub struct Row {
    pub grant: Grant,
    pub algorithm: Algorithm,
    pub raw_sign: SignRate,
    pub outcome: anyhow::Result<Measured>,
}

#[derive(Debug)]
pub struct Report {
    pub machine: Machine,
    pub sign_threads: usize,
    pub client_threads: usize,
    pub connections: usize,
    pub duration_s: u64,
    pub rows: Vec<Row>,
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2} ms"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn failures_text(stats: &RunStats) -> String {
    let f = &stats.failures;
    if f.total() == 0 {
        return "0".to_owned();
    }
    let mut parts: Vec<String> = f
        .by_status
        .iter()
        .map(|(status, n)| format!("{n}×{status}"))
        .collect();
    for (n, what) in [
        (f.connect, "connect"),
        (f.io, "io"),
        (f.timeouts, "timeout"),
    ] {
        if n > 0 {
            parts.push(format!("{n}×{what}"));
        }
    }
    parts.join(" ")
}

fn run_json(stats: &RunStats) -> Value {
    json!({
        "target_rate_per_s": stats.target_rate,
        "elapsed_s": stats.elapsed.as_secs_f64(),
        "ok": stats.ok,
        "tokens_per_s": stats.rate(),
        "p50_ms": stats.percentile_ms(50.0),
        "p90_ms": stats.percentile_ms(90.0),
        "p99_ms": stats.percentile_ms(99.0),
        "p999_ms": stats.percentile_ms(99.9),
        "max_ms": stats.max_ms(),
        "late_sends": stats.late_sends,
        "server_cores_busy": stats.server_cores,
        "load_generator_cores_busy": stats.client_cores,
        "other_processes_cores_busy": stats.other_cores,
        "failures": {
            "total": stats.failures.total(),
            "non_200": stats.failures.non_200(),
            "by_status": stats.failures.by_status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "connect": stats.failures.connect,
            "io": stats.failures.io,
            "timeouts": stats.failures.timeouts,
            "first": stats.failures.first,
        },
    })
}

impl Report {
    /// True when every run worked and had no failed request.
    pub fn all_clean(&self) -> bool {
        self.rows.iter().all(|row| match &row.outcome {
            Ok(measured) => {
                measured.phases.peak.failures.total() == 0
                    && measured
                        .phases
                        .half
                        .as_ref()
                        .is_none_or(|half| half.failures.total() == 0)
            }
            Err(_) => false,
        })
    }

    fn shared_cores_note(&self) -> String {
        format!(
            "The load generator ({} thread(s), {} connections) and the server share this machine's {} cores; \
             raw signing used {} threads. Tokens/s is a floor for the server alone.",
            self.client_threads, self.connections, self.machine.cores, self.sign_threads
        )
    }

    pub fn print_table(&self) {
        let mut table = Table::new();
        table.set_header(vec![
            "grant",
            "algorithm",
            "tokens/s",
            "p50",
            "p99",
            "max",
            "failed (non-200)",
            "half rate/s",
            "p50@half",
            "p99@half",
            "raw sign/s",
            "ratio",
            "RSS idle/loaded MiB",
        ]);
        for row in &self.rows {
            let mut cells = vec![
                row.grant.name().to_owned(),
                row.algorithm.as_str().to_owned(),
            ];
            match &row.outcome {
                Ok(measured) => {
                    let peak = &measured.phases.peak;
                    let half = measured.phases.half.as_ref();
                    cells.extend([
                        format!("{:.0}", peak.rate()),
                        ms(peak.percentile_ms(50.0)),
                        ms(peak.percentile_ms(99.0)),
                        ms(peak.max_ms()),
                        format!(
                            "{} ({})",
                            failures_text(peak),
                            peak.failures.non_200() + half.map_or(0, |h| h.failures.non_200())
                        ),
                        half.map_or_else(|| "-".to_owned(), |h| format!("{:.0}", h.rate())),
                        ms(half.and_then(|h| h.percentile_ms(50.0))),
                        ms(half.and_then(|h| h.percentile_ms(99.0))),
                        format!("{:.0}", row.raw_sign.per_s),
                        format!(
                            "{:.1} %",
                            100.0 * peak.rate() / row.raw_sign.per_s.max(f64::MIN_POSITIVE)
                        ),
                        format!(
                            "{}/{}",
                            mib(measured.idle_rss_kib),
                            mib(measured.loaded_rss_kib)
                        ),
                    ]);
                }
                Err(err) => {
                    cells.push(format!("FAILED: {err:#}"));
                }
            }
            table.add_row(cells);
        }
        println!("{table}");
        println!("machine: {}", self.machine.summary());
        println!("{}", self.shared_cores_note());
        println!(
            "{} s per run; half rate = half the measured peak, paced evenly over the connections.",
            self.duration_s
        );
        for row in &self.rows {
            if row
                .raw_sign
                .other_cores
                .is_some_and(|other| other > OTHER_LOAD_WARNING)
            {
                println!(
                    "WARNING: other processes kept {} cores busy while {} raw signing was measured: \
                     the raw rate is too low and the ratio too high",
                    cores_text(row.raw_sign.other_cores),
                    row.algorithm.as_str()
                );
            }
            let Ok(measured) = &row.outcome else { continue };
            for (label, stats) in [
                ("peak", Some(&measured.phases.peak)),
                ("half rate", measured.phases.half.as_ref()),
            ] {
                let Some(stats) = stats else { continue };
                if stats.failures.total() > 0 {
                    println!(
                        "{} / {} {label}: {} failed requests ({}); first: {}",
                        row.grant.name(),
                        row.algorithm.as_str(),
                        stats.failures.total(),
                        failures_text(stats),
                        stats.failures.first.as_deref().unwrap_or("-")
                    );
                }
            }
            let peak = &measured.phases.peak;
            println!(
                "{} / {} peak: cores busy: server {}, load generator {}, other processes {}",
                row.grant.name(),
                row.algorithm.as_str(),
                cores_text(peak.server_cores),
                cores_text(peak.client_cores),
                cores_text(peak.other_cores)
            );
            if peak
                .other_cores
                .is_some_and(|other| other > OTHER_LOAD_WARNING)
            {
                println!(
                    "WARNING: other processes kept {} cores busy during the {} / {} peak run: \
                     the machine was not quiet, so these numbers are too low",
                    cores_text(peak.other_cores),
                    row.grant.name(),
                    row.algorithm.as_str()
                );
            }
            if let Some(half) = &measured.phases.half {
                if half.late_sends > 0 {
                    println!(
                        "{} / {} half rate: {} requests were sent late (the connection was still busy)",
                        row.grant.name(),
                        row.algorithm.as_str(),
                        half.late_sends
                    );
                }
                if let Some(p99) = half.percentile_ms(99.0) {
                    let verdict = if p99 < HALF_RATE_P99_BUDGET_MS {
                        "within"
                    } else {
                        "OVER"
                    };
                    println!(
                        "{} / {}: p99 at half rate {p99:.2} ms is {verdict} the {HALF_RATE_P99_BUDGET_MS} ms budget",
                        row.grant.name(),
                        row.algorithm.as_str()
                    );
                }
            }
        }
    }

    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut value = json!({
                    "grant": row.grant.name(),
                    "algorithm": row.algorithm.as_str(),
                    "raw_sign_per_s": row.raw_sign.per_s,
                    "raw_sign_other_processes_cores_busy": row.raw_sign.other_cores,
                });
                match &row.outcome {
                    Ok(measured) => {
                        let peak = &measured.phases.peak;
                        value["tokens_per_s"] = json!(peak.rate());
                        value["ratio_to_raw_sign"] = json!(peak.rate() / row.raw_sign.per_s.max(f64::MIN_POSITIVE));
                        value["peak"] = run_json(peak);
                        value["half_rate"] = measured.phases.half.as_ref().map_or(Value::Null, run_json);
                        value["server_rss_kib"] = json!({"idle": measured.idle_rss_kib, "loaded": measured.loaded_rss_kib});
                    }
                    Err(err) => {
                        value["error"] = json!(format!("{err:#}"));
                    }
                }
                value
            })
            .collect();
        json!({
            "machine": self.machine.to_json(),
            "sign_threads": self.sign_threads,
            "client_threads": self.client_threads,
            "connections": self.connections,
            "duration_s": self.duration_s,
            "note": self.shared_cores_note(),
            "results": rows,
        })
    }
}
