//! The `tessera` CLI against a running server: login, token, and `iam` management with tables
//! and `--format json`.

use crate::harness::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use tessera_client::api::admin::{
    AccessBindingView, AccountView, ApiKeyView, AuditEvent, ClientView, ServiceAccountView,
    UserView, WhoAmI,
};
use tessera_client::api::token::IbmTokenResponse;

fn cli(config_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    tessera(config_dir, args, env)
}

#[tokio::test]
async fn login_token_and_management() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();

    // A wrong key: the server's message, nothing saved.
    let bad = cli(
        config,
        &["login", "--endpoint", &server.url, "--apikey", "tsk_wrong"],
        &[],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Provided API key could not be found"));
    assert!(!config.join("tessera").join("config.toml").exists());

    let out = ok(cli(
        config,
        &["login", "--endpoint", &server.url, "--apikey", ADMIN_KEY],
        &[],
    ));
    assert!(out.contains("Logged in"), "{out}");
    let saved = config.join("tessera").join("config.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // `tessera token` prints a bare, valid access token.
    let token = ok(cli(config, &["token"], &[])).trim().to_owned();
    assert_eq!(jwt_payload(&token)["name"], "admin");
    let (status, _) = server.admin_get("/v1/whoami", &token).await;
    assert_eq!(status, 200);

    // Create a service account and a key; JSON carries ids and the key.
    let sa: ServiceAccountView = json_of(cli(
        config,
        &[
            "iam",
            "service-account",
            "create",
            "--name",
            "cli-sa",
            "--format",
            "json",
        ],
        &[],
    ));
    let sa_id = sa.id;
    assert!(sa_id.starts_with("ServiceId-"));
    let key: ApiKeyView = json_of(cli(
        config,
        &[
            "iam",
            "api-key",
            "create",
            "--service-account-id",
            &sa_id,
            "--name",
            "cli-key",
            "--format",
            "json",
        ],
        &[],
    ));
    let apikey = key.apikey.clone().expect("the key, once").into_inner();
    let sa_token = server.token(&apikey).await;
    assert_eq!(jwt_payload(&sa_token)["iam_id"], format!("iam-{sa_id}"));

    // Tables by default.
    let table = ok(cli(config, &["iam", "service-account", "list"], &[]));
    assert!(
        table.contains("cli-sa") && table.contains(&sa_id),
        "{table}"
    );
    let listed: Value = json_of(cli(
        config,
        &["iam", "api-key", "list", "--format", "json"],
        &[],
    ));
    assert!(listed.to_string().contains(&key.id));
    assert!(
        !listed.to_string().contains(&apikey),
        "listing never shows the key"
    );
    let got: ServiceAccountView = json_of(cli(
        config,
        &["iam", "service-account", "get", &sa_id, "--format", "json"],
        &[],
    ));
    assert_eq!(got.name, "cli-sa");

    // Other resources.
    let account: AccountView = json_of(cli(
        config,
        &[
            "iam",
            "account",
            "create",
            "--name",
            "cli-account",
            "--format",
            "json",
        ],
        &[],
    ));
    let account_id = account.id.as_str();
    let user: UserView = json_of(cli(
        config,
        &[
            "iam",
            "user",
            "create",
            "--account-id",
            account_id,
            "--name",
            "u",
            "--email",
            "u@example.com",
            "--format",
            "json",
        ],
        &[],
    ));
    let client: ClientView = json_of(cli(
        config,
        &[
            "iam",
            "client",
            "create",
            "--id",
            "cli-client",
            "--format",
            "json",
        ],
        &[],
    ));
    assert!(
        client
            .secret
            .as_deref()
            .is_some_and(|s| s.starts_with("tcs_")),
        "{client:?}"
    );
    let binding: AccessBindingView = json_of(cli(
        config,
        &[
            "iam",
            "access-binding",
            "create",
            "--subject-iam-id",
            &user.iam_id,
            "--role",
            "viewer",
            "--resource",
            &format!("account/{account_id}"),
            "--format",
            "json",
        ],
        &[],
    ));
    assert_eq!(binding.role, "viewer");

    // Delete: the key stops working.
    let out = ok(cli(config, &["iam", "api-key", "delete", &key.id], &[]));
    assert!(out.contains("Deleted"), "{out}");
    assert_eq!(
        server
            .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", &apikey)])
            .await
            .status(),
        400
    );

    // Errors carry the server's message and a non-zero exit.
    let missing = cli(
        config,
        &["iam", "service-account", "get", "ServiceId-nope"],
        &[],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

#[tokio::test]
async fn environment_overrides_profile() {
    let server = TestServer::start().await;
    let (_, apikey) = server.service_account_with_key().await;
    let home = tempfile::tempdir().unwrap();
    // No profile, no env: a clear hint.
    let none = cli(home.path(), &["token"], &[]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("tessera login"));
    // Env only.
    let token = ok(cli(
        home.path(),
        &["token"],
        &[
            ("TESSERA_ENDPOINT", &server.url),
            ("TESSERA_APIKEY", &apikey),
        ],
    ));
    assert_eq!(jwt_payload(token.trim())["sub_type"], "ServiceId");
    // Profile (admin) overridden by env (service account).
    ok(cli(
        home.path(),
        &["login", "--endpoint", &server.url, "--apikey", ADMIN_KEY],
        &[],
    ));
    let token = ok(cli(home.path(), &["token"], &[("TESSERA_APIKEY", &apikey)]));
    assert_eq!(jwt_payload(token.trim())["sub_type"], "ServiceId");
    let token = ok(cli(home.path(), &["token"], &[]));
    assert_eq!(jwt_payload(token.trim())["sub_type"], "user");
    // --format json prints the whole token response.
    let full: IbmTokenResponse = json_of(cli(home.path(), &["token", "--format", "json"], &[]));
    assert_eq!(full.token_type, "Bearer");
}

#[test]
fn completion_scripts_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef tessera"),
        ("fish", "complete -c tessera"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = ok(cli(dir.path(), &["completion", shell], &[]));
        assert!(script.contains(marker), "{shell}: {marker:?} missing");
        // Subcommands down to the resource verbs are completed.
        assert!(script.contains("service-account"), "{shell}");
        assert!(script.contains("completion"), "{shell}");
    }
    // The bash script loads and registers a completion for `tessera`, and completes a verb.
    let script = ok(cli(dir.path(), &["completion", "bash"], &[]));
    let path = dir.path().join("tessera.bash");
    std::fs::write(&path, script).unwrap();
    let probe = format!(
        "source {}; complete -p tessera; COMP_WORDS=(tessera iam service-account l); COMP_CWORD=3; \
         _tessera tessera l service-account; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let output = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("-F _tessera tessera"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "list"), "{stdout}");
    // An unknown shell is a usage error.
    let output = cli(dir.path(), &["completion", "tcsh"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The error object of a failed `--format json` command (on stderr; stdout stays empty).
fn json_error(output: &Output) -> Value {
    assert!(output.stdout.is_empty(), "{output:?}");
    let value: Value = serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", stderr_of(output)));
    value["error"].clone()
}

#[tokio::test]
async fn exit_codes_and_json_errors() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();
    let with = |args: &[&str], key: &str| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend([
            "--endpoint".into(),
            server.url.clone(),
            "--apikey".into(),
            key.into(),
        ]);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        cli(config, &refs, &[])
    };

    // 4: not found, as text, then as JSON on stderr.
    let missing = with(
        &["iam", "service-account", "get", "ServiceId-nope"],
        ADMIN_KEY,
    );
    assert_eq!(missing.status.code(), Some(4), "{}", stderr_of(&missing));
    assert!(stderr_of(&missing).starts_with("error: cannot get service account"));
    let missing = with(
        &[
            "iam",
            "service-account",
            "get",
            "ServiceId-nope",
            "-o",
            "json",
        ],
        ADMIN_KEY,
    );
    assert_eq!(missing.status.code(), Some(4));
    let error = json_error(&missing);
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["status"], 404);
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("ServiceId-nope"));

    // 3: the API key is refused (IBM answers 400), or a call is not allowed (403).
    let refused = with(&["token", "--format", "json"], "tsk_wrong");
    assert_eq!(refused.status.code(), Some(3), "{}", stderr_of(&refused));
    assert_eq!(json_error(&refused)["code"], "BXNIM0415E");
    let (_, sa_key) = server.service_account_with_key().await;
    let denied = with(&["iam", "account", "create", "--name", "nope"], &sa_key);
    assert_eq!(denied.status.code(), Some(3), "{}", stderr_of(&denied));

    // 5: conflict.
    ok(with(
        &["iam", "client", "create", "--id", "twice"],
        ADMIN_KEY,
    ));
    let again = with(
        &["iam", "client", "create", "--id", "twice", "-o", "json"],
        ADMIN_KEY,
    );
    assert_eq!(again.status.code(), Some(5), "{}", stderr_of(&again));
    assert_eq!(json_error(&again)["status"], 409);

    // 6: nobody listens there; the hint says what to check.
    let port = free_port();
    let down = cli(
        config,
        &[
            "token",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--apikey",
            "k",
        ],
        &[],
    );
    assert_eq!(down.status.code(), Some(6));
    assert!(stderr_of(&down).contains("hint: cannot connect to http://127.0.0.1:"));

    // 2: usage, and 1: anything else (here: no credentials at all).
    assert_eq!(
        cli(config, &["token", "--nope"], &[]).status.code(),
        Some(2)
    );
    let none = cli(config, &["whoami", "-o", "json"], &[]);
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(json_error(&none)["code"], "error");

    // The codes are documented.
    let help = ok(cli(config, &["--help"], &[]));
    assert!(
        help.contains("Exit codes:") && help.contains("4  not found"),
        "{help}"
    );
}

#[tokio::test]
async fn connection_errors_say_what_to_do() {
    let tls = TestServer::start_with(&["--tls-self-signed"], &[]).await;
    let plain = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();
    let ca = tls.data_dir().join("tls").join("ca.pem");
    let ca = ca.to_str().unwrap();
    let token = |endpoint: &str, cacert: Option<&str>| {
        let mut args = vec!["token", "--endpoint", endpoint, "--apikey", ADMIN_KEY];
        if let Some(cacert) = cacert {
            args.extend(["--cacert", cacert]);
        }
        cli(config, &args, &[])
    };
    let hint = |output: &Output| {
        let stderr = stderr_of(output);
        stderr
            .lines()
            .find_map(|l| l.strip_prefix("hint: ").map(str::to_owned))
            .unwrap_or_else(|| panic!("no hint: {stderr}"))
    };
    let tls_port = tls.url.strip_prefix("https://").unwrap();
    let plain_port = plain.url.strip_prefix("http://").unwrap();

    // TLS to a plain-HTTP server.
    let out = token(&format!("https://{plain_port}"), None);
    assert_eq!(out.status.code(), Some(6));
    assert!(
        hint(&out).contains("does not speak TLS") && hint(&out).contains(&plain.url),
        "{}",
        stderr_of(&out)
    );
    // Plain HTTP to a TLS port.
    let out = token(&format!("http://{tls_port}"), Some(ca));
    assert_eq!(out.status.code(), Some(6));
    assert!(
        hint(&out).contains(&format!("use {}", tls.url)),
        "{}",
        stderr_of(&out)
    );
    // No scheme.
    let out = token(tls_port, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        hint(&out).contains(&format!("did you mean https://{tls_port}?")),
        "{}",
        stderr_of(&out)
    );
    // A CA this computer does not trust.
    let out = token(&tls.url, None);
    assert_eq!(out.status.code(), Some(6));
    assert!(hint(&out).contains("--cacert FILE"), "{}", stderr_of(&out));
    // A --cacert file that is not PEM.
    let not_pem = config.join("ca.der");
    std::fs::write(&not_pem, b"\x30\x82\x01\x0a not pem").unwrap();
    let out = token(&tls.url, Some(not_pem.to_str().unwrap()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("is not a PEM certificate"),
        "{}",
        stderr_of(&out)
    );
    // The right CA works.
    let out = ok(token(&tls.url, Some(ca)));
    assert_eq!(jwt_payload(out.trim())["name"], "admin");
}

#[tokio::test]
async fn profiles_list_use_show_delete_and_logout() {
    let a = TestServer::start().await;
    let b = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();
    let saved = || std::fs::read_to_string(config.join("tessera").join("config.toml")).unwrap();
    let key = [("TESSERA_APIKEY", ADMIN_KEY)];
    ok(cli(config, &["login", "--endpoint", &a.url], &key));

    // Another endpoint for the same profile, without a terminal: refused, nothing changed.
    let refused = cli(config, &["login", "--endpoint", &b.url, "-o", "json"], &key);
    assert_eq!(refused.status.code(), Some(5), "{}", stderr_of(&refused));
    assert!(
        stderr_of(&refused).contains("--force"),
        "{}",
        stderr_of(&refused)
    );
    assert!(saved().contains(&a.url) && !saved().contains(&b.url));
    // As a new profile it is fine.
    ok(cli(
        config,
        &["login", "--endpoint", &b.url, "--profile", "b"],
        &key,
    ));

    let list: Value = json_of(cli(config, &["profile", "list", "-o", "json"], &[]));
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["name"], "b");
    assert_eq!(list[0]["current"], false);
    assert_eq!(list[1]["current"], true);
    assert_eq!(list[1]["endpoint"], a.url.as_str());
    let table = ok(cli(config, &["profile", "list"], &[]));
    assert!(
        table.contains(&b.url) && !table.contains(ADMIN_KEY),
        "{table}"
    );

    // `use` switches what commands talk to; `show` never prints the key.
    ok(cli(config, &["profile", "use", "b"], &[]));
    let shown: Value = json_of(cli(config, &["profile", "show", "-o", "json"], &[]));
    assert_eq!(shown["name"], "b");
    assert_eq!(shown["endpoint"], b.url.as_str());
    assert_eq!(shown["logged_in"], true);
    assert!(!shown.to_string().contains(ADMIN_KEY));
    let text = ok(cli(config, &["profile", "show", "default"], &[]));
    assert!(text.contains(&a.url) && !text.contains(ADMIN_KEY), "{text}");
    let whoami: WhoAmI = json_of(cli(config, &["whoami", "-o", "json"], &[]));
    let on_b = b.admin_client().await.whoami().await.unwrap();
    assert_eq!(whoami.account_id, on_b.account_id);
    let missing = cli(config, &["profile", "use", "nope"], &[]);
    assert_eq!(missing.status.code(), Some(4));

    // --force replaces the default profile's endpoint.
    ok(cli(
        config,
        &[
            "login",
            "--endpoint",
            &b.url,
            "--profile",
            "default",
            "--force",
        ],
        &key,
    ));
    assert!(!saved().contains(&a.url));

    // logout forgets the current profile's key and keeps its endpoint.
    let out = ok(cli(config, &["logout"], &[]));
    assert!(out.contains("\"b\""), "{out}");
    let shown: Value = json_of(cli(config, &["profile", "show", "b", "-o", "json"], &[]));
    assert_eq!(shown["logged_in"], false);
    let after = cli(config, &["token"], &[]);
    assert_eq!(after.status.code(), Some(1));
    assert!(
        stderr_of(&after).contains("logged out"),
        "{}",
        stderr_of(&after)
    );
    ok(cli(config, &["logout", "--profile", "default"], &[]));
    assert!(!saved().contains(ADMIN_KEY), "{}", saved());

    // delete removes it; the current profile falls back to "default".
    ok(cli(config, &["profile", "delete", "b"], &[]));
    let list: Value = json_of(cli(config, &["profile", "list", "-o", "json"], &[]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "default");
    assert_eq!(list[0]["current"], true);
}

/// Runs `tessera ARGS` on a pseudo-terminal (util-linux `script`), answering each prompt when
/// it appears; returns everything the terminal showed and the exit code.
fn on_a_terminal(
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    answers: &[(&str, &str)],
) -> (String, Option<i32>) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let command_line = std::iter::once(binary())
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .env("TESSERA_CONFIG_DIR", config)
        .env_remove("TESSERA_ENDPOINT")
        .env_remove("TESSERA_APIKEY")
        .env_remove("TESSERA_PROFILE")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run script");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        })
    };
    let text =
        |shown: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    for (prompt, answer) in answers {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !text(&shown).contains(prompt) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {prompt:?} on the terminal: {}",
                text(&shown)
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Past the prompt, so that echo is off when the answer arrives.
        std::thread::sleep(std::time::Duration::from_millis(100));
        stdin.write_all(answer.as_bytes()).unwrap();
        stdin.write_all(b"\r").unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    (text(&shown), status.code())
}

#[tokio::test]
async fn login_on_a_terminal_hides_the_key_and_asks_before_replacing() {
    let a = TestServer::start().await;
    let b = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();
    let (shown, code) = on_a_terminal(
        config,
        &["login", "--endpoint", &a.url],
        &[],
        &[("API key: ", ADMIN_KEY)],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("Logged in to"), "{shown}");
    assert!(!shown.contains(ADMIN_KEY), "the key was echoed: {shown}");
    // Ctrl-C at the prompt cancels (the terminal's settings are restored, nothing is saved).
    let (shown, code) = on_a_terminal(
        config,
        &["login", "--endpoint", &a.url, "--profile", "cancelled"],
        &[],
        &[("API key: ", "\u{3}")],
    );
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("cancelled"), "{shown}");
    // Another endpoint: asked; "n" keeps the profile, "y" replaces it.
    let (shown, code) = on_a_terminal(
        config,
        &["login", "--endpoint", &b.url],
        &[],
        &[("Replace it with", "n")],
    );
    assert_eq!(code, Some(5), "{shown}");
    let saved = || std::fs::read_to_string(config.join("tessera").join("config.toml")).unwrap();
    assert!(saved().contains(&a.url));
    let (shown, code) = on_a_terminal(
        config,
        &["login", "--endpoint", &b.url],
        &[],
        &[("Replace it with", "y"), ("API key: ", ADMIN_KEY)],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains(ADMIN_KEY), "{shown}");
    assert!(saved().contains(&b.url) && !saved().contains(&a.url));
    assert!(!saved().contains("cancelled"));
    // From a pipe the first line of stdin is the key, as before, with no prompt.
    let piped = tessera_with_stdin(
        config,
        &["login", "--endpoint", &a.url, "--profile", "piped"],
        &[],
        format!("{ADMIN_KEY}\n").as_bytes(),
    );
    let out = ok(piped);
    assert!(
        out.contains("Logged in") && !out.contains("API key:"),
        "{out}"
    );
    // The help never tells to put the key on the command line.
    let help = ok(cli(config, &["login", "--help"], &[]));
    let (flags, notes) = help.split_once("Without TESSERA_APIKEY").unwrap();
    assert!(
        notes.contains("not echoed") && !notes.contains("--apikey"),
        "{help}"
    );
    assert!(
        flags.contains("safer, as flags end up in shell history"),
        "{help}"
    );
    let top = ok(cli(config, &["--help"], &[]));
    assert!(!top.contains("--apikey"), "{top}");
}

/// A CLI home (config directory) logged in to `server` as its bootstrap administrator.
fn logged_in_as_admin(server: &TestServer) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    ok(cli(
        home.path(),
        &["login", "--endpoint", &server.url],
        &[("TESSERA_APIKEY", ADMIN_KEY)],
    ));
    home
}

