//! The credentials of the Yandex surface, managed through the admin API and the CLI: authorized
//! keys of service accounts (the `yc` key file, private key shown once) and long-lived OAuth
//! tokens of users (`y0_…`, shown once). Exchanging them for IAM tokens is tested elsewhere.

use crate::harness::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use tessera_client::api::admin::OAuthTokenCreate;
use tessera_client::resource::OAuthTokens;

/// Decodes one PEM block of the given label.
fn pem_body(label: &str, pem: &str) -> Vec<u8> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----\n");
    let end = format!("-----END {label}-----\n");
    assert!(pem.starts_with(&begin), "not a {label} PEM: {pem:?}");
    assert!(pem.ends_with(&end), "not a {label} PEM: {pem:?}");
    let body: String = pem[begin.len()..pem.len() - end.len()]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM base64")
}

/// Checks a key file: the `yc` fields and nothing else, a PKCS#8 private key whose public half is
/// `public_key`, of the size `key_algorithm` names. Returns a line of the private key's body, for
/// checking that it appears nowhere else.
fn check_key_file(file: &Value, service_account_id: &str, algorithm: &str) -> String {
    let fields: Vec<&String> = file.as_object().expect("key file object").keys().collect();
    let mut sorted = fields.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "created_at",
            "id",
            "key_algorithm",
            "private_key",
            "public_key",
            "service_account_id"
        ],
        "{file}"
    );
    let id = file["id"].as_str().unwrap();
    assert!(id.starts_with("aje") && id.len() == 20, "{id}");
    assert_eq!(file["service_account_id"], service_account_id);
    assert_eq!(file["key_algorithm"], algorithm);
    let created_at = file["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && time_parses(created_at),
        "{created_at}"
    );

    let private_pem = file["private_key"].as_str().unwrap();
    assert!(
        private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "PKCS#8, not PKCS#1"
    );
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pem_body("PRIVATE KEY", private_pem))
        .expect("the private key is PKCS#8 RSA");
    let bits = match algorithm {
        "RSA_2048" => 2048,
        "RSA_4096" => 4096,
        other => panic!("{other}"),
    };
    assert_eq!(pair.public_modulus_len() * 8, bits);
    let public_der = pem_body("PUBLIC KEY", file["public_key"].as_str().unwrap());
    assert_eq!(
        pair.public_key().as_der().unwrap().as_ref(),
        public_der.as_slice(),
        "the private key's public half is public_key"
    );
    private_pem.lines().nth(2).unwrap().to_owned()
}

fn time_parses(text: &str) -> bool {
    // `2026-11-22T13:44:25Z`: a date, a `T`, a time.
    let bytes = text.as_bytes();
    text.len() >= 20 && bytes[4] == b'-' && bytes[10] == b'T' && bytes[13] == b':'
}

async fn get(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    server.admin_get(path, token).await
}

/// A token of a service account with the `viewer` role on the administrator's account.
async fn viewer_token(server: &TestServer, admin: &str, account_id: &str) -> String {
    member_token(server, admin, account_id, "viewer").await.1
}

