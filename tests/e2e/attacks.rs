//! The attacks of issue 12, replayed over real sockets as an attacker would try them, each now
//! refused in the surface's error shape with a message that says why: the cross-tenant takeover
//! through authorization policies and profiles (the whole chain), the delegated administrator
//! becoming the global administrator, the service-account JWT lifetime overflow, derived tokens
//! outliving their credential, targeted lockout, and the smaller holes (issuer URL squatting,
//! client ids, Yandex `Revoke`, uncounted secret checks).

use crate::cr_token::{cr_exchange, k8s_claims, link, TestKey};
use crate::harness::*;
use crate::profiles::{identity, named};
use crate::yandex::{assert_rest_status, authorized_key, rest, sign, AUD};
use reqwest::Method;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use tessera_client::api::admin::{
    AuthorizationPolicyCreate, ClientCreate, ComputeResourceLink, ListQuery, ServiceAccountView,
    TrustedIssuerCreate, TrustedProfileCreate, UserCreate, UserView,
};
use tessera_client::api::token::IbmTokenRequest;
use tessera_client::resource::{
    ApiKeys, AuthorizationPolicies, Clients, TrustedIssuers, TrustedProfiles,
};
use tessera_client::Client;
use tessera_core::model::Algorithm;

const ASSUME: &str = "urn:ibm:params:oauth:grant-type:assume";
const AUTHZ: &str = "urn:ibm:params:oauth:grant-type:iam-authz";

fn crn_in(account: &str, instance: &str) -> String {
    format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{account}:{instance}::")
}