#[tokio::test]
async fn ids_in_either_spelling_and_names() {
    let server = TestServer::start().await;
    let home = logged_in_as_admin(&server);
    let config = home.path();
    let run = |args: &[&str]| cli(config, args, &[]);
    let sa: ServiceAccountView = json_of(run(&[
        "iam",
        "service-account",
        "create",
        "--name",
        "named-sa",
        "-o",
        "json",
    ]));
    let (id, iam_id) = (sa.id.as_str(), sa.iam_id.as_str());
    assert_eq!(iam_id, format!("iam-{id}"));

    // Either spelling of the id.
    let got: ServiceAccountView = json_of(run(&[
        "iam",
        "service-account",
        "get",
        iam_id,
        "-o",
        "json",
    ]));
    assert_eq!(got.id, id);
    let key: ApiKeyView = json_of(run(&[
        "iam",
        "api-key",
        "create",
        "--service-account-id",
        iam_id,
        "--name",
        "k",
        "-o",
        "json",
    ]));
    assert_eq!(key.owner_iam_id, iam_id);
    let keys: Vec<ApiKeyView> = json_of(run(&[
        "iam",
        "api-key",
        "list",
        "--owner-iam-id",
        id,
        "-o",
        "json",
    ]));
    assert_eq!(keys.len(), 1, "{keys:?}");
    let me: WhoAmI = json_of(run(&["whoami", "-o", "json"]));
    let user = me.iam_id.as_str();
    let got: UserView = json_of(run(&[
        "iam",
        "user",
        "get",
        &format!("iam-{user}"),
        "-o",
        "json",
    ]));
    assert_eq!(got.id, user);

    // By name: one match, none, several (in two accounts), narrowed by --account-id.
    let sa_named = |name| {
        run(&[
            "iam",
            "service-account",
            "get",
            "--name",
            name,
            "-o",
            "json",
        ])
    };
    let got: ServiceAccountView = json_of(sa_named("named-sa"));
    assert_eq!(got.id, id);
    let none = sa_named("nobody");
    assert_eq!(none.status.code(), Some(4), "{}", stderr_of(&none));
    assert!(json_error(&none)["message"]
        .as_str()
        .unwrap()
        .contains("no service account is named \"nobody\""));
    let other: AccountView = json_of(run(&[
        "iam", "account", "create", "--name", "other", "-o", "json",
    ]));
    let other_account = other.id.as_str();
    let twin: ServiceAccountView = json_of(run(&[
        "iam",
        "service-account",
        "create",
        "--name",
        "named-sa",
        "--account-id",
        other_account,
        "-o",
        "json",
    ]));
    let several = run(&["iam", "service-account", "get", "--name", "named-sa"]);
    assert_eq!(several.status.code(), Some(1));
    let text = stderr_of(&several);
    assert!(
        text.contains("2 service accounts are named") && text.contains(id),
        "{text}"
    );
    assert!(text.contains(&twin.id), "{text}");
    let out = ok(run(&[
        "iam",
        "service-account",
        "delete",
        "--name",
        "named-sa",
        "--account-id",
        other_account,
    ]));
    assert!(out.contains(&twin.id), "{out}");
    let got: ServiceAccountView = json_of(sa_named("named-sa"));
    assert_eq!(got.id, id);
}

