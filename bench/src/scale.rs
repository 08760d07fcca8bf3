//! `tessera-bench scale`: a server holding a large installation.
//!
//! ```text
//! cargo build --release
//! target/release/tessera-bench scale [--api-keys 1000000] [--service-accounts 100000]
//!     [--users 100000] [--bindings 100000] [--profiles 10000] [--accounts 100]
//!     [--database-url postgres://…] [--skip-sqlite] [--json]
//! ```
//!
//! For each store (SQLite, and with `--database-url` two nodes on one PostgreSQL schema):
//! 1. **Bootstrap**: `tessera serve` starts once on an empty store with a master key the bench
//!    chose (`TESSERA_MASTER_KEY`), creates its secrets, signing keys and administrator, and is
//!    stopped again.
//! 2. **Load through the store** ([`populate`]): the bench opens the same store with
//!    `tessera-store` and writes accounts, service accounts, users, API keys, bindings and trusted
//!    profiles with [`Store::create_all`] in batched transactions (each object with its change row
//!    and audit event, as the admin API would write it). API-key hashes are the server's own:
//!    the pepper is unsealed with the server's `bootstrap::load_server_secrets` and each key is
//!    made by the core's `secret::generate_api_key` and hashed with `Pepper::hash`.
//! 3. **Start-up**: the node(s) start on the loaded store; the time from spawn to `GET /readyz`
//!    200 and the resident set (`VmRSS`, and `VmHWM`, the peak) right after.
//! 4. **Token rate**: the API-key grant with one key, then with a key drawn at random from all of
//!    them per request ([`crate::load::Target::apikeys_at_random`]), alternating for `--rounds`;
//!    the resident set after the load.
//! 5. **Lists**: the admin list endpoints paged with `after` (every page timed and its items
//!    counted against what was loaded), and deep pages of the unfiltered lists reached by a
//!    cursor anywhere in the key range.
//! 6. **Propagation** (two nodes): an API key deleted through node A's admin API, node B polled
//!    every 2 ms until it refuses the key. With one node: the key is refused at once.
//!
//! Targets (issue 18): RSS < 512 MB, start-up < 20 s, propagation < 1 s, random-key rate within
//! 10 % of the one-key rate, every list page < 50 ms. The report marks each met or missed.

use crate::load::{self, Plan, Target, Workload};
use crate::machine::Machine;
use crate::server::{self, NodeOptions, Server};
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Parser;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::model::*;
use tessera_core::seal::MasterKey;
use tessera_core::secret::{self, Pepper, SecretPurpose};
use tessera_server::bootstrap;
use tessera_store::Store;

/// Targets of issue 18.
const RSS_TARGET_MIB: f64 = 512.0;
const STARTUP_TARGET: Duration = Duration::from_secs(20);
const PROPAGATION_TARGET: Duration = Duration::from_secs(1);
const RANDOM_RATE_TARGET: f64 = 0.90;
const PAGE_TARGET: Duration = Duration::from_millis(50);
/// How long a loaded node may take to answer `/readyz` before the run gives up.
const READY_LIMIT: Duration = Duration::from_secs(300);
/// Upper bounds that keep a mistyped flag from filling the disk.
const MAX_API_KEYS: usize = 10_000_000;
const MAX_IDENTITIES: usize = 2_000_000;

