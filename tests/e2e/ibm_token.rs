//! `POST /identity/token`: the API-key and refresh grants, client authentication, tenant pins,
//! and the IBM error shape for every failure.

use crate::harness::*;
use serde_json::Value;
use tessera_client::api::token::{IbmErrorBody, IbmTokenRequest, IbmTokenResponse};

/// Status, `X-Global-Transaction-ID` and the IBM error body of a refused token request.
async fn error_of(response: reqwest::Response) -> (u16, Option<String>, IbmErrorBody) {
    let (status, txid, text) = error_text_of(response).await;
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, txid, body)
}

/// [`error_of`] with the body as it came.
async fn error_text_of(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let txid = response
        .headers()
        .get("x-global-transaction-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, txid, response.text().await.expect("error body"))
}

#[tokio::test]
async fn apikey_grant_returns_ibm_token_response() {
    let server = TestServer::in_process().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let response = server
        .token_response(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", &apikey),
            ("response_type", "cloud_iam"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: IbmTokenResponse = response.json().await.unwrap();
    assert_eq!(body.token_type, "Bearer");
    assert_eq!(body.expires_in, 3600);
    assert_eq!(body.scope, "ibm openid");
    assert!(body.refresh_token.as_ref().is_some_and(|t| t.len() > 40));
    let access = body.access_token.as_deref().expect("access_token");
    let claims = jwt_payload(access);
    assert_eq!(claims["exp"], body.expiration);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["iam_id"], sa.iam_id);
    assert_eq!(claims["id"], sa.iam_id);
    assert_eq!(claims["sub"], sa.id);
    assert_eq!(claims["sub_type"], "ServiceId");
    assert_eq!(claims["realmid"], "iam");
    assert_eq!(claims["account"]["bss"], sa.account_id);
    assert_eq!(claims["account"]["valid"], true);
    assert_eq!(claims["authn"]["iam_id"], sa.iam_id);
    assert_eq!(claims["iss"], format!("{}/identity", server.url));
    assert_eq!(claims["grant_type"], APIKEY_GRANT);
    assert_eq!(claims["client_id"], "default");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 32));
    // The header names the signing key, which the JWKS publishes.
    let header = jwt_header(access);
    assert_eq!(header["alg"], "RS256");
    let jwks = server.get_json("/identity/keys").await;
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == header["kid"] && k["kty"] == "RSA"));
}

#[tokio::test]
async fn unknown_api_key_is_bxnim0415e() {
    let server = TestServer::start().await;
    let response = server
        .token_response(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", "tsk_not-a-real-key"),
        ])
        .await;
    let (status, txid, text) = error_text_of(response).await;
    let body: IbmErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!(status, 400);
    assert_eq!(body.error_code, "BXNIM0415E");
    assert_eq!(body.error_message, "Provided API key could not be found.");
    assert!(txid.is_some());
    assert_eq!(
        body.context.get("requestId").and_then(Value::as_str),
        txid.as_deref()
    );
    for field in [
        "requestType",
        "userAgent",
        "url",
        "host",
        "startTime",
        "endTime",
        "elapsedTime",
        "locale",
    ] {
        assert!(body.context.get(field).is_some(), "context.{field}");
    }
    // The secret never appears in the answer or the logs.
    assert!(!text.contains("tsk_not-a-real-key"));
    assert!(!server.logs().contains("tsk_not-a-real-key"));
}