/// `--name` for trusted profiles and `--email` for users (unique in an account), as for
/// service accounts.
#[tokio::test]
async fn profiles_by_name_and_users_by_email() {
    let server = TestServer::start().await;
    let home = logged_in_as_admin(&server);
    let config = home.path();
    let run = |args: &[&str]| cli(config, args, &[]);
    let profile: Value = json_of(run(&[
        "iam", "profile", "create", "--name", "by-name", "-o", "json",
    ]));
    let got: Value = json_of(run(&[
        "iam", "profile", "get", "--name", "by-name", "-o", "json",
    ]));
    assert_eq!(got["id"], profile["id"]);
    let none = run(&["iam", "profile", "get", "--name", "nobody", "-o", "json"]);
    assert_eq!(none.status.code(), Some(4), "{}", stderr_of(&none));
    assert!(json_error(&none)["message"]
        .as_str()
        .unwrap()
        .contains("no trusted profile is named \"nobody\""));

    let admin = server.admin_client().await;
    let (user, _) = server
        .user_with_key(&admin, user("By Mail", "by-mail@example.com"))
        .await;
    let got: UserView = json_of(run(&[
        "iam",
        "user",
        "get",
        "--email",
        "by-mail@example.com",
        "-o",
        "json",
    ]));
    assert_eq!(got.id, user.id);
    let none = run(&["iam", "user", "get", "--email", "nobody@example.com"]);
    assert_eq!(none.status.code(), Some(4), "{}", stderr_of(&none));
    assert!(
        stderr_of(&none).contains("no user has the e-mail address \"nobody@example.com\""),
        "{}",
        stderr_of(&none)
    );
    // The same address in another account: ambiguous until --account-id narrows it.
    let other: AccountView = json_of(run(&[
        "iam",
        "account",
        "create",
        "--name",
        "mail-other",
        "-o",
        "json",
    ]));
    let mut twin = crate::harness::user("By Mail Twin", "by-mail@example.com");
    twin.account_id = Some(other.id.clone());
    let (twin, _) = server.user_with_key(&admin, twin).await;
    let several = run(&["iam", "user", "get", "--email", "by-mail@example.com"]);
    assert_eq!(several.status.code(), Some(1));
    let text = stderr_of(&several);
    assert!(
        text.contains("2 users have the e-mail address") && text.contains(&twin.id),
        "{text}"
    );
    let out = ok(run(&[
        "iam",
        "user",
        "delete",
        "--email",
        "by-mail@example.com",
        "--account-id",
        &other.id,
    ]));
    assert!(out.contains(&twin.id), "{out}");
    let out = ok(run(&["iam", "profile", "delete", "--name", "by-name"]));
    assert!(out.contains(profile["id"].as_str().unwrap()), "{out}");
    // Exactly one of the id and the name.
    let both = run(&["iam", "profile", "get", "Profile-x", "--name", "by-name"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr_of(&both));
}

#[tokio::test]
async fn tables_fit_the_terminal_and_never_a_pipe() {
    let server = TestServer::start().await;
    let home = logged_in_as_admin(&server);
    let config = home.path();
    let long = "d".repeat(120);
    ok(cli(
        config,
        &[
            "iam",
            "service-account",
            "create",
            "--name",
            "wide",
            "--description",
            &long,
        ],
        &[],
    ));
    let args = ["iam", "service-account", "list"];
    let (shown, code) = on_a_terminal(config, &args, &[("COLUMNS", "200")], &[]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains('…') && !shown.contains(&long), "{shown}");
    assert!(
        shown
            .lines()
            .all(|l| l.trim_end_matches('\r').chars().count() <= 200),
        "{shown}"
    );
    // The ids stay whole: the description is the widest column, cut first.
    let listed: Vec<ServiceAccountView> = json_of(cli(
        config,
        &["iam", "service-account", "list", "-o", "json"],
        &[],
    ));
    assert!(shown.contains(&listed[0].iam_id), "{shown}");
    // Piped: never cut, whatever COLUMNS says.
    let piped = ok(cli(config, &args, &[("COLUMNS", "200")]));
    assert!(piped.contains(&long) && !piped.contains('…'), "{piped}");
}

#[tokio::test]
async fn audit_list_filters_and_export_every_page() {
    let server = TestServer::in_process().await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("TESSERA_ENDPOINT", server.url.as_str()),
        ("TESSERA_APIKEY", ADMIN_KEY),
    ];
    for name in ["audit-a", "audit-b", "audit-c"] {
        ok(cli(
            home.path(),
            &["iam", "service-account", "create", "--name", name],
            &env,
        ));
    }
    // A table of the newest events, and the same as the API's JSON.
    let table = ok(cli(home.path(), &["audit", "list", "--limit", "2"], &env));
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("service_account.create"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    let events: Vec<AuditEvent> = json_of(cli(
        home.path(),
        &[
            "audit",
            "list",
            "--action",
            "service_account.",
            "-o",
            "json",
        ],
        &env,
    ));
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(|e| e.action == "service_account.create"));
    assert!(events.windows(2).all(|w| w[0].id > w[1].id));
    // The next page, by the last id.
    let last = events[1].id.to_string();
    let older: Vec<AuditEvent> = json_of(cli(
        home.path(),
        &[
            "audit",
            "list",
            "--action",
            "service_account.",
            "--before",
            &last,
            "-o",
            "json",
        ],
        &env,
    ));
    assert_eq!(older.len(), 1);
    // Export: every event, one JSON object a line, in a file.
    let file = home.path().join("audit.jsonl");
    let all: Value = json_of(cli(
        home.path(),
        &["audit", "list", "--limit", "1000", "-o", "json"],
        &env,
    ));
    let out = cli(
        home.path(),
        &["audit", "export", "--output", file.to_str().unwrap()],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, *all.as_array().unwrap());
    // A bad filter is the server's message and a usage-class failure, not a crash.
    let bad = cli(
        home.path(),
        &["audit", "list", "--since", "yesterday"],
        &env,
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // Someone without the admin role is refused (exit 3).
    let (_, key) = server.service_account_with_key().await;
    let refused = cli(
        home.path(),
        &["audit", "list"],
        &[
            ("TESSERA_ENDPOINT", server.url.as_str()),
            ("TESSERA_APIKEY", key.as_str()),
        ],
    );
    assert_eq!(
        refused.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
