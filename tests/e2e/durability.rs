//! Loses nothing, stays up (issue 13): a first start whose port is taken creates nothing and
//! the next start still prints the administrator's key; a bootstrap key on an initialised
//! store is a warning; one server per data directory (a second `serve`, `import`, `migrate`,
//! `restore` or `admin recover` is refused at once, naming the holder's PID; `export` and
//! `backup` still read); a backup taken under write load restores with every write it
//! acknowledged before; 20 rounds of start, write, SIGTERM leave `tessera.db` alone complete;
//! SIGKILL at random moments of a write stream loses no acknowledged write (on the store the run
//! is on: SQLite, or PostgreSQL with `TESSERA_E2E_STORE=postgres`); `admin recover` mints a
//! working global administrator key.
//!
//! The SQLite-only tests (`tessera.db`, backup, the lock) return at once in the PostgreSQL run,
//! which repeats only what differs there.

use crate::harness::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_client::api::token::IbmTokenResponse;
use tessera_core::directory::{Entity, EntityKind};
use tessera_store::{ListFilter, Store};

/// The administrator key the first start printed (the line `admin API key:  tsk_…`).
fn printed_admin_key(server: &TestServer) -> Option<String> {
    server.stdout.lock().unwrap().iter().find_map(|line| {
        line.trim()
            .strip_prefix("admin API key:")
            .map(|k| k.trim().to_owned())
    })
}

/// Runs `tessera serve` on `data` expecting it to fail within 20 s; returns its stderr.
fn serve_refused(work: &Path, data: &Path, listen: &str, extra: &[&str]) -> String {
    let started = Instant::now();
    let mut args = vec![
        "serve",
        "--listen",
        listen,
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let stderr = fails(tessera(work, &args, &[]));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the refusal took {:?}",
        started.elapsed()
    );
    stderr
}

#[tokio::test]
async fn a_first_start_that_cannot_listen_creates_nothing_and_the_next_one_prints_the_key() {
    if on_postgres() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let stderr = serve_refused(work.path(), &data, &listen, &[]);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    // Bad TLS material fails just as early.
    let stderr = serve_refused(
        work.path(),
        &data,
        "127.0.0.1:0",
        &[
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ],
    );
    assert!(stderr.contains("cert.pem"), "{stderr}");
    for created in ["tessera.db", "master.key"] {
        assert!(
            !data.join(created).exists(),
            "{created} was created by a start that failed"
        );
    }
    drop(taken);

    let server = TestServer::start_sqlite(
        &["--listen", &listen, "--data-dir", data.to_str().unwrap()],
        &[("TESSERA_BOOTSTRAP_ADMIN_APIKEY", "")],
    )
    .await;
    let key = printed_admin_key(&server).expect("the first successful start prints the key");
    assert!(key.starts_with("tsk_"), "{key}");
    let token = server.token(&key).await;
    let (status, _) = server.admin_get("/v1/accounts", &token).await;
    assert_eq!(status, 200, "the printed key is a global administrator's");
}

#[tokio::test]
async fn a_bootstrap_key_on_an_initialised_store_is_a_clear_warning() {
    if on_postgres() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let first = TestServer::start_sqlite(&["--data-dir", &data_arg], &[]).await;
    drop(first);
    let warning = "TESSERA_BOOTSTRAP_ADMIN_APIKEY is set, but this installation was initialised";
    // The same key again: it is the installation's key, so nothing to warn about.
    let same = TestServer::start_sqlite(&["--data-dir", &data_arg], &[]).await;
    assert!(!same.logs().contains(warning), "{}", same.logs());
    drop(same);
    let other = "e2e-another-admin-key-0123456789abcdefghij";
    let server = TestServer::start_sqlite(
        &["--data-dir", &data_arg],
        &[("TESSERA_BOOTSTRAP_ADMIN_APIKEY", other)],
    )
    .await;
    let logs = server.logs();
    assert!(logs.contains(warning), "{logs}");
    assert!(logs.contains("tessera admin recover"), "{logs}");
    assert!(!logs.contains(other), "the key is never shown");
    let response = server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", other)])
        .await;
    assert_eq!(response.status(), 400, "the ignored key does not work");
}

