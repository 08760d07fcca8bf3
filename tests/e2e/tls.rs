//! TLS on the listener: the self-signed local CA (HTTP/1.1 and HTTP/2 over TLS, SANs, reuse
//! across restarts), operator-supplied PEM files, refusal of bad files, and h2c when TLS is off.

use crate::harness::*;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A client that trusts only `ca` and speaks only HTTPS; `http1` limits ALPN to `http/1.1`.
fn tls_client(ca: &Path, http1: bool) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .https_only(true)
        .timeout(Duration::from_secs(30));
    if http1 {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

fn addr_of(url: &str) -> SocketAddr {
    url.rsplit("://").next().unwrap().parse().unwrap()
}

/// Waits for a line on the server's stdout (read by another thread than the log).
fn stdout_line(server: &TestServer, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = server
            .stdout
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
        {
            return line.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} on stdout:\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn get_healthz(client: &reqwest::Client, url: &str) -> reqwest::Response {
    let response = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

// HTTP/2 tests run on two threads: the harness stops servers from a blocking `Drop`, and a
// pooled h2 connection must still answer the server's GOAWAY ping, or the server's drain waits
// its full 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_tls_serves_http1_and_h2_and_keeps_its_ca() {
    let mut server =
        TestServer::start_with(&["--tls-self-signed", "--tls-name", "tessera.test"], &[]).await;
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let tls_dir = server.data_dir().join("tls");
    let ca_path = tls_dir.join("ca.pem");
    let printed = stdout_line(&server, "TLS: local CA certificate for clients:");
    assert!(printed.ends_with("tls/ca.pem"), "{printed}");
    assert!(Path::new(printed.rsplit(": ").next().unwrap()).is_absolute());
    assert!(server.logs().contains("TLS with a local CA"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tls_dir), 0o700);
        assert_eq!(mode(&tls_dir.join("ca.key")), 0o600);
        assert_eq!(mode(&tls_dir.join("server.key")), 0o600);
    }

    // HTTP/1.1 and HTTP/2 (by ALPN), for health and a token; the harness helpers use h2.
    let h1 = tls_client(&ca_path, true);
    let response = get_healthz(&h1, &server.url).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let response = h1
        .post(format!("{}/identity/token", server.url))
        .form(&[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
    let h2 = tls_client(&ca_path, false);
    let response = get_healthz(&h2, &server.url).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    server.http = h2.clone();
    server.trust_ca(&std::fs::read(&ca_path).unwrap());
    let response = server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)])
        .await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    // The issuer follows the https:// public URL.
    let token = server.admin_token().await;
    assert_eq!(
        jwt_payload(&token)["iss"],
        format!("{}/identity", server.url)
    );

    // The CLI trusts the CA with TESSERA_CACERT (or --cacert).
    let home = tempfile::tempdir().unwrap();
    let cli = std::process::Command::new(binary())
        .args(["token"])
        .env("TESSERA_CONFIG_DIR", home.path())
        .env("TESSERA_ENDPOINT", &server.url)
        .env("TESSERA_APIKEY", ADMIN_KEY)
        .env("TESSERA_CACERT", &ca_path)
        .env_remove("TESSERA_PROFILE")
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(
        jwt_payload(String::from_utf8_lossy(&cli.stdout).trim())["sub_type"],
        "user"
    );

    // The certificate names tessera.test (and localhost), not other names.
    let addr = addr_of(&server.url);
    let port = addr.port();
    for (host, ok) in [
        ("tessera.test", true),
        ("localhost", true),
        ("other.test", false),
    ] {
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&ca_path).unwrap()).unwrap(),
            )
            .resolve(host, addr)
            .https_only(true)
            .build()
            .unwrap();
        let result = client
            .get(format!("https://{host}:{port}/healthz"))
            .send()
            .await;
        assert_eq!(result.is_ok(), ok, "{host}: {result:?}");
    }

    // Plain HTTP to the TLS port fails without harm, and so does a client that never speaks.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let result = plain.get(format!("http://{addr}/healthz")).send().await;
    assert!(
        result.as_ref().map_or(true, |r| !r.status().is_success()),
        "{result:?}"
    );
    let silent = std::net::TcpStream::connect(addr).unwrap();
    let mut garbage = std::net::TcpStream::connect(addr).unwrap();
    garbage.write_all(b"\x16\x03\x01\x00\x05hello").unwrap();
    get_healthz(&h2, &server.url).await;
    get_healthz(&h1, &server.url).await;

    // A restart reuses the CA and, with the same names, the server certificate.
    let ca_before = std::fs::read(&ca_path).unwrap();
    let cert_before = std::fs::read(tls_dir.join("server.pem")).unwrap();
    drop((silent, garbage));
    let mut server = server.restart().await;
    assert_eq!(std::fs::read(&ca_path).unwrap(), ca_before);
    assert_eq!(
        std::fs::read(tls_dir.join("server.pem")).unwrap(),
        cert_before
    );
    server.http = tls_client(&ca_path, false);
    server.trust_ca(&ca_before);
    assert!(!server.token(ADMIN_KEY).await.is_empty());

    // The same certificate and key as operator-supplied files serve another server.
    let cert = tls_dir.join("server.pem");
    let key = tls_dir.join("server.key");
    let mut files = TestServer::start_with(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(files.url.starts_with("https://"), "{}", files.url);
    assert!(!files.logs().contains("local CA certificate for clients"));
    assert!(!files.data_dir().join("tls").exists());
    files.http = tls_client(&ca_path, false);
    files.trust_ca(&ca_before);
    let response = get_healthz(&files.http, &files.url).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert!(!files.token(ADMIN_KEY).await.is_empty());

    // With a key that is not the certificate's, it refuses to start and names both files.
    let ca_key = tls_dir.join("ca.key");
    let error = crate::ops::serve_fails(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            ca_key.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(
        error.contains("ca.key") && error.contains("server.pem"),
        "{error}"
    );
    assert!(!error.contains("PRIVATE KEY"), "{error}");
}

#[test]
fn bad_certificate_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = crate::ops::serve_fails(
        &[
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(error.contains("missing-cert.pem"), "{error}");

    let garbage = dir.path().join("garbage-cert.pem");
    std::fs::write(&garbage, "this is not PEM at all\n").unwrap();
    let error = crate::ops::serve_fails(
        &[
            "--tls-cert",
            garbage.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(error.contains("garbage-cert.pem"), "{error}");

    // A certificate that is PEM but not DER inside, with the same (broken) key.
    let broken = dir.path().join("broken-cert.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let error = crate::ops::serve_fails(
        &[
            "--tls-cert",
            broken.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(error.contains("broken-cert.pem"), "{error}");

    // Half a configuration.
    let error = crate::ops::serve_fails(&["--tls-cert", broken.to_str().unwrap()], &[], None);
    assert!(error.contains("--tls-key"), "{error}");
}

#[test]
fn a_broken_key_file_is_refused_without_showing_it() {
    // A real certificate from a self-signed directory made by the server crate itself.
    let dir = tempfile::tempdir().unwrap();
    let files = tessera_server::tls::ensure_self_signed(dir.path(), &[], 1_780_000_000).unwrap();
    let key = dir.path().join("broken.key");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = crate::ops::serve_fails(
        &[
            "--tls-cert",
            files.cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(error.contains("broken.key"), "{error}");
    assert!(!error.contains("TOPSECRET"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_serves_h2c_with_prior_knowledge_and_http1() {
    let server = TestServer::start().await;
    assert!(server.url.starts_with("http://"), "{}", server.url);
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = get_healthz(&h2c, &server.url).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let response = h2c
        .post(format!("{}/identity/token", server.url))
        .form(&[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let response = get_healthz(&server.http, &server.url).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
}
