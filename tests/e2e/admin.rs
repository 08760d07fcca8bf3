//! The admin API: every resource's create/list/get/delete, authorization by role, error shapes,
//! and deletion taking effect at once.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn crud_of_every_resource() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let enterprise = server
        .create(&admin, "enterprises", json!({"name": "corp"}))
        .await;
    let account = server
        .create(
            &admin,
            "accounts",
            json!({"name": "team", "enterprise_id": enterprise["id"]}),
        )
        .await;
    let account_id = account["id"].as_str().unwrap();
    assert_eq!(account_id.len(), 32);
    let user = server.create(&admin, "users", json!({"account_id": account_id, "name": "Ada", "email": "ada@example.com", "password": "correct horse battery"})).await;
    assert_eq!(user["has_password"], true);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let sa = server
        .create(
            &admin,
            "service_accounts",
            json!({"account_id": account_id, "name": "ci", "description": "builds"}),
        )
        .await;
    let key = server
        .create(
            &admin,
            "api_keys",
            json!({"owner_iam_id": sa["iam_id"], "name": "k1"}),
        )
        .await;
    assert!(key["apikey"].as_str().unwrap().starts_with("tsk_"));
    assert_eq!(key["account_id"], account_id);
    let client = server
        .create(
            &admin,
            "clients",
            json!({"id": "portal", "account_id": account_id}),
        )
        .await;
    assert!(client["secret"].as_str().unwrap().starts_with("tcs_"));
    let binding = server.create(&admin, "access_bindings", json!({"subject_iam_id": user["iam_id"], "role": "viewer", "resource": format!("account/{account_id}")})).await;

    for (plural, object, query) in [
        ("enterprises", &enterprise, String::new()),
        ("accounts", &account, String::new()),
        ("users", &user, format!("?account_id={account_id}")),
        ("service_accounts", &sa, format!("?account_id={account_id}")),
        (
            "api_keys",
            &key,
            format!("?owner_iam_id={}", sa["iam_id"].as_str().unwrap()),
        ),
        ("clients", &client, format!("?account_id={account_id}")),
        (
            "access_bindings",
            &binding,
            format!("?subject_iam_id={}", user["iam_id"].as_str().unwrap()),
        ),
    ] {
        let id = object["id"].as_str().unwrap();
        let (status, got) = server
            .admin(Method::GET, &format!("/v1/{plural}/{id}"), &admin, None)
            .await;
        assert_eq!(status, 200, "{plural}: {got}");
        assert_eq!(got["id"], object["id"]);
        assert!(
            got.get("apikey").is_none() && got.get("secret").is_none(),
            "secrets are shown once only"
        );
        let (status, list) = server
            .admin(Method::GET, &format!("/v1/{plural}{query}"), &admin, None)
            .await;
        assert_eq!(status, 200);
        assert!(
            list[plural]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["id"] == object["id"]),
            "{plural} list: {list}"
        );
    }

    // Deletion: dependants first, then the account and enterprise.
    let (status, body) = server
        .admin(
            Method::DELETE,
            &format!("/v1/accounts/{account_id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("failed_precondition")),
        "{body}"
    );
    for (plural, id) in [
        ("access_bindings", &binding["id"]),
        ("clients", &client["id"]),
        ("service_accounts", &sa["id"]),
        ("users", &user["id"]),
        ("accounts", &account["id"]),
        ("enterprises", &enterprise["id"]),
    ] {
        let (status, body) = server
            .admin(
                Method::DELETE,
                &format!("/v1/{plural}/{}", id.as_str().unwrap()),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 204, "{plural}: {body}");
        let (status, body) = server
            .admin(
                Method::GET,
                &format!("/v1/{plural}/{}", id.as_str().unwrap()),
                &admin,
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
    }
    // The service account's key went with it.
    let (status, _) = server
        .admin(
            Method::GET,
            &format!("/v1/api_keys/{}", key["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn deleting_a_key_or_identity_takes_effect_at_once() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let second = server
        .create(
            &admin,
            "api_keys",
            json!({"owner_iam_id": sa["iam_id"], "name": "second"}),
        )
        .await;
    let second_key = second["apikey"].as_str().unwrap().to_owned();
    let token = server.token(&apikey).await;
    assert_eq!(
        server
            .admin(Method::GET, "/v1/whoami", &token, None)
            .await
            .0,
        200
    );

    // Delete one key: it fails on the very next request; the other key still works.
    let (status, _) = server
        .admin(
            Method::DELETE,
            &format!("/v1/api_keys/{}", second["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let refused = server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", &second_key)])
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["errorCode"],
        "BXNIM0415E"
    );
    server.token(&apikey).await;

    // Delete the service account: its key and its issued token stop working at once.
    let (status, _) = server
        .admin(
            Method::DELETE,
            &format!("/v1/service_accounts/{}", sa["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        server
            .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", &apikey)])
            .await
            .status(),
        400
    );
    let (status, body) = server.admin(Method::GET, "/v1/whoami", &token, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn roles_govern_what_callers_may_do() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let account_a = server
        .create(&admin, "accounts", json!({"name": "a"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account_b = server
        .create(&admin, "accounts", json!({"name": "b"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An account admin of A, a viewer of A, and an identity with no role.
    let mk = |account: String, name: &'static str| {
        let server = &server;
        let admin = admin.clone();
        async move {
            let sa = server
                .create(
                    &admin,
                    "service_accounts",
                    json!({"account_id": account, "name": name}),
                )
                .await;
            let key = server
                .create(
                    &admin,
                    "api_keys",
                    json!({"owner_iam_id": sa["iam_id"], "name": name}),
                )
                .await;
            (sa, server.token(key["apikey"].as_str().unwrap()).await)
        }
    };
    let (a_admin, a_admin_token) = mk(account_a.clone(), "a-admin").await;
    let (a_viewer, a_viewer_token) = mk(account_a.clone(), "a-viewer").await;
    let (_, nobody_token) = mk(account_a.clone(), "nobody").await;
    server.create(&admin, "access_bindings", json!({"subject_iam_id": a_admin["iam_id"], "role": "admin", "resource": format!("account/{account_a}")})).await;
    server.create(&admin, "access_bindings", json!({"subject_iam_id": a_viewer["iam_id"], "role": "viewer", "resource": format!("account/{account_a}")})).await;

    // The account admin manages A but not B, and cannot create accounts.
    let (status, _) = server
        .admin(
            Method::POST,
            "/v1/service_accounts",
            &a_admin_token,
            Some(json!({"account_id": account_a, "name": "x"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = server
        .admin(
            Method::POST,
            "/v1/service_accounts",
            &a_admin_token,
            Some(json!({"account_id": account_b, "name": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("permission_denied"))
    );
    assert_eq!(
        server
            .admin(
                Method::POST,
                "/v1/accounts",
                &a_admin_token,
                Some(json!({"name": "c"}))
            )
            .await
            .0,
        403
    );
    let (status, _) = server
        .admin(
            Method::POST,
            "/v1/access_bindings",
            &a_admin_token,
            Some(json!({"subject_iam_id": a_viewer["iam_id"], "role": "admin", "resource": "*"})),
        )
        .await;
    assert_eq!(status, 403, "an account admin cannot grant global admin");

    // The viewer reads A, writes nothing.
    let (status, list) = server
        .admin(
            Method::GET,
            &format!("/v1/service_accounts?account_id={account_a}"),
            &a_viewer_token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(list["service_accounts"].as_array().unwrap().len() >= 3);
    let (status, list) = server
        .admin(Method::GET, "/v1/service_accounts", &a_viewer_token, None)
        .await;
    assert_eq!(status, 200, "without a filter: the readable accounts");
    assert!(list["service_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["account_id"] == account_a.as_str()));
    assert_eq!(
        server
            .admin(
                Method::POST,
                "/v1/service_accounts",
                &a_viewer_token,
                Some(json!({"account_id": account_a, "name": "x"}))
            )
            .await
            .0,
        403
    );
    assert_eq!(
        server
            .admin(
                Method::GET,
                &format!("/v1/service_accounts?account_id={account_b}"),
                &a_viewer_token,
                None
            )
            .await
            .0,
        403
    );

    // No role: nothing but whoami.
    assert_eq!(
        server
            .admin(Method::GET, "/v1/whoami", &nobody_token, None)
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .admin(
                Method::GET,
                &format!("/v1/users?account_id={account_a}"),
                &nobody_token,
                None
            )
            .await
            .0,
        403
    );
    assert_eq!(
        server
            .admin(Method::GET, "/v1/audit", &nobody_token, None)
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn bad_input_gets_the_admin_error_shape() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let cases = [
        (
            "/v1/service_accounts",
            json!({"name": ""}),
            400,
            "invalid_argument",
            "name",
        ),
        (
            "/v1/service_accounts",
            json!({"name": "x", "account_id": "nope"}),
            400,
            "invalid_argument",
            "account_id",
        ),
        (
            "/v1/service_accounts",
            json!({"name": "x", "bogus": 1}),
            400,
            "invalid_argument",
            "bogus",
        ),
        (
            "/v1/service_accounts",
            json!({"name": "x".repeat(200)}),
            400,
            "invalid_argument",
            "name",
        ),
        (
            "/v1/service_accounts",
            json!({"name": "x", "account_id": "0".repeat(32)}),
            404,
            "not_found",
            "account",
        ),
        (
            "/v1/users",
            json!({"name": "x", "email": "not-an-email"}),
            400,
            "invalid_argument",
            "email",
        ),
        (
            "/v1/users",
            json!({"name": "x", "email": "a@b.example", "password": "short"}),
            400,
            "invalid_argument",
            "password",
        ),
        (
            "/v1/users",
            json!({"name": "x", "email": "a@b.example", "password": "long enough", "federated": true}),
            400,
            "invalid_argument",
            "federated",
        ),
        (
            "/v1/api_keys",
            json!({"name": "k", "owner_iam_id": "someone"}),
            400,
            "invalid_argument",
            "owner_iam_id",
        ),
        (
            "/v1/api_keys",
            json!({"name": "k", "owner_iam_id": "iam-ServiceId-missing"}),
            404,
            "not_found",
            "identity",
        ),
        (
            "/v1/clients",
            json!({"id": "has space"}),
            400,
            "invalid_argument",
            "id",
        ),
        (
            "/v1/clients",
            json!({"id": "default"}),
            400,
            "invalid_argument",
            "reserved",
        ),
        (
            "/v1/access_bindings",
            json!({"subject_iam_id": "IBMid-X", "role": "owner", "resource": "*"}),
            400,
            "invalid_argument",
            "role",
        ),
        (
            "/v1/access_bindings",
            json!({"subject_iam_id": "IBMid-X", "role": "admin", "resource": "planet/x"}),
            400,
            "invalid_argument",
            "resource",
        ),
    ];
    for (path, body, status, code, fragment) in cases {
        let (got, response) = server
            .admin(Method::POST, path, &admin, Some(body.clone()))
            .await;
        assert_eq!(got, status, "{path} {body}: {response}");
        assert_eq!(response["error"]["code"], code, "{response}");
        assert!(
            response["error"]["message"]
                .as_str()
                .unwrap()
                .contains(fragment),
            "{fragment}: {response}"
        );
        assert!(response["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()));
    }
    // Duplicates are conflicts.
    server.create(&admin, "clients", json!({"id": "dup"})).await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/v1/clients",
            &admin,
            Some(json!({"id": "dup"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_exists"))
    );
    // Not JSON, wrong content type, too large, bad limit.
    let response = server
        .http
        .post(format!("{}/v1/service_accounts", server.url))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server
        .http
        .post(format!("{}/v1/service_accounts", server.url))
        .bearer_auth(&admin)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server
        .http
        .post(format!("{}/v1/service_accounts", server.url))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        server
            .admin(Method::GET, "/v1/users?limit=0", &admin, None)
            .await
            .0,
        400
    );
    assert_eq!(
        server
            .admin(Method::GET, "/v1/users?limit=5000", &admin, None)
            .await
            .0,
        400
    );
    // No token, a garbage token.
    let response = server
        .http
        .get(format!("{}/v1/whoami", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        server
            .admin(Method::GET, "/v1/whoami", "garbage", None)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn openapi_and_audit() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let doc: Value = server
        .http
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/api_keys"]["post"].is_object());
    // Generated, not hand-written: no OpenAPI 3.0 `nullable`, whoami's `id` documented, a
    // bearer scheme, and the token surfaces a resource service calls.
    assert!(!doc.to_string().contains("\"nullable\""));
    assert_eq!(
        doc["components"]["schemas"]["WhoAmI"]["properties"]["id"]["type"],
        "string"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for path in [
        "/identity/token",
        "/identity/introspect",
        "/identity/revoke",
        "/identity/keys",
        "/.well-known/openid-configuration",
        "/iam/v1/tokens",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    // Every documented operation is served: the router neither says "no such endpoint" nor
    // 405 to any of them (the unit test `api_doc::every_route_the_server_serves_is_documented`
    // checks the other direction).
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "does-not-exist");
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let form = operation["requestBody"]["content"]
                .get("application/x-www-form-urlencoded")
                .is_some();
            let mut request = server
                .http
                .request(method.clone(), format!("{}{concrete}", server.url))
                .bearer_auth(&admin);
            if operation.get("requestBody").is_some() {
                request = if form {
                    request
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body("")
                } else {
                    request.json(&json!({}))
                };
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is documented but not served");
            assert!(
                !text.contains("no such endpoint"),
                "{method} {path} is documented but not served: {status} {text}"
            );
            assert!(
                status < 500 || path == "/readyz",
                "{method} {path}: {status} {text}"
            );
            operations += 1;
        }
    }
    assert!(operations > 60, "only {operations} operations documented");
    let sa = server
        .create(&admin, "service_accounts", json!({"name": "audited"}))
        .await;
    let (status, audit) = server
        .admin(Method::GET, "/v1/audit?limit=5", &admin, None)
        .await;
    assert_eq!(status, 200);
    let newest = &audit["events"][0];
    assert_eq!(newest["action"], "service_account.create");
    assert_eq!(newest["target_id"], sa["id"]);
    assert_eq!(newest["actor"], jwt_payload(&admin)["iam_id"]);
}