#[tokio::test]
async fn one_server_per_data_directory_and_read_only_commands_still_work() {
    if on_postgres() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let server = TestServer::start_sqlite(&["--data-dir", &data_arg], &[]).await;
    let pid = format!("PID {}", server.pid());
    let stderr = serve_refused(work.path(), &data, "127.0.0.1:0", &[]);
    assert!(
        stderr.contains(&data_arg) && stderr.contains(&pid),
        "{stderr}"
    );
    assert!(stderr.contains("`tessera serve`"), "{stderr}");

    let export = work.path().join("export.json");
    ok(tessera(
        work.path(),
        &[
            "export",
            "--data-dir",
            &data_arg,
            "--output",
            export.to_str().unwrap(),
        ],
        &[],
    ));
    let backup = work.path().join("backup.db");
    ok(tessera(
        work.path(),
        &[
            "backup",
            "--data-dir",
            &data_arg,
            "--output",
            backup.to_str().unwrap(),
        ],
        &[],
    ));
    for args in [
        vec!["migrate", "--data-dir", &data_arg],
        vec![
            "import",
            "--data-dir",
            &data_arg,
            "--input",
            export.to_str().unwrap(),
        ],
        vec![
            "restore",
            "--data-dir",
            &data_arg,
            "--input",
            backup.to_str().unwrap(),
        ],
        vec!["admin", "recover", "--data-dir", &data_arg],
    ] {
        let stderr = fails(tessera(work.path(), &args, &[]));
        assert!(
            stderr.contains(&data_arg) && stderr.contains(&pid),
            "{args:?}: {stderr}"
        );
    }
    // The server noticed nothing.
    server.admin_token().await;
}