fn message(body: &Value) -> String {
    body["errorMessage"]
        .as_str()
        .or(body["error"]["message"].as_str())
        .or(body["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts an admin-API refusal: `status`, the admin error shape, a message containing `why`.
fn refused(status: u16, body: &Value, want: u16, why: &str) {
    assert_eq!(status, want, "{body}");
    assert!(
        body["error"]["code"].is_string(),
        "admin error shape: {body}"
    );
    assert!(message(body).contains(why), "{why:?} not in {body}");
}

/// Asserts an IBM token-endpoint refusal naming `why`, with nothing issued.
fn ibm_refused(status: u16, body: &Value, why: &str) {
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errorCode"]
            .as_str()
            .unwrap_or("")
            .starts_with("BXNIM"),
        "{body}"
    );
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(message(body).contains(why), "{why:?} not in {body}");
}

async fn grant(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = server.token_response(form).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn introspect_active(server: &TestServer, token: &str) -> bool {
    let admin = server.admin_token().await;
    server.introspect(&admin, token).await["active"] == true
}

/// The typed client of `server` acting with `token`.
fn acting(server: &TestServer, token: &str) -> Client {
    server.client().with_token(token)
}

/// The `iam-authz` grant's form: `access_token` asks for the identity `desired_iam_id`.
fn authz_grant(access_token: &str, desired_iam_id: &str) -> IbmTokenRequest {
    IbmTokenRequest {
        grant_type: AUTHZ.into(),
        access_token: Some(access_token.to_owned()),
        desired_iam_id: Some(desired_iam_id.to_owned()),
        ..IbmTokenRequest::default()
    }
}

async fn account(server: &TestServer, root: &str, name: &str) -> String {
    account_named(&acting(server, root), name).await.id
}

/// A user of `account` who administers it, signed in: (user, token).
async fn account_admin(
    server: &TestServer,
    root: &str,
    account: &str,
    email: &str,
) -> (UserView, String) {
    let root = acting(server, root);
    let user = user_in(&root, Some(account), email, email, USER_PASSWORD).await;
    bind(&root, &user.id, "admin", &format!("account/{account}")).await;
    let token = server.user_token(&user.id, USER_PASSWORD).await;
    (user, token)
}

/// A service account of `account` and an API key for it, made by `by` (an administrator).
async fn service_account(
    server: &TestServer,
    by: &str,
    account: &str,
    name: &str,
) -> (ServiceAccountView, String) {
    let by = acting(server, by);
    let sa = service_account_in(&by, Some(account), name).await;
    let key = api_key_of(&by, &sa.iam_id, name).await;
    (sa, key)
}

/// Binds `subject_iam_id` as `role` on `account`, as the administrator `root`.
async fn bind_on_account(
    server: &TestServer,
    root: &str,
    subject_iam_id: &str,
    role: &str,
    account: &str,
) {
    let resource = format!("account/{account}");
    bind(&acting(server, root), subject_iam_id, role, &resource).await;
}

/// Raw: `token`'s attempt to create an API key of `owner_iam_id`, which the test expects refused.
async fn create_api_key_of(server: &TestServer, token: &str, owner_iam_id: &str) -> (u16, Value) {
    let body = json!({"owner_iam_id": owner_iam_id, "name": "x"});
    server.admin_post("/v1/api_keys", token, body).await
}

/// Attack 1, the whole chain: an administrator of account B tries to become account A's
/// administrator through a wildcard authorization policy, a CRN token of A's resource and A's
/// profile that trusts that CRN. Every step is refused, naming the rule.
#[tokio::test]
async fn cross_tenant_takeover_through_policies_and_profiles_is_refused() {
    let server = TestServer::in_process().await;
    let root = server.admin_token().await;
    let a = account(&server, &root, "victim").await;
    let b = account(&server, &root, "attacker").await;
    let crn_a = crn_in(&a, "bucket");
    // A's profile trusts A's own resource identity and holds admin on A.
    let profile = acting(&server, &root)
        .create::<TrustedProfiles>(&TrustedProfileCreate {
            account_id: Some(a.clone()),
            ..named("backup", vec![identity("crn", &crn_a)])
        })
        .await
        .unwrap();
    let profile_id = profile.id.as_str();
    bind_on_account(&server, &root, &profile.iam_id, "admin", &a).await;
    // A profile may not trust another tenant's resource identity at all.
    let (status, body) = server
        .admin_post("/v1/trusted_profiles", &root, json!({"account_id": a, "name": "x", "identities": [{"type": "crn", "identifier": crn_in(&b, "i")}]}))
        .await;
    refused(status, &body, 400, "resource of the profile's account");

    let (_, bob) = account_admin(&server, &root, &b, "bob@b.example").await;
    let (sa_b, key_b) = service_account(&server, &bob, &b, "worker").await;

    // 1. Wildcards that reach past B are refused, and so is filing a policy under A.
    for target in [
        "crn:v1:*".to_owned(),
        format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{a}*"),
        crn_a.clone(),
    ] {
        let (status, body) = server
            .admin_post(
                "/v1/authorization_policies",
                &bob,
                json!({"account_id": b, "source_iam_id": sa_b.iam_id, "target_crn": target}),
            )
            .await;
        refused(status, &body, 400, "account");
    }
    let (status, body) = server
        .admin_post(
            "/v1/authorization_policies",
            &bob,
            json!({"source_iam_id": sa_b.iam_id, "target_crn": crn_a}),
        )
        .await;
    refused(status, &body, 403, &format!("account/{a}"));
    // B's own resources are fine.
    acting(&server, &bob)
        .create::<AuthorizationPolicies>(&AuthorizationPolicyCreate {
            account_id: None,
            source_iam_id: sa_b.iam_id.clone(),
            target_crn: format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{b}:*"),
            description: None,
        })
        .await
        .unwrap();

    // 2. B's service account cannot obtain A's resource identity.
    let sa_token = server.token(&key_b).await;
    let desired_a = format!("crn-{crn_a}");
    let (status, body) = grant(
        &server,
        &[
            ("grant_type", AUTHZ),
            ("access_token", &sa_token),
            ("desired_iam_id", &desired_a),
        ],
    )
    .await;
    ibm_refused(status, &body, "No authorization policy");
    // 3. Its own resource identity is not A's: A's profile does not trust it.
    let desired_b = format!("crn-{}", crn_in(&b, "bucket"));
    let crn_token = granted(&server.client(), &authz_grant(&sa_token, &desired_b)).await;
    let crn_token = crn_token.as_str();
    assert_eq!(jwt_payload(crn_token)["account"]["bss"], b.as_str());
    let (status, body) = grant(
        &server,
        &[
            ("grant_type", ASSUME),
            ("access_token", crn_token),
            ("profile_id", profile_id),
        ],
    )
    .await;
    ibm_refused(status, &body, "not a trusted identity");
    // 4. Nothing was created in A by anyone from B.
    let (status, body) = server
        .admin_post(
            "/v1/service_accounts",
            &bob,
            json!({"account_id": a, "name": "backdoor"}),
        )
        .await;
    refused(status, &body, 403, "does not hold role admin");

    // Ownership of A's resource identity follows its CRN: B may not cut it off, A's admin may.
    let (status, body) = server
        .admin_post("/v1/token_cutoffs", &bob, json!({"iam_id": desired_a}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (sa_a, key_a) = service_account(&server, &root, &a, "reader").await;
    let policy = acting(&server, &root)
        .create::<AuthorizationPolicies>(&AuthorizationPolicyCreate {
            account_id: None,
            source_iam_id: sa_a.iam_id.clone(),
            target_crn: crn_a.clone(),
            description: None,
        })
        .await
        .unwrap();
    let (status, body) = server
        .admin_post("/v1/token_cutoffs", &bob, json!({"iam_id": desired_a}))
        .await;
    refused(status, &body, 403, &format!("account/{a}"));
    // A deleting its own policy kills its CRN tokens at once.
    let reader = server.token(&key_a).await;
    let a_crn_token = granted(&server.client(), &authz_grant(&reader, &desired_a)).await;
    assert!(introspect_active(&server, &a_crn_token).await);
    let (status, _) = server
        .admin_delete(&format!("/v1/authorization_policies/{}", policy.id), &root)
        .await;
    assert_eq!(status, 204);
    assert!(!introspect_active(&server, &a_crn_token).await);
    let (status, _) = server
        .admin_post(
            "/v1/token_cutoffs",
            &root,
            json!({"iam_id": format!("iam-{}", profile_id)}),
        )
        .await;
    assert_eq!(status, 201);
}

/// Attack 2: a delegated administrator of the Default account (where the bootstrap global
/// administrator lives) tries to take over the global administrator and users and service
/// accounts holding privileges elsewhere.
#[tokio::test]
async fn account_admin_cannot_become_anyone_stronger() {
    let server = TestServer::in_process().await;
    let root = server.admin_token().await;
    let me = acting(&server, &root).whoami().await.unwrap();
    let root_id = me.iam_id;
    let default = me.account_id;
    let other = account(&server, &root, "other").await;
    let (_, dan) = account_admin(&server, &root, &default, "dan@example.com").await;

    // The global administrator's credentials and factor are out of reach.
    let attempts = [
        (
            Method::POST,
            "/v1/api_keys".to_owned(),
            Some(json!({"owner_iam_id": root_id, "name": "x"})),
            403,
            "only user",
        ),
        (
            Method::POST,
            "/v1/oauth_tokens".to_owned(),
            Some(json!({"user_id": root_id})),
            403,
            "only user",
        ),
        (
            Method::POST,
            format!("/v1/users/{root_id}/totp"),
            None,
            403,
            "admin on *",
        ),
        (
            Method::DELETE,
            format!("/v1/users/{root_id}"),
            None,
            403,
            "admin on *",
        ),
        (
            Method::POST,
            "/v1/token_cutoffs".to_owned(),
            Some(json!({"iam_id": root_id})),
            403,
            "admin on *",
        ),
    ];
    for (method, path, body, want, why) in attempts {
        let (status, answer) = server.admin(method.clone(), &path, &dan, body).await;
        refused(status, &answer, want, why);
    }
    let who = acting(&server, &dan).whoami().await.unwrap();
    assert!(!who.global_admin, "{who:?}");

    // A user homed here with a binding on another account: not contained either.
    let (ann, ann_key) = server
        .user_with_key(
            &acting(&server, &root),
            UserCreate {
                account_id: Some(default.clone()),
                ..user("Ann", "ann@example.com")
            },
        )
        .await;
    bind_on_account(&server, &root, &ann.id, "viewer", &other).await;
    let (status, body) = create_api_key_of(&server, &dan, &ann.id).await;
    refused(status, &body, 403, "only user");
    let (status, body) = server
        .admin_delete(&format!("/v1/users/{}", ann.id), &dan)
        .await;
    refused(status, &body, 403, &format!("viewer on account/{other}"));
    // Ann's own key still works: nothing was done to her.
    server.token(&ann_key).await;

    // A service account here holding admin on another account: dan may neither create its
    // keys, mint its tokens, nor delete it...
    let (sd, _) = service_account(&server, &root, &default, "deployer").await;
    bind_on_account(&server, &root, &sd.iam_id, "admin", &other).await;
    let (status, body) = create_api_key_of(&server, &dan, &sd.iam_id).await;
    refused(status, &body, 403, &format!("admin on account/{other}"));
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens:createForServiceAccount",
        Some(&dan),
        json!({"serviceAccountId": sd.id}),
    )
    .await;
    assert_rest_status(status, &body, 403, 7, &format!("admin on account/{other}"));
    let (status, body) = server
        .admin_delete(&format!("/v1/service_accounts/{}", sd.id), &dan)
        .await;
    refused(status, &body, 403, "which IBMid-");
    // ...while a service account holding nothing beyond the account is his to manage.
    let (plain, _) = service_account(&server, &dan, &default, "plain").await;
    acting(&server, &dan)
        .create_for_service_account(&plain.id)
        .await
        .unwrap();

    // Nobody removes the last global administrator, not even itself.
    let (status, body) = server
        .admin_delete(&format!("/v1/users/{root_id}"), &root)
        .await;
    refused(status, &body, 403, "last global administrator");
}

/// Attack 3: a service-account JWT whose lifetime arithmetic overflows (`iat = i64::MIN`).
#[tokio::test]
async fn overflowing_jwt_lifetimes_are_refused() {
    let server = TestServer::in_process().await;
    let root = server.admin_token().await;
    let sa = service_account_in(&acting(&server, &root), None, "ci").await;
    let key = authorized_key(&server, &sa).await;
    let now = unix_now();
    for (iat, exp) in [
        (i64::MIN, now + 1_000_000_000),
        (now, i64::MAX),
        (i64::MIN, i64::MAX),
    ] {
        let jwt = sign(
            &key.private,
            &aws_lc_rs::signature::RSA_PSS_SHA256,
            &json!({"alg": "PS256", "typ": "JWT", "kid": key.id}),
            &json!({"iss": key.service_account_id, "aud": AUD, "iat": iat, "exp": exp}),
        );
        let (status, body) = rest(&server, "/iam/v1/tokens", None, json!({"jwt": jwt})).await;
        assert_rest_status(status, &body, 401, 16, "exceeds");
        assert!(body.get("iamToken").is_none());
    }
}

/// Attack 4: tokens derived from a credential die with it — refresh and delegated refresh
/// tokens, profile tokens and tokens minted for another service account — and a cut-off of
/// the identity that derived them reaches them too.
#[tokio::test]
async fn revocation_reaches_every_derived_token() {
    let server = TestServer::in_process().await;
    let root = server.admin_token().await;
    let account = account_of(&acting(&server, &root)).await;
    let confidential = |id: &str| ClientCreate {
        id: id.to_owned(),
        name: None,
        account_id: None,
    };
    let app = acting(&server, &root)
        .create::<Clients>(&confidential("app"))
        .await
        .unwrap();
    let app_secret = app.secret.unwrap().into_inner();
    let recv = acting(&server, &root)
        .create::<Clients>(&confidential("recv"))
        .await
        .unwrap();
    let recv_secret = recv.secret.unwrap().into_inner();
    let token_url = format!("{}/identity/token", server.url);

    // Everything one key leads to.
    let derive = |apikey: String, profile_id: String, minted_sa: String| {
        let server = &server;
        let app_secret = app_secret.clone();
        async move {
            let typed = server.client();
            let apikey_grant = apikey_form(&apikey);
            let issued = typed
                .token_as_client("app", &app_secret, &apikey_grant)
                .await
                .unwrap();
            let drt = typed
                .token_as_client(
                    "app",
                    &app_secret,
                    &IbmTokenRequest {
                        response_type: Some("delegated_refresh_token".into()),
                        receiver_client_ids: Some("recv".into()),
                        ..apikey_grant.clone()
                    },
                )
                .await
                .unwrap();
            let access = issued.access_token.unwrap();
            let assumed = granted(
                &typed,
                &IbmTokenRequest {
                    grant_type: ASSUME.into(),
                    access_token: Some(access.clone()),
                    profile_id: Some(profile_id),
                    ..IbmTokenRequest::default()
                },
            )
            .await;
            let minted = typed
                .with_token(&access)
                .create_for_service_account(&minted_sa)
                .await
                .unwrap();
            (
                issued.refresh_token.unwrap(),
                drt.delegated_refresh_token.unwrap(),
                access,
                assumed,
                minted.iam_token,
            )
        }
    };
    let redeem = |client: &'static str, secret: String, refresh: String| {
        let server = &server;
        let token_url = token_url.clone();
        async move {
            let response = server
                .http
                .post(&token_url)
                .basic_auth(client, Some(secret))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let setup = |name: &'static str| {
        let (server, root, account) = (&server, root.clone(), account.clone());
        async move {
            let (sa, key) = service_account(server, &root, &account, name).await;
            let root = acting(server, &root);
            let target = service_account_in(&root, None, &format!("{name}-target")).await;
            bind(
                &root,
                &sa.iam_id,
                "iam.serviceAccounts.tokenCreator",
                &format!("service-account/{}", target.id),
            )
            .await;
            let profile = root
                .create::<TrustedProfiles>(&named(
                    &format!("{name}-profile"),
                    vec![identity("serviceid", &sa.iam_id)],
                ))
                .await
                .unwrap();
            (sa, key, profile.id, target.id)
        }
    };

    // Deleting the API key.
    let (_, key, profile, target) = setup("keyed").await;
    let (refresh, drt, access, assumed, minted) = derive(key.clone(), profile, target).await;
    assert_eq!(
        redeem("app", app_secret.clone(), refresh.clone()).await.0,
        200
    );
    let keys = acting(&server, &root)
        .list::<ApiKeys>(&ListQuery::default())
        .await
        .unwrap();
    let key_id = keys.into_iter().find(|k| k.name == "keyed").unwrap().id;
    let (status, _) = server
        .admin_delete(&format!("/v1/api_keys/{key_id}"), &root)
        .await;
    assert_eq!(status, 204);
    let (status, body) = redeem("app", app_secret.clone(), refresh).await;
    ibm_refused(status, &body, "API key");
    let (status, body) = redeem("recv", recv_secret.clone(), drt).await;
    ibm_refused(status, &body, "API key");
    for token in [&access, &assumed, &minted] {
        assert!(
            !introspect_active(&server, token).await,
            "{token} outlived its API key"
        );
    }

    // Cutting off the identity that derived them.
    let (sa, key, profile, target) = setup("cut").await;
    let (refresh, drt, access, assumed, minted) = derive(key, profile, target).await;
    let (status, _) = server
        .admin_post("/v1/token_cutoffs", &root, json!({"iam_id": sa.iam_id}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(redeem("app", app_secret.clone(), refresh).await.0, 400);
    assert_eq!(redeem("recv", recv_secret.clone(), drt).await.0, 400);
    for token in [&access, &assumed, &minted] {
        assert!(
            !introspect_active(&server, token).await,
            "{token} outlived the cut-off"
        );
    }

    // Deleting the identity.
    let (sa, key, profile, target) = setup("gone").await;
    let (_, _, _, assumed, minted) = derive(key, profile, target).await;
    let (status, _) = server
        .admin_delete(&format!("/v1/service_accounts/{}", sa.id), &root)
        .await;
    assert_eq!(status, 204);
    for token in [&assumed, &minted] {
        let (status, body) = server.admin_get("/v1/whoami", token).await;
        refused(status, &body, 401, "revoked");
    }

    // A refresh token of the public default client is redeemable nowhere, `assume` included.
    let (_, key, profile, _) = setup("public").await;
    let public = server.client().token_from_apikey(&key).await.unwrap();
    let (status, body) = grant(
        &server,
        &[
            ("grant_type", ASSUME),
            ("refresh_token", public.refresh_token.as_deref().unwrap()),
            ("profile_id", &profile),
        ],
    )
    .await;
    ibm_refused(status, &body, "Basic");
}

/// A client whose connections come from `source`.
fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .build()
        .unwrap()
}

/// Attacks 6 and 7: client ids are delayed, never locked; secret checks at introspection and
/// the Yandex surface count like the token endpoint's; client ids and issuer URLs are per
/// account; Yandex `Revoke` follows ownership.
#[tokio::test]
async fn smaller_holes_are_closed() {
    let server = TestServer::start_with(
        &[
            "--throttle-delay-after",
            "3",
            "--throttle-lock-after",
            "3",
            "--throttle-address-delay-after",
            "6",
            "--throttle-address-lock-after",
            "6",
        ],
        &[],
    )
    .await;
    let root = server.admin_token().await;
    let a = account_of(&acting(&server, &root)).await;
    let b = account(&server, &root, "b").await;
    let (_, bob) = account_admin(&server, &root, &b, "bob@b.example").await;

    // Client ids are per account: both accounts have an `app`, told apart by their secrets.
    let app_in = |account: &str| ClientCreate {
        id: "app".into(),
        name: None,
        account_id: Some(account.to_owned()),
    };
    let app_a = acting(&server, &root)
        .create::<Clients>(&app_in(&a))
        .await
        .unwrap();
    let app_b = acting(&server, &bob)
        .create::<Clients>(&app_in(&b))
        .await
        .unwrap();
    assert_eq!(app_b.account_id.as_deref(), Some(b.as_str()));
    let (_, key_a) = service_account(&server, &root, &a, "svc-a").await;
    let issued = server
        .client()
        .token_as_client(
            "app",
            app_a.secret.as_deref().unwrap(),
            &apikey_form(&key_a),
        )
        .await
        .unwrap();
    let refresh_a = issued.refresh_token.as_deref().unwrap();
    // Raw: the refusal's status.
    let with_b: reqwest::Response = server
        .http
        .post(format!("{}/identity/token", server.url))
        .basic_auth("app", app_b.secret.as_deref())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_a),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_b.status(),
        400,
        "B's app redeemed A's app's refresh token"
    );

    // A client id is never locked: wrong secrets from one address, then the right one from
    // there, gets in.
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 2));
    for _ in 0..5 {
        let status = attacker
            .post(format!("{}/identity/token", server.url))
            .basic_auth("app", Some("wrong"))
            .form(&[("grant_type", APIKEY_GRANT), ("apikey", &key_a)])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    let status = client_from(Ipv4Addr::new(127, 0, 0, 3))
        .post(format!("{}/identity/token", server.url))
        .basic_auth("app", app_a.secret.as_deref())
        .form(&[("grant_type", APIKEY_GRANT), ("apikey", &key_a)])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    // Secret checks at introspection count: a sixth failure from 127.0.0.2 locks the address
    // (the five above plus this one), for an unknown API key too.
    let response = attacker
        .post(format!("{}/identity/introspect", server.url))
        .basic_auth("app", Some("wrong"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = attacker
        .post(format!("{}/identity/token", server.url))
        .form(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", "tsk_not-a-key-0123456789abcdef"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    // So do Yandex OAuth tokens: guesses from 127.0.0.4 lock that address on every surface.
    let guesser = client_from(Ipv4Addr::new(127, 0, 0, 4));
    for i in 0..6 {
        let response = guesser
            .post(format!("{}/iam/v1/tokens", server.url))
            .json(&json!({"yandexPassportOauthToken": format!("y0_guess{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = guesser
        .post(format!("{}/identity/token", server.url))
        .form(&[("grant_type", APIKEY_GRANT), ("apikey", &key_a)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);

    // Yandex `Revoke` follows ownership: B's service account cannot revoke A's token.
    let (_, key_b) = service_account(&server, &bob, &b, "svc-b").await;
    let token_a = server.token(&key_a).await;
    let token_b = server.token(&key_b).await;
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens:revoke",
        Some(&token_b),
        json!({"iamToken": token_a}),
    )
    .await;
    assert_rest_status(status, &body, 403, 7, "revoke");
    assert!(introspect_active(&server, &token_a).await);
    let (status, body) = rest(
        &server,
        "/iam/v1/tokens:revoke",
        Some(&token_a),
        json!({"iamToken": token_a}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Issuer URLs are per account: B registering a well-known URL first does not deny it to A.
    let url = "https://kubernetes.default.svc";
    let b_key = TestKey::new("b1", Algorithm::Es256);
    server
        .create(
            &bob,
            "trusted_issuers",
            json!({"name": "squat", "issuer_url": url, "jwks": b_key.jwks()}),
        )
        .await;
    let a_key = TestKey::new("a1", Algorithm::Es256);
    let issuer = acting(&server, &root)
        .create::<TrustedIssuers>(&TrustedIssuerCreate {
            account_id: None,
            name: "cluster".into(),
            issuer_url: url.into(),
            jwks: Some(a_key.jwks()),
            jwks_file: None,
            audiences: None,
            cr_type: None,
            crn: None,
            claim_mapping: None,
        })
        .await
        .unwrap();
    let l = link(&issuer.crn, "prod", "app");
    acting(&server, &root)
        .create::<TrustedProfiles>(&TrustedProfileCreate {
            links: vec![ComputeResourceLink {
                id: None,
                cr_type: l.cr_type,
                crn: l.crn,
                namespace: l.namespace,
                name: l.name,
                component_type: None,
                component_name: None,
            }],
            ..named("k8s", Vec::new())
        })
        .await
        .unwrap();
    let body = cr_exchange(&server, &a_key.sign(&k8s_claims(url, "prod", "app")), &[])
        .await
        .expect("granted");
    assert_eq!(
        jwt_payload(body.access_token.as_deref().expect("access_token"))["account"]["bss"],
        a.as_str()
    );
    // B's key is no key of A's issuer.
    let refused = cr_exchange(&server, &b_key.sign(&k8s_claims(url, "prod", "app")), &[])
        .await
        .unwrap_err();
    assert_eq!(refused.status, 400, "{refused}");
    assert!(refused.code.starts_with("BXNIM"), "{refused}");
    assert!(refused.message.contains("trust"), "{refused}");
}
