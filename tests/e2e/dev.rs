//! `tessera serve --dev`: a throw-away installation with fixed, printed keys, ready to use,
//! that keeps nothing and refuses what would expose its public keys or keep data.

use crate::harness::{access_of, binary, free_port, jwt_payload};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tessera_client::Client;

const ADMIN_APIKEY: &str = "tessera-dev-admin-apikey-not-for-production";
const SERVICE_APIKEY: &str = "tessera-dev-service-apikey-not-for-production";

/// `tessera serve --dev` with `args` in an empty working directory, without any `TESSERA_*`
/// variable of the caller's.
fn dev_command(args: &[&str]) -> (Command, tempfile::TempDir) {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(binary());
    command
        .arg("serve")
        .arg("--dev")
        .args(args)
        .current_dir(cwd.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("TESSERA_") {
            command.env_remove(name);
        }
    }
    (command, cwd)
}

/// The access token of `apikey`, which the server must accept.
async fn token(url: &str, apikey: &str) -> String {
    let answer = Client::new(url)
        .unwrap()
        .token_from_apikey(apikey)
        .await
        .unwrap_or_else(|e| panic!("the printed key is refused: {e}"));
    access_of(&answer)
}

#[tokio::test]
async fn dev_mode_prints_working_keys_and_snippets_and_keeps_nothing() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (mut command, _cwd) = dev_command(&["--listen", &format!("127.0.0.1:{port}")]);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The banner, up to its last line (the agent's curl).
    let mut banner = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !banner.contains("computeMetadata/v1/instance/service-accounts/default/token") {
        assert!(Instant::now() < deadline, "no banner: {banner}");
        let line = lines.next().expect("stdout ended").unwrap();
        banner.push_str(&line);
        banner.push('\n');
    }
    for expected in [
        "DEV MODE",
        "NOTHING IS KEPT",
        ADMIN_APIKEY,
        SERVICE_APIKEY,
        &format!("export TESSERA_ENDPOINT={url}"),
        &format!("export TESSERA_APIKEY={ADMIN_APIKEY}"),
        &format!("IAMAuthenticator(\"{SERVICE_APIKEY}\", url=\"{url}\")"),
        "yandexPassportOauthToken",
        &format!("tessera agent --server {url} --credentials "),
    ] {
        assert!(
            banner.contains(expected),
            "{expected:?} missing from:\n{banner}"
        );
    }
    let dir = banner
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_suffix(" and is deleted when the server stops. The API keys below are fixed")
        })
        .map(PathBuf::from)
        .expect("the installation's directory");
    assert!(dir.join("data").join("tessera.db").exists());

    // The administrator's key is a global administrator's.
    let admin_token = token(&url, ADMIN_APIKEY).await;
    let whoami = Client::new(&url)
        .unwrap()
        .with_token(admin_token)
        .whoami()
        .await
        .unwrap();
    assert!(whoami.global_admin, "{whoami:?}");

    // The service account's key gives the printed service account's tokens.
    let claims = jwt_payload(&token(&url, SERVICE_APIKEY).await);
    let printed_sa = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("service account:"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("service account line")
        .to_owned();
    assert_eq!(claims["iam_id"], format!("iam-{printed_sa}"));
    assert_eq!(claims["name"], "dev-workload");

    // The agent's credentials file holds that key.
    let credentials = banner
        .lines()
        .find_map(|l| l.split("--credentials ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("credentials path");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(credentials).unwrap()).unwrap();
    assert_eq!(file["apikey"], SERVICE_APIKEY);

    // A clean stop removes the whole installation.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!dir.exists(), "{} is still there", dir.display());
}

#[test]
fn dev_mode_refuses_public_addresses_kept_stores_and_tls() {
    for (args, expected) in [
        (&["--listen", "0.0.0.0:0"][..], "--dev-listen-any"),
        (
            &["--database-url", "postgres://postgres@127.0.0.1:5432/test"][..],
            "database URL",
        ),
        (&["--data-dir", "kept"][..], "--data-dir"),
        (&["--tls-self-signed"][..], "plain HTTP"),
        (&["--master-key-file", "master.key"][..], "master key"),
    ] {
        let (mut command, cwd) = dev_command(args);
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
            "{args:?} created files"
        );
    }
    // `--dev-listen-any` belongs to dev mode only.
    let output = Command::new(binary())
        .args(["serve", "--dev-listen-any"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