#[tokio::test]
async fn malformed_requests_name_the_problem() {
    let server = TestServer::in_process().await;
    let url = format!("{}/identity/token", server.url);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str, &str)> = vec![
        (
            server.http.post(&url).form(&[("apikey", "x")]),
            400,
            "BXNIM0109E",
            "grant_type is required",
        ),
        (
            server.http.post(&url).form(&[("grant_type", APIKEY_GRANT)]),
            400,
            "BXNIM0109E",
            "apikey is required",
        ),
        (
            server.http.post(&url).form(&[("grant_type", "urn:nope")]),
            400,
            "BXNIM0103E",
            "not supported",
        ),
        (
            server
                .http
                .post(&url)
                .form(&[("grant_type", APIKEY_GRANT), ("apikey", &"k".repeat(300))]),
            400,
            "BXNIM0109E",
            "apikey is longer than",
        ),
        (
            server.http.post(&url).form(&[
                ("grant_type", APIKEY_GRANT),
                ("apikey", "x"),
                ("response_type", "code"),
            ]),
            400,
            "BXNIM0109E",
            "response_type",
        ),
        (
            server.http.post(&url).form(&[
                ("grant_type", APIKEY_GRANT),
                ("apikey", "x"),
                ("scope", "bad\"scope"),
            ]),
            400,
            "BXNIM0109E",
            "scope",
        ),
        (
            server
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body("{}"),
            400,
            "BXNIM0109E",
            "Content-Type",
        ),
        (
            server
                .http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=a&grant_type=b"),
            400,
            "BXNIM0109E",
            "at most once",
        ),
        (
            server
                .http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(vec![b'a'; 70_000]),
            413,
            "BXNIM0413E",
            "larger than",
        ),
        (
            server
                .http
                .post(&url)
                .header("authorization", "Basic !!!")
                .form(&[("grant_type", APIKEY_GRANT), ("apikey", "x")]),
            401,
            "BXNIM0301E",
            "base64",
        ),
    ];
    for (request, status, code, fragment) in cases {
        let (got_status, _, body) = error_of(request.send().await.unwrap()).await;
        assert_eq!(got_status, status, "{body:?}");
        assert_eq!(body.error_code, code, "{body:?}");
        assert!(
            body.error_message.contains(fragment),
            "{fragment}: {body:?}"
        );
    }
}

#[tokio::test]
async fn other_methods_get_the_ibm_error_shape() {
    let server = TestServer::in_process().await;
    let response = server.get("/identity/token").await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let (_, txid, body) = error_of(response).await;
    assert_eq!(body.error_code, "BXNIM0405E");
    assert_eq!(
        txid.as_deref(),
        body.context.get("requestId").and_then(Value::as_str)
    );
    // Successful responses carry the transaction id too.
    let ok = server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)])
        .await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("x-global-transaction-id").is_some());
}