/// Creates service accounts named `<prefix>-<n>` from `writers` tasks until `stop` is set;
/// returns the names answered 201 and the names attempted.
fn write_stream(
    server: Arc<TestServer>,
    token: String,
    prefix: &str,
    writers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(BTreeSet<String>, BTreeSet<String>)> {
    write_stream_counted(server, token, prefix, writers, stop, Arc::default())
}

/// [`write_stream`], counting acknowledged writes in `count` as they come.
fn write_stream_counted(
    server: Arc<TestServer>,
    token: String,
    prefix: &str,
    writers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    count: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<(BTreeSet<String>, BTreeSet<String>)> {
    let prefix = prefix.to_owned();
    tokio::spawn(async move {
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let tried = Arc::new(Mutex::new(BTreeSet::new()));
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let (server, token, prefix) = (server.clone(), token.clone(), prefix.clone());
            let (acked, tried, stop) = (acked.clone(), tried.clone(), stop.clone());
            let count = count.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("{prefix}-{writer}-{n}");
                    n += 1;
                    tried.lock().unwrap().insert(name.clone());
                    let sent = server
                        .http
                        .post(format!("{}/v1/service_accounts", server.url))
                        .bearer_auth(&token)
                        .json(&json!({"name": name}))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 201 => {
                            acked.lock().unwrap().insert(name);
                            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        // The server is gone (killed): this write was not acknowledged.
                        Err(_) => break,
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let acked = acked.lock().unwrap().clone();
        let tried = tried.lock().unwrap().clone();
        (acked, tried)
    })
}

/// Every service account's name in `store`, with its id.
/// The names of the service accounts in `store`.
async fn stored_names(store: &dyn Store) -> BTreeSet<String> {
    let all = stored_service_accounts(store).await;
    all.into_iter().map(|(name, _)| name).collect()
}

async fn stored_service_accounts(store: &dyn Store) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(
                EntityKind::ServiceAccount,
                &ListFilter {
                    after: after.clone(),
                    limit: Some(1000),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let done = page.len() < 1000;
        for entity in page {
            if let Entity::ServiceAccount(sa) = entity {
                after = Some(sa.id.clone());
                all.push((sa.name, sa.id));
            }
        }
        if done {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_with_every_acknowledged_write() {
    if on_postgres() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let master = master_key();
    let data = work.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let env = [("TESSERA_MASTER_KEY", master.as_str())];
    let server = Arc::new(TestServer::start_sqlite(&["--data-dir", &data_arg], &env).await);
    let token = server.admin_token().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stream = write_stream(server.clone(), token, "backup", 3, stop.clone());
    // What was acknowledged before the backup began must be in it. Waits for a few writes
    // rather than for a fixed time, which a loaded machine may spend on far fewer.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let before: BTreeSet<String> = loop {
        let names = stored_names(server.open_store().await.as_ref()).await;
        if names.len() >= 10 || std::time::Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let backup = work.path().join("backup.db");
    let (work_path, backup_arg) = (work.path().to_path_buf(), backup.clone());
    let data_for_backup = data_arg.clone();
    let output = tokio::task::spawn_blocking(move || {
        tessera(
            &work_path,
            &[
                "backup",
                "--data-dir",
                &data_for_backup,
                "--output",
                backup_arg.to_str().unwrap(),
            ],
            &[],
        )
    })
    .await
    .unwrap();
    let said = ok(output);
    assert!(said.contains("Backed up"), "{said}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, _) = stream.await.unwrap();
    assert!(
        before.len() >= 10,
        "too few writes before the backup: {}",
        before.len()
    );
    assert!(
        acked.len() > before.len(),
        "writes continued during the backup"
    );
    // No second file appears beside the backup: it is complete by itself.
    for sidecar in ["backup.db-wal", "backup.db-shm", ".backup.db.partial"] {
        assert!(!work.path().join(sidecar).exists(), "{sidecar} left behind");
    }
    let server = Arc::try_unwrap(server).ok().expect("writers are done");
    drop(server);

    // A wrong master key is refused before anything changes.
    let fresh = work.path().join("restored");
    let fresh_arg = fresh.to_str().unwrap().to_owned();
    let restore = |env: &[(&str, &str)]| {
        let args = [
            "restore",
            "--data-dir",
            &fresh_arg,
            "--input",
            backup.to_str().unwrap(),
        ];
        tessera(work.path(), &args, env)
    };
    let stderr = fails(restore(&[("TESSERA_MASTER_KEY", &master_key())]));
    assert!(stderr.contains("master key does not open"), "{stderr}");
    assert!(!fresh.join("tessera.db").exists());
    let said = ok(restore(&env));
    assert!(said.contains("Restored"), "{said}");
    let restored = TestServer::start_sqlite(&["--data-dir", &fresh_arg], &env).await;
    let names = stored_names(restored.open_store().await.as_ref()).await;
    let missing: Vec<&String> = before.difference(&names).collect();
    assert!(missing.is_empty(), "missing after restore: {missing:?}");
    // The restored installation works: its administrator key and signing keys came along.
    restored.admin_token().await;

    // Restoring over an existing store keeps the old one beside it.
    drop(restored);
    let said = ok(restore(&env));
    assert!(said.contains("tessera.db.before-restore-"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_rounds_of_start_write_sigterm_leave_tessera_db_alone_complete() {
    if on_postgres() {
        return;
    }
    let started = Instant::now();
    // Four installations at once, five rounds each.
    let mut installations = Vec::new();
    for installation in 0..4 {
        installations.push(tokio::spawn(async move {
            let work = tempfile::tempdir().unwrap();
            let data = work.path().join("data");
            let data_arg = data.to_str().unwrap().to_owned();
            let mut acked = BTreeSet::new();
            let mut server = TestServer::start_sqlite(&["--data-dir", &data_arg], &[]).await;
            for round in 0..5 {
                let token = server.admin_token().await;
                for n in 0..3 {
                    let name = format!("term-{installation}-{round}-{n}");
                    server
                        .create(&token, "service_accounts", json!({"name": name}))
                        .await;
                    acked.insert(name);
                }
                let status = server.stop_status();
                assert!(
                    status.is_some_and(|s| s.success()),
                    "round {round}: exit {status:?}"
                );
                let wal = data.join("tessera.db-wal");
                assert!(
                    std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0,
                    "round {round}: the write-ahead log still holds data after a clean stop"
                );
                // tessera.db alone, copied elsewhere without its -wal/-shm, has every write.
                let copy_dir = tempfile::tempdir().unwrap();
                let copy = copy_dir.path().join("tessera.db");
                std::fs::copy(data.join("tessera.db"), &copy).unwrap();
                let store = tessera_store::SqliteStore::open(&copy).await.unwrap();
                let names = stored_names(&store).await;
                store.close().await;
                let missing: Vec<&String> = acked.difference(&names).collect();
                assert!(
                    missing.is_empty(),
                    "round {round}: tessera.db lacks {missing:?}"
                );
                server = server.restart().await;
            }
        }));
    }
    for installation in installations {
        installation.await.unwrap();
    }
    eprintln!("20 SIGTERM rounds took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_of_a_write_stream_loses_nothing_acknowledged() {
    let started = Instant::now();
    let rounds_per_installation = 5;
    let mut installations = Vec::new();
    for installation in 0..4 {
        installations.push(tokio::spawn(async move {
            let mut server = TestServer::start().await;
            let mut acked_all = BTreeSet::new();
            let mut tried_all = BTreeSet::new();
            for round in 0..rounds_per_installation {
                let token = server.admin_token().await;
                let shared = Arc::new(server);
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let stream = write_stream_counted(
                    shared.clone(),
                    token,
                    &format!("kill-{installation}-{round}"),
                    4,
                    stop.clone(),
                    count.clone(),
                );
                // Once writes flow, kill at a random moment within the next 600 ms.
                let flowing = Instant::now();
                while count.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                    assert!(
                        flowing.elapsed() < Duration::from_secs(20),
                        "no write succeeds"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let mut random = [0u8; 2];
                aws_lc_rs::rand::fill(&mut random).unwrap();
                let wait = u64::from(u16::from_le_bytes(random)) % 600;
                tokio::time::sleep(Duration::from_millis(wait)).await;
                // SIGKILL: no shutdown, no checkpoint, requests cut mid-flight.
                let pid = shared.pid();
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                let (acked, tried) = stream.await.unwrap();
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                assert!(
                    !acked.is_empty(),
                    "round {round}: nothing was written before the kill"
                );
                acked_all.extend(acked);
                tried_all.extend(tried);
                let mut killed = Arc::try_unwrap(shared).ok().expect("writers are done");
                killed.kill();
                // It starts cleanly and has every acknowledged write, and nothing never sent.
                server = killed.restart().await;
                let store = server.open_store().await;
                let stored = stored_service_accounts(store.as_ref()).await;
                let names: BTreeSet<String> = stored.iter().map(|(name, _)| name.clone()).collect();
                let missing: Vec<&String> = acked_all.difference(&names).collect();
                assert!(missing.is_empty(), "round {round}: lost {missing:?}");
                let unknown: Vec<&String> = names
                    .iter()
                    .filter(|n| n.starts_with("kill-") && !tried_all.contains(*n))
                    .collect();
                assert!(
                    unknown.is_empty(),
                    "round {round}: never written: {unknown:?}"
                );
                // Nothing half-written: each stored account has the audit event of its write.
                let audited: BTreeSet<String> = store
                    .list_audit(&tessera_store::AuditFilter::newest(100_000))
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|r| r.target_kind == "service_account")
                    .map(|r| r.target_key)
                    .collect();
                for (name, id) in &stored {
                    assert!(
                        audited.contains(id),
                        "round {round}: {name} has no audit event"
                    );
                }
                // And it serves: the snapshot loaded and the admin key works.
                server.admin_token().await;
            }
            (acked_all.len(), tried_all.len())
        }));
    }
    let mut acked = 0;
    for installation in installations {
        acked += installation.await.unwrap().0;
    }
    eprintln!(
        "{} SIGKILL rounds ({}) with {acked} acknowledged writes took {:?}",
        4 * rounds_per_installation,
        if on_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        started.elapsed()
    );
}

#[tokio::test]
async fn admin_recover_mints_a_working_global_administrator_key() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let store_args = server.store_args();
    let mut args: Vec<&str> = vec!["admin", "recover"];
    args.extend(store_args.iter().map(String::as_str));
    // The master key is in the data directory (SQLite) or must be given (PostgreSQL).
    let master_file = server.data_dir().join("master.key");
    let master_arg = master_file.to_str().unwrap().to_owned();
    args.extend(["--master-key-file", &master_arg]);
    let server = if server.schema.is_some() {
        server
    } else {
        // The embedded store: offline, with the server stopped.
        let mut server = server;
        server.stop();
        server
    };
    let wrong = fails(tessera(
        work.path(),
        &args,
        &[("TESSERA_MASTER_KEY", &master_key())],
    ));
    assert!(wrong.contains("master key does not match"), "{wrong}");
    let said = ok(tessera(work.path(), &args, &[]));
    let key = said
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("admin API key:")
                .map(|k| k.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no key printed: {said}"));
    assert!(key.starts_with("tsk_"), "{said}");
    let server = if server.schema.is_some() {
        server
    } else {
        server.restart().await
    };
    // Online (PostgreSQL) the node sees the new administrator within a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let token = loop {
        let response = server
            .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", &key)])
            .await;
        if response.status() == 200 {
            let body: IbmTokenResponse = response.json().await.unwrap();
            break access_of(&body);
        }
        assert!(Instant::now() < deadline, "the recovered key does not work");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, accounts) = server.admin_get("/v1/accounts", &token).await;
    assert_eq!(status, 200, "a global administrator: {accounts}");
    let (status, audit) = server.admin_get("/v1/audit?limit=50", &token).await;
    assert_eq!(status, 200);
    assert!(
        audit.to_string().contains("installation.recover"),
        "the recovery is in the audit log: {audit}"
    );
    assert!(!audit.to_string().contains(&key), "never the key itself");
}
