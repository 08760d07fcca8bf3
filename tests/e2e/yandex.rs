//! The Yandex IAM surface: endpoint discovery, `Create` (service-account JWT and OAuth token),
//! `CreateForServiceAccount`, `Revoke`, over gRPC with the generated stubs and over REST, with
//! every bad-input case of the protocol.

// Tests run on two threads: the harness stops servers from a blocking `Drop`, and an open
// HTTP/2 (gRPC) connection must still answer the server's shutdown, or the drain waits 10 s.

use crate::harness::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tessera_client::api::admin::{OAuthTokenCreate, ServiceAccountView};
use tessera_client::resource::OAuthTokens;
use tessera_server::yandex::proto::endpoint::api_endpoint_service_client::ApiEndpointServiceClient;
use tessera_server::yandex::proto::endpoint::{GetApiEndpointRequest, ListApiEndpointsRequest};
use tessera_server::yandex::proto::iam::create_iam_token_request::Identity;
use tessera_server::yandex::proto::iam::iam_token_service_client::IamTokenServiceClient;
use tessera_server::yandex::proto::iam::{
    CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest, CreateIamTokenResponse,
    RevokeIamTokenRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

pub(crate) const AUD: &str = "https://iam.api.cloud.yandex.net/iam/v1/tokens";

async fn channel(server: &TestServer) -> Channel {
    Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .expect("gRPC connect (h2c)")
}

async fn iam(server: &TestServer) -> IamTokenServiceClient<Channel> {
    IamTokenServiceClient::new(channel(server).await)
}

fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// `CreateForServiceAccount` of `service_account_id`, by the bearer of `token` when given.
fn for_service_account(
    service_account_id: &str,
    token: Option<&str>,
) -> tonic::Request<CreateIamTokenForServiceAccountRequest> {
    let message = CreateIamTokenForServiceAccountRequest {
        service_account_id: service_account_id.to_owned(),
    };
    match token {
        Some(token) => with_bearer(message, token),
        None => tonic::Request::new(message),
    }
}

/// `Revoke` of `iam_token`, by the bearer of `token` when given.
fn revoke_request(iam_token: &str, token: Option<&str>) -> tonic::Request<RevokeIamTokenRequest> {
    let message = RevokeIamTokenRequest {
        iam_token: iam_token.to_owned(),
    };
    match token {
        Some(token) => with_bearer(message, token),
        None => tonic::Request::new(message),
    }
}

/// An authorized key of a service account: its id and the private half, as the key file holds.
pub(crate) struct AuthorizedKey {
    pub id: String,
    pub service_account_id: String,
    pub private: RsaKeyPair,
}

/// Creates an authorized key for `sa` through the admin API, keeping the key file's private key.
pub(crate) async fn authorized_key(server: &TestServer, sa: &ServiceAccountView) -> AuthorizedKey {
    let created = authorized_key_of(&server.admin_client().await, &sa.id).await;
    let file = created.key_file.expect("key_file");
    let der =
        tessera_core::service_account_jwt::pem_decode("PRIVATE KEY", &file.private_key).unwrap();
    AuthorizedKey {
        id: file.id,
        service_account_id: file.service_account_id,
        private: RsaKeyPair::from_pkcs8(&der).unwrap(),
    }
}

pub(crate) fn sign(
    key: &RsaKeyPair,
    padding: &'static dyn signature::RsaEncoding,
    header: &Value,
    claims: &Value,
) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The JWT the SDKs build: PS256, `kid`, `iss` = service account, `aud`, an hour of lifetime.
fn sdk_jwt(key: &AuthorizedKey, aud: Value) -> String {
    let now = unix_now();
    sign(
        &key.private,
        &signature::RSA_PSS_SHA256,
        &json!({"alg": "PS256", "typ": "JWT", "kid": key.id}),
        &json!({"iss": key.service_account_id, "aud": aud, "iat": now, "exp": now + 3600}),
    )
}

fn jwt_request(jwt: String) -> CreateIamTokenRequest {
    CreateIamTokenRequest {
        identity: Some(Identity::Jwt(jwt)),
    }
}

async fn service_account(server: &TestServer, admin: &str, name: &str) -> ServiceAccountView {
    service_account_in(&server.client().with_token(admin), None, name).await
}

pub(crate) async fn rest(
    server: &TestServer,
    path: &str,
    bearer: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let response = server.post_json(path, bearer, &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A REST error is a `google.rpc.Status` with a `RequestInfo` detail naming the request id.
pub(crate) fn assert_rest_status(status: u16, body: &Value, http: u16, code: i64, needle: &str) {
    assert_eq!(status, http, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.RequestInfo"
    );
    assert!(!body["details"][0]["requestId"].as_str().unwrap().is_empty());
}

fn assert_status(
    result: Result<tonic::Response<impl std::fmt::Debug>, Status>,
    code: Code,
    needle: &str,
) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "{:?} should mention {needle:?}",
        status.message()
    );
    assert!(status.metadata().get("x-request-id").is_some());
}

async fn introspect(server: &TestServer, token: &str) -> Value {
    let admin = server.admin_token().await;
    server.introspect(&admin, token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_discovery_advertises_the_configured_address() {
    let server =
        TestServer::in_process_with(&["--advertised-address", "iam.example.test:4443"], &[]).await;
    let mut client = ApiEndpointServiceClient::new(channel(&server).await);
    // No credentials: the SDK calls List before it has any.
    let list = client
        .list(ListApiEndpointsRequest {
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = list.endpoints.iter().map(|e| e.id.as_str()).collect();
    assert!(ids.contains(&"iam") && ids.contains(&"endpoint"), "{ids:?}");
    assert!(list
        .endpoints
        .iter()
        .all(|e| e.address == "iam.example.test:4443"));
    let iam = client
        .get(GetApiEndpointRequest {
            api_endpoint_id: "iam".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(iam.address, "iam.example.test:4443");
    assert_status(
        client
            .get(GetApiEndpointRequest {
                api_endpoint_id: "compute".into(),
            })
            .await,
        Code::NotFound,
        "compute",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_advertised_address_is_the_listen_address() {
    let server = TestServer::in_process().await;
    let mut client = ApiEndpointServiceClient::new(channel(&server).await);
    let list = client
        .list(ListApiEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let host_port = server.url.trim_start_matches("http://");
    assert!(
        list.endpoints.iter().all(|e| e.address == host_port),
        "{list:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_jwt_yields_a_t1_token_over_grpc_and_rest() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let sa = service_account(&server, &admin, "robot").await;
    let key = authorized_key(&server, &sa).await;
    let mut client = iam(&server).await;

    let before = unix_now();
    let response: CreateIamTokenResponse = client
        .create(jwt_request(sdk_jwt(&key, json!(AUD))))
        .await
        .unwrap()
        .into_inner();
    let token = response.iam_token;
    assert!(token.starts_with("t1."), "{token}");
    assert_eq!(
        token.rsplit('.').next().unwrap().len(),
        86,
        "Ed25519 signature"
    );
    let expires = response.expires_at.unwrap().seconds;
    assert!((before + 43_200..=unix_now() + 43_200).contains(&expires));

    // Verifiable offline with the JWKS, and online with introspection.
    let claims = server
        .jwks()
        .await
        .verify_iam_token(&token, &format!("{}/identity", server.url), unix_now())
        .unwrap();
    assert_eq!(claims["sub"], sa.iam_id);
    assert_eq!(claims["subject_id"], sa.id);
    let info = introspect(&server, &token).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["iam_id"], sa.iam_id);

    // The t1 token authenticates the admin API too.
    let me = server.client().with_token(&token).whoami().await.unwrap();
    assert_eq!(me.iam_id, sa.iam_id);

    // A one-element array audience (Go SDK) and the REST twin, camel and snake case.
    let array = client
        .create(jwt_request(sdk_jwt(&key, json!([AUD]))))
        .await
        .unwrap()
        .into_inner();
    assert!(array.iam_token.starts_with("t1."));
    let body = server
        .client()
        .yandex_token_from_jwt(&sdk_jwt(&key, json!(AUD)))
        .await
        .unwrap();
    assert!(body.iam_token.starts_with("t1."));
    let expires_at = body.expires_at.as_str();
    let parsed =
        time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(expires_at.ends_with('Z'));
    assert!(parsed.unix_timestamp() >= before + 43_200);
    // The audience derived from the advertised address is accepted too.
    let derived = format!(
        "https://iam.{}/iam/v1/tokens",
        server.url.trim_start_matches("http://")
    );
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens",
        None,
        json!({"jwt": sdk_jwt(&key, json!(derived))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Deleting the key makes the very next exchange fail.
    let (status, _) = server
        .admin_delete(&format!("/v1/authorized_keys/{}", key.id), &admin)
        .await;
    assert_eq!(status, 204);
    assert_status(
        client.create(jwt_request(sdk_jwt(&key, json!(AUD)))).await,
        Code::Unauthenticated,
        "does not exist",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_service_account_jwts_are_unauthenticated_and_issue_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let sa = service_account(&server, &admin, "robot").await;
    let other = service_account(&server, &admin, "other").await;
    let key = authorized_key(&server, &sa).await;
    let other_key = authorized_key(&server, &other).await;
    let mut client = iam(&server).await;
    let now = unix_now();
    let header = json!({"alg": "PS256", "typ": "JWT", "kid": key.id});
    let claims = json!({"iss": key.service_account_id, "aud": AUD, "iat": now, "exp": now + 3600});
    let good = sdk_jwt(&key, json!(AUD));
    let payload = good.split('.').nth(1).unwrap().to_owned();
    let public_key_b64 =
        URL_SAFE_NO_PAD.encode(aws_lc_rs::signature::KeyPair::public_key(&key.private).as_ref());
    let hs256 = {
        let key =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public_key_b64.as_bytes());
        let h = URL_SAFE_NO_PAD
            .encode(json!({"alg": "HS256", "typ": "JWT", "kid": key_id(&header)}).to_string());
        let input = format!("{h}.{payload}");
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    };
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": key.id}).to_string())
    );
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        sign(&key.private, &signature::RSA_PSS_SHA256, &header, &c)
    };
    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = "ajenosuchkey0000000".into();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "RS256",
            sign(
                &key.private,
                &signature::RSA_PKCS1_SHA256,
                &json!({"alg": "RS256", "kid": key.id}),
                &claims,
            ),
            "PS256",
        ),
        ("none", none, "PS256"),
        ("HS256 with the public key", hs256, "PS256"),
        (
            "unknown kid",
            sign(
                &key.private,
                &signature::RSA_PSS_SHA256,
                &unknown_kid,
                &claims,
            ),
            "does not exist",
        ),
        (
            "wrong audience",
            with("aud", json!("https://iam.elsewhere/iam/v1/tokens")),
            "audience",
        ),
        (
            "two audiences",
            with("aud", json!([AUD, AUD])),
            "one-element",
        ),
        (
            "expired",
            sign(
                &key.private,
                &signature::RSA_PSS_SHA256,
                &header,
                &json!({"iss": key.service_account_id, "aud": AUD, "iat": now - 7200, "exp": now - 3600}),
            ),
            "expired",
        ),
        (
            "too long a lifetime",
            with("exp", json!(now + 3601)),
            "exceeds",
        ),
        (
            "key of another account",
            sign(
                &other_key.private,
                &signature::RSA_PSS_SHA256,
                &json!({"alg": "PS256", "kid": other_key.id}),
                &claims,
            ),
            "does not belong",
        ),
        (
            "forged signature",
            sign(
                &other_key.private,
                &signature::RSA_PSS_SHA256,
                &header,
                &claims,
            ),
            "signature",
        ),
        ("not a JWT", "abc.def".into(), "malformed"),
    ];
    for (name, jwt, needle) in cases {
        let result = client.create(jwt_request(jwt.clone())).await;
        assert!(result.is_err(), "{name} must fail");
        assert_status(result, Code::Unauthenticated, needle);
        let (status, body) = rest(&server, "/iam/v1/tokens", None, json!({"jwt": jwt})).await;
        assert_rest_status(status, &body, 401, 16, needle);
        assert!(body.get("iamToken").is_none());
    }
    let logs = server.logs();
    assert!(
        !logs.contains(&good[..good.len() - 10]),
        "a JWT leaked into the logs"
    );
    let metrics = server.metrics().await;
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains("grant=\"yandex_jwt\"") && l.starts_with("tessera_tokens_issued")),
        "no token may have been issued:\n{metrics}"
    );
}

fn key_id(header: &Value) -> String {
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_limits_are_invalid_argument_naming_the_field() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let mut client = iam(&server).await;
    assert_status(
        client.create(jwt_request("a".repeat(8001))).await,
        Code::InvalidArgument,
        "jwt",
    );
    assert_status(
        client
            .create(CreateIamTokenRequest {
                identity: Some(Identity::YandexPassportOauthToken("y".repeat(4001))),
            })
            .await,
        Code::InvalidArgument,
        "yandex_passport_oauth_token",
    );
    assert_status(
        client
            .create(CreateIamTokenRequest { identity: None })
            .await,
        Code::InvalidArgument,
        "identity",
    );
    assert_status(
        client.create(jwt_request(String::new())).await,
        Code::InvalidArgument,
        "jwt",
    );
    assert_status(
        client
            .create_for_service_account(for_service_account(&"s".repeat(51), Some(&admin)))
            .await,
        Code::InvalidArgument,
        "service_account_id",
    );
    assert_status(
        client
            .create_for_service_account(for_service_account("", Some(&admin)))
            .await,
        Code::InvalidArgument,
        "service_account_id",
    );
    assert_status(
        client
            .revoke(revoke_request(&"t".repeat(4097), Some(&admin)))
            .await,
        Code::InvalidArgument,
        "iam_token",
    );
    // Oversized messages are refused before they are decoded.
    let huge = client.create(jwt_request("a".repeat(64 * 1024))).await;
    let status = huge.expect_err("oversized message");
    assert!(
        matches!(
            status.code(),
            Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument
        ),
        "{status:?}"
    );

    // REST: the same limits, both identities, unknown fields, bad JSON.
    for (path, body, needle) in [
        ("/iam/v1/tokens", json!({"jwt": "a".repeat(8001)}), "jwt"),
        (
            "/iam/v1/tokens",
            json!({"yandexPassportOauthToken": "y".repeat(4001)}),
            "yandex_passport_oauth_token",
        ),
        (
            "/iam/v1/tokens",
            json!({"jwt": "a", "yandexPassportOauthToken": "b"}),
            "exactly one",
        ),
        (
            "/iam/v1/tokens",
            json!({"jwt": "a", "jwtt": "b"}),
            "unknown field",
        ),
        ("/iam/v1/tokens", json!({"jwt": 5}), "must be a string"),
        ("/iam/v1/tokens", json!({}), "required"),
        (
            "/iam/v1/tokens:createForServiceAccount",
            json!({"serviceAccountId": "s".repeat(51)}),
            "service_account_id",
        ),
        (
            "/iam/v1/tokens:revoke",
            json!({"iamToken": "t".repeat(4097)}),
            "iam_token",
        ),
    ] {
        let (status, value) = rest(&server, path, Some(&admin), body).await;
        assert_rest_status(status, &value, 400, 3, needle);
    }
    let response = server
        .http
        .post(format!("{}/iam/v1/tokens", server.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server.get("/iam/v1/tokens").await;
    assert_eq!(response.status(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_for_service_account_needs_token_creator() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let target = service_account(&server, &admin, "target").await;
    let (caller_sa, caller_key) = server.service_account_with_key().await;
    let caller = server.token(&caller_key).await;
    let target_id = target.id.clone();
    let mut client = iam(&server).await;

    assert_status(
        client
            .create_for_service_account(for_service_account(&target_id, Some(&caller)))
            .await,
        Code::PermissionDenied,
        "iam.serviceAccounts.tokenCreator",
    );
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens:createForServiceAccount",
        Some(&caller),
        json!({"serviceAccountId": target_id}),
    )
    .await;
    assert_rest_status(status, &body, 403, 7, "tokenCreator");
    // No credentials at all.
    assert_status(
        client
            .create_for_service_account(for_service_account(&target_id, None))
            .await,
        Code::Unauthenticated,
        "Bearer",
    );
    // Unknown service account: denied to a caller who cannot see it, not found for an admin.
    assert_status(
        client
            .create_for_service_account(for_service_account("ServiceId-nope", Some(&caller)))
            .await,
        Code::PermissionDenied,
        "ServiceId-nope",
    );
    assert_status(
        client
            .create_for_service_account(for_service_account("ServiceId-nope", Some(&admin)))
            .await,
        Code::NotFound,
        "ServiceId-nope",
    );

    let token_creator = "iam.serviceAccounts.tokenCreator";
    let admin_client = server.client().with_token(&admin);
    let on_target = format!("service-account/{target_id}");
    bind(&admin_client, &caller_sa.iam_id, token_creator, &on_target).await;
    let minted = client
        .create_for_service_account(for_service_account(&target_id, Some(&caller)))
        .await
        .unwrap()
        .into_inner();
    assert!(minted.iam_token.starts_with("t1."));
    let info = introspect(&server, &minted.iam_token).await;
    assert_eq!(info["iam_id"], target.iam_id, "{info}");
    // A t1 token is as good a caller credential as a JWT, on gRPC and REST.
    let caller_t1 = client
        .create_for_service_account(for_service_account(&caller_sa.id, Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .iam_token;
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens:createForServiceAccount",
        Some(&caller_t1),
        json!({"service_account_id": target_id}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["iamToken"].as_str().unwrap().starts_with("t1."));
    // The role on another service account does not reach this one; on the account it does.
    let second = service_account(&server, &admin, "second").await;
    let second_id = second.id.as_str();
    assert_status(
        client
            .create_for_service_account(for_service_account(second_id, Some(&caller)))
            .await,
        Code::PermissionDenied,
        second_id,
    );
    let on_account = format!("account/{}", second.account_id);
    bind(&admin_client, &caller_sa.iam_id, token_creator, &on_account).await;
    assert!(client
        .create_for_service_account(for_service_account(second_id, Some(&caller)))
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_makes_a_token_fail_everywhere() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let sa = service_account(&server, &admin, "victim").await;
    let sa_id = sa.id.clone();
    let mut client = iam(&server).await;
    let mint = |client: &mut IamTokenServiceClient<Channel>| {
        let request = for_service_account(&sa_id, Some(&admin));
        let mut client = client.clone();
        async move {
            client
                .create_for_service_account(request)
                .await
                .unwrap()
                .into_inner()
                .iam_token
        }
    };
    let token = mint(&mut client).await;
    let survivor = mint(&mut client).await;
    // Bind the service account as admin of nothing; it can still call whoami with its token.
    let (status, _) = server.admin_get("/v1/whoami", &token).await;
    assert_eq!(status, 200);

    // Revoke needs an authenticated caller.
    assert_status(
        client.revoke(revoke_request(&token, None)).await,
        Code::Unauthenticated,
        "Bearer",
    );
    // Any authenticated caller holding the token may revoke it — here the token itself.
    let revoked = client
        .revoke(revoke_request(&token, Some(&token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.subject_id, sa_id);

    assert_eq!(introspect(&server, &token).await["active"], false);
    let (status, _) = server.admin_get("/v1/whoami", &token).await;
    assert_eq!(status, 401);
    assert_status(
        client
            .create_for_service_account(for_service_account(&sa_id, Some(&token)))
            .await,
        Code::Unauthenticated,
        "revoked",
    );
    // Revoking it again is an argument error: it is no longer a valid token.
    assert_status(
        client.revoke(revoke_request(&token, Some(&admin))).await,
        Code::InvalidArgument,
        "revoked",
    );
    // Other tokens of the same subject live on.
    assert_eq!(introspect(&server, &survivor).await["active"], true);

    // The REST twin; it revokes JWTs as well.
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens:revoke",
        Some(&admin),
        json!({"iamToken": survivor}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subjectId"], sa_id);
    assert_eq!(introspect(&server, &survivor).await["active"], false);
    let (_, key) = server.service_account_with_key().await;
    let jwt = server.token(&key).await;
    let (status, _) = rest(
        &server,
        "/iam/v1/tokens:revoke",
        Some(&admin),
        json!({"iam_token": jwt}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(introspect(&server, &jwt).await["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_grpc_methods_are_unimplemented() {
    let server = TestServer::in_process().await;
    let mut client = tonic::client::Grpc::new(channel(&server).await);
    client.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = "/yandex.cloud.iam.v1.IamTokenService/Nope".parse().unwrap();
    let result = client.unary(tonic::Request::new(()), path, codec).await;
    assert_eq!(result.unwrap_err().code(), Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let server = TestServer::in_process().await;
    let mut client = ServerReflectionClient::new(channel(&server).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream_once(request))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "yandex.cloud.iam.v1.IamTokenService",
        "yandex.cloud.endpoint.ApiEndpointService",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{names:?}");
    }
}

/// A request stream of one message.
fn tokio_stream_once<T: Send + 'static>(
    item: T,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::iter([item])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_token_yields_a_t1_token_until_revoked() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let typed = server.client().with_token(&admin);
    let account = account_of(&typed).await;
    let user = user_in(
        &typed,
        Some(&account),
        "dev",
        "dev@example.com",
        USER_PASSWORD,
    )
    .await;
    let own = server.user_token(&user.id, USER_PASSWORD).await;
    let oauth = server
        .client()
        .with_token(&own)
        .create::<OAuthTokens>(&OAuthTokenCreate {
            user_id: user.id.clone(),
            description: None,
        })
        .await
        .unwrap();
    let token = oauth.token.clone().unwrap().into_inner();
    let mut client = iam(&server).await;
    let oauth_request = || CreateIamTokenRequest {
        identity: Some(Identity::YandexPassportOauthToken(token.clone())),
    };
    let minted = client.create(oauth_request()).await.unwrap().into_inner();
    assert!(minted.iam_token.starts_with("t1."));
    let info = introspect(&server, &minted.iam_token).await;
    assert_eq!(info["iam_id"], user.id, "{info}");
    assert_eq!(info["subject_type"], "user");
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens",
        None,
        json!({"yandex_passport_oauth_token": token}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // An unknown token, and the token once revoked, are UNAUTHENTICATED.
    assert_status(
        client
            .create(CreateIamTokenRequest {
                identity: Some(Identity::YandexPassportOauthToken("y0_unknown".into())),
            })
            .await,
        Code::Unauthenticated,
        "OAuth token",
    );
    typed.delete::<OAuthTokens>(&oauth.id).await.unwrap();
    assert_status(
        client.create(oauth_request()).await,
        Code::Unauthenticated,
        "revoked",
    );
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens",
        None,
        json!({"yandexPassportOauthToken": token}),
    )
    .await;
    assert_rest_status(status, &body, 401, 16, "OAuth token");
    assert!(
        !server.logs().contains(&token),
        "the OAuth token leaked into the logs"
    );
}

/// The SDK's way in: TLS with the local CA, discovery, a JWT for `iam.localhost:<port>`, then
/// authenticated calls; and the REST twin over HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_surface_works_over_tls_with_the_local_ca() {
    use tonic::transport::{Certificate, ClientTlsConfig};
    let mut server = TestServer::start_with(&["--tls-self-signed"], &[]).await;
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let ca = std::fs::read(server.data_dir().join("tls").join("ca.pem")).unwrap();
    server.http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .https_only(true)
        .build()
        .unwrap();
    server.trust_ca(&ca);
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("gRPC over TLS");

    let list = ApiEndpointServiceClient::new(channel.clone())
        .list(ListApiEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let iam_address = &list
        .endpoints
        .iter()
        .find(|e| e.id == "iam")
        .unwrap()
        .address;
    assert_eq!(iam_address, &format!("127.0.0.1:{port}"));

    let admin = server.admin_token().await;
    let sa = service_account(&server, &admin, "tls-robot").await;
    let key = authorized_key(&server, &sa).await;
    let mut client = IamTokenServiceClient::new(channel);
    let aud = format!("https://iam.localhost:{port}/iam/v1/tokens");
    let token = client
        .create(jwt_request(sdk_jwt(&key, json!(aud))))
        .await
        .unwrap()
        .into_inner()
        .iam_token;
    let for_sa = client
        .create_for_service_account(for_service_account(&sa.id, Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert!(for_sa.iam_token.starts_with("t1."));
    let revoked = client
        .revoke(revoke_request(&token, Some(&token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.subject_id, sa.id);

    let body = server
        .client()
        .yandex_token_from_jwt(&sdk_jwt(&key, json!(AUD)))
        .await
        .unwrap();
    assert!(body.iam_token.starts_with("t1."));

    // Failures look the same over TLS: gRPC status codes, and google.rpc.Status over HTTPS.
    let wrong_audience = sdk_jwt(&key, json!("https://iam.elsewhere:443/iam/v1/tokens"));
    assert_status(
        client.create(jwt_request(wrong_audience.clone())).await,
        Code::Unauthenticated,
        "audience",
    );
    assert_status(
        client.revoke(revoke_request(&token, None)).await,
        Code::Unauthenticated,
        "Bearer",
    );
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens",
        None,
        json!({"jwt": wrong_audience}),
    )
    .await;
    assert_rest_status(status, &body, 401, 16, "audience");
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens:createForServiceAccount",
        None,
        json!({"serviceAccountId": sa.id}),
    )
    .await;
    assert_rest_status(status, &body, 401, 16, "Bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_are_readable_by_themselves_and_viewers() {
    use tessera_server::yandex::proto::iam::service_account_service_client::ServiceAccountServiceClient;
    use tessera_server::yandex::proto::iam::GetServiceAccountRequest;
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let sa = service_account(&server, &admin, "reader").await;
    let sa_id = sa.id.clone();
    let key = authorized_key(&server, &sa).await;
    let own = iam(&server)
        .await
        .create(jwt_request(sdk_jwt(&key, json!(AUD))))
        .await
        .unwrap()
        .into_inner()
        .iam_token;
    let mut client = ServiceAccountServiceClient::new(channel(&server).await);
    let get = |token: &str, id: &str| {
        with_bearer(
            GetServiceAccountRequest {
                service_account_id: id.to_owned(),
            },
            token,
        )
    };
    let read = client.get(get(&own, &sa_id)).await.unwrap().into_inner();
    assert_eq!(read.id, sa_id);
    assert_eq!(read.name, "reader");
    assert_eq!(read.folder_id, sa.account_id.as_str());
    assert!(read.created_at.unwrap().seconds > 0);

    let other = service_account(&server, &admin, "other").await;
    let other_id = other.id.as_str();
    assert_status(
        client.get(get(&own, other_id)).await,
        Code::PermissionDenied,
        other_id,
    );
    assert!(client.get(get(&admin, other_id)).await.is_ok());
    assert_status(
        client.get(get(&admin, "ServiceId-nope")).await,
        Code::NotFound,
        "nope",
    );
    assert_status(
        client
            .get(tonic::Request::new(GetServiceAccountRequest {
                service_account_id: sa_id.clone(),
            }))
            .await,
        Code::Unauthenticated,
        "Bearer",
    );

    let (status, body) = server
        .admin_get(&format!("/iam/v1/serviceAccounts/{sa_id}"), &own)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], sa_id);
    assert_eq!(body["folderId"], sa.account_id);
    let (status, body) = server
        .admin_get(&format!("/iam/v1/serviceAccounts/{other_id}"), &own)
        .await;
    assert_rest_status(status, &body, 403, 7, other_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_token_lifetime_is_configurable_and_bounded() {
    let server = TestServer::start_with(&["--iam-token-lifetime", "600"], &[]).await;
    let admin = server.admin_token().await;
    let sa = service_account(&server, &admin, "short").await;
    let before = unix_now();
    let minted = iam(&server)
        .await
        .create_for_service_account(for_service_account(&sa.id, Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    let expires = minted.expires_at.unwrap().seconds;
    assert!(
        (before + 600..=unix_now() + 600).contains(&expires),
        "{expires}"
    );
    // More than 12 hours is refused at startup, naming the setting.
    let output = std::process::Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--iam-token-lifetime",
            "43201",
        ])
        .current_dir(server.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("IAM token lifetime"), "{stderr}");
}
