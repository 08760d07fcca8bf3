//! Tessera's load benchmark: how many tokens per second a real server issues, next to how many
//! signatures per second the same machine can make at all.
//!
//! ```text
//! cargo build --release
//! cargo run --release -p tessera-bench -- [--connections 64] [--duration 10] [--grants apikey]
//!     [--algorithms RS256,ES256] [--json]
//! ```
//!
//! The run, in order:
//! 1. **Raw signing speed** ([`signing`]): in-process, one thread per core, a realistic ~750-byte
//!    claim set signed with `tessera_core::jose::SigningKey` for each algorithm.
//! 2. For each grant and algorithm, a **fresh server** ([`server`]): `target/release/tessera serve`
//!    (the sibling of this executable) on a free 127.0.0.1 port with a temporary data directory,
//!    the algorithm and a random bootstrap admin key. A service account and an API key are created
//!    through the admin API.
//! 3. **Load** ([`load`]): a warm-up, then a closed loop over N keep-alive HTTP/1.1 connections
//!    (peak tokens/s, p50/p99/max), then a paced run at half that peak (p50/p99 there; the
//!    performance budget asks p99 < 5 ms). Successes (200) and failures are counted apart.
//! 4. A **report** ([`report`]): a table, or JSON with `--json`, with the ratio of tokens/s to
//!    raw signatures/s and a description of the machine ([`machine`]).
//!
//! The load generator and the server run on the same machine and share its cores, so the
//! numbers are a floor for the server alone. Every phase is bounded in time and only 127.0.0.1 is
//! ever contacted.

mod load;
mod machine;
mod report;
mod server;
mod signing;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tessera_core::model::Algorithm;

/// Upper bounds that keep a mistyped flag from running for hours.
const MAX_DURATION_SECS: u64 = 600;
const MAX_CONNECTIONS: usize = 4096;

/// The grants the benchmark can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Grant {
    /// IBM `urn:ibm:params:oauth:grant-type:apikey` at `POST /identity/token`.
    Apikey,
}

