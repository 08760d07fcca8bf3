//! The workload metadata agent: a real `tessera agent` process beside a real server, spoken to
//! over HTTP the way GCE clients do.

use crate::harness::{
    account_of_token, authorized_key_of, binary, bind, eventually, free_port, json_of, jwt_payload,
    service_account_in, unix_now, TestServer,
};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_client::api::admin::{
    ApiKeyCreate, ApiKeyView, ComputeResourceLink, ServiceAccountView, TrustedIssuerCreate,
    TrustedProfileCreate, WhoAmI,
};
use tessera_client::resource::{ApiKeys, TrustedIssuers, TrustedProfiles};

/// The IBM VPC exchange of an instance identity token, API version 2022-03-01.
const V1_IAM_TOKEN: &str = "/instance_identity/v1/iam_token?version=2022-03-01";
const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// A running `tessera agent`.
struct Agent {
    child: Child,
    url: String,
    /// The admin port's URL, when started with `--admin-listen`.
    admin_url: Option<String>,
    output: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

/// The message of a log line, text or JSON.
fn log_message(line: &str) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(value) => value["message"].as_str().unwrap_or_default().to_owned(),
        Err(_) => line.to_owned(),
    }
}

impl Agent {
    /// Starts an agent for `server` with a credential file holding `credential` and, when
    /// given, `agent.toml` with `config`.
    fn start(server: &TestServer, credential: &Value, config: Option<&str>) -> Agent {
        Self::start_with(&server.url, credential, config, &[], &[])
    }