#[tokio::test]
async fn doubled_slash_from_python_sdk_is_tolerated() {
    let server = TestServer::in_process().await;
    let response = server
        .post_form(
            "//identity/token",
            None,
            &[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn basic_client_authentication() {
    let server = TestServer::in_process().await;
    let admin = server.admin_client().await;
    let secret = client_secret(&admin, "bx").await;
    let (_, apikey) = server.service_account_with_key().await;
    let form = [("grant_type", APIKEY_GRANT), ("apikey", apikey.as_str())];

    let ok = server
        .client()
        .token_as_client("bx", &secret, &apikey_form(&apikey))
        .await
        .unwrap();
    assert_eq!(jwt_payload(&access_of(&ok))["client_id"], "bx");

    let wrong = server
        .post_form("/identity/token", Some(("bx", "wrong")), &form)
        .await;
    assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"IAM\"");
    let (status, _, body) = error_of(wrong).await;
    assert_eq!((status, body.error_code.as_str()), (401, "BXNIM0301E"));
    let unknown = server
        .post_form("/identity/token", Some(("nobody", &secret)), &form)
        .await;
    assert_eq!(unknown.status(), 401);
    // The built-in public client has no secret to authenticate with.
    let default = server
        .post_form("/identity/token", Some(("default", "")), &form)
        .await;
    assert_eq!(default.status(), 401);
}

#[tokio::test]
async fn refresh_grant_needs_the_issuing_client() {
    let server = TestServer::in_process().await;
    let admin = server.admin_client().await;
    let secret = client_secret(&admin, "app").await;
    let other = client_secret(&admin, "other").await;
    let (sa, apikey) = server.service_account_with_key().await;

    // Issued to the default client: IBM refuses to refresh it.
    let public = server.client().token(&apikey_form(&apikey)).await.unwrap();
    let public_refresh = public.refresh_token.as_deref().expect("refresh_token");
    let (status, _, body) = error_of(server.refresh_response(None, public_refresh).await).await;
    assert_eq!((status, body.error_code.as_str()), (400, "BXNIM0308E"));
    let (status, _, body) = error_of(
        server
            .refresh_response(Some(("app", &secret)), public_refresh)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.error_message.contains("another client"), "{body:?}");

    // Issued to `app`: only `app` may refresh it.
    let app = server.client();
    let issued = app
        .token_as_client("app", &secret, &apikey_form(&apikey))
        .await
        .unwrap();
    let refresh = issued.refresh_token.as_deref().expect("refresh_token");
    let refreshed = app
        .token_as_client("app", &secret, &refresh_form(refresh))
        .await
        .unwrap();
    let claims = jwt_payload(&access_of(&refreshed));
    assert_eq!(claims["iam_id"], sa.iam_id);
    assert_eq!(claims["grant_type"], "refresh_token");
    assert!(refreshed.refresh_token.is_some());
    let stolen = server
        .refresh_response(Some(("other", &other)), refresh)
        .await;
    assert_eq!(stolen.status(), 400);
    // A tampered refresh token is just invalid.
    let mut tampered = refresh.to_owned();
    tampered.replace_range(10..11, if &refresh[10..11] == "A" { "B" } else { "A" });
    let (status, _, body) = error_of(
        server
            .refresh_response(Some(("app", &secret)), &tampered)
            .await,
    )
    .await;
    assert_eq!((status, body.error_code.as_str()), (400, "BXNIM0407E"));
}

#[tokio::test]
async fn tenant_pin_checks_account_and_enterprise() {
    let server = TestServer::in_process().await;
    let admin = server.admin_client().await;
    let (enterprise, account) = enterprise_with_account(&admin).await;
    let sa = service_account_in(&admin, Some(&account.id), "svc").await;
    let apikey = api_key_of(&admin, &sa.iam_id, "k").await;
    let form = [("grant_type", APIKEY_GRANT), ("apikey", apikey.as_str())];

    assert_eq!(
        server
            .pinned_token_response(&account.id, &form)
            .await
            .status(),
        200
    );
    assert_eq!(
        server
            .pinned_token_response(&enterprise.id, &form)
            .await
            .status(),
        200
    );
    let other = "0".repeat(32);
    let both = format!("{other},{}", account.id);
    assert_eq!(
        server.pinned_token_response(&both, &form).await.status(),
        200
    );
    let (status, _, body) = error_of(server.pinned_token_response(&other, &form).await).await;
    assert_eq!((status, body.error_code.as_str()), (400, "BXNIM0513E"));
    let (status, _, body) = error_of(server.pinned_token_response("not-an-id", &form).await).await;
    assert_eq!(status, 400);
    assert!(body.error_message.contains("IBM-Cloud-Tenant"), "{body:?}");
}

#[tokio::test]
async fn requested_scope_is_added() {
    let server = TestServer::in_process().await;
    let form = IbmTokenRequest {
        scope: Some("openid custom".into()),
        ..apikey_form(ADMIN_KEY)
    };
    let body = server.client().token(&form).await.unwrap();
    assert_eq!(body.scope, "ibm openid custom");
    assert_eq!(jwt_payload(&access_of(&body))["scope"], "ibm openid custom");
}

#[tokio::test]
async fn es256_and_eddsa_are_configurable() {
    for alg in ["ES256", "EdDSA", "PS256"] {
        let server = TestServer::in_process_with(&["--jwt-algorithm", alg], &[]).await;
        let token = server.admin_token().await;
        let header = jwt_header(&token);
        assert_eq!(header["alg"], alg);
        // The token verifies offline against the published JWKS.
        let jwks = server.jwks_at("/.well-known/jwks.json").await;
        let now = crate::harness::unix_now();
        jwks.verify(&token, &format!("{}/identity", server.url), now)
            .unwrap();
    }
}

#[tokio::test]
async fn changing_the_algorithm_rotates_through_a_published_successor() {
    let server = TestServer::start_with(&["--issuer", "http://tessera.test/identity"], &[]).await;
    let rs256_token = server.admin_token().await;
    assert_eq!(jwt_header(&rs256_token)["alg"], "RS256");
    // Restart with ES256 and a 1 s JWKS cache: the ES256 key is published first, signs 2 s later.
    let server = server
        .restart_with(&[
            "--jwt-algorithm",
            "ES256",
            "--jwks-cache-seconds",
            "1",
            "--rotation-check-interval",
            "1",
        ])
        .await;
    let jwks = server.get_json("/identity/keys").await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kty"] == "EC"),
        "the successor is published at once"
    );
    assert_eq!(
        jwt_header(&server.admin_token().await)["alg"],
        "RS256",
        "the old key still signs during the lead"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if jwt_header(&server.admin_token().await)["alg"] == "ES256" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ES256 key never started signing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The retired RS256 key stays published: its tokens still verify.
    let jwks = server.jwks().await;
    jwks.verify(&rs256_token, "http://tessera.test/identity", unix_now())
        .unwrap();
}
