//! `tessera-verify` in a resource service against a live Tessera: an axum API behind
//! `VerifyLayer` on a real socket, keys from discovery or a JWKS URL through a counting proxy
//! (which also plays the outage), every token surface (trusted-profile, CRN and cr-token tokens
//! included), forgeries, forced key rotations under load, the unknown-`kid` flood limit,
//! persisted keys, introspection and its cache, `403 insufficient_scope`, the tonic
//! interceptor, and the layer on a tonic server (gRPC statuses, introspection).

use crate::harness::*;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_client::api::admin::SigningKeyRotate;
use tessera_client::api::token::IbmTokenRequest;
use tessera_verify::{
    HttpOptions, InsufficientScope, IntrospectionConfig, Introspector, KeySource, RefreshPolicy,
    RemoteKeys, TrustedIssuer, VerifiedCaller, Verifier, VerifyError, VerifyLayer,
};

/// The confidential client `resource` of `server` (its secret), a new [`Proxy`] in front of
/// `server`, and the introspection configuration of that client through the proxy.
async fn introspection_via_proxy(server: &TestServer) -> (String, Proxy, IntrospectionConfig) {
    let secret = client_secret(&server.admin_client().await, "resource").await;
    let proxy = Proxy::start(&server.url).await;
    let mut config = IntrospectionConfig::new(
        format!("{}/identity/introspect", proxy.url),
        "resource",
        secret.clone(),
    );
    config.http = loopback();
    (secret, proxy, config)
}

/// The loopback network the tests' issuers live on, allow-listed past the SSRF guard.
fn loopback() -> HttpOptions {
    HttpOptions {
        allow_private: vec!["127.0.0.1/32".parse().unwrap()],
        ..HttpOptions::default()
    }
}

fn issuer_of(server: &TestServer) -> String {
    format!("{}/identity", server.url)
}

/// Forwards every request to `target`, counting requests per path; answers 503 while `down`.
struct Proxy {
    url: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    down: Arc<AtomicBool>,
}

#[derive(Clone)]
struct ProxyState {
    target: String,
    http: reqwest::Client,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    down: Arc<AtomicBool>,
}