#[derive(Debug, Parser)]
#[command(
    name = "tessera-bench scale",
    about = "Loads a large installation through the store, then measures start-up, memory, token \
             rate with random keys, list paging and propagation"
)]
pub struct ScaleArgs {
    /// API keys, spread evenly over the service accounts and users.
    #[arg(long, default_value_t = 1_000_000)]
    api_keys: usize,
    #[arg(long, default_value_t = 100_000)]
    service_accounts: usize,
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Access bindings: a role for a service account or user on its own account.
    #[arg(long, default_value_t = 100_000)]
    bindings: usize,
    /// Trusted profiles, each trusting one service account of its account.
    #[arg(long, default_value_t = 10_000)]
    profiles: usize,
    /// Accounts the identities are spread over (besides the administrator's).
    #[arg(long, default_value_t = 100)]
    accounts: usize,
    /// Objects per store transaction.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Also run two nodes on this PostgreSQL database (a fresh schema, dropped afterwards).
    #[arg(long, env = "TESSERA_BENCH_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Only the PostgreSQL run.
    #[arg(long)]
    skip_sqlite: bool,
    /// `--jwt-algorithm` of the servers.
    #[arg(long, default_value = "ES256", value_parser = parse_algorithm)]
    algorithm: Algorithm,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per token-rate run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// One-key and random-key runs, alternating, this many times each.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Items per list page.
    #[arg(long, default_value_t = 100)]
    page_limit: u32,
    /// At most this many pages walked per list (the unfiltered lists have many).
    #[arg(long, default_value_t = 300)]
    max_pages: usize,
    /// Pages fetched at a random cursor of the unfiltered lists.
    #[arg(long, default_value_t = 100)]
    deep_pages: usize,
    /// API keys deleted through one node and timed until another refuses them.
    #[arg(long, default_value_t = 10)]
    propagation_samples: usize,
    /// The server binary; by default `tessera` next to this executable (target/release).
    #[arg(long, env = "TESSERA_BIN")]
    server_bin: Option<PathBuf>,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_algorithm(value: &str) -> Result<Algorithm, String> {
    Algorithm::parse(value)
        .ok_or_else(|| format!("unknown algorithm {value:?} (RS256, PS256, ES256, EdDSA)"))
}

/// `tessera-bench scale …`: `args` are the words after `scale`.
pub fn main(args: impl Iterator<Item = std::ffi::OsString>) -> anyhow::Result<ExitCode> {
    let args = ScaleArgs::parse_from(std::iter::once("tessera-bench scale".into()).chain(args));
    check_args(&args)?;
    let binary = server::server_binary(args.server_bin.as_deref())?;
    if !binary.is_file() {
        anyhow::bail!(
            "server binary {} not found: build it first with `cargo build --release`",
            binary.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let machine = Machine::describe();
    progress(&format!("machine: {}", machine.summary()));
    let mut setups = Vec::new();
    if !args.skip_sqlite {
        setups.push(None);
    }
    if let Some(url) = &args.database_url {
        setups.push(Some(url.clone()));
    }
    if setups.is_empty() {
        anyhow::bail!("--skip-sqlite needs --database-url: nothing to run");
    }
    let mut results = Vec::new();
    for database in setups {
        let result = runtime.block_on(run_setup(&args, &binary, database.as_deref()))?;
        print_result(&result);
        results.push(result);
    }
    let all_met = results.iter().all(|r| r.misses().is_empty());
    if args.json {
        let out = json!({
            "machine": machine.summary(),
            "population": {
                "accounts": args.accounts,
                "service_accounts": args.service_accounts,
                "users": args.users,
                "api_keys": args.api_keys,
                "bindings": args.bindings,
                "profiles": args.profiles,
            },
            "runs": results.iter().map(SetupResult::to_json).collect::<Vec<_>>(),
        });
        println!("{out:#}");
    }
    Ok(if all_met {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn check_args(args: &ScaleArgs) -> anyhow::Result<()> {
    if args.api_keys == 0 || args.api_keys > MAX_API_KEYS {
        anyhow::bail!("--api-keys must be between 1 and {MAX_API_KEYS}");
    }
    for (flag, n) in [
        ("--service-accounts", args.service_accounts),
        ("--users", args.users),
        ("--bindings", args.bindings),
        ("--profiles", args.profiles),
    ] {
        if n > MAX_IDENTITIES {
            anyhow::bail!("{flag} must be at most {MAX_IDENTITIES}");
        }
    }
    if args.service_accounts == 0 {
        anyhow::bail!("--service-accounts must be at least 1 (profiles and keys need one)");
    }
    if args.accounts == 0 || args.accounts > args.service_accounts {
        anyhow::bail!("--accounts must be between 1 and --service-accounts");
    }
    let owners = args.service_accounts + args.users;
    if args.bindings > owners * Role::ALL.len() {
        anyhow::bail!(
            "--bindings must be at most {} (each identity holds each role once on its account)",
            owners * Role::ALL.len()
        );
    }
    if args.batch == 0 || args.batch > 100_000 {
        anyhow::bail!("--batch must be between 1 and 100000");
    }
    if args.duration == 0 || args.duration > 600 || args.warmup > 600 {
        anyhow::bail!("--duration must be between 1 and 600 seconds, --warmup at most 600");
    }
    if args.connections == 0 || args.connections > 4096 {
        anyhow::bail!("--connections must be between 1 and 4096");
    }
    if args.rounds == 0 || args.rounds > 10 {
        anyhow::bail!("--rounds must be between 1 and 10");
    }
    if args.page_limit == 0 || args.page_limit > 1000 {
        anyhow::bail!("--page-limit must be between 1 and 1000");
    }
    if args.propagation_samples > 1000 || args.max_pages > 100_000 || args.deep_pages > 100_000 {
        anyhow::bail!("--propagation-samples, --max-pages or --deep-pages is too large");
    }
    Ok(())
}

fn progress(message: &str) {
    eprintln!("[scale] {message}");
}

/// What the bench keeps of the loaded installation: enough to drive and check the server.
#[derive(Debug, Default)]
pub struct Population {
    pub accounts: Vec<String>,
    /// `iam_id` of each service account, account by account index `i % accounts`.
    pub service_accounts: Vec<String>,
    pub users: Vec<String>,
    /// Id and secret of each API key.
    pub api_keys: Vec<(String, String)>,
    pub bindings: usize,
    pub profiles: usize,
    /// Objects written and the time it took.
    pub written: usize,
    pub elapsed: Duration,
}

impl Population {
    /// The account of identity `i` (service accounts and users alike).
    fn account_of(&self, i: usize) -> &str {
        &self.accounts[i % self.accounts.len()]
    }

    /// Identities that own keys and hold bindings: the service accounts, then the users.
    fn owner(&self, i: usize) -> (&str, &str) {
        let owners = self.service_accounts.len() + self.users.len();
        let i = i % owners.max(1);
        if i < self.service_accounts.len() {
            (&self.service_accounts[i], self.account_of(i))
        } else {
            let u = i - self.service_accounts.len();
            (&self.users[u], self.account_of(u))
        }
    }

    fn owner_count(&self) -> usize {
        self.service_accounts.len() + self.users.len()
    }

    /// How many of `total` objects spread round-robin over `slots` land in slot `slot`.
    fn share(total: usize, slots: usize, slot: usize) -> usize {
        total / slots + usize::from(slot < total % slots)
    }
}

/// Writes the installation through `store` in transactions of `batch` objects. API keys are
/// hashed with `pepper`, the server's own.
pub async fn populate(
    store: &dyn Store,
    pepper: &Pepper,
    counts: &Counts,
    batch: usize,
    now: i64,
) -> anyhow::Result<Population> {
    let rng = SystemRandom::new();
    let started = Instant::now();
    let audit = bootstrap::system_audit(now, "scale.load", "tessera-bench scale".to_owned());
    let mut population = Population::default();
    let mut pending: Vec<Entity> = Vec::with_capacity(batch);
    let mut written = 0usize;
    let mut last_report = Instant::now();
    let mut flush = async |pending: &mut Vec<Entity>, force: bool| -> anyhow::Result<()> {
        if pending.is_empty() || (!force && pending.len() < batch) {
            return Ok(());
        }
        store
            .create_all(pending, &audit)
            .await
            .context("writing a batch through the store")?;
        written += pending.len();
        pending.clear();
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            progress(&format!(
                "  {written} objects written in {:.0} s ({:.0}/s)",
                started.elapsed().as_secs_f64(),
                written as f64 / started.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    };
    let core = |e: tessera_core::error::Error| anyhow::anyhow!("{e}");
    for i in 0..counts.accounts {
        let id = ids::new_account_id(&rng).map_err(core)?;
        pending.push(Entity::Account(Account {
            id: id.clone(),
            name: format!("scale-account-{i}"),
            enterprise_id: None,
            mfa: MfaRequirement::None,
            created_at: now,
        }));
        population.accounts.push(id);
        flush(&mut pending, false).await?;
    }
    flush(&mut pending, true).await?;
    for i in 0..counts.service_accounts {
        let id = ids::new_service_account_id(&rng).map_err(core)?;
        let account = ServiceAccount {
            id,
            account_id: population.account_of(i).to_owned(),
            name: format!("scale-sa-{i}"),
            description: String::new(),
            created_at: now,
        };
        population.service_accounts.push(account.iam_id());
        pending.push(Entity::ServiceAccount(account));
        flush(&mut pending, false).await?;
    }
    for i in 0..counts.users {
        let id = ids::new_user_id(&rng).map_err(core)?;
        pending.push(Entity::User(User {
            id: id.clone(),
            account_id: population.account_of(i).to_owned(),
            name: format!("scale-user-{i}"),
            email: format!("scale-user-{i}@example.com"),
            password_hash: None,
            federated: false,
            created_at: now,
        }));
        population.users.push(id);
        flush(&mut pending, false).await?;
    }
    flush(&mut pending, true).await?;
    population.api_keys.reserve(counts.api_keys);
    for i in 0..counts.api_keys {
        let (owner, account) = population.owner(i);
        let apikey = secret::generate_api_key(&rng).map_err(core)?;
        let id = ids::new_api_key_id(&rng).map_err(core)?;
        pending.push(Entity::ApiKey(ApiKey {
            id: id.clone(),
            name: format!("scale-key-{i}"),
            description: String::new(),
            owner_iam_id: owner.to_owned(),
            account_id: account.to_owned(),
            key_hash: pepper.hash(SecretPurpose::ApiKey, apikey.expose()),
            created_at: now,
        }));
        population.api_keys.push((id, apikey.expose().to_owned()));
        flush(&mut pending, false).await?;
    }
    let owners = population.owner_count();
    for i in 0..counts.bindings {
        let (subject, account) = population.owner(i);
        let role = Role::ALL[(i / owners) % Role::ALL.len()];
        pending.push(Entity::Binding(AccessBinding {
            id: ids::new_binding_id(&rng).map_err(core)?,
            subject_iam_id: subject.to_owned(),
            role,
            resource: Resource::Account(account.to_owned()),
            created_at: now,
        }));
        flush(&mut pending, false).await?;
    }
    population.bindings = counts.bindings;
    for i in 0..counts.profiles {
        // Service account `i` lives in the same account as profile `i`.
        let trusted = population.service_accounts[i % population.service_accounts.len()].clone();
        let account = population
            .account_of(i % population.service_accounts.len())
            .to_owned();
        pending.push(Entity::Profile(TrustedProfile {
            id: ids::new_profile_id(&rng).map_err(core)?,
            account_id: account,
            name: format!("scale-profile-{i}"),
            description: String::new(),
            identities: vec![TrustedIdentity {
                kind: TrustedIdentityType::Serviceid,
                identifier: trusted,
                accounts: Vec::new(),
            }],
            links: Vec::new(),
            rules: Vec::new(),
            created_at: now,
        }));
        flush(&mut pending, false).await?;
    }
    flush(&mut pending, true).await?;
    population.profiles = counts.profiles;
    population.written = written;
    population.elapsed = started.elapsed();
    Ok(population)
}

/// How much to load.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub accounts: usize,
    pub service_accounts: usize,
    pub users: usize,
    pub api_keys: usize,
    pub bindings: usize,
    pub profiles: usize,
}

impl Counts {
    fn of(args: &ScaleArgs) -> Counts {
        Counts {
            accounts: args.accounts,
            service_accounts: args.service_accounts,
            users: args.users,
            api_keys: args.api_keys,
            bindings: args.bindings,
            profiles: args.profiles,
        }
    }
}

/// One node's start on the loaded store.
#[derive(Debug, Clone)]
struct Startup {
    ready_after: Duration,
    rss_kib: Option<u64>,
    hwm_kib: Option<u64>,
}

/// The timings of one list walked page by page.
#[derive(Debug, Clone)]
struct ListWalk {
    what: String,
    pages_ms: Vec<f64>,
    items: usize,
    /// Items the walk should have seen, when it walked to the end.
    expected: Option<usize>,
}

impl ListWalk {
    fn max_ms(&self) -> f64 {
        self.pages_ms.iter().copied().fold(0.0, f64::max)
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.pages_ms.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

/// A token-rate run: which keys, and what came of it.
#[derive(Debug, Clone)]
struct RateRun {
    random: bool,
    rate: f64,
    failures: u64,
    server_cores: Option<f64>,
    other_cores: Option<f64>,
}

#[derive(Debug)]
struct SetupResult {
    label: String,
    nodes: usize,
    population: Population,
    bootstrap: Duration,
    startups: Vec<Startup>,
    rates: Vec<RateRun>,
    loaded: Vec<(Option<u64>, Option<u64>)>,
    lists: Vec<ListWalk>,
    propagation: Vec<Duration>,
    /// Time for the deleting request itself (it returns once its own node has applied it).
    delete_ms: Vec<f64>,
}

impl SetupResult {
    fn best_rate(&self, random: bool) -> Option<f64> {
        self.rates
            .iter()
            .filter(|r| r.random == random)
            .map(|r| r.rate)
            .reduce(f64::max)
    }

    fn max_rss_mib(&self) -> f64 {
        let idle = self.startups.iter().flat_map(|s| [s.rss_kib, s.hwm_kib]);
        let loaded = self.loaded.iter().flat_map(|(rss, hwm)| [*rss, *hwm]);
        idle.chain(loaded).flatten().max().unwrap_or(0) as f64 / 1024.0
    }

    fn rate_ratio(&self) -> Option<f64> {
        Some(self.best_rate(true)? / self.best_rate(false)?)
    }

    /// The targets missed, in words; empty when all are met.
    fn misses(&self) -> Vec<String> {
        let mut misses = Vec::new();
        let rss = self.max_rss_mib();
        if rss >= RSS_TARGET_MIB {
            misses.push(format!("RSS {rss:.0} MiB ≥ {RSS_TARGET_MIB:.0} MiB"));
        }
        if let Some(slow) = self.startups.iter().map(|s| s.ready_after).max() {
            if slow >= STARTUP_TARGET {
                misses.push(format!("start-up {:.1} s ≥ 20 s", slow.as_secs_f64()));
            }
        }
        if let Some(slow) = self.propagation.iter().max() {
            if *slow >= PROPAGATION_TARGET {
                misses.push(format!("propagation {} ms ≥ 1 s", slow.as_millis()));
            }
        }
        match self.rate_ratio() {
            Some(ratio) if ratio < RANDOM_RATE_TARGET => misses.push(format!(
                "random-key rate {:.1} % of the one-key rate < 90 %",
                ratio * 100.0
            )),
            Some(_) => {}
            None => misses.push("no token rate measured".to_owned()),
        }
        for walk in &self.lists {
            if walk.max_ms() >= PAGE_TARGET.as_secs_f64() * 1000.0 {
                misses.push(format!(
                    "{}: a page took {:.1} ms",
                    walk.what,
                    walk.max_ms()
                ));
            }
        }
        misses
    }

    fn to_json(&self) -> Value {
        json!({
            "store": self.label,
            "nodes": self.nodes,
            "objects_written": self.population.written,
            "load_seconds": self.population.elapsed.as_secs_f64(),
            "bootstrap_seconds": self.bootstrap.as_secs_f64(),
            "startup": self.startups.iter().map(|s| json!({
                "ready_seconds": s.ready_after.as_secs_f64(),
                "rss_kib": s.rss_kib,
                "hwm_kib": s.hwm_kib,
            })).collect::<Vec<_>>(),
            "rates": self.rates.iter().map(|r| json!({
                "keys": if r.random { "random" } else { "one" },
                "tokens_per_s": r.rate,
                "failures": r.failures,
                "server_cores": r.server_cores,
                "other_cores": r.other_cores,
            })).collect::<Vec<_>>(),
            "random_to_one_key": self.rate_ratio(),
            "loaded": self.loaded.iter().map(|(rss, hwm)| json!({"rss_kib": rss, "hwm_kib": hwm})).collect::<Vec<_>>(),
            "lists": self.lists.iter().map(|w| json!({
                "list": w.what,
                "pages": w.pages_ms.len(),
                "items": w.items,
                "p50_ms": w.percentile_ms(50.0),
                "p99_ms": w.percentile_ms(99.0),
                "max_ms": w.max_ms(),
                "items_checked_against_loaded": w.expected.is_some(),
            })).collect::<Vec<_>>(),
            "propagation_ms": self.propagation.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
            "delete_ms": self.delete_ms,
            "misses": self.misses(),
        })
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "-".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

fn print_result(r: &SetupResult) {
    let p = &r.population;
    eprintln!();
    eprintln!("== {} ==", r.label);
    eprintln!(
        "loaded {} objects ({} accounts, {} service accounts, {} users, {} API keys, {} bindings, \
         {} profiles) through the store in {:.1} s ({:.0}/s); bootstrap start {:.1} s",
        p.written,
        p.accounts.len(),
        p.service_accounts.len(),
        p.users.len(),
        p.api_keys.len(),
        p.bindings,
        p.profiles,
        p.elapsed.as_secs_f64(),
        p.written as f64 / p.elapsed.as_secs_f64().max(1e-9),
        r.bootstrap.as_secs_f64()
    );
    for (i, s) in r.startups.iter().enumerate() {
        eprintln!(
            "node {}: ready after {:.2} s; RSS {} (peak {})",
            i + 1,
            s.ready_after.as_secs_f64(),
            mib(s.rss_kib),
            mib(s.hwm_kib)
        );
    }
    for run in &r.rates {
        eprintln!(
            "token rate, {} key(s): {:.0}/s, {} failed, server {} cores, other processes {} cores",
            if run.random { "random" } else { "one" },
            run.rate,
            run.failures,
            load::cores_text(run.server_cores),
            load::cores_text(run.other_cores)
        );
    }
    if let Some(ratio) = r.rate_ratio() {
        eprintln!(
            "random-key ÷ one-key (best of each): {:.1} %",
            ratio * 100.0
        );
    }
    for (i, (rss, hwm)) in r.loaded.iter().enumerate() {
        eprintln!(
            "node {} after the load: RSS {} (peak {})",
            i + 1,
            mib(*rss),
            mib(*hwm)
        );
    }
    for w in &r.lists {
        eprintln!(
            "{:<60} {:>5} pages {:>7} items  p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
            w.what,
            w.pages_ms.len(),
            w.items,
            w.percentile_ms(50.0),
            w.percentile_ms(99.0),
            w.max_ms()
        );
    }
    if !r.propagation.is_empty() {
        let mut ms: Vec<f64> = r
            .propagation
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        eprintln!(
            "propagation (deleted on node 1, refused by node 2): median {:.0} ms, max {:.0} ms ({} samples)",
            ms[ms.len() / 2],
            ms[ms.len() - 1],
            ms.len()
        );
    }
    if !r.delete_ms.is_empty() {
        let max = r.delete_ms.iter().copied().fold(0.0, f64::max);
        eprintln!(
            "DELETE /v1/api_keys/{{id}} answered within {max:.1} ms (it waits for its own node)"
        );
    }
    let misses = r.misses();
    if misses.is_empty() {
        eprintln!("all targets met");
    } else {
        eprintln!("targets missed: {}", misses.join("; "));
    }
}

/// One store's run: bootstrap, load, start, measure, stop (and drop the schema).
async fn run_setup(
    args: &ScaleArgs,
    binary: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<SetupResult> {
    let scratch = tempfile::Builder::new()
        .prefix("tessera-bench-scale-")
        .tempdir()
        .context("creating a scratch directory")?;
    let master_bytes = server::random_master_key_bytes()?;
    let master = MasterKey::from_bytes(&master_bytes).map_err(anyhow::Error::msg)?;
    let schema = match database_url {
        Some(_) => Some(server::random_schema()?),
        None => None,
    };
    let nodes = if database_url.is_some() { 2 } else { 1 };
    let node_options = |index: usize| NodeOptions {
        database: database_url
            .zip(schema.as_deref())
            .map(|(url, schema)| (url.to_owned(), schema.to_owned())),
        master_key: Some(STANDARD.encode(master_bytes)),
        public_url: database_url.map(|_| server::CLUSTER_PUBLIC_URL.to_owned()),
        data_dir: Some(scratch.path().join(format!("node{index}"))),
    };
    let label = match database_url {
        Some(_) => format!("PostgreSQL ×{nodes}"),
        None => "SQLite ×1".to_owned(),
    };
    progress(&format!("{label}: bootstrap start on an empty store"));
    let result = async {
        let admin_apikey = server::random_key()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        let started = Instant::now();
        let mut first = Server::start(binary, args.algorithm, &admin_apikey, &node_options(0))?;
        first.wait_ready(&http, READY_LIMIT).await?;
        let bootstrap_time = started.elapsed();
        first.stop();

        progress(&format!("{label}: loading through the store"));
        let population = load_store(
            args,
            database_url,
            schema.as_deref(),
            scratch.path(),
            &master,
        )
        .await?;
        progress(&format!(
            "{label}: {} objects in {:.1} s",
            population.written,
            population.elapsed.as_secs_f64()
        ));

        let mut servers = Vec::new();
        let mut startups = Vec::new();
        let spawned: Vec<(Instant, Server)> = (0..nodes)
            .map(|i| {
                let at = Instant::now();
                Server::start(binary, args.algorithm, &admin_apikey, &node_options(i))
                    .map(|s| (at, s))
            })
            .collect::<anyhow::Result<_>>()?;
        for (at, mut node) in spawned {
            node.wait_ready(&http, READY_LIMIT).await?;
            let ready_after = at.elapsed();
            startups.push(Startup {
                ready_after,
                rss_kib: node.rss_kib(),
                hwm_kib: server::status_kib(node.pid(), "VmHWM"),
            });
            servers.push(node);
        }
        for (i, s) in startups.iter().enumerate() {
            progress(&format!(
                "{label}: node {} ready after {:.2} s, RSS {}",
                i + 1,
                s.ready_after.as_secs_f64(),
                mib(s.rss_kib)
            ));
        }
        let bases: Vec<String> = servers.iter().map(|s| s.base_url.clone()).collect();
        let admin_token = server::token_for(&http, &bases[0], &admin_apikey)
            .await
            .context("the administrator's token")?;

        let rates = token_rates(args, &servers, &population, database_url.is_some()).await?;
        let loaded = servers
            .iter()
            .map(|s| (s.rss_kib(), server::status_kib(s.pid(), "VmHWM")))
            .collect();
        progress(&format!("{label}: walking the admin lists"));
        let lists = walk_lists(args, &http, &bases[0], &admin_token, &population).await?;
        progress(&format!("{label}: propagation"));
        let (propagation, delete_ms) =
            propagation(args, &http, &bases, &admin_token, &population).await?;
        for mut node in servers {
            node.ensure_running()?;
            node.stop();
        }
        Ok(SetupResult {
            label: label.clone(),
            nodes,
            population,
            bootstrap: bootstrap_time,
            startups,
            rates,
            loaded,
            lists,
            propagation,
            delete_ms,
        })
    }
    .await;
    if let (Some(url), Some(schema)) = (database_url, &schema) {
        let store = tessera_store::PostgresStore::connect_with_schema(url, schema)
            .await
            .with_context(|| format!("connecting to drop the schema {schema}"))?;
        let dropped = store.drop_schema().await;
        store.close().await;
        dropped.with_context(|| format!("dropping the schema {schema}"))?;
    }
    result
}

/// Opens the bootstrapped store, unseals the server's pepper with the server's own function and
/// loads the population; closes the store (SQLite checkpoints its log) before the nodes start.
async fn load_store(
    args: &ScaleArgs,
    database_url: Option<&str>,
    schema: Option<&str>,
    scratch: &Path,
    master: &MasterKey,
) -> anyhow::Result<Population> {
    let rng = SystemRandom::new();
    let now = server::unix_now()?;
    let counts = Counts::of(args);
    let store: Box<dyn Store> = match (database_url, schema) {
        (Some(url), Some(schema)) => Box::new(
            tessera_store::PostgresStore::connect_with_schema(url, schema)
                .await
                .context("connecting to PostgreSQL")?,
        ),
        _ => {
            let path = scratch.join("node0").join("tessera.db");
            Box::new(
                tessera_store::SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?,
            )
        }
    };
    let result = async {
        let secrets = bootstrap::load_server_secrets(store.as_ref(), master, &rng).await?;
        populate(store.as_ref(), &secrets.pepper, &counts, args.batch, now).await
    }
    .await;
    store.close().await;
    result
}

/// One-key and random-key runs, alternating.
async fn token_rates(
    args: &ScaleArgs,
    servers: &[Server],
    population: &Population,
    database: bool,
) -> anyhow::Result<Vec<RateRun>> {
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let keys: Vec<String> = population
        .api_keys
        .iter()
        .map(|(_, secret)| secret.clone())
        .collect();
    let one = keys.first().cloned().context("no API key was loaded")?;
    let one_key = Workload::Http(std::sync::Arc::new(Target::apikeys_at_random(
        &addrs,
        std::slice::from_ref(&one),
    )?));
    let random = Workload::Http(std::sync::Arc::new(Target::apikeys_at_random(
        &addrs, &keys,
    )?));
    drop(keys);
    let plan = Plan {
        connections: args.connections,
        server_pids: servers.iter().map(Server::pid).collect(),
        database,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
        half_rate: false,
    };
    let mut runs = Vec::new();
    for round in 0..args.rounds {
        for (is_random, workload) in [(false, &one_key), (true, &random)] {
            let what = if is_random { "random keys" } else { "one key" };
            let phases = load::run(workload.clone(), &plan, |m| {
                progress(&format!("token rate, {what}, round {}: {m}", round + 1))
            })
            .await?;
            runs.push(RateRun {
                random: is_random,
                rate: phases.peak.rate(),
                failures: phases.peak.failures.total(),
                server_cores: phases.peak.cores.server,
                other_cores: phases.peak.cores.other,
            });
        }
    }
    Ok(runs)
}

/// GET `url` as the administrator: the body and how long it took.
async fn timed_get(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(Value, Duration)> {
    let started = Instant::now();
    let body = server::send_json(http.get(url).bearer_auth(token), &format!("GET {url}")).await?;
    Ok((body, started.elapsed()))
}

/// A list to walk: what it is, its path and query, the key of its items, and how many items it
/// holds when the walk reaches the end (for the lists of one account or identity).
struct ListSpec {
    what: String,
    path: String,
    plural: &'static str,
    expected: Option<usize>,
}

/// Walks a list from its first page (or from `after`) by the last item's `id`, for at most
/// `max_pages` pages.
async fn walk(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    spec: &ListSpec,
    limit: u32,
    max_pages: usize,
) -> anyhow::Result<ListWalk> {
    let ListSpec {
        what,
        path: path_and_query,
        plural,
        expected,
    } = spec;
    let (what, plural, expected) = (what.as_str(), *plural, *expected);
    let mut walk = ListWalk {
        what: format!("{what}, {limit} per page"),
        pages_ms: Vec::new(),
        items: 0,
        expected,
    };
    let mut after: Option<String> = None;
    let separator = if path_and_query.contains('?') {
        '&'
    } else {
        '?'
    };
    while walk.pages_ms.len() < max_pages {
        let mut url = format!("{base}{path_and_query}{separator}limit={limit}");
        if let Some(after) = &after {
            url.push_str("&after=");
            url.push_str(after);
        }
        let (body, took) = timed_get(http, &url, token).await?;
        walk.pages_ms.push(took.as_secs_f64() * 1000.0);
        let items = body[plural]
            .as_array()
            .with_context(|| format!("GET {url} answered without {plural}"))?;
        walk.items += items.len();
        match items.last().and_then(|item| item["id"].as_str()) {
            Some(last) if items.len() == limit as usize => after = Some(last.to_owned()),
            _ => {
                if let Some(expected) = expected {
                    if walk.items != expected {
                        anyhow::bail!(
                            "{what}: the pages held {} items, {expected} were loaded",
                            walk.items
                        );
                    }
                }
                return Ok(walk);
            }
        }
    }
    Ok(walk)
}

/// The admin lists, each walked page by page, and deep pages of the unfiltered ones.
async fn walk_lists(
    args: &ScaleArgs,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    population: &Population,
) -> anyhow::Result<Vec<ListWalk>> {
    use tessera_api::paths;
    let limit = args.page_limit;
    let max = args.max_pages;
    let accounts = population.accounts.len();
    let account = &population.accounts[0];
    let share = |total: usize| Population::share(total, accounts, 0);
    // Keys of account 0: those of its service accounts and of its users.
    let owners = population.owner_count();
    let key_share = (0..population.api_keys.len())
        .filter(|i| population.owner(*i).1 == account.as_str())
        .count();
    let binding_share = (0..population.bindings)
        .filter(|i| population.owner(*i).1 == account.as_str())
        .count();
    let (owner, _) = population.owner(0);
    let owner_keys = Population::share(population.api_keys.len(), owners, 0);
    let owner_bindings = Population::share(population.bindings, owners, 0);
    let spec = |what: &str, path: String, plural: &'static str, expected: Option<usize>| ListSpec {
        what: what.to_owned(),
        path,
        plural,
        expected,
    };
    let specs = [
        spec(
            "service accounts of one account",
            format!("{}?account_id={account}", paths::SERVICE_ACCOUNTS),
            "service_accounts",
            Some(share(population.service_accounts.len())),
        ),
        spec(
            "users of one account",
            format!("{}?account_id={account}", paths::USERS),
            "users",
            Some(share(population.users.len())),
        ),
        spec(
            "API keys of one account",
            format!("{}?account_id={account}", paths::API_KEYS),
            "api_keys",
            Some(key_share),
        ),
        spec(
            "API keys of one service account",
            format!("{}?owner_iam_id={owner}", paths::API_KEYS),
            "api_keys",
            Some(owner_keys),
        ),
        spec(
            "bindings on one account",
            format!("{}?resource=account/{account}", paths::ACCESS_BINDINGS),
            "access_bindings",
            Some(binding_share),
        ),
        spec(
            "bindings of one subject",
            format!("{}?subject_iam_id={owner}", paths::ACCESS_BINDINGS),
            "access_bindings",
            Some(owner_bindings),
        ),
        spec(
            "trusted profiles of one account",
            format!("{}?account_id={account}", paths::TRUSTED_PROFILES),
            "trusted_profiles",
            Some(share(population.profiles)),
        ),
        spec(
            "accounts (all)",
            paths::ACCOUNTS.to_owned(),
            "accounts",
            None,
        ),
        spec(
            "service accounts (all)",
            paths::SERVICE_ACCOUNTS.to_owned(),
            "service_accounts",
            None,
        ),
        spec(
            "API keys (all)",
            paths::API_KEYS.to_owned(),
            "api_keys",
            None,
        ),
        spec(
            "bindings (all)",
            paths::ACCESS_BINDINGS.to_owned(),
            "access_bindings",
            None,
        ),
    ];
    let mut walks = Vec::new();
    for spec in &specs {
        let walked = walk(http, base, token, spec, limit, max).await?;
        progress(&format!(
            "  {}: {} pages, max {:.1} ms",
            walked.what,
            walked.pages_ms.len(),
            walked.max_ms()
        ));
        walks.push(walked);
    }
    // Deep pages: a cursor anywhere in the key range, as a client far into a walk holds.
    let mut key_ids: Vec<&str> = population
        .api_keys
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    key_ids.sort_unstable();
    let mut deep = ListWalk {
        what: format!("API keys (all) at a random cursor, {limit} per page"),
        pages_ms: Vec::new(),
        items: 0,
        expected: None,
    };
    for i in 0..args.deep_pages {
        let at = key_ids[(i * 7919 + 13) % key_ids.len()];
        let url = format!("{base}{}?limit={limit}&after={at}", paths::API_KEYS);
        let (body, took) = timed_get(http, &url, token).await?;
        deep.pages_ms.push(took.as_secs_f64() * 1000.0);
        let items = body["api_keys"]
            .as_array()
            .with_context(|| format!("GET {url} answered without api_keys"))?;
        if items
            .first()
            .and_then(|item| item["id"].as_str())
            .is_some_and(|first| first <= at)
        {
            anyhow::bail!("GET {url} answered a page that does not start after the cursor");
        }
        deep.items += items.len();
    }
    progress(&format!(
        "  {}: {} pages, max {:.1} ms",
        deep.what,
        deep.pages_ms.len(),
        deep.max_ms()
    ));
    walks.push(deep);
    Ok(walks)
}

/// The status of one API-key grant with `apikey` at `base`.
async fn token_status(http: &reqwest::Client, base: &str, apikey: &str) -> anyhow::Result<u16> {
    let response = http
        .post(format!("{base}/identity/token"))
        .header("Accept", "application/json")
        .form(&[
            ("grant_type", server::APIKEY_GRANT),
            ("apikey", apikey),
            ("response_type", "cloud_iam"),
        ])
        .send()
        .await
        .context("POST /identity/token")?;
    Ok(response.status().as_u16())
}

/// Deletes API keys through the first node; times until the last node refuses each (with one
/// node: checks that it refuses at once). Returns the propagation times and the DELETE times.
async fn propagation(
    args: &ScaleArgs,
    http: &reqwest::Client,
    bases: &[String],
    admin_token: &str,
    population: &Population,
) -> anyhow::Result<(Vec<Duration>, Vec<f64>)> {
    let (first, last) = match (bases.first(), bases.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => anyhow::bail!("no node"),
    };
    let mut samples = Vec::new();
    let mut deletes = Vec::new();
    let keys = &population.api_keys;
    for i in 0..args.propagation_samples.min(keys.len()) {
        let (id, apikey) = &keys[(i * 104_729 + 1) % keys.len()];
        let before = token_status(http, last, apikey).await?;
        if before != 200 {
            anyhow::bail!("a loaded API key was refused ({before}) before it was deleted");
        }
        let started = Instant::now();
        let response = http
            .delete(format!("{first}{}/{id}", tessera_api::paths::API_KEYS))
            .bearer_auth(admin_token)
            .send()
            .await
            .context("DELETE /v1/api_keys/{id}")?;
        if !response.status().is_success() {
            anyhow::bail!("DELETE /v1/api_keys/{id} answered {}", response.status());
        }
        let deleted = Instant::now();
        deletes.push((deleted - started).as_secs_f64() * 1000.0);
        if bases.len() == 1 {
            let status = token_status(http, first, apikey).await?;
            if status == 200 {
                anyhow::bail!("a deleted API key still worked on the node that deleted it");
            }
            continue;
        }
        loop {
            let status = token_status(http, last, apikey).await?;
            if status == 400 {
                samples.push(deleted.elapsed());
                break;
            }
            if status != 200 {
                anyhow::bail!("polling the other node for a deleted key answered {status}");
            }
            if deleted.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("a key deleted on node 1 still worked on node 2 after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    Ok((samples, deletes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        for (total, slots) in [(1_000_000, 100), (7, 3), (2, 5)] {
            let sum: usize = (0..slots).map(|s| Population::share(total, slots, s)).sum();
            assert_eq!(sum, total);
        }
        assert_eq!(Population::share(7, 3, 0), 3);
        assert_eq!(Population::share(7, 3, 2), 2);
    }

    #[test]
    fn owners_cover_service_accounts_then_users_in_their_accounts() {
        let population = Population {
            accounts: vec!["a0".into(), "a1".into()],
            service_accounts: vec!["iam-s0".into(), "iam-s1".into(), "iam-s2".into()],
            users: vec!["u0".into(), "u1".into()],
            ..Population::default()
        };
        assert_eq!(population.owner(0), ("iam-s0", "a0"));
        assert_eq!(population.owner(2), ("iam-s2", "a0"));
        assert_eq!(population.owner(3), ("u0", "a0"));
        assert_eq!(population.owner(4), ("u1", "a1"));
        assert_eq!(population.owner(5), ("iam-s0", "a0"));
    }

    #[tokio::test]
    async fn populate_writes_what_the_server_will_accept() {
        let dir = tempfile::tempdir().unwrap();
        let store = tessera_store::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let pepper = Pepper::from_bytes(&[7; 32]);
        let counts = Counts {
            accounts: 2,
            service_accounts: 3,
            users: 2,
            api_keys: 11,
            bindings: 6,
            profiles: 3,
        };
        let population = populate(&store, &pepper, &counts, 4, 1_700_000_000)
            .await
            .unwrap();
        assert_eq!(population.written, 2 + 3 + 2 + 11 + 6 + 3);
        assert_eq!(population.api_keys.len(), 11);
        let (entities, _) = store.load_all(1_700_000_000).await.unwrap();
        let mut dir = tessera_core::directory::Directory::new();
        for entity in entities {
            dir.apply(tessera_core::directory::Change::Upsert(entity));
        }
        // Every loaded key authenticates with the server's own function, as its owner.
        for (i, (_, apikey)) in population.api_keys.iter().enumerate() {
            let principal = tessera_core::authn::authenticate_api_key(&dir, &pepper, apikey)
                .unwrap_or_else(|e| panic!("key {i}: {e}"));
            assert_eq!(principal.iam_id(), population.owner(i).0);
        }
        // A key hashed with another pepper is not one of them.
        let other = Pepper::from_bytes(&[8; 32]);
        let (_, apikey) = &population.api_keys[0];
        assert!(tessera_core::authn::authenticate_api_key(&dir, &other, apikey).is_err());
        store.close().await;
    }
}
