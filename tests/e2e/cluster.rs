//! Several nodes on one PostgreSQL database: propagation of changes between nodes, concurrent
//! first start, key rotation under load, and a database outage. These tests need
//! `TESSERA_TEST_DATABASE_URL` (CI sets it) and say so and pass when it is missing.

use crate::harness::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_client::api::admin::ListQuery;
use tessera_client::api::token::IbmTokenResponse;
use tessera_client::resource::{ApiKeys, ServiceAccounts};
use tessera_core::directory::{Entity, EntityKind};
use tessera_store::{ListFilter, Store};

const ISSUER: &str = "http://tessera.cluster.test/identity";

fn skip() -> Option<String> {
    let url = postgres_url();
    if url.is_none() {
        eprintln!(
            "skipped: TESSERA_TEST_DATABASE_URL is not set, so the multi-node tests cannot run"
        );
    }
    url
}

/// Nodes of one installation: one PostgreSQL schema, one master key, the bootstrap key
/// [`ADMIN_KEY`].
struct Cluster {
    schema: Arc<PgSchema>,
    master: String,
}

impl Cluster {
    /// A new schema on the test database, or `None` (the test is skipped) without one.
    fn new() -> Option<Cluster> {
        let url = skip()?;
        Some(Cluster {
            schema: Arc::new(PgSchema::new(&url)),
            master: master_key(),
        })
    }

    /// Starts a node with `args`.
    async fn node(&self, args: &[&str]) -> TestServer {
        let env = [
            ("TESSERA_MASTER_KEY", self.master.as_str()),
            ("TESSERA_BOOTSTRAP_ADMIN_APIKEY", ADMIN_KEY),
        ];
        TestServer::start_node(self.schema.clone(), args, &env).await
    }
}

/// Polls `check` every 25 ms until it holds; returns how long that took (panics after `limit`).
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn introspect_active(node: &TestServer, bearer: &str, token: &str) -> Option<bool> {
    let response = node
        .http
        .post(format!("{}/identity/introspect", node.url))
        .bearer_auth(bearer)
        .form(&[("token", token)])
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["active"].as_bool()
}

