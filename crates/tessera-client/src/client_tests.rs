//! The client's wire format and error mapping against a fake one-shot HTTP server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::resource::ServiceAccounts;
use tessera_api::admin::{ApiKeyView, ClientView, KeyState, KeyUse, ServiceAccountCreate};
#[test]
fn endpoints_are_normalised_and_validated() {
    let client = Client::new("https://iam.example.com").unwrap();
    assert_eq!(client.endpoint(), "https://iam.example.com/");
    assert_eq!(
        client.url(paths::IBM_TOKEN, None).as_str(),
        "https://iam.example.com/identity/token"
    );
    let based = Client::new("http://127.0.0.1:8080/tessera/").unwrap();
    assert_eq!(
        based.url(paths::CLIENTS, Some("a/b?c")).as_str(),
        "http://127.0.0.1:8080/tessera/v1/clients/a%2Fb%3Fc"
    );
    for bad in [
        "iam.example.com",
        "ftp://x",
        "https://u:p@x",
        "https://x/?a=1",
        "mailto:a@b",
    ] {
        assert!(
            matches!(Client::new(bad), Err(Error::InvalidEndpoint { .. })),
            "{bad}"
        );
    }
    let err = Client::new("https://user:hunter2@x")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn error_displays() {
    let api = ApiError {
        status: 404,
        code: "not_found".into(),
        message: "service account ServiceId-x not found".into(),
        request_id: Some("r1".into()),
    };
    assert_eq!(
        api.to_string(),
        "service account ServiceId-x not found (not_found, HTTP 404)"
    );
    let token = TokenError {
        status: 400,
        code: "BXNIM0415E".into(),
        message: "Provided API key could not be found.".into(),
        details: None,
        request_id: None,
    };
    assert_eq!(
        token.to_string(),
        "Provided API key could not be found. (BXNIM0415E)"
    );
    assert_eq!(Error::from(token).status(), Some(400));
}

#[test]
fn debug_output_hides_secrets() {
    let token: IbmTokenResponse = serde_json::from_str(
        r#"{"access_token":"SECRET-A","refresh_token":"SECRET-R","token_type":"Bearer",
            "expires_in":3600,"expiration":1,"scope":"ibm openid",
            "delegated_refresh_token":"SECRET-D"}"#,
    )
    .unwrap();
    let shown = format!("{token:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("delegated_refresh_token"));

    let key: ApiKeyView = serde_json::from_str(
        r#"{"id":"ApiKey-1","name":"k","description":"","owner_iam_id":"iam-ServiceId-1",
            "account_id":"a","created_at":"2026-01-01T00:00:00Z","apikey":"SECRET-K"}"#,
    )
    .unwrap();
    assert!(!format!("{key:?}").contains("SECRET"));
    let client = Client::new("http://localhost")
        .unwrap()
        .with_token("SECRET-T");
    assert!(!format!("{client:?}").contains("SECRET"));
}

#[test]
fn created_objects_round_trip_with_their_secret() {
    // The CLI's `--format json` re-serialises what it decoded: nothing the server sent is lost.
    let text = r#"{"id":"c1","name":"ci","account_id":null,"created_at":"2026-01-01T00:00:00Z",
                   "secret":"s3cr3t"}"#;
    let created: ClientView = serde_json::from_str(text).unwrap();
    assert_eq!(created.secret.as_deref(), Some("s3cr3t"));
    assert_eq!(created.account_id, None);
    let back: serde_json::Value = serde_json::to_value(&created).unwrap();
    let original: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(back, original);
}

#[test]
fn secret_bearing_decode_errors_do_not_quote_values() {
    let url = Url::parse("http://x/identity/token").unwrap();
    let body =
        br#"{"access_token":"SECRET","token_type":"Bearer","expires_in":"SECRET2","expiration":1}"#;
    let err = decode::<IbmTokenResponse>(body, &url, Secrets::Present)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("SECRET"), "{err}");
}

#[test]
fn list_queries_send_only_set_fields() {
    let query = ListQuery {
        account_id: Some("a1".into()),
        limit: Some(5),
        ..Default::default()
    };
    assert_eq!(serde_urlencoded_string(&query), "account_id=a1&limit=5");
}

fn serde_urlencoded_string(query: &ListQuery) -> String {
    // reqwest uses serde_urlencoded for `.query`; go through a real request to check it.
    let client = reqwest::Client::new();
    let request = client.get("http://x/").query(query).build().unwrap();
    request.url().query().unwrap_or_default().to_owned()
}

