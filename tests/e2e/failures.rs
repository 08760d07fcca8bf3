//! One mapping of failures: every body-size limit answers 413 in its surface's shape, chunked
//! bodies included; a malformed protobuf is `INVALID_ARGUMENT` and an oversized one
//! `RESOURCE_EXHAUSTED`, with the surface's `google.rpc.Status`; and a stopped PostgreSQL
//! gives 503 on every surface (IBM token endpoint, Yandex gRPC and REST, OIDC introspection and
//! revocation, admin API) with no driver or SQL text in any answer.
//!
//! The outage test stops a PostgreSQL of its own (initdb into a temporary directory, on a free
//! port), never the machine's shared one. It runs in the SQLite pass only (it brings its own
//! database) and says so and passes when PostgreSQL is not installed.

use crate::harness::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asserts that `surface` answered `response` with 503: its body, as it came.
async fn unavailable(response: reqwest::Response, surface: &str) -> String {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 503, "{surface}: {body}");
    body
}

/// Sends `path` a chunked body of `size` bytes over HTTP/1.1; returns the status and body.
async fn chunked_post(
    server: &TestServer,
    path: &str,
    content_type: &str,
    size: usize,
    bearer: &str,
) -> (u16, String) {
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: tessera\r\nContent-Type: {content_type}\r\nAuthorization: Bearer {bearer}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 8192];
    let mut sent = 0;
    while sent < size {
        let piece = format!("{:x}\r\n", chunk.len());
        // The server may answer and close before the whole body is sent.
        if stream.write_all(piece.as_bytes()).await.is_err()
            || stream.write_all(&chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_limit_answers_413_in_its_surfaces_shape_chunked_too() {
    let server = TestServer::start().await;
    // Authenticated, so each endpoint reaches its body (authentication comes first).
    let admin = server.admin_token().await;
    let form = "application/x-www-form-urlencoded";
    let (status, body) = chunked_post(&server, "/identity/token", form, 100_000, &admin).await;
    assert_eq!(status, 413, "IBM: {body}");
    assert!(body.contains("BXNIM0413E"), "{body}");
    for path in ["/identity/introspect", "/identity/revoke"] {
        let (status, body) = chunked_post(&server, path, form, 100_000, &admin).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert!(
            body.contains("\"error\":\"invalid_request\""),
            "{path}: {body}"
        );
    }
    for path in [
        "/iam/v1/tokens",
        "/iam/v1/tokens:createForServiceAccount",
        "/iam/v1/tokens:revoke",
    ] {
        let (status, body) = chunked_post(&server, path, "application/json", 100_000, &admin).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert!(
            body.contains("\"code\":8") && body.contains("larger than"),
            "{path}: {body}"
        );
    }
    let (status, body) = chunked_post(
        &server,
        "/v1/service_accounts",
        "application/json",
        2_000_000,
        &admin,
    )
    .await;
    assert_eq!(status, 413, "admin: {body}");
}

/// A unary gRPC call with a raw (possibly malformed) message; returns the grpc-status, its
/// message and whether `google.rpc.Status` details came along.
async fn raw_grpc(
    server: &TestServer,
    method: &str,
    message: &[u8],
    declared_len: u32,
) -> (String, String, bool) {
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut body = vec![0u8];
    body.extend_from_slice(&declared_len.to_be_bytes());
    body.extend_from_slice(message);
    let response = client
        .post(format!(
            "{}/yandex.cloud.iam.v1.IamTokenService/{method}",
            server.url
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    (
        header("grpc-status"),
        header("grpc-message"),
        response.headers().contains_key("grpc-status-details-bin"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_decode_errors_are_invalid_argument_and_oversized_messages_resource_exhausted() {
    let server = TestServer::start().await;
    // Field 1 (a string) whose length runs past the end of the message.
    let (status, message, details) = raw_grpc(&server, "Create", b"\x0a\x05ab", 3).await;
    assert_eq!(status, "3", "INVALID_ARGUMENT, not INTERNAL: {message}");
    assert!(
        message.contains("not%20a%20valid%20protobuf") || message.contains("not a valid protobuf"),
        "{message}"
    );
    assert!(details, "the surface's google.rpc.Status comes along");
    // Not UTF-8 in a string field.
    let (status, _, _) = raw_grpc(&server, "Revoke", b"\x0a\x01\xff", 3).await;
    assert_eq!(status, "3");
    // A message over the 16 KiB limit.
    let big = vec![b'a'; 20_000];
    let (status, message, details) = raw_grpc(&server, "Create", &big, 20_000).await;
    assert_eq!(status, "8", "RESOURCE_EXHAUSTED: {message}");
    assert!(details);
}

/// A gRPC request with `authorization: Bearer <token>`.
fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A PostgreSQL server of the test's own, in a temporary directory, stopped on drop.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// `None` when PostgreSQL's server binaries are not installed.
    fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())?;
        let dir = tempfile::tempdir().unwrap();
        let postgres = PrivatePostgres {
            bin,
            dir,
            port: free_port(),
        };
        // initdb refuses to run as root: run the server as the `postgres` user then.
        if is_root() {
            Command::new("chown")
                .args([
                    "-R",
                    "postgres:postgres",
                    postgres.dir.path().to_str().unwrap(),
                ])
                .status()
                .unwrap();
        }
        let data = postgres.data();
        let ok = postgres
            .run(
                "initdb",
                &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
            )
            .success();
        assert!(ok, "initdb failed");
        postgres.up();
        Some(postgres)
    }

    fn data(&self) -> String {
        self.dir.path().join("pg").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> std::process::ExitStatus {
        let program = self.bin.join(tool);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log").display().to_string();
        let ok = self
            .run(
                "pg_ctl",
                &[
                    "-D",
                    &self.data(),
                    "-o",
                    &options,
                    "-l",
                    &log,
                    "-w",
                    "start",
                ],
            )
            .success();
        assert!(ok, "pg_ctl start failed");
    }

    fn down(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.down();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Text that would mean a driver or SQL error reached a client.
const DRIVER_TEXT: [&str; 9] = [
    "sqlx",
    "SQLSTATE",
    "Connection refused",
    "os error",
    "pool timed out",
    "error communicating",
    "PostgreSQL",
    "postgres://",
    "database error",
];

fn assert_no_driver_text(surface: &str, text: &str, database_port: u16) {
    for needle in DRIVER_TEXT {
        assert!(!text.contains(needle), "{surface} leaks {needle:?}: {text}");
    }
    let port = format!(":{database_port}");
    assert!(
        !text.contains(&port),
        "{surface} names the database's address: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgresql_is_503_on_every_surface_without_driver_text() {
    if on_postgres() {
        return;
    }
    let Some(postgres) = PrivatePostgres::start() else {
        eprintln!("skipped: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)");
        return;
    };
    let url = postgres.url();
    let server =
        TestServer::start_sqlite(&["--database-url", &url, "--max-staleness", "2"], &[]).await;
    let admin = server.admin_token().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let access = server.token(&apikey).await;
    // A t1. token for the service account, through CreateForServiceAccount as the admin (sent
    // again during the outage).
    let create_body = json!({"serviceAccountId": sa.id});
    let create_for_sa = || {
        let path = "/iam/v1/tokens:createForServiceAccount";
        server.post_json(path, Some(&admin), &create_body)
    };
    let response = create_for_sa().await;
    assert_eq!(response.status(), 200);
    let iam_token = response.json::<Value>().await.unwrap()["iamToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let channel = tonic::transport::Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc =
        tessera_server::yandex::proto::iam::iam_token_service_client::IamTokenServiceClient::new(
            channel,
        );

    postgres.down();
    let cut = Instant::now();
    let mut answers: Vec<(String, String)> = Vec::new();

    // Writes fail at once: revocation on both surfaces, the admin API.
    let response = server.revoke(&access).await;
    let body = unavailable(response, "RFC 7009 revocation").await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "temporarily_unavailable"
    );
    answers.push(("oidc revoke".into(), body));
    let response = server
        .post_json(
            "/iam/v1/tokens:revoke",
            Some(&admin),
            &json!({"iamToken": iam_token}),
        )
        .await;
    let body = unavailable(response, "Yandex REST revoke").await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 14);
    answers.push(("yandex rest revoke".into(), body));
    let revoked = grpc
        .revoke(bearer(
            &admin,
            tessera_server::yandex::proto::iam::RevokeIamTokenRequest {
                iam_token: iam_token.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), tonic::Code::Unavailable, "{revoked:?}");
    answers.push(("yandex grpc revoke".into(), revoked.message().to_owned()));
    let (status, body) = server
        .admin_post(
            "/v1/service_accounts",
            &admin,
            json!({"name": "during-outage"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    answers.push(("admin write".into(), body.to_string()));
    let (status, body) = server.admin_get("/v1/service_accounts", &admin).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    answers.push(("admin read".into(), body.to_string()));

    // Past the staleness bound, the token surfaces refuse too.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(cut.elapsed())).await;
    let response = server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", apikey.as_str())])
        .await;
    let body = unavailable(response, "IBM token endpoint").await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["errorCode"],
        "BXNIM0503E"
    );
    answers.push(("ibm token".into(), body));
    let response = server.introspect_response(&admin, &access).await;
    let body = unavailable(response, "introspection").await;
    answers.push(("oidc introspect".into(), body));
    let response = create_for_sa().await;
    let body = unavailable(response, "Yandex REST create").await;
    answers.push(("yandex rest create".into(), body));
    let created = grpc
        .create_for_service_account(bearer(
            &admin,
            tessera_server::yandex::proto::iam::CreateIamTokenForServiceAccountRequest {
                service_account_id: sa.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(created.code(), tonic::Code::Unavailable, "{created:?}");
    answers.push(("yandex grpc create".into(), created.message().to_owned()));
    let (status, body) = server.admin_get("/v1/whoami", &admin).await;
    assert_eq!(status, 503, "{body}");
    answers.push(("admin whoami".into(), body.to_string()));

    for (surface, text) in &answers {
        assert_no_driver_text(surface, text, postgres.port);
    }
    // The cause is in the server's log, where an operator looks.
    assert!(
        server.logs().contains("the store is unavailable"),
        "{}",
        server.logs()
    );

    // PostgreSQL returns: the node recovers by itself.
    postgres.up();
    eventually(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async {
            match server.readyz_status().await {
                200 => Ok(()),
                _ => Err("not ready again after PostgreSQL came back".to_owned()),
            }
        },
    )
    .await;
    assert!(!server.token(&apikey).await.is_empty());
}