async fn token_status(node: &TestServer, apikey: &str) -> u16 {
    node.token_response(&[("grant_type", APIKEY_GRANT), ("apikey", apikey)])
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_node_take_effect_on_every_node_within_a_second() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let args = ["--issuer", ISSUER];
    let a = cluster.node(&args).await;
    let b = cluster.node(&args).await;
    let c = cluster.node(&args).await;
    let admin = a.admin_token().await;

    // A credential created through A works on B and C within a second.
    let (_, apikey) = a.service_account_with_key().await;
    for node in [&b, &c] {
        let took = within(Duration::from_secs(1), "new key usable", || async {
            token_status(node, &apikey).await == 200
        })
        .await;
        eprintln!("creation visible on another node after {took:?}");
    }

    // A token minted by any node verifies on every node.
    for minter in [&a, &b, &c] {
        let token = minter.token(&apikey).await;
        for verifier in [&a, &b, &c] {
            assert_eq!(
                introspect_active(verifier, &admin, &token).await,
                Some(true)
            );
        }
    }

    // Revoke on C: refused on A and B within a second.
    let token = a.token(&apikey).await;
    let response = c.revoke(&token).await;
    assert_eq!(response.status(), 200);
    for node in [&a, &b] {
        let took = within(Duration::from_secs(1), "revocation visible", || async {
            introspect_active(node, &admin, &token).await == Some(false)
        })
        .await;
        eprintln!("revocation visible on another node after {took:?}");
    }

    // Delete the key on B: refused on A and C within a second.
    let key_id = {
        let query = ListQuery {
            limit: Some(1000),
            ..ListQuery::default()
        };
        let caller = b.client().with_token(admin.clone());
        let keys = caller.list::<ApiKeys>(&query).await.unwrap();
        keys.into_iter().find(|k| k.name == "e2e").unwrap().id
    };
    let (status, _) = b
        .admin_delete(&format!("/v1/api_keys/{key_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        token_status(&b, &apikey).await,
        400,
        "refused at once on the node that deleted it"
    );
    for node in [&a, &c] {
        let took = within(Duration::from_secs(1), "deletion visible", || async {
            token_status(node, &apikey).await == 400
        })
        .await;
        eprintln!("deletion visible on another node after {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_create_keys_and_administrator_once() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let args = ["--issuer", ISSUER];
    let (a, b, c) = tokio::join!(
        cluster.node(&args),
        cluster.node(&args),
        cluster.node(&args),
    );
    let store = cluster.schema.store().await;
    let all = |kind| {
        let store = &store;
        async move {
            store
                .list(
                    kind,
                    &ListFilter {
                        limit: Some(1000),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(
        all(EntityKind::SigningKey).await.len(),
        2,
        "one JWT key and one Ed25519 key"
    );
    assert_eq!(all(EntityKind::Account).await.len(), 1);
    assert_eq!(all(EntityKind::User).await.len(), 1);
    assert_eq!(all(EntityKind::ApiKey).await.len(), 1);
    // Exactly one node printed the first-start banner.
    let banners = [&a, &b, &c]
        .iter()
        .filter(|n| {
            n.stdout
                .lock()
                .unwrap()
                .join("\n")
                .contains("admin API key")
        })
        .count();
    assert_eq!(banners, 1);
    // All nodes sign with the same key.
    let mut kids = HashSet::new();
    for node in [&a, &b, &c] {
        kids.insert(kid_of(&node.admin_token().await));
    }
    assert_eq!(kids.len(), 1);
}

async fn published_kids(node: &TestServer) -> HashSet<String> {
    let Ok(response) = node
        .http
        .get(format!("{}/identity/keys", node.url))
        .send()
        .await
    else {
        return HashSet::new();
    };
    let jwks: Value = response.json().await.unwrap_or(Value::Null);
    jwks["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_under_load_without_losing_a_request() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    // A 12 s period with a 2 s JWKS cache: a successor is published 4 s before it signs.
    let args = [
        "--issuer",
        ISSUER,
        "--key-rotation-period",
        "12",
        "--jwks-cache-seconds",
        "2",
        "--rotation-check-interval",
        "1",
        "--token-lifetime",
        "60",
    ];
    let (a, b) = tokio::join!(cluster.node(&args), cluster.node(&args),);
    // Verifiers are told the configured cache time, which the publication lead is based on.
    let response = a.get("/identity/keys").await;
    assert_eq!(response.headers()["cache-control"], "public, max-age=2");
    let nodes = Arc::new([a, b]);
    let started = Instant::now();
    let run_for = Duration::from_secs(27);

    // When each kid was first seen in each node's JWKS.
    let first_published: Arc<Mutex<HashMap<(usize, String), Duration>>> = Arc::default();
    let watcher = {
        let nodes = nodes.clone();
        let first_published = first_published.clone();
        tokio::spawn(async move {
            while started.elapsed() < run_for + Duration::from_secs(1) {
                for (i, node) in nodes.iter().enumerate() {
                    for kid in published_kids(node).await {
                        first_published
                            .lock()
                            .unwrap()
                            .entry((i, kid))
                            .or_insert(started.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Keys published before the load starts count as published at its start.
    for (i, node) in nodes.iter().enumerate() {
        for kid in published_kids(node).await {
            first_published
                .lock()
                .unwrap()
                .insert((i, kid), Duration::ZERO);
        }
    }
    // Load: four loops alternating between the nodes.
    let mut loops = Vec::new();
    for worker in 0..4 {
        let nodes = nodes.clone();
        loops.push(tokio::spawn(async move {
            let mut issued = Vec::new();
            let mut failures = 0;
            let mut i = worker;
            while started.elapsed() < run_for {
                let node = &nodes[i % 2];
                let response = node
                    .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)])
                    .await;
                let sent_at = started.elapsed();
                if response.status() == 200 {
                    let body: IbmTokenResponse = response.json().await.unwrap();
                    issued.push((sent_at, access_of(&body)));
                } else {
                    failures += 1;
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (issued, failures)
        }));
    }
    let mut issued = Vec::new();
    for handle in loops {
        let (mut tokens, failures) = handle.await.unwrap();
        assert_eq!(failures, 0, "no request may fail during rotation");
        issued.append(&mut tokens);
    }
    watcher.await.unwrap();
    assert!(issued.len() > 200, "only {} tokens", issued.len());

    // Several keys signed, and each was published by every node before its first token.
    let mut first_signed: HashMap<String, Duration> = HashMap::new();
    for (at, token) in &issued {
        let kid = kid_of(token);
        let entry = first_signed.entry(kid).or_insert(*at);
        *entry = (*entry).min(*at);
    }
    assert!(
        first_signed.len() >= 3,
        "expected at least two rotations, saw kids {first_signed:?}"
    );
    let published = first_published.lock().unwrap().clone();
    for (kid, signed_at) in &first_signed {
        for node in 0..2 {
            let seen = published.get(&(node, kid.clone())).copied();
            assert!(
                seen.is_some_and(|seen| seen <= *signed_at),
                "kid {kid} signed at {signed_at:?} but published on node {node} at {seen:?}"
            );
        }
    }
    // Every token verifies against the JWKS of every node.
    let now = crate::harness::unix_now();
    for node in nodes.iter() {
        let jwks = node.jwks_at("/.well-known/jwks.json").await;
        for (_, token) in &issued {
            jwks.verify(token, ISSUER, now).unwrap();
        }
    }
    // Exactly one node performed each rotation: one key per rotation, spaced a period apart.
    let store = cluster.schema.store().await;
    let mut created: Vec<i64> = store
        .list(
            EntityKind::SigningKey,
            &ListFilter {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Entity::SigningKey(k) if k.key_use == tessera_core::model::KeyUse::Jwt => {
                Some(k.created_at)
            }
            _ => None,
        })
        .collect();
    created.sort();
    for pair in created.windows(2) {
        assert!(
            pair[1] - pair[0] >= 6,
            "two JWT keys created {} s apart: {created:?}",
            pair[1] - pair[0]
        );
    }
}

/// A TCP proxy to PostgreSQL that the test can cut and restore.
struct Proxy {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            target: target.to_owned(),
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Refuses new connections and cuts the open ones.
    fn down(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_serves_from_the_snapshot_then_refuses_then_recovers() {
    let Some(url) = skip() else { return };
    let schema = Arc::new(PgSchema::new(&url));
    // The node reaches PostgreSQL through a proxy the test controls.
    let target = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    let proxy = Proxy::start(&target).await;
    let proxied = url.replacen(&target, &format!("127.0.0.1:{}", proxy.port), 1);
    let proxied_schema = Arc::new(PgSchema {
        url: proxied.clone(),
        name: schema.name.clone(),
    });
    let node = TestServer::start_node(
        proxied_schema.clone(),
        &["--max-staleness", "3"],
        &[("TESSERA_BOOTSTRAP_ADMIN_APIKEY", ADMIN_KEY)],
    )
    .await;
    let admin = node.admin_token().await;
    let before = service_account_in(
        &node.client().with_token(admin.clone()),
        None,
        "before-outage",
    )
    .await;

    proxy.down();
    let cut = Instant::now();
    // Within the staleness bound, tokens are still issued from the snapshot.
    assert_eq!(token_status(&node, ADMIN_KEY).await, 200);
    within(
        Duration::from_secs(4),
        "not ready during the outage",
        || async { node.readyz_status().await == 503 },
    )
    .await;
    // Management writes fail cleanly.
    let (status, body) = node
        .admin_post("/v1/service_accounts", &admin, json!({"name": "during"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    // Past the bound: 503 in each surface's shape.
    let wait = Duration::from_secs(4).saturating_sub(cut.elapsed());
    tokio::time::sleep(wait).await;
    let response = node
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)])
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap()["errorCode"],
        "BXNIM0503E"
    );
    let response = node.introspect_response(&admin, &admin).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    let (status, body) = node.admin_get("/v1/whoami", &admin).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable"))
    );

    // The database returns: everything recovers by itself, and nothing committed was lost.
    proxy.up().await;
    within(Duration::from_secs(15), "ready again", || async {
        node.readyz_status().await == 200
    })
    .await;
    assert_eq!(token_status(&node, ADMIN_KEY).await, 200);
    let admin = node.admin_token().await;
    let got = node
        .client()
        .with_token(admin.clone())
        .get::<ServiceAccounts>(&before.id)
        .await
        .unwrap();
    assert_eq!(got.name, "before-outage");
    node.create(&admin, "service_accounts", json!({"name": "after-outage"}))
        .await;
    drop(proxied_schema);
}