#[tokio::test]
async fn authorized_keys_through_the_admin_api() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let account_id = account_of_token(&admin);
    let sa = service_account_in(&server.client().with_token(&admin), None, "robot").await;
    let sa_id = sa.id.as_str();

    // RSA_2048 by default, RSA_4096 on request; the key file is in the `yc` shape.
    let small = server
        .create(
            &admin,
            "authorized_keys",
            json!({"service_account_id": sa_id, "description": "deploys"}),
        )
        .await;
    let big = server
        .create(
            &admin,
            "authorized_keys",
            json!({"service_account_id": sa_id, "key_algorithm": "RSA_4096"}),
        )
        .await;
    let mut private_lines = Vec::new();
    for (created, algorithm) in [(&small, "RSA_2048"), (&big, "RSA_4096")] {
        private_lines.push(check_key_file(&created["key_file"], sa_id, algorithm));
        for field in ["id", "service_account_id", "created_at", "public_key"] {
            assert_eq!(created[field], created["key_file"][field], "{field}");
        }
        assert_eq!(created["key_algorithm"], algorithm);
        assert_eq!(created["account_id"], account_id.as_str());
        assert!(created.get("private_key").is_none());
    }
    assert_eq!(small["description"], "deploys");

    // List (by service account, by account) and get never show the private key.
    let small_id = small["id"].as_str().unwrap();
    let big_id = big["id"].as_str().unwrap();
    let mut expected_ids = vec![small_id, big_id];
    expected_ids.sort_unstable();
    for query in [
        format!("?service_account_id={sa_id}"),
        // The iam_id spelling of the service account names the same owner.
        format!("?service_account_id=iam-{sa_id}"),
        format!("?account_id={account_id}"),
        String::new(),
    ] {
        let (status, list) = get(&server, &admin, &format!("/v1/authorized_keys{query}")).await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&str> = list["authorized_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected_ids, "{query}");
        let text = list.to_string();
        assert!(!text.contains("key_file") && !text.contains("PRIVATE KEY"));
    }
    let (status, got) = get(&server, &admin, &format!("/v1/authorized_keys/{small_id}")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["public_key"], small["public_key"]);
    assert!(got.get("key_file").is_none() && !got.to_string().contains("PRIVATE KEY"));

    // Bad requests name the problem.
    let (status, body) = server
        .admin_post(
            "/v1/authorized_keys",
            &admin,
            json!({"service_account_id": sa_id, "key_algorithm": "RSA_1024"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_argument");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("key_algorithm")
            && message.contains("RSA_2048")
            && message.contains("RSA_4096"),
        "{message}"
    );
    let (status, body) = server
        .admin_post(
            "/v1/authorized_keys",
            &admin,
            json!({"service_account_id": "ServiceId-nope"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["error"]["message"],
        "service account ServiceId-nope not found"
    );

    // A viewer reads but neither creates nor deletes.
    let viewer = viewer_token(&server, &admin, &account_id).await;
    let (status, list) = get(
        &server,
        &viewer,
        &format!("/v1/authorized_keys?service_account_id={sa_id}"),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["authorized_keys"].as_array().unwrap().len(), 2);
    let (status, _) = get(&server, &viewer, &format!("/v1/authorized_keys/{big_id}")).await;
    assert_eq!(status, 200);
    let (status, body) = server
        .admin_post(
            "/v1/authorized_keys",
            &viewer,
            json!({"service_account_id": sa_id}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "permission_denied");
    let (status, _) = server
        .admin_delete(&format!("/v1/authorized_keys/{big_id}"), &viewer)
        .await;
    assert_eq!(status, 403);

    // Delete one key; deleting the service account takes the other along.
    let (status, _) = server
        .admin_delete(&format!("/v1/authorized_keys/{small_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (status, body) = get(&server, &admin, &format!("/v1/authorized_keys/{small_id}")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["error"]["message"],
        format!("authorized key {small_id} not found")
    );
    let (status, _) = server
        .admin_delete(&format!("/v1/service_accounts/{sa_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (status, _) = get(&server, &admin, &format!("/v1/authorized_keys/{big_id}")).await;
    assert_eq!(status, 404);
    let (_, list) = get(&server, &admin, "/v1/authorized_keys").await;
    assert_eq!(list["authorized_keys"], json!([]));

    // Audited without the key material; never logged.
    let (_, audit) = get(&server, &admin, "/v1/audit?limit=100").await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"authorized_key.create"), "{actions:?}");
    assert!(actions.contains(&"authorized_key.delete"), "{actions:?}");
    let logs = server.logs();
    for line in &private_lines {
        assert!(!audit.to_string().contains(line.as_str()));
        assert!(!logs.contains(line.as_str()), "a private key is in the log");
    }
    assert!(!logs.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn oauth_tokens_through_the_admin_api() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let account_id = account_of_token(&admin);
    let typed = server.client().with_token(&admin);
    let user = user_in(&typed, None, "Ada", "ada@example.com", USER_PASSWORD).await;
    let user_id = user.id.as_str();
    // Only the user creates its own OAuth tokens; not even the global administrator may.
    let (status, body) = server
        .admin_post("/v1/oauth_tokens", &admin, json!({"user_id": user_id}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("only user {user_id}")),
        "{body}"
    );
    let own = server.user_token(user_id, USER_PASSWORD).await;

    let created = server
        .client()
        .with_token(&own)
        .create::<OAuthTokens>(&OAuthTokenCreate {
            user_id: user_id.to_owned(),
            description: Some("laptop".into()),
        })
        .await
        .unwrap();
    let token = created.token.clone().unwrap().into_inner();
    assert!(token.starts_with("y0_") && token.len() > 40, "{token}");
    let id = created.id.clone();
    assert!(id.starts_with("OAuthToken-"), "{id}");
    assert_eq!(created.user_id, user_id);
    assert_eq!(created.account_id, account_id);
    assert_eq!(created.description, "laptop");

    // Shown once: not in lists, not in get.
    for query in [
        format!("?user_id={user_id}"),
        format!("?account_id={account_id}"),
        String::new(),
    ] {
        let (status, list) = get(&server, &admin, &format!("/v1/oauth_tokens{query}")).await;
        assert_eq!(status, 200, "{list}");
        let items = list["oauth_tokens"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{query}: {list}");
        assert_eq!(items[0]["id"], id.as_str());
        assert!(!list.to_string().contains(&token));
        assert!(items[0].get("token").is_none());
    }
    let (status, got) = get(&server, &admin, &format!("/v1/oauth_tokens/{id}")).await;
    assert_eq!(status, 200);
    assert!(got.get("token").is_none() && !got.to_string().contains(&token));

    // An unknown user; a viewer may read but not create.
    let (status, body) = server
        .admin_post(
            "/v1/oauth_tokens",
            &admin,
            json!({"user_id": "IBMid-NOBODY"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["message"], "user IBMid-NOBODY not found");
    let viewer = viewer_token(&server, &admin, &account_id).await;
    let (status, _) = get(
        &server,
        &viewer,
        &format!("/v1/oauth_tokens?user_id={user_id}"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .admin_post("/v1/oauth_tokens", &viewer, json!({"user_id": user_id}))
        .await;
    assert_eq!(status, 403);

    // Delete (revoke); deleting a user takes its tokens along.
    let (status, _) = server
        .admin_delete(&format!("/v1/oauth_tokens/{id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (status, _) = get(&server, &admin, &format!("/v1/oauth_tokens/{id}")).await;
    assert_eq!(status, 404);
    let second = server
        .create(&own, "oauth_tokens", json!({"user_id": user_id}))
        .await;
    let second_token = second["token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, token);
    let (status, _) = server
        .admin_delete(&format!("/v1/users/{user_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (_, list) = get(&server, &admin, "/v1/oauth_tokens").await;
    assert_eq!(list["oauth_tokens"], json!([]));

    let (_, audit) = get(&server, &admin, "/v1/audit?limit=100").await;
    let logs = server.logs();
    for secret in [&token, &second_token] {
        assert!(!audit.to_string().contains(secret.as_str()));
        assert!(!logs.contains(secret.as_str()), "a token is in the log");
    }
}

fn cli(config_dir: &Path, args: &[&str]) -> Output {
    tessera(config_dir, args, &[])
}

/// `tessera iam key create --service-account-id ID MORE...`.
fn key_create(config_dir: &Path, service_account_id: &str, more: &[&str]) -> Output {
    let command = [
        "iam",
        "key",
        "create",
        "--service-account-id",
        service_account_id,
    ];
    cli(config_dir, &[&command[..], more].concat())
}

/// `tessera iam oauth-token create --user-id ID MORE...`.
fn oauth_token_create(config_dir: &Path, user_id: &str, more: &[&str]) -> Output {
    let command = ["iam", "oauth-token", "create", "--user-id", user_id];
    cli(config_dir, &[&command[..], more].concat())
}

fn failed(output: Output) -> String {
    assert!(!output.status.success(), "should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn key_and_oauth_token_commands() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();
    ok(cli(
        config,
        &["login", "--endpoint", &server.url, "--apikey", ADMIN_KEY],
    ));
    let sa: Value = json_of(cli(
        config,
        &[
            "iam",
            "service-account",
            "create",
            "--name",
            "robot",
            "--format",
            "json",
        ],
    ));
    let sa_id = sa["id"].as_str().unwrap().to_owned();

    // `iam key create --output FILE`: the key file, 0600; the metadata on stdout, no secret.
    let path = home.path().join("key.json");
    let path_arg = path.to_str().unwrap();
    let out = ok(key_create(
        config,
        &sa_id,
        &["--description", "ci", "--output", path_arg],
    ));
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let first_line = check_key_file(&file, &sa_id, "RSA_2048");
    let first_id = file["id"].as_str().unwrap().to_owned();
    assert!(out.contains(&first_id) && out.contains(path_arg), "{out}");
    assert!(!out.contains("PRIVATE KEY") && !out.contains(&first_line));
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);

    // An existing file is kept unless --force, and nothing is created meanwhile.
    let error = failed(key_create(config, &sa_id, &["--output", path_arg]));
    assert!(
        error.contains("exists") && error.contains("--force"),
        "{error}"
    );
    let listed: Value = json_of(cli(
        config,
        &[
            "iam",
            "key",
            "list",
            "--service-account-id",
            &sa_id,
            "--format",
            "json",
        ],
    ));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let out = ok(key_create(
        config,
        &sa_id,
        &["--output", path_arg, "--force", "--format", "json"],
    ));
    let metadata: Value = serde_json::from_str(&out).unwrap();
    assert!(metadata.get("key_file").is_none() && !out.contains("PRIVATE KEY"));
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file["id"], metadata["id"]);
    assert_ne!(file["id"], first_id.as_str());
    check_key_file(&file, &sa_id, "RSA_2048");
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);

    // `--output -`: the key file on stdout.
    let out = ok(key_create(
        config,
        &sa_id,
        &["--algorithm", "RSA_4096", "--output", "-"],
    ));
    let printed: Value = serde_json::from_str(&out).unwrap();
    let printed_line = check_key_file(&printed, &sa_id, "RSA_4096");
    let bad = failed(key_create(
        config,
        &sa_id,
        &["--algorithm", "RSA_1024", "--output", "-"],
    ));
    assert!(bad.contains("RSA_2048"), "{bad}");
    let missing = failed(key_create(config, "ServiceId-nope", &["--output", "-"]));
    assert!(
        missing.contains("service account ServiceId-nope not found"),
        "{missing}"
    );

    // list, get, delete.
    let listed: Value = json_of(cli(config, &["iam", "key", "list", "--format", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    assert!(!listed.to_string().contains("PRIVATE KEY"));
    let account_id = sa["account_id"].as_str().unwrap();
    let table = ok(cli(
        config,
        &["iam", "key", "list", "--account-id", account_id],
    ));
    assert!(
        table.contains(&first_id) && table.contains("RSA_4096"),
        "{table}"
    );
    let got = ok(cli(config, &["iam", "key", "get", &first_id]));
    assert!(got.contains(&first_id) && got.contains("ci"), "{got}");
    let deleted = ok(cli(config, &["iam", "key", "delete", &first_id]));
    assert!(deleted.contains(&first_id), "{deleted}");
    failed(cli(config, &["iam", "key", "get", &first_id]));

    // OAuth tokens: shown once at creation, in tables and in JSON.
    let user: Value = json_of(cli(
        config,
        &[
            "iam",
            "user",
            "create",
            "--name",
            "Ada",
            "--email",
            "ada@example.com",
            "--format",
            "json",
        ],
    ));
    let user_id = user["id"].as_str().unwrap().to_owned();
    // Only the user creates its OAuth tokens: the administrator's CLI is refused, and the user
    // logs in with a key of its own.
    let refused = failed(oauth_token_create(config, &user_id, &[]));
    assert!(
        refused.contains(&format!("only user {user_id}")),
        "{refused}"
    );
    let admin = server.admin_token().await;
    server
        .admin_delete(&format!("/v1/users/{user_id}"), &admin)
        .await;
    let (user, user_key) = server
        .user_with_key(
            &server.client().with_token(&admin),
            crate::harness::user("Ada", "ada@example.com"),
        )
        .await;
    let user_id = user.id;
    let user_home = tempfile::tempdir().unwrap();
    let config = user_home.path();
    ok(cli(
        config,
        &["login", "--endpoint", &server.url, "--apikey", &user_key],
    ));
    let created: Value = json_of(oauth_token_create(config, &user_id, &["--format", "json"]));
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("y0_"), "{created}");
    let token_id = created["id"].as_str().unwrap().to_owned();
    let table = ok(oauth_token_create(
        config,
        &user_id,
        &["--description", "second"],
    ));
    let second_token = table
        .lines()
        .find_map(|line| line.strip_prefix("OAuth token: "))
        .unwrap_or_else(|| panic!("{table}"))
        .to_owned();
    assert!(second_token.starts_with("y0_"), "{table}");
    assert!(table.contains("shown only once"), "{table}");
    let listed: Value = json_of(cli(
        config,
        &[
            "iam",
            "oauth-token",
            "list",
            "--user-id",
            &user_id,
            "--format",
            "json",
        ],
    ));
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let text = listed.to_string();
    assert!(!text.contains(&token) && !text.contains(&second_token));
    let got: Value = json_of(cli(
        config,
        &["iam", "oauth-token", "get", &token_id, "--format", "json"],
    ));
    assert_eq!(got["user_id"], user_id.as_str());
    assert!(got.get("token").is_none());
    ok(cli(config, &["iam", "oauth-token", "revoke", &token_id]));
    failed(cli(config, &["iam", "oauth-token", "get", &token_id]));
    let listed: Value = json_of(cli(
        config,
        &["iam", "oauth-token", "list", "--format", "json"],
    ));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    let logs = server.logs();
    for secret in [&first_line, &printed_line, &token, &second_token] {
        assert!(!logs.contains(secret.as_str()), "a secret is in the log");
    }
}