/// One request as a fake server saw it.
#[derive(Debug)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A one-connection-per-request HTTP/1.1 server answering `answers` in order, then handing
/// back what it saw. Enough to check the client's wire format without the real server.
async fn fake_server(
    answers: Vec<(u16, &'static str, String)>,
) -> (String, tokio::task::JoinHandle<Vec<Seen>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for (status, extra_headers, body) in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = Vec::new();
            let header_end = loop {
                let mut chunk = [0u8; 4096];
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed mid-request");
                buffer.extend_from_slice(&chunk[..n]);
                if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at;
                }
            };
            let head = String::from_utf8(buffer[..header_end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let request_line = lines.next().unwrap().to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut request_body = buffer[header_end + 4..].to_vec();
            while request_body.len() < length {
                let mut chunk = [0u8; 4096];
                let n = socket.read(&mut chunk).await.unwrap();
                request_body.extend_from_slice(&chunk[..n]);
            }
            seen.push(Seen {
                request_line,
                headers,
                body: String::from_utf8(request_body).unwrap(),
            });
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        }
        seen
    });
    (endpoint, task)
}

fn form_pairs(body: &str) -> Vec<(String, String)> {
    Url::parse(&format!("http://x/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn apikey_exchange_on_the_wire() {
    let ok = r#"{"access_token":"a.b.c","refresh_token":"r","token_type":"Bearer",
                 "expires_in":3600,"expiration":1800000000,"scope":"ibm openid"}"#;
    let (endpoint, server) = fake_server(vec![(200, "", ok.to_owned())]).await;
    let token = Client::new(&format!("{endpoint}/"))
        .unwrap()
        .token_from_apikey("k&y=1")
        .await
        .unwrap();
    assert_eq!(token.access_token.as_deref(), Some("a.b.c"));
    assert_eq!(token.refresh_token.as_deref(), Some("r"));
    assert_eq!((token.expires_in, token.expiration), (3600, 1_800_000_000));

    let seen = server.await.unwrap();
    assert_eq!(seen[0].request_line, "POST /identity/token HTTP/1.1");
    assert_eq!(seen[0].header("accept"), Some("application/json"));
    assert_eq!(
        seen[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(
        form_pairs(&seen[0].body),
        [
            (
                "grant_type".to_owned(),
                "urn:ibm:params:oauth:grant-type:apikey".to_owned()
            ),
            ("apikey".to_owned(), "k&y=1".to_owned()),
            ("response_type".to_owned(), "cloud_iam".to_owned()),
        ]
    );
}

#[tokio::test]
async fn confidential_client_grants_send_basic_authentication() {
    let ok = r#"{"access_token":"a.b.c","token_type":"Bearer",
                 "expires_in":3600,"expiration":1800000000,"scope":"ibm openid"}"#;
    let (endpoint, server) = fake_server(vec![(200, "", ok.to_owned())]).await;
    let form = IbmTokenRequest {
        grant_type: "password".into(),
        username: Some("ann@example.com".into()),
        password: Some("pw".into()),
        ..IbmTokenRequest::default()
    };
    // A bearer token of the client is not a token-endpoint credential: only Basic is sent.
    let token = Client::new(&endpoint)
        .unwrap()
        .with_token("ADMIN-T")
        .token_as_client("portal", "s3cret", &form)
        .await
        .unwrap();
    assert_eq!(token.access_token.as_deref(), Some("a.b.c"));

    let seen = server.await.unwrap();
    assert_eq!(seen[0].request_line, "POST /identity/token HTTP/1.1");
    // base64("portal:s3cret")
    assert_eq!(
        seen[0].header("authorization"),
        Some("Basic cG9ydGFsOnMzY3JldA==")
    );
    assert_eq!(
        form_pairs(&seen[0].body),
        [
            ("grant_type".to_owned(), "password".to_owned()),
            ("username".to_owned(), "ann@example.com".to_owned()),
            ("password".to_owned(), "pw".to_owned()),
        ]
    );
}

#[tokio::test]
async fn token_errors_are_typed() {
    let with_context = r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.",
        "errorDetails":"d","context":{"requestId":"req-1"}}"#;
    let without_context =
        r#"{"errorCode":"BXNIM0308E","errorMessage":"No authorization header found"}"#;
    let (endpoint, server) = fake_server(vec![
        (400, "", with_context.to_owned()),
        (
            400,
            "X-Global-Transaction-ID: gtx-2\r\n",
            without_context.to_owned(),
        ),
        (502, "", "<html>Bad gateway</html>".to_owned()),
    ])
    .await;
    let client = Client::new(&endpoint).unwrap();
    let err = client.token_from_apikey("SECRET-KEY").await.unwrap_err();
    let token = err.token().unwrap();
    assert_eq!(
        err.to_string(),
        "Provided API key could not be found. (BXNIM0415E)"
    );
    assert_eq!(
        (token.status, token.request_id.as_deref()),
        (400, Some("req-1"))
    );
    assert_eq!(token.details.as_deref(), Some("d"));

    let err = client.token_from_apikey("SECRET-KEY").await.unwrap_err();
    assert_eq!(err.token().unwrap().request_id.as_deref(), Some("gtx-2"));

    let err = client.token_from_apikey("SECRET-KEY").await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("Bad gateway") && !shown.contains("SECRET"),
        "{shown}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn admin_calls_on_the_wire() {
    let sa = r#"{"id":"ServiceId-1","iam_id":"iam-ServiceId-1","account_id":"a1","name":"ci",
                 "description":"","created_at":"2026-01-01T00:00:00Z"}"#;
    let (endpoint, server) = fake_server(vec![
        (201, "", sa.to_owned()),
        (200, "", format!(r#"{{"service_accounts":[{sa}]}}"#)),
        (204, "", String::new()),
        (
            404,
            "",
            r#"{"error":{"code":"not_found","message":"service account ServiceId-2 not found","request_id":"r9"}}"#
                .to_owned(),
        ),
        (401, "WWW-Authenticate: Bearer\r\n", r#"{"error":{"code":"unauthenticated","message":"no token"}}"#.to_owned()),
    ])
    .await;
    let anonymous = Client::new(&endpoint).unwrap();
    let admin = anonymous.with_token("tok");

    let created = admin
        .create::<ServiceAccounts>(&ServiceAccountCreate {
            account_id: Some("a1".into()),
            name: "ci".into(),
            description: None,
        })
        .await
        .unwrap();
    assert_eq!(created.iam_id, "iam-ServiceId-1");

    let query = ListQuery {
        account_id: Some("a1".into()),
        limit: Some(2),
        ..Default::default()
    };
    let listed = admin.list::<ServiceAccounts>(&query).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [created.id.as_str()]
    );

    admin
        .delete::<ServiceAccounts>("ServiceId-1")
        .await
        .unwrap();

    let err = admin
        .get::<ServiceAccounts>("ServiceId-2")
        .await
        .unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(
        (api.status, api.code.as_str(), api.request_id.as_deref()),
        (404, "not_found", Some("r9"))
    );
    assert_eq!(
        err.to_string(),
        "service account ServiceId-2 not found (not_found, HTTP 404)"
    );

    let err = anonymous.whoami().await.unwrap_err();
    assert_eq!(
        err.api().map(|e| (e.status, e.request_id.clone())),
        Some((401, None))
    );

    let seen = server.await.unwrap();
    assert_eq!(seen[0].request_line, "POST /v1/service_accounts HTTP/1.1");
    assert_eq!(seen[0].header("authorization"), Some("Bearer tok"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&seen[0].body).unwrap(),
        serde_json::json!({"account_id": "a1", "name": "ci", "description": null})
    );
    assert_eq!(
        seen[1].request_line,
        "GET /v1/service_accounts?account_id=a1&limit=2 HTTP/1.1"
    );
    assert_eq!(
        seen[2].request_line,
        "DELETE /v1/service_accounts/ServiceId-1 HTTP/1.1"
    );
    assert_eq!(
        seen[3].request_line,
        "GET /v1/service_accounts/ServiceId-2 HTTP/1.1"
    );
    assert_eq!(seen[4].request_line, "GET /v1/whoami HTTP/1.1");
    assert_eq!(seen[4].header("authorization"), None);
}

#[tokio::test]
async fn signing_key_calls_on_the_wire() {
    let key = r#"{"kid":"20260101000000-abcdef","algorithm":"RS256","use":"jwt",
                  "state":"active","created_at":"2026-01-01T00:00:00Z","retired_at":null,
                  "published":true}"#;
    let (endpoint, server) = fake_server(vec![
        (200, "", format!(r#"{{"signing_keys":[{key}]}}"#)),
        (200, "", format!(r#"{{"signing_keys":[{key}]}}"#)),
    ])
    .await;
    let admin = Client::new(&endpoint).unwrap().with_token("tok");
    let keys = admin.list_signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].key_use, keys[0].state),
        (KeyUse::Jwt, KeyState::Active)
    );
    assert_eq!(keys[0].retired_at, None);
    let rotated = admin
        .rotate_signing_keys(&SigningKeyRotate {
            key_use: "yandex-iam".into(),
            immediate: true,
        })
        .await
        .unwrap();
    assert_eq!(rotated[0].kid, keys[0].kid);
    // `use` survives a round trip under its API name.
    assert_eq!(serde_json::to_value(&keys[0]).unwrap()["use"], "jwt");

    let seen = server.await.unwrap();
    assert_eq!(seen[0].request_line, "GET /v1/signing_keys HTTP/1.1");
    assert_eq!(
        seen[1].request_line,
        "POST /v1/signing_keys/rotate HTTP/1.1"
    );
    assert_eq!(seen[1].header("authorization"), Some("Bearer tok"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&seen[1].body).unwrap(),
        serde_json::json!({"use": "yandex-iam", "immediate": true})
    );
}

#[tokio::test]
async fn unreachable_servers_are_http_errors_naming_the_url_once() {
    // Bind then drop a listener: the port is (almost certainly) closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = Client::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .token_from_apikey("SECRET")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { .. }));
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(chain.matches("127.0.0.1").count(), 1, "{chain}");
    assert!(!chain.contains("SECRET"));
}

#[tokio::test]
async fn the_agents_token_calls_on_the_wire() {
    let iam = r#"{"iamToken":"t1.x","expiresAt":"2026-01-01T00:00:00Z"}"#;
    let ibm = r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":3600,
                  "expiration":1800000000,"scope":"ibm openid"}"#;
    let (endpoint, server) = fake_server(vec![
        (200, "", iam.to_owned()),
        (200, "", iam.to_owned()),
        (
            401,
            "",
            r#"{"code":16,"message":"the JWT has expired","details":[]}"#.to_owned(),
        ),
        (
            200,
            "",
            r#"{"id_token":"e.f.g","expires_in":600}"#.to_owned(),
        ),
        (200, "", ibm.to_owned()),
    ])
    .await;
    let anonymous = Client::builder(&endpoint)
        .user_agent("tessera-agent/test")
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let agent = anonymous.with_token("own-token");

    let token = anonymous.yandex_token_from_jwt("h.p.s").await.unwrap();
    assert_eq!(
        (token.iam_token.as_str(), token.expires_at.as_str()),
        ("t1.x", "2026-01-01T00:00:00Z")
    );
    agent.create_for_service_account("sa-1").await.unwrap();
    let err = anonymous.yandex_token_from_jwt("SECRET").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.server_message(), Some("the JWT has expired"));
    assert!(!format!("{err} {err:?}").contains("SECRET"));

    let id_token = agent
        .create_id_token(&IdTokenCreate {
            audience: Some("https://svc".into()),
            format: Some("standard".into()),
            compute_engine: serde_json::Map::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        (id_token.id_token.expose(), id_token.expires_in),
        ("e.f.g", 600)
    );
    let token = anonymous
        .token_from_cr_token(
            "vm-token",
            Some(&TrustedProfileSelector::Name("web".into())),
        )
        .await
        .unwrap();
    assert_eq!(token.expiration, 1_800_000_000);

    let seen = server.await.unwrap();
    assert_eq!(seen[0].request_line, "POST /iam/v1/tokens HTTP/1.1");
    assert_eq!(seen[0].header("user-agent"), Some("tessera-agent/test"));
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&seen[0].body).unwrap(),
        serde_json::json!({"jwt": "h.p.s"})
    );
    assert_eq!(
        seen[1].request_line,
        "POST /iam/v1/tokens:createForServiceAccount HTTP/1.1"
    );
    assert_eq!(seen[1].header("authorization"), Some("Bearer own-token"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&seen[1].body).unwrap(),
        serde_json::json!({"serviceAccountId": "sa-1"})
    );
    assert_eq!(seen[3].request_line, "POST /v1/id_tokens HTTP/1.1");
    assert_eq!(seen[3].header("authorization"), Some("Bearer own-token"));
    assert_eq!(seen[4].request_line, "POST /identity/token HTTP/1.1");
    assert_eq!(
        form_pairs(&seen[4].body),
        [
            (
                "grant_type".to_owned(),
                "urn:ibm:params:oauth:grant-type:cr-token".to_owned()
            ),
            ("profile_name".to_owned(), "web".to_owned()),
            ("cr_token".to_owned(), "vm-token".to_owned()),
        ]
    );
}
