//! Operating Tessera: first start, restart persistence, configuration precedence, health,
//! readiness, metrics and logs.

use crate::harness::*;
use serde_json::Value;
use std::process::Command;
use tessera_client::api::token::IbmTokenResponse;
use tessera_client::resource::ServiceAccounts;

#[tokio::test]
async fn first_start_prints_a_generated_admin_key_once_and_restart_keeps_everything() {
    let server = TestServer::start_with(&[], &[("TESSERA_BOOTSTRAP_ADMIN_APIKEY", "")]).await;
    // stdout is read by another thread than the log that says the server is up: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let banner = loop {
        let text = server.stdout.lock().unwrap().join("\n");
        if text.contains("admin API key:") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let key = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin API key:"))
        .map(|k| k.trim().to_owned())
        .expect("the banner shows the admin key");
    assert!(key.starts_with("tsk_"), "{banner}");
    // The key is printed on stdout, never in the structured log.
    assert!(!server.stderr.lock().unwrap().join("\n").contains(&key));
    let token = server.token(&key).await;
    let (sa, apikey) = {
        let caller = server.client().with_token(token);
        let sa = service_account_in(&caller, None, "persist").await;
        let apikey = api_key_of(&caller, &sa.iam_id, "k").await;
        (sa, apikey)
    };
    let kid_before = kid_of(&server.token(&apikey).await);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode_of = |name: &str| {
            let path = server.data_dir().join(name);
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode_of("master.key"), 0o600);
        if server.schema.is_none() {
            let db = mode_of("tessera.db");
            assert_eq!(db, 0o600, "the store holds sealed keys and hashes");
        }
        assert_eq!(mode_of(""), 0o700, "the data directory is private");
    }

    let server = server.restart().await;
    assert!(
        !server
            .stdout
            .lock()
            .unwrap()
            .join("\n")
            .contains("admin API key"),
        "printed only on first start"
    );
    // Everything survived: the admin key, the service account, its key, the signing key.
    let token = server.token(&key).await;
    let got = server
        .client()
        .with_token(token)
        .get::<ServiceAccounts>(&sa.id)
        .await
        .unwrap();
    assert_eq!(got.name, "persist");
    assert_eq!(kid_of(&server.token(&apikey).await), kid_before);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start().await;
    let get = |path: &str| server.http.get(format!("{}{path}", server.url)).send();
    assert_eq!(
        get("/healthz")
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["status"],
        "ok"
    );
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["store"], "ok");
    server.admin_token().await;
    server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", "tsk_wrong")])
        .await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("tessera_tokens_issued_total{grant=\"apikey\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("code=\"BXNIM0415E\""), "errors by code");
    assert!(
        metrics.contains("tessera_http_request_duration_seconds_bucket"),
        "latency histogram"
    );
    assert!(metrics.contains("tessera_http_requests_total{route=\"/identity/token\""));
    // Unknown paths get a JSON 404.
    let missing = get("/nope").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
}

#[tokio::test]
async fn logs_are_json_and_never_contain_secrets() {
    let server = TestServer::start_with(&["--log-level", "debug"], &[]).await;
    let (_, apikey) = server.service_account_with_key().await;
    let token = server.token(&apikey).await;
    server
        .token_response(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", "tsk_some-wrong-key-value"),
        ])
        .await;
    let logs = server.stderr.lock().unwrap().clone();
    assert!(
        logs.iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "every log line is JSON"
    );
    let all = logs.join("\n");
    assert!(
        all.contains("issued token"),
        "token issuance is logged at debug level"
    );
    for secret in [
        apikey.as_str(),
        token.as_str(),
        ADMIN_KEY,
        "tsk_some-wrong-key-value",
    ] {
        assert!(!all.contains(secret), "a secret leaked into the log");
    }
    let master = std::fs::read_to_string(server.data_dir().join("master.key")).unwrap();
    assert!(!all.contains(master.trim()));
}

/// The administrator's API-key grant on a server started with `args` and `env` (stopped
/// again before this returns).
async fn admin_grant_with(args: &[&str], env: &[(&str, &str)]) -> IbmTokenResponse {
    let server = TestServer::start_with(args, env).await;
    server
        .client()
        .token(&apikey_form(ADMIN_KEY))
        .await
        .unwrap()
}

#[tokio::test]
async fn configuration_precedence_flags_env_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tessera.toml"),
        "version = 1\njwt_algorithm = \"ES256\"\ntoken_lifetime = 900\n",
    )
    .unwrap();
    // File only.
    let config = dir.path().join("tessera.toml");
    let config = config.to_str().unwrap();
    let body = admin_grant_with(&["--config", config], &[]).await;
    assert_eq!(body.expires_in, 900);
    assert_eq!(jwt_header(&access_of(&body))["alg"], "ES256");
    // Env beats file; flag beats env.
    let body = admin_grant_with(
        &["--config", config],
        &[
            ("TESSERA_TOKEN_LIFETIME", "600"),
            ("TESSERA_JWT_ALGORITHM", "EdDSA"),
        ],
    )
    .await;
    assert_eq!(body.expires_in, 600);
    assert_eq!(jwt_header(&access_of(&body))["alg"], "EdDSA");
    let body = admin_grant_with(
        &["--config", config, "--token-lifetime", "300"],
        &[("TESSERA_TOKEN_LIFETIME", "600")],
    )
    .await;
    assert_eq!(body.expires_in, 300);
}

/// Runs `tessera serve` expecting it to fail at startup; returns its stderr.
pub(crate) fn serve_fails(args: &[&str], env: &[(&str, &str)], file: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    if let Some(text) = file {
        std::fs::write(dir.path().join("tessera.toml"), text).unwrap();
    }
    let mut command = Command::new(binary());
    command
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args);
    command.env_remove("TESSERA_BOOTSTRAP_ADMIN_APIKEY");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    assert!(!output.status.success(), "expected failure");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_configuration_is_refused_with_a_reason() {
    assert!(serve_fails(&["--jwt-algorithm", "HS256"], &[], None).contains("HS256"));
    assert!(serve_fails(&[], &[("TESSERA_TOKEN_LIFETIME", "5")], None).contains("token lifetime"));
    assert!(serve_fails(&[], &[], Some("lisen = \"x\"")).contains("tessera.toml"));
    let short = serve_fails(
        &[],
        &[("TESSERA_BOOTSTRAP_ADMIN_APIKEY", "too-short")],
        None,
    );
    assert!(short.contains("at least 32"), "{short}");
    assert!(
        !short.contains("too-short"),
        "the supplied key is not echoed"
    );
    assert!(
        serve_fails(&[], &[("TESSERA_MASTER_KEY", "bm90IDMyIGJ5dGVz")], None)
            .contains("TESSERA_MASTER_KEY")
    );
}

#[tokio::test]
async fn wrong_master_key_is_refused() {
    let server = TestServer::start().await;
    let data = server.data_dir();
    let path = server.path().to_path_buf();
    let _keep_dir = server.dir.clone();
    // The same store (SQLite file or PostgreSQL schema), opened with another master key.
    let schema = server.schema.clone();
    let store_args: Vec<String> = match &schema {
        Some(pg) => vec![
            "--database-url".into(),
            pg.url.clone(),
            "--database-schema".into(),
            pg.name.clone(),
        ],
        None => Vec::new(),
    };
    drop(server);
    let output = Command::new(binary())
        .current_dir(&path)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .args(&store_args)
        .env(
            "TESSERA_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("master key"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