impl Grant {
    pub fn name(self) -> &'static str {
        match self {
            Grant::Apikey => "apikey",
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "tessera-bench",
    about = "Load benchmark for the Tessera token server"
)]
struct Args {
    /// Keep-alive HTTP/1.1 connections driving the server.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of measured load per run (the peak run and again the half-rate run).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of unmeasured load before the peak run.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Grants to drive, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "apikey")]
    grants: Vec<Grant>,
    /// Token-signing algorithms, comma-separated (RS256, PS256, ES256, EdDSA).
    #[arg(long, value_delimiter = ',', default_value = "RS256,ES256", value_parser = parse_algorithm)]
    algorithms: Vec<Algorithm>,
    /// Seconds of raw signing per algorithm.
    #[arg(long, default_value_t = 3)]
    sign_seconds: u64,
    /// Worker threads of the load generator (it shares the cores with the server).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The server binary; by default `tessera` next to this executable (target/release).
    #[arg(long, env = "TESSERA_BIN")]
    server_bin: Option<PathBuf>,
    /// Skip the paced run at half the peak rate.
    #[arg(long)]
    no_half_rate: bool,
    /// Print the results as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_algorithm(value: &str) -> Result<Algorithm, String> {
    Algorithm::parse(value)
        .ok_or_else(|| format!("unknown algorithm {value:?} (RS256, PS256, ES256, EdDSA)"))
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tessera-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.duration == 0 || args.duration > MAX_DURATION_SECS {
        anyhow::bail!("--duration must be between 1 and {MAX_DURATION_SECS} seconds");
    }
    if args.warmup > MAX_DURATION_SECS
        || args.sign_seconds == 0
        || args.sign_seconds > MAX_DURATION_SECS
    {
        anyhow::bail!("--warmup and --sign-seconds must be at most {MAX_DURATION_SECS} seconds (sign at least 1)");
    }
    if args.connections == 0 || args.connections > MAX_CONNECTIONS {
        anyhow::bail!("--connections must be between 1 and {MAX_CONNECTIONS}");
    }
    if args.client_threads == 0 || args.client_threads > 64 {
        anyhow::bail!("--client-threads must be between 1 and 64");
    }
    let server_bin = match &args.server_bin {
        Some(path) => path.clone(),
        None => server::default_binary()?,
    };
    if !server_bin.is_file() {
        anyhow::bail!(
            "server binary {} not found: build it first with `cargo build --release` \
             (or point --server-bin / TESSERA_BIN at it)",
            server_bin.display()
        );
    }
    let mut algorithms: Vec<Algorithm> = Vec::new();
    for &algorithm in &args.algorithms {
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    let machine = machine::Machine::describe();
    let sign_threads = machine.cores;

    progress(&format!("machine: {}", machine.summary()));
    let mut raw = Vec::new();
    for &algorithm in &algorithms {
        let rate = signing::measure(
            algorithm,
            sign_threads,
            Duration::from_secs(args.sign_seconds),
        )
        .with_context(|| format!("raw signing with {}", algorithm.as_str()))?;
        progress(&format!(
            "raw signing {}: {:.0} signatures/s on {sign_threads} threads; other processes busy {} cores",
            algorithm.as_str(),
            rate.per_s,
            load::cores_text(rate.other_cores)
        ));
        raw.push((algorithm, rate));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
        .context("starting the load generator's runtime")?;

    let plan = load::Plan {
        connections: args.connections,
        server_pid: None,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
        half_rate: !args.no_half_rate,
    };
    let mut rows = Vec::new();
    for &grant in &args.grants {
        for &(algorithm, raw_rate) in &raw {
            progress(&format!(
                "{} / {}: starting the server",
                grant.name(),
                algorithm.as_str()
            ));
            let outcome = runtime.block_on(bench_one(&server_bin, grant, algorithm, &plan));
            if let Err(err) = &outcome {
                progress(&format!(
                    "{} / {}: failed: {err:#}",
                    grant.name(),
                    algorithm.as_str()
                ));
            }
            rows.push(report::Row {
                grant,
                algorithm,
                raw_sign: raw_rate,
                outcome,
            });
        }
    }
    let report = report::Report {
        machine,
        sign_threads,
        client_threads: args.client_threads,
        connections: args.connections,
        duration_s: args.duration,
        rows,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        report.print_table();
    }
    Ok(if report.all_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One grant with one algorithm against a fresh server.
async fn bench_one(
    server_bin: &std::path::Path,
    grant: Grant,
    algorithm: Algorithm,
    plan: &load::Plan,
) -> anyhow::Result<report::Measured> {
    let mut server = server::Server::start(server_bin, algorithm)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .context("building the admin HTTP client")?;
    server.wait_ready(&http, Duration::from_secs(30)).await?;
    let creds = server::provision(&http, &server.base_url, &server.admin_apikey).await?;
    server::check_token(&http, &server.base_url, &creds, algorithm).await?;
    let idle_rss_kib = server.rss_kib();
    let target = std::sync::Arc::new(load::Target::new(server.addr, grant, &creds)?);
    let plan = load::Plan {
        server_pid: Some(server.pid()),
        ..plan.clone()
    };
    let result = load::run(target, &plan, |msg| {
        progress(&format!("{} / {}: {msg}", grant.name(), algorithm.as_str()))
    })
    .await;
    let loaded_rss_kib = server.rss_kib();
    let still_running = server.ensure_running();
    server.stop();
    let phases = result?;
    still_running?;
    Ok(report::Measured {
        phases,
        idle_rss_kib,
        loaded_rss_kib,
    })
}

/// Progress goes to stderr, so that `--json` output on stdout stays clean.
fn progress(message: &str) {
    eprintln!("[bench] {message}");
}