async fn forward(
    State(state): State<ProxyState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    *state
        .counts
        .lock()
        .unwrap()
        .entry(uri.path().to_owned())
        .or_default() += 1;
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut request = state
        .http
        .request(method, format!("{}{}", state.target, uri))
        .body(body);
    for name in ["authorization", "content-type", "accept"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let mut out = HeaderMap::new();
    for name in ["content-type", "cache-control"] {
        if let Some(value) = answer.headers().get(name) {
            out.insert(name, value.clone());
        }
    }
    (status, out, answer.bytes().await.unwrap()).into_response()
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let down = Arc::new(AtomicBool::new(false));
        let state = ProxyState {
            target: target.to_owned(),
            http: reqwest::Client::new(),
            counts: counts.clone(),
            down: down.clone(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Proxy { url, counts, down }
    }

    fn count(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// The resource service: `/whoami` answers the verified caller, `/admin` requires the scope
/// `resource.admin` (which Tessera's tokens do not carry).
async fn resource_service(verifier: Verifier) -> String {
    async fn whoami(caller: VerifiedCaller) -> Json<Value> {
        Json(json!({
            "iam_id": caller.iam_id,
            "sub_type": caller.sub_type,
            "account": caller.account,
            "scopes": caller.scopes,
            "acr": caller.acr,
            "expires_at": caller.expires_at,
            "kind": format!("{:?}", caller.kind),
            "jti": caller.claim("jti"),
            "authn": caller.claim("authn"),
        }))
    }
    async fn admin(caller: VerifiedCaller) -> Result<&'static str, InsufficientScope> {
        caller.require_scope("resource.admin")?;
        Ok("welcome")
    }
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/admin", get(admin))
        .layer(VerifyLayer::new(Arc::new(verifier)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn call(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String, Value) {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, challenge, body)
}

/// A verifier of `server`'s tokens, keys by discovery from its issuer URL.
async fn discovering_verifier(server: &TestServer) -> Verifier {
    let keys = RemoteKeys::builder(KeySource::Issuer(issuer_of(server)))
        .http(loopback())
        .build()
        .await
        .unwrap();
    Verifier::builder()
        .trust(TrustedIssuer::new(issuer_of(server), keys).any_audience())
        .build()
        .unwrap()
}

/// A token with the given header and payload, signed with garbage.
fn forged(header: Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[tokio::test]
async fn a_resource_service_verifies_tokens_of_every_surface() {
    let server = TestServer::in_process().await;
    let service = resource_service(discovering_verifier(&server).await).await;
    let whoami = format!("{service}/whoami");
    let http = reqwest::Client::new();

    // The API-key grant (IBM JWT, RS256).
    let (sa, apikey) = server.service_account_with_key().await;
    let token = server.token(&apikey).await;
    let (status, _, body) = call(&http, &whoami, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["iam_id"], sa.iam_id);
    assert_eq!(body["sub_type"], "ServiceId");
    assert_eq!(body["account"], sa.account_id);
    assert_eq!(body["scopes"], json!(["ibm", "openid"]));
    assert_eq!(body["kind"], "Jwt");
    assert_eq!(body["expires_at"], jwt_payload(&token)["exp"]);

    // The password grant of a user, and the refresh-token grant of its refresh token.
    let admin = server.admin_client().await;
    let (user, _) = server
        .user_with_key(&admin, user("Ada", "ada@example.com"))
        .await;
    let user_token = server.user_token(&user.id, USER_PASSWORD).await;
    let (status, _, body) = call(&http, &whoami, Some(&user_token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["iam_id"], user.iam_id);
    assert_eq!(body["sub_type"], "user");
    let (client_id, client_secret) = server.login_client().await;
    let issued = server
        .client()
        .token_as_client(&client_id, &client_secret, &apikey_form(&apikey))
        .await
        .unwrap();
    let refreshed = server
        .client()
        .token_as_client(
            &client_id,
            &client_secret,
            &IbmTokenRequest {
                grant_type: "refresh_token".into(),
                refresh_token: issued.refresh_token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .access_token
        .unwrap();
    assert_eq!(call(&http, &whoami, Some(&refreshed)).await.0, 200);

    // A `t1.` IAM token of the Yandex surface, offline against the same key set.
    let t1 = admin
        .create_for_service_account(&sa.id)
        .await
        .unwrap()
        .iam_token;
    assert!(t1.starts_with("t1."));
    let (status, _, body) = call(&http, &whoami, Some(&t1)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["iam_id"], sa.iam_id);
    assert_eq!(body["kind"], "IamToken");
    assert_eq!(body["account"], sa.account_id);

    // No token, a wrong scheme, garbage: 401 with an RFC 6750 challenge.
    let (status, challenge, _) = call(&http, &whoami, None).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    let basic = http
        .get(&whoami)
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    let (status, challenge, _) = call(&http, &whoami, Some("garbage")).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error_description=\""), "{challenge}");

    // A verified caller without the scope a handler requires: 403 insufficient_scope.
    let (status, challenge, _) = call(&http, &format!("{service}/admin"), Some(&token)).await;
    assert_eq!(status, 403);
    assert_eq!(
        challenge,
        "Bearer error=\"insufficient_scope\", error_description=\"the token lacks scope resource.admin\", scope=\"resource.admin\""
    );
}

/// Trusted-profile tokens (`assume` with a service ID's token, and `cr-token` with a compute
/// resource's token through a profile link) and CRN tokens (`iam-authz` under an authorization
/// policy) verify through the layer, each read as its own kind of caller; the compute
/// resource's own token, signed by a foreign issuer, does not.
#[tokio::test]
async fn profile_crn_and_compute_resource_tokens_verify_through_the_layer() {
    use crate::authz::{authz_ok, crn, policy_for};
    use crate::cr_token::{billing_profile, cr_exchange, issuer_at, k8s_claims, TestKey};
    use crate::profiles::{identity, named};
    use tessera_client::api::admin::TrustedIssuerCreate;
    use tessera_client::resource::{TrustedIssuers, TrustedProfiles};

    let server = TestServer::in_process().await;
    let service = resource_service(discovering_verifier(&server).await).await;
    let whoami = format!("{service}/whoami");
    let http = reqwest::Client::new();
    let admin_token = server.admin_token().await;
    let admin = server.client().with_token(&admin_token);
    let account = account_of(&admin).await;
    let (sa, apikey) = server.service_account_with_key().await;
    let sa_token = server.token(&apikey).await;

    // `assume`: the service ID's token for a profile that trusts it.
    let profile = admin
        .create::<TrustedProfiles>(&named("deployer", vec![identity("serviceid", &sa.iam_id)]))
        .await
        .unwrap();
    let assumed = granted(
        &server.client(),
        &IbmTokenRequest {
            grant_type: "urn:ibm:params:oauth:grant-type:assume".into(),
            access_token: Some(sa_token.clone()),
            profile_id: Some(profile.id.clone()),
            ..Default::default()
        },
    )
    .await;
    let (status, _, body) = call(&http, &whoami, Some(&assumed)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub_type"], "Profile");
    assert_eq!(body["iam_id"], format!("iam-{}", profile.id));
    assert_eq!(body["account"], account.as_str());
    assert_eq!(body["kind"], "Jwt");
    assert_eq!(body["authn"]["iam_id"], sa.iam_id, "{body}");
    assert_eq!(body["expires_at"], jwt_payload(&assumed)["exp"]);

    // `iam-authz`: a CRN token for a resource the service ID holds a policy on.
    let target = crn(&sa.account_id, "bucket-1");
    policy_for(&server, &admin_token, &sa.iam_id, &target).await;
    let crn_token = authz_ok(&server, &sa_token, &format!("crn-{target}"))
        .await
        .access_token
        .unwrap();
    let (status, _, body) = call(&http, &whoami, Some(&crn_token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub_type"], "CRN");
    assert_eq!(body["iam_id"], format!("crn-{target}"));
    assert_eq!(body["account"], sa.account_id.as_str());
    assert_eq!(body["acr"], 0);
    assert_eq!(body["authn"]["iam_id"], sa.iam_id, "{body}");

    // `cr-token`: a Kubernetes service account's token, through a profile linked to it.
    let cluster_key = TestKey::new("k8s-rsa-1", tessera_core::model::Algorithm::Rs256);
    let cluster = admin
        .create::<TrustedIssuers>(&TrustedIssuerCreate {
            jwks: Some(cluster_key.jwks()),
            ..issuer_at("cluster-1")
        })
        .await
        .unwrap();
    let linked = billing_profile(&server, &account, "billing", &cluster.crn).await;
    let cr_token = cluster_key.sign(&k8s_claims(&cluster.issuer_url, "prod", "billing"));
    let exchanged = cr_exchange(&server, &cr_token, &[])
        .await
        .expect("cr-token granted")
        .access_token
        .unwrap();
    let (status, _, body) = call(&http, &whoami, Some(&exchanged)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub_type"], "Profile");
    assert_eq!(body["iam_id"], format!("iam-{linked}"));
    assert_eq!(body["account"], account.as_str());
    assert_eq!(body["authn"]["sub_type"], "CR", "{body}");
    assert_eq!(
        body["authn"]["sub"], "system:serviceaccount:prod:billing",
        "{body}"
    );

    // The compute resource's own token is not Tessera's: its issuer is not trusted here.
    let (status, challenge, _) = call(&http, &whoami, Some(&cr_token)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("does not trust"), "{challenge}");
}

#[tokio::test]
async fn jwts_of_each_algorithm_verify_through_the_layer() {
    for alg in ["PS256", "ES256", "EdDSA"] {
        let server = TestServer::in_process_with(&["--jwt-algorithm", alg], &[]).await;
        let service = resource_service(discovering_verifier(&server).await).await;
        let token = server.admin_token().await;
        assert_eq!(jwt_header(&token)["alg"], alg);
        let (status, _, body) = call(
            &reqwest::Client::new(),
            &format!("{service}/whoami"),
            Some(&token),
        )
        .await;
        assert_eq!(status, 200, "{alg}: {body}");
    }
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_get_401() {
    let server = TestServer::in_process().await;
    let verifier = discovering_verifier(&server).await;
    let token = server.admin_token().await;
    let header = jwt_header(&token);
    let payload = jwt_payload(&token);
    let kid = header["kid"].as_str().unwrap().to_owned();
    let signature = URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap();
    assert!(verifier.verify(&token).await.is_ok());

    // `alg: none`, and HS256 "signed" with the published public key as the HMAC secret.
    let none = forged(json!({"alg": "none", "kid": kid}), &payload, b"");
    assert_eq!(
        verifier.verify(&none).await.unwrap_err(),
        VerifyError::AlgorithmMismatch
    );
    let jwks: Value = server.get("/identity/keys").await.json().await.unwrap();
    let public = serde_json::to_vec(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .unwrap(),
    )
    .unwrap();
    let hs_header = json!({"alg": "HS256", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(hs_header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public),
        signing_input.as_bytes(),
    );
    let hs256 = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
    assert_eq!(
        verifier.verify(&hs256).await.unwrap_err(),
        VerifyError::AlgorithmMismatch
    );

    // Tampered claims, a wrong kid, another issuer in the claims.
    let mut raised = payload.clone();
    raised["iam_id"] = json!("iam-ServiceId-someone-else");
    let tampered = forged(header.clone(), &raised, &signature);
    assert_eq!(
        verifier.verify(&tampered).await.unwrap_err(),
        VerifyError::BadSignature
    );
    let mut other_kid = header.clone();
    other_kid["kid"] = json!("no-such-key");
    assert_eq!(
        verifier
            .verify(&forged(other_kid, &payload, &signature))
            .await
            .unwrap_err(),
        VerifyError::UnknownKey
    );
    let mut other_iss = payload.clone();
    other_iss["iss"] = json!("http://127.0.0.1:1/identity");
    assert_eq!(
        verifier
            .verify(&forged(header.clone(), &other_iss, &signature))
            .await
            .unwrap_err(),
        VerifyError::UntrustedIssuer
    );

    // A real token of another Tessera: its issuer is not in the trust map.
    let other = TestServer::in_process().await;
    let foreign = other.admin_token().await;
    assert_eq!(
        verifier.verify(&foreign).await.unwrap_err(),
        VerifyError::UntrustedIssuer
    );

    // Expired: signed by the server's own key two hours ago.
    let expired = crate::oidc::expired_token(&server, "iam-e2e-expired").await;
    let error = verifier.verify(&expired).await.unwrap_err();
    assert_eq!(error.reason(), "expired", "{error}");
    // The same token an hour and a half ahead of its own exp, at a fixed time.
    let exp = jwt_payload(&token)["exp"].as_i64().unwrap();
    assert_eq!(
        verifier
            .verify_at(&token, (exp + 61) * 1000)
            .await
            .unwrap_err()
            .reason(),
        "expired"
    );

    // An issuer that requires an audience refuses Tessera's audience-less tokens.
    let strict = Verifier::builder()
        .trust(
            TrustedIssuer::new(
                issuer_of(&server),
                RemoteKeys::builder(KeySource::Issuer(issuer_of(&server)))
                    .http(loopback())
                    .build()
                    .await
                    .unwrap(),
            )
            .audiences(["https://resource.example"]),
        )
        .build()
        .unwrap();
    let error = strict.verify(&token).await.unwrap_err();
    assert!(
        matches!(error.reason(), "missing_claim" | "wrong_audience"),
        "{error}"
    );
    // An issuer limited to ES256 refuses the RS256 key's tokens.
    let es_only = Verifier::builder()
        .trust(
            TrustedIssuer::new(issuer_of(&server), server.jwks().await)
                .any_audience()
                .algorithms([tessera_verify::KeyAlgorithm::Es256]),
        )
        .build()
        .unwrap();
    assert_eq!(
        es_only.verify(&token).await.unwrap_err(),
        VerifyError::AlgorithmNotAllowed
    );
    // And a trust entry without an audience decision is a configuration error.
    assert!(Verifier::builder()
        .trust(TrustedIssuer::new(issuer_of(&server), server.jwks().await))
        .build()
        .is_err());

    // Through the layer each is a 401 with the reason in the challenge.
    let service = resource_service(verifier).await;
    let http = reqwest::Client::new();
    for (forgery, says) in [
        (&none, "algorithm"),
        (&hs256, "algorithm"),
        (&tampered, "signature"),
        (&expired, "expired"),
        (&foreign, "issuer"),
    ] {
        let (status, challenge, _) = call(&http, &format!("{service}/whoami"), Some(forgery)).await;
        assert_eq!(status, 401);
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\"") && challenge.contains(says),
            "{challenge}"
        );
    }
}

/// A verifier whose keys come through `proxy` (a JWKS URL), refetching an unknown `kid` at
/// most once per `interval`, with no background refresh to blur the counts.
async fn proxied_verifier(
    server: &TestServer,
    proxy: &Proxy,
    interval: Duration,
    persist: Option<&std::path::Path>,
) -> (Verifier, Arc<RemoteKeys>) {
    let mut builder =
        RemoteKeys::builder(KeySource::JwksUrl(format!("{}/identity/keys", proxy.url)))
            .http(loopback())
            .background_refresh(false)
            .policy(RefreshPolicy {
                unknown_kid_interval: interval,
                ..RefreshPolicy::default()
            });
    if let Some(path) = persist {
        builder = builder.persist_to(path);
    }
    let keys = builder.build().await.unwrap();
    let verifier = Verifier::builder()
        .trust(TrustedIssuer::new(issuer_of(server), keys.clone()).any_audience())
        .build()
        .unwrap();
    (verifier, keys)
}

#[tokio::test]
async fn forced_rotations_under_load_reject_no_valid_token() {
    let server = TestServer::in_process().await;
    let proxy = Proxy::start(&server.url).await;
    let interval = Duration::from_secs(1);
    let (verifier, keys) = proxied_verifier(&server, &proxy, interval, None).await;
    let service = resource_service(verifier).await;
    let whoami = format!("{service}/whoami");
    let (_, apikey) = server.service_account_with_key().await;
    let admin = server.admin_client().await;
    assert_eq!(proxy.count("/identity/keys"), 1);

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (client, http, whoami) = (server.client(), reqwest::Client::new(), whoami.clone());
        let (stop, accepted, apikey) = (stop.clone(), accepted.clone(), apikey.clone());
        workers.push(tokio::spawn(async move {
            let mut rejected = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let token = client
                    .token_from_apikey(&apikey)
                    .await
                    .unwrap()
                    .access_token
                    .unwrap();
                let (status, challenge, _) = call(&http, &whoami, Some(&token)).await;
                if status == 200 {
                    accepted.fetch_add(1, Ordering::SeqCst);
                } else {
                    rejected.push((kid_of(&token), status, challenge));
                }
            }
            rejected
        }));
    }
    let started = Instant::now();
    let rotations = 4;
    let mut kids = std::collections::HashSet::new();
    for _ in 0..rotations {
        tokio::time::sleep(interval + Duration::from_millis(300)).await;
        let listed = admin
            .rotate_signing_keys(&SigningKeyRotate {
                key_use: "jwt".into(),
                immediate: true,
            })
            .await
            .unwrap();
        kids.extend(listed.into_iter().map(|k| k.kid));
    }
    tokio::time::sleep(interval + Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut rejected = Vec::new();
    for worker in workers {
        rejected.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    assert!(rejected.is_empty(), "valid tokens rejected: {rejected:?}");
    assert!(accepted.load(Ordering::SeqCst) > 20, "too little load");
    // One fetch at start and one per rotation (the first token of each new key), and never
    // more than one per interval.
    let fetches = proxy.count("/identity/keys");
    let per_interval_bound = 1 + (elapsed.as_millis() / interval.as_millis()) as usize;
    assert!(
        fetches <= 1 + rotations && fetches <= per_interval_bound,
        "{fetches} fetches in {elapsed:?}"
    );
    assert_eq!(keys.stats().unknown_kid_refetches as usize, fetches - 1);
    assert!(
        kids.len() > rotations,
        "the rotations made new keys: {kids:?}"
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch_per_interval() {
    let server = TestServer::in_process().await;
    let proxy = Proxy::start(&server.url).await;
    let (verifier, _keys) = proxied_verifier(&server, &proxy, Duration::from_secs(30), None).await;
    let verifier = Arc::new(verifier);
    let payload = jwt_payload(&server.admin_token().await);
    let mut floods = Vec::new();
    for task in 0..8 {
        let (verifier, payload) = (verifier.clone(), payload.clone());
        floods.push(tokio::spawn(async move {
            for n in 0..50 {
                let token = forged(
                    json!({"alg": "RS256", "kid": format!("made-up-{task}-{n}")}),
                    &payload,
                    b"sig",
                );
                assert_eq!(
                    verifier.verify(&token).await.unwrap_err(),
                    VerifyError::UnknownKey
                );
            }
        }));
    }
    for flood in floods {
        flood.await.unwrap();
    }
    // The build's fetch and one refetch for the whole flood.
    assert_eq!(proxy.count("/identity/keys"), 2);
}

#[tokio::test]
async fn an_issuer_outage_keeps_the_last_good_keys_even_across_a_restart() {
    let server = TestServer::in_process().await;
    let proxy = Proxy::start(&server.url).await;
    let saved = server.dir.path().join("verifier-keys.json");
    let (verifier, keys) =
        proxied_verifier(&server, &proxy, Duration::from_secs(1), Some(&saved)).await;
    let token = server.admin_token().await;
    let first = verifier.verify(&token).await;
    assert!(first.is_ok(), "{first:?}");
    assert!(saved.exists(), "the fetched key set is persisted");

    proxy.down.store(true, Ordering::SeqCst);
    let error = keys.refresh().await.unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
    assert_eq!(keys.stats().fetches_failed, 1);
    let caller = verifier.verify(&token).await.unwrap();
    assert_eq!(caller.iam_id, jwt_payload(&token)["iam_id"]);

    // A restart of the resource service while the issuer is still down: the persisted set.
    let (restarted, restarted_keys) =
        proxied_verifier(&server, &proxy, Duration::from_secs(1), Some(&saved)).await;
    assert!(restarted.verify(&token).await.is_ok());
    assert_eq!(restarted_keys.stats().fetches_ok, 0);
    // Without a persisted set, a start during the outage fails with the cause.
    let error = RemoteKeys::builder(KeySource::JwksUrl(format!("{}/identity/keys", proxy.url)))
        .http(loopback())
        .build()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");

    // The issuer is back: the next refresh succeeds.
    proxy.down.store(false, Ordering::SeqCst);
    assert!(keys.refresh().await.is_ok());
}

#[tokio::test]
async fn the_ssrf_guard_refuses_loopback_unless_allow_listed() {
    let server = TestServer::in_process().await;
    let error = RemoteKeys::builder(KeySource::Issuer(issuer_of(&server)))
        .build()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not allow-listed"), "{error}");
    // A discovery document is not followed across redirects or to another issuer.
    let error = RemoteKeys::builder(KeySource::Issuer(format!("{}/elsewhere", server.url)))
        .http(loopback())
        .build()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("404"), "{error}");
}

#[tokio::test]
async fn opaque_tokens_go_to_introspection_with_a_short_cache() {
    let server = TestServer::in_process().await;
    let (secret, proxy, mut config) = introspection_via_proxy(&server).await;
    config.negative_ttl = Duration::from_secs(60);
    let verifier = Verifier::builder()
        .trust(TrustedIssuer::new(issuer_of(&server), server.jwks().await).any_audience())
        .introspection(Introspector::new(config).unwrap())
        .build()
        .unwrap();
    assert!(
        !format!("{verifier:?}").contains(&secret),
        "no secret in Debug"
    );
    let service = resource_service(verifier).await;
    let whoami = format!("{service}/whoami");
    let http = reqwest::Client::new();

    // A refresh token issued to the resource's client is opaque: introspection says active.
    let (sa, apikey) = server.service_account_with_key().await;
    let issued = server
        .client()
        .token_as_client("resource", &secret, &apikey_form(&apikey))
        .await
        .unwrap();
    let opaque = issued.refresh_token.as_deref().expect("refresh_token");
    let (status, challenge, body) = call(&http, &whoami, Some(opaque)).await;
    assert_eq!(status, 200, "{body} {challenge:?}");
    assert_eq!(body["kind"], "Introspected");
    assert_eq!(body["iam_id"], sa.iam_id);
    assert_eq!(proxy.count("/identity/introspect"), 1);
    // The positive answer is cached: no second call.
    assert_eq!(call(&http, &whoami, Some(opaque)).await.0, 200);
    assert_eq!(proxy.count("/identity/introspect"), 1);

    // An unknown opaque token is inactive: 401, and the negative answer is cached too.
    for _ in 0..3 {
        let (status, challenge, _) = call(&http, &whoami, Some("opaque-but-unknown")).await;
        assert_eq!(status, 401);
        assert!(challenge.contains("not active"), "{challenge}");
    }
    assert_eq!(proxy.count("/identity/introspect"), 2);

    // Tokens the verifier checks offline never reach introspection.
    let token = server.token(&apikey).await;
    assert_eq!(call(&http, &whoami, Some(&token)).await.0, 200);
    assert_eq!(proxy.count("/identity/introspect"), 2);

    // The introspection endpoint down: 503, not a 401 that would read as a bad token.
    proxy.down.store(true, Ordering::SeqCst);
    let (status, _, _) = call(&http, &whoami, Some("another-opaque-token")).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn the_tonic_interceptor_answers_unauthenticated_and_permission_denied() {
    use tonic::service::Interceptor;
    let server = TestServer::in_process().await;
    let verifier = discovering_verifier(&server).await;
    let mut interceptor = tessera_verify::VerifyInterceptor::new(Arc::new(verifier));
    let with = |token: &str| {
        let mut request = tonic::Request::new(());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    let token = server.admin_token().await;
    let passed = interceptor.call(with(&token)).unwrap();
    let caller = passed.extensions().get::<VerifiedCaller>().unwrap();
    assert_eq!(caller.iam_id, jwt_payload(&token)["iam_id"]);
    let denied: tonic::Status = caller.require_scope("resource.admin").unwrap_err().into();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let refused = interceptor.call(tonic::Request::new(())).unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut tampered = token.clone();
    tampered.pop();
    let refused = interceptor.call(with(&tampered)).unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(
        refused.message().contains("signature"),
        "{}",
        refused.message()
    );
}

/// A gRPC resource service whose `Create` answers the verified caller (`iam_token` is
/// `<iam_id> <kind>`) and whose `CreateForServiceAccount` requires a scope Tessera's tokens
/// lack.
mod grpc_resource {
    use tessera_server::yandex::proto::iam::iam_token_service_server::IamTokenService;
    use tessera_server::yandex::proto::iam::{
        CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest, CreateIamTokenResponse,
        RevokeIamTokenRequest, RevokeIamTokenResponse,
    };
    use tessera_verify::VerifiedCaller;
    use tonic::{Request, Response, Status};

    pub struct WhoAmI;

    fn caller<T>(request: &Request<T>) -> Result<VerifiedCaller, Status> {
        request
            .extensions()
            .get::<VerifiedCaller>()
            .cloned()
            .ok_or_else(|| Status::internal("the layer let an unverified call through"))
    }

    #[tonic::async_trait]
    impl IamTokenService for WhoAmI {
        async fn create(
            &self,
            request: Request<CreateIamTokenRequest>,
        ) -> Result<Response<CreateIamTokenResponse>, Status> {
            let caller = caller(&request)?;
            Ok(Response::new(CreateIamTokenResponse {
                iam_token: format!("{} {:?}", caller.iam_id, caller.kind),
                expires_at: None,
            }))
        }

        async fn create_for_service_account(
            &self,
            request: Request<CreateIamTokenForServiceAccountRequest>,
        ) -> Result<Response<CreateIamTokenResponse>, Status> {
            caller(&request)?.require_scope("resource.admin")?;
            Err(Status::internal("unreachable: the scope is never granted"))
        }

        async fn revoke(
            &self,
            _: Request<RevokeIamTokenRequest>,
        ) -> Result<Response<RevokeIamTokenResponse>, Status> {
            Err(Status::unimplemented("not here"))
        }
    }
}

/// `VerifyLayer` on a tonic server: asynchronous, so unlike the interceptor it asks
/// introspection for opaque tokens; refusals are gRPC statuses (`UNAUTHENTICATED` with the
/// reason, `UNAVAILABLE` for an introspection outage), and a handler's unmet requirement is
/// `PERMISSION_DENIED`.
#[tokio::test]
async fn the_layer_on_a_tonic_server_answers_grpc_statuses_and_introspects() {
    use tessera_server::yandex::proto::iam::iam_token_service_client::IamTokenServiceClient;
    use tessera_server::yandex::proto::iam::iam_token_service_server::IamTokenServiceServer;
    use tessera_server::yandex::proto::iam::{
        CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest,
    };
    let server = TestServer::in_process().await;
    let (secret, proxy, config) = introspection_via_proxy(&server).await;
    let keys = RemoteKeys::builder(KeySource::Issuer(issuer_of(&server)))
        .http(loopback())
        .build()
        .await
        .unwrap();
    let verifier = Verifier::builder()
        .trust(TrustedIssuer::new(issuer_of(&server), keys).any_audience())
        .introspection(Introspector::new(config).unwrap())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(VerifyLayer::new(Arc::new(verifier)))
            .add_service(IamTokenServiceServer::new(grpc_resource::WhoAmI))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = IamTokenServiceClient::new(channel);
    let create = |token: Option<&str>| {
        let mut request = tonic::Request::new(CreateIamTokenRequest { identity: None });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };

    let (sa, apikey) = server.service_account_with_key().await;
    let token = server.token(&apikey).await;
    let answer = client.create(create(Some(&token))).await.unwrap();
    assert_eq!(answer.get_ref().iam_token, format!("{} Jwt", sa.iam_id));

    // An opaque refresh token of the resource's client: introspected, inside the layer.
    let issued = server
        .client()
        .token_as_client("resource", &secret, &apikey_form(&apikey))
        .await
        .unwrap();
    let opaque = issued.refresh_token.as_deref().expect("refresh_token");
    let answer = client.create(create(Some(opaque))).await.unwrap();
    assert_eq!(
        answer.get_ref().iam_token,
        format!("{} Introspected", sa.iam_id)
    );
    assert_eq!(proxy.count("/identity/introspect"), 1);

    let refused = client.create(create(None)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(refused.message(), "no bearer token");
    // Another first character of the signature: still well-formed, no longer the signature.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{signed}.{first}{}", &signature[1..]);
    let refused = client.create(create(Some(&tampered))).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(refused.message(), "token signature is invalid");
    assert_eq!(
        proxy.count("/identity/introspect"),
        1,
        "a bad signature is never introspected"
    );
    let refused = client
        .create(create(Some("opaque-but-unknown")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(refused.message(), "token is not active");

    let mut request = tonic::Request::new(CreateIamTokenForServiceAccountRequest {
        service_account_id: sa.id.clone(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let denied = client
        .create_for_service_account(request)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(denied.message(), "the token lacks scope resource.admin");

    proxy.down.store(true, Ordering::SeqCst);
    let refused = client
        .create(create(Some("another-opaque-token")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
}
