//! Connections are bounded on both listeners: a client that sends nothing, or a request's
//! headers a byte at a time, is closed after the header-read timeout; a keep-alive connection
//! is closed after the idle timeout (and not before); beyond the connection limit new clients
//! wait until a slot frees; over TLS, a connection that never starts the handshake, or never
//! sends a request after it, is closed too. Normal requests are served all along.

use crate::harness::*;
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: [&str; 6] = [
    "--header-read-timeout",
    "1",
    "--idle-timeout",
    "3",
    "--max-connections",
    "6",
];

fn address(server: &TestServer) -> String {
    server
        .url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned()
}

/// Reads until the server closes the connection; returns how long that took from `since`.
async fn closed_after(stream: &mut (impl AsyncRead + Unpin), since: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was still open after 30 s"),
        }
    }
}

/// Sends a request and reads its answer on a kept-alive connection.
async fn request_on(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains("\"ok\"") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Normal requests on fresh connections keep succeeding while the slow ones hang around.
fn keep_serving(server: Arc<TestServer>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let mut served = 0;
        for _ in 0..20 {
            let response = client
                .get(format!("{}/healthz", server.url))
                .send()
                .await
                .expect("a normal request fails while slow clients are connected");
            assert_eq!(response.status(), 200);
            served += 1;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        served
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_plaintext_connections_are_closed_in_time_while_requests_are_served() {
    let server = Arc::new(TestServer::start_with(&LIMITS, &[]).await);
    let addr = address(&server);
    let serving = keep_serving(server.clone());

    // Nothing at all: closed after the header timeout (1 s, checked every 250 ms). The bounds
    // leave room for a loaded machine: what matters is "neither at once nor never".
    let silent = async {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        closed_after(&mut stream, Instant::now()).await
    };
    // Headers a byte every 200 ms: still closed after the header timeout, bytes or not.
    let slowloris = async {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let started = Instant::now();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        let trickle = async {
            for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), trickle).await;
        closed_after(&mut stream, started).await
    };
    // One request, then idle: closed after the idle timeout (3 s), not the header timeout.
    let idle = async {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        request_on(&mut stream).await;
        let since = Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Still open past the header timeout: a second request on it works.
        request_on(&mut stream).await;
        let since_second = Instant::now();
        let closed = closed_after(&mut stream, since_second).await;
        (since.elapsed(), closed)
    };
    let (silent, slowloris, (_, idle)) = tokio::join!(silent, slowloris, idle);
    eprintln!("closed: silent {silent:?}, slow headers {slowloris:?}, idle {idle:?}");
    assert!(
        silent >= Duration::from_millis(500) && silent < Duration::from_millis(4000),
        "{silent:?}"
    );
    assert!(
        slowloris >= Duration::from_millis(500) && slowloris < Duration::from_millis(4000),
        "{slowloris:?}"
    );
    assert!(
        idle >= Duration::from_millis(2500) && idle < Duration::from_millis(6000),
        "{idle:?}"
    );
    assert_eq!(serving.await.unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_limit_clients_wait_until_a_slot_frees() {
    let server = TestServer::start_with(&LIMITS, &[]).await;
    let addr = address(&server);
    // Six silent connections take every slot.
    let mut hogs = Vec::new();
    for _ in 0..6 {
        hogs.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut waiting = TcpStream::connect(&addr).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    let first = tokio::time::timeout(
        Duration::from_millis(500),
        waiting.read_to_string(&mut answer),
    )
    .await;
    assert!(
        first.is_err(),
        "answered although every slot was taken: {answer}"
    );
    // The silent ones are closed after the header timeout; then the waiting client is served.
    tokio::time::timeout(Duration::from_secs(5), waiting.read_to_string(&mut answer))
        .await
        .expect("not served after the slots freed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let waited = started.elapsed();
    eprintln!("the seventh connection was served after {waited:?}");
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    drop(hogs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_that_never_handshake_or_never_ask_are_closed_in_time() {
    let mut args = LIMITS.to_vec();
    args.push("--tls-self-signed");
    let server = Arc::new(TestServer::start_sqlite(&args, &[]).await);
    let addr = address(&server);
    let serving = keep_serving(server.clone());

    let no_handshake = async {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        closed_after(&mut stream, Instant::now()).await
    };
    let ca = std::fs::read(server.data_dir().join("tls/ca.pem")).unwrap();
    let connector = {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    };
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let silent_after_handshake = async {
        let tcp = TcpStream::connect(&addr).await.unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        let since = Instant::now();
        closed_after(&mut tls, since).await
    };
    let idle_after_request = async {
        let tcp = TcpStream::connect(&addr).await.unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        request_on(&mut tls).await;
        let since = Instant::now();
        closed_after(&mut tls, since).await
    };
    let (no_handshake, silent, idle) =
        tokio::join!(no_handshake, silent_after_handshake, idle_after_request);
    eprintln!("TLS closed: no handshake {no_handshake:?}, silent {silent:?}, idle {idle:?}");
    assert!(
        no_handshake >= Duration::from_millis(500) && no_handshake < Duration::from_millis(4000),
        "{no_handshake:?}"
    );
    assert!(
        silent >= Duration::from_millis(500) && silent < Duration::from_millis(4000),
        "{silent:?}"
    );
    assert!(
        idle >= Duration::from_millis(2500) && idle < Duration::from_millis(6000),
        "{idle:?}"
    );
    assert_eq!(serving.await.unwrap(), 20);
}