    /// [`Agent::start`] for the server at `server_url`, with more flags and environment.
    fn start_with(
        server_url: &str,
        credential: &Value,
        config: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials.json");
        std::fs::write(&credentials, credential.to_string()).unwrap();
        let mut command = Command::new(binary());
        command
            .args(["agent", "--server", server_url, "--listen", "127.0.0.1:0"])
            .arg("--credentials")
            .arg(&credentials)
            .args(args)
            .env_remove("TESSERA_CACERT")
            .env("TESSERA_LOG_LEVEL", "info,tessera=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        if let Some(config) = config {
            let path = dir.path().join("agent.toml");
            std::fs::write(&path, config).unwrap();
            command.arg("--config").arg(&path);
        }
        let mut child = command.spawn().expect("spawn tessera agent");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
        for pipe in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let output = output.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let message = log_message(&line);
                    if let Some((_, address)) = message.split_once("agent listening on ") {
                        let _ = tx.send((false, format!("http://{}", address.trim())));
                    }
                    if let Some((_, address)) = message.split_once("agent admin endpoints on ") {
                        let _ = tx.send((true, format!("http://{}", address.trim())));
                    }
                    output.lock().unwrap().push(line);
                }
            });
        }
        let with_admin = args.contains(&"--admin-listen");
        let (mut url, mut admin_url) = (None, None);
        while url.is_none() || (with_admin && admin_url.is_none()) {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok((true, address)) => admin_url = Some(address),
                Ok((false, address)) => url = Some(address),
                Err(_) => panic!(
                    "agent did not start:\n{}",
                    output.lock().unwrap().join("\n")
                ),
            }
        }
        Agent {
            child,
            url: url.unwrap(),
            admin_url,
            output,
            dir,
        }
    }

    fn logs(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    /// GET with `Metadata-Flavor: Google` from 127.0.0.1.
    async fn get(&self, path: &str) -> (u16, HeaderMap, String) {
        get_from(&self.url, path, None, &[("Metadata-Flavor", "Google")]).await
    }

    /// The token once the agent has one (it fetches in the background after starting).
    async fn wait_for_token(&self) -> Value {
        eventually(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || async {
                let (status, _, body) = self.get(TOKEN_PATH).await;
                match status {
                    200 => Ok(serde_json::from_str(&body).unwrap()),
                    _ => Err(format!("no token: {status} {body}\n{}", self.logs())),
                }
            },
        )
        .await
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url + path` from `source` (a local address to bind, e.g. 127.0.0.2) with `headers`.
async fn get_from(
    url: &str,
    path: &str,
    source: Option<IpAddr>,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30));
    if let Some(source) = source {
        builder = builder.local_address(source);
    }
    let mut request = builder.build().unwrap().get(format!("{url}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Who the server takes `token` for: it must accept it.
async fn whoami(server: &TestServer, token: &str) -> WhoAmI {
    server
        .client()
        .with_token(token)
        .whoami()
        .await
        .unwrap_or_else(|e| panic!("whoami: {e}"))
}

async fn service_account(server: &TestServer, admin: &str, name: &str) -> ServiceAccountView {
    service_account_in(&server.client().with_token(admin), None, name).await
}

/// An API key named `agent` of `sa`: the create answer (`apikey` is the key, `id` deletes it).
async fn apikey_for(server: &TestServer, admin: &str, sa: &ServiceAccountView) -> ApiKeyView {
    server
        .client()
        .with_token(admin)
        .create::<ApiKeys>(&ApiKeyCreate {
            owner_iam_id: sa.iam_id.clone(),
            name: "agent".into(),
            description: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create API key: {e}"))
}

/// Runs `tessera ARGS` to completion: the agent's one-shot commands (`agent token`, `agent
/// keygen`) and starts that must fail.
fn run_tessera(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run tessera {args:?}: {e}"))
}

/// The administrator's token, a new service account `name` and an API key of it (the
/// credential an agent runs with).
async fn workload(server: &TestServer, name: &str) -> (String, ServiceAccountView, ApiKeyView) {
    let admin = server.admin_token().await;
    let sa = service_account(server, &admin, name).await;
    let key = apikey_for(server, &admin, &sa).await;
    (admin, sa, key)
}

const CONFIG: &str = r#"
universe_domain = "tessera.local"
[instance]
id = "4242"
name = "vm-1"
hostname = "vm-1.internal"
zone = "zone-a"
[instance.attributes]
role = "web"
[project]
id = "proj-1"
numeric_id = "1234"
[yandex]
cloud_id = "cloud-1"
folder_id = "folder-1"
image_id = "image-1"
"#;

#[tokio::test]
async fn one_workload_gets_gce_metadata_and_tokens() {
    let server = TestServer::start().await;
    let (_, sa, key) = workload(&server, "web").await;
    let agent = Agent::start(&server, &json!({"apikey": key.apikey}), Some(CONFIG));
    let token = agent.wait_for_token().await;

    // The token: JSON, Bearer, true remaining lifetime, accepted by the server as the SA.
    let (status, headers, body) = agent.get(TOKEN_PATH).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(header(&headers, "metadata-flavor"), "Google");
    assert_eq!(header(&headers, "server"), "Metadata Server for VM");
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        again["access_token"], token["access_token"],
        "served from the cache"
    );
    assert_eq!(token["token_type"], "Bearer");
    let expires_in = token["expires_in"].as_i64().unwrap();
    assert!((3500..=3600).contains(&expires_in), "{token}");
    let access = token["access_token"].as_str().unwrap();
    let me = whoami(&server, access).await;
    assert_eq!(me.id, sa.id);
    let email = me.email.clone().unwrap();
    assert_eq!(email, format!("web@{}.iam.tessera", sa.account_id));
    assert!(!agent.logs().contains(access), "the agent logged a token");
    assert!(!agent.logs().contains(key.apikey.as_deref().unwrap()));

    // Scopes are accepted (and validated); the e-mail path serves the same token.
    let (status, _, _) = agent.get(&format!("{TOKEN_PATH}?scopes=a,b")).await;
    assert_eq!(status, 200);
    let (status, _, body) = agent.get(&format!("{TOKEN_PATH}?scopes=a,,b")).await;
    assert_eq!(status, 400, "{body}");
    let by_email = format!("/computeMetadata/v1/instance/service-accounts/{email}/token");
    let (status, _, body) = agent.get(&by_email).await;
    assert_eq!(status, 200);
    assert!(body.contains(access));
    let (status, _, _) = agent
        .get("/computeMetadata/v1/instance/service-accounts/other@x/token")
        .await;
    assert_eq!(status, 404);

    // Service-account directory: listing, recursive JSON, leaves.
    let (status, _, body) = agent
        .get("/computeMetadata/v1/instance/service-accounts/")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, format!("default/\n{email}/\n"));
    let (status, headers, body) = agent
        .get("/computeMetadata/v1/instance/service-accounts/default/?recursive=true")
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        info,
        json!({"aliases": ["default"], "email": email, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]})
    );
    let (_, _, body) = agent
        .get("/computeMetadata/v1/instance/service-accounts/default/email")
        .await;
    assert_eq!(body, email);
    let (_, _, body) = agent
        .get("/computeMetadata/v1/instance/service-accounts/default/scopes")
        .await;
    assert_eq!(body, "https://www.googleapis.com/auth/cloud-platform\n");

    // Directories without their slash move; leaves carry an ETag; alt=json quotes a leaf.
    let (status, headers, _) = agent
        .get("/computeMetadata/v1/instance/service-accounts/default?recursive=true")
        .await;
    assert_eq!(status, 301);
    assert_eq!(
        header(&headers, "location"),
        "/computeMetadata/v1/instance/service-accounts/default/?recursive=true"
    );
    let (status, headers, body) = agent.get("/computeMetadata/v1/project/project-id").await;
    assert_eq!((status, body.as_str()), (200, "proj-1"));
    assert_eq!(header(&headers, "etag").len(), 16);
    let (_, _, body) = agent
        .get("/computeMetadata/v1/project/project-id?alt=json")
        .await;
    assert_eq!(body, "\"proj-1\"");
    for (path, want) in [
        ("project/numeric-project-id", "1234"),
        ("instance/id", "4242"),
        ("instance/name", "vm-1"),
        ("instance/hostname", "vm-1.internal"),
        ("instance/zone", "projects/1234/zones/zone-a"),
        ("instance/attributes/role", "web"),
        ("universe/universe-domain", "tessera.local"),
        ("instance/vendor/cloud-id", "cloud-1"),
        ("instance/vendor/folder-id", "folder-1"),
    ] {
        let (status, _, body) = agent.get(&format!("/computeMetadata/v1/{path}")).await;
        assert_eq!((status, body.as_str()), (200, want), "{path}");
    }
    let (_, _, body) = agent
        .get("/computeMetadata/v1/instance/vendor/identity/document")
        .await;
    let document: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["instanceId"], "4242");
    assert_eq!(document["imageId"], "image-1");
    let (_, _, body) = agent
        .get("/computeMetadata/v1/project/?recursive=true")
        .await;
    let project: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(project["projectId"], "proj-1");
    assert_eq!(project["numericProjectId"], 1234);
    let (_, _, body) = agent
        .get("/computeMetadata/v1/project/?recursive=true&alt=text")
        .await;
    assert!(body.contains("project-id proj-1\n"), "{body}");
    let (_, _, body) = agent.get("/computeMetadata/v1/instance/").await;
    assert!(
        body.contains("service-accounts/\n") && body.contains("zone\n"),
        "{body}"
    );
    let (_, _, body) = agent.get("/computeMetadata/v1/?recursive=true").await;
    let everything: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        everything["instance"]["serviceAccounts"]["default"]["email"],
        email
    );
    assert!(!body.contains(access), "recursive trees never hold tokens");

    // Bad requests.
    let (status, _, body) = agent.get("/computeMetadata/v1/nope").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = agent
        .get("/computeMetadata/v1/project/project-id?alt=xml")
        .await;
    assert_eq!(status, 400);
    let response = reqwest::Client::new()
        .post(format!("{}{TOKEN_PATH}", agent.url))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn the_agent_answers_only_direct_requests_with_the_flavor_header() {
    let server = TestServer::start().await;
    let (_, _, key) = workload(&server, "guarded").await;
    let agent = Agent::start(&server, &json!({"apikey": key.apikey}), None);
    agent.wait_for_token().await;

    // Detection: GET / answers 200 with the header, no header needed.
    let (status, headers, _) = get_from(&agent.url, "/", None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "metadata-flavor"), "Google");

    for headers in [vec![], vec![("Metadata-Flavor", "Gooogle")]] {
        let (status, response_headers, body) =
            get_from(&agent.url, TOKEN_PATH, None, &headers).await;
        assert_eq!(status, 403, "{headers:?}");
        assert!(body.contains("Metadata-Flavor"), "{body}");
        assert_eq!(header(&response_headers, "metadata-flavor"), "Google");
    }
    let legacy = [("X-Google-Metadata-Request", "True")];
    let (status, _, _) = get_from(&agent.url, TOKEN_PATH, None, &legacy).await;
    assert_eq!(status, 200);
    let proxied = [
        ("Metadata-Flavor", "Google"),
        ("X-Forwarded-For", "10.0.0.1"),
    ];
    let (status, _, body) = get_from(&agent.url, TOKEN_PATH, None, &proxied).await;
    assert_eq!(status, 403);
    assert!(!body.contains("access_token"));

    // Without a config, attributes are simply absent, and the universe is the default (404).
    let (status, _, _) = agent
        .get("/computeMetadata/v1/universe/universe-domain")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn identity_tokens_are_signed_by_the_server_for_the_audience() {
    let server = TestServer::start().await;
    let (admin, sa, key) = workload(&server, "caller").await;
    let agent = Agent::start(&server, &json!({"apikey": key.apikey}), Some(CONFIG));
    agent.wait_for_token().await;
    let identity = "/computeMetadata/v1/instance/service-accounts/default/identity";

    let (status, _, body) = agent.get(identity).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("audience"));
    let (status, _, body) = agent
        .get(&format!("{identity}?audience=x&format=big"))
        .await;
    assert_eq!(status, 400, "{body}");

    let jwks = server.jwks().await;
    let now = unix_now();
    let issuer = format!("{}/identity", server.url);

    let (status, _, standard) = agent
        .get(&format!("{identity}?audience=https://svc.example/api"))
        .await;
    assert_eq!(status, 200, "{standard}");
    let claims = jwks.verify(&standard, &issuer, now).unwrap();
    assert_eq!(claims["aud"], "https://svc.example/api");
    assert_eq!(claims["sub"], sa.id);
    assert!(claims.get("email").is_none());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    let (status, _, full) = agent
        .get(&format!(
            "{identity}?audience=svc-2&format=full&licenses=TRUE"
        ))
        .await;
    assert_eq!(status, 200, "{full}");
    let claims = jwks.verify(&full, &issuer, now).unwrap();
    assert_eq!(claims["aud"], "svc-2");
    assert!(claims["email"].as_str().unwrap().starts_with("caller@"));
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["google"]["compute_engine"]["instance_id"], "4242");
    assert_eq!(claims["google"]["compute_engine"]["project_id"], "proj-1");

    // The server endpoint itself: bearer required, audience validated.
    let (status, body) = server
        .admin_post("/v1/id_tokens", &admin, json!({"format": "full"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("audience"));
    let (status, _) = server
        .admin_post("/v1/id_tokens", "bogus", json!({"audience": "a"}))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn an_authorized_key_file_works_and_token_prints_a_handler_context() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let sa = service_account(&server, &admin, "keyed").await;
    let created = authorized_key_of(&server.client().with_token(&admin), &sa.id).await;
    let key_file = serde_json::to_value(created.key_file.as_ref().unwrap()).unwrap();
    let overrides = "[service_account]\nemail = \"robot@example.test\"\nscopes = [\"s1\"]\n";
    let agent = Agent::start(&server, &key_file, Some(overrides));
    let token = agent.wait_for_token().await;
    let access = token["access_token"].as_str().unwrap();
    assert!(access.starts_with("t1."), "{token}");
    assert_eq!(whoami(&server, access).await.id, sa.id);

    // [service_account] overrides the e-mail and scopes the agent shows.
    let (status, _, body) = agent
        .get("/computeMetadata/v1/instance/service-accounts/default/?recursive=true")
        .await;
    assert_eq!(status, 200, "{body}");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["email"], "robot@example.test");
    assert_eq!(info["scopes"], json!(["s1"]));
    let (status, _, _) = agent
        .get("/computeMetadata/v1/instance/service-accounts/robot@example.test/token")
        .await;
    assert_eq!(status, 200);

    // [service_account] is for one workload: with a host-mode table the agent refuses to start.
    let both = agent.dir.path().join("both.toml");
    std::fs::write(
        &both,
        format!("{overrides}[[workloads]]\nsource = \"127.0.0.2\"\nservice_account_id = \"x\"\n"),
    )
    .unwrap();
    let credentials = agent.dir.path().join("credentials.json");
    let credentials = credentials.to_str().unwrap();
    let output = run_tessera(&[
        "agent",
        "--server",
        &server.url,
        "--listen",
        "127.0.0.1:0",
        "--config",
        both.to_str().unwrap(),
        "--credentials",
        credentials,
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("host mode"));

    // `tessera agent token`: the handler-context object, once.
    let token_command = |format| {
        let server = server.url.as_str();
        run_tessera(&[
            "agent",
            "token",
            "--format",
            format,
            "--server",
            server,
            "--credentials",
            credentials,
        ])
    };
    let printed: Value = json_of(token_command("json"));
    assert_eq!(printed["token_type"], "Bearer");
    assert!(printed["expires_in"].as_i64().unwrap() > 3000);
    let printed_token = printed["access_token"].as_str().unwrap();
    assert_eq!(whoami(&server, printed_token).await.id, sa.id);
    let output = token_command("text");
    assert!(String::from_utf8_lossy(&output.stdout)
        .trim()
        .starts_with("t1."));

    // A deleted key: `agent token` fails with the server's reason and without the key.
    let (status, body) = server
        .admin_delete(&format!("/v1/authorized_keys/{}", created.id), &admin)
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    let output = run_tessera(&[
        "agent",
        "token",
        "--server",
        &server.url,
        "--credentials",
        credentials,
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");

    // A credentials file that is neither kind.
    let bad = agent.dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"hello": "world"}"#).unwrap();
    let output = run_tessera(&[
        "agent",
        "--server",
        &server.url,
        "--credentials",
        bad.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("neither an authorized key"));
}

#[tokio::test]
async fn host_mode_tells_workloads_apart_by_source_address() {
    let server = TestServer::start().await;
    let (admin, host, host_key) = workload(&server, "host-agent").await;
    let web = service_account(&server, &admin, "web").await;
    let batch = service_account(&server, &admin, "batch").await;
    let stranger = service_account(&server, &admin, "stranger").await;
    for target in [&web, &batch] {
        bind(
            &server.client().with_token(&admin),
            &host.iam_id,
            "iam.serviceAccounts.tokenCreator",
            &format!("service-account/{}", target.id),
        )
        .await;
    }
    let config = format!(
        r#"
[[workloads]]
source = "127.0.0.2"
service_account_id = "{}"
[[workloads]]
source = "127.0.0.3/32"
service_account_id = "{}"
scopes = ["s1", "s2"]
[[workloads]]
source = "127.0.0.4"
service_account_id = "{}"
"#,
        web.id, batch.id, stranger.id
    );
    let agent = Agent::start(&server, &json!({"apikey": host_key.apikey}), Some(&config));
    let flavor = [("Metadata-Flavor", "Google")];

    for (source, sa) in [("127.0.0.2", &web), ("127.0.0.3", &batch)] {
        let source: IpAddr = source.parse().unwrap();
        let body = eventually(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || async {
                let (status, _, body) =
                    get_from(&agent.url, TOKEN_PATH, Some(source), &flavor).await;
                match status {
                    200 => Ok(body),
                    _ => Err(format!("{status} {body}\n{}", agent.logs())),
                }
            },
        )
        .await;
        let token: Value = serde_json::from_str(&body).unwrap();
        let access = token["access_token"].as_str().unwrap();
        assert!(access.starts_with("t1."));
        assert_eq!(whoami(&server, access).await.id, sa.id, "{source}");
        let (_, _, email) = get_from(
            &agent.url,
            "/computeMetadata/v1/instance/service-accounts/default/email",
            Some(source),
            &flavor,
        )
        .await;
        assert!(email.starts_with(&format!("{}@", sa.name)), "{email}");
    }
    let (_, _, scopes) = get_from(
        &agent.url,
        "/computeMetadata/v1/instance/service-accounts/default/scopes",
        Some("127.0.0.3".parse().unwrap()),
        &flavor,
    )
    .await;
    assert_eq!(scopes, "s1\ns2\n");

    // An unmapped source has no service account: 404, which SDKs read as "none attached".
    for path in [TOKEN_PATH, "/computeMetadata/v1/instance/service-accounts/"] {
        let (status, _, body) = get_from(
            &agent.url,
            path,
            Some("127.0.0.1".parse().unwrap()),
            &flavor,
        )
        .await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // A workload the agent may not make tokens for gets none: 503 with the server's reason.
    let (status, _, body) = get_from(
        &agent.url,
        TOKEN_PATH,
        Some("127.0.0.4".parse().unwrap()),
        &flavor,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || async {
            let source = Some("127.0.0.4".parse().unwrap());
            let (_, _, body) = get_from(&agent.url, TOKEN_PATH, source, &flavor).await;
            if body.contains("tokenCreator") {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;
}

#[tokio::test]
async fn wait_for_change_returns_when_the_attribute_changes() {
    let server = TestServer::start().await;
    let (_, _, key) = workload(&server, "watcher").await;
    let agent = Agent::start(&server, &json!({"apikey": key.apikey}), Some(CONFIG));
    let path = "/computeMetadata/v1/instance/attributes/role";
    let (_, headers, body) = agent.get(path).await;
    assert_eq!(body, "web");
    let etag = header(&headers, "etag").to_owned();

    // A stale last_etag answers at once with the current value.
    let started = Instant::now();
    let (status, _, body) = agent
        .get(&format!(
            "{path}?wait_for_change=true&last_etag=0000000000000000"
        ))
        .await;
    assert_eq!((status, body.as_str()), (200, "web"));
    assert!(started.elapsed() < Duration::from_secs(2));
    // The current one waits until timeout_sec, then answers the unchanged value.
    let started = Instant::now();
    let (_, headers, body) = agent
        .get(&format!(
            "{path}?wait_for_change=true&last_etag={etag}&timeout_sec=1"
        ))
        .await;
    assert_eq!(body, "web");
    assert_eq!(header(&headers, "etag"), etag);
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A hanging GET returns the new value once the config file is edited.
    let url = agent.url.clone();
    let waiting = tokio::spawn(async move {
        get_from(
            &url,
            &format!("{path}?wait_for_change=true&last_etag={etag}&timeout_sec=30"),
            None,
            &[("Metadata-Flavor", "Google")],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let edited = CONFIG.replace("role = \"web\"", "role = \"db\"");
    write_config(&agent.config_path(), &edited);
    let (status, headers, body) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the hanging GET returned after the edit")
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "db"), "{}", agent.logs());
    assert_ne!(header(&headers, "etag"), "");
    let (status, _, _) = agent
        .get(&format!("{TOKEN_PATH}?wait_for_change=true"))
        .await;
    assert_ne!(status, 500);
}

/// Rewrites a file so that its modification time surely moves.
fn write_config(path: &Path, text: &str) {
    let before = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    loop {
        std::fs::write(path, text).unwrap();
        if std::fs::metadata(path).and_then(|m| m.modified()).ok() != before {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn the_agent_rides_out_a_server_outage_and_stops_with_its_credential() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server =
        TestServer::start_with(&["--listen", &listen, "--token-lifetime", "60"], &[]).await;
    let (_, sa, key) = workload(&server, "resilient").await;
    let config = "[refresh]\nexpiry_margin_seconds = 50\nmax_backoff_seconds = 1\n";
    let agent = Agent::start(&server, &json!({"apikey": key.apikey}), Some(config));
    let first = agent.wait_for_token().await;

    // The server goes away: the cached token is still served, counting down, while valid.
    let mut server = server;
    server.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _, body) = agent.get(TOKEN_PATH).await;
    assert_eq!(status, 200, "{body}");
    let cached: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cached["access_token"], first["access_token"]);
    assert!(cached["expires_in"].as_i64() < first["expires_in"].as_i64());

    // Once nothing valid is left: 503, never a stale token.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (status, _, body) = agent.get(TOKEN_PATH).await;
        if status == 503 {
            assert!(body.contains("refresh failed"), "{body}");
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "still serving after the token's time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The server returns on the same address: the agent recovers by itself.
    let server = server.restart().await;
    let recovered = agent.wait_for_token().await;
    assert_ne!(recovered["access_token"], first["access_token"]);
    let access = recovered["access_token"].as_str().unwrap();
    assert_eq!(whoami(&server, access).await.id, sa.id);
    assert!(
        agent.logs().contains("token refresh failed"),
        "{}",
        agent.logs()
    );

    // The credential is deleted: no new tokens; once the last one's time is up, 503.
    let (status, body) = server
        .admin_delete(
            &format!("/v1/api_keys/{}", key.id),
            &admin_after_restart(&server).await,
        )
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    // A refresh that was under way when the key went may still land after the deletion was
    // answered, so the served token may change once; what must never be served is a token
    // minted after the deletion. Tokens carry `iat` in whole seconds.
    let deleted_at = unix_now();
    let deadline = Instant::now() + Duration::from_secs(75);
    loop {
        let (status, _, body) = agent.get(TOKEN_PATH).await;
        if status == 503 {
            assert!(body.contains("refused"), "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        let served: Value = serde_json::from_str(&body).unwrap();
        let iat = jwt_payload(served["access_token"].as_str().unwrap())["iat"]
            .as_i64()
            .unwrap();
        assert!(
            iat <= deleted_at,
            "a token minted after the deletion: iat {iat} > {deleted_at}"
        );
        assert!(
            Instant::now() < deadline,
            "still serving after the last token's time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn admin_after_restart(server: &TestServer) -> String {
    server.admin_token().await
}

#[tokio::test]
async fn ibm_vpc_instance_identity_becomes_a_trusted_profile_token() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let account_id = account_of_token(&admin);
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("instance-key.pem");
    let keygen = ["agent", "keygen", "--key-out", key_path.to_str().unwrap()];
    let jwks: Value = json_of(run_tessera(&keygen));
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "only the public key is printed"
    );
    // An existing key file is never overwritten.
    let again = run_tessera(&keygen);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("must not exist yet"));

    let instance_crn = format!("crn:v1:tessera:public:is:zone-a:a/{account_id}::instance:4242");
    let issuer_url = "https://vpc.tessera.test/instances/4242";
    let typed = server.client().with_token(&admin);
    typed
        .create::<TrustedIssuers>(&TrustedIssuerCreate {
            issuer_url: issuer_url.into(),
            jwks: Some(jwks.clone()),
            cr_type: Some("VSI".into()),
            crn: Some(instance_crn.clone()),
            ..crate::cr_token::issuer_at("vm-4242")
        })
        .await
        .unwrap();
    let vm_link = ComputeResourceLink {
        id: None,
        cr_type: "VSI".into(),
        crn: instance_crn.clone(),
        namespace: None,
        name: None,
        component_type: None,
        component_name: None,
    };
    let profile = typed
        .create::<TrustedProfiles>(&TrustedProfileCreate {
            account_id: Some(account_id.clone()),
            links: vec![vm_link],
            ..crate::profiles::named("vm-profile", Vec::new())
        })
        .await
        .unwrap();
    let other = typed
        .create::<TrustedProfiles>(&TrustedProfileCreate {
            account_id: Some(account_id.clone()),
            ..crate::profiles::named("unrelated", Vec::new())
        })
        .await
        .unwrap();
    let sa = service_account(&server, &admin, "vm").await;
    let key = apikey_for(&server, &admin, &sa).await;
    let config = format!(
        "[ibm_vpc]\nkey_file = \"{}\"\nissuer = \"{issuer_url}\"\ninstance_crn = \"{instance_crn}\"\n",
        key_path.display()
    );
    let agent = Agent::start(&server, &json!({"apikey": key.apikey}), Some(&config));
    let http = reqwest::Client::new();

    // The instance identity token.
    let url = format!(
        "{}/instance_identity/v1/token?version=2022-03-01",
        agent.url
    );
    let identity_token = |flavor: &'static str, expires_in: u32| {
        let request = http.put(&url).json(&json!({"expires_in": expires_in}));
        let request = match flavor {
            "" => request,
            flavor => request.header("Metadata-Flavor", flavor),
        };
        async move { request.send().await.unwrap() }
    };
    let response = identity_token("", 300).await;
    assert_eq!(response.status(), 403, "Metadata-Flavor: ibm is required");
    let response = identity_token("ibm", 1).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expires_in"));
    let response = identity_token("ibm", 300).await;
    assert_eq!(response.status(), 200);
    let identity: Value = response.json().await.unwrap();
    assert_eq!(identity["expires_in"], 300);
    assert!(identity["created_at"].as_str().unwrap().ends_with('Z'));
    let instance_token = identity["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_payload(&instance_token)["sub"], instance_crn.as_str());

    // Exchanged for a profile token, by id and by crn, on both API versions.
    let exchange = |path: &'static str, body: Value, bearer: Option<String>| {
        let http = http.clone();
        let url = format!("{}{path}", agent.url);
        async move {
            let mut request = http.post(url).header("Metadata-Flavor", "ibm").json(&body);
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let by_id = json!({"trusted_profile": {"id": profile.id}});
    let (status, body) = exchange(V1_IAM_TOKEN, by_id.clone(), Some(instance_token.clone())).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let me = whoami(&server, access).await;
    assert_eq!(me.sub_type, "Profile");
    assert_eq!(me.id, profile.id);
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    let (status, body) = exchange(
        "/identity/v1/iam_tokens?version=2025-08-26",
        json!({"trusted_profile": {"crn": profile.crn}}),
        Some(instance_token.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let response = http
        .put(format!(
            "{}/identity/v1/token?version=2025-08-26",
            agent.url
        ))
        .header("Metadata-Flavor", "ibm")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Refusals: a profile that does not link this instance, no bearer, a forged bearer.
    let (status, body) = exchange(
        V1_IAM_TOKEN,
        json!({"trusted_profile": {"id": other.id}}),
        Some(instance_token.clone()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(!body["errors"][0]["message"].as_str().unwrap().is_empty());
    let (status, _) = exchange(V1_IAM_TOKEN, by_id.clone(), None).await;
    assert_eq!(status, 401);
    // Only this agent's own instance identity tokens are exchanged.
    for forged in [format!("{instance_token}x"), "abc".to_owned()] {
        let (status, body) = exchange(V1_IAM_TOKEN, by_id.clone(), Some(forged)).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["errors"][0]["code"], "invalid_instance_identity_token");
    }
    let (status, _) = exchange(
        "/instance_identity/v1/iam_token?version=latest",
        by_id,
        Some(instance_token),
    )
    .await;
    assert_eq!(status, 400);
}

/// GET `path` on the agent's admin port: status and body.
async fn admin_get(agent: &Agent, path: &str) -> (u16, String) {
    let url = agent
        .admin_url
        .as_deref()
        .expect("started with --admin-listen");
    let response = reqwest::get(format!("{url}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Waits until `/readyz` on the agent's admin port answers `want`; returns its JSON.
async fn wait_for_readyz(agent: &Agent, want: u16) -> Value {
    eventually(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let (status, body) = admin_get(agent, "/readyz").await;
            if status == want {
                Ok(serde_json::from_str(&body).unwrap())
            } else {
                Err(format!("/readyz stayed {status}: {body}\n{}", agent.logs()))
            }
        },
    )
    .await
}

#[tokio::test]
async fn the_admin_port_serves_health_readiness_and_metrics_apart_from_metadata() {
    use crate::observability::{assert_described, Metrics};
    let server = TestServer::start().await;
    let (_, _, key) = workload(&server, "observed").await;
    let agent = Agent::start_with(
        &server.url,
        &json!({"apikey": key.apikey}),
        None,
        &["--admin-listen", "127.0.0.1:0", "--log-format", "json"],
        &[("TESSERA_LOG_LEVEL", "debug")],
    );
    let (status, body) = admin_get(&agent, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let ready = wait_for_readyz(&agent, 200).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["workloads"], 1);
    agent.wait_for_token().await;
    agent.get("/computeMetadata/v1/nope").await;

    let (status, text) = admin_get(&agent, "/metrics").await;
    assert_eq!(status, 200);
    let metrics = Metrics::parse(&text);
    assert_described(&metrics);
    let value = |name: &str, labels: &[(&str, &str)]| {
        metrics
            .value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?}:\n{text}"))
    };
    assert_eq!(
        value(
            "tessera_agent_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(value("tessera_agent_requests_total", &[("code", "200")]) >= 1.0);
    assert!(value("tessera_agent_requests_total", &[("code", "404")]) >= 1.0);
    assert!(value("tessera_agent_token_refreshes_total", &[("outcome", "ok")]) >= 1.0);
    assert_eq!(value("tessera_agent_workloads", &[]), 1.0);
    assert_eq!(value("tessera_agent_workloads_ready", &[]), 1.0);
    let expires_in = value("tessera_agent_token_expires_in_seconds", &[("source", "*")]);
    assert!(expires_in > 3000.0, "{expires_in}");
    assert!(value("process_resident_memory_bytes", &[]) > 1e6);
    assert!(!text.contains(key.apikey.as_deref().unwrap()));
    assert!(
        !text.contains("t1.") && !text.contains("eyJ"),
        "no token in metrics"
    );

    // The metadata port does not serve them: workloads never reach the admin endpoints.
    for path in ["/metrics", "/healthz", "/readyz"] {
        let (status, _, _) = agent.get(path).await;
        assert_eq!(status, 404, "{path} on the metadata port");
    }
    // The logs are JSON, and a bare level means the agent's own debug lines.
    let logs = agent.output.lock().unwrap().clone();
    let lines: Vec<Value> = logs
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["level"] == "DEBUG" && l["target"].as_str().unwrap().starts_with("tessera")));
    assert!(
        lines
            .iter()
            .all(|l| l["level"] != "DEBUG" || l["target"].as_str().unwrap().starts_with("tessera")),
        "no dependency's debug lines"
    );
}

#[tokio::test]
async fn readiness_fails_while_no_token_can_be_served_and_says_why() {
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let agent = Agent::start_with(
        &nowhere,
        &json!({"apikey": "tsk_never-checked"}),
        None,
        &["--admin-listen", "127.0.0.1:0"],
        &[],
    );
    let not_ready = wait_for_readyz(&agent, 503).await;
    assert_eq!(not_ready["status"], "not ready");
    let reason = not_ready["not_ready"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    // The first refresh may still be on its way; then the reason comes with the next look.
    if !reason.contains("unavailable") {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (_, body) = admin_get(&agent, "/readyz").await;
        assert!(body.contains("the server is unavailable"), "{body}");
    }
    let (_, text) = admin_get(&agent, "/metrics").await;
    assert!(
        text.contains(r#"tessera_agent_token_refreshes_total{outcome="unavailable"}"#),
        "{text}"
    );
    assert!(text.contains("tessera_agent_workloads_ready 0"), "{text}");
}

#[tokio::test]
async fn the_admin_port_must_differ_from_the_metadata_port() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("c.json");
    std::fs::write(&credentials, r#"{"apikey": "tsk_x"}"#).unwrap();
    let address = format!("127.0.0.1:{port}");
    let output = run_tessera(&[
        "agent",
        "--server",
        "http://127.0.0.1:1",
        "--listen",
        &address,
        "--admin-listen",
        &address,
        "--credentials",
        credentials.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin-listen must differ"), "{stderr}");
}

/// A `--cacert` (or `TESSERA_CACERT`) file that holds no PEM certificate is refused at start,
/// naming the file, instead of trusting nothing and failing every refresh as an unknown CA.
#[tokio::test]
async fn a_cacert_that_is_not_pem_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("c.json");
    std::fs::write(&credentials, r#"{"apikey": "tsk_x"}"#).unwrap();
    let not_pem = dir.path().join("ca.der");
    std::fs::write(&not_pem, [0x30, 0x82, 0x01, 0x0a, 0x02, 0x82]).unwrap();
    for (flag, env) in [(true, false), (false, true)] {
        let mut command = Command::new(binary());
        command
            .args(["agent", "--server", "https://127.0.0.1:1"])
            .args(["--listen", "127.0.0.1:0"])
            .arg("--credentials")
            .arg(&credentials);
        if flag {
            command.arg("--cacert").arg(&not_pem);
        }
        if env {
            command.env("TESSERA_CACERT", &not_pem);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not a PEM certificate") && stderr.contains("ca.der"),
            "{stderr}"
        );
    }
}

// The TLS server is stopped from a blocking `Drop`: give its drain a second thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_failures_are_reported_as_tls_and_tessera_cacert_is_honoured() {
    let server = TestServer::start_with(&["--tls-self-signed"], &[]).await;
    let ca = server.data_dir().join("tls").join("ca.pem");
    let credential = json!({"apikey": crate::harness::ADMIN_KEY});

    // Without the CA: the agent says it is TLS, and what to do.
    let untrusting = Agent::start_with(
        &server.url,
        &credential,
        None,
        &["--admin-listen", "127.0.0.1:0"],
        &[],
    );
    let body = eventually(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let (status, _, body) = untrusting.get(TOKEN_PATH).await;
            assert_eq!(status, 503, "{body}");
            if body.contains("TLS") {
                Ok(body)
            } else {
                Err(format!("{body}\n{}", untrusting.logs()))
            }
        },
    )
    .await;
    assert!(body.contains("TLS with the server failed"), "{body}");
    assert!(
        body.contains("--cacert") && body.contains("TESSERA_CACERT"),
        "{body}"
    );
    assert!(!body.contains("server is unavailable"), "{body}");
    let (_, text) = admin_get(&untrusting, "/metrics").await;
    assert!(
        text.contains(r#"tessera_agent_token_refreshes_total{outcome="tls"}"#),
        "{text}"
    );
    drop(untrusting);

    // TESSERA_CACERT names the CA: tokens flow.
    let trusting = Agent::start_with(
        &server.url,
        &credential,
        None,
        &[],
        &[("TESSERA_CACERT", ca.to_str().unwrap())],
    );
    let token = trusting.wait_for_token().await;
    assert!(token["access_token"].as_str().unwrap().starts_with("eyJ"));
    drop(trusting);

    // https:// to a plaintext server: a TLS failure that says to use http://.
    let plain = TestServer::start().await;
    let https = plain.url.replacen("http://", "https://", 1);
    let confused = Agent::start_with(&https, &credential, None, &[], &[]);
    eventually(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let (_, _, body) = confused.get(TOKEN_PATH).await;
            if body.contains("TLS") {
                assert!(body.contains("http://"), "{body}");
                Ok(())
            } else {
                Err(format!("{body}\n{}", confused.logs()))
            }
        },
    )
    .await;
}
